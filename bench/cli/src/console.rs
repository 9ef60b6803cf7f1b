//! Live progress on the terminal while a run goes on.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use meterbench_runner::{Event, Observer, Outcome};

pub struct ConsoleObserver {
    bar: Option<ProgressBar>,
    draw: bool,
}

impl ConsoleObserver {
    pub fn new(draw: bool) -> Self {
        ConsoleObserver { bar: None, draw }
    }
}

impl Observer for ConsoleObserver {
    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::RunStarted { run_id, steps } => {
                eprintln!("run {run_id}: {steps} steps");
            }
            Event::StepStarted {
                index,
                total,
                name,
                expected_s,
            } => {
                let bar = ProgressBar::new(1);
                bar.set_draw_target(if self.draw {
                    ProgressDrawTarget::stderr_with_hz(10)
                } else {
                    ProgressDrawTarget::hidden()
                });
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>22} [{bar:30}] {pos}/{len} pulses  {msg}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{}/{} {}", index + 1, total, name));
                bar.set_message(format!("≈{expected_s:.0} s"));
                self.bar = Some(bar);
            }
            Event::Progress {
                counted,
                needed,
                remaining_s,
                elapsed_s,
                ..
            } => {
                if let Some(bar) = &self.bar {
                    bar.set_length((*needed).max(1));
                    bar.set_position(*counted);
                    bar.set_message(format!("{elapsed_s:.1} s, ≈{remaining_s:.1} s left"));
                }
            }
            Event::StepFinished(step) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                let mark = match step.outcome {
                    Outcome::Pass => "PASS ",
                    Outcome::Fail => "FAIL ",
                    Outcome::Error => "ERROR",
                    Outcome::Aborted => "ABORT",
                    Outcome::InProgress => "…    ",
                };
                eprintln!(
                    "{mark} {:<22} {:>7.1} s{}",
                    step.name,
                    step.duration_s,
                    step.message
                        .as_deref()
                        .map(|m| format!("  {m}"))
                        .unwrap_or_default()
                );
            }
            Event::Log(m) => eprintln!("{m}"),
            Event::RunFinished(_) => {}
        }
    }
}
