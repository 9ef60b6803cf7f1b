//! SLCAN, the Lawicel CANUSB ASCII protocol spoken by most USB-CAN adapters
//! (CANable, CANUSB, USBtin, …) over a serial line.
//!
//! Host → adapter commands end with `\r`: `O` open, `L` open listen-only,
//! `C` close, `S0`–`S8` bitrate, `tiiildd…` / `Tiiiiiiiildd…` data frames,
//! `riiil` / `Riiiiiiiil` remote frames, `V` / `N` version / serial number,
//! `F` status flags, `Z0` / `Z1` timestamps off / on. The adapter answers `\r`
//! (OK) or BEL (`\x07`, error), `z\r` / `Z\r` after a transmitted standard /
//! extended frame, and sends received frames in the same `t`/`T`/`r`/`R`
//! syntax, followed by a 4-hex-digit millisecond timestamp when `Z1` is on.
//!
//! The codec here is pure; [`SlcanBus`] drives an adapter over any byte
//! stream and [`SlcanDevice`] is the adapter's side, for simulators.

mod device;
mod host;

pub use device::SlcanDevice;
pub use host::{SlcanBus, SlcanStats};

use std::fmt;

use crate::frame::{CanFrame, CanId};

/// The BEL byte an adapter answers a refused command with.
pub const BEL: u8 = 0x07;

/// Longest meaningful line: `T` + 8 id + 1 DLC + 16 data + 4 timestamp.
pub const MAX_LINE: usize = 30;

/// The nine bitrates of the `S0`–`S8` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bitrate {
    K10,
    K20,
    K50,
    K100,
    K125,
    K250,
    K500,
    K800,
    M1,
}

impl Bitrate {
    /// In `S0`–`S8` order.
    pub const ALL: [Bitrate; 9] = [
        Bitrate::K10,
        Bitrate::K20,
        Bitrate::K50,
        Bitrate::K100,
        Bitrate::K125,
        Bitrate::K250,
        Bitrate::K500,
        Bitrate::K800,
        Bitrate::M1,
    ];

    /// The digit of the `Sn` command.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|&b| b == self).unwrap_or(0) as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    pub fn bits_per_second(self) -> u32 {
        match self {
            Bitrate::K10 => 10_000,
            Bitrate::K20 => 20_000,
            Bitrate::K50 => 50_000,
            Bitrate::K100 => 100_000,
            Bitrate::K125 => 125_000,
            Bitrate::K250 => 250_000,
            Bitrate::K500 => 500_000,
            Bitrate::K800 => 800_000,
            Bitrate::M1 => 1_000_000,
        }
    }

    /// The SLCAN bitrate for a value in bit/s, if SLCAN has it.
    pub fn from_bits_per_second(bps: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.bits_per_second() == bps)
    }
}

impl fmt::Display for Bitrate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bitrate::M1 => f.write_str("1 Mbit/s"),
            other => write!(f, "{} kbit/s", other.bits_per_second() / 1000),
        }
    }
}

/// A host → adapter command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `O`: open the channel.
    Open,
    /// `L`: open the channel listen-only.
    ListenOnly,
    /// `C`: close the channel.
    Close,
    /// `Sn`: set the bitrate (channel closed).
    SetBitrate(Bitrate),
    /// `t`/`T`/`r`/`R`: transmit a frame.
    Transmit(CanFrame),
    /// `Z0`/`Z1`: timestamps on received frames off/on (channel closed).
    Timestamps(bool),
    /// `V`: hardware and software version.
    Version,
    /// `N`: serial number.
    SerialNumber,
    /// `F`: status flags (channel open).
    Status,
}

/// An adapter → host line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `\r`: command accepted.
    Ok,
    /// BEL: command refused.
    Error,
    /// `z\r` / `Z\r`: a standard / extended frame was transmitted.
    Transmitted { extended: bool },
    /// A received frame, with the adapter's millisecond timestamp if `Z1`.
    Frame {
        frame: CanFrame,
        timestamp: Option<u16>,
    },
    /// `Vhhss`: the version string after the `V`.
    Version(String),
    /// `Nxxxx`: the serial number after the `N`.
    SerialNumber(String),
    /// `Fxx`: status flags.
    Status(u8),
}

/// A line that is not valid SLCAN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SLCAN line {line:?}: {reason}")]
pub struct SlcanError {
    /// The line, lossily decoded and truncated for display.
    pub line: String,
    pub reason: &'static str,
}

