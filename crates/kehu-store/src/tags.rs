//! Tags (`tags`), who carries them (`customer_tags` by hand or confirmed,
//! `rule_tags` by a rule tag's rule), every change to either (`tag_history`;
//! a rule run over more than a thousand customers as one `rule_applied`
//! entry plus a `rule_tag_changes` row per customer), the tag settings and
//! saved segments.
//!
//! *Invariant*: each catalogue change is checked against the catalogue as
//! read inside its own transaction (names, synonyms, depth, cycles), and
//! every assignment change appends to the change feed (kind `tags`) in the
//! same transaction, so an in-memory index that follows the feed never
//! misses one.

use crate::bulk::{copy_in, CopyBuf};
use crate::bulk_read::Read;
use crate::db::{id_marks, value_groups, Arg, Backend, Exec, RowGet, Tx, IDS_PER_QUERY};
use crate::error::StoreError;
use crate::feed::{self, Changed, FeedKind, FeedSpan};
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::tags::{
    name_key, parse_tag_name, preset_catalogue, Catalogue, Synonyms, TagMode, TagNode,
    DEFAULT_MAX_MANUAL_TAGS,
};
use kehu_core::{Reason, ValidationErrors};
use serde_json::{json, Value};

/// A tag of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub mode: TagMode,
    pub description: Option<String>,
    /// A rule or hybrid tag's condition, stored form (tags as `#ID`).
    pub rule: Option<String>,
    pub retired_at: Option<DateTime<Utc>>,
    pub merged_into: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TagRecord {
    /// The rule that decides who carries this tag: a live, not retired
    /// rule or hybrid tag's.
    pub fn active_rule(&self) -> Option<&str> {
        let active =
            self.mode != TagMode::Manual && self.merged_into.is_none() && self.retired_at.is_none();
        self.rule.as_deref().filter(|_| active)
    }

    pub fn node(&self) -> TagNode {
        TagNode {
            id: self.id,
            parent_id: self.parent_id,
            name: self.name.clone(),
            mode: self.mode,
            retired: self.retired_at.is_some(),
            merged_into: self.merged_into,
        }
    }
}

/// A new tag as typed (the name is checked here, against the catalogue).
#[derive(Debug, Clone)]
pub struct NewTag {
    pub parent_id: Option<i64>,
    pub name: String,
    pub mode: TagMode,
    pub description: Option<String>,
    /// Checked and in stored form (the caller compiles it).
    pub rule: Option<String>,
}

/// A change to a tag; `None` leaves a part as it is.
#[derive(Debug, Clone, Default)]
pub struct TagChange {
    pub name: Option<String>,
    /// `Some(None)`: make it a top-level dimension.
    pub parent_id: Option<Option<i64>>,
    pub mode: Option<TagMode>,
    pub description: Option<Option<String>>,
    /// Checked and in stored form; `Some(None)` removes the rule.
    pub rule: Option<Option<String>>,
}

/// A tag on a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub customer_id: i64,
    pub tag_id: i64,
    pub source: String,
    pub assigned_by: Option<i64>,
    pub assigned_at: DateTime<Utc>,
}

/// One entry of the tag history.
#[derive(Debug, Clone, PartialEq)]
pub struct TagEvent {
    pub id: i64,
    pub tag_id: i64,
    pub customer_id: Option<i64>,
    pub action: String,
    pub detail: Value,
    pub by_user: Option<i64>,
    pub at: DateTime<Utc>,
}

/// The `tag_id` of history entries about the settings (no tag has it).
pub const SETTINGS_TAG: i64 = 0;

/// The tag system's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSettings {
    /// Hand-assigned (manual) tags a customer may carry at most.
    pub max_manual_tags: u32,
    pub synonyms: Synonyms,
}

impl Default for TagSettings {
    fn default() -> Self {
        TagSettings {
            max_manual_tags: DEFAULT_MAX_MANUAL_TAGS,
            synonyms: Synonyms::preset(),
        }
    }
}

const TAG_COLUMNS: &str = "t.id, t.parent_id, t.name, t.mode, t.description, t.rule, t.retired_at, t.merged_into, t.version, t.created_at, t.updated_at";

fn decode_tag(r: &dyn RowGet) -> Result<TagRecord, sqlx::Error> {
    let mode = r.text("mode")?;
    Ok(TagRecord {
        id: r.int("id")?,
        parent_id: r.opt_int("parent_id")?,
        name: r.text("name")?,
        mode: TagMode::parse(&mode)
            .map_err(|_| sqlx::Error::Decode(format!("tag mode {mode}").into()))?,
        description: r.opt_text("description")?,
        rule: r.opt_text("rule")?,
        retired_at: r.opt_time("retired_at")?,
        merged_into: r.opt_int("merged_into")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn decode_assignment(r: &dyn RowGet) -> Result<Assignment, sqlx::Error> {
    Ok(Assignment {
        customer_id: r.int("customer_id")?,
        tag_id: r.int("tag_id")?,
        source: r.text("source")?,
        assigned_by: r.opt_int("assigned_by")?,
        assigned_at: r.time("assigned_at")?,
    })
}

fn invalid(field: &str, reason: Reason) -> StoreError {
    StoreError::Invalid(ValidationErrors::single(field, reason))
}

fn rule(field: &str, code: &'static str, zh: String, en: String) -> StoreError {
    invalid(field, Reason::Rule { code, zh, en })
}

async fn read_tags(exec: &mut impl Exec, only: Option<i64>) -> Result<Vec<TagRecord>, StoreError> {
    let filter = if only.is_some() {
        "WHERE t.id = $1"
    } else {
        ""
    };
    let sql = format!("SELECT {TAG_COLUMNS} FROM tags t {filter} ORDER BY t.id");
    let a = only.map(|id| args![id]).unwrap_or_default();
    exec.fetch_all(&sql, a, decode_tag).await
}

async fn catalogue_in(exec: &mut impl Exec) -> Result<Catalogue, StoreError> {
    Ok(catalogue_of(&read_tags(exec, None).await?))
}

/// The tree of tag records already read.
pub fn catalogue_of(records: &[TagRecord]) -> Catalogue {
    Catalogue::new(records.iter().map(TagRecord::node))
}

async fn settings_in(exec: &mut impl Exec) -> Result<TagSettings, StoreError> {
    let rows = exec
        .fetch_all(
            "SELECT key, value FROM tag_settings",
            vec![],
            |r: &dyn RowGet| Ok((r.text("key")?, r.json("value")?)),
        )
        .await?;
    let mut s = TagSettings::default();
    for (key, value) in rows {
        match key.as_str() {
            "max_manual_tags" => {
                s.max_manual_tags = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        StoreError::Config(format!("tag setting max_manual_tags: {value}"))
                    })?;
            }
            "synonyms" => {
                s.synonyms = serde_json::from_value(value)
                    .map_err(|e| StoreError::Config(format!("tag synonyms: {e}")))?
            }
            _ => {}
        }
    }
    Ok(s)
}

async fn history(
    exec: &mut impl Exec,
    tag_id: i64,
    customer_id: Option<i64>,
    action: &str,
    detail: Value,
    by: Option<i64>,
) -> Result<(), StoreError> {
    exec.execute(
        "INSERT INTO tag_history (tag_id, customer_id, action, detail, by_user, at) VALUES ($1, $2, $3, $4, $5, $6)",
        args![tag_id, customer_id, action, detail, by, Utc::now()],
    )
    .await
    .map(drop)
}

/// A tag to insert (checked by the caller).
struct TagRow<'a> {
    parent_id: Option<i64>,
    name: &'a str,
    mode: TagMode,
    description: Option<&'a str>,
    rule: Option<&'a str>,
}

