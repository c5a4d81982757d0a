//! Personal fields on their way out and in: masked (or hidden) for the
//! reader's role before anything is rendered or serialized, revealed in
//! clear only on an explicit, audited request, and changed only by roles
//! with the edit right. The rules themselves are in `kehu_core::privacy`.

use crate::api::dto::{ContactOut, CustomerOut, InteractionOut, OrderOut};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use kehu_core::contact::ContactData;
use kehu_core::custom_field::CustomFieldDef;
use kehu_core::customer::{CustomerData, CustomerInput};
use kehu_core::interaction::InteractionData;
use kehu_core::order::OrderData;
use kehu_core::privacy::{
    BusinessField, BusinessView, FieldAccess, FieldRights, MaskKind, CONTACT_FIELDS,
    CONTACT_RECORD_FIELDS, CUSTOMER_FIELDS, INTERACTION_RECORD_FIELDS, ORDER_RECORD_FIELDS,
};
use kehu_core::{Reason, ValidationErrors};
use kehu_store::model::{Contact, Customer, Interaction, Order};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A record type as the API sends it, with the personal fields it holds.
pub trait Personal: serde::Serialize {
    /// Its audit and reveal name (`contact`).
    const KIND: &'static str;
    /// (JSON field, rights key, mask) of each personal field.
    const FIELDS: &'static [(&'static str, &'static str, MaskKind)];
    /// The fields under rights (rights keys) a list's free-text `q`
    /// searches.
    const SEARCHED: &'static [&'static str];
    /// Its free-text fields (JSON names): they may name a person, so the
    /// audit log keeps their length only.
    const FREE_TEXT: &'static [&'static str];
    /// Its other fields under rights: shown in clear or withheld.
    const RECORD_FIELDS: &'static [BusinessField];
    fn id(&self) -> i64;
    /// Masks or hides its personal fields for `rights`; in clear where
    /// `reveal` is asked and allowed.
    fn protect_personal(&mut self, rights: &FieldRights, reveal: bool);
    /// Empties its field written as `json` (of [`Self::RECORD_FIELDS`])
    /// and names it among the fields withheld.
    fn withhold(&mut self, json: &'static str);
    /// Personal fields masked (or hidden, or in clear where `reveal` is
    /// asked and allowed), other fields not seen in clear withheld.
    fn protect(&mut self, rights: &FieldRights, reveal: bool) {
        self.protect_personal(rights, reveal);
        for f in Self::RECORD_FIELDS {
            if rights.business_view(f) != BusinessView::Clear {
                f.json.iter().for_each(|name| self.withhold(name));
            }
        }
    }
}

/// The fields under rights of a record, written (`…Data`) or stored, by
/// JSON name: what a write is checked on.
pub trait RecordValues {
    fn value(&self, json: &str) -> Value;
}

/// `RecordValues` for types that hold the fields under the same names
/// (`name => expression over v`).
macro_rules! record_values {
    ($($t:ty { $($json:literal => |$v:ident| $e:expr),* })*) => {$(
        impl RecordValues for $t {
            fn value(&self, json: &str) -> Value {
                match json {
                    $($json => { let $v = self; json!($e) })*
                    _ => Value::Null,
                }
            }
        }
    )*};
}

record_values! {
    ContactData { "title" => |c| c.title, "decision_role" => |c| c.decision_role, "notes" => |c| c.notes }
    Contact { "title" => |c| c.title, "decision_role" => |c| c.decision_role, "notes" => |c| c.notes }
    OrderData { "amount_fen" => |o| o.amount.get(), "product_line" => |o| o.product_line, "notes" => |o| o.notes }
    Order { "amount_fen" => |o| o.amount_fen, "product_line" => |o| o.product_line, "notes" => |o| o.notes }
    InteractionData { "summary" => |i| i.summary, "satisfaction" => |i| i.satisfaction }
    Interaction { "summary" => |i| i.summary, "satisfaction" => |i| i.satisfaction }
}

