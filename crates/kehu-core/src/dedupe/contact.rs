//! Duplicate contacts of one customer: two records of the same person, as
//! a customer merge, an import under another spelling or a second entry by
//! hand leaves them. Contacts are compared within their customer only (the
//! same mobile at two customers says the *companies* may be one, which the
//! customer matcher weighs). A customer has few contacts, so every pair is
//! compared; the evidence is exact (an ID number, a mobile, an e-mail, the
//! name or its sound), and the score a fixed table of it, tested at every
//! row: a person reviewing the queue must be able to predict it.
//!
//! Survivorship for merging two contacts is here too: per field, the
//! non-empty value, else the more recently changed record's.

use super::company::pinyin_of;
use crate::contact::ContactData;
use crate::merge::Side;
use crate::text::to_half_width;
use serde::Serialize;
use std::collections::BTreeMap;

/// Pairs scoring at least this are proposed for review.
pub const CONTACT_PAIR_THRESHOLD: u8 = 50;

/// What a contact is compared on (values as stored: validated, opened).
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactFacts<'a> {
    pub id: i64,
    pub name: &'a str,
    pub mobile: Option<&'a str>,
    pub landline: Option<&'a str>,
    pub email: Option<&'a str>,
    pub id_number: Option<&'a str>,
}

impl<'a> ContactFacts<'a> {
    pub fn of(id: i64, d: &'a ContactData) -> Self {
        ContactFacts {
            id,
            name: &d.name,
            mobile: d.mobile.as_deref(),
            landline: d.landline.as_deref(),
            email: d.email.as_deref(),
            id_number: d.id_number.as_deref(),
        }
    }
}

/// One piece of evidence that two contacts are one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactEvidence {
    SameIdNumber,
    SameMobile,
    SameEmail,
    SameName,
    /// The names sound alike (张伟 / 张玮): a typo or another character.
    SoundAlikeName,
    SameLandline,
}

impl ContactEvidence {
    pub const ALL: [ContactEvidence; 6] = [
        ContactEvidence::SameIdNumber,
        ContactEvidence::SameMobile,
        ContactEvidence::SameEmail,
        ContactEvidence::SameName,
        ContactEvidence::SoundAlikeName,
        ContactEvidence::SameLandline,
    ];

    /// The stable key stored with a pair.
    pub fn key(self) -> &'static str {
        match self {
            ContactEvidence::SameIdNumber => "same_id_number",
            ContactEvidence::SameMobile => "same_mobile",
            ContactEvidence::SameEmail => "same_email",
            ContactEvidence::SameName => "same_name",
            ContactEvidence::SoundAlikeName => "sound_alike_name",
            ContactEvidence::SameLandline => "same_landline",
        }
    }

    pub fn parse(key: &str) -> Option<ContactEvidence> {
        Self::ALL.into_iter().find(|e| e.key() == key)
    }

    pub fn describe_zh(self) -> &'static str {
        match self {
            ContactEvidence::SameIdNumber => "身份证号相同",
            ContactEvidence::SameMobile => "手机相同",
            ContactEvidence::SameEmail => "邮箱相同",
            ContactEvidence::SameName => "姓名相同",
            ContactEvidence::SoundAlikeName => "姓名读音相同",
            ContactEvidence::SameLandline => "座机相同",
        }
    }

    pub fn describe_en(self) -> &'static str {
        match self {
            ContactEvidence::SameIdNumber => "same ID number",
            ContactEvidence::SameMobile => "same mobile",
            ContactEvidence::SameEmail => "same e-mail",
            ContactEvidence::SameName => "same name",
            ContactEvidence::SoundAlikeName => "names sound alike",
            ContactEvidence::SameLandline => "same landline",
        }
    }
}

/// Two contacts that are likely one person: lower id first, a score of
/// 0–100 and the evidence, strongest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactPair {
    pub a: i64,
    pub b: i64,
    pub score: u8,
    pub evidence: Vec<ContactEvidence>,
}

/// How two names relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Names {
    Same,
    SoundAlike,
    Different,
}

/// A name as compared: width and case folded, spaces and the middle dot of
/// transliterated names left out (张 伟 = 张伟, Li Ming = li ming).
fn name_key(name: &str) -> String {
    to_half_width(name)
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '·' | '•' | '.' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn names(a: &str, b: &str) -> Names {
    let (ka, kb) = (name_key(a), name_key(b));
    if ka.is_empty() || kb.is_empty() {
        return Names::Different;
    }
    if ka == kb {
        return Names::Same;
    }
    // Sound alike only for names of the same length whose every character
    // has a reading (two Latin names differing in a letter are not "alike").
    let has_reading = |s: &str| s.chars().all(|c| !c.is_ascii());
    if ka.chars().count() == kb.chars().count()
        && has_reading(&ka)
        && has_reading(&kb)
        && pinyin_of(&ka) == pinyin_of(&kb)
    {
        return Names::SoundAlike;
    }
    Names::Different
}

/// Whether both have the value, and whether it is the same.
fn agree(a: Option<&str>, b: Option<&str>) -> Option<bool> {
    match (a, b) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => Some(x.eq_ignore_ascii_case(y)),
        _ => None,
    }
}

