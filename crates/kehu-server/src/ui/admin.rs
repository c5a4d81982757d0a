//! Admin pages: custom field definitions and users.

use super::forms::{error_map, split_list, FormData};
use super::Page;
use crate::api::dto::{CustomFieldWrite, UserCreate};
use crate::api::meta::custom_field_def;
use crate::api::users::create_user as create_user_record;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use kehu_core::custom_field::{FieldGroup, FieldKind};
use kehu_core::role::{Permission, ROLE_PRESETS};
use kehu_core::{Lang, ValidationErrors};
use kehu_store::UserChange;
use minijinja::{context, Value};
use std::collections::BTreeMap;

/// The error page when the role lacks `p`.
fn refusal(state: &AppState, page: &Page, p: Permission) -> Option<Response> {
    page.user
        .require(p)
        .err()
        .map(|e| page.error_page(state, e))
}

async fn render_fields(
    state: &AppState,
    page: &Page,
    form: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let fields: Vec<Value> = state
        .store
        .custom_fields()
        .await?
        .into_iter()
        .map(|f| {
            let rule = serde_json::to_string(&f.def.rule).unwrap_or_default();
            context! {
                id => f.id, version => f.version, key => f.def.key, label => f.def.label, required => f.def.required, options => f.def.options,
                group_label => if lang == Lang::En { f.def.group.key() } else { f.def.group.label_zh() },
                kind_label => if lang == Lang::En { f.def.kind.key() } else { f.def.kind.label_zh() },
                rule => if rule == "{}" { String::new() } else { rule },
            }
        })
        .collect();
    let groups: Vec<(&str, &str)> = FieldGroup::ALL
        .iter()
        .map(|g| {
            (
                g.key(),
                if lang == Lang::En {
                    g.key()
                } else {
                    g.label_zh()
                },
            )
        })
        .collect();
    let kinds: Vec<(&str, &str)> = FieldKind::ALL
        .iter()
        .map(|k| {
            (
                k.key(),
                if lang == Lang::En {
                    k.key()
                } else {
                    k.label_zh()
                },
            )
        })
        .collect();
    let failed = !errors.is_empty();
    Ok(page.render_form(
        state,
        "admin/fields.html",
        "fields",
        context! { fields, groups, kinds, form, errors },
        failed,
    ))
}

pub async fn fields(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if let Some(r) = refusal(&state, &page, Permission::CustomFieldAdmin) {
        return Ok(r);
    }
    render_fields(&state, &page, BTreeMap::new(), BTreeMap::new()).await
}