fn malformed(line: &[u8], reason: &'static str) -> SlcanError {
    let shown = &line[..line.len().min(40)];
    SlcanError {
        line: String::from_utf8_lossy(shown).into_owned(),
        reason,
    }
}

/// The bytes of a command, terminated by `\r`.
pub fn encode_command(command: &Command) -> Vec<u8> {
    let mut out = match command {
        Command::Open => b"O".to_vec(),
        Command::ListenOnly => b"L".to_vec(),
        Command::Close => b"C".to_vec(),
        Command::SetBitrate(b) => format!("S{}", b.code()).into_bytes(),
        Command::Transmit(frame) => encode_frame(frame),
        Command::Timestamps(on) => if *on { b"Z1" } else { b"Z0" }.to_vec(),
        Command::Version => b"V".to_vec(),
        Command::SerialNumber => b"N".to_vec(),
        Command::Status => b"F".to_vec(),
    };
    out.push(b'\r');
    out
}

/// The bytes of an adapter line: terminated by `\r`, except the lone BEL.
pub fn encode_message(message: &Message) -> Vec<u8> {
    let mut out = match message {
        Message::Ok => Vec::new(),
        Message::Error => return vec![BEL],
        Message::Transmitted { extended } => if *extended { b"Z" } else { b"z" }.to_vec(),
        Message::Frame { frame, timestamp } => {
            let mut line = encode_frame(frame);
            if let Some(ts) = timestamp {
                line.extend_from_slice(format!("{ts:04X}").as_bytes());
            }
            line
        }
        Message::Version(v) => format!("V{v}").into_bytes(),
        Message::SerialNumber(n) => format!("N{n}").into_bytes(),
        Message::Status(flags) => format!("F{flags:02X}").into_bytes(),
    };
    out.push(b'\r');
    out
}

fn encode_frame(frame: &CanFrame) -> Vec<u8> {
    let id = frame.id();
    let mut line = match (id.is_extended(), frame.is_remote()) {
        (false, false) => format!("t{:03X}", id.raw()),
        (true, false) => format!("T{:08X}", id.raw()),
        (false, true) => format!("r{:03X}", id.raw()),
        (true, true) => format!("R{:08X}", id.raw()),
    };
    line.push_str(&format!("{:X}", frame.dlc()));
    for byte in frame.data() {
        line.push_str(&format!("{byte:02X}"));
    }
    line.into_bytes()
}

/// Parse one adapter → host line, with or without its trailing `\r`; a lone
/// BEL is [`Message::Error`] and an empty line [`Message::Ok`].
pub fn parse_line(line: &[u8]) -> Result<Message, SlcanError> {
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(&first) = body.first() else {
        return Ok(Message::Ok);
    };
    match first {
        BEL if body.len() == 1 => Ok(Message::Error),
        b't' | b'T' | b'r' | b'R' => {
            let (frame, timestamp) = parse_frame(body, true)?;
            Ok(Message::Frame { frame, timestamp })
        }
        b'z' if body.len() == 1 => Ok(Message::Transmitted { extended: false }),
        b'Z' if body.len() == 1 => Ok(Message::Transmitted { extended: true }),
        b'V' => Ok(Message::Version(text(body)?)),
        b'N' => Ok(Message::SerialNumber(text(body)?)),
        b'F' if body.len() == 3 => hex_value(&body[1..])
            .map(|v| Message::Status(v as u8))
            .ok_or_else(|| malformed(body, "status flags are not 2 hex digits")),
        _ => Err(malformed(body, "not an SLCAN reply or frame")),
    }
}

/// Parse one host → adapter command, with or without its trailing `\r`.
pub fn parse_command(line: &[u8]) -> Result<Command, SlcanError> {
    let body = line.strip_suffix(b"\r").unwrap_or(line);
    match body {
        b"O" => Ok(Command::Open),
        b"L" => Ok(Command::ListenOnly),
        b"C" => Ok(Command::Close),
        b"V" => Ok(Command::Version),
        b"N" => Ok(Command::SerialNumber),
        b"F" => Ok(Command::Status),
        b"Z0" => Ok(Command::Timestamps(false)),
        b"Z1" => Ok(Command::Timestamps(true)),
        [b'S', digit] => digit
            .checked_sub(b'0')
            .and_then(Bitrate::from_code)
            .map(Command::SetBitrate)
            .ok_or_else(|| malformed(body, "bitrate code is not 0-8")),
        [b't' | b'T' | b'r' | b'R', ..] => {
            parse_frame(body, false).map(|(f, _)| Command::Transmit(f))
        }
        [] => Err(malformed(body, "empty command")),
        _ => Err(malformed(body, "unknown or unsupported command")),
    }
}

