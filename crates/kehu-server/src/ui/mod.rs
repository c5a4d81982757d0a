//! Server-rendered UI: minijinja templates (autoescaped), htmx for partial
//! updates, plain forms that work without JavaScript. Chinese by default,
//! English by the `kehu_lang` cookie. Every POST carries the session's CSRF
//! token in a hidden field.

mod account;
mod admin;
mod anomalies;
mod audit;
mod campaigns;
mod charts;
mod customers;
mod dashboard;
mod deliveries;
mod duplicates;
mod forms;
mod imports;
mod intake;
mod privacy;
mod reports;
mod schedules;
mod schemes;
mod tags;
mod tasks;

use crate::auth::{authenticate, constant_time_eq, CurrentUser};
use crate::error::{ui_lang, ApiError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use kehu_core::role::{Permission, ROLE_PRESETS};
use kehu_core::Lang;
use minijinja::{context, Environment, Value};

pub use forms::FormData;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/dashboard", get(dashboard::page))
        .route(
            "/login",
            get(customers::login_page).post(customers::login_submit),
        )
        .route("/logout", post(customers::logout))
        .route("/lang/{lang}", get(set_lang))
        .route("/assets/{file}", get(asset))
        .route("/customers", get(customers::list))
        .route(
            "/customers/new",
            get(customers::new_form).post(customers::create),
        )
        .route("/customers/{id}", get(customers::detail))
        .route(
            "/customers/{id}/edit",
            get(customers::edit_form).post(customers::update),
        )
        .route("/customers/{id}/delete", post(customers::delete))
        .route(
            "/customers/{id}/classes/{scheme}/override",
            post(customers::set_override),
        )
        .route(
            "/customers/{id}/classes/{scheme}/lift",
            post(customers::lift_override),
        )
        .route("/customers/{id}/tags", post(customers::add_tag))
        .route(
            "/customers/{id}/tags/{tag_id}/remove",
            post(customers::remove_tag),
        )
        .route("/tags", get(tags::catalogue).post(tags::create))
        .route("/tags/{id}/rename", post(tags::rename))
        .route("/tags/{id}/retire", post(tags::retire))
        .route("/tags/{id}/restore", post(tags::restore))
        .route("/tags/{id}/merge", post(tags::merge))
        .route("/tags/{id}/rule", post(tags::set_rule))
        .route("/tags/{id}/apply", post(tags::apply_rule))
        .route("/tags/queue", get(tags::queue))
        .route("/tags/review", get(tags::review))
        .route("/tag-proposals/{id}/{verdict}", post(tags::decide))
        .route("/segments", get(tags::segments).post(tags::save_segment))
        .route("/segments/{id}/delete", post(tags::delete_segment))
        .route("/segments/tasks", post(tags::segment_tasks))
        .route("/customers/{id}/contacts", post(customers::add_contact))
        .route("/customers/{id}/orders", post(customers::add_order))
        .route(
            "/customers/{id}/interactions",
            post(customers::add_interaction),
        )
        .route(
            "/admin/fields",
            get(admin::fields).post(admin::create_field),
        )
        .route("/admin/fields/{id}/delete", post(admin::delete_field))
        .route("/schemes", get(schemes::list))
        .route("/approvals", get(schemes::approvals))
        .route("/schemes/{key}", get(schemes::detail))
        .route("/schemes/{key}/drafts", post(schemes::new_draft))
        .route(
            "/schemes/{key}/versions/{version}",
            get(schemes::version).post(schemes::save),
        )
        .route(
            "/schemes/{key}/versions/{version}/simulation",
            get(schemes::simulate),
        )
        .route(
            "/schemes/{key}/versions/{version}/step/{step}",
            post(schemes::step),
        )
        .route("/f/{slug}", get(intake::public_form).post(intake::submit))
        .route("/admin/forms", get(intake::forms).post(intake::create_form))
        .route("/leads", get(intake::leads))
        .route("/leads/{id}/accept", post(intake::accept))
        .route("/leads/{id}/reject", post(intake::reject))
        .route("/audit", get(audit::page))
        .route("/anomalies", get(anomalies::report))
        .route("/anomalies/run", post(anomalies::run))
        .route(
            "/admin/calendar",
            get(anomalies::calendar).post(anomalies::save_calendar),
        )
        .route("/reports/classification", get(reports::classification))
        .route(
            "/reports/classification/customers",
            get(reports::moved_customers),
        )
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::detail))
        .route("/campaigns/{id}/touches", post(campaigns::touch))
        .route("/reports/marketing", get(campaigns::report))
        .route(
            "/reports/schedules",
            get(schedules::page).post(schedules::create),
        )
        .route("/reports/schedules/{id}/stop", post(schedules::stop))
        .route("/reports/marketing/customers", get(campaigns::customers))
        .route("/reports/cross-sell", get(reports::cross_sell))
        .route(
            "/reports/cross-sell/customers",
            get(reports::cross_sell_customers),
        )
        .route("/reports/strategy", get(reports::strategy))
        .route(
            "/reports/strategy/customers",
            get(reports::strategy_customers),
        )
        .route("/tasks", get(tasks::mine).post(tasks::create))
        .route("/tasks/board", get(tasks::board))
        .route("/tasks/reassign", post(tasks::reassign))
        .route("/tasks/calendar", get(tasks::calendar))
        .route("/tasks/{id}", get(tasks::detail))
        .route("/tasks/{id}/close", post(tasks::close))
        .route("/inbox", get(tasks::inbox))
        .route("/inbox/read", post(tasks::mark_read))
        .route("/follow-ups", get(tasks::follow_ups))
        .route(
            "/admin/strategies",
            get(tasks::strategies).post(tasks::save_strategy),
        )
        .route(
            "/admin/strategies/{id}/delete",
            post(tasks::delete_strategy),
        )
        .route("/admin/jobs", get(tasks::jobs))
        .route("/admin/deliveries", get(deliveries::page))
        .route("/admin/webhooks", post(deliveries::create_webhook))
        .route("/admin/webhooks/{id}/stop", post(deliveries::stop_webhook))
        .route("/admin/jobs/{name}/run", post(tasks::run_job))
        .route("/duplicates", get(duplicates::queue))
        .route("/duplicates/scan", post(duplicates::scan))
        .route("/duplicates/{id}", get(duplicates::pair))
        .route("/duplicates/{id}/merge", post(duplicates::merge))
        .route("/duplicates/{id}/reject", post(duplicates::reject))
        .route("/merges/{id}", get(duplicates::merge_record))
        .route("/merges/{id}/undo", post(duplicates::undo))
        .route("/contact-duplicates", get(duplicates::contact_queue))
        .route("/contact-duplicates/{id}", get(duplicates::contact_pair))
        .route(
            "/contact-duplicates/{id}/merge",
            post(duplicates::contact_merge),
        )
        .route(
            "/contact-duplicates/{id}/reject",
            post(duplicates::contact_reject),
        )
        .route("/contact-merges/{id}/undo", post(duplicates::contact_undo))
        .route("/imports/{id}", get(imports::detail))
        .route("/imports/{id}/mapping", post(imports::remap))
        .route("/imports/{id}/save-mapping", post(imports::save_mapping))
        .route("/imports/{id}/apply", post(imports::apply))
        .route("/imports/{id}/undo", post(imports::undo))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/roles", get(admin::roles).post(admin::create_role))
        .route("/admin/roles/{key}/grants", post(admin::set_role_grants))
        .route("/admin/roles/{key}/delete", post(admin::delete_role))
        .route("/admin/privacy", get(privacy::page).post(privacy::search))
        .route("/admin/privacy/retention", post(privacy::set_retention))
        .route("/contacts/{id}/erase", post(privacy::erase))
        .route("/consents/{id}/withdraw", post(privacy::withdraw))
        .route("/customers/{id}/consents", post(privacy::record_consent))
        .route("/admin/roles/{key}/fields", post(admin::set_role_fields))
        .route("/admin/users/{id}/toggle", post(admin::toggle_user))
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route("/account/email", post(account::set_email))
        .route("/account/tokens", post(account::create_token))
        .route("/account/tokens/{id}/revoke", post(account::revoke_token))
}

