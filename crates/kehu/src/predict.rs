//! `kehu predict fit --summary FILE`: BG/NBD (and Gamma-Gamma when the file
//! has spend) on a customer summary, as `lifetimes` reads it; `kehu predict
//! run`: the fit on the database's orders with every customer's outlook.

use anyhow::{bail, Context, Result};
use kehu_core::predict::{BgNbd, GammaGamma, Summary, SummaryProblem};
use kehu_core::Lang;
use kehu_server::tabular::Table;
use serde_json::{json, Map, Value};

pub fn fit(path: &std::path::Path) -> Result<()> {
    let table = Table::open(path)?;
    let column = |name: &str| {
        table
            .headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let mut wanted = Vec::new();
    for name in ["frequency", "recency", "T"] {
        let Some(i) = column(name) else {
            bail!(
                "{}: 缺少列 {name} / no column {name:?}; the columns are: {}",
                path.display(),
                table.headers.join(", ")
            );
        };
        wanted.push(i);
    }
    let monetary = column("monetary_value");
    let mut summaries = Vec::new();
    let mut spend = Vec::new();
    for row in table {
        let row = row?;
        let number = |i: usize, problem: SummaryProblem| -> Result<f64> {
            let cell = row.cells.get(i).map_or("", |c| c.trim());
            cell.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .with_context(|| {
                    format!(
                        "row {}, {}: {cell:?} 不是数 / is not a number",
                        row.number,
                        problem.field()
                    )
                })
        };
        let values = [
            number(wanted[0], SummaryProblem::Frequency)?,
            number(wanted[1], SummaryProblem::Recency)?,
            number(wanted[2], SummaryProblem::T)?,
        ];
        let s = Summary::new(values[0], values[1], values[2]).map_err(|p| {
            anyhow::anyhow!(
                "row {}, {}: {} / {}",
                row.number,
                p.field(),
                p.message(Lang::Zh),
                p.message(Lang::En)
            )
        })?;
        if let Some(i) = monetary {
            let m = number(i, SummaryProblem::Monetary)?;
            if m < 0.0 {
                let p = SummaryProblem::Monetary;
                bail!(
                    "row {}, {}: {} / {}",
                    row.number,
                    p.field(),
                    p.message(Lang::Zh),
                    p.message(Lang::En)
                );
            }
            spend.push((s.frequency, m));
        }
        summaries.push(s);
    }
    let bg = BgNbd::fit(&summaries)?.params;
    let mut out = Map::new();
    for (k, v) in [("r", bg.r), ("alpha", bg.alpha), ("a", bg.a), ("b", bg.b)] {
        out.insert(k.into(), json!(v));
    }
    if monetary.is_some() {
        let gg = GammaGamma::fit(&spend)?.params;
        for (k, v) in [("p", gg.p), ("q", gg.q), ("v", gg.v)] {
            out.insert(k.into(), json!(v));
        }
    }
    println!("{}", Value::Object(out));
    Ok(())
}

pub async fn run(db: &str, as_of: Option<chrono::NaiveDate>) -> Result<()> {
    let store = crate::open_store(db).await?;
    let as_of = as_of.unwrap_or_else(|| store.today());
    let report = kehu_server::predict::run(&store, as_of)
        .await
        .map_err(crate::one_line)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
