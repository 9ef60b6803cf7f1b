//! Live progress on the terminal while a session goes on: a bar per position during each
//! step, a line per position when it ends, and a summary of the rack at the end.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use meterbench_runner::{Event, EventKind, Observer, Outcome, Session};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// Without bars (output to a file, a pipe or a journal), a step's progress is written as
/// a line at most this often, so that a long step (the starting test's 26 s, the no-load
/// test's minutes at `--realtime`) shows the run is alive; a run faster than this (the
/// simulated bench unpaced) prints none.
const PROGRESS_LINE_EVERY: Duration = Duration::from_secs(10);

pub struct ConsoleObserver {
    multi: MultiProgress,
    bars: BTreeMap<u32, ProgressBar>,
    draw: bool,
    /// Progress was asked for but bars cannot be drawn: progress lines instead.
    progress_lines: bool,
    /// When the last line was written (progress lines count from it).
    last_line: Instant,
    /// The session measures several positions: lines name theirs.
    several: bool,
    step: String,
}

impl ConsoleObserver {
    pub fn new(draw: bool, several: bool) -> Self {
        // Bars only on a terminal: drawn into a file or a pipe, indicatif drops the lines
        // printed above them, and with them what the run says.
        let wanted = draw;
        let draw = wanted && std::io::IsTerminal::is_terminal(&std::io::stderr());
        let multi = MultiProgress::with_draw_target(if draw {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        ConsoleObserver {
            multi,
            bars: BTreeMap::new(),
            draw,
            progress_lines: wanted && !draw,
            last_line: Instant::now(),
            several,
            step: String::new(),
        }
    }

    /// A line above the bars (or on stderr when they are hidden); a closed terminal
    /// loses the line, never the run.
    fn line(&mut self, text: &str) {
        self.last_line = Instant::now();
        if self.draw {
            let _ = self.multi.println(text);
        } else {
            let _ = writeln!(std::io::stderr(), "{text}");
        }
    }

    fn position_label(&self, position: u32) -> String {
        if self.several {
            format!("P{position:<2} ")
        } else {
            String::new()
        }
    }
}

impl ConsoleObserver {
    /// The progress lines due at `now` (none if a line was written within
    /// [`PROGRESS_LINE_EVERY`]): per position, the step and its slowest port's progress,
    /// or the source settling.
    fn progress_text(
        &self,
        now: Instant,
        ports: &[meterbench_runner::PortProgress],
        elapsed_s: f64,
        remaining_s: f64,
    ) -> Vec<String> {
        if now.saturating_duration_since(self.last_line) < PROGRESS_LINE_EVERY {
            return Vec::new();
        }
        if ports.is_empty() {
            let (_, _, words) = settling_line(elapsed_s, remaining_s);
            return self
                .bars
                .keys()
                .map(|&p| format!("      {}{}: {words}", self.position_label(p), self.step))
                .collect();
        }
        // Positions still in the step (one that finished it has its line already).
        slowest_ports(ports)
            .into_iter()
            .filter(|(p, _)| self.bars.contains_key(p))
            .map(|(p, (counted, needed))| {
                let (_, _, words) = progress_line(counted, needed, elapsed_s, remaining_s);
                format!("      {}{}: {words}", self.position_label(p), self.step)
            })
            .collect()
    }
}

/// Each position's slowest port: (counted, needed) of the port with the fewest pulses.
fn slowest_ports(ports: &[meterbench_runner::PortProgress]) -> BTreeMap<u32, (u64, u64)> {
    let mut slowest: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for p in ports {
        let e = slowest.entry(p.position).or_insert((p.counted, p.needed));
        if p.counted < e.0 {
            *e = (p.counted, p.needed);
        }
    }
    slowest
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "PASS ",
        Outcome::Fail => "FAIL ",
        Outcome::NotDecidable => "N/D  ",
        Outcome::Error => "ERROR",
        Outcome::Aborted => "ABORT",
        Outcome::InProgress => "…    ",
    }
}

impl Observer for ConsoleObserver {
    fn event(&mut self, event: &Event) {
        match &event.what {
            EventKind::SessionStarted {
                session_id,
                positions,
                steps,
                ..
            } => {
                if positions.len() == 1 {
                    self.line(&format!(
                        "run {}: {} steps",
                        positions[0].run_id,
                        steps.len()
                    ));
                } else {
                    self.line(&format!(
                        "session {session_id}: {} positions, {} steps",
                        positions.len(),
                        steps.len()
                    ));
                    for p in positions {
                        self.line(&format!(
                            "  P{:<2} {}  run {}",
                            p.position, p.serial, p.run_id
                        ));
                    }
                }
            }
            EventKind::StepStarted {
                index,
                name,
                attempt,
                positions,
                expected_s,
                ..
            } => {
                for bar in std::mem::take(&mut self.bars).into_values() {
                    bar.finish_and_clear();
                }
                self.step = if *attempt > 1 {
                    format!("{} {name} (attempt {attempt})", index + 1)
                } else {
                    format!("{} {name}", index + 1)
                };
                for &p in positions {
                    let bar = self.multi.add(ProgressBar::new(1));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {msg}")
                            .expect("template")
                            .progress_chars("=> "),
                    );
                    bar.set_prefix(format!("{}{}", self.position_label(p), self.step));
                    bar.set_message(format!("≈{expected_s:.0} s"));
                    self.bars.insert(p, bar);
                }
            }
            EventKind::Progress {
                elapsed_s,
                remaining_s,
                ports,
                ..
            } => {
                if self.progress_lines {
                    for line in self.progress_text(Instant::now(), ports, *elapsed_s, *remaining_s)
                    {
                        self.line(&line);
                    }
                    return;
                }
                // Nothing counted yet: the source settling. Its time moves on every bar.
                if ports.is_empty() {
                    let (length, at, message) = settling_line(*elapsed_s, *remaining_s);
                    for bar in self.bars.values() {
                        bar.set_length(length);
                        bar.set_position(at);
                        bar.set_message(message.clone());
                    }
                }
                for (position, (counted, needed)) in slowest_ports(ports) {
                    if let Some(bar) = self.bars.get(&position) {
                        let (length, at, message) =
                            progress_line(counted, needed, *elapsed_s, *remaining_s);
                        bar.set_length(length);
                        bar.set_position(at);
                        bar.set_message(message);
                    }
                }
            }
            EventKind::StepFinished { position, step } => {
                if let Some(bar) = self.bars.remove(position) {
                    bar.finish_and_clear();
                }
                self.line(&format!(
                    "{} {}{:<22} {:>7.1} s{}",
                    mark(step.outcome),
                    self.position_label(*position),
                    step.name,
                    step.duration_s,
                    step.message
                        .as_deref()
                        .map(|m| format!("  {m}"))
                        .unwrap_or_default()
                ));
            }
            EventKind::Log { position, message } => match position {
                Some(p) => {
                    let line = format!("{}{message}", self.position_label(*p));
                    self.line(&line)
                }
                None => self.line(message),
            },
            EventKind::PositionFinished { .. }
            | EventKind::Load { .. }
            | EventKind::SessionFinished { .. } => {}
        }
    }
}

