//! Render the certificate of the hand-made test context to a PDF and print how long it
//! took: `cargo run -p meterbench-pdf --example render_certificate -- [OUT.pdf]`.

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "certificate.pdf".to_string());
    let ctx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        data.join("certificate-context.json"),
    )?)?;
    let files = vec![(
        "error-left.svg".to_string(),
        std::fs::read(data.join("error-left.svg"))?,
    )];
    let mut pdf = Vec::new();
    for round in ["first (cold)", "second (warm)", "third (warm)"] {
        let t = Instant::now();
        let source = meterbench_pdf::certificate_source(&ctx)?;
        let t_template = t.elapsed();
        pdf = meterbench_pdf::render_pdf(&source, &files)?;
        println!(
            "{round}: template {:.1} ms, template + Typst + PDF {:.0} ms, {} bytes",
            t_template.as_secs_f64() * 1e3,
            t.elapsed().as_secs_f64() * 1e3,
            pdf.len()
        );
    }
    std::fs::write(&out, &pdf)?;
    println!("wrote {out}");
    Ok(())
}
