//! Turns a [`ListQuery`] into SQL for either backend: filters, free-text
//! search, data scope, keyset paging. Column names come from kehu-core's
//! field catalogue and custom-field keys validated there; values are always
//! bound, never interpolated.

use crate::db::{Arg, Backend, Decode, Exec, RowGet};
use crate::error::StoreError;
use crate::model::Page;
use chrono::NaiveDate;
use kehu_core::query::{Cursor, FieldRef, Filter, FilterValue, ListQuery, Op, ValueType};
use kehu_core::{Reason, ValidationErrors};

/// Which records a list may show, from the actor's data scope.
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeFilter {
    All,
    Team { team: Option<String>, user_id: i64 },
    Own { user_id: i64 },
}

/// Columns that are never NULL need no COALESCE, which keeps their indexes usable.
const NOT_NULL: &[&str] = &[
    "id",
    "code",
    "name",
    "status",
    "purchase_12m_fen",
    "order_count",
    "complaints_365d",
    "customer_id",
    "ordered_on",
    "amount_fen",
    "kind",
    "occurred_on",
    "summary",
    "is_primary",
    "username",
    "display_name",
    "role",
    "active",
];

pub(crate) struct SqlBuilder {
    pub backend: Backend,
    pub sql: String,
    pub args: Vec<Arg>,
}

/// A page of `table` rows matching `cond` (whose arguments `b` holds),
/// ordered by `order`, and how many match in all.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn count_and_page<T: Send>(
    db: &crate::db::Db,
    mut b: SqlBuilder,
    table: &str,
    columns: &str,
    cond: &str,
    order: &str,
    limit: i64,
    offset: i64,
    decode: impl crate::db::Decode<T>,
) -> Result<(Vec<T>, i64), crate::StoreError> {
    use crate::db::Exec;
    let total = db
        .clone()
        .fetch_one(
            &format!("SELECT COUNT(*) AS n FROM {table} WHERE {cond}"),
            b.args.clone(),
            crate::db::decode_n,
        )
        .await?;
    let (pl, po) = (b.bind(limit), b.bind(offset));
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE {cond} ORDER BY {order} LIMIT {pl} OFFSET {po}"
    );
    let items = db.clone().fetch_all(&sql, b.args, decode).await?;
    Ok((items, total))
}

impl SqlBuilder {
    pub fn new(backend: Backend, sql: impl Into<String>) -> Self {
        SqlBuilder {
            backend,
            sql: sql.into(),
            args: Vec::new(),
        }
    }
    /// Adds a bind argument and returns its placeholder.
    pub fn bind(&mut self, a: impl Into<Arg>) -> String {
        self.args.push(a.into());
        format!("${}", self.args.len())
    }
}

fn custom_expr(backend: Backend, key: &str, ty: ValueType) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract(custom_fields, '$.{key}')"),
        Backend::Postgres => match ty {
            ValueType::Int | ValueType::Money | ValueType::Float => {
                format!("(custom_fields->>'{key}')::numeric")
            }
            ValueType::Date => format!("(custom_fields->>'{key}')::date"),
            ValueType::Bool => format!("(custom_fields->>'{key}')::boolean"),
            ValueType::TextList => format!("(custom_fields->'{key}')"),
            ValueType::Text => format!("(custom_fields->>'{key}')"),
        },
    }
}

fn field_expr(backend: Backend, table: &str, f: &FieldRef) -> String {
    match f {
        FieldRef::Builtin(b) => format!("{table}.{}", b.column),
        FieldRef::Custom { key, ty } => custom_expr(backend, key, *ty)
            .replace("custom_fields", &format!("{table}.custom_fields")),
        // The scheme key resolved against the schemes that exist: [a-z0-9_] only.
        FieldRef::Class { scheme } => format!(
            "(SELECT cc.class FROM customer_classes cc WHERE cc.scheme_key = '{scheme}' AND cc.customer_id = {table}.id)"
        ),
    }
}

fn nullable(f: &FieldRef) -> bool {
    match f {
        FieldRef::Builtin(b) => !NOT_NULL.contains(&b.column),
        FieldRef::Custom { .. } | FieldRef::Class { .. } => true,
    }
}

/// The sort expression, with NULLs folded to the lowest value so keyset paging is total.
fn sort_expr(backend: Backend, table: &str, f: &FieldRef) -> String {
    let e = field_expr(backend, table, f);
    if !nullable(f) {
        return e;
    }
    let lowest = match (f.ty(), backend) {
        (ValueType::Text | ValueType::TextList, _) => "''",
        (ValueType::Int | ValueType::Money, _) => "-1",
        (ValueType::Float, _) => "-1e300",
        (ValueType::Date, Backend::Sqlite) => "'0001-01-01'",
        (ValueType::Date, Backend::Postgres) => "DATE '0001-01-01'",
        (ValueType::Bool, Backend::Sqlite) => "0",
        (ValueType::Bool, Backend::Postgres) => "FALSE",
    };
    format!("COALESCE({e}, {lowest})")
}

