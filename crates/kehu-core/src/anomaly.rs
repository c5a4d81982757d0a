//! The 异常数据报告 (anomaly report): what counts as suspicious data, how
//! each finding reads, and when it must be fixed (3 working days after it
//! was found, counted on the holiday calendar).

use crate::customer::missing_labels;
use serde_json::Value;

/// Working days a finding may stay open before it is overdue.
pub const FIX_WITHIN_WORKING_DAYS: u32 = 3;

/// An order is an outlier when it is more than this many times the average
/// of the customer's other orders (a 元 / 万元 slip, an extra zero)…
pub const OUTLIER_FACTOR: i64 = 10;
/// …and the customer has at least this many other orders to compare with.
pub const OUTLIER_MIN_OTHERS: i64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A customer lacks a field it needs to be worked with (待跟进).
    MissingFields,
    /// A contact with neither phone nor e-mail.
    UnreachableContact,
    /// A mobile number in a contact's landline field.
    MobileInLandline,
    /// An order, interaction, founding or cooperation start after today.
    FutureDate,
    /// An order far above the customer's others.
    AmountOutlier,
    /// Orders dated before the customer's cooperation start.
    OrderBeforeCooperation,
    /// A likely duplicate waiting in the review queue.
    OpenDuplicate,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 7] = [
        AnomalyKind::MissingFields,
        AnomalyKind::UnreachableContact,
        AnomalyKind::MobileInLandline,
        AnomalyKind::FutureDate,
        AnomalyKind::AmountOutlier,
        AnomalyKind::OrderBeforeCooperation,
        AnomalyKind::OpenDuplicate,
    ];

    pub fn key(self) -> &'static str {
        match self {
            AnomalyKind::MissingFields => "missing_fields",
            AnomalyKind::UnreachableContact => "unreachable_contact",
            AnomalyKind::MobileInLandline => "mobile_in_landline",
            AnomalyKind::FutureDate => "future_date",
            AnomalyKind::AmountOutlier => "amount_outlier",
            AnomalyKind::OrderBeforeCooperation => "order_before_cooperation",
            AnomalyKind::OpenDuplicate => "open_duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<AnomalyKind> {
        AnomalyKind::ALL.into_iter().find(|k| k.key() == s)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            AnomalyKind::MissingFields => "关键字段缺失",
            AnomalyKind::UnreachableContact => "联系人无联系方式",
            AnomalyKind::MobileInLandline => "手机号填在座机栏",
            AnomalyKind::FutureDate => "未来日期",
            AnomalyKind::AmountOutlier => "金额异常",
            AnomalyKind::OrderBeforeCooperation => "订单早于合作起始",
            AnomalyKind::OpenDuplicate => "疑似重复未处理",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            AnomalyKind::MissingFields => "key fields missing",
            AnomalyKind::UnreachableContact => "contact cannot be reached",
            AnomalyKind::MobileInLandline => "mobile in the landline field",
            AnomalyKind::FutureDate => "date in the future",
            AnomalyKind::AmountOutlier => "amount outlier",
            AnomalyKind::OrderBeforeCooperation => "orders before the cooperation start",
            AnomalyKind::OpenDuplicate => "duplicate not reviewed",
        }
    }
}

/// Whether an order of `amount` stands out against the customer's other
/// `others` orders totalling `others_total` (all in fen).
pub fn is_amount_outlier(amount: i64, others_total: i64, others: i64) -> bool {
    others >= OUTLIER_MIN_OTHERS
        && others_total > 0
        && i128::from(amount) * i128::from(others)
            > i128::from(OUTLIER_FACTOR) * i128::from(others_total)
}

