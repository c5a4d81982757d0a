//! Roles, permissions and data scopes. The presets are design.md's role
//! table; roles are stored (kehu-store) so an admin can change them, and
//! every check goes through [`Grants`].

use crate::error::Reason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far a permission reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Records the user owns.
    Own,
    /// Records of the user's team.
    Team,
    /// Every record.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    CustomerRead,
    CustomerCreate,
    CustomerUpdate,
    CustomerDelete,
    /// Contacts and orders of customers in scope.
    RecordWrite,
    /// Interactions of every kind on customers in scope.
    InteractionWrite,
    /// Only service tickets and complaints (客服).
    ServiceRecordWrite,
    ClassificationOverride,
    /// Edit classification schemes as drafts, submit them, publish approved versions, roll back.
    RuleEdit,
    CustomFieldAdmin,
    UserAdmin,
    ReportRead,
    RuleApprove,
    /// Create, rename and move tags, write their rules and the tag settings.
    TagManage,
    /// Put manual tags on (and take them off) customers in scope.
    TagAssign,
    /// Confirm or reject the proposals of hybrid tags for customers in scope.
    TagVerify,
    /// Merge tags into others and retire them.
    TagMerge,
    AuditRead,
    /// Create marketing campaigns and record whom they touched.
    CampaignManage,
    /// Handle data-subject requests: find a person, export and erase their
    /// personal data, withdraw consents, set retention periods.
    PersonalData,
}

impl Permission {
    pub const ALL: [Permission; 20] = [
        Permission::CustomerRead,
        Permission::CustomerCreate,
        Permission::CustomerUpdate,
        Permission::CustomerDelete,
        Permission::RecordWrite,
        Permission::InteractionWrite,
        Permission::ServiceRecordWrite,
        Permission::ClassificationOverride,
        Permission::RuleEdit,
        Permission::CustomFieldAdmin,
        Permission::UserAdmin,
        Permission::ReportRead,
        Permission::RuleApprove,
        Permission::TagManage,
        Permission::TagAssign,
        Permission::TagVerify,
        Permission::TagMerge,
        Permission::AuditRead,
        Permission::CampaignManage,
        Permission::PersonalData,
    ];
}

impl Permission {
    /// What the permission lets a role do, in Chinese and English.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            P::CustomerRead => ("查看客户", "Read customers"),
            P::CustomerCreate => ("新建客户", "Create customers"),
            P::CustomerUpdate => ("修改客户", "Edit customers"),
            P::CustomerDelete => ("删除客户", "Delete customers"),
            P::RecordWrite => ("联系人与订单", "Contacts and orders"),
            P::InteractionWrite => ("互动记录", "Interactions"),
            P::ServiceRecordWrite => ("服务与投诉记录", "Service records and complaints"),
            P::ClassificationOverride => ("手工调整分类", "Override classes"),
            P::RuleEdit => ("编辑与发布分类规则", "Edit and publish rules"),
            P::CustomFieldAdmin => ("自定义字段与行业", "Custom fields and industries"),
            P::UserAdmin => ("用户与角色", "Users and roles"),
            P::ReportRead => ("查看报表", "Read reports"),
            P::RuleApprove => ("审批规则变更", "Approve rule changes"),
            P::TagManage => ("管理标签", "Manage tags"),
            P::TagAssign => ("打标签", "Assign tags"),
            P::TagVerify => ("审核标签建议", "Verify tag proposals"),
            P::TagMerge => ("合并与停用标签", "Merge and retire tags"),
            P::AuditRead => ("查看审计日志", "Read the audit log"),
            P::CampaignManage => ("营销活动", "Campaigns"),
            P::PersonalData => ("个人信息请求", "Personal data requests"),
        }
    }

    /// The stable key (`customer_read`), as in the stored grants.
    pub fn key(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    pub fn parse(raw: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.key() == raw.trim())
    }
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Own, Scope::Team, Scope::All];

    pub fn key(self) -> &'static str {
        match self {
            Scope::Own => "own",
            Scope::Team => "team",
            Scope::All => "all",
        }
    }

    pub fn parse(raw: &str) -> Result<Scope, Reason> {
        Scope::ALL
            .into_iter()
            .find(|s| s.key() == raw.trim())
            .ok_or_else(|| Reason::UnknownOption {
                allowed: Scope::ALL.iter().map(|s| s.key().to_string()).collect(),
            })
    }
}

/// The permissions a role grants, each with its scope. Absent = denied.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Grants(pub BTreeMap<Permission, Scope>);

