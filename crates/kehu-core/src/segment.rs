//! Segment queries: the condition language of [`crate::expr`] over tags,
//! classes and customer fields, resolved into a [`Plan`] of atoms and
//! evaluated over bitmaps of customer ids.
//!
//! ```text
//! 华东 AND 战略型 AND NOT 投诉客户
//! 行为标签 AND (region = 华南 OR 年采购额 >= 50万) AND NOT 风险标签/付款延迟
//! ```
//!
//! A bare name is a tag (matching its whole subtree), a class of some
//! scheme, or a value of a field (a sales region, province or industry);
//! when it could be more than one, the error lists how to say which.
//! Comparisons name a field (`sales_region`, `区域`, `年采购额` …), a scheme
//! (`value_tier = 战略型`) or `tag` (`tag = 高频`). A compiled segment
//! keeps its text with tags written as `#ID` ([`Compiled::stable`]), so
//! renaming or merging a tag never breaks a saved segment.

use crate::classify::value::{literal_value, Unit, Value, ValueKind};
use crate::error::{Lang, Reason, ValidationErrors};
use crate::expr::{self, CmpOp, Expr, Literal, Name, ParseError, Span};
use crate::tags::{Catalogue, Unresolved};
use crate::text::clean;
use chrono::NaiveDate;
use roaring::RoaringBitmap;
use std::borrow::Cow;

/// How a field's values compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentFieldKind {
    /// Equality and lists only.
    Text,
    Number(Unit),
    Date,
}

/// A customer field usable in segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentField {
    /// The name scripts use; for a column field also the column (a trusted SQL identifier).
    pub key: &'static str,
    pub kind: SegmentFieldKind,
    /// Other names people write for it.
    pub aliases: &'static [&'static str],
    /// None: a column of `customers`; else an aggregate of recent records.
    pub window: Option<WindowAgg>,
}

/// An aggregate of a customer's records over the last `days` days, today
/// included (a window that slides every day: computed, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowAgg {
    /// Sum of order amounts (fen).
    Purchase { days: u32 },
    /// Number of orders.
    Orders { days: u32 },
    /// Number of interactions, of one kind or of any.
    Interactions {
        days: u32,
        kind: Option<crate::interaction::InteractionKind>,
    },
}

impl WindowAgg {
    pub fn days(self) -> u32 {
        match self {
            WindowAgg::Purchase { days }
            | WindowAgg::Orders { days }
            | WindowAgg::Interactions { days, .. } => days,
        }
    }

    /// The first day inside the window ending `today`.
    pub fn first_day(self, today: NaiveDate) -> NaiveDate {
        today - chrono::Days::new(u64::from(self.days().saturating_sub(1)))
    }

    /// The aggregate for one customer as of `today` (records after it ignored).
    pub fn value(self, f: &crate::classify::Facts, today: NaiveDate) -> i64 {
        let from = self.first_day(today);
        let inside = |d: NaiveDate| d >= from && d <= today;
        match self {
            WindowAgg::Purchase { .. } => f
                .orders
                .iter()
                .filter(|o| inside(o.on))
                .map(|o| o.amount_fen)
                .sum(),
            WindowAgg::Orders { .. } => f.orders.iter().filter(|o| inside(o.on)).count() as i64,
            WindowAgg::Interactions { kind, .. } => f
                .interactions
                .iter()
                .filter(|i| inside(i.on) && kind.is_none_or(|k| i.kind == k))
                .count() as i64,
        }
    }
}

const fn field(
    key: &'static str,
    kind: SegmentFieldKind,
    aliases: &'static [&'static str],
) -> SegmentField {
    SegmentField {
        key,
        kind,
        aliases,
        window: None,
    }
}

const fn window(
    key: &'static str,
    unit: Unit,
    aliases: &'static [&'static str],
    agg: WindowAgg,
) -> SegmentField {
    SegmentField {
        key,
        kind: SegmentFieldKind::Number(unit),
        aliases,
        window: Some(agg),
    }
}

use crate::interaction::InteractionKind as IK;

use SegmentFieldKind as K;

