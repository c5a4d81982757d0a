//! Stored records: validated domain data plus identity, version and times.

use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::custom_field::CustomFieldDef;
use kehu_core::customer::{CustomerData, CustomerStatus};
use kehu_core::role::Grants;
use kehu_core::Fen;
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Customer {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub uscc: Option<String>,
    pub industry: Option<String>,
    pub employees: Option<i64>,
    pub annual_revenue_fen: Option<i64>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub sales_region: Option<String>,
    pub address: Option<String>,
    pub founded_on: Option<NaiveDate>,
    pub cooperation_start_on: Option<NaiveDate>,
    pub product_types: Vec<String>,
    pub declared_annual_purchase_fen: Option<i64>,
    pub status: String,
    pub source_channel: Option<String>,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
    pub notes: Option<String>,
    pub custom_fields: Map<String, Value>,
    /// Fields it lacks to be worked with: 待跟进 while not empty.
    pub missing_fields: Vec<String>,
    /// Derived from orders (last 12 months as of the last refresh).
    pub purchase_12m_fen: i64,
    pub order_count: i64,
    pub last_order_on: Option<NaiveDate>,
    pub last_interaction_on: Option<NaiveDate>,
    pub complaints_365d: i64,
    /// The latest BG/NBD + Gamma-Gamma outlook (the `predictions` job).
    #[serde(default)]
    pub predicted: kehu_core::predict::Predicted,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Customer {
    /// The stored customer as validated data: what an unchanged record
    /// would write. A record stored before today's rules (an industry
    /// since removed) compares as changed, which re-validates it.
    pub fn data(&self) -> CustomerData {
        CustomerData {
            code: Some(self.code.clone()),
            name: self.name.clone(),
            aliases: self.aliases.clone(),
            uscc: self.uscc.clone(),
            industry: self.industry.clone(),
            employees: self.employees,
            annual_revenue: self.annual_revenue_fen.and_then(|f| Fen::new(f).ok()),
            province: self.province.clone(),
            city: self.city.clone(),
            sales_region: self.sales_region.clone(),
            address: self.address.clone(),
            founded_on: self.founded_on,
            cooperation_start_on: self.cooperation_start_on,
            product_types: self.product_types.clone(),
            declared_annual_purchase: self
                .declared_annual_purchase_fen
                .and_then(|f| Fen::new(f).ok()),
            status: CustomerStatus::parse(&self.status).unwrap_or_default(),
            source_channel: self.source_channel.clone(),
            owner_id: self.owner_id,
            notes: self.notes.clone(),
            custom_fields: self.custom_fields.clone(),
            missing_fields: self.missing_fields.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    pub id: i64,
    pub customer_id: i64,
    pub name: String,
    pub title: Option<String>,
    pub decision_role: Option<String>,
    pub landline: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
    pub is_primary: bool,
    pub notes: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Contact {
    /// Its values as validated contact data.
    pub fn data(&self) -> kehu_core::contact::ContactData {
        kehu_core::contact::ContactData {
            name: self.name.clone(),
            title: self.title.clone(),
            decision_role: self.decision_role.clone(),
            landline: self.landline.clone(),
            mobile: self.mobile.clone(),
            email: self.email.clone(),
            id_number: self.id_number.clone(),
            is_primary: self.is_primary,
            notes: self.notes.clone(),
        }
    }

    /// What duplicate detection compares of it.
    pub fn facts(&self) -> kehu_core::dedupe::contact::ContactFacts<'_> {
        kehu_core::dedupe::contact::ContactFacts {
            id: self.id,
            name: &self.name,
            mobile: self.mobile.as_deref(),
            landline: self.landline.as_deref(),
            email: self.email.as_deref(),
            id_number: self.id_number.as_deref(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Order {
    pub id: i64,
    pub customer_id: i64,
    pub order_no: Option<String>,
    pub ordered_on: NaiveDate,
    pub amount_fen: i64,
    pub product_line: Option<String>,
    pub notes: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub occurred_on: NaiveDate,
    pub summary: String,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub satisfaction: Option<i64>,
    pub user_id: Option<i64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub team: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user with what authorization needs: the role's grants.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthUser {
    pub user: User,
    pub grants: Grants,
    pub field_rights: kehu_core::privacy::FieldRights,
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub key: String,
    pub name_zh: String,
    pub name_en: String,
    pub grants: Grants,
    pub field_rights: kehu_core::privacy::FieldRights,
    pub builtin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomField {
    pub id: i64,
    pub def: CustomFieldDef,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An API token as listed: what it is called, when it was made and last
/// used, whether it was revoked — never the token (only its hash is kept).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One page of a list and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    pub total: Option<i64>,
}
