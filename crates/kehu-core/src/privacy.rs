//! Field-level rights over personal information and how a value is masked.
//!
//! Every personal field has a key (`contact.mobile`, …; a custom field with
//! a mask pattern is personal too, as `cf.KEY`). A role gives each key one
//! [`FieldAccess`]: hidden, masked, clear or edit. Values leave the server
//! masked by default; a role with *clear* may reveal them (an explicit,
//! audited action), and only *edit* may change them. Masking always hides
//! at least one character, so a masked value never equals the clear one.

use crate::error::Reason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a role may do with one field, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldAccess {
    /// Not shown at all (absent in the API, not on pages).
    Hidden,
    /// Shown masked (138****5678), never in clear.
    Masked,
    /// Shown masked; may be revealed in clear (audited).
    Clear,
    /// As `Clear`, and may be changed.
    Edit,
}

impl FieldAccess {
    pub const ALL: [FieldAccess; 4] = [
        FieldAccess::Hidden,
        FieldAccess::Masked,
        FieldAccess::Clear,
        FieldAccess::Edit,
    ];
    pub fn key(self) -> &'static str {
        match self {
            FieldAccess::Hidden => "hidden",
            FieldAccess::Masked => "masked",
            FieldAccess::Clear => "clear",
            FieldAccess::Edit => "edit",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            FieldAccess::Hidden => "隐藏",
            FieldAccess::Masked => "脱敏",
            FieldAccess::Clear => "可查看明文",
            FieldAccess::Edit => "可编辑",
        }
    }
    pub fn parse(raw: &str) -> Result<FieldAccess, Reason> {
        let s = raw.trim();
        FieldAccess::ALL
            .into_iter()
            .find(|a| a.key() == s || a.label_zh() == s)
            .ok_or_else(|| Reason::UnknownOption {
                allowed: FieldAccess::ALL
                    .iter()
                    .map(|a| a.key().to_string())
                    .collect(),
            })
    }
    pub fn may_reveal(self) -> bool {
        self >= FieldAccess::Clear
    }
}

/// How a value is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskKind {
    /// 138****5678
    Mobile,
    /// 010-****5678
    Landline,
    /// 110105********002X
    IdNumber,
    /// 张*, 张*三
    Name,
    /// a***@example.com
    Email,
    /// A custom field's pattern.
    Keep(MaskPattern),
}

/// A custom field's mask: keep the first and the last so many characters,
/// star the rest (a bank card: first 0, last 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskPattern {
    #[serde(default)]
    pub first: u8,
    #[serde(default)]
    pub last: u8,
}

impl MaskPattern {
    /// At most 8 kept on each side: a mask must hide something.
    pub const MAX_KEPT: u8 = 8;

    pub fn check(&self) -> Result<(), Reason> {
        if self.first > Self::MAX_KEPT || self.last > Self::MAX_KEPT {
            return Err(Reason::OutOfRange {
                min: Some("0".into()),
                max: Some(Self::MAX_KEPT.to_string()),
            });
        }
        Ok(())
    }
}

/// A personal field of the built-in records: key, mask, labels.
pub struct PersonalField {
    pub key: &'static str,
    pub mask: MaskKind,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

/// The contact fields that are personal information.
pub const CONTACT_FIELDS: &[PersonalField] = &[
    PersonalField {
        key: "contact.name",
        mask: MaskKind::Name,
        label_zh: "联系人姓名",
        label_en: "Contact name",
    },
    PersonalField {
        key: "contact.mobile",
        mask: MaskKind::Mobile,
        label_zh: "手机",
        label_en: "Mobile",
    },
    PersonalField {
        key: "contact.landline",
        mask: MaskKind::Landline,
        label_zh: "座机",
        label_en: "Landline",
    },
    PersonalField {
        key: "contact.email",
        mask: MaskKind::Email,
        label_zh: "邮箱",
        label_en: "E-mail",
    },
    PersonalField {
        key: "contact.id_number",
        mask: MaskKind::IdNumber,
        label_zh: "身份证号",
        label_en: "ID number",
    },
];

/// A business field of the customer record under field rights: not
/// personal information, but commercial data a role may be kept from
/// (a customer's revenue from 客服, say). `json` are the names it is
/// written under in the API and on forms; `mask` keeps the start and end
/// of a text field for a masked reader — a field without one (numbers,
/// dates, choices, notes) is withheld from a masked reader. Unlike a
/// personal field, a business field with *clear* is simply shown.
pub struct BusinessField {
    pub key: &'static str,
    pub json: &'static [&'static str],
    pub mask: Option<MaskPattern>,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

const fn business(
    key: &'static str,
    json: &'static [&'static str],
    mask: Option<MaskPattern>,
    label_zh: &'static str,
    label_en: &'static str,
) -> BusinessField {
    BusinessField {
        key,
        json,
        mask,
        label_zh,
        label_en,
    }
}

