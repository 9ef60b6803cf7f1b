//! The `meterbench` command: a thin layer that parses arguments, hands them to the
//! session library and prints what happened.

pub mod cmd;
pub mod console;
pub mod out;
