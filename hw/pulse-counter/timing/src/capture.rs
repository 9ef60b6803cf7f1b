//! The PIO edge-capture program and the format of the words it pushes.
//!
//! One state machine per channel runs [`edge_program`]. Its scratch register X is
//! the timebase: X is decremented on **every odd cycle of every path** through the
//! program (the waiting loops and the edge handlers alike), so it counts
//! `clk_sys / 2` ticks without a gap. All eight state machines (both PIO blocks)
//! leave a `wait 1 gpio SYNC_GPIO` on the same clock cycle when the CPU raises the
//! sync strobe, so their X registers hold the same count at every cycle: one
//! free-running timebase, replicated in eight registers.
//!
//! Why 2 cycles per tick and not 1: a PIO instruction either tests the input pin
//! (`jmp pin`) or decrements a register (`jmp x--`), never both, so a loop that
//! samples the pin on every tick needs two instructions. The even cycles test the
//! pin, the odd ones count. At 125 MHz that is a 62.5 MHz timebase, 16 ns per tick.
//! (Two state machines per channel, one per phase, would give 8 ns but need 16
//! state machines; the RP2040 has 8.)
//!
//! The program (20 of the 32 instruction slots of a PIO block):
//!
//! ```text
//!               even cycles: pin tests/work     odd cycles: jmp x-- (count)
//! start_high:   wait 1 gpio 22 ; jmp high_count
//! start_low:    wait 1 gpio 22 ; jmp low_count
//! rise:         jmp x--  ─┐ in x, 31 ─ jmp x-- ─ in y, 1 ─ jmp x-- ─ push noblock
//! high_count:   jmp x-- high_test
//! high_test:    jmp pin high_count          (still high: keep counting)
//! fall:         jmp x--  ─ in x, 31 ─ jmp x-- ─ in null, 1 ─ jmp x-- ─ push noblock
//! low_count:    jmp x-- low_test            (.wrap_target)
//! low_test:     jmp pin rise                (.wrap: still low → low_count)
//! ```
//!
//! Every `jmp x--` targets the next instruction, so the X == 0 case (where
//! `jmp x--` falls through instead of jumping) lands in the same place and the
//! cadence survives the 2^32 wrap of X. Per edge the handler spends 6 cycles
//! (3 counting) after the test that saw the edge, so the pin is tested again
//! 8 cycles (64 ns) after it: an input can change state at most every 64 ns and
//! still have every edge timestamped.

/// GPIO of the sync strobe: an output of the CPU that every state machine waits
/// for before it starts counting. Not connected to anything outside the chip.
pub const SYNC_GPIO: u8 = 22;

/// System clock cycles per timebase tick (one pin test and one count).
pub const CYCLES_PER_TICK: u32 = 2;

/// Bits of the tick count carried in a pushed word (the 32nd bit is the polarity).
pub const WORD_TICK_BITS: u32 = 31;

/// PIO cycles from the `jmp pin` test that saw an edge to the `push` of its word.
pub const CYCLES_TEST_TO_PUSH: u32 = 6;

/// PIO cycles from an edge test to the next test of the same pin (the blind time
/// after an edge).
pub const CYCLES_BETWEEN_EDGE_TESTS: u32 = 8;

/// Instructions executed per edge, waiting loop excluded (the handler).
pub const INSTRUCTIONS_PER_EDGE: u32 = 6;

const TICK_MASK: u32 = (1 << WORD_TICK_BITS) - 1;

/// The assembled capture program and its entry points.
#[derive(Debug)]
pub struct EdgeProgram {
    /// The program, to be loaded once into each PIO block.
    pub program: pio::Program<{ pio::RP2040_MAX_PROGRAM_SIZE }>,
    /// Entry (relative to the program origin) for channels whose pulses are
    /// high-going (`Rising`, `Both`): counting starts in the "input high" loop, so
    /// a pulse already in progress at Arm yields only a falling edge, which the
    /// pairing ignores.
    pub entry_high: u8,
    /// Entry for low-going pulses (`Falling`): starts in the "input low" loop.
    pub entry_low: u8,
}

