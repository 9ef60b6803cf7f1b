//! The results table printed at the end of a run.

use anstyle::{AnsiColor, Style};
use meterbench_runner::record::{Outcome, PortResult, RunRecord, StepKind};
use std::fmt::Write;

/// Results of every step and port, the verdict, and the bench's time beside the time
/// its settling and pulse periods take (`physical_floor_s`); plain text.
pub fn results_table(r: &RunRecord) -> String {
    results_table_styled(r, false)
}

/// The same, with the result cells and the verdict coloured when `colour` (a terminal
/// that has not asked for `NO_COLOR`): failures red, conditional ones yellow, PASS green.
/// Below the verdict, every point and port that decided it, one per line.
pub fn results_table_styled(r: &RunRecord, colour: bool) -> String {
    let paint = |text: &str, style: Style| {
        if colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    };
    let red = AnsiColor::Red.on_default().bold();
    let yellow = AnsiColor::Yellow.on_default().bold();
    let green = AnsiColor::Green.on_default().bold();
    // Step names are never cut: the column is as wide as the longest (with its attempt).
    let width = r
        .steps
        .iter()
        .map(|s| shown_name(s).chars().count())
        .max()
        .unwrap_or(0)
        .max(18);
    let latest: Vec<(usize, u32)> = r
        .latest_attempts()
        .iter()
        .map(|s| (s.index, s.attempt))
        .collect();
    let mut deciding: Vec<String> = Vec::new();
    let mut s = String::new();
    let position = match &r.position {
        Some(p) if p.rack.max(p.of) > 1 => format!(" | position {}", p.id),
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "\n{} {}{position} | class {} | station {} | procedure {} {}",
        r.dut.device_type,
        r.dut.serial_number,
        r.dut.accuracy_class,
        r.station.id,
        r.procedure.id,
        r.procedure.version
    );
    // The rows first: the detail column is as wide as its longest cell.
    enum Row {
        Cells([String; 9]),
        Message(String),
    }
    let mut rows: Vec<Row> = Vec::new();
    for step in &r.steps {
        for p in &step.ports {
            let (error, u, mpe, detail, verdict) = match &p.result {
                Some(PortResult::Identity {
                    software_version,
                    lrs_hash,
                    passed,
                    ..
                }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("v{software_version} LRS {lrs_hash}"),
                    if *passed {
                        "certified"
                    } else {
                        "NOT CERTIFIED"
                    }
                    .to_string(),
                ),
                Some(PortResult::CurrentSensor {
                    reference_a,
                    readings,
                    mean_error_percent,
                    expanded_u_percent,
                    limit_percent,
                    decision,
                    passed,
                    ..
                }) => match decision {
                    Some(d) => (
                        e_of(*mean_error_percent, *expanded_u_percent),
                        u_of(*expanded_u_percent),
                        format!("±{limit_percent}"),
                        format!(
                            "{} × {} A",
                            readings.len(),
                            readings.first().map_or("", |r| r.as_str())
                        ),
                        if *passed {
                            conformity_word(d.conformity).to_string()
                        } else {
                            "FAIL".into()
                        },
                    ),
                    // A phase that carries no current: its readings summed up (they
                    // are whole amperes), against no limit but zero.
                    None => (
                        String::new(),
                        String::new(),
                        String::new(),
                        readings_summary(readings, *reference_a),
                        if *passed {
                            "reads 0 A"
                        } else {
                            "FAIL: reads current"
                        }
                        .into(),
                    ),
                },
                Some(PortResult::Transition {
                    probes,
                    mu_a,
                    error_percent,
                    error_beyond_percent,
                    expanded_u_percent,
                    limit_percent,
                    decision,
                    passed,
                    ..
                }) => (
                    error_percent.map_or_else(
                        || error_beyond_percent.map_or_else(String::new, |b| format!("{b:+.1}…")),
                        |e| e_of(e, expanded_u_percent.unwrap_or(0.0)),
                    ),
                    expanded_u_percent.map_or_else(String::new, u_of),
                    format!("±{limit_percent}"),
                    match error_percent {
                        Some(_) => format!("{} tel, μ {mu_a:.3} A", probes.len()),
                        None => format!("{} tel", probes.len()),
                    },
                    match decision {
                        Some(d) if *passed => conformity_word(d.conformity).to_string(),
                        Some(_) if error_percent.is_none() => "FAIL: outside ±limit".into(),
                        Some(_) => "FAIL".into(),
                        None => "FAIL: not located".into(),
                    },
                ),
                Some(PortResult::Telegrams {
                    telegrams,
                    crc_failures,
                    firmware_seen,
                    passed,
                    ..
                }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!(
                        "{telegrams} ok, {crc_failures} CRC, fw {}",
                        firmware_seen.join(",")
                    ),
                    if *passed { "pass" } else { "FAIL" }.to_string(),
                ),
                Some(PortResult::Inspection { checks, passed, .. }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!(
                        "{}/{} confirmed",
                        checks.iter().filter(|c| c.confirmed).count(),
                        checks.len()
                    ),
                    if *passed { "pass" } else { "FAIL" }.to_string(),
                ),
                Some(PortResult::Register {
                    comparison,
                    expanded_u_percent,
                    limit,
                    decision,
                    consistent_with_pulses,
                    ..
                }) => (
                    e_of(comparison.error_vs_reference_percent, *expanded_u_percent),
                    u_of(*expanded_u_percent),
                    format!("±{}", limit.mpe_percent),
                    format!(
                        "{:.1} Wh reg, {:.2} Wh LED",
                        comparison.register_wh, comparison.pulses_wh
                    ),
                    if *consistent_with_pulses {
                        conformity_word(decision.conformity).to_string()
                    } else {
                        "fail: register ≠ pulses".into()
                    },
                ),
                Some(PortResult::Accuracy {
                    error_percent,
                    expanded_u_percent,
                    limit,
                    decision,
                    repeats,
                    ..
                }) => (
                    e_of(*error_percent, *expanded_u_percent),
                    u_of(*expanded_u_percent),
                    format!("±{}", limit.mpe_percent),
                    format!(
                        "{}×{}",
                        repeats.len(),
                        repeats.first().map_or(0, |x| x.dut_pulses)
                    ),
                    conformity_word(decision.conformity).to_string(),
                ),
                Some(PortResult::Starting {
                    pulse_times_s,
                    required,
                    window_s,
                    passed,
                    ..
                }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!(
                        "{}/{} in {:.1} s",
                        pulse_times_s.len().min(*required as usize),
                        required,
                        window_s
                    ),
                    if *passed {
                        "pass"
                    } else {
                        "fail: did not start"
                    }
                    .to_string(),
                ),
                Some(PortResult::NoLoad {
                    pulses,
                    max_pulses,
                    duration_s,
                    passed,
                    ..
                }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{pulses} (≤{max_pulses}) in {duration_s:.0} s"),
                    if *passed { "pass" } else { "fail: creeps" }.to_string(),
                ),
                // The deciding difference stands for the port; the verdict names the
                // phases whose difference is out of limits.
                Some(PortResult::LoadDifference {
                    balanced_step,
                    comparisons,
                    limit_percent,
                    passed,
                    ..
                }) => {
                    let worst = meterbench_runner::record::LoadComparison::deciding(comparisons);
                    let failed: Vec<String> = comparisons
                        .iter()
                        .filter(|c| !c.difference.decision.accepted)
                        .map(|c| phases_word(&c.phases))
                        .collect();
                    (
                        worst.map_or_else(String::new, |c| {
                            e_of(
                                c.difference.difference_percent,
                                c.difference.expanded_u_percent,
                            )
                        }),
                        worst.map_or_else(String::new, |c| u_of(c.difference.expanded_u_percent)),
                        format!("±{limit_percent}"),
                        format!("Δ vs {balanced_step}"),
                        if *passed {
                            "pass".to_string()
                        } else {
                            format!("FAIL: {}", failed.join(" "))
                        },
                    )
                }
                Some(PortResult::PulseCheck {
                    seen,
                    required,
                    passed,
                }) => (
                    String::new(),
                    String::new(),
                    String::new(),
                    // Every pulse the check saw, against the few it needs.
                    format!("{seen} (≥{required})"),
                    if *passed { "ok" } else { "no pulses" }.to_string(),
                ),
                None => (
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                    format!("{:?}", step.outcome).to_lowercase(),
                ),
            };
            let failed = p.result.as_ref().is_some_and(|x| !x.passed());
            if failed && latest.contains(&(step.index, step.attempt)) {
                let numbers = if error.is_empty() {
                    String::new()
                } else if u.is_empty() {
                    format!(": {error} % against {mpe} %")
                } else {
                    format!(": {error} % against {mpe} % (U {u} %)")
                };
                deciding.push(format!(
                    "{} {}, port {}{numbers}: {verdict}",
                    if colour { "✗" } else { "-" },
                    shown_name(step),
                    p.port
                ));
            }
            let verdict = if verdict.starts_with("conditional pass") {
                paint(&verdict, yellow)
            } else if failed {
                paint(&verdict, red)
            } else {
                verdict
            };
            // A check computed from other points, or one that reads, inspects or listens
            // without a load of its own, shows none.
            let no_load_of_its_own = matches!(
                step.kind,
                StepKind::LoadDifference
                    | StepKind::Identity
                    | StepKind::Inspection
                    | StepKind::Telegrams
            );
            rows.push(Row::Cells([
                shown_name(step),
                p.port.clone(),
                if no_load_of_its_own {
                    String::new()
                } else {
                    format!("{:.3} A", step.load.current_a)
                },
                if no_load_of_its_own {
                    String::new()
                } else {
                    step.load.power_factor.to_string()
                },
                error,
                u,
                mpe,
                detail,
                verdict,
            ]));
        }
        if step.ports.iter().all(|p| p.result.is_none())
            && let Some(m) = &step.message
        {
            rows.push(Row::Message(format!("{:<width$} {m}", shown_name(step))));
        }
    }
    let detail = rows
        .iter()
        .filter_map(|r| match r {
            Row::Cells(c) => Some(c[7].chars().count()),
            Row::Message(_) => None,
        })
        .max()
        .unwrap_or(0)
        .max("pulses".len());
    let _ = writeln!(
        s,
        "{:<width$} {:<6} {:>9} {:>6} {:>9} {:>9} {:>7}  {:<detail$}  result",
        "step", "port", "current", "PF", "error %", "U(k=2) %", "MPE %", "pulses"
    );
    for row in rows {
        match row {
            Row::Cells([name, port, current, pf, error, u, mpe, d, verdict]) => {
                let _ = writeln!(
                    s,
                    "{name:<width$} {port:<6} {current:>9} {pf:>6} {error:>9} {u:>9} {mpe:>7}  {d:<detail$}  {verdict}"
                );
            }
            Row::Message(m) => {
                let _ = writeln!(s, "{m}");
            }
        }
    }
    let t = &r.timing;
    // A run cut short has no expected time to compare with: the expectation covers the
    // steps that finished, the bench time the one cut short too.
    let cut_short = matches!(r.outcome, Outcome::Aborted | Outcome::Error);
    if cut_short || t.physical_floor_s <= 0.0 {
        let _ = writeln!(
            s,
            "\nbench time {:.1} s | wall time {:.2} s",
            t.bench_duration_s, t.wall_s
        );
    } else {
        let overhead = (t.bench_duration_s / t.physical_floor_s - 1.0) * 100.0;
        let _ = writeln!(
            s,
            "\nbench time {:.1} s | expected from settling and pulse periods {:.1} s ({overhead:+.1} %) | wall time {:.2} s",
            t.bench_duration_s, t.physical_floor_s, t.wall_s
        );
    }
    // Before anyone touches the terminals: what the source said of its output at the end,
    // after a run cut short always, otherwise when it did not confirm it off.
    match r.source.off_confirmed {
        Some(true) if cut_short => {
            let _ = writeln!(s, "source: output off, confirmed by the source");
        }
        Some(true) => {}
        Some(false) => {
            let _ = writeln!(
                s,
                "{}",
                paint(
                    "source: output OFF NOT CONFIRMED by the source: treat the terminals as live until it is switched off and checked",
                    red
                )
            );
        }
        None => {
            let _ = writeln!(
                s,
                "source: its output at the end is not known: treat the terminals as live until checked"
            );
        }
    }
    for d in &r.deviations {
        let _ = writeln!(s, "deviation: {}", d.describe());
    }
    let word = verdict(r.outcome);
    let _ = write!(
        s,
        "VERDICT: {}{}",
        paint(
            word,
            match r.outcome {
                Outcome::Pass => green,
                Outcome::Fail => red,
                _ => yellow,
            }
        ),
        r.outcome_reason
            .as_deref()
            .map(|m| format!(" — {m}"))
            .unwrap_or_default()
    );
    for line in &deciding {
        let _ = write!(s, "\n  {line}");
    }
    s
}

