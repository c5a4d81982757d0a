//! Cross-selling and similar customers (issue 9): for one customer, what
//! its peers (same class, industry and size) buy that it never bought,
//! with the evidence, and the peers most like it; for a population, the
//! opportunities per product and the groups they come from. The numbers
//! are kehu-core `crosssell` over the segment index's bitmaps, as of today.
//!
//! The evidence is counted over every customer (an aggregate); the
//! customers named — similar customers, opportunity lists — are only those
//! the reader may see.

use crate::api::customers::customer_for;
use crate::api::QueryPairs;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::export::Format;
use crate::reports::say;
use crate::AppState;
use kehu_core::crosssell::{Facet, Group, Opportunity, Similar, Suggestion, DEFAULT_MIN_SHARE};
use kehu_core::role::Permission;
use kehu_core::{Lang, Reason};
use kehu_store::ScopeFilter;
use roaring::RoaringBitmap;
use serde::Serialize;
use utoipa::ToSchema;

/// What the segment index finds for one customer.
pub struct Peers {
    pub group: Group,
    pub widened: bool,
    pub suggestions: Vec<Suggestion>,
    pub similar: Vec<Similar>,
}

/// The scheme whose classes make the peer groups, and the share of a
/// group that must buy a product for it to be suggested.
#[derive(Debug, Clone)]
pub struct CrossSellParams {
    pub scheme: String,
    /// 1/10000.
    pub min_share: i64,
    /// A past day the report is as of (its buying and classes then); None: today.
    pub as_of: Option<chrono::NaiveDate>,
}

impl Default for CrossSellParams {
    fn default() -> Self {
        CrossSellParams {
            scheme: "value_tier".into(),
            min_share: DEFAULT_MIN_SHARE,
            as_of: None,
        }
    }
}

impl CrossSellParams {
    /// `scheme` (default `value_tier`) and `min_share` in whole percent
    /// (1–100, default 30) from a query.
    pub fn take(q: &mut QueryPairs) -> Result<CrossSellParams, ApiError> {
        let scheme = q.take("scheme");
        let min_share = q.take("min_share");
        CrossSellParams::of(scheme.as_deref(), min_share.as_deref())
    }

    /// From the asked scheme and whole-percent share (blank: the defaults).
    pub fn of(scheme: Option<&str>, min_share: Option<&str>) -> Result<CrossSellParams, ApiError> {
        let min_share = match min_share.filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_MIN_SHARE,
            Some(v) => percent_param(v)?,
        };
        Ok(CrossSellParams {
            scheme: scheme
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or("value_tier")
                .to_string(),
            min_share,
            as_of: None,
        })
    }

    /// A report's parameters from a query: [`CrossSellParams::take`] and `period`.
    pub fn take_for_report(
        q: &mut QueryPairs,
        today: chrono::NaiveDate,
    ) -> Result<CrossSellParams, ApiError> {
        let period = q.take("period");
        CrossSellParams::take(q)?.in_period(today, period.as_deref())
    }

    /// As of a period's last day (`period`: a month, quarter or year); a
    /// period under way reads today, one not begun is refused on `period`.
    pub fn in_period(
        mut self,
        today: chrono::NaiveDate,
        period: Option<&str>,
    ) -> Result<Self, ApiError> {
        if let Some(p) = period.map(str::trim).filter(|p| !p.is_empty()) {
            let until = crate::api::tags::ReviewSpan::of_period(today, p, "period")?.until;
            self.as_of = (until < today).then_some(until);
        }
        Ok(self)
    }
}

/// A whole percent 1–100 as 1/10000.
pub fn percent_param(v: &str) -> Result<i64, ApiError> {
    let n: i64 = v
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse()
        .map_err(|_| ApiError::field("min_share", Reason::NumberFormat))?;
    if (1..=100).contains(&n) {
        Ok(n * 100)
    } else {
        Err(ApiError::field(
            "min_share",
            Reason::OutOfRange {
                min: Some("1".into()),
                max: Some("100".into()),
            },
        ))
    }
}

/// A peer group as shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupOut {
    #[schema(value_type = Vec<Object>)]
    pub facets: Vec<Facet>,
    /// 战略型 · 制造业 · 中型 (全部客户 without facets).
    pub label: String,
    /// The segment expression that finds the group ("" for everyone).
    pub expression: String,
    /// Other customers in the group.
    pub peers: u64,
    /// Facets were dropped because the full group was too small.
    pub widened: bool,
}

/// A similar customer the reader may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarOut {
    pub customer_id: i64,
    pub code: String,
    pub name: String,
    /// 0–100.
    pub score: i64,
    pub shared_products: Vec<String>,
    /// Null when the reader's role is kept from order amounts.
    pub purchase_12m_fen: Option<i64>,
    pub orders: i64,
}

/// One customer's cross-selling suggestions and similar customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerCrossSell {
    pub customer_id: i64,
    pub scheme: String,
    pub scheme_name: String,
    /// 1/10000.
    pub min_share: i64,
    pub group: GroupOut,
    #[schema(value_type = Vec<Object>)]
    pub suggestions: Vec<Suggestion>,
    pub similar: Vec<SimilarOut>,
    pub definitions: Vec<String>,
}

