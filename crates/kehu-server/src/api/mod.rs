//! JSON API under `/api/v1`. Handlers are thin: parse, authorize, call the
//! store with core-validated data, convert to wire DTOs.

pub mod anomalies;
pub mod audit;
pub mod campaigns;
pub mod classes;
pub mod customers;
pub mod dto;
pub mod duplicates;
pub mod imports;
pub mod intake;
pub mod meta;
pub mod privacy;
pub mod records;
pub mod reports;
pub mod schemes;
pub mod segments;
pub mod session;
pub mod tags;
pub mod tasks;
pub mod users;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use kehu_core::Reason;
use serde::de::DeserializeOwned;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/session",
            post(session::login)
                .delete(session::logout)
                .get(session::current),
        )
        .route("/customers", get(customers::list).post(customers::create))
        .route(
            "/import-mappings",
            get(imports::list_mappings).post(imports::save_mapping),
        )
        .route("/import-mappings/{id}", delete(imports::delete_mapping))
        .route("/imports/{id}", get(imports::read))
        .route("/imports/{id}/problems.csv", get(imports::problems_csv))
        .route("/imports/{id}/dry-run", post(imports::check_again))
        .route("/imports/{id}/apply", post(imports::apply))
        .route("/imports/{id}/undo", post(imports::undo))
        .route(
            "/intake-forms",
            get(intake::list_forms).post(intake::create_form),
        )
        .route("/intake-forms/{id}", put(intake::update_form))
        .route("/public/forms/{slug}", post(intake::submit))
        .route("/leads", get(intake::list_leads))
        .route("/leads/{id}/accept", post(intake::accept))
        .route("/leads/{id}/reject", post(intake::reject))
        .route("/audit", get(audit::list))
        .route("/audit/verify", get(audit::verify))
        .route("/predictions", get(reports::predictions))
        .route("/reports/classification", get(reports::classification))
        .route(
            "/reports/classification/customers",
            get(reports::moved_customers),
        )
        .route("/campaigns", get(campaigns::list).post(campaigns::create))
        .route("/campaigns/{id}", get(campaigns::read))
        .route("/campaigns/{id}/touches", post(campaigns::touch))
        .route("/reports/marketing", get(campaigns::report))
        .route("/reports/marketing/customers", get(campaigns::customers))
        .route("/dashboard", get(reports::dashboard))
        .route(
            "/report-schedules",
            get(reports::schedules).post(reports::create_schedule),
        )
        .route("/report-schedules/{id}/stop", post(reports::stop_schedule))
        .route(
            "/stored-reports/{id}/file",
            get(reports::stored_report_file),
        )
        .route("/reports/cross-sell", get(reports::cross_sell))
        .route(
            "/reports/cross-sell/customers",
            get(reports::cross_sell_customers),
        )
        .route(
            "/customers/{id}/cross-sell",
            get(reports::customer_cross_sell),
        )
        .route("/reports/strategy", get(reports::strategy))
        .route(
            "/reports/strategy/customers",
            get(reports::strategy_customers),
        )
        .route("/anomalies", get(anomalies::list))
        .route("/anomalies/run", post(anomalies::run))
        .route(
            "/calendar",
            get(anomalies::calendar).put(anomalies::set_calendar),
        )
        .route(
            "/strategies",
            get(tasks::strategies).put(tasks::save_strategy),
        )
        .route("/strategies/{id}", delete(tasks::delete_strategy))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/board", get(tasks::board))
        .route("/tasks/sla", get(tasks::sla))
        .route("/tasks/generate", post(tasks::generate))
        .route("/tasks/segment", post(tasks::create_for_segment))
        .route("/tasks/reassign", post(tasks::reassign))
        .route("/tasks/{id}", get(tasks::read))
        .route("/tasks/{id}/close", post(tasks::close))
        .route("/follow-ups", get(tasks::follow_ups))
        .route("/notifications", get(tasks::notifications))
        .route("/notifications/read", post(tasks::mark_read))
        .route("/jobs", get(tasks::jobs))
        .route("/jobs/{name}/run", post(tasks::run_job))
        .route("/users/{id}/sales-level", put(tasks::set_sales_level))
        .route("/users/{id}/email", put(tasks::set_email))
        .route("/deliveries", get(tasks::deliveries))
        .route("/webhooks", post(tasks::create_webhook))
        .route("/webhooks/{id}/stop", post(tasks::stop_webhook))
        .route("/duplicates", get(duplicates::list))
        .route("/duplicates/scan", post(duplicates::scan))
        .route("/duplicates/{id}", get(duplicates::read))
        .route("/duplicates/{id}/reject", post(duplicates::reject))
        .route("/merges", post(duplicates::merge))
        .route("/merges/{id}", get(duplicates::read_merge))
        .route("/merges/{id}/undo", post(duplicates::undo))
        .route("/contact-duplicates", get(duplicates::contact_pairs))
        .route("/contact-duplicates/{id}", get(duplicates::contact_pair))
        .route(
            "/contact-duplicates/{id}/reject",
            post(duplicates::reject_contact_pair),
        )
        .route("/contact-merges", post(duplicates::merge_contacts))
        .route("/contact-merges/{id}", get(duplicates::read_contact_merge))
        .route(
            "/contact-merges/{id}/undo",
            post(duplicates::undo_contact_merge),
        )
        .route("/customers/export", get(segments::export))
        .route(
            "/customers/{id}",
            get(customers::read)
                .patch(customers::update)
                .delete(customers::delete),
        )
        .route("/customers/{id}/classes", get(classes::customer_classes))
        .route(
            "/customers/{id}/classes/{scheme}/override",
            put(classes::set_override).delete(classes::lift_override),
        )
        .route("/customers/{id}/explanations", get(classes::explanations))
        .route("/customers/{id}/overrides", get(classes::overrides))
        .route("/class-changes", get(classes::class_changes))
        .route("/schemes", get(schemes::list))
        .route("/schemes/{key}", get(schemes::read))
        .route("/schemes/{key}/versions", post(schemes::create_version))
        .route(
            "/schemes/{key}/versions/{version}",
            get(schemes::read_version).put(schemes::edit_version),
        )
        .route(
            "/schemes/{key}/versions/{version}/simulate",
            post(schemes::simulate),
        )
        .route(
            "/schemes/{key}/versions/{version}/{step}",
            post(schemes::take_step),
        )
        .route("/scheme-versions", get(schemes::list_versions))
        .route("/tags", get(tags::list).post(tags::create))
        .route("/tags/{id}", get(tags::read).patch(tags::update))
        .route("/tags/{id}/retire", post(tags::retire))
        .route("/tags/{id}/restore", post(tags::restore))
        .route("/tags/{id}/merge", post(tags::merge))
        .route("/tags/{id}/history", get(tags::history))
        .route("/tags/{id}/apply", post(tags::apply))
        .route("/tag-proposals", get(tags::proposals))
        .route("/tag-review", get(tags::review))
        .route("/tag-proposals/{id}/confirm", post(tags::confirm))
        .route("/tag-proposals/{id}/reject", post(tags::reject))
        .route("/tag-settings", get(tags::settings).put(tags::set_settings))
        .route("/tag-settings/history", get(tags::settings_history))
        .route("/customers/{id}/tags", get(tags::customer_tags))
        .route(
            "/customers/{id}/tags/{tag_id}",
            put(tags::assign).delete(tags::unassign),
        )
        .route(
            "/customers/{id}/tag-history",
            get(tags::customer_tag_history),
        )
        .route("/segment-results", get(segments::results))
        .route("/segments", get(segments::list).post(segments::create))
        .route(
            "/segments/{id}",
            get(segments::read)
                .patch(segments::update)
                .delete(segments::delete),
        )
        .route("/segments/{id}/customers", get(segments::customers))
        .route("/customers/{id}/contacts", post(records::create_contact))
        .route("/customers/{id}/orders", post(records::create_order))
        .route(
            "/customers/{id}/interactions",
            post(records::create_interaction),
        )
        .route("/contacts", get(records::list_contacts))
        .route(
            "/contacts/{id}",
            get(records::read_contact)
                .patch(records::update_contact)
                .delete(records::delete_contact),
        )
        .route("/orders", get(records::list_orders))
        .route(
            "/orders/{id}",
            get(records::read_order)
                .patch(records::update_order)
                .delete(records::delete_order),
        )
        .route("/interactions", get(records::list_interactions))
        .route(
            "/interactions/{id}",
            get(records::read_interaction)
                .patch(records::update_interaction)
                .delete(records::delete_interaction),
        )
        .route(
            "/custom-fields",
            get(meta::list_custom_fields).post(meta::create_custom_field),
        )
        .route(
            "/custom-fields/{id}",
            get(meta::read_custom_field)
                .patch(meta::update_custom_field)
                .delete(meta::delete_custom_field),
        )
        .route(
            "/industries",
            get(meta::list_industries).put(meta::set_industries),
        )
        .route("/privacy/people", post(privacy::search))
        .route(
            "/privacy/retention",
            get(privacy::retention).put(privacy::set_retention),
        )
        .route("/contacts/{id}/personal-data", get(privacy::export))
        .route("/contacts/{id}/erase", post(privacy::erase))
        .route(
            "/customers/{id}/consents",
            get(privacy::consents).post(privacy::record),
        )
        .route("/consents/{id}/withdraw", post(privacy::withdraw))
        .route("/roles", get(meta::list_roles).post(meta::create_role))
        .route("/roles/{key}", delete(meta::delete_role))
        .route("/roles/{key}/field-rights", put(meta::set_field_rights))
        .route("/roles/{key}/grants", put(meta::set_grants))
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{id}",
            get(users::read).patch(users::update).delete(users::delete),
        )
        .route(
            "/users/{id}/tokens",
            get(users::list_tokens).post(users::create_token),
        )
        .route("/users/{id}/tokens/{token_id}", delete(users::revoke_token))
        .route(
            "/users/{id}/password",
            axum::routing::put(users::set_password),
        )
}

