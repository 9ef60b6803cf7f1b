//! Bad input, generated: every data file the bench reads (procedures, fixtures,
//! stations with their simulation sections, answers files) mutated in the ways people
//! and tools break files: a number made NaN, infinite or absurd, a tab, a key twice, an
//! unknown key, nesting far too deep, an alias bomb, bytes that are not UTF-8, an empty
//! or cut file, a wrong schema, an answer missing or malformed. Each must be refused
//! while the session is loaded, before any port is opened or anything switched on, with
//! the mutated file and a line:column that points into it, and without a panic. A sample
//! goes through the command line too: `run` exits 2 without starting a run (no reports
//! folder) and `validate` of the same combination refuses it alike.

mod common;
use chrono::NaiveDate;
use common::repo;
use meterbench_session::{Prepared, SessionError, SessionOptions};
use std::path::{Path, PathBuf};

/// A combination the bench runs: the base of each mutated file.
#[derive(Clone, Copy)]
struct Combination {
    procedure: &'static str,
    fixture: &'static str,
    station: &'static str,
    answers: Option<&'static str>,
}

const CLASS_B: Combination = Combination {
    procedure: "procedures/en50470-3-class-b.yaml",
    fixture: "fixtures/cpim1000.yaml",
    station: "hw/stations/sim.yaml",
    answers: None,
};
const EICHRECHT: Combination = Combination {
    procedure: "procedures/cpim1000-eichrecht.yaml",
    ..CLASS_B
};
const EOL: Combination = Combination {
    procedure: "procedures/cpim1000-eol.yaml",
    answers: Some("hw/answers/sim-cpim1000.yaml"),
    ..CLASS_B
};
const CSP1: Combination = Combination {
    procedure: "procedures/csp1-accuracy.yaml",
    fixture: "fixtures/csp1.yaml",
    station: "hw/stations/sim.yaml",
    answers: None,
};
const RACK: Combination = Combination {
    station: "hw/stations/sim-rack-mixed.yaml",
    ..CLASS_B
};

/// Which file of the combination is replaced by the mutated one.
#[derive(Clone, Copy, Debug)]
enum Role {
    Procedure,
    Fixture,
    Station,
    Answers,
}

/// The files mutated, each in a combination that loads when it is intact.
const FILES: [(&str, Role, Combination); 10] = [
    (
        "procedures/en50470-3-class-b.yaml",
        Role::Procedure,
        CLASS_B,
    ),
    (
        "procedures/cpim1000-eichrecht.yaml",
        Role::Procedure,
        EICHRECHT,
    ),
    ("procedures/cpim1000-eol.yaml", Role::Procedure, EOL),
    ("procedures/csp1-accuracy.yaml", Role::Procedure, CSP1),
    ("fixtures/cpim1000.yaml", Role::Fixture, CLASS_B),
    ("fixtures/csp1.yaml", Role::Fixture, CSP1),
    ("hw/stations/sim.yaml", Role::Station, CLASS_B),
    ("hw/stations/sim.yaml", Role::Station, CSP1),
    ("hw/stations/sim-rack-mixed.yaml", Role::Station, RACK),
    ("hw/answers/sim-cpim1000.yaml", Role::Answers, EOL),
];

/// One mutated file.
struct Case {
    what: String,
    role: Role,
    combination: Combination,
    bytes: Vec<u8>,
    /// The line the error must be on, when the mutation is on one line.
    line: Option<u64>,
}

/// `key: number` on a line (block or flow style): the byte range of each number.
fn numbers(line: &str) -> Vec<(usize, usize)> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    if line.trim_start().starts_with('#') {
        return out;
    }
    let mut i = 0;
    while let Some(k) = line[i..].find(": ") {
        let key_end = i + k;
        let start = key_end + 2;
        let key_ok =
            key_end > 0 && (b[key_end - 1].is_ascii_alphanumeric() || b[key_end - 1] == b'_');
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_digit() || b"+-.eE".contains(&b[end])) {
            end += 1;
        }
        let text = &line[start..end];
        let terminated =
            end == b.len() || b[end] == b',' || b[end] == b'}' || line[end..].starts_with(" #");
        if key_ok && terminated && !text.is_empty() && text.parse::<f64>().is_ok() {
            out.push((start, end));
        }
        i = start;
    }
    out
}

fn replace_line(text: &str, index: usize, new_line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines[index] = new_line;
    lines.join("\n") + "\n"
}

