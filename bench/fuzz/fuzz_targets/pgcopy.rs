//! A binary COPY stream as the audit reads it from a PostgreSQL server (or whatever
//! answers in its place): the first byte is the tuples' field count (mod 12), the second
//! where the stream is cut in two. Tuples or a refusal, the same whole or cut, and every
//! typed reading of every field a value or a refusal, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterbench_pgcopy::{CopyReader, read_all};

fuzz_target!(|data: &[u8]| {
    let [fields, cut, stream @ ..] = data else {
        return;
    };
    let fields = usize::from(fields % 12);
    let cut = usize::from(*cut).min(stream.len());
    let whole = read_all(fields, [stream]);
    let split = read_all(fields, [&stream[..cut], &stream[cut..]]);
    assert_eq!(whole, split, "cut at {cut}");
    let mut reader = CopyReader::new(fields);
    reader.push(stream);
    while let Ok(Some(t)) = reader.next_tuple() {
        for i in 0..fields {
            let _ = (
                t.text(i),
                t.int4(i),
                t.int8(i),
                t.float8(i),
                t.bool(i),
                t.date_days(i),
            );
        }
    }
});