const fn kept(first: u8, last: u8) -> Option<MaskPattern> {
    Some(MaskPattern { first, last })
}

/// The customer's fields under rights. The code, name, status, owner and
/// team identify the record and decide who reaches it, so every reader of
/// the customer sees them; figures derived from orders follow the orders.
pub const CUSTOMER_FIELDS: &[BusinessField] = &[
    business(
        "customer.aliases",
        &["aliases"],
        kept(1, 0),
        "曾用名/别名",
        "Former names",
    ),
    business(
        "customer.uscc",
        &["uscc"],
        kept(2, 4),
        "统一社会信用代码",
        "USCC",
    ),
    business(
        "customer.industry",
        &["industry"],
        None,
        "所属行业",
        "Industry",
    ),
    business(
        "customer.employees",
        &["employees"],
        None,
        "企业规模(员工数)",
        "Employees",
    ),
    business(
        "customer.annual_revenue",
        &["annual_revenue_fen"],
        None,
        "年营业额",
        "Annual revenue",
    ),
    business(
        "customer.region",
        &["province", "city", "sales_region"],
        None,
        "省份/城市/区域",
        "Province, city, region",
    ),
    business(
        "customer.address",
        &["address"],
        kept(6, 0),
        "地址",
        "Address",
    ),
    business(
        "customer.founded_on",
        &["founded_on"],
        None,
        "成立日期",
        "Founded",
    ),
    business(
        "customer.cooperation_start_on",
        &["cooperation_start_on"],
        None,
        "合作起始时间",
        "Cooperating since",
    ),
    business(
        "customer.declared_annual_purchase",
        &["declared_annual_purchase_fen"],
        None,
        "年采购额(申报)",
        "Declared annual purchase",
    ),
    business(
        "customer.product_types",
        &["product_types"],
        None,
        "核心产品类型",
        "Product types",
    ),
    business(
        "customer.source_channel",
        &["source_channel"],
        None,
        "客户来源",
        "Source channel",
    ),
    business("customer.notes", &["notes"], None, "备注", "Notes"),
];

/// A contact's fields under rights besides the personal ones: what the
/// person does, not who they are.
pub const CONTACT_RECORD_FIELDS: &[BusinessField] = &[
    business(
        "contact.title",
        &["title"],
        None,
        "联系人职务",
        "Contact title",
    ),
    business(
        "contact.decision_role",
        &["decision_role"],
        None,
        "决策角色",
        "Role in the buying decision",
    ),
    business(
        "contact.notes",
        &["notes"],
        None,
        "联系人备注",
        "Contact notes",
    ),
];

/// An order's fields under rights. Its number and date identify it; the
/// figures derived from amounts (purchases in 12 months, growth, lifetime
/// value, the explanations' order sums) follow `order.amount`.
pub const ORDER_RECORD_FIELDS: &[BusinessField] = &[
    business(
        "order.amount",
        &["amount_fen"],
        None,
        "订单金额",
        "Order amount",
    ),
    business(
        "order.product_line",
        &["product_line"],
        None,
        "订单产品线",
        "Order product line",
    ),
    business("order.notes", &["notes"], None, "订单备注", "Order notes"),
];

/// An interaction's fields under rights. Its kind, date, severity and
/// status route the work (a complaint must reach whoever handles it).
pub const INTERACTION_RECORD_FIELDS: &[BusinessField] = &[
    business(
        "interaction.summary",
        &["summary"],
        None,
        "互动摘要",
        "Interaction summary",
    ),
    business(
        "interaction.satisfaction",
        &["satisfaction"],
        None,
        "满意度",
        "Satisfaction",
    ),
];

