//! SQLite statements on the calling thread. sqlx's SQLite driver runs each
//! connection on a thread of its own and hands every statement there and
//! its rows back: two thread switches per statement, 76–96 µs on the
//! 2-core VMs we measure on against 3 µs for the same point query through
//! rusqlite here (BENCHMARKS.md, session 38) — most of a request that
//! writes an order and re-evaluates its customer in ~20 statements. So on
//! a file database the pool's statements, transactions and checkouts
//! ([`crate::db::Db`], [`crate::db::Tx`], [`crate::db::Conn`]) run here,
//! on rusqlite connections of the same file; sqlx's pool stays for
//! in-memory databases and the demo loader's prepared batches. Whole-base
//! reads ([`crate::bulk_read`]) and statements known to run long
//! ([`crate::db::Db::execute_long`]) go to a blocking thread instead.
//!
//! Nothing here waits on the calling thread: connections have no busy
//! timeout, and a statement that finds the database locked (another
//! process writing; this process's writers take turns before `BEGIN
//! IMMEDIATE`) is tried again after an async pause, for as long as a
//! busy timeout would have waited. The SQL, its `$N`/`?` arguments, the
//! values as stored and the rows as read are those of sqlx's driver, so
//! either path reads what the other wrote.
//!
//! *Invariant*: a connection goes back to the pool only outside a
//! transaction; a [`LiteTx`] dropped without commit rolls back before it
//! gives up its turn among the writers.

use crate::db::{Arg, Decode, RowGet};
use crate::error::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::types::{ToSqlOutput, Value as LiteValue};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::borrow::Cow;
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

/// Idle connections kept for reuse; more are opened while needed.
const KEEP_IDLE: usize = 8;
/// Prepared statements kept per connection (sqlx keeps 100).
const STATEMENT_CACHE: usize = 128;
/// The longest async pause between tries at a locked database.
const MAX_PAUSE: Duration = Duration::from_millis(20);

/// The rusqlite connections of one database file.
pub struct LitePool {
    path: PathBuf,
    /// The pragmas each connection starts with (those of sqlx's pool).
    setup: String,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for LitePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LitePool")
            .field("path", &self.path)
            .finish()
    }
}

