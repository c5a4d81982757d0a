//! Cross-selling and similar customers.
//!
//! A customer's peers are the other customers of its class (in one scheme),
//! industry and size. A product that many peers buy now and the customer
//! has never bought is a suggestion, stated with its evidence ("78 % of
//! 战略型 · 制造业 · 中型 customers buy 产品C"). A group with fewer than
//! [`MIN_PEERS`] others is no evidence, so it is widened by dropping size,
//! then industry, then class. Similar customers are the peers ranked by the
//! products they share and how close their buying is.
//!
//! Everything here works on customer-id bitmaps; the caller supplies who
//! bought what and who belongs to which class, industry and size.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use serde::Serialize;

use crate::classify::OrderFact;
use crate::report::ratio;
use chrono::NaiveDate;

/// Fewer other customers than this in a group is no evidence.
pub const MIN_PEERS: u64 = 20;
/// A product is suggested when at least this share of the group buys it (1/10000).
pub const DEFAULT_MIN_SHARE: i64 = 3_000;
/// Suggestions and similar customers shown for one customer.
pub const DEFAULT_LIMIT: usize = 10;

/// Who bought a product: in the last 12 months (buys it now) and ever.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Buyers {
    pub recent: RoaringBitmap,
    pub ever: RoaringBitmap,
}

/// Adds one customer's orders to who bought each product line as of
/// `as_of`: `recent` for an order in the 12 months up to it, `ever` for
/// any order on or before it (orders dated later are not bought yet).
pub fn record_buying(
    products: &mut BTreeMap<String, Buyers>,
    customer: u32,
    orders: &[OrderFact],
    as_of: NaiveDate,
) {
    let year_ago = as_of - chrono::Months::new(12);
    for o in orders.iter().filter(|o| o.on <= as_of) {
        let Some(line) = o.line.as_deref() else {
            continue;
        };
        if !products.contains_key(line) {
            products.insert(line.to_string(), Buyers::default());
        }
        if let Some(b) = products.get_mut(line) {
            b.ever.insert(customer);
            if o.on > year_ago {
                b.recent.insert(customer);
            }
        }
    }
}

/// What peers share with the customer; the order of [`FacetKind`] is the
/// order in which a too-small group drops them (size first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FacetKind {
    Class,
    Industry,
    Size,
}

/// One facet value: the segment-language field it reads (a scheme key or
/// `industry`) and the value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Facet {
    pub kind: FacetKind,
    pub field: String,
    pub value: String,
}

/// A group of customers sharing some facets.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub facets: Vec<Facet>,
    pub members: RoaringBitmap,
}

impl Group {
    /// "战略型 · 制造业 · 中型", or 全部客户 / all customers without facets.
    pub fn label(&self, zh: bool) -> String {
        if self.facets.is_empty() {
            return if zh { "全部客户" } else { "all customers" }.into();
        }
        facets_label(&self.facets)
    }

