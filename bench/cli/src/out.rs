//! Printing that never costs a run: a closed stdout (`meterbench run | head -1`) or a
//! lost terminal makes `println!` panic; these drop the text instead. The run's record
//! and bundle do not depend on anyone reading.

use std::io::Write;

/// A line on stdout, if anyone reads it.
pub fn say(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Text on stdout as it is (no line added), if anyone reads it.
pub fn say_part(text: impl std::fmt::Display) {
    let _ = write!(std::io::stdout().lock(), "{text}");
}

/// `println!` for the commands' output: the text is dropped when no one reads it
/// (`meterbench verify B | grep -q …` closes the pipe early), and the command goes on to
/// exit with its own status instead of a panic's 101.
#[macro_export]
macro_rules! sayln {
    () => {
        $crate::out::say("")
    };
    ($($arg:tt)*) => {
        $crate::out::say(format_args!($($arg)*))
    };
}

/// `print!` likewise.
#[macro_export]
macro_rules! sayp {
    ($($arg:tt)*) => {
        $crate::out::say_part(format_args!($($arg)*))
    };
}

/// A line on stderr, if anyone reads it.
pub fn warn(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Colour on stdout: a terminal, and `NO_COLOR` not set to anything (no-color.org).
pub fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
}
