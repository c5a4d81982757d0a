//! Evaluating a compiled scheme for a customer as of a date, and explaining
//! the result.

use super::facts::Facts;
use super::metric::{Measured, Metric};
use super::scheme::{Assign, ClassOf, Cond, Scheme};
use super::spec::label;
use super::value::{display, display_num, Unit, Value, ValueKind};
use crate::expr::CmpOp;
use crate::Lang;
use chrono::NaiveDate;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The values percentile indicators rank against: for each indicator that
/// another one ranks, every customer's value, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Population {
    sorted: BTreeMap<usize, Arc<Ranked>>,
}

/// One indicator's values, sorted, with every [`FENCE`]th value copied
/// out: a rank looks in the fences first (small enough to stay in cache),
/// then in one block, instead of twenty cache misses over a million values.
#[derive(Debug, PartialEq, Eq)]
pub struct Ranked {
    values: Vec<i64>,
    fences: Vec<i64>,
}

/// Values per block between fences.
const FENCE: usize = 64;

impl Ranked {
    /// From values sorted ascending.
    pub fn new(values: Vec<i64>) -> Ranked {
        debug_assert!(values.is_sorted());
        let fences = values.iter().step_by(FENCE).copied().collect();
        Ranked { values, fences }
    }

    /// How many values are ≤ `v`.
    fn at_most(&self, v: i64) -> usize {
        // Blocks that start at or below v; only the last of them can hold values above v.
        let blocks = self.fences.partition_point(|&f| f <= v);
        let Some(block) = blocks.checked_sub(1) else {
            return 0;
        };
        let start = block * FENCE;
        let end = self.values.len().min(start + FENCE);
        start + self.values[start..end].partition_point(|&x| x <= v)
    }
}

impl Population {
    /// Ranks nothing (for schemes without percentile indicators).
    pub const EMPTY: Population = Population {
        sorted: BTreeMap::new(),
    };

    /// Measures the ranked indicators over everyone (`facts`) as of `as_of`.
    pub fn build<'a>(
        scheme: &Scheme,
        facts: impl IntoIterator<Item = &'a Facts>,
        as_of: NaiveDate,
    ) -> Population {
        let mut builder = PopulationBuilder::new(scheme, as_of);
        facts.into_iter().for_each(|f| builder.add(f));
        builder.finish()
    }

    /// From each ranked indicator's values (shared with other schemes that rank them).
    pub(crate) fn from_ranked(sorted: BTreeMap<usize, Arc<Ranked>>) -> Population {
        Population { sorted }
    }

    /// Share (1/10000) of the population with a value strictly greater than `v`.
    pub fn share_above(&self, source: usize, v: i64) -> Option<i64> {
        let all = self.sorted.get(&source)?;
        let len = all.values.len();
        if len == 0 {
            return None;
        }
        let above = len - all.at_most(v);
        Some(above as i64 * 10_000 / len as i64)
    }
}

/// Builds a [`Population`] one customer at a time (for callers that read
/// customers in batches).
pub struct PopulationBuilder<'s> {
    scheme: &'s Scheme,
    as_of: NaiveDate,
    values: BTreeMap<usize, Vec<i64>>,
}

impl<'s> PopulationBuilder<'s> {
    pub fn new(scheme: &'s Scheme, as_of: NaiveDate) -> Self {
        let values = scheme
            .ranked_sources()
            .into_iter()
            .map(|s| (s, Vec::new()))
            .collect();
        PopulationBuilder {
            scheme,
            as_of,
            values,
        }
    }

    /// Whether the scheme ranks anything (else there is nothing to build).
    pub fn needed(&self) -> bool {
        !self.values.is_empty()
    }

    pub fn add(&mut self, f: &Facts) {
        for (&s, values) in self.values.iter_mut() {
            if let Value::Num(n) = self.scheme.indicators[s]
                .metric
                .measure(f, self.as_of)
                .value
            {
                values.push(n);
            }
        }
    }

