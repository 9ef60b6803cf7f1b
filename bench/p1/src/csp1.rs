//! The telegram the Xemex CSP1 (firmware XMX_P1CS_V05) sends, for the simulator.

use std::fmt::Write as _;

use crate::decoder::crc16;

/// What varies between CSP1 telegrams. [`Default`] gives the manual's example.
#[derive(Clone, Debug, PartialEq)]
pub struct Csp1Params {
    /// Identification after the fixed `/XMX5` (manufacturer `XMX`, baud
    /// character `5`), e.g. `XMXCQA0000008879`. Printable ASCII; `/` and `!`
    /// would end the telegram early, so they are written as `_`.
    pub identification: String,
    /// Equipment identifier `0-0:96.1.1` as text; the device hex-encodes it.
    pub equipment_id: String,
    /// RMS currents L1, L2, L3 in A. The device resolves 1 A and sends the
    /// magnitude, so each is rounded to the nearest ampere (`024*A`); the F3
    /// format caps it at 999 A, far past the 80 A range.
    pub currents: [f64; 3],
    /// Firmware id `0-0:96.13.1`, which the CSP1 sends in plain ASCII (the spec
    /// says hex). Printable ASCII; `(`, `)`, `/`, `!` are written as `_`.
    pub firmware: String,
}

impl Default for Csp1Params {
    fn default() -> Self {
        Self {
            identification: "XMXCQA0000008879".into(),
            equipment_id: "E0000000000000000".into(),
            currents: [24.0; 3],
            firmware: "XMX_P1CS_V05".into(),
        }
    }
}

/// The whole number of amperes the CSP1 reports for `amps`.
pub fn csp1_quantise(amps: f64) -> u16 {
    // `as` saturates and maps NaN to 0.
    amps.abs().round().min(999.0) as u16
}

/// Writes one telegram exactly as the CSP1 does: its fixed DSMR 4.0.4-style line
/// set and order, zeros and a dummy timestamp wherever it measures nothing,
/// the three currents, and the CRC. CRLF line ends.
pub fn encode_csp1_telegram(params: &Csp1Params) -> Vec<u8> {
    let ident = printable(&params.identification, b"/!");
    let firmware = printable(&params.firmware, b"/!()");
    let equipment: String = params
        .equipment_id
        .bytes()
        .map(|b| format!("{b:02X}"))
        .collect();
    let [l1, l2, l3] = params.currents.map(csp1_quantise);
    let mut t = String::with_capacity(800);
    // `write!` into a String cannot fail.
    let _ = write!(
        t,
        "/XMX5{ident}\r\n\
         \r\n\
         1-3:0.2.8(40)\r\n\
         0-0:1.0.0(000101010000W)\r\n\
         0-0:96.1.1({equipment})\r\n\
         1-0:1.8.1(000000.000*kWh)\r\n\
         1-0:2.8.1(000000.000*kWh)\r\n\
         1-0:1.8.2(000000.000*kWh)\r\n\
         1-0:2.8.2(000000.000*kWh)\r\n\
         0-0:96.14.0(0001)\r\n\
         1-0:1.7.0(00.000*kW)\r\n\
         1-0:2.7.0(00.000*kW)\r\n\
         0-0:17.0.0(000.0*kW)\r\n\
         0-0:96.3.10(1)\r\n\
         0-0:96.7.21(00000)\r\n\
         0-0:96.7.9(00000)\r\n\
         1-0:99.97.0(0)(0-0:96.7.19)\r\n\
         1-0:32.32.0(00000)\r\n\
         1-0:52.32.0(00000)\r\n\
         1-0:72.32.0(00000)\r\n\
         1-0:32.36.0(00000)\r\n\
         1-0:52.36.0(00000)\r\n\
         1-0:72.36.0(00000)\r\n\
         0-0:96.13.1({firmware})\r\n\
         0-0:96.13.0()\r\n\
         1-0:31.7.0({l1:03}*A)\r\n\
         1-0:51.7.0({l2:03}*A)\r\n\
         1-0:71.7.0({l3:03}*A)\r\n\
         1-0:21.7.0(00.000*kW)\r\n\
         1-0:41.7.0(00.000*kW)\r\n\
         1-0:61.7.0(00.000*kW)\r\n\
         1-0:22.7.0(00.000*kW)\r\n\
         1-0:42.7.0(00.000*kW)\r\n\
         1-0:62.7.0(00.000*kW)\r\n\
         !"
    );
    let crc = crc16(t.as_bytes());
    let _ = write!(t, "{crc:04X}\r\n");
    t.into_bytes()
}

/// `text` with anything that would break the line replaced by `_`.
fn printable(text: &str, forbidden: &[u8]) -> String {
    text.chars()
        .map(|c| {
            let ok = c.is_ascii_graphic() || c == ' ';
            if ok && !forbidden.contains(&(c as u8)) {
                c
            } else {
                '_'
            }
        })
        .collect()
}
