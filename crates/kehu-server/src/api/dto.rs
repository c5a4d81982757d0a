//! Wire types of the JSON API (serde + OpenAPI), converted by hand from and
//! to kehu-core inputs and kehu-store records. Money is integer fen
//! (`*_fen`), dates are `YYYY-MM-DD`.

use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::contact::ContactInput;
use kehu_core::customer::CustomerInput;
use kehu_core::interaction::InteractionInput;
use kehu_core::order::OrderInput;
use kehu_store::model;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// A customer to create, or the fields to change (PATCH merges them onto the record).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerWrite {
    /// Customer code such as C2024001; generated when absent.
    #[serde(default)]
    pub code: Option<String>,
    /// Company name (required).
    #[serde(default)]
    pub name: Option<String>,
    /// Former names and aliases.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// 统一社会信用代码 (GB 32100, check character validated).
    #[serde(default)]
    pub uscc: Option<String>,
    /// One of the configured industries (synonyms such as 工业 are mapped).
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
    /// 华东/华南/华北/华中/西南/西北/东北; derived from the province when absent.
    #[serde(default)]
    pub sales_region: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub founded_on: Option<String>,
    /// Required unless status is `prospect`.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub cooperation_start_on: Option<String>,
    #[serde(default)]
    pub product_types: Vec<String>,
    /// Declared annual purchase (年采购额) in fen, e.g. from an imported template.
    #[serde(default)]
    pub declared_annual_purchase_fen: Option<i64>,
    /// prospect | active | paused | lost
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub source_channel: Option<String>,
    /// Owner user id; defaults to the caller.
    #[serde(default)]
    pub owner_id: Option<i64>,
    #[serde(default)]
    pub notes: Option<String>,
    /// Values of custom fields by key.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
}

impl From<CustomerWrite> for CustomerInput {
    fn from(w: CustomerWrite) -> Self {
        CustomerInput {
            code: w.code,
            name: w.name,
            aliases: w.aliases,
            uscc: w.uscc,
            industry: w.industry,
            employees: w.employees,
            annual_revenue_fen: w.annual_revenue_fen,
            province: w.province,
            city: w.city,
            sales_region: w.sales_region,
            address: w.address,
            founded_on: w.founded_on,
            cooperation_start_on: w.cooperation_start_on,
            product_types: w.product_types,
            declared_annual_purchase_fen: w.declared_annual_purchase_fen,
            status: w.status,
            source_channel: w.source_channel,
            owner_id: w.owner_id,
            notes: w.notes,
            custom_fields: w.custom_fields,
        }
    }
}

