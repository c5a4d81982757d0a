//! Which column of an imported file feeds which field: the targets of each
//! import kind, suggestions from header names (Chinese or English, with or
//! without units and brackets), and saved mappings checked before use.
//! Our users' templates (design.md, "Contract for scripts") map with no
//! mapping file at all.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Customers,
    Contacts,
    Orders,
    Interactions,
}

impl ImportKind {
    pub const ALL: [ImportKind; 4] = [
        ImportKind::Customers,
        ImportKind::Contacts,
        ImportKind::Orders,
        ImportKind::Interactions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImportKind::Customers => "customers",
            ImportKind::Contacts => "contacts",
            ImportKind::Orders => "orders",
            ImportKind::Interactions => "interactions",
        }
    }

    pub fn parse(s: &str) -> Option<ImportKind> {
        ImportKind::ALL.into_iter().find(|k| k.name() == s)
    }

    pub fn targets(self) -> &'static [Target] {
        match self {
            ImportKind::Customers => CUSTOMER_TARGETS,
            ImportKind::Contacts => CONTACT_TARGETS,
            ImportKind::Orders => ORDER_TARGETS,
            ImportKind::Interactions => INTERACTION_TARGETS,
        }
    }

    pub fn target(self, key: &str) -> Option<&'static Target> {
        self.targets().iter().find(|t| t.key == key)
    }
}

/// How a cell's text is read for a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// As written.
    Text,
    /// An amount in 元 (yuan) → fen.
    Yuan,
    /// An amount in 万元 (ten thousand yuan) → fen.
    WanYuan,
}

/// A field that a column can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The field's key in the API (`name`, `declared_annual_purchase_fen`, `contact.mobile`, …).
    pub key: &'static str,
    /// The template's own header, first; then other names people use.
    pub headers: &'static [&'static str],
    pub unit: Unit,
    /// A row without it cannot create a record at all.
    pub required: bool,
}

const fn t(
    key: &'static str,
    headers: &'static [&'static str],
    unit: Unit,
    required: bool,
) -> Target {
    Target {
        key,
        headers,
        unit,
        required,
    }
}

/// The customer a contact, order or interaction belongs to.
const CUSTOMER_CODE: Target = t(
    "customer_code",
    &["客户编号", "客户代码", "customer code", "customer id"],
    Unit::Text,
    true,
);
const NOTES: Target = t(
    "notes",
    &["备注", "说明", "notes", "remarks", "comment"],
    Unit::Text,
    false,
);
const LANDLINE_NAMES: &[&str] = &[
    "座机",
    "固定电话",
    "电话",
    "landline",
    "telephone",
    "phone",
    "tel",
];
const MOBILE_NAMES: &[&str] = &[
    "手机",
    "手机号",
    "手机号码",
    "移动电话",
    "mobile",
    "cell",
    "cellphone",
];
const EMAIL_NAMES: &[&str] = &["邮箱", "电子邮箱", "电子邮件", "email", "e-mail", "mail"];
const TITLE_NAMES: &[&str] = &["职务", "职位", "title", "position", "job title"];

#[rustfmt::skip]
const CUSTOMER_TARGETS: &[Target] = &[
    t("code", &["客户编号", "客户代码", "编号", "customer code", "customer id", "code"], Unit::Text, false),
    t("name", &["客户名称", "公司名称", "企业名称", "单位名称", "客户", "公司", "customer name", "company name", "company", "name"], Unit::Text, true),
    t("uscc", &["统一社会信用代码", "信用代码", "社会信用代码", "uscc", "credit code", "unified social credit code"], Unit::Text, false),
    t("industry", &["所属行业", "行业", "industry"], Unit::Text, false),
    t("employees", &["企业规模(员工数)", "企业规模", "员工数", "员工人数", "人数", "employees", "staff", "headcount", "company size"], Unit::Text, false),
    t("sales_region", &["区域", "销售区域", "大区", "region", "sales region"], Unit::Text, false),
    t("province", &["省份", "省", "province"], Unit::Text, false),
    t("city", &["城市", "市", "city"], Unit::Text, false),
    t("address", &["地址", "详细地址", "公司地址", "address"], Unit::Text, false),
    t("cooperation_start_on", &["合作起始时间", "合作开始时间", "合作起始日期", "合作时间", "cooperation start", "customer since", "since"], Unit::Text, false),
    t("declared_annual_purchase_fen", &["年采购额(万元)", "年采购额", "年采购金额", "annual purchase", "annual purchases"], Unit::WanYuan, false),
    t("product_types", &["核心产品类型", "产品类型", "主营产品", "product types", "products"], Unit::Text, false),
    t("source_channel", &["客户来源", "来源", "来源渠道", "source", "channel", "lead source"], Unit::Text, false),
    t("status", &["客户状态", "状态", "合作状态", "customer status", "status"], Unit::Text, false),
    NOTES,
    t("contact.name", &["联系人", "联系人姓名", "contact", "contact name"], Unit::Text, false),
    t("contact.title", TITLE_NAMES, Unit::Text, false),
    t("contact.landline", LANDLINE_NAMES, Unit::Text, false),
    t("contact.mobile", MOBILE_NAMES, Unit::Text, false),
    t("contact.email", EMAIL_NAMES, Unit::Text, false),
];

