//! Follow-up tasks and the tracking log (跟踪记录): what a task is, where it
//! came from, and what must be recorded to close it.
//!
//! *Invariant*: a task is closed as done only with a result (what happened,
//! on which day); a suggested class change names both the scheme and the
//! class.

use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use crate::strategy::{Action, OwnerLevel};
use crate::text::{clean, parse_long_text, parse_optional_text, parse_text};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

labelled_enum!(TaskKind {
    Visit = "visit" / "拜访",
    Call = "call" / "电话",
    Contact = "contact" / "联系",
    Message = "message" / "促销信息",
    Training = "training" / "培训",
    Handover = "handover" / "交接",
    Service = "service" / "服务请求",
    FollowUpCall = "follow_up_call" / "回访",
    Reactivation = "reactivation" / "激活",
    Review = "review" / "审核分类建议",
    Other = "other" / "其他",
});

labelled_enum!(TaskSource {
    Strategy = "strategy" / "分类策略",
    ClassChange = "class_change" / "分类变化",
    Complaint = "complaint" / "投诉",
    Resolved = "resolved" / "服务解决后回访",
    Dormant = "dormant" / "沉睡客户",
    Suggestion = "suggestion" / "分类建议",
    Manual = "manual" / "手工",
});

labelled_enum!(Priority {
    High = "high" / "高",
    Normal = "normal" / "中",
    Low = "low" / "低",
});

labelled_enum!(TaskStatus {
    Open = "open" / "待办",
    Done = "done" / "已完成",
    Cancelled = "cancelled" / "已取消",
});

impl From<Action> for TaskKind {
    fn from(a: Action) -> TaskKind {
        match a {
            Action::Visit => TaskKind::Visit,
            Action::Call => TaskKind::Call,
            Action::Contact => TaskKind::Contact,
            Action::Message => TaskKind::Message,
            Action::Training => TaskKind::Training,
        }
    }
}

impl Priority {
    /// Work for the customers a director looks after comes first.
    pub fn of_level(level: OwnerLevel) -> Priority {
        match level {
            OwnerLevel::Director => Priority::High,
            OwnerLevel::Specialist => Priority::Normal,
            OwnerLevel::Assistant => Priority::Low,
        }
    }
    /// Sort rank, high first.
    pub fn rank(self) -> i64 {
        match self {
            Priority::High => 1,
            Priority::Normal => 2,
            Priority::Low => 3,
        }
    }
    pub fn of_rank(rank: i64) -> Priority {
        match rank {
            1 => Priority::High,
            3 => Priority::Low,
            _ => Priority::Normal,
        }
    }
}

/// Tasks fall due at the end of the working day unless a time is given.
pub const DEFAULT_DUE_TIME: NaiveTime = crate::calendar::WORKDAY_END;

/// A customer without an order for this many months gets a reactivation task.
pub const DORMANT_MONTHS: u32 = 3;

/// A task made by hand, as entered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// The customer's code.
    #[serde(default)]
    pub customer: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// YYYY-MM-DD
    #[serde(default)]
    pub due_on: Option<String>,
    /// HH:MM, local time; the end of the working day when absent.
    #[serde(default)]
    pub due_time: Option<String>,
    #[serde(default)]
    pub priority: Option<String>,
    /// The owner's user id; the one creating it when absent.
    #[serde(default)]
    pub owner_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTaskFields {
    pub customer: String,
    pub kind: TaskKind,
    pub title: String,
    pub detail: String,
    pub due_on: NaiveDate,
    pub due_time: NaiveTime,
    pub priority: Priority,
    pub owner_id: Option<i64>,
}

impl TaskInput {
    pub fn validate(&self, today: NaiveDate) -> Result<NewTaskFields, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let customer = e.check(
            "customer",
            parse_text(self.customer.as_deref().unwrap_or(""), 64),
        );
        let kind = match self.kind.as_deref().map(clean).filter(|k| !k.is_empty()) {
            None => Some(TaskKind::Other),
            Some(k) => e.check("kind", TaskKind::parse(&k)),
        };
        let title = e.check(
            "title",
            parse_text(self.title.as_deref().unwrap_or(""), 200),
        );
        let detail = match self.detail.as_deref().map(clean).filter(|d| !d.is_empty()) {
            None => Some(String::new()),
            Some(d) => e.check("detail", parse_long_text(&d, 2000)),
        };
        let due_on = e.check(
            "due_on",
            parse_date(self.due_on.as_deref().unwrap_or("")).and_then(|d| {
                if d < today {
                    Err(Reason::Other {
                        zh: "到期日不能早于今天".into(),
                        en: "must not be before today".into(),
                    })
                } else {
                    Ok(d)
                }
            }),
        );
        let due_time = match self
            .due_time
            .as_deref()
            .map(clean)
            .filter(|t| !t.is_empty())
        {
            None => Some(DEFAULT_DUE_TIME),
            Some(t) => e.check(
                "due_time",
                NaiveTime::parse_from_str(&t, "%H:%M").map_err(|_| Reason::Other {
                    zh: "时间应写作 HH:MM，例如 14:30".into(),
                    en: "write the time as HH:MM, e.g. 14:30".into(),
                }),
            ),
        };
        let priority = match self
            .priority
            .as_deref()
            .map(clean)
            .filter(|p| !p.is_empty())
        {
            None => Some(Priority::Normal),
            Some(p) => e.check("priority", Priority::parse(&p)),
        };
        e.into_result()?;
        match (customer, kind, title, detail, due_on, due_time, priority) {
            (
                Some(customer),
                Some(kind),
                Some(title),
                Some(detail),
                Some(due_on),
                Some(due_time),
                Some(priority),
            ) => Ok(NewTaskFields {
                customer,
                kind,
                title,
                detail,
                due_on,
                due_time,
                priority,
                owner_id: self.owner_id,
            }),
            _ => Err(ValidationErrors::single("title", Reason::Required)),
        }
    }
}