pub const SEGMENT_FIELDS: &[SegmentField] = &[
    field("industry", K::Text, &["行业", "所属行业"]),
    field("province", K::Text, &["省份"]),
    field("city", K::Text, &["城市"]),
    field("sales_region", K::Text, &["区域", "销售区域", "region"]),
    field("status", K::Text, &["状态"]),
    field("source_channel", K::Text, &["来源", "来源渠道"]),
    field("team", K::Text, &["团队"]),
    field("owner_id", K::Number(Unit::Count), &["负责人"]),
    field("employees", K::Number(Unit::Count), &["员工数", "企业规模"]),
    field(
        "annual_revenue_fen",
        K::Number(Unit::Fen),
        &["年营收", "annual_revenue"],
    ),
    field(
        "declared_annual_purchase_fen",
        K::Number(Unit::Fen),
        &["申报年采购额", "declared_annual_purchase"],
    ),
    field(
        "purchase_12m_fen",
        K::Number(Unit::Fen),
        &["年采购额", "近12个月采购额", "annual_purchase"],
    ),
    field("order_count", K::Number(Unit::Count), &["订单数"]),
    field(
        "complaints_365d",
        K::Number(Unit::Count),
        &["投诉次数", "complaints"],
    ),
    field("founded_on", K::Date, &["成立日期"]),
    field(
        "cooperation_start_on",
        K::Date,
        &["合作起始时间", "合作开始日期"],
    ),
    field("last_order_on", K::Date, &["最近下单日期"]),
    field(
        "p_alive",
        K::Number(Unit::Ratio),
        &["活跃概率", "存活概率", "P(alive)"],
    ),
    field(
        "expected_orders_90d",
        K::Number(Unit::Number),
        &["预计90天订单数", "expected_orders"],
    ),
    field(
        "clv_fen",
        K::Number(Unit::Fen),
        &["客户终身价值", "CLV", "clv"],
    ),
    field("last_interaction_on", K::Date, &["最近互动日期"]),
    window(
        "purchase_30d_fen",
        Unit::Fen,
        &["近30天采购额", "purchase_30d"],
        WindowAgg::Purchase { days: 30 },
    ),
    window(
        "purchase_90d_fen",
        Unit::Fen,
        &["近90天采购额", "purchase_90d"],
        WindowAgg::Purchase { days: 90 },
    ),
    window(
        "orders_90d",
        Unit::Count,
        &["近90天订单数"],
        WindowAgg::Orders { days: 90 },
    ),
    window(
        "web_visits_7d",
        Unit::Count,
        &["近7天访问次数", "每周访问次数", "web_visits_week"],
        WindowAgg::Interactions {
            days: 7,
            kind: Some(IK::WebVisit),
        },
    ),
    window(
        "web_visits_30d",
        Unit::Count,
        &["近30天访问次数"],
        WindowAgg::Interactions {
            days: 30,
            kind: Some(IK::WebVisit),
        },
    ),
    window(
        "interactions_30d",
        Unit::Count,
        &["近30天互动次数"],
        WindowAgg::Interactions {
            days: 30,
            kind: None,
        },
    ),
];

/// Whether a plan reads a windowed aggregate (the index computes those on demand).
pub fn reads_windows(plan: &Plan) -> bool {
    plan.atoms().iter().any(|a| {
        matches!(a, Atom::Range { field, .. } if segment_field(field).is_some_and(|f| f.window.is_some()))
    })
}

/// The text fields whose values a bare name may stand for (华东, 浙江, 制造业).
const VALUE_FIELDS: &[&str] = &["sales_region", "province", "industry"];

pub fn segment_field(name: &str) -> Option<&'static SegmentField> {
    let key = clean(name).to_lowercase();
    SEGMENT_FIELDS
        .iter()
        .find(|f| f.key == key || f.aliases.iter().any(|a| a.to_lowercase() == key))
}

/// A date as the integer the index and comparisons use (days since 0001-01-01).
pub fn day_number(d: NaiveDate) -> i64 {
    use chrono::Datelike;
    i64::from(d.num_days_from_ce())
}

/// The date of a [`day_number`].
pub fn day_date(day: i64) -> Option<NaiveDate> {
    i32::try_from(day)
        .ok()
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

/// One condition on one customer, answered by a bitmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Atom {
    /// Carries the tag or any tag below it (`tags`: the subtree).
    Tag { tag: i64, tags: Vec<i64> },
    /// Is in `class` of `scheme`.
    Class { scheme: String, class: String },
    /// A text field equal to one of `values`.
    Text {
        field: &'static str,
        values: Vec<String>,
    },
    /// A number (or date as [`day_number`]) compared with `value`; a
    /// missing value never compares. `op` is never `Ne` (that is NOT `Eq`).
    Range {
        field: &'static str,
        op: CmpOp,
        value: i64,
    },
}

/// A segment as set operations over atoms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    Atom(Atom),
}

impl Plan {
    /// Every atom, in order of appearance.
    pub fn atoms(&self) -> Vec<&Atom> {
        fn walk<'p>(p: &'p Plan, out: &mut Vec<&'p Atom>) {
            match p {
                Plan::And(xs) | Plan::Or(xs) => xs.iter().for_each(|x| walk(x, out)),
                Plan::Not(x) => walk(x, out),
                Plan::Atom(a) => out.push(a),
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

/// What names can mean: the tag catalogue and every scheme's classes.
pub struct Vocabulary<'a> {
    pub tags: &'a Catalogue,
    pub schemes: &'a [SchemeClasses],
}

/// A scheme's key, names and classes.
#[derive(Debug, Clone)]
pub struct SchemeClasses {
    pub key: String,
    pub name: String,
    pub classes: Vec<String>,
}

/// Known values of the fields a bare name may stand for.
fn known_values(field: &str) -> Vec<&'static str> {
    match field {
        "sales_region" => crate::region::SALES_REGIONS.to_vec(),
        "province" => crate::region::PROVINCES.iter().map(|(p, _)| *p).collect(),
        "industry" => crate::industry::PRESET_INDUSTRIES.to_vec(),
        _ => Vec::new(),
    }
}

/// A parsed and resolved segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub plan: Plan,
    /// The text as written with every tag reference as `#ID`: what is stored.
    pub stable: String,
}

