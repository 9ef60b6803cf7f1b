//! Finding instruments: serial ports (with their USB identity), CAN interfaces, and what
//! answers on a port (`*IDN?` for SCPI instruments, the hello of the pulse counter), so a
//! technician can write a station file.

use crate::counter::ProtocolCounter;
use crate::scpi::ScpiSession;
use crate::transport::{Transport, TransportError};
use crate::{InstrumentIdentity, PulseCounter};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// USB identity of a serial port's device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsbIdentity {
    pub vid: u16,
    pub pid: u16,
    pub serial_number: Option<String>,
    pub manufacturer: Option<String>,
    pub product: Option<String>,
}

/// A serial port the system offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SerialPortEntry {
    pub path: String,
    /// `usb`, `pci`, `bluetooth` or `unknown`.
    pub kind: &'static str,
    pub usb: Option<UsbIdentity>,
}

/// The USB id the meterbench pulse counter firmware enumerates with (pid.codes test id,
/// see hw/pulse-counter/src/main.rs).
pub const COUNTER_USB_ID: (u16, u16) = (0x1209, 0x0001);

impl SerialPortEntry {
    /// What the USB id suggests before anything is sent to the port.
    pub fn hint(&self) -> Option<&'static str> {
        let usb = self.usb.as_ref()?;
        match (usb.vid, usb.pid) {
            COUNTER_USB_ID => Some("meterbench pulse counter (by USB id)"),
            (0x0403, _) => Some("FTDI USB-serial adapter"),
            (0x067b, _) => Some("Prolific USB-serial adapter"),
            (0x10c4, _) => Some("Silicon Labs USB-serial adapter"),
            (0x1a86, _) => Some("WCH USB-serial adapter"),
            (0x16d0, 0x117e) => Some("CANable (SLCAN)"),
            _ => None,
        }
    }
}

/// Serial ports of this machine (sysfs on Linux; no libudev needed). Pseudo-terminals are
/// not listed: name them to [`identify`] directly.
pub fn serial_ports() -> Result<Vec<SerialPortEntry>, String> {
    if cfg!(target_os = "linux") && !Path::new("/sys/class/tty").is_dir() {
        // serialport would panic without sysfs (some containers).
        return Ok(Vec::new());
    }
    let ports = serialport::available_ports().map_err(|e| e.to_string())?;
    let mut v: Vec<SerialPortEntry> = ports
        .into_iter()
        .map(|p| {
            let (kind, usb) = match p.port_type {
                serialport::SerialPortType::UsbPort(u) => (
                    "usb",
                    Some(UsbIdentity {
                        vid: u.vid,
                        pid: u.pid,
                        serial_number: u.serial_number,
                        manufacturer: u.manufacturer,
                        product: u.product,
                    }),
                ),
                serialport::SerialPortType::PciPort => ("pci", None),
                serialport::SerialPortType::BluetoothPort => ("bluetooth", None),
                serialport::SerialPortType::Unknown => ("unknown", None),
            };
            SerialPortEntry {
                path: p.port_name,
                kind,
                usb,
            }
        })
        .collect();
    v.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(v)
}

/// A CAN network interface (SocketCAN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanInterface {
    pub name: String,
    /// `up`, `down`, `unknown`... (operstate)
    pub state: String,
}

/// `ARPHRD_CAN`: the hardware type of CAN interfaces in `/sys/class/net/*/type`.
const ARPHRD_CAN: &str = "280";

