//! Web-form intake: a public form that prospective customers fill in. An
//! admin chooses its fields and writes the purpose text the submitter
//! consents to; a submission is standardized like every other path into a
//! customer and its contact, and becomes a lead that a person reviews.

use crate::contact::{ContactData, ContactInput};
use crate::customer::{CustomerData, CustomerInput, CustomerRules, CustomerStatus};
use crate::error::{Reason, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A field a form may ask for: its key, labels, and whether every form has it.
pub struct FormField {
    pub key: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
    pub always: bool,
}

const fn field(
    key: &'static str,
    label_zh: &'static str,
    label_en: &'static str,
    always: bool,
) -> FormField {
    FormField {
        key,
        label_zh,
        label_en,
        always,
    }
}

/// The fields a form may ask for, in the order it shows them. Custom text
/// fields are asked as `cf.KEY`.
pub const FORM_FIELDS: &[FormField] = &[
    field("name", "公司名称", "Company name", true),
    field("contact.name", "联系人", "Your name", true),
    field("contact.title", "职务", "Position", false),
    field("contact.mobile", "手机", "Mobile", false),
    field("contact.landline", "座机", "Landline", false),
    field("contact.email", "邮箱", "E-mail", false),
    field("industry", "所属行业", "Industry", false),
    field("province", "省份", "Province", false),
    field("city", "城市", "City", false),
    field("address", "地址", "Address", false),
    field("employees", "员工人数", "Employees", false),
    field("notes", "需求说明", "What you need", false),
];

pub const CUSTOM_PREFIX: &str = "cf.";
pub const PURPOSE_MAX: usize = 2000;
/// Where the customers from forms come from.
pub const SOURCE_CHANNEL: &str = "官网";

/// A form as an admin defines it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormSpec {
    /// The public address: `/f/{slug}`.
    pub slug: String,
    pub title: String,
    /// The fields asked, by key (the always-asked ones are added).
    pub fields: Vec<String>,
    /// The purpose text the submitter consents to (处理目的).
    pub purpose: String,
}

impl FormSpec {
    /// Checks the form: a slug of 3–40 lower-case letters, digits or dashes,
    /// a title, known fields, a way to reach the submitter, a purpose text.
    /// `custom` lists the custom fields a form may ask for.
    pub fn check(&self, custom: &[String]) -> Result<FormSpec, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let slug = self.slug.trim().to_string();
        let slug_ok = (3..=40).contains(&slug.len())
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !slug_ok {
            e.push(
                "slug",
                Reason::Other {
                    zh: "3–40 个小写字母、数字或连字符".into(),
                    en: "3–40 lower-case letters, digits or dashes".into(),
                },
            );
        }
        let title = crate::text::clean(&self.title);
        if title.is_empty() {
            e.push("title", Reason::Required);
        }
        let mut fields: Vec<String> = FORM_FIELDS
            .iter()
            .filter(|f| f.always)
            .map(|f| f.key.to_string())
            .collect();
        for f in &self.fields {
            let f = f.trim();
            let known = FORM_FIELDS.iter().any(|k| k.key == f)
                || f.strip_prefix(CUSTOM_PREFIX)
                    .is_some_and(|k| custom.iter().any(|c| c == k));
            if !known {
                e.push(
                    format!("fields.{f}"),
                    Reason::UnknownOption {
                        allowed: FORM_FIELDS
                            .iter()
                            .map(|k| k.key.to_string())
                            .chain(custom.iter().map(|c| format!("{CUSTOM_PREFIX}{c}")))
                            .collect(),
                    },
                );
            } else if !fields.iter().any(|x| x == f) {
                fields.push(f.to_string());
            }
        }
        if !fields.iter().any(|f| {
            matches!(
                f.as_str(),
                "contact.mobile" | "contact.landline" | "contact.email"
            )
        }) {
            e.push(
                "fields",
                Reason::Other {
                    zh: "表单至少要有手机、座机或邮箱之一，才能回复提交人".into(),
                    en: "a form needs a mobile, landline or e-mail field to reach the submitter"
                        .into(),
                },
            );
        }
        let purpose = self.purpose.trim().to_string();
        if purpose.is_empty() {
            e.push("purpose", Reason::Required);
        } else if purpose.chars().count() > PURPOSE_MAX {
            e.push("purpose", Reason::TooLong { max: PURPOSE_MAX });
        }
        e.into_result()?;
        Ok(FormSpec {
            slug,
            title,
            fields,
            purpose,
        })
    }
}

/// A submission, standardized: the customer (a prospect from the web
/// form, 待跟进 fields marked) and its contact.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    pub customer: CustomerData,
    pub contact: ContactData,
}

