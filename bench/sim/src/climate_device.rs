//! The simulated room air and the Vaisala HMT330 that measures it: a transmitter in
//! STOP serial mode on the far end of a pseudo-terminal (echo, `SEND`, `?`, the `>`
//! prompt), so the real `VaisalaHmt` driver is exercised on the wire, and [`SimClimate`],
//! the same transmitter in process for a station whose climate role uses `driver: sim`.
//!
//! Both paths hand out the reading the transmitter prints, with one decimal: the
//! in-process sensor formats the line the device would send and parses it with the
//! driver's parser, so a run gives the same values (and the same refusals) whichever
//! path the station chooses.

use crate::world::{SharedWorld, standard_normal};
use meterbench_instruments::climate::{Hmt330Identity, parse_reading};
use meterbench_instruments::transport::serial::{SerialPort as _, TTYPort};
use meterbench_instruments::{
    AmbientReading, ClimateSensor, InstrumentError, InstrumentIdentity, InstrumentResult,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::io::{ErrorKind, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the device's blocked read looks at its stop flag.
const POLL: Duration = Duration::from_millis(20);

/// A command line longer than this is line noise; the transmitter's own buffer is
/// small too.
const MAX_COMMAND: usize = 256;

/// The room: the air at the start of the world, its linear drift and a reading's
/// noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmbientModel {
    pub temperature_c: f64,
    pub humidity_percent_rh: f64,
    pub drift_c_per_h: f64,
    pub drift_percent_rh_per_h: f64,
    /// Standard deviation of a reading's noise, °C and % RH.
    pub noise_c: f64,
    pub noise_percent_rh: f64,
    /// Seed of the noise. Each whole second of the world draws from its own stream of it
    /// (the second's number), so a reading depends on the seed and the second only, not
    /// on how often or when within the second the bench asks.
    pub seed: u64,
}

impl AmbientModel {
    /// The simulated room a station declares (`simulation.climate`), its noise seeded
    /// from the world's seed (a stream of its own: "climate" in ASCII).
    pub fn for_simulation(spec: &meterbench_procedure::SimulationSpec) -> Option<AmbientModel> {
        let air = spec.climate?;
        Some(AmbientModel {
            temperature_c: air.temperature_c,
            humidity_percent_rh: air.humidity_percent_rh,
            drift_c_per_h: air.drift_c_per_h,
            drift_percent_rh_per_h: air.drift_percent_rh_per_h,
            noise_c: air.noise_c,
            noise_percent_rh: air.noise_percent_rh,
            seed: spec.seed ^ 0x0063_6c69_6d61_7465,
        })
    }

    /// The air at world time `t_s`, held for the whole second it falls in (the
    /// transmitter refreshes its output about once a second): the start values plus the
    /// drift up to that second, plus that second's noise. Humidity stays within 0…100.
    pub fn reading_at(&self, t_s: f64) -> AmbientReading {
        // A time a rounding error short of a whole second belongs to that second.
        let second = (t_s + 1e-9).floor().max(0.0);
        let hours = second / 3600.0;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(second as u64);
        let (z_t, z_rh) = (standard_normal(&mut rng), standard_normal(&mut rng));
        AmbientReading {
            temperature_c: self.temperature_c + self.drift_c_per_h * hours + self.noise_c * z_t,
            humidity_percent_rh: Some(
                (self.humidity_percent_rh
                    + self.drift_percent_rh_per_h * hours
                    + self.noise_percent_rh * z_rh)
                    .clamp(0.0, 100.0),
            ),
        }
    }
}

/// A reading as the transmitter's default output form prints it, without the line end:
/// `RH= 45.3 %RH T= 23.1 'C`, each value with one decimal right-aligned in five
/// characters (so `RH=100.0` and `T=-12.3` have no space after the `=`).
pub fn hmt330_line(reading: &AmbientReading) -> String {
    let t = format!("T={:5.1} 'C", reading.temperature_c);
    match reading.humidity_percent_rh {
        Some(rh) => format!("RH={rh:5.1} %RH {t}"),
        None => t,
    }
}

/// The device information the transmitter prints for `?`.
fn info_lines(identity: &Hmt330Identity) -> String {
    [
        format!("{} / {}", identity.model, identity.firmware),
        format!("Serial number  : {}", identity.serial_number),
        "Serial mode    : STOP".into(),
        "Baud P D S     : 4800 E 7 1".into(),
        "Echo           : ON".into(),
    ]
    .map(|l| l + "\r\n")
    .concat()
}

/// Start the simulated HMT330 on `port` (the master end of a pseudo-terminal pair; the
/// driver opens the other end). It ends when `stop` is set or the driver's end closes.
pub fn spawn_hmt330_device(
    world: SharedWorld,
    mut port: TTYPort,
    model: AmbientModel,
    identity: Hmt330Identity,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("sim-hmt330".into())
        .spawn(move || {
            if port.set_timeout(POLL).is_err() {
                return;
            }
            let mut command = Vec::new();
            let mut chunk = [0u8; 256];
            while !stop.load(Ordering::SeqCst) {
                let n = match port.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::Interrupted
                        ) =>
                    {
                        continue;
                    }
                    // The driver's end closed (EIO on a PTY master): the cable is out.
                    Err(_) => return,
                };
                let mut out = Vec::new();
                for &b in &chunk[..n] {
                    match b {
                        b'\r' => {
                            out.extend_from_slice(b"\r\n");
                            let text = String::from_utf8_lossy(&command).into_owned();
                            command.clear();
                            let now = world.lock().unwrap().now_s();
                            out.extend(answer(text.trim(), &model, &identity, now).as_bytes());
                            out.push(b'>');
                        }
                        // A host that ends its commands in CR LF: the LF is no command.
                        b'\n' => {}
                        _ => {
                            out.push(b);
                            if command.len() < MAX_COMMAND {
                                command.push(b);
                            }
                        }
                    }
                }
                if port.write_all(&out).and_then(|()| port.flush()).is_err() {
                    return;
                }
            }
        })
        .expect("spawn the simulated HMT330")
}

