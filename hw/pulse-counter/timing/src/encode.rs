//! Turning device messages into bytes for the USB link.
//!
//! [`encode_message`] is the firmware's only path from a message to frame bytes
//! (the protocol crate's `encode`: COBS, CRC-32, trailing 0x00). [`PacketPacker`]
//! packs frames back to back into full 64-byte USB packets, as PROTOCOL.md §10
//! requires for the link budget: a frame may span two packets, and a partial
//! packet goes out only when nothing else is waiting.

use crate::protocol::{DeviceMessage, MAX_FRAME_LEN, encode};

/// Full-speed bulk packet size of the CDC-ACM data endpoint.
pub const USB_PACKET_LEN: usize = 64;

/// Bytes of one Edge frame on the wire (28 payload + 4 CRC + 1 COBS + 1 delimiter).
pub const EDGE_FRAME_LEN: usize = 34;

/// Encodes `msg` as one complete frame into `out`; returns its length.
pub fn encode_message(msg: &DeviceMessage, out: &mut [u8; MAX_FRAME_LEN]) -> usize {
    // Every v1 message is far below MAX_FRAME_LEN, so this cannot fail; if it ever
    // did, sending nothing is safer than sending a broken frame (the host sees a
    // sequence gap or a missing reply).
    encode(msg, out).unwrap_or(0)
}

/// Collects bytes into USB packets of `P` bytes.
#[derive(Debug, Clone)]
pub struct PacketPacker<const P: usize = USB_PACKET_LEN> {
    buf: [u8; P],
    len: usize,
    /// The last packet written was full, so the host's read may still be open
    /// and waits for a short (possibly zero-length) packet to complete.
    owe_short: bool,
}

impl<const P: usize> Default for PacketPacker<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const P: usize> PacketPacker<P> {
    /// An empty packer.
    pub const fn new() -> Self {
        Self {
            buf: [0; P],
            len: 0,
            owe_short: false,
        }
    }

    /// Copies as many of `bytes` as fit into the current packet; returns how
    /// many were taken. When the packet is full, send [`full_packet`](Self::full_packet).
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(P - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    /// The current packet if it is full; the packer is empty again afterwards.
    pub fn full_packet(&mut self) -> Option<&[u8]> {
        if self.len < P {
            return None;
        }
        self.len = 0;
        self.owe_short = true;
        Some(&self.buf)
    }

    /// When nothing more is waiting: the partial packet, or a zero-length packet
    /// if the last one sent was full (so the host's read completes now), or
    /// `None` if there is nothing to send.
    pub fn flush(&mut self) -> Option<&[u8]> {
        if self.len == 0 && !self.owe_short {
            return None;
        }
        let n = core::mem::take(&mut self.len);
        self.owe_short = false;
        Some(&self.buf[..n])
    }

    /// Bytes waiting in the current packet.
    pub const fn pending(&self) -> usize {
        self.len
    }

    /// Forgets the current packet (e.g. when the USB connection was lost).
    pub fn clear(&mut self) {
        self.len = 0;
        self.owe_short = false;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;
    use crate::protocol::{Edge, FrameDecoder};

    fn edge(seq: u32) -> DeviceMessage {
        DeviceMessage::Edge(Edge {
            sequence: seq,
            channel: (seq % 8) as u8,
            timestamp_ticks: 62_500_000 * u64::from(seq),
            width_ticks: 625_000,
            ref_count: 1_000 * u64::from(seq),
            flags: 0,
        })
    }

    #[test]
    fn edge_frames_are_34_bytes() {
        let mut f = [0; MAX_FRAME_LEN];
        assert_eq!(encode_message(&edge(1), &mut f), EDGE_FRAME_LEN);
    }

    #[test]
    fn frames_span_packets_and_decode_back() {
        let mut packer = PacketPacker::<64>::new();
        let mut wire: Vec<Vec<u8>> = Vec::new();
        let mut frame = [0; MAX_FRAME_LEN];
        for seq in 1..=20 {
            let n = encode_message(&edge(seq), &mut frame);
            let mut rest = &frame[..n];
            while !rest.is_empty() {
                let k = packer.fill(rest);
                rest = &rest[k..];
                if let Some(p) = packer.full_packet() {
                    wire.push(p.to_vec());
                }
            }
        }
        if let Some(p) = packer.flush() {
            wire.push(p.to_vec());
        }
        assert_eq!(packer.flush(), None);
        // 20 × 34 = 680 bytes = 10 full packets + 40 bytes.
        assert_eq!(wire.len(), 11);
        assert!(wire[..10].iter().all(|p| p.len() == 64));
        assert_eq!(wire[10].len(), 40);
        let mut dec = FrameDecoder::<DeviceMessage>::new();
        let got: Vec<DeviceMessage> = wire
            .iter()
            .flatten()
            .filter_map(|&b| dec.push(b))
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, (1..=20).map(edge).collect::<Vec<_>>());
    }

    #[test]
    fn a_zero_length_packet_follows_a_full_one_when_idle() {
        let mut packer = PacketPacker::<4>::new();
        assert_eq!(packer.fill(&[1, 2, 3, 4, 5]), 4);
        assert_eq!(packer.full_packet(), Some(&[1u8, 2, 3, 4][..]));
        assert_eq!(packer.flush(), Some(&[][..]), "ZLP");
        assert_eq!(packer.flush(), None);
        packer.fill(&[9]);
        assert_eq!(packer.full_packet(), None);
        assert_eq!(packer.pending(), 1);
        assert_eq!(packer.flush(), Some(&[9u8][..]));
        packer.fill(&[1]);
        packer.clear();
        assert_eq!(packer.flush(), None);
    }
}