impl Grants {
    /// Grants as an admin sends them: permission key → `own`, `team`, `all`
    /// or `none` (left out); every bad key or scope named.
    pub fn parse(raw: &BTreeMap<String, String>) -> Result<Grants, crate::error::ValidationErrors> {
        let mut errors = crate::error::ValidationErrors::default();
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let Some(p) = Permission::parse(k) else {
                errors.push(k, Reason::UnknownField);
                continue;
            };
            if v.trim() == "none" || v.trim().is_empty() {
                continue;
            }
            match Scope::parse(v) {
                Ok(s) => {
                    out.insert(p, s);
                }
                Err(r) => errors.push(k, r),
            }
        }
        errors.into_result()?;
        Ok(Grants(out))
    }

    pub fn scope(&self, p: Permission) -> Option<Scope> {
        self.0.get(&p).copied()
    }
    pub fn has(&self, p: Permission) -> bool {
        self.0.contains_key(&p)
    }
}

/// Who is acting, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: i64,
    pub team: Option<String>,
    pub grants: Grants,
    /// Rights over personal fields (hidden / masked / clear / edit).
    pub fields: crate::privacy::FieldRights,
}

/// The owner of a record, for scope checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ownership<'a> {
    pub owner_id: Option<i64>,
    pub team: Option<&'a str>,
}

impl Actor {
    /// Whether `p` reaches a record owned as `o`. Fails closed: a record
    /// without an owner or team is reached only by `All`.
    pub fn may(&self, p: Permission, o: Ownership<'_>) -> bool {
        match self.grants.scope(p) {
            None => false,
            Some(Scope::All) => true,
            Some(Scope::Team) => {
                self.team.is_some() && o.team.is_some() && self.team.as_deref() == o.team
                    || o.owner_id == Some(self.user_id)
            }
            Some(Scope::Own) => o.owner_id == Some(self.user_id),
        }
    }
}

pub struct RolePreset {
    pub key: &'static str,
    pub name_zh: &'static str,
    pub name_en: &'static str,
    pub grants: &'static [(Permission, Scope)],
}

use Permission as P;
use Scope as S;

pub const ROLE_PRESETS: &[RolePreset] = &[
    RolePreset {
        key: "admin",
        name_zh: "管理员",
        name_en: "Administrator",
        grants: &[
            (P::CustomerRead, S::All),
            (P::CustomerCreate, S::All),
            (P::CustomerUpdate, S::All),
            (P::CustomerDelete, S::All),
            (P::RecordWrite, S::All),
            (P::InteractionWrite, S::All),
            (P::ServiceRecordWrite, S::All),
            (P::ClassificationOverride, S::All),
            (P::RuleEdit, S::All),
            (P::CustomFieldAdmin, S::All),
            (P::UserAdmin, S::All),
            (P::ReportRead, S::All),
            (P::TagManage, S::All),
            (P::TagAssign, S::All),
            (P::TagVerify, S::All),
            (P::TagMerge, S::All),
            (P::CampaignManage, S::All),
            (P::PersonalData, S::All),
        ],
    },
    RolePreset {
        key: "management",
        name_zh: "管理层",
        name_en: "Management",
        grants: &[
            (P::CustomerRead, S::All),
            (P::ReportRead, S::All),
            (P::RuleApprove, S::All),
        ],
    },
    RolePreset {
        key: "sales_manager",
        name_zh: "销售经理",
        name_en: "Sales manager",
        grants: &[
            (P::CustomerRead, S::Team),
            (P::CustomerCreate, S::Team),
            (P::CustomerUpdate, S::Team),
            (P::CustomerDelete, S::Team),
            (P::RecordWrite, S::Team),
            (P::InteractionWrite, S::Team),
            (P::ClassificationOverride, S::Team),
            (P::ReportRead, S::Team),
            (P::TagAssign, S::Team),
            (P::TagVerify, S::Team),
        ],
    },
    RolePreset {
        key: "sales_rep",
        name_zh: "销售专员",
        name_en: "Sales representative",
        grants: &[
            (P::CustomerRead, S::Team),
            (P::CustomerCreate, S::Own),
            (P::CustomerUpdate, S::Own),
            (P::RecordWrite, S::Own),
            (P::InteractionWrite, S::Own),
            (P::TagAssign, S::Own),
            (P::TagVerify, S::Own),
        ],
    },
    RolePreset {
        key: "service",
        name_zh: "客服",
        name_en: "Customer service",
        grants: &[(P::CustomerRead, S::All), (P::ServiceRecordWrite, S::All)],
    },
    RolePreset {
        key: "marketing",
        name_zh: "市场",
        name_en: "Marketing",
        grants: &[
            (P::CustomerRead, S::All),
            (P::TagManage, S::All),
            (P::TagAssign, S::All),
            (P::TagVerify, S::All),
            (P::TagMerge, S::All),
            (P::ReportRead, S::All),
            (P::CampaignManage, S::All),
        ],
    },
    RolePreset {
        key: "auditor",
        name_zh: "审计",
        name_en: "Auditor",
        grants: &[(P::AuditRead, S::All)],
    },
];