/// Why a segment cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentError {
    /// Character position (from 0).
    pub at: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Syntax(ParseError),
    /// Not a tag, class, field or field value.
    UnknownName(String),
    /// Several things answer to the name: how to write each.
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
    UnknownTag(String),
    UnknownClass {
        scheme: String,
        class: String,
        allowed: Vec<String>,
    },
    /// A comparison on something that is not a field, scheme or `tag`.
    NotComparable(String),
    /// `<`, `>` … on text, a class or a tag.
    OrderOnText {
        name: String,
    },
    BadValue {
        name: String,
        expected_zh: &'static str,
    },
}

impl SegmentError {
    fn at(span: Span, problem: Problem) -> SegmentError {
        SegmentError {
            at: span.start,
            problem,
        }
    }

    pub fn code(&self) -> &'static str {
        match &self.problem {
            Problem::Syntax(_) => "segment_syntax",
            Problem::UnknownName(_) => "segment_unknown_name",
            Problem::Ambiguous { .. } => "segment_ambiguous_name",
            Problem::UnknownTag(_) => "segment_unknown_tag",
            Problem::UnknownClass { .. } => "segment_unknown_class",
            Problem::NotComparable(_) => "segment_not_comparable",
            Problem::OrderOnText { .. } => "segment_order_on_text",
            Problem::BadValue { .. } => "segment_bad_value",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::Zh;
        let pos = self.at + 1;
        match &self.problem {
            Problem::Syntax(e) => e.message(lang),
            Problem::UnknownName(n) => {
                if zh {
                    format!("第 {pos} 个字符处的“{n}”不是已知的标签、分类、字段或字段值")
                } else {
                    format!(
                        "“{n}” at character {pos} is not a known tag, class, field or field value"
                    )
                }
            }
            Problem::Ambiguous { name, candidates } => {
                if zh {
                    format!(
                        "第 {pos} 个字符处的“{name}”有多种含义，请写成其中之一：{}",
                        candidates.join("；")
                    )
                } else {
                    format!(
                        "“{name}” at character {pos} could mean several things; write one of: {}",
                        candidates.join("; ")
                    )
                }
            }
            Problem::UnknownTag(n) => {
                if zh {
                    format!("第 {pos} 个字符处的标签“{n}”不存在")
                } else {
                    format!("the tag “{n}” at character {pos} does not exist")
                }
            }
            Problem::UnknownClass {
                scheme,
                class,
                allowed,
            } => {
                if zh {
                    format!(
                        "第 {pos} 个字符处：方案 {scheme} 没有分类“{class}”（可选：{}）",
                        allowed.join("、")
                    )
                } else {
                    format!(
                        "at character {pos}: scheme {scheme} has no class “{class}” (one of: {})",
                        allowed.join(", ")
                    )
                }
            }
            Problem::NotComparable(n) => {
                if zh {
                    format!("第 {pos} 个字符处的“{n}”不是可比较的字段、分类方案或 tag")
                } else {
                    format!("“{n}” at character {pos} is not a field, a scheme or tag, so it cannot be compared")
                }
            }
            Problem::OrderOnText { name } => {
                if zh {
                    format!("第 {pos} 个字符处：“{name}”只能用 =、!= 或 IN 比较")
                } else {
                    format!("at character {pos}: “{name}” compares only with =, != or IN")
                }
            }
            Problem::BadValue { name, expected_zh } => {
                if zh {
                    format!("第 {pos} 个字符处的值不适合“{name}”：应为{expected_zh}")
                } else {
                    format!(
                        "the value at character {pos} does not fit “{name}”: expected {}",
                        expected_en(expected_zh)
                    )
                }
            }
        }
    }

    /// As a validation error of `field` (problem+json names it).
    pub fn into_validation(self, field: &str) -> ValidationErrors {
        ValidationErrors::single(
            field,
            Reason::Rule {
                code: self.code(),
                zh: self.message(Lang::Zh),
                en: self.message(Lang::En),
            },
        )
    }
}

fn expected_en(zh: &str) -> &'static str {
    match zh {
        "金额，例如 50万 或 120000元" => "an amount, e.g. 50万 or 120000元",
        "整数" => "a whole number",
        "日期，例如 2024-03-12" => "a date, e.g. 2024-03-12",
        _ => "another kind of value",
    }
}

/// Parses and resolves a segment.
pub fn compile(src: &str, vocab: &Vocabulary<'_>) -> Result<Compiled, SegmentError> {
    let expr = expr::parse(src).map_err(|e| SegmentError {
        at: e.at,
        problem: Problem::Syntax(e),
    })?;
    let mut c = Compiler {
        vocab,
        rewrites: Vec::new(),
    };
    let plan = c.plan(&expr)?;
    Ok(Compiled {
        plan,
        stable: rewrite(src, &mut c.rewrites),
    })
}

