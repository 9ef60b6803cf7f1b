use crate::cmd::run::{SessionFiles, plain, session_options};
use chrono::{Local, NaiveDate};
use clap::Args;
use meterbench_procedure::{DataFile, DutFixture, DutProcedure, Station};
use meterbench_session::paths::BenchHome;
use meterbench_session::{Prepared, check_combination, store_lengths};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files to check (procedures, fixtures, stations, answers; the kind is read from
    /// `schema:`). Without files, every YAML file in the bench home's procedures/,
    /// fixtures/, hw/stations/ and hw/answers/ is checked; every procedure against every fixture of its kind and
    /// class, at every station (its ratings, energised-time limit and calibrations due
    /// today), as `run` checks them.
    pub files: Vec<PathBuf>,
    /// Check one run as `run` would load it, without opening a port: this procedure
    /// [default with --fixture/--station: procedures/en50470-3-class-b.yaml in the bench
    /// home].
    #[arg(long, conflicts_with = "files")]
    pub procedure: Option<PathBuf>,
    /// The fixture of that run [default: fixtures/cpim1000.yaml in the bench home].
    #[arg(long, conflicts_with = "files")]
    pub fixture: Option<PathBuf>,
    /// The station of that run [default: hw/stations/sim.yaml in the bench home].
    #[arg(long, conflicts_with = "files")]
    pub station: Option<PathBuf>,
    /// That run's answers files, as `run --answers`.
    #[arg(
        long = "answers",
        value_name = "[POSITION=]FILE",
        conflicts_with = "files"
    )]
    pub answers: Vec<String>,
    /// That run's serial numbers, as `run --serial`.
    #[arg(
        long = "serial",
        value_name = "[POSITION=]SERIAL",
        conflicts_with = "files"
    )]
    pub serials: Vec<String>,
    /// That run's positions, as `run --positions`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "POSITION,...",
        conflicts_with = "files"
    )]
    pub positions: Vec<u32>,
}

impl ValidateArgs {
    fn names_a_run(&self) -> bool {
        self.procedure.is_some()
            || self.fixture.is_some()
            || self.station.is_some()
            || !self.answers.is_empty()
            || !self.serials.is_empty()
            || !self.positions.is_empty()
    }
}