impl LitePool {
    pub(crate) fn new(
        path: PathBuf,
        cache_kib: u32,
        checkpoint_pages: u32,
        busy_timeout: Duration,
    ) -> LitePool {
        LitePool {
            path,
            setup: format!(
                "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA cache_size = -{cache_kib}; PRAGMA temp_store = memory; \
                 PRAGMA wal_autocheckpoint = {checkpoint_pages};"
            ),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// An idle connection, or a new one.
    pub(crate) fn get(self: &Arc<Self>) -> Result<LiteConn, StoreError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        Ok(LiteConn {
            conn: Some(conn),
            pool: self.clone(),
        })
    }

    fn open(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(lite)?;
        // No waiting inside SQLite: see the module.
        conn.busy_timeout(Duration::ZERO).map_err(lite)?;
        conn.execute_batch(&self.setup).map_err(lite)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// A connection out of the pool; back into it when dropped.
pub struct LiteConn {
    conn: Option<Connection>,
    pool: Arc<LitePool>,
}

impl Drop for LiteConn {
    fn drop(&mut self) {
        // One left inside a transaction is closed, which rolls it back.
        if let Some(conn) = self.conn.take().filter(Connection::is_autocommit) {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEEP_IDLE {
                idle.push(conn);
            }
        }
    }
}

impl LiteConn {
    /// Runs `op`; while it finds the database locked, again after a pause,
    /// up to the pool's busy timeout.
    async fn run<R>(
        &mut self,
        sql: &str,
        mut op: impl FnMut(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let started = Instant::now();
        let deadline = Instant::now() + self.pool.busy_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            // Borrowed afresh each try: a `&Connection` may not be held
            // across the pause (the connection is `Send`, not `Sync`).
            let tried = match self.conn.as_ref() {
                Some(conn) => op(conn),
                None => Err(StoreError::Config(
                    "SQLite connection already closed".into(),
                )),
            };
            match tried {
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    tracing::debug!(
                        sql,
                        pause_ms = pause.as_millis() as u64,
                        "SQLite busy: trying again after a pause"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                done => {
                    // As sqlx logs its statements (`KEHU_LOG=kehu_store=debug`).
                    tracing::debug!(
                        sql,
                        elapsed_us = started.elapsed().as_micros() as u64,
                        ok = done.is_ok(),
                        "SQLite statement"
                    );
                    return done;
                }
            }
        }
    }

    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
        self.run(sql, |c| execute(c, sql, args)).await
    }

    pub(crate) async fn fetch<T>(
        &mut self,
        sql: &str,
        args: &[Arg],
        decode: &impl Decode<T>,
        first_only: bool,
    ) -> Result<Vec<T>, StoreError> {
        self.run(sql, |c| fetch(c, sql, args, decode, first_only))
            .await
    }

    /// Several statements without arguments (migrations).
    pub(crate) async fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.run(sql, |c| c.execute_batch(sql).map_err(lite)).await
    }

    /// A statement that runs long (a copy of the whole file), on a
    /// blocking thread with SQLite's own busy wait, so it holds no thread
    /// of the runtime.
    pub(crate) async fn execute_long(self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            let conn = self
                .conn
                .as_ref()
                .ok_or_else(|| StoreError::Config("SQLite connection already closed".into()))?;
            conn.busy_timeout(self.pool.busy_timeout).map_err(lite)?;
            let done = execute(conn, &sql, &args);
            conn.busy_timeout(Duration::ZERO).map_err(lite)?;
            done
        })
        .await
        .map_err(|e| StoreError::Database(sqlx::Error::AnyDriverError(Box::new(e))))?
    }
}

/// A write transaction (`BEGIN IMMEDIATE`) with its turn among the pool's
/// writers, given up after it commits or rolls back.
pub struct LiteTx {
    conn: LiteConn,
    _turn: OwnedMutexGuard<()>,
}

impl LiteTx {
    pub(crate) async fn begin(
        mut conn: LiteConn,
        turn: OwnedMutexGuard<()>,
    ) -> Result<LiteTx, StoreError> {
        conn.batch("BEGIN IMMEDIATE").await?;
        Ok(LiteTx { conn, _turn: turn })
    }

    pub(crate) fn conn(&mut self) -> &mut LiteConn {
        &mut self.conn
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        self.conn.batch("COMMIT").await
    }
}

impl Drop for LiteTx {
    fn drop(&mut self) {
        if let Some(c) = self.conn.conn.as_ref() {
            if !c.is_autocommit() && c.execute_batch("ROLLBACK").is_err() {
                // Closed instead, which rolls back too.
                drop(self.conn.conn.take());
            }
        }
    }
}

fn execute(conn: &Connection, sql: &str, args: &[Arg]) -> Result<u64, StoreError> {
    if several_statements(sql) {
        if !args.is_empty() {
            return Err(several(sql));
        }
        conn.execute_batch(sql).map_err(lite)?;
        return Ok(0);
    }
    let mut stmt = conn.prepare_cached(sql).map_err(lite)?;
    bind(&mut stmt, args)?;
    let readonly = stmt.readonly();
    let mut rows = stmt.raw_query();
    while rows.next().map_err(lite)?.is_some() {}
    drop(rows);
    Ok(if readonly { 0 } else { conn.changes() })
}

fn fetch<T>(
    conn: &Connection,
    sql: &str,
    args: &[Arg],
    decode: &impl Decode<T>,
    first_only: bool,
) -> Result<Vec<T>, StoreError> {
    if several_statements(sql) {
        return Err(several(sql));
    }
    let mut stmt = conn.prepare_cached(sql).map_err(lite)?;
    bind(&mut stmt, args)?;
    read_rows(&mut stmt, decode, first_only)
}

