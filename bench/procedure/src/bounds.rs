//! Ceilings on the numbers data files give. They are not metrology: they are what no
//! real bench needs, so that a typo (an extra zero, an exponent, a NaN) is refused where
//! it is written, before anything is switched on, instead of keeping a source energised
//! for a day, overflowing a count or exhausting memory. Metrology (limits, durations,
//! pulse counts) stays data with its source; only absurdity is caught here.

use crate::yaml::{DataError, Pos};
use serde_saphyr::Spanned;
use std::path::Path;

/// An interval a number must lie in, and its unit for messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range {
    pub lo: f64,
    /// `lo` itself is allowed (≥) or not (>).
    pub lo_ok: bool,
    pub hi: f64,
    pub unit: &'static str,
}

const fn from_zero(hi: f64, unit: &'static str) -> Range {
    Range {
        lo: 0.0,
        lo_ok: true,
        hi,
        unit,
    }
}

const fn above_zero(hi: f64, unit: &'static str) -> Range {
    Range {
        lo: 0.0,
        lo_ok: false,
        hi,
        unit,
    }
}

const fn symmetric(hi: f64, unit: &'static str) -> Range {
    Range {
        lo: -hi,
        lo_ok: true,
        hi,
        unit,
    }
}

/// Settling before a reading: ten minutes is far beyond any source or meter.
pub(crate) const SETTLE_S: Range = from_zero(600.0, "s");
/// How long a step may wait for pulses or telegrams.
pub(crate) const TIMEOUT_S: Range = above_zero(3600.0, "s");
/// The starting test's window, in pulse periods.
pub(crate) const WINDOW_PERIODS: Range = above_zero(100.0, "periods");
/// Test voltage, % of Un (the no-load test applies 115 %).
pub(crate) const VOLTAGE_PERCENT: Range = above_zero(130.0, "% of Un");
/// The no-load test's K: 600e3 by default, doubled for type tests.
pub(crate) const K_CONSTANT: Range = above_zero(1e8, "");
/// A limit, % (class A is 2.5 %).
pub(crate) const PERCENT_LIMIT: Range = above_zero(100.0, "%");
/// A share that may be zero, %.
pub(crate) const PERCENT_OR_NONE: Range = from_zero(100.0, "%");
/// A current transformer's ratio.
pub(crate) const CT_RATIO: Range = above_zero(1e6, "");
/// A current, A (the source's and fixture's ratings are checked as well).
pub(crate) const CURRENT_A: Range = above_zero(10_000.0, "A");
pub(crate) const VOLTAGE_V: Range = above_zero(1_000.0, "V");
pub(crate) const FREQUENCY_HZ: Range = above_zero(1_000.0, "Hz");
/// A meter's (or the simulated LED's) constant, imp/kWh.
pub(crate) const METER_CONSTANT: Range = above_zero(1e7, "imp/kWh");
/// A reference standard's pulse output, imp/kWh.
pub(crate) const REFERENCE_CONSTANT: Range = above_zero(1e12, "imp/kWh");
/// An instrument's expanded uncertainty, %.
pub(crate) const UNCERTAINTY_PERCENT: Range = above_zero(10.0, "%");
/// A reference standard's own error as its certificate states it, %: a standard
/// whose error is a percent is not a reference.
pub(crate) const REFERENCE_ERROR_PERCENT: Range = symmetric(1.0, "%");
/// Drift of an instrument since its calibration, % per year.
pub(crate) const DRIFT_PERCENT_PER_YEAR: Range = from_zero(1.0, "% per year");
pub(crate) const TIMEBASE_PPM: Range = above_zero(1_000.0, "ppm");
/// A counter's glitch filter: a pulse of 0.1 s is an LED pulse, not a glitch.
pub(crate) const GLITCH_S: Range = from_zero(0.1, "s");
/// The longest a station lets a procedure keep the source energised, s.
pub(crate) const ENERGISED_S: Range = above_zero(86_400.0, "s");
/// How long the source's guard waits for a heartbeat before it stops the bench and
/// switches the source off: the bench beats four times a second.
pub(crate) const GUARD_TIMEOUT_S: Range = above_zero(60.0, "s");
/// Simulation: errors and offsets of simulated devices.
/// A climate sensor's expanded uncertainty: a thermometer worse than 5 °C, a hygrometer
/// worse than 20 % RH, measures no reference condition.
pub(crate) const CLIMATE_U_C: Range = above_zero(5.0, "°C");
pub(crate) const CLIMATE_U_RH: Range = above_zero(20.0, "% RH");
/// The simulated room: its air, its drift per hour and the noise of a reading.
pub(crate) const SIM_AIR_C: Range = symmetric(60.0, "°C");
pub(crate) const SIM_AIR_RH: Range = from_zero(100.0, "% RH");
pub(crate) const SIM_DRIFT_PER_H: Range = symmetric(50.0, "per hour");
pub(crate) const SIM_AIR_NOISE: Range = from_zero(10.0, "");
pub(crate) const SIM_ERROR_PERCENT: Range = symmetric(100.0, "%");
pub(crate) const SIM_SMALL_PERCENT: Range = symmetric(10.0, "%");
pub(crate) const SIM_NOISE_PERCENT: Range = from_zero(10.0, "%");
pub(crate) const SIM_SETTLING_S: Range = from_zero(10.0, "s");
pub(crate) const SIM_TIMEBASE_HZ: Range = Range {
    lo: 1e3,
    lo_ok: true,
    hi: 1e10,
    unit: "Hz",
};
pub(crate) const SIM_PPM: Range = symmetric(1_000.0, "ppm");
pub(crate) const SIM_UPDATE_HZ: Range = above_zero(10_000.0, "Hz");
pub(crate) const SIM_TIMER_HZ: Range = above_zero(1e7, "Hz");
pub(crate) const SIM_PULSE_S: Range = above_zero(1.0, "s");
pub(crate) const SIM_REGISTER_KWH: Range = from_zero(999_999.999_9, "kWh");
pub(crate) const SIM_POWER_W: Range = from_zero(100_000.0, "W");
pub(crate) const SIM_CURRENT_A: Range = from_zero(10_000.0, "A");
pub(crate) const SIM_OFFSET_A: Range = symmetric(1_000.0, "A");
pub(crate) const COS_PHI: Range = above_zero(1.0, "");

