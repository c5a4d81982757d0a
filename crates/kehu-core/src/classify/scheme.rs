//! Checking a [`SchemeSpec`] and compiling it into an executable [`Scheme`].
//! Every problem is reported at once, each naming its place
//! (`dimensions[1].levels[0].when`) and the reason in Chinese and English.

use super::metric::{DateRef, FieldRef, Metric};
use super::spec::{AssignSpec, ClassSpec, MetricSpec, SchemeSpec};
use super::value::{literal_value, Value, ValueKind};
use crate::custom_field::CustomFieldDef;
use crate::expr::{self, CmpOp, Expr, Literal, Name};
use crate::{FieldError, Lang, Reason, ValidationErrors};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    pub key: String,
    pub indicators: Vec<Indicator>,
    pub dimensions: Vec<Dimension>,
    /// As in the spec (the class list needs no compiling).
    pub classes: Vec<ClassSpec>,
    pub assign: Assign,
    /// Other schemes whose class this one reads (`scheme.KEY`): they are evaluated first.
    pub depends_on: BTreeSet<String>,
    /// The source it was compiled from.
    pub spec: SchemeSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Indicator {
    pub key: String,
    pub name: String,
    pub name_en: String,
    pub metric: Metric,
    pub kind: ValueKind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    pub key: String,
    pub name: String,
    pub name_en: String,
    pub weight: u32,
    pub levels: Vec<Level>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub key: String,
    pub name_en: String,
    pub score: u32,
    /// None: every customer that no earlier level took.
    pub when: Option<Cond>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Assign {
    Rules {
        rules: Vec<Rule>,
        default: usize,
    },
    /// (lowest score in hundredths, class), from high to low; the last starts at 0.
    Score {
        bands: Vec<(i64, usize)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Cond,
    pub class: usize,
    pub text: String,
}

/// Whose class a condition reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassOf {
    /// This scheme's class before this evaluation.
    Previous,
    /// Another scheme's class, as of the same date.
    Scheme(String),
}

/// A resolved condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// An indicator compared with a value (`Value::Missing` is 空).
    Value {
        ind: usize,
        op: CmpOp,
        rhs: Value,
    },
    ValueIn {
        ind: usize,
        values: Vec<Value>,
        negated: bool,
    },
    /// A yes/no indicator that must be yes.
    Flag(usize),
    /// A dimension's level; `=` / `!=` by name, `<` `>=` … by the levels' scores.
    Level {
        dim: usize,
        op: CmpOp,
        level: usize,
    },
    LevelIn {
        dim: usize,
        levels: Vec<usize>,
        negated: bool,
    },
    Class {
        of: ClassOf,
        op: CmpOp,
        class: String,
    },
    ClassIn {
        of: ClassOf,
        classes: Vec<String>,
        negated: bool,
    },
}

/// What a scheme may refer to besides itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Catalog<'a> {
    pub custom_fields: &'a [CustomFieldDef],
    /// Other schemes' classes, by scheme key.
    pub schemes: Option<&'a BTreeMap<String, Vec<String>>>,
}

fn rule_error(path: impl Into<String>, code: &'static str, zh: String, en: String) -> FieldError {
    FieldError::new(path, Reason::Rule { code, zh, en })
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && key.len() <= 40
}

/// A level / class key: text people read (战略型, 高), short and without
/// characters that would need quoting in conditions.
fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.chars().count() <= 20
        && !label
            .chars()
            .any(|c| c.is_whitespace() || "()（）,，=<>!≥≤≠＝＞＜！\"'“”‘’".contains(c))
}

impl Scheme {
    pub fn compile(spec: &SchemeSpec, catalog: Catalog<'_>) -> Result<Scheme, ValidationErrors> {
        let mut c = Compiler {
            errors: Vec::new(),
            catalog,
            broken: Vec::new(),
        };
        let scheme = c.scheme(spec);
        if c.errors.is_empty() {
            Ok(scheme)
        } else {
            Err(ValidationErrors(c.errors))
        }
    }

    pub fn class_index(&self, key: &str) -> Option<usize> {
        self.classes.iter().position(|c| c.key == key)
    }

    pub fn class_keys(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.key.clone()).collect()
    }

    pub fn display_name(&self, lang: Lang) -> &str {
        self.spec.display_name(lang)
    }
}

