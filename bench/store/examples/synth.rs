//! Fill a store with synthetic runs: `cargo run -p meterbench-store --example synth -- STORE N [SEED]`
//! (STORE: a folder, or a postgres:// URL).
use meterbench_store::{Store, StoreLocation};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(store), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: synth STORE N [SEED]");
        std::process::exit(2);
    };
    let n: usize = n.parse()?;
    let seed: u64 = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);
    let t = Instant::now();
    let s = Store::create(&StoreLocation::parse(store))?.synthesize(n, seed)?;
    println!(
        "synthesized {} runs ({} PASS, {} FAIL, {} ERROR, {} ABORTED; {} serials) over {} .. {}: \
         {} points rows in {} files, no samples files, in {:.1} s",
        s.runs,
        s.pass,
        s.fail,
        s.error,
        s.aborted,
        s.serials,
        s.from,
        s.to,
        s.points_rows,
        s.points_files,
        t.elapsed().as_secs_f64()
    );
    println!("drifting station: {}", s.drifting_station);
    Ok(())
}