/// A record written by `user` (new when `before` is None): each of
/// `fields` it sets or changes needs the edit right; the error names every
/// such field (`field_prefix` + JSON name).
pub fn check_record_write(
    rights: &FieldRights,
    fields: &[BusinessField],
    before: Option<&dyn RecordValues>,
    after: &dyn RecordValues,
    field_prefix: &str,
) -> Result<(), ValidationErrors> {
    let empty = |v: &Value| v.is_null() || v.as_str().is_some_and(str::is_empty);
    let mut errors = ValidationErrors::default();
    for f in fields {
        if rights.access(f.key) == FieldAccess::Edit {
            continue;
        }
        for name in f.json {
            let now = after.value(name);
            let changed = match before {
                Some(b) => b.value(name) != now,
                None => !empty(&now),
            };
            if changed {
                errors.push(format!("{field_prefix}{name}"), Reason::NotEditable);
            }
        }
    }
    errors.into_result()
}

fn show(rights: &FieldRights, key: &str, kind: MaskKind, v: &mut Option<String>, reveal: bool) {
    *v = v
        .take()
        .and_then(|value| rights.show(key, kind, &value, reveal));
}

impl Personal for ContactOut {
    const KIND: &'static str = "contact";
    const FREE_TEXT: &'static [&'static str] = &["notes"];
    const FIELDS: &'static [(&'static str, &'static str, MaskKind)] = &[
        ("name", "contact.name", MaskKind::Name),
        ("mobile", "contact.mobile", MaskKind::Mobile),
        ("landline", "contact.landline", MaskKind::Landline),
        ("email", "contact.email", MaskKind::Email),
        ("id_number", "contact.id_number", MaskKind::IdNumber),
    ];
    const SEARCHED: &'static [&'static str] = &["contact.name", "contact.title"];
    const RECORD_FIELDS: &'static [BusinessField] = CONTACT_RECORD_FIELDS;
    fn id(&self) -> i64 {
        self.id
    }
    fn withhold(&mut self, json: &'static str) {
        match json {
            "title" => self.title = None,
            "decision_role" => self.decision_role = None,
            "notes" => self.notes = None,
            other => unreachable!("{other} is not a contact field"),
        }
        self.withheld_fields.push(json.to_string());
    }
    fn protect_personal(&mut self, rights: &FieldRights, reveal: bool) {
        let values = [
            &mut self.name,
            &mut self.mobile,
            &mut self.landline,
            &mut self.email,
            &mut self.id_number,
        ];
        for ((_, key, kind), v) in Self::FIELDS.iter().zip(values) {
            show(rights, key, *kind, v, reveal);
        }
    }
}

/// Records without personal fields: only their other fields are withheld.
macro_rules! impersonal {
    ($($t:ty = $kind:literal, free text $free:expr, searched $searched:expr, fields $fields:expr, withhold |$r:ident, $name:ident| $withhold:expr),*) => {$(
        impl Personal for $t {
            const KIND: &'static str = $kind;
            const FIELDS: &'static [(&'static str, &'static str, MaskKind)] = &[];
            const SEARCHED: &'static [&'static str] = $searched;
            const FREE_TEXT: &'static [&'static str] = $free;
            const RECORD_FIELDS: &'static [BusinessField] = $fields;
            fn id(&self) -> i64 { self.id }
            fn protect_personal(&mut self, _: &FieldRights, _: bool) {}
            fn withhold(&mut self, $name: &'static str) {
                let $r = &mut *self;
                $withhold;
                self.withheld_fields.push($name.to_string());
            }
        }
    )*};
}
impersonal!(
    OrderOut = "order", free text &["notes"], searched &["order.product_line"], fields ORDER_RECORD_FIELDS, withhold |o, name| match name {
        "amount_fen" => o.amount_fen = None,
        "product_line" => o.product_line = None,
        "notes" => o.notes = None,
        other => unreachable!("{other} is not an order field"),
    },
    InteractionOut = "interaction", free text &["summary"], searched &["interaction.summary"], fields INTERACTION_RECORD_FIELDS, withhold |i, name| match name {
        "summary" => i.summary = None,
        "satisfaction" => i.satisfaction = None,
        other => unreachable!("{other} is not an interaction field"),
    }
);

/// Whether `user` may reveal at least one of `T`'s personal fields.
pub fn may_reveal_any<T: Personal>(user: &CurrentUser) -> bool {
    T::FIELDS
        .iter()
        .any(|(_, key, _)| user.actor.fields.access(key).may_reveal())
}

