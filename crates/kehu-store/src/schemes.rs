//! Versions of classification schemes (`scheme_versions`) and every step
//! taken on them (`scheme_events`). The spec is kept as the JSON text it was
//! written in; the published version of each scheme is what runs. Which
//! steps are allowed is `kehu_core::classify::workflow`'s call, not ours.

use crate::db::{decode_n, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::tags::{decode_tags_stamp, TagsStamp};
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::classify::workflow::{Step, VersionStatus};
use kehu_core::classify::SchemeSpec;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeVersion {
    pub id: i64,
    pub scheme_key: String,
    pub version: i64,
    /// The spec as JSON text.
    pub spec: String,
    pub status: VersionStatus,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Who submitted it last (for the "not your own request" rule).
    pub submitted_by: Option<i64>,
}

impl SchemeVersion {
    /// The stored spec, parsed. It was checked when written, so a failure
    /// here means the row was changed behind kehu's back.
    pub fn parsed_spec(&self) -> Result<SchemeSpec, StoreError> {
        serde_json::from_str(&self.spec).map_err(|e| {
            StoreError::Config(format!(
                "stored spec of {} version {} does not parse: {e}",
                self.scheme_key, self.version
            ))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeEvent {
    pub id: i64,
    pub scheme_key: String,
    pub version: i64,
    pub action: String,
    pub actor: Option<i64>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

const VERSION_COLUMNS: &str = "v.id, v.scheme_key, v.version, v.spec, v.status, v.note, v.created_by, v.created_at, v.updated_at, \
(SELECT e.actor FROM scheme_events e WHERE e.scheme_key = v.scheme_key AND e.version = v.version AND e.action = 'submit' ORDER BY e.id DESC LIMIT 1) AS submitted_by";

fn decode_version(r: &dyn RowGet) -> Result<SchemeVersion, sqlx::Error> {
    let status = r.text("status")?;
    Ok(SchemeVersion {
        id: r.int("id")?,
        scheme_key: r.text("scheme_key")?,
        version: r.int("version")?,
        spec: r.text("spec")?,
        status: VersionStatus::parse(&status).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: "status".into(),
            source: format!("unknown scheme version status {status}").into(),
        })?,
        note: r.opt_text("note")?,
        created_by: r.opt_int("created_by")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        submitted_by: r.opt_int("submitted_by")?,
    })
}

fn decode_event(r: &dyn RowGet) -> Result<SchemeEvent, sqlx::Error> {
    Ok(SchemeEvent {
        id: r.int("id")?,
        scheme_key: r.text("scheme_key")?,
        version: r.int("version")?,
        action: r.text("action")?,
        actor: r.opt_int("actor")?,
        at: r.time("at")?,
        note: r.opt_text("note")?,
    })
}

/// Changes whenever what compiled schemes depend on changes: a workflow step
/// (publish, rollback, …) or a custom field definition, counted by triggers
/// (`catalogue_versions.rules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulesStamp {
    version: i64,
}

/// The one row of both stamps.
const STAMPS_SQL: &str = "SELECT rules, tags FROM catalogue_versions WHERE id = 1";

fn decode_rules_stamp(r: &dyn RowGet) -> Result<RulesStamp, sqlx::Error> {
    Ok(RulesStamp {
        version: r.int("rules")?,
    })
}

impl Store {
    /// One cheap query: compiled schemes are reused while it is unchanged.
    pub async fn rules_stamp(&self) -> Result<RulesStamp, StoreError> {
        Ok(self.catalogue_stamps().await?.0)
    }

    /// The rules stamp and the tags stamp in one query: what a data change
    /// reads before it re-evaluates its customer and applies the tag rules.
    pub async fn catalogue_stamps(&self) -> Result<(RulesStamp, TagsStamp), StoreError> {
        self.db
            .clone()
            .fetch_one(STAMPS_SQL, vec![], |r: &dyn RowGet| {
                Ok((decode_rules_stamp(r)?, decode_tags_stamp(r)?))
            })
            .await
    }

    /// The published version of every scheme, by key.
    pub async fn published_scheme_versions(&self) -> Result<Vec<SchemeVersion>, StoreError> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM scheme_versions v WHERE v.status = 'published' ORDER BY v.scheme_key");
        self.db
            .clone()
            .fetch_all(&sql, vec![], decode_version)
            .await
    }

    /// Every version of every scheme (without drafts' authorship filter), newest first per scheme.
    pub async fn scheme_versions(
        &self,
        scheme_key: Option<&str>,
    ) -> Result<Vec<SchemeVersion>, StoreError> {
        let (filter, a) = match scheme_key {
            Some(k) => ("WHERE v.scheme_key = $1", args![k]),
            None => ("", vec![]),
        };
        let sql = format!("SELECT {VERSION_COLUMNS} FROM scheme_versions v {filter} ORDER BY v.scheme_key, v.version DESC");
        self.db.clone().fetch_all(&sql, a, decode_version).await
    }

    pub async fn scheme_version(
        &self,
        scheme_key: &str,
        version: i64,
    ) -> Result<SchemeVersion, StoreError> {
        version_in(&mut self.db.clone(), scheme_key, version).await
    }

    /// The steps taken on a scheme's versions, oldest first.
    pub async fn scheme_events(&self, scheme_key: &str) -> Result<Vec<SchemeEvent>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, scheme_key, version, action, actor, at, note FROM scheme_events WHERE scheme_key = $1 ORDER BY id",
                args![scheme_key],
                decode_event,
            )
            .await
    }

    /// A new draft: the next version number of the scheme.
    pub async fn create_scheme_draft(
        &self,
        scheme_key: &str,
        spec: &str,
        note: Option<&str>,
        by: i64,
    ) -> Result<SchemeVersion, StoreError> {
        let mut tx = self.db.begin().await?;
        let last = tx
            .fetch_one(
                "SELECT COALESCE(MAX(version), 0) AS n FROM scheme_versions WHERE scheme_key = $1",
                args![scheme_key],
                decode_n,
            )
            .await?;
        let now = Utc::now();
        tx.execute(
            "INSERT INTO scheme_versions (scheme_key, version, spec, status, note, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            args![scheme_key, last + 1, spec, VersionStatus::Draft.as_str(), note, by, now],
        )
        .await?;
        finish_step(tx, scheme_key, last + 1, Step::Create, by, note).await
    }

    /// Replaces a draft's spec (the caller checked the step is allowed at `expected`).
    pub async fn edit_scheme_draft(
        &self,
        current: &SchemeVersion,
        spec: &str,
        note: Option<&str>,
        by: i64,
    ) -> Result<SchemeVersion, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                "UPDATE scheme_versions SET spec = $1, note = $2, status = $3, updated_at = $4 WHERE id = $5 AND status = $6",
                args![spec, note, VersionStatus::Draft.as_str(), Utc::now(), current.id, current.status.as_str()],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        finish_step(
            tx,
            &current.scheme_key,
            current.version,
            Step::Edit,
            by,
            note,
        )
        .await
    }

    /// Moves a version from its status to `to` (submit, withdraw, approve, reject)
    /// and records the step; fails with NotFound if its status changed meanwhile.
    pub async fn move_scheme_version(
        &self,
        current: &SchemeVersion,
        step: Step,
        to: VersionStatus,
        by: i64,
        note: Option<&str>,
    ) -> Result<SchemeVersion, StoreError> {
        let mut tx = self.db.begin().await?;
        set_status(&mut tx, current, to).await?;
        finish_step(tx, &current.scheme_key, current.version, step, by, note).await
    }
}

