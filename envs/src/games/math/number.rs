//! Exact rational numbers for the problem generator: every generated answer
//! is computed exactly and written as an integer or a terminating decimal.

use std::fmt;

/// An exact fraction `num / den` in lowest terms with `den > 0`.
///
/// Operations are checked: they return `None` on overflow or division by
/// zero, so the generator can reject a draw instead of panicking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    /// `num / den`, reduced; `None` when `den == 0`.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
        let s = if den < 0 { -1 } else { 1 };
        Some(Self { num: s * num / g, den: s * den / g })
    }

    /// An integer.
    pub fn int(n: i64) -> Self {
        Self { num: n as i128, den: 1 }
    }

    /// The numerator (sign included).
    pub fn numer(&self) -> i128 {
        self.num
    }

    /// The denominator (always positive).
    pub fn denom(&self) -> i128 {
        self.den
    }

    /// `self + o`.
    pub fn checked_add(self, o: Self) -> Option<Self> {
        let num = self.num.checked_mul(o.den)?.checked_add(o.num.checked_mul(self.den)?)?;
        Self::new(num, self.den.checked_mul(o.den)?)
    }

    /// `self - o`.
    pub fn checked_sub(self, o: Self) -> Option<Self> {
        self.checked_add(Self { num: o.num.checked_neg()?, den: o.den })
    }

    /// `self * o`.
    pub fn checked_mul(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    /// `self / o`; `None` when `o` is zero.
    pub fn checked_div(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    /// Whether the value is a whole number.
    pub fn is_integer(&self) -> bool {
        self.den == 1
    }

    /// The integer value, when whole and within `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        if self.den == 1 {
            i64::try_from(self.num).ok()
        } else {
            None
        }
    }

    /// The value as a float (for range checks).
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Digits after the decimal point of the exact decimal form, or `None`
    /// when the decimal does not terminate (the denominator has a prime
    /// factor other than 2 and 5).
    pub fn decimal_places(&self) -> Option<u32> {
        let mut d = self.den;
        let (mut twos, mut fives) = (0u32, 0u32);
        while d % 2 == 0 {
            d /= 2;
            twos += 1;
        }
        while d % 5 == 0 {
            d /= 5;
            fives += 1;
        }
        (d == 1).then_some(twos.max(fives))
    }

    /// The exact decimal form (`"42"`, `"-3.75"`), or `None` when the
    /// decimal does not terminate.
    pub fn to_decimal(&self) -> Option<String> {
        let places = self.decimal_places()?;
        if places == 0 {
            return Some(self.num.to_string());
        }
        let scale = 10i128.checked_pow(places)?;
        let scaled = self.num.checked_mul(scale)? / self.den;
        let sign = if scaled < 0 { "-" } else { "" };
        let a = scaled.unsigned_abs();
        let s = scale as u128;
        Some(format!("{sign}{}.{:0width$}", a / s, a % s, width = places as usize))
    }
}

impl fmt::Display for Ratio {
    /// The decimal form when it terminates, else `num/den`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_decimal() {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}/{}", self.num, self.den),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i128, d: i128) -> Ratio {
        Ratio::new(n, d).unwrap()
    }

    #[test]
    fn reduces_and_normalises_sign() {
        assert_eq!(r(6, -8), r(-3, 4));
        assert_eq!(r(-3, 4).numer(), -3);
        assert_eq!(r(-3, 4).denom(), 4);
        assert!(Ratio::new(1, 0).is_none());
        assert_eq!(r(0, 5), Ratio::int(0));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(r(1, 4).checked_add(r(3, 8)), Some(r(5, 8)));
        assert_eq!(r(1, 3).checked_sub(r(1, 2)), Some(r(-1, 6)));
        assert_eq!(r(2, 3).checked_mul(r(9, 4)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(r(4, 9)), Some(r(3, 2)));
        assert_eq!(r(2, 3).checked_div(Ratio::int(0)), None);
        assert_eq!(
            Ratio::int(i64::MAX).checked_mul(Ratio::int(i64::MAX)).and_then(|x| x.checked_mul(Ratio::int(4))),
            None
        );
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(r(5, 8).to_decimal().as_deref(), Some("0.625"));
        assert_eq!(r(-15, 4).to_decimal().as_deref(), Some("-3.75"));
        assert_eq!(r(-1, 20).to_decimal().as_deref(), Some("-0.05"));
        assert_eq!(r(374, 5).to_decimal().as_deref(), Some("74.8"));
        assert_eq!(Ratio::int(42).to_decimal().as_deref(), Some("42"));
        assert_eq!(r(1, 3).to_decimal(), None);
        assert_eq!(r(1, 3).to_string(), "1/3");
        assert_eq!(r(7, 2).to_i64(), None);
        assert_eq!(r(14, 2).to_i64(), Some(7));
    }
}