async fn insert_tag(tx: &mut Tx, t: TagRow<'_>, by: Option<i64>) -> Result<i64, StoreError> {
    let now = Utc::now();
    let id = tx
        .fetch_one(
            "INSERT INTO tags (parent_id, name, name_key, mode, description, rule, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            args![t.parent_id, t.name, name_key(t.name), t.mode.as_str(), t.description, t.rule, by, now],
            |r: &dyn RowGet| r.int("id"),
        )
        .await?;
    let detail =
        json!({"name": t.name, "parent_id": t.parent_id, "mode": t.mode.as_str(), "rule": t.rule});
    history(tx, id, None, "created", detail, by).await?;
    Ok(id)
}

/// The preset catalogue and default settings (migration 8).
pub(crate) async fn seed_preset_tags(tx: &mut Tx) -> Result<(), StoreError> {
    let mut ids: Vec<(Vec<&str>, i64)> = Vec::new();
    for preset in preset_catalogue() {
        let path = preset.path;
        let parent = ids
            .iter()
            .find(|(p, _)| *p == path[..path.len() - 1])
            .map(|(_, id)| *id);
        let row = TagRow {
            parent_id: parent,
            name: path[path.len() - 1],
            mode: preset.mode,
            description: None,
            rule: preset.rule,
        };
        let id = insert_tag(tx, row, None).await?;
        ids.push((path, id));
    }
    let defaults = TagSettings::default();
    write_settings(tx, &defaults, None).await
}

async fn write_settings(tx: &mut Tx, s: &TagSettings, by: Option<i64>) -> Result<(), StoreError> {
    let synonyms =
        serde_json::to_value(&s.synonyms).map_err(|e| StoreError::Config(e.to_string()))?;
    for (key, value) in [
        ("max_manual_tags", json!(s.max_manual_tags)),
        ("synonyms", synonyms),
    ] {
        tx.execute(
            "INSERT INTO tag_settings (key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            args![key, value, by, Utc::now()],
        )
        .await?;
    }
    Ok(())
}

/// Commits and returns tag `id` as it now is.
async fn commit_returning(mut tx: Tx, id: i64) -> Result<TagRecord, StoreError> {
    let tag = read_tags(&mut tx, Some(id))
        .await?
        .pop()
        .ok_or(StoreError::NotFound)?;
    tx.commit().await?;
    Ok(tag)
}

/// A live tag of the catalogue or NotFound.
fn live(c: &Catalogue, id: i64) -> Result<&TagNode, StoreError> {
    c.get(id)
        .filter(|n| n.merged_into.is_none())
        .ok_or(StoreError::NotFound)
}

/// Changes whenever the catalogue does: a trigger counts every insert,
/// update and delete of tags (`catalogue_versions.tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagsStamp {
    version: i64,
}

pub(crate) fn decode_tags_stamp(r: &dyn RowGet) -> Result<TagsStamp, sqlx::Error> {
    Ok(TagsStamp {
        version: r.int("tags")?,
    })
}

/// Assignments added or taken off from the instant bound as `since` on
/// (`tag_id, customer_id, action, at, id`): the history's own rows and a
/// large rule run's customers under its `rule_applied` entry (one key
/// range per run).
fn assignment_changes_since(since: &str) -> String {
    format!(
        "SELECT tag_id, customer_id, action, at, id FROM tag_history \
         WHERE customer_id IS NOT NULL AND action IN ('assigned', 'removed') AND at >= {since} \
         UNION ALL SELECT h.tag_id, r.customer_id, CASE WHEN r.added THEN 'assigned' ELSE 'removed' END, h.at, h.id \
         FROM tag_history h JOIN rule_tag_changes r ON r.event_id = h.id WHERE h.action = 'rule_applied' AND h.at >= {since}"
    )
}

/// [`Store::tag_pairs_in`] on `exec`.
pub(crate) async fn tag_pairs_on(
    exec: &mut impl Exec,
    ids: &[i64],
) -> Result<Vec<(i64, i64)>, StoreError> {
    let mut out = Vec::new();
    for part in ids.chunks(IDS_PER_QUERY) {
        let marks = id_marks(part.len());
        let sql = format!(
            "SELECT customer_id, tag_id FROM customer_tags WHERE customer_id IN ({marks}) \
             UNION ALL SELECT customer_id, tag_id FROM rule_tags WHERE {RULE_TAGS_OF_CUSTOMER} AND customer_id IN ({marks})"
        );
        let a: Vec<Arg> = part.iter().map(|&id| Arg::from(id)).collect();
        out.extend(
            exec.fetch_all(&sql, a, |r: &dyn RowGet| {
                Ok((r.int("customer_id")?, r.int("tag_id")?))
            })
            .await?,
        );
    }
    Ok(out)
}

