//! The questions a procedure asks the operator (or an answers file), built in one place:
//! the steps ask them, and every answers file is checked against them when a session is
//! loaded. A missing or malformed answer is then refused at its line before anything is
//! switched on, not found with the meter already powered.

use crate::operator::{AnswerFormat, Question, validate};
use crate::plan::{Action, PlannedStep};
use meterbench_procedure::{
    Answers, DataError, DutFixture, Fixture, IdentitySource, InspectionStep,
};

fn question(key: String, prompt: String, format: AnswerFormat) -> Question {
    Question {
        position: None,
        show_position: false,
        key,
        prompt,
        format,
    }
}

/// What the identity step asks when it reads the LCD.
pub(crate) struct LcdIdentity {
    pub startup_fault: Question,
    pub software_version: Question,
    pub software_hash: Question,
    pub lrs_hash: Question,
    /// Each port's flags, by port name.
    pub flags: Vec<(String, Question)>,
}

impl LcdIdentity {
    fn all(self) -> Vec<Question> {
        let mut v = vec![
            self.startup_fault,
            self.software_version,
            self.software_hash,
            self.lrs_hash,
        ];
        v.extend(self.flags.into_iter().map(|(_, q)| q));
        v
    }
}

pub(crate) fn lcd_identity(fixture: &Fixture) -> LcdIdentity {
    // Hash lengths as the certificate lists them.
    let digits = |f: fn(&meterbench_procedure::CertifiedIdentity) -> &String| {
        fixture.certified_software.first().map_or(8, |c| f(c).len())
    };
    LcdIdentity {
        startup_fault: question(
            "lcd.startup_fault".into(),
            "Does the LCD show \"-CHARGEPOIN+\" (the meter did not leave its boot loader)?".into(),
            AnswerFormat::YesNo,
        ),
        software_version: question(
            "lcd.software_version".into(),
            "Overall software version on the LCD".into(),
            AnswerFormat::Version,
        ),
        software_hash: question(
            "lcd.software_hash".into(),
            "Overall software hash on the LCD".into(),
            AnswerFormat::HexHash {
                digits: digits(|c| &c.software_hash),
            },
        ),
        lrs_hash: question(
            "lcd.lrs_hash".into(),
            "Legally relevant software (LRS) hash on the LCD".into(),
            AnswerFormat::HexHash {
                digits: digits(|c| &c.lrs_hash),
            },
        ),
        flags: fixture
            .ports
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    question(
                        format!("lcd.flags.{}", p.name),
                        format!("Flags of the {} port on the LCD, as shown", p.name),
                        AnswerFormat::Shown,
                    ),
                )
            })
            .collect(),
    }
}

pub(crate) fn serial_scan() -> Question {
    question(
        "serial.scan".into(),
        "Scan the serial number (QR code on the label)".into(),
        AnswerFormat::SerialNumber,
    )
}

/// The scan again, after one that gave another serial number than the run's: a misread
/// label or a slip of the hand is no reason to fail a device.
pub(crate) fn serial_rescan(scanned: &str, expected: &str) -> Question {
    question(
        "serial.rescan".into(),
        format!(
            "The scanned serial number {scanned} is not the one this run is for ({expected}): \
             scan the serial number again"
        ),
        AnswerFormat::SerialNumber,
    )
}

/// One thing the inspection asks to confirm.
pub(crate) struct Confirmation {
    pub question: Question,
    /// What it is, for the record.
    pub what: String,
    /// The problem recorded when it is not confirmed.
    pub problem: String,
}

/// The fixture's seals (if the step confirms them) and the step's labels.
pub(crate) fn confirmations(i: &InspectionStep, fixture: &Fixture) -> Vec<Confirmation> {
    let profile = fixture.inspection.as_ref();
    let seals = if i.seals {
        profile.map_or(&[][..], |p| p.seals.as_slice())
    } else {
        &[]
    };
    let mut out: Vec<Confirmation> = seals
        .iter()
        .map(|seal| Confirmation {
            question: question(
                format!("seal.{}", seal.key),
                format!("{}: present and intact?", seal.check),
                AnswerFormat::YesNo,
            ),
            what: seal.check.clone(),
            problem: format!("seal not intact: {}", seal.check),
        })
        .collect();
    // The procedure's labels are checked against the fixture's when it is loaded.
    let labels = i
        .labels
        .iter()
        .filter_map(|k| profile.and_then(|p| p.labels.iter().find(|l| &l.key == k)));
    for label in labels {
        out.push(Confirmation {
            question: question(
                format!("label.{}", label.key),
                format!(
                    "{}: present, legible and showing every field: {}?",
                    label.title,
                    label.fields.join("; ")
                ),
                AnswerFormat::YesNo,
            ),
            what: label.title.clone(),
            problem: format!("{} is missing a field or illegible", label.title),
        });
    }
    out
}

/// A port's energy register read from the LCD, `when` = `before` or `after` the dose.
pub(crate) fn register_reading(port: &str, when: &str, decimals: u32) -> Question {
    question(
        format!("lcd.register_{when}.{port}"),
        format!("Energy register of the {port} port on the LCD, kWh ({when} the dose)"),
        AnswerFormat::Reading {
            decimals: decimals as usize,
        },
    )
}

