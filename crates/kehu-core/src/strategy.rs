//! Strategies: what the company does for the customers of one class — the
//! follow-up cadence, the service SLA, the resources, a measurable goal and
//! the owner level — and the working days a cadence puts work on in a
//! period (a quarter, a month, a year).
//!
//! *Invariant*: a cadence item is schedulable: at least once and at most
//! once per working day of its period; every date a [`Schedule`] gives is a
//! working day of the calendar it was built with.

use crate::calendar::WorkCalendar;
use crate::error::{Reason, ValidationErrors};
use crate::text::{clean, parse_long_text, parse_text, to_half_width};
use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Serialize};

labelled_enum!(Action {
    Visit = "visit" / "拜访",
    Call = "call" / "电话",
    Contact = "contact" / "联系",
    Message = "message" / "促销信息",
    Training = "training" / "培训",
});

labelled_enum!(Per {
    Week = "week" / "每周",
    Month = "month" / "每月",
    Quarter = "quarter" / "每季度",
    HalfYear = "half_year" / "每半年",
    Year = "year" / "每年",
});

labelled_enum!(OwnerLevel {
    Director = "director" / "销售总监",
    Specialist = "specialist" / "销售专员",
    Assistant = "assistant" / "销售助理",
});

labelled_enum!(GoalMetric {
    PurchaseGrowth = "purchase_growth" / "年采购额增长",
    OrderGrowth = "order_growth" / "采购频次增长",
    ProductLines = "product_lines" / "新增产品线",
    Retention = "retention" / "客户保留率",
});

impl Action {
    pub fn label_en(self) -> &'static str {
        match self {
            Action::Visit => "visit",
            Action::Call => "call",
            Action::Contact => "contact",
            Action::Message => "promotion message",
            Action::Training => "training",
        }
    }
}

impl Per {
    /// The period's length in months; None for a week.
    pub fn months(self) -> Option<u32> {
        match self {
            Per::Week => None,
            Per::Month => Some(1),
            Per::Quarter => Some(3),
            Per::HalfYear => Some(6),
            Per::Year => Some(12),
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            Per::Week => "weekly",
            Per::Month => "monthly",
            Per::Quarter => "quarterly",
            Per::HalfYear => "half-yearly",
            Per::Year => "yearly",
        }
    }
    /// At most once per working day: 5 a week, about 20 a month.
    fn max_times(self) -> u32 {
        self.months().map_or(5, |m| m * 20)
    }
}

impl GoalMetric {
    /// The target's unit: percent, or a count of product lines.
    pub fn unit(self) -> &'static str {
        match self {
            GoalMetric::ProductLines => "条",
            _ => "%",
        }
    }
    fn target_range(self) -> (i64, i64) {
        match self {
            GoalMetric::ProductLines => (1, 100),
            GoalMetric::Retention => (1, 100),
            _ => (-100, 1000),
        }
    }
}

impl OwnerLevel {
    pub fn label_en(self) -> &'static str {
        match self {
            OwnerLevel::Director => "sales director",
            OwnerLevel::Specialist => "sales specialist",
            OwnerLevel::Assistant => "sales assistant",
        }
    }
    /// The level a role holds unless the user's own level says otherwise.
    pub fn of_role(role: &str) -> Option<OwnerLevel> {
        match role {
            "sales_manager" => Some(OwnerLevel::Director),
            "sales_rep" => Some(OwnerLevel::Specialist),
            _ => None,
        }
    }
}

/// One recurring piece of work: `times` × `action` per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CadenceItem {
    pub action: Action,
    pub per: Per,
    pub times: u32,
}

impl CadenceItem {
    pub fn text_zh(&self) -> String {
        format!(
            "{}{}{}次",
            self.per.label_zh(),
            self.action.label_zh(),
            self.times
        )
    }
    pub fn text_en(&self) -> String {
        match self.times {
            1 => format!("{} {}", self.per.label_en(), self.action.label_en()),
            n => format!("{} {} ×{n}", self.per.label_en(), self.action.label_en()),
        }
    }
}

