//! Customers (enterprises): the input people and scripts send, and its
//! validation into [`CustomerData`].

use crate::custom_field::{check_custom_values, CustomFieldDef};
use crate::date::parse_past_date;
use crate::error::{Reason, ValidationErrors};
use crate::ident::Uscc;
use crate::industry::resolve_industry;
use crate::money::Fen;
use crate::region::{province_of, province_of_address, sales_region_of_province, SALES_REGIONS};
use crate::text::{clean, parse_optional_text, parse_text};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CustomerStatus {
    /// 潜在: no deal yet.
    Prospect,
    /// 合作中
    #[default]
    Active,
    /// 暂停合作
    Paused,
    /// 已流失
    Lost,
}

impl CustomerStatus {
    pub const ALL: [CustomerStatus; 4] = [
        CustomerStatus::Prospect,
        CustomerStatus::Active,
        CustomerStatus::Paused,
        CustomerStatus::Lost,
    ];
    pub fn key(self) -> &'static str {
        match self {
            CustomerStatus::Prospect => "prospect",
            CustomerStatus::Active => "active",
            CustomerStatus::Paused => "paused",
            CustomerStatus::Lost => "lost",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            CustomerStatus::Prospect => "潜在",
            CustomerStatus::Active => "合作中",
            CustomerStatus::Paused => "暂停合作",
            CustomerStatus::Lost => "已流失",
        }
    }
    pub fn parse(s: &str) -> Result<CustomerStatus, Reason> {
        let s = clean(s);
        CustomerStatus::ALL
            .into_iter()
            .find(|st| st.key() == s || st.label_zh() == s)
            .ok_or_else(|| Reason::UnknownOption {
                allowed: CustomerStatus::ALL
                    .iter()
                    .map(|s| s.key().to_string())
                    .collect(),
            })
    }
}

pub const SOURCE_CHANNELS: &[&str] = &[
    "老客户转介绍",
    "展会",
    "官网",
    "电话营销",
    "线上广告",
    "合作伙伴",
    "招投标",
    "其他",
];

/// A customer as sent by a form, the API or an import: loosely typed, not yet trusted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub uscc: Option<String>,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    pub employees: Option<i64>,
    #[serde(default)]
    pub annual_revenue_fen: Option<i64>,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub sales_region: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub founded_on: Option<String>,
    #[serde(default)]
    pub cooperation_start_on: Option<String>,
    #[serde(default)]
    pub product_types: Vec<String>,
    #[serde(default)]
    pub declared_annual_purchase_fen: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub source_channel: Option<String>,
    #[serde(default)]
    pub owner_id: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub custom_fields: Map<String, Value>,
}

/// A validated customer, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerData {
    /// None: the store assigns the next code.
    pub code: Option<String>,
    pub name: String,
    pub aliases: Vec<String>,
    pub uscc: Option<String>,
    pub industry: Option<String>,
    pub employees: Option<i64>,
    pub annual_revenue: Option<Fen>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub sales_region: Option<String>,
    pub address: Option<String>,
    pub founded_on: Option<NaiveDate>,
    pub cooperation_start_on: Option<NaiveDate>,
    pub product_types: Vec<String>,
    pub declared_annual_purchase: Option<Fen>,
    pub status: CustomerStatus,
    pub source_channel: Option<String>,
    pub owner_id: Option<i64>,
    pub notes: Option<String>,
    pub custom_fields: Map<String, Value>,
    /// Fields a workable record needs but this one lacks (`industry`,
    /// `cooperation_start_on`, `custom_fields.KEY`): the
    /// customer is 待跟进 until they are filled in.
    pub missing_fields: Vec<String>,
}

/// The fields a customer lacks (待跟进, `missing_fields` keys) as a reader
/// names them; empty when complete.
pub fn missing_labels(fields: &[String], lang: crate::Lang) -> String {
    let en = lang == crate::Lang::En;
    let label = |f: &str| -> String {
        let known = match f {
            "industry" => Some(("所属行业", "industry")),
            "cooperation_start_on" => Some(("合作起始时间", "cooperation start")),
            "sales_region" => Some(("区域", "region")),
            _ => None,
        };
        match known {
            Some((zh, en_label)) => if en { en_label } else { zh }.to_string(),
            None => f.trim_start_matches("custom_fields.").to_string(),
        }
    };
    let sep = if en { ", " } else { "、" };
    fields
        .iter()
        .map(|f| label(f))
        .collect::<Vec<_>>()
        .join(sep)
}

