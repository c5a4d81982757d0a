//! Classification schemes in the UI: the list, a scheme's versions and
//! steps, the version editor (weights, thresholds, scores, mapping rules —
//! or the whole spec as JSON), the simulation of a draft on the live data,
//! and the approval inbox. Every operation goes through the same functions
//! as the API (`api::schemes`), so the checks are the same.

use super::forms::error_map;
use super::{FormData, Page};
use crate::api::dto::{SchemeOut, VersionWrite};
use crate::api::schemes::{authors, create_draft, edit_draft, may_simulate, parse_step, take};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use kehu_core::classify::workflow::{self, Step, VersionStatus};
use kehu_core::role::Permission;
use kehu_core::{Reason, ValidationErrors};
use kehu_store::schemes::SchemeVersion;
use minijinja::{context, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    page.user.require(Permission::CustomerRead)?;
    let versions = state.store.scheme_versions(None).await?;
    let schemes = versions
        .chunk_by(|a, b| a.scheme_key == b.scheme_key)
        .map(|group| {
            let s = SchemeOut::new(group)?;
            let in_progress = group
                .iter()
                .filter(|v| {
                    matches!(
                        v.status,
                        VersionStatus::Draft | VersionStatus::Submitted | VersionStatus::Approved
                    )
                })
                .count();
            Ok(context! {
                name => display_name(&s, &page), key => s.key, published => s.published_version,
                classes => s.classes, pending => in_progress,
            })
        })
        .collect::<Result<Vec<Value>, ApiError>>()?;
    Ok(page.render(&state, "schemes/list.html", "schemes", context! { schemes }))
}

/// The scheme's name in the page's language.
fn display_name(s: &SchemeOut, page: &Page) -> String {
    let en = s.name_en.as_deref().unwrap_or("");
    kehu_core::classify::spec::label(&s.name, en, page.lang).to_string()
}

pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    page.user.require(Permission::CustomerRead)?;
    let versions = state.store.scheme_versions(Some(&key)).await?;
    if versions.is_empty() {
        return Ok(page.error_page(&state, ApiError::NotFound));
    }
    let names = user_names(&state).await?;
    let events = state.store.scheme_events(&key).await?;
    let name = display_name(&SchemeOut::new(&versions)?, &page);
    let ctx = context! {
        key, name,
        versions => versions.iter().map(|v| version_row(v, &names)).collect::<Vec<_>>(),
        events => events.iter().map(|e| context! {
            version => e.version, action => e.action.clone(), at => e.at.format("%Y-%m-%d %H:%M").to_string(),
            actor => e.actor.and_then(|a| names.get(&a).cloned()), note => e.note.clone(),
        }).collect::<Vec<_>>(),
        can_edit => page.user.actor.grants.has(Permission::RuleEdit),
    };
    Ok(page.render(&state, "schemes/detail.html", "schemes", ctx))
}

fn version_row(v: &SchemeVersion, names: &BTreeMap<i64, String>) -> Value {
    context! {
        scheme => v.scheme_key.clone(), version => v.version, status => v.status.as_str(), note => v.note.clone(),
        created_by => v.created_by.and_then(|a| names.get(&a).cloned()),
        submitted_by => v.submitted_by.and_then(|a| names.get(&a).cloned()),
        updated_at => v.updated_at.format("%Y-%m-%d %H:%M").to_string(),
    }
}

async fn user_names(state: &AppState) -> Result<BTreeMap<i64, String>, ApiError> {
    Ok(state.store.user_names().await?.into_iter().collect())
}

