//! Core 1: the capture loop.
//!
//! Core 1 runs no executor, takes no interrupts and never waits for a lock. It
//! spins over the RX FIFO status of both PIO blocks; when a state machine has
//! pushed a word it first latches the reference counter, then reads the words,
//! extends them to 64 bits and hands them to core 0 through the lock-free ring
//! [`RAW`]. So the reference count is read within one loop pass of the push
//! (see README, "Worst-case budget"). Core 1 also owns every piece of capture
//! hardware, so Arm and Disarm are carried out here, on request from core 0
//! through an atomic mailbox.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_rp::gpio::Output;
use embassy_rp::pac;
use embassy_rp::pwm::Pwm;
use embassy_time::Instant;
use pio::{InstructionOperands, JmpCondition, SetDestination};
use pulse_counter_timing::CHANNEL_COUNT;
use pulse_counter_timing::capture::{WORD_TICK_BITS, decode_word};
use pulse_counter_timing::clock::TickClock;
use pulse_counter_timing::extend::{WrapExtender, extend_near};
use pulse_counter_timing::pairing::RawEdge;
use pulse_counter_timing::ring::{EDGE_WORDS, WordRing, pack_edge};

/// Core 1 → core 0: captured transitions, each tagged with the epoch (number
/// of the arming) it belongs to; core 0 ignores older epochs. 512 entries are
/// 250 ms of all eight channels at the design rate.
pub static RAW: WordRing<512, EDGE_WORDS> = WordRing::new();

/// Command mailbox, core 0 → core 1: `seq << 16 | op << 8 | low_entry_mask`.
static COMMAND: AtomicU32 = AtomicU32::new(0);
/// Sequence of the last command core 1 completed.
static DONE: AtomicU32 = AtomicU32::new(0);
/// Epoch of the current arming (written before DONE).
pub static EPOCH: AtomicU32 = AtomicU32::new(0);
/// System timer (µs) of the sync strobe of the current arming.
static START_US: SeqLock64 = SeqLock64::new();
/// Completed loop passes; a pass that *started* after a moment has delivered
/// every transition pushed before that moment.
pub static PASSES: AtomicU32 = AtomicU32::new(0);
/// Low 32 bits of the system timer at the start of the last completed pass.
pub static WATERMARK_US: AtomicU32 = AtomicU32::new(0);
/// Transitions lost by the capture (PIO FIFO overrun, full [`RAW`]), cumulative.
pub static LOST: AtomicU32 = AtomicU32::new(0);
/// Reference count now (as of the last publication, every 64 passes).
static REF_NOW: SeqLock64 = SeqLock64::new();

/// A u64 written by core 1 and read by core 0 without locks: the sequence word
/// is odd while the halves are being written, and a reader retries until it
/// saw the same even sequence before and after.
struct SeqLock64 {
    seq: AtomicU32,
    lo: AtomicU32,
    hi: AtomicU32,
}

impl SeqLock64 {
    const fn new() -> Self {
        Self {
            seq: AtomicU32::new(0),
            lo: AtomicU32::new(0),
            hi: AtomicU32::new(0),
        }
    }

    /// Single writer only (core 1).
    fn write(&self, v: u64) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Release);
        self.lo.store(v as u32, Ordering::Release);
        self.hi.store((v >> 32) as u32, Ordering::Release);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn read(&self) -> u64 {
        loop {
            let s = self.seq.load(Ordering::Acquire);
            let lo = self.lo.load(Ordering::Acquire);
            let hi = self.hi.load(Ordering::Acquire);
            if s & 1 == 0 && self.seq.load(Ordering::Acquire) == s {
                return u64::from(hi) << 32 | u64::from(lo);
            }
        }
    }
}

const OP_ARM: u32 = 1;
const OP_DISARM: u32 = 2;

/// Asks core 1 to arm (restart the timebase) and waits until it did.
pub async fn arm(low_entry_mask: u32) {
    command(OP_ARM, low_entry_mask).await;
}

/// Asks core 1 to stop capture (words still in the FIFOs are delivered) and
/// waits until it did.
pub async fn disarm() {
    command(OP_DISARM, 0).await;
}

async fn command(op: u32, arg: u32) {
    let seq = (DONE.load(Ordering::Acquire).wrapping_add(1)) & 0xFFFF;
    COMMAND.store(seq << 16 | op << 8 | (arg & 0xFF), Ordering::Release);
    while DONE.load(Ordering::Acquire) != seq {
        embassy_time::Timer::after_micros(20).await;
    }
}

