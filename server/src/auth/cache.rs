//! The credential cache: Basic credentials verified in the last minute.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use subtle::ConstantTimeEq;

/// Credentials verified in the last minute, so that a client sending Basic
/// credentials with every request does not pay argon2 every time.
///
/// Holds no password: an HMAC of it under a key that exists only in this
/// process's memory, next to the stored hash it was verified against (a
/// password change invalidates the entry). Only correct credentials are ever
/// cached, so a wrong password or an unknown user still costs a full argon2
/// verification.
pub struct VerifiedCache {
    key: [u8; 32],
    entries: std::sync::Mutex<std::collections::HashMap<String, CachedCredential>>,
}

struct CachedCredential {
    digest: [u8; 32],
    stored_hash: String,
    until: std::time::Instant,
}

impl fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifiedCache")
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        Self::new()
    }
}

impl VerifiedCache {
    const TTL: std::time::Duration = std::time::Duration::from_secs(60);
    const MAX: usize = 10_000;

    pub fn new() -> Self {
        let mut key = [0u8; 32];
        argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut key);
        VerifiedCache {
            key,
            entries: Default::default(),
        }
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = match <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => return [0u8; 32],
        };
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn contains(&self, username: &str, password: &str, stored_hash: &str) -> bool {
        let digest = self.digest(username, password);
        let Ok(entries) = self.entries.lock() else {
            return false;
        };
        entries.get(username).is_some_and(|e| {
            e.until > std::time::Instant::now()
                && e.stored_hash == stored_hash
                && bool::from(e.digest.ct_eq(&digest))
        })
    }

    pub fn insert(&self, username: &str, password: &str, stored_hash: &str) {
        let digest = self.digest(username, password);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(
            username.to_owned(),
            CachedCredential {
                digest,
                stored_hash: stored_hash.to_owned(),
                until: std::time::Instant::now() + Self::TTL,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_knows_only_verified_credentials() {
        let c = VerifiedCache::new();
        assert!(!c.contains("alice", "demo", "h1"));
        c.insert("alice", "demo", "h1");
        assert!(c.contains("alice", "demo", "h1"));
        assert!(!c.contains("alice", "wrong", "h1"));
        assert!(
            !c.contains("alice", "demo", "h2"),
            "a changed password hash invalidates"
        );
        assert!(!c.contains("bob", "demo", "h1"));
    }
}
