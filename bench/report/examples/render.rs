//! Render the certificate, the DCC and the plots of one stored run record:
//!
//! ```sh
//! cargo run -p meterbench-report --example render -- reports/<run>/record.json /tmp/out
//! ```

use meterbench_report::{
    CertificateContext, DccContext, render_certificate_html, render_dcc_xml, render_plots,
};
use meterbench_runner::record::RunRecord;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let (Some(record), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: render RECORD.json OUT_DIR");
        std::process::exit(2);
    };
    let record = RunRecord::read(&PathBuf::from(record))?;
    let out = PathBuf::from(out);
    std::fs::create_dir_all(&out)?;
    let templates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../templates");

    let mut cert = CertificateContext::new(
        "A. Signer (example)",
        format!(
            "This certificate is rendered from the run record {run}/record.json.\n\
             Check the signed bundle with:  meterbench verify <reports>/{run}",
            run = record.run_id
        ),
    );
    cert.templates_dir = Some(templates);
    std::fs::write(
        out.join("certificate.html"),
        render_certificate_html(&record, &cert)?,
    )?;

    let dcc = DccContext::new("A. Signer (example)", "DE");
    std::fs::write(out.join("dcc.xml"), render_dcc_xml(&record, &dcc)?)?;

    for p in render_plots(&record, &out.join("plots"))? {
        println!("{}", p.display());
    }
    println!("{}", out.join("certificate.html").display());
    println!("{}", out.join("dcc.xml").display());
    Ok(())
}