/// The JSON names of `T`'s personal fields that `user` sees at all.
pub fn visible_fields<T: Personal>(user: &CurrentUser) -> Vec<&'static str> {
    T::FIELDS
        .iter()
        .filter(|(_, key, _)| user.actor.fields.access(key) != FieldAccess::Hidden)
        .map(|(field, _, _)| *field)
        .collect()
}

/// `reveal=true` taken from a query; refused when the reader may reveal
/// none of `T`'s fields.
pub fn reveal_param<T: Personal>(
    user: &CurrentUser,
    q: &mut crate::api::QueryPairs,
) -> Result<bool, ApiError> {
    if !q.take_flag("reveal") {
        return Ok(false);
    }
    refuse_cross_site_reveal(user)?;
    if !may_reveal_any::<T>(user) {
        return Err(ApiError::Refused {
            zh: "您的角色不能查看这些个人信息的明文".into(),
            en: "your role may not see these personal fields in clear".into(),
        });
    }
    Ok(true)
}

/// A reveal set off by another site's page (a link or image there, in the
/// signed-in user's browser) is refused: it would show values and write an
/// audit entry in the user's name without their asking.
pub fn refuse_cross_site_reveal(user: &CurrentUser) -> Result<(), ApiError> {
    if user.cross_site {
        return Err(ApiError::Refused {
            zh: "显示明文只能从 kehu 自己的页面发起".into(),
            en: "a reveal in clear must come from kehu's own pages".into(),
        });
    }
    Ok(())
}

/// Masks `records` for `user`; when revealed, records who saw which fields
/// of which records (never the values).
pub fn protect_all<T: Personal>(
    state: &AppState,
    user: &CurrentUser,
    records: &mut [T],
    reveal: bool,
) {
    for r in records.iter_mut() {
        r.protect(&user.actor.fields, reveal);
    }
    if reveal && !records.is_empty() {
        let fields: Vec<&str> = T::FIELDS
            .iter()
            .filter(|(_, key, _)| user.actor.fields.access(key).may_reveal())
            .map(|(_, key, _)| *key)
            .collect();
        let ids: Vec<i64> = records.iter().map(Personal::id).collect();
        let target = match ids.as_slice() {
            [one] => format!("{}:{one}", T::KIND),
            _ => format!("{}s", T::KIND),
        };
        state.audit(
            Some(user),
            &format!("{}.reveal", T::KIND),
            target,
            json!({"ids": ids, "fields": fields}),
        );
    }
}

/// Filtering, sorting or searching a list on a personal field, or on
/// another field under rights (an order's amount), would let a reader who
/// may not see it in clear test guesses: refused unless they may.
pub fn check_list_query<T: Personal>(
    user: &CurrentUser,
    pairs: &[(String, String)],
) -> Result<(), ApiError> {
    let searches = pairs.iter().any(|(k, v)| k == "q" && !v.trim().is_empty());
    if searches
        && T::SEARCHED
            .iter()
            .any(|key| !user.actor.fields.access(key).may_reveal())
    {
        return Err(ApiError::Refused {
            zh: "不能按关键词搜索：您的角色不能查看被搜索字段的明文".into(),
            en: "cannot search by text: your role may not see the searched fields in clear".into(),
        });
    }
    let record_fields = T::RECORD_FIELDS
        .iter()
        .flat_map(|f| f.json.iter().map(move |name| (*name, f.key)));
    let fields = T::FIELDS.iter().map(|(field, key, _)| (*field, *key));
    for (field, key) in fields.chain(record_fields) {
        if user.actor.fields.access(key).may_reveal() {
            continue;
        }
        let named = pairs.iter().any(|(k, v)| {
            k.split('.').next() == Some(field)
                || k == "sort"
                    && v.split(',')
                        .any(|s| s.trim().trim_start_matches(['-', '+']) == field)
        });
        if named {
            return Err(ApiError::Refused {
                zh: format!("不能按 {field} 筛选或排序：您的角色不能查看它的明文"),
                en: format!("cannot filter or sort on {field}: your role may not see it in clear"),
            });
        }
    }
    Ok(())
}

/// The personal values of a contact as written, in `CONTACT_FIELDS` order.
pub fn data_values(d: &ContactData) -> [Option<&str>; 5] {
    [
        Some(d.name.as_str()).filter(|n| !n.is_empty()),
        d.mobile.as_deref(),
        d.landline.as_deref(),
        d.email.as_deref(),
        d.id_number.as_deref(),
    ]
}

