//! /api/v1/imports: upload a file (checked at once: a dry run), check it
//! again with another mapping, apply it, read the report and its error
//! report, undo it. The engine is `crate::imports`.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::imports::{self, ImportReport, OnInvalid};
use crate::AppState;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::import_mapping::{ImportKind, MappingFile};
use kehu_core::Reason;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Uploads bigger than this are refused (413); larger files go through `kehu import`.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;

fn bad(field: &str, zh: &str, en: &str) -> ApiError {
    ApiError::field(
        field,
        Reason::Other {
            zh: zh.into(),
            en: en.into(),
        },
    )
}

fn parse_mapping(text: &str) -> Result<MappingFile, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        ApiError::field(
            "mapping",
            Reason::Other {
                zh: format!("映射不是有效的 JSON：{e}"),
                en: format!("the mapping is not valid JSON: {e}"),
            },
        )
    })
}

/// The parts of an upload.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ImportUpload {
    /// customers | contacts | orders | interactions
    kind: String,
    /// The CSV (UTF-8, GBK/GB18030, UTF-16 with BOM; any delimiter) or XLSX/XLS/ODS file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A mapping file: `{"columns": {"header": "field" or null}}`; absent = recognized by the headers.
    mapping: Option<String>,
    /// Or a saved mapping template's id.
    mapping_id: Option<i64>,
}

/// Uploads a file and checks it (a dry run: nothing is written). The report
/// counts new / updated / unchanged / invalid / duplicate-suspect rows and
/// lists the first problems; the file is kept for `apply`.
#[utoipa::path(post, path = "/api/v1/imports", tag = "imports",
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses((status = 201, body = ImportReport), (status = 413, description = "file too large"),
              (status = 422, description = "bad kind, file or mapping", content_type = "application/problem+json")))]
pub async fn upload(
    State(state): State<AppState>,
    user: CurrentUser,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let (mut kind, mut file, mut mapping, mut mapping_id) = (None, None, None, None);
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            bad(
                "file",
                "无法读取上传内容",
                &format!("the upload cannot be read: {e}"),
            )
        }
    };
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "kind" => kind = Some(field.text().await.map_err(unreadable)?),
            "mapping" => {
                let text = field.text().await.map_err(unreadable)?;
                if !text.trim().is_empty() {
                    mapping = Some(parse_mapping(&text)?);
                }
            }
            "mapping_id" => {
                let text = field.text().await.map_err(unreadable)?;
                if !text.trim().is_empty() {
                    mapping_id = Some(
                        text.trim()
                            .parse::<i64>()
                            .map_err(|_| ApiError::field("mapping_id", Reason::NumberFormat))?,
                    );
                }
            }
            "file" => {
                let name = kehu_core::text::upload_name(field.file_name());
                let bytes = field.bytes().await.map_err(unreadable)?;
                file = Some((name, bytes.to_vec()));
            }
            _ => {}
        }
    }
    let kind = kind.unwrap_or_default();
    let Some(kind) = ImportKind::parse(kind.trim()) else {
        return Err(ApiError::field(
            "kind",
            Reason::UnknownOption {
                allowed: ImportKind::ALL
                    .iter()
                    .map(|k| k.name().to_string())
                    .collect(),
            },
        ));
    };
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(ApiError::field("file", Reason::Required));
    };
    if let Some(id) = mapping_id {
        mapping = Some(imports::template_for(&state, kind, id).await?);
    }
    let importer = imports::importer_of(&user);
    let report = imports::upload(&state, &importer, kind, &name, bytes, mapping, false).await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

/// The caller's imports (everyone's for those whose rights reach every customer), newest first.
#[utoipa::path(get, path = "/api/v1/imports", tag = "imports",
    responses((status = 200, body = Vec<ImportReport>)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<ImportReport>>, ApiError> {
    let records = imports::visible_records(&state, &imports::importer_of(&user), 100).await?;
    Ok(Json(records.iter().map(imports::report_of).collect()))
}

#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "imports", params(("id" = i64, Path)),
    responses((status = 200, body = ImportReport), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ImportReport>, ApiError> {
    let record = imports::visible_record(&state, &imports::importer_of(&user), id).await?;
    Ok(Json(imports::report_of(&record)))
}

/// The error report: every kept problem as CSV (row, column, field, value, kind, reason).
#[utoipa::path(get, path = "/api/v1/imports/{id}/problems.csv", tag = "imports", params(("id" = i64, Path)),
    responses((status = 200, description = "CSV", content_type = "text/csv"), (status = 404, content_type = "application/problem+json")))]
pub async fn problems_csv(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let record = imports::visible_record(&state, &imports::importer_of(&user), id).await?;
    let report = imports::report_of(&record);
    let csv = imports::problems_csv(&report.problems, crate::error::lang_of(&headers));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"import-{id}-problems.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}

/// Another check of a kept upload, with another mapping.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckAgain {
    /// `{"columns": {"header": "field" or null}}`; absent = recognized by the headers.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub mapping: Option<MappingFile>,
    /// Or a saved mapping template's id.
    #[serde(default)]
    pub mapping_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/imports/{id}/dry-run", tag = "imports", params(("id" = i64, Path)), request_body = CheckAgain,
    responses((status = 200, body = ImportReport), (status = 409, description = "already applied"), (status = 422, content_type = "application/problem+json")))]