/// What the numbers mean; `by_industry` false when the reader's peer
/// groups leave industry out (they may not see it).
fn definitions(scheme_name: &str, min_share: i64, by_industry: bool, lang: Lang) -> Vec<String> {
    let pct = min_share / 100;
    let min = kehu_core::crosssell::MIN_PEERS;
    vec![
        match (lang, by_industry) {
            (Lang::Zh, true) => format!("同类：同一{scheme_name}分类、同一行业、同一企业规模的客户；同类不足 {min} 家时依次放宽规模、行业、分类"),
            (Lang::Zh, false) => format!("同类：同一{scheme_name}分类、同一企业规模的客户（您的角色不能查看行业，不按行业分组）；同类不足 {min} 家时依次放宽规模、分类"),
            (_, true) => format!("similar customers: same {scheme_name} class, industry and size; with fewer than {min}, size, then industry, then class are dropped"),
            (_, false) => format!("similar customers: same {scheme_name} class and size (your role does not see industries, so they do not group); with fewer than {min}, size, then class are dropped"),
        },
        say(
            lang,
            "购买：近12个月有该产品线的订单；未购买：从未有该产品线的订单",
            "buys: ordered the product line in the last 12 months; never bought: no order of it on record",
        ),
        match lang {
            Lang::Zh => format!("建议：同类中至少 {pct}% 近12个月购买、而本客户从未购买的产品"),
            Lang::En => format!("suggested: products at least {pct} % of similar customers bought in the last 12 months and the customer never bought"),
        },
        say(
            lang,
            "相似度（0–100）：共同购买的产品 50 分（Jaccard）+ 近12个月采购额接近程度 30 分 + 订单数接近程度 20 分",
            "similarity (0–100): products in common 50 (Jaccard) + closeness of 12-month purchases 30 + of order counts 20",
        ),
    ]
}

fn group_out(group: &Group, widened: bool, lang: Lang) -> GroupOut {
    GroupOut {
        facets: group.facets.clone(),
        label: group.label(lang == Lang::Zh),
        expression: group.expression(),
        peers: group.members.len(),
        widened,
    }
}

/// Suggestions and similar customers for customer `id`, which the user must be able to read.
pub async fn for_customer(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    params: &CrossSellParams,
    lang: Lang,
) -> Result<CustomerCrossSell, ApiError> {
    customer_for(state, user, id, Permission::CustomerRead).await?;
    let (scheme_name, _) = crate::reports::scheme_classes(state, &params.scheme).await?;
    let visible = user.scope_filter(Permission::CustomerRead)?;
    // A reader kept from the customer's industry is not told it by the
    // peer group's name: the group leaves industry out for them.
    use kehu_core::crosssell::FacetKind;
    let sees_industry = user.actor.fields.sees_customer_field("industry");
    let kinds: Vec<FacetKind> = [FacetKind::Class, FacetKind::Industry, FacetKind::Size]
        .into_iter()
        .filter(|k| *k != FacetKind::Industry || sees_industry)
        .collect();
    let peers = state
        .segments
        .cross_sell(
            id,
            &params.scheme,
            params.min_share,
            kehu_core::crosssell::DEFAULT_LIMIT,
            &visible,
            &kinds,
        )
        .await?;
    let ids: Vec<i64> = peers.similar.iter().map(|s| s.customer_id).collect();
    let named = state.store.customers_in(&ids).await?;
    let sees_purchases = user.actor.fields.sees_customer_field("purchase_12m_fen");
    let similar = peers
        .similar
        .into_iter()
        .filter_map(|s| {
            let c = named.iter().find(|c| c.id == s.customer_id)?;
            Some(SimilarOut {
                customer_id: s.customer_id,
                code: c.code.clone(),
                name: c.name.clone(),
                score: s.score,
                shared_products: s.shared_products,
                purchase_12m_fen: sees_purchases.then_some(s.purchase_12m_fen),
                orders: s.orders,
            })
        })
        .collect();
    let mut suggestions = peers.suggestions;
    suggestions.truncate(kehu_core::crosssell::DEFAULT_LIMIT);
    Ok(CustomerCrossSell {
        customer_id: id,
        scheme: params.scheme.clone(),
        definitions: definitions(&scheme_name, params.min_share, sees_industry, lang),
        scheme_name,
        min_share: params.min_share,
        group: group_out(&peers.group, peers.widened, lang),
        suggestions,
        similar,
    })
}

/// The cross-selling opportunities of a population.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrossSellReport {
    pub scheme: String,
    pub scheme_name: String,
    pub segment: Option<String>,
    /// 1/10000.
    pub min_share: i64,
    /// The day the numbers are as of (12 months back from it).
    pub as_of: chrono::NaiveDate,
    /// Customers the report is about.
    pub population: u64,
    /// Per product, most opportunities first.
    #[schema(value_type = Vec<Object>)]
    pub products: Vec<Opportunity>,
    pub definitions: Vec<String>,
}

