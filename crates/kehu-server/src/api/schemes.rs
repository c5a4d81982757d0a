//! Classification schemes and their versions: read them, write drafts,
//! simulate a draft on the live data, and move versions through the
//! workflow (submit → approve by 管理层 → publish by 管理员; withdraw,
//! reject, roll back). Who may take which step is `workflow::check`'s call.

use super::dto::{SchemeEventOut, SchemeOut, SchemeVersionOut, StepOut, StepWrite, VersionWrite};
use super::{ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::classifier::Simulation;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::classify::workflow::{self, Authors, Refusal, Step, VersionStatus};
use kehu_core::classify::SchemeSpec;
use kehu_core::role::Permission;
use kehu_core::{FieldError, Reason, ValidationErrors};
use kehu_store::schemes::SchemeVersion;

/// Every scheme: its published version, classes, and versions waiting for a step.
#[utoipa::path(get, path = "/api/v1/schemes", tag = "schemes",
    responses((status = 200, body = Vec<SchemeOut>)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<SchemeOut>>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let versions = state.store.scheme_versions(None).await?;
    let out = versions
        .chunk_by(|a, b| a.scheme_key == b.scheme_key)
        .map(SchemeOut::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(out))
}

/// One scheme with all its versions (newest first) and the steps taken.
#[utoipa::path(get, path = "/api/v1/schemes/{key}", tag = "schemes", params(("key" = String, Path)),
    responses((status = 200, body = SchemeOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> Result<Json<SchemeOut>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let versions = state.store.scheme_versions(Some(&key)).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound);
    }
    let mut out = SchemeOut::new(&versions)?;
    out.events = Some(
        state
            .store
            .scheme_events(&key)
            .await?
            .into_iter()
            .map(SchemeEventOut::from)
            .collect(),
    );
    Ok(Json(out))
}

/// One version with its spec.
#[utoipa::path(get, path = "/api/v1/schemes/{key}/versions/{version}", tag = "schemes",
    params(("key" = String, Path), ("version" = i64, Path)),
    responses((status = 200, body = SchemeVersionOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read_version(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Json<SchemeVersionOut>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let v = state.store.scheme_version(&key, version).await?;
    Ok(Json(SchemeVersionOut::with_spec(v)?))
}

/// Versions in one status across schemes: `status=submitted` is the approval inbox.
#[utoipa::path(get, path = "/api/v1/scheme-versions", tag = "schemes",
    params(("status" = Option<String>, Query, description = "draft, submitted, approved, rejected, published, retired")),
    responses((status = 200, body = Vec<SchemeVersionOut>), (status = 422, content_type = "application/problem+json")))]
pub async fn list_versions(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<Vec<SchemeVersionOut>>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let status = match q.take("status") {
        None => None,
        Some(raw) => Some(VersionStatus::parse(&raw).ok_or_else(|| {
            ApiError::field(
                "status",
                Reason::UnknownOption {
                    allowed: VersionStatus::ALL
                        .iter()
                        .map(|s| s.as_str().to_string())
                        .collect(),
                },
            )
        })?),
    };
    let versions = state.store.scheme_versions(None).await?;
    Ok(Json(
        versions
            .into_iter()
            .filter(|v| status.is_none_or(|s| v.status == s))
            .map(SchemeVersionOut::summary)
            .collect(),
    ))
}

/// A new draft version of a scheme (or the first version of a new scheme).
/// The spec is checked against the published versions of the other
/// schemes: every problem is named by its place.
#[utoipa::path(post, path = "/api/v1/schemes/{key}/versions", tag = "schemes",
    params(("key" = String, Path)), request_body = VersionWrite,
    responses((status = 201, body = SchemeVersionOut), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn create_version(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<VersionWrite>,
) -> Result<Response, ApiError> {
    let v = create_draft(&state, &user, &key, &body).await?;
    Ok((StatusCode::CREATED, Json(SchemeVersionOut::with_spec(v)?)).into_response())
}

/// A new draft, checked (shared with the UI).
pub async fn create_draft(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    body: &VersionWrite,
) -> Result<SchemeVersion, ApiError> {
    allowed(user, Step::Create, None, Authors::default())?;
    let text = checked_spec(state, key, 0, body).await?;
    Ok(state
        .store
        .create_scheme_draft(key, &text, note(&body.note)?.as_deref(), user.user.id)
        .await?)
}

/// Replaces a draft's (or a rejected version's) spec; it is a draft again.
#[utoipa::path(put, path = "/api/v1/schemes/{key}/versions/{version}", tag = "schemes",
    params(("key" = String, Path), ("version" = i64, Path)), request_body = VersionWrite,
    responses((status = 200, body = SchemeVersionOut), (status = 403, content_type = "application/problem+json"),
        (status = 409, content_type = "application/problem+json"), (status = 422, content_type = "application/problem+json")))]