/// JSON body extractor whose errors are problem+json naming the field:
/// wrong types, unknown fields and malformed JSON never reach a handler.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    m.trim().eq_ignore_ascii_case("application/json") || m.trim().ends_with("+json")
                })
            });
        if !json_type {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest {
                        zh: "无法读取请求体".into(),
                        en: "cannot read the request body".into(),
                    }
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses JSON, reporting the failing path as the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ApiError::BadRequest {
        zh: "请求体不是有效的 UTF-8".into(),
        en: "the body is not valid UTF-8".into(),
    })?;
    // every body of this API is an object; serde would also accept a struct as an array
    if !text.trim_start().starts_with('{')
        && !text.trim().is_empty()
        && serde_json::from_str::<serde_json::Value>(text).is_ok()
    {
        return Err(ApiError::field(
            "body",
            Reason::Other {
                zh: "请求体应为 JSON 对象".into(),
                en: "the body must be a JSON object".into(),
            },
        ));
    }
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let detail = inner.to_string();
        let at_root = path == "." || path.is_empty();
        let (field, zh, en) = if inner.is_syntax() || inner.is_eof() {
            (
                "body".to_string(),
                format!("JSON 格式错误：{detail}"),
                format!("malformed JSON: {detail}"),
            )
        } else if detail.starts_with("unknown field") {
            // serde names the unknown field in the message; the path already ends with it
            let name = detail.split('`').nth(1).unwrap_or("body").to_string();
            (
                if at_root { name } else { path },
                "未知字段".to_string(),
                detail.clone(),
            )
        } else {
            (
                if at_root { "body".to_string() } else { path },
                format!("类型或取值错误：{detail}"),
                format!("wrong type or value: {detail}"),
            )
        };
        ApiError::field(&field, Reason::Other { zh, en })
    })
}

