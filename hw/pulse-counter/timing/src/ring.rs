//! Lock-free single-producer single-consumer ring between the two cores.
//!
//! Core 1 (capture) must never wait for core 0: a capture loop stuck on a lock
//! would latch the reference counter late and could let a PIO FIFO overflow. The
//! RP2040's Cortex-M0+ has atomic loads and stores but no compare-and-swap, which
//! is all an SPSC ring needs: the producer alone writes `head`, the consumer alone
//! writes `tail`, and Release/Acquire on those indices publish the slot contents.
//! Slots are arrays of `AtomicU32` so the whole thing is safe code; a slot is only
//! read after the producer's Release store of `head` made it visible.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::capture::Polarity;
use crate::pairing::RawEdge;

/// Words per [`RawEdge`] slot: epoch, channel|polarity, ticks (2), ref count (2).
pub const EDGE_WORDS: usize = 6;

/// A ring of `N` slots of `W` words. One producer calls [`push`](Self::push),
/// one consumer calls [`pop`](Self::pop); more of either garbles data (never
/// memory).
#[derive(Debug)]
pub struct WordRing<const N: usize, const W: usize> {
    slots: [[AtomicU32; W]; N],
    /// Slots written so far (free-running, producer-owned).
    head: AtomicU32,
    /// Slots read so far (free-running, consumer-owned).
    tail: AtomicU32,
}

impl<const N: usize, const W: usize> Default for WordRing<N, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const W: usize> WordRing<N, W> {
    /// An empty ring (usable in a `static`).
    pub const fn new() -> Self {
        assert!(N > 0 && N <= (u32::MAX / 2) as usize);
        Self {
            slots: [const { [const { AtomicU32::new(0) }; W] }; N],
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
        }
    }

    /// Producer: appends `words`; false (nothing written) if the ring is full.
    pub fn push(&self, words: [u32; W]) -> bool {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        if head.wrapping_sub(tail) as usize >= N {
            return false;
        }
        let slot = &self.slots[head as usize % N];
        for (cell, w) in slot.iter().zip(words) {
            cell.store(w, Ordering::Relaxed);
        }
        self.head.store(head.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer: takes the oldest entry.
    pub fn pop(&self) -> Option<[u32; W]> {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        let slot = &self.slots[tail as usize % N];
        let words = core::array::from_fn(|i| slot[i].load(Ordering::Relaxed));
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
        Some(words)
    }

    /// Entries waiting (a snapshot).
    pub fn len(&self) -> usize {
        self.head
            .load(Ordering::Acquire)
            .wrapping_sub(self.tail.load(Ordering::Acquire)) as usize
    }

    /// Nothing waiting (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Packs a transition and the arming it belongs to into ring words.
pub const fn pack_edge(epoch: u32, e: &RawEdge) -> [u32; EDGE_WORDS] {
    let pol = match e.polarity {
        Polarity::Rising => 1,
        Polarity::Falling => 0,
    };
    [
        epoch,
        e.channel as u32 | pol << 8,
        e.ticks as u32,
        (e.ticks >> 32) as u32,
        e.ref_count as u32,
        (e.ref_count >> 32) as u32,
    ]
}

/// The inverse of [`pack_edge`]: (epoch, transition).
pub const fn unpack_edge(w: [u32; EDGE_WORDS]) -> (u32, RawEdge) {
    (
        w[0],
        RawEdge {
            channel: w[1] as u8,
            polarity: if (w[1] >> 8) & 1 == 1 {
                Polarity::Rising
            } else {
                Polarity::Falling
            },
            ticks: w[2] as u64 | (w[3] as u64) << 32,
            ref_count: w[4] as u64 | (w[5] as u64) << 32,
        },
    )
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::sync::Arc;
    use std::thread;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn fifo_and_full() {
        let r = WordRing::<3, 2>::new();
        assert!(r.is_empty());
        assert!(r.push([1, 2]));
        assert!(r.push([3, 4]));
        assert!(r.push([5, 6]));
        assert!(!r.push([7, 8]), "full");
        assert_eq!(r.len(), 3);
        assert_eq!(r.pop(), Some([1, 2]));
        assert!(r.push([7, 8]));
        assert_eq!(r.pop(), Some([3, 4]));
        assert_eq!(r.pop(), Some([5, 6]));
        assert_eq!(r.pop(), Some([7, 8]));
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn edges_round_trip() {
        let e = RawEdge {
            channel: 7,
            polarity: Polarity::Rising,
            ticks: 0x1234_5678_9ABC_DEF0,
            ref_count: u64::MAX - 1,
        };
        assert_eq!(unpack_edge(pack_edge(42, &e)), (42, e));
        let f = RawEdge {
            polarity: Polarity::Falling,
            ..e
        };
        assert_eq!(unpack_edge(pack_edge(0, &f)), (0, f));
    }

    #[test]
    fn two_threads_lose_nothing_and_keep_order() {
        const COUNT: u32 = 200_000;
        let ring = Arc::new(WordRing::<64, EDGE_WORDS>::new());
        let producer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || {
                let mut refused = 0u32;
                for i in 0..COUNT {
                    // Every word of a slot carries the index, so a torn slot shows.
                    while !ring.push([i; EDGE_WORDS]) {
                        refused += 1;
                        thread::yield_now();
                    }
                }
                refused
            })
        };
        let mut got: Vec<u32> = Vec::with_capacity(COUNT as usize);
        while got.len() < COUNT as usize {
            match ring.pop() {
                Some(w) => {
                    assert!(w.iter().all(|&x| x == w[0]), "torn slot {w:?}");
                    got.push(w[0]);
                }
                None => thread::yield_now(),
            }
        }
        producer.join().unwrap();
        assert!(got.iter().copied().eq(0..COUNT));
        assert!(ring.is_empty());
    }
}
