//! Pages: sign-in, the customer list, a customer's page, its forms.

use super::forms::{contact_input, customer_input, error_map, prefixed, FormData};
use super::Page;
use crate::api::customers::{customer_for, resolve_owner, validate_customer};
use crate::api::dto::{ContactOut, InteractionOut, OrderOut};
use crate::auth::{
    self, clear_session_cookie, constant_time_eq, cookie_value, random_token, session_cookie,
};
use crate::client_addr::ClientAddr;
use crate::error::{ui_lang, ApiError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use kehu_core::contact::DECISION_ROLES;
use kehu_core::custom_field::{CustomFieldDef, FieldGroup, FieldKind};
use kehu_core::customer::{CustomerInput, CustomerStatus, SOURCE_CHANNELS};
use kehu_core::interaction::{InteractionInput, InteractionKind, Severity, TicketStatus};
use kehu_core::order::OrderInput;
use kehu_core::query::{
    parse_customer_query, parse_list_query, CONTACT_FIELDS, CUSTOMER_FIELDS, INTERACTION_FIELDS,
    ORDER_FIELDS,
};
use kehu_core::region::{PROVINCES, SALES_REGIONS};
use kehu_core::role::{Ownership, Permission};
use kehu_core::{Fen, Lang, Reason, ValidationErrors};
use kehu_store::model::Customer;
use kehu_store::{Owner, ScopeFilter};
use minijinja::{context, Value};
use std::collections::{BTreeMap, HashMap};

const LOGIN_CSRF_COOKIE: &str = "kehu_login_csrf";

/// Only local paths are followed after login (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\"))
        .unwrap_or("/")
        .to_string()
}

fn login_html(
    state: &AppState,
    lang: Lang,
    csrf: &str,
    next: &str,
    username: &str,
    error: Option<String>,
) -> Result<String, ApiError> {
    state.ui.render(
        "login.html",
        context! { lang => lang.code(), login_csrf => csrf, next, username, error },
    )
}

pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let csrf = random_token();
    let html = login_html(
        &state,
        ui_lang(&headers),
        &csrf,
        &safe_next(q.get("next").map(String::as_str)),
        "",
        None,
    )?;
    let mut r = Html(html).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{LOGIN_CSRF_COOKIE}={csrf}; Path=/login; HttpOnly; SameSite=Strict"
        ))
        .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(r)
}

pub async fn login_submit(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    form: FormData,
) -> Result<Response, ApiError> {
    let lang = ui_lang(&headers);
    let cookie = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let sent = form.get("csrf_token").unwrap_or("");
    let next = safe_next(form.get("next"));
    let username = form.get("username").unwrap_or("").to_string();
    if cookie.is_empty() || !constant_time_eq(&cookie, sent) {
        let (_, detail) = ApiError::Csrf.texts(lang);
        return Ok(Html(login_html(
            &state,
            lang,
            &cookie,
            &next,
            &username,
            Some(detail),
        )?)
        .into_response());
    }
    match auth::login(
        &state,
        &username,
        form.get("password").unwrap_or(""),
        &client,
    )
    .await
    {
        Ok((token, _csrf, _user)) => {
            let mut r = Redirect::to(&next).into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&session_cookie(&token, state.settings.secure_cookies))
                    .map_err(|e| ApiError::Internal(e.to_string()))?,
            );
            Ok(r)
        }
        Err(e @ (ApiError::BadRequest { .. } | ApiError::TooManyRequests { .. })) => {
            let (_, detail) = e.texts(lang);
            let mut r = Html(login_html(
                &state,
                lang,
                &cookie,
                &next,
                &username,
                Some(detail),
            )?)
            .into_response();
            *r.status_mut() = e.status();
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let auth::Credential::Session { token, .. } = &page.user.credential {
        state.store.delete_session(token).await?;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear_session_cookie())
            .map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(r)
}

fn status_label(key: &str, lang: Lang) -> String {
    CustomerStatus::parse(key)
        .map(|s| {
            if lang == Lang::En {
                s.key().to_string()
            } else {
                s.label_zh().to_string()
            }
        })
        .unwrap_or_else(|_| key.to_string())
}

fn statuses(lang: Lang) -> Vec<(String, String)> {
    CustomerStatus::ALL
        .iter()
        .map(|s| {
            (
                s.key().to_string(),
                if lang == Lang::En {
                    s.key().to_string()
                } else {
                    s.label_zh().to_string()
                },
            )
        })
        .collect()
}

/// Amounts as people read them: "¥1,234.56", "123.45万".
pub(super) fn money(fen: i64) -> String {
    Fen::new(fen)
        .map(Fen::display_cn)
        .unwrap_or_else(|_| fen.to_string())
}

/// The list's columns: (key, zh, en, sortable, numeric).
const LIST_COLUMNS: &[(&str, &str, &str, bool, bool)] = &[
    ("code", "编号", "Code", true, false),
    ("name", "客户名称", "Name", true, false),
    ("industry", "行业", "Industry", true, false),
    ("sales_region", "区域", "Region", true, false),
    ("status", "状态", "Status", true, false),
    (
        "purchase_12m_fen",
        "近12月采购",
        "12-month purchases",
        true,
        true,
    ),
    ("last_order_on", "最近下单", "Last order", true, false),
    ("owner_id", "负责人", "Owner", false, false),
];

fn href(params: &[(String, String)], replace: &[(&str, Option<&str>)]) -> String {
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| !replace.iter().any(|(r, _)| r == k))
        .cloned()
        .collect();
    for (k, v) in replace {
        if let Some(v) = v {
            out.push((k.to_string(), v.to_string()));
        }
    }
    let q: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(out.iter())
        .finish();
    format!("/customers?{q}")
}