/// Pages whose forms upload files (a larger body limit).
pub fn upload_router() -> Router<AppState> {
    Router::new().route("/imports", get(imports::page).post(imports::upload))
}

pub struct Templates {
    env: Environment<'static>,
}

macro_rules! templates {
    ($env:expr, $($name:literal),* $(,)?) => {
        $( $env.add_template($name, include_str!(concat!("../../templates/", $name))).expect(concat!("template ", $name)); )*
    };
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    #[allow(clippy::expect_used)] // templates are compiled into the binary; a broken one is a build bug
    pub fn new() -> Templates {
        let mut env = Environment::new();
        templates!(
            env,
            "base.html",
            "macros.html",
            "login.html",
            "error.html",
            "customers/list.html",
            "customers/results.html",
            "customers/form.html",
            "customers/detail.html",
            "schemes/list.html",
            "schemes/detail.html",
            "schemes/version.html",
            "schemes/approvals.html",
            "admin/fields.html",
            "admin/users.html",
            "admin/roles.html",
            "admin/privacy.html",
            "tags/catalogue.html",
            "tags/segments.html",
            "tags/queue.html",
            "tags/review.html",
            "imports/list.html",
            "imports/detail.html",
            "intake/public.html",
            "intake/forms.html",
            "intake/leads.html",
            "audit.html",
            "anomalies/report.html",
            "admin/calendar.html",
            "duplicates/queue.html",
            "duplicates/pair.html",
            "duplicates/merge.html",
            "duplicates/contact_pair.html",
            "duplicates/contact_queue.html",
            "account.html",
            "tasks/list.html",
            "tasks/detail.html",
            "tasks/board.html",
            "tasks/calendar.html",
            "tasks/inbox.html",
            "tasks/follow_ups.html",
            "tasks/strategies.html",
            "tasks/jobs.html",
            "tasks/log_table.html",
            "reports/classification.html",
            "reports/moved.html",
            "reports/strategy.html",
            "reports/cross_sell.html",
            "reports/marketing.html",
            "campaigns/list.html",
            "campaigns/detail.html",
            "dashboard.html",
            "reports/schedules.html",
            "admin/deliveries.html"
        );
        env.add_function(
            "t",
            |state: &minijinja::State, zh: String, en: String| -> String {
                if state
                    .lookup("lang")
                    .is_some_and(|l| l.as_str() == Some("en"))
                {
                    en
                } else {
                    zh
                }
            },
        );
        Templates { env }
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, ApiError> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| ApiError::Internal(format!("template {name}: {e:#}")))
    }
}

