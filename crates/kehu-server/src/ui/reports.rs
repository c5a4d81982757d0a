//! The classification report page (`/reports/classification`): the form
//! (scheme, period, segment, definitions), the class table with bars, the
//! transition matrix as a heat map linking to the customers who moved,
//! SLA compliance and the data-quality trend; CSV/XLSX downloads go to the API.

use super::forms::FormData;
use super::Page;
use crate::crosssell::CrossSellParams;
use crate::error::ApiError;
use crate::reports::{class_table, percent, transition_table, ReportRequest, ReportScope};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use kehu_core::report::{ChurnBasis, CustomerPeriod, Definitions, RepurchaseBasis};
use kehu_core::role::Permission;
use kehu_core::strategy::{parse_period, Period};
use minijinja::{context, Value};

/// GET /reports/classification?scheme&period&segment&churn&repurchase
pub async fn classification(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = ReportScope::of(&page.user)?;
    let q = FormData::from_query(raw.as_deref());
    let (period_text, asked, refused) = asked_for(&state, &page, &q).await;
    let definitions = asked.definitions;
    let schemes = scheme_choices(&state).await?;
    let form = context! {
        period => period_text.clone(), scheme => asked.scheme.clone(), segment => asked.segment.clone(),
        churn => definitions.churn.key(), repurchase => definitions.repurchase.key(),
        churn_options => ChurnBasis::ALL.iter().map(|c| context! { key => c.key(), label => c.label_zh() }).collect::<Vec<_>>(),
        repurchase_options => RepurchaseBasis::ALL.iter().map(|c| context! { key => c.key(), label => c.label_zh() }).collect::<Vec<_>>(),
    };
    let outcome = match refused {
        Some(e) => Err(e),
        None => crate::reports::classification(&state, &scope, &asked, page.lang).await,
    };
    let (report, error) = match outcome {
        Ok(r) => (Some(r), None),
        // A bad period, scheme or segment is shown above the form, not as an error page.
        Err(ApiError::Validation(e)) => (None, Some(validation_text(&e, page.lang))),
        Err(e) => return Err(e),
    };
    let ctx = match &report {
        None => context! { form, schemes, error },
        Some(r) => {
            let (class_header, class_rows) = class_table(r, page.lang);
            let (matrix_header, matrix_rows) = transition_table(r, page.lang);
            let biggest = r
                .report
                .transitions
                .iter()
                .map(|t| t.customers)
                .max()
                .unwrap_or(0);
            // Heat: tenths of the largest cell, as CSS classes (no inline styles under the CSP).
            let heat = |n: i64| {
                if biggest == 0 {
                    0
                } else {
                    (n * 9 + biggest - 1) / biggest
                }
            };
            let classes = &r.report.classes;
            let matrix = matrix_rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let from = classes[i].class.clone().unwrap_or_else(|| "-".into());
                    context! {
                        from => row[0].clone(),
                        cells => row[1..].iter().enumerate().map(|(j, n)| {
                            let count: i64 = n.parse().unwrap_or(0);
                            let to = classes[j].class.clone().unwrap_or_else(|| "-".into());
                            let href = format!(
                                "/reports/classification/customers?{}&from={}&to={}",
                                raw.as_deref().unwrap_or_default(),
                                encode(&from),
                                encode(&to)
                            );
                            context! { n => count, heat => heat(count), diagonal => i == j, href }
                        }).collect::<Vec<_>>(),
                    }
                })
                .collect::<Vec<_>>();
            let widest = classes
                .iter()
                .map(|l| l.customers)
                .max()
                .unwrap_or(0)
                .max(1);
            let bars = classes
                .iter()
                .zip(&class_rows)
                .map(|(l, row)| context! { label => row[0].clone(), n => l.customers, width => l.customers * 300 / widest, share => percent(Some(l.share)) })
                .collect::<Vec<_>>();
            context! {
                form, schemes, report => Value::from_serialize(r),
                class_header, class_rows, matrix_header, matrix, bars,
                query => raw.clone().unwrap_or_default(),
            }
        }
    };
    Ok(page.render(&state, "reports/classification.html", "reports", ctx))
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// GET /reports/classification/customers?…&from&to: the customers behind a
/// cell of the transition matrix.
pub async fn moved_customers(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let none = page.t("未分类", "not classified").to_string();
    list_page(
        &state,
        &page,
        raw.as_deref(),
        "/reports/classification",
        false,
        |q, customers| {
            let class = |key: &str| {
                q.get(key)
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && *v != "-")
                    .map(str::to_string)
            };
            let (from, to) = (class("from"), class("to"));
            let ids = kehu_core::report::moved(customers, from.as_deref(), to.as_deref()).collect();
            let what = format!(
                "{} → {}",
                from.unwrap_or_else(|| none.clone()),
                to.unwrap_or_else(|| none.clone())
            );
            Ok((what, ids))
        },
    )
    .await
}