impl From<&model::Customer> for CustomerWrite {
    fn from(c: &model::Customer) -> Self {
        CustomerWrite {
            code: Some(c.code.clone()),
            name: Some(c.name.clone()),
            aliases: c.aliases.clone(),
            uscc: c.uscc.clone(),
            industry: c.industry.clone(),
            employees: c.employees,
            annual_revenue_fen: c.annual_revenue_fen,
            province: c.province.clone(),
            city: c.city.clone(),
            sales_region: c.sales_region.clone(),
            address: c.address.clone(),
            founded_on: c.founded_on.map(|d| d.to_string()),
            cooperation_start_on: c.cooperation_start_on.map(|d| d.to_string()),
            product_types: c.product_types.clone(),
            declared_annual_purchase_fen: c.declared_annual_purchase_fen,
            status: Some(c.status.clone()),
            source_channel: c.source_channel.clone(),
            owner_id: c.owner_id,
            notes: c.notes.clone(),
            custom_fields: c.custom_fields.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerOut {
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
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    /// Fields the customer lacks to be worked with (`industry`,
    /// `cooperation_start_on`, `custom_fields.KEY`): 待跟进
    /// while not empty.
    pub missing_fields: Vec<String>,
    /// Fields kept from this reader by their role's field rights (absent
    /// here, whether or not the customer has a value); text fields the role
    /// sees masked are sent masked instead.
    pub withheld_fields: Vec<String>,
    /// Sum of orders in the last 12 months (derived; null when the
    /// reader's role is kept from order amounts).
    pub purchase_12m_fen: Option<i64>,
    pub order_count: i64,
    pub last_order_on: Option<NaiveDate>,
    pub last_interaction_on: Option<NaiveDate>,
    pub complaints_365d: i64,
    /// P(alive) from the latest BG/NBD fit, in 1/10000 (null: no orders or no fit yet).
    pub p_alive: Option<i64>,
    /// Orders expected in the next 90 days, in 1/10000.
    pub expected_orders_90d: Option<i64>,
    /// Expected lifetime value over the next 12 months, discounted 1 % a month (fen).
    pub clv_fen: Option<i64>,
    /// Send back as If-Match `"v{version}"` or as `version` to change the record.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model::Customer> for CustomerOut {
    fn from(c: model::Customer) -> Self {
        CustomerOut {
            id: c.id,
            code: c.code,
            name: c.name,
            aliases: c.aliases,
            uscc: c.uscc,
            industry: c.industry,
            employees: c.employees,
            annual_revenue_fen: c.annual_revenue_fen,
            province: c.province,
            city: c.city,
            sales_region: c.sales_region,
            address: c.address,
            founded_on: c.founded_on,
            cooperation_start_on: c.cooperation_start_on,
            product_types: c.product_types,
            declared_annual_purchase_fen: c.declared_annual_purchase_fen,
            status: c.status,
            source_channel: c.source_channel,
            owner_id: c.owner_id,
            team: c.team,
            notes: c.notes,
            custom_fields: c.custom_fields,
            missing_fields: c.missing_fields,
            withheld_fields: Vec::new(),
            purchase_12m_fen: Some(c.purchase_12m_fen),
            order_count: c.order_count,
            last_order_on: c.last_order_on,
            last_interaction_on: c.last_interaction_on,
            complaints_365d: c.complaints_365d,
            p_alive: c.predicted.p_alive,
            expected_orders_90d: c.predicted.expected_orders_90d,
            clv_fen: c.predicted.clv_fen,
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactWrite {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    /// 决策者/影响者/使用者/采购/技术把关/财务/其他
    #[serde(default)]
    pub decision_role: Option<String>,
    /// Landline such as 010-62345678-123 (preferred for business contact).
    #[serde(default)]
    pub landline: Option<String>,
    /// 11-digit mobile 1[3-9]…
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// Resident ID number (GB 11643 check digit).
    #[serde(default)]
    pub id_number: Option<String>,
    #[serde(default)]
    pub is_primary: Option<bool>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl From<ContactWrite> for ContactInput {
    fn from(w: ContactWrite) -> Self {
        ContactInput {
            name: w.name,
            title: w.title,
            decision_role: w.decision_role,
            landline: w.landline,
            mobile: w.mobile,
            email: w.email,
            id_number: w.id_number,
            is_primary: w.is_primary,
            notes: w.notes,
        }
    }
}

impl From<&model::Contact> for ContactWrite {
    fn from(c: &model::Contact) -> Self {
        ContactWrite {
            name: Some(c.name.clone()),
            title: c.title.clone(),
            decision_role: c.decision_role.clone(),
            landline: c.landline.clone(),
            mobile: c.mobile.clone(),
            email: c.email.clone(),
            id_number: c.id_number.clone(),
            is_primary: Some(c.is_primary),
            notes: c.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactOut {
    pub id: i64,
    pub customer_id: i64,
    /// Personal fields (name, phones, e-mail, ID number) are masked for the
    /// reader's role (138****5678), absent (null) when hidden, and in clear
    /// only with `reveal=true` for roles that may see them.
    pub name: Option<String>,
    pub title: Option<String>,
    pub decision_role: Option<String>,
    pub landline: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
    pub is_primary: bool,
    pub notes: Option<String>,
    /// Fields kept from this reader by their role's field rights (null
    /// here, whether or not the record has a value).
    pub withheld_fields: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model::Contact> for ContactOut {
    fn from(c: model::Contact) -> Self {
        ContactOut {
            id: c.id,
            customer_id: c.customer_id,
            name: Some(c.name),
            title: c.title,
            decision_role: c.decision_role,
            landline: c.landline,
            mobile: c.mobile,
            email: c.email,
            id_number: c.id_number,
            is_primary: c.is_primary,
            notes: c.notes,
            withheld_fields: Vec::new(),
            version: c.version,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderWrite {
    #[serde(default)]
    pub order_no: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub ordered_on: Option<String>,
    /// Amount in fen (≥ 0).
    #[serde(default)]
    pub amount_fen: Option<i64>,
    #[serde(default)]
    pub product_line: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

impl From<OrderWrite> for OrderInput {
    fn from(w: OrderWrite) -> Self {
        OrderInput {
            order_no: w.order_no,
            ordered_on: w.ordered_on,
            amount_fen: w.amount_fen,
            product_line: w.product_line,
            notes: w.notes,
        }
    }
}

impl From<&model::Order> for OrderWrite {
    fn from(o: &model::Order) -> Self {
        OrderWrite {
            order_no: o.order_no.clone(),
            ordered_on: Some(o.ordered_on.to_string()),
            amount_fen: Some(o.amount_fen),
            product_line: o.product_line.clone(),
            notes: o.notes.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderOut {
    pub id: i64,
    pub customer_id: i64,
    pub order_no: Option<String>,
    pub ordered_on: NaiveDate,
    /// Null when withheld from the reader (see `withheld_fields`).
    pub amount_fen: Option<i64>,
    pub product_line: Option<String>,
    pub notes: Option<String>,
    /// Fields kept from this reader by their role's field rights (null
    /// here, whether or not the record has a value).
    pub withheld_fields: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model::Order> for OrderOut {
    fn from(o: model::Order) -> Self {
        OrderOut {
            id: o.id,
            customer_id: o.customer_id,
            order_no: o.order_no,
            ordered_on: o.ordered_on,
            amount_fen: Some(o.amount_fen),
            product_line: o.product_line,
            notes: o.notes,
            withheld_fields: Vec::new(),
            version: o.version,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionWrite {
    /// visit | call | email | meeting | web_visit | campaign_response | service | complaint (or 拜访/电话/…)
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Date)]
    pub occurred_on: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    /// Complaints only: low | medium | high | critical
    #[serde(default)]
    pub severity: Option<String>,
    /// Service tickets and complaints: open | in_progress | resolved | closed
    #[serde(default)]
    pub status: Option<String>,
    /// 1–5
    #[serde(default)]
    pub satisfaction: Option<i64>,
}

impl From<InteractionWrite> for InteractionInput {
    fn from(w: InteractionWrite) -> Self {
        InteractionInput {
            kind: w.kind,
            occurred_on: w.occurred_on,
            summary: w.summary,
            severity: w.severity,
            status: w.status,
            satisfaction: w.satisfaction,
        }
    }
}

impl From<&model::Interaction> for InteractionWrite {
    fn from(i: &model::Interaction) -> Self {
        InteractionWrite {
            kind: Some(i.kind.clone()),
            occurred_on: Some(i.occurred_on.to_string()),
            summary: Some(i.summary.clone()),
            severity: i.severity.clone(),
            status: i.status.clone(),
            satisfaction: i.satisfaction,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InteractionOut {
    pub id: i64,
    pub customer_id: i64,
    pub kind: String,
    pub occurred_on: NaiveDate,
    /// Null when withheld from the reader (see `withheld_fields`).
    pub summary: Option<String>,
    pub severity: Option<String>,
    pub status: Option<String>,
    pub satisfaction: Option<i64>,
    pub user_id: Option<i64>,
    /// Fields kept from this reader by their role's field rights (null
    /// here, whether or not the record has a value).
    pub withheld_fields: Vec<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model::Interaction> for InteractionOut {
    fn from(i: model::Interaction) -> Self {
        InteractionOut {
            id: i.id,
            customer_id: i.customer_id,
            kind: i.kind,
            occurred_on: i.occurred_on,
            summary: Some(i.summary),
            severity: i.severity,
            status: i.status,
            satisfaction: i.satisfaction,
            user_id: i.user_id,
            withheld_fields: Vec::new(),
            version: i.version,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// A custom field definition. `key` and `kind` cannot change after creation.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomFieldWrite {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// basic (基础信息) | cooperation (合作信息) | behavior (行为特征) | needs (需求信息)
    #[serde(default)]
    pub group: Option<String>,
    /// text | number | money | date | enum | multi_enum | bool
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
    #[serde(default)]
    pub options: Vec<String>,
    /// pattern / max_length (text), min / max (number, money in fen), min_date / max_date (date)
    #[serde(default)]
    #[schema(value_type = Object)]
    pub rule: Value,
    #[serde(default)]
    pub position: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomFieldOut {
    pub id: i64,
    pub key: String,
    pub label: String,
    pub group: String,
    pub kind: String,
    pub required: bool,
    pub options: Vec<String>,
    #[schema(value_type = Object)]
    pub rule: Value,
    pub position: i64,
    pub version: i64,
}

impl From<model::CustomField> for CustomFieldOut {
    fn from(f: model::CustomField) -> Self {
        CustomFieldOut {
            id: f.id,
            key: f.def.key,
            label: f.def.label,
            group: f.def.group.key().to_string(),
            kind: f.def.kind.key().to_string(),
            required: f.def.required,
            options: f.def.options,
            rule: serde_json::to_value(&f.def.rule).unwrap_or(Value::Null),
            position: f.def.position,
            version: f.version,
        }
    }
}

impl From<&CustomFieldOut> for CustomFieldWrite {
    fn from(f: &CustomFieldOut) -> Self {
        CustomFieldWrite {
            key: Some(f.key.clone()),
            label: Some(f.label.clone()),
            group: Some(f.group.clone()),
            kind: Some(f.kind.clone()),
            required: Some(f.required),
            options: f.options.clone(),
            rule: f.rule.clone(),
            position: Some(f.position),
        }
    }
}

/// An API token as listed (the token itself is shown once, when made).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiTokenOut {
    pub id: i64,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Set once revoked: the token no longer signs anyone in.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<kehu_store::model::ApiToken> for ApiTokenOut {
    fn from(t: kehu_store::model::ApiToken) -> Self {
        ApiTokenOut {
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenCreate {
    /// What the token is for (e.g. "nightly export script"); up to 80 characters.
    pub name: String,
}

/// A new token: `token` is shown this once; keep it like a password.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiTokenCreated {
    #[serde(flatten)]
    pub info: ApiTokenOut,
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub team: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
}

impl From<model::User> for UserOut {
    fn from(u: model::User) -> Self {
        UserOut {
            id: u.id,
            username: u.username,
            display_name: u.display_name,
            role: u.role,
            team: u.team,
            active: u.active,
            must_change_password: u.must_change_password,
            version: u.version,
            created_at: u.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role key: admin | management | sales_manager | sales_rep | service | marketing | auditor
    pub role: String,
    #[serde(default)]
    pub team: Option<String>,
    /// At least 10 characters. Absent: a one-time password is generated and returned once.
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserCreated {
    pub user: UserOut,
    /// Only when the server generated the password: shown this once.
    pub initial_password: Option<String>,
}

#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// Required when changing one's own password.
    #[serde(default)]
    pub current_password: Option<String>,
    pub new_password: String,
}

#[derive(Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// Never the passwords, should a request ever be logged.
impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionOut {
    pub user: UserOut,
    /// Send as `X-CSRF-Token` on every state-changing request made with the session cookie.
    pub csrf_token: Option<String>,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoleOut {
    pub key: String,
    pub name_zh: String,
    pub name_en: String,
    /// permission → scope (own | team | all)
    #[schema(value_type = Object)]
    pub grants: Value,
    /// Personal field (`contact.mobile`, `cf.KEY`, `cf.*`) → hidden | masked | clear | edit.
    #[schema(value_type = Object)]
    pub field_rights: Value,
    /// A preset role (cannot be deleted).
    pub builtin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IndustryList {
    pub industries: Vec<String>,
}

/// One page of a list. Pass `next_cursor` as `cursor` for the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
    /// Only with `with_total=true`.
    pub total: Option<i64>,
}

impl<T> Page<T> {
    pub fn from_store<S>(p: kehu_store::model::Page<S>, f: impl Fn(S) -> T) -> Page<T> {
        Page {
            items: p.items.into_iter().map(f).collect(),
            next_cursor: p.next_cursor,
            total: p.total,
        }
    }
}

/// RFC 9457 problem details, as every error is returned.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code: validation, not_found, version_conflict, …
    pub code: String,
    /// For validation errors: each refused field with its reason.
    pub errors: Option<Vec<ProblemField>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// A customer's class in one scheme, and since when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerClassOut {
    pub scheme: String,
    pub class: String,
    /// The date this class holds from.
    pub since: NaiveDate,
    /// Why it changed: `evaluation`, …
    pub cause: String,
}

impl From<kehu_store::classes::ClassHistoryEntry> for CustomerClassOut {
    fn from(e: kehu_store::classes::ClassHistoryEntry) -> Self {
        CustomerClassOut {
            scheme: e.scheme_key,
            class: e.to_class,
            since: e.effective_on,
            cause: e.cause,
        }
    }
}

/// One class change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassChangeOut {
    pub id: i64,
    pub customer_id: i64,
    pub scheme_key: String,
    /// None: the customer's first class in this scheme.
    pub from_class: Option<String>,
    pub to_class: String,
    pub effective_on: NaiveDate,
    pub changed_at: DateTime<Utc>,
    pub cause: String,
    pub scheme_version: Option<i64>,
    pub changed_by: Option<i64>,
}

impl From<kehu_store::classes::ClassHistoryEntry> for ClassChangeOut {
    fn from(e: kehu_store::classes::ClassHistoryEntry) -> Self {
        ClassChangeOut {
            id: e.id,
            customer_id: e.customer_id,
            scheme_key: e.scheme_key,
            from_class: e.from_class,
            to_class: e.to_class,
            effective_on: e.effective_on,
            changed_at: e.changed_at,
            cause: e.cause,
            scheme_version: e.scheme_version,
            changed_by: e.changed_by,
        }
    }
}

/// A class set by hand.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideWrite {
    /// One of the scheme's classes.
    #[serde(default)]
    pub class: Option<String>,
    /// Why (required, up to 500 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// YYYY-MM-DD, after today: the first day the override no longer holds.
    #[serde(default)]
    pub expires_on: Option<String>,
}

impl From<OverrideWrite> for kehu_core::classify::overrides::OverrideInput {
    fn from(w: OverrideWrite) -> Self {
        kehu_core::classify::overrides::OverrideInput {
            class: w.class,
            reason: w.reason,
            expires_on: w.expires_on,
        }
    }
}

/// An override, active or past.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverrideOut {
    pub id: i64,
    pub customer_id: i64,
    pub scheme: String,
    pub class: String,
    pub reason: String,
    pub expires_on: Option<NaiveDate>,
    pub set_by: Option<i64>,
    pub set_at: DateTime<Utc>,
    pub lifted_by: Option<i64>,
    pub lifted_at: Option<DateTime<Utc>>,
    /// Whether it decides the class today.
    pub active: bool,
}

impl OverrideOut {
    pub fn new(o: kehu_store::overrides::ClassOverride, today: NaiveDate) -> Self {
        OverrideOut {
            active: o.holds_on(today),
            id: o.id,
            customer_id: o.customer_id,
            scheme: o.scheme_key,
            class: o.class,
            reason: o.reason,
            expires_on: o.expires_on,
            set_by: o.set_by,
            set_at: o.set_at,
            lifted_by: o.lifted_by,
            lifted_at: o.lifted_at,
        }
    }
}

/// A class change a write made.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeOut {
    pub scheme: String,
    pub from: Option<String>,
    pub to: String,
    pub cause: String,
}

impl From<&kehu_store::classes::ClassChange> for ChangeOut {
    fn from(c: &kehu_store::classes::ClassChange) -> Self {
        ChangeOut {
            scheme: c.scheme_key.clone(),
            from: c.from.clone(),
            to: c.to.clone(),
            cause: c.cause.to_string(),
        }
    }
}

/// The result of setting or lifting an override.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OverrideResult {
    /// The override now in force (None after lifting).
    pub active: Option<OverrideOut>,
    /// The classes that changed with it.
    pub changes: Vec<ChangeOut>,
}

/// Why a customer is in its class in one scheme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassExplanationOut {
    pub scheme: String,
    pub scheme_name: String,
    /// The published version that decided.
    pub version: i64,
    /// The class in force: the override's when one is active, else the rules'.
    pub class: String,
    /// The class the rules give.
    pub rule_class: String,
    #[serde(rename = "override")]
    pub override_: Option<OverrideOut>,
    /// Indicators with values, levels and scores, the rule that fired, the
    /// nearest change to another class and a one-sentence summary.
    #[schema(value_type = Object)]
    pub explanation: Value,
}

/// A draft's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionWrite {
    /// The scheme as JSON: key, name, indicators, dimensions (weights sum
    /// to 100), classes, assign (rules with a default, or score bands).
    #[schema(value_type = Object)]
    pub spec: Value,
    /// What changed and why.
    #[serde(default)]
    pub note: Option<String>,
}

/// A workflow step's note (required to reject).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepWrite {
    #[serde(default)]
    pub note: Option<String>,
}

/// One version of a scheme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SchemeVersionOut {
    pub scheme: String,
    pub version: i64,
    /// draft, submitted, approved, rejected, published, retired.
    pub status: String,
    pub note: Option<String>,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub submitted_by: Option<i64>,
    /// The spec (only when one version is asked for).
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<Value>,
}

impl SchemeVersionOut {
    pub fn summary(v: kehu_store::schemes::SchemeVersion) -> Self {
        SchemeVersionOut {
            scheme: v.scheme_key,
            version: v.version,
            status: v.status.as_str().to_string(),
            note: v.note,
            created_by: v.created_by,
            created_at: v.created_at,
            updated_at: v.updated_at,
            submitted_by: v.submitted_by,
            spec: None,
        }
    }

    pub fn with_spec(
        v: kehu_store::schemes::SchemeVersion,
    ) -> Result<Self, kehu_store::StoreError> {
        let spec = serde_json::to_value(v.parsed_spec()?)
            .map_err(|e| kehu_store::StoreError::Config(e.to_string()))?;
        Ok(SchemeVersionOut {
            spec: Some(spec),
            ..Self::summary(v)
        })
    }
}

/// A scheme: its published version and every version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SchemeOut {
    pub key: String,
    /// Name of the published version (else of the newest).
    pub name: String,
    pub name_en: Option<String>,
    pub published_version: Option<i64>,
    /// Classes of the published version.
    pub classes: Vec<String>,
    /// Newest first.
    pub versions: Vec<SchemeVersionOut>,
    /// Steps taken, oldest first (only when one scheme is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<SchemeEventOut>>,
}

impl SchemeOut {
    /// One scheme from its versions (newest first, at least one): named and
    /// described by the published version, else by the newest.
    pub fn new(
        versions: &[kehu_store::schemes::SchemeVersion],
    ) -> Result<Self, kehu_store::StoreError> {
        use kehu_core::classify::workflow::VersionStatus;
        let published = versions
            .iter()
            .find(|v| v.status == VersionStatus::Published);
        let shown = published
            .or(versions.first())
            .ok_or(kehu_store::StoreError::NotFound)?;
        let spec = shown.parsed_spec()?;
        Ok(SchemeOut {
            key: shown.scheme_key.clone(),
            name: spec.name.clone(),
            name_en: Some(spec.name_en.clone()).filter(|n| !n.is_empty()),
            published_version: published.map(|v| v.version),
            classes: spec.classes.iter().map(|c| c.key.clone()).collect(),
            versions: versions
                .iter()
                .cloned()
                .map(SchemeVersionOut::summary)
                .collect(),
            events: None,
        })
    }
}

/// A workflow step taken.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SchemeEventOut {
    pub version: i64,
    /// create, edit, submit, withdraw, approve, reject, publish, rollback.
    pub action: String,
    pub actor: Option<i64>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

impl From<kehu_store::schemes::SchemeEvent> for SchemeEventOut {
    fn from(e: kehu_store::schemes::SchemeEvent) -> Self {
        SchemeEventOut {
            version: e.version,
            action: e.action,
            actor: e.actor,
            at: e.at,
            note: e.note,
        }
    }
}

/// The version after a step, and how many class changes it stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepOut {
    pub version: SchemeVersionOut,
    pub class_changes: u64,
}

/// A tag of the catalogue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagOut {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    /// The full path, e.g. `行为标签/消费频次/高频`.
    pub path: String,
    /// The shortest text that names this tag alone in a segment expression.
    pub reference: String,
    /// 1 dimension, 2 feature, 3–4 detail.
    pub depth: usize,
    /// `manual` (assigned by people; counts against the per-customer limit), `rule` or `hybrid`.
    pub mode: String,
    pub description: Option<String>,
    pub retired: bool,
    /// Set when merged into another tag (references follow it).
    pub merged_into: Option<i64>,
    /// A rule or hybrid tag's condition, with tags by their current names.
    pub rule: Option<String>,
    /// Customers carrying this tag itself (not its descendants).
    pub customers: u64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TagOut {
    pub fn new(
        t: kehu_store::tags::TagRecord,
        c: &kehu_core::tags::Catalogue,
        customers: u64,
    ) -> TagOut {
        TagOut {
            rule: t.rule.as_deref().map(|r| kehu_core::segment::display(r, c)),
            path: c.path_text(t.id),
            reference: c.shortest_reference(t.id),
            depth: c.depth(t.id),
            mode: t.mode.as_str().into(),
            retired: t.retired_at.is_some(),
            id: t.id,
            parent_id: t.parent_id,
            name: t.name,
            description: t.description,
            merged_into: t.merged_into,
            customers,
            version: t.version,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A new tag.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagWrite {
    /// The parent tag's id; absent for a new dimension.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Or the parent by path or reference (`行为标签/消费频次`).
    #[serde(default)]
    pub parent: Option<String>,
    pub name: String,
    /// `manual` (default), `rule` or `hybrid`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// For `rule` and `hybrid` tags: the condition, a segment expression
    /// (`年采购额 >= 100万 AND NOT 风险标签`). Applied to everyone at once.
    #[serde(default)]
    pub rule: Option<String>,
}

/// A merge: where the tag's assignments go.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagMerge {
    pub into: i64,
}

/// A tag on a customer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerTagOut {
    pub tag_id: i64,
    pub name: String,
    pub path: String,
    pub mode: String,
    /// `manual`, `rule` or `verified`.
    pub source: String,
    pub assigned_by: Option<i64>,
    pub assigned_at: DateTime<Utc>,
}

/// The answer to assigning or removing a tag.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerTagsResult {
    /// Whether anything changed (false: it was already so).
    pub changed: bool,
    pub tags: Vec<CustomerTagOut>,
}

/// One entry of the tag history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagEventOut {
    pub id: i64,
    pub tag_id: i64,
    pub customer_id: Option<i64>,
    /// created, renamed, moved, mode_changed, retired, restored, merged_away, merged_in, assigned, removed,
    /// proposal_rejected, rule_applied (a rule's run over many customers: `detail.added`, `detail.removed`;
    /// each customer's change is in that customer's history as assigned/removed with this entry's id).
    pub action: String,
    pub detail: Value,
    pub by_user: Option<i64>,
    pub at: DateTime<Utc>,
}

impl From<kehu_store::tags::TagEvent> for TagEventOut {
    fn from(e: kehu_store::tags::TagEvent) -> Self {
        TagEventOut {
            id: e.id,
            tag_id: e.tag_id,
            customer_id: e.customer_id,
            action: e.action,
            detail: e.detail,
            by_user: e.by_user,
            at: e.at,
        }
    }
}

/// The tag settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagSettingsIo {
    /// Hand-assigned (manual) tags per customer, at most (default 5).
    pub max_manual_tags: u32,
    /// Groups of names that mean the same: a tag cannot get a name whose synonym a sibling has.
    pub synonyms: Vec<Vec<String>>,
}

/// A segment's customers: the exact count in the reader's scope and one page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SegmentResultOut {
    /// The expression with tags by their current names.
    pub expression: String,
    /// The stored form (tags as `#ID`).
    pub stable_expression: String,
    pub count: u64,
    pub customers: Vec<CustomerOut>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<i64>,
}

/// A saved segment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SegmentOut {
    pub id: i64,
    pub name: String,
    /// With tags by their current names.
    pub expression: String,
    pub stable_expression: String,
    pub description: Option<String>,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
    /// Visible to the owner's team.
    pub shared: bool,
    /// Customers it holds now, in the reader's scope.
    pub count: Option<u64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A segment to save, or the fields to change.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentWriteIo {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub expression: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub shared: Option<bool>,
    /// Required when changing (or If-Match).
    #[serde(default)]
    pub version: Option<i64>,
}

/// What applying a tag rule changed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RuleRunOut {
    pub tag_id: i64,
    /// Customers that got the tag (rule tags).
    pub added: u64,
    /// Customers that lost it (rule tags).
    pub removed: u64,
    /// New proposals waiting for a person (hybrid tags).
    pub proposed: u64,
    /// Pending proposals withdrawn because the rule no longer holds.
    pub expired: u64,
}

/// A hybrid tag's proposal in the verification queue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalOut {
    pub id: i64,
    pub tag_id: i64,
    pub tag_path: String,
    pub customer_id: i64,
    pub customer_code: String,
    pub customer_name: String,
    /// What the rule saw: its text and the values it read.
    pub evidence: String,
    /// pending, confirmed, rejected or expired.
    pub status: String,
    pub proposed_at: DateTime<Utc>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// One tag in the usage review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagReviewRow {
    pub tag_id: i64,
    pub path: String,
    pub mode: String,
    pub retired: bool,
    /// Customers carrying the tag or a tag below it.
    pub customers: u64,
    /// Their share of all customers (0–1).
    pub share: f64,
    /// Assignments added minus removed within the period.
    pub change_in_period: i64,
    /// Customers carrying it on each of `trend_dates`.
    pub trend: Vec<i64>,
    /// Under the review threshold (5 % of customers): proposed for removal.
    pub removal_candidate: bool,
    pub repurchase_with: Option<f64>,
    pub repurchase_without: Option<f64>,
    pub repurchase_correlation: Option<f64>,
    pub satisfaction_with: Option<f64>,
    pub satisfaction_without: Option<f64>,
    pub satisfaction_correlation: Option<f64>,
}

/// The tag usage review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TagReviewOut {
    /// The period looked back on, in days (trend and satisfaction).
    pub days: u32,
    pub since: NaiveDate,
    /// The day the counts are as of (today, or a past period's last day).
    pub until: NaiveDate,
    /// The customers the review covers (the reader's scope, today).
    pub customers: u64,
    pub threshold: f64,
    /// The last day of each of the six months before `until`'s, then `until`.
    pub trend_dates: Vec<NaiveDate>,
    /// How the behaviour columns are defined.
    pub definitions: Vec<String>,
    pub tags: Vec<TagReviewRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_in_debug_output() {
        let login = LoginRequest {
            username: "wang".into(),
            password: "secret-passphrase-1".into(),
        };
        let change = PasswordChange {
            current_password: Some("old-passphrase-22".into()),
            new_password: "new-passphrase-333".into(),
        };
        let shown = format!("{login:?} {change:?}");
        assert!(shown.contains("wang"), "{shown}");
        for secret in [
            "secret-passphrase-1",
            "old-passphrase-22",
            "new-passphrase-333",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