/// The signed-in user of a page, or a redirect to the login page.
pub struct Page {
    pub user: CurrentUser,
    pub lang: Lang,
    pub htmx: bool,
    /// The request's method and path (what a refused form post names).
    pub target: String,
    auditor: crate::audit::Auditor,
}

pub enum PageRejection {
    Login(String),
    ChangePassword,
    Error(ApiError),
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::Login(next) => {
                Redirect::to(&format!("/login?next={}", url_encoded(&next))).into_response()
            }
            PageRejection::ChangePassword => Redirect::to("/account/password").into_response(),
            PageRejection::Error(e) => e.into_response(),
        }
    }
}

impl axum::extract::FromRequestParts<AppState> for Page {
    type Rejection = PageRejection;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The UI uses the session cookie only; bearer tokens are for scripts.
        let mut headers = parts.headers.clone();
        headers.remove(header::AUTHORIZATION);
        let user = authenticate(state, &headers)
            .await
            .map_err(PageRejection::Error)?;
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        match user {
            // a one-time or reset password must be replaced before anything else
            Some(user)
                if user.user.must_change_password
                    && !matches!(parts.uri.path(), "/account/password" | "/logout") =>
            {
                Err(PageRejection::ChangePassword)
            }
            Some(mut user) => Ok(Page {
                user: {
                    user.client = crate::client_addr::client_of(parts);
                    user
                },
                lang: ui_lang(&parts.headers),
                htmx: parts.headers.contains_key("hx-request"),
                target: crate::auth::request_target(parts),
                auditor: state.auditor.clone(),
            }),
            None => Err(PageRejection::Login(next)),
        }
    }
}

impl Page {
    /// The context every page shares, merged with the page's own.
    pub fn context(&self, nav: &str, extra: Value) -> Value {
        let role_name = ROLE_PRESETS
            .iter()
            .find(|r| r.key == self.user.user.role)
            .map(|r| {
                if self.lang == Lang::En {
                    r.name_en
                } else {
                    r.name_zh
                }
            })
            .unwrap_or(self.user.user.role.as_str());
        let base = context! {
            lang => self.lang.code(),
            user => context! { id => self.user.user.id, display_name => self.user.user.display_name.clone(), username => self.user.user.username.clone() },
            role_name,
            csrf_token => self.user.csrf_token().unwrap_or(""),
            nav,
            can_admin_fields => self.user.actor.grants.has(Permission::CustomFieldAdmin),
            can_admin_users => self.user.actor.grants.has(Permission::UserAdmin),
            can_personal_data => self.user.actor.grants.has(Permission::PersonalData),
            can_approve_rules => self.user.actor.grants.has(Permission::RuleApprove),
            can_edit_forms => crate::intake::may_edit_forms(&self.user),
            can_review_leads => crate::intake::may_review(&self.user),
            can_read_audit => self.user.actor.grants.has(Permission::AuditRead),
            can_read_reports => self.user.actor.grants.has(Permission::ReportRead),
            can_see_anomalies => self.user.actor.grants.has(Permission::CustomerRead),
            can_edit_calendar => crate::anomalies::may_edit_calendar(&self.user),
            can_edit_strategies => crate::api::tasks::may_edit_strategies(&self.user),
            can_admin_jobs => crate::api::tasks::may_admin_jobs(&self.user),
            can_see_board => !matches!(crate::tasks::task_scope(&self.user), kehu_store::tasks::TaskScope::Own { .. }),
            can_merge => self.user.actor.grants.has(Permission::CustomerUpdate),
            can_import => [Permission::CustomerCreate, Permission::RecordWrite, Permission::InteractionWrite, Permission::ServiceRecordWrite]
                .iter().any(|p| self.user.actor.grants.has(*p)),
        };
        context! { ..extra, ..base }
    }