struct Compiler<'a> {
    errors: Vec<FieldError>,
    catalog: Catalog<'a>,
    /// Indicators whose metric was refused: conditions using them are not
    /// checked further (their error is already reported once).
    broken: Vec<bool>,
}

/// Where a condition is written: level conditions may only use indicators.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Level,
    Rule,
}

impl Compiler<'_> {
    fn err(&mut self, path: impl Into<String>, code: &'static str, zh: String, en: String) {
        self.errors.push(rule_error(path, code, zh, en));
    }

    fn scheme(&mut self, spec: &SchemeSpec) -> Scheme {
        if !valid_key(&spec.key) {
            self.errors.push(FieldError::new("key", Reason::InvalidKey));
        }
        if spec.name.trim().is_empty() {
            self.errors.push(FieldError::new("name", Reason::Required));
        }
        let indicators = self.indicators(spec);
        let mut scheme = Scheme {
            key: spec.key.clone(),
            indicators,
            dimensions: Vec::new(),
            classes: Vec::new(),
            assign: Assign::Score { bands: Vec::new() },
            depends_on: BTreeSet::new(),
            spec: spec.clone(),
        };
        self.dimensions(spec, &mut scheme);
        self.classes(spec, &mut scheme);
        self.assign(spec, &mut scheme);
        scheme
    }

    fn indicators(&mut self, spec: &SchemeSpec) -> Vec<super::scheme::Indicator> {
        let mut out: Vec<Indicator> = Vec::new();
        if spec.indicators.is_empty() {
            self.err(
                "indicators",
                "no_indicators",
                "至少需要一个指标".into(),
                "a scheme needs at least one indicator".into(),
            );
        }
        for (i, ind) in spec.indicators.iter().enumerate() {
            let path = format!("indicators[{i}]");
            if !valid_key(&ind.key) {
                self.errors
                    .push(FieldError::new(format!("{path}.key"), Reason::InvalidKey));
            }
            if spec.indicators[..i].iter().any(|o| o.key == ind.key) {
                self.errors
                    .push(FieldError::new(format!("{path}.key"), Reason::Duplicate));
            }
            if ind.name.trim().is_empty() {
                self.errors
                    .push(FieldError::new(format!("{path}.name"), Reason::Required));
            }
            let metric = self.metric(&ind.metric, &path, spec, i);
            let kind = metric.as_ref().map_or(ValueKind::Text, Metric::kind);
            self.broken.push(metric.is_none());
            out.push(Indicator {
                key: ind.key.clone(),
                name: ind.name.trim().to_string(),
                name_en: ind.name_en.trim().to_string(),
                // A refused metric keeps its place (names still resolve); the
                // scheme is refused anyway, so this stand-in never runs.
                metric: metric.unwrap_or(Metric::GrowthStreak),
                kind,
            });
        }
        out
    }

    fn field(&mut self, name: &str, path: String) -> Option<FieldRef> {
        let found = FieldRef::resolve(name, self.catalog.custom_fields);
        let key = name
            .strip_prefix("custom.")
            .or_else(|| name.strip_prefix("cf."));
        let personal = key.is_some_and(|k| {
            self.catalog
                .custom_fields
                .iter()
                .any(|d| d.key == k && d.personal().is_some())
        });
        if personal {
            self.err(
                path,
                "personal_field",
                format!("字段“{name}”是加密存储的个人信息，不能作为分类指标"),
                format!(
                    "“{name}” is personal information stored encrypted; it cannot be an indicator"
                ),
            );
        } else if found.is_none() {
            self.err(
                path,
                "unknown_field",
                format!("字段“{name}”不存在"),
                format!("there is no field “{name}”"),
            );
        }
        found
    }

    fn metric(
        &mut self,
        m: &MetricSpec,
        path: &str,
        spec: &SchemeSpec,
        me: usize,
    ) -> Option<Metric> {
        let months_ok = |n: u32| (1..=60).contains(&n);
        Some(match m {
            MetricSpec::Field { field } => {
                Metric::Field(self.field(field, format!("{path}.field"))?)
            }
            MetricSpec::OrderSum {
                window,
                fallback,
                lines,
            } => {
                let fallback = match fallback {
                    Some(f) => {
                        let field = self.field(f, format!("{path}.fallback"))?;
                        if field.kind() != ValueKind::Num(super::value::Unit::Fen) {
                            self.err(
                                format!("{path}.fallback"),
                                "not_money",
                                format!("替代字段“{f}”不是金额字段"),
                                format!("the fallback “{f}” is not a money field"),
                            );
                            return None;
                        }
                        Some(field)
                    }
                    None => None,
                };
                Metric::OrderSum {
                    window: *window,
                    fallback,
                    lines: lines.clone(),
                }
            }
            MetricSpec::OrderCount { window, lines } => Metric::OrderCount {
                window: *window,
                lines: lines.clone(),
            },
            MetricSpec::OrderAvg { window } => Metric::OrderAvg { window: *window },
            MetricSpec::OrderMax { window } => Metric::OrderMax { window: *window },
            MetricSpec::OrderLines { window } => Metric::OrderLines { window: *window },
            MetricSpec::InteractionCount {
                window,
                kinds,
                min_severity,
            } => Metric::InteractionCount {
                window: *window,
                kinds: kinds.clone(),
                min_severity: *min_severity,
            },
            MetricSpec::Satisfaction { window } => Metric::Satisfaction { window: *window },
            MetricSpec::DaysSince { since } | MetricSpec::MonthsSince { since } => {
                let Some(d) = DateRef::resolve(since, self.catalog.custom_fields) else {
                    self.err(
                        format!("{path}.since"),
                        "unknown_date",
                        format!("“{since}”不是日期字段，也不是 first_order、last_order、first_interaction、last_interaction、last_activity 之一"),
                        format!("“{since}” is neither a date field nor one of first_order, last_order, first_interaction, last_interaction, last_activity"),
                    );
                    return None;
                };
                if matches!(m, MetricSpec::DaysSince { .. }) {
                    Metric::DaysSince(d)
                } else {
                    Metric::MonthsSince(d)
                }
            }
            MetricSpec::MonthsUntil { until } => {
                let f = self.field(until, format!("{path}.until"))?;
                if f.kind() != ValueKind::Date {
                    self.err(
                        format!("{path}.until"),
                        "not_date",
                        format!("“{until}”不是日期字段"),
                        format!("“{until}” is not a date field"),
                    );
                    return None;
                }
                Metric::MonthsUntil(f)
            }
            MetricSpec::PerMonth { of, months, kinds } => {
                if !months_ok(*months) {
                    self.errors.push(FieldError::new(
                        format!("{path}.months"),
                        Reason::OutOfRange {
                            min: Some("1".into()),
                            max: Some("60".into()),
                        },
                    ));
                }
                Metric::PerMonth {
                    of: *of,
                    months: *months,
                    kinds: kinds.clone(),
                }
            }
            MetricSpec::Growth { months } => {
                if !months_ok(*months) {
                    self.errors.push(FieldError::new(
                        format!("{path}.months"),
                        Reason::OutOfRange {
                            min: Some("1".into()),
                            max: Some("60".into()),
                        },
                    ));
                }
                Metric::Growth { months: *months }
            }
            MetricSpec::GrowthStreak => Metric::GrowthStreak,
            MetricSpec::Percentile { of } => {
                let Some(src) = spec.indicators.iter().position(|x| &x.key == of) else {
                    self.err(
                        format!("{path}.of"),
                        "unknown_name",
                        format!("指标“{of}”不存在"),
                        format!("there is no indicator “{of}”"),
                    );
                    return None;
                };
                match &spec.indicators[src].metric {
                    _ if src == me => {
                        self.err(
                            format!("{path}.of"),
                            "cycle",
                            format!("指标“{of}”不能按自身排名"),
                            format!("indicator “{of}” cannot rank itself"),
                        );
                        return None;
                    }
                    MetricSpec::Percentile { .. } => {
                        self.err(
                            format!("{path}.of"),
                            "cycle",
                            format!("“{of}”本身是排名指标，不能再排名"),
                            format!("“{of}” is itself a percentile; rank its source instead"),
                        );
                        return None;
                    }
                    MetricSpec::Field { field }
                        if FieldRef::resolve(field, self.catalog.custom_fields)
                            .is_some_and(|f| !matches!(f.kind(), ValueKind::Num(_))) =>
                    {
                        self.err(
                            format!("{path}.of"),
                            "not_numeric",
                            format!("“{of}”不是数值指标，无法排名"),
                            format!("“{of}” is not numeric and cannot be ranked"),
                        );
                        return None;
                    }
                    _ => Metric::Percentile { of: src },
                }
            }
        })
    }

    fn dimensions(&mut self, spec: &SchemeSpec, scheme: &mut Scheme) {
        if !spec.dimensions.is_empty() {
            let total: u32 = spec.dimensions.iter().map(|d| d.weight).sum();
            if total != 100 {
                self.err(
                    "dimensions",
                    "weights_sum",
                    format!("各维度权重之和应为 100%，现在是 {total}%"),
                    format!("the dimension weights must sum to 100 %, they sum to {total} %"),
                );
            }
        }
        for (d, dim) in spec.dimensions.iter().enumerate() {
            let path = format!("dimensions[{d}]");
            if !valid_key(&dim.key) {
                self.errors
                    .push(FieldError::new(format!("{path}.key"), Reason::InvalidKey));
            }
            let clash = spec.dimensions[..d].iter().any(|o| o.key == dim.key)
                || spec.indicators.iter().any(|i| i.key == dim.key);
            if clash {
                self.errors
                    .push(FieldError::new(format!("{path}.key"), Reason::Duplicate));
            }
            if dim.name.trim().is_empty() {
                self.errors
                    .push(FieldError::new(format!("{path}.name"), Reason::Required));
            }
            if dim.levels.is_empty() {
                self.err(
                    format!("{path}.levels"),
                    "no_levels",
                    "至少需要一个等级".into(),
                    "a dimension needs at least one level".into(),
                );
            }
            let mut levels = Vec::new();
            for (l, level) in dim.levels.iter().enumerate() {
                let lpath = format!("{path}.levels[{l}]");
                if !valid_label(&level.key) {
                    self.err(format!("{lpath}.key"), "invalid_label", "等级名称不能为空、超过 20 个字或包含空格、括号、比较符和引号".into(), "a level name is 1–20 characters without spaces, brackets, comparison signs or quotes".into());
                }
                if dim.levels[..l].iter().any(|o| o.key == level.key) {
                    self.errors
                        .push(FieldError::new(format!("{lpath}.key"), Reason::Duplicate));
                }
                if level.score > 100 {
                    self.errors.push(FieldError::new(
                        format!("{lpath}.score"),
                        Reason::OutOfRange {
                            min: Some("0".into()),
                            max: Some("100".into()),
                        },
                    ));
                }
                let last = l + 1 == dim.levels.len();
                let when = match (&level.when, last) {
                    (Some(w), _) => {
                        self.condition(w, &format!("{lpath}.when"), scheme, Place::Level)
                    }
                    (None, true) => None,
                    (None, false) => {
                        self.err(
                            format!("{lpath}.when"),
                            "missing_condition",
                            "只有最后一个等级可以不写条件（其余客户）".into(),
                            "only the last level may go without a condition (everyone else)".into(),
                        );
                        None
                    }
                };
                levels.push(Level {
                    key: level.key.clone(),
                    name_en: level.name_en.clone(),
                    score: level.score,
                    when,
                    text: level.when.clone(),
                });
            }
            if dim.levels.last().is_some_and(|l| l.when.is_some()) {
                self.err(
                    format!("{path}.levels[{}].when", dim.levels.len() - 1),
                    "missing_default",
                    "最后一个等级不应有条件：它接收其余所有客户".into(),
                    "the last level must have no condition: it takes everyone else".into(),
                );
            }
            self.check_threshold_order(&levels, &path);
            scheme.dimensions.push(Dimension {
                key: dim.key.clone(),
                name: dim.name.trim().to_string(),
                name_en: dim.name_en.clone(),
                weight: dim.weight,
                levels,
            });
        }
    }

    /// Levels tried in order over one indicator with thresholds
    /// (`>= 100万`, then `>= 50万`) must be ordered, or a later level is unreachable.
    fn check_threshold_order(&mut self, levels: &[Level], path: &str) {
        let mut seen: Vec<(usize, CmpOp, i64)> = Vec::new();
        for (l, level) in levels.iter().enumerate() {
            let Some(Cond::Value {
                ind,
                op,
                rhs: Value::Num(t),
            }) = &level.when
            else {
                continue;
            };
            for &(ind0, op0, t0) in &seen {
                if ind0 != *ind {
                    continue;
                }
                // The earlier level already takes everyone this one would.
                let shadowed = match (op0, op) {
                    (CmpOp::Ge | CmpOp::Gt, CmpOp::Ge) => t0 < *t || (t0 == *t && op0 == CmpOp::Ge),
                    (CmpOp::Ge | CmpOp::Gt, CmpOp::Gt) => t0 <= *t,
                    (CmpOp::Le | CmpOp::Lt, CmpOp::Le) => t0 > *t || (t0 == *t && op0 == CmpOp::Le),
                    (CmpOp::Le | CmpOp::Lt, CmpOp::Lt) => t0 >= *t,
                    (CmpOp::Eq, CmpOp::Eq) => t0 == *t,
                    _ => false,
                };
                if shadowed {
                    self.err(
                        format!("{path}.levels[{l}].when"),
                        "threshold_order",
                        "阈值顺序不对：前面的等级已经包含了这个等级的所有客户，它永远不会被用到（从高到低排列阈值）".into(),
                        "thresholds out of order: an earlier level already takes every customer of this one, so it can never apply (order thresholds from high to low)".into(),
                    );
                    break;
                }
            }
            seen.push((*ind, *op, *t));
        }
    }

    fn classes(&mut self, spec: &SchemeSpec, scheme: &mut Scheme) {
        if spec.classes.is_empty() {
            self.err(
                "classes",
                "no_classes",
                "至少需要一个类别".into(),
                "a scheme needs at least one class".into(),
            );
        }
        for (i, c) in spec.classes.iter().enumerate() {
            if !valid_label(&c.key) {
                self.err(format!("classes[{i}].key"), "invalid_label", "类别名称不能为空、超过 20 个字或包含空格、括号、比较符和引号".into(), "a class name is 1–20 characters without spaces, brackets, comparison signs or quotes".into());
            }
            if spec.classes[..i].iter().any(|o| o.key == c.key) {
                self.errors.push(FieldError::new(
                    format!("classes[{i}].key"),
                    Reason::Duplicate,
                ));
            }
            scheme.classes.push(c.clone());
        }
    }

    fn class_ref(&mut self, scheme: &Scheme, name: &str, path: String) -> Option<usize> {
        let found = scheme.class_index(name);
        if found.is_none() {
            let known = scheme.class_keys().join("、");
            self.err(
                path,
                "unknown_class",
                format!("类别“{name}”不存在（可选：{known}）"),
                format!("there is no class “{name}” (classes: {known})"),
            );
        }
        found
    }

    fn assign(&mut self, spec: &SchemeSpec, scheme: &mut Scheme) {
        let mut used = vec![false; scheme.classes.len()];
        match &spec.assign {
            AssignSpec::Rules { rules, default } => {
                let mut out = Vec::new();
                for (i, r) in rules.iter().enumerate() {
                    let path = format!("assign.rules[{i}]");
                    let class = self.class_ref(scheme, &r.class, format!("{path}.class"));
                    let when =
                        self.condition(&r.when, &format!("{path}.when"), scheme, Place::Rule);
                    if let (Some(class), Some(when)) = (class, when) {
                        used[class] = true;
                        out.push(Rule {
                            when,
                            class,
                            text: r.when.trim().to_string(),
                        });
                    }
                }
                let default = self
                    .class_ref(scheme, default, "assign.default".into())
                    .unwrap_or(0);
                if let Some(u) = used.get_mut(default) {
                    *u = true;
                }
                scheme.assign = Assign::Rules {
                    rules: out,
                    default,
                };
            }
            AssignSpec::Score { bands } => {
                if spec.dimensions.is_empty() {
                    self.err(
                        "assign",
                        "no_dimensions",
                        "按得分分档需要带权重的维度".into(),
                        "score bands need weighted dimensions".into(),
                    );
                }
                let mut out = Vec::new();
                for (i, b) in bands.iter().enumerate() {
                    let path = format!("assign.bands[{i}]");
                    if b.min > 100 {
                        self.errors.push(FieldError::new(
                            format!("{path}.min"),
                            Reason::OutOfRange {
                                min: Some("0".into()),
                                max: Some("100".into()),
                            },
                        ));
                    }
                    if i > 0 && bands[i - 1].min <= b.min {
                        self.err(
                            format!("{path}.min"),
                            "threshold_order",
                            "分档的最低分应从高到低、互不相同".into(),
                            "band minimums must go from high to low without repeats".into(),
                        );
                    }
                    if let Some(class) = self.class_ref(scheme, &b.class, format!("{path}.class")) {
                        used[class] = true;
                        out.push((i64::from(b.min) * 100, class));
                    }
                }
                if bands.last().is_none_or(|b| b.min != 0) {
                    self.err(
                        "assign.bands",
                        "missing_default",
                        "最后一档的最低分应为 0，使每个客户都有类别".into(),
                        "the last band must start at 0 so every customer gets a class".into(),
                    );
                }
                scheme.assign = Assign::Score { bands: out };
            }
        }
        for (i, u) in used.iter().enumerate() {
            if !u {
                let key = &scheme.classes[i].key;
                self.err(
                    format!("classes[{i}]"),
                    "unreachable",
                    format!("没有任何规则或分档会得到类别“{key}”"),
                    format!("no rule or band ever gives the class “{key}”"),
                );
            }
        }
    }

    fn condition(
        &mut self,
        src: &str,
        path: &str,
        scheme: &mut Scheme,
        place: Place,
    ) -> Option<Cond> {
        let parsed = match expr::parse(src) {
            Ok(e) => e,
            Err(e) => {
                self.err(
                    path,
                    "expr_syntax",
                    e.message(Lang::Zh),
                    e.message(Lang::En),
                );
                return None;
            }
        };
        let mut r = Resolver {
            scheme,
            place,
            problems: Vec::new(),
            catalog: self.catalog,
            broken: &self.broken,
        };
        let cond = r.cond(&parsed);
        let problems = std::mem::take(&mut r.problems);
        for (code, zh, en) in problems {
            self.err(path, code, zh, en);
        }
        cond
    }
}