fn default_files(home: &BenchHome) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["procedures", "fixtures", "hw/stations", "hw/answers"] {
        if let Ok(rd) = std::fs::read_dir(home.file(dir)) {
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

pub fn main(args: ValidateArgs, home: &BenchHome) -> i32 {
    if args.names_a_run() {
        return one_run(&args, home);
    }
    let mut errors = 0;
    // Named files are found as `run` finds them: in the current folder, else in the home.
    let files = if args.files.is_empty() {
        default_files(home)
    } else {
        let mut found = Vec::new();
        for f in &args.files {
            if f.is_file() || f.is_absolute() {
                found.push(f.clone());
            } else if home.file(f).is_file() {
                found.push(home.file(f));
            } else {
                crate::sayln!(
                    "error {}: no such file in the current folder, nor in {}; {}",
                    f.display(),
                    home.describe(),
                    home.advice()
                );
                errors += 1;
            }
        }
        if found.is_empty() {
            return 2;
        }
        found
    };
    if files.is_empty() {
        eprintln!(
            "error: no files to check: {} has no procedures, fixtures or stations; name files, or {}",
            home.describe(),
            home.advice()
        );
        return 2;
    }
    let today = Local::now().date_naive();
    let mut procedures: Vec<DutProcedure> = Vec::new();
    let mut fixtures: Vec<DutFixture> = Vec::new();
    let mut stations: Vec<Station> = Vec::new();
    for f in &files {
        match DataFile::load(f) {
            Ok(file) => {
                let what = file.what();
                // Texts longer than the results store keeps: `run` refuses them.
                let fits = match &file {
                    DataFile::Procedure(p) => store_lengths::check_procedure(p),
                    DataFile::Fixture(x) => store_lengths::check_fixture(x),
                    DataFile::Station(s) => store_lengths::check_station(s),
                    DataFile::Answers(_) => Ok(()),
                };
                if let Err(e) = fits {
                    crate::sayln!("error {e}");
                    errors += 1;
                    continue;
                }
                match file {
                    DataFile::Procedure(p) => {
                        crate::sayln!("ok    {} ({what} {} {})", f.display(), p.id(), p.version());
                        procedures.push(p);
                    }
                    DataFile::Fixture(x) => {
                        crate::sayln!("ok    {} ({what} {})", f.display(), x.id());
                        fixtures.push(x);
                    }
                    DataFile::Station(s) => {
                        // A station whose instrument is out of calibration runs nothing.
                        match s.check_calibration_due(today) {
                            Ok(()) => crate::sayln!(
                                "ok    {} ({what} {}, {} position(s), calibrations valid on {today})",
                                f.display(),
                                s.id,
                                s.rack.positions.len()
                            ),
                            Err(e) => {
                                crate::sayln!("error {e}");
                                errors += 1;
                            }
                        }
                        stations.push(*s);
                    }
                    DataFile::Answers(_) => crate::sayln!("ok    {} ({what})", f.display()),
                }
            }
            Err(e) => {
                crate::sayln!("error {e}");
                errors += 1;
            }
        }
    }
    // A procedure named alone is checked as `run` would use it: against the fixtures and
    // at the stations of this folder, unless some are named too (a setpoint beyond a
    // fixture's rating is no error of the file alone, but `run` refuses it).
    if !procedures.is_empty() {
        let companions = |dir: &str| {
            default_files(home)
                .into_iter()
                .filter(|f| f.starts_with(home.file(dir)))
                .filter_map(|f| DataFile::load(&f).ok())
                .collect::<Vec<_>>()
        };
        if fixtures.is_empty() {
            fixtures.extend(companions("fixtures").into_iter().filter_map(|f| match f {
                DataFile::Fixture(x) => Some(x),
                _ => None,
            }));
            crate::sayln!(
                "      (no fixture named: {})",
                if fixtures.is_empty() {
                    "none in fixtures/ here either, so the procedure was checked alone"
                } else {
                    "against the fixtures in fixtures/"
                }
            );
        }
        if stations.is_empty() {
            stations.extend(
                companions("hw/stations")
                    .into_iter()
                    .filter_map(|f| match f {
                        DataFile::Station(s) => Some(*s),
                        _ => None,
                    }),
            );
            crate::sayln!(
                "      (no station named: {})",
                if stations.is_empty() {
                    "none in hw/stations/ here either"
                } else {
                    "at the stations in hw/stations/"
                }
            );
        }
    }
    // Every procedure against every fixture of its kind (and, for meters, its class),
    // and at every station as `run` checks them.
    for p in &procedures {
        for x in &fixtures {
            let fits = match (p, x) {
                (DutProcedure::Meter(p), DutFixture::Meter(x)) => {
                    x.accuracy_class == p.accuracy_class
                }
                (DutProcedure::CurrentSensor(_), DutFixture::CurrentSensor(_)) => true,
                _ => false,
            };
            if !fits {
                continue;
            }
            if let Err(e) = p.check_against(x) {
                crate::sayln!("error {e} (against fixture {})", x.id());
                errors += 1;
                continue;
            }
            // At the stations that can hold such a device (a meter under heads, a
            // sensor on a P1 cable).
            let holds = |s: &&Station| {
                s.rack.positions.iter().any(|pos| match x {
                    DutFixture::Meter(_) => !pos.heads.is_empty(),
                    DutFixture::CurrentSensor(_) => pos.p1.is_some(),
                })
            };
            for s in stations.iter().filter(holds) {
                match check_combination(p, x, s, today) {
                    Ok(c) => crate::sayln!(
                        "ok    {} on {} at station {}: energised about {:.0} s of the station's {:.0} s",
                        p.id(),
                        x.id(),
                        s.id,
                        c.expected_energised_s,
                        s.max_energised_s
                    ),
                    // Out-of-date calibrations were reported with the station.
                    Err(e) if calibration_error(&e, s, today) => {}
                    Err(e) => {
                        crate::sayln!("error {e} ({} on {} at station {})", p.id(), x.id(), s.id);
                        errors += 1;
                    }
                }
            }
        }
    }
    if errors > 0 {
        eprintln!("{errors} error(s)");
        2
    } else {
        0
    }
}

/// Whether `e` is the station's own calibration error (already reported).
fn calibration_error(e: &meterbench_session::SessionError, s: &Station, today: NaiveDate) -> bool {
    s.check_calibration_due(today)
        .err()
        .is_some_and(|c| e.to_string() == c.to_string())
}

/// One run's files and devices, loaded exactly as `run` loads them (no port is opened).
fn one_run(args: &ValidateArgs, home: &BenchHome) -> i32 {
    let options = match session_options(
        SessionFiles {
            procedure: args.procedure.as_deref(),
            fixture: args.fixture.as_deref(),
            station: args.station.as_deref(),
            serials: &args.serials,
            positions: &args.positions,
            answers: &args.answers,
        },
        home,
    ) {
        Ok(o) => o,
        Err(e) => {
            crate::sayln!("error {e}");
            return 2;
        }
    };
    let today = options.today;
    match Prepared::load(options) {
        Ok(p) => {
            let positions: Vec<String> = p
                .positions
                .iter()
                .map(|x| format!("{} ({})", x.position, x.serial))
                .collect();
            crate::sayln!(
                "ok    {} {} on {} at station {}, position(s) {}",
                p.procedure.id(),
                p.procedure.version(),
                p.fixture.id(),
                p.station.id,
                positions.join(", ")
            );
            crate::sayln!(
                "      energised about {:.0} s of the station's limit of {:.0} s; calibrations valid on {today}",
                p.expected_energised_s(),
                p.station.max_energised_s
            );
            0
        }
        Err(e) => {
            crate::sayln!("error {}", plain(e));
            2
        }
    }
}
