//! Who may use the panel. On a loopback address it is the person at the station's own
//! screen; on any other address the station must set a password (its SHA-256 in the
//! station file), and a browser that gave it holds a random session cookie. Requests
//! from another site (a page in the same browser posting to the bench) are refused by
//! their `Origin`, and a `Host` that is not the panel's (DNS rebinding) by theirs.

use meterbench_procedure::Station;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The cookie that carries a session after the password was given.
pub(crate) const COOKIE: &str = "meterbench_panel";

pub(crate) enum Access {
    /// Loopback, no password set: anyone at this machine.
    Open,
    /// The password's SHA-256 (hex), and the sessions that gave it.
    Password {
        sha256: String,
        sessions: Mutex<HashSet<String>>,
    },
}

/// SHA-256 of a password, lower-case hex: what a station's `panel.password_sha256` holds.
pub fn hash_password(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

impl Access {
    pub fn for_station(station: &Station, listen: SocketAddr) -> anyhow::Result<Access> {
        match &station.panel_password_sha256 {
            Some(h) => Ok(Access::Password {
                sha256: h.clone(),
                sessions: Mutex::new(HashSet::new()),
            }),
            None if listen.ip().is_loopback() => Ok(Access::Open),
            None => anyhow::bail!(
                "the panel listens on {listen}, which other machines can reach, and station `{}` ({}) sets no panel password: add `panel: {{password_sha256: …}}` to it (`meterbench panel --hash-password` prints the hash), or listen on 127.0.0.1",
                station.id,
                station.file.path.display()
            ),
        }
    }

    pub fn needs_login(&self) -> bool {
        matches!(self, Access::Password { .. })
    }

    /// A new session cookie for the right password; `None` for a wrong one.
    pub fn login(&self, password: &str) -> Option<String> {
        match self {
            Access::Open => Some(String::new()),
            Access::Password { sha256, sessions } => {
                if !same(hash_password(password).as_bytes(), sha256.as_bytes()) {
                    return None;
                }
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).ok()?;
                let token = hex::encode(bytes);
                sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(token.clone());
                Some(token)
            }
        }
    }

    /// Whether a request with these cookies may use the panel.
    pub fn allows(&self, cookie_header: Option<&str>) -> bool {
        match self {
            Access::Open => true,
            Access::Password { sessions, .. } => {
                let Some(token) = cookie_header.and_then(|h| cookie(h, COOKIE)) else {
                    return false;
                };
                sessions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(token)
            }
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Whether a request's `Host` names this panel: its listening address, or `localhost`
/// on its port when it listens on loopback. Another name is a page that rebound its
/// own host name to this address.
pub(crate) fn host_is_ours(host: Option<&str>, listen: SocketAddr) -> bool {
    let Some(host) = host else {
        // HTTP/1.0 without Host: only a tool at this machine sends that.
        return true;
    };
    let port = listen.port();
    let ours = [
        listen.to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ];
    if ours.iter().any(|o| o.eq_ignore_ascii_case(host)) {
        return true;
    }
    // Listening on every address: any name of this machine on the port, since the
    // password guards it.
    listen.ip().is_unspecified()
        && host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p == port.to_string())
}

/// Whether an `Origin` (sent with every POST from a page) is this panel's own page.
pub(crate) fn origin_is_ours(origin: Option<&str>, host: Option<&str>) -> bool {
    match (origin, host) {
        (None, _) => true,
        (Some(o), Some(h)) => o
            .strip_prefix("http://")
            .is_some_and(|rest| rest.eq_ignore_ascii_case(h)),
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_gives_a_cookie_that_is_then_accepted() {
        let access = Access::Password {
            sha256: hash_password("correct horse"),
            sessions: Mutex::new(HashSet::new()),
        };
        assert!(access.login("wrong").is_none());
        let token = access.login("correct horse").unwrap();
        assert_eq!(token.len(), 64);
        assert!(access.allows(Some(&format!("a=b; {COOKIE}={token}"))));
        assert!(!access.allows(Some(&format!("{COOKIE}=00{}", &token[2..]))));
        assert!(!access.allows(None));
        assert!(Access::Open.allows(None));
    }

    #[test]
    fn the_hash_is_sha256_hex() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash_password("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hosts_and_origins_of_other_sites_are_refused() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(host_is_ours(Some("127.0.0.1:8080"), listen));
        assert!(host_is_ours(Some("localhost:8080"), listen));
        assert!(!host_is_ours(Some("evil.example:8080"), listen));
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(host_is_ours(Some("bench-7.lab:8080"), any));
        assert!(origin_is_ours(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        ));
        assert!(!origin_is_ours(
            Some("http://evil.example"),
            Some("127.0.0.1:8080")
        ));
        assert!(origin_is_ours(None, Some("127.0.0.1:8080")));
    }
}
