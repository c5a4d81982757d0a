//! Marketing campaigns (issue 9): creating them, recording whom they touched
//! (a segment's customers or a list, within the caller's scope), and the
//! marketing report — per campaign and per channel (traditional, online,
//! events): customers reached, converted within the attribution window,
//! revenue, cost, against the conversion of the customers not touched.
//!
//! The reader's report scope decides whose touches count; the baseline is
//! every untouched customer (an aggregate).

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::export::Format;
use crate::reports::say;
use crate::AppState;
use kehu_core::campaign::{
    attributed, attribution_end, by_channel, effect, CampaignInput, ChannelLine, Effect,
};
use kehu_core::role::Permission;
use kehu_core::{Lang, Reason};
use kehu_store::campaigns::Campaign;
use kehu_store::ScopeFilter;
use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Customers one request may touch.
pub const TOUCH_LIMIT: usize = 200_000;

/// Campaign managers create; they and report readers list.
pub fn may_list(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::CampaignManage)
        || user.actor.grants.has(Permission::ReportRead)
}

pub async fn create(
    state: &AppState,
    user: &CurrentUser,
    input: &CampaignInput,
) -> Result<Campaign, ApiError> {
    user.require(Permission::CampaignManage)?;
    let data = input.validate()?;
    let c = state.store.create_campaign(&data, user.user.id).await?;
    state.audit(
        Some(user),
        "create",
        format!("campaign:{}", c.id),
        serde_json::json!({"after": &c}),
    );
    Ok(c)
}

/// Whom a campaign touched: a segment expression or customer ids, and the day.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct TouchRequest {
    /// A segment expression; or `segment_id`, or `customer_ids`.
    #[serde(default)]
    pub segment: Option<String>,
    /// A saved segment the caller may read.
    #[serde(default)]
    pub segment_id: Option<i64>,
    #[serde(default)]
    pub customer_ids: Option<Vec<i64>>,
    /// YYYY-MM-DD within the campaign's dates; today (or its last day) when absent.
    #[serde(default)]
    pub touched_on: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TouchResult {
    /// Customers named by the request (within the caller's scope).
    pub customers: usize,
    /// Newly touched; the others had been touched by the campaign already.
    pub added: u64,
    /// Left out: every consent they gave is withdrawn.
    pub consent_withdrawn: usize,
    pub campaign: i64,
}

pub async fn touch(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    req: &TouchRequest,
) -> Result<TouchResult, ApiError> {
    user.require(Permission::CampaignManage)?;
    let campaign = state.store.campaign(id).await?;
    let c = &campaign.data;
    let today = state.store.today();
    let touched_on = match req
        .touched_on
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => today.min(c.ends_on).max(c.starts_on),
        Some(t) => {
            let d = kehu_core::date::parse_date(t).map_err(|r| ApiError::field("touched_on", r))?;
            if d < c.starts_on || d > c.ends_on {
                return Err(ApiError::field(
                    "touched_on",
                    Reason::OutOfRange {
                        min: Some(c.starts_on.to_string()),
                        max: Some(c.ends_on.to_string()),
                    },
                ));
            }
            d
        }
    };
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let segment =
        crate::api::segments::named_segment(state, user, req.segment.clone(), req.segment_id)
            .await?;
    let customers: Vec<i64> = match (segment.as_deref(), &req.customer_ids) {
        (Some(src), None) => {
            let (compiled, _) =
                crate::api::segments::compile_for_reader(state, &user.actor.fields, src, "segment")
                    .await?;
            state.segments.ids(&compiled.plan, &scope).await?
        }
        (None, Some(ids)) if !ids.is_empty() => {
            let visible = state.segments.scope_ids(&scope).await?;
            // Unknown and out-of-scope ids read the same: nothing is revealed.
            if let Some(bad) = ids
                .iter()
                .find(|&&i| !u32::try_from(i).is_ok_and(|i| visible.contains(i)))
            {
                return Err(ApiError::field(
                    "customer_ids",
                    Reason::Other {
                        zh: format!("客户 {bad} 不存在或不在您的权限范围内"),
                        en: format!("customer {bad} does not exist or is not yours to see"),
                    },
                ));
            }
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            ids
        }
        _ => {
            return Err(ApiError::field(
                "segment",
                Reason::Other {
                    zh: "请给出客户分群表达式或客户 ID 列表（二选一）".into(),
                    en: "give either a segment expression or a list of customer ids".into(),
                },
            ))
        }
    };
    if customers.len() > TOUCH_LIMIT {
        return Err(ApiError::field(
            "segment",
            Reason::OutOfRange {
                min: None,
                max: Some(TOUCH_LIMIT.to_string()),
            },
        ));
    }
    // Marketing needs consent: customers who withdrew all of theirs are left out.
    let withdrawn: std::collections::HashSet<i64> = state
        .store
        .consent_withdrawn(&customers)
        .await?
        .into_iter()
        .collect();
    let customers: Vec<i64> = customers
        .into_iter()
        .filter(|c| !withdrawn.contains(c))
        .collect();
    let added = state
        .store
        .add_touches(id, &customers, touched_on, user.user.id)
        .await?;
    state.audit(
        Some(user),
        "update",
        format!("campaign:{id}"),
        serde_json::json!({"touched": customers.len(), "added": added, "touched_on": touched_on, "segment": segment}),
    );
    Ok(TouchResult {
        customers: customers.len(),
        added,
        consent_withdrawn: withdrawn.len(),
        campaign: id,
    })
}