/// Records the step, commits, and returns the version as it is now.
async fn finish_step(
    mut tx: Tx,
    scheme_key: &str,
    version: i64,
    step: Step,
    by: i64,
    note: Option<&str>,
) -> Result<SchemeVersion, StoreError> {
    record_event(&mut tx, scheme_key, version, step, Some(by), note).await?;
    let v = version_in(&mut tx, scheme_key, version).await?;
    tx.commit().await?;
    Ok(v)
}

async fn version_in(
    exec: &mut impl Exec,
    scheme_key: &str,
    version: i64,
) -> Result<SchemeVersion, StoreError> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM scheme_versions v WHERE v.scheme_key = $1 AND v.version = $2"
    );
    exec.fetch_optional(&sql, args![scheme_key, version], decode_version)
        .await?
        .ok_or(StoreError::NotFound)
}

async fn set_status(
    tx: &mut Tx,
    current: &SchemeVersion,
    to: VersionStatus,
) -> Result<(), StoreError> {
    let n = tx
        .execute(
            "UPDATE scheme_versions SET status = $1, updated_at = $2 WHERE id = $3 AND status = $4",
            args![to.as_str(), Utc::now(), current.id, current.status.as_str()],
        )
        .await?;
    if n == 0 {
        // Someone else moved it first.
        return Err(StoreError::NotFound);
    }
    Ok(())
}

async fn record_event(
    tx: &mut Tx,
    scheme_key: &str,
    version: i64,
    step: Step,
    by: Option<i64>,
    note: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO scheme_events (scheme_key, version, action, actor, at, note) VALUES ($1, $2, $3, $4, $5, $6)",
        args![scheme_key, version, step.as_str(), by, Utc::now(), note],
    )
    .await?;
    Ok(())
}

/// Publishes `current` (publish or rollback) inside a classification run's
/// transaction: the version that was published is retired, so exactly one
/// is published per scheme, and the classes it gives commit with it.
pub async fn publish_in(
    tx: &mut Tx,
    current: &SchemeVersion,
    step: Step,
    by: i64,
    note: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE scheme_versions SET status = $1, updated_at = $2 WHERE scheme_key = $3 AND status = $4",
        args![
            VersionStatus::Retired.as_str(),
            Utc::now(),
            current.scheme_key.as_str(),
            VersionStatus::Published.as_str()
        ],
    )
    .await?;
    set_status(tx, current, VersionStatus::Published).await?;
    record_event(
        tx,
        &current.scheme_key,
        current.version,
        step,
        Some(by),
        note,
    )
    .await
}

/// Seeds version 1 of each preset scheme as published (migration 5).
pub(crate) async fn seed_preset_versions(tx: &mut Tx) -> Result<(), StoreError> {
    let now = Utc::now();
    for spec in kehu_core::classify::presets::preset_specs() {
        let text =
            serde_json::to_string_pretty(spec).map_err(|e| StoreError::Config(e.to_string()))?;
        let exists = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM scheme_versions WHERE scheme_key = $1",
                args![spec.key.as_str()],
                decode_n,
            )
            .await?;
        if exists > 0 {
            continue;
        }
        tx.execute(
            "INSERT INTO scheme_versions (scheme_key, version, spec, status, note, created_by, created_at, updated_at) VALUES ($1, 1, $2, $3, $4, NULL, $5, $5)",
            args![spec.key.as_str(), text, VersionStatus::Published.as_str(), "预置方案 preset", now],
        )
        .await?;
        record_event(
            tx,
            &spec.key,
            1,
            Step::Publish,
            None,
            Some("预置方案 preset"),
        )
        .await?;
    }
    Ok(())
}