/// What is recorded to close a task: one entry of the tracking log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskResultInput {
    /// What happened (拜访结果, 回访结论…). Required.
    #[serde(default)]
    pub summary: Option<String>,
    /// The day it happened; today when absent.
    #[serde(default)]
    pub happened_on: Option<String>,
    #[serde(default)]
    pub next_step: Option<String>,
    /// e.g. 下单次数+1; worked out from the data since the last entry when absent.
    #[serde(default)]
    pub status_change: Option<String>,
    /// A class the person suggests; it goes to the manager to decide.
    #[serde(default)]
    pub suggested_scheme: Option<String>,
    #[serde(default)]
    pub suggested_class: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskResult {
    pub summary: String,
    pub happened_on: NaiveDate,
    pub next_step: Option<String>,
    pub status_change: Option<String>,
    /// (scheme key, class name)
    pub suggestion: Option<(String, String)>,
}

impl TaskResultInput {
    /// `classes_of` gives a published scheme's classes (None: no such scheme).
    pub fn validate(
        &self,
        today: NaiveDate,
        classes_of: impl Fn(&str) -> Option<Vec<String>>,
    ) -> Result<TaskResult, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let summary = e.check(
            "summary",
            parse_long_text(self.summary.as_deref().unwrap_or(""), 2000).map_err(|e| match e {
                Reason::Required => Reason::Other {
                    zh: "关闭任务必须填写结果".into(),
                    en: "a task is closed only with its result".into(),
                },
                e => e,
            }),
        );
        let happened_on = match self
            .happened_on
            .as_deref()
            .map(clean)
            .filter(|d| !d.is_empty())
        {
            None => Some(today),
            Some(d) => e.check(
                "happened_on",
                parse_date(&d).and_then(|d| {
                    if d > today {
                        Err(Reason::Other {
                            zh: "日期不能晚于今天".into(),
                            en: "must not be in the future".into(),
                        })
                    } else {
                        Ok(d)
                    }
                }),
            ),
        };
        let next_step = e
            .check(
                "next_step",
                parse_optional_text(self.next_step.as_deref(), 500),
            )
            .flatten();
        let status_change = e
            .check(
                "status_change",
                parse_optional_text(self.status_change.as_deref(), 200),
            )
            .flatten();
        let given = |v: &Option<String>| v.as_deref().map(clean).filter(|s| !s.is_empty());
        let suggestion = match (given(&self.suggested_scheme), given(&self.suggested_class)) {
            (None, None) => None,
            (None, Some(_)) => {
                e.push("suggested_scheme", Reason::Required);
                None
            }
            (Some(_), None) => {
                e.push("suggested_class", Reason::Required);
                None
            }
            (Some(scheme), Some(class)) => match classes_of(&scheme) {
                None => {
                    e.push(
                        "suggested_scheme",
                        Reason::Other {
                            zh: format!("没有已发布的分类方案“{scheme}”"),
                            en: format!("no published classification scheme \"{scheme}\""),
                        },
                    );
                    None
                }
                Some(classes) if !classes.contains(&class) => {
                    e.push(
                        "suggested_class",
                        Reason::UnknownOption { allowed: classes },
                    );
                    None
                }
                Some(_) => Some((scheme, class)),
            },
        };
        e.into_result()?;
        match (summary, happened_on) {
            (Some(summary), Some(happened_on)) => Ok(TaskResult {
                summary,
                happened_on,
                next_step,
                status_change,
                suggestion,
            }),
            _ => Err(ValidationErrors::single("summary", Reason::Required)),
        }
    }
}