pub async fn check_again(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    super::ApiJson(body): super::ApiJson<CheckAgain>,
) -> Result<Json<ImportReport>, ApiError> {
    let importer = imports::importer_of(&user);
    let mapping = match body.mapping_id {
        Some(template) => {
            let record = imports::visible_record(&state, &importer, id).await?;
            let kind = ImportKind::parse(&record.kind).ok_or(ApiError::NotFound)?;
            Some(imports::template_for(&state, kind, template).await?)
        }
        None => body.mapping,
    };
    Ok(Json(
        imports::check_again(&state, &importer, id, mapping).await?,
    ))
}

/// How to apply a checked upload.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyImport {
    /// `skip`: import the valid rows; `abort`: import nothing if any row is invalid.
    pub on_invalid: OnInvalid,
    /// Leave out new customers that look like existing ones.
    #[serde(default)]
    pub skip_suspects: bool,
}

/// Applies a checked upload in one transaction (all valid rows, or
/// nothing); status `refused` when `abort` met an invalid row.
#[utoipa::path(post, path = "/api/v1/imports/{id}/apply", tag = "imports", params(("id" = i64, Path)), request_body = ApplyImport,
    responses((status = 200, body = ImportReport), (status = 409, description = "already applied"), (status = 422, content_type = "application/problem+json")))]
pub async fn apply(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    super::ApiJson(body): super::ApiJson<ApplyImport>,
) -> Result<Json<ImportReport>, ApiError> {
    let importer = imports::importer_of(&user);
    Ok(Json(
        imports::apply_stored(&state, &importer, id, body.on_invalid, body.skip_suspects).await?,
    ))
}

/// What an undo did.
#[derive(Debug, Serialize, ToSchema)]
pub struct UndoOut {
    /// Records the import had added, deleted again.
    pub deleted: u64,
    /// Records the import had changed, put back.
    pub restored: u64,
}

/// Undoes an applied import as a whole; refused (nothing changed, 422
/// naming the records) when a record it wrote has changed since.
#[utoipa::path(post, path = "/api/v1/imports/{id}/undo", tag = "imports", params(("id" = i64, Path)),
    responses((status = 200, body = UndoOut), (status = 422, content_type = "application/problem+json")))]
pub async fn undo(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<UndoOut>, ApiError> {
    let importer = imports::importer_of(&user);
    let summary = imports::undo(&state, &importer, id).await?;
    Ok(Json(UndoOut {
        deleted: summary.deleted,
        restored: summary.restored,
    }))
}

/// A saved mapping template.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappingOut {
    pub id: i64,
    /// customers | contacts | orders | interactions
    pub kind: String,
    pub name: String,
    /// header → field key (null: not imported).
    #[schema(value_type = Object)]
    pub columns: std::collections::BTreeMap<String, Option<String>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<kehu_store::imports::SavedMapping> for MappingOut {
    fn from(m: kehu_store::imports::SavedMapping) -> Self {
        MappingOut {
            id: m.id,
            kind: m.kind,
            name: m.name,
            columns: m.columns,
            updated_at: m.updated_at,
        }
    }
}

/// A template to save (replacing one of the same kind and name).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingWrite {
    pub kind: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub columns: std::collections::BTreeMap<String, Option<String>>,
}

/// The saved mapping templates (shared by everyone who imports).
#[utoipa::path(get, path = "/api/v1/import-mappings", tag = "imports", responses((status = 200, body = Vec<MappingOut>)))]
pub async fn list_mappings(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<MappingOut>>, ApiError> {
    Ok(Json(
        state
            .store
            .mappings()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Saves a mapping template for a kind the caller may import.
#[utoipa::path(post, path = "/api/v1/import-mappings", tag = "imports", request_body = MappingWrite,
    responses((status = 201, body = MappingOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn save_mapping(
    State(state): State<AppState>,
    user: CurrentUser,
    super::ApiJson(body): super::ApiJson<MappingWrite>,
) -> Result<(StatusCode, Json<MappingOut>), ApiError> {
    let importer = imports::importer_of(&user);
    let saved =
        imports::save_template(&state, &importer, &body.kind, &body.name, &body.columns).await?;
    Ok((StatusCode::CREATED, Json(saved.into())))
}

/// Deletes a template (the caller must be able to import its kind).
#[utoipa::path(delete, path = "/api/v1/import-mappings/{id}", tag = "imports", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_mapping(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let saved = state.store.mapping(id).await?;
    let kind = ImportKind::parse(&saved.kind).ok_or(ApiError::NotFound)?;
    imports::importer_of(&user).check(kind)?;
    state.store.delete_mapping(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
