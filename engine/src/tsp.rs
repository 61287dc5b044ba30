//! RFC 3161 trusted timestamps: the request vouch sends for a packet's
//! signature, and what it reads back from a time-stamping authority's
//! response (its status, the imprint and nonce it signed, its time).
//!
//! The response's CMS signature and certificate chain are not checked here:
//! `vouch verify --tsa-ca` hands the stored response to `openssl ts -verify`,
//! the reference implementation, with the CA file the auditor trusts. Parsing
//! uses the `der` crate and is bounded by the response's size.

use der::asn1::ContextSpecific;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Reader, SliceReader, Tag, TagNumber, Tagged};

use crate::time::Timestamp;

/// SHA-256 (NIST's OID).
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// CMS SignedData.
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-ct-TSTInfo.
const TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// The largest response read from an authority.
pub const MAX_RESPONSE: usize = 64 * 1024;

/// Why a response is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TspError {
    #[error("malformed time-stamp response: {0}")]
    Malformed(String),
    #[error("the time-stamping authority refused the request (PKIStatus {0})")]
    Rejected(u64),
    #[error("the time-stamp is not for this request: {0}")]
    Mismatch(String),
}

impl From<der::Error> for TspError {
    fn from(e: der::Error) -> Self {
        TspError::Malformed(e.to_string())
    }
}

/// What a granted response's token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The authority's time (`genTime`), to the second.
    pub gen_time: Timestamp,
    /// The SHA-256 imprint it signed.
    pub digest: [u8; 32],
    pub nonce: Option<u64>,
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn uint(n: u64) -> Vec<u8> {
    let mut bytes: Vec<u8> = n
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if bytes.first().is_none_or(|b| b & 0x80 != 0) {
        bytes.insert(0, 0);
    }
    tlv(0x02, &bytes)
}

/// A DER TimeStampReq (version 1) for a SHA-256 `digest`, with `nonce`, asking
/// for the authority's certificate in the token.
pub fn request(digest: &[u8; 32], nonce: u64) -> Vec<u8> {
    let algorithm = tlv(
        0x30,
        &[
            &[
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
            ][..],
            &[0x05, 0x00],
        ]
        .concat(),
    );
    let imprint = tlv(0x30, &[algorithm, tlv(0x04, digest)].concat());
    tlv(
        0x30,
        &[uint(1), imprint, uint(nonce), vec![0x01, 0x01, 0xff]].concat(),
    )
}

fn skip_rest<'a>(r: &mut impl Reader<'a>) -> der::Result<()> {
    while !r.is_finished() {
        r.decode::<AnyRef<'a>>()?;
    }
    Ok(())
}

/// The element inside the `[0] EXPLICIT` wrapper at the reader.
fn explicit0<'a>(r: &mut impl Reader<'a>) -> der::Result<AnyRef<'a>> {
    ContextSpecific::<AnyRef<'a>>::decode_explicit(r, TagNumber::N0)?
        .map(|c| c.value)
        .ok_or_else(|| {
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            }
            .value_error()
        })
}

/// A reader over the content of a SEQUENCE.
fn fields(any: AnyRef<'_>) -> der::Result<SliceReader<'_>> {
    if any.tag() != Tag::Sequence {
        return Err(any.tag().unexpected_error(Some(Tag::Sequence)));
    }
    SliceReader::new(any.value())
}

/// Reads a granted TimeStampResp: the token's time, imprint and nonce.
pub fn read_response(resp: &[u8]) -> Result<TokenInfo, TspError> {
    if resp.len() > MAX_RESPONSE {
        return Err(TspError::Malformed("larger than 64 KiB".into()));
    }
    let mut r = SliceReader::new(resp)?;
    let (status, token) = r.sequence(|r| {
        let status: u64 = r.sequence(|r| {
            let s = r.decode()?;
            skip_rest(r)?;
            Ok(s)
        })?;
        let token = if r.is_finished() {
            None
        } else {
            Some(r.tlv_bytes()?)
        };
        skip_rest(r)?;
        Ok((status, token))
    })?;
    r.finish(())?;
    if status > 1 {
        return Err(TspError::Rejected(status));
    }
    let token =
        token.ok_or_else(|| TspError::Malformed("a granted response without a token".into()))?;
    let tst = tst_info(token)?;
    parse_tst_info(tst)
}

/// The TSTInfo bytes inside a token (CMS ContentInfo, SignedData).
fn tst_info(token: &[u8]) -> Result<&[u8], TspError> {
    let mut r = fields(AnyRef::from_der(token)?)?;
    let kind: ObjectIdentifier = r.decode()?;
    if kind != SIGNED_DATA {
        return Err(TspError::Malformed(
            "the token is not CMS SignedData".into(),
        ));
    }
    let mut signed = fields(explicit0(&mut r)?)?;
    let _version: u8 = signed.decode()?;
    signed.decode::<AnyRef<'_>>()?; // digestAlgorithms
    let mut encap = fields(signed.decode()?)?;
    let content: ObjectIdentifier = encap.decode()?;
    if content != TST_INFO {
        return Err(TspError::Malformed(
            "the token does not hold a TSTInfo".into(),
        ));
    }
    let info: OctetStringRef<'_> = explicit0(&mut encap)?.decode_as()?;
    Ok(info.as_bytes())
}

fn parse_tst_info(bytes: &[u8]) -> Result<TokenInfo, TspError> {
    let mut r = SliceReader::new(bytes)?;
    let (algorithm, digest, time, nonce) = r.sequence(|r| {
        let _version: u8 = r.decode()?;
        let _policy: ObjectIdentifier = r.decode()?;
        let (algorithm, digest) = r.sequence(|r| {
            let algorithm: ObjectIdentifier = r.sequence(|r| {
                let oid = r.decode()?;
                skip_rest(r)?;
                Ok(oid)
            })?;
            let digest: OctetStringRef<'_> = r.decode()?;
            Ok((algorithm, digest.as_bytes()))
        })?;
        r.decode::<AnyRef<'_>>()?; // serialNumber
        let time = r.decode::<AnyRef<'_>>()?;
        let mut nonce = None;
        while !r.is_finished() {
            let field = r.decode::<AnyRef<'_>>()?;
            if field.tag() == Tag::Integer {
                nonce = Some(u64::from_der(&der::Encode::to_der(&field)?)?);
            }
        }
        Ok((algorithm, digest, time, nonce))
    })?;
    r.finish(())?;
    if algorithm != SHA256 {
        return Err(TspError::Mismatch("the imprint is not SHA-256".into()));
    }
    let digest: [u8; 32] = digest
        .try_into()
        .map_err(|_| TspError::Malformed("a SHA-256 imprint has 32 bytes".into()))?;
    if time.tag() != Tag::GeneralizedTime {
        return Err(TspError::Malformed(
            "genTime is not a GeneralizedTime".into(),
        ));
    }
    let gen_time = generalized_time(time.value())?;
    Ok(TokenInfo {
        gen_time,
        digest,
        nonce,
    })
}

/// `YYYYMMDDHHMMSS[.fraction]Z`, to the second.
fn generalized_time(v: &[u8]) -> Result<Timestamp, TspError> {
    let bad = || TspError::Malformed("genTime is not YYYYMMDDHHMMSS[.f]Z".into());
    let text = std::str::from_utf8(v).map_err(|_| bad())?;
    let text = text.strip_suffix('Z').ok_or_else(bad)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if whole.len() != 14
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &whole[..4],
        &whole[4..6],
        &whole[6..8],
        &whole[8..10],
        &whole[10..12],
        &whole[12..14]
    );
    rfc3339.parse().map_err(|_| bad())
}

