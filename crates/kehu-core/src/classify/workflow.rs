//! The life of a scheme version: edited as a draft, submitted, approved by
//! management, published by an admin, rolled back to an earlier published
//! version. Who may take which step from which status is decided here, once;
//! the store records the step and the server only asks.

use crate::role::{Grants, Permission};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    Draft,
    Submitted,
    Approved,
    Rejected,
    Published,
    /// Was published; another version is published now.
    Retired,
}

impl VersionStatus {
    pub const ALL: [VersionStatus; 6] = [
        VersionStatus::Draft,
        VersionStatus::Submitted,
        VersionStatus::Approved,
        VersionStatus::Rejected,
        VersionStatus::Published,
        VersionStatus::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Draft => "draft",
            VersionStatus::Submitted => "submitted",
            VersionStatus::Approved => "approved",
            VersionStatus::Rejected => "rejected",
            VersionStatus::Published => "published",
            VersionStatus::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<VersionStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    fn zh(self) -> &'static str {
        match self {
            VersionStatus::Draft => "草稿",
            VersionStatus::Submitted => "待审批",
            VersionStatus::Approved => "已批准",
            VersionStatus::Rejected => "已驳回",
            VersionStatus::Published => "已发布",
            VersionStatus::Retired => "已停用",
        }
    }
}

/// A step of the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Create,
    Edit,
    Submit,
    /// Back from submitted to draft, by the editors.
    Withdraw,
    Approve,
    Reject,
    Publish,
    /// Publish again a version that was published before.
    Rollback,
}

impl Step {
    /// The steps that move an existing version (not create or edit it).
    pub const MOVES: [Step; 6] = [
        Step::Submit,
        Step::Withdraw,
        Step::Approve,
        Step::Reject,
        Step::Publish,
        Step::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "create",
            Step::Edit => "edit",
            Step::Submit => "submit",
            Step::Withdraw => "withdraw",
            Step::Approve => "approve",
            Step::Reject => "reject",
            Step::Publish => "publish",
            Step::Rollback => "rollback",
        }
    }

    fn zh(self) -> &'static str {
        match self {
            Step::Create => "新建",
            Step::Edit => "编辑",
            Step::Submit => "提交审批",
            Step::Withdraw => "撤回",
            Step::Approve => "批准",
            Step::Reject => "驳回",
            Step::Publish => "发布",
            Step::Rollback => "回滚",
        }
    }

    /// The permission the step needs.
    pub fn permission(self) -> Permission {
        match self {
            Step::Approve | Step::Reject => Permission::RuleApprove,
            _ => Permission::RuleEdit,
        }
    }

    /// The statuses the step starts from and the status it leads to.
    fn transition(self) -> (&'static [VersionStatus], VersionStatus) {
        use VersionStatus as S;
        match self {
            Step::Create => (&[], S::Draft),
            Step::Edit => (&[S::Draft, S::Rejected], S::Draft),
            Step::Submit => (&[S::Draft], S::Submitted),
            Step::Withdraw => (&[S::Submitted], S::Draft),
            Step::Approve => (&[S::Submitted], S::Approved),
            Step::Reject => (&[S::Submitted], S::Rejected),
            Step::Publish => (&[S::Approved], S::Published),
            Step::Rollback => (&[S::Retired], S::Published),
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The actor's role lacks the step's permission.
    NotAllowed,
    /// The version is not in a status the step starts from.
    WrongStatus { step: Step, status: VersionStatus },
    /// Approving or rejecting a request one made or submitted oneself.
    OwnRequest,
}

impl Refusal {
    pub fn message(&self) -> (String, String) {
        match self {
            Refusal::NotAllowed => (
                "当前角色无权执行此操作".into(),
                "your role may not take this step".into(),
            ),
            Refusal::WrongStatus { step, status } => (
                format!("{}状态的版本不能{}", status.zh(), step.zh()),
                format!(
                    "a {} version cannot be {}",
                    status.as_str(),
                    match step {
                        Step::Create => "created",
                        Step::Edit => "edited",
                        Step::Submit => "submitted",
                        Step::Withdraw => "withdrawn",
                        Step::Approve => "approved",
                        Step::Reject => "rejected",
                        Step::Publish => "published (only approved versions can)",
                        Step::Rollback => "rolled back to (only earlier published versions can)",
                    }
                ),
            ),
            Refusal::OwnRequest => (
                "不能审批自己提交或编写的版本".into(),
                "nobody may approve or reject a version they wrote or submitted".into(),
            ),
        }
    }
}

/// The people behind a version so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Authors {
    pub created_by: Option<i64>,
    pub submitted_by: Option<i64>,
}

