//! Audit a store: `cargo run -p meterbench-store --example audit -- STORE FROM TO OUT [figures]`
//! (STORE: a folder, or a postgres:// URL; dates YYYY-MM-DD, inclusive). With `figures`,
//! no SVG plots: the figures, audit.json and audit.html only (what a query engine's
//! answer to the same questions is compared with).
use chrono::NaiveDate;
use meterbench_store::{AuditOptions, Store, StoreLocation};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (store, from, to, out, figures_only) = match args.as_slice() {
        [store, from, to, out] => (store, from, to, out, false),
        [store, from, to, out, f] if f == "figures" => (store, from, to, out, true),
        _ => {
            eprintln!("usage: audit STORE FROM TO OUT [figures]");
            std::process::exit(2);
        }
    };
    let from = NaiveDate::parse_from_str(from, "%Y-%m-%d")?;
    let to = NaiveDate::parse_from_str(to, "%Y-%m-%d")?;
    let t = Instant::now();
    let mut opts = AuditOptions::new(from, to);
    opts.plots = !figures_only;
    let s = Store::open(&StoreLocation::parse(store))?.audit(&opts, &PathBuf::from(out))?;
    let cpk_min = s
        .load_points
        .iter()
        .filter_map(|l| l.cpk.map(|c| (c, l)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "audit {} .. {}: {} runs ({} PASS, {} FAIL, {} ERROR, {} ABORTED), first-pass yield {:.2} % over {} serials",
        s.from,
        s.to,
        s.totals.runs,
        s.totals.pass,
        s.totals.fail,
        s.totals.error,
        s.totals.aborted,
        100.0 * s.totals.first_pass_yield.unwrap_or(f64::NAN),
        s.totals.first_runs
    );
    if let Some((c, l)) = cpk_min {
        println!("lowest Cpk {:.2} at {} {}", c, l.step_name, l.port);
    }
    for c in s.control_charts.iter().filter(|c| c.drift_suspected) {
        println!(
            "drift: {} {}: {:+.5} %/day ({:+.3} % over the range)",
            c.station,
            c.step_name,
            c.slope_percent_per_day.unwrap_or(f64::NAN),
            c.drift_over_range_percent.unwrap_or(f64::NAN)
        );
    }
    for c in &s.calibrations_due {
        println!(
            "calibration due: {} {} {} {} on {} ({} days)",
            c.station, c.role, c.serial_number, c.calibration_id, c.due, c.days_left
        );
    }
    println!(
        "{} FAIL/ERROR runs listed; {} load points, {} control charts; written to {} in {:.1} s",
        s.problem_runs.len(),
        s.load_points.len(),
        s.control_charts.len(),
        out,
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