/// The personal values of a stored contact, in `CONTACT_FIELDS` order.
pub fn record_values(c: &Contact) -> [Option<&str>; 5] {
    [
        Some(c.name.as_str()).filter(|n| !n.is_empty()),
        c.mobile.as_deref(),
        c.landline.as_deref(),
        c.email.as_deref(),
        c.id_number.as_deref(),
    ]
}

/// A new contact (on a form whose fields start with `field_prefix`) or a
/// change to `before`: every field under rights it sets or changes —
/// personal or not — needs the edit right.
pub fn check_contact_write(
    rights: &FieldRights,
    before: Option<&Contact>,
    after: &ContactData,
    field_prefix: &str,
) -> Result<(), ValidationErrors> {
    let personal = check_write(
        rights,
        before.map(record_values),
        data_values(after),
        field_prefix,
    );
    let mut errors = personal.err().unwrap_or_default();
    let before = before.map(|b| b as &dyn RecordValues);
    if let Err(e) = check_record_write(rights, CONTACT_RECORD_FIELDS, before, after, field_prefix) {
        errors.0.extend(e.0);
    }
    errors.into_result()
}

/// A write that changes a personal field needs the edit right on it; the
/// error names every such field (`field_prefix` + JSON name).
pub fn check_write(
    rights: &FieldRights,
    before: Option<[Option<&str>; 5]>,
    after: [Option<&str>; 5],
    field_prefix: &str,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    for (i, f) in CONTACT_FIELDS.iter().enumerate() {
        let old = before.and_then(|b| b[i]);
        if old != after[i] && rights.access(f.key) != FieldAccess::Edit {
            let json_name = f.key.trim_start_matches("contact.");
            errors.push(format!("{field_prefix}{json_name}"), Reason::NotEditable);
        }
    }
    errors.into_result()
}

/// The audit detail of a changed record: the fields that differ, personal
/// ones masked (a change hidden by the mask still shows as changed).
pub fn masked_changes<T: Personal + Clone>(before: &T, after: &T) -> Value {
    let mut changed = crate::audit::changes(before, after);
    if let Value::Object(map) = &mut changed {
        let fields = T::FIELDS
            .iter()
            .map(|(field, _, kind)| (*field, Some(*kind)))
            .chain(T::FREE_TEXT.iter().map(|f| (*f, None)));
        for (field, kind) in fields {
            if let Some(Value::Array(pair)) = map.get_mut(field) {
                for v in pair.iter_mut() {
                    if let Value::String(s) = v {
                        *v = Value::String(match kind {
                            Some(kind) => kehu_core::privacy::mask(kind, s),
                            None => kehu_core::privacy::text_for_log(s),
                        });
                    }
                }
            }
        }
    }
    changed
}

/// A record as the audit log keeps it: personal fields masked, free text
/// by its length.
pub fn for_log<T: Personal + Clone>(record: &T) -> Value {
    let mut r = record.clone();
    r.protect(&FieldRights::all_masked(), false);
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        map.remove("withheld_fields");
        for f in T::FREE_TEXT {
            if let Some(Value::String(s)) = map.get(*f) {
                let logged = kehu_core::privacy::text_for_log(s);
                map.insert(f.to_string(), Value::String(logged));
            }
        }
    }
    v
}

/// The fields a role's rights name: the contact fields, the business
/// fields of customers and their records, every custom field, and the default of the personal
/// custom fields without an entry — (rights key, Chinese label, English
/// label).
pub async fn rights_columns(state: &AppState) -> Result<Vec<(String, String, String)>, ApiError> {
    let contact = CONTACT_FIELDS
        .iter()
        .map(|f| (f.key, f.label_zh, f.label_en));
    let business = kehu_core::privacy::business_fields().map(|f| (f.key, f.label_zh, f.label_en));
    let mut columns: Vec<(String, String, String)> = contact
        .chain(business)
        .map(|(key, zh, en)| (key.to_string(), zh.to_string(), en.to_string()))
        .collect();
    // Every custom field: a personal one masks, another is shown or kept
    // from the reader as a business field is.
    for d in state.store.custom_field_defs().await? {
        columns.push((
            kehu_core::privacy::custom_key(&d.key),
            d.label.clone(),
            d.label.clone(),
        ));
    }
    columns.push((
        kehu_core::privacy::CUSTOM_DEFAULT.to_string(),
        "其他自定义字段".to_string(),
        "Other custom fields".to_string(),
    ));
    Ok(columns)
}