/// The fields every customer should have to be worked with (besides its
/// name, without which there is no record at all).
pub const FOLLOW_UP_FIELDS: &[&str] = &["industry", "cooperation_start_on"];

impl CustomerData {
    /// The value of the field written as `json` in the API (`uscc`,
    /// `annual_revenue_fen`, …), for comparing two versions of a record;
    /// Null for names that are not business fields.
    pub fn field_value(&self, json: &str) -> Value {
        let fen = |f: Option<Fen>| Value::from(f.map(Fen::get));
        let date = |d: Option<NaiveDate>| Value::from(d.map(|d| d.to_string()));
        match json {
            "aliases" => Value::from(self.aliases.clone()),
            "uscc" => Value::from(self.uscc.clone()),
            "industry" => Value::from(self.industry.clone()),
            "employees" => Value::from(self.employees),
            "annual_revenue_fen" => fen(self.annual_revenue),
            "province" => Value::from(self.province.clone()),
            "city" => Value::from(self.city.clone()),
            "sales_region" => Value::from(self.sales_region.clone()),
            "address" => Value::from(self.address.clone()),
            "founded_on" => date(self.founded_on),
            "cooperation_start_on" => date(self.cooperation_start_on),
            "declared_annual_purchase_fen" => fen(self.declared_annual_purchase),
            "product_types" => Value::from(self.product_types.clone()),
            "source_channel" => Value::from(self.source_channel.clone()),
            "notes" => Value::from(self.notes.clone()),
            _ => Value::Null,
        }
    }

    /// The business fields (`crate::privacy::CUSTOMER_FIELDS`) this record
    /// sets differently from `before` (from nothing when None), each with
    /// the first of its JSON names that changed.
    pub fn changed_business_fields(
        &self,
        before: Option<&CustomerData>,
    ) -> Vec<(&'static crate::privacy::BusinessField, &'static str)> {
        let empty = |v: &Value| v.is_null() || v.as_array().is_some_and(Vec::is_empty);
        let changed = |name: &&'static str| {
            let now = self.field_value(name);
            match before {
                Some(b) => b.field_value(name) != now,
                None => !empty(&now),
            }
        };
        crate::privacy::CUSTOMER_FIELDS
            .iter()
            .filter_map(|f| {
                f.json
                    .iter()
                    .find(|name| changed(name))
                    .map(|name| (f, *name))
            })
            .collect()
    }

    /// Province and sales region from a contact's landline area code
    /// (0571-… → 浙江, 华东) when neither a province nor an address said.
    pub fn fill_region_from_landline(&mut self, landline: Option<&str>) {
        if self.province.is_some() {
            return;
        }
        if let Some(p) = landline.and_then(crate::region::province_of_area_code) {
            self.province = Some(p.to_string());
            if self.sales_region.is_none() {
                self.sales_region = sales_region_of_province(p).map(str::to_string);
            }
        }
    }

    /// The follow-up fields this customer lacks.
    pub fn gaps(&self) -> Vec<String> {
        follow_up_gaps(
            self.industry.is_some(),
            self.cooperation_start_on.is_some(),
            self.status,
        )
    }
}

/// Which of [`FOLLOW_UP_FIELDS`] a customer lacks, given which it has (a
/// prospect has no cooperation start yet).
pub fn follow_up_gaps(
    has_industry: bool,
    has_cooperation_start: bool,
    status: CustomerStatus,
) -> Vec<String> {
    let lacking = [
        !has_industry,
        !has_cooperation_start && status != CustomerStatus::Prospect,
    ];
    FOLLOW_UP_FIELDS
        .iter()
        .zip(lacking)
        .filter(|(_, l)| *l)
        .map(|(f, _)| f.to_string())
        .collect()
}

/// What validation needs to know besides the input itself.
pub struct CustomerRules<'a> {
    pub industries: &'a [String],
    pub custom_fields: &'a [CustomFieldDef],
    pub today: NaiveDate,
}

pub const NAME_MAX: usize = 100;

/// Customer code: a letter and 3–19 letters/digits/dashes, e.g. C2024001.
pub fn parse_code(raw: &str) -> Result<String, Reason> {
    let s = clean(raw).to_ascii_uppercase();
    let ok = (4..=20).contains(&s.len())
        && s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s)
    } else {
        Err(Reason::Other { zh: "客户编号应为字母开头的 4–20 位字母、数字或 -，例如 C2024001".into(), en: "a customer code is 4–20 letters, digits or -, starting with a letter, e.g. C2024001".into() })
    }
}

fn non_blank(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !clean(s).is_empty())
}

