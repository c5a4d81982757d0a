//! Custom field definitions and the industry list: the configuration that
//! validation of customers depends on.

use crate::customers::map_unique;
use crate::db::{check_version, Exec, RowGet};
use crate::error::StoreError;
use crate::model::CustomField;
use crate::{args, json_list, Store};
use chrono::Utc;
use kehu_core::custom_field::{CustomFieldDef, FieldGroup, FieldKind};

const COLUMNS: &str =
    "id, key, label, grp, kind, required, options, rule, position, version, created_at, updated_at";

fn decode(r: &dyn RowGet) -> Result<CustomField, sqlx::Error> {
    let bad = |what: &str| sqlx::Error::Decode(format!("bad stored {what}").into());
    Ok(CustomField {
        id: r.int("id")?,
        def: CustomFieldDef {
            key: r.text("key")?,
            label: r.text("label")?,
            group: FieldGroup::parse(&r.text("grp")?).map_err(|_| bad("group"))?,
            kind: FieldKind::parse(&r.text("kind")?).map_err(|_| bad("kind"))?,
            required: r.boolean("required")?,
            options: json_list(r.json("options")?),
            rule: serde_json::from_value(r.json("rule")?).map_err(|_| bad("rule"))?,
            position: r.int("position")?,
        },
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn rule_json(d: &CustomFieldDef) -> serde_json::Value {
    serde_json::to_value(&d.rule).unwrap_or_else(|_| serde_json::json!({}))
}

/// How long a process trusts its copy of the definitions: changes made
/// through this process are seen at once, another server's within this.
pub const DEFS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// The definitions as read at a time, shared by the store's clones.
pub(crate) type DefsCache =
    std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, Vec<CustomFieldDef>)>>>;

impl Store {
    pub async fn custom_fields(&self) -> Result<Vec<CustomField>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM custom_field_defs ORDER BY position, id");
        self.db.clone().fetch_all(&sql, vec![], decode).await
    }

    /// The definitions, from this process's copy when it is younger than
    /// [`DEFS_TTL`].
    pub async fn custom_field_defs(&self) -> Result<Vec<CustomFieldDef>, StoreError> {
        if let Ok(cached) = self.defs.lock() {
            if let Some((at, defs)) = cached.as_ref() {
                if at.elapsed() < DEFS_TTL {
                    return Ok(defs.clone());
                }
            }
        }
        let defs: Vec<CustomFieldDef> = self
            .custom_fields()
            .await?
            .into_iter()
            .map(|f| f.def)
            .collect();
        if let Ok(mut cached) = self.defs.lock() {
            *cached = Some((std::time::Instant::now(), defs.clone()));
        }
        Ok(defs)
    }

    /// After a change of the definitions: the next read goes to the database.
    fn forget_defs(&self) {
        if let Ok(mut cached) = self.defs.lock() {
            *cached = None;
        }
    }

    pub async fn custom_field(&self, id: i64) -> Result<CustomField, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM custom_field_defs WHERE id = $1");
        self.db.clone().fetch_one(&sql, args![id], decode).await
    }

    pub async fn insert_custom_field(&self, d: &CustomFieldDef) -> Result<CustomField, StoreError> {
        let f = insert_custom_field(&mut self.db.clone(), d)
            .await
            .map_err(|e| map_unique(e, &["key"]));
        self.forget_defs();
        f
    }

    /// The key and kind of a field are fixed once created: stored values depend on them.
    pub async fn update_custom_field(
        &self,
        id: i64,
        expected_version: i64,
        d: &CustomFieldDef,
    ) -> Result<CustomField, StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "custom_field_defs", id, expected_version).await?;
        let sql = format!(
            "UPDATE custom_field_defs SET label=$1, grp=$2, required=$3, options=$4, rule=$5, position=$6, updated_at=$7, version = version + 1 \
             WHERE id=$8 RETURNING {COLUMNS}"
        );
        let a = args![
            d.label.clone(),
            d.group.key(),
            d.required,
            serde_json::Value::from(d.options.clone()),
            rule_json(d),
            d.position,
            Utc::now(),
            id
        ];
        let f = tx.fetch_one(&sql, a, decode).await?;
        tx.commit().await?;
        self.forget_defs();
        Ok(f)
    }

    /// Deleting a definition leaves stored values in place but unreachable;
    /// recreating the key brings them back.
    pub async fn delete_custom_field(
        &self,
        id: i64,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "custom_field_defs", id, expected_version).await?;
        tx.execute("DELETE FROM custom_field_defs WHERE id = $1", args![id])
            .await?;
        tx.commit().await?;
        self.forget_defs();
        Ok(())
    }

    pub async fn industries(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT name FROM industries ORDER BY position, name",
                vec![],
                |r: &dyn RowGet| r.text("name"),
            )
            .await
    }

    /// Replaces the industry list (existing customers keep their value).
    pub async fn set_industries(&self, names: &[String]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute("DELETE FROM industries", vec![]).await?;
        for (i, n) in names.iter().enumerate() {
            tx.execute(
                "INSERT INTO industries (name, position) VALUES ($1, $2)",
                args![n.clone(), i as i64],
            )
            .await?;
        }
        tx.commit().await
    }
}

/// Inserts a definition (also inside a migration's transaction).
pub(crate) async fn insert_custom_field(
    exec: &mut impl Exec,
    d: &CustomFieldDef,
) -> Result<CustomField, StoreError> {
    let now = Utc::now();
    let sql = format!(
        "INSERT INTO custom_field_defs (key, label, grp, kind, required, options, rule, position, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING {COLUMNS}"
    );
    let a = args![
        d.key.clone(),
        d.label.clone(),
        d.group.key(),
        d.kind.key(),
        d.required,
        serde_json::Value::from(d.options.clone()),
        rule_json(d),
        d.position,
        now,
        now
    ];
    exec.fetch_one(&sql, a, decode).await
}