fn text(body: &[u8]) -> Result<String, SlcanError> {
    let rest = &body[1..];
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_graphic) {
        return Err(malformed(
            body,
            "expected printable characters after the letter",
        ));
    }
    Ok(String::from_utf8_lossy(rest).into_owned())
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Value of up to 8 hex digits.
fn hex_value(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    digits
        .iter()
        .try_fold(0u32, |acc, &c| Some(acc << 4 | u32::from(hex_digit(c)?)))
}

fn parse_frame(body: &[u8], allow_timestamp: bool) -> Result<(CanFrame, Option<u16>), SlcanError> {
    let (extended, remote) = match body[0] {
        b't' => (false, false),
        b'T' => (true, false),
        b'r' => (false, true),
        _ => (true, true),
    };
    let id_len = if extended { 8 } else { 3 };
    let rest = &body[1..];
    if rest.len() < id_len + 1 {
        return Err(malformed(body, "too short for an id and a DLC"));
    }
    let raw = hex_value(&rest[..id_len]).ok_or_else(|| malformed(body, "id is not hex"))?;
    let id = if extended {
        CanId::extended(raw)
    } else {
        CanId::standard(raw as u16)
    }
    .map_err(|_| malformed(body, "id out of range"))?;
    let dlc = hex_digit(rest[id_len])
        .filter(|&d| d <= 8)
        .ok_or_else(|| malformed(body, "DLC is not 0-8"))?;
    let tail = &rest[id_len + 1..];
    let data_chars = if remote { 0 } else { 2 * usize::from(dlc) };
    if tail.len() < data_chars {
        return Err(malformed(body, "fewer data bytes than the DLC says"));
    }
    let mut data = [0u8; 8];
    for (i, pair) in tail[..data_chars].chunks(2).enumerate() {
        data[i] = hex_value(pair).ok_or_else(|| malformed(body, "data is not hex"))? as u8;
    }
    let timestamp = match &tail[data_chars..] {
        [] => None,
        ts if allow_timestamp && ts.len() == 4 => {
            Some(hex_value(ts).ok_or_else(|| malformed(body, "timestamp is not hex"))? as u16)
        }
        _ => return Err(malformed(body, "unexpected characters after the data")),
    };
    let frame = if remote {
        CanFrame::remote(id, dlc)
    } else {
        CanFrame::new(id, &data[..usize::from(dlc)])
    }
    .map_err(|_| malformed(body, "not a classic CAN frame"))?;
    Ok((frame, timestamp))
}

/// One item cut from an SLCAN byte stream by [`LineReader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A line without its `\r` (possibly empty: the OK reply).
    Line(Vec<u8>),
    /// A BEL byte: the error reply.
    Bell,
    /// An over-long run of bytes up to and including its `\r`, dropped.
    Discarded(usize),
}

/// Cuts a byte stream into SLCAN lines, whatever its chunking. Bounded:
/// lines longer than [`MAX_LINE`] are dropped up to the next `\r`, so a
/// stream of garbage resynchronises at the next line end. Line feeds are
/// ignored (some adapters and terminals add them).
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    overflow: usize,
}

