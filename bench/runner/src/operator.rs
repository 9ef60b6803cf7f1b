//! Operator prompts: what the bench asks a person (or an answers file, or a barcode
//! scanner that types) during a procedure, with the format each answer must have. A
//! mistyped entry at the keyboard is refused with the reason and asked again; a wrong
//! entry in an answers file is an error naming the file, line and key.

use crate::record::AnsweredBy;
use meterbench_procedure::Answers;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// The shape of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerFormat {
    /// A hash as the LCD shows it: exactly `digits` hexadecimal digits (case ignored;
    /// the answer is upper-cased).
    HexHash { digits: usize },
    /// A software version: dot-separated numbers, e.g. `1.8.4`.
    Version,
    /// A register reading: digits with at most `decimals` after the point (never rounded).
    Reading { decimals: usize },
    /// A serial number: printable ASCII without spaces (a barcode scanner's output).
    SerialNumber,
    /// `yes` or `no` (`y`/`n`, any case); normalised to `yes`/`no`.
    YesNo,
    /// Text as shown (symbols the guide gives no meaning to): 1 to 40 printable ASCII
    /// characters; `-` when nothing is shown.
    Shown,
}

impl AnswerFormat {
    /// What to type, for the prompt.
    pub fn hint(self) -> String {
        match self {
            AnswerFormat::HexHash { digits } => format!("{digits} hex digits"),
            AnswerFormat::Version => "e.g. 1.8.4".into(),
            AnswerFormat::Reading { decimals: 1 } => "digits, up to 1 decimal".into(),
            AnswerFormat::Reading { decimals } => format!("digits, up to {decimals} decimals"),
            AnswerFormat::SerialNumber => "scan or type the serial number".into(),
            AnswerFormat::YesNo => "yes/no".into(),
            AnswerFormat::Shown => "as shown, - if nothing".into(),
        }
    }
}

/// The longest serial number kept: the results store's `dut_serial` column (schema.sql).
/// A longer one would fail late, when the run's folder or its row is written.
pub const SERIAL_MAX: usize = 100;

/// Why an answer is refused. Its words here are the terminal's; the station panel gets
/// the code and values as well (`serde`), and says it in the operator's language.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    HashLength {
        got: usize,
        digits: usize,
    },
    NotHexDigit {
        character: char,
    },
    NotVersion,
    NotReading,
    TooManyDecimals {
        got: usize,
        decimals: usize,
    },
    Empty,
    NotInSerial {
        character: char,
    },
    /// Longer than a serial number is kept (the store's `dut_serial`; it also names the
    /// run's folder).
    SerialLength {
        got: usize,
        max: usize,
    },
    /// A scanned GS1 code that does not hold a serial number (the parser's words).
    Gs1 {
        detail: String,
    },
    ShownLength {
        got: usize,
    },
    NotPrintable {
        character: char,
    },
    NotYesNo,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::HashLength { got, digits } => {
                write!(f, "{got} characters, a hash here has {digits}")
            }
            Refusal::NotHexDigit { character } => {
                write!(f, "`{character}` is not a hexadecimal digit (0-9, A-F)")
            }
            Refusal::NotVersion => write!(f, "not numbers separated by dots (e.g. 1.8.4)"),
            Refusal::NotReading => {
                write!(f, "not a reading (digits, optionally a point and decimals)")
            }
            Refusal::TooManyDecimals { got, decimals } => {
                write!(f, "{got} decimals, the display has {decimals}")
            }
            Refusal::Empty => write!(f, "empty"),
            Refusal::NotInSerial { character } => {
                write!(f, "{character:?} is not allowed in a serial number")
            }
            Refusal::SerialLength { got, max } => {
                write!(f, "{got} characters; a serial number has at most {max}")
            }
            Refusal::Gs1 { detail } => write!(f, "{detail}"),
            Refusal::ShownLength { got } => {
                write!(f, "{got} characters; type 1 to 40 (- if nothing is shown)")
            }
            Refusal::NotPrintable { character } => {
                write!(f, "{character:?} is not a printable character")
            }
            Refusal::NotYesNo => write!(f, "answer yes or no"),
        }
    }
}