pub async fn edit_version(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((key, version)): Path<(String, i64)>,
    ApiJson(body): ApiJson<VersionWrite>,
) -> Result<Json<SchemeVersionOut>, ApiError> {
    let v = edit_draft(&state, &user, &key, version, &body).await?;
    Ok(Json(SchemeVersionOut::with_spec(v)?))
}

/// Replaces a draft's spec, checked (shared with the UI).
pub async fn edit_draft(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    version: i64,
    body: &VersionWrite,
) -> Result<SchemeVersion, ApiError> {
    let current = state.store.scheme_version(key, version).await?;
    allowed(user, Step::Edit, Some(&current), authors(&current))?;
    let text = checked_spec(state, key, version, body).await?;
    state
        .store
        .edit_scheme_draft(&current, &text, note(&body.note)?.as_deref(), user.user.id)
        .await
        .map_err(moved_meanwhile)
}

/// What publishing this version would do to today's customers (or as of
/// `as_of`): counts moving from each class to each other class, with
/// examples. Stores nothing. For editors and approvers.
#[utoipa::path(post, path = "/api/v1/schemes/{key}/versions/{version}/simulate", tag = "schemes",
    params(("key" = String, Path), ("version" = i64, Path), ("as_of" = Option<String>, Query)),
    responses((status = 200, body = Simulation), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json")))]
pub async fn simulate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((key, version)): Path<(String, i64)>,
    mut q: QueryPairs,
) -> Result<Json<Simulation>, ApiError> {
    if !user.actor.grants.has(Permission::RuleEdit)
        && !user.actor.grants.has(Permission::RuleApprove)
    {
        return Err(ApiError::Forbidden);
    }
    let v = state.store.scheme_version(&key, version).await?;
    let as_of = super::classes::as_of_param(&state, &mut q)?;
    let spec = v.parsed_spec()?;
    Ok(Json(state.classifier.simulate(version, spec, as_of).await?))
}

/// Takes a workflow step: `submit`, `withdraw`, `approve`, `reject` (note
/// required), `publish` or `rollback`. Publishing re-evaluates every
/// customer in one transaction with the status change.
#[utoipa::path(post, path = "/api/v1/schemes/{key}/versions/{version}/{step}", tag = "schemes",
    params(("key" = String, Path), ("version" = i64, Path), ("step" = String, Path, description = "submit, withdraw, approve, reject, publish, rollback")),
    request_body = StepWrite,
    responses((status = 200, body = StepOut), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json"), (status = 409, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn take_step(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((key, version, step)): Path<(String, i64, String)>,
    body: axum::body::Bytes,
) -> Result<Json<StepOut>, ApiError> {
    let step = parse_step(&step).ok_or(ApiError::NotFound)?;
    // The body is optional: no note, no body.
    let body: StepWrite = match body.is_empty() {
        true => StepWrite::default(),
        false => super::parse_json(&body)?,
    };
    let (v, changes) = take(&state, &user, &key, version, step, body.note).await?;
    Ok(Json(StepOut {
        version: SchemeVersionOut::summary(v),
        class_changes: changes,
    }))
}

/// Editors and approvers may simulate.
pub fn may_simulate(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::RuleEdit) || user.actor.grants.has(Permission::RuleApprove)
}

/// The steps a version can be moved by, by their path name.
pub fn parse_step(name: &str) -> Option<Step> {
    Step::MOVES.into_iter().find(|s| s.as_str() == name)
}