/// One campaign's line of the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignLine {
    pub id: i64,
    pub name: String,
    pub channel: String,
    pub channel_label: String,
    pub starts_on: chrono::NaiveDate,
    pub ends_on: chrono::NaiveDate,
    pub window_days: i64,
    /// The last day an order counts.
    pub attribution_end: chrono::NaiveDate,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub effect: Effect,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MarketingReport {
    pub as_of: chrono::NaiveDate,
    /// The period whose campaigns it covers (those that ran in it); none: all.
    pub period: Option<String>,
    pub campaigns: Vec<CampaignLine>,
    /// Every channel, with its campaigns added up.
    #[schema(value_type = Vec<Object>)]
    pub channels: Vec<ChannelLine>,
    pub definitions: Vec<String>,
}

/// The customers behind one campaign's numbers.
pub struct Behind {
    pub reached: Vec<i64>,
    pub converted: Vec<i64>,
}

/// One campaign's effect among the customers `allowed` (None: everyone);
/// the untouched baseline (two reads of every order in the campaign's
/// span) only when asked for.
async fn campaign_effect(
    state: &AppState,
    campaign: &Campaign,
    allowed: &Option<RoaringBitmap>,
    with_baseline: bool,
) -> Result<(Effect, Behind), ApiError> {
    let c = &campaign.data;
    let end = attribution_end(c);
    let mut touched = state.store.touches(campaign.id).await?;
    if let Some(set) = allowed {
        touched.retain(|id, _| u32::try_from(*id).is_ok_and(|i| set.contains(i)));
    }
    let (orders, first) = state
        .store
        .touched_orders(campaign.id, c.starts_on, end)
        .await?;
    let existed_before = crate::tasks::to_utc(
        end.succ_opt()
            .unwrap_or(end)
            .and_time(chrono::NaiveTime::MIN),
    );
    let baseline = if with_baseline {
        state
            .store
            .campaign_baseline(campaign.id, c.starts_on, end, existed_before)
            .await?
    } else {
        kehu_core::campaign::Baseline::default()
    };
    let e = effect(c, &touched, &orders, &first, baseline);
    let mut converted: Vec<i64> = attributed(c, &touched, &orders)
        .map(|o| o.customer_id)
        .collect();
    converted.sort_unstable();
    converted.dedup();
    Ok((
        e,
        Behind {
            reached: touched.keys().copied().collect(),
            converted,
        },
    ))
}

/// One campaign's line of the report, with its baseline.
pub async fn line(
    state: &AppState,
    scope: &ScopeFilter,
    campaign: &Campaign,
    lang: Lang,
) -> Result<CampaignLine, ApiError> {
    let allowed = crate::reports::population(state, scope, None).await?;
    Ok(line_of(state, campaign, &allowed, lang, true).await?.0)
}

