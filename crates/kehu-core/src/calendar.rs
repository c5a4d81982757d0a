//! Working days: Monday to Friday, except the configured public holidays,
//! plus the weekend days the calendar marks as working (调休, the make-up
//! working days China's holiday schedule moves to weekends). Due dates
//! such as "fix within 3 working days" and service SLAs count on it.

use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One configured day: a holiday, or a weekend day that is worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarDay {
    pub day: NaiveDate,
    /// true: a working day (调休); false: a holiday.
    pub working: bool,
    pub name: String,
}

/// When a working day's service hours start and end (local time, China):
/// SLA clocks run only between them.
pub const WORKDAY_START: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};
pub const WORKDAY_END: NaiveTime = match NaiveTime::from_hms_opt(18, 0, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkCalendar {
    days: BTreeMap<NaiveDate, bool>,
}

impl WorkCalendar {
    pub fn new<'a>(days: impl IntoIterator<Item = &'a CalendarDay>) -> WorkCalendar {
        WorkCalendar {
            days: days.into_iter().map(|d| (d.day, d.working)).collect(),
        }
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        match self.days.get(&d) {
            Some(&working) => working,
            None => !matches!(d.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The `n`-th working day after `from` (`from` itself when `n` is 0).
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> NaiveDate {
        let mut d = from;
        let mut left = n;
        while left > 0 {
            d = d.succ_opt().unwrap_or(d);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// The moment `hours` working hours after `from` (local time), counting
    /// only [`WORKDAY_START`]..[`WORKDAY_END`] of working days: an SLA clock.
    /// A request arriving out of hours starts the clock at the next opening.
    pub fn add_working_hours(&self, from: NaiveDateTime, hours: u32) -> NaiveDateTime {
        let mut left = i64::from(hours) * 60;
        let mut at = from;
        loop {
            let day = at.date();
            let open = day.and_time(WORKDAY_START);
            let close = day.and_time(WORKDAY_END);
            if !self.is_working_day(day) || at >= close {
                at = self.next_working_day(day).and_time(WORKDAY_START);
                continue;
            }
            if at < open {
                at = open;
            }
            let today = (close - at).num_minutes();
            if left <= today {
                return at + chrono::Duration::minutes(left);
            }
            left -= today;
            at = self.next_working_day(day).and_time(WORKDAY_START);
        }
    }

    /// Working minutes between two local moments (0 when `to` is not later).
    pub fn working_minutes_between(&self, from: NaiveDateTime, to: NaiveDateTime) -> i64 {
        let mut total = 0;
        let mut day = from.date();
        while day <= to.date() {
            if self.is_working_day(day) {
                let open = day.and_time(WORKDAY_START).max(from);
                let close = day.and_time(WORKDAY_END).min(to);
                total += (close - open).num_minutes().max(0);
            }
            day = match day.succ_opt() {
                Some(d) => d,
                None => break,
            };
        }
        total
    }

    /// The first working day after `day`.
    pub fn next_working_day(&self, day: NaiveDate) -> NaiveDate {
        self.add_working_days(day, 1)
    }

    /// `day` if it is a working day, else the next one.
    pub fn on_or_after(&self, day: NaiveDate) -> NaiveDate {
        if self.is_working_day(day) {
            day
        } else {
            self.next_working_day(day)
        }
    }

    /// Working days after `from` up to and including `to` (0 when `to` is not later).
    pub fn working_days_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_working_day(*d))
            .count() as i64
    }
}

/// Reads a calendar as people write it, one day per line:
/// `2026-10-01 国庆节` (a holiday) or `2026-10-10 上班 国庆节调休` (a
/// weekend day worked; `上班`, `补班` or `workday`). Blank lines and lines
/// starting with `#` are skipped. Errors name the line.
pub fn parse_calendar(text: &str) -> Result<Vec<CalendarDay>, ValidationErrors> {
    let mut e = ValidationErrors::default();
    let mut days: BTreeMap<NaiveDate, CalendarDay> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = format!("line {}", n + 1);
        let mut parts = line.splitn(2, |c: char| c.is_whitespace() || c == ',' || c == '，');
        let date = parts.next().unwrap_or("");
        let rest = parts.next().unwrap_or("").trim();
        let Some(day) = e.check(&field, parse_date(date)) else {
            continue;
        };
        let (working, name) = match rest.split_once(char::is_whitespace) {
            Some((flag, name)) if is_working_flag(flag) => (true, name.trim()),
            _ if is_working_flag(rest) => (true, ""),
            _ => (false, rest),
        };
        if days.contains_key(&day) {
            e.push(
                &field,
                Reason::Other {
                    zh: format!("{day} 重复出现"),
                    en: format!("{day} appears twice"),
                },
            );
            continue;
        }
        days.insert(
            day,
            CalendarDay {
                day,
                working,
                name: name.chars().take(50).collect(),
            },
        );
    }
    if e.is_empty() {
        Ok(days.into_values().collect())
    } else {
        Err(e)
    }
}

fn is_working_flag(s: &str) -> bool {
    matches!(s, "上班" | "补班" | "workday" | "working")
}

/// A calendar as [`parse_calendar`] reads it.
pub fn calendar_text(days: &[CalendarDay]) -> String {
    days.iter()
        .map(|d| {
            let flag = if d.working { " 上班" } else { "" };
            format!("{}{flag} {}\n", d.day, d.name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn three_working_days_across_weekends_holidays_and_make_up_days() {
        let cal = WorkCalendar::new(
            &parse_calendar(
                "# 2026 国庆\n2026-10-01 国庆节\n2026-10-02 国庆节\n2026-10-05 国庆节\n2026-10-10 上班 国庆调休\n",
            )
            .expect("calendar"),
        );
        let cases = [
            // Monday → Thursday
            ("2026-09-07", 3, "2026-09-10"),
            // Thursday → Tuesday over a weekend
            ("2026-09-10", 3, "2026-09-15"),
            // Friday → Wednesday
            ("2026-09-11", 3, "2026-09-16"),
            // Wednesday 09-30 → over 10-01/02 (holidays), the weekend, 10-05 (holiday): 10-06, 10-07, 10-08
            ("2026-09-30", 3, "2026-10-08"),
            // Friday 10-09 → Saturday 10-10 is worked: 10-10, 10-12, 10-13
            ("2026-10-09", 3, "2026-10-13"),
            ("2026-10-09", 0, "2026-10-09"),
        ];
        for (from, n, want) in cases {
            assert_eq!(
                cal.add_working_days(day(from), n),
                day(want),
                "{from} + {n}"
            );
        }
        assert!(!cal.is_working_day(day("2026-10-01")));
        assert!(cal.is_working_day(day("2026-10-10")));
        assert!(!cal.is_working_day(day("2026-10-11")));
        assert_eq!(
            cal.working_days_between(day("2026-09-30"), day("2026-10-10")),
            5, // 10-06 to 10-09 and the worked Saturday 10-10
        );
        assert_eq!(
            cal.working_days_between(day("2026-10-10"), day("2026-10-01")),
            0
        );
    }

    /// (from, SLA hours, due) on a calendar where 10-01/02/05 are holidays
    /// and Saturday 10-10 is worked; service hours 09:00–18:00.
    #[test]
    fn sla_clocks_count_working_hours_only() {
        let cal = WorkCalendar::new(
            &parse_calendar(
                "2026-10-01 国庆节\n2026-10-02 国庆节\n2026-10-05 国庆节\n2026-10-10 上班\n",
            )
            .expect("calendar"),
        );
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        let cases = [
            // within the day
            ("2026-09-07 10:00", 2, "2026-09-07 12:00"),
            // exactly to closing
            ("2026-09-07 14:00", 4, "2026-09-07 18:00"),
            // over the night: 2 h today, 2 h tomorrow
            ("2026-09-07 16:00", 4, "2026-09-08 11:00"),
            // before opening: the clock starts at 09:00
            ("2026-09-07 07:30", 2, "2026-09-07 11:00"),
            // after closing: tomorrow
            ("2026-09-07 20:00", 8, "2026-09-08 17:00"),
            // Friday evening → Monday
            ("2026-09-11 17:00", 2, "2026-09-14 10:00"),
            // a complaint on a holiday waits for the next working day
            ("2026-10-01 10:00", 2, "2026-10-06 11:00"),
            // 09-30 17:00 + 8 h: 1 h on 09-30, then 10-06 (after three holidays and a weekend)
            ("2026-09-30 17:00", 8, "2026-10-06 16:00"),
            // the worked Saturday counts
            ("2026-10-09 17:00", 2, "2026-10-10 10:00"),
        ];
        for (from, hours, want) in cases {
            assert_eq!(
                cal.add_working_hours(at(from), hours),
                at(want),
                "{from} + {hours} h"
            );
        }
        assert_eq!(
            cal.working_minutes_between(at("2026-09-30 17:00"), at("2026-10-06 16:00")),
            8 * 60
        );
        assert_eq!(
            cal.working_minutes_between(at("2026-09-08 10:00"), at("2026-09-07 10:00")),
            0
        );
    }

    #[test]
    fn calendar_lines_are_checked_and_round_trip() {
        let days = parse_calendar("2026-01-01 元旦\n\n2026-01-04 补班\n").expect("calendar");
        assert_eq!(days.len(), 2);
        assert!(days[1].working);
        assert_eq!(parse_calendar(&calendar_text(&days)).expect("again"), days);
        let e =
            parse_calendar("2026-01-01 元旦\n2026-02-30 坏日期\n2026-01-01 again\n").unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["line 2", "line 3"]);
    }
}
