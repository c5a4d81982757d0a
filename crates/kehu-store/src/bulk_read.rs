//! Reads of many rows for whole-base runs (classification reads every
//! customer, order, interaction and stored class). On SQLite they go
//! through rusqlite on a read-only connection of the same file, on a
//! blocking thread: sqlx's SQLite driver costs a few microseconds per row
//! (a channel hop and a boxed value per column), which is most of a run
//! over twenty million orders. The SQL, its arguments and the row decoding
//! are the same as for [`Exec::fetch_all`]; on PostgreSQL it is that call.

use crate::db::{Arg, Db, Decode, Exec};
use crate::error::StoreError;
use crate::lite::lite;
use rusqlite::OpenFlags;
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
    crate::lite::bind(&mut stmt, args)?;
    crate::lite::read_rows(&mut stmt, decode, false)
}