#[rustfmt::skip]
const CONTACT_TARGETS: &[Target] = &[
    CUSTOMER_CODE,
    t("name", &["联系人", "姓名", "联系人姓名", "name", "contact name"], Unit::Text, true),
    t("title", TITLE_NAMES, Unit::Text, false),
    t("decision_role", &["决策角色", "角色", "decision role", "role"], Unit::Text, false),
    t("landline", LANDLINE_NAMES, Unit::Text, false),
    t("mobile", MOBILE_NAMES, Unit::Text, false),
    t("email", EMAIL_NAMES, Unit::Text, false),
    NOTES,
];

#[rustfmt::skip]
const ORDER_TARGETS: &[Target] = &[
    CUSTOMER_CODE,
    t("order_no", &["订单编号", "订单号", "单号", "order no", "order number", "order id"], Unit::Text, false),
    t("ordered_on", &["下单日期", "订单日期", "日期", "order date", "date"], Unit::Text, true),
    t("amount_fen", &["金额(元)", "金额", "订单金额", "amount", "order amount", "total"], Unit::Yuan, true),
    t("product_line", &["产品线", "产品", "product line", "product"], Unit::Text, false),
    NOTES,
];

#[rustfmt::skip]
const INTERACTION_TARGETS: &[Target] = &[
    CUSTOMER_CODE,
    t("occurred_on", &["日期", "跟进日期", "互动日期", "date"], Unit::Text, true),
    t("kind", &["类型", "互动类型", "跟进方式", "type", "kind"], Unit::Text, true),
    t("summary", &["摘要", "内容", "跟进内容", "summary", "content"], Unit::Text, true),
    t("severity", &["严重程度", "severity"], Unit::Text, false),
    t("status", &["状态", "status"], Unit::Text, false),
    t("satisfaction", &["满意度", "satisfaction"], Unit::Text, false),
];

/// A header reduced for comparison: width, case, spaces, brackets and what
/// they hold (units such as (元) or (万元)), `_` and `-` gone.
pub fn normalize_header(h: &str) -> String {
    let half = crate::text::to_half_width(h).to_lowercase();
    let mut out = String::with_capacity(half.len());
    let mut depth = 0usize;
    for c in half.chars() {
        match c {
            '(' | '[' | '（' | '【' => depth += 1,
            ')' | ']' | '）' | '】' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            c if c.is_whitespace() || c == '_' || c == '-' || c == '*' || c == ':' => {}
            c => out.push(c),
        }
    }
    out
}

/// How sure a suggestion is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Only alike (a typo, a word more): confirm it.
    Similar,
    /// A known name of the field, up to width, case, brackets and units.
    Known,
    /// The template's own header, exactly.
    Exact,
}

/// One column's proposed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    pub column: usize,
    pub header: String,
    pub target: &'static str,
    pub confidence: Confidence,
}

fn match_header(header: &str, target: &Target) -> Option<Confidence> {
    let trimmed = header.trim();
    if target.headers.first() == Some(&trimmed) {
        return Some(Confidence::Exact);
    }
    let h = normalize_header(trimmed);
    if h.is_empty() {
        return None;
    }
    if target
        .headers
        .iter()
        .any(|name| normalize_header(name) == h)
    {
        return Some(Confidence::Known);
    }
    let hc: Vec<char> = h.chars().collect();
    let close = target.headers.iter().any(|name| {
        let n: Vec<char> = normalize_header(name).chars().collect();
        // Short names are too easily alike (市 / 省); compare longer ones only.
        n.len() >= 4 && crate::dedupe::similarity::jaro_winkler(&hc, &n) >= 0.9
    });
    close.then_some(Confidence::Similar)
}