/// Check an answer against its format; the normalised answer, or why it is refused.
pub fn validate(format: AnswerFormat, text: &str) -> Result<String, Refusal> {
    let t = text.trim();
    match format {
        AnswerFormat::HexHash { digits } => {
            if t.len() != digits {
                return Err(Refusal::HashLength {
                    got: t.chars().count(),
                    digits,
                });
            }
            if let Some(character) = t.chars().find(|c| !c.is_ascii_hexdigit()) {
                return Err(Refusal::NotHexDigit { character });
            }
            Ok(t.to_ascii_uppercase())
        }
        AnswerFormat::Version => {
            let ok = !t.is_empty()
                && t.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Ok(t.to_string())
            } else {
                Err(Refusal::NotVersion)
            }
        }
        AnswerFormat::Reading { decimals } => {
            let (int, frac) = t.split_once('.').unwrap_or((t, ""));
            if int.is_empty()
                || !int.bytes().all(|b| b.is_ascii_digit())
                || !frac.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Refusal::NotReading);
            }
            if frac.len() > decimals {
                return Err(Refusal::TooManyDecimals {
                    got: frac.len(),
                    decimals,
                });
            }
            Ok(t.to_string())
        }
        AnswerFormat::SerialNumber => {
            if meterbench_procedure::gs1::looks_like_gs1(text) {
                // A scanned GS1 code: its serial number, never the raw string (its FNC1
                // separators are control characters).
                meterbench_procedure::gs1::serial_of(
                    text.trim_matches(|c: char| c == ' ' || c == '\n' || c == '\r'),
                )
                .map_err(|detail| Refusal::Gs1 { detail })
            } else if t.is_empty() {
                Err(Refusal::Empty)
            } else if let Some(character) = t.chars().find(|c| !c.is_ascii_graphic()) {
                Err(Refusal::NotInSerial { character })
            } else if t.len() > SERIAL_MAX {
                Err(Refusal::SerialLength {
                    got: t.len(),
                    max: SERIAL_MAX,
                })
            } else {
                Ok(t.to_string())
            }
        }
        AnswerFormat::Shown => {
            if t.is_empty() || t.len() > 40 {
                Err(Refusal::ShownLength { got: t.len() })
            } else if let Some(character) = t.chars().find(|c| !(c.is_ascii_graphic() || *c == ' '))
            {
                Err(Refusal::NotPrintable { character })
            } else {
                Ok(t.to_string())
            }
        }
        AnswerFormat::YesNo => match t.to_ascii_lowercase().as_str() {
            "yes" | "y" => Ok("yes".into()),
            "no" | "n" => Ok("no".into()),
            _ => Err(Refusal::NotYesNo),
        },
    }
}

/// A question to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// The rack position the question is about (`None`: a caller outside a session).
    pub position: Option<u32>,
    /// Show the position with the prompt (the station's rack has several).
    pub show_position: bool,
    /// Stable key, as in answers files: `lcd.lrs_hash`, `seal.power_plate`.
    pub key: String,
    /// What to do or read, in the words of the guide.
    pub prompt: String,
    pub format: AnswerFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{key}: no valid answer after {attempts} attempts (last: {reason})")]
    GaveUp {
        key: String,
        attempts: u32,
        reason: String,
    },
    #[error("{key}: the operator's input ended")]
    InputEnded { key: String },
    #[error("{key}: stopped while waiting for the answer")]
    Stopped { key: String },
    #[error("{0}")]
    AnswersFile(#[from] meterbench_procedure::DataError),
    #[error("{key}: {message}")]
    Io { key: String, message: String },
}

