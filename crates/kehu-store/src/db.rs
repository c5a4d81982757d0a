//! One API over two databases. SQL is written once with `$N` placeholders
//! (sqlx's SQLite driver accepts them); arguments travel as [`Arg`] and rows
//! are read through [`RowGet`], so repositories never branch per backend
//! except where the SQL itself differs ([`Backend`]).

use crate::error::StoreError;
use crate::lite::{LiteConn, LitePool, LiteTx};
use crate::wal_checkpoint::WalCheckpointer;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{PgPool, Postgres, Row, Sqlite, SqlitePool, Transaction};
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool on either backend. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    /// With the thread that checkpoints its file (none in memory, or when
    /// commits checkpoint themselves), where its write transactions take
    /// turns, and the connections that run its statements on the calling
    /// thread (a file database; [`crate::lite`]).
    Sqlite(
        SqlitePool,
        Option<Arc<WalCheckpointer>>,
        WriteTurns,
        Option<Arc<LitePool>>,
    ),
    Postgres(PgPool),
}

/// An open transaction on either backend. Dropped without `commit` = rolled back.
pub enum Tx {
    /// With its turn among the pool's writers, given up after the
    /// transaction (fields drop in order).
    Sqlite(Transaction<'static, Sqlite>, OwnedMutexGuard<()>),
    /// On the calling thread ([`crate::lite`]).
    Lite(LiteTx),
    Postgres(Transaction<'static, Postgres>),
}

/// A bind argument. Options bind as SQL NULL.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
    Json(Option<Value>),
    Bytes(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}
impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}
impl From<f64> for Arg {
    fn from(v: f64) -> Self {
        Arg::Float(Some(v))
    }
}
impl From<Option<f64>> for Arg {
    fn from(v: Option<f64>) -> Self {
        Arg::Float(v)
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}
impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_string))
    }
}
impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(Some(v))
    }
}
impl From<NaiveDate> for Arg {
    fn from(v: NaiveDate) -> Self {
        Arg::Date(Some(v))
    }
}
impl From<Option<NaiveDate>> for Arg {
    fn from(v: Option<NaiveDate>) -> Self {
        Arg::Date(v)
    }
}
impl From<DateTime<Utc>> for Arg {
    fn from(v: DateTime<Utc>) -> Self {
        Arg::Time(Some(v))
    }
}
impl From<Option<DateTime<Utc>>> for Arg {
    fn from(v: Option<DateTime<Utc>>) -> Self {
        Arg::Time(v)
    }
}
impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Self {
        Arg::Bytes(Some(v))
    }
}
impl From<Value> for Arg {
    fn from(v: Value) -> Self {
        Arg::Json(Some(v))
    }
}

/// `args![a, b, c]` builds a `Vec<Arg>`.
#[macro_export]
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::db::Arg::from($a)),*] };
}

macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(v),
                Arg::Float(v) => q.bind(v),
                Arg::Text(v) => q.bind(v),
                Arg::Bool(v) => q.bind(v),
                Arg::Date(v) => q.bind(v),
                Arg::Time(v) => q.bind(v),
                Arg::Json(v) => q.bind(v.map(sqlx::types::Json)),
                Arg::Bytes(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Typed column access over both row types.
pub trait RowGet {
    fn int(&self, col: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error>;
    fn float(&self, col: &str) -> Result<Option<f64>, sqlx::Error>;
    fn text(&self, col: &str) -> Result<String, sqlx::Error>;
    /// A text column borrowed from the row (no copy, for reads of millions of rows).
    fn str(&self, col: &str) -> Result<&str, sqlx::Error>;
    fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error>;
    fn boolean(&self, col: &str) -> Result<bool, sqlx::Error>;
    fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>, sqlx::Error>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error>;
    fn json(&self, col: &str) -> Result<Value, sqlx::Error>;
    fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn int(&self, col: &str) -> Result<i64, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(col)
            }
            fn float(&self, col: &str) -> Result<Option<f64>, sqlx::Error> {
                self.try_get(col)
            }
            fn text(&self, col: &str) -> Result<String, sqlx::Error> {
                self.try_get(col)
            }
            fn str(&self, col: &str) -> Result<&str, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>, sqlx::Error> {
                self.try_get(col)
            }
            fn boolean(&self, col: &str) -> Result<bool, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>, sqlx::Error> {
                self.try_get(col)
            }
            fn time(&self, col: &str) -> Result<DateTime<Utc>, sqlx::Error> {
                self.try_get(col)
            }
            fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
                self.try_get(col)
            }
            fn json(&self, col: &str) -> Result<Value, sqlx::Error> {
                let v: Option<sqlx::types::Json<Value>> = self.try_get(col)?;
                Ok(v.map(|j| j.0).unwrap_or(Value::Null))
            }
            fn opt_bytes(&self, col: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                self.try_get(col)
            }
        }
    };
}
impl_row_get!(SqliteRow);
impl_row_get!(PgRow);

