#![no_main]
//! Arbitrary bytes from an SLCAN adapter: cut into lines whatever the chunking, each line
//! parsed as a received frame and as a command, rejected or accepted, never a panic. A
//! parsed frame is encoded again and parses back to itself.
use libfuzzer_sys::fuzz_target;
use meterbench_can::slcan::{LineReader, Token, encode_message, parse_command, parse_line};

fuzz_target!(|data: &[u8]| {
    let mut reader = LineReader::new();
    for &b in data {
        if let Some(Token::Line(line)) = reader.push(b) {
            if let Ok(message) = parse_line(&line) {
                let again = encode_message(&message);
                let trimmed = again.strip_suffix(b"\r").unwrap_or(&again);
                assert_eq!(parse_line(trimmed).ok(), Some(message));
            }
            let _ = parse_command(&line);
        }
    }
    assert!(reader.pending() <= 64 * 1024);
});