/// A cadence as people write it: `每季度拜访1次 + 每月联系1次`, or
/// `quarterly visit + monthly call x2`; items separated by `+`, `；`, `,`
/// or new lines, the count optional (1). The error names the item.
pub fn parse_cadence(raw: &str) -> Result<Vec<CadenceItem>, Reason> {
    let text = to_half_width(raw);
    let mut items = Vec::new();
    for (n, piece) in text
        .split(['+', ';', ',', '，', '；', '、', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let item = parse_item(piece).ok_or_else(|| Reason::Rule {
            code: "cadence",
            zh: format!(
                "第 {} 项“{piece}”无法识别，应写作“每季度拜访1次”（周期：每周/每月/每季度/每半年/每年；动作：拜访/电话/联系/促销信息/培训）",
                n + 1
            ),
            en: format!(
                "item {} \"{piece}\" is not understood; write e.g. \"quarterly visit x1\" (weekly/monthly/quarterly/half-yearly/yearly; visit/call/contact/message/training)",
                n + 1
            ),
        })?;
        if item.times == 0 || item.times > item.per.max_times() {
            return Err(Reason::Rule {
                code: "cadence_unschedulable",
                zh: format!(
                    "第 {} 项“{piece}”无法排期：{}次数应在 1 到 {} 之间（每个工作日至多一次）",
                    n + 1,
                    item.per.label_zh(),
                    item.per.max_times()
                ),
                en: format!(
                    "item {} \"{piece}\" cannot be scheduled: {} it must happen 1 to {} times (at most once per working day)",
                    n + 1,
                    item.per.label_en(),
                    item.per.max_times()
                ),
            });
        }
        if items
            .iter()
            .any(|i: &CadenceItem| i.action == item.action && i.per == item.per)
        {
            return Err(Reason::Rule {
                code: "cadence_repeated",
                zh: format!("第 {} 项“{piece}”与前面的项重复，请合并次数", n + 1),
                en: format!(
                    "item {} \"{piece}\" repeats an earlier one; add up the times",
                    n + 1
                ),
            });
        }
        items.push(item);
    }
    Ok(items)
}

fn parse_item(piece: &str) -> Option<CadenceItem> {
    let lower = piece.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    // English: "<per> <action> [x]N"
    if let Some(per) = words.first().and_then(|w| {
        Per::ALL
            .iter()
            .copied()
            .find(|p| p.label_en() == *w || p.key() == *w)
    }) {
        let (action, rest) = match words.get(1..)? {
            [] => return None,
            ["promotion", "message", rest @ ..] => (Action::Message, rest),
            [a, rest @ ..] => (
                Action::ALL
                    .iter()
                    .copied()
                    .find(|x| x.key() == *a || x.label_en() == *a)?,
                rest,
            ),
        };
        let times = match rest {
            [] => 1,
            [n] => n.trim_start_matches(['x', '×']).parse().ok()?,
            ["x" | "×", n] => n.parse().ok()?,
            _ => return None,
        };
        return Some(CadenceItem { action, per, times });
    }
    // Chinese: "<每季度><拜访>[N次]"
    let s: String = clean(piece)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let per = Per::ALL
        .iter()
        .copied()
        .find(|p| s.starts_with(p.label_zh()))?;
    let rest = &s[per.label_zh().len()..];
    let action = Action::ALL
        .iter()
        .copied()
        .find(|a| rest.starts_with(a.label_zh()))?;
    let count = rest[action.label_zh().len()..].trim_end_matches('次');
    let times = if count.is_empty() {
        1
    } else {
        count.parse().ok()?
    };
    Some(CadenceItem { action, per, times })
}

/// A cadence as [`parse_cadence`] reads it.
pub fn cadence_text(items: &[CadenceItem]) -> String {
    items
        .iter()
        .map(CadenceItem::text_zh)
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The strategy of one class of one scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strategy {
    pub scheme_key: String,
    pub class_name: String,
    pub cadence: Vec<CadenceItem>,
    /// Service requests and complaints are answered within this many working hours.
    pub sla_hours: u32,
    pub resources: String,
    pub goal: String,
    pub goal_metric: GoalMetric,
    /// Percent for growth and retention, a count for product lines.
    pub goal_target: i64,
    pub owner_level: OwnerLevel,
}

/// A strategy as entered (API body, form fields); `cadence` in the text form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrategyInput {
    #[serde(default)]
    pub scheme_key: Option<String>,
    #[serde(default)]
    pub class_name: Option<String>,
    #[serde(default)]
    pub cadence: Option<String>,
    #[serde(default)]
    pub sla_hours: Option<i64>,
    #[serde(default)]
    pub resources: Option<String>,
    #[serde(default)]
    pub goal: Option<String>,
    #[serde(default)]
    pub goal_metric: Option<String>,
    #[serde(default)]
    pub goal_target: Option<i64>,
    #[serde(default)]
    pub owner_level: Option<String>,
}

/// SLAs longer than a month of working hours are not service levels.
pub const MAX_SLA_HOURS: i64 = 720;

impl StrategyInput {
    /// Checks every field; `classes_of` gives a published scheme's classes
    /// (None: no such scheme).
    pub fn validate(
        &self,
        classes_of: impl Fn(&str) -> Option<Vec<String>>,
    ) -> Result<Strategy, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let required = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_default();
        let scheme_key = required(&self.scheme_key);
        let class_name = required(&self.class_name);
        if scheme_key.is_empty() {
            e.push("scheme_key", Reason::Required);
        } else {
            match classes_of(&scheme_key) {
                None => e.push(
                    "scheme_key",
                    Reason::Other {
                        zh: format!("没有已发布的分类方案“{scheme_key}”"),
                        en: format!("no published classification scheme \"{scheme_key}\""),
                    },
                ),
                Some(_) if class_name.is_empty() => e.push("class_name", Reason::Required),
                Some(classes) if !classes.contains(&class_name) => {
                    e.push("class_name", Reason::UnknownOption { allowed: classes })
                }
                Some(_) => {}
            }
        }
        let cadence = e.check(
            "cadence",
            parse_cadence(self.cadence.as_deref().unwrap_or("")),
        );
        let sla_hours = match self.sla_hours {
            None => {
                e.push("sla_hours", Reason::Required);
                None
            }
            Some(h) if !(1..=MAX_SLA_HOURS).contains(&h) => {
                e.push(
                    "sla_hours",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some(MAX_SLA_HOURS.to_string()),
                    },
                );
                None
            }
            Some(h) => u32::try_from(h).ok(),
        };
        // Resources are optional: a class may get nothing beyond the standard.
        let resources = match self
            .resources
            .as_deref()
            .map(clean)
            .filter(|r| !r.is_empty())
        {
            None => Some(String::new()),
            Some(r) => e.check("resources", parse_long_text(&r, 500)),
        };
        let goal = e.check("goal", parse_text(self.goal.as_deref().unwrap_or(""), 200));
        let goal_metric = e.check(
            "goal_metric",
            GoalMetric::parse(self.goal_metric.as_deref().unwrap_or("")),
        );
        let goal_target = match (goal_metric, self.goal_target) {
            (_, None) => {
                e.push("goal_target", Reason::Required);
                None
            }
            (Some(m), Some(t)) => {
                let (min, max) = m.target_range();
                if (min..=max).contains(&t) {
                    Some(t)
                } else {
                    e.push(
                        "goal_target",
                        Reason::OutOfRange {
                            min: Some(min.to_string()),
                            max: Some(max.to_string()),
                        },
                    );
                    None
                }
            }
            (None, Some(t)) => Some(t),
        };
        let owner_level = e.check(
            "owner_level",
            OwnerLevel::parse(self.owner_level.as_deref().unwrap_or("")),
        );
        e.into_result()?;
        match (
            cadence,
            sla_hours,
            resources,
            goal,
            goal_metric,
            goal_target,
            owner_level,
        ) {
            (
                Some(cadence),
                Some(sla_hours),
                Some(resources),
                Some(goal),
                Some(goal_metric),
                Some(goal_target),
                Some(owner_level),
            ) => Ok(Strategy {
                scheme_key,
                class_name,
                cadence,
                sla_hours,
                resources,
                goal,
                goal_metric,
                goal_target,
                owner_level,
            }),
            _ => Err(ValidationErrors::single("cadence", Reason::Required)),
        }
    }
}