fn list(
    field: &str,
    items: &[String],
    max_items: usize,
    max_len: usize,
    errs: &mut ValidationErrors,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let s = clean(item);
        if s.is_empty() {
            continue;
        }
        match parse_text(&s, max_len) {
            Ok(s) if !out.contains(&s) => out.push(s),
            Ok(_) => {}
            Err(r) => errs.push(field, r),
        }
    }
    if out.len() > max_items {
        errs.push(
            field,
            Reason::OutOfRange {
                min: None,
                max: Some(max_items.to_string()),
            },
        );
    }
    out
}

fn date_not_future(raw: Option<&str>, today: NaiveDate) -> Result<Option<NaiveDate>, Reason> {
    raw.map(|s| parse_past_date(s, today)).transpose()
}

impl CustomerInput {
    /// Validates and normalizes everything; reports every bad field at once.
    /// A missing required field is an error (people at a form can fill it in).
    pub fn validate(&self, rules: &CustomerRules<'_>) -> Result<CustomerData, ValidationErrors> {
        self.check(rules, false)
    }

    /// As [`validate`](Self::validate), but a missing required field other
    /// than the name is kept as a `missing_fields` entry (待跟进) instead
    /// of refusing the record: what an import does with a row nobody can
    /// be asked about.
    pub fn validate_keeping_missing(
        &self,
        rules: &CustomerRules<'_>,
    ) -> Result<CustomerData, ValidationErrors> {
        self.check(rules, true)
    }

    fn check(
        &self,
        rules: &CustomerRules<'_>,
        keep_missing: bool,
    ) -> Result<CustomerData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let code = match non_blank(&self.code) {
            Some(c) => e.check("code", parse_code(c).map(Some)).flatten(),
            None => None,
        };
        let name = e.check(
            "name",
            parse_text(self.name.as_deref().unwrap_or(""), NAME_MAX),
        );
        let aliases = list("aliases", &self.aliases, 10, NAME_MAX, &mut e);
        let uscc = match non_blank(&self.uscc) {
            Some(u) => e
                .check("uscc", Uscc::parse(u).map(|u| Some(u.as_str().to_string())))
                .flatten(),
            None => None,
        };
        let industry = match non_blank(&self.industry) {
            Some(i) => e
                .check("industry", resolve_industry(i, rules.industries).map(Some))
                .flatten(),
            None => None,
        };
        let employees = match self.employees {
            Some(n) if !(0..=10_000_000).contains(&n) => {
                e.push(
                    "employees",
                    Reason::OutOfRange {
                        min: Some("0".into()),
                        max: Some("10000000".into()),
                    },
                );
                None
            }
            other => other,
        };
        let annual_revenue = self
            .annual_revenue_fen
            .and_then(|f| e.check("annual_revenue_fen", Fen::new(f)));
        let declared_annual_purchase = self
            .declared_annual_purchase_fen
            .and_then(|f| e.check("declared_annual_purchase_fen", Fen::new(f)));
        let address = e
            .check("address", parse_optional_text(self.address.as_deref(), 200))
            .flatten();
        let mut province = match non_blank(&self.province) {
            Some(p) => e
                .check(
                    "province",
                    province_of(&clean(p))
                        .map(|p| Some(p.to_string()))
                        .ok_or(Reason::Other {
                            zh: "不是中国的省级行政区".into(),
                            en: "is not a Chinese province".into(),
                        }),
                )
                .flatten(),
            None => None,
        };
        // Region from the address when it was not given.
        if province.is_none() {
            province = address
                .as_deref()
                .and_then(province_of_address)
                .map(str::to_string);
        }
        let city = e
            .check("city", parse_optional_text(self.city.as_deref(), 40))
            .flatten();
        let sales_region = match non_blank(&self.sales_region) {
            Some(r) => {
                let r = clean(r);
                e.check(
                    "sales_region",
                    SALES_REGIONS
                        .iter()
                        .find(|x| **x == r)
                        .map(|x| Some(x.to_string()))
                        .ok_or(Reason::UnknownOption {
                            allowed: SALES_REGIONS.iter().map(|s| s.to_string()).collect(),
                        }),
                )
                .flatten()
            }
            None => province
                .as_deref()
                .and_then(sales_region_of_province)
                .map(str::to_string),
        };
        let founded_on = e
            .check(
                "founded_on",
                date_not_future(non_blank(&self.founded_on), rules.today),
            )
            .flatten();
        let status = match non_blank(&self.status) {
            Some(s) => e
                .check("status", CustomerStatus::parse(s))
                .unwrap_or_default(),
            None => CustomerStatus::default(),
        };
        let cooperation_start_on = e
            .check(
                "cooperation_start_on",
                date_not_future(non_blank(&self.cooperation_start_on), rules.today),
            )
            .flatten();
        // A prospect has not started cooperating yet; everyone else must say since when.
        if cooperation_start_on.is_none()
            && status != CustomerStatus::Prospect
            && e.for_field("cooperation_start_on").is_none()
        {
            e.push("cooperation_start_on", Reason::Required);
        }
        if let (Some(f), Some(c)) = (founded_on, cooperation_start_on) {
            if c < f {
                e.push(
                    "cooperation_start_on",
                    Reason::Other {
                        zh: "合作起始时间不能早于成立日期".into(),
                        en: "must not be before the founding date".into(),
                    },
                );
            }
        }
        let product_types = list("product_types", &self.product_types, 20, 40, &mut e);
        let source_channel = e
            .check(
                "source_channel",
                parse_optional_text(self.source_channel.as_deref(), 40),
            )
            .flatten();
        let notes = match non_blank(&self.notes) {
            Some(n) => e
                .check("notes", crate::text::parse_long_text(n, 2000))
                .map(Some)
                .unwrap_or(None),
            None => None,
        };
        let (custom_fields, custom_errors) =
            check_custom_values(rules.custom_fields, &self.custom_fields);
        e.0.extend(custom_errors.0);
        let mut missing_required = Vec::new();
        if keep_missing {
            e.0.retain(|f| {
                let missing = f.reason == Reason::Required && f.field != "name";
                if missing {
                    missing_required.push(f.field.clone());
                }
                !missing
            });
        }
        e.into_result()?;
        let mut data = CustomerData {
            code,
            name: name.unwrap_or_default(),
            aliases,
            uscc,
            industry,
            employees,
            annual_revenue,
            province,
            city,
            sales_region,
            address,
            founded_on,
            cooperation_start_on,
            product_types,
            declared_annual_purchase,
            status,
            source_channel,
            owner_id: self.owner_id,
            notes,
            custom_fields,
            missing_fields: Vec::new(),
        };
        let mut missing = data.gaps();
        for f in missing_required {
            if !missing.contains(&f) {
                missing.push(f);
            }
        }
        data.missing_fields = missing;
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::industry::PRESET_INDUSTRIES;

