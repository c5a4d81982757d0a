//! The import pages: upload a file (checked at once), see what it would do
//! (counts, the columns and the fields they feed — changeable —, the first
//! rows, every problem), apply it (skip or abort on invalid rows), undo it.
//! Every operation goes through `crate::imports`, as the API's do.

use super::forms::FormData;
use super::Page;
use crate::error::ApiError;
use crate::imports::{self, OnInvalid};
use crate::AppState;
use axum::extract::{Multipart, Path, State};
use axum::response::Response;
use kehu_core::import_mapping::{ImportKind, MappingFile};
use kehu_core::Lang;
use minijinja::{context, Value};

fn kind_label(kind: &str, lang: Lang) -> &str {
    match (kind, lang) {
        ("customers", Lang::Zh) => "客户",
        ("contacts", Lang::Zh) => "联系人",
        ("orders", Lang::Zh) => "订单",
        ("interactions", Lang::Zh) => "互动记录",
        (k, _) => k,
    }
}

fn status_label(status: &str, lang: Lang) -> &str {
    match (status, lang) {
        ("dry_run", Lang::Zh) => "已检查，未应用",
        ("applied", Lang::Zh) => "已导入",
        ("refused", Lang::Zh) => "已拒绝（有无效行）",
        ("undone", Lang::Zh) => "已撤销",
        ("dry_run", Lang::En) => "checked, not applied",
        ("refused", Lang::En) => "refused (invalid rows)",
        (s, _) => s,
    }
}

/// GET /imports: the upload form and the latest imports.
pub async fn page(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let records = imports::visible_records(&state, &imports::importer_of(&page.user), 50).await?;
    let lang = page.lang;
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            let report = imports::report_of(r);
            context! {
                id => r.id, kind => kind_label(&r.kind, lang), file_name => r.file_name.clone(),
                status => r.status.clone(), status_label => status_label(&r.status, lang),
                created_at => r.created_at.format("%Y-%m-%d %H:%M").to_string(), counts => Value::from_serialize(&report.counts),
            }
        })
        .collect();
    let kinds: Vec<Value> = ImportKind::ALL
        .iter()
        .map(|k| context! { key => k.name(), label => kind_label(k.name(), lang) })
        .collect();
    let templates = templates(&state, None, lang).await?;
    Ok(page.render(
        &state,
        "imports/list.html",
        "imports",
        context! { rows, kinds, templates },
    ))
}

