//! RFC 3161 timestamps of packet signatures, from the time-stamping
//! authority at `VOUCH_TSA_URL`.
//!
//! After signing, the server asks the authority to timestamp the SHA-256 of
//! the packet's 64 signature bytes (with a fresh nonce), checks that the
//! response is granted and answers that request, and stores the response
//! with the packet (`GET …/{reportId}/timestamp`). An authority that does not
//! answer, or answers something else, fails the generation: with a TSA
//! configured, no packet is stored without its timestamp.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use vouch_engine::tsp::{self, TokenInfo};

/// The authority and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Tsa {
    url: String,
    agent: ureq::Agent,
}

/// The digest an authority is asked to timestamp: SHA-256 of the raw
/// signature bytes (the base64 `signature.value`, decoded).
pub fn imprint(signature: &[u8]) -> [u8; 32] {
    Sha256::digest(signature).into()
}

impl Tsa {
    pub fn new(url: &str) -> Result<Tsa> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("VOUCH_TSA_URL must be an http:// or https:// URL");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        Ok(Tsa {
            url: url.to_owned(),
            agent,
        })
    }

    /// Timestamps `signature` (blocking: call it off the async workers); the
    /// authority's DER response and what its token says.
    pub fn stamp(&self, signature: &[u8]) -> Result<(Vec<u8>, TokenInfo)> {
        let digest = imprint(signature);
        let nonce = rand_core::RngCore::next_u64(&mut rand_core::OsRng) >> 1;
        let mut resp = self
            .agent
            .post(&self.url)
            .header("content-type", "application/timestamp-query")
            .send(&tsp::request(&digest, nonce)[..])
            .context("the time-stamping authority did not answer")?;
        let body = resp
            .body_mut()
            .with_config()
            .limit(tsp::MAX_RESPONSE as u64)
            .read_to_vec()
            .context("cannot read the time-stamping authority's answer")?;
        let info = tsp::check_response(&body, &digest, nonce)
            .context("the time-stamping authority's answer is not a timestamp of this signature")?;
        Ok((body, info))
    }
}