impl Question {
    /// The prompt as shown: with the position first on a rack of several.
    pub fn shown(&self) -> String {
        match self.position {
            Some(p) if self.show_position => format!("Position {p}: {}", self.prompt),
            _ => self.prompt.clone(),
        }
    }
}

/// Whoever answers the bench's questions.
pub trait Operator {
    fn ask(&mut self, question: &Question) -> Result<String, OperatorError>;
    /// Who answers the questions about `position` (for the record).
    fn answered_by(&self, position: Option<u32>) -> AnsweredBy;
}

/// Each position's questions to its own operator (an unattended line's answers file per
/// position), the rest to a default one.
pub struct PerPosition {
    pub by_position: std::collections::BTreeMap<u32, Box<dyn Operator>>,
    pub default: Option<Box<dyn Operator>>,
}

impl PerPosition {
    fn pick(&mut self, position: Option<u32>) -> Option<&mut Box<dyn Operator>> {
        match position.and_then(|p| self.by_position.get_mut(&p)) {
            Some(o) => Some(o),
            None => self.default.as_mut(),
        }
    }
}

impl Operator for PerPosition {
    fn ask(&mut self, q: &Question) -> Result<String, OperatorError> {
        match self.pick(q.position) {
            Some(o) => o.ask(q),
            None => Err(OperatorError::Io {
                key: q.key.clone(),
                message: format!(
                    "no answers for position {}",
                    q.position.map_or("-".to_string(), |p| p.to_string())
                ),
            }),
        }
    }

    fn answered_by(&self, position: Option<u32>) -> AnsweredBy {
        match position.and_then(|p| self.by_position.get(&p)) {
            Some(o) => o.answered_by(position),
            None => self
                .default
                .as_ref()
                .map_or(AnsweredBy::Terminal, |o| o.answered_by(position)),
        }
    }
}

/// A person at a terminal (a barcode scanner types into the same input). Lines are read
/// on a thread of their own, so a stop (Ctrl-C, SIGTERM) ends a question promptly: a
/// powered meter never waits on a prompt nobody answers after the run was stopped.
pub struct TerminalOperator<R, W> {
    input: Option<R>,
    lines: Option<Receiver<std::io::Result<String>>>,
    output: W,
    stop: Option<Arc<AtomicBool>>,
    pub max_attempts: u32,
}

impl<R: BufRead + Send + 'static, W: Write> TerminalOperator<R, W> {
    pub fn new(input: R, output: W) -> Self {
        TerminalOperator {
            input: Some(input),
            lines: None,
            output,
            stop: None,
            max_attempts: 5,
        }
    }

    /// Give up waiting for an answer once `flag` is set.
    pub fn stop_on(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// The next line typed, `None` at the end of the input. The reader thread starts at
    /// the first question, so nothing is read from a terminal no step asks.
    fn next_line(&mut self, key: &str) -> Result<Option<String>, OperatorError> {
        if let Some(mut input) = self.input.take() {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                loop {
                    let mut line = String::new();
                    match input.read_line(&mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            if tx.send(Ok(line)).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                }
            });
            self.lines = Some(rx);
        }
        let Some(lines) = &self.lines else {
            return Ok(None);
        };
        loop {
            match lines.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(line)) => return Ok(Some(line)),
                Ok(Err(e)) => {
                    return Err(OperatorError::Io {
                        key: key.to_string(),
                        message: e.to_string(),
                    });
                }
                // The input ended: a stop that came with it (a closed terminal) is a stop.
                Err(RecvTimeoutError::Disconnected) => {
                    if self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                        return Err(OperatorError::Stopped {
                            key: key.to_string(),
                        });
                    }
                    return Ok(None);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                        return Err(OperatorError::Stopped {
                            key: key.to_string(),
                        });
                    }
                }
            }
        }
    }
}