/// A custom value as text (what a mask reads).
fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Masks (or removes, when hidden) the personal custom fields of a
/// customer's `custom_fields` for `rights`, in clear where `reveal` is
/// asked and allowed, and removes the other custom fields the role is kept
/// from (`FieldRights::custom_access`). Returns the keys shown in clear.
pub fn protect_custom(
    defs: &[CustomFieldDef],
    rights: &FieldRights,
    values: &mut serde_json::Map<String, Value>,
    reveal: bool,
) -> Vec<String> {
    let mut revealed = Vec::new();
    for d in defs {
        let Some(v) = values.get(&d.key) else {
            continue;
        };
        let Some(kind) = d.personal() else {
            if !rights.custom_access(&d.key, false).may_reveal() {
                values.remove(&d.key);
            }
            continue;
        };
        let key = kehu_core::privacy::custom_key(&d.key);
        match rights.show(&key, kind, &value_text(v), reveal) {
            None => {
                values.remove(&d.key);
            }
            Some(_) if reveal && rights.access(&key).may_reveal() => revealed.push(key),
            Some(shown) => {
                values.insert(d.key.clone(), Value::String(shown));
            }
        }
    }
    revealed
}

/// A custom field's right for `rights`, personal or not.
fn custom_right(rights: &FieldRights, d: &CustomFieldDef) -> FieldAccess {
    rights.custom_access(&d.key, d.personal().is_some())
}

/// The custom fields `rights` keep from their reader entirely, as
/// `custom_fields.KEY` (a personal one hidden, another not seen in clear).
pub fn withheld_custom(defs: &[CustomFieldDef], rights: &FieldRights) -> Vec<String> {
    defs.iter()
        .filter(|d| match (d.personal(), custom_right(rights, d)) {
            (Some(_), access) => access == FieldAccess::Hidden,
            (None, access) => !access.may_reveal(),
        })
        .map(|d| format!("custom_fields.{}", d.key))
        .collect()
}

/// A form that cannot show a custom field the user may not edit leaves it
/// blank or out: the stored value is kept.
pub fn keep_uneditable_custom(
    user: &CurrentUser,
    defs: &[CustomFieldDef],
    stored: &serde_json::Map<String, Value>,
    input: &mut serde_json::Map<String, Value>,
) {
    for d in defs {
        if custom_right(&user.actor.fields, d) != FieldAccess::Edit {
            match stored.get(&d.key) {
                Some(v) => input.insert(d.key.clone(), v.clone()),
                None => input.remove(&d.key),
            };
        }
    }
}

/// What a role's rights table shows for column `key`: a custom field that
/// is not personal and has no entry of its own is unrestricted (`edit`).
pub fn column_access(rights: &FieldRights, defs: &[CustomFieldDef], key: &str) -> FieldAccess {
    match key
        .strip_prefix("cf.")
        .and_then(|k| defs.iter().find(|d| d.key == k))
    {
        Some(d) => custom_right(rights, d),
        None => rights.access(key),
    }
}

/// The personal custom fields inside an audit detail's `custom_fields`
/// change, masked.
pub fn mask_custom_in_changes(defs: &[CustomFieldDef], changed: &mut Value) {
    let Some(Value::Array(pair)) = changed.get_mut("custom_fields") else {
        return;
    };
    for side in pair.iter_mut() {
        if let Value::Object(map) = side {
            protect_custom(defs, &FieldRights::all_masked(), map, false);
        }
    }
}

/// A customer's personal custom fields for its edit form: in clear where
/// the user may edit them (recorded as a reveal), masked or left out
/// otherwise (the update keeps those as stored).
pub fn reveal_for_editing(
    state: &AppState,
    user: &CurrentUser,
    defs: &[CustomFieldDef],
    customer_id: i64,
    values: &mut serde_json::Map<String, Value>,
) {
    let editing = FieldRights(
        user.actor
            .fields
            .0
            .iter()
            .map(|(k, a)| {
                (
                    k.clone(),
                    if *a == FieldAccess::Clear {
                        FieldAccess::Masked
                    } else {
                        *a
                    },
                )
            })
            .collect(),
    );
    let revealed = protect_custom(defs, &editing, values, true);
    if !revealed.is_empty() {
        state.audit(
            Some(user),
            "customer.reveal",
            format!("customer:{customer_id}"),
            json!({"fields": revealed, "purpose": "edit"}),
        );
    }
}

