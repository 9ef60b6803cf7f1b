use clap::Args;
use meterbench_session::paths::{default_key_path, public_key_path};
use meterbench_signing::{load_verifying_key, verify_bundle, verify_issuance_log};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A certificate bundle folder (reports/<run>/) to check: every file's SHA-256 and the
    /// Ed25519 signature of its manifest.
    #[arg(required_unless_present = "log")]
    pub bundle: Option<PathBuf>,
    /// Check an issuance log instead: the hash chain, order, dates and signatures.
    #[arg(long, value_name = "LOG")]
    pub log: Option<PathBuf>,
    /// Trusted public key (PEM). A bundle without it is checked against the key it carries
    /// (then compare the printed key id with the published one). Required for --log;
    /// defaults to the bench's own public key there.
    #[arg(long)]
    pub key: Option<PathBuf>,
}

pub fn main(args: VerifyArgs) -> i32 {
    let trusted = match args.key.clone().or_else(|| {
        args.log
            .as_ref()
            .map(|_| public_key_path(&default_key_path()))
    }) {
        Some(p) => match load_verifying_key(&p) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return 2;
            }
        },
        None => None,
    };
    let mut bad = false;
    if let Some(bundle) = &args.bundle {
        match verify_bundle(bundle, trusted.as_ref()) {
            Ok(report) => {
                println!(
                    "OK {}: {} files intact, signed by key {} ({}){}",
                    bundle.display(),
                    report.manifest.entries.len(),
                    report.manifest.key_id,
                    report.manifest.signer,
                    if report.trusted_key_checked {
                        ", the trusted key"
                    } else {
                        "; compare the key id with the published one"
                    }
                );
            }
            Err(problems) => {
                for p in problems {
                    println!("FAILED {}: {p}", bundle.display());
                }
                bad = true;
            }
        }
    }
    if let Some(log) = &args.log {
        let key = trusted.expect("a key is loaded for --log");
        match verify_issuance_log(log, &key) {
            Ok(summary) => println!(
                "OK {}: {} entries, chain intact, head {}",
                log.display(),
                summary.entries.len(),
                summary.head_hash().unwrap_or("(empty)")
            ),
            Err(problems) => {
                for p in problems {
                    println!("FAILED {}: {p}", log.display());
                }
                bad = true;
            }
        }
    }
    if bad { 1 } else { 0 }
}