/// A stored segment's text for people: `#ID` tag references replaced by
/// each tag's shortest current reference (a tag gone is left as `#ID`).
pub fn display(stable: &str, tags: &Catalogue) -> String {
    let Ok(expr) = expr::parse(stable) else {
        return stable.to_string();
    };
    let mut rewrites = Vec::new();
    let mut visit = |text: &str, span: Span| {
        if let Some(id) = text.strip_prefix('#').and_then(|d| d.parse::<i64>().ok()) {
            if let Some(cur) = tags.current(id) {
                // Names and paths are word characters only: never quoted.
                rewrites.push((span, tags.shortest_reference(cur)));
            }
        }
    };
    walk_references(&expr, &mut visit);
    rewrite(stable, &mut rewrites)
}

/// Calls `f` on every name and every `tag = …` value of `e`.
fn walk_references(e: &Expr, f: &mut impl FnMut(&str, Span)) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| walk_references(x, f)),
        Expr::Not(x) => walk_references(x, f),
        Expr::Name(n) => f(&n.text, n.span),
        Expr::Compare { name, value, .. } if is_tag_word(&name.text) => {
            f(&value.as_text(), value.span)
        }
        Expr::In { name, values, .. } if is_tag_word(&name.text) => {
            values.iter().for_each(|v| f(&v.as_text(), v.span))
        }
        _ => {}
    }
}

/// `src` with each span replaced (spans in characters, non-overlapping).
fn rewrite(src: &str, rewrites: &mut [(Span, String)]) -> String {
    rewrites.sort_by_key(|(s, _)| s.start);
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut at = 0;
    for (span, text) in rewrites.iter() {
        out.extend(&chars[at..span.start]);
        out.push_str(text);
        at = span.end;
    }
    out.extend(&chars[at.min(chars.len())..]);
    out
}

fn is_tag_word(name: &str) -> bool {
    matches!(clean(name).to_lowercase().as_str(), "tag" | "标签")
}

struct Compiler<'v, 'a> {
    vocab: &'v Vocabulary<'a>,
    rewrites: Vec<(Span, String)>,
}

/// What a bare name could mean.
enum Meaning {
    Tag(i64),
    Class { scheme: String, class: String },
    Value { field: &'static str, value: String },
}

impl Compiler<'_, '_> {
    fn plan(&mut self, e: &Expr) -> Result<Plan, SegmentError> {
        Ok(match e {
            Expr::And(xs) => Plan::And(xs.iter().map(|x| self.plan(x)).collect::<Result<_, _>>()?),
            Expr::Or(xs) => Plan::Or(xs.iter().map(|x| self.plan(x)).collect::<Result<_, _>>()?),
            Expr::Not(x) => Plan::Not(Box::new(self.plan(x)?)),
            Expr::Name(n) => self.bare(n)?,
            Expr::Compare { name, op, value } => self.compare(name, *op, value)?,
            Expr::In {
                name,
                values,
                negated,
            } => {
                let parts = values
                    .iter()
                    .map(|v| self.compare(name, CmpOp::Eq, v))
                    .collect::<Result<Vec<_>, _>>()?;
                let any = match parts.len() {
                    1 => parts.into_iter().next().expect("one"),
                    _ => Plan::Or(parts),
                };
                if *negated {
                    Plan::Not(Box::new(any))
                } else {
                    any
                }
            }
        })
    }

    fn tag_atom(&mut self, id: i64, span: Span) -> Plan {
        self.rewrites.push((span, format!("#{id}")));
        Plan::Atom(Atom::Tag {
            tag: id,
            tags: self.vocab.tags.subtree(id),
        })
    }