/// What a reader's rights do to customer records, worked out once for a
/// page or a file of them: the business fields masked or withheld, and
/// every field (business or custom) withheld.
pub struct CustomerShield<'a> {
    rights: &'a FieldRights,
    defs: &'a [CustomFieldDef],
    /// (JSON name, mask — None withholds) of each business field not
    /// shown in clear.
    fields: Vec<(&'static str, Option<MaskKind>)>,
    /// JSON names (`custom_fields.KEY` for custom fields) kept from the reader.
    withheld: Vec<String>,
}

impl<'a> CustomerShield<'a> {
    pub fn new(rights: &'a FieldRights, defs: &'a [CustomFieldDef]) -> CustomerShield<'a> {
        let mut fields = Vec::new();
        let mut withheld = Vec::new();
        for f in CUSTOMER_FIELDS {
            let mask = match rights.business_view(f) {
                BusinessView::Clear => continue,
                BusinessView::Masked(p) => Some(MaskKind::Keep(p)),
                BusinessView::Withheld => None,
            };
            for name in f.json {
                fields.push((*name, mask));
                if mask.is_none() {
                    withheld.push(name.to_string());
                }
            }
        }
        withheld.extend(
            kehu_core::privacy::DERIVED_FROM_AMOUNTS
                .iter()
                .filter(|name| !rights.sees_customer_field(name))
                .map(|name| name.to_string()),
        );
        withheld.extend(withheld_custom(defs, rights));
        CustomerShield {
            rights,
            defs,
            fields,
            withheld,
        }
    }

    /// The fields kept from the reader (JSON names).
    pub fn withheld(&self) -> &[String] {
        &self.withheld
    }

    /// Masks or withholds the business fields of the reader's copy of a
    /// record (never written back), and stops naming withheld fields
    /// among its gaps.
    pub fn apply(&self, c: &mut Customer) {
        for &(name, mask) in &self.fields {
            let text = |v: &mut Option<String>| match mask {
                Some(kind) => *v = v.as_deref().map(|s| kehu_core::privacy::mask(kind, s)),
                None => *v = None,
            };
            let list = |l: &mut Vec<String>| match mask {
                Some(kind) => l
                    .iter_mut()
                    .for_each(|s| *s = kehu_core::privacy::mask(kind, s)),
                None => l.clear(),
            };
            match name {
                "aliases" => list(&mut c.aliases),
                "product_types" => list(&mut c.product_types),
                "uscc" => text(&mut c.uscc),
                "industry" => text(&mut c.industry),
                "province" => text(&mut c.province),
                "city" => text(&mut c.city),
                "sales_region" => text(&mut c.sales_region),
                "address" => text(&mut c.address),
                "source_channel" => text(&mut c.source_channel),
                "notes" => text(&mut c.notes),
                "employees" => c.employees = None,
                "annual_revenue_fen" => c.annual_revenue_fen = None,
                "declared_annual_purchase_fen" => c.declared_annual_purchase_fen = None,
                "founded_on" => c.founded_on = None,
                "cooperation_start_on" => c.cooperation_start_on = None,
                other => unreachable!("{other} is not a customer field"),
            }
        }
        if !self.withheld.is_empty() {
            c.missing_fields.retain(|f| !self.withheld.contains(f));
        }
        // The 12 months' purchases stay in the record (a count of fen is
        // no option); readers check `withheld` before showing them.
        if self.withholds("clv_fen") {
            c.predicted.clv_fen = None;
        }
    }

    /// Whether the field written as `json` is kept from the reader.
    pub fn withholds(&self, json: &str) -> bool {
        self.withheld.iter().any(|w| w == json)
    }

    /// A customer as the API sends it to the reader: business fields
    /// masked or withheld (named in `withheld_fields`), custom fields
    /// protected — personal ones in clear where `reveal` is asked and
    /// allowed. Returns the record and the custom fields revealed.
    pub fn out(&self, mut c: Customer, reveal: bool) -> (CustomerOut, Vec<String>) {
        self.apply(&mut c);
        let mut out = CustomerOut::from(c);
        if self.withholds("purchase_12m_fen") {
            out.purchase_12m_fen = None;
        }
        out.withheld_fields = self.withheld.clone();
        let revealed = protect_custom(self.defs, self.rights, &mut out.custom_fields, reveal);
        (out, revealed)
    }
}