/// The customer's figures derived from order amounts (JSON names): a
/// reader kept from `order.amount` is kept from these too, or the sum of
/// a customer's purchases would tell what its orders are worth.
pub const DERIVED_FROM_AMOUNTS: &[&str] = &["purchase_12m_fen", "clv_fen"];

/// Every field under business rights, customer's first.
pub fn business_fields() -> impl Iterator<Item = &'static BusinessField> {
    CUSTOMER_FIELDS
        .iter()
        .chain(CONTACT_RECORD_FIELDS)
        .chain(ORDER_RECORD_FIELDS)
        .chain(INTERACTION_RECORD_FIELDS)
}

/// The business field written under JSON name `json` (`province` → region).
pub fn customer_field(json: &str) -> Option<&'static BusinessField> {
    CUSTOMER_FIELDS.iter().find(|f| f.json.contains(&json))
}

/// How a reader sees one business field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusinessView {
    Clear,
    Masked(MaskPattern),
    Withheld,
}

/// The rights key of every custom field that has no entry of its own.
pub const CUSTOM_DEFAULT: &str = "cf.*";

/// The rights key of a custom field.
pub fn custom_key(key: &str) -> String {
    format!("cf.{key}")
}

/// A value masked as `kind` says.
pub fn mask(kind: MaskKind, value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match kind {
        MaskKind::Mobile => keep(&chars, 3, 4),
        MaskKind::Landline => mask_landline(value),
        MaskKind::IdNumber => keep(&chars, 6, 4),
        MaskKind::Name => match chars.len() {
            0 => String::new(),
            1 | 2 => keep(&chars, 1, 0),
            _ => keep(&chars, 1, 1),
        },
        MaskKind::Email => match value.rsplit_once('@') {
            Some((local, domain)) => {
                let first: String = local.chars().take(1).collect();
                format!("{first}***@{domain}")
            }
            None => keep(&chars, 1, 0),
        },
        MaskKind::Keep(p) => keep(&chars, p.first as usize, p.last as usize),
    }
}

/// A phone of either kind masked, as its own field would be: a landline
/// keeps its area code (`0571-****6666`), a mobile (no `-`) its first three
/// and last four (`139****9000`).
pub fn mask_phone(value: &str) -> String {
    mask(MaskKind::Landline, value)
}

/// The first and last characters kept, the rest starred; a value too
/// short for that keeps at most a third of it on each side.
fn keep(chars: &[char], first: usize, last: usize) -> String {
    let n = chars.len();
    let (first, last) = if first + last < n {
        (first, last)
    } else {
        (first.min(n / 3), last.min(n / 3))
    };
    let mut out: String = chars[..first].iter().collect();
    out.extend(std::iter::repeat_n('*', n - first - last));
    out.extend(&chars[n - last..]);
    out
}

/// `0571-88001234-12` → `0571-****1234`: the area code kept, the number's
/// last four, the extension dropped.
fn mask_landline(value: &str) -> String {
    let mut parts = value.split('-');
    let head = parts.next().unwrap_or_default();
    match parts.next() {
        Some(number) if !number.is_empty() => {
            let tail: String = {
                let c: Vec<char> = number.chars().collect();
                c[c.len().saturating_sub(4)..].iter().collect()
            };
            if number.chars().count() > 4 {
                format!("{head}-****{tail}")
            } else {
                format!("{head}-****")
            }
        }
        _ => {
            let chars: Vec<char> = value.chars().collect();
            keep(&chars, 3, 4)
        }
    }
}

/// Free text as the audit log keeps it: its length, not its words. The log
/// cannot be erased, and a summary or a note may name a person (`[23 字]`).
pub fn text_for_log(text: &str) -> String {
    format!("[{} 字]", text.chars().count())
}