    pub fn finish(self) -> Population {
        let sorted = self
            .values
            .into_iter()
            .map(|(source, mut v)| {
                v.sort_unstable();
                (source, Arc::new(Ranked::new(v)))
            })
            .collect();
        Population { sorted }
    }
}

/// One scheme's indicator values by indicator index: a plain slice, or
/// a view into a row of a [`MetricTable`](super::table::MetricTable).
pub trait IndicatorValues {
    fn at(&self, indicator: usize) -> &Value;
}

impl IndicatorValues for [Value] {
    fn at(&self, indicator: usize) -> &Value {
        &self[indicator]
    }
}

/// A score in hundredths as people read it: 9600 → "96.00".
pub fn score_text(hundredths: i64) -> String {
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Classes this evaluation may read: this scheme's class before, and other
/// schemes' classes as of the same date.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassContext<'a> {
    pub previous: Option<&'a str>,
    /// Classes of the schemes evaluated before this one: (scheme key, class key).
    pub others: Option<&'a [(&'a str, &'a str)]>,
}

/// Which part of the scheme decided the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "by", content = "index", rename_all = "snake_case")]
pub enum Fired {
    Rule(usize),
    Default,
    Band(usize),
}

/// A decision without the dimensions' levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub class: usize,
    /// Weighted score in hundredths (0–10000).
    pub score: i64,
    pub fired: Fired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub class: usize,
    /// The level of each dimension.
    pub levels: Vec<usize>,
    /// Weighted score in hundredths (0–10000).
    pub score: i64,
    pub fired: Fired,
}