async fn line_of(
    state: &AppState,
    campaign: &Campaign,
    allowed: &Option<RoaringBitmap>,
    lang: Lang,
    with_baseline: bool,
) -> Result<(CampaignLine, Behind), ApiError> {
    let (effect, b) = campaign_effect(state, campaign, allowed, with_baseline).await?;
    let c = &campaign.data;
    let line = CampaignLine {
        id: campaign.id,
        name: c.name.clone(),
        channel: c.channel.key().into(),
        channel_label: channel_label(c.channel, lang),
        starts_on: c.starts_on,
        ends_on: c.ends_on,
        window_days: c.window_days,
        attribution_end: attribution_end(c),
        effect,
    };
    Ok((line, b))
}

/// A channel's name in `lang`.
pub fn channel_label(channel: kehu_core::campaign::Channel, lang: Lang) -> String {
    say(lang, channel.label_zh(), channel.label_en())
}

/// The report over every campaign, within `scope`.
/// The report of every campaign, or of those that ran in `period` (their
/// dates overlap it).
pub async fn report(
    state: &AppState,
    scope: &ScopeFilter,
    period: Option<&kehu_core::strategy::Period>,
    lang: Lang,
) -> Result<(MarketingReport, BTreeMap<i64, Behind>), ApiError> {
    report_of(state, scope, period, lang, true).await
}

/// The channel totals alone (the dashboard): no baseline is read.
pub async fn channels(
    state: &AppState,
    scope: &ScopeFilter,
    lang: Lang,
) -> Result<Vec<ChannelLine>, ApiError> {
    Ok(report_of(state, scope, None, lang, false).await?.0.channels)
}

async fn report_of(
    state: &AppState,
    scope: &ScopeFilter,
    period: Option<&kehu_core::strategy::Period>,
    lang: Lang,
    with_baseline: bool,
) -> Result<(MarketingReport, BTreeMap<i64, Behind>), ApiError> {
    let allowed = crate::reports::population(state, scope, None).await?;
    let mut lines = Vec::new();
    let mut behind = BTreeMap::new();
    let ran_in = |c: &kehu_store::campaigns::Campaign| {
        period.is_none_or(|p| c.data.starts_on <= p.end && c.data.ends_on >= p.start)
    };
    for campaign in state.store.campaigns().await?.into_iter().filter(ran_in) {
        let (line, b) = line_of(state, &campaign, &allowed, lang, with_baseline).await?;
        lines.push(line);
        behind.insert(campaign.id, b);
    }
    let by: Vec<(kehu_core::campaign::Channel, &Effect)> = lines
        .iter()
        .filter_map(|l| {
            kehu_core::campaign::Channel::parse(&l.channel)
                .ok()
                .map(|c| (c, &l.effect))
        })
        .collect();
    let channels = by_channel(&by);
    let definitions = vec![
        say(lang, "触达：活动记录的客户（按您的报表权限范围）", "reached: the customers the campaign recorded (within your report scope)"),
        say(lang, "转化：触达当天起、归因窗口天数内（含）下过订单的触达客户；收入为这些订单", "converted: reached customers who ordered from their touch day to the attribution window's end; revenue is those orders"),
        say(lang, "首购：转化客户中第一笔订单就在窗口内的客户", "first orders: converted customers whose first order ever was in the window"),
        say(lang, "基准：未被该活动触达的全部客户中，在活动开始至归因截止日之间下单的比例；提升 = 转化率 / 基准", "baseline: of all customers the campaign did not touch, the share who ordered between its start and its attribution end; lift = conversion / baseline"),
        say(lang, "渠道合计为各活动之和：同一客户被同渠道两次活动触达时计两次", "channel totals add up the campaigns: a customer touched by two campaigns of a channel counts twice"),
    ];
    Ok((
        MarketingReport {
            as_of: state.store.today(),
            period: period.map(|p| p.label()),
            campaigns: lines,
            channels,
            definitions,
        },
        behind,
    ))
}

fn yuan(fen: Option<i64>) -> String {
    fen.map_or_else(String::new, kehu_core::money::yuan_text)
}

/// The campaign table as rows (header first).
pub fn campaign_table(r: &MarketingReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    campaign_rows(&r.campaigns, lang)
}