/// Every mutation of every file.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (rel, role, combination) in FILES {
        let text = std::fs::read_to_string(repo().join(rel)).unwrap();
        let case = |what: String, bytes: Vec<u8>, line: Option<u64>| Case {
            what: format!("{rel}: {what}"),
            role,
            combination,
            bytes,
            line,
        };
        let lines: Vec<&str> = text.lines().collect();
        // Each number: not a number, infinite, absurdly large, absurdly negative.
        for (n, l) in lines.iter().enumerate() {
            for (start, end) in numbers(l) {
                for bad in [".nan", ".inf", "1e300", "-1e300"] {
                    let new_line = format!("{}{bad}{}", &l[..start], &l[end..]);
                    out.push(case(
                        format!("line {}: `{}` → {bad}", n + 1, &l[start..end]),
                        replace_line(&text, n, &new_line).into_bytes(),
                        Some(n as u64 + 1),
                    ));
                }
            }
        }
        // The first indented line indented with a tab.
        let (n, l) = lines
            .iter()
            .enumerate()
            .find(|(_, l)| l.starts_with("  ") && !l.trim_start().starts_with('#'))
            .unwrap();
        out.push(case(
            format!("line {}: a tab for the indentation", n + 1),
            replace_line(&text, n, &format!("\t{}", &l[2..])).into_bytes(),
            Some(n as u64 + 1),
        ));
        // A tab before a key whose line above ends in a plain value: the parser trips
        // at the end of the line above; the error must still name the tab's line.
        if let Some(n) = (1..lines.len()).find(|&n| {
            let (above, here) = (lines[n - 1], lines[n]);
            here.starts_with("  ")
                && !here.trim_start().starts_with(['#', '-'])
                && above.starts_with("  ")
                && above.trim_end().ends_with(|c: char| c.is_ascii_digit())
        }) {
            out.push(case(
                format!("line {}: a tab after a line ending in a number", n + 1),
                replace_line(&text, n, &format!("\t{}", &lines[n][2..])).into_bytes(),
                Some(n as u64 + 1),
            ));
        }
        // The first key with a value on its line (after `schema:`) given twice.
        let (n, l) = lines
            .iter()
            .enumerate()
            .find(|(_, l)| {
                let t = l.trim_start();
                !t.starts_with("schema:")
                    && t.starts_with(|c: char| c.is_ascii_lowercase())
                    && t.split_once(": ").is_some_and(|(k, v)| {
                        !v.trim().is_empty()
                            && k.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"_.".contains(&b))
                    })
            })
            .unwrap();
        out.push(case(
            format!("line {}: `{}` twice", n + 1, l.trim()),
            replace_line(&text, n, &format!("{l}\n{l}")).into_bytes(),
            Some(n as u64 + 2),
        ));
        // A key the schema does not have.
        out.push(case(
            "an unknown top-level key".into(),
            format!("{text}colour_of_the_bench: blue\n").into_bytes(),
            Some(lines.len() as u64 + 1),
        ));
        // Nesting far deeper than any file needs.
        out.push(case(
            "5000 nested sequences".into(),
            format!("{text}deep: {}\n", "[".repeat(5000)).into_bytes(),
            Some(lines.len() as u64 + 1),
        ));
        // An alias bomb: 9^8 strings from ten short lines, in a mapping of the file.
        let mut bomb = String::from("bomb:\n  a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for k in 1..9 {
            let p = format!("*a{}", k - 1);
            bomb += &format!("  a{k}: &a{k} [{}]\n", [p.as_str(); 9].join(", "));
        }
        out.push(case(
            "an alias bomb".into(),
            format!("{text}{bomb}").into_bytes(),
            None,
        ));
        // Bytes that are not UTF-8, on line 3.
        let mut bytes = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            if n == 2 {
                bytes.extend_from_slice(b"\xff\xfe");
            }
            bytes.extend_from_slice(l.as_bytes());
            bytes.push(b'\n');
        }
        out.push(case("invalid UTF-8 on line 3".into(), bytes, Some(3)));
        // Empty, and cut inside a flow collection or a quoted string (an unclosed `[`,
        // `{` or `"`).
        out.push(case("empty".into(), Vec::new(), None));
        let (n, l) = lines
            .iter()
            .enumerate()
            .skip(lines.len() / 2)
            .chain(lines.iter().enumerate())
            .find(|(_, l)| !l.trim_start().starts_with('#') && l.contains(['[', '{', '"']))
            .unwrap();
        let cut = l.find(['[', '{', '"']).unwrap() + 1;
        let mut head = lines[..n].join("\n");
        head += &format!("\n{}", &l[..cut]);
        out.push(case(
            format!("cut on line {} after `{}`", n + 1, &l[..cut]),
            head.into_bytes(),
            None,
        ));
        // A schema of another kind, and a schema that is not a string.
        let schema_line = lines.iter().position(|l| l.starts_with("schema:")).unwrap();
        let other = if matches!(role, Role::Station) {
            "schema: meterbench.procedure/1"
        } else {
            "schema: meterbench.station/2"
        };
        out.push(case(
            format!("line {}: `{other}`", schema_line + 1),
            replace_line(&text, schema_line, other).into_bytes(),
            None,
        ));
        out.push(case(
            format!("line {}: schema a list", schema_line + 1),
            replace_line(&text, schema_line, "schema: [1, 2]").into_bytes(),
            Some(schema_line as u64 + 1),
        ));
        // An answers file: each answer missing, each answer empty.
        if matches!(role, Role::Answers) {
            for (n, l) in lines.iter().enumerate() {
                let Some((key, _)) = l.trim().split_once(": ") else {
                    continue;
                };
                if !l.starts_with("  ") || l.trim_start().starts_with('#') {
                    continue;
                }
                let mut without: Vec<&str> = lines.clone();
                without.remove(n);
                out.push(case(
                    format!("answer `{key}` missing"),
                    (without.join("\n") + "\n").into_bytes(),
                    None,
                ));
                out.push(case(
                    format!("line {}: answer `{key}` empty", n + 1),
                    replace_line(&text, n, &format!("  {key}: \"\"")).into_bytes(),
                    Some(n as u64 + 1),
                ));
            }
        }
    }
    out
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap()
}

