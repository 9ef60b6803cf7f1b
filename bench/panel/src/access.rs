//! Who may use the panel. On a loopback address it is the person at the station's own
//! screen; on any other address the station must set a password (its SHA-256 in the
//! station file), and a browser that gave it holds a random session cookie. Requests
//! from another site (a page in the same browser posting to the bench) are refused by
//! their `Origin`, and a `Host` that is not the panel's (DNS rebinding) by theirs.

use meterbench_procedure::Station;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The cookie that carries a session after the password was given.
pub(crate) const COOKIE: &str = "meterbench_panel";

/// How long a login lasts unused (a shift at a line): every request of the browser that
/// holds it renews it, so a page in use, or a run it watches, never loses it midway. The
/// page then asks for the password again.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Wrong passwords allowed from one address within [`ATTEMPT_WINDOW`] before every login
/// from it (the right password too) is refused until the window has passed: guessing over
/// the network takes years, an operator who mistypes waits a minute, and a machine that
/// guesses holds off only itself.
const ATTEMPTS: usize = 5;
const ATTEMPT_WINDOW: Duration = Duration::from_secs(60);

pub(crate) enum Access {
    /// Loopback, no password set: anyone at this machine.
    Open,
    /// The password's SHA-256 (hex), the sessions that gave it (token → last used), and
    /// when the last wrong passwords were given, by the address they came from.
    Password {
        sha256: String,
        sessions: Mutex<HashMap<String, Instant>>,
        failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
    },
}

/// Why a login was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum LoginRefused {
    WrongPassword,
    /// Too many wrong passwords lately: the seconds until another try is taken.
    TooManyAttempts {
        retry_after_s: u64,
    },
}

