//! Interactions: visits, calls, e-mails, meetings, web visits, campaign
//! responses, service tickets and complaints (with severity and status).

use crate::date::parse_past_date;
use crate::error::{Reason, ValidationErrors};
use crate::text::{clean, parse_long_text};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

labelled_enum!(InteractionKind {
    Visit = "visit" / "拜访",
    Call = "call" / "电话",
    Email = "email" / "邮件",
    Meeting = "meeting" / "会议",
    WebVisit = "web_visit" / "网站访问",
    CampaignResponse = "campaign_response" / "活动响应",
    Service = "service" / "服务",
    Complaint = "complaint" / "投诉",
});

labelled_enum!(Severity { Low = "low" / "轻微", Medium = "medium" / "一般", High = "high" / "严重", Critical = "critical" / "紧急" });

labelled_enum!(TicketStatus { Open = "open" / "待处理", InProgress = "in_progress" / "处理中", Resolved = "resolved" / "已解决", Closed = "closed" / "已关闭" });

impl InteractionKind {
    /// Service tickets and complaints carry a status; complaints a severity too.
    pub fn is_ticket(self) -> bool {
        matches!(self, InteractionKind::Service | InteractionKind::Complaint)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub occurred_on: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub satisfaction: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InteractionData {
    pub kind: InteractionKind,
    pub occurred_on: NaiveDate,
    pub summary: String,
    pub severity: Option<Severity>,
    pub status: Option<TicketStatus>,
    pub satisfaction: Option<i64>,
}

impl InteractionInput {
    pub fn validate(&self, today: NaiveDate) -> Result<InteractionData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let kind = e.check(
            "kind",
            InteractionKind::parse(self.kind.as_deref().unwrap_or("")),
        );
        let occurred_on = e.check(
            "occurred_on",
            parse_past_date(self.occurred_on.as_deref().unwrap_or(""), today),
        );
        let summary = e.check(
            "summary",
            parse_long_text(self.summary.as_deref().unwrap_or(""), 2000),
        );
        let given = |v: &Option<String>| {
            v.as_deref()
                .filter(|s| !clean(s).is_empty())
                .map(str::to_string)
        };
        let severity = match (kind, given(&self.severity)) {
            (_, Some(s)) => e.check("severity", Severity::parse(&s)),
            (Some(InteractionKind::Complaint), None) => Some(Severity::Medium),
            _ => None,
        };
        if severity.is_some() && kind.is_some_and(|k| k != InteractionKind::Complaint) {
            e.push(
                "severity",
                Reason::Other {
                    zh: "只有投诉才有严重程度".into(),
                    en: "only complaints have a severity".into(),
                },
            );
        }
        let status = match (kind, given(&self.status)) {
            (Some(k), Some(s)) if k.is_ticket() => e.check("status", TicketStatus::parse(&s)),
            (Some(_), Some(_)) => {
                e.push(
                    "status",
                    Reason::Other {
                        zh: "只有服务和投诉才有处理状态".into(),
                        en: "only service tickets and complaints have a status".into(),
                    },
                );
                None
            }
            (Some(k), None) if k.is_ticket() => Some(TicketStatus::Open),
            _ => None,
        };
        let satisfaction = match self.satisfaction {
            Some(s) if !(1..=5).contains(&s) => {
                e.push(
                    "satisfaction",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some("5".into()),
                    },
                );
                None
            }
            s => s,
        };
        e.into_result()?;
        match (kind, occurred_on, summary) {
            (Some(kind), Some(occurred_on), Some(summary)) => Ok(InteractionData {
                kind,
                occurred_on,
                summary,
                severity,
                status,
                satisfaction,
            }),
            _ => Err(ValidationErrors::single("kind", Reason::Required)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interactions_table() {
        let today = NaiveDate::from_ymd_opt(2024, 3, 12).expect("date");
        let base = || InteractionInput {
            kind: Some("投诉".into()),
            occurred_on: Some("2024-03-12".into()),
            summary: Some("交货延期".into()),
            ..Default::default()
        };
        let cases: Vec<(InteractionInput, Vec<(&str, &str)>)> = vec![
            (base(), vec![]),
            (
                InteractionInput {
                    kind: Some("visit".into()),
                    ..base()
                },
                vec![],
            ),
            (
                InteractionInput {
                    kind: Some("传真".into()),
                    ..base()
                },
                vec![("kind", "unknown_option")],
            ),
            (
                InteractionInput {
                    severity: Some("致命".into()),
                    ..base()
                },
                vec![("severity", "unknown_option")],
            ),
            (
                InteractionInput {
                    kind: Some("call".into()),
                    severity: Some("high".into()),
                    ..base()
                },
                vec![("severity", "invalid")],
            ),
            (
                InteractionInput {
                    kind: Some("call".into()),
                    status: Some("open".into()),
                    ..base()
                },
                vec![("status", "invalid")],
            ),
            (
                InteractionInput {
                    satisfaction: Some(6),
                    ..base()
                },
                vec![("satisfaction", "out_of_range")],
            ),
            (
                InteractionInput {
                    summary: Some(" ".into()),
                    ..base()
                },
                vec![("summary", "required")],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(String, &str)> = match input.validate(today) {
                Ok(_) => vec![],
                Err(e) => {
                    e.0.into_iter()
                        .map(|f| (f.field, f.reason.code()))
                        .collect()
                }
            };
            let got: Vec<(&str, &str)> = got.iter().map(|(f, c)| (f.as_str(), *c)).collect();
            assert_eq!(got, want, "input {input:?}");
        }
        let complaint = base().validate(today).expect("valid");
        assert_eq!(
            (complaint.severity, complaint.status),
            (Some(Severity::Medium), Some(TicketStatus::Open))
        );
    }
}