/// Assembles the capture program (see the module documentation).
pub fn edge_program() -> EdgeProgram {
    let p = pio::pio_asm!(
        "public start_high:",
        "    wait 1 gpio 22",
        "    jmp high_count",
        "public start_low:",
        "    wait 1 gpio 22",
        "    jmp low_count",
        "rise:",
        "    jmp x-- rise_1",
        "rise_1:",
        "    in x, 31",
        "    jmp x-- rise_3",
        "rise_3:",
        "    in y, 1",
        "    jmp x-- rise_5",
        "rise_5:",
        "    push noblock",
        "high_count:",
        "    jmp x-- high_test",
        "high_test:",
        "    jmp pin high_count",
        "fall:",
        "    jmp x-- fall_1",
        "fall_1:",
        "    in x, 31",
        "    jmp x-- fall_3",
        "fall_3:",
        "    in null, 1",
        "    jmp x-- fall_5",
        "fall_5:",
        "    push noblock",
        ".wrap_target",
        "low_count:",
        "    jmp x-- low_test",
        "low_test:",
        "    jmp pin rise",
        ".wrap",
    );
    EdgeProgram {
        program: p.program,
        entry_high: p.public_defines.start_high as u8,
        entry_low: p.public_defines.start_low as u8,
    }
}

/// Which transition of the input a captured word reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Polarity {
    /// Low → high.
    Rising,
    /// High → low.
    Falling,
}

/// One word pushed by the capture program, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capture {
    /// The transition.
    pub polarity: Polarity,
    /// Ticks since the sync strobe, modulo 2^31 (extend with
    /// [`extend_near`](crate::extend::extend_near)).
    pub ticks: u32,
}

/// Decodes a pushed word: bits 31..1 are bits 30..0 of X, bit 0 is 1 for a
/// rising edge. X counts down from 0, so the tick count is −X.
pub const fn decode_word(word: u32) -> Capture {
    let x = word >> 1;
    Capture {
        polarity: if word & 1 == 1 {
            Polarity::Rising
        } else {
            Polarity::Falling
        },
        ticks: 0u32.wrapping_sub(x) & TICK_MASK,
    }
}