/// SHA-256 of a password, lower-case hex: what a station's `panel.password_sha256` holds.
pub fn hash_password(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

impl Access {
    pub fn for_station(station: &Station, listen: SocketAddr) -> anyhow::Result<Access> {
        match &station.panel_password_sha256 {
            Some(h) => Ok(Access::password(h.clone())),
            None if listen.ip().is_loopback() => Ok(Access::Open),
            None => anyhow::bail!(
                "the panel listens on {listen}, which other machines can reach, and station `{}` ({}) sets no panel password: add `panel: {{password_sha256: …}}` to it (`meterbench panel --hash-password` prints the hash), or listen on 127.0.0.1",
                station.id,
                station.file.path.display()
            ),
        }
    }

    /// Access by the password whose SHA-256 (hex) is `sha256`.
    pub fn password(sha256: String) -> Access {
        Access::Password {
            sha256,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn needs_login(&self) -> bool {
        matches!(self, Access::Password { .. })
    }

    /// A new session cookie for the right password given from `client`.
    pub fn login(&self, password: &str, client: IpAddr) -> Result<String, LoginRefused> {
        self.login_at(password, client, Instant::now())
    }

    fn login_at(
        &self,
        password: &str,
        client: IpAddr,
        now: Instant,
    ) -> Result<String, LoginRefused> {
        let Access::Password {
            sha256,
            sessions,
            failures,
        } = self
        else {
            return Ok(String::new());
        };
        {
            let mut failures = failures.lock().unwrap_or_else(|p| p.into_inner());
            // Failures older than the window go, and with them addresses that stopped.
            failures.retain(|_, times| {
                times.retain(|t| now.duration_since(*t) < ATTEMPT_WINDOW);
                !times.is_empty()
            });
            let mine = failures.entry(client).or_default();
            if mine.len() >= ATTEMPTS {
                let wait = ATTEMPT_WINDOW.saturating_sub(now.duration_since(mine[0]));
                return Err(LoginRefused::TooManyAttempts {
                    retry_after_s: wait.as_secs_f64().ceil() as u64,
                });
            }
            if !same(hash_password(password).as_bytes(), sha256.as_bytes()) {
                mine.push_back(now);
                return Err(LoginRefused::WrongPassword);
            }
            if mine.is_empty() {
                failures.remove(&client);
            }
        }
        let mut bytes = [0u8; 32];
        // The system's random source is there on every machine the bench runs on; a
        // failure is refused as a wrong password rather than a guessable token.
        getrandom::fill(&mut bytes).map_err(|_| LoginRefused::WrongPassword)?;
        let token = hex::encode(bytes);
        let mut sessions = sessions.lock().unwrap_or_else(|p| p.into_inner());
        // Expired logins go when a new one comes: the map holds a shift's logins at most.
        sessions.retain(|_, at| now.duration_since(*at) < SESSION_LIFETIME);
        sessions.insert(token.clone(), now);
        Ok(token)
    }

    /// Whether a request with these cookies may use the panel (and if so, its login is
    /// renewed).
    pub fn allows(&self, cookie_header: Option<&str>) -> bool {
        self.allows_at(cookie_header, Instant::now(), Use::Renew)
    }

    /// Whether the login of these cookies still holds, without renewing it: an open event
    /// stream asks this, and watching is not using (a page left open ends its login after
    /// [`SESSION_LIFETIME`] like any other).
    pub fn still_allows(&self, cookie_header: Option<&str>) -> bool {
        self.allows_at(cookie_header, Instant::now(), Use::Watch)
    }

    fn allows_at(&self, cookie_header: Option<&str>, now: Instant, how: Use) -> bool {
        match self {
            Access::Open => true,
            Access::Password { sessions, .. } => {
                let Some(token) = cookie_header.and_then(|h| cookie(h, COOKIE)) else {
                    return false;
                };
                let mut sessions = sessions.lock().unwrap_or_else(|p| p.into_inner());
                match sessions.get_mut(token) {
                    Some(used) if now.duration_since(*used) < SESSION_LIFETIME => {
                        if how == Use::Renew {
                            *used = now;
                        }
                        true
                    }
                    _ => false,
                }
            }
        }
    }

    /// End the login of these cookies (the operator logs out): every request with them is
    /// refused from now on, and the event streams they opened end.
    pub fn logout(&self, cookie_header: Option<&str>) {
        if let (Access::Password { sessions, .. }, Some(token)) =
            (self, cookie_header.and_then(|h| cookie(h, COOKIE)))
        {
            sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(token);
        }
    }
}

/// Whether a check of a login is a use of it (which renews it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Renew,
    Watch,
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
        let access = Access::password(hash_password("correct horse"));
        let here = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(
            access.login("wrong", here),
            Err(LoginRefused::WrongPassword)
        );
        let token = access.login("correct horse", here).unwrap();
        assert_eq!(token.len(), 64);
        assert!(access.allows(Some(&format!("a=b; {COOKIE}={token}"))));
        assert!(!access.allows(Some(&format!("{COOKIE}=00{}", &token[2..]))));
        assert!(!access.allows(None));
        assert!(Access::Open.allows(None));
    }

    #[test]
    fn watching_the_stream_does_not_renew_a_login_and_a_logout_ends_it() {
        let access = Access::password(hash_password("pw"));
        let t0 = Instant::now();
        let hours = |h: u64| Duration::from_secs(h * 3600);
        let header = format!("{COOKIE}={}", access.login_at("pw", HERE, t0).unwrap());
        // A stream checked every few seconds for 11 hours keeps the login alive no longer
        // than 12 hours after its last use.
        assert!(access.allows_at(Some(&header), t0 + hours(11), Use::Watch));
        assert!(!access.allows_at(Some(&header), t0 + hours(12), Use::Watch));
        // A logout ends a login at once, and only that one.
        let mine = format!("{COOKIE}={}", access.login("pw", HERE).unwrap());
        let other = format!("{COOKIE}={}", access.login("pw", HERE).unwrap());
        access.logout(Some(&mine));
        assert!(!access.still_allows(Some(&mine)));
        assert!(!access.allows(Some(&mine)));
        assert!(access.still_allows(Some(&other)));
        // Logging out without a login, or with no password set, changes nothing.
        access.logout(None);
        Access::Open.logout(Some(&other));
        assert!(access.allows(Some(&other)));
        assert!(Access::Open.still_allows(None));
    }

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 0, 7));

    #[test]
    fn a_login_lasts_a_shift_unused_and_every_use_renews_it() {
        let access = Access::password(hash_password("pw"));
        let t0 = Instant::now();
        let token = access.login_at("pw", HERE, t0).unwrap();
        let header = format!("{COOKIE}={token}");
        let hours = |h: u64| Duration::from_secs(h * 3600);
        // Used after 11 hours, and again 11 hours later: 22 hours after the login.
        assert!(access.allows_at(Some(&header), t0 + hours(11), Use::Renew));
        assert!(access.allows_at(Some(&header), t0 + hours(22), Use::Renew));
        // Then 12 hours unused: gone.
        assert!(!access.allows_at(Some(&header), t0 + hours(34), Use::Renew));
        // A later login clears the expired one out.
        access.login_at("pw", HERE, t0 + hours(34)).unwrap();
        let Access::Password { sessions, .. } = &access else {
            unreachable!()
        };
        assert!(!sessions.lock().unwrap().contains_key(&token));
    }

    #[test]
    fn five_wrong_passwords_in_a_minute_hold_their_address_off_until_it_has_passed() {
        let access = Access::password(hash_password("pw"));
        let t0 = Instant::now();
        for k in 0..5 {
            let at = t0 + Duration::from_secs(k * 10);
            assert_eq!(
                access.login_at("guess", THERE, at),
                Err(LoginRefused::WrongPassword)
            );
        }
        // The right password too from there, until a minute after the first wrong one.
        let at = t0 + Duration::from_secs(45);
        assert_eq!(
            access.login_at("pw", THERE, at),
            Err(LoginRefused::TooManyAttempts { retry_after_s: 15 })
        );
        assert_eq!(
            access.login_at("pw", THERE, at + Duration::from_millis(500)),
            Err(LoginRefused::TooManyAttempts { retry_after_s: 15 })
        );
        // Another address (the station's own screen) is not held off.
        assert!(access.login_at("pw", HERE, at).is_ok());
        // Then one more try is taken: the oldest failure has left the window.
        assert!(
            access
                .login_at("pw", THERE, t0 + Duration::from_secs(60))
                .is_ok()
        );
        // Four wrong ones in the window still leave room for the operator.
        let access = Access::password(hash_password("pw"));
        for k in 0..4 {
            let _ = access.login_at("guess", HERE, t0 + Duration::from_secs(k));
        }
        assert!(
            access
                .login_at("pw", HERE, t0 + Duration::from_secs(5))
                .is_ok()
        );
        // Addresses that stopped guessing are forgotten once their window has passed.
        let _ = access.login_at("guess", THERE, t0 + Duration::from_secs(10));
        let _ = access.login_at("pw", HERE, t0 + Duration::from_secs(200));
        let Access::Password { failures, .. } = &access else {
            unreachable!()
        };
        assert!(failures.lock().unwrap().is_empty());
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