/// A new draft from the published version (or the newest one).
pub async fn new_draft(
    State(state): State<AppState>,
    page: Page,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let versions = state.store.scheme_versions(Some(&key)).await?;
    let base = versions
        .iter()
        .find(|v| v.status == VersionStatus::Published)
        .or(versions.first())
        .ok_or(ApiError::NotFound)?;
    let body = VersionWrite {
        spec: serde_json::from_str(&base.spec).map_err(|e| ApiError::Internal(e.to_string()))?,
        note: Some(format!(
            "基于第 {} 版 based on version {}",
            base.version, base.version
        )),
    };
    match create_draft(&state, &page.user, &key, &body).await {
        Ok(v) => Ok(page.redirect(&format!("/schemes/{key}/versions/{}", v.version))),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn version(
    State(state): State<AppState>,
    page: Page,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    page.user.require(Permission::CustomerRead)?;
    let v = state.store.scheme_version(&key, version).await?;
    render_version(&state, &page, &v, None, BTreeMap::new(), None).await
}

/// The version page; after a failed save, the submitted spec and its errors.
async fn render_version(
    state: &AppState,
    page: &Page,
    v: &SchemeVersion,
    submitted: Option<Json>,
    errors: BTreeMap<String, String>,
    simulation: Option<crate::classifier::Simulation>,
) -> Result<Response, ApiError> {
    let stored: Json =
        serde_json::from_str(&v.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let spec = submitted.unwrap_or(stored);
    let names = user_names(state).await?;
    let grants = &page.user.actor.grants;
    let authors = authors(v);
    // The steps this user may take now, as buttons.
    let steps: Vec<&str> = Step::MOVES
        .into_iter()
        .filter(|s| workflow::check(*s, Some(v.status), authors, page.user.user.id, grants).is_ok())
        .map(Step::as_str)
        .collect();
    let editable = workflow::check(
        Step::Edit,
        Some(v.status),
        authors,
        page.user.user.id,
        grants,
    )
    .is_ok();
    let failed = !errors.is_empty();
    let ctx = context! {
        v => version_row(v, &names),
        key => v.scheme_key.clone(),
        spec => Value::from_serialize(&spec),
        spec_json => serde_json::to_string_pretty(&spec).unwrap_or_default(),
        classes => spec["classes"].as_array().map(|cs| cs.iter().filter_map(|c| c["key"].as_str().map(str::to_string)).collect::<Vec<_>>()).unwrap_or_default(),
        editable, steps, errors,
        can_simulate => may_simulate(&page.user),
        simulation => simulation.map(|s| Value::from_serialize(&s)),
    };
    let mut r = page.render(state, "schemes/version.html", "schemes", ctx);
    if failed {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

/// Saves the editor: the structured fields (named by their place in the
/// spec, e.g. `dimensions[0].weight`) applied to the stored spec, or the
/// whole spec as JSON (`mode=json`).
pub async fn save(
    State(state): State<AppState>,
    page: Page,
    Path((key, version)): Path<(String, i64)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let v = state.store.scheme_version(&key, version).await?;
    let mut errors = ValidationErrors::default();
    let spec: Json = if form.text("mode").as_deref() == Some("json") {
        match serde_json::from_str(&form.text("spec_json").unwrap_or_default()) {
            Ok(s) => s,
            Err(e) => {
                errors.push(
                    "spec_json",
                    Reason::Other {
                        zh: format!("JSON 格式有误：{e}"),
                        en: format!("not valid JSON: {e}"),
                    },
                );
                serde_json::from_str(&v.spec).map_err(|e| ApiError::Internal(e.to_string()))?
            }
        }
    } else {
        let mut spec: Json =
            serde_json::from_str(&v.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
        for (name, raw) in &form.0 {
            if name.starts_with("dimensions[") || name.starts_with("assign.") {
                if let Err(reason) = set_path(&mut spec, name, raw.trim()) {
                    errors.push(name.clone(), reason);
                }
            }
        }
        spec
    };
    if errors.is_empty() {
        let body = VersionWrite {
            spec: spec.clone(),
            note: form.text("note").or(v.note.clone()),
        };
        match edit_draft(&state, &page.user, &key, version, &body).await {
            Ok(saved) => {
                return Ok(page.redirect(&format!("/schemes/{key}/versions/{}", saved.version)))
            }
            Err(ApiError::Validation(e)) => errors = e,
            Err(e) => return Ok(page.error_page(&state, e)),
        }
    }
    // Compile errors name `KEY.place`; the editor's fields are named by place.
    let prefix = format!("{key}.");
    let by_place = ValidationErrors(
        errors
            .0
            .into_iter()
            .map(|mut f| {
                if let Some(rest) = f.field.strip_prefix(&prefix) {
                    f.field = rest.to_string();
                }
                f
            })
            .collect(),
    );
    render_version(
        &state,
        &page,
        &v,
        Some(spec),
        error_map(&by_place, page.lang),
        None,
    )
    .await
}

/// Sets `path` (`dimensions[0].levels[1].when`, `assign.rules[2].class`,
/// `assign.default`) in a spec: weights, scores and band minimums are
/// integers; an empty condition means "the rest".
fn set_path(spec: &mut Json, path: &str, raw: &str) -> Result<(), Reason> {
    let mut at = spec;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (
                n,
                Some(
                    rest.trim_end_matches(']')
                        .parse::<usize>()
                        .map_err(|_| Reason::UnknownField)?,
                ),
            ),
            None => (*part, None),
        };
        let last = i + 1 == parts.len();
        if last && index.is_none() {
            let obj = at.as_object_mut().ok_or(Reason::UnknownField)?;
            if !obj.contains_key(name) && !matches!(name, "when") {
                return Err(Reason::UnknownField);
            }
            let value = match name {
                "weight" | "score" | "min" => {
                    Json::from(raw.parse::<i64>().map_err(|_| Reason::IntegerFormat)?)
                }
                "when" if raw.is_empty() => Json::Null,
                _ => Json::from(raw),
            };
            obj.insert(name.to_string(), value);
            return Ok(());
        }
        at = at.get_mut(name).ok_or(Reason::UnknownField)?;
        if let Some(k) = index {
            at = at.get_mut(k).ok_or(Reason::UnknownField)?;
        }
    }
    Err(Reason::UnknownField)
}

/// What publishing the version would do, shown on its page.
pub async fn simulate(
    State(state): State<AppState>,
    page: Page,
    Path((key, version)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    if !may_simulate(&page.user) {
        return Ok(page.error_page(&state, ApiError::Forbidden));
    }
    let v = state.store.scheme_version(&key, version).await?;
    let sim = state
        .classifier
        .simulate(version, v.parsed_spec()?, state.store.today())
        .await?;
    render_version(&state, &page, &v, None, BTreeMap::new(), Some(sim)).await
}

/// A workflow step from a button (with an optional note).
pub async fn step(
    State(state): State<AppState>,
    page: Page,
    Path((key, version, step)): Path<(String, i64, String)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let step = parse_step(&step).ok_or(ApiError::NotFound)?;
    match take(&state, &page.user, &key, version, step, form.text("note")).await {
        Ok(_) => Ok(page.redirect(&format!("/schemes/{key}/versions/{version}"))),
        Err(ApiError::Validation(e)) => {
            let v = state.store.scheme_version(&key, version).await?;
            render_version(&state, &page, &v, None, error_map(&e, page.lang), None).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// Versions waiting for approval.
pub async fn approvals(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    page.user.require(Permission::CustomerRead)?;
    let names = user_names(&state).await?;
    let waiting: Vec<Value> = state
        .store
        .scheme_versions(None)
        .await?
        .iter()
        .filter(|v| v.status == VersionStatus::Submitted)
        .map(|v| version_row(v, &names))
        .collect();
    Ok(page.render(
        &state,
        "schemes/approvals.html",
        "approvals",
        context! { waiting, can_approve => page.user.actor.grants.has(Permission::RuleApprove) },
    ))
}

#[cfg(test)]
mod tests {
    use super::set_path;
    use serde_json::json;

    #[test]
    fn editor_fields_land_at_their_place() {
        let mut spec = json!({"dimensions": [{"weight": 60, "levels": [{"key": "高", "score": 100, "when": "a >= 1"}, {"key": "低", "score": 20}]}],
            "assign": {"by": "rules", "default": "维持型", "rules": [{"when": "x = 高", "class": "战略型"}]}});
        let cases: &[(&str, &str, Result<(), &str>)] = &[
            ("dimensions[0].weight", "55", Ok(())),
            ("dimensions[0].weight", "55.5", Err("integer_format")),
            ("dimensions[0].levels[0].when", "a >= 2", Ok(())),
            ("dimensions[0].levels[1].when", "", Ok(())),
            ("dimensions[0].levels[1].score", "30", Ok(())),
            ("dimensions[3].weight", "10", Err("unknown_field")),
            ("dimensions[0].colour", "red", Err("unknown_field")),
            ("assign.rules[0].class", "潜力型", Ok(())),
            ("assign.default", "优化型", Ok(())),
            ("assign.rules[x].class", "潜力型", Err("unknown_field")),
        ];
        for (path, raw, expected) in cases {
            let got = set_path(&mut spec, path, raw).map_err(|r| r.code());
            assert_eq!(&got, expected, "{path} = {raw}");
        }
        assert_eq!(spec["dimensions"][0]["weight"], 55);
        assert_eq!(spec["dimensions"][0]["levels"][0]["when"], "a >= 2");
        assert_eq!(
            spec["dimensions"][0]["levels"][1]["when"],
            serde_json::Value::Null
        );
        assert_eq!(spec["dimensions"][0]["levels"][1]["score"], 30);
        assert_eq!(spec["assign"]["rules"][0]["class"], "潜力型");
        assert_eq!(spec["assign"]["default"], "优化型");
    }
}
