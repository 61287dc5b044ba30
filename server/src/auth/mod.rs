//! Who is calling: HTTP Basic credentials and passwords (argon2), the admin
//! bearer token, roles, the failure throttle and the dashboard's CSRF token.
//!
//! Nothing here touches the database or HTTP types: the service layer
//! (`service::access`) puts these pieces together. Secrets are never
//! logged: the types holding them do not print them, and usernames reach the
//! log only through [`loggable`].

pub mod cache;
pub mod csrf;
pub mod password;
pub mod throttle;

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// A role within an organization, weakest first. `Auditor` is no
/// membership: an outside auditor's standing through a grant
/// (`service::grants`), below every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Auditor,
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
            Role::Auditor => "auditor",
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

/// The longest username or password read from a Basic header; longer ones
/// are refused before any lookup or hashing.
pub const MAX_CREDENTIAL: usize = 1024;

/// Parses `Authorization: Basic base64(user:password)`; `None` for anything else.
pub fn parse_basic(header: &str) -> Option<Credentials> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 4 * MAX_CREDENTIAL {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    if user.is_empty() || user.len() > MAX_CREDENTIAL || pass.len() > MAX_CREDENTIAL {
        return None;
    }
    Some(Credentials {
        username: user.to_owned(),
        password: Secret(pass.to_owned()),
    })
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

/// A client-supplied name as it may appear in a log line: at most 64
/// characters, every control, format (bidirectional, zero-width) and non-ASCII
/// character escaped, so that it can neither forge a log line nor move the
/// terminal's cursor.
pub fn loggable(name: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if i == MAX {
            out.push_str("...");
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_unicode());
        }
    }
    out
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
        let long = B64.encode(format!("{}:x", "a".repeat(MAX_CREDENTIAL + 1)));
        assert!(parse_basic(&format!("Basic {long}")).is_none(), "too long");
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert_eq!(parse_bearer("Bearer  t0k "), Some("t0k"));
    }

    #[test]
    fn names_are_logged_escaped_and_truncated() {
        assert_eq!(loggable("alice"), "alice");
        let forged = loggable("x\n{\"level\":\"INFO\"}\u{1b}[2J\u{202e}");
        assert!(
            !forged.contains('\n') && !forged.contains('\u{1b}') && !forged.contains('\u{202e}')
        );
        assert!(
            forged.contains("\\u{a}") && forged.contains("\\u{1b}") && forged.contains("\\u{202e}")
        );
        assert_eq!(loggable(&"p".repeat(500)).len(), 64 + 3);
    }
}