/// The report and, per product, its opportunity customers (for the lists behind it).
pub async fn report(
    state: &AppState,
    user_scope: &ScopeFilter,
    params: &CrossSellParams,
    segment: Option<&str>,
    lang: Lang,
) -> Result<(CrossSellReport, Vec<RoaringBitmap>), ApiError> {
    let (scheme_name, _) = crate::reports::scheme_classes(state, &params.scheme).await?;
    let population = crate::reports::population(state, user_scope, segment).await?;
    let today = state.store.today();
    let as_of = params.as_of.filter(|d| *d < today);
    let then = match as_of {
        Some(day) => {
            Some(crate::segments::BuyingThen::read(&state.store, &params.scheme, day).await?)
        }
        None => None,
    };
    let (size, found) = state
        .segments
        .opportunities(
            &params.scheme,
            population.as_ref(),
            params.min_share,
            then.as_ref(),
        )
        .await?;
    let mut definitions = definitions(&scheme_name, params.min_share, true, lang);
    if let Some(day) = as_of {
        definitions.push(match lang {
            Lang::Zh => format!("截至 {day}：购买按当日及此前的订单，分类与企业规模按当日的分类历史，行业按今天的数据；当日已存在、今天仍在的客户"),
            Lang::En => format!("as of {day}: buying from the orders up to that day, classes and sizes from the class history then, industries as today; customers that existed then and still do"),
        });
    }
    let (products, customers): (Vec<Opportunity>, Vec<RoaringBitmap>) = found.into_iter().unzip();
    let report = CrossSellReport {
        scheme: params.scheme.clone(),
        definitions,
        scheme_name,
        segment: segment.map(str::to_string),
        min_share: params.min_share,
        as_of: as_of.unwrap_or(today),
        population: size,
        products,
    };
    Ok((report, customers))
}

/// The product table as rows (header first).
pub fn product_table(r: &CrossSellReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("产品", "Product"),
        t("近12个月购买客户", "Buying (12 months)"),
        t("渗透率", "Penetration"),
        t("机会客户", "Opportunities"),
        t("建议该产品的同类组", "Groups suggesting it"),
        t("机会最多的同类组", "Group with the most"),
    ];
    let rows = r
        .products
        .iter()
        .map(|p| {
            vec![
                p.product.clone(),
                p.buyers.to_string(),
                crate::reports::percent(p.penetration),
                p.customers.to_string(),
                p.groups.len().to_string(),
                p.groups
                    .first()
                    .map(|g| kehu_core::crosssell::facets_label(&g.facets))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    (header, rows)
}

/// Every (product, group) with opportunities as rows (header first).
pub fn group_table(r: &CrossSellReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("产品", "Product"),
        t("同类组", "Group"),
        t("组内客户", "Members"),
        t("近12个月购买", "Buying"),
        t("购买比例", "Share"),
        t("机会客户", "Opportunities"),
        t("分群表达式", "Segment expression"),
    ];
    let rows = r
        .products
        .iter()
        .flat_map(|p| {
            p.groups.iter().map(|g| {
                vec![
                    p.product.clone(),
                    kehu_core::crosssell::facets_label(&g.facets),
                    g.members.to_string(),
                    g.buyers.to_string(),
                    crate::reports::percent(Some(g.share)),
                    g.customers.to_string(),
                    g.expression.clone(),
                ]
            })
        })
        .collect();
    (header, rows)
}

/// The report as CSV (`table=products|groups`) or XLSX (both).
pub fn report_file(
    r: &CrossSellReport,
    format: Format,
    table: Option<&str>,
    lang: Lang,
) -> Result<Vec<u8>, ApiError> {
    let title = format!(
        "{} · {} · {}",
        crate::reports::say(lang, "交叉销售", "Cross-selling"),
        r.scheme_name,
        r.as_of
    );
    crate::export::tables_file(
        format,
        table,
        &title,
        &[
            (
                "products",
                "交叉销售",
                product_table(r, lang),
                &[1, 3, 4][..],
            ),
            ("groups", "同类组", group_table(r, lang), &[2, 3, 5][..]),
        ],
    )
}

/// The opportunity customers of `product` in the report (ids in order);
/// an unknown product is a field error listing the known ones.
pub async fn opportunity_customers(
    state: &AppState,
    user_scope: &ScopeFilter,
    params: &CrossSellParams,
    segment: Option<&str>,
    product: &str,
    lang: Lang,
) -> Result<Vec<i64>, ApiError> {
    let (r, customers) = report(state, user_scope, params, segment, lang).await?;
    match r.products.iter().position(|p| p.product == product) {
        Some(i) => Ok(customers[i].iter().map(i64::from).collect()),
        None => Err(ApiError::field(
            "product",
            Reason::UnknownOption {
                allowed: r.products.iter().map(|p| p.product.clone()).collect(),
            },
        )),
    }
}
