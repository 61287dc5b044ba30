//! C2SP signed notes and checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).
//!
//! A checkpoint is the text
//!
//! ```text
//! <origin>
//! <tree size>
//! <root hash, base64>
//! ```
//!
//! followed by a blank line and one signature line per signer,
//! `— <key name> <base64(key id ‖ Ed25519 signature)>`. The signature covers
//! the text up to and including its last newline. The key id is the first
//! four bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key), and a verifier
//! key is shared as `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// What a note may weigh; a checkpoint is under 200 bytes.
pub const MAX_NOTE: usize = 64 * 1024;
/// Signature lines a note may carry (Go's `note.Open` limit).
const MAX_SIGNATURES: usize = 100;
const DASH: &str = "\u{2014} ";

/// Why a note or a verifier key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("the note has no signature by `{0}` with this key")]
    NotSigned(String),
    #[error("the signature by `{0}` on the note does not verify")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(String),
    #[error("the checkpoint is for log `{got}`, not `{want}`")]
    WrongOrigin { want: String, got: String },
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A note signer: a key name (the log's origin) and an Ed25519 key.
#[derive(Debug, Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    pub fn new(name: &str, key: SigningKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadVerifierKey(format!(
                "key name `{}` must be non-empty, without spaces or `+`",
                name.escape_debug()
            )));
        }
        Ok(NoteSigner {
            name: name.to_owned(),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> NoteVerifier {
        let key = self.key.verifying_key();
        NoteVerifier {
            id: key_id(&self.name, &key),
            name: self.name.clone(),
            key,
        }
    }

    /// `text` (which must end in a newline) signed: the text, a blank
    /// line, the signature line.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n') && !text.contains("\n\n"));
        let sig: Signature = self.key.sign(text.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&key_id(&self.name, &self.key.verifying_key()));
        blob.extend_from_slice(&sig.to_bytes());
        format!("{text}\n{DASH}{} {}\n", self.name, B64.encode(blob))
    }
}

/// A note verifier: the public half of a [`NoteSigner`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadVerifierKey(format!(
                "bad key name `{}`",
                name.escape_debug()
            )));
        }
        Ok(NoteVerifier {
            id: key_id(name, &key),
            name: name.to_owned(),
            key,
        })
    }

    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Parses `<name>+<hex key id>+<base64(0x01 ‖ key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_owned());
        let vkey = vkey.trim();
        // A name holds no `+`; base64 may.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected NAME+KEYID+KEY"));
        };
        let raw = B64.decode(key).map_err(|_| bad("the key is not base64"))?;
        let (&[ED25519], key) = raw.split_at(1.min(raw.len())) else {
            return Err(bad("not an Ed25519 key (type byte 0x01)"));
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let v = NoteVerifier::new(name, key)?;
        if id.len() != 8 || hex4(&v.id) != id {
            return Err(bad("the key id does not match the name and key"));
        }
        Ok(v)
    }

    /// The shareable text form.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex4(&self.id), B64.encode(raw))
    }

    /// The signed text of `note`, once this key's signature on it verifies.
    /// Signatures by other keys are ignored, as the specification asks.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_owned());
        if note.len() > MAX_NOTE {
            return Err(bad("larger than 64 KiB"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(bad("the text holds a control character"));
        }
        if !sigs.ends_with('\n') {
            return Err(bad("the signatures do not end with a newline"));
        }
        let lines: Vec<&str> = sigs[..sigs.len() - 1].split('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(bad("more than 100 signatures"));
        }
        for line in lines {
            let rest = line
                .strip_prefix(DASH)
                .ok_or_else(|| bad("a signature line does not start with `— `"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| bad("a signature line has no signature"))?;
            let blob = B64
                .decode(blob)
                .map_err(|_| bad("a signature is not base64"))?;
            if blob.len() < 5 || !valid_name(name) {
                return Err(bad("a signature line is malformed"));
            }
            if name != self.name || blob[..4] != self.id {
                continue;
            }
            let sig: [u8; 64] = blob[4..]
                .try_into()
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            return self
                .key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
                .map(|()| text)
                .map_err(|_| NoteError::BadSignature(self.name.clone()));
        }
        Err(NoteError::NotSigned(self.name.clone()))
    }
}

fn hex4(id: &[u8; 4]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// A log's signed statement of its size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint text (unsigned).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// The signed note.
    pub fn sign(&self, signer: &NoteSigner) -> String {
        signer.sign(&self.text())
    }

    /// Opens a signed checkpoint of the log `verifier` names (its origin is
    /// the key name).
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
        let text = verifier.open(note)?;
        let bad = |why: &str| NoteError::BadCheckpoint(why.to_owned());
        let mut lines = text.lines();
        let origin = lines.next().ok_or_else(|| bad("no origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad("the tree size is not a decimal number"));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("the tree size is too large"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("the root hash is not 32 bytes of base64"))?;
        if origin != verifier.name {
            return Err(NoteError::WrongOrigin {
                want: verifier.name.clone(),
                got: origin.to_owned(),
            });
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("vouch.example/log", SigningKey::from_bytes(&[7; 32])).unwrap()
    }

    #[test]
    fn a_checkpoint_signs_and_opens_and_its_vkey_round_trips() {
        let s = signer();
        let cp = Checkpoint {
            origin: s.name().into(),
            size: 42,
            root: [9; 32],
        };
        let note = cp.sign(&s);
        assert!(note.starts_with("vouch.example/log\n42\nCQkJ"));
        assert!(note.contains("\n\n\u{2014} vouch.example/log "));
        let v = NoteVerifier::parse(&s.verifier().to_vkey()).unwrap();
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), cp);
    }

    #[test]
    fn a_changed_text_another_key_or_a_bad_vkey_is_refused() {
        let s = signer();
        let note = Checkpoint {
            origin: s.name().into(),
            size: 42,
            root: [9; 32],
        }
        .sign(&s);
        let v = s.verifier();
        let tampered = note.replacen("\n42\n", "\n43\n", 1);
        assert_eq!(
            Checkpoint::open(&tampered, &v),
            Err(NoteError::BadSignature(s.name().into()))
        );
        let other = NoteSigner::new("vouch.example/log", SigningKey::from_bytes(&[8; 32])).unwrap();
        assert_eq!(
            Checkpoint::open(&note, &other.verifier()),
            Err(NoteError::NotSigned(s.name().into()))
        );
        let vkey = v.to_vkey();
        let mut parts: Vec<&str> = vkey.split('+').collect();
        parts[1] = "00000000";
        assert!(NoteVerifier::parse(&parts.join("+")).is_err());
        assert!(NoteVerifier::parse("name+00000000+AQ==").is_err());
        assert!(NoteVerifier::parse("no plus signs").is_err());
        assert!(NoteVerifier::parse(&vkey.replace("vouch.example/log", "other/log")).is_err());
        // Base64 with `+` in it.
        let plus = (0u8..=255)
            .map(|b| {
                NoteSigner::new("a/log", SigningKey::from_bytes(&[b; 32]))
                    .unwrap()
                    .verifier()
            })
            .find(|v| v.to_vkey().matches('+').count() > 2)
            .unwrap();
        assert_eq!(NoteVerifier::parse(&plus.to_vkey()).unwrap(), plus);
        // A second, unknown signature is ignored.
        let cosigned = format!("{note}\u{2014} witness.example AAAAAAAA\n");
        assert!(Checkpoint::open(&cosigned, &v).is_ok());
        assert!(Checkpoint::open("vouch.example/log\n1\n", &v).is_err());
        assert!(Checkpoint::open(&note.replacen("\n42\n", "\n042\n", 1), &v).is_err());
    }
}
