//! The classification report page (`/reports/classification`): the form
//! (scheme, period, segment, definitions), the class table with bars, the
//! transition matrix as a heat map linking to the customers who moved,
//! SLA compliance and the data-quality trend; CSV/XLSX downloads go to the API.

use super::forms::FormData;
use super::Page;
use crate::error::ApiError;
use crate::reports::{class_table, percent, transition_table, ReportRequest, ReportScope};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use kehu_core::report::{ChurnBasis, Definitions, RepurchaseBasis};
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
    let last_quarter = Period::quarter_of(state.store.today()).previous();
    let period_text = q
        .get("period")
        .filter(|p| !p.trim().is_empty())
        .map_or_else(|| last_quarter.label(), str::to_string);
    let scheme = q
        .get("scheme")
        .filter(|s| !s.is_empty())
        .unwrap_or("value_tier")
        .to_string();
    let segment = q
        .get("segment")
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string);
    let churn = q.get("churn").and_then(|c| ChurnBasis::parse(c).ok());
    let repurchase = q
        .get("repurchase")
        .and_then(|r| RepurchaseBasis::parse(r).ok());
    let definitions = Definitions {
        churn: churn.unwrap_or(Definitions::default().churn),
        repurchase: repurchase.unwrap_or(Definitions::default().repurchase),
    };
    let schemes: Vec<Value> = state
        .store
        .published_scheme_versions()
        .await?
        .iter()
        .filter_map(|v| v.parsed_spec().ok())
        .map(|s| context! { key => s.key, name => s.name })
        .collect();
    let form = context! {
        period => period_text.clone(), scheme => scheme.clone(), segment => segment.clone(),
        churn => definitions.churn.key(), repurchase => definitions.repurchase.key(),
        churn_options => ChurnBasis::ALL.iter().map(|c| context! { key => c.key(), label => c.label_zh() }).collect::<Vec<_>>(),
        repurchase_options => RepurchaseBasis::ALL.iter().map(|c| context! { key => c.key(), label => c.label_zh() }).collect::<Vec<_>>(),
    };
    let outcome = match parse_period(&period_text) {
        Err(r) => Err(ApiError::field("period", r)),
        Ok(period) => {
            let req = ReportRequest {
                scheme,
                period,
                segment,
                definitions,
            };
            crate::reports::classification(&state, &scope, &req, page.lang).await
        }
    };
    let (report, error) = match outcome {
        Ok((r, _)) => (Some(r), None),
        // A bad period, scheme or segment is shown above the form, not as an error page.
        Err(ApiError::Validation(e)) => (
            None,
            Some(
                e.0.iter()
                    .map(|f| format!("{}: {}", f.field, f.reason.message(page.lang)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
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
    let scope = ReportScope::of(&page.user)?;
    let q = FormData::from_query(raw.as_deref());
    let period = parse_period(q.get("period").unwrap_or_default())
        .map_err(|r| ApiError::field("period", r))?;
    let class = |key: &str| {
        q.get(key)
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "-")
            .map(str::to_string)
    };
    let definitions = Definitions {
        churn: q
            .get("churn")
            .and_then(|c| ChurnBasis::parse(c).ok())
            .unwrap_or(Definitions::default().churn),
        repurchase: q
            .get("repurchase")
            .and_then(|r| RepurchaseBasis::parse(r).ok())
            .unwrap_or(Definitions::default().repurchase),
    };
    let req = ReportRequest {
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
        definitions,
    };
    let (report, customers) =
        crate::reports::classification(&state, &scope, &req, page.lang).await?;
    let (from, to) = (class("from"), class("to"));
    let ids: Vec<i64> =
        kehu_core::report::moved(&customers, from.as_deref(), to.as_deref()).collect();
    let shown: Vec<i64> = ids.iter().take(MOVED_SHOWN).copied().collect();
    let list = state.store.customers_in(&shown).await?;
    let none = page.t("未分类", "not classified").to_string();
    Ok(page.render(
        &state,
        "reports/moved.html",
        "reports",
        context! {
            scheme => report.scheme_name, period => report.report.period,
            from => from.unwrap_or_else(|| none.clone()), to => to.unwrap_or(none),
            total => ids.len(), more => ids.len() > MOVED_SHOWN,
            back => format!("/reports/classification?{}", raw.as_deref().unwrap_or_default()),
            customers => list.iter().map(|c| context! { id => c.id, code => c.code.clone(), name => c.name.clone(), region => c.sales_region.clone() }).collect::<Vec<_>>(),
        },
    ))
}

/// Customers listed on the page (the API pages through all of them).
const MOVED_SHOWN: usize = 500;