/// A finding as a sentence, from its kind and detail; the contact's name and
/// numbers as the reader's `rights` show them (masked or hidden).
pub fn describe(
    kind: AnomalyKind,
    detail: &Value,
    en: bool,
    rights: &crate::privacy::FieldRights,
) -> String {
    let personal = |k: &str, key: &str| {
        let v = detail.get(k).and_then(Value::as_str).unwrap_or("");
        rights.in_text(key, v)
    };
    let s = |k: &str| {
        detail
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let n = |k: &str| detail.get(k).and_then(Value::as_i64).unwrap_or(0);
    let yuan = |fen: i64| {
        crate::Fen::new(fen)
            .map(|f| f.display_cn())
            .unwrap_or_default()
    };
    match (kind, en) {
        (AnomalyKind::MissingFields, false) => {
            format!(
                "缺少：{}",
                missing_labels(&list(detail, "fields"), crate::Lang::Zh)
            )
        }
        (AnomalyKind::MissingFields, true) => {
            format!(
                "missing: {}",
                missing_labels(&list(detail, "fields"), crate::Lang::En)
            )
        }
        (AnomalyKind::UnreachableContact, false) => {
            format!(
                "联系人 {} 没有电话和邮箱",
                personal("contact", "contact.name")
            )
        }
        (AnomalyKind::UnreachableContact, true) => {
            format!(
                "contact {} has no phone or e-mail",
                personal("contact", "contact.name")
            )
        }
        (AnomalyKind::MobileInLandline, false) => {
            format!(
                "联系人 {} 的座机栏是手机号 {}",
                personal("contact", "contact.name"),
                personal("landline", "contact.mobile")
            )
        }
        (AnomalyKind::MobileInLandline, true) => {
            format!(
                "contact {}: the landline field holds the mobile {}",
                personal("contact", "contact.name"),
                personal("landline", "contact.mobile")
            )
        }
        (AnomalyKind::FutureDate, false) => format!("{}：{}", what_zh(&s("what")), s("date")),
        (AnomalyKind::FutureDate, true) => {
            format!("{}: {}", s("what").replace('_', " "), s("date"))
        }
        (AnomalyKind::AmountOutlier, false) => format!(
            "订单 {} 金额 {}，其他订单平均 {}",
            s("order"),
            yuan(n("amount_fen")),
            yuan(n("typical_fen"))
        ),
        (AnomalyKind::AmountOutlier, true) => format!(
            "order {} of {} against an average of {} for the others",
            s("order"),
            yuan(n("amount_fen")),
            yuan(n("typical_fen"))
        ),
        (AnomalyKind::OrderBeforeCooperation, false) => format!(
            "最早订单 {} 早于合作起始 {}",
            s("first_order_on"),
            s("cooperation_start_on")
        ),
        (AnomalyKind::OrderBeforeCooperation, true) => format!(
            "first order {} before the cooperation start {}",
            s("first_order_on"),
            s("cooperation_start_on")
        ),
        (AnomalyKind::OpenDuplicate, false) => {
            format!(
                "可能与 {} {} 重复（{}%）",
                s("other_code"),
                s("other_name"),
                n("percent")
            )
        }
        (AnomalyKind::OpenDuplicate, true) => format!(
            "may be the same as {} {} ({}%)",
            s("other_code"),
            s("other_name"),
            n("percent")
        ),
    }
}

fn list(detail: &Value, key: &str) -> Vec<String> {
    detail
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn what_zh(what: &str) -> &str {
    match what {
        "order" => "订单日期",
        "interaction" => "互动日期",
        "founded_on" => "成立日期",
        "cooperation_start_on" => "合作起始日期",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outliers_need_enough_others_and_ten_times_their_average() {
        let cases = [
            // amount, others' total, others, outlier? (fen; 300 000 over 3 = 1 000 元 each)
            (1_000_001, 300_000, 3, true),  // just over 10× the average
            (1_000_000, 300_000, 3, false), // exactly 10×
            (1_000_001, 300_000, 2, false), // too few others to tell
            (3_000_000, 300_000, 3, true),
            (900_000, 300_000, 3, false),
            (100, 0, 5, false), // nothing to compare with
            (5_000_000, 400_000, 4, true),
        ];
        for (amount, total, others, want) in cases {
            assert_eq!(
                is_amount_outlier(amount, total, others),
                want,
                "{amount} vs {total}/{others}"
            );
        }
    }

    #[test]
    fn findings_read_in_both_languages() {
        let d = json!({"order": "PO-7", "amount_fen": 100_000_000, "typical_fen": 1_000_000});
        assert_eq!(
            describe(
                AnomalyKind::AmountOutlier,
                &d,
                false,
                &crate::privacy::FieldRights::default()
            ),
            "订单 PO-7 金额 100.00万，其他订单平均 1.00万"
        );
        let d = json!({"fields": ["industry", "cooperation_start_on"]});
        assert_eq!(
            describe(
                AnomalyKind::MissingFields,
                &d,
                false,
                &crate::privacy::FieldRights::default()
            ),
            "缺少：所属行业、合作起始时间"
        );
        let d = json!({"what": "order", "date": "2027-01-01"});
        assert_eq!(
            describe(
                AnomalyKind::FutureDate,
                &d,
                true,
                &crate::privacy::FieldRights::default()
            ),
            "order: 2027-01-01"
        );
        for k in AnomalyKind::ALL {
            assert_eq!(AnomalyKind::parse(k.key()), Some(k));
        }
    }
}
