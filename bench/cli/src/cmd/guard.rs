//! `meterbench guard`: the source's guard process, started by `run` (not by hand).

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GuardArgs {
    /// The station whose source is guarded.
    #[arg(long)]
    pub station: PathBuf,
    /// The reports folder the guard leaves its report in.
    #[arg(long)]
    pub reports: PathBuf,
    /// The bench process guarded.
    #[arg(long)]
    pub bench_pid: u32,
}

pub fn main(args: GuardArgs) -> i32 {
    meterbench_session::guard::watch(&args.station, &args.reports, args.bench_pid)
}