fn value_arg(v: &FilterValue) -> Arg {
    match v {
        FilterValue::Text(s) => Arg::from(s.clone()),
        FilterValue::Int(i) => Arg::from(*i),
        FilterValue::Float(x) => Arg::from(*x),
        FilterValue::Date(d) => Arg::from(*d),
        FilterValue::Bool(b) => Arg::from(*b),
        FilterValue::List(_) => Arg::Text(None),
    }
}

fn list_contains(b: &mut SqlBuilder, table: &str, f: &FieldRef, value: &str) -> String {
    let p = b.bind(value.to_string());
    match (b.backend, f) {
        (Backend::Sqlite, FieldRef::Builtin(bf)) => format!(
            "EXISTS (SELECT 1 FROM json_each({table}.{}) WHERE value = {p})",
            bf.column
        ),
        (Backend::Sqlite, FieldRef::Custom { key, .. }) => format!(
            "EXISTS (SELECT 1 FROM json_each({table}.custom_fields, '$.{key}') WHERE value = {p})"
        ),
        (Backend::Postgres, FieldRef::Builtin(bf)) => {
            format!("jsonb_exists({table}.{}, {p})", bf.column)
        }
        (Backend::Postgres, FieldRef::Custom { key, .. }) => {
            format!("jsonb_exists(COALESCE({table}.custom_fields->'{key}', '[]'::jsonb), {p})")
        }
        // One class per scheme: containing it is being it.
        (backend, FieldRef::Class { .. }) => format!("{} = {p}", field_expr(backend, table, f)),
    }
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{}%", escaped.to_lowercase())
}

fn filter_sql(b: &mut SqlBuilder, table: &str, flt: &Filter) -> String {
    let e = field_expr(b.backend, table, &flt.field);
    let is_list = flt.field.ty() == ValueType::TextList;
    match (flt.op, &flt.value) {
        (Op::IsNull, FilterValue::Bool(true)) => format!("{e} IS NULL"),
        (Op::IsNull, _) => format!("{e} IS NOT NULL"),
        (Op::Eq | Op::Contains, FilterValue::Text(s)) if is_list => {
            list_contains(b, table, &flt.field, s)
        }
        (Op::Ne, FilterValue::Text(s)) if is_list => {
            format!("NOT {}", list_contains(b, table, &flt.field, s))
        }
        (Op::In, FilterValue::List(items)) if is_list => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| {
                    if let FilterValue::Text(s) = v {
                        list_contains(b, table, &flt.field, s)
                    } else {
                        "FALSE".into()
                    }
                })
                .collect();
            format!("({})", parts.join(" OR "))
        }
        (Op::Contains, FilterValue::Text(s)) => {
            let p = b.bind(like_pattern(s));
            format!("LOWER({e}) LIKE {p} ESCAPE '\\'")
        }
        (Op::In, FilterValue::List(items)) => {
            let ps: Vec<String> = items.iter().map(|v| b.bind(value_arg(v))).collect();
            format!("{e} IN ({})", ps.join(", "))
        }
        (op, v) => {
            let p = b.bind(value_arg(v));
            let sym = match op {
                Op::Ne => return format!("({e} IS NULL OR {e} <> {p})"),
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                Op::Lte => "<=",
                _ => "=",
            };
            format!("{e} {sym} {p}")
        }
    }
}

fn cursor_arg(ty: ValueType, v: &serde_json::Value) -> Result<Arg, Reason> {
    let bad = || Reason::Other {
        zh: "分页游标与排序字段不匹配".into(),
        en: "the page cursor does not match the sort field".into(),
    };
    let s = v.as_str().ok_or_else(bad)?;
    Ok(match ty {
        ValueType::Text | ValueType::TextList => Arg::from(s.to_string()),
        ValueType::Int | ValueType::Money => Arg::from(s.parse::<i64>().map_err(|_| bad())?),
        ValueType::Float => Arg::from(s.parse::<f64>().map_err(|_| bad())?),
        ValueType::Date => Arg::from(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?),
        ValueType::Bool => Arg::from(matches!(s, "true" | "1" | "t")),
    })
}

/// What a list needs to know about its table.
pub(crate) struct ListSpec<'a> {
    pub table: &'static str,
    pub columns: &'static str,
    /// Text columns the free-text search `q` looks in.
    pub search: &'static [&'static str],
    /// SQL condition for the data scope (already with placeholders bound into the builder by `scope_sql`).
    pub scope: &'a ScopeFilter,
    /// How the scope is checked: the table's own owner/team columns or its customer's.
    pub scope_via_customer: bool,
    /// A fixed condition every row of the list meets.
    pub only: Option<&'static str>,
}