/// A field for each column that has one, each field at most once (the
/// surest column wins; ties go to the first column).
pub fn suggest(kind: ImportKind, headers: &[String]) -> Vec<Suggestion> {
    let mut candidates: Vec<(Confidence, usize, &'static Target)> = Vec::new();
    for (column, header) in headers.iter().enumerate() {
        for target in kind.targets() {
            if let Some(c) = match_header(header, target) {
                candidates.push((c, column, target));
            }
        }
    }
    // Surest first; then by column, then by the target's order (its own names first).
    candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut taken_columns = std::collections::BTreeSet::new();
    let mut taken_targets = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (confidence, column, target) in candidates {
        if taken_columns.contains(&column) || taken_targets.contains(target.key) {
            continue;
        }
        taken_columns.insert(column);
        taken_targets.insert(target.key);
        out.push(Suggestion {
            column,
            header: headers[column].clone(),
            target: target.key,
            confidence,
        });
    }
    out.sort_by_key(|s| s.column);
    out
}

/// A saved mapping (a `--mapping` file): header → target key. A header
/// mapped to `null` (or absent) is not imported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappingFile {
    pub kind: Option<ImportKind>,
    pub columns: BTreeMap<String, Option<String>>,
}

/// Why a mapping cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("映射文件用于 {file}，不是 {import} / the mapping is for {file}, not {import}")]
    WrongKind {
        file: &'static str,
        import: &'static str,
    },
    #[error("列“{header}”映射到未知字段“{target}” / column {header:?} maps to unknown field {target:?}; fields: {known}")]
    UnknownTarget {
        header: String,
        target: String,
        known: String,
    },
    #[error("字段“{target}”被映射了两次（“{first}”和“{second}”） / field {target:?} is mapped twice ({first:?} and {second:?})")]
    TargetTwice {
        target: String,
        first: String,
        second: String,
    },
    #[error(
        "文件中没有映射里的列“{header}” / the file has no column {header:?} named in the mapping"
    )]
    MissingColumn { header: String },
    #[error("缺少必需字段 {missing} 的列 / no column for the required field(s) {missing}; columns: {headers}")]
    MissingRequired { missing: String, headers: String },
}

impl MappingError {
    /// The refusal as a field reason, in both languages (each message is
    /// written "Chinese / English").
    pub fn reason(&self) -> crate::Reason {
        let text = self.to_string();
        let (zh, en) = text.split_once(" / ").unwrap_or((&text, &text));
        crate::Reason::Other {
            zh: zh.to_string(),
            en: en.to_string(),
        }
    }
}

