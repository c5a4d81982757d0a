//! Marketing pages: the campaigns (list and, for campaign managers, the
//! form), one campaign (its numbers and the form recording whom it touched
//! by segment), and the marketing report by channel and campaign with the
//! customers behind each number.

use super::forms::{error_map, FormData};
use super::Page;
use crate::campaigns::TouchRequest;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use kehu_core::campaign::{CampaignInput, Channel};
use kehu_core::role::Permission;
use minijinja::{context, Value};
use std::collections::BTreeMap;

fn channels(page: &Page) -> Vec<(String, String)> {
    super::tasks::choices(Channel::ALL, Channel::key, Channel::label_zh, page.lang)
}

/// GET /campaigns
pub async fn list(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    render_list(&state, &page, BTreeMap::new(), &FormData(Vec::new())).await
}

async fn render_list(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    form: &FormData,
) -> Result<Response, ApiError> {
    if !crate::campaigns::may_list(&page.user) {
        return Ok(page.error_page(state, ApiError::Forbidden));
    }
    let campaigns = state.store.campaigns().await?;
    let rows = campaigns
        .iter()
        .map(|c| {
            let label = crate::campaigns::channel_label(c.data.channel, page.lang);
            context! { id => c.id, name => c.data.name.clone(), channel => label, starts_on => c.data.starts_on.to_string(), ends_on => c.data.ends_on.to_string(), touched => c.touched }
        })
        .collect::<Vec<_>>();
    Ok(page.render(
        state,
        "campaigns/list.html",
        "reports",
        context! {
            rows, errors, form => form.kept(), channels => channels(page),
            can_manage => page.user.actor.grants.has(Permission::CampaignManage),
            today => state.store.today().to_string(),
        },
    ))
}

/// POST /campaigns
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = CampaignInput {
        name: form.text("name"),
        channel: form.text("channel"),
        starts_on: form.text("starts_on"),
        ends_on: form.text("ends_on"),
        cost: form.text("cost"),
        window_days: match form.text("window_days").filter(|w| !w.trim().is_empty()) {
            None => None,
            Some(w) => match w.trim().parse() {
                Ok(n) => Some(n),
                Err(_) => {
                    let e = kehu_core::ValidationErrors::single(
                        "window_days",
                        kehu_core::Reason::IntegerFormat,
                    );
                    return render_list(&state, &page, error_map(&e, page.lang), &form).await;
                }
            },
        },
        description: form.text("description"),
    };
    match crate::campaigns::create(&state, &page.user, &input).await {
        Ok(c) => Ok(page.redirect(&format!("/campaigns/{}", c.id))),
        Err(ApiError::Validation(e)) => {
            render_list(&state, &page, error_map(&e, page.lang), &form).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /campaigns/{id}
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    render_detail(
        &state,
        &page,
        id,
        BTreeMap::new(),
        &FormData(Vec::new()),
        None,
    )
    .await
}

async fn render_detail(
    state: &AppState,
    page: &Page,
    id: i64,
    errors: BTreeMap<String, String>,
    form: &FormData,
    added: Option<(usize, u64)>,
) -> Result<Response, ApiError> {
    if !crate::campaigns::may_list(&page.user) {
        return Ok(page.error_page(state, ApiError::Forbidden));
    }
    let c = match state.store.campaign(id).await {
        Ok(c) => c,
        Err(e) => return Ok(page.error_page(state, e.into())),
    };
    // The campaign's line of the report, when the reader may read reports.
    let line = match page.user.scope_filter(Permission::ReportRead) {
        Ok(scope) => Some(crate::campaigns::line(state, &scope, &c, page.lang).await?),
        Err(_) => None,
    };
    let (header, rows) = match &line {
        Some(l) => crate::campaigns::campaign_rows(std::slice::from_ref(l), page.lang),
        None => (Vec::new(), Vec::new()),
    };
    let cells: Vec<Value> = header
        .iter()
        .zip(rows.first().cloned().unwrap_or_default())
        .skip(5)
        .map(|(h, v)| context! { label => h.clone(), value => v })
        .collect();
    Ok(page.render(
        state,
        "campaigns/detail.html",
        "reports",
        context! {
            c => Value::from_serialize(&c), cells, errors, form => form.kept(),
            channel => crate::campaigns::channel_label(c.data.channel, page.lang),
            added => added.map(|(n, a)| context! { customers => n, added => a }),
            can_manage => page.user.actor.grants.has(Permission::CampaignManage),
            default_day => state.store.today().min(c.data.ends_on).max(c.data.starts_on).to_string(),
        },
    ))
}

/// POST /campaigns/{id}/touches: the customers of a segment, on a day.
pub async fn touch(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let req = TouchRequest {
        segment: form.text("segment"),
        segment_id: None,
        customer_ids: None,
        touched_on: form.text("touched_on"),
    };
    match crate::campaigns::touch(&state, &page.user, id, &req).await {
        Ok(r) => {
            render_detail(
                &state,
                &page,
                id,
                BTreeMap::new(),
                &FormData(Vec::new()),
                Some((r.customers, r.added)),
            )
            .await
        }
        Err(ApiError::Validation(e)) => {
            render_detail(&state, &page, id, error_map(&e, page.lang), &form, None).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /reports/marketing: channels and campaigns.
pub async fn report(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let scope = page.user.scope_filter(Permission::ReportRead)?;
    let (r, _) = crate::campaigns::report(&state, &scope, None, page.lang).await?;
    let (channel_header, channel_rows) = crate::campaigns::channel_table(&r.channels, page.lang);
    let (campaign_header, campaign_rows) = crate::campaigns::campaign_table(&r, page.lang);
    let widest = r
        .channels
        .iter()
        .map(|c| c.revenue_fen)
        .max()
        .unwrap_or(0)
        .max(1);
    let bars = r
        .channels
        .iter()
        .zip(&channel_rows)
        .map(|(c, row)| context! { label => row[0].clone(), value => row[5].clone(), width => c.revenue_fen * 300 / widest })
        .collect::<Vec<_>>();
    let campaigns = r
        .campaigns
        .iter()
        .zip(campaign_rows)
        .map(|(l, row)| context! { id => l.id, row })
        .collect::<Vec<_>>();
    Ok(page.render(
        &state,
        "reports/marketing.html",
        "reports",
        context! {
            report => Value::from_serialize(&r), channel_header, channel_rows, campaign_header, campaigns, bars,
        },
    ))
}

/// GET /reports/marketing/customers?campaign&measure=reached|converted
pub async fn customers(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = page.user.scope_filter(Permission::ReportRead)?;
    let q = FormData::from_query(raw.as_deref());
    let campaign: i64 = q
        .get("campaign")
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| ApiError::field("campaign", kehu_core::Reason::IntegerFormat))?;
    let measure = q.get("measure").unwrap_or_default().trim().to_string();
    let ids = crate::campaigns::customers_behind(&state, &scope, campaign, &measure).await?;
    let c = state.store.campaign(campaign).await?;
    let what = match measure.as_str() {
        "converted" => page.t("转化客户", "converted"),
        _ => page.t("触达客户", "reached"),
    };
    super::reports::customer_list(
        &state,
        &page,
        &ids,
        super::reports::ListHeading {
            heading: Some(page.t("营销活动客户", "Campaign customers")),
            scheme: c.data.name.clone(),
            period: format!("{} – {}", c.data.starts_on, c.data.ends_on),
            what,
            back: "/reports/marketing".into(),
        },
    )
    .await
}
