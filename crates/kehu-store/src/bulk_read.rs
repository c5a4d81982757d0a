//! Reads of many rows for whole-base runs (classification reads every
//! customer, order, interaction and stored class). On SQLite they go
//! through rusqlite on a read-only connection of the same file, on a
//! blocking thread: sqlx's SQLite driver costs a few microseconds per row
//! (a channel hop and a boxed value per column), which is most of a run
//! over twenty million orders. The SQL, its arguments and the row decoding
//! are the same as for [`Exec::fetch_all`]; on PostgreSQL it is that call.

use crate::db::{Arg, Db, Decode, Exec, RowGet};
use crate::error::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{ToSqlOutput, Value as LiteValue};
use rusqlite::{OpenFlags, ToSql};
use std::cell::Cell;
use std::time::Duration;

/// How a read goes: many rows (a batch of a whole-base run), or one customer's.
#[derive(Clone, Copy)]
pub(crate) enum Read {
    Bulk,
    One,
}

impl Read {
    pub(crate) async fn all<T: Send + 'static>(
        self,
        db: &mut Db,
        sql: &str,
        args: Vec<Arg>,
        decode: impl Decode<T> + 'static,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Read::Bulk => db.fetch_bulk(sql, args, decode).await,
            Read::One => db.fetch_all(sql, args, decode).await,
        }
    }
}

impl Db {
    /// Every row of a query, decoded; for reads of many rows (see the module).
    pub(crate) async fn fetch_bulk<T, D>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        decode: D,
    ) -> Result<Vec<T>, StoreError>
    where
        T: Send + 'static,
        D: Decode<T> + 'static,
    {
        let path = match self {
            Db::Sqlite(pool, ..) => crate::db::file_of(pool),
            Db::Postgres(_) => None,
        };
        let Some(path) = path else {
            return self.fetch_all(sql, args, decode).await;
        };
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || read_sqlite(&path, &sql, &args, &decode))
            .await
            .map_err(|e| StoreError::Database(sqlx::Error::AnyDriverError(Box::new(e))))?
    }
}

fn read_sqlite<T>(
    path: &std::path::Path,
    sql: &str,
    args: &[Arg],
    decode: &impl Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(lite)?;
    conn.busy_timeout(Duration::from_secs(30)).map_err(lite)?;
    let mut stmt = conn.prepare(sql).map_err(lite)?;
    // `$N` are named parameters to SQLite: bind each by its name.
    for (n, arg) in args.iter().enumerate() {
        if let Some(i) = stmt.parameter_index(&format!("${}", n + 1)).map_err(lite)? {
            stmt.raw_bind_parameter(i, BoundArg(arg)).map_err(lite)?;
        }
    }
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(lite)? {
        out.push(decode(&LiteRow {
            row,
            names: &names,
            next: Cell::new(0),
        })?);
    }
    Ok(out)
}

fn lite(e: rusqlite::Error) -> StoreError {
    StoreError::Database(sqlx::Error::AnyDriverError(Box::new(e)))
}

fn decode_err(col: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: e.to_string().into(),
    }
}

struct BoundArg<'a>(&'a Arg);

impl ToSql for BoundArg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let v = match self.0 {
            Arg::Int(v) => v.map(LiteValue::Integer),
            Arg::Float(v) => v.map(LiteValue::Real),
            Arg::Text(v) => v.clone().map(LiteValue::Text),
            Arg::Bool(v) => v.map(|b| LiteValue::Integer(b.into())),
            // As sqlx writes them, so comparisons with stored values hold.
            Arg::Date(v) => v.map(|d| LiteValue::Text(d.format("%Y-%m-%d").to_string())),
            Arg::Time(v) => {
                v.map(|t| LiteValue::Text(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)))
            }
            Arg::Json(v) => v.as_ref().map(|j| LiteValue::Text(j.to_string())),
            Arg::Bytes(v) => v.clone().map(LiteValue::Blob),
        };
        Ok(ToSqlOutput::Owned(v.unwrap_or(LiteValue::Null)))
    }
}

/// A row and its statement's column names. Columns are looked up by name
/// in Rust, starting where the last lookup ended (decoders read columns in
/// order): rusqlite's lookup by name asks SQLite for every column's name
/// on every call, which was a tenth of a whole-base run.
struct LiteRow<'a, 'r> {
    row: &'a rusqlite::Row<'r>,
    names: &'a [String],
    next: Cell<usize>,
}

impl LiteRow<'_, '_> {
    fn index(&self, col: &str) -> Result<usize, sqlx::Error> {
        let start = self.next.get();
        let at = (start..self.names.len())
            .chain(0..start)
            .find(|&i| self.names[i].eq_ignore_ascii_case(col))
            .ok_or_else(|| decode_err(col, "no such column"))?;
        self.next.set(at + 1);
        Ok(at)
    }

    fn get<V: rusqlite::types::FromSql>(&self, col: &str) -> Result<V, sqlx::Error> {
        let at = self.index(col)?;
        self.row.get(at).map_err(|e| decode_err(col, e))
    }
}

impl RowGet for LiteRow<'_, '_> {
    fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
        self.get(col)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
        self.get(col)
    }
    fn float(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
        self.get(col)
    }
    fn text(&self, col: &str) -> Result<String, sqlx::Error> {
        self.get(col)
    }
    fn str(&self, col: &str) -> Result<&str, sqlx::Error> {
        let at = self.index(col)?;
        self.row
            .get_ref(at)
            .and_then(|v| v.as_str().map_err(Into::into))
            .map_err(|e| decode_err(col, e))
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
        self.get(col)
    }
    fn boolean(&self, col: &str) -> Result<bool, sqlx::Error> {
        self.get(col)
    }
    fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>, sqlx::Error> {
        let text: Option<String> = self.get(col)?;
        text.map(|t| t.parse::<NaiveDate>().map_err(|e| decode_err(col, e)))
            .transpose()
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
        self.opt_time(col)?
            .ok_or_else(|| decode_err(col, "unexpected NULL"))
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let text: Option<String> = self.get(col)?;
        text.map(|t| parse_time(&t).ok_or_else(|| decode_err(col, format!("not a time: {t}"))))
            .transpose()
    }
    fn json(&self, col: &str) -> Result<serde_json::Value, sqlx::Error> {
        let text: Option<String> = self.get(col)?;
        match text {
            None => Ok(serde_json::Value::Null),
            Some(t) => serde_json::from_str(&t).map_err(|e| decode_err(col, e)),
        }
    }
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
        self.get(col)
    }
}

/// A time as sqlx stores it in SQLite (RFC 3339, with a space or a `T`).
fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(t)
        .or_else(|_| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .map(|d| d.with_timezone(&Utc))
        .ok()
}