    fn bare(&mut self, n: &Name) -> Result<Plan, SegmentError> {
        let text = clean(&n.text);
        if text.starts_with('#') || text.contains(crate::tags::PATH_SEPARATOR) {
            return match self.vocab.tags.resolve(&text) {
                Ok(id) => Ok(self.tag_atom(id, n.span)),
                Err(Unresolved::NotFound) => {
                    Err(SegmentError::at(n.span, Problem::UnknownTag(text)))
                }
                Err(Unresolved::Ambiguous(paths)) => Err(SegmentError::at(
                    n.span,
                    Problem::Ambiguous {
                        name: text,
                        candidates: paths,
                    },
                )),
            };
        }
        // SCHEME.CLASS
        if let Some((scheme, class)) = text.split_once('.') {
            if let Some(s) = self.scheme(scheme) {
                return self.class_atom(s, class, n.span);
            }
        }
        let mut meanings: Vec<Meaning> = Vec::new();
        let mut tag_paths = Vec::new();
        match self.vocab.tags.resolve(&text) {
            Ok(id) => meanings.push(Meaning::Tag(id)),
            Err(Unresolved::Ambiguous(paths)) => tag_paths = paths,
            Err(Unresolved::NotFound) => {}
        }
        for s in self.vocab.schemes {
            if s.classes.contains(&text) {
                meanings.push(Meaning::Class {
                    scheme: s.key.clone(),
                    class: text.clone(),
                });
            }
        }
        for f in VALUE_FIELDS {
            if known_values(f).contains(&text.as_str()) {
                meanings.push(Meaning::Value {
                    field: segment_field(f).map_or(f, |sf| sf.key),
                    value: text.clone(),
                });
            }
        }
        if meanings.len() == 1 && tag_paths.is_empty() {
            return Ok(match meanings.remove(0) {
                Meaning::Tag(id) => self.tag_atom(id, n.span),
                Meaning::Class { scheme, class } => Plan::Atom(Atom::Class { scheme, class }),
                Meaning::Value { field, value } => Plan::Atom(Atom::Text {
                    field,
                    values: vec![value],
                }),
            });
        }
        if meanings.is_empty() && tag_paths.is_empty() {
            return Err(SegmentError::at(n.span, Problem::UnknownName(text)));
        }
        let mut candidates = tag_paths;
        for m in meanings {
            candidates.push(match m {
                Meaning::Tag(id) => self.vocab.tags.path_text(id),
                Meaning::Class { scheme, class } => format!("{scheme} = {class}"),
                Meaning::Value { field, value } => format!("{field} = {value}"),
            });
        }
        Err(SegmentError::at(
            n.span,
            Problem::Ambiguous {
                name: text,
                candidates,
            },
        ))
    }

    fn scheme(&self, name: &str) -> Option<&SchemeClasses> {
        let name = clean(name);
        let key = name.strip_prefix("class.").unwrap_or(&name);
        self.vocab
            .schemes
            .iter()
            .find(|s| s.key == key || s.name == key)
    }

    fn class_atom(&self, s: &SchemeClasses, class: &str, span: Span) -> Result<Plan, SegmentError> {
        let class = clean(class);
        if !s.classes.contains(&class) {
            return Err(SegmentError::at(
                span,
                Problem::UnknownClass {
                    scheme: s.key.clone(),
                    class,
                    allowed: s.classes.clone(),
                },
            ));
        }
        Ok(Plan::Atom(Atom::Class {
            scheme: s.key.clone(),
            class,
        }))
    }