/// POST /imports (multipart): upload and check; then the import's page.
pub async fn upload(
    State(state): State<AppState>,
    page: Page,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let (mut csrf, mut kind, mut file, mut template) = (None, None, None, None);
    while let Ok(Some(field)) = form.next_field().await {
        match field.name().unwrap_or_default() {
            "csrf_token" => csrf = field.text().await.ok(),
            "kind" => kind = field.text().await.ok(),
            "mapping_id" => template = field.text().await.ok(),
            "file" => {
                let name = kehu_core::text::upload_name(field.file_name());
                match field.bytes().await {
                    Ok(b) => file = Some((name, b.to_vec())),
                    Err(_) => return Ok(page.error_page(&state, ApiError::PayloadTooLarge)),
                }
            }
            _ => {}
        }
    }
    let csrf_form = FormData(vec![("csrf_token".into(), csrf.unwrap_or_default())]);
    page.check_csrf(&csrf_form)?;
    let Some(kind) = kind.as_deref().and_then(ImportKind::parse) else {
        return Ok(page.error_page(&state, ApiError::field("kind", kehu_core::Reason::Required)));
    };
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Ok(page.error_page(&state, ApiError::field("file", kehu_core::Reason::Required)));
    };
    let mapping = match template_id(template.as_deref()) {
        Ok(None) => None,
        Ok(Some(id)) => match imports::template_for(&state, kind, id).await {
            Ok(m) => Some(m),
            Err(e) => return Ok(page.error_page(&state, e)),
        },
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    let importer = imports::importer_of(&page.user);
    match imports::upload(&state, &importer, kind, &name, bytes, mapping, true).await {
        Ok(report) => Ok(page.redirect(&format!("/imports/{}", report.id.unwrap_or(0)))),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /imports/{id}: what the import does or did.
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let importer = imports::importer_of(&page.user);
    let record = match imports::visible_record(&state, &importer, id).await {
        Ok(r) => r,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    let report = imports::report_of(&record);
    let lang = page.lang;
    let kind = ImportKind::parse(&record.kind).unwrap_or(ImportKind::Customers);
    let (headers, preview) = imports::preview(&state, &record, 5)
        .await
        .unwrap_or_default();
    // The columns as last checked; before any mapping worked, the suggestions
    // from the headers (similar ones too, for a person to confirm).
    let mapped: std::collections::BTreeMap<String, String> = if report.mapping.is_empty() {
        kehu_core::import_mapping::suggest(kind, &headers)
            .into_iter()
            .map(|s| (s.header, s.target.to_string()))
            .collect()
    } else {
        report
            .mapping
            .iter()
            .map(|m| (m.header.clone(), m.field.clone()))
            .collect()
    };
    let mut fields: Vec<Value> = kind
        .targets()
        .iter()
        .map(|t| context! { key => t.key, label => t.headers[0], required => t.required })
        .collect();
    if kind == ImportKind::Customers {
        for d in state.store.custom_field_defs().await? {
            fields.push(context! {
                key => format!("{}{}", kehu_core::import_mapping::CUSTOM_PREFIX, d.key),
                label => d.label, required => false,
            });
        }
    }
    let columns: Vec<Value> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| context! { index => i, header => h.clone(), field => mapped.get(h).cloned().unwrap_or_default() })
        .collect();
    let problems: Vec<Value> = report
        .problems
        .iter()
        .take(200)
        .map(|p| context! {
            row => p.row, column => p.column.clone(), field => p.field.clone(), value => p.value.clone(), warning => p.warning,
            reason => if lang == Lang::En { p.reason_en.clone() } else { p.reason_zh.clone() },
        })
        .collect();
    let open = record.status == "dry_run" || record.status == "refused";
    let templates = templates(&state, Some(kind), lang).await?;
    Ok(page.render(&state, "imports/detail.html", "imports", context! {
        id, kind => kind_label(&record.kind, lang), file_name => record.file_name.clone(),
        status => record.status.clone(), status_label => status_label(&record.status, lang),
        counts => Value::from_serialize(&report.counts), problems, problems_total => report.counts.problems,
        columns, fields, preview, can_apply => open && !headers.is_empty(), can_undo => record.status == "applied", templates,
        mapping => report.mapping.iter().map(|m| context! { header => m.header.clone(), field => m.field.clone() }).collect::<Vec<_>>(),
    }))
}

/// POST /imports/{id}/mapping: check again with the columns as chosen.
pub async fn remap(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let importer = imports::importer_of(&page.user);
    let done = async {
        let record = imports::visible_record(&state, &importer, id).await?;
        let mapping = match template_id(form.get("mapping_id"))? {
            Some(template) => {
                let kind = ImportKind::parse(&record.kind).ok_or(ApiError::NotFound)?;
                imports::template_for(&state, kind, template).await?
            }
            None => chosen_mapping(&record, &form),
        };
        imports::check_again(&state, &importer, id, Some(mapping)).await
    }
    .await;
    Ok(page.after(&state, done, |_| format!("/imports/{id}")))
}

/// A chosen mapping template's id: none when empty, refused when not a number.
fn template_id(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| ApiError::field("mapping_id", kehu_core::Reason::NumberFormat)),
    }
}

/// The columns as chosen on the import's page (`col_N` = field key, empty: not imported).
fn chosen_mapping(record: &kehu_store::imports::ImportRecord, form: &FormData) -> MappingFile {
    let headers = imports::report_of(record).headers;
    MappingFile {
        kind: ImportKind::parse(&record.kind),
        columns: headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let field = form
                    .get(&format!("col_{i}"))
                    .filter(|f| !f.is_empty())
                    .map(str::to_string);
                (h.clone(), field)
            })
            .collect(),
    }
}

/// POST /imports/{id}/save-mapping: the columns as chosen, saved as a template named `template_name`.
pub async fn save_mapping(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let importer = imports::importer_of(&page.user);
    let done = async {
        let record = imports::visible_record(&state, &importer, id).await?;
        let mapping = chosen_mapping(&record, &form);
        let name = form.get("template_name").unwrap_or("");
        imports::save_template(&state, &importer, &record.kind, name, &mapping.columns).await
    }
    .await;
    Ok(page.after(&state, done, |_| format!("/imports/{id}")))
}

/// The saved templates (of one kind, or all) as the pages list them.
async fn templates(
    state: &AppState,
    kind: Option<ImportKind>,
    lang: Lang,
) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .mappings()
        .await?
        .into_iter()
        .filter(|m| kind.is_none_or(|k| k.name() == m.kind))
        .map(|m| context! { id => m.id, name => m.name.clone(), kind => kind_label(&m.kind, lang).to_string(), columns => m.columns.len() })
        .collect())
}

/// POST /imports/{id}/apply
pub async fn apply(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let on_invalid = form
        .get("on_invalid")
        .and_then(OnInvalid::parse)
        .unwrap_or(OnInvalid::Abort);
    let skip_suspects = form.get("skip_suspects").is_some();
    let importer = imports::importer_of(&page.user);
    let done = imports::apply_stored(&state, &importer, id, on_invalid, skip_suspects).await;
    Ok(page.after(&state, done, |_| format!("/imports/{id}")))
}

/// POST /imports/{id}/undo
pub async fn undo(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let importer = imports::importer_of(&page.user);
    let done = imports::undo(&state, &importer, id).await;
    Ok(page.after(&state, done, |_| format!("/imports/{id}")))
}