/// Ids per `IN (…)` list: well under every backend's parameter limit.
pub(crate) const IDS_PER_QUERY: usize = 500;

/// The rows of `sql` for every value of `keys`: `sql` holds `{}` where
/// the `IN` list goes; [`IDS_PER_QUERY`] values per query.
pub(crate) async fn fetch_in<K: Clone + Into<Arg>, T: Send>(
    exec: &mut impl Exec,
    sql: &str,
    keys: &[K],
    decode: impl Decode<T> + Copy,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for part in keys.chunks(IDS_PER_QUERY) {
        let q = sql.replacen("{}", &in_marks(exec.backend(), part.len()), 1);
        let a: Vec<Arg> = part.iter().cloned().map(Into::into).collect();
        out.extend(exec.fetch_all(&q, a, decode).await?);
    }
    Ok(out)
}

/// Runs `sql` for every value of `keys` and adds up the rows it changed:
/// `sql` holds `{}` where the `IN` list goes (its only parameters);
/// [`IDS_PER_QUERY`] values per statement.
pub(crate) async fn execute_in<K: Clone + Into<Arg>>(
    exec: &mut impl Exec,
    sql: &str,
    keys: &[K],
) -> Result<u64, StoreError> {
    let mut changed = 0;
    for part in keys.chunks(IDS_PER_QUERY) {
        let q = sql.replacen("{}", &in_marks(exec.backend(), part.len()), 1);
        changed += exec
            .execute(&q, part.iter().cloned().map(Into::into).collect())
            .await?;
    }
    Ok(changed)
}

/// The marks of an `IN` list of `n` values that are a statement's only
/// parameters. Anonymous `?` on SQLite: sqlx looks `$N` up by name there,
/// which is quadratic in the number of parameters.
fn in_marks(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => vec!["?"; n].join(","),
        Backend::Postgres => id_marks(n),
    }
}