/// The combination's files with the mutated one in `path`.
fn files(case: &Case, path: &Path) -> [(&'static str, PathBuf); 4] {
    let c = case.combination;
    let pick = |role_here: bool, rel: &str| {
        if role_here {
            path.to_path_buf()
        } else {
            repo().join(rel)
        }
    };
    [
        (
            "--procedure",
            pick(matches!(case.role, Role::Procedure), c.procedure),
        ),
        (
            "--fixture",
            pick(matches!(case.role, Role::Fixture), c.fixture),
        ),
        (
            "--station",
            pick(matches!(case.role, Role::Station), c.station),
        ),
        (
            "--answers",
            pick(
                matches!(case.role, Role::Answers),
                c.answers.unwrap_or_default(),
            ),
        ),
    ]
}

fn options(case: &Case, path: &Path, reports: &Path) -> SessionOptions {
    let [p, f, s, a] = files(case, path);
    let mut o = SessionOptions::new(today());
    o.procedure = p.1;
    o.fixture = f.1;
    o.station = s.1;
    if case.combination.answers.is_some() {
        o.answers = vec![(None, a.1)];
    }
    o.reports = reports.to_path_buf();
    o
}

#[test]
fn every_mutated_file_is_refused_at_its_line_before_anything_is_switched_on() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    eprintln!("{} mutated files", cases.len());
    // Every base combination loads intact: a refusal below is the mutation's.
    for (_, _, c) in FILES {
        let intact = Case {
            what: String::new(),
            role: Role::Procedure,
            combination: c,
            bytes: Vec::new(),
            line: None,
        };
        let o = options(&intact, &repo().join(c.procedure), &dir.path().join("r"));
        Prepared::load(o).unwrap_or_else(|e| panic!("{}: {e}", c.procedure));
    }
    let mut wrong = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case-{k:03}.yaml"));
        std::fs::write(&path, &case.bytes).unwrap();
        let reports = dir.path().join(format!("reports-{k:03}"));
        let loaded = std::panic::catch_unwind(|| Prepared::load(options(case, &path, &reports)));
        let verdict = match loaded {
            Err(_) => Err("panicked".to_string()),
            Ok(Ok(_)) => Err("accepted".to_string()),
            Ok(Err(SessionError::Data(e))) => {
                let at_line = case.line.is_none_or(|l| e.pos.line == l);
                if e.file != path || e.pos.line == 0 || e.pos.column == 0 || !at_line {
                    Err(format!("refused at the wrong place: {e}"))
                } else {
                    Ok(e.to_string())
                }
            }
            Ok(Err(e)) => Err(format!("refused without a place in the file: {e}")),
        };
        match verdict {
            Ok(message) => assert!(
                message.starts_with(&format!("{}:", path.display())),
                "{message}"
            ),
            Err(why) => wrong.push(format!("{}: {why}", case.what)),
        }
        assert!(!reports.exists(), "{}: a reports folder", case.what);
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// A sample of the cases through the command line: `run` refuses with exit 2 at the
/// file's line and starts no run; `validate` of the same combination refuses it alike.
/// The mutated procedures, fixtures and answers are run against the simulated
/// instruments served in a process of their own (`meterbench sim serve`), which says
/// every switching of its source's output: it never goes on.
#[test]
fn run_and_validate_refuse_the_same_bad_files() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served-station.yaml");
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
        .args(["sim", "serve", "--write-station"])
        .arg(&served)
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = std::io::BufReader::new(serve.stdout.take().unwrap()).lines();
    for line in said.by_ref() {
        if line.unwrap().starts_with("serving station") {
            break;
        }
    }
    let cases = cases();
    let sample: Vec<&Case> = cases.iter().step_by(cases.len() / 16).collect();
    assert!(sample.len() >= 16);
    for (k, case) in sample.into_iter().enumerate() {
        let path = dir.path().join(format!("cli-{k:02}.yaml"));
        std::fs::write(&path, &case.bytes).unwrap();
        let reports = dir.path().join(format!("reports-{k:02}"));
        let mut args: Vec<String> = Vec::new();
        for (flag, file) in files(case, &path) {
            let file = match (flag, case.role) {
                // On the wire: the served instruments, as a real station names them.
                ("--station", Role::Procedure | Role::Fixture | Role::Answers) => {
                    args.extend(["--serial".into(), "SIM-CPIM-000123".into()]);
                    served.clone()
                }
                _ => file,
            };
            if flag != "--answers" || case.combination.answers.is_some() {
                args.push(flag.into());
                args.push(file.display().to_string());
            }
        }
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args(["run", "--quiet", "--reports", reports.to_str().unwrap()])
            .args(&args)
            .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
            .current_dir(repo())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{}: {stderr}", case.what);
        let at = format!("error: {}:", path.display());
        assert!(stderr.contains(&at), "{}: {stderr}", case.what);
        assert!(!reports.exists(), "{}: a run was started", case.what);

        let validate = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .arg("validate")
            .args(&args)
            .current_dir(repo())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&validate.stdout);
        assert_eq!(validate.status.code(), Some(2), "{}: {stdout}", case.what);
        // The same refusal, word for word.
        let first = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            stdout.contains(&first["error: ".len()..]),
            "{}: run said {first:?}, validate said {stdout}",
            case.what
        );
    }
    // The served source never went on: `sim serve` says nothing more before it ends.
    drop(serve.stdin.take());
    let rest: Vec<String> = said.map(|l| l.unwrap()).collect();
    assert!(serve.wait().unwrap().success());
    assert!(
        !rest.iter().any(|l| l.contains("source output on")),
        "{rest:?}"
    );
}

