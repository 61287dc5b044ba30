//! Cross-site request forgery. A browser sends Basic credentials on its own,
//! so a page on another site could make it act for the user. Browsers mark
//! their requests (`Origin`, `Sec-Fetch-Site`); a page on another site cannot
//! set the `X-Vouch-CSRF` header. API clients (curl, scripts) send neither
//! mark and are not concerned.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What a request says about where it came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Marks<'a> {
    pub origin: Option<&'a str>,
    pub sec_fetch_site: Option<&'a str>,
    pub token: Option<&'a str>,
}

impl Marks<'_> {
    fn is_browser(&self) -> bool {
        self.origin.is_some() || self.sec_fetch_site.is_some()
    }
}

/// The token of one user in one organization.
pub fn token(key: &[u8], username: &str, org: &str) -> String {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(b"vouch-csrf\0");
    mac.update(username.as_bytes());
    mac.update(b"\0");
    mac.update(org.as_bytes());
    B64URL.encode(mac.finalize().into_bytes())
}

/// A state-changing request: a browser's must carry the page's token.
pub fn check_write(key: &[u8], m: &Marks<'_>, username: &str, org: &str) -> Result<(), String> {
    match m.token {
        Some(t) => {
            let expected = token(key, username, org);
            if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) {
                Ok(())
            } else {
                Err("the X-Vouch-CSRF token is not this page's".into())
            }
        }
        None if m.is_browser() => Err(
            "a browser request that changes state needs the Compliance page's X-Vouch-CSRF token"
                .into(),
        ),
        None => Ok(()),
    }
}

/// A read with credentials: a browser's must come from this site (or from the
/// user, typing the address), so that a page elsewhere cannot make a victim's
/// browser download packets and write audit entries in the victim's name.
pub fn check_read(m: &Marks<'_>) -> Result<(), String> {
    match m.sec_fetch_site {
        Some("cross-site") | Some("same-site") => {
            Err("a page on another site cannot read this with your credentials".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_writes_need_the_token() {
        let key = b"k";
        let good = token(key, "bob", "acme");
        let browser = Marks {
            origin: Some("https://evil.example"),
            ..Marks::default()
        };
        assert!(check_write(key, &browser, "bob", "acme").is_err());
        let with = Marks {
            token: Some(&good),
            ..browser
        };
        assert!(check_write(key, &with, "bob", "acme").is_ok());
        assert!(
            check_write(key, &with, "bob", "globex").is_err(),
            "per organization"
        );
        assert!(
            check_write(key, &Marks::default(), "bob", "acme").is_ok(),
            "API clients"
        );
    }

    #[test]
    fn cross_site_reads_are_refused() {
        for site in ["cross-site", "same-site"] {
            let m = Marks {
                sec_fetch_site: Some(site),
                ..Marks::default()
            };
            assert!(check_read(&m).is_err(), "{site}");
        }
        for site in [None, Some("same-origin"), Some("none")] {
            let m = Marks {
                sec_fetch_site: site,
                ..Marks::default()
            };
            assert!(check_read(&m).is_ok(), "{site:?}");
        }
    }
}