    /// The segment expression that finds the group again.
    pub fn expression(&self) -> String {
        self.facets
            .iter()
            .map(|f| format!("{} = {}", f.field, crate::expr::quote_text(&f.value)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }
}

/// Facet values joined: "战略型 · 制造业 · 中型".
pub fn facets_label(facets: &[Facet]) -> String {
    facets
        .iter()
        .map(|f| f.value.as_str())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The customer's peers: the narrowest group of `facets` (class, industry,
/// size — those the customer has) with at least [`MIN_PEERS`] others,
/// without the customer. `widened` says facets had to be dropped.
pub fn peer_group(
    customer: u32,
    facets: &[(Facet, RoaringBitmap)],
    universe: &RoaringBitmap,
) -> (Group, bool) {
    let mut facets: Vec<&(Facet, RoaringBitmap)> = facets.iter().collect();
    facets.sort_by_key(|(f, _)| f.kind);
    for keep in (0..=facets.len()).rev() {
        let mut members = universe.clone();
        for (_, set) in &facets[..keep] {
            members &= set;
        }
        members.remove(customer);
        if members.len() >= MIN_PEERS || keep == 0 {
            let group = Group {
                facets: facets[..keep].iter().map(|(f, _)| f.clone()).collect(),
                members,
            };
            return (group, keep < facets.len());
        }
    }
    unreachable!("keep = 0 always returns")
}

/// A product the customer has never bought and many peers buy now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    pub product: String,
    /// Peers buying it in the last 12 months, of `peers`.
    pub buyers: u64,
    pub peers: u64,
    /// `buyers / peers`, 1/10000.
    pub share: i64,
    /// The share among all customers, 1/10000 — how much the group's share
    /// stands out.
    pub overall_share: Option<i64>,
    pub evidence_zh: String,
    pub evidence_en: String,
}

/// Whole percent, rounded half up, of a 1/10000 ratio.
fn whole_percent(bp: i64) -> i64 {
    (bp + 50) / 100
}

/// Products bought by at least `min_share` (1/10000) of `group` in the last
/// 12 months that `customer` never bought, most bought first.
pub fn suggestions(
    customer: u32,
    group: &Group,
    products: &BTreeMap<String, Buyers>,
    universe: &RoaringBitmap,
    min_share: i64,
) -> Vec<Suggestion> {
    let peers = group.members.len();
    let mut out: Vec<Suggestion> = products
        .iter()
        .filter(|(_, b)| !b.ever.contains(customer))
        .filter_map(|(product, b)| {
            let buyers = b.recent.intersection_len(&group.members);
            let share = ratio(buyers as i64, peers as i64)?;
            (buyers > 0 && share >= min_share).then(|| {
                let overall = b.recent.intersection_len(universe);
                let pct = whole_percent(share);
                Suggestion {
                    product: product.clone(),
                    buyers,
                    peers,
                    share,
                    overall_share: ratio(overall as i64, universe.len() as i64),
                    evidence_zh: format!(
                        "同类（{}）客户中 {pct}% 近12个月购买 {product}（{buyers}/{peers} 家）",
                        group.label(true)
                    ),
                    evidence_en: format!(
                        "{pct} % of similar customers ({}) bought {product} in the last 12 months ({buyers} of {peers})",
                        group.label(false)
                    ),
                }
            })
        })
        .collect();
    out.sort_by(|a, b| {
        b.share
            .cmp(&a.share)
            .then_with(|| a.product.cmp(&b.product))
    });
    out
}

/// What similarity reads of a customer besides its products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buying {
    pub purchase_12m_fen: i64,
    pub orders: i64,
}

/// A peer and how alike it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Similar {
    pub customer_id: i64,
    /// 0–100: half the products in common (Jaccard), 30 the 12-month
    /// purchase, 20 the number of orders (smaller / larger).
    pub score: i64,
    /// Products both ever bought.
    pub shared_products: Vec<String>,
    pub purchase_12m_fen: i64,
    pub orders: i64,
}

/// `min / max` of two non-negative numbers, 1/10000; equal (both 0) is 1.
fn closeness(a: i64, b: i64) -> i64 {
    let (lo, hi) = (a.min(b).max(0), a.max(b).max(0));
    if hi == 0 {
        10_000
    } else {
        ratio(lo, hi).unwrap_or(0)
    }
}

/// The `limit` members of `group` most like `customer`, best first (ties
/// by id, so the answer is stable).
pub fn similar(
    customer: u32,
    group: &Group,
    products: &BTreeMap<String, Buyers>,
    buying: impl Fn(u32) -> Buying,
    limit: usize,
) -> Vec<Similar> {
    let names: Vec<&String> = products.keys().collect();
    let own: Vec<usize> = products
        .values()
        .enumerate()
        .filter(|(_, b)| b.ever.contains(customer))
        .map(|(i, _)| i)
        .collect();
    // Each member's products, by index into `names`.
    let mut bought: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, b) in products.values().enumerate() {
        for m in &(&b.ever & &group.members) {
            bought.entry(m).or_default().push(i);
        }
    }
    let me = buying(customer);
    let none = Vec::new();
    let mut scored: Vec<Similar> = group
        .members
        .iter()
        .map(|m| {
            let theirs = bought.get(&m).unwrap_or(&none);
            let shared: Vec<usize> = theirs.iter().copied().filter(|i| own.contains(i)).collect();
            let union = own.len() + theirs.len() - shared.len();
            let jaccard = if union == 0 {
                10_000
            } else {
                ratio(shared.len() as i64, union as i64).unwrap_or(0)
            };
            let other = buying(m);
            let points = jaccard * 50
                + closeness(me.purchase_12m_fen, other.purchase_12m_fen) * 30
                + closeness(me.orders, other.orders) * 20;
            Similar {
                customer_id: i64::from(m),
                score: (points + 5_000) / 10_000,
                shared_products: shared.iter().map(|&i| names[i].clone()).collect(),
                purchase_12m_fen: other.purchase_12m_fen,
                orders: other.orders,
            }
        })
        .collect();
    scored.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    scored.truncate(limit);
    scored
}