impl Strategy {
    /// The input that gives this strategy back (forms start from it).
    pub fn input(&self) -> StrategyInput {
        StrategyInput {
            scheme_key: Some(self.scheme_key.clone()),
            class_name: Some(self.class_name.clone()),
            cadence: Some(cadence_text(&self.cadence)),
            sla_hours: Some(i64::from(self.sla_hours)),
            resources: Some(self.resources.clone()),
            goal: Some(self.goal.clone()),
            goal_metric: Some(self.goal_metric.key().into()),
            goal_target: Some(self.goal_target),
            owner_level: Some(self.owner_level.key().into()),
        }
    }
}

/// design.md's strategies for the 价值分层 classes, shipped ready.
pub fn presets() -> Vec<Strategy> {
    let item = |action, per| CadenceItem {
        action,
        per,
        times: 1,
    };
    let strategy = |class: &str,
                    cadence,
                    sla_hours,
                    resources: &str,
                    goal: &str,
                    goal_metric,
                    goal_target,
                    owner_level| Strategy {
        scheme_key: "value_tier".into(),
        class_name: class.into(),
        cadence,
        sla_hours,
        resources: resources.into(),
        goal: goal.into(),
        goal_metric,
        goal_target,
        owner_level,
    };
    vec![
        strategy(
            "战略型",
            vec![
                item(Action::Visit, Per::Quarter),
                item(Action::Contact, Per::Month),
            ],
            2,
            "专属客服、定制方案",
            "年采购额 +15 %",
            GoalMetric::PurchaseGrowth,
            15,
            OwnerLevel::Director,
        ),
        strategy(
            "潜力型",
            vec![item(Action::Call, Per::Month)],
            4,
            "新产品试用、培训",
            "提高采购频次、增加产品线",
            GoalMetric::OrderGrowth,
            20,
            OwnerLevel::Specialist,
        ),
        strategy(
            "维持型",
            vec![item(Action::Call, Per::Quarter)],
            8,
            "标准服务",
            "保持合作",
            GoalMetric::Retention,
            90,
            OwnerLevel::Specialist,
        ),
        strategy(
            "优化型",
            vec![item(Action::Message, Per::Quarter)],
            8,
            "标准服务",
            "保持合作、降低服务成本",
            GoalMetric::Retention,
            80,
            OwnerLevel::Assistant,
        ),
    ]
}