/// Masks or withholds the business fields of one customer (see
/// [`CustomerShield::apply`]); returns the JSON names withheld.
pub fn protect_customer(rights: &FieldRights, c: &mut Customer) -> Vec<String> {
    let shield = CustomerShield::new(rights, &[]);
    shield.apply(c);
    shield.withheld
}

/// A customer written with `rights` (new when `before` is None): every
/// business or custom field it sets or changes needs the edit right; the
/// error names each such field by its JSON name (`custom_fields.KEY`).
pub fn check_customer_write(
    rights: &FieldRights,
    defs: &[CustomFieldDef],
    before: Option<&CustomerData>,
    after: &CustomerData,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    for (f, name) in after.changed_business_fields(before) {
        if rights.access(f.key) != FieldAccess::Edit {
            errors.push(name, Reason::NotEditable);
        }
    }
    for d in defs {
        let old = before.and_then(|b| b.custom_fields.get(&d.key));
        if old != after.custom_fields.get(&d.key) && custom_right(rights, d) != FieldAccess::Edit {
            errors.push(format!("custom_fields.{}", d.key), Reason::NotEditable);
        }
    }
    errors.into_result()
}

/// The form names of the fields `user` may not edit — business fields by
/// JSON name, custom fields as `custom_fields.KEY` — with whether they see
/// them at all: a form shows those read-only or leaves them out, and
/// [`keep_uneditable_fields`] / [`keep_uneditable_custom`] keep what is
/// stored.
pub fn locked_customer_fields(
    user: &CurrentUser,
    defs: &[CustomFieldDef],
) -> BTreeMap<String, &'static str> {
    let rights = &user.actor.fields;
    let mut locked = BTreeMap::new();
    for f in CUSTOMER_FIELDS {
        if rights.access(f.key) == FieldAccess::Edit {
            continue;
        }
        let how = match rights.business_view(f) {
            BusinessView::Withheld => "hidden",
            _ => "readonly",
        };
        for name in f.json {
            locked.insert(name.to_string(), how);
        }
    }
    let withheld = withheld_custom(defs, rights);
    for d in defs
        .iter()
        .filter(|d| custom_right(rights, d) != FieldAccess::Edit)
    {
        let name = format!("custom_fields.{}", d.key);
        let how = if withheld.contains(&name) {
            "hidden"
        } else {
            "readonly"
        };
        locked.insert(name, how);
    }
    locked
}

/// A form's input with the business fields `user` may not edit put back as
/// stored (`stored` None: a new customer, left empty).
pub fn keep_uneditable_fields(
    user: &CurrentUser,
    stored: Option<&CustomerInput>,
    input: &mut CustomerInput,
) -> Result<(), ApiError> {
    // Custom fields are kept by `keep_uneditable_custom`.
    let locked: Vec<String> = locked_customer_fields(user, &[]).into_keys().collect();
    if locked.is_empty() {
        return Ok(());
    }
    let internal = |e: serde_json::Error| ApiError::Internal(e.to_string());
    let stored = serde_json::to_value(stored.cloned().unwrap_or_default()).map_err(internal)?;
    let mut merged = serde_json::to_value(&*input).map_err(internal)?;
    for name in &locked {
        merged[name] = stored[name].clone();
    }
    *input = serde_json::from_value(merged).map_err(internal)?;
    Ok(())
}

/// Filtering, sorting or searching customers on a business field the
/// reader does not see in clear would test guesses at it: refused, naming
/// the field.
pub fn check_customer_query(
    user: &CurrentUser,
    defs: &[CustomFieldDef],
    pairs: &[(String, String)],
) -> Result<(), ApiError> {
    match unseen_customer_field(user, defs, pairs) {
        Some(field) => Err(ApiError::Refused {
            zh: format!("不能按 {field} 筛选或排序：您的角色不能查看它的明文"),
            en: format!("cannot filter or sort on {field}: your role may not see it in clear"),
        }),
        None => Ok(()),
    }
}

