//! `kehu report KIND --period PERIOD [--scheme S] [--segment EXPR]
//! [--format json|csv|xlsx] [--out FILE]`: a period report as the API makes
//! it, for everyone (the CLI reads as an administrator).

use anyhow::{bail, Result};
use kehu_core::report::{ChurnBasis, Definitions, RepurchaseBasis};
use kehu_core::strategy::parse_period;
use kehu_core::Lang;
use kehu_server::export::Format;
use kehu_server::reports::ReportRequest;

pub struct Options {
    pub kind: String,
    pub period: String,
    pub scheme: String,
    pub segment: Option<String>,
    pub format: String,
    pub table: Option<String>,
    pub churn: Option<String>,
    pub repurchase: Option<String>,
    pub out: Option<std::path::PathBuf>,
}

/// The report kinds there are.
const KINDS: &[&str] = &["classification", "strategy"];

pub async fn run(db: &str, o: Options) -> Result<()> {
    if !KINDS.contains(&o.kind.as_str()) {
        bail!(
            "KIND: 未知的报表 / unknown report {:?}; the reports are: {}",
            o.kind,
            KINDS.join(", ")
        );
    }
    let field = |name: &str, r: kehu_core::Reason| {
        anyhow::anyhow!(
            "--{name}: {} / {}",
            r.message(Lang::Zh),
            r.message(Lang::En)
        )
    };
    let period = parse_period(&o.period).map_err(|r| field("period", r))?;
    let definitions = Definitions {
        churn: o
            .churn
            .as_deref()
            .map(ChurnBasis::parse)
            .transpose()
            .map_err(|r| field("churn", r))?
            .unwrap_or(Definitions::default().churn),
        repurchase: o
            .repurchase
            .as_deref()
            .map(RepurchaseBasis::parse)
            .transpose()
            .map_err(|r| field("repurchase", r))?
            .unwrap_or(Definitions::default().repurchase),
    };
    let format = match o.format.as_str() {
        "json" => None,
        other => Some(Format::parse(other).map_err(|r| field("format", r))?),
    };
    let store = crate::open_store(db).await?;
    let state = kehu_server::AppState::new(store, kehu_server::Settings::offline(db));
    let req = ReportRequest {
        scheme: o.scheme,
        period,
        segment: o.segment,
        definitions,
    };
    let scope = kehu_server::reports::ReportScope::all();
    let bytes = if o.kind == "strategy" {
        let report = kehu_server::reports::strategy(&state, &scope, &req, Lang::Zh)
            .await
            .map_err(crate::one_line)?;
        match format {
            None => json_bytes(&report)?,
            Some(f) => kehu_server::reports::strategy_file(&report, f, Lang::Zh)
                .map_err(crate::one_line)?,
        }
    } else {
        let report = kehu_server::reports::classification(&state, &scope, &req, Lang::Zh)
            .await
            .map_err(crate::one_line)?;
        match format {
            None => json_bytes(&report)?,
            Some(f) => kehu_server::reports::report_file(&report, f, o.table.as_deref(), Lang::Zh)
                .map_err(crate::one_line)?,
        }
    };
    match o.out {
        Some(path) => std::fs::write(&path, bytes)?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

fn json_bytes(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s.into_bytes())
}