/// One line per position: its device, verdict and why.
pub fn session_summary(session: &Session) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nsession {}", session.session_id);
    let _ = writeln!(
        s,
        "{:<9} {:<20} {:<8} reason",
        "position", "serial", "verdict"
    );
    for r in &session.runs {
        let rec = &r.record;
        let _ = writeln!(
            s,
            "{:<9} {:<20} {:<8} {}",
            rec.position.as_ref().map_or(0, |p| p.id),
            rec.dut.serial_number,
            rec.outcome.word(),
            rec.outcome_reason.as_deref().unwrap_or("")
        );
    }
    let _ = write!(s, "SESSION VERDICT: {}", session.outcome().word());
    s
}

/// A progress bar's length, position and words. A step that counts pulses shows the
/// pulses; one that runs for a time and expects none (the no-load test) shows its time,
/// and the pulses seen only as what they are, not as progress towards a goal.
fn progress_line(
    counted: u64,
    needed: u64,
    elapsed_s: f64,
    remaining_s: f64,
) -> (u64, u64, String) {
    if needed == 0 {
        let total = elapsed_s + remaining_s;
        (
            1000,
            if total > 0.0 {
                (elapsed_s / total * 1000.0).round() as u64
            } else {
                1000
            },
            format!(
                "{elapsed_s:.0} of {total:.0} s, ≈{remaining_s:.0} s left, {counted} pulses seen"
            ),
        )
    } else {
        (
            needed,
            counted.min(needed),
            format!("{counted}/{needed} pulses, {elapsed_s:.1} s, ≈{remaining_s:.1} s left"),
        )
    }
}

