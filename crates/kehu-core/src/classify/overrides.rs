//! A class set by hand: which class, why (mandatory), until when (optional).

use crate::date::parse_date;
use crate::text::parse_long_text;
use crate::{Reason, ValidationErrors};
use chrono::NaiveDate;

/// The longest reason accepted, in characters.
pub const REASON_MAX: usize = 500;

/// As sent.
#[derive(Debug, Clone, Default)]
pub struct OverrideInput {
    pub class: Option<String>,
    pub reason: Option<String>,
    pub expires_on: Option<String>,
}

/// Checked: a class of the scheme, a reason, an expiry after today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideData {
    pub class: String,
    pub reason: String,
    /// The first day the override no longer holds.
    pub expires_on: Option<NaiveDate>,
}

impl OverrideInput {
    pub fn validate(
        self,
        classes: &[String],
        today: NaiveDate,
    ) -> Result<OverrideData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let class = match self.class.as_deref().map(str::trim) {
            None | Some("") => e.check("class", Err(Reason::Required)),
            Some(c) if classes.iter().any(|k| k == c) => Some(c.to_string()),
            Some(_) => e.check(
                "class",
                Err(Reason::UnknownOption {
                    allowed: classes.to_vec(),
                }),
            ),
        };
        let reason = e.check(
            "reason",
            parse_long_text(self.reason.as_deref().unwrap_or(""), REASON_MAX),
        );
        let expires_on = match self.expires_on.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => e
                .check("expires_on", parse_date(raw))
                .and_then(|d| match d > today {
                    true => Some(d),
                    false => e.check(
                        "expires_on",
                        Err(Reason::OutOfRange {
                            min: today.succ_opt().map(|d| d.to_string()),
                            max: None,
                        }),
                    ),
                }),
        };
        match (class, reason) {
            (Some(class), Some(reason)) if e.is_empty() => Ok(OverrideData {
                class,
                reason,
                expires_on,
            }),
            _ => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_inputs() {
        let classes: Vec<String> = ["战略型", "潜力型", "维持型", "优化型"]
            .map(String::from)
            .to_vec();
        let today = NaiveDate::from_ymd_opt(2024, 3, 12).expect("date");
        let input = |class: Option<&str>, reason: Option<&str>, exp: Option<&str>| OverrideInput {
            class: class.map(String::from),
            reason: reason.map(String::from),
            expires_on: exp.map(String::from),
        };
        // (input, Ok(expires) or the refused fields with their codes)
        let long = "很".repeat(REASON_MAX + 1);
        let cases: Vec<(OverrideInput, Result<Option<&str>, Vec<(&str, &str)>>)> = vec![
            (input(Some("战略型"), Some("集团战略客户"), None), Ok(None)),
            (
                input(
                    Some(" 潜力型 "),
                    Some(" 新项目\n预计翻倍 "),
                    Some("2024-03-13"),
                ),
                Ok(Some("2024-03-13")),
            ),
            (
                input(Some("战略型"), Some("原因"), Some("2024/12/31")),
                Ok(Some("2024-12-31")),
            ),
            (
                input(None, Some("原因"), None),
                Err(vec![("class", "required")]),
            ),
            (
                input(Some("高价值"), Some("原因"), None),
                Err(vec![("class", "unknown_option")]),
            ),
            (
                input(Some("战略型"), None, None),
                Err(vec![("reason", "required")]),
            ),
            (
                input(Some("战略型"), Some("   "), None),
                Err(vec![("reason", "required")]),
            ),
            (
                input(Some("战略型"), Some(&long), None),
                Err(vec![("reason", "too_long")]),
            ),
            (
                input(Some("战略型"), Some("原因"), Some("2024-03-12")),
                Err(vec![("expires_on", "out_of_range")]),
            ),
            (
                input(Some("战略型"), Some("原因"), Some("明天")),
                Err(vec![("expires_on", "date_format")]),
            ),
            (
                input(None, None, Some("2020-01-01")),
                Err(vec![
                    ("class", "required"),
                    ("reason", "required"),
                    ("expires_on", "out_of_range"),
                ]),
            ),
        ];
        for (i, (input, expected)) in cases.into_iter().enumerate() {
            let got = input.validate(&classes, today);
            match (got, expected) {
                (Ok(d), Ok(exp)) => {
                    assert_eq!(
                        d.expires_on.map(|d| d.to_string()).as_deref(),
                        exp,
                        "case {i}"
                    );
                    assert!(
                        !d.reason.starts_with(' ') && classes.contains(&d.class),
                        "case {i}: {d:?}"
                    );
                }
                (Err(e), Err(fields)) => {
                    let got: Vec<(&str, &str)> =
                        e.0.iter()
                            .map(|f| (f.field.as_str(), f.reason.code()))
                            .collect();
                    assert_eq!(got, fields, "case {i}");
                }
                (got, expected) => panic!("case {i}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