/// Compares two contacts of one customer; `None` when the evidence is
/// below [`CONTACT_PAIR_THRESHOLD`] or two different ID numbers say they
/// are two people.
///
/// The table (first row that applies):
/// - the same ID number: 100;
/// - the same mobile or e-mail: 98 with the same name, 92 with names that
///   sound alike, 60 with other names (an assistant's phone, a shared
///   mailbox) — plus 1 when mobile and e-mail both agree;
/// - the same name, nothing else differing: 80, or 85 with the same landline;
/// - the same name but another mobile or e-mail: 45 (not proposed: two
///   people of one name, or a new phone — too close to call);
/// - names that sound alike with the same landline: 60; without: not proposed.
pub fn compare(a: &ContactFacts<'_>, b: &ContactFacts<'_>) -> Option<ContactPair> {
    let id_number = agree(a.id_number, b.id_number);
    if id_number == Some(false) {
        return None;
    }
    let mobile = agree(a.mobile, b.mobile);
    let email = agree(a.email, b.email);
    let landline = agree(a.landline, b.landline);
    let name = names(a.name, b.name);
    let mut evidence = Vec::new();
    if id_number == Some(true) {
        evidence.push(ContactEvidence::SameIdNumber);
    }
    if mobile == Some(true) {
        evidence.push(ContactEvidence::SameMobile);
    }
    if email == Some(true) {
        evidence.push(ContactEvidence::SameEmail);
    }
    match name {
        Names::Same => evidence.push(ContactEvidence::SameName),
        Names::SoundAlike => evidence.push(ContactEvidence::SoundAlikeName),
        Names::Different => {}
    }
    if landline == Some(true) {
        evidence.push(ContactEvidence::SameLandline);
    }
    let strong = usize::from(mobile == Some(true)) + usize::from(email == Some(true));
    let differing = mobile == Some(false) || email == Some(false);
    let score = if id_number == Some(true) {
        100
    } else if strong > 0 {
        let base = match name {
            Names::Same => 98,
            Names::SoundAlike => 92,
            Names::Different => 60,
        };
        base + u8::from(strong == 2)
    } else {
        match (name, differing, landline == Some(true)) {
            (Names::Same, false, true) => 85,
            (Names::Same, false, false) => 80,
            (Names::Same, true, _) => 45,
            (Names::SoundAlike, false, true) => 60,
            _ => 0,
        }
    };
    (score >= CONTACT_PAIR_THRESHOLD).then(|| ContactPair {
        a: a.id.min(b.id),
        b: a.id.max(b.id),
        score,
        evidence,
    })
}

/// Every likely pair among one customer's contacts, best first.
pub fn contact_pairs(contacts: &[ContactFacts<'_>]) -> Vec<ContactPair> {
    let mut pairs = Vec::new();
    for (i, a) in contacts.iter().enumerate() {
        for b in &contacts[i + 1..] {
            pairs.extend(compare(a, b));
        }
    }
    pairs.sort_by(|x, y| y.score.cmp(&x.score).then((x.a, x.b).cmp(&(y.a, y.b))));
    pairs
}

/// A contact field whose surviving value is picked when two are merged, in
/// the order a merge form shows them.
pub struct ContactMergeField {
    pub key: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
}

pub const CONTACT_MERGE_FIELDS: &[ContactMergeField] = &[
    ContactMergeField {
        key: "name",
        label_zh: "姓名",
        label_en: "Name",
    },
    ContactMergeField {
        key: "title",
        label_zh: "职务",
        label_en: "Title",
    },
    ContactMergeField {
        key: "decision_role",
        label_zh: "决策角色",
        label_en: "Decision role",
    },
    ContactMergeField {
        key: "mobile",
        label_zh: "手机",
        label_en: "Mobile",
    },
    ContactMergeField {
        key: "landline",
        label_zh: "座机",
        label_en: "Landline",
    },
    ContactMergeField {
        key: "email",
        label_zh: "邮箱",
        label_en: "E-mail",
    },
    ContactMergeField {
        key: "id_number",
        label_zh: "身份证号",
        label_en: "ID number",
    },
    ContactMergeField {
        key: "notes",
        label_zh: "备注",
        label_en: "Notes",
    },
];

/// The value of a [`CONTACT_MERGE_FIELDS`] key in a contact (empty: `None`).
pub fn contact_value<'a>(d: &'a ContactData, key: &str) -> Option<&'a str> {
    let v = match key {
        "name" => Some(d.name.as_str()),
        "title" => d.title.as_deref(),
        "decision_role" => d.decision_role.as_deref(),
        "mobile" => d.mobile.as_deref(),
        "landline" => d.landline.as_deref(),
        "email" => d.email.as_deref(),
        "id_number" => d.id_number.as_deref(),
        "notes" => d.notes.as_deref(),
        _ => None,
    };
    v.filter(|s| !s.trim().is_empty())
}