type Problem = (&'static str, String, String);

struct Resolver<'s, 'c> {
    scheme: &'s mut Scheme,
    place: Place,
    problems: Vec<Problem>,
    catalog: Catalog<'c>,
    broken: &'s [bool],
}

/// What a name in a condition stands for.
enum Target {
    Indicator(usize),
    Dimension(usize),
    Class(ClassOf),
}

impl Resolver<'_, '_> {
    fn problem(&mut self, code: &'static str, zh: String, en: String) {
        self.problems.push((code, zh, en));
    }

    fn target(&mut self, name: &Name) -> Option<Target> {
        let n = name.text.as_str();
        let pos = name.span.start + 1;
        if let Some(i) = self
            .scheme
            .indicators
            .iter()
            .position(|x| x.key == n || x.name == n)
        {
            // A refused indicator: its own error says what is wrong.
            return (!self.broken.get(i).copied().unwrap_or(false)).then_some(Target::Indicator(i));
        }
        if let Some(d) = self
            .scheme
            .dimensions
            .iter()
            .position(|x| x.key == n || x.name == n)
        {
            if self.place == Place::Level {
                self.problem("level_uses_dimension", format!("第 {pos} 个字符：等级条件只能使用指标，不能使用维度“{n}”"), format!("character {pos}: a level condition may use indicators only, not the dimension “{n}”"));
                return None;
            }
            return Some(Target::Dimension(d));
        }
        if n == "previous" || n == "当前类别" || n == "原类别" {
            if self.place == Place::Level {
                self.problem(
                    "level_uses_class",
                    format!("第 {pos} 个字符：等级条件不能使用类别"),
                    format!("character {pos}: a level condition cannot use classes"),
                );
                return None;
            }
            return Some(Target::Class(ClassOf::Previous));
        }
        if let Some(other) = n.strip_prefix("scheme.") {
            if self.place == Place::Level {
                self.problem(
                    "level_uses_class",
                    format!("第 {pos} 个字符：等级条件不能使用类别"),
                    format!("character {pos}: a level condition cannot use classes"),
                );
                return None;
            }
            if other == self.scheme.key {
                self.problem(
                    "cycle",
                    format!("第 {pos} 个字符：方案不能引用自身的类别，请用 previous（当前类别）"),
                    format!("character {pos}: a scheme cannot read its own class; use previous"),
                );
                return None;
            }
            if self.catalog.schemes.is_some_and(|s| !s.contains_key(other)) {
                self.problem(
                    "unknown_name",
                    format!("第 {pos} 个字符：分类方案“{other}”不存在"),
                    format!("character {pos}: there is no classification scheme “{other}”"),
                );
                return None;
            }
            self.scheme.depends_on.insert(other.to_string());
            return Some(Target::Class(ClassOf::Scheme(other.to_string())));
        }
        let known: Vec<&str> = self
            .scheme
            .indicators
            .iter()
            .map(|i| i.key.as_str())
            .chain(self.scheme.dimensions.iter().map(|d| d.key.as_str()))
            .collect();
        self.problem(
            "unknown_name",
            format!("第 {pos} 个字符：“{n}”不是本方案的指标或维度（可用：{}）", known.join("、")),
            format!("character {pos}: “{n}” is not an indicator or dimension of this scheme (known: {})", known.join(", ")),
        );
        None
    }

    fn cond(&mut self, e: &Expr) -> Option<Cond> {
        match e {
            Expr::And(xs) => all_or_none(xs.iter().map(|x| self.cond(x)).collect()).map(Cond::And),
            Expr::Or(xs) => all_or_none(xs.iter().map(|x| self.cond(x)).collect()).map(Cond::Or),
            Expr::Not(x) => self.cond(x).map(|c| Cond::Not(Box::new(c))),
            Expr::Name(name) => match self.target(name)? {
                Target::Indicator(i) if self.scheme.indicators[i].kind == ValueKind::Bool => {
                    Some(Cond::Flag(i))
                }
                _ => {
                    let pos = name.span.start + 1;
                    let n = &name.text;
                    self.problem(
                        "incomplete",
                        format!("第 {pos} 个字符：“{n}”后面缺少比较，例如 {n} = 值"),
                        format!("character {pos}: “{n}” needs a comparison, e.g. {n} = value"),
                    );
                    None
                }
            },
            Expr::Compare { name, op, value } => {
                let target = self.target(name)?;
                match target {
                    Target::Indicator(i) => {
                        let rhs = self.value(i, value)?;
                        self.check_op(i, *op, &rhs, value)?;
                        Some(Cond::Value {
                            ind: i,
                            op: *op,
                            rhs,
                        })
                    }
                    Target::Dimension(d) => Some(Cond::Level {
                        dim: d,
                        op: *op,
                        level: self.level(d, value)?,
                    }),
                    Target::Class(of) => {
                        if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                            let pos = value.span.start + 1;
                            self.problem(
                                "bad_operator",
                                format!("第 {pos} 个字符附近：类别只能用 = 或 != 比较"),
                                format!("near character {pos}: classes compare with = or != only"),
                            );
                            return None;
                        }
                        Some(Cond::Class {
                            class: self.class_name(&of, value)?,
                            of,
                            op: *op,
                        })
                    }
                }
            }
            Expr::In {
                name,
                values,
                negated,
            } => {
                let target = self.target(name)?;
                match target {
                    Target::Indicator(i) => {
                        let vs = all_or_none(values.iter().map(|v| self.value(i, v)).collect())?;
                        Some(Cond::ValueIn {
                            ind: i,
                            values: vs,
                            negated: *negated,
                        })
                    }
                    Target::Dimension(d) => {
                        let ls = all_or_none(values.iter().map(|v| self.level(d, v)).collect())?;
                        Some(Cond::LevelIn {
                            dim: d,
                            levels: ls,
                            negated: *negated,
                        })
                    }
                    Target::Class(of) => {
                        let cs =
                            all_or_none(values.iter().map(|v| self.class_name(&of, v)).collect())?;
                        Some(Cond::ClassIn {
                            of,
                            classes: cs,
                            negated: *negated,
                        })
                    }
                }
            }
        }
    }

    fn value(&mut self, ind: usize, lit: &Literal) -> Option<Value> {
        let kind = self.scheme.indicators[ind].kind;
        match literal_value(lit, kind) {
            Ok(v) => Some(v),
            Err(e) => {
                let pos = lit.span.start + 1;
                let (name, shown) = (&self.scheme.indicators[ind].key, lit.as_text());
                let (zh, en) = (e.message(Lang::Zh), e.message(Lang::En));
                self.problem(
                    "bad_value",
                    format!("第 {pos} 个字符：“{shown}”不适用于指标“{name}”，{zh}"),
                    format!("character {pos}: “{shown}” does not fit indicator “{name}”: {en}"),
                );
                None
            }
        }
    }

    fn check_op(&mut self, ind: usize, op: CmpOp, rhs: &Value, lit: &Literal) -> Option<()> {
        let kind = self.scheme.indicators[ind].kind;
        let ordered = matches!(kind, ValueKind::Num(_) | ValueKind::Date);
        let pos = lit.span.start + 1;
        if !ordered && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            self.problem(
                "bad_operator",
                format!("第 {pos} 个字符附近：文字、列表和是/否只能用 = 或 != 比较"),
                format!("near character {pos}: text, lists and yes/no compare with = or != only"),
            );
            return None;
        }
        if *rhs == Value::Missing && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            self.problem(
                "bad_operator",
                format!("第 {pos} 个字符附近：“空”只能用 = 或 != 比较"),
                format!("near character {pos}: “empty” compares with = or != only"),
            );
            return None;
        }
        Some(())
    }

    fn level(&mut self, dim: usize, lit: &Literal) -> Option<usize> {
        let text = lit.as_text();
        let d = &self.scheme.dimensions[dim];
        if let Some(l) = d.levels.iter().position(|l| {
            l.key == text || (!l.name_en.is_empty() && l.name_en.eq_ignore_ascii_case(&text))
        }) {
            return Some(l);
        }
        let pos = lit.span.start + 1;
        let known: Vec<&str> = d.levels.iter().map(|l| l.key.as_str()).collect();
        let (dk, joined_zh, joined_en) = (d.key.clone(), known.join("、"), known.join(", "));
        self.problem(
            "unknown_level",
            format!("第 {pos} 个字符：维度“{dk}”没有等级“{text}”（可选：{joined_zh}）"),
            format!(
                "character {pos}: dimension “{dk}” has no level “{text}” (levels: {joined_en})"
            ),
        );
        None
    }

    fn class_name(&mut self, of: &ClassOf, lit: &Literal) -> Option<String> {
        let text = lit.as_text();
        if super::value::is_missing_word(&text) {
            return Some(String::new());
        }
        let known: Vec<String> = match of {
            ClassOf::Previous => self
                .scheme
                .spec
                .classes
                .iter()
                .map(|c| c.key.clone())
                .collect(),
            ClassOf::Scheme(k) => match self.catalog.schemes.and_then(|s| s.get(k)) {
                Some(classes) => classes.clone(),
                None => return Some(text),
            },
        };
        if known.contains(&text) {
            return Some(text);
        }
        let pos = lit.span.start + 1;
        self.problem(
            "unknown_class",
            format!(
                "第 {pos} 个字符：类别“{text}”不存在（可选：{}）",
                known.join("、")
            ),
            format!(
                "character {pos}: there is no class “{text}” (classes: {})",
                known.join(", ")
            ),
        );
        None
    }
}