/// Every group of one class, one industry and one size within `universe`
/// with at least [`MIN_PEERS`] + 1 members (enough to be evidence).
pub fn groups(
    classes: &[(Facet, RoaringBitmap)],
    industries: &[(Facet, RoaringBitmap)],
    sizes: &[(Facet, RoaringBitmap)],
    universe: &RoaringBitmap,
) -> Vec<Group> {
    let mut out = Vec::new();
    for (c, cs) in classes {
        let in_class = cs & universe;
        if in_class.len() <= MIN_PEERS {
            continue;
        }
        for (i, is) in industries {
            let in_industry = &in_class & is;
            if in_industry.len() <= MIN_PEERS {
                continue;
            }
            for (s, ss) in sizes {
                let members = &in_industry & ss;
                if members.len() > MIN_PEERS {
                    out.push(Group {
                        facets: vec![c.clone(), i.clone(), s.clone()],
                        members,
                    });
                }
            }
        }
    }
    out
}

/// One group where a product is suggested.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupOpportunity {
    pub facets: Vec<Facet>,
    /// The segment expression of the group.
    pub expression: String,
    pub members: u64,
    /// Members buying the product in the last 12 months.
    pub buyers: u64,
    /// `buyers / members`, 1/10000.
    pub share: i64,
    /// Members of the population who never bought it: the opportunities.
    pub customers: u64,
}

/// A product across the population: who buys it, and who does not but
/// would be suggested it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Opportunity {
    pub product: String,
    /// Customers of the population buying it in the last 12 months.
    pub buyers: u64,
    /// `buyers` / population, 1/10000.
    pub penetration: Option<i64>,
    /// Customers who never bought it in a group where at least the minimum
    /// share buy it.
    pub customers: u64,
    /// Those groups, most opportunities first.
    pub groups: Vec<GroupOpportunity>,
}