/// Reads a submission of the form's `fields` (`values` by field key; others
/// ignored). Consent must be given; at least one way to reach the
/// submitter must be filled in. Errors name the field.
pub fn read_submission(
    fields: &[String],
    values: &BTreeMap<String, String>,
    consent: bool,
    rules: &CustomerRules<'_>,
) -> Result<Submission, ValidationErrors> {
    let get = |k: &str| {
        fields
            .iter()
            .any(|f| f == k)
            .then(|| {
                values
                    .get(k)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            })
            .flatten()
    };
    let mut e = ValidationErrors::default();
    if !consent {
        e.push(
            "consent",
            Reason::Other {
                zh: "请阅读并同意个人信息处理说明".into(),
                en: "please read and agree to how your personal information is used".into(),
            },
        );
    }
    let mut custom = serde_json::Map::new();
    for f in fields {
        if let (Some(k), Some(v)) = (f.strip_prefix(CUSTOM_PREFIX), get(f)) {
            custom.insert(k.to_string(), serde_json::Value::from(v));
        }
    }
    let employees = match get("employees") {
        Some(v) => e.check(
            "employees",
            v.parse::<i64>().map_err(|_| Reason::NumberFormat),
        ),
        None => None,
    };
    let customer = CustomerInput {
        name: get("name"),
        industry: get("industry"),
        province: get("province"),
        city: get("city"),
        address: get("address"),
        employees,
        notes: get("notes"),
        status: Some(CustomerStatus::Prospect.key().to_string()),
        source_channel: Some(SOURCE_CHANNEL.to_string()),
        custom_fields: custom,
        ..CustomerInput::default()
    };
    let contact = ContactInput {
        name: get("contact.name"),
        title: get("contact.title"),
        mobile: get("contact.mobile"),
        landline: get("contact.landline"),
        email: get("contact.email"),
        is_primary: Some(true),
        ..ContactInput::default()
    };
    if contact.mobile.is_none() && contact.landline.is_none() && contact.email.is_none() {
        let first = ["contact.mobile", "contact.landline", "contact.email"]
            .into_iter()
            .find(|k| fields.iter().any(|f| f == k))
            .unwrap_or("contact.mobile");
        e.push(
            first,
            Reason::Other {
                zh: "请留下手机、座机或邮箱，以便联系您".into(),
                en: "leave a mobile, landline or e-mail so that we can reach you".into(),
            },
        );
    }
    let customer = match customer.validate_keeping_missing(rules) {
        Ok(c) => Some(c),
        Err(errors) => {
            e.0.extend(errors.0);
            None
        }
    };
    let contact = match contact.validate() {
        Ok(c) => Some(c),
        Err(errors) => {
            e.0.extend(errors.0.into_iter().map(|mut f| {
                f.field = format!("contact.{}", f.field);
                f
            }));
            None
        }
    };
    e.into_result()?;
    match (customer, contact) {
        (Some(customer), Some(contact)) => Ok(Submission { customer, contact }),
        _ => Err(ValidationErrors::single("name", Reason::Required)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn rules() -> (Vec<String>, NaiveDate) {
        (
            vec!["制造业".to_string(), "IT服务".to_string()],
            NaiveDate::from_ymd_opt(2026, 12, 2).expect("date"),
        )
    }

    fn spec(fields: &[&str]) -> FormSpec {
        FormSpec {
            slug: "expo-2026".into(),
            title: "展会咨询".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            purpose: "用于联系您介绍产品".into(),
        }
    }

    #[test]
    fn forms_are_checked() {
        let ok = spec(&["contact.mobile", "cf.budget"])
            .check(&["budget".into()])
            .expect("ok");
        assert_eq!(
            ok.fields,
            ["name", "contact.name", "contact.mobile", "cf.budget"]
        );
        let cases: [(FormSpec, &str); 5] = [
            (
                FormSpec {
                    slug: "A b".into(),
                    ..spec(&["contact.mobile"])
                },
                "slug",
            ),
            (
                FormSpec {
                    title: " ".into(),
                    ..spec(&["contact.mobile"])
                },
                "title",
            ),
            (spec(&["contact.mobile", "colour"]), "fields.colour"),
            (spec(&["industry"]), "fields"),
            (
                FormSpec {
                    purpose: String::new(),
                    ..spec(&["contact.email"])
                },
                "purpose",
            ),
        ];
        for (form, field) in cases {
            let e = form.check(&[]).expect_err(field);
            assert_eq!(e.0[0].field, field, "{e}");
        }
    }

    #[test]
    fn submissions_are_standardized_and_need_consent_and_a_way_back() {
        let (industries, today) = rules();
        let rules = CustomerRules {
            industries: &industries,
            custom_fields: &[],
            today,
        };
        let fields = spec(&["contact.mobile", "contact.email", "industry"])
            .check(&[])
            .expect("form")
            .fields;
        let values: BTreeMap<String, String> = [
            ("name", " 北京星河精密机械有限公司 "),
            ("contact.name", "张伟"),
            ("contact.mobile", "138 0013 8000"),
            ("contact.email", "ZhangWei@Example.COM"),
            ("industry", "制造业"),
            ("address", "ignored: not a field of this form"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let s = read_submission(&fields, &values, true, &rules).expect("valid");
        assert_eq!(s.customer.name, "北京星河精密机械有限公司");
        assert_eq!(s.customer.status, CustomerStatus::Prospect);
        assert_eq!(s.customer.source_channel.as_deref(), Some("官网"));
        assert_eq!(s.customer.address, None);
        assert!(
            s.customer.missing_fields.is_empty(),
            "a prospect needs no cooperation start"
        );
        assert_eq!(s.contact.mobile.as_deref(), Some("13800138000"));
        assert_eq!(s.contact.email.as_deref(), Some("zhangwei@example.com"));

        let e = read_submission(&fields, &values, false, &rules).expect_err("no consent");
        assert_eq!(e.0[0].field, "consent");
        let mut unreachable = values.clone();
        unreachable.remove("contact.mobile");
        unreachable.remove("contact.email");
        let e = read_submission(&fields, &unreachable, true, &rules).expect_err("no way back");
        assert_eq!(e.0[0].field, "contact.mobile");
        let mut bad = values.clone();
        bad.insert("contact.mobile".into(), "12345".into());
        let e = read_submission(&fields, &bad, true, &rules).expect_err("bad mobile");
        assert!(e.0.iter().any(|f| f.field == "contact.mobile"), "{e}");
    }
}

/// How a consent recorded by hand was given (a web form records its own,
/// `web_form`): key, Chinese and English labels.
pub const CONSENT_CHANNELS: &[(&str, &str, &str)] = &[
    ("phone", "电话", "Phone"),
    ("paper", "纸质签署", "Signed on paper"),
    ("email", "电子邮件", "E-mail"),
    ("in_person", "当面", "In person"),
    ("online", "其他线上渠道", "Another online channel"),
];

/// A consent recorded by hand on a customer's page or through the API:
/// what the person agreed to, in which version of the text, how and when.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConsentInput {
    pub contact_id: Option<i64>,
    pub purpose: Option<String>,
    pub purpose_version: Option<i64>,
    pub channel: Option<String>,
    /// The day it was given (default today; not in the future).
    pub given_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentData {
    pub contact_id: Option<i64>,
    pub purpose: String,
    pub purpose_version: i64,
    pub channel: String,
    pub given_on: chrono::NaiveDate,
}

impl ConsentInput {
    pub fn validate(&self, today: chrono::NaiveDate) -> Result<ConsentData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let purpose = e.check(
            "purpose",
            crate::text::parse_long_text(self.purpose.as_deref().unwrap_or(""), PURPOSE_MAX),
        );
        let purpose_version = match self.purpose_version {
            None => Some(1),
            Some(v) if (1..=10_000).contains(&v) => Some(v),
            Some(_) => {
                e.push(
                    "purpose_version",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some("10000".into()),
                    },
                );
                None
            }
        };
        let channel = e.check(
            "channel",
            match self.channel.as_deref().map(str::trim).unwrap_or("") {
                "" => Err(Reason::Required),
                c => CONSENT_CHANNELS
                    .iter()
                    .find(|k| k.0 == c)
                    .map(|k| k.0.to_string())
                    .ok_or_else(|| Reason::UnknownOption {
                        allowed: CONSENT_CHANNELS.iter().map(|k| k.0.to_string()).collect(),
                    }),
            },
        );
        let given_on = match self
            .given_on
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Some(today),
            Some(raw) => e.check("given_on", crate::date::parse_past_date(raw, today)),
        };
        e.into_result()?;
        match (purpose, purpose_version, channel, given_on) {
            (Some(purpose), Some(purpose_version), Some(channel), Some(given_on)) => {
                Ok(ConsentData {
                    contact_id: self.contact_id,
                    purpose,
                    purpose_version,
                    channel,
                    given_on,
                })
            }
            // Every None above pushed an error.
            _ => Err(ValidationErrors::single("purpose", Reason::Required)),
        }
    }
}