/// `(…),(…)` value groups for a multi-row statement: `?` on SQLite (sqlx's
/// `$N` lookup there costs a search per parameter), `$N` on PostgreSQL.
pub(crate) fn value_groups(backend: Backend, rows: usize, per_row: usize) -> String {
    (0..rows)
        .map(|i| match backend {
            Backend::Sqlite => format!("({})", vec!["?"; per_row].join(",")),
            Backend::Postgres => format!(
                "({})",
                (1..=per_row)
                    .map(|k| format!("${}", i * per_row + k))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One row's placeholders in a multi-row VALUES: `($after+1,…,$after+n)` on
/// PostgreSQL, `(?,…,?)` on SQLite — sqlx looks each `$N` up by name there,
/// which is quadratic in a statement's parameters (10,000 per statement here:
/// a million customers' classes took minutes of pure binding).
pub(crate) fn placeholders(backend: Backend, after: usize, n: usize) -> String {
    let list: Vec<String> = match backend {
        Backend::Sqlite => vec!["?".to_string(); n],
        Backend::Postgres => (after + 1..=after + n).map(|k| format!("${k}")).collect(),
    };
    format!("({})", list.join(","))
}

/// `$first, $first+1, …` (`n` placeholders) for an `IN (…)` list.
pub(crate) fn id_marks(n: usize) -> String {
    marks_from(1, n)
}

/// `$from, …, $from+n-1`.
pub(crate) fn marks_from(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|k| format!("${k}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads one record from a row.
pub trait Decode<T>: Fn(&dyn RowGet) -> Result<T, sqlx::Error> + Send + Sync {}
impl<T, F: Fn(&dyn RowGet) -> Result<T, sqlx::Error> + Send + Sync> Decode<T> for F {}

/// Runs SQL on a pool or in a transaction.
pub trait Exec: Send {
    fn backend(&self) -> Backend;
    fn execute(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    fn fetch_all<T: Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        decode: impl Decode<T>,
    ) -> impl Future<Output = Result<Vec<T>, StoreError>> + Send;
    fn fetch_optional<T: Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        decode: impl Decode<T>,
    ) -> impl Future<Output = Result<Option<T>, StoreError>> + Send;

    fn fetch_one<T: Send>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
        decode: impl Decode<T>,
    ) -> impl Future<Output = Result<T, StoreError>> + Send {
        async move {
            self.fetch_optional(sql, args, decode)
                .await?
                .ok_or(StoreError::NotFound)
        }
    }
}

fn decode_all<R: RowGet, T>(rows: Vec<R>, decode: impl Decode<T>) -> Result<Vec<T>, sqlx::Error> {
    rows.iter().map(|r| decode(r)).collect()
}

/// A connection from the pool held for several statements: one checkout
/// (on PostgreSQL, and one test on its return) instead of one per statement.
pub enum Conn {
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    Lite(LiteConn),
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

/// `Exec` for a type with one variant per backend: `$sqlite` and
/// `$postgres` bind `$c`, and `$on` is what the statements run on (the
/// pool, or the one connection of a transaction or a checkout); `$lite`
/// binds `$l`, and `$lite_on` is the [`LiteConn`] the statements run on
/// instead (a file database on SQLite).
macro_rules! exec_on {
    ($ty:ident, $lite:pat, $lite_on:expr, $sqlite:pat, $postgres:pat, $on:expr) => {
        impl Exec for $ty {
            fn backend(&self) -> Backend {
                match self {
                    $ty::Postgres(..) => Backend::Postgres,
                    _ => Backend::Sqlite,
                }
            }
            async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
                Ok(match self {
                    $lite => $lite_on.execute(sql, &args).await?,
                    $sqlite => bind_args!(sqlx::query(sql), args)
                        .execute($on)
                        .await?
                        .rows_affected(),
                    $postgres => bind_args!(sqlx::query(sql), args)
                        .execute($on)
                        .await?
                        .rows_affected(),
                })
            }
            async fn fetch_all<T: Send>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
                decode: impl Decode<T>,
            ) -> Result<Vec<T>, StoreError> {
                Ok(match self {
                    $lite => $lite_on.fetch(sql, &args, &decode, false).await?,
                    $sqlite => decode_all(
                        bind_args!(sqlx::query(sql), args).fetch_all($on).await?,
                        decode,
                    )?,
                    $postgres => decode_all(
                        bind_args!(sqlx::query(sql), args).fetch_all($on).await?,
                        decode,
                    )?,
                })
            }
            async fn fetch_optional<T: Send>(
                &mut self,
                sql: &str,
                args: Vec<Arg>,
                decode: impl Decode<T>,
            ) -> Result<Option<T>, StoreError> {
                Ok(match self {
                    $lite => $lite_on.fetch(sql, &args, &decode, true).await?.pop(),
                    $sqlite => bind_args!(sqlx::query(sql), args)
                        .fetch_optional($on)
                        .await?
                        .map(|r| decode(&r))
                        .transpose()?,
                    $postgres => bind_args!(sqlx::query(sql), args)
                        .fetch_optional($on)
                        .await?
                        .map(|r| decode(&r))
                        .transpose()?,
                })
            }
        }
    };
}

exec_on!(
    Db,
    Db::Sqlite(.., Some(l)),
    l.get()?,
    Db::Sqlite(c, ..),
    Db::Postgres(c),
    &*c
);
exec_on!(
    Tx,
    Tx::Lite(l),
    l.conn(),
    Tx::Sqlite(c, _),
    Tx::Postgres(c),
    &mut **c
);
exec_on!(
    Conn,
    Conn::Lite(l),
    l,
    Conn::Sqlite(c),
    Conn::Postgres(c),
    &mut **c
);

impl Tx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Lite(t) => t.commit().await?,
            Tx::Sqlite(t, _) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A PostgreSQL connection idle longer than this is pinged before use (the
/// server may have closed it meanwhile).
const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// How long a write waits for SQLite's one write lock (and for its turn
/// among this process's writers, [`WriteTurns`]).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The write transactions of one SQLite pool take turns here before `BEGIN
/// IMMEDIATE`. SQLite lets one connection write at a time, and one that
/// finds the lock taken sleeps in its busy handler — 1 ms, then 2, 5, 10 ms
/// … — however soon the other commits: a request's write that met the
/// audit writer's paid a millisecond or more, one request in three
/// (BENCHMARKS.md session 34). A turn here is handed on at the commit.
/// Writers of other processes (the CLI) still meet at SQLite's lock.
#[derive(Debug, Clone, Default)]
pub struct WriteTurns(Arc<tokio::sync::Mutex<()>>);

impl WriteTurns {
    /// Waits for this pool's other write transactions; as long as SQLite
    /// would wait for the lock, then fails as a busy pool does.
    async fn take(&self) -> Result<OwnedMutexGuard<()>, StoreError> {
        tokio::time::timeout(BUSY_TIMEOUT, self.0.clone().lock_owned())
            .await
            .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

/// What a process does with its SQLite connections, which decides who
/// copies the write-ahead log into the database file (its checkpoint, with
/// an fsync) and how large each connection's page cache is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A one-shot command: the commit that passes
    /// [`WAL_AUTOCHECKPOINT_PAGES`] copies the log (a bulk load ran ~13 %
    /// slower with a thread copying beside it, BENCHMARKS.md session 32),
    /// and each connection keeps [`COMMAND_CACHE_KIB`] of pages (an import
    /// re-reads the indexes it writes).
    Command,
    /// A server: a thread of the process copies the log
    /// ([`crate::wal_checkpoint`]), so requests never pay for the copy
    /// (commits copy only past [`WAL_SAFETY_NET_PAGES`]), and each
    /// connection keeps [`SERVER_CACHE_KIB`] of pages.
    Server,
}

/// A one-shot command's page cache per connection: 64 MiB.
const COMMAND_CACHE_KIB: u32 = 65_536;

/// A server's page cache per connection: SQLite's default, 2,000 KiB. In
/// WAL mode a connection drops its whole cache when another connection has
/// committed since its last read — on a server, before nearly every
/// request, as the pool's connections take turns — and the drop walks the
/// whole cache. The order request ran 0.3 ms faster at the median than with
/// 64 MiB; the server's bulk reads (ranking, the segment index) were no
/// slower (BENCHMARKS.md session 34).
const SERVER_CACHE_KIB: u32 = 2_000;

/// With commits copying, every 100 pages: at SQLite's default of 1,000
/// one request in ~30 of a stream of small writes paid 15–25 ms for the
/// copy, at 10,000 a copy took 100 ms and more (BENCHMARKS.md, session
/// 23).
const WAL_AUTOCHECKPOINT_PAGES: u32 = 100;

/// `KEHU_SQLITE_CHECKPOINT_PAGES`: commits copy every N pages, whatever
/// the process asked for.
fn explicit_checkpoint_pages() -> Result<Option<u32>, StoreError> {
    match std::env::var("KEHU_SQLITE_CHECKPOINT_PAGES") {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| {
                StoreError::Config(format!(
                    "KEHU_SQLITE_CHECKPOINT_PAGES must be a number of pages of at least 1, got {v:?}"
                ))
            }),
        Err(_) => Ok(None),
    }
}

/// With the checkpoint thread running, a commit copies the log itself only
/// past this many pages (40 MB): the thread has fallen far behind.
const WAL_SAFETY_NET_PAGES: u32 = 10_000;

impl Db {
    /// Connects by URL: `sqlite://PATH` (created if missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Db, StoreError> {
        Db::connect_with(url, Workload::Command).await
    }

    /// As [`Db::connect`], with SQLite tuned for `workload`.
    pub async fn connect_with(url: &str, workload: Workload) -> Result<Db, StoreError> {
        if url.starts_with("sqlite:") {
            crate::sqlite_alloc::configure();
            let explicit = explicit_checkpoint_pages()?;
            let background = explicit.is_none() && workload == Workload::Server;
            let pages = match (explicit, background) {
                (Some(n), _) => n,
                (None, true) => WAL_SAFETY_NET_PAGES,
                (None, false) => WAL_AUTOCHECKPOINT_PAGES,
            };
            let cache_kib = match workload {
                Workload::Command => COMMAND_CACHE_KIB,
                Workload::Server => SERVER_CACHE_KIB,
            };
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT)
                // Negative: a size in KiB rather than in pages.
                .pragma("cache_size", format!("-{cache_kib}"))
                .pragma("temp_store", "memory")
                .pragma("wal_autocheckpoint", pages.to_string());
            if let Some(path) = url
                .strip_prefix("sqlite://")
                .map(|p| p.split('?').next().unwrap_or(p))
            {
                if let Some(dir) = std::path::Path::new(path)
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
            }
            // SQLite runs each connection on its own thread: beyond the cores,
            // more connections only add thread switches (measured: the list's
            // p99 at 32 clients went from ~70 ms with 8 to ~43 ms with 4 on 2 cores).
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
            // An embedded database does not hang up: no test round trip to
            // the connection's thread before each use (sqlx still makes one
            // when the connection is given back).
            let pool = SqlitePoolOptions::new()
                .max_connections(cores + 2)
                .min_connections(1)
                .test_before_acquire(false)
                .connect_with(opts)
                .await?;
            let checkpointer = match (background, file_of(&pool)) {
                (true, Some(path)) => {
                    Some(Arc::new(WalCheckpointer::start(&path).map_err(|e| {
                        StoreError::Config(format!("cannot open {}: {e}", path.display()))
                    })?))
                }
                _ => None,
            };
            let lite = file_of(&pool)
                .map(|path| Arc::new(LitePool::new(path, cache_kib, pages, BUSY_TIMEOUT)));
            Ok(Db::Sqlite(pool, checkpointer, WriteTurns::default(), lite))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .acquire_timeout(Duration::from_secs(10))
                // sqlx pings every connection it hands out by default: a
                // round trip before each checkout, ~6 per request after an
                // order. A returned connection was pinged as it came back
                // (sqlx always does); only one idle for a while is tested
                // again before use.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PING_IDLE_AFTER {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::Config(format!(
                "database URL must start with sqlite:// or postgres://, got {url:?}"
            )))
        }
    }

    /// A transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`, waiting up to the busy timeout): a deferred one that read
    /// first cannot write once another connection has committed since
    /// (SQLITE_BUSY_SNAPSHOT, which does not wait) — and the audit writer
    /// commits after nearly every request. Every transaction here writes.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(_, _, turns, Some(lite)) => {
                let turn = turns.take().await?;
                Tx::Lite(LiteTx::begin(lite.get()?, turn).await?)
            }
            Db::Sqlite(..) => self.begin_sqlx().await?,
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// [`Db::begin`] through sqlx's own connections on SQLite too: for
    /// the demo loader's batches, bound through sqlx's statements.
    pub async fn begin_sqlx(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Db::Sqlite(p, _, turns, _) => {
                let turn = turns.take().await?;
                Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?, turn)
            }
            Db::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A statement known to run long (`VACUUM INTO`): on a file database
    /// on a blocking thread (SQLite's statements otherwise run on the
    /// calling one, [`crate::lite`]).
    pub async fn execute_long(&self, sql: &str, args: Vec<Arg>) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(.., Some(lite)) => lite.get()?.execute_long(sql, args).await,
            _ => self.clone().execute(sql, args).await,
        }
    }

    /// A connection held for several reads in a row (see [`Conn`]).
    pub async fn acquire(&self) -> Result<Conn, StoreError> {
        Ok(match self {
            Db::Sqlite(.., Some(lite)) => Conn::Lite(lite.get()?),
            Db::Sqlite(p, ..) => Conn::Sqlite(p.acquire().await?),
            Db::Postgres(p) => Conn::Postgres(p.acquire().await?),
        })
    }

    /// As [`Db::begin`]: named at call sites that read before they write.
    pub async fn begin_write(&self) -> Result<Tx, StoreError> {
        self.begin().await
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p, ..) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }

    /// Runs a multi-statement script (migrations) outside the argument machinery.
    pub(crate) async fn run_script(tx: &mut Tx, sql: &str) -> Result<(), StoreError> {
        match tx {
            Tx::Lite(t) => t.conn().batch(sql).await?,
            Tx::Sqlite(t, _) => {
                sqlx::raw_sql(sql).execute(&mut **t).await?;
            }
            Tx::Postgres(t) => {
                sqlx::raw_sql(sql).execute(&mut **t).await?;
            }
        }
        Ok(())
    }

    pub fn sqlite_pool(&self) -> Option<&SqlitePool> {
        match self {
            Db::Sqlite(p, ..) => Some(p),
            Db::Postgres(_) => None,
        }
    }

    pub fn pg_pool(&self) -> Option<&PgPool> {
        match self {
            Db::Postgres(p) => Some(p),
            Db::Sqlite(..) => None,
        }
    }
}

/// Read a single integer, e.g. `SELECT COUNT(*) AS n`.
pub fn decode_n(r: &dyn RowGet) -> Result<i64, sqlx::Error> {
    r.int("n")
}

/// Optimistic concurrency: fails with NotFound or VersionConflict unless
/// `table`'s row `id` is at `expected`. `table` is a trusted constant.
pub async fn check_version(
    exec: &mut impl Exec,
    table: &str,
    id: i64,
    expected: i64,
) -> Result<(), StoreError> {
    let sql = format!("SELECT version AS n FROM {table} WHERE id = $1");
    let current = exec.fetch_one(&sql, crate::args![id], decode_n).await?;
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::VersionConflict { expected, current })
    }
}

/// The database file behind a pool (None for an in-memory database).
pub(crate) fn file_of(pool: &SqlitePool) -> Option<std::path::PathBuf> {
    let path = pool.connect_options().get_filename().to_path_buf();
    let name = path.to_string_lossy();
    (!name.is_empty() && !name.starts_with(":memory:") && !name.contains("mode=memory"))
        .then_some(path)
}
