//! A classification scheme as people write it (JSON in the API, the rule
//! editor's form, a stored rule version). [`super::compile`] checks it and
//! turns it into an executable [`super::Scheme`].

use crate::interaction::{InteractionKind, Severity};
use crate::Lang;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A time window ending on the evaluation date (inclusive): `30d`, `12m`, `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Days(u32),
    Months(u32),
    All,
}

impl Window {
    pub fn parse(s: &str) -> Option<Window> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") || s == "全部" {
            return Some(Window::All);
        }
        let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
        let n: u32 = n.parse().ok().filter(|&n| (1..=3650).contains(&n))?;
        match unit {
            "d" | "天" => Some(Window::Days(n)),
            "m" | "个月" | "月" => (n <= 120).then_some(Window::Months(n)),
            "y" | "年" => (n <= 10).then_some(Window::Months(n * 12)),
            _ => None,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Window::Days(n) => write!(f, "{n}d"),
            Window::Months(n) => write!(f, "{n}m"),
            Window::All => f.write_str("all"),
        }
    }
}

impl Serialize for Window {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Window, D::Error> {
        let s = String::deserialize(d)?;
        Window::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "“{s}” is not a window: use e.g. 30d, 12m, 2y or all"
            ))
        })
    }
}

/// `zh`, or `en` for English readers when there is one.
pub fn label<'a>(zh: &'a str, en: &'a str, lang: Lang) -> &'a str {
    if lang == Lang::En && !en.is_empty() {
        en
    } else {
        zh
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeSpec {
    /// Stable key used by scripts (`value_tier`, …): `^[a-z][a-z0-9_]*$`.
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_en: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub indicators: Vec<IndicatorSpec>,
    #[serde(default)]
    pub dimensions: Vec<DimensionSpec>,
    pub classes: Vec<ClassSpec>,
    pub assign: AssignSpec,
}

impl SchemeSpec {
    /// The scheme's name for a reader of `lang`.
    pub fn display_name(&self, lang: Lang) -> &str {
        label(&self.name, &self.name_en, lang)
    }
}

/// (No `deny_unknown_fields` here: serde does not support it with `flatten`;
/// the metric's own fields are still checked.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorSpec {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_en: String,
    #[serde(flatten)]
    pub metric: MetricSpec,
}

/// What an indicator measures. Order and interaction metrics only see
/// records dated on or before the evaluation date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricSpec {
    /// A customer field: `industry`, `employees`, …, or `custom.KEY`.
    Field {
        field: String,
    },
    /// Sum of order amounts in the window. With `fallback` (a money field):
    /// a customer with no orders at all on record uses that field instead.
    OrderSum {
        window: Window,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fallback: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<String>,
    },
    OrderCount {
        window: Window,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lines: Vec<String>,
    },
    OrderAvg {
        window: Window,
    },
    OrderMax {
        window: Window,
    },
    /// Distinct product lines ordered in the window.
    OrderLines {
        window: Window,
    },
    InteractionCount {
        window: Window,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kinds: Vec<InteractionKind>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_severity: Option<Severity>,
    },
    /// Average satisfaction score (1–5) of interactions in the window.
    Satisfaction {
        window: Window,
    },
    /// Whole days from a date to the evaluation date.
    DaysSince {
        since: String,
    },
    /// Whole months from a date to the evaluation date (2021-03-15 → 2023-03-15 is 24).
    MonthsSince {
        since: String,
    },
    /// Months from the evaluation date until a (future) date, rounded up.
    MonthsUntil {
        until: String,
    },
    /// Orders or interactions per month over the last `months` months.
    PerMonth {
        of: Countable,
        months: u32,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        kinds: Vec<InteractionKind>,
    },
    /// Purchases of the last `months` months against the `months` before,
    /// as a ratio (+20 % = 0.2); missing when there was nothing before.
    Growth {
        months: u32,
    },
    /// Consecutive complete calendar months, ending with last month, each
    /// with more purchases than the month before it.
    GrowthStreak,
    /// Share of customers with a strictly greater value of another
    /// indicator (0 % = the top; ties share a rank). `< 10%` is the top 10 %.
    Percentile {
        of: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Countable {
    Orders,
    Interactions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DimensionSpec {
    pub key: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_en: String,
    /// Percent; the weights of a scheme sum to 100.
    pub weight: u32,
    /// Tried in order, first match wins; the last has no `when` (the rest).
    pub levels: Vec<LevelSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelSpec {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_en: String,
    /// 0–100, weighted into the scheme's score.
    pub score: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassSpec {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_en: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// How the class is chosen: the first mapping rule that holds (else the
/// default), or the band of the weighted score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case", deny_unknown_fields)]
pub enum AssignSpec {
    Rules {
        rules: Vec<RuleSpec>,
        default: String,
    },
    Score {
        bands: Vec<BandSpec>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub when: String,
    pub class: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandSpec {
    /// Lowest weighted score (0–100) of the band; bands go from high to low and the last is 0.
    pub min: u32,
    pub class: String,
}