/// CAN interfaces among the network interfaces under `sys_class_net`
/// (`/sys/class/net` on Linux; another folder in tests).
pub fn can_interfaces(sys_class_net: &Path) -> Vec<CanInterface> {
    let Ok(dir) = std::fs::read_dir(sys_class_net) else {
        return Vec::new();
    };
    let mut v: Vec<CanInterface> = dir
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_to_string(e.path().join("type")).is_ok_and(|t| t.trim() == ARPHRD_CAN)
        })
        .map(|e| CanInterface {
            name: e.file_name().to_string_lossy().into_owned(),
            state: std::fs::read_to_string(e.path().join("operstate"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// What answered on a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// An SCPI instrument's `*IDN?`.
    Scpi { identity: InstrumentIdentity },
    /// The pulse counter's hello.
    Counter {
        identity: InstrumentIdentity,
        timebase_hz: u32,
        channels: u8,
        external_clock: bool,
    },
    /// A USB-CAN adapter speaking SLCAN (Lawicel): its `V` and `N` answers.
    Slcan {
        version: String,
        serial_number: String,
    },
    /// Nothing we know answered; what each attempt said.
    Nothing { tried: Vec<String> },
}

/// Ask an SLCAN adapter for its version (`V`) and serial number (`N`). A CR first ends
/// whatever half command an earlier probe left; BEL (refused) bytes before the answer
/// are skipped.
fn slcan_identity<T: Transport>(t: &mut T, timeout: Duration) -> Result<(String, String), String> {
    let _ = t.write_all(b"\r");
    std::thread::sleep(Duration::from_millis(20));
    let _ = t.discard_input();
    let mut ask = |cmd: u8| -> Result<String, String> {
        t.write_all(&[cmd, b'\r']).map_err(|e| e.to_string())?;
        let line = t.read_until(b'\r', timeout).map_err(|e| e.to_string())?;
        let text: String = String::from_utf8_lossy(&line)
            .chars()
            .filter(|&c| c != '\x07')
            .collect();
        match text.strip_prefix(cmd as char) {
            Some(rest) if !rest.is_empty() && rest.chars().all(|c| c.is_ascii_graphic()) => {
                Ok(rest.to_string())
            }
            _ => Err(format!(
                "`{}` is not an SLCAN `{}` answer",
                text.escape_debug(),
                cmd as char
            )),
        }
    };
    let version = ask(b'V')?;
    let serial = ask(b'N')?;
    Ok((version, serial))
}

/// Ask what is on the far end of a transport: first `*IDN?` (an SCPI instrument answers
/// a text line), then the counter's GetHello (a framed binary request; the counter
/// discards the `*IDN?` line as a broken frame), then SLCAN's `V` and `N` (a USB-CAN
/// adapter refuses the earlier bytes with BEL). `reopen` gives a fresh transport to the
/// same port for the second attempt, so nothing from the first is left in a buffer.
pub fn identify<T: Transport>(
    mut reopen: impl FnMut() -> Result<T, TransportError>,
    timeout: Duration,
) -> Result<Answer, TransportError> {
    let mut tried = Vec::new();
    let mut scpi = ScpiSession::new(reopen()?, timeout);
    match scpi.identify() {
        Ok(identity) => return Ok(Answer::Scpi { identity }),
        Err(e) => tried.push(format!("*IDN?: {e}")),
    }
    drop(scpi);
    match ProtocolCounter::open(reopen()?, timeout) {
        Ok(mut c) => {
            let hello = *c.hello();
            let identity = match c.identity() {
                Ok(i) => i,
                Err(e) => {
                    tried.push(format!("counter identity: {e}"));
                    return Ok(Answer::Nothing { tried });
                }
            };
            return Ok(Answer::Counter {
                identity,
                timebase_hz: hello.timebase_hz,
                channels: hello.channel_count,
                external_clock: hello.external_clock,
            });
        }
        Err(e) => tried.push(format!("counter hello: {e}")),
    }
    match slcan_identity(&mut reopen()?, timeout) {
        Ok((version, serial_number)) => {
            return Ok(Answer::Slcan {
                version,
                serial_number,
            });
        }
        Err(e) => tried.push(format!("SLCAN V/N: {e}")),
    }
    Ok(Answer::Nothing { tried })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::scripted::{ScriptStep, ScriptedTransport};

    #[test]
    fn can_interfaces_are_network_interfaces_of_type_280() {
        let dir = tempfile::tempdir().unwrap();
        for (name, kind, state) in [
            ("can0", "280", "up"),
            ("eth0", "1", "up"),
            ("slcan1", "280\n", "down"),
        ] {
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("type"), kind).unwrap();
            std::fs::write(d.join("operstate"), format!("{state}\n")).unwrap();
        }
        std::fs::create_dir(dir.path().join("vcan0")).unwrap();
        let found = can_interfaces(dir.path());
        assert_eq!(
            found,
            vec![
                CanInterface {
                    name: "can0".into(),
                    state: "up".into()
                },
                CanInterface {
                    name: "slcan1".into(),
                    state: "down".into()
                },
            ]
        );
        assert!(can_interfaces(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn an_scpi_instrument_is_identified_by_its_idn() {
        let answer = identify(
            || {
                Ok(ScriptedTransport::new([ScriptStep::exchange(
                    "*IDN?\n",
                    "FLUKE,6105A,123456,2.1\n",
                )]))
            },
            Duration::from_millis(100),
        )
        .unwrap();
        match answer {
            Answer::Scpi { identity } => {
                assert_eq!(identity.model, "6105A");
                assert_eq!(identity.serial_number, "123456");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_usb_id_hints_at_the_counter() {
        let e = SerialPortEntry {
            path: "/dev/ttyACM0".into(),
            kind: "usb",
            usb: Some(UsbIdentity {
                vid: COUNTER_USB_ID.0,
                pid: COUNTER_USB_ID.1,
                serial_number: Some("E66118604B1F3D2C".into()),
                manufacturer: None,
                product: None,
            }),
        };
        assert_eq!(e.hint(), Some("meterbench pulse counter (by USB id)"));
    }
}