/// A result rounded to its U's last digit, U to two significant digits (EA-4/02), as the
/// certificate and the DCC print them.
fn e_of(error: f64, u: f64) -> String {
    crate::view::round_result(error, u).signed
}

fn u_of(u: f64) -> String {
    crate::view::round_result(0.0, u).u
}

/// A step's name with its attempt after the first: `Iref PF1 #2`.
fn shown_name(step: &meterbench_runner::record::StepRecord) -> String {
    if step.attempt > 1 {
        format!("{} #{}", step.name, step.attempt)
    } else {
        step.name.clone()
    }
}

/// The outcome as the record spells it.
pub fn verdict(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS",
        Outcome::Fail => "FAIL",
        Outcome::NotDecidable => "NOT DECIDABLE",
        Outcome::Error => "ERROR",
        Outcome::Aborted => "ABORTED",
        Outcome::InProgress => "IN PROGRESS",
    }
}

/// A phase's readings where no current flows: how many, and the values read (whole
/// amperes as the sensor sends them), e.g. `12 × 0 A`, `12 readings, 0 to 1 A`.
fn readings_summary(readings: &[String], reference_a: f64) -> String {
    let values: Vec<f64> = readings.iter().filter_map(|r| r.parse().ok()).collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    match readings {
        [] => format!("no readings, {reference_a} A flowing"),
        _ if values.len() < readings.len() => format!("{} readings", readings.len()),
        _ if lo == hi => format!("{} × {} A", readings.len(), readings[0]),
        _ => format!("{} readings, {lo} to {hi} A", readings.len()),
    }
}

/// As a technician reads it: `pass`, `FAIL`, `conditional pass`, `CONDITIONAL FAIL`.
fn conformity_word(c: meterbench_metrology::Conformity) -> &'static str {
    use meterbench_metrology::Conformity::*;
    match c {
        Pass => "pass",
        Fail => "FAIL",
        ConditionalPass => "conditional pass",
        ConditionalFail => "CONDITIONAL FAIL",
        NoStatement => "NOT DECIDABLE",
    }
}

/// `L1`, `L1 L2`.
fn phases_word(phases: &[meterbench_procedure::Phase]) -> String {
    phases
        .iter()
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}
