//! Contacts of a customer: personal information (see the Privacy section of design.md).

use crate::error::{Reason, ValidationErrors};
use crate::ident::{Email, IdNumber, Mobile, Phone};
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

/// Phone numbers go where they belong, whichever column they came in: a
/// mobile typed into the landline field becomes the mobile (when that is
/// empty), a landline in the mobile field the landline; 400/800 numbers are
/// landlines. Returns (landline, mobile), formatted.
fn classify_phones(
    e: &mut ValidationErrors,
    landline_raw: Option<&str>,
    mobile_raw: Option<&str>,
) -> (Option<String>, Option<String>) {
    let as_landline = |p: &Phone| match p {
        Phone::Mobile(_) => None,
        other => Some(other.formatted()),
    };
    let landline = landline_raw.and_then(|s| {
        e.check(
            "landline",
            Phone::parse(s).map_err(|_| Reason::LandlineFormat),
        )
    });
    let mobile = mobile_raw.and_then(|s| match Phone::parse(s) {
        Ok(p) => Some(p),
        Err(_) => e.check("mobile", Mobile::parse(s).map(Phone::Mobile)),
    });
    match (landline, mobile) {
        (Some(Phone::Mobile(m)), None) => (None, Some(m.as_str().to_string())),
        (None, Some(p)) if !matches!(p, Phone::Mobile(_)) => (as_landline(&p), None),
        (l, m) => {
            let landline = l.and_then(|p| {
                let kept = as_landline(&p);
                if kept.is_none() {
                    e.push("landline", Reason::LandlineFormat);
                }
                kept
            });
            let mobile = m.and_then(|p| match p {
                Phone::Mobile(m) => Some(m.as_str().to_string()),
                _ => {
                    e.push("mobile", Reason::MobileFormat);
                    None
                }
            });
            (landline, mobile)
        }
    }
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
        let (landline, mobile) =
            classify_phones(&mut e, given(&self.landline), given(&self.mobile));
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
    fn phones_go_where_they_belong() {
        let cases: [(Option<&str>, Option<&str>, Option<&str>, Option<&str>); 6] = [
            // (landline in, mobile in) → (landline, mobile)
            (Some("13812345678"), None, None, Some("13812345678")),
            (None, Some("0571-88889999"), Some("0571-88889999"), None),
            (
                Some("02162345678"),
                Some("+86 139 0000 1111"),
                Some("021-62345678"),
                Some("13900001111"),
            ),
            (Some("400 123 4567"), None, Some("400-123-4567"), None),
            (None, Some("800-123-4567"), Some("800-123-4567"), None),
            (
                Some("010-6552 9988-123"),
                None,
                Some("010-65529988-123"),
                None,
            ),
        ];
        for (landline, mobile, want_landline, want_mobile) in cases {
            let got = ContactInput {
                name: Some("王伟".into()),
                landline: landline.map(str::to_string),
                mobile: mobile.map(str::to_string),
                ..Default::default()
            }
            .validate()
            .unwrap_or_else(|e| panic!("{landline:?} {mobile:?}: {e:?}"));
            assert_eq!(
                got.landline.as_deref(),
                want_landline,
                "{landline:?} {mobile:?}"
            );
            assert_eq!(
                got.mobile.as_deref(),
                want_mobile,
                "{landline:?} {mobile:?}"
            );
        }
    }

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
                    // A second mobile has nowhere to go.
                    landline: Some("13812345678".into()),
                    mobile: Some("13900001111".into()),
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
