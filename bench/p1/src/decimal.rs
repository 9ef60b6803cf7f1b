//! An exact decimal that keeps the precision it was written with.
//!
//! Why not `rust_decimal`: the decoder does no arithmetic, it only has to carry a
//! value such as `024.5` without ever rounding it. A mantissa and a scale do exactly
//! that; overflow is a parse error, never a silent rounding (`rust_decimal`'s
//! `FromStr` rounds past 28 digits and accepts forms such as `1_000` that DSMR
//! does not have). DSMR registers are at most `F9(3,3)`, far inside 18 digits.
//! Consumers that compute (metrology works in `f64`) call [`Decimal::to_f64`].

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// An exact decimal number `mantissa × 10^-scale`, as written in a telegram.
///
/// `024.5` is `245` at scale 1, `024` is `24` at scale 0, `024.0` is `240` at
/// scale 1. Equality (`==`) compares value *and* written precision, so `24` and
/// `24.0` differ; use [`Decimal::numeric_eq`] to compare values only.
/// Serialised as a string (`"24.5"`) so JSON keeps the precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i64,
    scale: u8,
}

/// Why a text is not a decimal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Not of the form `[-]digits[.digits]`.
    #[error("not a decimal (expected [-]digits[.digits])")]
    Syntax,
    /// More significant digits than fit exactly (18).
    #[error("too many digits to keep exactly")]
    Overflow,
}

/// Most fraction digits accepted; keeps `10^scale` exact in `i64` and `f64`.
const MAX_SCALE: u8 = 18;

impl Decimal {
    /// `mantissa × 10^-scale`.
    pub const fn new(mantissa: i64, scale: u8) -> Self {
        Self { mantissa, scale }
    }

    /// The digits as an integer (`024.5` → 245).
    pub const fn mantissa(self) -> i64 {
        self.mantissa
    }

    /// Number of digits written after the decimal point (`024.5` → 1).
    pub const fn scale(self) -> u8 {
        self.scale
    }

    /// Nearest `f64`. Correctly rounded while the mantissa has at most 15 digits,
    /// because both operands of the one division are then exact.
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }

    /// Compares values only: `24 == 24.0` here.
    pub fn numeric_eq(self, other: Decimal) -> bool {
        let (a, b) = (i128::from(self.mantissa), i128::from(other.mantissa));
        // Scales are at most 255 in theory but 18 when parsed; widen and bring
        // both to the larger scale. Beyond i128 range they cannot be equal unless both are 0.
        let (sa, sb) = (u32::from(self.scale), u32::from(other.scale));
        let scale_up = |m: i128, by: u32| 10i128.checked_pow(by).and_then(|p| m.checked_mul(p));
        match (
            scale_up(a, sb.saturating_sub(sa)),
            scale_up(b, sa.saturating_sub(sb)),
        ) {
            (Some(x), Some(y)) => x == y,
            _ => a == 0 && b == 0,
        }
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    /// Parses `[-]digits[.digits]` exactly; never rounds. One pass over the digits:
    /// this runs for every register of every telegram.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (negative, digits) = match s.as_bytes() {
            [b'-', rest @ ..] => (true, rest),
            all => (false, all),
        };
        // None once the digits overflow; the syntax is still checked to the end, as a
        // text that is no decimal at all is a syntax error whatever its length.
        let mut mantissa: Option<i64> = Some(0);
        // Digits before the point, and after it once it is seen.
        let (mut int_digits, mut frac_digits, mut dot) = (0usize, 0usize, false);
        for &b in digits {
            if b.is_ascii_digit() {
                mantissa = mantissa
                    .and_then(|m| m.checked_mul(10))
                    .and_then(|m| m.checked_add(i64::from(b - b'0')));
                if dot {
                    frac_digits += 1;
                } else {
                    int_digits += 1;
                }
            } else if b == b'.' && !dot {
                dot = true;
            } else {
                return Err(DecimalError::Syntax);
            }
        }
        if int_digits == 0 || (dot && frac_digits == 0) {
            return Err(DecimalError::Syntax);
        }
        let scale = u8::try_from(frac_digits).map_err(|_| DecimalError::Overflow)?;
        let mantissa = mantissa.ok_or(DecimalError::Overflow)?;
        if scale > MAX_SCALE {
            return Err(DecimalError::Overflow);
        }
        Ok(Self::new(
            if negative { -mantissa } else { mantissa },
            scale,
        ))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = usize::from(self.scale);
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        // Left-pad so there is at least one digit before the point: 5 at scale 3 is 0.005.
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn keeps_written_precision() {
        assert_eq!(d("024.5"), Decimal::new(245, 1));
        assert_eq!(d("024"), Decimal::new(24, 0));
        assert_eq!(d("024.0"), Decimal::new(240, 1));
        assert_eq!(d("000000.000"), Decimal::new(0, 3));
        assert_eq!(d("-0.5"), Decimal::new(-5, 1));
        assert_ne!(d("024"), d("024.0"));
        assert!(d("024").numeric_eq(d("024.0")));
        assert!(!d("024").numeric_eq(d("024.5")));
    }

    #[test]
    fn displays_canonically() {
        for (input, shown) in [
            ("024.5", "24.5"),
            ("024", "24"),
            ("024.0", "24.0"),
            ("0.005", "0.005"),
            ("-0.5", "-0.5"),
            ("000000.000", "0.000"),
        ] {
            assert_eq!(d(input).to_string(), shown);
        }
        assert_eq!(d("024.5").to_f64(), 24.5);
    }

    #[test]
    fn rejects_instead_of_rounding() {
        for bad in [
            "", ".5", "5.", "1_0", "+1", "1e3", "--1", "1.2.3", " 1", "*",
        ] {
            assert_eq!(bad.parse::<Decimal>(), Err(DecimalError::Syntax), "{bad:?}");
        }
        assert_eq!(
            "9999999999999999999".parse::<Decimal>(),
            Err(DecimalError::Overflow)
        );
        assert_eq!(
            "0.0000000000000000001".parse::<Decimal>(),
            Err(DecimalError::Overflow)
        );
        assert!("999999999999999999".parse::<Decimal>().is_ok());
    }
}
