use clap::{Args, Subcommand};
use meterbench_session::paths::{BenchHome, public_key_path};
use meterbench_signing::{generate_key, key_id};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the bench's Ed25519 signing key (PKCS#8 PEM, mode 0600) and its public key
    /// beside it (`NAME.pub.pem`). Publish the printed key id so customers can check it.
    Generate {
        /// Private key file [default: $METERBENCH_SIGNING_KEY, else keys/signing-key.pem
        /// in the bench home].
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn main(args: KeysArgs, home: &BenchHome) -> i32 {
    match args.command {
        KeysCommand::Generate { out } => {
            let private = out.unwrap_or_else(|| home.own_signing_key());
            let public = public_key_path(&private);
            if let Some(dir) = private.parent()
                && let Err(e) = std::fs::create_dir_all(dir)
            {
                eprintln!("error: cannot create {}: {e}", dir.display());
                return 2;
            }
            match generate_key(&private, &public) {
                Ok(key) => {
                    println!("private key: {}", private.display());
                    println!("public key:  {}", public.display());
                    println!("key id:      {}", key_id(&key.verifying_key()));
                    // The DCC's XML signature key, derived from this one: a reader of a
                    // DCC alone compares its ds:KeyName with the id published here.
                    println!(
                        "DCC key id:  {} (P-256, derived; the DCC's ds:KeyName)",
                        meterbench_signing::xmldsig::XmlSigningKey::derive(&key).key_id()
                    );
                    0
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
    }
}