pub async fn create_field(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let Some(r) = refusal(&state, &page, Permission::CustomFieldAdmin) {
        return Ok(r);
    }
    let mut rule = serde_json::Map::new();
    let mut e = ValidationErrors::default();
    if let Some(p) = form.text("rule.pattern") {
        rule.insert("pattern".into(), p.into());
    }
    for bound in ["min", "max"] {
        if let Some(v) = form.text(&format!("rule.{bound}")) {
            if let Some(n) = e.check(
                &format!("rule.{bound}"),
                v.parse::<f64>()
                    .map_err(|_| kehu_core::Reason::NumberFormat),
            ) {
                rule.insert(bound.into(), serde_json::json!(n));
            }
        }
    }
    if form.checked("rule.mask") {
        let mut mask = serde_json::Map::new();
        for end in ["first", "last"] {
            let name = format!("rule.mask.{end}");
            if let Some(v) = form.text(&name) {
                if let Some(n) = e.check(
                    &name,
                    v.parse::<u8>()
                        .map_err(|_| kehu_core::Reason::IntegerFormat),
                ) {
                    mask.insert(end.into(), serde_json::json!(n));
                }
            }
        }
        rule.insert("mask".into(), serde_json::Value::Object(mask));
    }
    let write = CustomFieldWrite {
        key: form.text("key"),
        label: form.text("label"),
        group: form.text("group"),
        kind: form.text("kind"),
        required: Some(form.checked("required")),
        options: split_list(form.text("options")),
        rule: serde_json::Value::Object(rule),
        position: form.text("position").and_then(|p| p.parse().ok()),
    };
    let result = match e.clone().into_result() {
        Err(v) => Err(ApiError::Validation(v)),
        Ok(()) => match custom_field_def(write) {
            Ok(def) => state
                .store
                .insert_custom_field(&def)
                .await
                .map_err(ApiError::from),
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(f) => {
            crate::api::meta::audit_field(
                &state,
                &page.user,
                "custom_field.create",
                f.id,
                serde_json::json!({"field": crate::api::dto::CustomFieldOut::from(f)}),
            );
            Ok(page.redirect("/admin/fields"))
        }
        Err(ApiError::Validation(v)) => {
            render_fields(&state, &page, form.posted(), error_map(&v, page.lang)).await
        }
        Err(other) => Ok(page.error_page(&state, other)),
    }
}

pub async fn delete_field(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let Some(r) = refusal(&state, &page, Permission::CustomFieldAdmin) {
        return Ok(r);
    }
    let version = form
        .text("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    match crate::api::meta::delete_field(&state, &page.user, id, version).await {
        Ok(()) => Ok(page.redirect("/admin/fields")),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

async fn render_users(
    state: &AppState,
    page: &Page,
    form: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    created: Option<(String, String)>,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let role_name = |key: &str| {
        ROLE_PRESETS
            .iter()
            .find(|r| r.key == key)
            .map(|r| {
                if lang == Lang::En {
                    r.name_en
                } else {
                    r.name_zh
                }
            })
            .unwrap_or(key)
            .to_string()
    };
    let q = kehu_core::query::parse_list_query(
        &[("limit".into(), "500".into())],
        kehu_core::query::USER_FIELDS,
        &[],
        "username",
    )?;
    let users: Vec<Value> = state
        .store
        .list_users(&q)
        .await?
        .items
        .into_iter()
        .map(|u| context! { id => u.id, version => u.version, username => u.username, display_name => u.display_name, role_name => role_name(&u.role), team => u.team, active => u.active })
        .collect();
    let roles: Vec<(String, String)> = state
        .store
        .roles()
        .await?
        .into_iter()
        .map(|r| {
            (
                r.key.clone(),
                if lang == Lang::En {
                    r.name_en
                } else {
                    r.name_zh
                },
            )
        })
        .collect();
    let failed = !errors.is_empty();
    let (created_username, created_password) = created.unzip();
    Ok(page.render_form(
        state,
        "admin/users.html",
        "users",
        context! { users, roles, form, errors, created_username, created_password },
        failed,
    ))
}

pub async fn users(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if let Some(r) = refusal(&state, &page, Permission::UserAdmin) {
        return Ok(r);
    }
    render_users(&state, &page, BTreeMap::new(), BTreeMap::new(), None).await
}

pub async fn create_user(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let Some(r) = refusal(&state, &page, Permission::UserAdmin) {
        return Ok(r);
    }
    let body = UserCreate {
        username: form.text("username").unwrap_or_default(),
        display_name: form.text("display_name"),
        role: form.text("role").unwrap_or_default(),
        team: form.text("team"),
        password: form.text("password"),
    };
    match create_user_record(&state.store, body).await {
        Ok(created) => {
            render_users(
                &state,
                &page,
                BTreeMap::new(),
                BTreeMap::new(),
                created.initial_password.map(|p| (created.user.username, p)),
            )
            .await
        }
        Err(ApiError::Validation(v)) => {
            let values = form
                .0
                .iter()
                .filter(|(k, _)| k != "csrf_token" && k != "password")
                .cloned()
                .collect();
            render_users(&state, &page, values, error_map(&v, page.lang), None).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn toggle_user(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let Some(r) = refusal(&state, &page, Permission::UserAdmin) {
        return Ok(r);
    }
    if id == page.user.user.id {
        return Ok(page.error_page(&state, ApiError::Forbidden));
    }
    let u = state.store.user(id).await?;
    let version = form
        .text("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(u.version);
    let change = UserChange {
        display_name: &u.display_name,
        role: &u.role,
        team: u.team.as_deref(),
        active: !u.active,
    };
    match state.store.update_user(id, version, &change).await {
        Ok(_) => Ok(Redirect::to("/admin/users").into_response()),
        Err(e) => Ok(page.error_page(&state, e.into())),
    }
}

/// GET /admin/roles: each role's rights over personal fields.
pub async fn roles(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if let Some(r) = refusal(&state, &page, Permission::UserAdmin) {
        return Ok(r);
    }
    render_roles(&state, &page, None, BTreeMap::new(), BTreeMap::new()).await
}

async fn render_roles(
    state: &AppState,
    page: &Page,
    failed_role: Option<&str>,
    errors: BTreeMap<String, String>,
    form: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    use kehu_core::privacy::FieldAccess;
    let en = page.lang == Lang::En;
    let columns = crate::privacy::rights_columns(state).await?;
    let defs = state.store.custom_field_defs().await?;
    let accesses: Vec<(&str, &str)> = FieldAccess::ALL
        .iter()
        .map(|a| (a.key(), if en { a.key() } else { a.label_zh() }))
        .collect();
    let stored = state.store.roles().await?;
    let roles: Vec<Value> = stored
        .iter()
        .map(|r| {
            let rights: Vec<Value> = columns
                .iter()
                .map(|(key, _, _)| context! { key, access => crate::privacy::column_access(&r.field_rights, &defs, key).key() })
                .collect();
            let name = if en { &r.name_en } else { &r.name_zh };
            context! { key => r.key.clone(), name => name.clone(), rights, builtin => r.builtin }
        })
        .collect();
    // Permissions as rows, one column per role: each cell the role's scope.
    let permissions: Vec<Value> = Permission::ALL
        .iter()
        .map(|p| {
            let (zh, en_label) = p.labels();
            let scopes: Vec<Value> = stored
                .iter()
                .map(|r| context! { role => r.key.clone(), scope => r.grants.scope(*p).map(|s| s.key()).unwrap_or("none") })
                .collect();
            context! { key => p.key(), label => if en { en_label } else { zh }, scopes }
        })
        .collect();
    let scopes: Vec<(&str, &str)> = [
        ("none", "—"),
        ("own", if en { "own" } else { "本人" }),
        ("team", if en { "team" } else { "本团队" }),
        ("all", if en { "all" } else { "全部" }),
    ]
    .into();
    let columns: Vec<Value> = columns
        .into_iter()
        .map(|(key, zh, en_label)| context! { key, label => if en { en_label } else { zh } })
        .collect();
    let failed = failed_role.is_some();
    Ok(page.render_form(
        state,
        "admin/roles.html",
        "roles",
        context! { roles, columns, accesses, failed_role, errors, permissions, scopes, form },
        failed,
    ))
}

/// POST /admin/roles/{key}/fields: one role's row of the table.
pub async fn set_role_fields(
    State(state): State<AppState>,
    page: Page,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let saved = crate::roles::set_field_rights(&state, &page.user, &key, &form.posted()).await;
    after_role_edit(&state, &page, &key, saved).await
}

/// Back to the roles page, or the page again with the role's errors.
async fn after_role_edit<T>(
    state: &AppState,
    page: &Page,
    key: &str,
    saved: Result<T, ApiError>,
) -> Result<Response, ApiError> {
    match saved {
        Ok(_) => Ok(page.redirect("/admin/roles")),
        Err(ApiError::Validation(v)) => {
            render_roles(
                state,
                page,
                Some(key),
                error_map(&v, page.lang),
                BTreeMap::new(),
            )
            .await
        }
        Err(e) => Ok(page.error_page(state, e)),
    }
}

/// POST /admin/roles/{key}/grants: one role's column of the permissions table.
pub async fn set_role_grants(
    State(state): State<AppState>,
    page: Page,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let saved = crate::roles::set_grants(&state, &page.user, &key, &form.posted()).await;
    after_role_edit(&state, &page, &key, saved).await
}

/// POST /admin/roles: a new role.
pub async fn create_role(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let made = crate::roles::create(
        &state,
        &page.user,
        &form.text("key").unwrap_or_default(),
        &form.text("name_zh").unwrap_or_default(),
        form.text("name_en").as_deref(),
        form.text("copy_from").as_deref(),
    )
    .await;
    match made {
        Ok(_) => Ok(page.redirect("/admin/roles")),
        Err(ApiError::Validation(v)) => {
            render_roles(&state, &page, None, error_map(&v, page.lang), form.posted()).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /admin/roles/{key}/delete
pub async fn delete_role(
    State(state): State<AppState>,
    page: Page,
    Path(key): Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match crate::roles::delete(&state, &page.user, &key).await {
        Ok(()) => Ok(page.redirect("/admin/roles")),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}
