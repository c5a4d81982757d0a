//! `kehu report KIND --period PERIOD [--scheme S] [--segment EXPR]
//! [--format json|csv|xlsx|pdf] [--out FILE]`: a report as the API makes it,
//! for everyone (the CLI reads as an administrator). `--period` is required
//! for `classification` and `strategy`; `tags` counts as at the period's
//! last day (else the last `--days`), `marketing` takes the campaigns that
//! ran in it (else all), and `cross_sell` reads as of the period's last
//! day (today while under way).

use anyhow::{bail, Result};
use kehu_core::report::{ChurnBasis, Definitions, RepurchaseBasis};
use kehu_core::strategy::parse_period;
use kehu_core::Lang;
use kehu_server::export::Format;
use kehu_server::reports::ReportRequest;

pub struct Options {
    pub kind: String,
    pub period: Option<String>,
    pub scheme: String,
    pub segment: Option<String>,
    pub format: String,
    pub table: Option<String>,
    pub min_share: Option<String>,
    pub days: Option<String>,
    pub churn: Option<String>,
    pub repurchase: Option<String>,
    pub out: Option<std::path::PathBuf>,
}

/// The report kinds there are.
const KINDS: &[&str] = &[
    "classification",
    "strategy",
    "cross_sell",
    "tags",
    "marketing",
];

pub async fn run(db: &str, o: Options) -> Result<()> {
    if !KINDS.contains(&o.kind.as_str()) {
        bail!(
            "KIND: 未知的报表 / unknown report {:?}; the reports are: {}",
            o.kind,
            KINDS.join(", ")
        );
    }
    let format = match o.format.as_str() {
        "json" => None,
        other => Some(Format::parse(other).map_err(|r| field("format", r))?),
    };
    if matches!(o.kind.as_str(), "cross_sell" | "tags" | "marketing") {
        let store = crate::open_store(db).await?;
        let state = kehu_server::AppState::new(store, kehu_server::Settings::offline(db));
        let bytes = match o.kind.as_str() {
            "tags" => tags(&state, &o, format).await?,
            "marketing" => marketing(&state, &o, format).await?,
            _ => cross_sell(&state, &o, format).await?,
        };
        return write_out(o.out.as_deref(), &bytes);
    }
    let period = o
        .period
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("--period: 必填 / required for the {} report", o.kind))?;
    let period = period_arg(period)?;
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
    write_out(o.out.as_deref(), &bytes)
}

/// The tag analytics (the usage review) of the last `--days` days.
async fn tags(
    state: &kehu_server::AppState,
    o: &Options,
    format: Option<Format>,
) -> Result<Vec<u8>> {
    let today = state.store.today();
    let span = match (o.period.as_deref(), o.days.as_deref()) {
        (Some(_), Some(_)) => {
            bail!("--days: 与 --period 二选一 / give --period or --days, not both")
        }
        (Some(p), None) => kehu_server::api::tags::ReviewSpan::of_period(today, p, "--period")
            .map_err(crate::one_line)?,
        (None, d) => {
            let days = match d {
                None => 90,
                Some(d) => d
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=730).contains(d))
                    .ok_or_else(|| {
                        anyhow::anyhow!("--days: 应为 1–730 的整数 / a whole number 1–730")
                    })?,
            };
            kehu_server::api::tags::ReviewSpan::last_days(today, days)
        }
    };
    let review = kehu_server::api::tags::usage_review(state, span, &kehu_store::ScopeFilter::All)
        .await
        .map_err(crate::one_line)?;
    match format {
        None => json_bytes(&review),
        Some(f) => {
            kehu_server::api::tags::review_file(&review, f, Lang::Zh).map_err(crate::one_line)
        }
    }
}

/// Marketing effectiveness by channel and campaign.
async fn marketing(
    state: &kehu_server::AppState,
    o: &Options,
    format: Option<Format>,
) -> Result<Vec<u8>> {
    let period = o.period.as_deref().map(period_arg).transpose()?;
    let (report, _) = kehu_server::campaigns::report(
        state,
        &kehu_store::ScopeFilter::All,
        period.as_ref(),
        Lang::Zh,
    )
    .await
    .map_err(crate::one_line)?;
    match format {
        None => json_bytes(&report),
        Some(f) => kehu_server::campaigns::report_file(&report, f, o.table.as_deref(), Lang::Zh)
            .map_err(crate::one_line),
    }
}

/// The cross-selling opportunities as of today (what peers bought in the
/// last 12 months) or, with a past `--period`, as of its last day.
async fn cross_sell(
    state: &kehu_server::AppState,
    o: &Options,
    format: Option<Format>,
) -> Result<Vec<u8>> {
    let mut params = kehu_server::crosssell::CrossSellParams {
        scheme: o.scheme.clone(),
        ..Default::default()
    }
    .in_period(state.store.today(), o.period.as_deref())
    .map_err(crate::one_line)?;
    if let Some(share) = o.min_share.as_deref() {
        params.min_share = kehu_server::crosssell::percent_param(share).map_err(crate::one_line)?;
    }
    let (report, _) = kehu_server::crosssell::report(
        state,
        &kehu_store::ScopeFilter::All,
        &params,
        o.segment.as_deref(),
        Lang::Zh,
    )
    .await
    .map_err(crate::one_line)?;
    match format {
        None => json_bytes(&report),
        Some(f) => kehu_server::crosssell::report_file(&report, f, o.table.as_deref(), Lang::Zh)
            .map_err(crate::one_line),
    }
}

/// An option's value refused, with the reason in Chinese and English.
fn field(name: &str, r: kehu_core::Reason) -> anyhow::Error {
    anyhow::anyhow!(
        "--{name}: {} / {}",
        r.message(Lang::Zh),
        r.message(Lang::En)
    )
}

/// `--period`: a month, quarter or year.
fn period_arg(p: &str) -> Result<kehu_core::strategy::Period> {
    parse_period(p).map_err(|r| field("period", r))
}

fn write_out(out: Option<&std::path::Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(path) => std::fs::write(path, bytes)?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(bytes)?;
        }
    }
    Ok(())
}

fn json_bytes(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    let mut s = serde_json::to_string_pretty(value)?;
    s.push('\n');
    Ok(s.into_bytes())
}
