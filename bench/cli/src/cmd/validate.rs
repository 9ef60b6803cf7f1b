use clap::Args;
use meterbench_procedure::{DataFile, DutFixture, DutProcedure};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files to check (procedures, fixtures, stations; the kind is read from `schema:`).
    /// Without files, every YAML file in procedures/, fixtures/ and hw/stations/ is
    /// checked, and every procedure against every fixture of its accuracy class.
    pub files: Vec<PathBuf>,
}

fn default_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["procedures", "fixtures", "hw/stations", "hw/answers"] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            v.sort();
            files.extend(v);
        }
    }
    files
}

pub fn main(args: ValidateArgs) -> i32 {
    let files = if args.files.is_empty() {
        default_files()
    } else {
        args.files
    };
    if files.is_empty() {
        eprintln!("error: no files to check (run from the repository root or name files)");
        return 2;
    }
    let mut errors = 0;
    let mut procedures: Vec<DutProcedure> = Vec::new();
    let mut fixtures: Vec<DutFixture> = Vec::new();
    for f in &files {
        match DataFile::load(f) {
            Ok(file) => {
                let what = file.what();
                match file {
                    DataFile::Procedure(p) => {
                        println!("ok    {} ({what} {} {})", f.display(), p.id(), p.version());
                        procedures.push(p);
                    }
                    DataFile::Fixture(x) => {
                        println!("ok    {} ({what} {})", f.display(), x.id());
                        fixtures.push(x);
                    }
                    DataFile::Station(s) => {
                        println!(
                            "ok    {} ({what} {}, {} position(s))",
                            f.display(),
                            s.id,
                            s.rack.positions.len()
                        );
                    }
                    DataFile::Answers(_) => println!("ok    {} ({what})", f.display()),
                }
            }
            Err(e) => {
                println!("error {e}");
                errors += 1;
            }
        }
    }
    // Every procedure against every fixture of its kind (and, for meters, its class).
    for p in &procedures {
        for x in &fixtures {
            let fits = match (p, x) {
                (DutProcedure::Meter(p), DutFixture::Meter(x)) => {
                    x.accuracy_class == p.accuracy_class
                }
                (DutProcedure::CurrentSensor(_), DutFixture::CurrentSensor(_)) => true,
                _ => false,
            };
            if fits && let Err(e) = p.check_against(x) {
                println!("error {e} (against fixture {})", x.id());
                errors += 1;
            }
        }
    }
    if errors > 0 {
        eprintln!("{errors} file(s) with errors");
        2
    } else {
        0
    }
}