    fn compare(&mut self, name: &Name, op: CmpOp, value: &Literal) -> Result<Plan, SegmentError> {
        let equality = |atom: Plan| match op {
            CmpOp::Eq => Ok(atom),
            CmpOp::Ne => Ok(Plan::Not(Box::new(atom))),
            _ => Err(SegmentError::at(
                name.span,
                Problem::OrderOnText {
                    name: name.text.clone(),
                },
            )),
        };
        if is_tag_word(&name.text) {
            let text = value.as_text();
            let id = match self.vocab.tags.resolve(&text) {
                Ok(id) => id,
                Err(Unresolved::NotFound) => {
                    return Err(SegmentError::at(value.span, Problem::UnknownTag(text)))
                }
                Err(Unresolved::Ambiguous(paths)) => {
                    return Err(SegmentError::at(
                        value.span,
                        Problem::Ambiguous {
                            name: text,
                            candidates: paths,
                        },
                    ))
                }
            };
            let atom = self.tag_atom(id, value.span);
            return equality(atom);
        }
        if let Some(s) = self.scheme(&name.text) {
            let atom = self.class_atom(s, &value.as_text(), value.span)?;
            return equality(atom);
        }
        let Some(f) = segment_field(&name.text) else {
            return Err(SegmentError::at(
                name.span,
                Problem::NotComparable(name.text.clone()),
            ));
        };
        let kind = match f.kind {
            K::Text => {
                let atom = Plan::Atom(Atom::Text {
                    field: f.key,
                    values: vec![clean(&value.as_text())],
                });
                return equality(atom);
            }
            K::Number(unit) => ValueKind::Num(unit),
            K::Date => ValueKind::Date,
        };
        let bad = || {
            SegmentError::at(
                value.span,
                Problem::BadValue {
                    name: name.text.clone(),
                    expected_zh: match f.kind {
                        K::Number(Unit::Fen) => "金额，例如 50万 或 120000元",
                        K::Date => "日期，例如 2024-03-12",
                        _ => "整数",
                    },
                },
            )
        };
        let n = match literal_value(value, kind).map_err(|_| bad())? {
            Value::Num(n) => n,
            Value::Date(d) => day_number(d),
            _ => return Err(bad()),
        };
        let range = |op| {
            Plan::Atom(Atom::Range {
                field: f.key,
                op,
                value: n,
            })
        };
        Ok(match op {
            CmpOp::Ne => Plan::Not(Box::new(range(CmpOp::Eq))),
            other => range(other),
        })
    }
}

/// Where a plan's atoms come from: bitmaps of customer ids.
pub trait AtomSource {
    /// Every customer the reader may see (what NOT is taken against).
    fn universe(&self) -> &RoaringBitmap;
    /// The customers an atom holds for (may include customers outside the universe).
    fn atom(&self, atom: &Atom) -> Cow<'_, RoaringBitmap>;
    /// Whether [`filter`](Self::filter) answers `atom` by testing customers
    /// one by one (a column lookup), cheaper than [`atom`](Self::atom) when
    /// few candidates are left.
    fn filterable(&self, _atom: &Atom) -> bool {
        false
    }
    /// The customers among `candidates` that `atom` holds for.
    fn filter(&self, atom: &Atom, candidates: &RoaringBitmap) -> RoaringBitmap {
        candidates & self.atom(atom).as_ref()
    }
}

/// The customers of the universe a plan holds for.
pub fn evaluate(plan: &Plan, src: &impl AtomSource) -> RoaringBitmap {
    let mut out = eval(plan, src);
    out &= src.universe();
    out
}

fn eval(plan: &Plan, src: &impl AtomSource) -> RoaringBitmap {
    match plan {
        // Tested customer by customer when the source can: a single
        // customer's universe (re-applying rules after a write) stays cheap.
        Plan::Atom(a) if src.filterable(a) => src.filter(a, src.universe()),
        Plan::Atom(a) => src.atom(a).into_owned(),
        Plan::Not(x) => src.universe() - eval(x, src),
        Plan::Or(xs) => {
            let mut acc = RoaringBitmap::new();
            for x in xs {
                acc |= eval(x, src);
            }
            acc
        }
        Plan::And(xs) => {
            // Intersect the positive sets (smallest first), test the
            // remaining candidates against the filterable atoms, then take
            // the negated parts away: no complement is ever built.
            let filterable = |p: &Plan| matches!(p, Plan::Atom(a) if src.filterable(a));
            let (neg, pos): (Vec<&Plan>, Vec<&Plan>) =
                xs.iter().partition(|x| matches!(x, Plan::Not(_)));
            let (filters, sets): (Vec<&Plan>, Vec<&Plan>) =
                pos.into_iter().partition(|p| filterable(p));
            let mut parts: Vec<RoaringBitmap> = sets.iter().map(|x| eval(x, src)).collect();
            parts.sort_by_key(|b| b.len());
            let mut acc = match parts.len() {
                0 => src.universe().clone(),
                _ => parts.remove(0),
            };
            for p in &parts {
                if acc.is_empty() {
                    return acc;
                }
                acc &= p;
            }
            for f in filters {
                if let Plan::Atom(a) = f {
                    acc = src.filter(a, &acc);
                }
            }
            for n in neg {
                if acc.is_empty() {
                    break;
                }
                match n {
                    Plan::Not(inner) if filterable(inner) => {
                        if let Plan::Atom(a) = inner.as_ref() {
                            acc -= src.filter(a, &acc);
                        }
                    }
                    Plan::Not(inner) => acc -= eval(inner, src),
                    _ => {}
                }
            }
            acc
        }
    }
}

/// Whether a range atom holds for a value.
pub fn range_holds(op: CmpOp, have: i64, want: i64) -> bool {
    op.holds(have.cmp(&want))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::{TagMode, TagNode};
    use std::collections::HashMap;

    fn catalogue() -> Catalogue {
        let n = |id, parent, name: &str| TagNode {
            id,
            parent_id: parent,
            name: name.into(),
            mode: TagMode::Manual,
            retired: false,
            merged_into: None,
        };
        Catalogue::new([
            n(1, None, "行为标签"),
            n(2, Some(1), "消费频次"),
            n(3, Some(2), "高频"),
            n(4, Some(1), "访问频次"),
            n(5, Some(4), "高频"),
            n(6, None, "风险标签"),
            n(7, Some(6), "付款延迟"),
            n(8, None, "战略型"), // a tag with a class's name
        ])
    }

    fn schemes() -> Vec<SchemeClasses> {
        vec![
            SchemeClasses {
                key: "value_tier".into(),
                name: "价值分层".into(),
                classes: vec![
                    "战略型".into(),
                    "潜力型".into(),
                    "优化型".into(),
                    "维持型".into(),
                ],
            },
            SchemeClasses {
                key: "behavior".into(),
                name: "行为".into(),
                classes: vec!["高频互动".into(), "投诉客户".into(), "普通".into()],
            },
            SchemeClasses {
                key: "key_account".into(),
                name: "重点/主要/普通".into(),
                classes: vec!["重点客户".into(), "主要客户".into(), "普通".into()],
            },
        ]
    }

    fn compiled(src: &str) -> Result<Compiled, SegmentError> {
        let c = catalogue();
        let s = schemes();
        compile(
            src,
            &Vocabulary {
                tags: &c,
                schemes: &s,
            },
        )
    }

    #[test]
    fn names_resolve_to_tags_classes_and_values() {
        let c = compiled("华东 AND 潜力型 AND NOT 投诉客户").expect("compiles");
        assert_eq!(
            c.plan,
            Plan::And(vec![
                Plan::Atom(Atom::Text {
                    field: "sales_region",
                    values: vec!["华东".into()]
                }),
                Plan::Atom(Atom::Class {
                    scheme: "value_tier".into(),
                    class: "潜力型".into()
                }),
                Plan::Not(Box::new(Plan::Atom(Atom::Class {
                    scheme: "behavior".into(),
                    class: "投诉客户".into()
                }))),
            ])
        );
        let c = compiled("行为标签 AND NOT 付款延迟").expect("compiles");
        assert_eq!(
            c.plan,
            Plan::And(vec![
                Plan::Atom(Atom::Tag {
                    tag: 1,
                    tags: vec![1, 2, 4, 3, 5]
                }),
                Plan::Not(Box::new(Plan::Atom(Atom::Tag {
                    tag: 7,
                    tags: vec![7]
                }))),
            ])
        );
        assert_eq!(c.stable, "#1 AND NOT #7");
    }

    #[test]
    fn comparisons_read_values_in_the_field_unit() {
        let c = compiled("年采购额 >= 50万 AND 合作起始时间 < 2022-01-01 AND region != 华北")
            .expect("compiles");
        let day = day_number(NaiveDate::from_ymd_opt(2022, 1, 1).expect("date"));
        assert_eq!(
            c.plan,
            Plan::And(vec![
                Plan::Atom(Atom::Range {
                    field: "purchase_12m_fen",
                    op: CmpOp::Ge,
                    value: 50_000_000
                }),
                Plan::Atom(Atom::Range {
                    field: "cooperation_start_on",
                    op: CmpOp::Lt,
                    value: day
                }),
                Plan::Not(Box::new(Plan::Atom(Atom::Text {
                    field: "sales_region",
                    values: vec!["华北".into()]
                }))),
            ])
        );
        let c =
            compiled("value_tier IN (战略型, 潜力型) AND tag = 消费频次/高频").expect("compiles");
        assert_eq!(c.stable, "value_tier IN (战略型, 潜力型) AND tag = #3");
        let c = compiled("behavior.普通 OR key_account != 普通").expect("compiles");
        assert!(matches!(c.plan, Plan::Or(_)));
    }

    #[test]
    fn windows_count_the_last_days_today_included() {
        use crate::classify::facts::{InteractionFact, OrderFact};
        let day = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).expect("date");
        let mut f = crate::classify::Facts::default();
        f.orders = [(1, 100), (2, 200), (9, 400), (10, 800), (11, 1600)]
            .iter()
            .map(|&(d, fen)| OrderFact {
                on: day(d),
                amount_fen: fen,
                line: None,
            })
            .collect();
        let visit = |d: u32, kind| InteractionFact {
            on: day(d),
            kind,
            severity: None,
            satisfaction: None,
        };
        f.interactions = vec![
            visit(3, IK::WebVisit),
            visit(4, IK::WebVisit),
            visit(9, IK::Call),
            visit(10, IK::WebVisit),
        ];
        let today = day(10);
        // 7 days up to the 10th: the 4th..=10th; orders after today do not count.
        assert_eq!(WindowAgg::Purchase { days: 7 }.value(&f, today), 400 + 800);
        assert_eq!(WindowAgg::Orders { days: 10 }.value(&f, today), 4);
        assert_eq!(
            WindowAgg::Interactions {
                days: 7,
                kind: Some(IK::WebVisit)
            }
            .value(&f, today),
            2
        );
        assert_eq!(
            WindowAgg::Interactions {
                days: 7,
                kind: None
            }
            .value(&f, today),
            3
        );
        let c = compiled("每周访问次数 >= 3 OR 近30天采购额 >= 5万").expect("compiles");
        assert!(reads_windows(&c.plan));
        assert!(!reads_windows(
            &compiled("年采购额 >= 5万").expect("compiles").plan
        ));
    }

