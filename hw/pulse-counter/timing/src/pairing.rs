//! Per-channel glitch filter and edge pairing: captured transitions → pulses.
//!
//! The PIO reports every transition of a channel (rising and falling). A
//! [`ChannelTracker`] turns them into the pulses PROTOCOL.md §5.1 defines for the
//! channel's [`Edges`] mode:
//!
//! - the *leading* edge (rising for `Rising`/`Both`, falling for `Falling`) opens
//!   a pulse and latches its timestamp and reference count;
//! - the *trailing* edge closes it; a pulse shorter than `glitch_filter_ticks` is
//!   dropped without a trace (a glitch, not a lost event);
//! - `Rising`/`Falling` send the pulse (width 0) as soon as the filter accepts it:
//!   at once without a filter, else when the input has stayed active for the
//!   filter time or at the trailing edge;
//! - `Both` sends the pulse at the trailing edge with its width, or with width 0
//!   when the input is still active after [`STUCK_TIMEOUT_MS`] or at a flush
//!   (Ping, Disarm); its trailing edge is then swallowed;
//! - a trailing edge without a leading one is ignored when it is the first
//!   transition after Arm (the input was active at Arm); later it means the
//!   capture lost a word, reported as [`EdgeOutcome::lost_edge`], as is a second
//!   leading edge without a trailing one in between.
//!
//! Time enters only through arguments: `now` always means "every transition of
//! this channel before tick `now` has already been passed to [`ChannelTracker::edge`]",
//! so a decision never races a transition still in flight.

use crate::capture::Polarity;
use crate::clock::ticks_from_ms;
use crate::protocol::Edges;

/// A `Both`-mode pulse still active this long is sent with width 0.
pub const STUCK_TIMEOUT_MS: u64 = 100;

/// A channel's edge selection and glitch filter (ConfigureChannel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelConfig {
    /// Which pulses to report, and how.
    pub edges: Edges,
    /// Pulses shorter than this many ticks are ignored; 0 = no filter.
    pub glitch_filter_ticks: u32,
}

impl ChannelConfig {
    /// Power-up default of every channel: Rising, no filter.
    pub const DEFAULT: Self = Self {
        edges: Edges::Rising,
        glitch_filter_ticks: 0,
    };

    /// The polarity that opens a pulse.
    pub const fn leading(&self) -> Polarity {
        match self.edges {
            Edges::Falling => Polarity::Falling,
            Edges::Rising | Edges::Both => Polarity::Rising,
        }
    }
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One captured transition, extended to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawEdge {
    /// Channel, 0-based.
    pub channel: u8,
    /// The transition.
    pub polarity: Polarity,
    /// Ticks since Arm.
    pub ticks: u64,
    /// Reference count since Arm, latched when the transition was read.
    pub ref_count: u64,
}

/// A counted pulse, ready to be queued as an Edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pulse {
    /// Channel, 0-based.
    pub channel: u8,
    /// Ticks since Arm at the leading edge.
    pub timestamp_ticks: u64,
    /// Leading → trailing edge in ticks (`Both` only); 0 = not measured.
    pub width_ticks: u32,
    /// Reference count at the leading edge.
    pub ref_count: u64,
}

/// What one transition produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EdgeOutcome {
    /// A pulse to queue.
    pub pulse: Option<Pulse>,
    /// The transition shows that an earlier one was lost (capture overrun):
    /// the pulse count since Arm can no longer be trusted.
    pub lost_edge: bool,
}

/// What a flush produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushOutcome {
    /// A pulse to queue now.
    pub pulse: Option<Pulse>,
    /// A pulse that started before the flush point is still inside its glitch
    /// filter: flush again later (at most `glitch_filter_ticks` later).
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Active {
        start: u64,
        ref_count: u64,
        /// The pulse was already sent (accepted early, or timed out / flushed).
        sent: bool,
    },
}

/// Pairing and filter state of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelTracker {
    channel: u8,
    config: ChannelConfig,
    state: State,
    /// At least one transition since Arm.
    primed: bool,
}