/// What the transmitter prints for one command line (before its prompt).
fn answer(command: &str, model: &AmbientModel, identity: &Hmt330Identity, now_s: f64) -> String {
    if command.eq_ignore_ascii_case("SEND") {
        hmt330_line(&model.reading_at(now_s)) + "\r\n"
    } else if command == "?" {
        info_lines(identity)
    } else if command.is_empty() {
        String::new()
    } else {
        "Unknown command\r\n".into()
    }
}

/// The simulated HMT330 in process, for a station whose climate role uses `driver: sim`.
pub struct SimClimate {
    world: SharedWorld,
    model: AmbientModel,
    identity: InstrumentIdentity,
}

impl SimClimate {
    pub fn new(world: SharedWorld, model: AmbientModel, identity: InstrumentIdentity) -> Self {
        SimClimate {
            world,
            model,
            identity,
        }
    }
}

impl ClimateSensor for SimClimate {
    fn describe(&self) -> String {
        format!(
            "simulated climate sensor {} (in process)",
            self.identity.serial_number
        )
    }

    fn identity(&mut self) -> InstrumentResult<InstrumentIdentity> {
        Ok(self.identity.clone())
    }

    fn read(&mut self) -> InstrumentResult<AmbientReading> {
        let now = self.world.lock().unwrap().now_s();
        let line = hmt330_line(&self.model.reading_at(now));
        parse_reading(&line).map_err(|reply| InstrumentError::Device {
            instrument: self.describe(),
            request: "SEND".into(),
            reply,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> AmbientModel {
        AmbientModel {
            temperature_c: 23.0,
            humidity_percent_rh: 45.0,
            drift_c_per_h: 0.5,
            drift_percent_rh_per_h: -2.0,
            noise_c: 0.05,
            noise_percent_rh: 0.5,
            seed: 7,
        }
    }

    #[test]
    fn a_reading_holds_for_its_whole_second() {
        let m = room();
        assert_eq!(m.reading_at(10.0), m.reading_at(10.999));
        assert_ne!(m.reading_at(10.999), m.reading_at(11.0));
        // A rounding error short of the second is that second.
        assert_eq!(m.reading_at(11.0), m.reading_at(11.0 - 1e-12));
    }

    #[test]
    fn without_noise_the_air_follows_the_drift() {
        let m = AmbientModel {
            noise_c: 0.0,
            noise_percent_rh: 0.0,
            ..room()
        };
        let r = m.reading_at(7200.4);
        assert!((r.temperature_c - 24.0).abs() < 1e-12, "{r:?}");
        assert!(
            (r.humidity_percent_rh.unwrap() - 41.0).abs() < 1e-12,
            "{r:?}"
        );
    }

    #[test]
    fn the_noise_has_the_configured_spread_and_depends_on_the_seed() {
        let m = AmbientModel {
            drift_c_per_h: 0.0,
            ..room()
        };
        let t: Vec<f64> = (0..2000)
            .map(|s| m.reading_at(f64::from(s)).temperature_c - 23.0)
            .collect();
        let mean = t.iter().sum::<f64>() / t.len() as f64;
        let sd = (t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / t.len() as f64).sqrt();
        assert!(mean.abs() < 0.005, "mean {mean}");
        assert!((sd - 0.05).abs() < 0.005, "sd {sd}");
        let other = AmbientModel { seed: 8, ..m };
        assert_ne!(m.reading_at(3.0), other.reading_at(3.0));
    }

    #[test]
    fn humidity_stays_within_0_and_100() {
        let m = AmbientModel {
            humidity_percent_rh: 99.5,
            noise_percent_rh: 5.0,
            ..room()
        };
        for s in 0..200 {
            let rh = m.reading_at(f64::from(s)).humidity_percent_rh.unwrap();
            assert!((0.0..=100.0).contains(&rh), "{rh}");
        }
    }

    #[test]
    fn the_line_is_the_transmitters_default_form() {
        let r = |t, rh| AmbientReading {
            temperature_c: t,
            humidity_percent_rh: rh,
        };
        assert_eq!(
            hmt330_line(&r(23.14, Some(45.27))),
            "RH= 45.3 %RH T= 23.1 'C"
        );
        assert_eq!(hmt330_line(&r(31.1, Some(98.4))), "RH= 98.4 %RH T= 31.1 'C");
        assert_eq!(
            hmt330_line(&r(-12.3, Some(100.0))),
            "RH=100.0 %RH T=-12.3 'C"
        );
        assert_eq!(hmt330_line(&r(5.0, Some(5.2))), "RH=  5.2 %RH T=  5.0 'C");
        assert_eq!(hmt330_line(&r(23.1, None)), "T= 23.1 'C");
    }

    #[test]
    fn commands_are_answered_like_the_transmitter() {
        let id = Hmt330Identity {
            model: "HMT330".into(),
            serial_number: "F1234567".into(),
            firmware: "5.16".into(),
        };
        let m = AmbientModel {
            noise_c: 0.0,
            noise_percent_rh: 0.0,
            ..room()
        };
        assert_eq!(answer("send", &m, &id, 0.0), "RH= 45.0 %RH T= 23.0 'C\r\n");
        let info = answer("?", &m, &id, 0.0);
        assert!(info.starts_with("HMT330 / 5.16\r\nSerial number  : F1234567\r\n"));
        assert_eq!(
            meterbench_instruments::climate::parse_identity(&info),
            Ok(id.clone())
        );
        assert_eq!(answer("", &m, &id, 0.0), "");
        assert_eq!(answer("XYZZY", &m, &id, 0.0), "Unknown command\r\n");
    }
}