/// The status change a tracking-log entry shows when the person wrote none:
/// what the data says happened since the previous entry.
pub fn status_change_text(orders: i64, complaints: i64) -> Option<String> {
    let mut parts = Vec::new();
    if orders > 0 {
        parts.push(format!("下单次数+{orders}"));
    }
    if complaints > 0 {
        parts.push(format!("投诉次数+{complaints}"));
    }
    (!parts.is_empty()).then(|| parts.join("，"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn manual_tasks_table() {
        let today = day("2026-12-02");
        let base = || TaskInput {
            customer: Some("C2024001".into()),
            kind: Some("拜访".into()),
            title: Some("年度回顾".into()),
            due_on: Some("2026-12-04".into()),
            ..Default::default()
        };
        let ok = base().validate(today).expect("valid");
        assert_eq!(
            (ok.kind, ok.priority, ok.due_time),
            (TaskKind::Visit, Priority::Normal, DEFAULT_DUE_TIME)
        );
        let cases: Vec<(TaskInput, Vec<(&str, &str)>)> = vec![
            (
                TaskInput {
                    customer: None,
                    ..base()
                },
                vec![("customer", "required")],
            ),
            (
                TaskInput {
                    title: Some("  ".into()),
                    ..base()
                },
                vec![("title", "required")],
            ),
            (
                TaskInput {
                    kind: Some("吃饭".into()),
                    ..base()
                },
                vec![("kind", "unknown_option")],
            ),
            (
                TaskInput {
                    due_on: Some("2026-12-01".into()),
                    ..base()
                },
                vec![("due_on", "invalid")],
            ),
            (
                TaskInput {
                    due_on: Some("2026-02-30".into()),
                    ..base()
                },
                vec![("due_on", "date_format")],
            ),
            (
                TaskInput {
                    due_time: Some("25:00".into()),
                    ..base()
                },
                vec![("due_time", "invalid")],
            ),
            (
                TaskInput {
                    priority: Some("urgent".into()),
                    ..base()
                },
                vec![("priority", "unknown_option")],
            ),
        ];
        for (input, want) in cases {
            let e = input.validate(today).expect_err("invalid");
            let got: Vec<(&str, &str)> =
                e.0.iter()
                    .map(|f| (f.field.as_str(), f.reason.code()))
                    .collect();
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn results_table() {
        let today = day("2026-12-02");
        let classes =
            |s: &str| (s == "value_tier").then(|| vec!["战略型".to_string(), "潜力型".to_string()]);
        let base = || TaskResultInput {
            summary: Some("拜访采购部，确认明年框架协议".into()),
            ..Default::default()
        };
        let ok = base().validate(today, classes).expect("valid");
        assert_eq!(ok.happened_on, today);
        let with = TaskResultInput {
            suggested_scheme: Some("value_tier".into()),
            suggested_class: Some("战略型".into()),
            ..base()
        };
        assert_eq!(
            with.validate(today, classes).expect("valid").suggestion,
            Some(("value_tier".into(), "战略型".into()))
        );
        let cases: Vec<(TaskResultInput, Vec<(&str, &str)>)> = vec![
            (TaskResultInput::default(), vec![("summary", "invalid")]),
            (
                TaskResultInput {
                    summary: Some("\n ".into()),
                    ..base()
                },
                vec![("summary", "invalid")],
            ),
            (
                TaskResultInput {
                    happened_on: Some("2026-12-03".into()),
                    ..base()
                },
                vec![("happened_on", "invalid")],
            ),
            (
                TaskResultInput {
                    suggested_class: Some("战略型".into()),
                    ..base()
                },
                vec![("suggested_scheme", "required")],
            ),
            (
                TaskResultInput {
                    suggested_scheme: Some("value_tier".into()),
                    ..base()
                },
                vec![("suggested_class", "required")],
            ),
            (
                TaskResultInput {
                    suggested_scheme: Some("value_tier".into()),
                    suggested_class: Some("金牌".into()),
                    ..base()
                },
                vec![("suggested_class", "unknown_option")],
            ),
            (
                TaskResultInput {
                    suggested_scheme: Some("nope".into()),
                    suggested_class: Some("x".into()),
                    ..base()
                },
                vec![("suggested_scheme", "invalid")],
            ),
        ];
        for (input, want) in cases {
            let e = input.validate(today, classes).expect_err("invalid");
            let got: Vec<(&str, &str)> =
                e.0.iter()
                    .map(|f| (f.field.as_str(), f.reason.code()))
                    .collect();
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn status_changes_from_the_data() {
        assert_eq!(status_change_text(0, 0), None);
        assert_eq!(status_change_text(1, 0).as_deref(), Some("下单次数+1"));
        assert_eq!(
            status_change_text(2, 1).as_deref(),
            Some("下单次数+2，投诉次数+1")
        );
    }
}