impl Store {
    /// The whole catalogue (merged tags too), by id.
    pub async fn tags(&self) -> Result<Vec<TagRecord>, StoreError> {
        read_tags(&mut self.db.clone(), None).await
    }

    pub async fn tag(&self, id: i64) -> Result<TagRecord, StoreError> {
        read_tags(&mut self.db.clone(), Some(id))
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// The catalogue as a tree (for names, paths and references).
    pub async fn tag_catalogue(&self) -> Result<Catalogue, StoreError> {
        catalogue_in(&mut self.db.clone()).await
    }

    pub async fn tag_settings(&self) -> Result<TagSettings, StoreError> {
        settings_in(&mut self.db.clone()).await
    }

    /// Replaces the settings. A lower limit applies to new assignments;
    /// customers above it keep what they have.
    pub async fn set_tag_settings(&self, s: &TagSettings, by: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let before = settings_in(&mut tx).await?;
        write_settings(&mut tx, s, Some(by)).await?;
        if before != *s {
            let shown = |t: &TagSettings| json!({"max_manual_tags": t.max_manual_tags, "synonyms": t.synonyms});
            let detail = json!({"from": shown(&before), "to": shown(s)});
            history(
                &mut tx,
                SETTINGS_TAG,
                None,
                "settings_changed",
                detail,
                Some(by),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Adds a tag: a valid name, unique among its siblings and no synonym
    /// of one, under a live parent, at most four levels deep.
    pub async fn create_tag(&self, t: &NewTag, by: i64) -> Result<TagRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let c = catalogue_in(&mut tx).await?;
        let settings = settings_in(&mut tx).await?;
        let name = parse_tag_name(&t.name).map_err(|r| invalid("name", r))?;
        c.check_parent(None, t.parent_id)
            .map_err(|r| invalid("parent_id", r))?;
        c.check_name(t.parent_id, &name, None, &settings.synonyms)
            .map_err(|r| invalid("name", r))?;
        let row = TagRow {
            parent_id: t.parent_id,
            name: &name,
            mode: t.mode,
            description: t.description.as_deref(),
            rule: t.rule.as_deref(),
        };
        let id = insert_tag(&mut tx, row, Some(by)).await?;
        commit_returning(tx, id).await
    }

    /// Renames, moves, re-describes or changes the mode of a tag, at
    /// `expected` version. Saved segments refer to tags by id and keep working.
    pub async fn update_tag(
        &self,
        id: i64,
        expected: i64,
        change: &TagChange,
        by: i64,
    ) -> Result<TagRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        crate::db::check_version(&mut tx, "tags", id, expected).await?;
        let c = catalogue_in(&mut tx).await?;
        let settings = settings_in(&mut tx).await?;
        let current = live(&c, id)?.clone();
        let parent = change.parent_id.unwrap_or(current.parent_id);
        let name = match &change.name {
            Some(n) => parse_tag_name(n).map_err(|r| invalid("name", r))?,
            None => current.name.clone(),
        };
        if parent != current.parent_id {
            c.check_parent(Some(id), parent)
                .map_err(|r| invalid("parent_id", r))?;
        }
        if parent != current.parent_id || name != current.name {
            c.check_name(parent, &name, Some(id), &settings.synonyms)
                .map_err(|r| invalid("name", r))?;
        }
        let mode = change.mode.unwrap_or(current.mode);
        let (old_description, old_rule) = tx
            .fetch_one(
                "SELECT description, rule FROM tags WHERE id = $1",
                args![id],
                |r: &dyn RowGet| Ok((r.opt_text("description")?, r.opt_text("rule")?)),
            )
            .await?;
        let description = change.description.clone().unwrap_or(old_description);
        let rule = change.rule.clone().unwrap_or(old_rule.clone());
        tx.execute(
            "UPDATE tags SET name = $1, name_key = $2, parent_id = $3, mode = $4, description = $5, rule = $6, version = version + 1, updated_at = $7 WHERE id = $8",
            args![name.as_str(), name_key(&name), parent, mode.as_str(), description, rule.as_deref(), Utc::now(), id],
        )
        .await?;
        let events = [
            (
                name != current.name,
                "renamed",
                json!({"from": current.name, "to": name}),
            ),
            (
                parent != current.parent_id,
                "moved",
                json!({"from": current.parent_id, "to": parent}),
            ),
            (
                mode != current.mode,
                "mode_changed",
                json!({"from": current.mode.as_str(), "to": mode.as_str()}),
            ),
            (
                rule != old_rule,
                "rule_changed",
                json!({"from": old_rule, "to": rule}),
            ),
        ];
        for (changed, action, detail) in events {
            if changed {
                history(&mut tx, id, None, action, detail, Some(by)).await?;
            }
        }
        commit_returning(tx, id).await
    }

    /// Retires a tag (no new assignments; existing ones stay and still
    /// match queries) or brings it back.
    pub async fn set_tag_retired(
        &self,
        id: i64,
        retired: bool,
        by: i64,
    ) -> Result<TagRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let c = catalogue_in(&mut tx).await?;
        let node = live(&c, id)?;
        if node.retired != retired {
            let at = retired.then(Utc::now);
            tx.execute(
                "UPDATE tags SET retired_at = $1, version = version + 1, updated_at = $2 WHERE id = $3",
                args![at, Utc::now(), id],
            )
            .await?;
            let action = if retired { "retired" } else { "restored" };
            history(&mut tx, id, None, action, json!({}), Some(by)).await?;
        }
        commit_returning(tx, id).await
    }

    /// Merges tag `from` into `into`: every assignment moves (a customer
    /// carrying both keeps one), `from` stays in the catalogue pointing at
    /// `into` so references to it follow, and both histories say so.
    /// Tags of different modes, a tag with live children, or a tag into its
    /// own subtree are refused.
    pub async fn merge_tag(&self, from: i64, into: i64, by: i64) -> Result<TagRecord, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let c = catalogue_in(&mut tx).await?;
        let source = live(&c, from)?.clone();
        let target = live(&c, into)
            .map_err(|_| {
                rule(
                    "into",
                    "tag_merge_target_unknown",
                    format!("目标标签 #{into} 不存在或已合并"),
                    format!("the target tag #{into} does not exist or was merged"),
                )
            })?
            .clone();
        if from == into || c.subtree(from).contains(&into) {
            return Err(rule(
                "into",
                "tag_merge_into_itself",
                "不能把标签合并到它自己或它的下级".into(),
                "a tag cannot be merged into itself or one of its descendants".into(),
            ));
        }
        if c.children_of(Some(from)).next().is_some() {
            return Err(rule(
                "from",
                "tag_merge_has_children",
                format!("“{}”还有下级标签，请先移动或合并它们", c.path_text(from)),
                format!(
                    "“{}” still has child tags: move or merge them first",
                    c.path_text(from)
                ),
            ));
        }
        if source.mode != target.mode {
            return Err(rule(
                "into",
                "tag_merge_mode",
                "只能合并同一种打标方式（手动/规则/半自动）的标签".into(),
                "only tags assigned the same way (manual, rule, hybrid) can be merged".into(),
            ));
        }
        let moved_customers = tx
            .fetch_all(
                "SELECT customer_id FROM customer_tags WHERE tag_id = $1 UNION ALL SELECT customer_id FROM rule_tags WHERE tag_id = $1",
                args![from],
                |r: &dyn RowGet| r.int("customer_id"),
            )
            .await?;
        tx.execute(
            "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_by, assigned_at) \
             SELECT customer_id, $1, source, assigned_by, assigned_at FROM customer_tags WHERE tag_id = $2 \
             ON CONFLICT (customer_id, tag_id) DO NOTHING",
            args![into, from],
        )
        .await?;
        tx.execute("DELETE FROM customer_tags WHERE tag_id = $1", args![from])
            .await?;
        // Rule tags merge only into rule tags (same mode, checked above).
        tx.execute(
            "INSERT INTO rule_tags (tag_id, customer_id, assigned_at) \
             SELECT $1, customer_id, assigned_at FROM rule_tags WHERE tag_id = $2 \
             ON CONFLICT (tag_id, customer_id) DO NOTHING",
            args![into, from],
        )
        .await?;
        tx.execute("DELETE FROM rule_tags WHERE tag_id = $1", args![from])
            .await?;
        tx.execute(
            "UPDATE tags SET merged_into = $1, version = version + 1, updated_at = $2 WHERE id = $3",
            args![into, Utc::now(), from],
        )
        .await?;
        let detail = json!({"from": from, "from_path": c.path_text(from), "into": into, "into_path": c.path_text(into), "customers": moved_customers.len()});
        history(&mut tx, from, None, "merged_away", detail.clone(), Some(by)).await?;
        history(&mut tx, into, None, "merged_in", detail, Some(by)).await?;
        feed::record(&mut tx, FeedKind::Tags, &moved_customers).await?;
        commit_returning(tx, into).await
    }