/// Every item resolved, or None; unlike `collect::<Option<_>>()` on the
/// iterator, every item is tried first, so every problem gets reported.
fn all_or_none<T>(items: Vec<Option<T>>) -> Option<Vec<T>> {
    items.into_iter().collect()
}

/// Orders schemes so that every scheme comes after those whose class it
/// reads; a cycle is refused with its path (a → b → a).
pub fn evaluation_order(schemes: &[Scheme]) -> Result<Vec<usize>, String> {
    let index: BTreeMap<&str, usize> = schemes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.as_str(), i))
        .collect();
    let mut state = vec![0u8; schemes.len()]; // 0 new, 1 on the path, 2 done
    let mut order = Vec::new();
    fn visit(
        i: usize,
        schemes: &[Scheme],
        index: &BTreeMap<&str, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
        path: &mut Vec<usize>,
    ) -> Result<(), String> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut names: Vec<&str> = path[start..]
                    .iter()
                    .map(|&p| schemes[p].key.as_str())
                    .collect();
                names.push(&schemes[i].key);
                return Err(names.join(" → "));
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        for dep in &schemes[i].depends_on {
            if let Some(&j) = index.get(dep.as_str()) {
                visit(j, schemes, index, state, order, path)?;
            }
        }
        path.pop();
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..schemes.len() {
        visit(i, schemes, &index, &mut state, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}