/// Checks that a response answers a request for `digest` with `nonce`;
/// returns the token's content.
pub fn check_response(resp: &[u8], digest: &[u8; 32], nonce: u64) -> Result<TokenInfo, TspError> {
    let info = read_response(resp)?;
    if &info.digest != digest {
        return Err(TspError::Mismatch("its imprint is another digest".into()));
    }
    if info.nonce != Some(nonce) {
        return Err(TspError::Mismatch("its nonce is not the request's".into()));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_rfc3161_shape() {
        // SEQUENCE { version 1, messageImprint { sha256, 32 bytes }, nonce 1, certReq TRUE }
        let req = request(&[0xab; 32], 1);
        assert_eq!(req.len(), 62);
        assert_eq!(&req[..7], &[0x30, 0x3c, 0x02, 0x01, 0x01, 0x30, 0x31]);
        assert_eq!(&req[req.len() - 6..], &[0x02, 0x01, 0x01, 0x01, 0x01, 0xff]);
        assert_eq!(uint(0x80), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
    }

    #[test]
    fn an_openssl_reply_reads_back() {
        // `openssl ts -reply` (OpenSSL 3) for a SHA-256 imprint of 32 x 0xaa.
        let resp = include_bytes!("../tests/data/openssl-ts-reply.tsr");
        let info = read_response(resp).unwrap();
        assert_eq!(info.digest, [0xaa; 32]);
        assert_eq!(info.nonce, Some(0x156A_06E1_31AF_01AF));
        assert_eq!(info.gen_time.to_string(), "2026-12-01T16:42:39Z");
        assert!(check_response(resp, &[0xaa; 32], 0x156A_06E1_31AF_01AF).is_ok());
        assert!(matches!(
            check_response(resp, &[0xab; 32], 0x156A_06E1_31AF_01AF),
            Err(TspError::Mismatch(_))
        ));
        assert!(matches!(
            check_response(resp, &[0xaa; 32], 7),
            Err(TspError::Mismatch(_))
        ));
        // Every truncation is refused.
        for n in 0..resp.len() {
            assert!(read_response(&resp[..n]).is_err(), "{n}");
        }
    }

    #[test]
    fn hostile_responses_are_refused_not_trusted() {
        for bad in [
            &b""[..],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x03, 0x30, 0x01, 0x02],
            &[0x30, 0x80, 0x00, 0x00],
        ] {
            assert!(read_response(bad).is_err(), "{bad:?}");
        }
        // PKIStatus 2 (rejection).
        let rejected = tlv(0x30, &tlv(0x30, &uint(2)));
        assert_eq!(read_response(&rejected), Err(TspError::Rejected(2)));
        // Granted without a token.
        let empty = tlv(0x30, &tlv(0x30, &uint(0)));
        assert!(matches!(read_response(&empty), Err(TspError::Malformed(_))));
        assert!(read_response(&vec![0x30; MAX_RESPONSE + 1]).is_err());
        assert!(generalized_time(b"20261201163000Z").is_ok());
        assert!(generalized_time(b"20261201163000.123Z").is_ok());
        assert!(generalized_time(b"2026120116300Z").is_err());
    }
}
