//! Where a bundle's time goes: each file of the bundle made from a finished run's
//! record, timed, N times: `cargo run -p meterbench-session --example bundle_timing -- RECORD.json [N]`.
use meterbench_runner::RunRecord;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let record = RunRecord::read(std::path::Path::new(&args[0]))?;
    let n: usize = args.get(1).map_or(Ok(3), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let cert = meterbench_report::CertificateContext::new("timing", "verify");
    for _ in 0..n {
        let mut line = Vec::new();
        let t = Instant::now();
        std::fs::write(
            dir.path().join("record.json"),
            serde_json::to_string(&record)?,
        )?;
        line.push(("record", t.elapsed()));
        let t = Instant::now();
        meterbench_store::write_samples_parquet(&record, &dir.path().join("samples.parquet"))?;
        line.push(("samples", t.elapsed()));
        let t = Instant::now();
        std::fs::write(
            dir.path().join("certificate.html"),
            meterbench_report::render_certificate_html(&record, &cert)?,
        )?;
        line.push(("html", t.elapsed()));
        let t = Instant::now();
        let (context, files) = meterbench_report::certificate_pdf_parts(&record, &cert)?;
        line.push(("pdf parts", t.elapsed()));
        let t = Instant::now();
        let source = meterbench_pdf::certificate_source(&context)?;
        let pdf = meterbench_pdf::render_pdf(&source, &files)?;
        std::fs::write(dir.path().join("certificate.pdf"), pdf)?;
        line.push(("pdf", t.elapsed()));
        let t = Instant::now();
        let dcc = meterbench_report::DccContext::new("timing", "DE");
        std::fs::write(
            dir.path().join("dcc.xml"),
            meterbench_report::render_dcc_xml(&record, &dcc)?,
        )?;
        line.push(("dcc", t.elapsed()));
        let t = Instant::now();
        meterbench_report::render_plots(&record, &dir.path().join("plots"))?;
        line.push(("plots", t.elapsed()));
        let total: f64 = line.iter().map(|(_, d)| d.as_secs_f64()).sum();
        let parts: Vec<String> = line
            .iter()
            .map(|(w, d)| format!("{w} {:.0} ms", d.as_secs_f64() * 1e3))
            .collect();
        println!("{:.0} ms: {}", total * 1e3, parts.join(", "));
    }
    Ok(())
}
