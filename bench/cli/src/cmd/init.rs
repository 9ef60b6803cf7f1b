//! `meterbench init [DIR]`: a bench home from the files compiled into the binary.

use clap::Args;
use meterbench_session::paths::{BenchHome, HomeOrigin};
use meterbench_session::shipped::{Placed, init_home};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to make a bench home [default: --home, else $METERBENCH_HOME, else the
    /// current folder].
    pub dir: Option<PathBuf>,
}

pub fn main(args: InitArgs, home: &BenchHome) -> i32 {
    let home = match &args.dir {
        Some(dir) => BenchHome::at(dir, HomeOrigin::Flag),
        None => home.clone(),
    };
    let report = match init_home(&home, &home.own_signing_key()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let count = |which: Placed| report.files.iter().filter(|(_, p)| *p == which).count();
    let root = std::path::absolute(home.root()).unwrap_or_else(|_| home.root().to_path_buf());
    crate::sayln!("bench home {}", root.display());
    for (path, placed) in &report.files {
        if *placed == Placed::Kept {
            crate::sayln!(
                "  kept {} (it differs from the shipped file; yours is left as it is)",
                path.display()
            );
        }
    }
    crate::sayln!(
        "  {} files written, {} already there and the same, {} kept as they were",
        count(Placed::Written),
        count(Placed::Unchanged),
        count(Placed::Kept)
    );
    crate::sayln!(
        "  signing key {} ({}), key id {}",
        report.key.display(),
        if report.key_created {
            "created; publish its id so customers can check certificates"
        } else {
            "already there"
        },
        report.key_id
    );
    let cd = match home.origin() {
        HomeOrigin::CurrentFolder if args.dir.is_none() => String::new(),
        _ => format!(
            "--home {} ",
            meterbench_session::shell_word(&root.display().to_string())
        ),
    };
    crate::sayln!(
        "next: meterbench {cd}run   (the class B procedure on the simulated bench; \
         runs, the issuance log and the store go to {})",
        root.join("reports").display()
    );
    0
}