/// A stretch of days work is generated for: `2026-Q3`, `2026-12`, `2026`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveDate,
    /// Inclusive.
    pub end: NaiveDate,
}

impl Period {
    /// The quarter `day` falls in.
    pub fn quarter_of(day: NaiveDate) -> Period {
        let first_month = (day.month0() / 3) * 3 + 1;
        let start = NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day);
        Period::months_from(start, 3)
    }

    /// The calendar month `day` falls in.
    pub fn month_of(day: NaiveDate) -> Period {
        Period::months_from(day.with_day(1).unwrap_or(day), 1)
    }

    fn months_from(start: NaiveDate, months: u32) -> Period {
        let end = start
            .checked_add_months(Months::new(months))
            .and_then(|d| d.pred_opt())
            .unwrap_or(start);
        Period { start, end }
    }

    /// The period after this one, of the same length in months.
    pub fn next(&self) -> Period {
        let months = (self.end.year() - self.start.year()) as u32 * 12 + self.end.month()
            - self.start.month()
            + 1;
        Period::months_from(self.end.succ_opt().unwrap_or(self.end), months)
    }

    /// `2026-Q3` for a quarter, `2026-12` for a month, `2026` for a year;
    /// else the two dates.
    pub fn label(&self) -> String {
        let next = self.end.succ_opt().unwrap_or(self.end);
        let months = (next.year() - self.start.year()) * 12 + next.month() as i32
            - self.start.month() as i32;
        match (self.start.day(), next.day(), months) {
            (1, 1, 3) if self.start.month0().is_multiple_of(3) => {
                format!("{}-Q{}", self.start.year(), self.start.month0() / 3 + 1)
            }
            (1, 1, 1) => format!("{}-{:02}", self.start.year(), self.start.month()),
            (1, 1, 12) if self.start.month() == 1 => self.start.year().to_string(),
            _ => format!("{}..{}", self.start, self.end),
        }
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end
    }
    /// Whole months in the period.
    pub fn months(&self) -> u32 {
        let next = self.end.succ_opt().unwrap_or(self.end);
        ((next.year() - self.start.year()) * 12 + next.month() as i32 - self.start.month() as i32)
            .max(1) as u32
    }

    /// The period of the same length just before this one.
    pub fn previous(&self) -> Period {
        let start = self
            .start
            .checked_sub_months(Months::new(self.months()))
            .unwrap_or(self.start);
        Period {
            start,
            end: self.start.pred_opt().unwrap_or(self.start),
        }
    }
}