/// Free text (an interaction's summary, a task's title) with a person's
/// values taken out, for erasure: `values` are what their contact held
/// (name, phones, e-mail, ID number). A name or ID number is replaced
/// wherever it appears, an e-mail in any case; a phone wherever its digits
/// appear as one number, however it was typed (`138-1234-5678`, `+86 138
/// 1234 5678`, `(010)62345678`). Each is replaced by `with`. None when the
/// text holds none of them. Names of one character are left alone: in
/// Chinese text they would take out every word that holds the character.
pub fn redact_text(text: &str, values: &[String], with: &str) -> Option<String> {
    let mut out = text.to_string();
    let mut phones: Vec<String> = Vec::new();
    for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
        if is_phone_like(v) {
            // The whole number, and a landline's number without its area
            // code or extension, as it is often written.
            let whole: String = v.chars().filter(char::is_ascii_digit).collect();
            let parts = v.split(['-', ' ', '(', ')']).map(str::to_string);
            phones.extend(
                std::iter::once(whole)
                    .chain(parts)
                    .filter(|d| d.len() >= 7 && d.chars().all(|c| c.is_ascii_digit())),
            );
            continue;
        }
        if v.chars().count() < 2 {
            continue;
        }
        out = replace_ignoring_ascii_case(&out, v, with);
    }
    if !phones.is_empty() {
        out = redact_numbers(&out, &phones, with);
    }
    (out != text).then_some(out)
}

fn is_phone_like(v: &str) -> bool {
    v.chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '(' | ')'))
}

