//! Decoder throughput on one core: 100,000 CSP1 telegrams, concatenated, fed in
//! 4 KiB chunks as a serial reader would. `cargo bench -p meterbench-p1`.

use std::hint::black_box;
use std::time::Instant;

use meterbench_p1::{Csp1Params, Decoder, encode_csp1_telegram};

const TELEGRAMS: usize = 100_000;
const CHUNK: usize = 4096;

fn main() {
    let mut stream = Vec::new();
    for i in 0..TELEGRAMS {
        let a = (i % 81) as f64;
        let params = Csp1Params {
            currents: [a, 80.0 - a, (i % 7) as f64],
            ..Default::default()
        };
        stream.extend_from_slice(&encode_csp1_telegram(&params));
    }

    // One warm-up pass, then the best of three.
    let mut best = f64::INFINITY;
    for _ in 0..4 {
        let (mut ok, mut errors, mut amps) = (0usize, 0usize, 0i64);
        let t0 = Instant::now();
        let mut decoder = Decoder::default();
        for chunk in stream.chunks(CHUNK) {
            decoder.feed(black_box(chunk), |r| match r {
                Ok(t) => {
                    ok += 1;
                    amps += t
                        .currents()
                        .iter()
                        .flatten()
                        .map(|d| d.mantissa())
                        .sum::<i64>();
                }
                Err(_) => errors += 1,
            });
        }
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!((ok, errors), (TELEGRAMS, 0), "every telegram must decode");
        black_box(amps);
        best = best.min(secs);
    }

    let mb = stream.len() as f64 / 1e6;
    println!(
        "decode: {TELEGRAMS} CSP1 telegrams, {mb:.1} MB in {:.3} s (best of 3): {:.1} MB/s, {:.0} telegrams/s",
        best,
        mb / best,
        TELEGRAMS as f64 / best
    );
}
