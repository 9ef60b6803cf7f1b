//! Consumers of a finished run record. They read the record and never measure.

pub mod console;