/// Campaign lines as the report's table (header first).
pub fn campaign_rows(lines: &[CampaignLine], lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("活动", "Campaign"),
        t("渠道", "Channel"),
        t("开始", "Starts"),
        t("结束", "Ends"),
        t("归因截止", "Attribution end"),
        t("触达", "Reached"),
        t("转化", "Converted"),
        t("转化率", "Conversion"),
        t("首购", "First orders"),
        t("订单", "Orders"),
        t("收入（元）", "Revenue (yuan)"),
        t("人均收入（元）", "Revenue per reached (yuan)"),
        t("成本（元）", "Cost (yuan)"),
        t("单次转化成本（元）", "Cost per conversion (yuan)"),
        t("收入/成本", "Revenue / cost"),
        t("基准", "Baseline"),
        t("提升", "Lift"),
    ];
    let pct = crate::reports::percent;
    let rows = lines
        .iter()
        .map(|l| {
            let e = &l.effect;
            vec![
                l.name.clone(),
                l.channel_label.clone(),
                l.starts_on.to_string(),
                l.ends_on.to_string(),
                l.attribution_end.to_string(),
                e.reached.to_string(),
                e.converted.to_string(),
                pct(e.conversion_rate),
                e.first_orders.to_string(),
                e.orders.to_string(),
                yuan(Some(e.revenue_fen)),
                yuan(e.revenue_per_reached_fen),
                yuan(e.cost_fen),
                yuan(e.cost_per_conversion_fen),
                pct(e.return_on_cost),
                pct(e.baseline_rate),
                pct(e.lift),
            ]
        })
        .collect();
    (header, rows)
}

/// The channel table as rows (header first).
pub fn channel_table(channels: &[ChannelLine], lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("渠道", "Channel"),
        t("活动数", "Campaigns"),
        t("触达", "Reached"),
        t("转化", "Converted"),
        t("转化率", "Conversion"),
        t("收入（元）", "Revenue (yuan)"),
        t("人均收入（元）", "Revenue per reached (yuan)"),
        t("成本（元）", "Cost (yuan)"),
        t("收入/成本", "Revenue / cost"),
    ];
    let rows = channels
        .iter()
        .map(|c| {
            vec![
                channel_label(c.channel, lang),
                c.campaigns.to_string(),
                c.reached.to_string(),
                c.converted.to_string(),
                crate::reports::percent(c.conversion_rate),
                yuan(Some(c.revenue_fen)),
                yuan(c.revenue_per_reached_fen),
                yuan(Some(c.cost_fen)),
                crate::reports::percent(c.return_on_cost),
            ]
        })
        .collect();
    (header, rows)
}

/// CSV of one table (`channels` by default, or `campaigns`), XLSX of both.
pub fn report_file(
    r: &MarketingReport,
    format: Format,
    table: Option<&str>,
    lang: Lang,
) -> Result<Vec<u8>, ApiError> {
    let title = format!(
        "{} · {}",
        crate::reports::say(lang, "营销效果", "Marketing"),
        r.as_of
    );
    crate::export::tables_file(
        format,
        table,
        &title,
        &[
            (
                "channels",
                "渠道",
                channel_table(&r.channels, lang),
                &[1, 2, 3][..],
            ),
            (
                "campaigns",
                "活动",
                campaign_table(r, lang),
                &[5, 6, 8, 9][..],
            ),
        ],
    )
}

/// The customers behind a campaign's numbers: `reached` or `converted`.
pub async fn customers_behind(
    state: &AppState,
    scope: &ScopeFilter,
    campaign: i64,
    measure: &str,
) -> Result<Vec<i64>, ApiError> {
    let c = state.store.campaign(campaign).await.map_err(|e| match e {
        kehu_store::StoreError::NotFound => ApiError::field(
            "campaign",
            Reason::Other {
                zh: format!("没有编号为 {campaign} 的活动"),
                en: format!("there is no campaign {campaign}"),
            },
        ),
        e => e.into(),
    })?;
    let allowed = crate::reports::population(state, scope, None).await?;
    let (_, b) = campaign_effect(state, &c, &allowed, false).await?;
    match measure {
        "reached" => Ok(b.reached),
        "converted" => Ok(b.converted),
        _ => Err(ApiError::field(
            "measure",
            Reason::UnknownOption {
                allowed: vec!["reached".into(), "converted".into()],
            },
        )),
    }
}