/// Counts: pulses of a point, repeats, telegrams, register steps.
pub(crate) const PULSES: (u64, u64) = (1, 1_000_000);
pub(crate) const MAX_PULSES: (u64, u64) = (0, 1_000_000);
pub(crate) const REPEATS: (u64, u64) = (1, 1_000);
pub(crate) const TELEGRAMS: (u64, u64) = (1, 100_000);
/// Serial line speeds from the slowest teletype to the fastest USB bridges.
pub(crate) const BAUD: (u64, u64) = (50, 12_000_000);

impl Range {
    fn contains(&self, v: f64) -> bool {
        v.is_finite() && (v > self.lo || (self.lo_ok && v == self.lo)) && v <= self.hi
    }

    fn describe(&self) -> String {
        let unit = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        let (lo, hi) = (fmt(self.lo), fmt(self.hi));
        if self.lo_ok {
            format!("from {lo} to {hi}{unit}")
        } else {
            format!("above {lo} and at most {hi}{unit}")
        }
    }
}

/// A bound or an offending value as written by a person: 1e300, not 301 digits.
fn fmt(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.abs() >= 1e6 {
        format!("{x:e}")
    } else {
        let s = format!("{x}");
        s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
    }
}

/// `v` if it lies in `range`; else an error at `pos` naming the field and the range.
pub(crate) fn number(
    path: &Path,
    pos: Pos,
    name: &str,
    v: f64,
    range: Range,
) -> Result<f64, DataError> {
    if range.contains(v) {
        Ok(v)
    } else {
        Err(DataError::at(
            path,
            pos,
            format!(
                "{name} must be a number {}, not {}",
                range.describe(),
                fmt(v)
            ),
        ))
    }
}

/// [`number`] for a value that knows where it is written.
pub(crate) fn spanned(
    path: &Path,
    name: &str,
    v: &Spanned<f64>,
    range: Range,
) -> Result<f64, DataError> {
    number(path, Pos::of(v), name, v.value, range)
}

/// A count in `lo ..= hi`.
pub(crate) fn count(
    path: &Path,
    pos: Pos,
    name: &str,
    v: u64,
    (lo, hi): (u64, u64),
) -> Result<u64, DataError> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        Err(DataError::at(
            path,
            pos,
            format!("{name} must be a whole number from {lo} to {hi}, not {v}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_they_should() {
        assert!(SETTLE_S.contains(0.0) && SETTLE_S.contains(600.0));
        assert!(!SETTLE_S.contains(600.1) && !SETTLE_S.contains(-1.0));
        assert!(!TIMEOUT_S.contains(0.0) && TIMEOUT_S.contains(1e-3));
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
            assert!(!K_CONSTANT.contains(bad), "{bad}");
        }
        assert_eq!(SETTLE_S.describe(), "from 0 to 600 s");
        assert_eq!(K_CONSTANT.describe(), "above 0 and at most 1e8");
        let e = number(
            Path::new("p.yaml"),
            Pos { line: 3, column: 7 },
            "settle_s",
            4e9,
            SETTLE_S,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "p.yaml:3:7: settle_s must be a number from 0 to 600 s, not 4e9"
        );
        let e = count(Path::new("p.yaml"), Pos::default(), "pulses", 0, PULSES).unwrap_err();
        assert!(e.message.contains("from 1 to 1000000, not 0"), "{e}");
    }
}