impl Scheme {
    /// Indicators that percentile indicators rank.
    pub fn ranked_sources(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .indicators
            .iter()
            .filter_map(|i| match i.metric {
                Metric::Percentile { of } => Some(of),
                _ => None,
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every indicator's value for one customer.
    pub fn measure(&self, f: &Facts, as_of: NaiveDate, pop: &Population) -> Vec<Measured> {
        let mut out: Vec<Measured> = self
            .indicators
            .iter()
            .map(|i| i.metric.measure(f, as_of))
            .collect();
        for (i, ind) in self.indicators.iter().enumerate() {
            if let Metric::Percentile { of } = ind.metric {
                let v = out[of].value.num().and_then(|n| pop.share_above(of, n));
                out[i].value = v.map_or(Value::Missing, Value::Num);
            }
        }
        out
    }

    /// The class from measured values.
    pub fn decide<V: IndicatorValues + ?Sized>(
        &self,
        values: &V,
        ctx: ClassContext<'_>,
    ) -> Decision {
        let mut levels = Vec::with_capacity(self.dimensions.len());
        let verdict = self.decide_with(values, ctx, &mut levels);
        Decision {
            class: verdict.class,
            levels,
            score: verdict.score,
            fired: verdict.fired,
        }
    }

    /// [`decide`](Self::decide) with the dimensions' levels left in a
    /// buffer the caller reuses (a whole-base run decides millions of
    /// times and keeps only the verdict).
    pub fn decide_with<V: IndicatorValues + ?Sized>(
        &self,
        values: &V,
        ctx: ClassContext<'_>,
        levels: &mut Vec<usize>,
    ) -> Verdict {
        levels.clear();
        let mut score = 0i64;
        for d in &self.dimensions {
            let l = d
                .levels
                .iter()
                .position(|l| {
                    l.when
                        .as_ref()
                        .is_none_or(|c| self.holds(c, values, levels, ctx))
                })
                .unwrap_or(d.levels.len().saturating_sub(1));
            score += i64::from(d.weight) * i64::from(d.levels.get(l).map_or(0, |x| x.score));
            levels.push(l);
        }
        let (class, fired) = match &self.assign {
            Assign::Rules { rules, default } => match rules
                .iter()
                .position(|r| self.holds(&r.when, values, levels, ctx))
            {
                Some(i) => (rules[i].class, Fired::Rule(i)),
                None => (*default, Fired::Default),
            },
            Assign::Score { bands } => {
                let i = bands
                    .iter()
                    .position(|(min, _)| score >= *min)
                    .unwrap_or(bands.len().saturating_sub(1));
                (bands.get(i).map_or(0, |b| b.1), Fired::Band(i))
            }
        };
        Verdict {
            class,
            score,
            fired,
        }
    }

    /// A decision's weighted score, for schemes that have weighted dimensions.
    pub fn weighted_score(&self, score: i64) -> Option<i64> {
        (!self.dimensions.is_empty()).then_some(score)
    }

    pub fn evaluate(
        &self,
        f: &Facts,
        as_of: NaiveDate,
        pop: &Population,
        ctx: ClassContext<'_>,
    ) -> Decision {
        let values: Vec<Value> = self
            .measure(f, as_of, pop)
            .into_iter()
            .map(|m| m.value)
            .collect();
        self.decide(values.as_slice(), ctx)
    }

    fn holds<V: IndicatorValues + ?Sized>(
        &self,
        c: &Cond,
        values: &V,
        levels: &[usize],
        ctx: ClassContext<'_>,
    ) -> bool {
        match c {
            Cond::And(xs) => xs.iter().all(|x| self.holds(x, values, levels, ctx)),
            Cond::Or(xs) => xs.iter().any(|x| self.holds(x, values, levels, ctx)),
            Cond::Not(x) => !self.holds(x, values, levels, ctx),
            Cond::Value { ind, op, rhs } => compare(values.at(*ind), *op, rhs),
            Cond::ValueIn {
                ind,
                values: vs,
                negated,
            } => {
                let v = values.at(*ind);
                v != &Value::Missing && vs.iter().any(|x| compare(v, CmpOp::Eq, x)) != *negated
            }
            Cond::Flag(ind) => values.at(*ind) == &Value::Bool(true),
            // Levels compare by score: `>= 中` is 中 or any level scoring at least as much.
            Cond::Level { dim, op, level } => levels.get(*dim).is_some_and(|&l| {
                let ls = &self.dimensions[*dim].levels;
                op.holds(ls[l].score.cmp(&ls[*level].score))
            }),
            Cond::LevelIn {
                dim,
                levels: ls,
                negated,
            } => levels.get(*dim).is_some_and(|l| ls.contains(l) != *negated),
            Cond::Class { of, op, class } => {
                let current = class_of(of, ctx).unwrap_or("");
                (current == class) == (*op == CmpOp::Eq)
            }
            Cond::ClassIn {
                of,
                classes,
                negated,
            } => {
                let current = class_of(of, ctx).unwrap_or("");
                classes.iter().any(|c| c == current) != *negated
            }
        }
    }
}

fn class_of<'a>(of: &ClassOf, ctx: ClassContext<'a>) -> Option<&'a str> {
    match of {
        ClassOf::Previous => ctx.previous,
        ClassOf::Scheme(k) => ctx
            .others
            .and_then(|o| o.iter().find(|(scheme, _)| scheme == k))
            .map(|(_, class)| *class),
    }
}

/// A comparison; a missing value satisfies nothing but `= 空`.
fn compare(v: &Value, op: CmpOp, rhs: &Value) -> bool {
    let ordering = match (v, rhs) {
        (Value::Missing, Value::Missing) => return op == CmpOp::Eq,
        (_, Value::Missing) => return op == CmpOp::Ne,
        (Value::Missing, _) => return false,
        (Value::Num(a), Value::Num(b)) => a.cmp(b),
        (Value::Date(a), Value::Date(b)) => a.cmp(b),
        (Value::Text(a), Value::Text(b)) => {
            if a == b {
                Ordering::Equal
            } else {
                return op == CmpOp::Ne;
            }
        }
        (Value::Bool(a), Value::Bool(b)) => return (a == b) == (op == CmpOp::Eq),
        // A list "equals" a value it contains.
        (Value::List(xs), Value::Text(b)) => return xs.contains(b) == (op == CmpOp::Eq),
        _ => return false,
    };
    op.holds(ordering)
}

/// Why a customer is in its class, for people and for the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub scheme: String,
    pub scheme_name: String,
    pub as_of: NaiveDate,
    pub class: String,
    /// The class in the reader's language (the key in Chinese).
    pub class_name: String,
    #[serde(flatten)]
    pub fired: Fired,
    /// The rule or band that decided, as written.
    pub rule: String,
    /// Weighted score 0–100 with two decimals, when the scheme has dimensions.
    pub score: Option<String>,
    pub indicators: Vec<IndicatorLine>,
    pub dimensions: Vec<DimensionLine>,
    /// The smallest single changes that would give another class, nearest first.
    pub nearest: Vec<Change>,
    /// One sentence.
    pub summary: String,
}