    /// Puts a manual tag on a customer (by a person). Refused for a tag
    /// that is retired, merged or not manual, and past the per-customer
    /// limit of manual tags. Assigning a tag the customer has is no change
    /// (Ok(false)).
    pub async fn assign_tag(
        &self,
        customer_id: i64,
        tag_id: i64,
        by: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let c = catalogue_in(&mut tx).await?;
        let node = live(&c, tag_id).map_err(|_| {
            rule(
                "tag_id",
                "tag_unknown",
                format!("标签 #{tag_id} 不存在"),
                format!("the tag #{tag_id} does not exist"),
            )
        })?;
        if node.retired {
            return Err(rule(
                "tag_id",
                "tag_retired",
                format!("标签“{}”已停用，不能再打", c.path_text(tag_id)),
                format!(
                    "the tag “{}” is retired and cannot be assigned",
                    c.path_text(tag_id)
                ),
            ));
        }
        if node.mode != TagMode::Manual {
            return Err(rule(
                "tag_id",
                "tag_not_manual",
                format!("标签“{}”由规则打标，不能手动打", c.path_text(tag_id)),
                format!(
                    "the tag “{}” is assigned by its rule, not by hand",
                    c.path_text(tag_id)
                ),
            ));
        }
        // Lock the customer's row first: two concurrent assignments to one
        // customer then count one after the other.
        let locked = tx
            .execute(
                "UPDATE customers SET version = version WHERE id = $1",
                args![customer_id],
            )
            .await?;
        if locked == 0 {
            return Err(StoreError::NotFound);
        }
        let have = tx
            .fetch_all(
                "SELECT tag_id FROM customer_tags WHERE customer_id = $1",
                args![customer_id],
                |r: &dyn RowGet| r.int("tag_id"),
            )
            .await?;
        if have.contains(&tag_id) {
            return Ok(false);
        }
        let settings = settings_in(&mut tx).await?;
        let manual = have
            .iter()
            .filter(|&&t| c.get(t).is_some_and(|n| n.mode == TagMode::Manual))
            .count();
        if manual >= settings.max_manual_tags as usize {
            let max = settings.max_manual_tags;
            return Err(rule(
                "tag_id",
                "tag_limit",
                format!("每个客户最多 {max} 个自定义标签，该客户已有 {manual} 个"),
                format!("a customer carries at most {max} custom tags and this one has {manual}"),
            ));
        }
        tx.execute(
            "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_by, assigned_at) VALUES ($1, $2, 'manual', $3, $4)",
            args![customer_id, tag_id, by, Utc::now()],
        )
        .await?;
        history(
            &mut tx,
            tag_id,
            Some(customer_id),
            "assigned",
            json!({"source": "manual"}),
            Some(by),
        )
        .await?;
        feed::record(&mut tx, FeedKind::Tags, &[customer_id]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Takes a tag off a customer; Ok(false) when it was not there.
    pub async fn unassign_tag(
        &self,
        customer_id: i64,
        tag_id: i64,
        by: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let removed = tx
            .execute(
                "DELETE FROM customer_tags WHERE customer_id = $1 AND tag_id = $2",
                args![customer_id, tag_id],
            )
            .await?;
        if removed == 0 {
            let by_rule = tx
                .fetch_one(
                    "SELECT COUNT(*) AS n FROM rule_tags WHERE tag_id = $1 AND customer_id = $2",
                    args![tag_id, customer_id],
                    crate::db::decode_n,
                )
                .await?;
            if by_rule > 0 {
                let path = catalogue_in(&mut tx).await?.path_text(tag_id);
                return Err(rule(
                    "tag_id",
                    "tag_not_manual",
                    format!("标签“{path}”由规则打标，不能手动去掉：请改规则或客户资料"),
                    format!("the tag “{path}” is given by its rule and cannot be taken off by hand: change the rule or the customer's data"),
                ));
            }
            return Ok(false);
        }
        history(
            &mut tx,
            tag_id,
            Some(customer_id),
            "removed",
            json!({}),
            Some(by),
        )
        .await?;
        feed::record(&mut tx, FeedKind::Tags, &[customer_id]).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A customer's tags (by hand, confirmed and by rule), in catalogue order.
    pub async fn customer_tags(&self, customer_id: i64) -> Result<Vec<Assignment>, StoreError> {
        let sql = format!(
            "SELECT customer_id, tag_id, source, assigned_by, assigned_at FROM customer_tags WHERE customer_id = $1 \
             UNION ALL SELECT customer_id, tag_id, 'rule' AS source, CAST(NULL AS BIGINT) AS assigned_by, assigned_at \
             FROM rule_tags WHERE {RULE_TAGS_OF_CUSTOMER} AND customer_id = $1 ORDER BY tag_id"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode_assignment)
            .await
    }

    /// The history of a tag (`tag_id`) or of a customer's tags, newest first.
    pub async fn tag_history(
        &self,
        tag_id: Option<i64>,
        customer_id: Option<i64>,
    ) -> Result<Vec<TagEvent>, StoreError> {
        let columns = "id, tag_id, customer_id, action, detail, by_user, at";
        let (sql, a) = match (tag_id, customer_id) {
            (Some(t), _) => (
                format!("SELECT {columns} FROM tag_history WHERE tag_id = $1"),
                args![t],
            ),
            // A large rule run's change of this customer: the row under
            // its `rule_applied` entry, told as the customer's own event
            // (the runs are few: their partial index, one key probe each).
            (None, Some(c)) => (format!(
                "SELECT {columns} FROM tag_history WHERE customer_id = $1 \
                 UNION ALL SELECT h.id, h.tag_id, r.customer_id, \
                 CASE WHEN r.added THEN 'assigned' ELSE 'removed' END AS action, {} AS detail, \
                 CAST(NULL AS BIGINT) AS by_user, h.at \
                 FROM tag_history h JOIN rule_tag_changes r ON r.event_id = h.id AND r.customer_id = $1 \
                 WHERE h.action = 'rule_applied'",
                match self.db.backend() {
                    Backend::Sqlite => "'{\"source\": \"rule\"}'",
                    Backend::Postgres => "CAST('{\"source\": \"rule\"}' AS JSONB)",
                }
            ), args![c]),
            (None, None) => (format!("SELECT {columns} FROM tag_history"), vec![]),
        };
        let sql = format!("{sql} ORDER BY id DESC LIMIT 500");
        self.db
            .clone()
            .fetch_all(&sql, a, |r: &dyn RowGet| {
                Ok(TagEvent {
                    id: r.int("id")?,
                    tag_id: r.int("tag_id")?,
                    customer_id: r.opt_int("customer_id")?,
                    action: r.text("action")?,
                    detail: r.json("detail")?,
                    by_user: r.opt_int("by_user")?,
                    at: r.time("at")?,
                })
            })
            .await
    }

    /// (customer, tag) pairs by hand or confirmed of customers
    /// `first..=last`, in customer order (for the segment index; the rule
    /// tags' come from [`Store::rule_tag_pairs`]).
    pub async fn tag_pairs_between(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        Read::Bulk
            .all(
                &mut self.db.clone(),
                "SELECT customer_id, tag_id FROM customer_tags WHERE customer_id >= $1 AND customer_id <= $2 ORDER BY customer_id",
                args![first, last],
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.int("tag_id")?)),
            )
            .await
    }

    /// (customer, tag) pairs of every rule tag, in tag and customer order:
    /// the table's own key order (for the segment index).
    pub async fn rule_tag_pairs(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Read::Bulk
            .all(
                &mut self.db.clone(),
                "SELECT customer_id, tag_id FROM rule_tags ORDER BY tag_id, customer_id",
                vec![],
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.int("tag_id")?)),
            )
            .await
    }

    /// (customer, tag) pairs of the customers among `ids`.
    pub async fn tag_pairs_in(&self, ids: &[i64]) -> Result<Vec<(i64, i64)>, StoreError> {
        tag_pairs_on(&mut self.db.clone(), ids).await
    }

    /// Tags many customers at once in one transaction (bulk loads, demo
    /// data): pairs already present are kept; no per-pair history, one
    /// "anyone" feed entry.
    pub async fn bulk_tag(&self, pairs: &[(i64, i64)], source: &str) -> Result<u64, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let now = Utc::now();
        let added = insert_assignments(&mut tx, pairs, source, now).await?;
        let mut everyone = Changed::Nobody;
        for (c, _) in pairs {
            everyone.note(*c);
        }
        feed::record_changed(&mut tx, FeedKind::Tags, &everyone).await?;
        tx.commit().await?;
        Ok(added)
    }
}