impl<R: BufRead + Send + 'static, W: Write> Operator for TerminalOperator<R, W> {
    fn answered_by(&self, _: Option<u32>) -> AnsweredBy {
        AnsweredBy::Terminal
    }

    fn ask(&mut self, q: &Question) -> Result<String, OperatorError> {
        let io = |e: std::io::Error| OperatorError::Io {
            key: q.key.clone(),
            message: e.to_string(),
        };
        let mut reason = String::new();
        for _ in 0..self.max_attempts {
            write!(self.output, "{} ({}): ", q.shown(), q.format.hint()).map_err(io)?;
            self.output.flush().map_err(io)?;
            let Some(line) = self.next_line(&q.key)? else {
                return Err(OperatorError::InputEnded { key: q.key.clone() });
            };
            match validate(q.format, &line) {
                Ok(answer) => return Ok(answer),
                Err(why) => {
                    writeln!(self.output, "  not accepted: {why}; please enter it again")
                        .map_err(io)?;
                    reason = why.to_string();
                }
            }
        }
        Err(OperatorError::GaveUp {
            key: q.key.clone(),
            attempts: self.max_attempts,
            reason,
        })
    }
}

/// Answers from a file: a missing or malformed answer is an error with file and line.
pub struct FileOperator {
    pub answers: Answers,
}

impl Operator for FileOperator {
    fn answered_by(&self, _: Option<u32>) -> AnsweredBy {
        AnsweredBy::AnswersFile {
            path: self.answers.file.path.display().to_string(),
            sha256: self.answers.file.sha256.clone(),
        }
    }

    fn ask(&mut self, q: &Question) -> Result<String, OperatorError> {
        let Some((text, _)) = self.answers.get(&q.key) else {
            return Err(self
                .answers
                .error(&q.key, format!("no answer to `{}` ({})", q.key, q.prompt))
                .into());
        };
        validate(q.format, text).map_err(|why| {
            self.answers
                .error(&q.key, format!("answer to `{}` not accepted: {why}", q.key))
                .into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meterbench_procedure::LoadedFile;
    use std::path::Path;

    fn lrs() -> Question {
        Question {
            position: None,
            show_position: false,
            key: "lcd.lrs_hash".into(),
            prompt: "LRS hash on the LCD".into(),
            format: AnswerFormat::HexHash { digits: 8 },
        }
    }

    #[test]
    fn formats() {
        let hash = AnswerFormat::HexHash { digits: 8 };
        assert_eq!(validate(hash, " a3f09c4e\n"), Ok("A3F09C4E".into()));
        let refused = |f, t| validate(f, t).unwrap_err().to_string();
        assert_eq!(
            validate(hash, "A3F0-9C4E"),
            Err(Refusal::HashLength { got: 9, digits: 8 })
        );
        assert_eq!(
            refused(hash, "A3F0-9C4E"),
            "9 characters, a hash here has 8"
        );
        assert!(refused(hash, "A3F09C4G").contains("`G`"));
        assert_eq!(validate(AnswerFormat::Version, "1.8.4"), Ok("1.8.4".into()));
        assert_eq!(
            validate(AnswerFormat::Version, "1..4"),
            Err(Refusal::NotVersion)
        );
        let kwh = AnswerFormat::Reading { decimals: 4 };
        assert_eq!(
            validate(kwh, "000123.4500"),
            Ok("000123.4500".into()),
            "never rounded"
        );
        assert!(refused(kwh, "12.34567").contains("5 decimals"));
        assert_eq!(validate(kwh, "12,5"), Err(Refusal::NotReading));
        assert_eq!(validate(AnswerFormat::YesNo, "Y"), Ok("yes".into()));
        assert_eq!(
            validate(AnswerFormat::SerialNumber, "CP 123"),
            Err(Refusal::NotInSerial { character: ' ' })
        );
        // As long as the store keeps, and not a character more.
        let longest = "S".repeat(SERIAL_MAX);
        assert_eq!(
            validate(AnswerFormat::SerialNumber, &longest),
            Ok(longest.clone())
        );
        let one_more = format!("{longest}7");
        assert_eq!(
            refused(AnswerFormat::SerialNumber, &one_more),
            "101 characters; a serial number has at most 100"
        );
        assert_eq!(validate(AnswerFormat::Shown, " - "), Ok("-".into()));
        assert_eq!(
            refused(AnswerFormat::Shown, "E1 Δ"),
            "'Δ' is not a printable character"
        );
        assert!(refused(AnswerFormat::Shown, "").contains("0 characters"));
    }

    #[test]
    fn a_refusal_goes_to_the_panel_as_a_code_with_its_values() {
        let r = validate(AnswerFormat::Reading { decimals: 4 }, "12.34567").unwrap_err();
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"code": "too_many_decimals", "got": 5, "decimals": 4})
        );
        let r = validate(AnswerFormat::SerialNumber, "]C10104012345678908").unwrap_err();
        assert_eq!(serde_json::to_value(&r).unwrap()["code"], "gs1");
    }