impl Explanation {
    /// Keeps from the reader the values read from customer fields they may
    /// not see (`sees` false for the field's JSON name): the indicator says
    /// so instead of its value, and the nearest changes that would start
    /// from it are left out.
    pub fn withhold(&mut self, sees: impl Fn(&str) -> bool, lang: Lang) {
        let mut kept_from = Vec::new();
        for line in &mut self.indicators {
            if line.reads.as_deref().is_some_and(|f| !sees(f)) {
                line.value = Value::Missing;
                line.shown = label("（无权查看）", "(not shown to your role)", lang).to_string();
                line.note = None;
                kept_from.push(line.key.clone());
            }
        }
        self.nearest.retain(|c| !kept_from.contains(&c.indicator));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndicatorLine {
    pub key: String,
    pub name: String,
    pub value: Value,
    pub shown: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The field the value was read from, if any (a customer's business
    /// field by JSON name, a record's by rights key such as `order.amount`,
    /// or `cf.KEY`): a reader kept from that field is kept from the value
    /// too.
    #[serde(skip)]
    pub reads: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DimensionLine {
    pub key: String,
    pub name: String,
    pub weight: u32,
    pub level: String,
    pub score: u32,
    /// The condition of the level, as written (None: the rest).
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub indicator: String,
    pub from: String,
    pub to: String,
    pub class: String,
    pub text: String,
}

impl Scheme {
    pub fn explain(
        &self,
        f: &Facts,
        as_of: NaiveDate,
        pop: &Population,
        ctx: ClassContext<'_>,
        lang: Lang,
    ) -> Explanation {
        let zh = lang == Lang::Zh;
        let measured = self.measure(f, as_of, pop);
        let values: Vec<Value> = measured.iter().map(|m| m.value.clone()).collect();
        let d = self.decide(values.as_slice(), ctx);
        let indicators = self
            .indicators
            .iter()
            .zip(&measured)
            .map(|(ind, m)| {
                // Say which source an order sum with a stand-in used.
                let note = match (&ind.metric, m.used_fallback) {
                    (
                        Metric::OrderSum {
                            fallback: Some(_), ..
                        },
                        true,
                    ) => Some(label(
                        "没有订单记录，使用申报的年采购额",
                        "no orders on record: the declared annual purchase stands in",
                        lang,
                    )),
                    (
                        Metric::OrderSum {
                            fallback: Some(_), ..
                        },
                        false,
                    ) => Some(label("按订单计算", "derived from orders", lang)),
                    _ => None,
                }
                .map(str::to_string);
                IndicatorLine {
                    key: ind.key.clone(),
                    name: label(&ind.name, &ind.name_en, lang).to_string(),
                    value: m.value.clone(),
                    shown: display(&m.value, ind.kind, lang),
                    note,
                    reads: self.field_read(ind, m.used_fallback),
                }
            })
            .collect();
        let dimensions = self
            .dimensions
            .iter()
            .zip(&d.levels)
            .map(|(dim, &l)| {
                let level = &dim.levels[l];
                DimensionLine {
                    key: dim.key.clone(),
                    name: label(&dim.name, &dim.name_en, lang).to_string(),
                    weight: dim.weight,
                    level: level.key.clone(),
                    score: level.score,
                    when: level.text.clone(),
                }
            })
            .collect();
        let class = self.classes[d.class].key.clone();
        let class_name = label(&class, &self.classes[d.class].name_en, lang).to_string();
        let rule = match (&self.assign, d.fired) {
            (Assign::Rules { rules, .. }, Fired::Rule(i)) => rules[i].text.clone(),
            (Assign::Rules { .. }, _) => if zh {
                "其余客户（默认类别）"
            } else {
                "everyone else (default class)"
            }
            .to_string(),
            (Assign::Score { bands }, Fired::Band(i)) => {
                let min = bands.get(i).map_or(0, |b| b.0 / 100);
                if zh {
                    format!("得分 ≥ {min}")
                } else {
                    format!("score ≥ {min}")
                }
            }
            (Assign::Score { .. }, _) => String::new(),
        };
        let score = self.weighted_score(d.score).map(score_text);
        let nearest = self.nearest_changes(&values, &d, ctx, lang);
        let summary = if zh {
            format!(
                "截至 {as_of}，{}：{class}（{rule}）",
                self.display_name(lang)
            )
        } else {
            format!(
                "As of {as_of}, {}: {class_name} ({rule})",
                self.display_name(lang)
            )
        };
        Explanation {
            scheme: self.key.clone(),
            scheme_name: self.display_name(lang).to_string(),
            as_of,
            class,
            class_name,
            fired: d.fired,
            rule,
            score,
            indicators,
            dimensions,
            nearest,
            summary,
        }
    }

    /// The field (see [`IndicatorLine::reads`]) an indicator's value came
    /// from: a field itself, a date field counted from, the declared
    /// purchase standing in for orders, the orders' amounts or product
    /// lines, the interactions' satisfaction, or what a percentile ranks.
    fn field_read(&self, ind: &super::scheme::Indicator, used_fallback: bool) -> Option<String> {
        use super::metric::DateRef;
        match &ind.metric {
            Metric::Field(f)
            | Metric::MonthsUntil(f)
            | Metric::DaysSince(DateRef::Field(f))
            | Metric::MonthsSince(DateRef::Field(f)) => f.rights_field(),
            Metric::OrderSum {
                fallback: Some(f), ..
            } if used_fallback => f.rights_field(),
            Metric::Percentile { of } => self
                .indicators
                .get(*of)
                .and_then(|base| self.field_read(base, false)),
            Metric::OrderSum { .. }
            | Metric::OrderAvg { .. }
            | Metric::OrderMax { .. }
            | Metric::Growth { .. }
            | Metric::GrowthStreak => Some("order.amount".to_string()),
            Metric::OrderLines { .. } => Some("order.product_line".to_string()),
            Metric::Satisfaction { .. } => Some("interaction.satisfaction".to_string()),
            _ => None,
        }
    }

    /// For each numeric indicator, the values just across every threshold
    /// it is compared with; the smallest move that changes the class wins.
    fn nearest_changes(
        &self,
        values: &[Value],
        current: &Decision,
        ctx: ClassContext<'_>,
        lang: Lang,
    ) -> Vec<Change> {
        let mut thresholds: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
        let mut collect = |c: &Cond| collect_thresholds(c, &mut thresholds);
        for d in &self.dimensions {
            d.levels
                .iter()
                .filter_map(|l| l.when.as_ref())
                .for_each(&mut collect);
        }
        if let Assign::Rules { rules, .. } = &self.assign {
            rules.iter().for_each(|r| collect(&r.when));
        }
        // (relative distance, change): per target class keep the nearest.
        let mut best: BTreeMap<usize, (u128, Change)> = BTreeMap::new();
        for (&ind, ts) in &thresholds {
            let ValueKind::Num(unit) = self.indicators[ind].kind else {
                continue;
            };
            let Some(now) = values[ind].num() else {
                continue;
            };
            let step = unit.step();
            let mut candidates: Vec<i64> = ts
                .iter()
                .flat_map(|&t| [t - step, t, t + step])
                .filter(|&c| c != now)
                .collect();
            candidates.sort_unstable_by_key(|&c| (c - now).unsigned_abs());
            candidates.dedup();
            let mut trial = values.to_vec();
            for c in candidates {
                trial[ind] = Value::Num(c);
                let d = self.decide(trial.as_slice(), ctx);
                if d.class == current.class {
                    continue;
                }
                // Relative to the current size, so 8万 on 92万 is nearer than 1 complaint on 0.
                let distance = u128::from((c - now).unsigned_abs()) * 1_000_000
                    / u128::from(now.unsigned_abs().max(unit.scale() as u64).max(1));
                if best.get(&d.class).is_none_or(|(b, _)| distance < *b) {
                    let change = self.describe_change(ind, unit, now, c, d.class, lang);
                    best.insert(d.class, (distance, change));
                }
                break;
            }
        }
        let mut out: Vec<(u128, Change)> = best.into_values().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.class.cmp(&b.1.class)));
        out.into_iter().take(3).map(|(_, c)| c).collect()
    }

    fn describe_change(
        &self,
        ind: usize,
        unit: Unit,
        from: i64,
        to: i64,
        class: usize,
        lang: Lang,
    ) -> Change {
        let zh = lang == Lang::Zh;
        let i = &self.indicators[ind];
        let name = label(&i.name, &i.name_en, lang);
        let class_key = self.classes[class].key.clone();
        let (from_s, to_s) = (display_num(from, unit, lang), display_num(to, unit, lang));
        let purchase = matches!(i.metric, Metric::OrderSum { .. });
        let text = match (purchase && to > from, zh) {
            (true, true) => format!(
                "再采购 {} → {class_key}",
                display_num(to - from, unit, lang)
            ),
            (true, false) => format!(
                "{} more purchases → {class_key}",
                display_num(to - from, unit, lang)
            ),
            (false, true) => format!("{name}从 {from_s} 变为 {to_s} → {class_key}"),
            (false, false) => format!("{name} from {from_s} to {to_s} → {class_key}"),
        };
        Change {
            indicator: i.key.clone(),
            from: from_s,
            to: to_s,
            class: class_key,
            text,
        }
    }
}

fn collect_thresholds(c: &Cond, out: &mut BTreeMap<usize, Vec<i64>>) {
    match c {
        Cond::And(xs) | Cond::Or(xs) => xs.iter().for_each(|x| collect_thresholds(x, out)),
        Cond::Not(x) => collect_thresholds(x, out),
        Cond::Value {
            ind,
            rhs: Value::Num(t),
            ..
        } => out.entry(*ind).or_default().push(*t),
        Cond::ValueIn { ind, values, .. } => out
            .entry(*ind)
            .or_default()
            .extend(values.iter().filter_map(Value::num)),
        _ => {}
    }
}

#[cfg(test)]
mod ranked_tests {
    use super::Ranked;
    use proptest::prelude::*;

    proptest! {
        /// The fenced search counts exactly what a plain binary search does,
        /// duplicates and block edges included.
        #[test]
        fn counts_like_a_binary_search(
            mut values in proptest::collection::vec(-50i64..50, 0..400),
            probes in proptest::collection::vec(-60i64..60, 1..20),
        ) {
            values.sort_unstable();
            let ranked = Ranked::new(values.clone());
            for v in probes.into_iter().chain([i64::MIN, i64::MAX]) {
                prop_assert_eq!(ranked.at_most(v), values.partition_point(|&x| x <= v));
            }
        }
    }
}
