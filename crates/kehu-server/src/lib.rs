//! kehu-server: the JSON API, its OpenAPI document, the server-rendered
//! htmx UI and background jobs, on top of kehu-store and kehu-core.
//! Invariant: handlers only translate between HTTP and the domain; every
//! error leaves through `error::ApiError` (problem+json) or a UI error page.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod anchors;
pub mod anomalies;
pub mod api;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod campaigns;
pub mod classifier;
pub mod client_addr;
pub mod contact_duplicates;
pub mod crosssell;
pub mod dashboard;
pub mod deliveries;
pub mod duplicates;
pub mod error;
pub mod export;
pub mod imports;
pub mod intake;
pub mod jobs;
pub mod mail;
pub mod openapi;
pub mod pdf;
pub mod predict;
pub mod privacy;
pub mod rate_limit;
pub mod reports;
pub mod roles;
pub mod schedules;
pub mod segments;
pub mod tabular;
pub mod tasks;
pub mod ui;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use kehu_store::Store;
use std::net::SocketAddr;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the server listens and on what; from CLI flags, `KEHU_*` variables and defaults.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    pub addr: String,
    /// Mark cookies Secure and send HSTS (set when served behind TLS).
    pub secure_cookies: bool,
    /// Run background jobs (rollup refresh, session cleanup) in this process.
    pub run_jobs: bool,
    /// Outgoing e-mail (scheduled reports); None: no e-mail is sent.
    pub mail: Option<mail::MailSettings>,
    /// The encryption keys (backups, contacts' personal fields); None:
    /// none configured, personal fields are written clear.
    pub keyring: Option<kehu_core::keyring::Keyring>,
    /// The key file `keyring` came from, re-read after a rotation (None:
    /// the keys came from the configuration).
    pub key_file: Option<std::path::PathBuf>,
    /// Requests per minute per client (`KEHU_RATE_LIMIT`); None: no limit.
    pub rate_limit: Option<rate_limit::RateLimit>,
    /// Reverse proxies whose `X-Forwarded-For` names the client
    /// (`KEHU_TRUSTED_PROXIES`); none by default.
    pub trusted_proxies: client_addr::TrustedProxies,
    /// Where the weekly backup goes; None: no scheduled backup.
    pub backups: Option<backups::BackupSettings>,
    /// The file the daily audit anchors are appended to (`KEHU_AUDIT_ANCHORS`);
    /// None: they are only sent to the auditors.
    pub audit_anchors: Option<std::path::PathBuf>,
    /// A calendar day the server takes as today (dated test scenarios);
    /// None: today in China.
    pub today: Option<chrono::NaiveDate>,
}

/// Printed without the database password (keys and mail settings print
/// redacted themselves).
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "database_url",
                &kehu_core::text::redacted_url(
                    &self.database_url,
                    kehu_core::text::UrlSecrets::Password,
                ),
            )
            .field("addr", &self.addr)
            .field("secure_cookies", &self.secure_cookies)
            .field("run_jobs", &self.run_jobs)
            .field("mail", &self.mail)
            .field("keyring", &self.keyring)
            .field("key_file", &self.key_file)
            .field("rate_limit", &self.rate_limit)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("backups", &self.backups)
            .field("audit_anchors", &self.audit_anchors)
            .field("today", &self.today)
            .finish()
    }
}

impl Settings {
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://kehu-data/kehu.db";
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:8080";

    /// For the services without serving (the CLI's commands, tests): no
    /// address, no jobs.
    pub fn offline(database_url: &str) -> Settings {
        Settings {
            database_url: database_url.to_string(),
            addr: String::new(),
            secure_cookies: false,
            run_jobs: false,
            mail: None,
            keyring: None,
            key_file: None,
            rate_limit: None,
            trusted_proxies: client_addr::TrustedProxies::default(),
            backups: None,
            audit_anchors: None,
            today: None,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub classifier: classifier::Classifier,
    pub segments: segments::Segments,
    pub settings: std::sync::Arc<Settings>,
    pub ui: std::sync::Arc<ui::Templates>,
    pub auditor: audit::Auditor,
    pub tag_rules: api::tags::TagRuleCache,
}

impl AppState {
    /// The services of one process over `store` (what the server runs, and
    /// what the CLI uses for the same work without serving).
    pub fn new(store: Store, settings: Settings) -> AppState {
        AppState {
            classifier: classifier::Classifier::new(store.clone()),
            segments: segments::Segments::new(store.clone()),
            auditor: audit::Auditor::spawn(store.clone()),
            tag_rules: api::tags::TagRuleCache::default(),
            store,
            settings: std::sync::Arc::new(settings),
            ui: std::sync::Arc::new(ui::Templates::new()),
        }
    }

    /// Records an audit entry (written in the background, never blocking).
    pub fn audit(
        &self,
        user: Option<&auth::CurrentUser>,
        action: &str,
        target: String,
        detail: serde_json::Value,
    ) {
        self.auditor
            .record(audit::entry(user, action, target, detail));
    }

    /// After a write to a customer's data: its classes are re-evaluated,
    /// then the tag rules re-applied to it (they may read the classes).
    /// Failures are logged: the write itself has been stored.
    pub async fn after_data_change(&self, customer_id: i64, by: i64) {
        // One read of what the compiled schemes and the tag rules depend on
        // serves both steps.
        let (tags, set) = match api::tags::catalogue_now(self).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(customer_id, error = ?e, "reading the published schemes after a data change failed");
                return;
            }
        };
        self.classifier
            .after_data_change(set.clone(), customer_id, by)
            .await;
        self.tag_rules_after(tags, set, customer_id).await;
    }