/// Reads `2026-Q3` (or `2026Q3`, `2026-q3`), `2026-12`, `2026`.
pub fn parse_period(raw: &str) -> Result<Period, Reason> {
    let s = clean(raw).to_uppercase();
    let bad = || Reason::Other {
        zh: format!("“{s}”不是期间，应写作 2026-Q3、2026-12 或 2026"),
        en: format!("\"{s}\" is not a period; write 2026-Q3, 2026-12 or 2026"),
    };
    if s.is_empty() {
        return Err(Reason::Required);
    }
    let year = |y: &str| -> Result<i32, Reason> {
        y.parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(bad)
    };
    let date = |y, m| NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad);
    if let Some((y, q)) = s.split_once('Q') {
        let y = year(y.trim_end_matches('-'))?;
        let q: u32 = q
            .parse()
            .ok()
            .filter(|q| (1..=4).contains(q))
            .ok_or_else(bad)?;
        return Ok(Period::months_from(date(y, (q - 1) * 3 + 1)?, 3));
    }
    if let Some((y, m)) = s.split_once('-') {
        let m: u32 = m
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(bad)?;
        return Ok(Period::months_from(date(year(y)?, m)?, 1));
    }
    Ok(Period::months_from(date(year(&s)?, 1)?, 12))
}

/// One occurrence slot of a cadence item: its key (stable across runs,
/// so generating twice makes the work once) and the working days it may
/// fall on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub days: Vec<NaiveDate>,
}

/// Where one cadence item puts work in a period: every occurrence that
/// falls due in it. Built once per item and period, then asked per customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub item: CadenceItem,
    pub period: Period,
    /// Slots with at least one working day in the period.
    pub slots: Vec<Slot>,
}

impl Schedule {
    /// The item's periods (weeks from Monday; months, quarters, half-years
    /// and years aligned to the calendar year) overlapping `period`, each
    /// split into `times` equal slots; a slot's days are all its working
    /// days, in the period or not, so that the day a customer gets does not
    /// depend on which period is generated first. A slot without working days (a week of holidays)
    /// moves to the next working day if that is still inside its unit.
    pub fn new(item: CadenceItem, period: &Period, calendar: &WorkCalendar) -> Schedule {
        let mut slots = Vec::new();
        let mut unit_start = match item.per.months() {
            None => {
                period.start
                    - chrono::Duration::days(period.start.weekday().num_days_from_monday() as i64)
            }
            Some(m) => {
                let month0 = (period.start.month0() / m) * m;
                NaiveDate::from_ymd_opt(period.start.year(), month0 + 1, 1).unwrap_or(period.start)
            }
        };
        while unit_start <= period.end {
            let unit_next = match item.per.months() {
                None => unit_start + chrono::Duration::days(7),
                Some(m) => unit_start
                    .checked_add_months(Months::new(m))
                    .unwrap_or(period.end),
            };
            let len = (unit_next - unit_start).num_days();
            let times = i64::from(item.times);
            for j in 0..times {
                let from = unit_start + chrono::Duration::days(len * j / times);
                let to = unit_start + chrono::Duration::days(len * (j + 1) / times);
                let mut days: Vec<NaiveDate> = from
                    .iter_days()
                    .take_while(|d| *d < to)
                    .filter(|d| calendar.is_working_day(*d))
                    .collect();
                if days.is_empty() {
                    let next = calendar.on_or_after(to);
                    if next < unit_next {
                        days.push(next);
                    }
                }
                if days.iter().any(|d| period.contains(*d)) {
                    slots.push(Slot {
                        key: format!("{}-{}-{}", item.per.key(), unit_start, j + 1),
                        days,
                    });
                }
            }
            if unit_next <= unit_start {
                break;
            }
            unit_start = unit_next;
        }
        Schedule {
            item,
            period: *period,
            slots,
        }
    }

    /// The day of each slot for one customer, those in the period: spread
    /// over the slot's working days by `spread` (the customer id), so a
    /// rep's visits do not all land on the same day.
    pub fn days_for(&self, spread: i64) -> impl Iterator<Item = (&str, NaiveDate)> + '_ {
        self.slots.iter().filter_map(move |slot| {
            let h = mix(spread as u64
                ^ ((self.item.action as u64) << 56)
                ^ ((self.item.per as u64) << 48));
            let day = slot.days[(h % slot.days.len() as u64) as usize];
            self.period
                .contains(day)
                .then_some((slot.key.as_str(), day))
        })
    }
}