/// Column → target for a file: from a mapping file when given, otherwise
/// from the suggestions (Exact and Known ones only: a Similar guess is not
/// imported without someone confirming it).
pub fn resolve(
    kind: ImportKind,
    headers: &[String],
    mapping: Option<&MappingFile>,
) -> Result<Vec<(usize, &'static Target)>, MappingError> {
    let mut chosen: Vec<(usize, &'static Target)> = Vec::new();
    match mapping {
        Some(m) => {
            if let Some(file_kind) = m.kind {
                if file_kind != kind {
                    return Err(MappingError::WrongKind {
                        file: file_kind.name(),
                        import: kind.name(),
                    });
                }
            }
            for (header, target) in &m.columns {
                let Some(target_key) = target else { continue };
                if target_key.starts_with(CUSTOM_PREFIX) {
                    // Custom fields: see `custom_columns`.
                    continue;
                }
                let target =
                    kind.target(target_key)
                        .ok_or_else(|| MappingError::UnknownTarget {
                            header: header.clone(),
                            target: target_key.clone(),
                            known: kind
                                .targets()
                                .iter()
                                .map(|t| t.key)
                                .collect::<Vec<_>>()
                                .join(", "),
                        })?;
                let column = headers
                    .iter()
                    .position(|h| h.trim() == header.trim())
                    .ok_or_else(|| MappingError::MissingColumn {
                        header: header.clone(),
                    })?;
                if let Some((other, _)) = chosen.iter().find(|(_, t)| t.key == target.key) {
                    return Err(MappingError::TargetTwice {
                        target: target.key.to_string(),
                        first: headers[*other].clone(),
                        second: header.clone(),
                    });
                }
                chosen.push((column, target));
            }
        }
        None => {
            for s in suggest(kind, headers) {
                if s.confidence >= Confidence::Known {
                    chosen.push((
                        s.column,
                        kind.target(s.target).expect("suggested from targets"),
                    ));
                }
            }
        }
    }
    let missing: Vec<&str> = kind
        .targets()
        .iter()
        .filter(|t| t.required && !chosen.iter().any(|(_, c)| c.key == t.key))
        .map(|t| t.headers[0])
        .collect();
    if !missing.is_empty() {
        return Err(MappingError::MissingRequired {
            missing: missing.join(", "),
            headers: headers.join(", "),
        });
    }
    chosen.sort_by_key(|(c, _)| *c);
    Ok(chosen)
}

/// A mapping's target for a custom field: `cf.KEY`.
pub const CUSTOM_PREFIX: &str = "cf.";

/// The columns that feed custom fields (`fields`: each field's key and
/// label): those a mapping sends to `cf.KEY`, or, without a mapping, those
/// not `taken` by a built-in field whose header is a field's label, its
/// key or `cf.KEY` (up to width, case and brackets).
pub fn custom_columns(
    headers: &[String],
    mapping: Option<&MappingFile>,
    fields: &[(&str, &str)],
    taken: &[usize],
) -> Result<Vec<(usize, String)>, MappingError> {
    let mut out: Vec<(usize, String)> = Vec::new();
    match mapping {
        Some(m) => {
            for (header, target) in &m.columns {
                let Some(key) = target
                    .as_deref()
                    .and_then(|t| t.strip_prefix(CUSTOM_PREFIX))
                else {
                    continue;
                };
                if !fields.iter().any(|(k, _)| *k == key) {
                    return Err(MappingError::UnknownTarget {
                        header: header.clone(),
                        target: format!("{CUSTOM_PREFIX}{key}"),
                        known: fields
                            .iter()
                            .map(|(k, _)| format!("{CUSTOM_PREFIX}{k}"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                let column = headers
                    .iter()
                    .position(|h| h.trim() == header.trim())
                    .ok_or_else(|| MappingError::MissingColumn {
                        header: header.clone(),
                    })?;
                if let Some((other, _)) = out.iter().find(|(_, k)| k == key) {
                    return Err(MappingError::TargetTwice {
                        target: format!("{CUSTOM_PREFIX}{key}"),
                        first: headers[*other].clone(),
                        second: header.clone(),
                    });
                }
                out.push((column, key.to_string()));
            }
        }
        None => {
            for (column, header) in headers.iter().enumerate() {
                if taken.contains(&column) {
                    continue;
                }
                let h = normalize_header(header);
                let field = fields.iter().find(|(key, label)| {
                    h == normalize_header(label)
                        || h == *key
                        || h == normalize_header(&format!("{CUSTOM_PREFIX}{key}"))
                });
                if let Some((key, _)) = field {
                    if !out.iter().any(|(_, k)| k == key) {
                        out.push((column, key.to_string()));
                    }
                }
            }
        }
    }
    out.sort_by_key(|(c, _)| *c);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    fn keys(chosen: &[(usize, &Target)]) -> Vec<&'static str> {
        chosen.iter().map(|(_, t)| t.key).collect()
    }

    #[test]
    fn the_templates_map_with_no_mapping_file() {
        let cases: [(ImportKind, &[&str], &[&str]); 4] = [
            (
                ImportKind::Customers,
                &[
                    "客户编号",
                    "客户名称",
                    "所属行业",
                    "企业规模(员工数)",
                    "联系人",
                    "职务",
                    "座机",
                    "合作起始时间",
                    "年采购额(万元)",
                    "核心产品类型",
                    "统一社会信用代码",
                    "区域",
                    "手机",
                    "邮箱",
                ],
                &[
                    "code",
                    "name",
                    "industry",
                    "employees",
                    "contact.name",
                    "contact.title",
                    "contact.landline",
                    "cooperation_start_on",
                    "declared_annual_purchase_fen",
                    "product_types",
                    "uscc",
                    "sales_region",
                    "contact.mobile",
                    "contact.email",
                ],
            ),
            (
                ImportKind::Orders,
                &["客户编号", "下单日期", "金额(元)", "产品线"],
                &["customer_code", "ordered_on", "amount_fen", "product_line"],
            ),
            (
                ImportKind::Interactions,
                &["客户编号", "日期", "类型", "摘要"],
                &["customer_code", "occurred_on", "kind", "summary"],
            ),
            (
                ImportKind::Contacts,
                &["客户编号", "联系人", "手机"],
                &["customer_code", "name", "mobile"],
            ),
        ];
        for (kind, h, want) in cases {
            let chosen = resolve(kind, &headers(h), None).expect("maps");
            assert_eq!(keys(&chosen), want, "{kind:?}");
        }
    }

    #[test]
    fn english_full_width_and_unit_variants_are_known() {
        let h = headers(&[
            "Customer Name",
            "ＵＳＣＣ",
            "年采购额（万元）",
            "E-mail",
            "Mobile",
            "Industry ",
            "客户 编号",
        ]);
        let got: Vec<(&str, Confidence)> = suggest(ImportKind::Customers, &h)
            .iter()
            .map(|s| (s.target, s.confidence))
            .collect();
        assert_eq!(
            got,
            [
                ("name", Confidence::Known),
                ("uscc", Confidence::Known),
                ("declared_annual_purchase_fen", Confidence::Known),
                ("contact.email", Confidence::Known),
                ("contact.mobile", Confidence::Known),
                ("industry", Confidence::Known),
                ("code", Confidence::Known),
            ]
        );
    }

    #[test]
    fn similar_headers_are_suggested_but_not_imported_unconfirmed() {
        let h = headers(&["客户名称", "统一社会信用代码号"]);
        let s = suggest(ImportKind::Customers, &h);
        assert_eq!(s[1].target, "uscc");
        assert_eq!(s[1].confidence, Confidence::Similar);
        let chosen = resolve(ImportKind::Customers, &h, None).expect("name is enough");
        assert_eq!(keys(&chosen), ["name"]);
    }

    #[test]
    fn each_field_is_fed_by_one_column() {
        // 电话 is a known name of the landline; 座机 (its template name) wins.
        let h = headers(&["客户名称", "电话", "座机"]);
        let s = suggest(ImportKind::Customers, &h);
        let landline: Vec<&Suggestion> = s
            .iter()
            .filter(|s| s.target == "contact.landline")
            .collect();
        assert_eq!(landline.len(), 1);
        assert_eq!(landline[0].header, "座机");
    }

    #[test]
    fn bad_mappings_are_refused_with_the_reason() {
        let h = headers(&["公司", "日期"]);
        let mapping = |pairs: &[(&str, Option<&str>)], kind| MappingFile {
            kind,
            columns: pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
                .collect(),
        };
        let cases = [
            (
                mapping(&[("公司", Some("name"))], Some(ImportKind::Orders)),
                "not customers",
            ),
            (
                mapping(&[("公司", Some("nom"))], None),
                "unknown field \"nom\"",
            ),
            (
                mapping(&[("公司", Some("name")), ("日期", Some("name"))], None),
                "mapped twice",
            ),
            (
                mapping(&[("公司", Some("name")), ("城市", Some("city"))], None),
                "no column \"城市\"",
            ),
            (
                mapping(
                    &[("公司", None), ("日期", Some("cooperation_start_on"))],
                    None,
                ),
                "客户名称",
            ),
        ];
        for (m, says) in cases {
            let err = resolve(ImportKind::Customers, &h, Some(&m))
                .expect_err("refused")
                .to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
        let ok = resolve(
            ImportKind::Customers,
            &h,
            Some(&mapping(&[("公司", Some("name"))], None)),
        )
        .unwrap();
        assert_eq!(keys(&ok), ["name"]);
    }

    #[test]
    fn custom_fields_are_found_by_label_or_mapped_by_key() {
        let fields = [("budget", "预算(万元)"), ("intent_stage", "意向阶段")];
        let h = headers(&["客户名称", "预算（万元）", "意向阶段", "备注"]);
        let chosen = resolve(ImportKind::Customers, &h, None).expect("maps");
        let taken: Vec<usize> = chosen.iter().map(|(c, _)| *c).collect();
        let custom = custom_columns(&h, None, &fields, &taken).expect("custom");
        assert_eq!(
            custom,
            [(1, "budget".to_string()), (2, "intent_stage".to_string())]
        );
        let mapping = MappingFile {
            kind: None,
            columns: [
                ("客户名称".to_string(), Some("name".to_string())),
                ("备注".to_string(), Some("cf.intent_stage".to_string())),
            ]
            .into_iter()
            .collect(),
        };
        assert!(resolve(ImportKind::Customers, &h, Some(&mapping)).is_ok());
        let custom = custom_columns(&h, Some(&mapping), &fields, &[]).expect("custom");
        assert_eq!(custom, [(3, "intent_stage".to_string())]);
        let unknown = MappingFile {
            columns: [("备注".to_string(), Some("cf.nope".to_string()))]
                .into_iter()
                .collect(),
            ..mapping
        };
        let err = custom_columns(&h, Some(&unknown), &fields, &[]).unwrap_err();
        assert!(err.to_string().contains("cf.budget"), "{err}");
    }

    #[test]
    fn a_file_for_another_kind_is_refused() {
        let err = resolve(
            ImportKind::Orders,
            &headers(&["客户名称", "所属行业"]),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, MappingError::MissingRequired { .. }));
        assert!(err.to_string().contains("客户编号"), "{err}");
    }
}