/// Every question the plan asks about each device, in the order asked, each once.
pub fn questions(plan: &[PlannedStep], fixture: &DutFixture) -> Vec<Question> {
    let DutFixture::Meter(fixture) = fixture else {
        // A current sensor's procedure asks nothing: its readings come over P1.
        return Vec::new();
    };
    let mut out: Vec<Question> = Vec::new();
    for ps in plan {
        let asked = match &ps.action {
            Action::Identity(i) if i.read_from == IdentitySource::Lcd => {
                lcd_identity(fixture).all()
            }
            Action::Inspection(i) => {
                let mut v: Vec<Question> = i.scan_serial.then(serial_scan).into_iter().collect();
                v.extend(confirmations(i, fixture).into_iter().map(|c| c.question));
                v
            }
            Action::Register(r) if r.read_from == IdentitySource::Lcd => {
                let decimals = fixture.register.as_ref().map_or(0, |p| p.decimals);
                ["before", "after"]
                    .iter()
                    .flat_map(|when| {
                        fixture
                            .ports
                            .iter()
                            .map(move |p| register_reading(&p.name, when, decimals))
                    })
                    .collect()
            }
            _ => Vec::new(),
        };
        for q in asked {
            if !out.iter().any(|o| o.key == q.key) {
                out.push(q);
            }
        }
    }
    out
}

/// An answers file against the questions of a plan: every question answered, every
/// answer in its format (an error at the answer's line naming the key and why).
/// Registers are the exception to "known before": their readings are only checked for
/// their format here, their values when the dose has been applied.
/// An answers file that scans another serial number than the device's: the run would
/// fail its inspection at once (another device than the run's), so it is refused before
/// anything is switched on, at the answer's line.
pub fn check_scanned_serial(
    answers: &Answers,
    position: u32,
    serial: &str,
) -> Result<(), DataError> {
    let key = serial_scan().key;
    let Some((text, _)) = answers.get(&key) else {
        return Ok(());
    };
    match validate(AnswerFormat::SerialNumber, text) {
        Ok(scanned) if scanned != serial => Err(answers.error(
            &key,
            format!(
                "scans serial number {scanned}, but the device at position {position} is {serial}: its inspection would fail at once as another device's; refused before anything is switched on"
            ),
        )),
        _ => Ok(()),
    }
}

pub fn check_answers(answers: &Answers, questions: &[Question]) -> Result<(), DataError> {
    let missing: Vec<&str> = questions
        .iter()
        .filter(|q| answers.get(&q.key).is_none())
        .map(|q| q.key.as_str())
        .collect();
    if let Some(first) = missing.first() {
        let q = questions.iter().find(|q| q.key == *first).expect("listed");
        return Err(answers.error(
            first,
            format!(
                "the procedure asks {} question(s) this file does not answer: {} (the first: {}); refused before anything is switched on",
                missing.len(),
                missing.join(", "),
                q.prompt
            ),
        ));
    }
    for q in questions {
        let (text, _) = answers.get(&q.key).expect("checked above");
        if let Err(why) = validate(q.format, text) {
            return Err(answers.error(
                &q.key,
                format!(
                    "answer to `{}` not accepted: {why} ({}); refused before anything is switched on",
                    q.key,
                    q.format.hint()
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_procedure::LoadedFile;
    use std::path::Path;

    fn answers(text: &str) -> Answers {
        Answers::from_file(LoadedFile::from_text(
            Path::new("a.yaml"),
            format!("schema: meterbench.answers/1\nanswers:\n{text}"),
        ))
        .unwrap()
    }

    fn q(key: &str, format: AnswerFormat) -> Question {
        question(key.into(), format!("prompt of {key}"), format)
    }

    #[test]
    fn an_answers_file_that_scans_another_device_is_refused_at_its_line() {
        let wrong = answers("  serial.scan: SIM-CPIM-000999\n");
        let e = check_scanned_serial(&wrong, 2, "SIM-CPIM-000123")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a.yaml:3:")
                && e.contains("scans serial number SIM-CPIM-000999")
                && e.contains("the device at position 2 is SIM-CPIM-000123"),
            "{e}"
        );
        // As scanned: a GS1 code of the right serial, or the serial with spaces around it.
        let gs1 = answers("  serial.scan: \"]d2010401234567890121SIM-CPIM-000123\"\n");
        assert!(check_scanned_serial(&gs1, 1, "SIM-CPIM-000123").is_ok());
        let right = answers("  serial.scan: \" SIM-CPIM-000123 \"\n");
        assert!(check_scanned_serial(&right, 1, "SIM-CPIM-000123").is_ok());
        // A file that does not scan is none of this check's business.
        assert!(check_scanned_serial(&answers("  lcd.lrs_hash: A3F09C4E\n"), 1, "X").is_ok());
    }

    #[test]
    fn every_question_answered_in_its_format() {
        let qs = [
            q("lcd.lrs_hash", AnswerFormat::HexHash { digits: 8 }),
            q("seal.top", AnswerFormat::YesNo),
        ];
        let ok = answers("  lcd.lrs_hash: \"a3f09c4e\"\n  seal.top: \"y\"\n  other: \"x\"\n");
        assert!(check_answers(&ok, &qs).is_ok());

        let missing = answers("  other: \"x\"\n");
        let e = check_answers(&missing, &qs).unwrap_err().to_string();
        assert!(
            e.starts_with("a.yaml:2:1: the procedure asks 2 question(s) this file does not answer: lcd.lrs_hash, seal.top (the first: prompt of lcd.lrs_hash)"),
            "{e}"
        );

        let bad = answers("  lcd.lrs_hash: \"A3F09C4\"\n  seal.top: \"maybe\"\n");
        let e = check_answers(&bad, &qs).unwrap_err().to_string();
        assert!(
            e.starts_with("a.yaml:3:17: answer to `lcd.lrs_hash` not accepted: 7 characters"),
            "{e}"
        );
    }
}
