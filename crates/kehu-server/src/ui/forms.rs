//! Form bodies as ordered pairs, and their conversion to kehu-core inputs.
//! Money is typed in 元 or 万元 and becomes fen here, by kehu-core's parser.

use axum::extract::FromRequest;
use kehu_core::contact::ContactInput;
use kehu_core::custom_field::{CustomFieldDef, FieldKind};
use kehu_core::customer::CustomerInput;
use kehu_core::{Fen, Lang, Reason, ValidationErrors};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An `application/x-www-form-urlencoded` body as pairs (repeated names kept).
pub struct FormData(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = crate::error::ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| crate::error::ApiError::PayloadTooLarge)?;
        Ok(FormData(
            form_urlencoded::parse(&bytes).into_owned().collect(),
        ))
    }
}

impl FormData {
    /// The pairs of a query string (GET forms).
    pub fn from_query(raw: Option<&str>) -> FormData {
        FormData(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// The trimmed value, or None when blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
    /// A whole number typed in `name` (None when empty); one that does
    /// not parse is refused in `e`, naming the field.
    pub fn integer(&self, name: &str, e: &mut ValidationErrors) -> Option<i64> {
        self.text(name)
            .and_then(|v| e.check(name, v.parse::<i64>().map_err(|_| Reason::IntegerFormat)))
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.trim().is_empty())
            .collect()
    }
    pub fn checked(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v == "true" || v == "on")
    }
    /// What was posted, without the CSRF token (to pass on or show again).
    pub fn posted(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| k != "csrf_token")
            .cloned()
            .collect()
    }

    /// The values as template values, to re-render a form after an error.
    pub fn kept(&self) -> BTreeMap<String, minijinja::Value> {
        self.values()
            .into_iter()
            .map(|(k, v)| (k, minijinja::Value::from_serialize(&v)))
            .collect()
    }

    /// The values as a map for re-rendering a form after an error.
    pub fn values(&self) -> BTreeMap<String, Value> {
        let mut m: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &self.0 {
            if k == "csrf_token" {
                continue;
            }
            match m.get_mut(k) {
                Some(Value::Array(items)) => items.push(Value::String(v.clone())),
                Some(existing) => {
                    let first = existing.clone();
                    *existing = Value::Array(vec![first, Value::String(v.clone())]);
                }
                None => {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        m
    }
}

/// Splits "a, b，c、d" into items.
pub fn split_list(s: Option<String>) -> Vec<String> {
    s.map(|s| {
        s.split([',', '，', '、', ';', '；'])
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Field errors as name → message for the templates.
pub fn error_map(e: &ValidationErrors, lang: Lang) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for fe in &e.0 {
        m.entry(fe.field.clone())
            .or_insert_with(|| fe.reason.message(lang));
    }
    m
}

fn wan(form: &FormData, name: &str, e: &mut ValidationErrors) -> Option<i64> {
    form.text(name)
        .and_then(|v| e.check(name, Fen::parse_wan(&v)).map(Fen::get))
}

/// The customer part of the customer form. Errors of the typed fields
/// (numbers, money) are collected in `e` beside core's.
pub fn customer_input(
    form: &FormData,
    defs: &[CustomFieldDef],
    e: &mut ValidationErrors,
) -> CustomerInput {
    let employees = form.integer("employees", e);
    let owner_id = form.text("owner_id").and_then(|v| v.parse::<i64>().ok());
    let mut custom = Map::new();
    for d in defs {
        let name = format!("custom_fields.{}", d.key);
        let v = match d.kind {
            FieldKind::MultiEnum => {
                Value::Array(form.all(&name).into_iter().map(Value::String).collect())
            }
            FieldKind::Bool => Value::Bool(form.checked(&name)),
            _ => form.text(&name).map(Value::String).unwrap_or(Value::Null),
        };
        custom.insert(d.key.clone(), v);
    }
    CustomerInput {
        code: form.text("code"),
        name: form.text("name"),
        aliases: split_list(form.text("aliases")),
        uscc: form.text("uscc"),
        industry: form.text("industry"),
        employees,
        annual_revenue_fen: wan(form, "annual_revenue_fen", e),
        province: form.text("province"),
        city: form.text("city"),
        sales_region: form.text("sales_region"),
        address: form.text("address"),
        founded_on: form.text("founded_on"),
        cooperation_start_on: form.text("cooperation_start_on"),
        product_types: split_list(form.text("product_types")),
        declared_annual_purchase_fen: wan(form, "declared_annual_purchase_fen", e),
        status: form.text("status"),
        source_channel: form.text("source_channel"),
        owner_id,
        notes: form.text("notes"),
        custom_fields: custom,
    }
}

/// A contact from fields named `{prefix}name`, `{prefix}mobile`, …; None if all blank.
pub fn contact_input(form: &FormData, prefix: &str) -> Option<ContactInput> {
    let f = |n: &str| form.text(&format!("{prefix}{n}"));
    let c = ContactInput {
        name: f("name"),
        title: f("title"),
        decision_role: f("decision_role"),
        landline: f("landline"),
        mobile: f("mobile"),
        email: f("email"),
        id_number: f("id_number"),
        is_primary: Some(form.checked(&format!("{prefix}is_primary")) || prefix == "contact."),
        notes: f("notes"),
    };
    let any = [
        &c.name,
        &c.title,
        &c.landline,
        &c.mobile,
        &c.email,
        &c.id_number,
    ]
    .iter()
    .any(|v| v.is_some());
    any.then_some(c)
}

/// Prefixes every field of `errs` (contact errors inside the customer form).
pub fn prefixed(errs: ValidationErrors, prefix: &str) -> ValidationErrors {
    ValidationErrors(
        errs.0
            .into_iter()
            .map(|mut fe| {
                fe.field = format!("{prefix}{}", fe.field);
                fe
            })
            .collect(),
    )
}