/// System timer (µs) at tick 0 of the current arming (0 before the first Arm:
/// ticks count from power-up).
pub fn start_us() -> u64 {
    START_US.read()
}

/// The reference count now (as of the last publication by core 1).
pub fn ref_now() -> u64 {
    REF_NOW.read()
}

/// The capture hardware, moved to core 1.
pub struct CaptureHw {
    /// Keeps PIO0 and its state machines configured (dropping them would stop them).
    pub _pio0: embassy_rp::pio::Pio<'static, embassy_rp::peripherals::PIO0>,
    /// Same for PIO1.
    pub _pio1: embassy_rp::pio::Pio<'static, embassy_rp::peripherals::PIO1>,
    /// Program origin in each block (both load at the same address).
    pub origin: u8,
    /// Entry of the "input high" loop, relative to the origin.
    pub entry_high: u8,
    /// Entry of the "input low" loop.
    pub entry_low: u8,
    /// Reference counter: PWM slice counting rising edges of the reference input.
    pub ref_pwm: Pwm<'static>,
    /// The sync strobe all state machines wait for.
    pub sync: Output<'static>,
}

fn pio_block(ch: usize) -> pac::pio::Pio {
    if ch < 4 { pac::PIO0 } else { pac::PIO1 }
}

fn now_us() -> u64 {
    Instant::now().as_micros()
}

/// Core 1 entry: never returns.
pub fn run(mut hw: CaptureHw) -> ! {
    let mut ref_ext = WrapExtender::new(16);
    let mut clock = TickClock::new();
    let mut capturing = false;
    let mut epoch: u32 = 0;
    let mut last_seq: u32 = 0;
    let mut lost: u32 = 0;
    let mut passes: u32 = 0;
    stop_all();
    loop {
        let t_pass = now_us();
        let cmd = COMMAND.load(Ordering::Acquire);
        let seq = cmd >> 16;
        if seq != last_seq {
            last_seq = seq;
            match (cmd >> 8) & 0xFF {
                OP_ARM => {
                    epoch = epoch.wrapping_add(1);
                    EPOCH.store(epoch, Ordering::Release);
                    let t0 = restart(&mut hw, cmd & 0xFF, &mut ref_ext);
                    clock.restart(t0);
                    START_US.write(t0);
                    capturing = true;
                }
                OP_DISARM => {
                    stop_all();
                    // Words pushed before the stop are delivered by this pass.
                    capturing = false;
                    drain(&hw, &mut ref_ext, &clock, epoch, &mut lost, true);
                }
                _ => {}
            }
            DONE.store(seq, Ordering::Release);
        }

        // Which FIFOs hold words: read before the reference counter, so the
        // latched count is never older than the transition.
        let ref_count = drain(&hw, &mut ref_ext, &clock, epoch, &mut lost, capturing);
        // A FIFO that was full when its state machine pushed lost a word.
        for pio in [pac::PIO0, pac::PIO1] {
            let stalled = pio.fdebug().read().rxstall();
            if stalled != 0 {
                pio.fdebug().write(|w| w.set_rxstall(stalled));
                if capturing {
                    lost = lost.wrapping_add(stalled.count_ones());
                }
            }
        }
        LOST.store(lost, Ordering::Release);

        passes = passes.wrapping_add(1);
        if passes.is_multiple_of(64) {
            REF_NOW.write(ref_count);
        }
        WATERMARK_US.store(t_pass as u32, Ordering::Release);
        PASSES.store(passes, Ordering::Release);
    }
}

/// Bit n set: channel n's RX FIFO holds at least one word.
fn ready_mask() -> u32 {
    let e0 = u32::from(pac::PIO0.fstat().read().rxempty());
    let e1 = u32::from(pac::PIO1.fstat().read().rxempty());
    (!e0 & 0xF) | (!e1 & 0xF) << 4
}

