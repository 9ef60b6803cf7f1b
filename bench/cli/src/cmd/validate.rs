use clap::Args;
use meterbench_procedure::{
    DataError, Fixture, LoadedFile, Procedure, SensorFixture, SensorProcedure, Station,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files to check (procedures, fixtures, stations; the kind is read from `schema:`).
    /// Without files, every YAML file in procedures/, fixtures/ and hw/stations/ is
    /// checked, and every procedure against every fixture of its accuracy class.
    pub files: Vec<PathBuf>,
}

#[derive(Deserialize)]
struct SchemaOnly {
    schema: String,
}

enum Loaded {
    Procedure(Box<Procedure>),
    Fixture(Box<Fixture>),
    SensorProcedure(Box<SensorProcedure>),
    SensorFixture(Box<SensorFixture>),
    Station,
    Answers,
}

/// The `schema:` of a data file: what kind of file it is.
pub fn schema_of(file: &LoadedFile) -> Result<String, DataError> {
    let head: SchemaOnly = serde_saphyr::from_str(&file.text).map_err(|e| {
        let pos = e
            .location()
            .map(|l| meterbench_procedure::Pos { line: l.line(), column: l.column() })
            .unwrap_or_default();
        DataError::at(&file.path, pos, "no `schema:` naming what this file is (meterbench.procedure/1, meterbench.fixture/1, meterbench.sensor-procedure/1, meterbench.sensor-fixture/1, meterbench.station/1 or meterbench.answers/1)")
    })?;
    Ok(head.schema)
}

fn load(path: &Path) -> Result<Loaded, DataError> {
    let file = LoadedFile::read(path)?;
    match schema_of(&file)?.as_str() {
        s if s.starts_with("meterbench.sensor-procedure/") => Ok(Loaded::SensorProcedure(
            Box::new(SensorProcedure::from_file(file)?),
        )),
        s if s.starts_with("meterbench.sensor-fixture/") => Ok(Loaded::SensorFixture(Box::new(
            SensorFixture::from_file(file)?,
        ))),
        s if s.starts_with("meterbench.procedure/") => {
            Ok(Loaded::Procedure(Box::new(Procedure::from_file(file)?)))
        }
        s if s.starts_with("meterbench.fixture/") => {
            Ok(Loaded::Fixture(Box::new(Fixture::from_file(file)?)))
        }
        s if s.starts_with("meterbench.station/") => {
            Station::from_file(file).map(|_| Loaded::Station)
        }
        s if s.starts_with("meterbench.answers/") => {
            meterbench_procedure::Answers::from_file(file).map(|_| Loaded::Answers)
        }
        other => Err(DataError::at(
            path,
            meterbench_procedure::Pos { line: 1, column: 1 },
            format!("unknown schema `{other}`"),
        )),
    }
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
    let mut procedures = Vec::new();
    let mut fixtures = Vec::new();
    let mut sensor_procedures = Vec::new();
    let mut sensor_fixtures = Vec::new();
    for f in &files {
        match load(f) {
            Ok(Loaded::Procedure(p)) => {
                println!("ok    {} (procedure {} {})", f.display(), p.id, p.version);
                procedures.push(p);
            }
            Ok(Loaded::Fixture(x)) => {
                println!("ok    {} (fixture {})", f.display(), x.id);
                fixtures.push(x);
            }
            Ok(Loaded::SensorProcedure(p)) => {
                println!(
                    "ok    {} (sensor procedure {} {})",
                    f.display(),
                    p.id,
                    p.version
                );
                sensor_procedures.push(p);
            }
            Ok(Loaded::SensorFixture(x)) => {
                println!("ok    {} (sensor fixture {})", f.display(), x.id);
                sensor_fixtures.push(x);
            }
            Ok(Loaded::Station) => println!("ok    {} (station)", f.display()),
            Ok(Loaded::Answers) => println!("ok    {} (answers)", f.display()),
            Err(e) => {
                println!("error {e}");
                errors += 1;
            }
        }
    }
    for p in &procedures {
        for x in fixtures
            .iter()
            .filter(|x| x.accuracy_class == p.accuracy_class)
        {
            if let Err(e) = p.check_against(x) {
                println!("error {e} (against fixture {})", x.id);
                errors += 1;
            }
        }
    }
    for p in &sensor_procedures {
        for x in &sensor_fixtures {
            if let Err(e) = p.check_against(x) {
                println!("error {e} (against sensor fixture {})", x.id);
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
