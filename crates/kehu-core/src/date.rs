//! Calendar dates as real dates. Accepts the ways people write them in
//! spreadsheets and forms; stores and prints ISO `YYYY-MM-DD`.

use crate::error::Reason;
use crate::text::to_half_width;
use chrono::{Datelike, NaiveDate};

/// [`parse_date`] for a day that has happened: one after `today` is refused.
pub fn parse_past_date(raw: &str, today: NaiveDate) -> Result<NaiveDate, Reason> {
    let d = parse_date(raw)?;
    if d > today {
        return Err(Reason::Other {
            zh: "日期不能晚于今天".into(),
            en: "must not be in the future".into(),
        });
    }
    Ok(d)
}

/// Parses `2024-03-12`, `2024/3/12`, `2024.03.12`, `20240312`, `2024年3月12日`.
/// Years outside 1900–2100 are refused as typos.
pub fn parse_date(raw: &str) -> Result<NaiveDate, Reason> {
    let s = to_half_width(raw).trim().to_string();
    if s.is_empty() {
        return Err(Reason::Required);
    }
    let unified: String = s
        .replace(['年', '月'], "-")
        .replace('日', "")
        .replace(['/', '.'], "-");
    let date = if unified.len() == 8 && unified.chars().all(|c| c.is_ascii_digit()) {
        NaiveDate::parse_from_str(&unified, "%Y%m%d")
    } else {
        let parts: Vec<&str> = unified.split('-').collect();
        if parts.len() != 3
            || parts[0].len() != 4
            || parts
                .iter()
                .any(|p| p.is_empty() || p.len() > 4 || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(Reason::DateFormat);
        }
        NaiveDate::parse_from_str(&unified, "%Y-%m-%d")
    }
    .map_err(|_| Reason::DateFormat)?;
    if !(1900..=2100).contains(&date.year()) {
        return Err(Reason::DateOutOfRange);
    }
    Ok(date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_date_table() {
        let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("valid date");
        let cases: &[(&str, Result<NaiveDate, Reason>)] = &[
            ("2024-03-12", Ok(d(2024, 3, 12))),
            ("2024/3/12", Ok(d(2024, 3, 12))),
            ("2024.03.12", Ok(d(2024, 3, 12))),
            ("20240312", Ok(d(2024, 3, 12))),
            ("2024年3月12日", Ok(d(2024, 3, 12))),
            ("２０２４－０３－１２", Ok(d(2024, 3, 12))),
            ("2024-02-29", Ok(d(2024, 2, 29))),
            ("2023-02-29", Err(Reason::DateFormat)),
            ("2024-13-01", Err(Reason::DateFormat)),
            ("12/03/2024", Err(Reason::DateFormat)),
            ("1800-01-01", Err(Reason::DateOutOfRange)),
            ("", Err(Reason::Required)),
            ("yesterday", Err(Reason::DateFormat)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_date(input), *want, "input {input:?}");
        }
    }
}