/// The raw query-string pairs, in order (lists parse them with kehu-core).
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            form_urlencoded::parse(q.as_bytes()).into_owned().collect(),
        ))
    }
}

impl QueryPairs {
    pub fn take(&mut self, key: &str) -> Option<String> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// A whole-number parameter, taken out; `default` when absent, an error naming it when not a number.
    pub fn take_number(&mut self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ApiError::field(key, Reason::NumberFormat)),
        }
    }

    /// A yes/no parameter such as `with_total=true` (also `1`), taken out.
    /// A date parameter (YYYY-MM-DD and the other forms people type); an
    /// empty value is absent.
    pub fn take_date(&mut self, key: &str) -> Result<Option<chrono::NaiveDate>, ApiError> {
        self.take(key)
            .filter(|v| !v.is_empty())
            .map(|v| kehu_core::date::parse_date(&v).map_err(|r| ApiError::field(key, r)))
            .transpose()
    }

    pub fn take_flag(&mut self, key: &str) -> bool {
        self.take(key).is_some_and(|v| v == "true" || v == "1")
    }

    /// Whether a filter or the sort names a field starting with `prefix`
    /// (`cf.`, `class.`): the lookups those need are skipped otherwise.
    pub fn mentions(&self, prefix: &str) -> bool {
        self.0.iter().any(|(k, v)| {
            k.starts_with(prefix)
                || (k == "sort"
                    && v.split(',')
                        .any(|s| s.trim_start_matches(['-', '+']).starts_with(prefix)))
        })
    }
}