/// A hybrid tag's proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub id: i64,
    pub tag_id: i64,
    pub customer_id: i64,
    pub evidence: String,
    pub status: String,
    pub proposed_at: DateTime<Utc>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
}

fn decode_proposal(r: &dyn RowGet) -> Result<Proposal, sqlx::Error> {
    Ok(Proposal {
        id: r.int("id")?,
        tag_id: r.int("tag_id")?,
        customer_id: r.int("customer_id")?,
        evidence: r.text("evidence")?,
        status: r.text("status")?,
        proposed_at: r.time("proposed_at")?,
        decided_by: r.opt_int("decided_by")?,
        decided_at: r.opt_time("decided_at")?,
    })
}

const PROPOSAL_COLUMNS: &str =
    "id, tag_id, customer_id, evidence, status, proposed_at, decided_by, decided_at";

/// `rule_tags` is keyed by (tag, customer): a condition on the customer
/// alone goes with this, so that it probes the key once per tag instead of
/// reading the table (tags are a few hundred rows, never deleted).
const RULE_TAGS_OF_CUSTOMER: &str = "tag_id IN (SELECT id FROM tags)";

/// Rows per multi-row statement of a rule's changes.
const RULE_ROWS: usize = 1_000;

/// Rows per statement when they travel as one JSON array (SQLite).
const JSON_ROWS: usize = 50_000;