/// A bar while the source settles before anything is counted: the step's time so far
/// and left, the bar filled by time.
fn settling_line(elapsed_s: f64, remaining_s: f64) -> (u64, u64, String) {
    let total = elapsed_s + remaining_s;
    (
        1000,
        if total > 0.0 {
            (elapsed_s / total * 1000.0).round() as u64
        } else {
            0
        },
        format!("settling, {elapsed_s:.0} s, ≈{remaining_s:.0} s left"),
    )
}

#[cfg(test)]
mod tests {
    use super::{ConsoleObserver, PROGRESS_LINE_EVERY, ProgressBar, progress_line, settling_line};
    use meterbench_runner::PortProgress;
    use std::time::Duration;

    fn port(position: u32, port: &str, counted: u64, needed: u64) -> PortProgress {
        PortProgress {
            position,
            port: port.into(),
            counted,
            needed,
        }
    }

    /// Written to a pipe or a file (no bars), a long step says where it is every
    /// PROGRESS_LINE_EVERY, naming each position's slowest port; not more often.
    #[test]
    fn without_bars_a_long_step_writes_a_progress_line_every_ten_seconds() {
        let mut o = ConsoleObserver::new(false, true);
        o.step = "2 Ist PF1".into();
        for p in [1, 2] {
            o.bars.insert(p, ProgressBar::hidden());
        }
        let t0 = o.last_line;
        let ports = [
            port(1, "left", 1, 2),
            port(1, "right", 0, 2),
            port(2, "left", 2, 2),
            // Position 3 finished the step already (no bar): no line.
            port(3, "left", 2, 2),
        ];
        let early = t0 + PROGRESS_LINE_EVERY - Duration::from_millis(1);
        assert!(o.progress_text(early, &ports, 14.2, 11.9).is_empty());
        assert_eq!(
            o.progress_text(t0 + PROGRESS_LINE_EVERY, &ports, 14.2, 11.9),
            [
                "      P1  2 Ist PF1: 0/2 pulses, 14.2 s, ≈11.9 s left",
                "      P2  2 Ist PF1: 2/2 pulses, 14.2 s, ≈11.9 s left",
            ]
        );
        // The source settling: nothing counted yet, the step's time on each position.
        assert_eq!(
            o.progress_text(t0 + Duration::from_secs(30), &[], 6.0, 18.0),
            [
                "      P1  2 Ist PF1: settling, 6 s, ≈18 s left",
                "      P2  2 Ist PF1: settling, 6 s, ≈18 s left",
            ]
        );
    }

    #[test]
    fn a_settling_source_shows_the_steps_time() {
        assert_eq!(
            settling_line(6.0, 18.0),
            (1000, 250, "settling, 6 s, ≈18 s left".to_string())
        );
    }

    #[test]
    fn a_timed_step_shows_its_time_and_a_counting_step_its_pulses() {
        assert_eq!(
            progress_line(0, 0, 30.0, 83.0),
            (
                1000,
                265,
                "30 of 113 s, ≈83 s left, 0 pulses seen".to_string()
            )
        );
        assert_eq!(
            progress_line(1, 2, 14.2, 11.9),
            (2, 1, "1/2 pulses, 14.2 s, ≈11.9 s left".to_string())
        );
    }
}
