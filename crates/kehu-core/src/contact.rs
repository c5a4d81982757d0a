//! Contacts of a customer: personal information (see the Privacy section of design.md).

use crate::error::{Reason, ValidationErrors};
use crate::ident::{Email, IdNumber, Landline, Mobile};
use crate::text::{clean, parse_long_text, parse_optional_text, parse_text};
use serde::{Deserialize, Serialize};

/// Role in the buying decision.
pub const DECISION_ROLES: &[&str] = &[
    "决策者",
    "影响者",
    "使用者",
    "采购",
    "技术把关",
    "财务",
    "其他",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub decision_role: Option<String>,
    #[serde(default)]
    pub landline: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub is_primary: Option<bool>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactData {
    pub name: String,
    pub title: Option<String>,
    pub decision_role: Option<String>,
    pub landline: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
    pub is_primary: bool,
    pub notes: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !clean(s).is_empty())
}

impl ContactInput {
    pub fn validate(&self) -> Result<ContactData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = e.check("name", parse_text(self.name.as_deref().unwrap_or(""), 40));
        let title = e
            .check("title", parse_optional_text(self.title.as_deref(), 40))
            .flatten();
        let decision_role = match given(&self.decision_role) {
            Some(r) => {
                let r = clean(r);
                e.check(
                    "decision_role",
                    DECISION_ROLES
                        .iter()
                        .find(|x| **x == r)
                        .map(|x| Some(x.to_string()))
                        .ok_or(Reason::UnknownOption {
                            allowed: DECISION_ROLES.iter().map(|s| s.to_string()).collect(),
                        }),
                )
                .flatten()
            }
            None => None,
        };
        let landline = given(&self.landline)
            .and_then(|s| e.check("landline", Landline::parse(s).map(|l| l.formatted())));
        let mobile = given(&self.mobile)
            .and_then(|s| e.check("mobile", Mobile::parse(s).map(|m| m.as_str().to_string())));
        let email = given(&self.email)
            .and_then(|s| e.check("email", Email::parse(s).map(|m| m.as_str().to_string())));
        let id_number = given(&self.id_number).and_then(|s| {
            e.check(
                "id_number",
                IdNumber::parse(s).map(|m| m.as_str().to_string()),
            )
        });
        let notes = given(&self.notes).and_then(|s| e.check("notes", parse_long_text(s, 1000)));
        e.into_result()?;
        Ok(ContactData {
            name: name.unwrap_or_default(),
            title,
            decision_role,
            landline,
            mobile,
            email,
            id_number,
            is_primary: self.is_primary.unwrap_or(false),
            notes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_table() {
        let base = || ContactInput {
            name: Some("王伟".into()),
            ..Default::default()
        };
        let cases: Vec<(ContactInput, Vec<(&str, &str)>)> = vec![
            (base(), vec![]),
            (
                ContactInput {
                    mobile: Some("+86 139 0000 1111".into()),
                    landline: Some("(021)62345678".into()),
                    ..base()
                },
                vec![],
            ),
            (
                ContactInput {
                    name: None,
                    ..base()
                },
                vec![("name", "required")],
            ),
            (
                ContactInput {
                    mobile: Some("12345".into()),
                    ..base()
                },
                vec![("mobile", "mobile_format")],
            ),
            (
                ContactInput {
                    landline: Some("13812345678".into()),
                    ..base()
                },
                vec![("landline", "landline_format")],
            ),
            (
                ContactInput {
                    email: Some("wang@".into()),
                    ..base()
                },
                vec![("email", "email_format")],
            ),
            (
                ContactInput {
                    id_number: Some("110105194912310021".into()),
                    ..base()
                },
                vec![("id_number", "id_number_check")],
            ),
            (
                ContactInput {
                    decision_role: Some("老板".into()),
                    ..base()
                },
                vec![("decision_role", "unknown_option")],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(String, &str)> = match input.validate() {
                Ok(_) => vec![],
                Err(e) => {
                    e.0.into_iter()
                        .map(|f| (f.field, f.reason.code()))
                        .collect()
                }
            };
            let got: Vec<(&str, &str)> = got.iter().map(|(f, c)| (f.as_str(), *c)).collect();
            assert_eq!(got, want, "input {input:?}");
        }
        let ok = ContactInput {
            mobile: Some("+86 139 0000 1111".into()),
            ..base()
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.mobile.as_deref(), Some("13900001111"));
    }
}
