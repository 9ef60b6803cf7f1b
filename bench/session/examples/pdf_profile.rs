//! Render the certificate PDF of a record N times with a different run id each time (so
//! Typst cannot reuse the last layout): for profiling the PDF path.
//! `cargo run -p meterbench-session --example pdf_profile -- RECORD.json [N]`
use meterbench_runner::RunRecord;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut record = RunRecord::read(std::path::Path::new(&args[0]))?;
    let n: usize = args.get(1).map_or(Ok(5), |s| s.parse())?;
    let cert = meterbench_report::CertificateContext::new("profile", "verify");
    for k in 0..n {
        record.run_id = format!("profile-{k}");
        let t = Instant::now();
        let (context, files) = meterbench_report::certificate_pdf_parts(&record, &cert)?;
        let source = meterbench_pdf::certificate_source(&context)?;
        let pdf = meterbench_pdf::render_pdf(&source, &files)?;
        println!(
            "{} bytes in {:.0} ms",
            pdf.len(),
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