    /// (expression, error code, position reported).
    #[test]
    fn errors_name_the_problem_and_place() {
        let cases: &[(&str, &str, usize)] = &[
            ("华东 AND", "segment_syntax", 6),
            ("华东 AND (战略型", "segment_syntax", 11),
            ("华东 AND 不存在的东西", "segment_unknown_name", 7),
            ("高频 AND 华东", "segment_ambiguous_name", 0),
            ("战略型", "segment_ambiguous_name", 0),
            ("普通", "segment_ambiguous_name", 0),
            ("华东 AND 消费频次/超高频", "segment_unknown_tag", 7),
            ("value_tier = 王者型", "segment_unknown_class", 13),
            ("颜色 = 红", "segment_not_comparable", 0),
            ("区域 > 华东", "segment_order_on_text", 0),
            ("年采购额 >= 很多", "segment_bad_value", 8),
            ("合作起始时间 < 去年", "segment_bad_value", 9),
            ("tag = 不存在", "segment_unknown_tag", 6),
            ("value_tier >= 战略型", "segment_order_on_text", 0),
        ];
        for &(src, code, at) in cases {
            let e = compiled(src).expect_err(src);
            assert_eq!((e.code(), e.at), (code, at), "{src}: {e:?}");
            let zh = e.message(Lang::Zh);
            assert!(zh.contains(&format!("{}", at + 1)), "{src}: {zh}");
            assert!(!e.message(Lang::En).is_empty());
        }
        let e = compiled("战略型").expect_err("ambiguous");
        let msg = e.message(Lang::Zh);
        assert!(
            msg.contains("value_tier = 战略型") && msg.contains("战略型"),
            "{msg}"
        );
    }