    /// A new record of a customer's written by `open` in a transaction it
    /// leaves open, committed with the customer's re-evaluated classes;
    /// then the tag rules re-applied to it, as
    /// [`after_data_change`](Self::after_data_change) does after a write of
    /// its own. Should the
    /// re-evaluation fail, the record is written again on its own — the data
    /// counts more than its classes, which the daily run catches up — and
    /// the failure logged.
    pub async fn write_reclassified<T, Fut>(
        &self,
        customer_id: i64,
        by: i64,
        open: impl Fn() -> Fut,
    ) -> Result<T, error::ApiError>
    where
        Fut: std::future::Future<Output = Result<kehu_store::Opened<T>, kehu_store::StoreError>>,
    {
        let (tags, set) = match api::tags::catalogue_now(self).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(customer_id, error = ?e, "reading the published schemes before a data change failed");
                return Ok(open().await?.commit().await?);
            }
        };
        let written = match self
            .classifier
            .commit_reclassified(set.clone(), open().await?, by)
            .await
        {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(customer_id, error = %e, "re-evaluating a customer with its new record failed; the record is written on its own");
                open().await?.commit().await?
            }
        };
        self.tag_rules_after(tags, set, customer_id).await;
        Ok(written)
    }

    async fn tag_rules_after(
        &self,
        tags: kehu_store::tags::TagsStamp,
        set: std::sync::Arc<classifier::SchemeSet>,
        customer_id: i64,
    ) {
        if let Err(e) = api::tags::apply_rules_at(self, tags, set, Some(&[customer_id])).await {
            tracing::warn!(customer_id, error = ?e, "re-applying tag rules after a data change failed");
        }
    }
}

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn router(state: AppState) -> Router {
    let openapi_json = serde_json::to_string(&openapi::document()).unwrap_or_default();
    let hsts = state.settings.secure_cookies;
    // File uploads (imports) may be larger than other requests.
    let uploads = Router::new()
        .route(
            "/api/v1/imports",
            get(api::imports::list).post(api::imports::upload),
        )
        .merge(ui::upload_router())
        .layer(axum::extract::DefaultBodyLimit::max(
            api::imports::UPLOAD_LIMIT,
        ))
        .layer(RequestBodyLimitLayer::new(api::imports::UPLOAD_LIMIT));
    let rate_limit = state.settings.rate_limit;
    let trusted_proxies = std::sync::Arc::new(state.settings.trusted_proxies.clone());
    let mut app = Router::new()
        .nest("/api/v1", api::router())
        .route(
            "/api/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    openapi_json.clone(),
                )
            }),
        )
        .route("/healthz", get(healthz))
        .merge(ui::router())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .merge(uploads)
        .with_state(state);
    if let Some(limit) = rate_limit {
        app = app.layer(axum::middleware::from_fn_with_state(
            rate_limit::Limiter::new(limit),
            rate_limit::limit,
        ));
    }
    // Outside the rate limits, which count by the address it resolves.
    let app = app.layer(axum::middleware::from_fn_with_state(
        trusted_proxies,
        client_addr::resolve,
    ));
    let mut app = app
        // A handler that panics answers 500 problem+json (and the
        // connection stays) instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        // outside the body limit, so that its 413 is a problem too
        .layer(axum::middleware::from_fn(error::localize_problems))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
        ));
    if hsts {
        app = app.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    app
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// The server, built once and used by `main`, the CLI and the tests.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    /// Connects, migrates and binds (port 0 picks a free port).
    pub async fn build(settings: Settings) -> Result<Application, BuildError> {
        // No request pays for copying SQLite's log into its file.
        let mut store =
            Store::connect_with(&settings.database_url, kehu_store::db::Workload::Server).await?;
        if let Some(ring) = &settings.keyring {
            store = store.with_cipher(kehu_store::cipher::FieldCipher::new(
                ring,
                settings.key_file.clone(),
            ));
        }
        if let Some(day) = settings.today {
            store = store.with_today(day);
        }
        store.migrate().await?;
        let listener = tokio::net::TcpListener::bind(&settings.addr)
            .await
            .map_err(|e| BuildError::Bind(settings.addr.clone(), e))?;
        let state = AppState::new(store, settings);
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until ctrl-c / SIGTERM (or forever in tests).
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        if self.state.settings.run_jobs {
            jobs::spawn(self.state.clone());
            let segments = self.state.segments.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                match segments.warm().await {
                    Ok(()) => tracing::info!(
                        ms = started.elapsed().as_millis() as u64,
                        "loaded the segment index"
                    ),
                    Err(e) => {
                        tracing::warn!(error = ?e, "loading the segment index failed; the first query loads it")
                    }
                }
            });
            // Contacts written before encryption (an upgrade) or under an
            // older key are sealed in the background; they read and are
            // found meanwhile.
            let store = self.state.store.clone();
            tokio::spawn(async move {
                match store.reseal(1000, |_| ()).await {
                    Ok(r) if r.sealed > 0 => {
                        tracing::info!(sealed = r.sealed, "sealed personal fields")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "sealing personal fields failed")
                    }
                }
            });
        }
        let store = self.state.store.clone();
        let auditor = self.state.auditor.clone();
        let app = router(self.state);
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        // The audit entries of the last requests are written before the
        // database closes (they are written in the background).
        if tokio::time::timeout(std::time::Duration::from_secs(5), auditor.flush())
            .await
            .is_err()
        {
            tracing::error!("audit entries of the last requests could not be written at shutdown");
        }
        // Connections closed in order: the last one folds the log into the
        // database file (SQLite), rather than leaving it to the next open;
        // a job still holding one is not waited for long.
        if tokio::time::timeout(std::time::Duration::from_secs(5), store.db.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "a job still held a database connection at shutdown; stopping without it"
            );
        }
        served
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Store(#[from] kehu_store::StoreError),
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}