/// Customers listed on the page (the API pages through all of them).
const MOVED_SHOWN: usize = 500;

/// The period a page asks for (last quarter by default), the request it
/// makes (for last quarter while the period is bad) and the period's error.
async fn asked_for(
    state: &AppState,
    page: &Page,
    q: &FormData,
) -> (String, ReportRequest, Option<ApiError>) {
    let last_quarter = Period::quarter_of(state.store.today()).previous();
    let text = q
        .get("period")
        .filter(|p| !p.trim().is_empty())
        .map_or_else(|| last_quarter.label(), str::to_string);
    match parse_period(&text) {
        Ok(period) => {
            let req = request_of(q, period);
            let refused = match definition_error(q) {
                Some(e) => Some(e),
                None => unusable_segment(state, page, req.segment.as_deref()).await,
            };
            (text, req, refused)
        }
        Err(r) => (
            text,
            request_of(q, last_quarter),
            Some(ApiError::field("period", r)),
        ),
    }
}

/// A report's segment that compares a field the reader does not see in
/// clear (its figures would test guesses at the values): the error shown
/// above the form, on `segment`.
async fn unusable_segment(
    state: &AppState,
    page: &Page,
    segment: Option<&str>,
) -> Option<ApiError> {
    let rights = &page.user.actor.fields;
    match crate::api::segments::compile_for_reader(state, rights, segment?, "segment").await {
        Ok(_) => None,
        Err(ApiError::Refused { zh, en }) => Some(ApiError::field(
            "segment",
            kehu_core::Reason::Other { zh, en },
        )),
        Err(e) => Some(e),
    }
}

/// A churn or repurchase definition the page was asked for that does not
/// exist (named above the form, as the API refuses it).
fn definition_error(q: &FormData) -> Option<ApiError> {
    let asked = |key: &str| q.get(key).map(str::trim).filter(|v| !v.is_empty());
    if let Some(Err(r)) = asked("churn").map(ChurnBasis::parse) {
        return Some(ApiError::field("churn", r));
    }
    if let Some(Err(r)) = asked("repurchase").map(RepurchaseBasis::parse) {
        return Some(ApiError::field("repurchase", r));
    }
    None
}

/// The report parameters of a page's query (bad definitions fall back to
/// the defaults; `asked_for` names them).
fn request_of(q: &FormData, period: Period) -> ReportRequest {
    ReportRequest {
        scheme: q
            .get("scheme")
            .filter(|s| !s.is_empty())
            .unwrap_or("value_tier")
            .to_string(),
        period,
        segment: q
            .get("segment")
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string),
        definitions: Definitions {
            churn: q
                .get("churn")
                .and_then(|c| ChurnBasis::parse(c).ok())
                .unwrap_or(Definitions::default().churn),
            repurchase: q
                .get("repurchase")
                .and_then(|r| RepurchaseBasis::parse(r).ok())
                .unwrap_or(Definitions::default().repurchase),
        },
    }
}

/// GET /reports/strategy?scheme&period&segment: strategy effectiveness.
pub async fn strategy(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = ReportScope::of(&page.user)?;
    let q = FormData::from_query(raw.as_deref());
    let (period_text, asked, refused) = asked_for(&state, &page, &q).await;
    let schemes = scheme_choices(&state).await?;
    let outcome = match refused {
        Some(e) => Err(e),
        None => crate::reports::strategy(&state, &scope, &asked, page.lang).await,
    };
    let form = context! {
        period => period_text, scheme => q.get("scheme").unwrap_or("value_tier"), segment => q.get("segment"),
    };
    let ctx = match outcome {
        Ok(r) => {
            let (header, rows) = crate::reports::strategy_table(&r, page.lang);
            let query = raw.clone().unwrap_or_default();
            let links = r
                .lines
                .iter()
                .map(|l| {
                    let base = format!(
                        "/reports/strategy/customers?{query}&class={}",
                        encode(&l.class)
                    );
                    context! { members => format!("{base}&measure=members"), lapsed => format!("{base}&measure=lapsed"), met => l.met }
                })
                .collect::<Vec<_>>();
            context! { form, schemes, report => Value::from_serialize(&r), header, rows, links, query }
        }
        Err(ApiError::Validation(e)) => {
            context! { form, schemes, error => validation_text(&e, page.lang) }
        }
        Err(e) => return Err(e),
    };
    Ok(page.render(&state, "reports/strategy.html", "reports", ctx))
}