/// Per product, the opportunities over `groups` (of everyone: the
/// evidence) among `population` (whom the report is about), most
/// opportunities first; with each product's opportunity customers.
pub fn opportunities(
    population: &RoaringBitmap,
    groups: &[Group],
    products: &BTreeMap<String, Buyers>,
    min_share: i64,
) -> Vec<(Opportunity, RoaringBitmap)> {
    let mut out: Vec<(Opportunity, RoaringBitmap)> = products
        .iter()
        .map(|(product, b)| {
            let mut customers = RoaringBitmap::new();
            let mut found: Vec<GroupOpportunity> = groups
                .iter()
                .filter_map(|g| {
                    let members = g.members.len();
                    let buyers = b.recent.intersection_len(&g.members);
                    let share = ratio(buyers as i64, members as i64)?;
                    if share < min_share || buyers == 0 {
                        return None;
                    }
                    let open = &(&g.members - &b.ever) & population;
                    let n = open.len();
                    customers |= open;
                    (n > 0).then(|| GroupOpportunity {
                        facets: g.facets.clone(),
                        expression: g.expression(),
                        members,
                        buyers,
                        share,
                        customers: n,
                    })
                })
                .collect();
            found.sort_by(|a, b| {
                b.customers
                    .cmp(&a.customers)
                    .then_with(|| a.facets.cmp(&b.facets))
            });
            let buyers = b.recent.intersection_len(population);
            let o = Opportunity {
                product: product.clone(),
                buyers,
                penetration: ratio(buyers as i64, population.len() as i64),
                customers: customers.len(),
                groups: found,
            };
            (o, customers)
        })
        .collect();
    out.sort_by(|(a, _), (b, _)| {
        b.customers
            .cmp(&a.customers)
            .then_with(|| a.product.cmp(&b.product))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u32>) -> RoaringBitmap {
        ids.into_iter().collect()
    }

    fn facet(
        kind: FacetKind,
        field: &str,
        value: &str,
        ids: RoaringBitmap,
    ) -> (Facet, RoaringBitmap) {
        (
            Facet {
                kind,
                field: field.into(),
                value: value.into(),
            },
            ids,
        )
    }

    /// 1..=100: class 战略型 1..=50, industry 制造业 1..=30 and 51..=60,
    /// size 中型 1..=25.
    fn world() -> (RoaringBitmap, Vec<(Facet, RoaringBitmap)>) {
        let universe = set(1..=100);
        let facets = vec![
            facet(FacetKind::Size, "industry_size", "中型", set(1..=25)),
            facet(FacetKind::Class, "value_tier", "战略型", set(1..=50)),
            facet(
                FacetKind::Industry,
                "industry",
                "制造业",
                set((1..=30).chain(51..=60)),
            ),
        ];
        (universe, facets)
    }

    #[test]
    fn the_peer_group_is_the_narrowest_with_enough_others() {
        let (universe, facets) = world();
        // Customer 1: class ∩ industry ∩ size = 1..=25 → 24 others ≥ 20.
        let (g, widened) = peer_group(1, &facets, &universe);
        assert!(!widened);
        assert_eq!(g.members.len(), 24);
        assert!(!g.members.contains(1));
        assert_eq!(g.label(true), "战略型 · 制造业 · 中型");
        assert_eq!(
            g.expression(),
            "value_tier = 战略型 AND industry = 制造业 AND industry_size = 中型"
        );
        // Only 21 customers share all three: 20 others is still enough.
        let narrow = vec![
            facets[1].clone(),
            facets[2].clone(),
            facet(FacetKind::Size, "industry_size", "中型", set(1..=21)),
        ];
        let (g, widened) = peer_group(1, &narrow, &universe);
        assert_eq!((g.members.len(), widened), (20, false));
        // 20 share all three (19 others): size is dropped → 战略型 制造业 = 1..=30.
        let narrower = vec![
            facets[1].clone(),
            facets[2].clone(),
            facet(FacetKind::Size, "industry_size", "中型", set(1..=20)),
        ];
        let (g, widened) = peer_group(1, &narrower, &universe);
        assert!(widened);
        assert_eq!(g.label(true), "战略型 · 制造业");
        assert_eq!(g.members.len(), 29);
        // Nothing shared by enough: everyone else.
        let tiny = vec![facet(FacetKind::Class, "value_tier", "战略型", set(1..=5))];
        let (g, widened) = peer_group(1, &tiny, &universe);
        assert!(widened);
        assert_eq!(
            (g.label(false).as_str(), g.members.len()),
            ("all customers", 99)
        );
        assert_eq!(g.expression(), "");
    }

    fn products() -> BTreeMap<String, Buyers> {
        let mut p = BTreeMap::new();
        // 产品A: everyone in 2..=25 buys now; customer 1 never did.
        p.insert(
            "产品A".to_string(),
            Buyers {
                recent: set(2..=25),
                ever: set(2..=25),
            },
        );
        // 产品B: 7 of the 24 peers buy now (29.17 % < 30 %).
        p.insert(
            "产品B".to_string(),
            Buyers {
                recent: set(2..=8),
                ever: set(2..=8),
            },
        );
        // 产品C: 8 of 24 now (33.33 %), 2 more bought it long ago.
        p.insert(
            "产品C".to_string(),
            Buyers {
                recent: set((2..=9).chain(70..=79)),
                ever: set((2..=11).chain(70..=79)),
            },
        );
        // 产品D: customer 1 bought it before; never suggested to it.
        p.insert(
            "产品D".to_string(),
            Buyers {
                recent: set(1..=25),
                ever: set(1..=25),
            },
        );
        p
    }

    #[test]
    fn suggestions_are_what_enough_peers_buy_and_the_customer_never_did() {
        let (universe, facets) = world();
        let (g, _) = peer_group(1, &facets, &universe);
        let s = suggestions(1, &g, &products(), &universe, DEFAULT_MIN_SHARE);
        let names: Vec<&str> = s.iter().map(|s| s.product.as_str()).collect();
        assert_eq!(names, ["产品A", "产品C"]);
        assert_eq!((s[0].buyers, s[0].peers, s[0].share), (24, 24, 10_000));
        assert_eq!(
            (s[1].buyers, s[1].share, s[1].overall_share),
            (8, 3_333, Some(1_800))
        );
        assert_eq!(
            s[1].evidence_zh,
            "同类（战略型 · 制造业 · 中型）客户中 33% 近12个月购买 产品C（8/24 家）"
        );
        assert_eq!(
            s[1].evidence_en,
            "33 % of similar customers (战略型 · 制造业 · 中型) bought 产品C in the last 12 months (8 of 24)"
        );
        // At exactly the minimum share a product is suggested; just above, not.
        let at = suggestions(1, &g, &products(), &universe, 3_333);
        assert_eq!(at.len(), 2);
        let above = suggestions(1, &g, &products(), &universe, 3_334);
        assert_eq!(above.len(), 1);
        // Customer 2 has bought A, B, C and D: nothing to suggest.
        let (g2, _) = peer_group(2, &facets, &universe);
        assert!(suggestions(2, &g2, &products(), &universe, 1).is_empty());
    }

    #[test]
    fn similar_customers_share_products_and_buy_alike() {
        let (universe, facets) = world();
        let (g, _) = peer_group(2, &facets, &universe);
        // Customer 2 bought A, B, C, D; 3..=8 too (score 50 from products);
        // 9 bought A, C, D; 10..=11 A, C (long ago), D.
        let buying = |c: u32| Buying {
            purchase_12m_fen: if c == 2 || c == 5 { 100_000 } else { 50_000 },
            orders: if c <= 8 { 4 } else { 1 },
        };
        let s = similar(2, &g, &products(), buying, 3);
        assert_eq!(s.len(), 3);
        // 5: same products, same amount, same orders → 100.
        assert_eq!((s[0].customer_id, s[0].score), (5, 100));
        assert_eq!(s[0].shared_products, ["产品A", "产品B", "产品C", "产品D"]);
        // 3: same products and orders, half the amount → 50 + 15 + 20.
        assert_eq!((s[1].customer_id, s[1].score), (3, 85));
        assert_eq!((s[2].customer_id, s[2].score), (4, 85));
        // 9: 3 of 4 products, half the amount, a quarter of the orders.
        let all = similar(2, &g, &products(), buying, 100);
        let nine = all.iter().find(|s| s.customer_id == 9).unwrap();
        assert_eq!(
            nine.score,
            (7_500 * 50 + 5_000 * 30 + 2_500 * 20 + 5_000) / 10_000
        );
        assert!(all.iter().all(|s| s.customer_id != 2));
    }

    #[test]
    fn opportunities_count_the_non_buyers_of_groups_that_buy() {
        let (universe, facets) = world();
        let class = vec![facets[1].clone()];
        let industry = vec![facets[2].clone()];
        let size = vec![facets[0].clone()];
        let gs = groups(&class, &industry, &size, &universe);
        assert_eq!(gs.len(), 1);
        assert_eq!(gs[0].members.len(), 25);
        let o = opportunities(&universe, &gs, &products(), DEFAULT_MIN_SHARE);
        let by: BTreeMap<&str, &(Opportunity, RoaringBitmap)> =
            o.iter().map(|x| (x.0.product.as_str(), x)).collect();
        // 产品A: 24 of 25 buy; customer 1 is the one opportunity.
        assert_eq!(by["产品A"].0.customers, 1);
        assert_eq!(by["产品A"].1, set([1]));
        assert_eq!(by["产品A"].0.groups[0].share, 9_600);
        // 产品C: 8 of 25 = 32 %: those who never bought it (1, 12..=25).
        assert_eq!(by["产品C"].0.customers, 15);
        assert_eq!(by["产品C"].0.buyers, 18);
        assert_eq!(by["产品C"].0.penetration, Some(1_800));
        // 产品B: 7 of 25 = 28 %, under the minimum: no opportunity.
        assert_eq!(by["产品B"].0.customers, 0);
        assert!(by["产品B"].0.groups.is_empty());
        // 产品D: the whole group buys it.
        assert_eq!(by["产品D"].0.customers, 0);
        assert_eq!(o[0].0.product, "产品C");
        // A group of exactly MIN_PEERS members is too small to count.
        let small = vec![facet(FacetKind::Size, "industry_size", "中型", set(1..=20))];
        assert!(groups(&class, &industry, &small, &universe).is_empty());
    }
}