impl ChannelTracker {
    /// Channel `channel` with the power-up configuration.
    pub const fn new(channel: u8) -> Self {
        Self {
            channel,
            config: ChannelConfig::DEFAULT,
            state: State::Idle,
            primed: false,
        }
    }

    /// The current configuration.
    pub const fn config(&self) -> ChannelConfig {
        self.config
    }

    /// Sets a new configuration (only while disarmed) and resets the state.
    pub fn configure(&mut self, config: ChannelConfig) {
        self.config = config;
        self.reset();
    }

    /// Forgets every transition: the state right after Arm.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.primed = false;
    }

    /// Feeds one transition of this channel (in capture order).
    pub fn edge(&mut self, polarity: Polarity, ticks: u64, ref_count: u64) -> EdgeOutcome {
        let mut out = EdgeOutcome::default();
        let primed = core::mem::replace(&mut self.primed, true);
        if polarity == self.config.leading() {
            out.lost_edge = matches!(self.state, State::Active { .. });
            let send_now = self.config.edges != Edges::Both && self.config.glitch_filter_ticks == 0;
            self.state = State::Active {
                start: ticks,
                ref_count,
                sent: send_now,
            };
            if send_now {
                out.pulse = Some(self.pulse(ticks, 0, ref_count));
            }
            return out;
        }
        match core::mem::replace(&mut self.state, State::Idle) {
            State::Idle => out.lost_edge = primed,
            State::Active {
                start,
                ref_count,
                sent,
            } => {
                let width = ticks.saturating_sub(start);
                if !sent && width >= u64::from(self.config.glitch_filter_ticks) {
                    let width = match self.config.edges {
                        Edges::Both => u32::try_from(width).unwrap_or(u32::MAX),
                        Edges::Rising | Edges::Falling => 0,
                    };
                    out.pulse = Some(self.pulse(start, width, ref_count));
                }
            }
        }
        out
    }

    /// Sends pulses whose decision depends on time alone: accepted by the filter
    /// while still active (`Rising`/`Falling`), or stuck for
    /// [`STUCK_TIMEOUT_MS`] (`Both`).
    pub fn poll(&mut self, now: u64) -> Option<Pulse> {
        let State::Active {
            start,
            ref_count,
            sent: false,
        } = self.state
        else {
            return None;
        };
        let active = now.saturating_sub(start);
        let accepted = active >= u64::from(self.config.glitch_filter_ticks);
        let due = match self.config.edges {
            Edges::Rising | Edges::Falling => accepted,
            Edges::Both => accepted && active >= ticks_from_ms(STUCK_TIMEOUT_MS),
        };
        due.then(|| self.send_unmeasured(start, ref_count))
    }

    /// Ping flush: a pulse that started before tick `before` and is accepted by
    /// the filter at `now` is sent at once (width 0); one still inside its filter
    /// time blocks the flush.
    pub fn flush(&mut self, before: u64, now: u64) -> FlushOutcome {
        let mut out = FlushOutcome::default();
        if let State::Active {
            start,
            ref_count,
            sent: false,
        } = self.state
            && start < before
        {
            if now.saturating_sub(start) >= u64::from(self.config.glitch_filter_ticks) {
                out.pulse = Some(self.send_unmeasured(start, ref_count));
            } else {
                out.blocked = true;
            }
        }
        out
    }

    /// Disarm: a pending pulse accepted by the filter at `now` is sent (width
    /// 0), one still inside its filter time is dropped; then back to idle.
    pub fn finish(&mut self, now: u64) -> Option<Pulse> {
        let out = match self.state {
            State::Active {
                start,
                ref_count,
                sent: false,
            } if now.saturating_sub(start) >= u64::from(self.config.glitch_filter_ticks) => {
                Some(self.pulse(start, 0, ref_count))
            }
            _ => None,
        };
        self.reset();
        out
    }

    fn send_unmeasured(&mut self, start: u64, ref_count: u64) -> Pulse {
        self.state = State::Active {
            start,
            ref_count,
            sent: true,
        };
        self.pulse(start, 0, ref_count)
    }

    const fn pulse(&self, start: u64, width: u32, ref_count: u64) -> Pulse {
        Pulse {
            channel: self.channel,
            timestamp_ticks: start,
            width_ticks: width,
            ref_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Polarity::{Falling, Rising};
    use super::*;

    fn tracker(edges: Edges, filter: u32) -> ChannelTracker {
        let mut t = ChannelTracker::new(3);
        t.configure(ChannelConfig {
            edges,
            glitch_filter_ticks: filter,
        });
        t
    }

    fn pulse(ts: u64, width: u32, r: u64) -> Option<Pulse> {
        Some(Pulse {
            channel: 3,
            timestamp_ticks: ts,
            width_ticks: width,
            ref_count: r,
        })
    }

    #[test]
    fn both_pairs_rising_and_falling_into_a_width() {
        let mut t = tracker(Edges::Both, 0);
        assert_eq!(
            t.edge(Rising, 1_000, 7).pulse,
            None,
            "width 0 while pending"
        );
        assert_eq!(t.poll(1_500), None);
        let out = t.edge(Falling, 1_600, 9);
        assert_eq!(
            out.pulse,
            pulse(1_000, 600, 7),
            "ref count latched at the leading edge"
        );
        assert!(!out.lost_edge);
    }

    #[test]
    fn a_falling_edge_without_rising_is_ignored_after_arm() {
        let mut t = tracker(Edges::Both, 0);
        let out = t.edge(Falling, 10, 0);
        assert_eq!(out, EdgeOutcome::default());
        assert_eq!(t.edge(Rising, 100, 1).pulse, None);
        assert_eq!(t.edge(Falling, 150, 2).pulse, pulse(100, 50, 1));
    }

    #[test]
    fn a_falling_edge_without_rising_later_is_a_lost_edge() {
        let mut t = tracker(Edges::Both, 0);
        t.edge(Rising, 100, 1);
        t.edge(Falling, 150, 2);
        let out = t.edge(Falling, 300, 3);
        assert!(out.lost_edge);
        assert_eq!(out.pulse, None);
    }

    #[test]
    fn two_leading_edges_in_a_row_are_a_lost_edge() {
        let mut t = tracker(Edges::Rising, 0);
        assert_eq!(t.edge(Rising, 100, 1).pulse, pulse(100, 0, 1));
        let out = t.edge(Rising, 300, 3);
        assert!(out.lost_edge);
        assert_eq!(out.pulse, pulse(300, 0, 3));
    }

    #[test]
    fn rising_without_filter_sends_at_the_rising_edge() {
        let mut t = tracker(Edges::Rising, 0);
        assert_eq!(t.edge(Rising, 5, 1).pulse, pulse(5, 0, 1));
        assert_eq!(t.poll(1_000_000), None, "sent once");
        assert_eq!(t.edge(Falling, 50, 1).pulse, None);
    }

    #[test]
    fn glitch_filter_drops_short_pulses_entirely() {
        for edges in [Edges::Rising, Edges::Both] {
            let mut t = tracker(edges, 100);
            assert_eq!(t.edge(Rising, 1_000, 1).pulse, None);
            assert_eq!(t.poll(1_050), None);
            let out = t.edge(Falling, 1_099, 1);
            assert_eq!(out, EdgeOutcome::default(), "{edges:?}: 99-tick glitch");
            // Exactly the filter length passes.
            t.edge(Rising, 2_000, 2);
            let w = if edges == Edges::Both { 100 } else { 0 };
            assert_eq!(t.edge(Falling, 2_100, 2).pulse, pulse(2_000, w, 2));
        }
    }

    #[test]
    fn rising_with_filter_sends_once_the_filter_time_has_passed() {
        let mut t = tracker(Edges::Rising, 100);
        t.edge(Rising, 1_000, 4);
        assert_eq!(t.poll(1_099), None);
        assert_eq!(t.poll(1_100), pulse(1_000, 0, 4));
        assert_eq!(t.edge(Falling, 5_000, 4).pulse, None, "not sent twice");
    }

    #[test]
    fn falling_mode_uses_the_falling_edge_and_low_time() {
        let mut t = tracker(Edges::Falling, 50);
        // Input low at Arm (mid-pulse): its rising edge is ignored.
        assert_eq!(t.edge(Rising, 3, 0), EdgeOutcome::default());
        assert_eq!(t.edge(Falling, 1_000, 10).pulse, None);
        assert_eq!(
            t.edge(Rising, 1_020, 10).pulse,
            None,
            "20 ticks low: glitch"
        );
        t.edge(Falling, 2_000, 20);
        assert_eq!(t.edge(Rising, 2_400, 21).pulse, pulse(2_000, 0, 20));
    }

    #[test]
    fn both_stuck_high_is_sent_with_width_zero_after_the_timeout() {
        let mut t = tracker(Edges::Both, 0);
        let timeout = ticks_from_ms(STUCK_TIMEOUT_MS);
        t.edge(Rising, 1_000, 5);
        assert_eq!(t.poll(1_000 + timeout - 1), None);
        assert_eq!(t.poll(1_000 + timeout), pulse(1_000, 0, 5));
        assert_eq!(t.poll(1_000 + 2 * timeout), None);
        assert_eq!(
            t.edge(Falling, 1_000 + 3 * timeout, 6),
            EdgeOutcome::default()
        );
        t.edge(Rising, 1_000 + 4 * timeout, 7);
        assert_eq!(
            t.edge(Falling, 1_001 + 4 * timeout, 7).pulse,
            pulse(1_000 + 4 * timeout, 1, 7)
        );
    }

    #[test]
    fn flush_sends_pending_pulses_before_the_flush_point() {
        let mut t = tracker(Edges::Both, 0);
        t.edge(Rising, 1_000, 5);
        assert_eq!(
            t.flush(1_000, 2_000),
            FlushOutcome::default(),
            "started at the flush point"
        );
        let out = t.flush(1_001, 2_000);
        assert_eq!(out.pulse, pulse(1_000, 0, 5));
        assert!(!out.blocked);
        assert_eq!(
            t.edge(Falling, 3_000, 6).pulse,
            None,
            "its falling edge is not reported"
        );
    }

    #[test]
    fn flush_waits_for_the_glitch_filter() {
        let mut t = tracker(Edges::Both, 500);
        t.edge(Rising, 1_000, 5);
        let out = t.flush(1_200, 1_300);
        assert_eq!(
            out,
            FlushOutcome {
                pulse: None,
                blocked: true
            }
        );
        assert_eq!(t.flush(1_200, 1_500).pulse, pulse(1_000, 0, 5));
        // A glitch resolves the block without a pulse.
        t.edge(Falling, 1_600, 5);
        t.edge(Rising, 2_000, 6);
        assert!(t.flush(2_100, 2_100).blocked);
        t.edge(Falling, 2_050, 6);
        assert_eq!(t.flush(2_100, 2_100), FlushOutcome::default());
    }

    #[test]
    fn finish_sends_accepted_pending_pulses_only() {
        let mut t = tracker(Edges::Both, 100);
        t.edge(Rising, 1_000, 5);
        assert_eq!(t.finish(1_050), None);
        t.edge(Rising, 2_000, 6);
        assert_eq!(t.finish(2_100), pulse(2_000, 0, 6));
        assert_eq!(t.finish(9_999), None);
    }

    #[test]
    fn configure_and_reset_forget_the_state() {
        let mut t = tracker(Edges::Both, 0);
        t.edge(Rising, 1, 0);
        t.reset();
        assert_eq!(t.edge(Falling, 2, 0), EdgeOutcome::default());
        t.configure(ChannelConfig::DEFAULT);
        assert_eq!(t.config(), ChannelConfig::DEFAULT);
    }
}