fn scope_sql(b: &mut SqlBuilder, spec: &ListSpec<'_>) -> Option<String> {
    let (owner, team) = if spec.scope_via_customer {
        ("c.owner_id", "c.team")
    } else {
        ("owner_id", "team")
    };
    let cond = match spec.scope {
        ScopeFilter::All => return None,
        ScopeFilter::Own { user_id } => format!("{owner} = {}", b.bind(*user_id)),
        ScopeFilter::Team {
            team: Some(t),
            user_id,
        } => {
            let pt = b.bind(t.clone());
            let pu = b.bind(*user_id);
            format!("({team} = {pt} OR {owner} = {pu})")
        }
        ScopeFilter::Team {
            team: None,
            user_id,
        } => format!("{owner} = {}", b.bind(*user_id)),
    };
    Some(if spec.scope_via_customer {
        format!(
            "{}.customer_id IN (SELECT c.id FROM customers c WHERE {cond})",
            spec.table
        )
    } else {
        cond.replace("owner_id", &format!("{}.owner_id", spec.table))
            .replace("(team", &format!("({}.team", spec.table))
    })
}

/// Runs a list query: one page, the cursor of the next, and (if asked) the total.
pub(crate) async fn run_list<T: Send>(
    exec: &mut impl Exec,
    spec: &ListSpec<'_>,
    q: &ListQuery,
    with_total: bool,
    decode: impl Decode<T> + Copy,
) -> Result<Page<T>, StoreError> {
    let backend = exec.backend();
    let table = spec.table;
    let mut b = SqlBuilder::new(backend, "");
    let mut conds: Vec<String> = Vec::new();
    if let Some(s) = scope_sql(&mut b, spec) {
        conds.push(s);
    }
    if let Some(only) = spec.only {
        conds.push(only.to_string());
    }
    for f in &q.filters {
        conds.push(filter_sql(&mut b, table, f));
    }
    if let Some(search) = &q.search {
        let p = b.bind(like_pattern(search));
        let ors: Vec<String> = spec
            .search
            .iter()
            .map(|c| format!("LOWER(CAST({table}.{c} AS TEXT)) LIKE {p} ESCAPE '\\'"))
            .collect();
        conds.push(format!("({})", ors.join(" OR ")));
    }
    let where_no_cursor = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let total = if with_total {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}{where_no_cursor}");
        Some(
            exec.fetch_one(&sql, b.args.clone(), crate::db::decode_n)
                .await?,
        )
    } else {
        None
    };
    let sort = sort_expr(backend, table, &q.sort.field);
    let (cmp, dir) = if q.sort.descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(Cursor { v, id }) = &q.cursor {
        let arg = cursor_arg(q.sort.field.ty(), v)
            .map_err(|r| StoreError::Invalid(ValidationErrors::single("cursor", r)))?;
        let pv = b.bind(arg);
        let pid = b.bind(*id);
        conds.push(format!(
            "({sort} {cmp} {pv} OR ({sort} = {pv} AND {table}.id {cmp} {pid}))"
        ));
    }
    let where_sql = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let limit = b.bind(i64::from(q.limit) + 1);
    b.sql = format!(
        "SELECT {cols}, CAST({sort} AS TEXT) AS sort_key FROM {table}{where_sql} ORDER BY {sort} {dir}, {table}.id {dir} LIMIT {limit}",
        cols = spec.columns
    );
    let rows: Vec<(T, String, i64)> = exec
        .fetch_all(&b.sql, b.args, |r: &dyn RowGet| {
            Ok((decode(r)?, r.text("sort_key")?, r.int("id")?))
        })
        .await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut next_cursor = None;
    let has_more = rows.len() > q.limit as usize;
    for (i, (item, key, id)) in rows.into_iter().enumerate() {
        if i == q.limit as usize {
            break;
        }
        if has_more && i + 1 == q.limit as usize {
            next_cursor = Some(
                Cursor {
                    v: serde_json::Value::String(normalize_key(&key, q.sort.field.ty())),
                    id,
                }
                .encode(),
            );
        }
        items.push(item);
    }
    Ok(Page {
        items,
        next_cursor,
        total,
    })
}

/// PostgreSQL prints booleans as `true`/`false` and dates ISO; SQLite prints
/// what it stored. Both parse back in [`cursor_arg`].
fn normalize_key(key: &str, ty: ValueType) -> String {
    match ty {
        ValueType::Date => key.get(..10).unwrap_or(key).to_string(),
        _ => key.to_string(),
    }
}