/// Every occurrence of `needle` (ASCII letters in any case) replaced.
fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> String {
    let (lower_text, lower_needle) = (text.to_ascii_lowercase(), needle.to_ascii_lowercase());
    // ASCII lower-casing keeps byte offsets, so matches found in the
    // lower-cased text cut the original at the same places.
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower_text[at..].find(&lower_needle) {
        out.push_str(&text[at..at + i]);
        out.push_str(with);
        at += i + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

/// Runs of digits and the marks phones are typed with (`+`, `-`, spaces,
/// brackets) whose digits hold one of `phones` are replaced whole.
fn redact_numbers(text: &str, phones: &[String], with: &str) -> String {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < chars.len() {
        let starts = chars[i].1.is_ascii_digit() || matches!(chars[i].1, '+' | '(');
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len()
            && (chars[j].1.is_ascii_digit() || matches!(chars[j].1, '+' | '-' | ' ' | '(' | ')'))
        {
            j += 1;
        }
        // The run ends at its last digit (a trailing space or dash is text).
        let mut end = j;
        while end > i && !chars[end - 1].1.is_ascii_digit() {
            end -= 1;
        }
        // An opening bracket belongs to the number only when it closes
        // inside it (`(010)6234…`), not around it (`(139-0000-1111)`).
        let from = if chars[i].1 == '(' && !chars[i + 1..end].iter().any(|&(_, c)| c == ')') {
            i + 1
        } else {
            i
        };
        let digits: String = chars[from..end]
            .iter()
            .map(|&(_, c)| c)
            .filter(char::is_ascii_digit)
            .collect();
        if end > from && phones.iter().any(|p| digits.contains(p.as_str())) {
            let (from, to) = (chars[from].0, chars.get(end).map_or(text.len(), |c| c.0));
            out.push_str(&text[copied..from]);
            out.push_str(with);
            copied = to;
        }
        i = j.max(i + 1);
    }
    out.push_str(&text[copied..]);
    out
}

/// A role's rights over personal and business fields, by key. A key
/// without an entry is hidden (least privilege); custom fields fall back to
/// [`CUSTOM_DEFAULT`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FieldRights(pub BTreeMap<String, FieldAccess>);

impl FieldRights {
    pub fn access(&self, key: &str) -> FieldAccess {
        if let Some(a) = self.0.get(key) {
            return *a;
        }
        if key.starts_with("cf.") {
            if let Some(a) = self.0.get(CUSTOM_DEFAULT) {
                return *a;
            }
        }
        FieldAccess::Hidden
    }

    /// A custom field's right. A personal one (with a mask) falls back to
    /// [`CUSTOM_DEFAULT`]; any other is unrestricted — seen and changed as
    /// its record is — until the role has an entry of its own for it
    /// (`cf.KEY`), and then is shown as a business field: clear or edit
    /// shown, masked or hidden withheld.
    pub fn custom_access(&self, key: &str, personal: bool) -> FieldAccess {
        let rights_key = custom_key(key);
        match (self.0.get(&rights_key), personal) {
            (Some(a), _) => *a,
            (None, true) => self.access(&rights_key),
            (None, false) => FieldAccess::Edit,
        }
    }

    /// Whether this role sees a value read from `field` as it is: a
    /// customer's business field by JSON name, a field of its records by
    /// rights key (`order.amount`), or a custom field that is not personal
    /// as `cf.KEY`.
    pub fn sees_field(&self, field: &str) -> bool {
        if let Some(key) = field.strip_prefix("cf.") {
            return self.custom_access(key, false).may_reveal();
        }
        match business_fields().find(|f| f.key == field) {
            Some(f) => self.business_view(f) == BusinessView::Clear,
            None => self.sees_customer_field(field),
        }
    }

    /// How a business field is shown to this role.
    pub fn business_view(&self, f: &BusinessField) -> BusinessView {
        match (self.access(f.key), f.mask) {
            (FieldAccess::Clear | FieldAccess::Edit, _) => BusinessView::Clear,
            (FieldAccess::Masked, Some(p)) => BusinessView::Masked(p),
            _ => BusinessView::Withheld,
        }
    }

    /// Whether this role sees the business field written as `json` as it
    /// is (true for names that are not under rights, such as `name`; a
    /// figure derived from order amounts as `order.amount`).
    pub fn sees_customer_field(&self, json: &str) -> bool {
        if DERIVED_FROM_AMOUNTS.contains(&json) {
            return self.sees_field("order.amount");
        }
        customer_field(json).is_none_or(|f| self.business_view(f) == BusinessView::Clear)
    }

    /// How `value` of field `key` (masked as `kind`) is shown: None when
    /// hidden, in clear only when `reveal` is asked and allowed.
    pub fn show(&self, key: &str, kind: MaskKind, value: &str, reveal: bool) -> Option<String> {
        match self.access(key) {
            FieldAccess::Hidden => None,
            a if reveal && a.may_reveal() => Some(value.to_string()),
            _ => Some(mask(kind, value)),
        }
    }

    /// A contact value (`key` one of [`CONTACT_FIELDS`]) inside a sentence
    /// or a list: masked, `***` when hidden.
    pub fn in_text(&self, key: &str, value: &str) -> String {
        let kind = CONTACT_FIELDS
            .iter()
            .find(|f| f.key == key)
            .map_or(MaskKind::Keep(MaskPattern { first: 0, last: 0 }), |f| {
                f.mask
            });
        self.show(key, kind, value, false)
            .unwrap_or_else(|| "***".to_string())
    }

    /// Every personal field masked, business fields shown: what logs, the
    /// audit log and the command line's reports show, whoever acted.
    pub fn all_masked() -> FieldRights {
        let keys = CONTACT_FIELDS
            .iter()
            .map(|f| f.key)
            .chain(std::iter::once(CUSTOM_DEFAULT));
        let masked = keys.map(|k| (k.to_string(), FieldAccess::Masked));
        let shown = business_fields().map(|f| (f.key.to_string(), FieldAccess::Clear));
        FieldRights(masked.chain(shown).collect())
    }

    /// The preset rights of a preset role (unknown roles: none).
    pub fn preset(role: &str) -> FieldRights {
        use FieldAccess::{Clear, Edit, Hidden, Masked};
        // name, mobile, landline, email, id number, custom fields
        let row: [FieldAccess; 6] = match role {
            "admin" | "sales_manager" | "sales_rep" => [Edit; 6],
            "service" => [Clear, Clear, Clear, Clear, Masked, Masked],
            "marketing" | "management" => [Masked, Masked, Masked, Masked, Hidden, Masked],
            _ => [Hidden; 6],
        };
        let keys = CONTACT_FIELDS
            .iter()
            .map(|f| f.key)
            .chain(std::iter::once(CUSTOM_DEFAULT));
        let mut rights: BTreeMap<String, FieldAccess> = keys.map(str::to_string).zip(row).collect();
        for f in business_fields() {
            rights.insert(f.key.to_string(), Self::preset_business(role, f.key));
        }
        FieldRights(rights)
    }

    /// A preset role's right over a business field: editors edit; 客服
    /// serves the customer without its revenue or declared purchases, and
    /// writes the interactions it logs; 市场 sees no contact's notes (free
    /// text about a person); readers of reports and campaigns see the
    /// rest; others nothing.
    pub fn preset_business(role: &str, key: &str) -> FieldAccess {
        use FieldAccess::{Clear, Edit, Hidden, Masked};
        let money = matches!(
            key,
            "customer.annual_revenue" | "customer.declared_annual_purchase"
        );
        match role {
            "admin" | "sales_manager" | "sales_rep" => Edit,
            "service" if money => Masked,
            "service" if key.starts_with("interaction.") => Edit,
            "marketing" if key == "contact.notes" => Masked,
            "service" | "marketing" | "management" => Clear,
            _ => Hidden,
        }
    }

    /// Rights as sent by an admin: known keys (`contact.*`, `cf.KEY`,
    /// `cf.*`) and accesses; errors name the key.
    pub fn parse(
        raw: &BTreeMap<String, String>,
        custom_keys: &[String],
    ) -> Result<FieldRights, crate::error::ValidationErrors> {
        let mut errors = crate::error::ValidationErrors::default();
        let mut out = BTreeMap::new();
        for (k, v) in raw {
            let known = CONTACT_FIELDS.iter().any(|f| f.key == k)
                || business_fields().any(|f| f.key == k)
                || k == CUSTOM_DEFAULT
                || k.strip_prefix("cf.")
                    .is_some_and(|c| custom_keys.iter().any(|x| x == c));
            if !known {
                errors.push(k, Reason::UnknownField);
                continue;
            }
            match FieldAccess::parse(v) {
                Ok(a) => {
                    out.insert(k.clone(), a);
                }
                Err(r) => errors.push(k, r),
            }
        }
        errors.into_result()?;
        Ok(FieldRights(out))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn redact_text_takes_a_persons_values_out_of_free_text() {
        let values: Vec<String> = [
            "张小三",
            "13812345678",
            "010-62345678",
            "Zhang@Example.com",
            "王",
        ]
        .map(String::from)
        .to_vec();
        let cases: &[(&str, Option<&str>)] = &[
            ("和张小三通了电话", Some("和【X】通了电话")),
            (
                "回电 138-1234-5678 或 +86 138 1234 5678。",
                Some("回电 【X】 或 【X】。"),
            ),
            (
                "座机(010)62345678，分机 62345678-12",
                Some("座机【X】，分机 【X】"),
            ),
            ("来电(139-0000-1111),要报价", None),
            ("来电(138-1234-5678),要报价", Some("来电(【X】),要报价")),
            ("邮件 zhang@example.COM 已发", Some("邮件 【X】 已发")),
            // Other numbers and a one-character name stay.
            ("订单 2024-03-12 共 13900001111 元，王经理", None),
            ("张小三张小三", Some("【X】【X】")),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                redact_text(text, &values, "【X】").as_deref(),
                *want,
                "{text}"
            );
        }
    }
    use super::*;

    #[test]
    fn phones_of_either_kind() {
        assert_eq!(
            mask_phone("13900139000"),
            mask(MaskKind::Mobile, "13900139000")
        );
        assert_eq!(mask_phone("0571-88886666"), "0571-****6666");
    }

    #[test]
    fn masks() {
        let p = |first, last| MaskKind::Keep(MaskPattern { first, last });
        let cases = [
            (MaskKind::Mobile, "13812345678", "138****5678"),
            (MaskKind::Mobile, "1381234", "13***34"),
            (MaskKind::Landline, "010-62345678", "010-****5678"),
            (MaskKind::Landline, "0571-88001234-123", "0571-****1234"),
            (MaskKind::Landline, "400-8208820", "400-****8820"),
            (MaskKind::Landline, "010-123", "010-****"),
            (MaskKind::Landline, "62345678", "623*5678"),
            (
                MaskKind::IdNumber,
                "11010519491231002X",
                "110105********002X",
            ),
            (MaskKind::IdNumber, "110105491231002", "110105*****1002"),
            (MaskKind::Name, "张三", "张*"),
            (MaskKind::Name, "张小三", "张*三"),
            (MaskKind::Name, "欧阳娜娜", "欧**娜"),
            (MaskKind::Name, "王", "*"),
            (MaskKind::Name, "", ""),
            (MaskKind::Email, "alice@example.com", "a***@example.com"),
            (MaskKind::Email, "b@x.cn", "b***@x.cn"),
            (MaskKind::Email, "@x.cn", "***@x.cn"),
            (p(0, 4), "6222020200112233", "************2233"),
            (p(3, 0), "ABCDEFG", "ABC****"),
            (p(8, 8), "1234", "1**4"),
            (p(0, 0), "secret", "******"),
        ];
        for (kind, value, want) in cases {
            assert_eq!(mask(kind, value), want, "{kind:?} {value}");
        }
    }

    #[test]
    fn a_masked_value_never_equals_the_clear_one() {
        let kinds = [
            MaskKind::Mobile,
            MaskKind::Landline,
            MaskKind::IdNumber,
            MaskKind::Name,
            MaskKind::Email,
            MaskKind::Keep(MaskPattern { first: 8, last: 8 }),
        ];
        for kind in kinds {
            for value in ["1", "12", "ab", "a-b", "010-1", "x@y", "13812345678"] {
                assert_ne!(mask(kind, value), value, "{kind:?} {value}");
            }
        }
    }

    #[test]
    fn rights_by_role_and_reveal() {
        let cases = [
            ("sales_rep", "contact.mobile", false, Some("138****5678")),
            ("sales_rep", "contact.mobile", true, Some("13812345678")),
            ("service", "contact.mobile", true, Some("13812345678")),
            ("marketing", "contact.mobile", true, Some("138****5678")),
            ("marketing", "contact.id_number", false, None),
            ("auditor", "contact.mobile", false, None),
            ("management", "cf.bank_card", true, Some("138****5678")),
            ("nobody", "contact.mobile", true, None),
        ];
        for (role, key, reveal, want) in cases {
            let kind = if key == "cf.bank_card" {
                MaskKind::Keep(MaskPattern { first: 3, last: 4 })
            } else {
                MaskKind::Mobile
            };
            assert_eq!(
                FieldRights::preset(role)
                    .show(key, kind, "13812345678", reveal)
                    .as_deref(),
                want,
                "{role} {key} reveal={reveal}"
            );
        }
    }

    /// (role, field, view): editors and readers of reports see business
    /// fields; 客服 not the money ones; a masked text field keeps its ends.
    #[test]
    fn business_fields_by_role() {
        let uscc = customer_field("uscc").expect("uscc");
        let revenue = customer_field("annual_revenue_fen").expect("revenue");
        let city = customer_field("city").expect("city");
        assert_eq!(city.key, "customer.region");
        let masked_uscc = BusinessView::Masked(MaskPattern { first: 2, last: 4 });
        let cases = [
            ("sales_rep", uscc, BusinessView::Clear),
            ("service", uscc, BusinessView::Clear),
            ("service", revenue, BusinessView::Withheld),
            ("marketing", revenue, BusinessView::Clear),
            ("auditor", city, BusinessView::Withheld),
            ("nobody", uscc, BusinessView::Withheld),
        ];
        for (role, f, want) in cases {
            assert_eq!(
                FieldRights::preset(role).business_view(f),
                want,
                "{role} {}",
                f.key
            );
        }
        let mut r = FieldRights::preset("service");
        r.0.insert("customer.uscc".into(), FieldAccess::Masked);
        assert_eq!(r.business_view(uscc), masked_uscc);
        assert!(!r.sees_customer_field("uscc"));
        assert!(!r.sees_customer_field("annual_revenue_fen"));
        assert!(r.sees_customer_field("province"));
        assert!(r.sees_customer_field("name"), "not under rights");
        r.0.remove("customer.region");
        assert!(!r.sees_customer_field("sales_region"), "absent: hidden");
        assert_eq!(
            mask(
                MaskKind::Keep(MaskPattern { first: 2, last: 4 }),
                "91350100M000100Y43"
            ),
            "91************0Y43"
        );
    }

    /// The fields of contacts, orders and interactions by preset role:
    /// 客服 writes what it logs, 市场 reads no contact notes, readers of
    /// derived figures follow the order's amount.
    #[test]
    fn record_fields_by_role() {
        use FieldAccess::{Clear, Edit, Hidden, Masked};
        let cases = [
            ("sales_rep", "order.amount", Edit),
            ("service", "order.amount", Clear),
            ("service", "interaction.summary", Edit),
            ("service", "interaction.satisfaction", Edit),
            ("service", "contact.notes", Clear),
            ("marketing", "contact.notes", Masked),
            ("marketing", "contact.title", Clear),
            ("management", "interaction.summary", Clear),
            ("auditor", "order.product_line", Hidden),
        ];
        for (role, key, want) in cases {
            assert_eq!(FieldRights::preset(role).access(key), want, "{role} {key}");
        }
        let mut r = FieldRights::preset("service");
        assert!(r.sees_field("order.amount"));
        r.0.insert("order.amount".into(), Masked);
        assert!(!r.sees_field("order.amount"), "no mask: withheld");
        assert!(!r.sees_customer_field("purchase_12m_fen"), "derived");
        assert!(r.sees_customer_field("order_count"), "a count is no amount");
        assert!(r.sees_field("order.product_line"));
        let keys: Vec<&str> = business_fields().map(|f| f.key).collect();
        let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(keys.len(), unique.len(), "every key once");
        let logged = FieldRights::all_masked();
        assert!(business_fields().all(|f| logged.business_view(f) == BusinessView::Clear));
    }

    /// A custom field that is not personal is unrestricted until the role
    /// has an entry for it; a personal one falls back to `cf.*`.
    #[test]
    fn custom_fields_without_and_with_an_entry() {
        let mut r = FieldRights::preset("service");
        assert_eq!(r.custom_access("credit_limit", false), FieldAccess::Edit);
        assert_eq!(r.custom_access("bank_card", true), FieldAccess::Masked);
        assert!(r.sees_field("cf.credit_limit"));
        r.0.insert("cf.credit_limit".into(), FieldAccess::Masked);
        assert_eq!(r.custom_access("credit_limit", false), FieldAccess::Masked);
        assert!(!r.sees_field("cf.credit_limit"));
        assert!(!r.sees_field("annual_revenue_fen") && r.sees_field("industry"));
    }

    #[test]
    fn values_in_text() {
        let r = FieldRights::preset("marketing");
        assert_eq!(r.in_text("contact.name", "张小三"), "张*三");
        assert_eq!(r.in_text("contact.id_number", "11010519491231002X"), "***");
        assert_eq!(r.in_text("contact.mobile", "13812345678"), "138****5678");
    }

    #[test]
    fn custom_fields_fall_back_to_the_default_entry() {
        let mut r = FieldRights::preset("service");
        assert_eq!(r.access("cf.anything"), FieldAccess::Masked);
        r.0.insert("cf.vip".into(), FieldAccess::Clear);
        assert_eq!(r.access("cf.vip"), FieldAccess::Clear);
        assert_eq!(r.access("contact.unknown"), FieldAccess::Hidden);
    }

    #[test]
    fn parse_names_the_bad_key() {
        let raw: BTreeMap<String, String> = [
            ("contact.mobile".to_string(), "clear".to_string()),
            ("contact.shoe_size".to_string(), "clear".to_string()),
            ("cf.vip".to_string(), "可编辑".to_string()),
            ("contact.email".to_string(), "sometimes".to_string()),
        ]
        .into_iter()
        .collect();
        let e = FieldRights::parse(&raw, &["vip".to_string()]).expect_err("bad");
        let fields: Vec<_> = e.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["contact.email", "contact.shoe_size"]);
        let ok = FieldRights::parse(
            &[("cf.vip".to_string(), "可编辑".to_string())]
                .into_iter()
                .collect(),
            &["vip".to_string()],
        )
        .expect("ok");
        assert_eq!(ok.access("cf.vip"), FieldAccess::Edit);
    }
}