    fn rules_check(input: CustomerInput) -> Result<CustomerData, Vec<(String, &'static str)>> {
        let industries: Vec<String> = PRESET_INDUSTRIES.iter().map(|s| s.to_string()).collect();
        let today = NaiveDate::from_ymd_opt(2024, 3, 12).expect("date");
        let rules = CustomerRules {
            industries: &industries,
            custom_fields: &[],
            today,
        };
        input.validate(&rules).map_err(|e| {
            e.0.into_iter()
                .map(|f| (f.field, f.reason.code()))
                .collect()
        })
    }

    fn base() -> CustomerInput {
        CustomerInput {
            name: Some("华东精密制造有限公司".into()),
            cooperation_start_on: Some("2021-03-15".into()),
            ..Default::default()
        }
    }

    #[test]
    fn valid_customer_is_normalized() {
        let got = rules_check(CustomerInput {
            code: Some("c2024001".into()),
            name: Some("  华东精密制造（苏州）有限公司 ".into()),
            industry: Some("工业".into()),
            address: Some("江苏省苏州市工业园区星湖街 328 号".into()),
            uscc: Some("91350100m000100y43".into()),
            declared_annual_purchase_fen: Some(120_000_000),
            ..base()
        })
        .expect("valid");
        assert_eq!(got.code.as_deref(), Some("C2024001"));
        assert_eq!(got.name, "华东精密制造(苏州)有限公司");
        assert_eq!(got.industry.as_deref(), Some("制造业"));
        assert_eq!(got.province.as_deref(), Some("江苏"));
        assert_eq!(got.sales_region.as_deref(), Some("华东"));
        assert_eq!(got.uscc.as_deref(), Some("91350100M000100Y43"));
        assert_eq!(
            got.declared_annual_purchase,
            Some(Fen::new(120_000_000).expect("fen"))
        );
    }