/// A position not wired for the device (no P1 cable for a current sensor, too few
/// scanning heads for a meter's ports) is refused by `run` before it opens a port, and by
/// `validate` in the same words.
#[test]
fn a_position_not_wired_for_the_device_is_refused_by_run_and_validate_alike() {
    let cases: [&[&str]; 2] = [
        &[
            "--procedure",
            "csp1-accuracy.yaml",
            "--fixture",
            "csp1.yaml",
            "--station",
            "sim-rack-10.yaml",
            "--serial",
            "1=SIM-CSP1-0001",
        ],
        &[
            "--station",
            "sim-rack-mixed.yaml",
            "--serial",
            "4=SIM-CPIM-000123",
        ],
    ];
    for (args, words) in cases
        .iter()
        .zip(["binds none (its `p1:`)", "has 0 scanning head(s)"])
    {
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .args(["run", "--quiet", "--reports", reports.to_str().unwrap()])
            .args(*args)
            .env("METERBENCH_SIGNING_KEY", dir.path().join("key.pem"))
            .current_dir(repo())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
        assert!(!reports.exists(), "{args:?}: a run was started");
        let validate = std::process::Command::new(env!("CARGO_BIN_EXE_meterbench"))
            .arg("validate")
            .args(*args)
            .current_dir(repo())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&validate.stdout);
        assert_eq!(validate.status.code(), Some(2), "{args:?}: {stdout}");
        let first = stderr.lines().find(|l| l.starts_with("error: ")).unwrap();
        assert!(
            stdout.contains(&first["error: ".len()..]),
            "run said {first:?}, validate said {stdout}"
        );
    }
}