/// The first business or custom field a list query filters or sorts on
/// that `user` does not see in clear.
pub fn unseen_customer_field(
    user: &CurrentUser,
    defs: &[CustomFieldDef],
    pairs: &[(String, String)],
) -> Option<String> {
    let rights = &user.actor.fields;
    let unseen = |name: &str| match name.strip_prefix("cf.") {
        Some(rest) => {
            let key = rest.split('.').next().unwrap_or(rest);
            defs.iter()
                .find(|d| d.key == key)
                .is_some_and(|d| !custom_right(rights, d).may_reveal())
                .then(|| format!("cf.{key}"))
        }
        None => {
            let field = name.split('.').next().unwrap_or(name);
            (!rights.sees_customer_field(field)).then(|| field.to_string())
        }
    };
    pairs.iter().find_map(|(k, v)| match k.as_str() {
        "sort" => v
            .split(',')
            .find_map(|s| unseen(s.trim().trim_start_matches(['-', '+']))),
        _ => unseen(k),
    })
}

/// The columns the customer list's free-text `q` may search for this
/// reader: the name and code always, aliases and USCC when seen in clear.
pub fn customer_search_columns(rights: &FieldRights) -> &'static [&'static str] {
    match (
        rights.sees_customer_field("aliases"),
        rights.sees_customer_field("uscc"),
    ) {
        (true, true) => &["name", "code", "aliases", "uscc"],
        (true, false) => &["name", "code", "aliases"],
        (false, true) => &["name", "code", "uscc"],
        (false, false) => &["name", "code"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every business field is handled: withheld from a role without
    /// rights (null or empty once serialized), text ones masked with their
    /// ends kept for a masked role, nothing touched for one that sees all.
    #[test]
    fn every_business_field_is_protected() {
        let stored: Customer = serde_json::from_value(json!({
            "id": 1, "code": "C2024001", "name": "华东精密制造有限公司",
            "aliases": ["华东精密"], "uscc": "91350100M000100Y43", "industry": "制造业",
            "employees": 320, "annual_revenue_fen": 5_000_000_000i64, "province": "江苏",
            "city": "苏州", "sales_region": "华东", "address": "江苏省苏州市工业园区星湖街 88 号",
            "founded_on": "2001-05-01", "cooperation_start_on": "2021-03-15",
            "product_types": ["数控机床"], "declared_annual_purchase_fen": 120_000_000,
            "status": "active", "source_channel": "展会", "owner_id": 7, "team": "华东一组",
            "notes": "年底预算充足", "custom_fields": {}, "missing_fields": [],
            "purchase_12m_fen": 0, "order_count": 0, "last_order_on": null,
            "last_interaction_on": null, "complaints_365d": 0, "version": 1,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"
        }))
        .expect("customer");
        let every: Vec<String> = CUSTOMER_FIELDS
            .iter()
            .flat_map(|f| f.json.iter().map(|n| n.to_string()))
            .collect();

        let mut hidden = stored.clone();
        let derived = kehu_core::privacy::DERIVED_FROM_AMOUNTS
            .iter()
            .map(|n| n.to_string());
        assert_eq!(
            protect_customer(&FieldRights::default(), &mut hidden),
            every.iter().cloned().chain(derived).collect::<Vec<_>>()
        );
        let shown = serde_json::to_value(&hidden).expect("json");
        for name in &every {
            assert!(
                shown[name].is_null() || shown[name] == json!([]),
                "{name}: {}",
                shown[name]
            );
        }
        assert_eq!(shown["name"], "华东精密制造有限公司", "identity stays");

        let all_masked = FieldRights(
            CUSTOMER_FIELDS
                .iter()
                .map(|f| (f.key.to_string(), FieldAccess::Masked))
                .collect(),
        );
        let mut masked = stored.clone();
        let withheld = protect_customer(&all_masked, &mut masked);
        assert_eq!(masked.uscc.as_deref(), Some("91************0Y43"));
        assert_eq!(masked.address.as_deref(), Some("江苏省苏州市************"));
        assert_eq!(masked.aliases, ["华***"]);
        assert!(masked.employees.is_none() && masked.notes.is_none());
        let kept = ["uscc", "address", "aliases"];
        assert!(!withheld.iter().any(|w| kept.contains(&w.as_str())));

        let mut clear = stored.clone();
        assert!(protect_customer(&FieldRights::preset("sales_rep"), &mut clear).is_empty());
        assert_eq!(clear, stored);
    }
}
