//! Merging two customer records that are the same company: which record
//! survives, and field by field which value it keeps (survivorship). The
//! person merging sees the defaults and may pick the other side for any
//! field; lists (aliases, product types) are united, and the absorbed
//! record's name becomes an alias so a search by it still finds the company.

use crate::customer::CustomerInput;
use crate::ident::Uscc;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One of the two records of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
    pub fn parse(s: &str) -> Option<Side> {
        match s {
            "a" => Some(Side::A),
            "b" => Some(Side::B),
            _ => None,
        }
    }
    pub fn key(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

/// A field whose surviving value is picked, with its labels.
pub struct MergeField {
    pub key: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

/// The picked fields in the order a merge form shows them; custom fields
/// follow as `custom_fields.KEY`. Aliases and product types are united, the
/// code is the survivor's.
pub const MERGE_FIELDS: &[MergeField] = &[
    field("name", "名称", "Name"),
    field("uscc", "统一社会信用代码", "USCC"),
    field("industry", "行业", "Industry"),
    field("employees", "员工人数", "Employees"),
    field("annual_revenue_fen", "年营业额", "Annual revenue"),
    field("province", "省份", "Province"),
    field("city", "城市", "City"),
    field("sales_region", "销售大区", "Sales region"),
    field("address", "地址", "Address"),
    field("founded_on", "成立日期", "Founded"),
    field("cooperation_start_on", "合作开始日期", "Cooperation start"),
    field(
        "declared_annual_purchase_fen",
        "申报年采购额",
        "Declared annual purchase",
    ),
    field("status", "状态", "Status"),
    field("source_channel", "来源渠道", "Source channel"),
    field("owner_id", "负责人", "Owner"),
    field("notes", "备注", "Notes"),
];

const fn field(key: &'static str, label_zh: &'static str, label_en: &'static str) -> MergeField {
    MergeField {
        key,
        label_zh,
        label_en,
    }
}

pub const CUSTOM_PREFIX: &str = "custom_fields.";

/// What each side is, for the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideFacts {
    pub id: i64,
    pub order_count: i64,
    /// Seconds since the epoch of the last change: the newer value wins a tie.
    pub updated_at: i64,
}

/// The record that survives unless the person merging says otherwise: the
/// one with more orders (its history is the longer one), else the older.
pub fn default_survivor(a: SideFacts, b: SideFacts) -> Side {
    if (b.order_count, -b.id) > (a.order_count, -a.id) {
        Side::B
    } else {
        Side::A
    }
}

/// The value of `key` (a [`MERGE_FIELDS`] key or `custom_fields.KEY`) in a
/// record; `Null` when empty.
pub fn value_of(record: &CustomerInput, key: &str) -> Value {
    let json = serde_json::to_value(record).unwrap_or(Value::Null);
    let v = match key.strip_prefix(CUSTOM_PREFIX) {
        Some(custom) => json.get("custom_fields").and_then(|m| m.get(custom)),
        None => json.get(key),
    };
    match v {
        None => Value::Null,
        Some(Value::String(s)) if s.trim().is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

/// Every field to pick for this pair: the fixed ones, then the custom
/// fields either record has.
pub fn field_keys(a: &CustomerInput, b: &CustomerInput) -> Vec<String> {
    let mut keys: Vec<String> = MERGE_FIELDS.iter().map(|f| f.key.to_string()).collect();
    let mut custom: Vec<&String> = a
        .custom_fields
        .keys()
        .chain(b.custom_fields.keys())
        .collect();
    custom.sort();
    custom.dedup();
    keys.extend(custom.into_iter().map(|k| format!("{CUSTOM_PREFIX}{k}")));
    keys
}

/// The default side of every field: where only one record has a value,
/// that one; a valid USCC over an invalid one; the earlier cooperation
/// start (the relationship is as old as its first record says); otherwise
/// the more recently changed record's value.
pub fn default_choices(
    a: &CustomerInput,
    b: &CustomerInput,
    newer: Side,
) -> BTreeMap<String, Side> {
    field_keys(a, b)
        .into_iter()
        .map(|key| {
            let (va, vb) = (value_of(a, &key), value_of(b, &key));
            let side = match (va.is_null(), vb.is_null()) {
                (false, true) => Side::A,
                (true, false) => Side::B,
                (true, true) => newer,
                _ if va == vb => newer,
                _ => match key.as_str() {
                    "uscc" => match (valid_uscc(&va), valid_uscc(&vb)) {
                        (true, false) => Side::A,
                        (false, true) => Side::B,
                        _ => newer,
                    },
                    "cooperation_start_on" => {
                        if va.as_str() <= vb.as_str() {
                            Side::A
                        } else {
                            Side::B
                        }
                    }
                    _ => newer,
                },
            };
            (key, side)
        })
        .collect()
}

fn valid_uscc(v: &Value) -> bool {
    v.as_str().is_some_and(|s| Uscc::parse(s).is_ok())
}

/// The merged record: the survivor's code, each field from its chosen side
/// (a field not chosen keeps its default), aliases and product types of
/// both, and the other names as aliases.
pub fn merged_input(
    a: &CustomerInput,
    b: &CustomerInput,
    survivor: Side,
    choices: &BTreeMap<String, Side>,
    newer: Side,
) -> CustomerInput {
    let defaults = default_choices(a, b, newer);
    let pick = |side: Side| if side == Side::A { a } else { b };
    let mut json = match serde_json::to_value(pick(survivor)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut custom = Map::new();
    for (key, default) in &defaults {
        let side = choices.get(key).copied().unwrap_or(*default);
        let v = value_of(pick(side), key);
        match key.strip_prefix(CUSTOM_PREFIX) {
            Some(k) => {
                if !v.is_null() {
                    custom.insert(k.to_string(), v);
                }
            }
            None => {
                json.insert(key.clone(), v);
            }
        }
    }
    json.insert("custom_fields".into(), Value::Object(custom));
    let mut merged: CustomerInput =
        serde_json::from_value(Value::Object(json)).unwrap_or_else(|_| pick(survivor).clone());
    let name = merged.name.clone().unwrap_or_default();
    let mut aliases: Vec<String> = Vec::new();
    for alias in a
        .name
        .iter()
        .chain(b.name.iter())
        .chain(a.aliases.iter())
        .chain(b.aliases.iter())
    {
        let alias = alias.trim();
        if !alias.is_empty() && alias != name && !aliases.iter().any(|x| x == alias) {
            aliases.push(alias.to_string());
        }
    }
    merged.aliases = aliases;
    let mut products = a.product_types.clone();
    for p in &b.product_types {
        if !products.contains(p) {
            products.push(p.clone());
        }
    }
    merged.product_types = products;
    merged.code = pick(survivor).code.clone();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(name: &str) -> CustomerInput {
        CustomerInput {
            code: Some(format!("C-{name}")),
            name: Some(name.into()),
            ..CustomerInput::default()
        }
    }

    #[test]
    fn survivor_has_more_orders_else_is_older() {
        let f = |id, order_count| SideFacts {
            id,
            order_count,
            updated_at: 0,
        };
        let cases = [
            (f(1, 5), f(2, 3), Side::A),
            (f(1, 3), f(2, 5), Side::B),
            (f(1, 4), f(2, 4), Side::A),
            (f(9, 4), f(2, 4), Side::B),
        ];
        for (a, b, want) in cases {
            assert_eq!(default_survivor(a, b), want, "{a:?} {b:?}");
        }
    }

    #[test]
    fn defaults_prefer_present_valid_earlier_then_newer() {
        let mut a = customer("北京字节跳动科技有限公司");
        let mut b = customer("字节跳动(北京)科技有限公司");
        a.industry = Some("IT服务".into());
        b.city = Some("北京".into());
        a.uscc = Some("91110000802100433X".into()); // bad check character
        b.uscc = Some("91350100M000100Y43".into());
        a.cooperation_start_on = Some("2021-03-01".into());
        b.cooperation_start_on = Some("2019-07-15".into());
        a.notes = Some("旧备注".into());
        b.notes = Some("新备注".into());
        a.custom_fields.insert("credit".into(), Value::from("A"));
        let d = default_choices(&a, &b, Side::B);
        let cases = [
            ("industry", Side::A),
            ("city", Side::B),
            ("uscc", Side::B),
            ("cooperation_start_on", Side::B),
            ("notes", Side::B),
            ("custom_fields.credit", Side::A),
            // both empty: the newer
            ("address", Side::B),
        ];
        for (key, want) in cases {
            assert_eq!(d[key], want, "{key}");
        }
        let d = default_choices(&a, &b, Side::A);
        assert_eq!(d["notes"], Side::A, "a tie goes to the newer record");
        assert_eq!(d["uscc"], Side::B, "the valid USCC wins whichever is newer");
    }

    #[test]
    fn merged_record_takes_choices_unites_lists_and_keeps_other_name() {
        let mut a = customer("北京字节跳动科技有限公司");
        let mut b = customer("字节跳动科技");
        a.aliases = vec!["字节".into()];
        b.aliases = vec!["字节".into(), "ByteDance".into()];
        a.product_types = vec!["产品A".into()];
        b.product_types = vec!["产品B".into(), "产品A".into()];
        a.notes = Some("a".into());
        b.notes = Some("b".into());
        b.custom_fields.insert("credit".into(), Value::from("AA"));
        let mut choices = BTreeMap::new();
        choices.insert("notes".to_string(), Side::A);
        let m = merged_input(&a, &b, Side::B, &choices, Side::B);
        assert_eq!(
            m.code.as_deref(),
            Some("C-字节跳动科技"),
            "the survivor's code"
        );
        assert_eq!(m.name.as_deref(), Some("字节跳动科技"), "newer by default");
        assert_eq!(m.notes.as_deref(), Some("a"), "as chosen");
        assert_eq!(m.aliases, ["北京字节跳动科技有限公司", "字节", "ByteDance"]);
        assert_eq!(m.product_types, ["产品A", "产品B"]);
        assert_eq!(m.custom_fields["credit"], Value::from("AA"));
        choices.insert("name".into(), Side::A);
        let m = merged_input(&a, &b, Side::B, &choices, Side::B);
        assert_eq!(m.name.as_deref(), Some("北京字节跳动科技有限公司"));
        assert_eq!(m.aliases, ["字节跳动科技", "字节", "ByteDance"]);
    }

    #[test]
    fn custom_fields_are_picked_one_by_one() {
        let mut a = customer("甲");
        let mut b = customer("乙");
        a.custom_fields.insert("x".into(), Value::from(1));
        b.custom_fields.insert("x".into(), Value::from(2));
        b.custom_fields.insert("y".into(), Value::from("y"));
        assert_eq!(
            field_keys(&a, &b)[MERGE_FIELDS.len()..],
            ["custom_fields.x", "custom_fields.y"]
        );
        let choices = BTreeMap::from([("custom_fields.x".to_string(), Side::A)]);
        let m = merged_input(&a, &b, Side::A, &choices, Side::B);
        assert_eq!(m.custom_fields["x"], Value::from(1));
        assert_eq!(m.custom_fields["y"], Value::from("y"));
    }
}
