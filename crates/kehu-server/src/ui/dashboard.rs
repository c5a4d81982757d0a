//! The dashboard page (`/dashboard`): the reader's panels (see
//! `crate::dashboard::layout`) as server-drawn charts with their numbers,
//! each linking to the page or report behind it.

use super::charts;
use super::Page;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use minijinja::{context, Value};

use kehu_core::money::yuan_text as yuan;

pub async fn page(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let d = crate::dashboard::dashboard(&state, &page.user, page.lang).await?;
    let counts = |x: &crate::dashboard::Distribution| -> Vec<(String, i64)> {
        x.classes
            .iter()
            .map(|c| (c.class.clone(), c.customers as i64))
            .collect()
    };
    let distribution = d.distribution.as_ref().map(|x| {
        let items = counts(x);
        context! {
            name => x.scheme_name.clone(), scheme => x.scheme.clone(),
            pie => charts::pie(&items),
            bars => charts::bars(&items.iter().map(|(l, n)| (l.clone(), *n, n.to_string())).collect::<Vec<_>>()),
            total => items.iter().map(|(_, n)| n).sum::<i64>(),
        }
    });
    let funnel = d
        .funnel
        .as_ref()
        .map(|x| context! { name => x.scheme_name.clone(), stages => charts::funnel(&counts(x)) });
    let revenue = d.revenue.as_ref().map(|months| {
        let items: Vec<(String, i64, String)> = months
            .iter()
            .map(|m| (m.month[5..].to_string(), m.revenue_fen, super::customers::money(m.revenue_fen)))
            .collect();
        context! {
            columns => charts::columns(&items),
            total => yuan(months.iter().map(|m| m.revenue_fen).sum()),
            orders => months.iter().map(|m| m.orders).sum::<i64>(),
            rows => months.iter().map(|m| context! { month => m.month.clone(), revenue => yuan(m.revenue_fen), orders => m.orders }).collect::<Vec<_>>(),
        }
    });
    let changes = d.class_changes.as_ref().map(|x| {
        let first = page.t("新分类", "first classified");
        let mut from: Vec<Option<String>> = vec![None];
        from.extend(x.classes.iter().cloned().map(Some));
        let biggest = x.changes.iter().map(|c| c.customers).max().unwrap_or(0).max(1);
        let rows = from
            .iter()
            .map(|f| {
                let cells = x
                    .classes
                    .iter()
                    .map(|t| {
                        let n = x
                            .changes
                            .iter()
                            .filter(|c| c.from.as_ref() == f.as_ref() && &c.to == t)
                            .map(|c| c.customers)
                            .sum::<i64>();
                        context! { n, heat => if n == 0 { 0 } else { (n * 9 + biggest - 1) / biggest } }
                    })
                    .collect::<Vec<_>>();
                context! { from => f.clone().unwrap_or_else(|| first.clone()), cells }
            })
            .collect::<Vec<_>>();
        context! { from => x.from.to_string(), to => x.to.to_string(), classes => x.classes.clone(), rows, total => x.changes.iter().map(|c| c.customers).sum::<i64>() }
    });
    let channels = d.channels.as_ref().map(|lines| {
        let items: Vec<(String, i64, String)> = lines
            .iter()
            .map(|c| {
                (
                    crate::campaigns::channel_label(c.channel, page.lang),
                    c.revenue_fen,
                    format!("{} · {}", yuan(c.revenue_fen), c.converted),
                )
            })
            .collect();
        charts::bars(&items)
    });
    Ok(page.render(
        &state,
        "dashboard.html",
        "dashboard",
        context! {
            csv_tables => crate::dashboard::csv_tables(&d, page.lang),
            d => Value::from_serialize(&d), distribution, funnel, revenue, changes, channels,
        },
    ))
}