/// Reads every word waiting in the FIFOs and forwards them if `forward`.
///
/// The reference count is latched per channel at the first FIFO-status read
/// that shows the channel's word, so a word waiting behind words of other
/// channels keeps the count of the moment it was first seen: the latch lags
/// the push by at most one status read (one word's processing). Channels are
/// served round-robin, so a noisy input cannot starve the others. Returns the
/// reference count now.
fn drain(
    hw: &CaptureHw,
    ref_ext: &mut WrapExtender,
    clock: &TickClock,
    epoch: u32,
    lost: &mut u32,
    forward: bool,
) -> u64 {
    // Only for the 31 → 64-bit extension, which tolerates seconds of error.
    let estimate = clock.ticks_at(now_us());
    let mut latched = [0u64; CHANNEL_COUNT];
    let mut seen: u32 = 0;
    let mut next = 0;
    loop {
        // Status first, counter second: a latch is never older than its word.
        let ready = ready_mask();
        let ref_count = ref_ext.update(u32::from(hw.ref_pwm.counter()));
        if ready == 0 {
            return ref_count;
        }
        let fresh = ready & !seen;
        for (ch, slot) in latched.iter_mut().enumerate() {
            if fresh & (1 << ch) != 0 {
                *slot = ref_count;
            }
        }
        seen |= fresh;
        let ch = (0..CHANNEL_COUNT)
            .map(|k| (next + k) % CHANNEL_COUNT)
            .find(|&c| ready & (1 << c) != 0)
            .unwrap_or(0);
        next = (ch + 1) % CHANNEL_COUNT;
        // A further word of this channel is latched when it is next seen.
        seen &= !(1 << ch);
        let word = pio_block(ch).rxf(ch % 4).read();
        if !forward {
            continue;
        }
        let cap = decode_word(word);
        let edge = RawEdge {
            channel: ch as u8,
            polarity: cap.polarity,
            ticks: extend_near(cap.ticks, WORD_TICK_BITS, estimate),
            ref_count: latched[ch],
        };
        if !RAW.push(pack_edge(epoch, &edge)) {
            *lost = lost.wrapping_add(1);
        }
    }
}

fn stop_all() {
    for pio in [pac::PIO0, pac::PIO1] {
        pio.ctrl().write(|w| w.set_sm_enable(0));
    }
}

const fn encode(op: InstructionOperands) -> u16 {
    op.encode()
}

/// Restarts all eight state machines in lockstep; returns the system timer at
/// the strobe (tick 0).
fn restart(hw: &mut CaptureHw, low_entry_mask: u32, ref_ext: &mut WrapExtender) -> u64 {
    hw.sync.set_low();
    stop_all();
    // Let the strobe's low level pass the GPIO synchronizers.
    cortex_m::asm::delay(16);
    let set_x0 = encode(InstructionOperands::SET {
        destination: SetDestination::X,
        data: 0,
    });
    let set_y1 = encode(InstructionOperands::SET {
        destination: SetDestination::Y,
        data: 1,
    });
    // Restart first: it clears shift counters and stalls but keeps X, Y and
    // the PC, which the executed instructions below then set.
    for pio in [pac::PIO0, pac::PIO1] {
        pio.ctrl().write(|w| {
            w.set_sm_restart(0xF);
            w.set_clkdiv_restart(0xF);
        });
    }
    for ch in 0..CHANNEL_COUNT {
        let sm = pio_block(ch).sm(ch % 4);
        // Toggling the FIFO join empties both FIFOs; end joined (8-word RX).
        sm.shiftctrl().modify(|w| w.set_fjoin_rx(false));
        sm.shiftctrl().modify(|w| w.set_fjoin_rx(true));
        let entry = if low_entry_mask & (1 << ch) != 0 {
            hw.entry_low
        } else {
            hw.entry_high
        };
        let jmp = encode(InstructionOperands::JMP {
            condition: JmpCondition::Always,
            address: hw.origin + entry,
        });
        for ins in [set_x0, set_y1, jmp] {
            sm.instr().write(|w| w.set_instr(ins));
        }
    }
    for pio in [pac::PIO0, pac::PIO1] {
        pio.fdebug().write(|w| {
            w.set_rxstall(0xF);
            w.set_rxunder(0xF);
        });
        // Enabled, they stall on `wait 1 gpio SYNC` until the strobe.
        pio.ctrl().write(|w| w.set_sm_enable(0xF));
    }
    hw.ref_pwm.set_counter(0);
    ref_ext.reset(0);
    // Both blocks leave the wait on the same cycle: same clock, same synchronizers.
    cortex_m::interrupt::free(|_| {
        hw.sync.set_high();
        now_us()
    })
}