pub async fn list(
    State(state): State<AppState>,
    page: Page,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let scope = page
        .user
        .scope_filter(Permission::CustomerRead)
        .map_err(|_| ApiError::Forbidden);
    let scope = match scope {
        Ok(s) => s,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    // blank filter fields are "no filter", as a form sends them
    let params: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    // Largest purchases first, for readers who see them.
    let sees_purchases = page
        .user
        .actor
        .fields
        .sees_customer_field("purchase_12m_fen");
    let default_sort = if sees_purchases {
        "-purchase_12m_fen"
    } else {
        "code"
    };
    let sort = params
        .iter()
        .find(|(k, _)| k == "sort")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| default_sort.into());
    let defs = state.store.custom_field_defs().await?;
    let schemes = state.classifier.published().await?;
    let scheme_keys: Vec<String> = schemes.schemes.iter().map(|s| s.key.clone()).collect();
    let mut query_pairs = params.clone();
    if !query_pairs.iter().any(|(k, _)| k == "sort") {
        query_pairs.push(("sort".into(), sort.clone()));
    }
    let rights = &page.user.actor.fields;
    let unseen = crate::privacy::unseen_customer_field(&page.user, &defs, &query_pairs);
    let query = match unseen {
        Some(field) => Err(ValidationErrors::single(
            field,
            Reason::Other {
                zh: "您的角色不能查看它的明文，不能按它筛选或排序".into(),
                en: "your role may not see it in clear, so it cannot filter or sort".into(),
            },
        )),
        None => parse_customer_query(
            &query_pairs,
            CUSTOMER_FIELDS,
            &defs,
            &scheme_keys,
            default_sort,
        ),
    };
    let (page_data, error) = match query {
        Ok(q) => {
            let search = crate::privacy::customer_search_columns(rights);
            let mut found = state
                .store
                .list_customers_searching(&q, &scope, true, search)
                .await?;
            let shield = crate::privacy::CustomerShield::new(rights, &defs);
            found.items.iter_mut().for_each(|c| shield.apply(c));
            (Some(found), None)
        }
        Err(e) => (
            None,
            Some(
                e.0.iter()
                    .map(|f| format!("{}: {}", f.field, f.reason.message(lang)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    };
    let owners: HashMap<i64, String> = state.store.user_names().await?;
    let (items, next_cursor, total) = match page_data {
        Some(p) => (p.items, p.next_cursor, p.total.unwrap_or(0)),
        None => (vec![], None, 0),
    };
    // The badge column: the first scheme filtered on, else 价值分层.
    let badge_scheme = params
        .iter()
        .find_map(|(k, _)| {
            k.strip_prefix("class.")
                .map(|s| s.split('.').next().unwrap_or(s).to_string())
        })
        .filter(|k| scheme_keys.contains(k))
        .unwrap_or_else(|| "value_tier".into());
    let ids: Vec<i64> = items.iter().map(|c| c.id).collect();
    let badges = state.store.classes_of(&badge_scheme, &ids).await?;
    let customers: Vec<Value> = items
        .iter()
        .map(|c| {
            context! {
                class => badges.get(&c.id).cloned(),
                id => c.id, code => c.code.clone(), name => c.name.clone(), industry => c.industry.clone(), sales_region => c.sales_region.clone(),
                province => c.province.clone(), status => c.status.clone(), status_label => status_label(&c.status, lang),
                purchase_12m => sees_purchases.then(|| money(c.purchase_12m_fen)), last_order_on => c.last_order_on.map(|d| d.to_string()),
                owner => c.owner_id.and_then(|id| owners.get(&id).cloned()),
                follow_up => kehu_core::customer::missing_labels(&c.missing_fields, lang),
            }
        })
        .collect();
    let (sort_desc, sort_key) = match sort.strip_prefix('-') {
        Some(k) => (true, k.to_string()),
        None => (false, sort.clone()),
    };
    let without_cursor: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let columns: Vec<Value> = LIST_COLUMNS
        .iter()
        .map(|(key, zh, en, sortable, num)| {
            let next_sort = if *key == sort_key && !sort_desc { format!("-{key}") } else if *key == sort_key { key.to_string() } else if *num { format!("-{key}") } else { key.to_string() };
            let arrow = if *key == sort_key { if sort_desc { " ↓" } else { " ↑" } } else { "" };
            context! { label => if lang == Lang::En { *en } else { *zh }, sort => *sortable, num => *num, arrow, href => href(&without_cursor, &[("sort", Some(&next_sort))]) }
        })
        .collect();
    let filters: BTreeMap<String, String> = params.iter().cloned().collect();
    let filterable_custom: Vec<Value> =
        defs.iter().filter(|d| matches!(d.kind, FieldKind::Enum | FieldKind::Text)).map(|d| context! { key => d.key.clone(), label => d.label.clone(), options => d.options.clone() }).collect();
    let class_filters: Vec<Value> = schemes
        .schemes
        .iter()
        .map(|s| context! { key => s.key.clone(), name => s.display_name(lang).to_string(), classes => s.class_keys() })
        .collect();
    let badge_name = schemes
        .index(&badge_scheme)
        .map(|i| schemes.schemes[i].display_name(lang).to_string());
    let ctx = context! {
        class_filters, badge_name, badge_scheme,
        customers, columns, total, error, q => filters.get("q").cloned(), filters, sort,
        industries => state.store.industries().await?, regions => SALES_REGIONS, statuses => statuses(lang), filterable_custom,
        next_href => next_cursor.map(|c| href(&without_cursor, &[("cursor", Some(&c))])),
        first_href => params.iter().any(|(k, _)| k == "cursor").then(|| href(&without_cursor, &[])),
        can_create => page.user.actor.grants.has(Permission::CustomerCreate),
    };
    let template = if page.htmx {
        "customers/results.html"
    } else {
        "customers/list.html"
    };
    Ok(page.render(&state, template, "customers", ctx))
}

/// Custom fields of one group, shaped for the form macro.
fn custom_groups(defs: &[CustomFieldDef], lang: Lang) -> Value {
    let mut groups: BTreeMap<&str, Vec<Value>> =
        FieldGroup::ALL.iter().map(|g| (g.key(), vec![])).collect();
    for d in defs {
        let (input_type, hint) = match d.kind {
            FieldKind::Number => ("text", ""),
            FieldKind::Money => ("text", if lang == Lang::En { "yuan" } else { "元" }),
            FieldKind::Date => ("date", ""),
            FieldKind::Bool => ("checkbox", ""),
            _ => ("text", ""),
        };
        let options =
            matches!(d.kind, FieldKind::Enum | FieldKind::MultiEnum).then(|| d.options.clone());
        if let Some(list) = groups.get_mut(d.group.key()) {
            list.push(context! { key => d.key.clone(), label => d.label.clone(), required => d.required, input_type, hint, options, multiple => d.kind == FieldKind::MultiEnum });
        }
    }
    Value::from_serialize(&groups)
}

/// Form values of a stored customer (money back in 万元).
fn customer_values(c: &Customer) -> BTreeMap<String, Value> {
    let wan = |f: Option<i64>| {
        f.map(|f| {
            if f % 1_000_000 == 0 {
                (f / 1_000_000).to_string()
            } else {
                format!("{}.{:06}", f / 1_000_000, f % 1_000_000)
                    .trim_end_matches('0')
                    .to_string()
            }
        })
    };
    let mut m: BTreeMap<String, Value> = BTreeMap::new();
    let mut put = |k: &str, v: Option<String>| {
        m.insert(k.to_string(), v.map(Value::from).unwrap_or(Value::from(())));
    };
    put("name", Some(c.name.clone()));
    put("code", Some(c.code.clone()));
    put("uscc", c.uscc.clone());
    put("industry", c.industry.clone());
    put("employees", c.employees.map(|e| e.to_string()));
    put("annual_revenue_fen", wan(c.annual_revenue_fen));
    put("province", c.province.clone());
    put("city", c.city.clone());
    put("sales_region", c.sales_region.clone());
    put("address", c.address.clone());
    put("founded_on", c.founded_on.map(|d| d.to_string()));
    put("aliases", Some(c.aliases.join(", ")));
    put("status", Some(c.status.clone()));
    put(
        "cooperation_start_on",
        c.cooperation_start_on.map(|d| d.to_string()),
    );
    put(
        "declared_annual_purchase_fen",
        wan(c.declared_annual_purchase_fen),
    );
    put("product_types", Some(c.product_types.join(", ")));
    put("source_channel", c.source_channel.clone());
    put("owner_id", c.owner_id.map(|o| o.to_string()));
    put("notes", c.notes.clone());
    for (k, v) in &c.custom_fields {
        let shown = match v {
            serde_json::Value::Array(items) => Value::from_serialize(items),
            serde_json::Value::String(s) => Value::from(s.clone()),
            serde_json::Value::Bool(b) => Value::from(*b),
            other => Value::from(other.to_string()),
        };
        m.insert(format!("custom_fields.{k}"), shown);
    }
    m
}

async fn owner_options(
    state: &AppState,
    page: &Page,
    p: Permission,
) -> Result<Vec<(String, String)>, ApiError> {
    let scope = page.user.scope_filter(p)?;
    let dir = state.store.user_directory().await?;
    Ok(dir
        .into_iter()
        .filter(|(id, _, team)| match &scope {
            ScopeFilter::All => true,
            ScopeFilter::Team { team: t, user_id } => id == user_id || (t.is_some() && team == t),
            ScopeFilter::Own { user_id } => id == user_id,
        })
        .map(|(id, name, team)| {
            (
                id.to_string(),
                team.map(|t| format!("{name}（{t}）")).unwrap_or(name),
            )
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn render_form(
    state: &AppState,
    page: &Page,
    title: String,
    action: String,
    cancel: String,
    values: BTreeMap<String, Value>,
    errors: BTreeMap<String, String>,
    version: Option<i64>,
    with_contact: bool,
    perm: Permission,
) -> Result<Response, ApiError> {
    let defs = state.store.custom_field_defs().await?;
    let provinces: Vec<&str> = PROVINCES.iter().map(|(p, _)| *p).collect();
    let ctx = context! {
        title, action, cancel, v => values, errors, version, with_contact,
        industries => state.store.industries().await?, provinces, regions => SALES_REGIONS, statuses => statuses(page.lang), channels => SOURCE_CHANNELS,
        owners => owner_options(state, page, perm).await?, custom_groups => custom_groups(&defs, page.lang),
        lock => crate::privacy::locked_customer_fields(&page.user, &defs),
    };
    Ok(page.render(state, "customers/form.html", "customers", ctx))
}

pub async fn new_form(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if page.user.require(Permission::CustomerCreate).is_err() {
        return Ok(page.error_page(&state, ApiError::Forbidden));
    }
    let mut values = BTreeMap::new();
    values.insert("status".to_string(), Value::from("active"));
    render_form(
        &state,
        &page,
        page.t("新建客户", "New customer"),
        "/customers/new".into(),
        "/customers".into(),
        values,
        BTreeMap::new(),
        None,
        true,
        Permission::CustomerCreate,
    )
    .await
}

/// The form's warning about likely duplicates, as a form-level error that
/// "save anyway" (`confirm_duplicates`) passes. Customers outside the
/// user's reach are counted, not named.
fn duplicates_warning(page: &Page, twins: &[Customer]) -> ValidationErrors {
    let reach = |c: &Customer| {
        page.user.actor.may(
            Permission::CustomerRead,
            Ownership {
                owner_id: c.owner_id,
                team: c.team.as_deref(),
            },
        )
    };
    let named: Vec<String> = twins
        .iter()
        .filter(|c| reach(c))
        .map(|c| format!("{} {}", c.code, c.name))
        .collect();
    let hidden = twins.len() - named.len();
    let mut zh = format!("可能已有这家客户：{}", named.join("、"));
    let mut en = format!("this company may exist already: {}", named.join(", "));
    if hidden > 0 {
        zh.push_str(&format!("（另有 {hidden} 家属于其他团队）"));
        en.push_str(&format!(" ({hidden} more of other teams)"));
    }
    zh.push_str("。确认不是同一家后勾选“仍然保存”。");
    en.push_str(". If it is another company, tick \"save anyway\".");
    ValidationErrors::single("_duplicates", Reason::Other { zh, en })
}

pub async fn create(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if page.user.require(Permission::CustomerCreate).is_err() {
        return Ok(page.error_page(&state, ApiError::Forbidden));
    }
    let defs = state.store.custom_field_defs().await?;
    let mut errs = ValidationErrors::default();
    let mut input = customer_input(&form, &defs, &mut errs);
    crate::privacy::keep_uneditable_fields(&page.user, None, &mut input)?;
    let contact = contact_input(&form, "contact.").map(|c| -> Result<_, ValidationErrors> {
        let d = c.validate().map_err(|e| prefixed(e, "contact."))?;
        crate::privacy::check_contact_write(&page.user.actor.fields, None, &d, "contact.")?;
        Ok(d)
    });
    let owner = resolve_owner(
        &state,
        &page.user,
        input.owner_id,
        Permission::CustomerCreate,
    )
    .await;
    let data = validate_customer(&state, input).await;
    let result = async {
        let mut all = errs;
        let data = match data {
            Ok(d) => Some(d),
            Err(ApiError::Validation(v)) => {
                all.0.extend(v.0);
                None
            }
            Err(e) => return Err(e),
        };
        let contact = match contact {
            Some(Ok(c)) => Some(c),
            Some(Err(v)) => {
                all.0.extend(v.0);
                None
            }
            None => None,
        };
        let owner = match owner {
            Ok(o) => Some(o),
            Err(ApiError::Validation(v)) => {
                all.0.extend(v.0);
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(d) = &data {
            let rights = &page.user.actor.fields;
            if let Err(v) = crate::privacy::check_customer_write(rights, &defs, None, d) {
                all.0.extend(v.0);
            }
        }
        all.clone().into_result()?;
        match (data, owner) {
            (Some(mut d), Some(o)) => {
                d.fill_region_from_landline(contact.as_ref().and_then(|c| c.landline.as_deref()));
                if form.get("confirm_duplicates").is_none() {
                    let mobile = contact.as_ref().and_then(|c| c.mobile.as_deref());
                    let twins = state.store.likely_duplicates(&d.name, mobile, 5).await?;
                    if !twins.is_empty() {
                        return Err(ApiError::Validation(duplicates_warning(&page, &twins)));
                    }
                }
                Ok(state
                    .store
                    .insert_customer(&d, &o, Some(page.user.user.id), contact.as_ref())
                    .await?)
            }
            _ => Err(ApiError::Validation(all)),
        }
    }
    .await;
    match result {
        Ok(c) => {
            crate::audit::customer::created(&state, &page.user, &c);
            state.after_data_change(c.id, page.user.user.id).await;
            Ok(Redirect::to(&format!("/customers/{}", c.id)).into_response())
        }
        Err(ApiError::Validation(v)) => {
            let mut r = render_form(
                &state,
                &page,
                page.t("新建客户", "New customer"),
                "/customers/new".into(),
                "/customers".into(),
                form.kept(),
                error_map(&v, page.lang),
                None,
                true,
                Permission::CustomerCreate,
            )
            .await?;
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn edit_form(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let mut c = match customer_for(&state, &page.user, id, Permission::CustomerUpdate).await {
        Ok(c) => c,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    // Personal custom fields: in clear for editors (an audited reveal), masked otherwise.
    let defs = state.store.custom_field_defs().await?;
    crate::privacy::reveal_for_editing(&state, &page.user, &defs, c.id, &mut c.custom_fields);
    crate::privacy::protect_customer(&page.user.actor.fields, &mut c);
    render_form(
        &state,
        &page,
        format!("{} · {}", page.t("编辑", "Edit"), c.name),
        format!("/customers/{id}/edit"),
        format!("/customers/{id}"),
        customer_values(&c),
        BTreeMap::new(),
        Some(c.version),
        false,
        Permission::CustomerUpdate,
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let current = match customer_for(&state, &page.user, id, Permission::CustomerUpdate).await {
        Ok(c) => c,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    let version = form
        .text("version")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(current.version);
    let defs = state.store.custom_field_defs().await?;
    let mut errs = ValidationErrors::default();
    let mut input = customer_input(&form, &defs, &mut errs);
    let stored = CustomerInput::from(crate::api::dto::CustomerWrite::from(&current));
    crate::privacy::keep_uneditable_fields(&page.user, Some(&stored), &mut input)?;
    crate::privacy::keep_uneditable_custom(
        &page.user,
        &defs,
        &current.custom_fields,
        &mut input.custom_fields,
    );
    let result = async {
        let owner = if input.owner_id == current.owner_id || input.owner_id.is_none() {
            Owner {
                owner_id: current.owner_id,
                team: current.team.clone(),
            }
        } else {
            resolve_owner(
                &state,
                &page.user,
                input.owner_id,
                Permission::CustomerUpdate,
            )
            .await?
        };
        let data = validate_customer(&state, input).await;
        let data = match data {
            Ok(d) if errs.is_empty() => d,
            Ok(_) => return Err(ApiError::Validation(errs)),
            Err(ApiError::Validation(mut v)) => {
                v.0.splice(0..0, errs.0);
                return Err(ApiError::Validation(v));
            }
            Err(e) => return Err(e),
        };
        let rights = &page.user.actor.fields;
        crate::privacy::check_customer_write(rights, &defs, Some(&current.data()), &data)?;
        // A renamed customer may now be the name of another one.
        if data.name != current.name && form.get("confirm_duplicates").is_none() {
            let twins: Vec<Customer> = state
                .store
                .likely_duplicates(&data.name, None, 6)
                .await?
                .into_iter()
                .filter(|c| c.id != id)
                .collect();
            if !twins.is_empty() {
                return Err(ApiError::Validation(duplicates_warning(&page, &twins)));
            }
        }
        Ok(state
            .store
            .update_customer(id, version, &data, &owner, Some(page.user.user.id))
            .await?)
    }
    .await;
    let title = format!("{} · {}", page.t("编辑", "Edit"), current.name);
    let values = || form.kept();
    match result {
        Ok(c) => {
            crate::audit::customer::changed(&state, &page.user, &current, &c, &defs);
            state.after_data_change(c.id, page.user.user.id).await;
            Ok(Redirect::to(&format!("/customers/{}", c.id)).into_response())
        }
        Err(ApiError::Validation(v)) => {
            let mut r = render_form(
                &state,
                &page,
                title,
                format!("/customers/{id}/edit"),
                format!("/customers/{id}"),
                values(),
                error_map(&v, page.lang),
                Some(version),
                false,
                Permission::CustomerUpdate,
            )
            .await?;
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e @ ApiError::VersionConflict { .. }) => {
            let mut errors = BTreeMap::new();
            errors.insert("_form".to_string(), e.texts(page.lang).1);
            let mut r = render_form(
                &state,
                &page,
                title,
                format!("/customers/{id}/edit"),
                format!("/customers/{id}"),
                values(),
                errors,
                Some(version),
                false,
                Permission::CustomerUpdate,
            )
            .await?;
            *r.status_mut() = axum::http::StatusCode::CONFLICT;
            Ok(r)
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let c = match customer_for(&state, &page.user, id, Permission::CustomerDelete).await {
        Ok(c) => c,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    let version = form
        .text("version")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(c.version);
    match state.store.delete_customer(id, version).await {
        Ok(()) => {
            crate::audit::customer::deleted(&state, &page.user, &c);
            Ok(page.redirect("/customers"))
        }
        Err(e) => Ok(page.error_page(&state, e.into())),
    }
}

fn label_of<T: Copy>(
    all: &[T],
    key: Option<&str>,
    lang: Lang,
    k: fn(T) -> &'static str,
    zh: fn(T) -> &'static str,
) -> Option<String> {
    let key = key?;
    all.iter().find(|v| k(**v) == key).map(|v| {
        if lang == Lang::En {
            k(*v).to_string()
        } else {
            zh(*v).to_string()
        }
    })
}

/// The classes card (each published scheme's stored class and since when)
/// and the explanations card (why, as the rules see it today, and any override).
async fn class_cards(
    state: &AppState,
    user: &crate::auth::CurrentUser,
    id: i64,
    lang: Lang,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let today = state.store.today();
    let stored = state.store.classes_as_of(id, today).await?;
    let mut explained = state.classifier.explain(id, today, lang).await?;
    for e in &mut explained {
        let rights = &user.actor.fields;
        e.explanation.withhold(|f| rights.sees_field(f), lang);
    }
    let badges = explained
        .iter()
        .filter_map(|e| {
            let x = &e.explanation;
            let h = stored.iter().find(|h| h.scheme_key == x.scheme)?;
            Some(context! { scheme => x.scheme_name.clone(), key => x.scheme.clone(), class => h.to_class.clone(), since => h.effective_on.to_string() })
        })
        .collect();
    let explanations = explained
        .into_iter()
        .map(|e| {
            let x = &e.explanation;
            context! {
                key => x.scheme.clone(), name => x.scheme_name.clone(), version => e.version,
                class => e.class.clone(), rule_class => x.class.clone(), rule => x.rule.clone(), score => x.score.clone(),
                nearest => x.nearest.iter().take(2).map(|n| n.text.clone()).collect::<Vec<_>>(),
                indicators => x.indicators.iter().map(|i| context! { name => i.name.clone(), shown => i.shown.clone(), note => i.note.clone() }).collect::<Vec<_>>(),
                dimensions => x.dimensions.iter().map(|d| context! { name => d.name.clone(), weight => d.weight, level => d.level.clone(), score => d.score }).collect::<Vec<_>>(),
                classes => e.classes,
                override => e.active_override.map(|o| context! { reason => o.reason, expires_on => o.expires_on.map(|d| d.to_string()) }),
            }
        })
        .collect();
    Ok((badges, explanations))
}

/// Sets an override from the customer page.
pub async fn set_override(
    State(state): State<AppState>,
    page: Page,
    Path((id, scheme)): Path<(i64, String)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let body = crate::api::dto::OverrideWrite {
        class: form.text("class"),
        reason: form.text("reason"),
        expires_on: form.text("expires_on"),
    };
    match crate::api::classes::apply_override(&state, &page.user, id, &scheme, body).await {
        Ok(_) => Ok(page.redirect(&format!("/customers/{id}#explanations"))),
        Err(ApiError::Validation(v)) => {
            detail_with_errors(&state, &page, id, &format!("override:{scheme}"), &v, &form).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// Lifts an override from the customer page.
pub async fn lift_override(
    State(state): State<AppState>,
    page: Page,
    Path((id, scheme)): Path<(i64, String)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match crate::api::classes::remove_override(&state, &page.user, id, &scheme).await {
        Ok(_) => Ok(page.redirect(&format!("/customers/{id}#explanations"))),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// The customer page again with the sub-form `open` re-shown: what was
/// typed and each field's error (callers have checked the reader's right).
pub(super) async fn detail_with_errors(
    state: &AppState,
    page: &Page,
    id: i64,
    open: &str,
    errors: &kehu_core::ValidationErrors,
    form: &FormData,
) -> Result<Response, ApiError> {
    let c = state.store.customer(id).await?;
    let errors = error_map(errors, page.lang);
    render_detail(state, page, c, open, errors, form.kept(), false).await
}

/// The customer page; `open`/`errors`/`form` re-show a failed sub-form.
async fn render_detail(
    state: &AppState,
    page: &Page,
    mut c: Customer,
    open: &str,
    errors: BTreeMap<String, String>,
    form: BTreeMap<String, Value>,
    reveal: bool,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let defs = state.store.custom_field_defs().await?;
    let shield = crate::privacy::CustomerShield::new(&page.user.actor.fields, &defs);
    shield.apply(&mut c);
    let withheld = shield.withheld();
    let by_customer = |sort: &str, limit: &str| {
        vec![
            ("customer_id".to_string(), c.id.to_string()),
            ("sort".to_string(), sort.to_string()),
            ("limit".to_string(), limit.to_string()),
        ]
    };
    let all = ScopeFilter::All; // access was checked on the customer itself
    let contacts = state
        .store
        .list_contacts(
            &parse_list_query(
                &by_customer("-is_primary", "100"),
                CONTACT_FIELDS,
                &[],
                "id",
            )?,
            &all,
        )
        .await?
        .items;
    let personal_custom = defs.iter().any(|d| {
        d.personal().is_some()
            && c.custom_fields.contains_key(&d.key)
            && page
                .user
                .actor
                .fields
                .access(&kehu_core::privacy::custom_key(&d.key))
                .may_reveal()
    });
    let revealed_custom = crate::privacy::protect_custom(
        &defs,
        &page.user.actor.fields,
        &mut c.custom_fields,
        reveal,
    );
    if !revealed_custom.is_empty() {
        state.audit(
            Some(&page.user),
            "customer.reveal",
            format!("customer:{}", c.id),
            serde_json::json!({ "fields": revealed_custom }),
        );
    }
    let consents = state.store.consents_of(c.id).await?;
    let reveal_contacts = reveal && crate::privacy::may_reveal_any::<ContactOut>(&page.user);
    let mut contacts: Vec<ContactOut> = contacts.into_iter().map(ContactOut::from).collect();
    crate::privacy::protect_all(state, &page.user, &mut contacts, reveal_contacts);
    let can_reveal = !reveal
        && (personal_custom
            || !contacts.is_empty() && crate::privacy::may_reveal_any::<ContactOut>(&page.user));
    let orders_page = state
        .store
        .list_orders(
            &parse_list_query(&by_customer("-ordered_on", "20"), ORDER_FIELDS, &[], "id")?,
            &all,
        )
        .await?;
    let interactions = state
        .store
        .list_interactions(
            &parse_list_query(
                &by_customer("-occurred_on", "100"),
                INTERACTION_FIELDS,
                &[],
                "id",
            )?,
            &all,
        )
        .await?
        .items;
    let orders_more = orders_page.next_cursor.is_some();
    let mut orders: Vec<OrderOut> = orders_page.items.into_iter().map(OrderOut::from).collect();
    let mut interactions: Vec<InteractionOut> =
        interactions.into_iter().map(InteractionOut::from).collect();
    crate::privacy::protect_all(state, &page.user, &mut orders, false);
    crate::privacy::protect_all(state, &page.user, &mut interactions, false);
    let names: HashMap<i64, String> = state.store.user_names().await?;
    let t = |zh: &str, en: &str| {
        if lang == Lang::En {
            en.to_string()
        } else {
            zh.to_string()
        }
    };
    // A field kept from the reader (named in its record's `withheld`) says
    // so, rather than looking empty.
    let not_shown = t("（无权查看）", "(not shown to your role)");
    let shown = |v: Option<String>, withheld: &[String], json: &str| match withheld
        .iter()
        .any(|w| w == json)
    {
        true => Some(not_shown.clone()),
        false => v,
    };
    let fact = |json: &str, v: Option<String>| shown(v, withheld, json);
    let mut facts: Vec<(String, Option<String>)> = vec![
        (t("客户编号", "Code"), Some(c.code.clone())),
        (t("统一社会信用代码", "USCC"), fact("uscc", c.uscc.clone())),
        (
            t("所属行业", "Industry"),
            fact("industry", c.industry.clone()),
        ),
        (
            t("企业规模(员工数)", "Employees"),
            fact("employees", c.employees.map(|e| e.to_string())),
        ),
        (
            t("年营业额", "Annual revenue"),
            fact("annual_revenue_fen", c.annual_revenue_fen.map(money)),
        ),
        (
            t("地区", "Location"),
            fact(
                "province",
                Some(
                    [c.province.clone(), c.city.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            ),
        ),
        (
            t("销售区域", "Sales region"),
            fact("sales_region", c.sales_region.clone()),
        ),
        (t("地址", "Address"), fact("address", c.address.clone())),
        (
            t("成立日期", "Founded"),
            fact("founded_on", c.founded_on.map(|d| d.to_string())),
        ),
        (
            t("合作起始时间", "Cooperating since"),
            fact(
                "cooperation_start_on",
                c.cooperation_start_on.map(|d| d.to_string()),
            ),
        ),
        (
            t("年采购额(申报)", "Declared annual purchase"),
            fact(
                "declared_annual_purchase_fen",
                c.declared_annual_purchase_fen.map(money),
            ),
        ),
        (
            t("核心产品类型", "Core products"),
            fact("product_types", Some(c.product_types.join("、"))),
        ),
        (
            t("客户来源", "Source"),
            fact("source_channel", c.source_channel.clone()),
        ),
        (
            t("负责人", "Owner"),
            c.owner_id
                .and_then(|o| names.get(&o).cloned())
                .map(|n| c.team.as_ref().map(|t| format!("{n}（{t}）")).unwrap_or(n)),
        ),
        (
            t("曾用名/别名", "Aliases"),
            fact("aliases", Some(c.aliases.join("、"))),
        ),
        (t("备注", "Notes"), fact("notes", c.notes.clone())),
    ];
    for d in &defs {
        let v = c.custom_fields.get(&d.key).map(|v| match (d.kind, v) {
            (FieldKind::Money, serde_json::Value::Number(n)) => {
                n.as_i64().map(money).unwrap_or_default()
            }
            (_, serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join("、"),
            (_, serde_json::Value::Bool(b)) => {
                t(if *b { "是" } else { "否" }, if *b { "yes" } else { "no" })
            }
            (_, serde_json::Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        });
        facts.push((
            d.label.clone(),
            fact(&format!("custom_fields.{}", d.key), v),
        ));
    }
    let (classes, explanations) = class_cards(state, &page.user, c.id, lang).await?;
    let ownership = Ownership {
        owner_id: c.owner_id,
        team: c.team.as_deref(),
    };
    let may = |p| page.user.actor.may(p, ownership);
    let catalogue = state.store.tag_catalogue().await?;
    let tags = crate::api::tags::tags_in(state, &catalogue, c.id).await?;
    let tag_choices: Vec<(String, String)> = catalogue
        .nodes()
        .filter(|n| {
            n.mode == kehu_core::tags::TagMode::Manual && !n.retired && n.merged_into.is_none()
        })
        .filter(|n| catalogue.children_of(Some(n.id)).next().is_none())
        .filter(|n| !tags.iter().any(|t| t.tag_id == n.id))
        .map(|n| (n.id.to_string(), catalogue.path_text(n.id)))
        .collect();
    // Likely duplicates of this customer (those the reader may see) and its merges.
    let pairs = state.store.pairs_of(c.id).await?;
    let others: Vec<i64> = pairs
        .iter()
        .map(|p| if p.a_id == c.id { p.b_id } else { p.a_id })
        .collect();
    let others = state.store.customers_in(&others).await?;
    let duplicates: Vec<Value> = pairs
        .iter()
        .filter_map(|p| {
            let other = if p.a_id == c.id { p.b_id } else { p.a_id };
            let o = others.iter().find(|o| o.id == other)?;
            let readable = page.user.actor.may(
                Permission::CustomerRead,
                Ownership {
                    owner_id: o.owner_id,
                    team: o.team.as_deref(),
                },
            );
            readable.then(|| context! { pair => p.id, id => o.id, code => o.code.clone(), name => o.name.clone(), score => (p.score * 100.0).round() as i64 })
        })
        .collect();
    let merges: Vec<Value> = state
        .store
        .merges_of(c.id)
        .await?
        .iter()
        .map(|m| context! { id => m.id, absorbed => m.absorbed_id != c.id, code => m.absorbed.code.clone(), name => m.absorbed.name.clone(), undone => m.undone_at.is_some(), at => m.merged_at.format("%Y-%m-%d").to_string() })
        .collect();
    // Contacts that are likely one person, and the contact merges.
    let (contact_pairs, _) =
        crate::contact_duplicates::queue(state, &page.user, lang, "open", Some(c.id), 20, 0)
            .await?;
    let contact_pairs: Vec<Value> = contact_pairs
        .iter()
        .map(|p| context! { id => p.id, a => p.a.name.clone(), b => p.b.name.clone(), score => p.score, reasons => p.reasons_text.join("、") })
        .collect();
    let contact_merges: Vec<Value> = state
        .store
        .contact_merges_of(c.id)
        .await?
        .iter()
        .map(|m| {
            let out = crate::contact_duplicates::merge_out(&page.user, m);
            context! { id => m.id, absorbed => out.absorbed_name, undone => m.undone_at.is_some(), at => m.merged_at.format("%Y-%m-%d").to_string() }
        })
        .collect();
    let anomalies: Vec<Value> = crate::anomalies::items_of(
        state,
        &state.store.anomalies_of(c.id).await?,
        state.store.today(),
        lang,
        &page.user.actor.fields,
    )
    .await?
    .iter()
    .map(|a| context! { label => a.label.clone(), description => a.description.clone(), due_on => a.due_on.to_string(), overdue => a.overdue, assignee => a.assignee.clone() })
    .collect();
    let follow_ups = crate::api::tasks::follow_up_page(
        state,
        &page.user,
        &kehu_store::tasks::FollowUpFilter {
            customer_id: Some(c.id),
            ..Default::default()
        },
        20,
        0,
    )
    .await?;
    let (open_tasks, _) = state
        .store
        .list_tasks(
            &kehu_store::tasks::TaskFilter {
                customer_id: Some(c.id),
                ..Default::default()
            },
            &crate::tasks::task_scope(&page.user),
            20,
            0,
        )
        .await?;
    let open_tasks = crate::api::tasks::tasks_out(state, &open_tasks, lang).await?;
    // Suggestions are a help, not the page: while today's buying is not in
    // memory yet it is loaded in the background (the card says so), and
    // trouble computing them is logged, not shown.
    let ready = state.segments.windows_ready(state.store.today());
    if !ready {
        let segments = state.segments.clone();
        tokio::spawn(async move {
            if let Err(e) = segments.warm().await {
                tracing::warn!(error = %e, "loading today's buying for cross-selling");
            }
        });
    }
    let cross_sell = if !ready {
        None
    } else {
        match crate::crosssell::for_customer(
            state,
            &page.user,
            c.id,
            &crate::crosssell::CrossSellParams::default(),
            lang,
        )
        .await
        {
            Ok(x) => {
                let group_href = (!x.group.expression.is_empty())
                    .then(|| super::segment_href(&x.group.expression));
                let suggestions = x
                    .suggestions
                    .iter()
                    .map(|s| {
                        let evidence = if lang == Lang::En {
                            &s.evidence_en
                        } else {
                            &s.evidence_zh
                        };
                        context! { product => s.product.clone(), evidence => evidence.clone() }
                    })
                    .collect::<Vec<_>>();
                let similar = x
                .similar
                .iter()
                .map(|s| context! {
                    id => s.customer_id, code => s.code.clone(), name => s.name.clone(), score => s.score,
                    shared => s.shared_products.join("、"), amount => s.purchase_12m_fen.map(money).unwrap_or_else(|| not_shown.clone()), orders => s.orders,
                })
                .collect::<Vec<_>>();
                Some(context! {
                    group => Value::from_serialize(&x.group), group_href, suggestions, similar,
                    definitions => x.definitions.clone(),
                })
            }
            Err(e) => {
                tracing::warn!(customer = c.id, error = %e, "cross-selling suggestions");
                None
            }
        }
    };
    let ctx = context! {
        classes, explanations, duplicates, merges, anomalies, cross_sell, cross_sell_pending => !ready,
        log => Value::from_serialize(&follow_ups.items), log_total => follow_ups.total,
        open_tasks => Value::from_serialize(&open_tasks),
        tags => tags.iter().map(|t| context! { tag_id => t.tag_id, path => t.path.clone(), source => t.source.clone(), manual => t.mode == "manual", href => super::segment_href(&format!("#{}", t.tag_id)) }).collect::<Vec<_>>(),
        tag_choices,
        can_tag => may(Permission::TagAssign),
        can_override => may(Permission::ClassificationOverride),
        c => context! {
            id => c.id, name => c.name.clone(), status => c.status.clone(), status_label => status_label(&c.status, lang), version => c.version,
            purchase_12m => fact("purchase_12m_fen", Some(money(c.purchase_12m_fen))), order_count => c.order_count, last_order_on => c.last_order_on.map(|d| d.to_string()), complaints_365d => c.complaints_365d,
            p_alive => c.predicted.p_alive.map(|p| format!("{:.0} %", p as f64 / 100.0)),
            expected_orders => c.predicted.expected_orders_90d.map(|n| format!("{:.1}", n as f64 / 10_000.0)),
            clv => fact("clv_fen", c.predicted.clv_fen.map(money)),
            follow_up => kehu_core::customer::missing_labels(&c.missing_fields, lang),
        },
        facts,
        contact_pairs, contact_merges,
        contacts => contacts.iter().map(|p| context! { id => p.id, name => p.name.clone(), title => shown(p.title.clone(), &p.withheld_fields, "title"), decision_role => p.decision_role.clone(), landline => p.landline.clone(), mobile => p.mobile.clone(), email => p.email.clone(), id_number => p.id_number.clone(), is_primary => p.is_primary }).collect::<Vec<_>>(),
        can_reveal => can_reveal,
        consents => consents.iter().map(|k| context! {
            id => k.id, purpose => k.purpose.clone(), version => k.purpose_version, channel => k.channel.clone(),
            given => k.given_at.format("%Y-%m-%d %H:%M").to_string(),
            withdrawn => k.withdrawn_at.map(|w| w.format("%Y-%m-%d %H:%M").to_string()),
        }).collect::<Vec<_>>(),
        can_withdraw_consent => may(Permission::CustomerUpdate) || may(Permission::PersonalData),
        consent_channels => kehu_core::intake::CONSENT_CHANNELS.iter().map(|(k, zh, en)| (k.to_string(), if lang == kehu_core::Lang::En { en.to_string() } else { zh.to_string() })).collect::<Vec<_>>(),
        revealed => reveal,
        contact_columns => crate::privacy::visible_fields::<ContactOut>(&page.user),
        orders => orders.iter().map(|o| context! {
            ordered_on => o.ordered_on.to_string(), order_no => o.order_no.clone(),
            product_line => shown(o.product_line.clone(), &o.withheld_fields, "product_line"),
            amount => shown(o.amount_fen.and_then(|a| Fen::new(a).ok()).map(|f| f.yuan_string()), &o.withheld_fields, "amount_fen"),
        }).collect::<Vec<_>>(),
        orders_more,
        interactions => interactions.iter().map(|i| context! {
            occurred_on => i.occurred_on.to_string(), kind => i.kind.clone(), summary => shown(i.summary.clone(), &i.withheld_fields, "summary"), satisfaction => i.satisfaction,
            kind_label => label_of(InteractionKind::ALL, Some(&i.kind), lang, InteractionKind::key, InteractionKind::label_zh),
            severity_label => label_of(Severity::ALL, i.severity.as_deref(), lang, Severity::key, Severity::label_zh),
            status_label => label_of(TicketStatus::ALL, i.status.as_deref(), lang, TicketStatus::key, TicketStatus::label_zh),
            user => i.user_id.and_then(|u| names.get(&u).cloned()),
        }).collect::<Vec<_>>(),
        can_edit => may(Permission::CustomerUpdate), can_delete => may(Permission::CustomerDelete),
        can_write_records => may(Permission::RecordWrite),
        can_write_interactions => may(Permission::InteractionWrite) || may(Permission::ServiceRecordWrite),
        decision_roles => DECISION_ROLES,
        interaction_kinds => InteractionKind::ALL.iter().filter(|k| may(Permission::InteractionWrite) || k.is_ticket()).map(|k| (k.key(), if lang == Lang::En { k.key() } else { k.label_zh() })).collect::<Vec<_>>(),
        severities => Severity::ALL.iter().map(|k| (k.key(), if lang == Lang::En { k.key() } else { k.label_zh() })).collect::<Vec<_>>(),
        ticket_statuses => TicketStatus::ALL.iter().map(|k| (k.key(), if lang == Lang::En { k.key() } else { k.label_zh() })).collect::<Vec<_>>(),
        today => state.store.today().to_string(),
        open, errors, form,
    };
    let failed = !errors_empty(&ctx);
    let mut r = page.render(state, "customers/detail.html", "customers", ctx);
    if failed {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

fn errors_empty(ctx: &Value) -> bool {
    ctx.get_attr("errors")
        .ok()
        .and_then(|e| e.len())
        .unwrap_or(0)
        == 0
}

/// The customer page; `?reveal=1` shows its personal fields (contacts',
/// personal custom fields) in clear where the role allows (audited).
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    mut q: crate::api::QueryPairs,
) -> Result<Response, ApiError> {
    // Not from another site's link: the page shows masked values instead.
    let reveal = q.take_flag("reveal") && !page.user.cross_site;
    match customer_for(&state, &page.user, id, Permission::CustomerRead).await {
        Ok(c) => {
            render_detail(
                &state,
                &page,
                c,
                "",
                BTreeMap::new(),
                BTreeMap::new(),
                reveal,
            )
            .await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// The records added from the customer page.
#[derive(Clone, Copy)]
enum SubRecord {
    Contact,
    Order,
    Interaction,
}

impl SubRecord {
    /// Which form to re-open after an error.
    fn open(self) -> &'static str {
        match self {
            SubRecord::Contact => "contact",
            SubRecord::Order => "order",
            SubRecord::Interaction => "interaction",
        }
    }
}

/// Shared by the three sub-forms: check, validate, write (with what the
/// record sets off for its customer), or re-render with errors.
async fn sub_form<D, Fut>(
    state: &AppState,
    page: &Page,
    id: i64,
    form: &FormData,
    record: SubRecord,
    validate: impl FnOnce() -> Result<(D, Permission), ValidationErrors>,
    write: impl FnOnce(D) -> Fut,
) -> Result<Response, ApiError>
where
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    page.check_csrf(form)?;
    let c = match customer_for(state, &page.user, id, Permission::CustomerRead).await {
        Ok(c) => c,
        Err(e) => return Ok(page.error_page(state, e)),
    };
    match validate() {
        Ok((data, perm)) => {
            if !page.user.actor.may(
                perm,
                Ownership {
                    owner_id: c.owner_id,
                    team: c.team.as_deref(),
                },
            ) {
                return Ok(page.error_page(state, ApiError::Forbidden));
            }
            write(data).await?;
            Ok(Redirect::to(&format!("/customers/{id}")).into_response())
        }
        Err(v) => {
            render_detail(
                state,
                page,
                c,
                record.open(),
                error_map(&v, page.lang),
                form.kept(),
                false,
            )
            .await
        }
    }
}

pub async fn add_contact(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let input = contact_input(&form, "").unwrap_or_default();
    let store = state.store.clone();
    // The customer's contacts, for the warning before a second record of one person.
    let existing = if form.get("confirm_duplicates").is_none() {
        state.store.contacts_of_customer(id).await?
    } else {
        Vec::new()
    };
    let written = sub_form(
        &state,
        &page,
        id,
        &form,
        SubRecord::Contact,
        || {
            let d = input.validate()?;
            crate::privacy::check_contact_write(&page.user.actor.fields, None, &d, "")?;
            if let Some(warning) = contact_duplicate_warning(&page, &d, &existing) {
                return Err(warning);
            }
            Ok((d, Permission::RecordWrite))
        },
        |d| async move {
            store.insert_contact(id, &d).await?;
            Ok(())
        },
    )
    .await?;
    if written.status().is_redirection() {
        crate::contact_duplicates::refresh(&state, &[id]).await;
    }
    Ok(written)
}

/// The contact form's warning when the new contact is likely a stored one
/// (the same mobile, e-mail or ID number, or the same name): a form-level
/// error that "save anyway" (`confirm_duplicates`) passes. The stored
/// contact is named as the reader may see it.
fn contact_duplicate_warning(
    page: &Page,
    new: &kehu_core::contact::ContactData,
    existing: &[kehu_store::model::Contact],
) -> Option<ValidationErrors> {
    let (pair, like) = crate::contact_duplicates::likely_same(new, existing)?;
    let name = page
        .user
        .actor
        .fields
        .show(
            "contact.name",
            kehu_core::privacy::MaskKind::Name,
            &like.name,
            false,
        )
        .unwrap_or_else(|| page.t("一位已有联系人", "a stored contact"));
    let (zh, en) = crate::contact_duplicates::evidence_text(&pair);
    Some(ValidationErrors::single(
        "_duplicates",
        Reason::Other {
            zh: format!("可能与已有联系人 {name} 是同一人（{zh}）。确认不是同一人后勾选“仍然保存”。"),
            en: format!(
                "likely the same person as {name} ({en}). If it is someone else, tick \"save anyway\"."
            ),
        },
    ))
}

pub async fn add_order(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let today = state.store.today();
    let (writer, user_id) = (&state, page.user.user.id);
    let validate = || {
        let mut e = ValidationErrors::default();
        let amount = form
            .text("amount_fen")
            .and_then(|v| e.check("amount_fen", Fen::parse_yuan(&v)).map(Fen::get));
        let input = OrderInput {
            order_no: form.text("order_no"),
            ordered_on: form.text("ordered_on"),
            amount_fen: amount,
            product_line: form.text("product_line"),
            notes: None,
        };
        let checked = input.validate(today);
        match checked {
            Ok(d) if e.is_empty() => {
                let fields = kehu_core::privacy::ORDER_RECORD_FIELDS;
                crate::privacy::check_record_write(&page.user.actor.fields, fields, None, &d, "")?;
                Ok((d, Permission::RecordWrite))
            }
            Ok(_) => Err(e),
            Err(mut v) => {
                // the 元 parse error is the precise one for amount
                if e.for_field("amount_fen").is_some() {
                    v.0.retain(|f| f.field != "amount_fen");
                }
                e.0.extend(v.0);
                Err(e)
            }
        }
    };
    sub_form(
        &state,
        &page,
        id,
        &form,
        SubRecord::Order,
        validate,
        |d| async move {
            let open = || writer.store.insert_order_open(id, &d);
            writer.write_reclassified(id, user_id, open).await?;
            Ok(())
        },
    )
    .await
}

pub async fn add_interaction(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let today = state.store.today();
    let writer = &state;
    let user_id = page.user.user.id;
    let can_service = page.user.actor.grants.has(Permission::ServiceRecordWrite);
    let validate = || {
        let mut e = ValidationErrors::default();
        let satisfaction = form.text("satisfaction").and_then(|v| {
            e.check(
                "satisfaction",
                v.parse::<i64>()
                    .map_err(|_| kehu_core::Reason::IntegerFormat),
            )
        });
        let input = InteractionInput {
            kind: form.text("kind"),
            occurred_on: form.text("occurred_on"),
            summary: form.text("summary"),
            severity: form.text("severity"),
            status: form.text("status"),
            satisfaction,
        };
        match input.validate(today) {
            Ok(d) if e.is_empty() => {
                let fields = kehu_core::privacy::INTERACTION_RECORD_FIELDS;
                crate::privacy::check_record_write(&page.user.actor.fields, fields, None, &d, "")?;
                let perm = if d.kind.is_ticket() && can_service {
                    Permission::ServiceRecordWrite
                } else {
                    Permission::InteractionWrite
                };
                Ok((d, perm))
            }
            Ok(_) => Err(e),
            Err(v) => {
                e.0.extend(v.0);
                Err(e)
            }
        }
    };
    sub_form(
        &state,
        &page,
        id,
        &form,
        SubRecord::Interaction,
        validate,
        |d| async move {
            let open = || writer.store.insert_interaction_open(id, &d, Some(user_id));
            writer.write_reclassified(id, user_id, open).await?;
            Ok(())
        },
    )
    .await
}

/// Puts a manual tag on the customer from its page; the limit or a retired
/// tag come back as an error beside the tag picker.
pub async fn add_tag(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let tag = form.get("tag_id").and_then(|t| t.parse::<i64>().ok());
    let result = match tag {
        Some(t) => crate::api::tags::assign_tag(&state, &page.user, id, t)
            .await
            .map(drop),
        None => Err(ApiError::field("tag_id", kehu_core::Reason::Required)),
    };
    tag_form_result(&state, &page, id, result).await
}

/// Takes a tag off the customer from its page.
pub async fn remove_tag(
    State(state): State<AppState>,
    page: Page,
    Path((id, tag_id)): Path<(i64, i64)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let result = crate::api::tags::unassign_tag(&state, &page.user, id, tag_id)
        .await
        .map(drop);
    tag_form_result(&state, &page, id, result).await
}

async fn tag_form_result(
    state: &AppState,
    page: &Page,
    id: i64,
    result: Result<(), ApiError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/customers/{id}#tags")).into_response()),
        Err(ApiError::Validation(v)) => {
            let c = state.store.customer(id).await?;
            render_detail(
                state,
                page,
                c,
                "tag",
                error_map(&v, page.lang),
                BTreeMap::new(),
                false,
            )
            .await
        }
        Err(e) => Ok(page.error_page(state, e)),
    }
}