    #[test]
    fn missing_required_fields_are_kept_as_follow_up_by_imports_only() {
        let industries: Vec<String> = PRESET_INDUSTRIES.iter().map(|s| s.to_string()).collect();
        let rules = CustomerRules {
            industries: &industries,
            custom_fields: &[],
            today: NaiveDate::from_ymd_opt(2024, 3, 12).expect("date"),
        };
        let bare = CustomerInput {
            name: Some("某某贸易有限公司".into()),
            ..Default::default()
        };
        assert!(bare.validate(&rules).is_err());
        let kept = bare.validate_keeping_missing(&rules).expect("kept");
        assert_eq!(kept.missing_fields, ["industry", "cooperation_start_on"]);
        // Without a name there is no record; other errors still refuse.
        for bad in [
            CustomerInput::default(),
            CustomerInput {
                uscc: Some("123".into()),
                ..bare.clone()
            },
        ] {
            assert!(bad.validate_keeping_missing(&rules).is_err(), "{bad:?}");
        }
        let complete = CustomerInput {
            industry: Some("制造业".into()),
            province: Some("浙江".into()),
            ..base()
        };
        assert!(complete
            .validate(&rules)
            .expect("valid")
            .missing_fields
            .is_empty());
        let prospect = CustomerInput {
            cooperation_start_on: None,
            status: Some("潜在".into()),
            ..complete
        };
        assert!(prospect
            .validate(&rules)
            .expect("valid")
            .missing_fields
            .is_empty());
    }

    #[test]
    fn region_from_the_area_code_only_when_nothing_else_says() {
        let industries: Vec<String> = PRESET_INDUSTRIES.iter().map(|s| s.to_string()).collect();
        let rules = CustomerRules {
            industries: &industries,
            custom_fields: &[],
            today: NaiveDate::from_ymd_opt(2024, 3, 12).expect("date"),
        };
        let mut d = base().validate(&rules).expect("valid");
        d.fill_region_from_landline(Some("0571-88886666"));
        assert_eq!(
            (d.province.as_deref(), d.sales_region.as_deref()),
            (Some("浙江"), Some("华东"))
        );
        let mut d = CustomerInput {
            address: Some("广州市天河区天河路385号".into()),
            ..base()
        }
        .validate(&rules)
        .expect("valid");
        d.fill_region_from_landline(Some("0571-88886666"));
        assert_eq!(d.province.as_deref(), Some("广东"), "the address wins");
    }

    #[test]
    fn invalid_customers_table() {
        let cases: Vec<(CustomerInput, Vec<(&str, &str)>)> = vec![
            (
                CustomerInput {
                    name: None,
                    ..base()
                },
                vec![("name", "required")],
            ),
            (
                CustomerInput {
                    cooperation_start_on: None,
                    ..base()
                },
                vec![("cooperation_start_on", "required")],
            ),
            (
                CustomerInput {
                    cooperation_start_on: None,
                    status: Some("潜在".into()),
                    ..base()
                },
                vec![],
            ),
            (
                CustomerInput {
                    cooperation_start_on: Some("2021-02-30".into()),
                    ..base()
                },
                vec![("cooperation_start_on", "date_format")],
            ),
            (
                CustomerInput {
                    cooperation_start_on: Some("2030-01-01".into()),
                    ..base()
                },
                vec![("cooperation_start_on", "invalid")],
            ),
            (
                CustomerInput {
                    declared_annual_purchase_fen: Some(-1),
                    ..base()
                },
                vec![("declared_annual_purchase_fen", "amount_negative")],
            ),
            (
                CustomerInput {
                    uscc: Some("91350100M000100Y44".into()),
                    ..base()
                },
                vec![("uscc", "uscc_check")],
            ),
            (
                CustomerInput {
                    industry: Some("航天".into()),
                    ..base()
                },
                vec![("industry", "unknown_option")],
            ),
            (
                CustomerInput {
                    employees: Some(-5),
                    ..base()
                },
                vec![("employees", "out_of_range")],
            ),
            (
                CustomerInput {
                    sales_region: Some("火星".into()),
                    ..base()
                },
                vec![("sales_region", "unknown_option")],
            ),
            (
                CustomerInput {
                    code: Some("2024'--".into()),
                    ..base()
                },
                vec![("code", "invalid")],
            ),
            (
                CustomerInput {
                    name: Some("x".repeat(101)),
                    ..base()
                },
                vec![("name", "too_long")],
            ),
            (
                CustomerInput {
                    status: Some("dead".into()),
                    ..base()
                },
                vec![("status", "unknown_option")],
            ),
            (
                CustomerInput {
                    founded_on: Some("2022-01-01".into()),
                    cooperation_start_on: Some("2021-01-01".into()),
                    ..base()
                },
                vec![("cooperation_start_on", "invalid")],
            ),
        ];
        for (input, want) in cases {
            let got = match rules_check(input.clone()) {
                Ok(_) => vec![],
                Err(e) => e,
            };
            let got: Vec<(&str, &str)> = got.iter().map(|(f, c)| (f.as_str(), *c)).collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }
}
