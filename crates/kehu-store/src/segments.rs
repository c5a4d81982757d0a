//! Saved segments (`segments`), a segment plan as SQL (the baseline and
//! the cross-check of the in-memory index), and the customer fields the
//! index holds, read in batches.

use crate::bulk_read::Read;
use crate::db::{Arg, Exec, RowGet};
use crate::error::StoreError;
use crate::feed::{Changed, FeedSpan};
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::expr::CmpOp;
use kehu_core::segment::{
    day_date, day_number, segment_field, Atom, Plan, SegmentFieldKind, WindowAgg, SEGMENT_FIELDS,
};

/// A saved segment. `expression` is the stored text (tags as `#ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedSegment {
    pub id: i64,
    pub name: String,
    pub expression: String,
    pub description: Option<String>,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
    pub shared: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A segment as written, its expression already compiled to the stored form.
#[derive(Debug, Clone)]
pub struct SegmentWrite {
    pub name: String,
    pub expression: String,
    pub description: Option<String>,
    pub shared: bool,
}

const SEGMENT_COLUMNS: &str =
    "id, name, expression, description, owner_id, team, shared, version, created_at, updated_at";

fn decode_segment(r: &dyn RowGet) -> Result<SavedSegment, sqlx::Error> {
    Ok(SavedSegment {
        id: r.int("id")?,
        name: r.text("name")?,
        expression: r.text("expression")?,
        description: r.opt_text("description")?,
        owner_id: r.opt_int("owner_id")?,
        team: r.opt_text("team")?,
        shared: r.boolean("shared")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// The column fields of one customer, in [`SEGMENT_FIELDS`] order: text
/// fields as text, numbers as numbers, dates as [`day_number`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    pub id: i64,
    pub values: Vec<FieldValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Missing,
    Text(String),
    Num(i64),
}

/// The segment fields that are columns of `customers` (windows are computed).
fn column_fields() -> impl Iterator<Item = &'static kehu_core::segment::SegmentField> {
    SEGMENT_FIELDS.iter().filter(|f| f.window.is_none())
}

fn field_columns() -> String {
    let cols: Vec<&str> = column_fields().map(|f| f.key).collect();
    format!("id, {}", cols.join(", "))
}

fn decode_fields(r: &dyn RowGet) -> Result<FieldRow, sqlx::Error> {
    let mut values = Vec::with_capacity(SEGMENT_FIELDS.len());
    for f in column_fields() {
        values.push(match f.kind {
            SegmentFieldKind::Text => r
                .opt_text(f.key)?
                .map_or(FieldValue::Missing, FieldValue::Text),
            SegmentFieldKind::Number(_) => r
                .opt_int(f.key)?
                .map_or(FieldValue::Missing, FieldValue::Num),
            SegmentFieldKind::Date => r
                .opt_date(f.key)?
                .map_or(FieldValue::Missing, |d| FieldValue::Num(day_number(d))),
        });
    }
    Ok(FieldRow {
        id: r.int("id")?,
        values,
    })
}

fn marks(b: &mut SqlBuilder, values: impl IntoIterator<Item = Arg>) -> String {
    values
        .into_iter()
        .map(|v| b.bind(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A plan as a condition on `customers c`. Every atom is TRUE or FALSE,
/// never NULL (a missing value compares false), so NOT means "the rest",
/// as in the bitmaps.
fn plan_sql(b: &mut SqlBuilder, plan: &Plan, today: NaiveDate) -> String {
    match plan {
        Plan::And(xs) | Plan::Or(xs) => {
            let joiner = if matches!(plan, Plan::And(_)) {
                " AND "
            } else {
                " OR "
            };
            let parts: Vec<String> = xs.iter().map(|x| plan_sql(b, x, today)).collect();
            format!("({})", parts.join(joiner))
        }
        Plan::Not(x) => format!("(NOT {})", plan_sql(b, x, today)),
        Plan::Atom(Atom::Tag { tags, .. }) => {
            let ps = marks(b, tags.iter().map(|&t| Arg::from(t)));
            format!(
                "c.id IN (SELECT customer_id FROM customer_tags WHERE tag_id IN ({ps}) \
                 UNION ALL SELECT customer_id FROM rule_tags WHERE tag_id IN ({ps}))"
            )
        }
        Plan::Atom(Atom::Class { scheme, class }) => {
            let s = b.bind(scheme.as_str());
            let k = b.bind(class.as_str());
            format!("c.id IN (SELECT customer_id FROM customer_classes WHERE scheme_key = {s} AND class = {k})")
        }
        Plan::Atom(Atom::Text { field, values }) => {
            // `field` comes from SEGMENT_FIELDS: a trusted column name.
            let ps = marks(b, values.iter().map(|v| Arg::from(v.as_str())));
            format!("(c.{field} IS NOT NULL AND c.{field} IN ({ps}))")
        }
        Plan::Atom(Atom::Range { field, op, value }) => {
            let f = segment_field(field);
            let column = match f.and_then(|f| f.window) {
                Some(w) => window_sql(b, w, today),
                None => format!("c.{field}"),
            };
            let date = f.is_some_and(|f| f.kind == SegmentFieldKind::Date);
            let p = if date {
                b.bind(day_date(*value))
            } else {
                b.bind(*value)
            };
            let sym = match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "<>",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            };
            format!("({column} IS NOT NULL AND {column} {sym} {p})")
        }
    }
}

/// A windowed aggregate as a correlated subquery (never NULL).
fn window_sql(b: &mut SqlBuilder, w: WindowAgg, today: NaiveDate) -> String {
    let from = b.bind(w.first_day(today));
    let to = b.bind(today);
    match w {
        WindowAgg::Purchase { .. } => format!(
            "(SELECT COALESCE(SUM(o.amount_fen), 0) FROM orders o WHERE o.customer_id = c.id AND o.ordered_on >= {from} AND o.ordered_on <= {to})"
        ),
        WindowAgg::Orders { .. } => format!(
            "(SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.ordered_on >= {from} AND o.ordered_on <= {to})"
        ),
        WindowAgg::Interactions { kind, .. } => {
            let kind = match kind {
                Some(k) => format!(" AND i.kind = {}", b.bind(k.key())),
                None => String::new(),
            };
            format!(
                "(SELECT COUNT(*) FROM interactions i WHERE i.customer_id = c.id AND i.occurred_on >= {from} AND i.occurred_on <= {to}{kind})"
            )
        }
    }
}

fn scope_condition(b: &mut SqlBuilder, scope: &ScopeFilter) -> String {
    match scope {
        ScopeFilter::All => "TRUE".into(),
        ScopeFilter::Own { user_id } => format!("c.owner_id = {}", b.bind(*user_id)),
        ScopeFilter::Team {
            team: Some(t),
            user_id,
        } => {
            let pt = b.bind(t.as_str());
            let pu = b.bind(*user_id);
            format!("(c.team = {pt} OR c.owner_id = {pu})")
        }
        ScopeFilter::Team {
            team: None,
            user_id,
        } => format!("c.owner_id = {}", b.bind(*user_id)),
    }
}

/// What changed after a feed position, with the rows the segment index
/// keeps of the customers named ([`Store::catch_up_reads`]).
#[derive(Debug)]
pub struct CatchUp {
    /// The last feed entry read.
    pub last: i64,
    /// Customers whose fields or facts changed (those gone have no row).
    pub facts_of: Vec<i64>,
    pub fields: Vec<FieldRow>,
    /// Read only when asked for.
    pub facts: Vec<kehu_core::classify::Facts>,
    /// Customers whose classes changed, and their classes now: (customer,
    /// scheme, class).
    pub classes_of: Vec<i64>,
    pub classes: Vec<(i64, String, String)>,
    /// Customers whose tags changed, and their (customer, tag) pairs now.
    pub tags_of: Vec<i64>,
    pub tags: Vec<(i64, i64)>,
}

/// The segment fields of the customers among `ids` that exist, on `exec`.
async fn field_rows_on(exec: &mut impl Exec, ids: &[i64]) -> Result<Vec<FieldRow>, StoreError> {
    let sql = format!(
        "SELECT {} FROM customers WHERE id IN ({{}})",
        field_columns()
    );
    crate::db::fetch_in(exec, &sql, ids, decode_fields).await
}

impl Store {
    /// A segment evaluated in SQL: how many customers in `scope` it holds
    /// and the first `limit` of their ids after `after`, in id order.
    pub async fn segment_by_sql(
        &self,
        plan: &Plan,
        scope: &ScopeFilter,
        after: i64,
        limit: i64,
    ) -> Result<(u64, Vec<i64>), StoreError> {
        let mut db = self.db.clone();
        let mut b = SqlBuilder::new(db.backend(), "");
        let cond = plan_sql(&mut b, plan, self.today());
        let scope = scope_condition(&mut b, scope);
        let count_sql = format!("SELECT COUNT(*) AS n FROM customers c WHERE {scope} AND {cond}");
        let n = db
            .fetch_one(&count_sql, b.args.clone(), crate::db::decode_n)
            .await?;
        let pa = b.bind(after);
        let pl = b.bind(limit);
        let page_sql = format!(
            "SELECT c.id FROM customers c WHERE {scope} AND {cond} AND c.id > {pa} ORDER BY c.id LIMIT {pl}"
        );
        let ids = db
            .fetch_all(&page_sql, b.args, |r: &dyn RowGet| r.int("id"))
            .await?;
        Ok((u64::try_from(n).unwrap_or(0), ids))
    }

    /// The segment fields of customers `first..=last`, in id order.
    pub async fn field_rows_between(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<FieldRow>, StoreError> {
        let sql = format!(
            "SELECT {} FROM customers WHERE id >= $1 AND id <= $2 ORDER BY id",
            field_columns()
        );
        Read::Bulk
            .all(
                &mut self.db.clone(),
                &sql,
                args![first, last],
                decode_fields,
            )
            .await
    }

    /// What the segment index reads to catch up with the change feed after
    /// `after` (leaving out `skip`, its own writes): the customers named and
    /// their field rows, classes and tags — and their facts `with_facts` —,
    /// all on one connection (a data change's catch-up checked the pool out
    /// five times). None when more than `at_most` customers changed in one
    /// kind: the index loads everything again.
    pub async fn catch_up_reads(
        &self,
        after: i64,
        skip: &[FeedSpan],
        at_most: usize,
        with_facts: bool,
    ) -> Result<Option<CatchUp>, StoreError> {
        let mut conn = self.db.acquire().await?;
        let read = crate::feed::feed_after_on(&mut conn, after, skip).await?;
        let ids = |c: &Changed| -> Option<Vec<i64>> {
            match c {
                Changed::Nobody => Some(Vec::new()),
                Changed::Some(ids) if ids.len() <= at_most => Some(ids.iter().copied().collect()),
                _ => None,
            }
        };
        let (Some(facts_of), Some(classes_of), Some(tags_of)) =
            (ids(&read.facts), ids(&read.classes), ids(&read.tags))
        else {
            return Ok(None);
        };
        let mut out = CatchUp {
            last: read.last,
            fields: field_rows_on(&mut conn, &facts_of).await?,
            facts: Vec::new(),
            classes: crate::classes::classes_in_on(&mut conn, &classes_of, |c, s, k| {
                (c, s.to_string(), k.to_string())
            })
            .await?,
            tags: crate::tags::tag_pairs_on(&mut conn, &tags_of).await?,
            facts_of,
            classes_of,
            tags_of,
        };
        if with_facts {
            out.facts = crate::facts::facts_in_on(&mut conn, &out.facts_of).await?;
        }
        Ok(Some(out))
    }

    /// Segments `user_id` may use: their own, and those shared in their team.
    pub async fn segments_visible_to(
        &self,
        user_id: i64,
        team: Option<&str>,
    ) -> Result<Vec<SavedSegment>, StoreError> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE owner_id = $1 OR (shared = $2 AND team IS NOT NULL AND team = $3) ORDER BY name, id"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![user_id, true, team], decode_segment)
            .await
    }

    pub async fn segment(&self, id: i64) -> Result<SavedSegment, StoreError> {
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_segment)
            .await
    }

    pub async fn create_segment(
        &self,
        w: &SegmentWrite,
        owner_id: i64,
        team: Option<&str>,
    ) -> Result<SavedSegment, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO segments (name, expression, description, owner_id, team, shared, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING {SEGMENT_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![
                    w.name.as_str(),
                    w.expression.as_str(),
                    w.description.as_deref(),
                    owner_id,
                    team,
                    w.shared,
                    now
                ],
                decode_segment,
            )
            .await
    }

    pub async fn update_segment(
        &self,
        id: i64,
        expected: i64,
        w: &SegmentWrite,
    ) -> Result<SavedSegment, StoreError> {
        let mut tx = self.db.begin().await?;
        crate::db::check_version(&mut tx, "segments", id, expected).await?;
        let sql = format!(
            "UPDATE segments SET name = $1, expression = $2, description = $3, shared = $4, version = version + 1, updated_at = $5 \
             WHERE id = $6 RETURNING {SEGMENT_COLUMNS}"
        );
        let s = tx
            .fetch_one(
                &sql,
                args![
                    w.name.as_str(),
                    w.expression.as_str(),
                    w.description.as_deref(),
                    w.shared,
                    Utc::now(),
                    id
                ],
                decode_segment,
            )
            .await?;
        tx.commit().await?;
        Ok(s)
    }

    pub async fn delete_segment(&self, id: i64, expected: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        crate::db::check_version(&mut tx, "segments", id, expected).await?;
        tx.execute("DELETE FROM segments WHERE id = $1", args![id])
            .await?;
        tx.commit().await
    }
}