/// What one application of a rule changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleChanges {
    pub added: u64,
    pub removed: u64,
    pub proposed: u64,
    pub expired: u64,
}

/// One rule's outcome to store (see [`Store::apply_rule_writes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleWrite {
    /// A rule tag's new state: `add` get the tag, `remove` lose it.
    Members {
        tag_id: i64,
        add: Vec<i64>,
        remove: Vec<i64>,
    },
    /// A hybrid tag's proposals, (customer, evidence), and the customers
    /// whose pending proposals the rule no longer holds for.
    Proposals {
        tag_id: i64,
        proposals: Vec<(i64, String)>,
        expire: Vec<i64>,
    },
}

impl RuleWrite {
    pub fn tag_id(&self) -> i64 {
        match self {
            RuleWrite::Members { tag_id, .. } | RuleWrite::Proposals { tag_id, .. } => *tag_id,
        }
    }
}

impl Store {
    /// The outcomes of a run of the tag rules, in one transaction with the
    /// feed and the history: each write's counts, in order, and the feed
    /// entries the member changes appended. A rule tag's run that changes
    /// up to [`RULE_ROWS`] customers is a tag_history row per customer; a
    /// larger one is one `rule_applied` entry (the tag, the time, the
    /// counts) and a narrow `rule_tag_changes` row per customer under its
    /// id. A hybrid tag gets a proposal per (customer, evidence) unless one
    /// with the same evidence exists (so a rejected proposal is never made
    /// again for what it saw); its pending ones of `expire` are withdrawn.
    pub async fn apply_rule_writes(
        &self,
        writes: &[RuleWrite],
    ) -> Result<(Vec<RuleChanges>, Option<FeedSpan>), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let now = Utc::now();
        let mut out = Vec::with_capacity(writes.len());
        let mut changed = Changed::Nobody;
        for write in writes {
            out.push(match write {
                RuleWrite::Members {
                    tag_id,
                    add,
                    remove,
                } => {
                    for &c in add.iter().chain(remove) {
                        changed.note(c);
                    }
                    rule_tag_members(&mut tx, *tag_id, add, remove, now).await?
                }
                RuleWrite::Proposals {
                    tag_id,
                    proposals,
                    expire,
                } => propose(&mut tx, *tag_id, proposals, expire, now).await?,
            });
        }
        let span = feed::record_changed(&mut tx, FeedKind::Tags, &changed).await?;
        tx.commit().await?;
        Ok((out, span))
    }

    /// The pending proposals of `tags`, (tag, customer), among the
    /// customers `only` when given (one customer after a write reads only
    /// its own).
    pub async fn pending_proposals(
        &self,
        tags: &[i64],
        only: Option<&[i64]>,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT tag_id, customer_id FROM tag_proposals WHERE status = 'pending' AND tag_id IN ({})",
            crate::db::marks_from(1, tags.len())
        );
        let tag_args = || tags.iter().map(|&t| Arg::from(t)).collect::<Vec<Arg>>();
        let decode = |r: &dyn RowGet| Ok((r.int("tag_id")?, r.int("customer_id")?));
        let Some(only) = only else {
            return self.db.clone().fetch_all(&sql, tag_args(), decode).await;
        };
        let mut out = Vec::new();
        for part in only.chunks(IDS_PER_QUERY) {
            let filtered = format!(
                "{sql} AND customer_id IN ({})",
                crate::db::marks_from(tags.len() + 1, part.len())
            );
            let mut a = tag_args();
            a.extend(part.iter().map(|&c| Arg::from(c)));
            out.extend(self.db.clone().fetch_all(&filtered, a, decode).await?);
        }
        Ok(out)
    }

    /// Proposals by status (and tag), oldest first: the verification queue.
    /// Proposals of `status` (of one tag) for customers in `scope`, oldest
    /// first: the first `limit`, and how many there are in all.
    pub async fn proposals(
        &self,
        status: &str,
        tag_id: Option<i64>,
        scope: &crate::ScopeFilter,
        limit: i64,
    ) -> Result<(Vec<Proposal>, i64), StoreError> {
        let mut b = crate::listing::SqlBuilder::new(self.db.backend(), "");
        let mut conds = vec![format!("status = {}", b.bind(status.to_string()))];
        if let Some(t) = tag_id {
            conds.push(format!("tag_id = {}", b.bind(t)));
        }
        conds.extend(crate::duplicates::scope_condition(
            &mut b,
            scope,
            "customer_id",
        ));
        crate::listing::count_and_page(
            &self.db,
            b,
            "tag_proposals",
            PROPOSAL_COLUMNS,
            &conds.join(" AND "),
            "id",
            limit,
            0,
            decode_proposal,
        )
        .await
    }

    pub async fn proposal(&self, id: i64) -> Result<Proposal, StoreError> {
        let sql = format!("SELECT {PROPOSAL_COLUMNS} FROM tag_proposals WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_proposal)
            .await
    }

    /// Confirms (the customer gets the tag, source `verified`) or rejects
    /// a pending proposal; refused once it is decided or expired.
    pub async fn decide_proposal(
        &self,
        id: i64,
        confirm: bool,
        by: i64,
    ) -> Result<Proposal, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {PROPOSAL_COLUMNS} FROM tag_proposals WHERE id = $1");
        let p = tx.fetch_one(&sql, args![id], decode_proposal).await?;
        if p.status != "pending" {
            return Err(rule(
                "status",
                "proposal_decided",
                format!("该建议已处理（{}）", p.status),
                format!("this proposal was already decided ({})", p.status),
            ));
        }
        let now = Utc::now();
        let status = if confirm { "confirmed" } else { "rejected" };
        tx.execute(
            "UPDATE tag_proposals SET status = $1, decided_by = $2, decided_at = $3 WHERE id = $4",
            args![status, by, now, id],
        )
        .await?;
        let detail = json!({"source": "verified", "evidence": p.evidence});
        if confirm {
            tx.execute(
                "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_by, assigned_at) VALUES ($1, $2, 'verified', $3, $4) ON CONFLICT (customer_id, tag_id) DO NOTHING",
                args![p.customer_id, p.tag_id, by, now],
            )
            .await?;
            history(
                &mut tx,
                p.tag_id,
                Some(p.customer_id),
                "assigned",
                detail,
                Some(by),
            )
            .await?;
            feed::record(&mut tx, FeedKind::Tags, &[p.customer_id]).await?;
        } else {
            history(
                &mut tx,
                p.tag_id,
                Some(p.customer_id),
                "proposal_rejected",
                detail,
                Some(by),
            )
            .await?;
        }
        let decided = tx.fetch_one(&sql, args![id], decode_proposal).await?;
        tx.commit().await?;
        Ok(decided)
    }
}