/// The inverse of [`decode_word`], for tests and simulators.
pub const fn encode_word(capture: Capture) -> u32 {
    let x = 0u32.wrapping_sub(capture.ticks) & TICK_MASK;
    (x << 1) | matches!(capture.polarity, Polarity::Rising) as u32
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::VecDeque;
    use std::vec::Vec;

    use pio::{
        InSource, Instruction, InstructionOperands, JmpCondition, SetDestination, WaitSource,
    };

    use super::*;

    /// Cycle-accurate model of one RP2040 state machine (clock divider 1) for the
    /// instructions the capture program uses. GPIO inputs pass a 2-flop
    /// synchronizer, so the program sees the pad level of two cycles earlier.
    struct Sm<'a> {
        prog: &'a EdgeProgram,
        pc: u8,
        x: u32,
        y: u32,
        isr: u32,
        rx: VecDeque<u32>,
        rx_depth: usize,
        lost: usize,
        cycle: u64,
        /// Cycle of every X decrement, to check the cadence.
        decrements: Vec<u64>,
    }

    impl<'a> Sm<'a> {
        fn new(prog: &'a EdgeProgram, entry: u8, rx_depth: usize) -> Self {
            // What the firmware does before enabling: set x, 0; set y, 1; jmp entry.
            Self {
                prog,
                pc: entry,
                x: 0,
                y: 1,
                isr: 0,
                rx: VecDeque::new(),
                rx_depth,
                lost: 0,
                cycle: 0,
                decrements: Vec::new(),
            }
        }

        fn step(&mut self, pin: &dyn Fn(u64) -> bool, sync: &dyn Fn(u64) -> bool) {
            let seen = |f: &dyn Fn(u64) -> bool, c: u64| c >= 2 && f(c - 2);
            let p = &self.prog.program;
            let word = p.code[self.pc as usize];
            let ins = Instruction::decode(word, p.side_set).expect("valid instruction");
            assert_eq!(ins.delay, 0, "the cycle accounting assumes no delays");
            let mut next = None;
            match ins.operands {
                InstructionOperands::JMP { condition, address } => {
                    let take = match condition {
                        JmpCondition::Always => true,
                        JmpCondition::XDecNonZero => {
                            let nz = self.x != 0;
                            self.x = self.x.wrapping_sub(1);
                            self.decrements.push(self.cycle);
                            nz
                        }
                        JmpCondition::PinHigh => seen(pin, self.cycle),
                        other => panic!("unexpected jmp condition {other:?}"),
                    };
                    if take {
                        next = Some(address);
                    }
                }
                InstructionOperands::WAIT {
                    polarity,
                    source: WaitSource::GPIO,
                    index,
                    ..
                } => {
                    assert_eq!(index, SYNC_GPIO);
                    if seen(sync, self.cycle) != (polarity == 1) {
                        next = Some(self.pc); // stall
                    }
                }
                InstructionOperands::IN { source, bit_count } => {
                    let n = u32::from(bit_count);
                    let src = match source {
                        InSource::X => self.x,
                        InSource::Y => self.y,
                        InSource::NULL => 0,
                        other => panic!("unexpected in source {other:?}"),
                    };
                    let mask = if n == 32 { u32::MAX } else { (1 << n) - 1 };
                    self.isr = if n == 32 {
                        src
                    } else {
                        (self.isr << n) | (src & mask)
                    };
                }
                InstructionOperands::PUSH { block: false, .. } => {
                    if self.rx.len() < self.rx_depth {
                        self.rx.push_back(self.isr);
                    } else {
                        self.lost += 1;
                    }
                    self.isr = 0;
                }
                InstructionOperands::SET {
                    destination: SetDestination::X,
                    data,
                } => self.x = u32::from(data),
                other => panic!("unexpected instruction {other:?}"),
            }
            self.pc = match next {
                Some(a) => a,
                None if self.pc == p.wrap.source => p.wrap.target,
                None => self.pc + 1,
            };
            self.cycle += 1;
        }

        fn run(&mut self, cycles: u64, pin: &dyn Fn(u64) -> bool, sync: &dyn Fn(u64) -> bool) {
            for _ in 0..cycles {
                self.step(pin, sync);
            }
        }
    }

    /// Level of a square pulse train: high during [start + k·period, start + k·period + width).
    fn pulses(start: u64, period: u64, width: u64) -> impl Fn(u64) -> bool {
        move |c| c >= start && (c - start) % period < width
    }

    const SYNC_AT: u64 = 10;

    fn sync(c: u64) -> bool {
        c >= SYNC_AT
    }

    #[test]
    fn program_fits_and_waits_on_the_sync_gpio() {
        let p = edge_program();
        assert_eq!(p.program.code.len(), 20);
        for entry in [p.entry_high, p.entry_low] {
            let ins = Instruction::decode(p.program.code[entry as usize], p.program.side_set);
            match ins.map(|i| i.operands) {
                Some(InstructionOperands::WAIT {
                    polarity: 1,
                    source: WaitSource::GPIO,
                    index,
                    ..
                }) => assert_eq!(index, SYNC_GPIO),
                other => panic!("entry is not the sync wait: {other:?}"),
            }
        }
    }

    #[test]
    fn x_counts_every_second_cycle_on_every_path() {
        let prog = edge_program();
        // Fast pulses (period 40 cycles, 18 high) keep the handlers busy.
        let pin = pulses(100, 40, 18);
        let mut sm = Sm::new(&prog, prog.entry_high, 1000);
        sm.run(20_000, &pin, &sync);
        let d = &sm.decrements;
        assert!(d.len() > 9_000);
        for w in d.windows(2) {
            assert_eq!(
                w[1] - w[0],
                u64::from(CYCLES_PER_TICK),
                "gap after cycle {}",
                w[0]
            );
        }
        assert!(sm.rx.len() > 900, "edges were captured");
    }

    #[test]
    fn all_state_machines_hold_the_same_count() {
        // Two machines with different inputs and entries: after the strobe their X
        // registers agree at every cycle, so timestamps of different channels compare.
        let prog = edge_program();
        let a_pin = pulses(50, 333, 100);
        let b_pin = |c: u64| c % 97 < 40;
        let mut a = Sm::new(&prog, prog.entry_high, 1000);
        let mut b = Sm::new(&prog, prog.entry_low, 1000);
        for _ in 0..10_000 {
            a.step(&a_pin, &sync);
            b.step(&b_pin, &sync);
            assert_eq!(a.x, b.x, "cycle {}", a.cycle);
        }
    }

    #[test]
    fn timestamps_and_widths_are_exact_to_one_tick() {
        let prog = edge_program();
        let (start, period, width) = (1_001u64, 2_500u64, 700u64);
        let pin = pulses(start, period, width);
        let mut sm = Sm::new(&prog, prog.entry_high, 1000);
        sm.run(30_000, &pin, &sync);
        let caps: Vec<Capture> = sm.rx.iter().map(|&w| decode_word(w)).collect();
        // The pin is low at the start, so the first word is the spurious falling
        // edge of entering the "high" loop; then rising/falling alternate.
        assert_eq!(caps[0].polarity, Polarity::Falling);
        let edges = &caps[1..];
        assert!(edges.len() >= 20);
        // Tick k covers cycles around sync + 2k; the constant offset (synchronizer
        // and handler latency) cancels in differences. Check against the true edges.
        let t0 = i64::from(edges[0].ticks);
        for (k, e) in edges.iter().enumerate() {
            let (pol, true_cycle) = if k % 2 == 0 {
                (Polarity::Rising, start + (k as u64 / 2) * period)
            } else {
                (Polarity::Falling, start + (k as u64 / 2) * period + width)
            };
            assert_eq!(e.polarity, pol, "edge {k}");
            let measured = (i64::from(e.ticks) - t0) * 2;
            let expected = true_cycle as i64 - start as i64;
            assert!(
                (measured - expected).abs() <= 1,
                "edge {k}: {measured} vs {expected}"
            );
        }
    }

    #[test]
    fn every_edge_is_seen_down_to_the_blind_time() {
        // High and low phases of exactly CYCLES_BETWEEN_EDGE_TESTS cycles: the
        // fastest input whose every edge is timestamped.
        let prog = edge_program();
        let phase = u64::from(CYCLES_BETWEEN_EDGE_TESTS);
        let pin = pulses(101, 2 * phase, phase);
        let mut sm = Sm::new(&prog, prog.entry_high, 100_000);
        sm.run(10_101, &pin, &sync);
        let caps: Vec<Capture> = sm.rx.iter().map(|&w| decode_word(w)).collect();
        let edges = &caps[1..];
        assert_eq!(edges.len(), 10_000 / 8 - 1);
        for w in edges.windows(2) {
            assert_ne!(w[0].polarity, w[1].polarity);
            assert_eq!(w[1].ticks - w[0].ticks, 4);
        }
    }

    #[test]
    fn a_full_fifo_loses_words_but_not_time() {
        let prog = edge_program();
        let pin = pulses(100, 200, 100);
        let mut sm = Sm::new(&prog, prog.entry_high, 8);
        sm.run(10_000, &pin, &sync);
        assert_eq!(sm.rx.len(), 8);
        assert!(sm.lost > 0);
        let d = &sm.decrements;
        assert!(d.windows(2).all(|w| w[1] - w[0] == 2));
    }

    #[test]
    fn x_wraps_without_breaking_the_cadence() {
        let prog = edge_program();
        let pin = pulses(60, 30, 12);
        let mut sm = Sm::new(&prog, prog.entry_high, 10_000);
        // Start just above the wrap point instead of 0.
        sm.x = 7;
        sm.run(2_000, &pin, &sync);
        let d = &sm.decrements;
        assert!(d.windows(2).all(|w| w[1] - w[0] == 2));
    }

    #[test]
    fn word_format_round_trips() {
        for ticks in [0, 1, 2, 0x3FFF_FFFF, 0x7FFF_FFFF, 123_456_789] {
            for polarity in [Polarity::Rising, Polarity::Falling] {
                let c = Capture { polarity, ticks };
                assert_eq!(decode_word(encode_word(c)), c);
            }
        }
        // X = 0 − 5 = 0xFFFF_FFFB after five decrements; `in x, 31; in y, 1`.
        let word = ((0u32.wrapping_sub(5) & TICK_MASK) << 1) | 1;
        assert_eq!(
            decode_word(word),
            Capture {
                polarity: Polarity::Rising,
                ticks: 5
            }
        );
    }
}