/// Whether `actor` (with `grants`) may take `step` on a version in `status`
/// written by `authors`; the status it leads to if so.
pub fn check(
    step: Step,
    status: Option<VersionStatus>,
    authors: Authors,
    actor: i64,
    grants: &Grants,
) -> Result<VersionStatus, Refusal> {
    if !grants.has(step.permission()) {
        return Err(Refusal::NotAllowed);
    }
    let (from, to) = step.transition();
    match status {
        None if from.is_empty() => {}
        Some(s) if from.contains(&s) => {}
        Some(s) => return Err(Refusal::WrongStatus { step, status: s }),
        None => {
            return Err(Refusal::WrongStatus {
                step,
                status: VersionStatus::Draft,
            })
        }
    }
    if matches!(step, Step::Approve | Step::Reject)
        && (authors.created_by == Some(actor) || authors.submitted_by == Some(actor))
    {
        return Err(Refusal::OwnRequest);
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::ROLE_PRESETS;
    use VersionStatus as S;

    fn grants(role: &str) -> Grants {
        ROLE_PRESETS
            .iter()
            .find(|r| r.key == role)
            .expect("preset role")
            .grants()
    }

    const WRITER: i64 = 1;
    const OTHER: i64 = 2;

    #[test]
    fn steps_by_role_and_status() {
        let authored = Authors {
            created_by: Some(WRITER),
            submitted_by: Some(WRITER),
        };
        // (step, status, role, actor, expected)
        let cases: &[(Step, Option<S>, &str, i64, Result<S, Refusal>)] = &[
            (Step::Create, None, "admin", WRITER, Ok(S::Draft)),
            (
                Step::Create,
                None,
                "management",
                OTHER,
                Err(Refusal::NotAllowed),
            ),
            (
                Step::Create,
                None,
                "sales_manager",
                OTHER,
                Err(Refusal::NotAllowed),
            ),
            (Step::Edit, Some(S::Draft), "admin", WRITER, Ok(S::Draft)),
            (Step::Edit, Some(S::Rejected), "admin", WRITER, Ok(S::Draft)),
            (
                Step::Edit,
                Some(S::Submitted),
                "admin",
                WRITER,
                Err(Refusal::WrongStatus {
                    step: Step::Edit,
                    status: S::Submitted,
                }),
            ),
            (
                Step::Edit,
                Some(S::Published),
                "admin",
                WRITER,
                Err(Refusal::WrongStatus {
                    step: Step::Edit,
                    status: S::Published,
                }),
            ),
            (
                Step::Submit,
                Some(S::Draft),
                "admin",
                WRITER,
                Ok(S::Submitted),
            ),
            (
                Step::Submit,
                Some(S::Approved),
                "admin",
                WRITER,
                Err(Refusal::WrongStatus {
                    step: Step::Submit,
                    status: S::Approved,
                }),
            ),
            (
                Step::Withdraw,
                Some(S::Submitted),
                "admin",
                WRITER,
                Ok(S::Draft),
            ),
            (
                Step::Approve,
                Some(S::Submitted),
                "management",
                OTHER,
                Ok(S::Approved),
            ),
            (
                Step::Approve,
                Some(S::Submitted),
                "management",
                WRITER,
                Err(Refusal::OwnRequest),
            ),
            (
                Step::Approve,
                Some(S::Submitted),
                "admin",
                OTHER,
                Err(Refusal::NotAllowed),
            ),
            (
                Step::Approve,
                Some(S::Draft),
                "management",
                OTHER,
                Err(Refusal::WrongStatus {
                    step: Step::Approve,
                    status: S::Draft,
                }),
            ),
            (
                Step::Reject,
                Some(S::Submitted),
                "management",
                OTHER,
                Ok(S::Rejected),
            ),
            (
                Step::Reject,
                Some(S::Submitted),
                "management",
                WRITER,
                Err(Refusal::OwnRequest),
            ),
            (
                Step::Publish,
                Some(S::Approved),
                "admin",
                WRITER,
                Ok(S::Published),
            ),
            (
                Step::Publish,
                Some(S::Submitted),
                "admin",
                WRITER,
                Err(Refusal::WrongStatus {
                    step: Step::Publish,
                    status: S::Submitted,
                }),
            ),
            (
                Step::Publish,
                Some(S::Approved),
                "management",
                OTHER,
                Err(Refusal::NotAllowed),
            ),
            (
                Step::Rollback,
                Some(S::Retired),
                "admin",
                WRITER,
                Ok(S::Published),
            ),
            (
                Step::Rollback,
                Some(S::Rejected),
                "admin",
                WRITER,
                Err(Refusal::WrongStatus {
                    step: Step::Rollback,
                    status: S::Rejected,
                }),
            ),
            (
                Step::Rollback,
                Some(S::Retired),
                "service",
                OTHER,
                Err(Refusal::NotAllowed),
            ),
        ];
        for (step, status, role, actor, expected) in cases {
            assert_eq!(
                &check(*step, *status, authored, *actor, &grants(role)),
                expected,
                "{step:?} on {status:?} by {role} ({actor})"
            );
        }
    }

    #[test]
    fn statuses_round_trip_and_refusals_name_both_languages() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        let (zh, en) = Refusal::WrongStatus {
            step: Step::Publish,
            status: S::Draft,
        }
        .message();
        assert_eq!(zh, "草稿状态的版本不能发布");
        assert!(en.contains("only approved"), "{en}");
    }
}