    #[test]
    fn stored_text_survives_renames_and_merges() {
        let c = compiled("消费频次/高频 OR 付款延迟").expect("compiles");
        assert_eq!(c.stable, "#3 OR #7");
        let mut nodes: Vec<TagNode> = catalogue().nodes().cloned().collect();
        nodes[6].name = "逾期付款".into(); // rename 7
        nodes[4].merged_into = Some(3); // 5 merged into 3: 高频 is unique now
        let after = Catalogue::new(nodes);
        assert_eq!(display(&c.stable, &after), "高频 OR 逾期付款");
        let s = schemes();
        let again = compile(
            &c.stable,
            &Vocabulary {
                tags: &after,
                schemes: &s,
            },
        )
        .expect("stable text compiles");
        assert_eq!(again.plan.atoms().len(), 2);
    }

    /// A source over explicit sets, checked against a per-customer evaluation.
    struct Sets {
        universe: RoaringBitmap,
        atoms: HashMap<Atom, RoaringBitmap>,
    }

    impl AtomSource for Sets {
        fn universe(&self) -> &RoaringBitmap {
            &self.universe
        }
        fn atom(&self, atom: &Atom) -> Cow<'_, RoaringBitmap> {
            Cow::Borrowed(self.atoms.get(atom).expect("atom"))
        }
    }

    /// The same sets, with "y" and "z" answered by testing candidates.
    struct Filtering(Sets);

    impl AtomSource for Filtering {
        fn universe(&self) -> &RoaringBitmap {
            self.0.universe()
        }
        fn atom(&self, atom: &Atom) -> Cow<'_, RoaringBitmap> {
            self.0.atom(atom)
        }
        fn filterable(&self, atom: &Atom) -> bool {
            matches!(atom, Atom::Class { class, .. } if class != "x")
        }
        fn filter(&self, atom: &Atom, candidates: &RoaringBitmap) -> RoaringBitmap {
            let set = &self.0.atoms[atom];
            candidates.iter().filter(|id| set.contains(*id)).collect()
        }
    }

    fn holds(plan: &Plan, id: u32, s: &Sets) -> bool {
        match plan {
            Plan::Atom(a) => s.atoms[a].contains(id),
            Plan::Not(x) => !holds(x, id, s),
            Plan::And(xs) => xs.iter().all(|x| holds(x, id, s)),
            Plan::Or(xs) => xs.iter().any(|x| holds(x, id, s)),
        }
    }

    #[test]
    fn bitmap_evaluation_equals_evaluating_each_customer() {
        let a = |n: &str| Atom::Class {
            scheme: "s".into(),
            class: n.into(),
        };
        let mut atoms = HashMap::new();
        atoms.insert(
            a("x"),
            (0..600).filter(|i| i % 3 == 0).collect::<RoaringBitmap>(),
        );
        atoms.insert(a("y"), (0..600).filter(|i| i % 5 < 2).collect());
        // An atom may hold customers outside the universe (deleted, out of scope).
        atoms.insert(a("z"), (300..900).collect());
        let s = Sets {
            universe: (0..600).filter(|i| i % 7 != 0).collect(),
            atoms,
        };
        let x = || Plan::Atom(a("x"));
        let y = || Plan::Atom(a("y"));
        let z = || Plan::Atom(a("z"));
        let not = |p| Plan::Not(Box::new(p));
        let plans = [
            Plan::And(vec![x(), y()]),
            Plan::And(vec![not(x()), not(y())]),
            Plan::And(vec![x(), not(z())]),
            Plan::Or(vec![Plan::And(vec![x(), z()]), not(y())]),
            not(Plan::Or(vec![x(), y(), z()])),
            Plan::And(vec![z(), not(Plan::And(vec![x(), not(y())]))]),
        ];
        let plans: Vec<Plan> = plans
            .into_iter()
            .chain([
                Plan::And(vec![y(), z()]),
                Plan::And(vec![x(), y(), not(z())]),
                Plan::And(vec![not(y()), Plan::Or(vec![x(), z()])]),
                y(),
                not(z()),
                Plan::Or(vec![y(), not(x())]),
            ])
            .collect();
        for p in &plans {
            let want: RoaringBitmap = s.universe.iter().filter(|&id| holds(p, id, &s)).collect();
            assert_eq!(evaluate(p, &s), want, "{p:?}");
        }
        let f = Filtering(s);
        for p in &plans {
            let want: RoaringBitmap =
                f.0.universe
                    .iter()
                    .filter(|&id| holds(p, id, &f.0))
                    .collect();
            assert_eq!(evaluate(p, &f), want, "filtering: {p:?}");
        }
    }
}
