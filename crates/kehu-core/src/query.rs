//! List queries: which fields a list can filter and sort on, the filter
//! operators, and keyset cursors. The store turns a [`ListQuery`] into SQL.

use crate::custom_field::{CustomFieldDef, FieldKind};
use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use crate::money::Fen;
use crate::text::clean;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Text,
    Int,
    /// Integer fen; filter values are integer fen too.
    Money,
    Float,
    Date,
    Bool,
    /// A list of strings (product types, multi-enum): `contains` tests membership.
    TextList,
}

/// A built-in field of a list. `column` is a trusted SQL column name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinField {
    pub key: &'static str,
    pub column: &'static str,
    pub ty: ValueType,
    pub sortable: bool,
}

const fn f(key: &'static str, ty: ValueType, sortable: bool) -> BuiltinField {
    BuiltinField {
        key,
        column: key,
        ty,
        sortable,
    }
}

pub const CUSTOMER_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("code", ValueType::Text, true),
    f("name", ValueType::Text, true),
    f("uscc", ValueType::Text, false),
    f("industry", ValueType::Text, true),
    f("employees", ValueType::Int, true),
    f("annual_revenue_fen", ValueType::Money, true),
    f("province", ValueType::Text, true),
    f("city", ValueType::Text, true),
    f("sales_region", ValueType::Text, true),
    f("founded_on", ValueType::Date, true),
    f("cooperation_start_on", ValueType::Date, true),
    f("declared_annual_purchase_fen", ValueType::Money, true),
    f("status", ValueType::Text, true),
    f("source_channel", ValueType::Text, true),
    f("owner_id", ValueType::Int, true),
    f("team", ValueType::Text, true),
    f("purchase_12m_fen", ValueType::Money, true),
    f("order_count", ValueType::Int, true),
    f("last_order_on", ValueType::Date, true),
    f("last_interaction_on", ValueType::Date, true),
    f("complaints_365d", ValueType::Int, true),
    f("product_types", ValueType::TextList, false),
];

pub const CONTACT_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("customer_id", ValueType::Int, true),
    f("name", ValueType::Text, true),
    f("title", ValueType::Text, true),
    f("decision_role", ValueType::Text, true),
    f("is_primary", ValueType::Bool, true),
];

pub const ORDER_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("customer_id", ValueType::Int, true),
    f("order_no", ValueType::Text, true),
    f("ordered_on", ValueType::Date, true),
    f("amount_fen", ValueType::Money, true),
    f("product_line", ValueType::Text, true),
];

pub const INTERACTION_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("customer_id", ValueType::Int, true),
    f("kind", ValueType::Text, true),
    f("occurred_on", ValueType::Date, true),
    f("severity", ValueType::Text, true),
    f("status", ValueType::Text, true),
    f("satisfaction", ValueType::Int, true),
    f("user_id", ValueType::Int, true),
];

/// Class changes (`class_history`).
pub const CLASS_CHANGE_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("customer_id", ValueType::Int, true),
    f("scheme_key", ValueType::Text, true),
    f("from_class", ValueType::Text, true),
    f("to_class", ValueType::Text, true),
    f("effective_on", ValueType::Date, true),
    f("cause", ValueType::Text, true),
    f("changed_by", ValueType::Int, true),
];

pub const USER_FIELDS: &[BuiltinField] = &[
    f("id", ValueType::Int, true),
    f("username", ValueType::Text, true),
    f("display_name", ValueType::Text, true),
    f("role", ValueType::Text, true),
    f("team", ValueType::Text, true),
    f("active", ValueType::Bool, true),
];

#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    Builtin(BuiltinField),
    /// A custom field, addressed as `cf.KEY` (its key is validated, safe for SQL paths).
    Custom {
        key: String,
        ty: ValueType,
    },
    /// A customer's current class in a scheme, addressed as `class.KEY`
    /// (only keys of existing schemes resolve: safe for SQL).
    Class {
        scheme: String,
    },
}

