//! The preset schemes of design.md, exactly as our users' templates define
//! them, in the same JSON people edit (`presets.json`), and the custom
//! fields some of them read.

use super::scheme::{Catalog, Scheme};
use super::spec::SchemeSpec;
use crate::custom_field::{CustomFieldDef, FieldGroup, FieldKind, FieldRule};
use crate::ValidationErrors;
use std::collections::BTreeMap;
use std::sync::LazyLock;

const PRESETS_JSON: &str = include_str!("presets.json");

/// The preset scheme keys, in the order of design.md's "Contract for scripts".
pub const PRESET_KEYS: &[&str] = &[
    "value_tier",
    "key_account",
    "rfm",
    "abcd",
    "intent",
    "lifecycle",
    "value_percentile",
    "behavior",
    "industry_size",
    "need_type",
];

/// Parsed once: pages and runs read the presets often.
static PRESETS: LazyLock<Vec<SchemeSpec>> = LazyLock::new(|| {
    // Compiled into the binary and parsed by the tests: cannot fail at run time.
    serde_json::from_str(PRESETS_JSON).expect("presets.json is a list of valid schemes")
});

/// The preset schemes, in the order of [`PRESET_KEYS`].
pub fn preset_specs() -> &'static [SchemeSpec] {
    &PRESETS
}

/// Custom fields the presets read: 意向阶段 (intent funnel), 预计成交日期
/// (ABCD), 需求类型 (need type). Created with the presets.
pub fn preset_custom_fields() -> Vec<CustomFieldDef> {
    let def = |key: &str, label: &str, group, kind, options: &[&str], position| CustomFieldDef {
        key: key.into(),
        label: label.into(),
        group,
        kind,
        required: false,
        options: options.iter().map(|s| s.to_string()).collect(),
        rule: FieldRule::default(),
        position,
    };
    vec![
        def(
            "intent_stage",
            "意向阶段",
            FieldGroup::Needs,
            FieldKind::Enum,
            &["潜在", "目标", "意向", "大希望", "成交", "劣质", "无效"],
            900,
        ),
        def(
            "expected_close_on",
            "预计成交日期",
            FieldGroup::Cooperation,
            FieldKind::Date,
            &[],
            901,
        ),
        def(
            "need_type",
            "需求类型",
            FieldGroup::Needs,
            FieldKind::Enum,
            &["产品采购型", "服务咨询型", "合作开发型"],
            902,
        ),
    ]
}

/// Class keys by scheme key: what `scheme.KEY = …` conditions may name.
pub fn class_catalog(specs: &[SchemeSpec]) -> BTreeMap<String, Vec<String>> {
    specs
        .iter()
        .map(|s| {
            (
                s.key.clone(),
                s.classes.iter().map(|c| c.key.clone()).collect(),
            )
        })
        .collect()
}

/// The presets compiled against a database's custom fields; on failure, the
/// key of the first scheme that does not compile and why.
pub fn compile_presets(
    custom_fields: &[CustomFieldDef],
) -> Result<Vec<Scheme>, (String, ValidationErrors)> {
    let specs = preset_specs();
    let classes = class_catalog(specs);
    specs
        .iter()
        .map(|s| {
            Scheme::compile(
                s,
                Catalog {
                    custom_fields,
                    schemes: Some(&classes),
                },
            )
            .map_err(|e| (s.key.clone(), e))
        })
        .collect()
}
