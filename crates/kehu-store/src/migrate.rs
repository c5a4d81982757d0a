//! Embedded migrations, one folder per backend; the pending ones are applied
//! in order inside one transaction. A migration may also add data (its
//! [`DataStep`]). Seeds the preset roles and industries.

use crate::args;
use crate::db::{decode_n, Backend, Db, Exec, RowGet, Tx};
use crate::error::StoreError;
use kehu_core::industry::PRESET_INDUSTRIES;
use kehu_core::role::{Permission, ROLE_PRESETS};

struct Migration {
    version: i64,
    name: &'static str,
    /// Schema changes; empty for a migration that only adds data.
    sqlite: &'static str,
    postgres: &'static str,
    data: DataStep,
}

/// Data a migration adds once, after its SQL, in the same transaction.
#[derive(Clone, Copy)]
enum DataStep {
    None,
    /// The custom fields the preset classification schemes read (意向阶段,
    /// 预计成交日期, 需求类型); a field whose key exists already is kept, and an
    /// admin may change or delete them afterwards.
    PresetCustomFields,
    /// Version 1 of each preset scheme, published; admins get the right to
    /// edit and publish rules (`rule_edit`) if their role is still the preset.
    SchemeVersions,
    /// Every existing customer's fact digest, from its records.
    FactDigests,
    /// The preset tag catalogue and tag settings; tag rights for admins
    /// whose role is still the preset.
    PresetTags,
    /// Existing customers' `missing_fields` (待跟进), by the core's rule.
    FollowUpGaps,
    /// Existing customers' `name_key`.
    NameKeys,
    /// Existing customers' `name_sound`.
    NameSounds,
    /// The right to manage campaigns for admins and marketing whose roles
    /// are still the presets.
    CampaignRights,
    /// design.md's strategies for the 价值分层 classes.
    PresetStrategies,
    /// The tag rights split out of `tag_manage` (assign, verify, merge),
    /// given to the roles still as preset, in their preset scopes.
    TagRights,
    /// The preset rights over personal fields for the roles still as preset.
    FieldRights,
    /// The right to handle data-subject requests, for admins still as preset.
    PersonalDataRights,
    /// Rights over the customer's business fields (`customer.*`) for every
    /// role that has none yet: the presets for built-in roles; for an
    /// admin's own roles what they had before the rights existed — edit
    /// where the role creates or changes customers, else clear.
    BusinessFieldRights,
    /// Rights over the fields of contacts, orders and interactions
    /// (`contact.title`, `order.amount`, …) for every role without them:
    /// the presets for built-in roles; for an admin's own roles what they
    /// had before — edit where the role writes that kind of record, else
    /// clear.
    RecordFieldRights,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 2,
        name: "job_runs",
        sqlite: include_str!("../migrations/sqlite/0002_job_runs.sql"),
        postgres: include_str!("../migrations/postgres/0002_job_runs.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 3,
        name: "classification_fields",
        sqlite: "",
        postgres: "",
        data: DataStep::PresetCustomFields,
    },
    Migration {
        version: 4,
        name: "customer_classes",
        sqlite: include_str!("../migrations/sqlite/0004_customer_classes.sql"),
        postgres: include_str!("../migrations/postgres/0004_customer_classes.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 5,
        name: "overrides_and_versions",
        sqlite: include_str!("../migrations/sqlite/0005_overrides_and_versions.sql"),
        postgres: include_str!("../migrations/postgres/0005_overrides_and_versions.sql"),
        data: DataStep::SchemeVersions,
    },
    Migration {
        version: 6,
        name: "fact_digests",
        sqlite: include_str!("../migrations/sqlite/0006_fact_digests.sql"),
        postgres: include_str!("../migrations/postgres/0006_fact_digests.sql"),
        data: DataStep::FactDigests,
    },
    Migration {
        version: 7,
        name: "change_feed",
        sqlite: include_str!("../migrations/sqlite/0007_change_feed.sql"),
        postgres: include_str!("../migrations/postgres/0007_change_feed.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 8,
        name: "tags",
        sqlite: include_str!("../migrations/sqlite/0008_tags.sql"),
        postgres: include_str!("../migrations/postgres/0008_tags.sql"),
        data: DataStep::PresetTags,
    },
    Migration {
        version: 9,
        name: "imports",
        sqlite: include_str!("../migrations/sqlite/0009_imports.sql"),
        postgres: include_str!("../migrations/postgres/0009_imports.sql"),
        data: DataStep::FollowUpGaps,
    },
    Migration {
        version: 10,
        name: "name_keys",
        sqlite: include_str!("../migrations/sqlite/0010_name_keys.sql"),
        postgres: include_str!("../migrations/postgres/0010_name_keys.sql"),
        data: DataStep::NameKeys,
    },
    Migration {
        version: 11,
        name: "merges",
        sqlite: include_str!("../migrations/sqlite/0011_merges.sql"),
        postgres: include_str!("../migrations/postgres/0011_merges.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 12,
        name: "anomalies",
        sqlite: include_str!("../migrations/sqlite/0012_anomalies.sql"),
        postgres: include_str!("../migrations/postgres/0012_anomalies.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 13,
        name: "intake",
        sqlite: include_str!("../migrations/sqlite/0013_intake.sql"),
        postgres: include_str!("../migrations/postgres/0013_intake.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 14,
        name: "import_mappings",
        sqlite: include_str!("../migrations/sqlite/0014_import_mappings.sql"),
        postgres: include_str!("../migrations/postgres/0014_import_mappings.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 15,
        name: "contact_phones",
        sqlite: include_str!("../migrations/sqlite/0015_contact_phones.sql"),
        postgres: include_str!("../migrations/postgres/0015_contact_phones.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 16,
        name: "audit_log",
        sqlite: include_str!("../migrations/sqlite/0016_audit_log.sql"),
        postgres: include_str!("../migrations/postgres/0016_audit_log.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 17,
        name: "tasks",
        sqlite: include_str!("../migrations/sqlite/0017_tasks.sql"),
        postgres: include_str!("../migrations/postgres/0017_tasks.sql"),
        data: DataStep::PresetStrategies,
    },
    Migration {
        version: 18,
        name: "predictions",
        sqlite: include_str!("../migrations/sqlite/0018_predictions.sql"),
        postgres: include_str!("../migrations/postgres/0018_predictions.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 19,
        name: "campaigns",
        sqlite: include_str!("../migrations/sqlite/0019_campaigns.sql"),
        postgres: include_str!("../migrations/postgres/0019_campaigns.sql"),
        data: DataStep::CampaignRights,
    },
    Migration {
        version: 20,
        name: "report_schedules",
        sqlite: include_str!("../migrations/sqlite/0020_report_schedules.sql"),
        postgres: include_str!("../migrations/postgres/0020_report_schedules.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 21,
        name: "deliveries",
        sqlite: include_str!("../migrations/sqlite/0021_deliveries.sql"),
        postgres: include_str!("../migrations/postgres/0021_deliveries.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 22,
        name: "tag_rights",
        sqlite: "",
        postgres: "",
        data: DataStep::TagRights,
    },
    Migration {
        version: 23,
        name: "field_rights",
        sqlite: include_str!("../migrations/sqlite/0023_field_rights.sql"),
        postgres: include_str!("../migrations/postgres/0023_field_rights.sql"),
        data: DataStep::FieldRights,
    },
    Migration {
        version: 24,
        name: "retention",
        sqlite: include_str!("../migrations/sqlite/0024_retention.sql"),
        postgres: include_str!("../migrations/postgres/0024_retention.sql"),
        data: DataStep::PersonalDataRights,
    },
    Migration {
        version: 25,
        name: "sealed_contacts",
        sqlite: include_str!("../migrations/sqlite/0025_sealed_contacts.sql"),
        postgres: include_str!("../migrations/postgres/0025_sealed_contacts.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 26,
        name: "report_format",
        sqlite: include_str!("../migrations/sqlite/0026_report_format.sql"),
        postgres: include_str!("../migrations/postgres/0026_report_format.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 27,
        name: "name_sounds",
        sqlite: include_str!("../migrations/sqlite/0027_name_sounds.sql"),
        postgres: include_str!("../migrations/postgres/0027_name_sounds.sql"),
        data: DataStep::NameSounds,
    },
    Migration {
        version: 28,
        name: "task_keys",
        // PostgreSQL only (see its file).
        sqlite: "",
        postgres: include_str!("../migrations/postgres/0028_task_keys.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 29,
        name: "contact_merges",
        sqlite: include_str!("../migrations/sqlite/0029_contact_merges.sql"),
        postgres: include_str!("../migrations/postgres/0029_contact_merges.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 30,
        name: "rule_tags",
        sqlite: include_str!("../migrations/sqlite/0030_rule_tags.sql"),
        postgres: include_str!("../migrations/postgres/0030_rule_tags.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 31,
        name: "schedule_kinds",
        sqlite: include_str!("../migrations/sqlite/0031_schedule_kinds.sql"),
        postgres: include_str!("../migrations/postgres/0031_schedule_kinds.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 32,
        name: "business_field_rights",
        sqlite: "",
        postgres: "",
        data: DataStep::BusinessFieldRights,
    },
    Migration {
        version: 33,
        name: "record_field_rights",
        sqlite: "",
        postgres: "",
        data: DataStep::RecordFieldRights,
    },
    Migration {
        version: 34,
        name: "name_key_bytes",
        // PostgreSQL only: SQLite's name_key index compares bytes already.
        sqlite: "",
        postgres: include_str!("../migrations/postgres/0034_name_key_bytes.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 35,
        name: "import_changes_record",
        sqlite: include_str!("../migrations/sqlite/0035_import_changes_record.sql"),
        postgres: include_str!("../migrations/postgres/0035_import_changes_record.sql"),
        data: DataStep::None,
    },
    Migration {
        version: 36,
        name: "catalogue_versions",
        sqlite: include_str!("../migrations/sqlite/0036_catalogue_versions.sql"),
        postgres: include_str!("../migrations/postgres/0036_catalogue_versions.sql"),
        data: DataStep::None,
    },
];

/// Applies every migration not yet applied; returns the versions applied now.
pub async fn migrate(db: &Db) -> Result<Vec<i64>, StoreError> {
    let mut applied_now = Vec::new();
    let mut tx = db.begin().await?;
    if tx.backend() == Backend::Postgres {
        // Several servers may start at once: one migrates, the others wait.
        tx.execute("SELECT pg_advisory_xact_lock(7071001)", vec![])
            .await?;
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
        vec![],
    )
    .await?;
    for m in MIGRATIONS {
        let done = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1",
                args![m.version],
                decode_n,
            )
            .await?;
        if done > 0 {
            continue;
        }
        let sql = match tx.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        if !sql.is_empty() {
            Db::run_script(&mut tx, sql).await?;
        }
        add_data(&mut tx, m.data).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            args![m.version, m.name, chrono::Utc::now().to_rfc3339()],
        )
        .await?;
        applied_now.push(m.version);
    }
    seed(&mut tx).await?;
    tx.commit().await?;
    Ok(applied_now)
}

async fn add_data(tx: &mut Tx, step: DataStep) -> Result<(), StoreError> {
    match step {
        DataStep::None => Ok(()),
        DataStep::PresetCustomFields => {
            let existing = tx
                .fetch_all(
                    "SELECT key FROM custom_field_defs",
                    vec![],
                    |r: &dyn RowGet| r.text("key"),
                )
                .await?;
            for d in kehu_core::classify::presets::preset_custom_fields() {
                if !existing.contains(&d.key) {
                    crate::custom_fields::insert_custom_field(tx, &d).await?;
                }
            }
            Ok(())
        }
        DataStep::FactDigests => crate::facts::rewrite_all_fact_digests(tx).await.map(drop),
        DataStep::PresetTags => crate::tags::seed_preset_tags(tx).await,
        DataStep::FollowUpGaps => crate::customers::fill_missing_fields(tx).await,
        DataStep::NameKeys => {
            crate::customers::fill_name_keys(tx, "name_key", crate::customers::name_key).await
        }
        DataStep::NameSounds => {
            crate::customers::fill_name_keys(tx, "name_sound", crate::customers::name_sound).await
        }
        DataStep::PresetStrategies => crate::tasks::seed_preset_strategies(tx).await,
        DataStep::SchemeVersions => {
            crate::schemes::seed_preset_versions(tx).await?;
            grant_preset(tx, "admin", kehu_core::role::Permission::RuleEdit).await
        }
        DataStep::CampaignRights => {
            for role in ["admin", "marketing"] {
                grant_preset(tx, role, kehu_core::role::Permission::CampaignManage).await?;
            }
            Ok(())
        }
        DataStep::TagRights => {
            use kehu_core::role::Permission as P;
            for preset in ROLE_PRESETS {
                for &(p, scope) in preset.grants {
                    if matches!(p, P::TagAssign | P::TagVerify | P::TagMerge) {
                        grant_preset_in(tx, preset.key, p, scope).await?;
                    }
                }
            }
            Ok(())
        }
        DataStep::PersonalDataRights => {
            grant_preset(tx, "admin", kehu_core::role::Permission::PersonalData).await
        }
        DataStep::BusinessFieldRights => {
            add_field_rights(
                tx,
                &[(kehu_core::privacy::CUSTOMER_FIELDS, &writes_customers)],
            )
            .await
        }
        DataStep::RecordFieldRights => {
            use kehu_core::privacy::{
                CONTACT_RECORD_FIELDS, INTERACTION_RECORD_FIELDS, ORDER_RECORD_FIELDS,
            };
            let records = |g: &kehu_core::role::Grants| g.has(Permission::RecordWrite);
            let interactions = |g: &kehu_core::role::Grants| {
                g.has(Permission::InteractionWrite) || g.has(Permission::ServiceRecordWrite)
            };
            add_field_rights(
                tx,
                &[
                    (CONTACT_RECORD_FIELDS, &records),
                    (ORDER_RECORD_FIELDS, &records),
                    (INTERACTION_RECORD_FIELDS, &interactions),
                ],
            )
            .await
        }
        DataStep::FieldRights => {
            for preset in ROLE_PRESETS {
                let rights = field_rights_json(preset.key)?;
                tx.execute(
                    "UPDATE roles SET field_rights = $1 WHERE key = $2 AND builtin = $3",
                    args![rights, preset.key, true],
                )
                .await?;
            }
            Ok(())
        }
    }
}

fn writes_customers(g: &kehu_core::role::Grants) -> bool {
    g.has(Permission::CustomerCreate) || g.has(Permission::CustomerUpdate)
}

/// Fields whose rights a migration adds, with whether an admin's own role
/// wrote them before (from its grants).
type NewFieldRights<'a> = (
    &'static [kehu_core::privacy::BusinessField],
    &'a dyn Fn(&kehu_core::role::Grants) -> bool,
);

/// See [`DataStep::BusinessFieldRights`] and [`DataStep::RecordFieldRights`].
async fn add_field_rights(tx: &mut Tx, added: &[NewFieldRights<'_>]) -> Result<(), StoreError> {
    use kehu_core::privacy::{FieldAccess, FieldRights};
    use kehu_core::role::Grants;
    let roles = tx
        .fetch_all(
            "SELECT key, builtin, grants, field_rights FROM roles",
            vec![],
            |r: &dyn RowGet| {
                Ok((
                    r.text("key")?,
                    r.boolean("builtin")?,
                    r.json("grants")?,
                    r.json("field_rights")?,
                ))
            },
        )
        .await?;
    for (key, builtin, grants, rights) in roles {
        let bad = |e: serde_json::Error| StoreError::Config(format!("{key} role: {e}"));
        let grants: Grants = serde_json::from_value(grants).map_err(bad)?;
        let mut rights: FieldRights = serde_json::from_value(rights).map_err(bad)?;
        for (fields, writes) in added {
            let writes = writes(&grants);
            for f in fields.iter() {
                let access = match (builtin, writes) {
                    (true, _) => FieldRights::preset_business(&key, f.key),
                    (false, true) => FieldAccess::Edit,
                    (false, false) => FieldAccess::Clear,
                };
                rights.0.entry(f.key.to_string()).or_insert(access);
            }
        }
        let rights = serde_json::to_value(rights).map_err(bad)?;
        tx.execute(
            "UPDATE roles SET field_rights = $1 WHERE key = $2",
            args![rights, key],
        )
        .await?;
    }
    Ok(())
}

fn field_rights_json(role: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(kehu_core::privacy::FieldRights::preset(role))
        .map_err(|e| StoreError::Config(e.to_string()))
}

/// Adds a right (over everyone) to a built-in role that exists already;
/// a fresh database gets it from the presets.
async fn grant_preset(
    tx: &mut Tx,
    role: &str,
    permission: kehu_core::role::Permission,
) -> Result<(), StoreError> {
    grant_preset_in(tx, role, permission, kehu_core::role::Scope::All).await
}

/// Adds a right in `scope` to a built-in role that exists already.
async fn grant_preset_in(
    tx: &mut Tx,
    role: &str,
    permission: kehu_core::role::Permission,
    scope: kehu_core::role::Scope,
) -> Result<(), StoreError> {
    let found = tx
        .fetch_optional(
            "SELECT grants FROM roles WHERE key = $1 AND builtin = $2",
            args![role, true],
            |r: &dyn RowGet| r.json("grants"),
        )
        .await?;
    if let Some(grants) = found {
        let mut grants: kehu_core::role::Grants = serde_json::from_value(grants)
            .map_err(|e| StoreError::Config(format!("{role} role grants: {e}")))?;
        grants.0.insert(permission, scope);
        let grants = serde_json::to_value(grants).map_err(|e| StoreError::Config(e.to_string()))?;
        tx.execute(
            "UPDATE roles SET grants = $1 WHERE key = $2",
            args![grants, role],
        )
        .await?;
    }
    Ok(())
}

/// Preset roles (missing ones only: an admin's edits are kept) and, on an
/// empty list, the preset industries.
async fn seed(tx: &mut Tx) -> Result<(), StoreError> {
    for r in ROLE_PRESETS {
        let grants =
            serde_json::to_value(r.grants()).map_err(|e| StoreError::Config(e.to_string()))?;
        tx.execute(
            "INSERT INTO roles (key, name_zh, name_en, grants, field_rights, builtin) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING",
            args![r.key, r.name_zh, r.name_en, grants, field_rights_json(r.key)?, true],
        )
        .await?;
    }
    let industries = tx
        .fetch_one("SELECT COUNT(*) AS n FROM industries", vec![], decode_n)
        .await?;
    if industries == 0 {
        for (i, name) in PRESET_INDUSTRIES.iter().enumerate() {
            tx.execute(
                "INSERT INTO industries (name, position) VALUES ($1, $2)",
                args![*name, i as i64],
            )
            .await?;
        }
    }
    Ok(())
}