impl LineReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one byte; returns a token when one is complete.
    pub fn push(&mut self, byte: u8) -> Option<Token> {
        match byte {
            BEL => Some(Token::Bell),
            b'\n' => None,
            b'\r' if self.overflow > 0 => {
                let dropped = self.overflow + 1;
                self.overflow = 0;
                Some(Token::Discarded(dropped))
            }
            b'\r' => Some(Token::Line(std::mem::take(&mut self.buf))),
            _ if self.overflow > 0 => {
                self.overflow += 1;
                None
            }
            _ if self.buf.len() >= MAX_LINE => {
                self.overflow = self.buf.len() + 1;
                self.buf.clear();
                None
            }
            _ => {
                self.buf.push(byte);
                None
            }
        }
    }

    /// Bytes of an incomplete line held back.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn std_id(raw: u16) -> CanId {
        CanId::standard(raw).unwrap()
    }

    #[test]
    fn commands_encode_as_lawicel_documents_them() {
        let frame = CanFrame::new(std_id(0x7E0), &[0x03, 0x22, 0xF1, 0x90]).unwrap();
        assert_eq!(
            encode_command(&Command::Transmit(frame)),
            b"t7E040322F190\r"
        );
        let ext = CanFrame::new(CanId::extended(0x18DA_F110).unwrap(), &[0xAB]).unwrap();
        assert_eq!(encode_command(&Command::Transmit(ext)), b"T18DAF1101AB\r");
        let rtr = CanFrame::remote(std_id(0x123), 2).unwrap();
        assert_eq!(encode_command(&Command::Transmit(rtr)), b"r1232\r");
        assert_eq!(encode_command(&Command::SetBitrate(Bitrate::K500)), b"S6\r");
        assert_eq!(encode_command(&Command::Timestamps(true)), b"Z1\r");
        assert_eq!(encode_command(&Command::Open), b"O\r");
        assert_eq!(encode_message(&Message::Error), [BEL]);
        assert_eq!(encode_message(&Message::Status(0x08)), b"F08\r");
    }

    #[test]
    fn replies_and_frames_parse() {
        assert_eq!(parse_line(b"\r"), Ok(Message::Ok));
        assert_eq!(parse_line(&[BEL]), Ok(Message::Error));
        assert_eq!(
            parse_line(b"z\r"),
            Ok(Message::Transmitted { extended: false })
        );
        assert_eq!(parse_line(b"V1013"), Ok(Message::Version("1013".into())));
        assert_eq!(
            parse_line(b"NA123\r"),
            Ok(Message::SerialNumber("A123".into()))
        );
        assert_eq!(parse_line(b"F0c\r"), Ok(Message::Status(0x0C)));
        let frame = CanFrame::new(std_id(0x7E8), &[0x10, 0x43]).unwrap();
        assert_eq!(
            parse_line(b"t7e821043\r"),
            Ok(Message::Frame {
                frame,
                timestamp: None
            })
        );
        assert_eq!(
            parse_line(b"t7E821043EA5F\r"),
            Ok(Message::Frame {
                frame,
                timestamp: Some(0xEA5F)
            })
        );
        assert_eq!(
            parse_line(b"R18DAF1108").unwrap(),
            Message::Frame {
                frame: CanFrame::remote(CanId::extended(0x18DA_F110).unwrap(), 8).unwrap(),
                timestamp: None
            }
        );
    }

    #[test]
    fn malformed_lines_say_why() {
        let cases: [(&[u8], &str); 8] = [
            (b"t7E", "too short for an id and a DLC"),
            (b"t8001AA", "id out of range"),
            (b"t7E09", "DLC is not 0-8"),
            (b"t7E02AA", "fewer data bytes than the DLC says"),
            (b"t7E01GG", "data is not hex"),
            (b"t7E01AA12", "unexpected characters after the data"),
            (b"x", "not an SLCAN reply or frame"),
            (b"V", "expected printable characters after the letter"),
        ];
        for (line, reason) in cases {
            assert_eq!(parse_line(line).unwrap_err().reason, reason, "{line:?}");
        }
        assert!(parse_command(b"S9").is_err());
        assert!(
            parse_command(b"t7E01AA1234").is_err(),
            "no timestamps host → adapter"
        );
        assert!(parse_command(b"").is_err());
        assert_eq!(
            parse_line(b"t7E").unwrap_err().to_string(),
            "malformed SLCAN line \"t7E\": too short for an id and a DLC"
        );
    }

    #[test]
    fn line_reader_resynchronises_after_garbage() {
        let mut reader = LineReader::new();
        let mut tokens = Vec::new();
        let mut stream = vec![b'#'; 100];
        stream.extend_from_slice(b"\rt1230\r\n\x07z\r");
        for byte in stream {
            tokens.extend(reader.push(byte));
        }
        assert_eq!(
            tokens,
            vec![
                Token::Discarded(101),
                Token::Line(b"t1230".to_vec()),
                Token::Bell,
                Token::Line(b"z".to_vec()),
            ]
        );
        assert_eq!(reader.pending(), 0);
    }

    #[test]
    fn bitrates_map_to_their_codes() {
        for (code, bitrate) in Bitrate::ALL.into_iter().enumerate() {
            assert_eq!(bitrate.code() as usize, code);
            assert_eq!(
                Bitrate::from_bits_per_second(bitrate.bits_per_second()),
                Some(bitrate)
            );
        }
        assert_eq!(Bitrate::K500.to_string(), "500 kbit/s");
        assert_eq!(Bitrate::M1.to_string(), "1 Mbit/s");
        assert_eq!(Bitrate::from_bits_per_second(83_333), None);
    }
}
