//! `kehu`: the command line. `kehu` alone serves the web UI and API.

mod anomalies;
mod classify;
mod dedupe;
mod demo;
mod import;
mod predict;
mod report;
mod tasks;

/// The server allocates many small short-lived values per request (rows,
/// JSON); mimalloc handles that with less contention than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use kehu_server::api::dto::UserCreate;
use kehu_server::{backups, Application, Settings};
use kehu_store::Store;
use std::io::Read;

#[derive(Parser)]
#[command(
    name = "kehu",
    version,
    about = "kehu 客户 — customer classification and relationship management"
)]
struct Cli {
    /// Database URL: sqlite://PATH or postgres://…
    #[arg(long, global = true, env = "KEHU_DATABASE_URL", default_value = Settings::DEFAULT_DATABASE_URL)]
    db: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the web UI and the JSON API (the default).
    Serve {
        #[arg(long, env = "KEHU_ADDR", default_value = Settings::DEFAULT_ADDR)]
        addr: String,
        /// Mark cookies Secure and send HSTS (when served behind TLS).
        #[arg(long, env = "KEHU_SECURE_COOKIES")]
        secure_cookies: bool,
    },
    /// Create or upgrade the database schema.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load a deterministic demo data set (includes C2024001 and C2024002).
    Demo {
        #[arg(long)]
        customers: u64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Export customers (all, or a segment's) as CSV or XLSX.
    Export {
        /// What to export: `customers`.
        kind: String,
        /// `csv` or `xlsx`.
        #[arg(long, default_value = "csv")]
        format: String,
        /// A segment expression, e.g. "华东 AND 战略型 AND NOT 投诉客户".
        #[arg(long)]
        segment: Option<String>,
        /// The file to write; standard output when absent.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Find likely duplicate records in a CSV (before importing it): prints `id1,id2,score`.
    Dedupe {
        file: std::path::PathBuf,
        /// The columns to compare, comma-separated; `NAME:KIND` sets how
        /// (text, code, company, phone, email, address), otherwise it is inferred.
        #[arg(long, value_delimiter = ',', required = true)]
        fields: Vec<String>,
        /// The column that identifies a record in the output.
        #[arg(long)]
        id_field: String,
        /// The least score (a probability, 0–1) of a reported pair.
        #[arg(long, default_value_t = 0.5)]
        threshold: f64,
        /// Add a fourth column `reasons` naming the agreeing fields.
        #[arg(long)]
        reasons: bool,
    },
    /// Import customers, contacts, orders or interactions from a CSV or
    /// workbook: checked row by row, applied in one transaction (or, with
    /// --dry-run, only checked).
    Import {
        /// customers, contacts, orders or interactions
        kind: String,
        file: std::path::PathBuf,
        /// A saved mapping (JSON: {"kind", "columns": {"header": "field" or null}});
        /// without it the columns are recognized by their headers.
        #[arg(long)]
        mapping: Option<std::path::PathBuf>,
        /// Check and count only; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// On an invalid row: `abort` imports nothing, `skip` imports the valid rows.
        #[arg(long, default_value = "abort")]
        on_invalid: String,
        /// Leave out new customers that look like existing ones.
        #[arg(long)]
        skip_suspects: bool,
        /// Write every problem (row, column, field, value, reason) to this CSV.
        #[arg(long)]
        errors: Option<std::path::PathBuf>,
        /// The user who owns the new customers (and whose team they join).
        #[arg(long)]
        owner: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Past imports: list them, or undo one as a whole.
    Imports {
        #[command(subcommand)]
        command: ImportsCommand,
    },
    /// Write an encrypted, consistent backup of the whole database to FILE
    /// (SQLite: an online snapshot; PostgreSQL: pg_dump).
    Backup { file: std::path::PathBuf },
    /// Replace the database with the backup FILE (decrypted and checked
    /// first; stop the server before). SQLite keeps the replaced database
    /// as `….before-restore`; PostgreSQL restores in one transaction.
    Restore { file: std::path::PathBuf },
    /// The encryption keys: which are configured (ids only).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The audit log: check that no entry was changed or deleted.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The 异常数据报告: check the data now, or list the open findings.
    Anomalies {
        #[command(subcommand)]
        command: AnomaliesCommand,
    },
    /// Follow-up tasks: make a period's strategy tasks, list the open ones.
    Tasks {
        #[command(subcommand)]
        command: TasksCommand,
    },
    /// A report: `classification` (class distribution, transitions,
    /// revenue, churn and repurchase by class, SLA, data quality) or
    /// `strategy` (each class's strategy goal against what happened, and
    /// its tasks) for a period; as of today, `cross_sell` (per product, the
    /// customers who never bought it in groups of the same class, industry
    /// and size that do) and `tags` (per tag: reach, change, six-month
    /// trend, repurchase and satisfaction with and without it, removal
    /// candidates) and `marketing` (per channel and campaign: reached,
    /// converted, revenue, cost, against the untouched baseline).
    Report {
        /// The report: classification, strategy, cross_sell, tags or marketing.
        kind: String,
        /// 2026-Q3, 2026-09 or 2026 (classification and strategy).
        #[arg(long)]
        period: Option<String>,
        /// The scheme's key.
        #[arg(long, default_value = "value_tier")]
        scheme: String,
        /// Only the customers of this segment expression.
        #[arg(long)]
        segment: Option<String>,
        /// json, csv, xlsx or pdf.
        #[arg(long, default_value = "json")]
        format: String,
        /// For CSV: classes (default), transitions, sla or quality;
        /// cross_sell: products (default) or groups; marketing: channels
        /// (default) or campaigns.
        #[arg(long)]
        table: Option<String>,
        /// cross_sell: the whole percent of a group that must buy a product (default 30).
        #[arg(long)]
        min_share: Option<String>,
        /// tags: the days looked back on (1–730, default 90).
        #[arg(long)]
        days: Option<String>,
        /// Churn: previous_period (default) or year.
        #[arg(long)]
        churn: Option<String>,
        /// Repurchase: within_period (default) or across_periods.
        #[arg(long)]
        repurchase: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Churn and lifetime-value prediction (BG/NBD + Gamma-Gamma).
    Predict {
        #[command(subcommand)]
        command: PredictCommand,
    },
    /// The scheduler's recurring jobs: their last runs, or run one now.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The holiday calendar that working-day deadlines count on.
    Calendar {
        #[command(subcommand)]
        command: CalendarCommand,
    },
    /// Likely duplicate customers in the database: scan them all, or list the queue.
    Duplicates {
        #[command(subcommand)]
        command: DuplicatesCommand,
    },
    /// Classify customers with the preset schemes as of a date; print the classes and store the changes.
    Classify {
        /// Only this scheme (and those it reads); repeatable.
        #[arg(long = "scheme")]
        schemes: Vec<String>,
        /// Only this customer (by code, e.g. C2024001).
        #[arg(long)]
        customer: Option<String>,
        /// The evaluation date (YYYY-MM-DD); today in China by default.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
        /// One JSON object per line: {"customer", "scheme", "class", "as_of"[, "score"]}.
        #[arg(long)]
        json: bool,
        /// Compute and print only; store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// The key file (or KEHU_KEY) in use and its keys' ids, the encrypting one first.
    Show,
    /// A new key first in the key file, then every contact re-sealed with
    /// it in small transactions while servers keep running (they re-read
    /// the key file). Older keys stay in the file: backups made with them
    /// still open.
    Rotate {
        /// Contacts per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: i64,
    },
    /// Seal now what is not sealed with the encrypting key yet: contacts
    /// written before encryption, customers' custom fields newly marked
    /// personal (a server does this in the background when it starts).
    Seal {
        /// Rows per transaction.
        #[arg(long, default_value_t = 1000)]
        batch: i64,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the chain: exit 1 and say where when an entry was changed or
    /// deleted. Prints the last entry as POS:LINK to note down.
    Verify {
        /// POS:LINK printed by an earlier run: also exit 1 when the log
        /// was cut short before that entry or the entry is not the same.
        #[arg(long)]
        anchor: Option<String>,
    },
}

#[derive(Subcommand)]
enum TasksCommand {
    /// Make the tasks every class's strategy calls for in a period (from today on); idempotent.
    Generate {
        /// 2026-Q4, 2026-12 or 2026.
        #[arg(long)]
        period: String,
        #[arg(long)]
        json: bool,
    },
    /// Open tasks as CSV, by due time.
    List {
        /// Only this user's (by username).
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Subcommand)]
enum PredictCommand {
    /// Fit on a CSV or workbook with columns frequency,recency,T[,monetary_value]
    /// (as the Python package lifetimes writes them); print the estimates as JSON.
    Fit {
        #[arg(long)]
        summary: std::path::PathBuf,
    },
    /// Fit on the database's orders and store every customer's P(alive),
    /// expected orders and lifetime value (what the daily job does).
    Run {
        /// Summarize the orders as of this day (YYYY-MM-DD); today in China by default.
        #[arg(long)]
        as_of: Option<chrono::NaiveDate>,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Each job's last run, duration, runs, failures and last error, as CSV.
    List,
    /// Run a job now unless a server holds it.
    Run { name: String },
}

#[derive(Subcommand)]
enum AnomaliesCommand {
    /// Check the data now: new findings recorded, fixed ones resolved.
    Run {
        #[arg(long)]
        json: bool,
    },
    /// The open findings as CSV, most overdue first.
    List {
        /// Only those past their due date.
        #[arg(long)]
        overdue: bool,
    },
}

#[derive(Subcommand)]
enum CalendarCommand {
    /// Print the calendar (one day per line).
    Show,
    /// Replace the calendar with FILE: `2026-10-01 国庆节`, `2026-10-10 上班 国庆调休`.
    Set { file: std::path::PathBuf },
}

#[derive(Subcommand)]
enum DuplicatesCommand {
    /// Compare every customer (name, USCC, phone, e-mail, address) and refresh the review queue.
    Scan {
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// Known duplicate pairs (CSV: two customer codes per line): report
        /// the blocking's pairs completeness and the queue's recall on them.
        #[arg(long)]
        truth: Option<std::path::PathBuf>,
    },
    /// The review queue as CSV, best first.
    List {
        /// open | rejected
        #[arg(long, default_value = "open")]
        status: String,
        /// Pairs printed (1–100000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        limit: i64,
        /// Pairs skipped first (the next page: --offset 1000).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
        offset: i64,
    },
}

#[derive(Subcommand)]
enum ImportsCommand {
    /// The latest imports, newest first.
    List,
    /// Undo an applied import: its new records deleted, its changes put back.
    Undo { id: i64 },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; without --password-stdin a one-time password is printed.
    Add {
        name: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a user's password (from stdin, or a generated one-time password).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer API token for user NAME and print it on stdout.
    Create {
        name: String,
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// List user NAME's tokens (id, label, made, last used, revoked), never the tokens.
    List { name: String },
    /// Revoke user NAME's token ID at once.
    Revoke { name: String, id: i64 },
}

/// `kehu token create|list|revoke`.
async fn token(db: &str, command: TokenCommand) -> Result<()> {
    let store = open_store(db).await?;
    let name = match &command {
        TokenCommand::Create { name, .. }
        | TokenCommand::List { name }
        | TokenCommand::Revoke { name, .. } => name.clone(),
    };
    let au = store
        .auth_user_by_name(&name)
        .await
        .map_err(|_| anyhow::anyhow!("no user named {name:?}"))?;
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "-".into())
    };
    match command {
        TokenCommand::Create { label, .. } => {
            let token = kehu_server::auth::random_token();
            let made = store.create_api_token(au.user.id, &label, &token).await?;
            println!("{token}");
            let detail = serde_json::json!({"user": name, "token": made.id, "name": label});
            audit_cli(store, db, "token.create", detail).await;
        }
        TokenCommand::List { .. } => {
            println!("id\tlabel\tcreated\tlast_used\trevoked");
            for t in store.api_tokens(au.user.id).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    when(Some(t.created_at)),
                    when(t.last_used_at),
                    when(t.revoked_at)
                );
            }
        }
        TokenCommand::Revoke { id, .. } => {
            store
                .revoke_api_token(au.user.id, id)
                .await
                .map_err(|_| anyhow::anyhow!("{name} has no token {id}"))?;
            eprintln!("token {id} of {name} revoked");
            let detail = serde_json::json!({"user": name, "token": id});
            audit_cli(store, db, "token.revoke", detail).await;
        }
    }
    Ok(())
}

/// A database URL as messages show it: its password starred.
fn shown_url(url: &str) -> String {
    kehu_core::text::redacted_url(url, kehu_core::text::UrlSecrets::Password)
}

fn read_password_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from stdin")?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// The database, migrated, sealing contacts' personal fields with the
/// configured keys (the key file made on first use, as `serve` does).
async fn open_store(url: &str) -> Result<Store> {
    let store = Store::connect(url)
        .await
        .with_context(|| format!("cannot open the database {}", shown_url(url)))?
        .with_cipher(backups::field_cipher(url, true).map_err(anyhow::Error::msg)?);
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// `kehu export customers`: every customer (the CLI is an administrator's
/// tool) or a segment's, to a file or standard output.
async fn export(
    db: &str,
    kind: &str,
    format: &str,
    segment: Option<&str>,
    out: Option<&std::path::Path>,
) -> Result<()> {
    if kind != "customers" {
        anyhow::bail!("kehu export: unknown kind {kind:?}; one of: customers");
    }
    let format = kehu_server::export::Format::parse(format)
        .map_err(|r| anyhow::anyhow!("--format: {}", r.message(kehu_core::Lang::En)))?;
    let store = open_store(db).await?;
    let settings = Settings::offline(db);
    let state = kehu_server::AppState::new(store, settings);
    // The operator of the machine reads the database itself: every field.
    let (file, n) = kehu_server::export::customers(
        &state,
        &kehu_store::ScopeFilter::All,
        &kehu_core::privacy::FieldRights::preset("admin"),
        segment,
        format,
        None,
    )
    .await
    .map_err(one_line)?;
    // From the command line: the operator of the machine, no user.
    state.audit(
        None,
        "export",
        "customers".into(),
        serde_json::json!({"format": format.extension(), "segment": segment, "rows": n, "via": "cli"}),
    );
    state.auditor.flush().await;
    match out {
        Some(path) => {
            std::fs::write(path, &file).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{n} customers written to {}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&file)
                .context("writing to standard output")?;
        }
    }
    Ok(())
}

/// `kehu backup FILE`.
async fn backup(db: &str, file: &std::path::Path) -> Result<()> {
    let keyring = backups::load_keyring(db, true).map_err(anyhow::Error::msg)?;
    let store = open_store(db).await?;
    let info = store.backup(db, &keyring, file).await?;
    audit_cli(
        store,
        db,
        "backup",
        serde_json::json!({"file": file.display().to_string(), "bytes": info.bytes, "key": info.header.key, "schema": info.header.schema}),
    )
    .await;
    eprintln!(
        "backup written to {} ({} bytes, schema {}, key {})",
        file.display(),
        info.bytes,
        info.header.schema,
        info.header.key
    );
    Ok(())
}

/// `kehu keys rotate`: the new key is written first (a crash after that
/// leaves every value readable: old keys stay), then contacts are re-sealed
/// until a pass finds none left — the last pass after running servers
/// have had time to re-read the key file and seal with the new key.
async fn rotate_keys(db: &str, batch: i64) -> Result<()> {
    if std::env::var("KEHU_KEY").is_ok() {
        anyhow::bail!(
            "the key comes from KEHU_KEY, which kehu cannot change: put it in a key file \
             (KEHU_KEY_FILE, one `kehu-key-v1:…` line), unset KEHU_KEY, then rotate"
        );
    }
    let path = backups::key_file(db);
    let old = backups::load_keyring(db, false).map_err(anyhow::Error::msg)?;
    let ring = old.with_primary(kehu_core::keyring::Key::from_bytes(rand::random()));
    backups::write_key_file(&path, &ring).map_err(anyhow::Error::msg)?;
    let primary = ring.primary().id().to_string();
    eprintln!("new key {primary} written first in {}", path.display());
    let store = Store::connect(db)
        .await
        .with_context(|| format!("cannot open the database {}", shown_url(db)))?
        .with_cipher(kehu_store::cipher::FieldCipher::new(&ring, Some(path)));
    store.migrate().await.context("migrating the database")?;
    let (contacts, customers) = reseal_all(&store, batch, true).await?;
    let left = store.contacts_to_reseal().await?;
    audit_cli(
        store,
        db,
        "keys.rotate",
        serde_json::json!({"key": primary, "contacts": contacts, "customers": customers, "left": left}),
    )
    .await;
    println!("key {primary} encrypts; {contacts} contacts re-sealed, {customers} customers and web-form leads re-sealed");
    for k in &ring.keys()[1..] {
        println!("key {} still decrypts (older backups)", k.id());
    }
    if left > 0 {
        // Written by a server that could not re-read the key file: they
        // still open (the old key stays); a server seals them when it starts.
        eprintln!("warning: {left} contacts are still sealed with an older key; a server re-seals them when it starts");
    }
    Ok(())
}

/// Re-seals contacts (with a progress bar), customers' personal custom
/// fields and web-form leads until a pass finds nothing left; with
/// `settle`, passes after the first wait until running servers have
/// re-read the key file. Returns the contacts and the other records sealed.
async fn reseal_all(store: &Store, batch: i64, settle: bool) -> Result<(u64, u64)> {
    let (mut contacts, mut customers) = (0, 0);
    for pass in 0..10 {
        if pass > 0 && settle {
            tokio::time::sleep(
                kehu_store::cipher::RELOAD_INTERVAL + std::time::Duration::from_secs(1),
            )
            .await;
        }
        let todo = store.contacts_to_reseal().await?;
        let bar = indicatif::ProgressBar::new(u64::try_from(todo).unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} contacts sealed, eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let c = store
            .reseal_contacts(batch, |n| bar.set_position(n))
            .await?;
        bar.finish_and_clear();
        let k = store.reseal_customers(batch).await?;
        let l = store.reseal_leads(batch).await?;
        contacts += c.sealed;
        customers += k.sealed + l.sealed;
        let quiet = c.sealed + c.skipped + k.sealed + k.skipped + l.sealed + l.skipped == 0;
        if quiet && (pass > 0 || !settle) {
            break;
        }
    }
    // Every row rewritten: the planner's statistics with them.
    store
        .refresh_statistics(&["contacts", "customers", "leads"])
        .await?;
    Ok((contacts, customers))
}

/// `kehu keys seal`: what is not sealed with the primary key yet, now.
async fn seal_now(db: &str, batch: i64) -> Result<()> {
    let store = open_store(db).await?;
    let (contacts, customers) = reseal_all(&store, batch, false).await?;
    println!("{contacts} contacts sealed, {customers} customers and web-form leads sealed");
    Ok(())
}

/// `kehu restore FILE`: the database replaced, then migrated to this version.
async fn restore(db: &str, file: &std::path::Path) -> Result<()> {
    let keyring = backups::load_keyring(db, false).map_err(anyhow::Error::msg)?;
    let info = kehu_store::backup::restore(db, &keyring, file).await?;
    let store = open_store(db).await?;
    let customers = store.customer_count().await?;
    audit_cli(
        store,
        db,
        "restore",
        serde_json::json!({"file": file.display().to_string(), "made": info.header.created_at, "schema": info.header.schema, "key": info.header.key}),
    )
    .await;
    eprintln!(
        "restored {} (made {}, schema {}): {customers} customers{}",
        file.display(),
        info.header.created_at.format("%Y-%m-%d %H:%M UTC"),
        info.header.schema,
        info.previous
            .map(|p| format!("; the replaced database is kept as {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}

/// An audit entry for an operator's command (no user), stored before returning.
async fn audit_cli(store: Store, db: &str, action: &str, detail: serde_json::Value) {
    let state = kehu_server::AppState::new(store, Settings::offline(db));
    state.audit(None, action, "database".into(), detail);
    state.auditor.flush().await;
}

/// `kehu audit verify`: the chain end to end (and against an anchor noted
/// earlier); its last entry as an anchor to note down.
async fn audit_verify(db: &str, anchor: Option<&str>) -> Result<()> {
    let anchor = anchor
        .map(|a| {
            kehu_core::audit::Anchor::parse(a).ok_or_else(|| {
                anyhow::anyhow!(
                    "--anchor: expected POS:LINK as printed by kehu audit verify, got {a:?} / 应为 kehu audit verify 打印的“位置:链接”，收到 {a:?}"
                )
            })
        })
        .transpose()?;
    let store = open_store(db).await?;
    match store.verify_audit(anchor.as_ref()).await? {
        Ok(v) => {
            println!("audit log intact: {} entries", v.entries);
            match v.keyed_from {
                Some(1) => println!("every entry linked under a key from the key file"),
                Some(p) => println!(
                    "entries {p}–{} linked under a key from the key file; 1–{} by plain hashes (written before keyed links)",
                    v.entries,
                    p - 1
                ),
                None if v.entries > 0 => println!(
                    "no entry is linked under a key: the chain shows order, not who could rewrite it"
                ),
                None => {}
            }
            if let Some(a) = &anchor {
                println!("entry {} is as noted", a.pos);
            }
            if v.entries > 0 {
                println!("anchor to note down: {}:{}", v.entries, v.last_hash);
            }
            Ok(())
        }
        Err(b) => anyhow::bail!("audit log broken: {b}"),
    }
}

/// Field errors of the domain as one line, for stderr.
fn one_line(e: kehu_server::error::ApiError) -> anyhow::Error {
    let (_, detail) = e.texts(kehu_core::Lang::En);
    anyhow::anyhow!(detail)
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEHU_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("kehu: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command.unwrap_or(Command::Serve {
        addr: std::env::var("KEHU_ADDR").unwrap_or_else(|_| Settings::DEFAULT_ADDR.into()),
        secure_cookies: false,
    }) {
        Command::Serve {
            addr,
            secure_cookies,
        } => serve(&cli.db, &addr, secure_cookies).await,
        Command::Migrate => {
            let store = Store::connect(&cli.db)
                .await
                .with_context(|| format!("cannot open the database {}", cli.db))?;
            let applied = store.migrate().await?;
            println!(
                "{}",
                if applied.is_empty() {
                    "database is up to date".to_string()
                } else {
                    format!("applied migrations {applied:?}")
                }
            );
            Ok(())
        }
        Command::User { command } => user(&cli.db, command).await,
        Command::Backup { file } => backup(&cli.db, &file).await,
        Command::Restore { file } => restore(&cli.db, &file).await,
        Command::Keys {
            command: KeysCommand::Show,
        } => {
            let ring = backups::load_keyring(&cli.db, false).map_err(anyhow::Error::msg)?;
            match std::env::var("KEHU_KEY") {
                Ok(_) => println!("keys from KEHU_KEY"),
                Err(_) => println!("key file {}", backups::key_file(&cli.db).display()),
            }
            for (i, k) in ring.keys().iter().enumerate() {
                println!(
                    "{} {}",
                    k.id(),
                    if i == 0 { "encrypts" } else { "decrypts" }
                );
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { batch },
        } => rotate_keys(&cli.db, batch.max(1)).await,
        Command::Keys {
            command: KeysCommand::Seal { batch },
        } => seal_now(&cli.db, batch.max(1)).await,
        Command::Token { command } => token(&cli.db, command).await,
        Command::Demo { customers, seed } => demo::run(&cli.db, customers, seed).await,
        Command::Export {
            kind,
            format,
            segment,
            out,
        } => export(&cli.db, &kind, &format, segment.as_deref(), out.as_deref()).await,
        Command::Dedupe {
            file,
            fields,
            id_field,
            threshold,
            reasons,
        } => dedupe::run(&dedupe::Options {
            file,
            fields,
            id_field,
            threshold,
            reasons,
        }),
        Command::Import {
            kind,
            file,
            mapping,
            dry_run,
            on_invalid,
            skip_suspects,
            errors,
            owner,
            json,
        } => {
            import::run(
                &cli.db,
                import::Options {
                    kind,
                    file,
                    mapping,
                    dry_run,
                    on_invalid,
                    skip_suspects,
                    errors,
                    owner,
                    json,
                },
            )
            .await
        }
        Command::Audit {
            command: AuditCommand::Verify { anchor },
        } => audit_verify(&cli.db, anchor.as_deref()).await,
        Command::Anomalies { command } => match command {
            AnomaliesCommand::Run { json } => anomalies::run(&cli.db, json).await,
            AnomaliesCommand::List { overdue } => anomalies::list(&cli.db, overdue).await,
        },
        Command::Tasks { command } => match command {
            TasksCommand::Generate { period, json } => {
                tasks::generate(&cli.db, &period, json).await
            }
            TasksCommand::List { owner } => tasks::list(&cli.db, owner.as_deref()).await,
        },
        Command::Report {
            kind,
            period,
            scheme,
            segment,
            format,
            table,
            min_share,
            days,
            churn,
            repurchase,
            out,
        } => {
            report::run(
                &cli.db,
                report::Options {
                    kind,
                    period,
                    scheme,
                    segment,
                    format,
                    table,
                    min_share,
                    days,
                    churn,
                    repurchase,
                    out,
                },
            )
            .await
        }
        Command::Predict { command } => match command {
            PredictCommand::Fit { summary } => predict::fit(&summary),
            PredictCommand::Run { as_of } => predict::run(&cli.db, as_of).await,
        },
        Command::Jobs { command } => match command {
            JobsCommand::List => tasks::jobs(&cli.db).await,
            JobsCommand::Run { name } => tasks::run_job(&cli.db, &name).await,
        },
        Command::Calendar { command } => match command {
            CalendarCommand::Show => anomalies::show_calendar(&cli.db).await,
            CalendarCommand::Set { file } => anomalies::set_calendar(&cli.db, &file).await,
        },
        Command::Duplicates { command } => match command {
            DuplicatesCommand::Scan { json, truth } => {
                dedupe::scan(&cli.db, json, truth.as_deref()).await
            }
            DuplicatesCommand::List {
                status,
                limit,
                offset,
            } => dedupe::list(&cli.db, &status, limit, offset).await,
        },
        Command::Imports { command } => match command {
            ImportsCommand::List => import::list(&cli.db).await,
            ImportsCommand::Undo { id } => import::undo(&cli.db, id).await,
        },
        Command::Classify {
            schemes,
            customer,
            as_of,
            json,
            dry_run,
        } => {
            classify::run(
                &cli.db,
                classify::Options {
                    schemes,
                    customer,
                    as_of,
                    json,
                    dry_run,
                },
            )
            .await
        }
    }
}

async fn serve(db: &str, addr: &str, secure_cookies: bool) -> Result<()> {
    let app = Application::build(Settings {
        database_url: db.to_string(),
        addr: addr.to_string(),
        secure_cookies,
        run_jobs: true,
        mail: kehu_server::mail::MailSettings::from_env().map_err(anyhow::Error::msg)?,
        keyring: Some(backups::load_keyring(db, true).map_err(anyhow::Error::msg)?),
        key_file: backups::key_source(db),
        rate_limit: kehu_server::rate_limit::RateLimit::from_env().map_err(anyhow::Error::msg)?,
        trusted_proxies: kehu_server::client_addr::TrustedProxies::from_env()
            .map_err(anyhow::Error::msg)?,
        backups: backups::BackupSettings::from_env(db).map_err(anyhow::Error::msg)?,
        audit_anchors: kehu_server::anchors::file_from_env(db),
        today: None,
    })
    .await?;
    first_run_admin(app.store()).await?;
    let local = app
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| addr.to_string());
    eprintln!(
        "kehu 正在运行 / serving: http://{local}  (database: {})",
        shown_url(db)
    );
    app.run(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("server stopped")
}

/// On an empty database, creates `admin` with a one-time password printed once.
async fn first_run_admin(store: &Store) -> Result<()> {
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let created = kehu_server::api::users::create_user(
        store,
        UserCreate {
            username: "admin".into(),
            display_name: Some("管理员".into()),
            role: "admin".into(),
            team: None,
            password: None,
        },
    )
    .await
    .map_err(one_line)?;
    let password = created.initial_password.unwrap_or_default();
    eprintln!();
    eprintln!("  首次运行：已创建管理员账号 / first run: created the administrator");
    eprintln!("    用户名 username: admin");
    eprintln!("    一次性密码 one-time password: {password}");
    eprintln!("  请登录后修改密码；此密码不会再次显示。 Change it after signing in; it is not shown again.");
    eprintln!();
    Ok(())
}

async fn user(db: &str, command: UserCommand) -> Result<()> {
    let store = open_store(db).await?;
    match command {
        UserCommand::Add {
            name,
            role,
            team,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let created = kehu_server::api::users::create_user(
                &store,
                UserCreate {
                    username: name,
                    display_name: None,
                    role,
                    team,
                    password,
                },
            )
            .await
            .map_err(one_line)?;
            match created.initial_password {
                Some(p) => println!(
                    "created user {} (role {}); one-time password: {p}",
                    created.user.username, created.user.role
                ),
                None => println!(
                    "created user {} (role {})",
                    created.user.username, created.user.role
                ),
            }
        }
        UserCommand::List => {
            let q = kehu_core::query::parse_list_query(
                &[("limit".into(), "500".into())],
                kehu_core::query::USER_FIELDS,
                &[],
                "username",
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut cursor = None;
            loop {
                let mut q = q.clone();
                q.cursor = cursor;
                let page = store.list_users(&q).await?;
                for u in page.items {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.username,
                        u.display_name,
                        u.role,
                        u.team.unwrap_or_default(),
                        if u.active { "active" } else { "disabled" }
                    );
                }
                match page.next_cursor {
                    Some(c) => {
                        cursor = Some(
                            kehu_core::query::Cursor::decode(&c)
                                .map_err(|r| anyhow::anyhow!("{r}"))?,
                        )
                    }
                    None => break,
                }
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let au = store
                .auth_user_by_name(&name)
                .await
                .map_err(|_| anyhow::anyhow!("no user named {name:?}"))?;
            let (password, generated) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (kehu_server::auth::random_password(), true)
            };
            if let Err(r) = kehu_server::auth::check_password_policy(&password, &name) {
                bail!("password: {r}");
            }
            let hash = kehu_server::auth::hash_password(&password).map_err(one_line)?;
            store
                .set_password(au.user.id, &hash, generated, None)
                .await?;
            if generated {
                println!("new one-time password for {name}: {password}");
            } else {
                println!("password of {name} changed; their sessions were ended");
            }
        }
    }
    Ok(())
}