/// GET /reports/strategy/customers?…&class&measure=members|bought|lapsed
pub async fn strategy_customers(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    use kehu_core::report::effect::{behind, Measure};
    list_page(
        &state,
        &page,
        raw.as_deref(),
        "/reports/strategy",
        true,
        |q, customers| {
            let class = q.get("class").unwrap_or_default();
            let measure =
                Measure::parse(q.get("measure").unwrap_or_default()).ok_or_else(|| {
                    ApiError::field(
                        "measure",
                        kehu_core::Reason::UnknownOption {
                            allowed: vec!["members".into(), "bought".into(), "lapsed".into()],
                        },
                    )
                })?;
            let what = match measure {
                Measure::Members => page.t("期初客户", "customers at the start"),
                Measure::Bought => page.t("本期下单", "bought in the period"),
                Measure::Lapsed => page.t("未保留（期前有购买、本期无）", "not retained"),
            };
            let ids = behind(customers, class, measure).collect();
            Ok((format!("{class} · {what}"), ids))
        },
    )
    .await
}

async fn scheme_choices(state: &AppState) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .published_scheme_versions()
        .await?
        .iter()
        .filter_map(|v| v.parsed_spec().ok())
        .map(|s| context! { key => s.key, name => s.name })
        .collect())
}

fn validation_text(e: &kehu_core::ValidationErrors, lang: kehu_core::Lang) -> String {
    e.0.iter()
        .map(|f| format!("{}: {}", f.field, f.reason.message(lang)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The page listing the customers behind one of a report's numbers: the
/// report's parameters from the query, its population's customers, and
/// `pick` choosing some of them (with what they are).
async fn list_page(
    state: &AppState,
    page: &Page,
    query: Option<&str>,
    report: &str,
    year_before: bool,
    pick: impl FnOnce(&FormData, &[CustomerPeriod]) -> Result<(String, Vec<i64>), ApiError>,
) -> Result<Response, ApiError> {
    let scope = ReportScope::of(&page.user)?;
    let q = FormData::from_query(query);
    let period = parse_period(q.get("period").unwrap_or_default())
        .map_err(|r| ApiError::field("period", r))?;
    let req = request_of(&q, period);
    if let Some(e) = unusable_segment(state, page, req.segment.as_deref()).await {
        return Err(e);
    }
    let (scheme, customers) =
        crate::reports::period_customers(state, &scope, &req, year_before).await?;
    let (what, ids) = pick(&q, &customers)?;
    let heading = ListHeading {
        heading: None,
        scheme,
        period: period.label(),
        what,
        back: format!("{report}?{}", query.unwrap_or_default()),
    };
    customer_list(state, page, &ids, heading).await
}

/// What a list of a report's customers is.
pub(super) struct ListHeading {
    /// The page's title; None: customers who moved.
    pub heading: Option<String>,
    pub scheme: String,
    pub period: String,
    pub what: String,
    pub back: String,
}

/// The first [`MOVED_SHOWN`] of `ids` with their code, name and region
/// (for readers who see regions).
pub(super) async fn customer_list(
    state: &AppState,
    page: &Page,
    ids: &[i64],
    h: ListHeading,
) -> Result<Response, ApiError> {
    let shown: Vec<i64> = ids.iter().take(MOVED_SHOWN).copied().collect();
    let list = state.store.customers_in(&shown).await?;
    let sees_region = page.user.actor.fields.sees_customer_field("sales_region");
    Ok(page.render(
        state,
        "reports/moved.html",
        "reports",
        context! {
            heading => h.heading, scheme => h.scheme, period => h.period, what => h.what,
            total => ids.len(), more => ids.len() > MOVED_SHOWN, back => h.back,
            customers => list.iter().map(|c| context! { id => c.id, code => c.code.clone(), name => c.name.clone(), region => c.sales_region.clone().filter(|_| sees_region) }).collect::<Vec<_>>(),
        },
    ))
}

/// The cross-selling parameters of a page's query; a bad share is an error above the form.
fn cross_sell_params(
    q: &FormData,
    today: chrono::NaiveDate,
) -> (String, Result<CrossSellParams, ApiError>) {
    let share_text = q
        .get("min_share")
        .filter(|v| !v.trim().is_empty())
        .map_or_else(
            || (kehu_core::crosssell::DEFAULT_MIN_SHARE / 100).to_string(),
            str::to_string,
        );
    let params = CrossSellParams::of(q.get("scheme"), Some(&share_text))
        .and_then(|p| p.in_period(today, q.get("period")));
    (share_text, params)
}

/// Groups listed on the page (the XLSX has all).
const GROUPS_SHOWN: usize = 100;

/// GET /reports/cross-sell?scheme&min_share&segment&period: per product, who buys
/// it and the opportunities, with the groups they come from.
pub async fn cross_sell(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = page.user.scope_filter(Permission::ReportRead)?;
    let q = FormData::from_query(raw.as_deref());
    let schemes = scheme_choices(&state).await?;
    let (share_text, params) = cross_sell_params(&q, state.store.today());
    let segment = q.get("segment").filter(|s| !s.trim().is_empty());
    let form = context! {
        scheme => q.get("scheme").unwrap_or("value_tier"), min_share => share_text, segment,
        period => q.get("period").unwrap_or_default(),
    };
    let outcome = match (params, unusable_segment(&state, &page, segment).await) {
        (Err(e), _) | (_, Some(e)) => Err(e),
        (Ok(p), None) => crate::crosssell::report(&state, &scope, &p, segment, page.lang).await,
    };
    let ctx = match outcome {
        Ok((r, _)) => {
            let query = raw.clone().unwrap_or_default();
            let (header, rows) = crate::crosssell::product_table(&r, page.lang);
            let products = r
                .products
                .iter()
                .zip(rows)
                .map(|(p, row)| {
                    let href = format!(
                        "/reports/cross-sell/customers?{query}&product={}",
                        encode(&p.product)
                    );
                    context! { name => p.product.clone(), customers => p.customers, row, href }
                })
                .collect::<Vec<_>>();
            let (group_header, group_rows) = crate::crosssell::group_table(&r, page.lang);
            let expressions = r
                .products
                .iter()
                .flat_map(|p| p.groups.iter().map(|g| g.expression.clone()));
            let more_groups = group_rows.len() > GROUPS_SHOWN;
            let groups = group_rows
                .into_iter()
                .zip(expressions)
                .take(GROUPS_SHOWN)
                .map(|(row, expression)| context! { row, href => super::segment_href(&expression) })
                .collect::<Vec<_>>();
            context! {
                form, schemes, report => Value::from_serialize(&r), header, products,
                group_header, groups, more_groups, query,
            }
        }
        Err(ApiError::Validation(e)) => {
            context! { form, schemes, error => validation_text(&e, page.lang) }
        }
        Err(e) => return Err(e),
    };
    Ok(page.render(&state, "reports/cross_sell.html", "reports", ctx))
}

/// GET /reports/cross-sell/customers?…&product: one product's opportunity customers.
pub async fn cross_sell_customers(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let scope = page.user.scope_filter(Permission::ReportRead)?;
    let q = FormData::from_query(raw.as_deref());
    let params = cross_sell_params(&q, state.store.today()).1?;
    let product = q.get("product").unwrap_or_default().trim().to_string();
    let segment = q.get("segment").filter(|s| !s.trim().is_empty());
    if let Some(e) = unusable_segment(&state, &page, segment).await {
        return Err(e);
    }
    let ids = crate::crosssell::opportunity_customers(
        &state, &scope, &params, segment, &product, page.lang,
    )
    .await?;
    let heading = ListHeading {
        heading: Some(page.t("交叉销售机会客户", "Cross-selling opportunities")),
        scheme: crate::reports::scheme_classes(&state, &params.scheme)
            .await?
            .0,
        period: format!("{} {}", page.t("截至", "as of"), state.store.today()),
        what: format!(
            "{product} · {}",
            page.t(
                "从未购买的同类客户",
                "never bought it, in groups that buy it"
            )
        ),
        back: format!("/reports/cross-sell?{}", raw.as_deref().unwrap_or_default()),
    };
    customer_list(&state, &page, &ids, heading).await
}