impl FieldRef {
    pub fn ty(&self) -> ValueType {
        match self {
            FieldRef::Builtin(b) => b.ty,
            FieldRef::Custom { ty, .. } => *ty,
            FieldRef::Class { .. } => ValueType::Text,
        }
    }
    pub fn name(&self) -> String {
        match self {
            FieldRef::Builtin(b) => b.key.to_string(),
            FieldRef::Custom { key, .. } => format!("cf.{key}"),
            FieldRef::Class { scheme } => format!("class.{scheme}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    /// Substring for text; membership for lists.
    Contains,
    In,
    /// `field.null=true|false`.
    IsNull,
}

impl Op {
    fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "contains" => Op::Contains,
            "in" => Op::In,
            "null" => Op::IsNull,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Text(String),
    Int(i64),
    Float(f64),
    Date(NaiveDate),
    Bool(bool),
    List(Vec<FilterValue>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: FieldRef,
    pub op: Op,
    pub value: FilterValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub field: FieldRef,
    pub descending: bool,
}

/// Where the previous page ended: the sort value and id of its last row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    pub v: serde_json::Value,
    pub id: i64,
}

impl Cursor {
    /// Opaque to clients: hex of the JSON.
    pub fn encode(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        json.bytes().map(|b| format!("{b:02x}")).collect()
    }
    pub fn decode(s: &str) -> Result<Cursor, Reason> {
        let bad = || Reason::Other {
            zh: "分页游标无效".into(),
            en: "invalid page cursor".into(),
        };
        // Hex digits only (anything else, multi-byte characters included, is refused whole).
        if s.len() > 2000 {
            return Err(bad());
        }
        let bytes = hex::decode(s).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filters: Vec<Filter>,
    /// Free-text search over the list's name-like fields.
    pub search: Option<String>,
    pub sort: Sort,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

fn custom_type(kind: FieldKind) -> ValueType {
    match kind {
        FieldKind::Text | FieldKind::Enum => ValueType::Text,
        FieldKind::Number => ValueType::Float,
        FieldKind::Money => ValueType::Money,
        FieldKind::Date => ValueType::Date,
        FieldKind::Bool => ValueType::Bool,
        FieldKind::MultiEnum => ValueType::TextList,
    }
}

fn resolve_field(
    name: &str,
    builtins: &[BuiltinField],
    custom: &[CustomFieldDef],
    schemes: &[String],
) -> Option<FieldRef> {
    if let Some(key) = name.strip_prefix("class.") {
        return schemes
            .iter()
            .find(|s| *s == key)
            .map(|s| FieldRef::Class { scheme: s.clone() });
    }
    if let Some(key) = name.strip_prefix("cf.") {
        return custom
            .iter()
            .find(|d| d.key == key)
            .map(|d| FieldRef::Custom {
                key: d.key.clone(),
                ty: custom_type(d.kind),
            });
    }
    builtins
        .iter()
        .find(|b| b.key == name)
        .map(|b| FieldRef::Builtin(*b))
}

fn parse_value(ty: ValueType, raw: &str) -> Result<FilterValue, Reason> {
    let s = clean(raw);
    Ok(match ty {
        ValueType::Text | ValueType::TextList => FilterValue::Text(s),
        ValueType::Int => FilterValue::Int(s.parse().map_err(|_| Reason::IntegerFormat)?),
        ValueType::Money => FilterValue::Int(if s.starts_with('-') {
            return Err(Reason::AmountNegative);
        } else {
            s.parse::<i64>()
                .map_err(|_| Reason::AmountFormat)
                .and_then(Fen::new)?
                .get()
        }),
        ValueType::Float => FilterValue::Float(
            s.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or(Reason::NumberFormat)?,
        ),
        ValueType::Date => FilterValue::Date(parse_date(&s)?),
        ValueType::Bool => FilterValue::Bool(match s.as_str() {
            "true" | "1" | "是" => true,
            "false" | "0" | "否" => false,
            _ => return Err(Reason::BoolFormat),
        }),
    })
}

/// Parses query-string pairs: `FIELD[.OP]=VALUE` filters (custom fields as
/// `cf.KEY`), `q`, `sort` (`-field` for descending), `limit`, `cursor`.
/// Unknown fields and bad values are errors naming the parameter.
pub fn parse_list_query(
    pairs: &[(String, String)],
    builtins: &[BuiltinField],
    custom: &[CustomFieldDef],
    default_sort: &str,
) -> Result<ListQuery, ValidationErrors> {
    parse_customer_query(pairs, builtins, custom, &[], default_sort)
}

/// [`parse_list_query`] for customers, whose lists may also filter and sort
/// on their current class in a scheme: `class.value_tier=战略型`,
/// `class.rfm.in=高价值客户,潜力客户`, `sort=class.value_tier`.
pub fn parse_customer_query(
    pairs: &[(String, String)],
    builtins: &[BuiltinField],
    custom: &[CustomFieldDef],
    schemes: &[String],
    default_sort: &str,
) -> Result<ListQuery, ValidationErrors> {
    let mut e = ValidationErrors::default();
    let mut filters = Vec::new();
    let mut search = None;
    let mut sort_spec = default_sort.to_string();
    let mut limit = DEFAULT_LIMIT;
    let mut cursor = None;
    for (k, v) in pairs {
        match k.as_str() {
            "q" => search = Some(clean(v)).filter(|s| !s.is_empty()),
            "sort" => sort_spec = v.trim().to_string(),
            "limit" => match v.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => e.push(
                    "limit",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some(MAX_LIMIT.to_string()),
                    },
                ),
            },
            "cursor" => cursor = e.check("cursor", Cursor::decode(v.trim())),
            _ => {
                // FIELD or FIELD.OP, where FIELD may itself be cf.KEY
                let (name, op) = match k.rsplit_once('.') {
                    Some((n, o)) if Op::parse(o).is_some() => (n, Op::parse(o).unwrap_or(Op::Eq)),
                    _ => (k.as_str(), Op::Eq),
                };
                let Some(field) = resolve_field(name, builtins, custom, schemes) else {
                    e.push(k.clone(), Reason::UnknownField);
                    continue;
                };
                let ty = field.ty();
                let value = match op {
                    Op::IsNull => parse_value(ValueType::Bool, v),
                    Op::In => v
                        .split(',')
                        .map(|item| parse_value(ty, item))
                        .collect::<Result<Vec<_>, _>>()
                        .map(FilterValue::List),
                    Op::Contains if !matches!(ty, ValueType::Text | ValueType::TextList) => {
                        Err(Reason::Other {
                            zh: "只有文本字段支持 contains".into(),
                            en: "contains works on text fields only".into(),
                        })
                    }
                    Op::Gt | Op::Gte | Op::Lt | Op::Lte
                        if matches!(ty, ValueType::Bool | ValueType::TextList) =>
                    {
                        Err(Reason::Other {
                            zh: "该字段不支持大小比较".into(),
                            en: "this field cannot be compared by size".into(),
                        })
                    }
                    _ => parse_value(ty, v),
                };
                if let Some(value) = e.check(k, value) {
                    filters.push(Filter { field, op, value });
                }
            }
        }
    }
    let (desc, sort_name) = match sort_spec.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sort_spec.as_str()),
    };
    let sort = match resolve_field(sort_name, builtins, custom, schemes) {
        Some(field)
            if !matches!(field.ty(), ValueType::TextList)
                && !matches!(&field, FieldRef::Builtin(b) if !b.sortable) =>
        {
            Some(Sort {
                field,
                descending: desc,
            })
        }
        _ => {
            e.push("sort", Reason::UnknownField);
            None
        }
    };
    e.into_result()?;
    let sort = sort.ok_or_else(|| ValidationErrors::single("sort", Reason::UnknownField))?;
    Ok(ListQuery {
        filters,
        search,
        sort,
        limit,
        cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::custom_field::{FieldGroup, FieldRule};

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn custom() -> Vec<CustomFieldDef> {
        vec![CustomFieldDef {
            key: "budget".into(),
            label: "预算".into(),
            group: FieldGroup::Needs,
            kind: FieldKind::Money,
            required: false,
            options: vec![],
            rule: FieldRule::default(),
            position: 0,
        }]
    }

    #[test]
    fn parses_filters_sort_and_paging() {
        let q = parse_list_query(
            &pairs(&[
                ("industry", "制造业"),
                ("sales_region.in", "华东,华南"),
                ("cf.budget.gte", "100000"),
                ("sort", "-purchase_12m_fen"),
                ("limit", "20"),
            ]),
            CUSTOMER_FIELDS,
            &custom(),
            "id",
        )
        .expect("valid query");
        assert_eq!(q.filters.len(), 3);
        assert_eq!(
            q.filters[1].value,
            FilterValue::List(vec![
                FilterValue::Text("华东".into()),
                FilterValue::Text("华南".into())
            ])
        );
        assert_eq!(
            q.filters[2].field,
            FieldRef::Custom {
                key: "budget".into(),
                ty: ValueType::Money
            }
        );
        assert!(q.sort.descending);
        assert_eq!(q.limit, 20);
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        let cases: &[(&[(&str, &str)], &str, &str)] = &[
            (&[("nope", "1")], "nope", "unknown_field"),
            (&[("cf.nope", "1")], "cf.nope", "unknown_field"),
            (
                &[("employees.gte", "many")],
                "employees.gte",
                "integer_format",
            ),
            (
                &[("purchase_12m_fen.gte", "-5")],
                "purchase_12m_fen.gte",
                "amount_negative",
            ),
            (
                &[("founded_on.lt", "2024-02-30")],
                "founded_on.lt",
                "date_format",
            ),
            (
                &[("employees.contains", "5")],
                "employees.contains",
                "invalid",
            ),
            (&[("limit", "0")], "limit", "out_of_range"),
            (&[("sort", "password_hash")], "sort", "unknown_field"),
            (&[("cursor", "zz")], "cursor", "invalid"),
        ];
        for (q, field, code) in cases {
            let errs = parse_list_query(&pairs(q), CUSTOMER_FIELDS, &custom(), "id")
                .expect_err("must refuse");
            assert_eq!(
                (errs.0[0].field.as_str(), errs.0[0].reason.code()),
                (*field, *code),
                "query {q:?}"
            );
        }
    }

    #[test]
    fn cursor_round_trip() {
        let c = Cursor {
            v: serde_json::json!("华东"),
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        // Malformed cursors are refused, never a panic (found by schemathesis).
        for bad in ["0\u{80}000000000", "0", "zz", "7b", "華東", ""] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn customer_lists_filter_on_classes_of_known_schemes() {
        let schemes = vec!["value_tier".to_string(), "rfm".to_string()];
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q = parse_customer_query(
            &pairs(&[
                ("class.value_tier", "战略型"),
                ("class.rfm.in", "高价值客户,潜力客户"),
                ("sort", "-class.value_tier"),
            ]),
            CUSTOMER_FIELDS,
            &[],
            &schemes,
            "-id",
        )
        .expect("valid");
        assert_eq!(
            q.filters[0].field,
            FieldRef::Class {
                scheme: "value_tier".into()
            }
        );
        assert_eq!(q.filters[1].op, Op::In);
        assert_eq!(q.sort.field.name(), "class.value_tier");
        assert!(q.sort.descending);
        for bad in ["class.nope", "class.", "class.value_tier.x"] {
            let e =
                parse_customer_query(&pairs(&[(bad, "1")]), CUSTOMER_FIELDS, &[], &schemes, "-id")
                    .expect_err(bad);
            assert_eq!(e.0[0].field, bad);
        }
        // Lists other than customers know no classes.
        assert!(parse_list_query(
            &pairs(&[("class.value_tier", "战略型")]),
            CUSTOMER_FIELDS,
            &[],
            "-id"
        )
        .is_err());
    }
}
