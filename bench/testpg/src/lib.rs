//! A real PostgreSQL server for tests, never a mock.
//!
//! [`database`] gives each test a fresh, empty database and its `postgres://` URL. The
//! server is, in this order:
//!
//! - the one `$METERBENCH_TEST_POSTGRES` names (an admin URL that may create databases);
//! - else a throwaway cluster this test process starts once, from the distribution's
//!   server binaries (`/usr/lib/postgresql/*/bin`, Debian's `postgresql` package, which
//!   the test command installs when missing): `initdb` into a temporary folder, the
//!   server listening on a Unix socket in that folder only (no TCP port to collide
//!   with), fsync off. As root, both run as the `postgres` user.
//!
//! The server is stopped and its folder removed when the test process ends, however it
//! ends: a shell started beside it waits on a pipe from this process, and the pipe
//! closes when the process exits.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A fresh database on the test server: its URL, owned by the server's superuser.
pub fn database() -> String {
    let admin = admin_url();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "meterbench_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    );
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("test PostgreSQL at {admin}: {e}"));
    // One statement each: CREATE DATABASE cannot run inside a transaction block.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        client
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }
    with_database(&admin, &name)
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

fn admin_url() -> String {
    if let Ok(url) = std::env::var("METERBENCH_TEST_POSTGRES")
        && !url.is_empty()
    {
        return url;
    }
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start).url.clone()
}

struct Cluster {
    url: String,
    /// Kept open for the life of the process: its end stops the server.
    _lifeline: Mutex<ChildStdin>,
    _guard: Mutex<Child>,
}

fn server_bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin").join(name);
            bin.is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/{name}): install \
             Debian's `postgresql` package (the README's test command does), or name a \
             server with METERBENCH_TEST_POSTGRES=postgres://USER@HOST/DB"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The words that run `program` as the `postgres` user when this process is root (the
/// server refuses to run as root), else as it is.
fn as_server_user(program: &Path) -> Vec<String> {
    let mut words = Vec::new();
    if is_root() {
        words.extend(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                "--",
            ]
            .map(String::from),
        );
    }
    words.push(program.to_string_lossy().into_owned());
    words
}

fn command(words: &[String]) -> Command {
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]);
    c
}

impl Cluster {
    fn start() -> Cluster {
        let initdb = server_bin("initdb");
        let postgres = server_bin("postgres");
        let dir = tempfile::Builder::new()
            .prefix("meterbench-pg-")
            .tempdir()
            .expect("a temporary folder for the test cluster")
            .keep();
        let data = dir.join("data");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {} to the postgres user", dir.display());
        }
        let out = command(&as_server_user(&initdb))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("running initdb");
        assert!(
            out.status.success(),
            "initdb {}: {}{}",
            data.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The shell starts the server, then waits for our end of the pipe to close (this
        // process exited, or dropped it), stops the server and removes its folder.
        let mut server = as_server_user(&postgres);
        server.extend(["-D".into(), data.to_string_lossy().into_owned()]);
        server.extend(["-k".into(), dir.to_string_lossy().into_owned()]);
        server.extend(
            [
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ]
            .map(String::from),
        );
        let server_cmd: Vec<String> = server.iter().map(|w| sh_quote(w)).collect();
        let server_cmd = server_cmd.join(" ");
        let script = format!(
            "{server_cmd} >{log} 2>&1 & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf {dir}",
            log = sh_quote(&dir.join("server.log").to_string_lossy()),
            dir = sh_quote(&dir.to_string_lossy()),
        );
        let mut guard = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the test PostgreSQL server");
        let lifeline = guard.stdin.take().expect("the server's lifeline pipe");
        let url = format!(
            "postgres:///postgres?host={}&user=postgres",
            dir.to_string_lossy()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => {
                    let mut log = String::new();
                    let _ = std::fs::File::open(dir.join("server.log"))
                        .and_then(|mut f| f.read_to_string(&mut log));
                    panic!("test PostgreSQL did not start within 60 s: {e}\n{log}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        Cluster {
            url,
            _lifeline: Mutex::new(lifeline),
            _guard: Mutex::new(guard),
        }
    }
}

/// One word for `sh -c`.
fn sh_quote(w: &str) -> String {
    format!("'{}'", w.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_keep_host_and_options() {
        assert_eq!(
            with_database("postgres:///postgres?host=/tmp/x&user=postgres", "t1"),
            "postgres:///t1?host=/tmp/x&user=postgres"
        );
        assert_eq!(
            with_database("postgres://u:p@db:5433/admin", "t2"),
            "postgres://u:p@db:5433/t2"
        );
        assert_eq!(with_database("postgres://db", "t3"), "postgres://db/t3");
    }

    #[test]
    fn each_test_gets_an_empty_database_of_its_own() {
        let (a, b) = (database(), database());
        assert_ne!(a, b);
        let mut c = postgres::Client::connect(&a, postgres::NoTls).unwrap();
        c.batch_execute("CREATE TABLE t (x INTEGER)").unwrap();
        let mut d = postgres::Client::connect(&b, postgres::NoTls).unwrap();
        let n: i64 = d
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 't'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    }
}