/// A rule tag's `add` and `remove` stored, with their history.
async fn rule_tag_members(
    tx: &mut Tx,
    tag_id: i64,
    add: &[i64],
    remove: &[i64],
    now: DateTime<Utc>,
) -> Result<RuleChanges, StoreError> {
    let run = if add.len() + remove.len() > RULE_ROWS {
        Some(
            tx.fetch_one(
                "INSERT INTO tag_history (tag_id, action, detail, at) VALUES ($1, 'rule_applied', $2, $3) RETURNING id AS n",
                args![
                    tag_id,
                    json!({"source": "rule", "added": add.len(), "removed": remove.len()}),
                    now
                ],
                crate::db::decode_n,
            )
            .await?,
        )
    } else {
        None
    };
    Ok(RuleChanges {
        added: rule_members(tx, tag_id, run, add, true, now).await?,
        removed: rule_members(tx, tag_id, run, remove, false, now).await?,
        ..RuleChanges::default()
    })
}

/// A hybrid tag's proposals made and pending ones withdrawn
/// ([`RuleWrite::Proposals`]).
async fn propose(
    tx: &mut Tx,
    tag_id: i64,
    proposals: &[(i64, String)],
    expire: &[i64],
    now: DateTime<Utc>,
) -> Result<RuleChanges, StoreError> {
    let backend = tx.backend();
    let mut out = RuleChanges::default();
    // Withdrawn: pending proposals the rule no longer holds for, and
    // pending ones of the proposed customers made on other evidence (a
    // proposal on the same evidence as an expired one comes back below,
    // a rejected one never does).
    let expire_sql = |n: usize| {
        format!(
            "UPDATE tag_proposals SET status = 'expired', decided_at = $1 WHERE tag_id = $2 AND status = 'pending' AND customer_id IN ({})",
            crate::db::marks_from(3, n)
        )
    };
    let proposed: Vec<i64> = proposals.iter().map(|(c, _)| *c).collect();
    for (part, counted) in expire
        .chunks(IDS_PER_QUERY)
        .map(|p| (p, true))
        .chain(proposed.chunks(IDS_PER_QUERY).map(|p| (p, false)))
    {
        let mut a = args![now, tag_id];
        a.extend(part.iter().map(|&c| Arg::from(c)));
        let n = tx.execute(&expire_sql(part.len()), a).await?;
        if counted {
            out.expired += n;
        }
    }
    for part in proposals.chunks(RULE_ROWS) {
        let sql = format!(
            "INSERT INTO tag_proposals (tag_id, customer_id, evidence, status, proposed_at) VALUES {} \
             ON CONFLICT (tag_id, customer_id, evidence) DO UPDATE SET status = 'pending', proposed_at = excluded.proposed_at, decided_at = NULL \
             WHERE tag_proposals.status = 'expired'",
            value_groups(backend, part.len(), 5)
        );
        let a: Vec<Arg> = part
            .iter()
            .flat_map(|(c, e)| args![tag_id, *c, e.as_str(), "pending", now])
            .collect();
        out.proposed += tx.execute(&sql, a).await?;
    }
    Ok(out)
}

/// Adds (`added`) or takes away a rule tag for `customers` and writes
/// each one's change: under the run's history entry `run` when there is
/// one, else as its own tag_history row. Returns how many rows of
/// `rule_tags` changed. The customers travel as one JSON array per
/// statement: binding one argument per customer costs more than the
/// writes (sqlx binds each on SQLite's worker thread).
async fn rule_members(
    tx: &mut Tx,
    tag_id: i64,
    run: Option<i64>,
    customers: &[i64],
    added: bool,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let backend = tx.backend();
    let ids = |mark: usize| match backend {
        Backend::Sqlite => format!("(SELECT value AS id FROM json_each(${mark}))"),
        Backend::Postgres => {
            format!("(SELECT CAST(value AS BIGINT) AS id FROM jsonb_array_elements_text(${mark}))")
        }
    };
    let mut changed = 0;
    for part in customers.chunks(JSON_ROWS) {
        let part = json!(part);
        changed += if added {
            // `WHERE true`: SQLite's upsert after a SELECT needs a WHERE.
            tx.execute(
                &format!(
                    "INSERT INTO rule_tags (tag_id, customer_id, assigned_at) SELECT $1, j.id, $2 FROM {} j WHERE true \
                     ON CONFLICT (tag_id, customer_id) DO NOTHING",
                    ids(3)
                ),
                args![tag_id, now, part.clone()],
            )
            .await?
        } else {
            tx.execute(
                &format!(
                    "DELETE FROM rule_tags WHERE tag_id = $1 AND customer_id IN (SELECT j.id FROM {} j)",
                    ids(2)
                ),
                args![tag_id, part.clone()],
            )
            .await?
        };
        match run {
            Some(run) => {
                tx.execute(
                    &format!(
                        "INSERT INTO rule_tag_changes (event_id, customer_id, added) SELECT $1, j.id, $2 FROM {} j",
                        ids(3)
                    ),
                    args![run, added, part],
                )
                .await?
            }
            None => {
                tx.execute(
                    &format!(
                        "INSERT INTO tag_history (tag_id, customer_id, action, detail, at) SELECT $1, j.id, $2, $3, $4 FROM {} j",
                        ids(5)
                    ),
                    args![
                        tag_id,
                        if added { "assigned" } else { "removed" },
                        json!({"source": "rule"}),
                        now,
                        part
                    ],
                )
                .await?
            }
        };
    }
    Ok(changed)
}