/// Binds `args` to `stmt` as sqlx's driver does: `$N` and `?N` name
/// argument N, a bare `?` the next one; parameters past the arguments
/// stay NULL.
pub(crate) fn bind(stmt: &mut rusqlite::Statement<'_>, args: &[Arg]) -> Result<(), StoreError> {
    let mut next = 0usize;
    for i in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(i) {
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|d| d.parse::<usize>().ok())
                .ok_or_else(|| StoreError::Config(format!("unsupported SQL parameter {name}")))?,
            None => {
                next += 1;
                next
            }
        };
        let Some(arg) = n.checked_sub(1).and_then(|k| args.get(k)) else {
            break;
        };
        stmt.raw_bind_parameter(i, BoundArg(arg)).map_err(lite)?;
    }
    Ok(())
}

/// Every row of a bound statement, decoded (only the first: `first_only`).
pub(crate) fn read_rows<T>(
    stmt: &mut rusqlite::Statement<'_>,
    decode: &impl Decode<T>,
    first_only: bool,
) -> Result<Vec<T>, StoreError> {
    let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(lite)? {
        out.push(decode(&LiteRow {
            row,
            names: &names,
            next: Cell::new(0),
        })?);
        if first_only {
            break;
        }
    }
    Ok(out)
}

/// Whether `sql` holds more than one statement: a `;` outside quotes and
/// comments with more SQL after it. rusqlite would prepare the first alone.
fn several_statements(sql: &str) -> bool {
    if !sql.contains(';') {
        return false;
    }
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                return !sql[i + 1..]
                    .trim_matches(|c: char| c == ';' || c.is_whitespace())
                    .is_empty();
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn several(sql: &str) -> StoreError {
    StoreError::Config(format!(
        "several SQL statements with arguments or rows in one call: {sql}"
    ))
}

/// A rusqlite error as sqlx reports SQLite's: a database error with the
/// extended code (unique and foreign-key violations read the same).
pub(crate) fn lite(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => {
            StoreError::Database(sqlx::Error::Database(Box::new(LiteError {
                code: f.extended_code,
                message: message.unwrap_or_else(|| f.to_string()),
            })))
        }
        other => StoreError::Database(sqlx::Error::AnyDriverError(Box::new(other))),
    }
}

fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Database(sqlx::Error::Database(d)) => d
            .try_downcast_ref::<LiteError>()
            .is_some_and(|l| l.code & 0xff == rusqlite::ffi::SQLITE_BUSY),
        _ => false,
    }
}

/// SQLite's error as [`sqlx::error::DatabaseError`].
#[derive(Debug)]
struct LiteError {
    /// The extended result code.
    code: i32,
    message: String,
}

impl std::fmt::Display for LiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for LiteError {}

impl sqlx::error::DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Owned(self.code.to_string()))
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> sqlx::error::ErrorKind {
        use rusqlite::ffi;
        use sqlx::error::ErrorKind;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

fn decode_err(col: &str, e: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: col.to_string(),
        source: e.to_string().into(),
    }
}

/// An argument as sqlx's driver stores it.
pub(crate) struct BoundArg<'a>(pub(crate) &'a Arg);

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
pub(crate) struct LiteRow<'a, 'r> {
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

#[cfg(test)]
mod tests {
    use super::several_statements;

    #[test]
    fn tells_one_statement_from_several() {
        for (sql, several) in [
            ("SELECT 1", false),
            ("SELECT 1;", false),
            ("SELECT 1; ", false),
            ("SELECT ';' AS x", false),
            ("SELECT 1 -- a; b\n", false),
            ("SELECT 1 /* ; */", false),
            ("SELECT 1; SELECT 2", true),
            ("UPDATE t SET a = ';'; DELETE FROM t", true),
        ] {
            assert_eq!(several_statements(sql), several, "{sql}");
        }
    }
}