    /// After a post: on success to the page `to` names for the outcome, else the error page.
    pub fn after<T>(
        &self,
        state: &AppState,
        done: Result<T, ApiError>,
        to: impl FnOnce(&T) -> String,
    ) -> Response {
        match done {
            Ok(v) => self.redirect(&to(&v)),
            Err(e) => self.error_page(state, e),
        }
    }

    /// After a successful post: htmx follows `HX-Redirect`, plain forms a 303.
    pub fn redirect(&self, to: &str) -> Response {
        if self.htmx {
            let mut r = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_str(to) {
                r.headers_mut().insert("hx-redirect", v);
            }
            r
        } else {
            Redirect::to(to).into_response()
        }
    }

    pub fn t(&self, zh: &str, en: &str) -> String {
        if self.lang == Lang::En {
            en.to_string()
        } else {
            zh.to_string()
        }
    }

    /// Form posts must carry the session's CSRF token; a post without it
    /// is refused and recorded (`csrf.refused`).
    pub fn check_csrf(&self, form: &FormData) -> Result<(), ApiError> {
        let expected = self.user.csrf_token().ok_or(ApiError::Csrf)?;
        match form.get("csrf_token") {
            Some(sent) if constant_time_eq(sent, expected) => Ok(()),
            _ => {
                self.auditor.record(crate::audit::entry(
                    Some(&self.user),
                    crate::audit::CSRF_REFUSED,
                    self.target.clone(),
                    serde_json::json!({}),
                ));
                Err(ApiError::Csrf)
            }
        }
    }

    pub fn render(&self, state: &AppState, name: &str, nav: &str, extra: Value) -> Response {
        match state.ui.render(name, self.context(nav, extra)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => self.error_page(state, e),
        }
    }

    /// A form page: 422 when it shows errors (`failed`), so scripts and
    /// tests see the refusal.
    pub fn render_form(
        &self,
        state: &AppState,
        name: &str,
        nav: &str,
        extra: Value,
        failed: bool,
    ) -> Response {
        let mut r = self.render(state, name, nav, extra);
        if failed && r.status().is_success() {
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        }
        r
    }

    /// A readable error page (or the bare message for htmx swaps) in the user's language.
    pub fn error_page(&self, state: &AppState, e: ApiError) -> Response {
        let status = e.status();
        if let ApiError::Internal(msg) = &e {
            tracing::error!(error = %msg, "UI error");
        }
        let (title, detail) = e.texts(self.lang);
        let html = state
            .ui
            .render("error.html", self.context("", context! { title, detail }))
            .unwrap_or_else(|_| "error".into());
        (status, Html(html)).into_response()
    }
}

/// The segment page's address for an expression.
pub fn segment_href(expression: &str) -> String {
    format!("/segments?expression={}", url_encoded(expression))
}

/// The export of a segment's customers (add `&format=csv|xlsx`).
pub fn export_href(expression: &str) -> String {
    format!(
        "/api/v1/customers/export?segment={}",
        url_encoded(expression)
    )
}

pub(crate) fn url_encoded(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Three counts a post passed on to the page it redirects to (`?ran=3-1-7`).
fn counts_param(q: &forms::FormData, key: &str) -> Option<Vec<u64>> {
    let counts: Vec<u64> = q
        .get(key)?
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // Three counts, or five (a duplicate scan's contact pass).
    matches!(counts.len(), 3 | 5).then_some(counts)
}

/// The start page of a role: the customers, or for those who may not read
/// them (auditors) the audit log, else the account page.
async fn home(page: Page) -> Redirect {
    let grants = &page.user.actor.grants;
    if grants.has(Permission::CustomerRead) {
        Redirect::to("/dashboard")
    } else if grants.has(Permission::AuditRead) {
        Redirect::to("/audit")
    } else {
        Redirect::to("/account/password")
    }
}

async fn set_lang(Path(lang): Path<String>, headers: HeaderMap) -> Response {
    let lang = if lang == "en" { "en" } else { "zh" };
    // Back to the page the switch was clicked on, if it was ours.
    let back = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://").map(|(_, rest)| rest))
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or_else(|| "/customers".into());
    let mut r = Redirect::to(&back).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "kehu_lang={lang}; Path=/; Max-Age=31536000; SameSite=Lax"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

const HTMX: &[u8] = include_bytes!("../../assets/htmx.min.2.0.11.js");
const CSS: &[u8] = include_bytes!("../../assets/app.css");

async fn asset(Path(file): Path<String>, State(_): State<AppState>) -> Response {
    let (body, ctype) = match file.as_str() {
        "htmx.min.2.0.11.js" => (HTMX, "text/javascript; charset=utf-8"),
        "app.css" => (CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