/// (customer, tag) assignments without a person (bulk loads);
/// pairs already present are kept. Returns how many were added.
async fn insert_assignments(
    tx: &mut Tx,
    pairs: &[(i64, i64)],
    source: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    if pairs.len() > RULE_ROWS && tx.backend() == Backend::Postgres {
        // Many rows: COPY into a scratch table, then one INSERT that keeps
        // the pairs already present.
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS new_assignments (customer_id BIGINT NOT NULL, tag_id BIGINT NOT NULL) ON COMMIT DROP",
            vec![],
        )
        .await?;
        tx.execute("TRUNCATE new_assignments", vec![]).await?;
        let mut b = CopyBuf::with_capacity(pairs.len() * 16);
        for &(c, t) in pairs {
            b.int(c);
            b.int(t);
            b.end_row();
        }
        if let Tx::Postgres(t) = tx {
            copy_in(
                t,
                "COPY new_assignments (customer_id, tag_id) FROM STDIN",
                b,
            )
            .await?;
        }
        return tx
            .execute(
                "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_at) \
                 SELECT customer_id, tag_id, $1, $2 FROM new_assignments ON CONFLICT (customer_id, tag_id) DO NOTHING",
                args![source, now],
            )
            .await;
    }
    let backend = tx.backend();
    let mut added = 0;
    if backend == Backend::Sqlite && pairs.len() > RULE_ROWS {
        // Many rows: one JSON array of [customer, tag] per statement (see rule_members).
        for chunk in pairs.chunks(JSON_ROWS) {
            added += tx
                .execute(
                    "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_at) \
                     SELECT j.value->>0, j.value->>1, $1, $2 FROM json_each($3) j WHERE true \
                     ON CONFLICT (customer_id, tag_id) DO NOTHING",
                    args![source, now, json!(chunk)],
                )
                .await?;
        }
        return Ok(added);
    }
    for chunk in pairs.chunks(RULE_ROWS) {
        let sql = format!(
            "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_at) VALUES {} ON CONFLICT (customer_id, tag_id) DO NOTHING",
            value_groups(backend, chunk.len(), 4)
        );
        let a: Vec<Arg> = chunk
            .iter()
            .flat_map(|&(c, t)| args![c, t, source, now])
            .collect();
        added += tx.execute(&sql, a).await?;
    }
    Ok(added)
}

impl Store {
    /// Each customer's mean satisfaction score over interactions since
    /// `since` (those with a score), for the tag review.
    pub async fn satisfaction_between(
        &self,
        since: chrono::NaiveDate,
        until: chrono::NaiveDate,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT customer_id, CAST(AVG(satisfaction) AS DOUBLE PRECISION) AS score FROM interactions \
                 WHERE satisfaction IS NOT NULL AND occurred_on >= $1 AND occurred_on <= $2 GROUP BY customer_id",
                args![since, until],
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.float("score")?.unwrap_or(0.0))),
            )
            .await
    }

    /// Every assignment added or taken off at or after `at`, of customers
    /// in `scope`, oldest first: `(tag, customer, added)`. Undone newest
    /// first, they turn today's assignments into those of the instant `at`.
    pub async fn assignment_changes_after(
        &self,
        at: DateTime<Utc>,
        scope: &crate::listing::ScopeFilter,
    ) -> Result<Vec<(i64, i64, bool)>, StoreError> {
        let mut b = crate::listing::SqlBuilder::new(self.db.backend(), "");
        let since = b.bind(at);
        let within = crate::duplicates::scope_condition(&mut b, scope, "customer_id")
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT tag_id, customer_id, action FROM ({changes}) changes WHERE true{within} ORDER BY at, id",
            changes = assignment_changes_since(&since),
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                Ok((
                    r.int("tag_id")?,
                    r.int("customer_id")?,
                    r.text("action")? == "assigned",
                ))
            })
            .await
    }

    /// Per tag and span between `marks` (ascending instants), assignments
    /// added and removed: `(tag, span, added, removed)` where span `k`
    /// runs from `marks[k]` up to the next mark (the last to now). Nothing
    /// before `marks[0]` is read.
    pub async fn assignment_changes_by_span(
        &self,
        marks: &[DateTime<Utc>],
        scope: &crate::listing::ScopeFilter,
    ) -> Result<Vec<(i64, usize, i64, i64)>, StoreError> {
        if marks.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = crate::listing::SqlBuilder::new(self.db.backend(), "");
        let at: Vec<String> = marks.iter().map(|m| b.bind(*m)).collect();
        let cases: String = (1..marks.len())
            .rev()
            .map(|k| format!("WHEN at >= {} THEN {k} ", at[k]))
            .collect();
        let within = crate::duplicates::scope_condition(&mut b, scope, "customer_id")
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        let sql = format!(
            "SELECT tag_id, CAST({span} AS BIGINT) AS span, \
             SUM(CASE WHEN action = 'assigned' THEN 1 ELSE 0 END) AS added, \
             SUM(CASE WHEN action = 'removed' THEN 1 ELSE 0 END) AS removed \
             FROM ({changes}) changes \
             WHERE true{within} GROUP BY tag_id, span",
            changes = assignment_changes_since(&at[0]),
            // One mark: one span (`CASE ELSE` alone is not SQL).
            span = if cases.is_empty() {
                "0".to_string()
            } else {
                format!("CASE {cases}ELSE 0 END")
            }
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                let span = usize::try_from(r.int("span")?).unwrap_or(0);
                Ok((r.int("tag_id")?, span, r.int("added")?, r.int("removed")?))
            })
            .await
    }
}
