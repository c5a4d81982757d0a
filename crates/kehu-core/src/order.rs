//! Orders: the source of annual purchase, frequency, average order value and growth.

use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use crate::money::Fen;
use crate::text::{clean, parse_optional_text};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderInput {
    #[serde(default)]
    pub order_no: Option<String>,
    #[serde(default)]
    pub ordered_on: Option<String>,
    #[serde(default)]
    pub amount_fen: Option<i64>,
    #[serde(default)]
    pub product_line: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderData {
    pub order_no: Option<String>,
    pub ordered_on: NaiveDate,
    pub amount: Fen,
    pub product_line: Option<String>,
    pub notes: Option<String>,
}

impl OrderInput {
    pub fn validate(&self, today: NaiveDate) -> Result<OrderData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let order_no = e
            .check(
                "order_no",
                parse_optional_text(self.order_no.as_deref(), 40),
            )
            .flatten();
        let ordered_on = match self.ordered_on.as_deref().filter(|s| !clean(s).is_empty()) {
            None => {
                e.push("ordered_on", Reason::Required);
                None
            }
            Some(s) => e.check(
                "ordered_on",
                parse_date(s).and_then(|d| {
                    if d > today {
                        Err(Reason::Other {
                            zh: "下单日期不能晚于今天".into(),
                            en: "must not be in the future".into(),
                        })
                    } else {
                        Ok(d)
                    }
                }),
            ),
        };
        let amount = match self.amount_fen {
            None => {
                e.push("amount_fen", Reason::Required);
                None
            }
            Some(f) => e.check("amount_fen", Fen::new(f)),
        };
        let product_line = e
            .check(
                "product_line",
                parse_optional_text(self.product_line.as_deref(), 40),
            )
            .flatten();
        let notes = e
            .check("notes", parse_optional_text(self.notes.as_deref(), 500))
            .flatten();
        e.into_result()?;
        match (ordered_on, amount) {
            (Some(ordered_on), Some(amount)) => Ok(OrderData {
                order_no,
                ordered_on,
                amount,
                product_line,
                notes,
            }),
            _ => Err(ValidationErrors::single("ordered_on", Reason::Required)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_table() {
        let today = NaiveDate::from_ymd_opt(2024, 3, 12).expect("date");
        let base = || OrderInput {
            ordered_on: Some("2024-03-01".into()),
            amount_fen: Some(12_000_000),
            ..Default::default()
        };
        let cases: Vec<(OrderInput, Vec<(&str, &str)>)> = vec![
            (base(), vec![]),
            (
                OrderInput {
                    amount_fen: Some(0),
                    ..base()
                },
                vec![],
            ),
            (
                OrderInput {
                    amount_fen: Some(-100),
                    ..base()
                },
                vec![("amount_fen", "amount_negative")],
            ),
            (
                OrderInput {
                    amount_fen: None,
                    ..base()
                },
                vec![("amount_fen", "required")],
            ),
            (
                OrderInput {
                    ordered_on: None,
                    ..base()
                },
                vec![("ordered_on", "required")],
            ),
            (
                OrderInput {
                    ordered_on: Some("2024-04-01".into()),
                    ..base()
                },
                vec![("ordered_on", "invalid")],
            ),
            (
                OrderInput {
                    ordered_on: Some("2024-02-31".into()),
                    ..base()
                },
                vec![("ordered_on", "date_format")],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(String, &str)> = match input.validate(today) {
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
    }
}