/// `ETag: "v7"` for version 7.
pub fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"v{version}\"")).unwrap_or(HeaderValue::from_static("\"v0\""))
}

/// The expected version of a change: from `If-Match` (answering 412 on
/// mismatch) or from the body's `version` (answering 409). Neither: 428.
pub struct Expected {
    pub version: i64,
    pub via_if_match: bool,
}

pub fn expected_version(
    headers: &HeaderMap,
    body_version: Option<i64>,
) -> Result<Expected, ApiError> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let s = v
            .to_str()
            .unwrap_or("")
            .trim()
            .trim_start_matches("W/")
            .trim_matches('"');
        let n = s
            .strip_prefix('v')
            .and_then(|n| n.parse::<i64>().ok())
            .ok_or_else(|| {
                ApiError::field(
                    "If-Match",
                    Reason::Other {
                        zh: "应为 ETag 的值，例如 \"v3\"".into(),
                        en: "must be an ETag value such as \"v3\"".into(),
                    },
                )
            })?;
        return Ok(Expected {
            version: n,
            via_if_match: true,
        });
    }
    body_version
        .map(|version| Expected {
            version,
            via_if_match: false,
        })
        .ok_or(ApiError::PreconditionRequired)
}

/// Runs a versioned store write, turning a conflict into 412 or 409 as the caller asked.
pub fn conflict_status(e: ApiError, expected: &Expected) -> ApiError {
    match e {
        ApiError::VersionConflict {
            expected: ex,
            current,
            ..
        } => ApiError::VersionConflict {
            expected: ex,
            current,
            via_if_match: expected.via_if_match,
        },
        other => other,
    }
}

/// JSON with an ETag header.
pub fn with_etag<T: serde::Serialize>(version: i64, body: T) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(header::ETAG, etag(version));
    r
}

/// Takes `version` out of a PATCH body so the rest can be merged as fields.
pub fn split_version(body: &mut serde_json::Value) -> Result<Option<i64>, ApiError> {
    let obj = body.as_object_mut().ok_or_else(|| {
        ApiError::field(
            "body",
            Reason::Other {
                zh: "应为 JSON 对象".into(),
                en: "must be a JSON object".into(),
            },
        )
    })?;
    match obj.remove("version") {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::field("version", Reason::IntegerFormat)),
    }
}

/// RFC 7396 merge of a patch object onto the current record's JSON.
pub fn merge_patch<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: serde_json::Value,
) -> Result<T, ApiError> {
    let mut base = serde_json::to_value(current).map_err(|e| ApiError::Internal(e.to_string()))?;
    merge_into(&mut base, patch);
    let text = serde_json::to_vec(&base).map_err(|e| ApiError::Internal(e.to_string()))?;
    parse_json(&text)
}

fn merge_into(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        merge_into(existing, v)
                    }
                    _ if v.is_null() => {
                        b.remove(&k);
                    }
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}