impl RolePreset {
    pub fn grants(&self) -> Grants {
        Grants(self.grants.iter().copied().collect())
    }
    pub fn find(key: &str) -> Result<&'static RolePreset, Reason> {
        ROLE_PRESETS
            .iter()
            .find(|r| r.key == key || r.name_zh == key)
            .ok_or_else(|| Reason::UnknownOption {
                allowed: ROLE_PRESETS.iter().map(|r| r.key.to_string()).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: &str, id: i64, team: &str) -> Actor {
        Actor {
            user_id: id,
            team: Some(team.into()),
            grants: RolePreset::find(role).expect("role").grants(),
            fields: crate::privacy::FieldRights::preset(role),
        }
    }

    /// (role, permission, record owner, record team, allowed) — the role matrix.
    #[test]
    fn role_matrix() {
        let mine = (Some(1), Some("华东一组"));
        let teammate = (Some(2), Some("华东一组"));
        let other_team = (Some(3), Some("华南二组"));
        let cases = [
            ("sales_rep", P::CustomerRead, mine, true),
            ("sales_rep", P::CustomerRead, teammate, true),
            ("sales_rep", P::CustomerRead, other_team, false),
            ("sales_rep", P::CustomerUpdate, mine, true),
            ("sales_rep", P::CustomerUpdate, teammate, false),
            ("sales_rep", P::CustomerDelete, mine, false),
            ("sales_manager", P::CustomerUpdate, teammate, true),
            ("sales_manager", P::CustomerUpdate, other_team, false),
            ("sales_manager", P::ClassificationOverride, teammate, true),
            ("service", P::CustomerRead, other_team, true),
            ("service", P::CustomerUpdate, mine, false),
            ("service", P::ClassificationOverride, mine, false),
            ("service", P::ServiceRecordWrite, other_team, true),
            ("service", P::InteractionWrite, other_team, false),
            ("marketing", P::CustomerUpdate, mine, false),
            ("marketing", P::CampaignManage, other_team, true),
            ("sales_manager", P::CampaignManage, mine, false),
            ("auditor", P::CustomerRead, mine, false),
            ("auditor", P::AuditRead, other_team, true),
            ("admin", P::CustomerDelete, other_team, true),
            ("admin", P::AuditRead, other_team, false),
            ("management", P::CustomerRead, other_team, true),
            ("management", P::CustomerUpdate, other_team, false),
            // Tag rights: assign and verify in the role's own scope, merge and create apart.
            ("sales_rep", P::TagAssign, mine, true),
            ("sales_rep", P::TagAssign, teammate, false),
            ("sales_rep", P::TagVerify, mine, true),
            ("sales_rep", P::TagMerge, mine, false),
            ("sales_manager", P::TagVerify, teammate, true),
            ("sales_manager", P::TagVerify, other_team, false),
            ("sales_manager", P::TagManage, mine, false),
            ("sales_manager", P::TagMerge, mine, false),
            ("service", P::TagAssign, mine, false),
            ("service", P::TagVerify, mine, false),
            ("marketing", P::TagMerge, other_team, true),
            ("marketing", P::TagVerify, other_team, true),
            ("management", P::TagAssign, mine, false),
            // Data-subject requests: admins only.
            ("admin", P::PersonalData, other_team, true),
            ("sales_manager", P::PersonalData, mine, false),
            ("service", P::PersonalData, mine, false),
            ("auditor", P::PersonalData, mine, false),
        ];
        for (role, perm, (owner, team), want) in cases {
            let a = actor(role, 1, "华东一组");
            assert_eq!(
                a.may(
                    perm,
                    Ownership {
                        owner_id: owner,
                        team
                    }
                ),
                want,
                "{role} {perm:?} on {owner:?}/{team:?}"
            );
        }
    }

    #[test]
    fn grants_parse_and_name_bad_keys() {
        let raw: BTreeMap<String, String> = [
            ("customer_read", "team"),
            ("customer_update", "none"),
            ("tag_assign", "own"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let g = Grants::parse(&raw).expect("grants");
        assert_eq!(g.scope(P::CustomerRead), Some(S::Team));
        assert_eq!(g.scope(P::CustomerUpdate), None);
        assert_eq!(g.scope(P::TagAssign), Some(S::Own));
        let bad: BTreeMap<String, String> = [("fly", "all"), ("customer_read", "galaxy")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let e = Grants::parse(&bad).expect_err("bad");
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["customer_read", "fly"]);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(&p.key()), Some(p));
        }
    }

    #[test]
    fn team_scope_fails_closed_without_team() {
        let a = Actor {
            user_id: 1,
            team: None,
            grants: RolePreset::find("sales_manager").expect("role").grants(),
            fields: crate::privacy::FieldRights::preset("sales_manager"),
        };
        assert!(!a.may(
            P::CustomerRead,
            Ownership {
                owner_id: Some(2),
                team: None
            }
        ));
        assert!(a.may(
            P::CustomerRead,
            Ownership {
                owner_id: Some(1),
                team: None
            }
        ));
    }
}
