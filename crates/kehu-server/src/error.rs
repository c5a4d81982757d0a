//! The one place errors become HTTP: RFC 9457 problem+json, localized by
//! `Accept-Language`. Handlers return `Result<_, ApiError>` and use `?`.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kehu_core::{Lang, Reason, ValidationErrors};
use kehu_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed: {0}")]
    Validation(ValidationErrors),
    #[error("not found")]
    NotFound,
    #[error("not signed in")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("version conflict")]
    VersionConflict {
        expected: i64,
        current: i64,
        via_if_match: bool,
    },
    #[error("If-Match required")]
    PreconditionRequired,
    #[error("too many attempts")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("bad request: {en}")]
    BadRequest { zh: String, en: String },
    /// The request is valid but the record's state does not allow it
    /// (e.g. approving a version that is not submitted).
    #[error("conflict: {en}")]
    Conflict { zh: String, en: String },
    /// Forbidden for a stated reason (e.g. approving one's own request).
    #[error("refused: {en}")]
    Refused { zh: String, en: String },
    /// The server lacks something it needs for this (e.g. a font for PDF).
    #[error("unavailable: {en}")]
    Unavailable { zh: String, en: String },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<ValidationErrors> for ApiError {
    fn from(e: ValidationErrors) -> Self {
        ApiError::Validation(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::VersionConflict { expected, current } => ApiError::VersionConflict {
                expected,
                current,
                via_if_match: false,
            },
            StoreError::Invalid(v) => ApiError::Validation(v),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl ApiError {
    pub fn field(field: &str, reason: Reason) -> ApiError {
        ApiError::Validation(ValidationErrors::single(field, reason))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::VersionConflict {
                via_if_match: true, ..
            } => StatusCode::PRECONDITION_FAILED,
            ApiError::VersionConflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation",
            ApiError::NotFound => "not_found",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::Csrf => "csrf",
            ApiError::VersionConflict { .. } => "version_conflict",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::Conflict { .. } => "conflict",
            ApiError::Refused { .. } => "forbidden",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The human title and detail in `lang`.
    pub fn texts(&self, lang: Lang) -> (String, String) {
        let zh = lang == Lang::Zh;
        let t = |z: &str, e: &str| if zh { z.to_string() } else { e.to_string() };
        match self {
            ApiError::Validation(v) => (
                t("输入有误", "Invalid input"),
                v.0.iter()
                    .map(|e| format!("{}: {}", e.field, e.reason.message(lang)))
                    .collect::<Vec<_>>()
                    .join(if zh { "；" } else { "; " }),
            ),
            ApiError::NotFound => (
                t("未找到", "Not found"),
                t(
                    "记录不存在或无权访问",
                    "the record does not exist or you may not see it",
                ),
            ),
            ApiError::Unauthorized => (
                t("未登录", "Not signed in"),
                t(
                    "请先登录或提供有效的 API 令牌",
                    "sign in or send a valid bearer token",
                ),
            ),
            ApiError::Forbidden => (
                t("无权操作", "Forbidden"),
                t("您的角色没有此项权限", "your role does not allow this"),
            ),
            ApiError::Csrf => (
                t("请求来源校验失败", "CSRF check failed"),
                t(
                    "缺少或错误的 CSRF 令牌，请刷新页面后重试",
                    "the CSRF token is missing or wrong; reload the page and try again",
                ),
            ),
            ApiError::VersionConflict {
                expected, current, ..
            } => (
                t("数据已被他人修改", "Edited by someone else"),
                if zh {
                    format!("您编辑的是第 {expected} 版，当前已是第 {current} 版；请刷新后重新修改")
                } else {
                    format!("you edited version {expected} but the record is now at version {current}; reload and apply your change again")
                },
            ),
            ApiError::PreconditionRequired => (
                t("缺少版本号", "Version required"),
                t(
                    "修改或删除须带 If-Match 头（取自 ETag）或请求体中的 version",
                    "send If-Match (from the ETag) or a version field to change or delete",
                ),
            ),
            ApiError::TooManyRequests { retry_after_secs } => (
                t("尝试次数过多", "Too many attempts"),
                if zh {
                    format!("请 {retry_after_secs} 秒后再试")
                } else {
                    format!("try again in {retry_after_secs} seconds")
                },
            ),
            ApiError::BadRequest { zh: z, en } => (t("请求有误", "Bad request"), t(z, en)),
            ApiError::Conflict { zh: z, en } => {
                (t("状态不允许此操作", "Not in this state"), t(z, en))
            }
            ApiError::Refused { zh: z, en } => (t("无权操作", "Forbidden"), t(z, en)),
            ApiError::Unavailable { zh: z, en } => (
                t("服务器暂不能完成", "Not available on this server"),
                t(z, en),
            ),
            ApiError::PayloadTooLarge => (
                t("请求体过大", "Payload too large"),
                t(
                    "请求体超过大小限制",
                    "the request body is over the size limit",
                ),
            ),
            ApiError::UnsupportedMediaType => (
                t("不支持的格式", "Unsupported media type"),
                t(
                    "请求体须为 application/json",
                    "the body must be application/json",
                ),
            ),
            ApiError::Internal(_) => (
                t("服务器内部错误", "Internal error"),
                t(
                    "服务器出错，已记录日志",
                    "the server failed; the error was logged",
                ),
            ),
        }
    }

    /// problem+json body.
    pub fn problem(&self, lang: Lang) -> serde_json::Value {
        let (title, detail) = self.texts(lang);
        let mut body = json!({
            "type": format!("urn:kehu:problem:{}", self.code()),
            "title": title,
            "status": self.status().as_u16(),
            "detail": detail,
            "code": self.code(),
        });
        if let ApiError::Validation(v) = self {
            body["errors"] = v.0.iter().map(|e| json!({"field": e.field, "code": e.reason.code(), "message": e.reason.message(lang)})).collect();
        }
        if let ApiError::VersionConflict { current, .. } = self {
            body["current_version"] = json!(current);
        }
        body
    }

    pub fn into_response_in(self, lang: Lang) -> Response {
        if let ApiError::Internal(msg) = &self {
            tracing::error!(error = %msg, "internal error");
        }
        let mut resp = (
            self.status(),
            serde_json::to_string(&self.problem(lang)).unwrap_or_default(),
        )
            .into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// The error travels to [`localize_problems`] in the response extensions,
/// where the request's language is known.
#[derive(Clone)]
struct PendingProblem(std::sync::Arc<ApiError>);

/// The answer to a request whose handler panicked: an internal error
/// like any other (what panicked is not repeated: it may hold input).
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal("panic".into()).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = self.status().into_response();
        resp.extensions_mut()
            .insert(PendingProblem(std::sync::Arc::new(self)));
        resp
    }
}

/// The UI's language: Chinese unless the user switched (the `kehu_lang` cookie).
pub fn ui_lang(headers: &HeaderMap) -> Lang {
    cookie_lang(headers).unwrap_or(Lang::Zh)
}

fn cookie_lang(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|c| c.split(';'))
        .find_map(|part| match part.trim() {
            "kehu_lang=en" => Some(Lang::En),
            "kehu_lang=zh" => Some(Lang::Zh),
            _ => None,
        })
}

/// The API's language: the UI choice (cookie) if any, else `Accept-Language`.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    if let Some(l) = cookie_lang(headers) {
        return l;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(Lang::from_accept_language)
        .unwrap_or_default()
}

/// Middleware: renders any pending problem in the caller's language, and
/// turns axum's own plain-text rejections (413, 415, 405…) into problem+json.
pub async fn localize_problems(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let lang = lang_of(req.headers());
    let is_api = req.uri().path().starts_with("/api/");
    let mut resp = next.run(req).await;
    if let Some(PendingProblem(err)) = resp.extensions_mut().remove::<PendingProblem>() {
        let err =
            std::sync::Arc::try_unwrap(err).unwrap_or_else(|e| ApiError::Internal(e.to_string()));
        return err.into_response_in(lang);
    }
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_api && !is_problem && (resp.status().is_client_error() || resp.status().is_server_error())
    {
        let err = match resp.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::NOT_FOUND => ApiError::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::BadRequest {
                zh: "不支持该请求方法".into(),
                en: "method not allowed".into(),
            },
            s if s.is_server_error() => ApiError::Internal(format!("status {s}")),
            _ => ApiError::BadRequest {
                zh: "请求无法处理".into(),
                en: "the request could not be processed".into(),
            },
        };
        let status = resp.status();
        let mut out = err.into_response_in(lang);
        *out.status_mut() = status;
        return out;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = axum::Router::new()
            .route("/boom", get(boom))
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                panic_response,
            ))
            .layer(axum::middleware::from_fn(localize_problems));
        let r = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(axum::body::Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            r.headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
    }
}
