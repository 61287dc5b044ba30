//! Password hashes: argon2id PHC strings, with a ceiling on their cost.
//!
//! An imported hash chooses its own argon2 parameters; a hash with m = 1 GiB
//! would make every login of that user cost seconds and a gigabyte, and tell
//! such users apart by timing. Hashes above [`MAX_MEMORY_KIB`],
//! [`MAX_ITERATIONS`] or [`MAX_PARALLELISM`] are refused at import and never
//! verified; a hash with any parameters other than this server's is replaced
//! at the user's next successful login ([`needs_rehash`]).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

/// The most memory a stored hash may ask of one verification (64 MiB).
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// The most passes a stored hash may ask for.
pub const MAX_ITERATIONS: u32 = 8;
/// The most lanes a stored hash may ask for.
pub const MAX_PARALLELISM: u32 = 4;

/// Hashes a password as an argon2id PHC string with this server's parameters
/// (the argon2 crate's defaults: m = 19 MiB, t = 2, p = 1).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
}

/// Why a stored hash cannot be used, or `Ok` with its parameters.
fn params_of(hash: &PasswordHash<'_>) -> Result<Params, String> {
    if !hash.algorithm.as_str().starts_with("argon2") {
        return Err("not an argon2 PHC string ($argon2id$...)".into());
    }
    let p = Params::try_from(hash).map_err(|e| format!("argon2 parameters: {e}"))?;
    if p.m_cost() > MAX_MEMORY_KIB || p.t_cost() > MAX_ITERATIONS || p.p_cost() > MAX_PARALLELISM {
        return Err(format!(
            "argon2 parameters m={} t={} p={} exceed this server's ceiling m={MAX_MEMORY_KIB} t={MAX_ITERATIONS} p={MAX_PARALLELISM}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        ));
    }
    Ok(p)
}

/// Whether `hash` is an argon2 PHC string within the cost ceiling; the reason when not.
pub fn check_hash(hash: &str) -> Result<(), String> {
    let parsed = PasswordHash::new(hash)
        .map_err(|_| "not an argon2 PHC string ($argon2id$...)".to_owned())?;
    params_of(&parsed).map(|_| ())
}

/// Verifies `password` against a stored PHC hash. A hash above the cost
/// ceiling never verifies (and costs nothing).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    if params_of(&parsed).is_err() {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Whether a hash that just verified should be replaced by one with this
/// server's algorithm and parameters.
pub fn needs_rehash(hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return true;
    };
    let ours = Params::default();
    match params_of(&parsed) {
        Ok(p) => {
            parsed.algorithm.as_str() != Algorithm::Argon2id.ident().as_str()
                || p.m_cost() != ours.m_cost()
                || p.t_cost() != ours.t_cost()
                || p.p_cost() != ours.p_cost()
        }
        Err(_) => true,
    }
}

/// A hash of a random password: unknown users are verified against it, so they
/// cost what a wrong password costs.
pub fn decoy_hash() -> anyhow::Result<String> {
    let mut random = [0u8; 24];
    argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut random);
    hash_password(&B64.encode(random))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_with(m: u32, t: u32, p: u32) -> String {
        let params = Params::new(m, t, p, None).unwrap();
        Argon2::new(Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"pw", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    #[test]
    fn passwords_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(check_hash(&h).is_ok());
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(!needs_rehash(&h));
    }

    #[test]
    fn costly_hashes_are_refused_and_never_verified() {
        // A PHC string asking for 1 GiB: refused without being computed.
        let huge = "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let why = check_hash(huge).unwrap_err();
        assert!(why.contains("m=1048576"), "{why}");
        let started = std::time::Instant::now();
        assert!(!verify_password("pw", huge));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        assert!(check_hash("$argon2id$v=19$m=1024,t=99,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").is_err());
    }

    #[test]
    fn cheaper_or_other_hashes_are_replaced_at_login() {
        let cheap = hash_with(1024, 1, 1);
        assert!(check_hash(&cheap).is_ok());
        assert!(verify_password("pw", &cheap));
        assert!(needs_rehash(&cheap));
    }
}