/// SplitMix64's finalizer: a cheap, well-spread hash of an integer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::parse_calendar;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn cadences_are_read_in_chinese_and_english() {
        let item = |action, per, times| CadenceItem { action, per, times };
        let cases: Vec<(&str, Result<Vec<CadenceItem>, &str>)> = vec![
            (
                "每季度拜访1次 + 每月联系1次",
                Ok(vec![
                    item(Action::Visit, Per::Quarter, 1),
                    item(Action::Contact, Per::Month, 1),
                ]),
            ),
            ("每月电话", Ok(vec![item(Action::Call, Per::Month, 1)])),
            (
                "每 月 电话 2 次",
                Ok(vec![item(Action::Call, Per::Month, 2)]),
            ),
            (
                "每季度促销信息；每半年培训",
                Ok(vec![
                    item(Action::Message, Per::Quarter, 1),
                    item(Action::Training, Per::HalfYear, 1),
                ]),
            ),
            (
                "quarterly visit + monthly call x2",
                Ok(vec![
                    item(Action::Visit, Per::Quarter, 1),
                    item(Action::Call, Per::Month, 2),
                ]),
            ),
            (
                "Weekly promotion message",
                Ok(vec![item(Action::Message, Per::Week, 1)]),
            ),
            ("", Ok(vec![])),
            ("每周拜访5次", Ok(vec![item(Action::Visit, Per::Week, 5)])),
            ("每周拜访6次", Err("cadence_unschedulable")),
            ("每月电话0次", Err("cadence_unschedulable")),
            ("每月电话21次", Err("cadence_unschedulable")),
            ("每天电话", Err("cadence")),
            ("每月吃饭", Err("cadence")),
            ("monthly call x", Err("cadence")),
            ("每月电话 + 每月电话2次", Err("cadence_repeated")),
        ];
        for (text, want) in cases {
            match (parse_cadence(text), want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got, want, "{text}");
                    assert_eq!(parse_cadence(&cadence_text(&got)).expect("round trip"), got);
                }
                (Err(Reason::Rule { code, .. }), Err(want)) => assert_eq!(code, want, "{text}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn periods_parse_and_label() {
        let cases = [
            ("2026-Q3", "2026-07-01", "2026-09-30", "2026-Q3"),
            ("2026q4", "2026-10-01", "2026-12-31", "2026-Q4"),
            ("2026-02", "2026-02-01", "2026-02-28", "2026-02"),
            ("2024-02", "2024-02-01", "2024-02-29", "2024-02"),
            ("2026", "2026-01-01", "2026-12-31", "2026"),
        ];
        for (text, start, end, label) in cases {
            let p = parse_period(text).expect(text);
            assert_eq!((p.start, p.end), (day(start), day(end)), "{text}");
            assert_eq!(p.label(), label);
        }
        for bad in ["2026-Q5", "2026-13", "26", "Q3", "2026-Q", ""] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_period("2026-Q4").expect("q4").next().label(),
            "2027-Q1"
        );
        assert_eq!(Period::quarter_of(day("2026-12-02")).label(), "2026-Q4");
    }

    /// Q4 2026 with 国庆 (10-01..10-07 off, 10-10 worked): how many
    /// occurrences each cadence makes, and every day is a working day in
    /// its slot.
    #[test]
    fn schedules_fall_on_working_days_inside_the_period() {
        let cal = WorkCalendar::new(
            &parse_calendar(
                "2026-10-01 国庆\n2026-10-02 国庆\n2026-10-05 国庆\n2026-10-06 国庆\n2026-10-07 国庆\n2026-10-10 上班\n",
            )
            .expect("calendar"),
        );
        let q4 = parse_period("2026-Q4").expect("q4");
        let item = |action, per, times| CadenceItem { action, per, times };
        let quarters: Vec<Period> = ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
            .iter()
            .map(|q| parse_period(q).expect("quarter"))
            .collect();
        // (item, occurrences in 2026): each exactly once in one quarter.
        let cases = [
            (item(Action::Visit, Per::Quarter, 1), 4),
            (item(Action::Contact, Per::Month, 1), 12),
            (item(Action::Call, Per::Month, 2), 24),
            (item(Action::Message, Per::HalfYear, 1), 2),
            (item(Action::Message, Per::HalfYear, 3), 6),
            (item(Action::Training, Per::Year, 1), 1),
            (item(Action::Training, Per::Year, 5), 5),
        ];
        for (it, want) in cases {
            let schedules: Vec<Schedule> = quarters
                .iter()
                .map(|q| Schedule::new(it, q, &cal))
                .collect();
            for spread in 0..200 {
                let mut keys = std::collections::BTreeSet::new();
                for s in &schedules {
                    for (key, d) in s.days_for(spread) {
                        assert!(s.period.contains(d) && cal.is_working_day(d), "{d}");
                        assert!(keys.insert(key.to_string()), "{key} twice");
                    }
                }
                assert_eq!(keys.len(), want, "{} for {spread}", it.text_zh());
            }
        }
        // Q4 alone: 3 monthly contacts, one quarterly visit, every customer.
        for spread in 0..100 {
            let n = |it| Schedule::new(it, &q4, &cal).days_for(spread).count();
            assert_eq!(n(item(Action::Contact, Per::Month, 1)), 3);
            assert_eq!(n(item(Action::Visit, Per::Quarter, 1)), 1);
        }
        // The week of 10-05 has 10-08, 10-09 and the worked Saturday 10-10.
        let weekly = Schedule::new(item(Action::Call, Per::Week, 1), &q4, &cal);
        let holiday_week = weekly
            .slots
            .iter()
            .find(|s| s.key == "week-2026-10-05-1")
            .expect("week");
        assert_eq!(
            holiday_week.days,
            vec![day("2026-10-08"), day("2026-10-09"), day("2026-10-10")]
        );
        // The week of 09-28 has its working days in Q3 only (10-01, 10-02 are off).
        assert!(!weekly.slots.iter().any(|s| s.key == "week-2026-09-28-1"));
        assert_eq!(weekly.slots.len(), 13);
        // Spreading: 1,000 customers' monthly contacts use many days of the month.
        let monthly = Schedule::new(item(Action::Contact, Per::Month, 1), &q4, &cal);
        let distinct: std::collections::BTreeSet<NaiveDate> = (0..1000)
            .flat_map(|c| monthly.days_for(c).map(|(_, d)| d).collect::<Vec<_>>())
            .collect();
        assert!(distinct.len() > 50, "{}", distinct.len());
        // The same customer gets the same days every time (idempotent generation).
        assert_eq!(
            monthly.days_for(42).collect::<Vec<_>>(),
            monthly.days_for(42).collect::<Vec<_>>()
        );
    }

    #[test]
    fn strategies_are_validated_field_by_field() {
        let classes =
            |s: &str| (s == "value_tier").then(|| vec!["战略型".to_string(), "潜力型".to_string()]);
        let good = || presets()[0].input();
        assert_eq!(good().validate(classes).expect("preset"), presets()[0]);
        let cases: Vec<(StrategyInput, Vec<(&str, &str)>)> = vec![
            (
                StrategyInput {
                    scheme_key: Some("nope".into()),
                    ..good()
                },
                vec![("scheme_key", "invalid")],
            ),
            (
                StrategyInput {
                    class_name: Some("金牌".into()),
                    ..good()
                },
                vec![("class_name", "unknown_option")],
            ),
            (
                StrategyInput {
                    cadence: Some("每周拜访9次".into()),
                    ..good()
                },
                vec![("cadence", "cadence_unschedulable")],
            ),
            (
                StrategyInput {
                    sla_hours: Some(0),
                    ..good()
                },
                vec![("sla_hours", "out_of_range")],
            ),
            (
                StrategyInput {
                    sla_hours: None,
                    ..good()
                },
                vec![("sla_hours", "required")],
            ),
            (
                StrategyInput {
                    goal_metric: Some("快乐".into()),
                    ..good()
                },
                vec![("goal_metric", "unknown_option")],
            ),
            (
                StrategyInput {
                    goal_metric: Some("retention".into()),
                    goal_target: Some(150),
                    ..good()
                },
                vec![("goal_target", "out_of_range")],
            ),
            (
                StrategyInput {
                    owner_level: Some("ceo".into()),
                    ..good()
                },
                vec![("owner_level", "unknown_option")],
            ),
        ];
        for (input, want) in cases {
            let e = input.validate(classes).expect_err("invalid");
            let got: Vec<(&str, &str)> =
                e.0.iter()
                    .map(|f| (f.field.as_str(), f.reason.code()))
                    .collect();
            assert_eq!(got, want, "{input:?}");
        }
    }
}
