//! Embedded migrations, one folder per backend, applied in order inside one
//! transaction each. Seeds the preset roles and industries.

use crate::args;
use crate::db::{decode_n, Backend, Db, Exec, Tx};
use crate::error::StoreError;
use kehu_core::industry::PRESET_INDUSTRIES;
use kehu_core::role::ROLE_PRESETS;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "job_runs",
        sqlite: include_str!("../migrations/sqlite/0002_job_runs.sql"),
        postgres: include_str!("../migrations/postgres/0002_job_runs.sql"),
    },
    // No schema change: seeds the custom fields the preset classification
    // schemes read (see `seed_classification_fields`).
    Migration {
        version: 3,
        name: "classification_fields",
        sqlite: "SELECT 1",
        postgres: "SELECT 1",
    },
    Migration {
        version: 4,
        name: "customer_classes",
        sqlite: include_str!("../migrations/sqlite/0004_customer_classes.sql"),
        postgres: include_str!("../migrations/postgres/0004_customer_classes.sql"),
    },
];

/// The custom fields of the preset schemes (意向阶段, 预计成交日期, 需求类型),
/// created once; an admin may change or delete them afterwards.
const CLASSIFICATION_FIELDS_VERSION: i64 = 3;

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
        Db::run_script(&mut tx, sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            args![m.version, m.name, chrono::Utc::now().to_rfc3339()],
        )
        .await?;
        applied_now.push(m.version);
    }
    if applied_now.contains(&CLASSIFICATION_FIELDS_VERSION) {
        for d in kehu_core::classify::presets::preset_custom_fields() {
            match crate::custom_fields::insert_custom_field(
                &mut tx,
                &d,
                "ON CONFLICT (key) DO NOTHING",
            )
            .await
            {
                // NotFound: a field with that key existed already and is kept.
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    seed(&mut tx).await?;
    tx.commit().await?;
    Ok(applied_now)
}

/// Preset roles (missing ones only: an admin's edits are kept) and, on an
/// empty list, the preset industries.
async fn seed(tx: &mut Tx) -> Result<(), StoreError> {
    for r in ROLE_PRESETS {
        let grants =
            serde_json::to_value(r.grants()).map_err(|e| StoreError::Config(e.to_string()))?;
        tx.execute(
            "INSERT INTO roles (key, name_zh, name_en, grants, builtin) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING",
            args![r.key, r.name_zh, r.name_en, grants, true],
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
