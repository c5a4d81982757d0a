//! Report schedules: a report (classification or strategy of one scheme,
//! tag analytics, marketing) made after every month or quarter ends,
//! stored, and e-mailed to its recipients.

use crate::error::{Reason, ValidationErrors};
use crate::ident::Email;
use crate::strategy::Period;
use crate::text::clean;
use chrono::NaiveDate;
use serde::Deserialize;

labelled_enum!(ReportCadence {
    Monthly = "monthly" / "每月",
    Quarterly = "quarterly" / "每季度",
});

// The file a schedule makes (and e-mails).
labelled_enum!(ReportFileFormat {
    Xlsx = "xlsx" / "XLSX 表格",
    Pdf = "pdf" / "PDF 文档",
});

labelled_enum!(ScheduledKind {
    Classification = "classification" / "分类报表",
    Strategy = "strategy" / "策略效果",
    Tags = "tags" / "标签分析",
    Marketing = "marketing" / "营销效果",
});

impl ScheduledKind {
    /// Whether the report is of one classification scheme (the tag
    /// analytics and the marketing report cover every customer).
    pub fn reads_scheme(self) -> bool {
        matches!(
            self,
            ScheduledKind::Classification | ScheduledKind::Strategy
        )
    }
}

impl ReportCadence {
    /// The last whole period before `today`: the one to report on.
    pub fn last_complete(self, today: NaiveDate) -> Period {
        match self {
            ReportCadence::Monthly => Period::month_of(today).previous(),
            ReportCadence::Quarterly => Period::quarter_of(today).previous(),
        }
    }
}

/// How many past periods one run of the job makes at most for a schedule
/// (the oldest first): a server down for a long time catches up a year
/// of monthly reports, not all of them at once.
pub const CATCH_UP_MAX: usize = 12;

impl ReportCadence {
    /// The periods a schedule made on `created_on` owes by `today`, oldest
    /// first: the last whole period before its creation (what it makes
    /// the day it is made), and every whole period since — so periods a
    /// stopped server missed are made when it runs again. At most
    /// [`CATCH_UP_MAX`], the latest.
    pub fn owed(self, created_on: NaiveDate, today: NaiveDate) -> Vec<Period> {
        let last = self.last_complete(today);
        // Made "after" today (a clock set back): as if made today.
        let mut p = self.last_complete(created_on.min(today));
        let mut out = Vec::new();
        while p.start <= last.start {
            out.push(p);
            p = p.next();
        }
        let skip = out.len().saturating_sub(CATCH_UP_MAX);
        out.split_off(skip)
    }
}

