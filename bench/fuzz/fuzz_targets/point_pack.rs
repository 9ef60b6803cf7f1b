//! A run's pack of points as the PostgreSQL store's audit reads it from the server (or
//! whatever answers in its place): points, then at most one refusal and nothing after it;
//! the points before any cut of the bytes are the same points; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterbench_pgcopy::pack::check_pack;

fuzz_target!(|data: &[u8]| {
    check_pack(data);
});
