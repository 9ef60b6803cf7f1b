//! The technician of a simulated station: answers the bench's questions from what the
//! simulated DUT shows. It reads the simulated LCD (software identity, the energy
//! registers at the moment of the question), scans the simulated nameplate, and looks
//! at seals the simulation may have broken. It is another operator, like a person or an
//! answers file; the runner does not know which one it asks.

use meterbench_procedure::{SimDutSpec, SimulationSpec};
use meterbench_runner::operator::{AnswerFormat, Operator, OperatorError, Question, validate};
use meterbench_runner::record::AnsweredBy;
use meterbench_sim::SharedWorld;

pub struct SimulatedTechnician {
    world: SharedWorld,
    sim: SimulationSpec,
    /// The position a question without one is about (a session of one position).
    default_position: u32,
    /// Every question and answer, in order (kept for tests).
    pub transcript: Vec<(String, String)>,
}

impl SimulatedTechnician {
    pub fn new(world: SharedWorld, sim: SimulationSpec, default_position: u32) -> Self {
        SimulatedTechnician {
            world,
            sim,
            default_position,
            transcript: Vec::new(),
        }
    }

    fn cannot(key: &str, why: &str) -> OperatorError {
        OperatorError::Io {
            key: key.into(),
            message: format!("the simulated technician cannot answer: {why}"),
        }
    }

    fn answer(&self, q: &Question) -> Result<String, OperatorError> {
        let key = q.key.as_str();
        let position = q.position.unwrap_or(self.default_position);
        let dut: &SimDutSpec = self.sim.cpim1000(position).ok_or_else(|| {
            Self::cannot(
                key,
                &format!("no simulated meter sits at position {position}"),
            )
        })?;
        let software = || {
            dut.software
                .as_ref()
                .ok_or_else(|| Self::cannot(key, "the simulated DUT declares no `software:`"))
        };
        if let Some(rest) = key
            .strip_prefix("lcd.register_before.")
            .or_else(|| key.strip_prefix("lcd.register_after."))
        {
            let AnswerFormat::Reading { decimals } = q.format else {
                return Err(Self::cannot(key, "a register is read as a number"));
            };
            return self
                .world
                .lock()
                .unwrap()
                .display_register_kwh(position, rest, decimals as u32)
                .ok_or_else(|| Self::cannot(key, &format!("the DUT has no port `{rest}`")));
        }
        if let Some(seal) = key.strip_prefix("seal.") {
            let broken = dut.broken_seals.iter().any(|s| s == seal);
            return Ok(if broken { "no" } else { "yes" }.into());
        }
        if key.starts_with("label.") {
            return Ok("yes".into());
        }
        // The simulated LCD shows no flags.
        if key.starts_with("lcd.flags.") {
            return Ok("-".into());
        }
        Ok(match key {
            // A simulated meter that never answers on CAN did not start: the LCD shows
            // the boot-loader text.
            "lcd.startup_fault" => if software()?.can_silent { "yes" } else { "no" }.into(),
            "lcd.software_version" => software()?.software_version.clone(),
            "lcd.software_hash" => software()?.software_hash.clone(),
            // The LCD shows one LRS hash; a port whose hash differs shows that one.
            "lcd.lrs_hash" => {
                let sw = software()?;
                let first = sw.lrs_hash.values().next().cloned().unwrap_or_default();
                sw.lrs_hash
                    .values()
                    .find(|h| **h != first)
                    .cloned()
                    .unwrap_or(first)
            }
            "serial.scan" | "serial.rescan" => dut.serial_number.clone(),
            _ => return Err(Self::cannot(key, "no such thing on the simulated DUT")),
        })
    }
}

impl Operator for SimulatedTechnician {
    fn answered_by(&self, _: Option<u32>) -> AnsweredBy {
        AnsweredBy::SimulatedTechnician
    }

    fn ask(&mut self, q: &Question) -> Result<String, OperatorError> {
        let text = self.answer(q)?;
        // The same check a typed answer gets.
        let answer = validate(q.format, &text).map_err(|why| OperatorError::Io {
            key: q.key.clone(),
            message: format!("the simulated DUT shows `{text}`, which is refused: {why}"),
        })?;
        self.transcript.push((q.key.clone(), answer.clone()));
        Ok(answer)
    }
}