/// Takes a step (shared with the UI): the version after it and the number
/// of class changes stored (publish and rollback).
pub async fn take(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    version: i64,
    step: Step,
    raw_note: Option<String>,
) -> Result<(SchemeVersion, u64), ApiError> {
    let note = note(&raw_note)?;
    if step == Step::Reject && note.is_none() {
        return Err(ApiError::field("note", Reason::Required));
    }
    let current = state.store.scheme_version(key, version).await?;
    let to = allowed(user, step, Some(&current), authors(&current))?;
    let changes = match step {
        Step::Publish | Step::Rollback => {
            let spec = current.parsed_spec()?;
            state
                .classifier
                .publish(&current, spec, step, user.user.id, note.as_deref())
                .await
                .map_err(moved_meanwhile_api)?
                .len() as u64
        }
        _ => {
            state
                .store
                .move_scheme_version(&current, step, to, user.user.id, note.as_deref())
                .await
                .map_err(moved_meanwhile)?;
            0
        }
    };
    state.audit(
        Some(user),
        "scheme.step",
        format!("scheme:{key}:{version}"),
        serde_json::json!({"step": format!("{step:?}").to_lowercase(), "note": note, "class_changes": changes}),
    );
    Ok((state.store.scheme_version(key, version).await?, changes))
}

/// Who wrote and submitted the version.
pub fn authors(v: &SchemeVersion) -> Authors {
    Authors {
        created_by: v.created_by,
        submitted_by: v.submitted_by,
    }
}

fn allowed(
    user: &CurrentUser,
    step: Step,
    current: Option<&SchemeVersion>,
    authors: Authors,
) -> Result<VersionStatus, ApiError> {
    workflow::check(
        step,
        current.map(|v| v.status),
        authors,
        user.user.id,
        &user.actor.grants,
    )
    .map_err(|r| {
        let (zh, en) = r.message();
        match r {
            Refusal::NotAllowed => ApiError::Forbidden,
            Refusal::OwnRequest => ApiError::Refused { zh, en },
            Refusal::WrongStatus { .. } => ApiError::Conflict { zh, en },
        }
    })
}

/// The spec of a write: parsed, its key the path's, compiled with the
/// published versions of the other schemes. Returns it as stored text.
async fn checked_spec(
    state: &AppState,
    key: &str,
    version: i64,
    body: &VersionWrite,
) -> Result<String, ApiError> {
    let spec: SchemeSpec = serde_json::from_value(body.spec.clone()).map_err(|e| {
        ApiError::field(
            "spec",
            Reason::Other {
                zh: format!("方案格式有误：{e}"),
                en: format!("the scheme does not parse: {e}"),
            },
        )
    })?;
    if spec.key != key {
        return Err(ApiError::Validation(ValidationErrors(vec![
            FieldError::new(
                "spec.key",
                Reason::Other {
                    zh: format!("方案键须与地址中的 {key} 一致"),
                    en: format!("the scheme key must be {key}, as in the path"),
                },
            ),
        ])));
    }
    state
        .classifier
        .compile_published(Some((version, spec.clone())))
        .await?;
    serde_json::to_string_pretty(&spec).map_err(|e| ApiError::Internal(e.to_string()))
}

fn note(raw: &Option<String>) -> Result<Option<String>, ApiError> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => kehu_core::text::parse_long_text(n, 1000)
            .map(Some)
            .map_err(|r| ApiError::field("note", r)),
    }
}

/// The version's status changed between reading and writing it.
fn moved_meanwhile(e: kehu_store::StoreError) -> ApiError {
    match e {
        kehu_store::StoreError::NotFound => ApiError::Conflict {
            zh: "该版本刚被他人处理，请刷新后重试".into(),
            en: "someone else moved this version meanwhile; reload and try again".into(),
        },
        e => e.into(),
    }
}

fn moved_meanwhile_api(e: ApiError) -> ApiError {
    match e {
        ApiError::NotFound => moved_meanwhile(kehu_store::StoreError::NotFound),
        e => e,
    }
}
