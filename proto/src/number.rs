//! DynamoDB numbers: exact decimals of up to 38 significant digits, never floats.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Most significant digits a DynamoDB number may have.
pub const MAX_DIGITS: usize = 38;
/// Smallest exponent `e` of a number written `0.d1d2… × 10^e` (1E-130 is the smallest magnitude).
pub const MIN_EXPONENT: i32 = -129;
/// Largest exponent `e` of a number written `0.d1d2… × 10^e` (magnitude below 1E+126).
pub const MAX_EXPONENT: i32 = 126;

/// Why a text is not a DynamoDB number; the messages are DynamoDB's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("The parameter cannot be converted to a numeric value: {0}")]
    NotNumeric(String),
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
    #[error("Number overflow. Attempting to store a number with magnitude larger than supported range")]
    Overflow,
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    Underflow,
}

/// An exact decimal `±0.d1d2…dn × 10^exponent`, normalised: no leading or trailing zero digit,
/// and zero is the empty digit string with exponent 0 and no sign.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    digits: Vec<u8>,
    exponent: i32,
}

impl Number {
    /// The number zero.
    pub fn zero() -> Self {
        Number { negative: false, digits: Vec::new(), exponent: 0 }
    }

    /// True for numbers below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// True for zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// The significant digits (each 0..=9), most significant first; empty for zero.
    pub fn digits(&self) -> &[u8] {
        &self.digits
    }

    /// The exponent `e` of `0.d1d2… × 10^e`.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }

    /// DynamoDB's storage size of the number: about one byte per two significant digits, plus one.
    pub fn size_bytes(&self) -> usize {
        self.digits.len().div_ceil(2) + 1
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self.exponent.cmp(&other.exponent).then_with(|| self.digits.cmp(&other.digits)),
        }
    }
}

impl FromStr for Number {
    type Err = NumberError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let not_numeric = || NumberError::NotNumeric(text.to_string());
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp_text) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], Some(&rest[at + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
            None => (mantissa, ""),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(not_numeric());
        }
        if !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(not_numeric());
        }
        let written_exponent: i64 = match exp_text {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(not_numeric());
                }
                // Beyond any representable range; saturate rather than overflow.
                e.parse::<i64>().unwrap_or(if e.starts_with('-') { i64::MIN / 2 } else { i64::MAX / 2 })
            }
        };
        let all: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).map(|b| b - b'0').collect();
        let Some(first) = all.iter().position(|&d| d != 0) else {
            return Ok(Number::zero());
        };
        let last = all.iter().rposition(|&d| d != 0).expect("a non-zero digit exists");
        let digits = all[first..=last].to_vec();
        // Value = 0.(all) × 10^(int_len + written); dropping `first` leading zeros lowers it by `first`.
        let exponent = int_part.len() as i64 + written_exponent - first as i64;
        if digits.len() > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        if exponent > MAX_EXPONENT as i64 {
            return Err(NumberError::Overflow);
        }
        if exponent < MIN_EXPONENT as i64 {
            return Err(NumberError::Underflow);
        }
        Ok(Number { negative, digits, exponent: exponent as i32 })
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Plain notation while it stays short; scientific (`1.5E+100`) beyond.
impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits: String = self.digits.iter().map(|d| char::from(b'0' + d)).collect();
        let n = digits.len() as i32;
        let e = self.exponent;
        if (-20..=0).contains(&e) {
            write!(f, "0.{}{}", "0".repeat((-e) as usize), digits)
        } else if e > 0 && e < n {
            write!(f, "{}.{}", &digits[..e as usize], &digits[e as usize..])
        } else if e >= n && e <= 40 {
            write!(f, "{}{}", digits, "0".repeat((e - n) as usize))
        } else {
            let power = e - 1;
            let sign = if power < 0 { '-' } else { '+' };
            if n == 1 {
                write!(f, "{digits}E{sign}{}", power.abs())
            } else {
                write!(f, "{}.{}E{sign}{}", &digits[..1], &digits[1..], power.abs())
            }
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

macro_rules! number_from_integer {
    ($($t:ty),*) => {$(
        impl From<$t> for Number {
            fn from(value: $t) -> Self {
                value.to_string().parse().expect("every integer of 64 bits or fewer is a valid number")
            }
        }
    )*};
}
number_from_integer!(i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn n(text: &str) -> Number {
        text.parse().unwrap()
    }

    #[test]
    fn canonical_form_trims_zeros_and_exponents() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("001.0").to_string(), "1");
        assert_eq!(n("1e2").to_string(), "100");
        assert_eq!(n("-0.000").to_string(), "0");
        assert_eq!(n("+12.345e1").to_string(), "123.45");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(n("5.").to_string(), "5");
        assert_eq!(n("-0.00123").to_string(), "-0.00123");
        assert_eq!(n("1E-130").to_string(), "1E-130");
        assert_eq!(n("1.5E+100").to_string(), "1.5E+100");
        assert_eq!(n("99999999999999999999999999999999999999").to_string(), "99999999999999999999999999999999999999");
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        for bad in ["", "-", "abc", "1.2.3", "1e", "e5", "NaN", "Infinity", " 1", "1 ", "0x10", "1e+"] {
            assert_eq!(bad.parse::<Number>(), Err(NumberError::NotNumeric(bad.into())), "{bad:?}");
        }
        assert_eq!("123456789012345678901234567890123456789".parse::<Number>(), Err(NumberError::TooManyDigits));
        assert_eq!("1E126".parse::<Number>(), Err(NumberError::Overflow));
        assert_eq!("1E-131".parse::<Number>(), Err(NumberError::Underflow));
        assert_eq!("1e99999999999999999999".parse::<Number>(), Err(NumberError::Overflow));
        assert!("9.9999999999999999999999999999999999999E+125".parse::<Number>().is_ok());
        assert!("-1E-130".parse::<Number>().is_ok());
        // Trailing zeros are not significant: 39 written digits, 1 significant.
        assert!("100000000000000000000000000000000000000".parse::<Number>().is_ok());
    }

    #[test]
    fn orders_numerically() {
        let sorted =
            ["-1E+100", "-10", "-9.5", "-1", "-0.001", "0", "1E-130", "0.001", "1", "1.5", "9", "10", "1E+125"];
        for pair in sorted.windows(2) {
            assert!(n(pair[0]) < n(pair[1]), "{} < {}", pair[0], pair[1]);
        }
        assert_eq!(n("1.0"), n("1"));
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_number(neg: bool, digits in "[1-9][0-9]{0,36}[1-9]?", exp in -129i32..=126) {
            let text = format!("{}0.{}e{}", if neg { "-" } else { "" }, digits, exp);
            let number = n(&text);
            prop_assert_eq!(n(&number.to_string()), number);
        }

        #[test]
        fn order_matches_f64_for_small_values(a in -1.0e6f64..1.0e6, b in -1.0e6f64..1.0e6) {
            let (na, nb) = (n(&format!("{a:.3}")), n(&format!("{b:.3}")));
            let (ra, rb) = (format!("{a:.3}").parse::<f64>().unwrap(), format!("{b:.3}").parse::<f64>().unwrap());
            prop_assert_eq!(na.cmp(&nb), ra.partial_cmp(&rb).unwrap());
        }
    }
}
