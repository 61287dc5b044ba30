//! Passwords (argon2), HTTP Basic credentials and the admin bearer token.
//!
//! An unknown user costs the same argon2 verification as a wrong password, so
//! response times do not reveal which users exist. Secrets are never logged:
//! the types holding them do not print them.

use std::fmt;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// A role within an organization, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

/// A password as received; its Debug output is redacted.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Basic credentials from an `Authorization` header.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Parses `Authorization: Basic base64(user:password)`; `None` for anything else.
pub fn parse_basic(header: &str) -> Option<Credentials> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some(Credentials {
        username: user.to_owned(),
        password: Secret(pass.to_owned()),
    })
}

/// Hashes a password as an argon2id PHC string.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Whether `hash` is a PHC string argon2 can verify against.
pub fn is_valid_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| h.algorithm.as_str().starts_with("argon2"))
}

/// Verifies `password` against a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password: unknown users are verified against it, so they
/// cost what a wrong password costs.
pub fn decoy_hash() -> anyhow::Result<String> {
    let mut random = [0u8; 24];
    argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
    hash_password(&B64.encode(random))
}

/// Compares a presented bearer token with the configured one in constant time.
pub fn token_matches(presented: &str, expected: &str) -> bool {
    let a = presented.as_bytes();
    let b = expected.as_bytes();
    // Length is not secret for a token of fixed configuration; the content is.
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Parses `Authorization: Bearer TOKEN`.
pub fn parse_bearer(header: &str) -> Option<&str> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

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
    fn basic_credentials() {
        let c = parse_basic("Basic YWxpY2U6ZGVtbw==").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password.0, "demo");
        assert_eq!(
            format!("{c:?}"),
            "Credentials { username: \"alice\", password: Secret(***) }"
        );
        assert!(parse_basic("Bearer x").is_none());
        assert!(parse_basic("Basic !!!").is_none());
        assert!(parse_basic("Basic OmRlbW8=").is_none(), "empty user");
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(is_valid_hash(&h));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

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

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert_eq!(parse_bearer("Bearer  t0k "), Some("t0k"));
    }
}