/// Recipients of one schedule at most.
pub const MAX_RECIPIENTS: usize = 20;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScheduleInput {
    #[serde(default)]
    pub kind: Option<String>,
    /// A scheme key; `value_tier` when absent.
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub cadence: Option<String>,
    /// E-mail addresses separated by commas, semicolons or spaces; none:
    /// stored only.
    #[serde(default)]
    pub recipients: Option<String>,
    /// xlsx (default) | pdf: the file made, stored and e-mailed.
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleData {
    pub kind: ScheduledKind,
    pub scheme: String,
    pub cadence: ReportCadence,
    pub recipients: Vec<String>,
    pub format: ReportFileFormat,
}

impl ScheduleInput {
    pub fn validate(&self) -> Result<ScheduleData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let choice = |raw: &Option<String>| raw.as_deref().map(clean).filter(|v| !v.is_empty());
        let kind = e.check(
            "kind",
            choice(&self.kind).map_or(Err(Reason::Required), |k| ScheduledKind::parse(&k)),
        );
        let cadence = e.check(
            "cadence",
            choice(&self.cadence).map_or(Err(Reason::Required), |c| ReportCadence::parse(&c)),
        );
        // No scheme for a report that reads none (stored empty).
        let scheme = match kind {
            Some(k) if !k.reads_scheme() => String::new(),
            _ => choice(&self.scheme).unwrap_or_else(|| "value_tier".into()),
        };
        let format = e.check(
            "format",
            choice(&self.format)
                .map_or(Ok(ReportFileFormat::Xlsx), |f| ReportFileFormat::parse(&f)),
        );
        let raw = self.recipients.as_deref().unwrap_or("");
        let recipients = e.check(
            "recipients",
            raw.split(|c: char| {
                c == ',' || c == ';' || c == '，' || c == '；' || c.is_whitespace()
            })
            .filter(|r| !r.is_empty())
            .map(|r| {
                Email::parse(r)
                    .map(|m| m.as_str().to_string())
                    .map_err(|_| Reason::Other {
                        zh: format!("“{r}”不是有效的电子邮箱"),
                        en: format!("“{r}” is not an e-mail address"),
                    })
            })
            .collect::<Result<Vec<String>, Reason>>()
            .and_then(|mut list| {
                list.sort();
                list.dedup();
                if list.len() > MAX_RECIPIENTS {
                    Err(Reason::OutOfRange {
                        min: None,
                        max: Some(MAX_RECIPIENTS.to_string()),
                    })
                } else {
                    Ok(list)
                }
            }),
        );
        e.into_result()?;
        match (kind, cadence, recipients, format) {
            (Some(kind), Some(cadence), Some(recipients), Some(format)) => Ok(ScheduleData {
                kind,
                scheme,
                cadence,
                recipients,
                format,
            }),
            _ => Err(ValidationErrors::single("kind", Reason::Required)),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn owed_periods_catch_up_what_was_missed() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
        let labels = |c: ReportCadence, made: &str, today: &str| -> Vec<String> {
            c.owed(d(made), d(today))
                .iter()
                .map(Period::label)
                .collect()
        };
        let cases: &[(ReportCadence, &str, &str, &[&str])] = &[
            // Made today: the last whole period, as before.
            (
                ReportCadence::Monthly,
                "2026-12-06",
                "2026-12-06",
                &["2026-11"],
            ),
            (
                ReportCadence::Quarterly,
                "2026-12-06",
                "2026-12-06",
                &["2026-Q3"],
            ),
            // Made in September, the server down since: three months owed.
            (
                ReportCadence::Monthly,
                "2026-09-10",
                "2026-12-06",
                &["2026-08", "2026-09", "2026-10", "2026-11"],
            ),
            (
                ReportCadence::Quarterly,
                "2026-02-01",
                "2026-12-06",
                &["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"],
            ),
            // On a period's first day its predecessor is owed.
            (
                ReportCadence::Monthly,
                "2026-11-30",
                "2026-12-01",
                &["2026-10", "2026-11"],
            ),
            (
                ReportCadence::Monthly,
                "2026-12-06",
                "2024-03-12",
                &["2024-02"],
            ),
        ];
        for (c, made, today, want) in cases {
            assert_eq!(
                labels(*c, made, today),
                *want,
                "{c:?} made {made}, today {today}"
            );
        }
        // Years down: the latest twelve only.
        let long = ReportCadence::Monthly.owed(d("2020-01-15"), d("2026-12-06"));
        assert_eq!(long.len(), CATCH_UP_MAX);
        assert_eq!(long.last().map(Period::label).as_deref(), Some("2026-11"));
        assert_eq!(long.first().map(Period::label).as_deref(), Some("2025-12"));
    }
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn the_period_reported_is_the_last_whole_one() {
        let cases = [
            (ReportCadence::Monthly, "2026-12-02", "2026-11"),
            (ReportCadence::Monthly, "2026-01-01", "2025-12"),
            (ReportCadence::Monthly, "2026-03-31", "2026-02"),
            (ReportCadence::Quarterly, "2026-12-02", "2026-Q3"),
            (ReportCadence::Quarterly, "2026-10-01", "2026-Q3"),
            (ReportCadence::Quarterly, "2026-09-30", "2026-Q2"),
            (ReportCadence::Quarterly, "2026-02-15", "2025-Q4"),
        ];
        for (cadence, today, want) in cases {
            assert_eq!(
                cadence.last_complete(d(today)).label(),
                want,
                "{cadence:?} {today}"
            );
        }
    }

    #[test]
    fn schedules_are_checked() {
        let ok = ScheduleInput {
            kind: Some("分类报表".into()),
            cadence: Some("quarterly".into()),
            recipients: Some("Boss@Example.com; ops@example.com，boss@example.com".into()),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.kind, ScheduledKind::Classification);
        assert_eq!(ok.scheme, "value_tier");
        assert_eq!(ok.recipients, ["boss@example.com", "ops@example.com"]);
        assert_eq!(ok.format, ReportFileFormat::Xlsx, "XLSX unless asked");
        let pdf = ScheduleInput {
            kind: Some("strategy".into()),
            cadence: Some("monthly".into()),
            format: Some("PDF 文档".into()),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        assert_eq!(pdf.format, ReportFileFormat::Pdf);
        // The tag analytics and the marketing report read no scheme.
        for (kind, want) in [
            ("标签分析", ScheduledKind::Tags),
            ("marketing", ScheduledKind::Marketing),
        ] {
            let s = ScheduleInput {
                kind: Some(kind.into()),
                scheme: Some("value_tier".into()),
                cadence: Some("monthly".into()),
                ..Default::default()
            }
            .validate()
            .expect("valid");
            assert_eq!((s.kind, s.scheme.as_str()), (want, ""), "{kind}");
        }
        let e = ScheduleInput {
            kind: Some("pie".into()),
            recipients: Some("a@example.com not-an-address".into()),
            format: Some("docx".into()),
            ..Default::default()
        }
        .validate()
        .expect_err("invalid");
        let fields: Vec<(&str, &str)> =
            e.0.iter()
                .map(|f| (f.field.as_str(), f.reason.code()))
                .collect();
        assert_eq!(
            fields,
            [
                ("kind", "unknown_option"),
                ("cadence", "required"),
                ("format", "unknown_option"),
                ("recipients", "invalid")
            ]
        );
        let many = (0..21)
            .map(|i| format!("u{i}@example.com"))
            .collect::<Vec<_>>()
            .join(",");
        let e = ScheduleInput {
            kind: Some("strategy".into()),
            cadence: Some("monthly".into()),
            recipients: Some(many),
            ..Default::default()
        }
        .validate()
        .expect_err("too many");
        assert_eq!(e.0[0].reason.code(), "out_of_range");
    }
}
