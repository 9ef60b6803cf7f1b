use std::time::{Duration, Instant};

/// Bytes as spaced upper-case hex, as CAN tools print them: `03 22 F1 90`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&format!("{byte:02X}"));
    }
    out
}

/// A duration the way an operator reads it: `1 s`, `1.5 s`, `100 ms`, `500 µs`.
pub(crate) fn human(duration: &Duration) -> String {
    let micros = duration.as_micros();
    if micros >= 1_000_000 {
        if micros.is_multiple_of(1_000_000) {
            format!("{} s", duration.as_secs())
        } else {
            format!("{} s", duration.as_secs_f64())
        }
    } else if micros.is_multiple_of(1000) {
        format!("{} ms", micros / 1000)
    } else {
        format!("{micros} µs")
    }
}

pub(crate) fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(&Duration::from_secs(1)), "1 s");
        assert_eq!(human(&Duration::from_millis(1500)), "1.5 s");
        assert_eq!(human(&Duration::from_millis(100)), "100 ms");
        assert_eq!(human(&Duration::from_micros(300)), "300 µs");
        assert_eq!(human(&Duration::ZERO), "0 ms");
        assert_eq!(hex(&[0x03, 0x22, 0xF1]), "03 22 F1");
    }
}
