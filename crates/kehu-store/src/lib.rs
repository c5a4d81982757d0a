//! kehu-store: persistence on embedded SQLite (default) or PostgreSQL.
//! Invariant: every multi-statement write runs in one transaction; every
//! update checks the record's version (optimistic concurrency).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod anomalies;
pub mod audit;
pub mod backup;
pub mod bulk;
mod bulk_read;
pub mod campaigns;
pub mod cipher;
pub mod classes;
pub mod contact_merges;
pub mod dashboard;
pub mod db;
pub mod deliveries;
pub mod duplicates;
pub mod error;
pub mod facts;
pub mod feed;
pub mod imports;
pub mod intake;
pub mod jobs;
pub mod listing;
mod lite;
pub mod migrate;
pub mod model;
pub mod overrides;
pub mod predictions;
pub mod privacy;
pub mod report_schedules;
pub mod reports;
pub mod schemes;
pub mod segments;
mod sqlite_alloc;
pub mod tags;
pub mod tasks;
pub mod wal_checkpoint;

mod custom_fields;
mod customers;
mod records;
pub mod testing;
mod users;

pub use customers::{claim_job_day, Owner, SoundMatch, ROLLUP_JOB};
pub use db::{Backend, Db};
pub use error::StoreError;
pub use listing::ScopeFilter;
pub use records::Opened;
pub use users::{token_hash, NewUser, UserChange};

use chrono::NaiveDate;

/// The store: a pool plus the business calendar's "today" (Asia/Shanghai).
#[derive(Clone, Debug)]
pub struct Store {
    pub db: Db,
    /// How contacts' personal fields are sealed (none: written clear).
    pub cipher: std::sync::Arc<cipher::FieldCipher>,
    /// This process's copy of the custom field definitions (read on every
    /// customer read and write, to mask and validate).
    defs: custom_fields::DefsCache,
    /// A fixed calendar day taken as today (dated test scenarios); None:
    /// today in China.
    today: Option<NaiveDate>,
    /// The end of the audit chain (position, hash) as this process last
    /// wrote it, and the turn of its appenders ([`Store::append_audit`]).
    audit_end: std::sync::Arc<tokio::sync::Mutex<Option<(i64, String)>>>,
}

/// [`Store::refresh_statistics`] on a connection pool.
pub(crate) async fn refresh_statistics(db: &Db, tables: &[&str]) -> Result<(), StoreError> {
    use crate::db::Exec;
    let sql = match db.backend() {
        Backend::Postgres => format!("ANALYZE {}", tables.join(", ")),
        Backend::Sqlite => "PRAGMA optimize".to_string(),
    };
    db.clone().execute(&sql, vec![]).await?;
    Ok(())
}

impl Store {
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, db::Workload::Command).await
    }

    /// As [`Store::connect`]; a server asks for
    /// [`db::Workload::Server`].
    pub async fn connect_with(url: &str, workload: db::Workload) -> Result<Store, StoreError> {
        Ok(Store {
            db: Db::connect_with(url, workload).await?,
            cipher: std::sync::Arc::new(cipher::FieldCipher::none()),
            defs: Default::default(),
            today: None,
            audit_end: Default::default(),
        })
    }

    /// The store sealing personal fields with `cipher`.
    pub fn with_cipher(mut self, cipher: cipher::FieldCipher) -> Store {
        self.cipher = std::sync::Arc::new(cipher);
        self
    }

    pub async fn migrate(&self) -> Result<Vec<i64>, StoreError> {
        migrate::migrate(&self.db).await
    }

    /// After a bulk write (a demo load, a large import, sealing every
    /// contact): the planner's statistics brought up to date now rather
    /// than when autovacuum gets to them — until then PostgreSQL may plan
    /// "a customer's contacts by id" as a walk through the whole table
    /// (seconds instead of a millisecond on 1,000,000 customers). On SQLite
    /// `PRAGMA optimize` (it analyzes what needs it). `tables` are names
    /// from the code, never from input.
    pub async fn refresh_statistics(&self, tables: &[&str]) -> Result<(), StoreError> {
        refresh_statistics(&self.db, tables).await
    }

    pub fn backend(&self) -> Backend {
        use db::Exec;
        self.db.backend()
    }

    /// Today in China (UTC+8, no daylight saving), the date rollups and
    /// validation use — or the day fixed with [`Store::with_today`].
    pub fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(today_in_china)
    }

    /// This store with `day` taken as today (a frozen calendar for dated
    /// scenarios; the clock's instants stay real).
    pub fn with_today(mut self, day: NaiveDate) -> Store {
        self.today = Some(day);
        self
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        use db::Exec;
        self.db
            .clone()
            .fetch_one("SELECT CAST(1 AS BIGINT) AS n", vec![], db::decode_n)
            .await
            .map(|_| ())
    }
}

pub fn today_in_china() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// A stored JSON array of strings (aliases, product types, options).
pub(crate) fn json_list(v: serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}
