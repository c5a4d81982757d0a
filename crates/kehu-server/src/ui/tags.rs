//! The tag catalogue page (create, rename, retire, merge) and the segment
//! page: an expression box, a builder of rows that writes the same
//! expression, the exact count and a page of customers, saved segments.

use super::forms::{error_map, FormData};
use super::Page;
use crate::api::dto::{SegmentWriteIo, TagWrite};
use crate::api::segments::{create_segment, run, visible_segments};
use crate::api::tags::create_tag;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use kehu_core::expr::quote_text;
use kehu_core::money::Fen;
use kehu_core::role::Permission;
use kehu_core::segment_builder;
use kehu_core::tags::{TagMode, MAX_DEPTH};
use kehu_core::Lang;
use kehu_store::tags::TagChange;
use minijinja::{context, Value};
use std::collections::BTreeMap;

fn mode_label(m: TagMode, lang: Lang) -> &'static str {
    match (m, lang) {
        (TagMode::Manual, Lang::Zh) => "手动",
        (TagMode::Rule, Lang::Zh) => "规则",
        (TagMode::Hybrid, Lang::Zh) => "半自动",
        (m, Lang::En) => m.as_str(),
    }
}

async fn render_catalogue(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    form: BTreeMap<String, Value>,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let records = state.store.tags().await?;
    let c = kehu_store::tags::catalogue_of(&records);
    let counts = state.segments.tag_counts().await?;
    // Depth-first, so children sit under their parents.
    let mut order = Vec::new();
    let mut stack: Vec<i64> = c.children_of(None).map(|n| n.id).collect();
    stack.reverse();
    while let Some(id) = stack.pop() {
        order.push(id);
        let mut kids: Vec<i64> = c.children_of(Some(id)).map(|n| n.id).collect();
        kids.reverse();
        stack.extend(kids);
    }
    let by_id: BTreeMap<i64, &kehu_store::tags::TagRecord> =
        records.iter().map(|r| (r.id, r)).collect();
    let rows: Vec<Value> = order
        .iter()
        .filter_map(|id| by_id.get(id))
        .map(|t| {
            context! {
                id => t.id, name => t.name.clone(), path => c.path_text(t.id), depth => c.depth(t.id),
                reference => c.shortest_reference(t.id), href => super::segment_href(&c.shortest_reference(t.id)), mode => mode_label(t.mode, lang), manual => t.mode == TagMode::Manual,
                customers => counts.get(&t.id).copied().unwrap_or(0), retired => t.retired_at.is_some(), version => t.version,
                description => t.description.clone(),
                rule => t.rule.as_deref().map(|r| kehu_core::segment::display(r, &c)),
                ruled => t.mode != TagMode::Manual,
            }
        })
        .collect();
    let parents: Vec<(String, String)> = order
        .iter()
        .filter(|&&id| c.depth(id) < MAX_DEPTH && c.get(id).is_some_and(|n| !n.retired))
        .map(|&id| (id.to_string(), c.path_text(id)))
        .collect();
    let modes: Vec<(&str, &str)> = [TagMode::Manual, TagMode::Rule, TagMode::Hybrid]
        .iter()
        .map(|m| (m.as_str(), mode_label(*m, lang)))
        .collect();
    let settings = state.store.tag_settings().await?;
    let failed = !errors.is_empty();
    let mut r = page.render(
        state,
        "tags/catalogue.html",
        "tags",
        context! {
            rows, parents, modes, errors, form,
            max_manual => settings.max_manual_tags,
            pending => match page.user.scope_filter(Permission::CustomerRead) {
                Ok(scope) => state.store.proposals("pending", None, &scope, 0).await?.1,
                Err(_) => 0,
            },
            can_manage => page.user.actor.grants.has(Permission::TagManage),
            can_merge => page.user.actor.grants.has(Permission::TagMerge),
        },
    );
    if failed {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

pub async fn catalogue(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    render_catalogue(&state, &page, BTreeMap::new(), BTreeMap::new()).await
}

/// A catalogue change: back to the list, or the list with the errors.
async fn after_change(
    state: &AppState,
    page: &Page,
    form: &FormData,
    result: Result<(), ApiError>,
) -> Result<Response, ApiError> {
    match result {
        Ok(()) => Ok(Redirect::to("/tags").into_response()),
        Err(ApiError::Validation(v)) => {
            render_catalogue(state, page, error_map(&v, page.lang), form.kept()).await
        }
        Err(e) => Ok(page.error_page(state, e)),
    }
}

pub async fn create(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let write = TagWrite {
        parent_id: form.get("parent_id").and_then(|p| p.parse().ok()),
        parent: None,
        name: form.text("name").unwrap_or_default(),
        mode: form.text("mode"),
        description: form.text("description"),
        rule: form.text("rule"),
    };
    let result = create_tag(&state, &page.user, write).await.map(drop);
    after_change(&state, &page, &form, result).await
}

/// A catalogue change from the page by a tag manager: the CSRF token, the
/// right, the change, then the list again (with the errors, if any).
async fn managed<Fut>(
    state: &AppState,
    page: &Page,
    form: &FormData,
    change: impl FnOnce() -> Fut,
) -> Result<Response, ApiError>
where
    Fut: std::future::Future<Output = Result<(), ApiError>>,
{
    page.check_csrf(form)?;
    let result = match page.user.require(Permission::TagManage) {
        Ok(_) => change().await,
        Err(e) => Err(e),
    };
    after_change(state, page, form, result).await
}

/// The form's `version` (0 when missing: the store then reports the conflict).
fn version_of(form: &FormData) -> i64 {
    form.get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub async fn rename(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let (st, f, by) = (&state, &form, page.user.user.id);
    managed(st, &page, f, || async move {
        let change = TagChange {
            name: Some(f.text("name").unwrap_or_default()),
            ..TagChange::default()
        };
        st.store.update_tag(id, version_of(f), &change, by).await?;
        Ok(())
    })
    .await
}

pub async fn retire(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    set_retired(state, page, id, form, true).await
}

pub async fn restore(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    set_retired(state, page, id, form, false).await
}

async fn set_retired(
    state: AppState,
    page: Page,
    id: i64,
    form: FormData,
    retired: bool,
) -> Result<Response, ApiError> {
    let (st, user) = (&state, &page.user);
    managed(st, &page, &form, || async move {
        crate::api::tags::retire_tag(st, user, id, retired).await
    })
    .await
}

pub async fn merge(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let (st, f, user) = (&state, &form, &page.user);
    managed(st, &page, f, || async move {
        let into = f
            .get("into")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ApiError::field("into", kehu_core::Reason::Required))?;
        crate::api::tags::merge_tag(st, user, id, into).await
    })
    .await
}

/// Rows of the builder on the page.
const BUILDER_ROWS: usize = 6;

/// Groups a builder row can be put in.
const BUILDER_GROUPS: u8 = 3;

/// The expression the builder rows say (see [`segment_builder`]): each
/// filled row is `[group] [AND|OR] [NOT] term`, a term being a
/// catalogue choice or `field op value`.
fn built_expression(form: &FormData) -> String {
    use kehu_core::segment_builder::{Condition, Join, Row};
    let rows: Vec<Row> = (0..BUILDER_ROWS)
        .filter_map(|i| {
            let condition = match (
                form.text(&format!("b{i}.term")),
                form.text(&format!("b{i}.field")),
            ) {
                (Some(t), _) => Condition::Term(t),
                (None, Some(field)) => Condition::Compare {
                    field,
                    op: form.text(&format!("b{i}.op"))?,
                    value: form.text(&format!("b{i}.value"))?,
                },
                (None, None) => return None,
            };
            Some(Row {
                group: builder_group(form, i),
                join: Join::parse(form.get(&format!("b{i}.join"))),
                not: form.checked(&format!("b{i}.not")),
                condition,
            })
        })
        .collect();
    segment_builder::expression(&rows)
}

/// A builder row's group (1 when missing or out of range).
fn builder_group(form: &FormData, i: usize) -> u8 {
    form.get(&format!("b{i}.group"))
        .and_then(|g| g.parse().ok())
        .filter(|g| (1..=BUILDER_GROUPS).contains(g))
        .unwrap_or(1)
}

/// The segment page: run the expression (or the builder's), show the
/// count and a page, list saved segments.
pub async fn segments(
    State(state): State<AppState>,
    page: Page,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let query = FormData::from_query(raw.as_deref());
    render_segments(&state, &page, &query, BTreeMap::new()).await
}

/// The typed expression as the builder's rows (`b{i}.…` fields, as if
/// filled in), or why it does not fit.
fn expression_as_rows(form: &FormData, lang: kehu_core::Lang) -> Result<FormData, String> {
    use kehu_core::segment_builder::{rows_of, Condition, Join};
    let src = form.text("expression").unwrap_or_default();
    let is_field = |f: &str| {
        kehu_core::segment::SEGMENT_FIELDS
            .iter()
            .any(|x| x.key == f)
    };
    let rows =
        rows_of(&src, is_field, BUILDER_ROWS, BUILDER_GROUPS).map_err(|e| e.message(lang))?;
    let mut out = vec![("expression".to_string(), src)];
    for (i, r) in rows.iter().enumerate() {
        let mut put = |k: &str, v: String| out.push((format!("b{i}.{k}"), v));
        put("group", r.group.to_string());
        put("join", if r.join == Join::Or { "OR" } else { "AND" }.into());
        if r.not {
            put("not", "true".into());
        }
        match &r.condition {
            Condition::Term(t) => put("term", t.clone()),
            Condition::Compare { field, op, value } => {
                put("field", field.clone());
                put("op", op.clone());
                put("value", value.clone());
            }
        }
    }
    Ok(FormData(out))
}

async fn render_segments(
    state: &AppState,
    page: &Page,
    form: &FormData,
    mut errors: BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let lang = page.lang;
    let read_back;
    let form = if form.get("to_builder").is_some() {
        match expression_as_rows(form, lang) {
            Ok(f) => {
                read_back = f;
                &read_back
            }
            Err(why) => {
                errors.insert("expression".into(), why);
                form
            }
        }
    } else {
        form
    };
    let expression = if form.get("build").is_some() {
        built_expression(form)
    } else {
        form.text("expression").unwrap_or_default()
    };
    let after = form.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut result = Value::from(());
    let mut shown = expression.clone();
    if !expression.is_empty() {
        match run(state, &page.user, &expression, after, 50).await {
            Ok(r) => {
                shown = r.expression.clone();
                result = context! {
                    count => r.count, next_after => r.next_after, stable => r.stable_expression.clone(), href => super::segment_href(&r.stable_expression),
                    export => super::export_href(&r.stable_expression),
                    report => format!("/reports/classification?segment={}", super::url_encoded(&r.stable_expression)),
                    customers => r.customers.iter().map(|c| context! {
                        id => c.id, code => c.code.clone(), name => c.name.clone(), sales_region => c.sales_region.clone(),
                        industry => c.industry.clone(), purchase => c.purchase_12m_fen.and_then(|f| Fen::new(f).ok()).map(|f| f.display_cn()),
                    }).collect::<Vec<_>>(),
                };
            }
            Err(ApiError::Validation(v)) => {
                // Why the builder could not take it is said first.
                for (k, m) in error_map(&v, lang) {
                    errors.entry(k).or_insert(m);
                }
            }
            Err(e) => return Ok(page.error_page(state, e)),
        }
    }
    let saved = visible_segments(state, &page.user).await?;
    let c = state.store.tag_catalogue().await?;
    let set = state.classifier.published().await?;
    let mut terms: Vec<(String, String)> = c
        .nodes()
        .filter(|n| n.merged_into.is_none())
        .map(|n| {
            (
                c.shortest_reference(n.id),
                format!("{} {}", page.t("标签", "tag"), c.path_text(n.id)),
            )
        })
        .collect();
    terms.sort_by(|a, b| a.1.cmp(&b.1));
    for s in &set.schemes {
        for k in s.class_keys() {
            terms.push((
                format!("{} = {}", s.key, quote_text(&k)),
                format!("{} {} = {k}", page.t("分类", "class"), s.spec.name),
            ));
        }
    }
    for r in kehu_core::region::SALES_REGIONS {
        terms.push((
            format!("sales_region = {r}"),
            format!("{} = {r}", page.t("区域", "region")),
        ));
    }
    let fields: Vec<(&str, &str)> = kehu_core::segment::SEGMENT_FIELDS
        .iter()
        .map(|f| (f.key, f.aliases.first().copied().unwrap_or(f.key)))
        .collect();
    let ops = ["=", "!=", ">=", ">", "<=", "<"];
    // A term read back from a typed expression may not be one of the choices.
    for i in 0..BUILDER_ROWS {
        if let Some(t) = form.text(&format!("b{i}.term")) {
            if !terms.iter().any(|(k, _)| *k == t) {
                terms.push((t.clone(), t));
            }
        }
    }
    let rows: Vec<Value> = (0..BUILDER_ROWS)
        .map(|i| {
            context! {
                i, group => builder_group(form, i), term => form.text(&format!("b{i}.term")), not => form.checked(&format!("b{i}.not")),
                join => form.text(&format!("b{i}.join")).unwrap_or_else(|| "AND".into()),
                field => form.text(&format!("b{i}.field")), op => form.text(&format!("b{i}.op")), value => form.text(&format!("b{i}.value")),
            }
        })
        .collect();
    let failed = !errors.is_empty();
    let mut r = page.render(
        state,
        "tags/segments.html",
        "segments",
        context! {
            task_kinds => super::tasks::choices(kehu_core::task::TaskKind::ALL, kehu_core::task::TaskKind::key, kehu_core::task::TaskKind::label_zh, lang),
            today => state.store.today().to_string(),
            can_report => page.user.actor.grants.has(Permission::ReportRead),
            made => form.get("made").and_then(|m| m.split_once('-')).map(|(tasks, customers)| vec![tasks.to_string(), customers.to_string()]),
            task_form => context! { kind => form.text("kind"), title => form.text("title"), due_on => form.text("due_on") },
            expression => shown, result, errors, rows, terms, fields, ops, groups => (1..=BUILDER_GROUPS).collect::<Vec<_>>(),
            saved => saved.iter().map(|s| context! {
                id => s.id, name => s.name.clone(), expression => s.expression.clone(), href => super::segment_href(&s.stable_expression),
                count => s.count, shared => s.shared, version => s.version, mine => s.owner_id == Some(page.user.user.id),
            }).collect::<Vec<_>>(),
        },
    );
    if failed {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(r)
}

pub async fn save_segment(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let body = SegmentWriteIo {
        name: form.text("name"),
        expression: form.text("expression"),
        description: None,
        shared: Some(form.checked("shared")),
        version: None,
    };
    match create_segment(&state, &page.user, &body).await {
        Ok(s) => Ok(Redirect::to(&super::segment_href(&s.expression)).into_response()),
        Err(ApiError::Validation(v)) => {
            render_segments(&state, &page, &form, error_map(&v, page.lang)).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn delete_segment(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let s = state.store.segment(id).await?;
    if s.owner_id != Some(page.user.user.id) {
        return Ok(page.error_page(&state, ApiError::NotFound));
    }
    match state.store.delete_segment(id, version_of(&form)).await {
        Ok(()) => Ok(Redirect::to("/segments").into_response()),
        Err(e) => Ok(page.error_page(&state, e.into())),
    }
}

/// Sets or clears a rule or hybrid tag's rule; it is applied at once.
pub async fn set_rule(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let (st, f, user) = (&state, &form, &page.user);
    managed(st, &page, f, || async move {
        crate::api::tags::change_rule(st, user, id, version_of(f), f.text("rule")).await
    })
    .await
}

/// Applies a tag's rule to everyone now.
pub async fn apply_rule(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    let st = &state;
    managed(st, &page, &form, || async move {
        crate::api::tags::apply_one(st, id).await.map(drop)
    })
    .await
}

/// The verification queue of hybrid tags.
pub async fn queue(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let items = crate::api::tags::queue(&state, &page.user, "pending", None).await?;
    let items: Vec<Value> = items
        .iter()
        .map(|p| context! {
            id => p.id, tag_path => p.tag_path.clone(), customer_id => p.customer_id, customer_code => p.customer_code.clone(),
            customer_name => p.customer_name.clone(), evidence => p.evidence.clone(), proposed_at => p.proposed_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect();
    Ok(page.render(&state, "tags/queue.html", "tags", context! { items }))
}

/// Confirms or rejects a proposal from the queue.
pub async fn decide(
    State(state): State<AppState>,
    page: Page,
    Path((id, verdict)): Path<(i64, String)>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match crate::api::tags::decide(&state, &page.user, id, verdict == "confirm").await {
        Ok(_) => Ok(Redirect::to("/tags/queue").into_response()),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// The usage review page: reach, trend and behaviour per tag, removal candidates first.
pub async fn review(
    State(state): State<AppState>,
    page: Page,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let query = FormData::from_query(raw.as_deref());
    let days = query
        .get("days")
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=730).contains(d))
        .unwrap_or(90);
    let span = crate::api::tags::ReviewSpan::last_days(state.store.today(), days);
    let r = match crate::api::tags::tag_review(&state, &page.user, span).await {
        Ok(r) => r,
        Err(e) => return Ok(page.error_page(&state, e)),
    };
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{:.1}%", v * 100.0));
    let num = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{v:.2}"));
    let mut rows = r.tags.clone();
    rows.sort_by_key(|t| !t.removal_candidate);
    let rows: Vec<Value> = rows
        .iter()
        .map(|t| context! {
            tag_id => t.tag_id, path => t.path.clone(), customers => t.customers, share => pct(Some(t.share)),
            change => t.change_in_period, candidate => t.removal_candidate, retired => t.retired,
            spark => super::charts::sparkline(&t.trend),
            trend => r.trend_dates.iter().zip(&t.trend).map(|(d, n)| format!("{}: {n}", d.format("%m-%d"))).collect::<Vec<_>>().join(" · "),
            repurchase => format!("{} / {}", pct(t.repurchase_with), pct(t.repurchase_without)), repurchase_r => num(t.repurchase_correlation),
            satisfaction => format!("{} / {}", num(t.satisfaction_with), num(t.satisfaction_without)), satisfaction_r => num(t.satisfaction_correlation),
        })
        .collect();
    Ok(page.render(&state, "tags/review.html", "tags", context! {
        rows, days, since => r.since.to_string(), query => format!("days={days}"), customers => r.customers, definitions => r.definitions,
        candidates => r.tags.iter().filter(|t| t.removal_candidate).count(),
    }))
}

/// POST /segments/tasks: the same task for every customer of the segment.
pub async fn segment_tasks(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let expression = form.text("expression").unwrap_or_default();
    let input = kehu_core::task::TaskInput {
        kind: form.text("kind"),
        title: form.text("title"),
        due_on: form.text("due_on"),
        ..Default::default()
    };
    match crate::tasks::create_for_segment(&state, &page.user, &expression, &input).await {
        Ok((customers, made)) => Ok(Redirect::to(&format!(
            "{}&made={made}-{customers}",
            super::segment_href(&expression)
        ))
        .into_response()),
        Err(ApiError::Validation(v)) => {
            render_segments(&state, &page, &form, error_map(&v, page.lang)).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}