    #[test]
    fn a_mistyped_entry_is_refused_and_asked_again() {
        let input = b"A3F0-9C4E\na3f09c4e\n";
        let mut out = Vec::new();
        let answer = TerminalOperator::new(&input[..], &mut out)
            .ask(&lrs())
            .unwrap();
        assert_eq!(answer, "A3F09C4E");
        let shown = String::from_utf8(out).unwrap();
        assert_eq!(
            shown
                .matches("LRS hash on the LCD (8 hex digits): ")
                .count(),
            2,
            "{shown}"
        );
        assert!(shown.contains("not accepted: 9 characters"), "{shown}");
    }

    #[test]
    fn the_terminal_gives_up_after_the_attempts() {
        let input = b"x\ny\nz\n";
        let mut t = TerminalOperator::new(&input[..], Vec::new());
        t.max_attempts = 3;
        let e = t.ask(&lrs()).unwrap_err();
        assert!(
            matches!(e, OperatorError::GaveUp { attempts: 3, .. }),
            "{e}"
        );
        let e = TerminalOperator::new(&b""[..], Vec::new())
            .ask(&lrs())
            .unwrap_err();
        assert!(matches!(e, OperatorError::InputEnded { .. }), "{e}");
    }

    #[test]
    fn a_stop_ends_a_question_nobody_answers() {
        // An input that never delivers a line (a terminal nobody types at).
        struct Silent;
        impl std::io::Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(0)
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut t = TerminalOperator::new(std::io::BufReader::new(Silent), Vec::new())
            .stop_on(stop.clone());
        let setter = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                stop.store(true, Ordering::SeqCst);
            })
        };
        let started = std::time::Instant::now();
        let e = t.ask(&lrs()).unwrap_err();
        setter.join().unwrap();
        assert!(matches!(e, OperatorError::Stopped { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn an_answers_file_names_line_and_key() {
        let text = "schema: meterbench.answers/1\nanswers:\n  serial_number: \"CP-1\"\n  lcd.lrs_hash: \"A3F09C4\"\n";
        let answers =
            Answers::from_file(LoadedFile::from_text(Path::new("eol.yaml"), text.into())).unwrap();
        let mut op = FileOperator { answers };
        let serial = Question {
            position: None,
            show_position: false,
            key: "serial_number".into(),
            prompt: "serial".into(),
            format: AnswerFormat::SerialNumber,
        };
        assert_eq!(op.ask(&serial).unwrap(), "CP-1");
        let e = op.ask(&lrs()).unwrap_err().to_string();
        assert!(e.starts_with("eol.yaml:4:"), "{e}");
        assert!(
            e.contains("lcd.lrs_hash") && e.contains("7 characters"),
            "{e}"
        );
        let seal = Question {
            position: None,
            show_position: false,
            key: "seal.power_plate".into(),
            prompt: "user seal on the power plate intact".into(),
            format: AnswerFormat::YesNo,
        };
        let e = op.ask(&seal).unwrap_err().to_string();
        assert!(e.contains("no answer to `seal.power_plate`"), "{e}");
    }
}