fn set_contact_value(d: &mut ContactData, key: &str, v: Option<&str>) {
    let v = v.map(str::to_string);
    match key {
        "name" => {
            if let Some(n) = v {
                d.name = n;
            }
        }
        "title" => d.title = v,
        "decision_role" => d.decision_role = v,
        "mobile" => d.mobile = v,
        "landline" => d.landline = v,
        "email" => d.email = v,
        "id_number" => d.id_number = v,
        "notes" => d.notes = v,
        _ => {}
    }
}

/// The default side per field: the one with a value; both with one, the
/// `newer` record's (the more recently changed).
pub fn default_contact_choices(
    a: &ContactData,
    b: &ContactData,
    newer: Side,
) -> Vec<(&'static str, Side)> {
    CONTACT_MERGE_FIELDS
        .iter()
        .map(|f| {
            let side = match (contact_value(a, f.key), contact_value(b, f.key)) {
                (Some(_), None) => Side::A,
                (None, Some(_)) => Side::B,
                _ => newer,
            };
            (f.key, side)
        })
        .collect()
}

/// The surviving contact: `a` (the survivor) with each field taken from
/// the side chosen (the defaults where not). It is the primary contact
/// when either was.
pub fn merged_contact(
    a: &ContactData,
    b: &ContactData,
    choices: &BTreeMap<String, Side>,
    newer: Side,
) -> ContactData {
    let mut out = a.clone();
    for (key, default) in default_contact_choices(a, b, newer) {
        let side = choices.get(key).copied().unwrap_or(default);
        let from = if side == Side::A { a } else { b };
        set_contact_value(&mut out, key, contact_value(from, key));
    }
    out.is_primary = a.is_primary || b.is_primary;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(
        id: i64,
        name: &'a str,
        mobile: &'a str,
        email: &'a str,
        landline: &'a str,
        id_number: &'a str,
    ) -> ContactFacts<'a> {
        let opt = |s: &'a str| (!s.is_empty()).then_some(s);
        ContactFacts {
            id,
            name,
            mobile: opt(mobile),
            landline: opt(landline),
            email: opt(email),
            id_number: opt(id_number),
        }
    }

    #[test]
    fn the_score_table_row_by_row() {
        use ContactEvidence::*;
        let m = "13812345678";
        let m2 = "13912345678";
        let e = "zhang@x.cn";
        let e2 = "wei@y.cn";
        let l = "0571-88886666";
        let id1 = "110105194912310025";
        let id2 = "11010519491231002X";
        // (a: name, mobile, email, landline, id) (b: …) → score, evidence
        type Side5 = (
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
        );
        let table: Vec<(Side5, Side5, Option<u8>, Vec<ContactEvidence>)> = vec![
            // an ID number decides, whatever the names
            (
                ("张伟", "", "", "", id1),
                ("王芳", "", "", "", id1),
                Some(100),
                vec![SameIdNumber],
            ),
            // two ID numbers: two people, even with one mobile and one name
            (
                ("张伟", m, "", "", id1),
                ("张伟", m, "", "", id2),
                None,
                vec![],
            ),
            (
                ("张伟", m, "", "", ""),
                ("张伟", m, "", "", ""),
                Some(98),
                vec![SameMobile, SameName],
            ),
            (
                ("张伟", m, e, "", ""),
                ("张 伟", m, e, "", ""),
                Some(99),
                vec![SameMobile, SameEmail, SameName],
            ),
            (
                ("张伟", "", e, "", ""),
                ("张玮", "", "ZHANG@x.cn", "", ""),
                Some(92),
                vec![SameEmail, SoundAlikeName],
            ),
            (
                ("张伟", m, "", "", ""),
                ("李秘书", m, "", "", ""),
                Some(60),
                vec![SameMobile],
            ),
            (
                ("张伟", "", "", "", ""),
                ("张伟", "", "", "", ""),
                Some(80),
                vec![SameName],
            ),
            (
                ("张伟", "", "", l, ""),
                ("张伟", "", "", l, ""),
                Some(85),
                vec![SameName, SameLandline],
            ),
            // same name, another mobile: too close to call
            (
                ("张伟", m, "", "", ""),
                ("张伟", m2, "", "", ""),
                None,
                vec![],
            ),
            (
                ("张伟", "", e, "", ""),
                ("张伟", "", e2, "", ""),
                None,
                vec![],
            ),
            (
                ("张伟", "", "", l, ""),
                ("张玮", "", "", l, ""),
                Some(60),
                vec![SoundAlikeName, SameLandline],
            ),
            (
                ("张伟", "", "", "", ""),
                ("张玮", "", "", "", ""),
                None,
                vec![],
            ),
            // a switchboard number alone says nothing
            (
                ("张伟", "", "", l, ""),
                ("王芳", "", "", l, ""),
                None,
                vec![],
            ),
            (
                ("Li Ming", "", "", "", ""),
                ("li ming", "", "", "", ""),
                Some(80),
                vec![SameName],
            ),
            // Latin names differing in a letter do not "sound alike"
            (
                ("Li Ming", "", "", l, ""),
                ("Li Min", "", "", l, ""),
                None,
                vec![],
            ),
            // different lengths never sound alike (欧阳娜 / 欧娜)
            (
                ("欧阳娜", "", "", l, ""),
                ("欧娜", "", "", l, ""),
                None,
                vec![],
            ),
        ];
        for (i, (x, y, score, evidence)) in table.into_iter().enumerate() {
            let a = facts(1, x.0, x.1, x.2, x.3, x.4);
            let b = facts(2, y.0, y.1, y.2, y.3, y.4);
            let got = compare(&a, &b);
            assert_eq!(
                got.as_ref().map(|p| p.score),
                score,
                "row {i}: {x:?} / {y:?}"
            );
            if let Some(p) = got {
                assert_eq!(p.evidence, evidence, "row {i}");
                assert_eq!((p.a, p.b), (1, 2));
                // symmetric
                assert_eq!(compare(&b, &a).map(|q| q.score), Some(p.score), "row {i}");
            }
        }
    }

    #[test]
    fn pairs_of_a_customer_best_first() {
        let m = "13812345678";
        let contacts = [
            facts(7, "张伟", "", "", "", ""),
            facts(3, "王芳", m, "", "", ""),
            facts(9, "王芳", m, "", "", ""),
            facts(4, "张伟", "", "", "", ""),
            facts(5, "赵六", "", "", "", ""),
        ];
        let got: Vec<(i64, i64, u8)> = contact_pairs(&contacts)
            .iter()
            .map(|p| (p.a, p.b, p.score))
            .collect();
        assert_eq!(got, vec![(3, 9, 98), (4, 7, 80)]);
    }

    #[test]
    fn evidence_keys_round_trip() {
        for e in ContactEvidence::ALL {
            assert_eq!(ContactEvidence::parse(e.key()), Some(e));
        }
        assert_eq!(ContactEvidence::parse("nope"), None);
    }

    fn data(name: &str, mobile: Option<&str>, title: Option<&str>, primary: bool) -> ContactData {
        ContactData {
            name: name.into(),
            title: title.map(Into::into),
            decision_role: None,
            landline: None,
            mobile: mobile.map(Into::into),
            email: None,
            id_number: None,
            is_primary: primary,
            notes: None,
        }
    }

    #[test]
    fn survivorship_prefers_a_value_then_the_newer_record() {
        let a = data("张伟", Some("13812345678"), None, false);
        let b = data("张玮", Some("13912345678"), Some("采购经理"), true);
        let defaults: BTreeMap<&str, Side> = default_contact_choices(&a, &b, Side::B)
            .into_iter()
            .collect();
        assert_eq!(defaults["title"], Side::B, "only b has a title");
        assert_eq!(defaults["name"], Side::B, "both named: the newer");
        assert_eq!(defaults["notes"], Side::B, "neither: the newer (nothing)");
        let merged = merged_contact(&a, &b, &BTreeMap::new(), Side::B);
        assert_eq!(merged.name, "张玮");
        assert_eq!(merged.mobile.as_deref(), Some("13912345678"));
        assert_eq!(merged.title.as_deref(), Some("采购经理"));
        assert!(merged.is_primary, "primary when either was");
        let chosen: BTreeMap<String, Side> = [
            ("name".to_string(), Side::A),
            ("mobile".to_string(), Side::A),
        ]
        .into();
        let merged = merged_contact(&a, &b, &chosen, Side::B);
        assert_eq!(merged.name, "张伟");
        assert_eq!(merged.mobile.as_deref(), Some("13812345678"));
        // The older record newer: its values win ties.
        let merged = merged_contact(&a, &b, &BTreeMap::new(), Side::A);
        assert_eq!(merged.name, "张伟");
        assert_eq!(merged.title.as_deref(), Some("采购经理"), "a has none");
    }
}
