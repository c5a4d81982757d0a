//! Money as integer fen (分). There is no floating point anywhere on the
//! money path: input is parsed digit by digit, output is formatted the same way.

use crate::error::Reason;
use crate::text::to_half_width;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An amount of money in fen (1 元 = 100 分), never negative.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(i64);

/// Upper bound: one trillion yuan, far above any real order, far below i64 overflow.
pub const MAX_FEN: i64 = 100_000_000_000_000;

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn new(fen: i64) -> Result<Fen, Reason> {
        if fen < 0 {
            Err(Reason::AmountNegative)
        } else if fen > MAX_FEN {
            Err(Reason::AmountTooLarge)
        } else {
            Ok(Fen(fen))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    pub fn from_yuan(yuan: i64) -> Result<Fen, Reason> {
        yuan.checked_mul(100)
            .ok_or(Reason::AmountTooLarge)
            .and_then(Fen::new)
    }

    /// Parses an amount in 元 ("1234.56", "1,234.5", "¥12", "12元"), at most two decimals.
    pub fn parse_yuan(raw: &str) -> Result<Fen, Reason> {
        Self::parse_scaled(raw, 2, &["元", "¥", "￥", "RMB", "rmb", "CNY"])
    }

    /// Parses an amount in 万元 ("120", "99.99", "35.5万"), at most six decimals (= fen).
    pub fn parse_wan(raw: &str) -> Result<Fen, Reason> {
        Self::parse_scaled(raw, 6, &["万元", "万"])
    }

    /// `decimals`: how many decimal places of the unit make one fen.
    fn parse_scaled(raw: &str, decimals: u32, strip: &[&str]) -> Result<Fen, Reason> {
        let mut s: String = to_half_width(raw)
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ',')
            .collect();
        for unit in strip {
            s = s.replace(unit, "");
        }
        if s.is_empty() {
            return Err(Reason::Required);
        }
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(&s)),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int_part.is_empty() && frac_part.is_empty()
            || !int_part.chars().all(|c| c.is_ascii_digit())
            || !frac_part.chars().all(|c| c.is_ascii_digit())
            || frac_part.len() > decimals as usize
            || int_part.len() > 15
        {
            return Err(Reason::AmountFormat);
        }
        let scale = 10i64.pow(decimals);
        let int_val: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| Reason::AmountFormat)?
        };
        let mut frac_val: i64 = 0;
        for (i, d) in frac_part.chars().enumerate() {
            frac_val += i64::from(d as u8 - b'0') * 10i64.pow(decimals - 1 - i as u32);
        }
        // 元 with 2 decimals and 万元 with 6 decimals both land exactly on fen.
        let fen = int_val
            .checked_mul(scale)
            .and_then(|v| v.checked_add(frac_val))
            .ok_or(Reason::AmountTooLarge)?;
        if negative && fen != 0 {
            return Err(Reason::AmountNegative);
        }
        Fen::new(fen)
    }

    /// "1234.56" — yuan with two decimals.
    pub fn yuan_string(self) -> String {
        format!("{}.{:02}", self.0 / 100, self.0 % 100)
    }

    /// Human display: "¥1,234.56" below 1万, "123.45万" from 1万 on (truncated, not rounded up).
    pub fn display_cn(self) -> String {
        if self.0 >= 1_000_000 {
            let wan = self.0 / 1_000_000;
            let rest = (self.0 % 1_000_000) / 10_000;
            format!("{}.{:02}万", group_thousands(wan), rest)
        } else {
            format!("¥{}.{:02}", group_thousands(self.0 / 100), self.0 % 100)
        }
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
}

fn group_thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.yuan_string())
    }
}

/// Any whole amount of fen as exact 元 text ("1234.56", "-0.05"): sums and
/// differences in reports may be negative, which a [`Fen`] is not.
pub fn yuan_text(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_text_is_exact_with_its_sign() {
        for (fen, text) in [
            (0, "0.00"),
            (5, "0.05"),
            (123_456, "1234.56"),
            (-5, "-0.05"),
            (-100_000, "-1000.00"),
        ] {
            assert_eq!(yuan_text(fen), text);
        }
    }

    #[test]
    fn parse_yuan_table() {
        let cases: &[(&str, Result<i64, Reason>)] = &[
            ("1234.56", Ok(123_456)),
            ("1,234.5", Ok(123_450)),
            ("¥12", Ok(1200)),
            ("12元", Ok(1200)),
            ("０.０１", Ok(1)),
            (".5", Ok(50)),
            ("0", Ok(0)),
            ("-0", Ok(0)),
            ("-1", Err(Reason::AmountNegative)),
            ("-0.01", Err(Reason::AmountNegative)),
            ("1.234", Err(Reason::AmountFormat)),
            ("1e5", Err(Reason::AmountFormat)),
            ("abc", Err(Reason::AmountFormat)),
            ("", Err(Reason::Required)),
            ("1000000000001", Err(Reason::AmountTooLarge)),
        ];
        for (input, want) in cases {
            assert_eq!(
                Fen::parse_yuan(input).map(Fen::get),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn parse_wan_table() {
        let cases: &[(&str, Result<i64, Reason>)] = &[
            ("120", Ok(120_000_000)),
            ("99.99", Ok(99_990_000)),
            ("35.5万", Ok(35_500_000)),
            ("0.000001", Ok(1)),
            ("0.0000001", Err(Reason::AmountFormat)),
            ("-3", Err(Reason::AmountNegative)),
        ];
        for (input, want) in cases {
            assert_eq!(
                Fen::parse_wan(input).map(Fen::get),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn display() {
        assert_eq!(Fen(123_456).yuan_string(), "1234.56");
        assert_eq!(Fen(5).yuan_string(), "0.05");
        assert_eq!(Fen(123_456).display_cn(), "¥1,234.56");
        assert_eq!(Fen(120_000_000).display_cn(), "120.00万");
        assert_eq!(Fen(1_234_567_890_000).display_cn(), "1,234,567.89万");
    }
}
