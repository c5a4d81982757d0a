//! Custom field definitions and the validation of their values.
//!
//! Values are kept as JSON: text/date/enum → string (dates ISO), number →
//! number, money → integer fen, multi-enum → array of strings, bool → bool.

use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use crate::money::Fen;
use crate::text::{clean, parse_text};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::LazyLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldGroup {
    /// 基础信息
    Basic,
    /// 合作信息
    Cooperation,
    /// 行为特征
    Behavior,
    /// 需求信息
    Needs,
}

impl FieldGroup {
    pub const ALL: [FieldGroup; 4] = [
        FieldGroup::Basic,
        FieldGroup::Cooperation,
        FieldGroup::Behavior,
        FieldGroup::Needs,
    ];
    pub fn key(self) -> &'static str {
        match self {
            FieldGroup::Basic => "basic",
            FieldGroup::Cooperation => "cooperation",
            FieldGroup::Behavior => "behavior",
            FieldGroup::Needs => "needs",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            FieldGroup::Basic => "基础信息",
            FieldGroup::Cooperation => "合作信息",
            FieldGroup::Behavior => "行为特征",
            FieldGroup::Needs => "需求信息",
        }
    }
    pub fn parse(s: &str) -> Result<FieldGroup, Reason> {
        FieldGroup::ALL
            .into_iter()
            .find(|g| g.key() == s || g.label_zh() == s)
            .ok_or_else(|| Reason::UnknownOption {
                allowed: FieldGroup::ALL
                    .iter()
                    .map(|g| g.key().to_string())
                    .collect(),
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Number,
    Money,
    Date,
    Enum,
    MultiEnum,
    Bool,
}

impl FieldKind {
    pub const ALL: [FieldKind; 7] = [
        FieldKind::Text,
        FieldKind::Number,
        FieldKind::Money,
        FieldKind::Date,
        FieldKind::Enum,
        FieldKind::MultiEnum,
        FieldKind::Bool,
    ];
    pub fn key(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Money => "money",
            FieldKind::Date => "date",
            FieldKind::Enum => "enum",
            FieldKind::MultiEnum => "multi_enum",
            FieldKind::Bool => "bool",
        }
    }
    pub fn label_zh(self) -> &'static str {
        match self {
            FieldKind::Text => "文本",
            FieldKind::Number => "数字",
            FieldKind::Money => "金额",
            FieldKind::Date => "日期",
            FieldKind::Enum => "单选",
            FieldKind::MultiEnum => "多选",
            FieldKind::Bool => "是/否",
        }
    }
    pub fn parse(s: &str) -> Result<FieldKind, Reason> {
        FieldKind::ALL
            .into_iter()
            .find(|k| k.key() == s)
            .ok_or_else(|| Reason::UnknownOption {
                allowed: FieldKind::ALL.iter().map(|k| k.key().to_string()).collect(),
            })
    }
}

/// Extra rules a value must meet, by kind: `pattern` and `max_length` for text,
/// `min`/`max` for numbers (money in fen, dates as YYYY-MM-DD).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_date: Option<String>,
    /// Set on a field holding personal information: its values are masked
    /// so (first and last characters kept), and the roles' field rights
    /// (`cf.KEY`, else `cf.*`) decide who sees and edits them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<crate::privacy::MaskPattern>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    pub key: String,
    pub label: String,
    pub group: FieldGroup,
    pub kind: FieldKind,
    pub required: bool,
    pub options: Vec<String>,
    pub rule: FieldRule,
    pub position: i64,
}

static KEY_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-z][a-z0-9_]{0,39}$").expect("key regex"));

/// Keys are interpolated into JSON paths in SQL, so they are restricted to a
/// safe alphabet here, once, and nowhere else.
pub fn parse_key(raw: &str) -> Result<String, Reason> {
    let k = raw.trim();
    if KEY_RE.is_match(k) {
        Ok(k.to_string())
    } else {
        Err(Reason::InvalidKey)
    }
}

const TEXT_MAX: usize = 500;

impl CustomFieldDef {
    /// Checks a definition as entered by an admin.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        errs.check("key", parse_key(&self.key));
        errs.check("label", parse_text(&self.label, 40));
        if matches!(self.kind, FieldKind::Enum | FieldKind::MultiEnum) {
            if self.options.is_empty() {
                errs.push("options", Reason::Required);
            }
            for o in &self.options {
                if let Err(r) = parse_text(o, 60) {
                    errs.push("options", r);
                    break;
                }
            }
            let mut seen = std::collections::HashSet::new();
            if self.options.iter().any(|o| !seen.insert(clean(o))) {
                errs.push("options", Reason::Duplicate);
            }
        }
        if let Some(p) = &self.rule.pattern {
            if regex::Regex::new(p).is_err() {
                errs.push(
                    "rule.pattern",
                    Reason::Other {
                        zh: "不是有效的正则表达式".into(),
                        en: "is not a valid regular expression".into(),
                    },
                );
            }
        }
        for (name, d) in [
            ("rule.min_date", &self.rule.min_date),
            ("rule.max_date", &self.rule.max_date),
        ] {
            if let Some(d) = d {
                errs.check(name, parse_date(d));
            }
        }
        if let Some(m) = &self.rule.mask {
            errs.check("rule.mask", m.check());
        }
        errs.into_result()
    }

    /// Whether the field holds personal information (it has a mask).
    pub fn personal(&self) -> Option<crate::privacy::MaskKind> {
        self.rule.mask.map(crate::privacy::MaskKind::Keep)
    }

    /// Validates a JSON value for this field; `Null` means "no value".
    pub fn parse_value(&self, value: &Value) -> Result<Value, Reason> {
        if value.is_null()
            || value.as_str().is_some_and(|s| clean(s).is_empty())
            || value.as_array().is_some_and(Vec::is_empty)
        {
            return if self.required {
                Err(Reason::Required)
            } else {
                Ok(Value::Null)
            };
        }
        let out = match self.kind {
            FieldKind::Text => {
                let s = value.as_str().ok_or(Reason::Other {
                    zh: "应为文本".into(),
                    en: "must be text".into(),
                })?;
                let max = self.rule.max_length.unwrap_or(TEXT_MAX).min(TEXT_MAX);
                let s = parse_text(s, max)?;
                // What looks sealed is read as sealed: never a typed value.
                if crate::keyring::sealed_key_id(&s).is_some() {
                    return Err(Reason::Other {
                        zh: format!(
                            "不能以 {} 开头（加密数据的标记）",
                            crate::keyring::SEALED_PREFIX
                        ),
                        en: format!(
                            "cannot start with {} (the mark of encrypted data)",
                            crate::keyring::SEALED_PREFIX
                        ),
                    });
                }
                if let Some(p) = &self.rule.pattern {
                    let re = regex::Regex::new(p)
                        .map_err(|_| Reason::PatternMismatch { pattern: p.clone() })?;
                    if !re.is_match(&s) {
                        return Err(Reason::PatternMismatch { pattern: p.clone() });
                    }
                }
                Value::String(s)
            }
            FieldKind::Number => {
                let n = match value {
                    Value::Number(n) => n.as_f64().ok_or(Reason::NumberFormat)?,
                    Value::String(s) => {
                        clean(s).parse::<f64>().map_err(|_| Reason::NumberFormat)?
                    }
                    _ => return Err(Reason::NumberFormat),
                };
                if !n.is_finite() {
                    return Err(Reason::NumberFormat);
                }
                self.check_range(n)?;
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .ok_or(Reason::NumberFormat)?
            }
            FieldKind::Money => {
                // JSON carries integer fen; forms carry 元 text.
                let fen = match value {
                    Value::Number(n) => Fen::new(n.as_i64().ok_or(Reason::AmountFormat)?)?,
                    Value::String(s) => Fen::parse_yuan(s)?,
                    _ => return Err(Reason::AmountFormat),
                };
                self.check_range(fen.get() as f64)?;
                Value::from(fen.get())
            }
            FieldKind::Date => {
                let s = value.as_str().ok_or(Reason::DateFormat)?;
                let d = parse_date(s)?.format("%Y-%m-%d").to_string();
                let too_early = self.rule.min_date.as_ref().is_some_and(|m| d < *m);
                let too_late = self.rule.max_date.as_ref().is_some_and(|m| d > *m);
                if too_early || too_late {
                    return Err(Reason::OutOfRange {
                        min: self.rule.min_date.clone(),
                        max: self.rule.max_date.clone(),
                    });
                }
                Value::String(d)
            }
            FieldKind::Enum => {
                let s = value.as_str().ok_or_else(|| self.unknown_option())?;
                Value::String(self.option(s)?)
            }
            FieldKind::MultiEnum => {
                let items: Vec<String> = match value {
                    Value::Array(a) => a
                        .iter()
                        .map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .ok_or_else(|| self.unknown_option())
                        })
                        .collect::<Result<_, _>>()?,
                    Value::String(s) => s
                        .split([',', '，', '、', ';'])
                        .map(str::to_string)
                        .filter(|x| !clean(x).is_empty())
                        .collect(),
                    _ => return Err(self.unknown_option()),
                };
                let mut out: Vec<String> = Vec::new();
                for item in items {
                    let o = self.option(&item)?;
                    if !out.contains(&o) {
                        out.push(o);
                    }
                }
                Value::Array(out.into_iter().map(Value::String).collect())
            }
            FieldKind::Bool => match value {
                Value::Bool(b) => Value::Bool(*b),
                Value::String(s) => match clean(s).to_lowercase().as_str() {
                    "true" | "1" | "yes" | "y" | "是" | "on" => Value::Bool(true),
                    "false" | "0" | "no" | "n" | "否" | "off" => Value::Bool(false),
                    _ => return Err(Reason::BoolFormat),
                },
                _ => return Err(Reason::BoolFormat),
            },
        };
        Ok(out)
    }

    fn check_range(&self, n: f64) -> Result<(), Reason> {
        let below = self.rule.min.is_some_and(|m| n < m);
        let above = self.rule.max.is_some_and(|m| n > m);
        if below || above {
            Err(Reason::OutOfRange {
                min: self.rule.min.map(|m| m.to_string()),
                max: self.rule.max.map(|m| m.to_string()),
            })
        } else {
            Ok(())
        }
    }

    fn option(&self, raw: &str) -> Result<String, Reason> {
        let s = clean(raw);
        self.options
            .iter()
            .find(|o| clean(o) == s)
            .cloned()
            .ok_or_else(|| self.unknown_option())
    }

    fn unknown_option(&self) -> Reason {
        Reason::UnknownOption {
            allowed: self.options.clone(),
        }
    }
}

/// Validates every custom value of a record against the definitions.
/// Unknown keys are refused; missing required fields are reported.
/// Errors are named `custom_fields.KEY`.
pub fn validate_custom_values(
    defs: &[CustomFieldDef],
    input: &Map<String, Value>,
) -> Result<Map<String, Value>, ValidationErrors> {
    let (values, errs) = check_custom_values(defs, input);
    errs.into_result().map(|()| values)
}

/// The valid values and the errors of the others (both: an import keeps
/// the values it can when a required one is missing).
pub fn check_custom_values(
    defs: &[CustomFieldDef],
    input: &Map<String, Value>,
) -> (Map<String, Value>, ValidationErrors) {
    let mut errs = ValidationErrors::default();
    let mut out = Map::new();
    for key in input.keys() {
        if !defs.iter().any(|d| &d.key == key) {
            errs.push(format!("custom_fields.{key}"), Reason::UnknownField);
        }
    }
    for def in defs {
        let value = input.get(&def.key).unwrap_or(&Value::Null);
        match def.parse_value(value) {
            Ok(Value::Null) => {}
            Ok(v) => {
                out.insert(def.key.clone(), v);
            }
            Err(r) => errs.push(format!("custom_fields.{}", def.key), r),
        }
    }
    (out, errs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn text_that_looks_sealed_is_refused() {
        let def = CustomFieldDef {
            key: "note".into(),
            label: "备注".into(),
            group: FieldGroup::Basic,
            kind: FieldKind::Text,
            required: false,
            options: vec![],
            rule: FieldRule::default(),
            position: 1,
        };
        assert!(def
            .parse_value(&Value::from("enc1:0123456789ab:AAAA"))
            .is_err());
        assert_eq!(
            def.parse_value(&Value::from("enc1 is a word")),
            Ok(Value::from("enc1 is a word"))
        );
    }

    use super::*;
    use serde_json::json;

    fn def(kind: FieldKind) -> CustomFieldDef {
        CustomFieldDef {
            key: "f".into(),
            label: "字段".into(),
            group: FieldGroup::Basic,
            kind,
            required: false,
            options: vec!["华为".into(), "阿里".into()],
            rule: FieldRule::default(),
            position: 0,
        }
    }

    #[test]
    fn values_table() {
        let ranged = CustomFieldDef {
            rule: FieldRule {
                min: Some(0.0),
                max: Some(100.0),
                ..Default::default()
            },
            ..def(FieldKind::Number)
        };
        let patterned = CustomFieldDef {
            rule: FieldRule {
                pattern: Some(r"^PO-\d+$".into()),
                ..Default::default()
            },
            ..def(FieldKind::Text)
        };
        let required = CustomFieldDef {
            required: true,
            ..def(FieldKind::Text)
        };
        let cases: Vec<(&CustomFieldDef, Value, Result<Value, &str>)> = vec![
            (&ranged, json!(42), Ok(json!(42.0))),
            (&ranged, json!("７"), Ok(json!(7.0))),
            (&ranged, json!(101), Err("out_of_range")),
            (&ranged, json!("abc"), Err("number_format")),
            (&patterned, json!("PO-123"), Ok(json!("PO-123"))),
            (&patterned, json!("123"), Err("pattern_mismatch")),
            (&required, json!(null), Err("required")),
            (&required, json!("  "), Err("required")),
        ];
        let money = def(FieldKind::Money);
        let date = def(FieldKind::Date);
        let en = def(FieldKind::Enum);
        let multi = def(FieldKind::MultiEnum);
        let boolean = def(FieldKind::Bool);
        let more: Vec<(&CustomFieldDef, Value, Result<Value, &str>)> = vec![
            (&money, json!(12345), Ok(json!(12345))),
            (&money, json!("123.45"), Ok(json!(12345))),
            (&money, json!(-1), Err("amount_negative")),
            (&money, json!(1.5), Err("amount_format")),
            (&date, json!("2024/3/12"), Ok(json!("2024-03-12"))),
            (&date, json!("2024-02-30"), Err("date_format")),
            (&en, json!("华为"), Ok(json!("华为"))),
            (&en, json!("腾讯"), Err("unknown_option")),
            (&multi, json!("华为，阿里"), Ok(json!(["华为", "阿里"]))),
            (&multi, json!(["阿里", "阿里"]), Ok(json!(["阿里"]))),
            (&multi, json!(["百度"]), Err("unknown_option")),
            (&boolean, json!("是"), Ok(json!(true))),
            (&boolean, json!(false), Ok(json!(false))),
            (&boolean, json!("maybe"), Err("bool_format")),
            (&en, json!(null), Ok(json!(null))),
        ];
        for (d, input, want) in cases.into_iter().chain(more) {
            let got = d.parse_value(&input).map_err(|r| r.code());
            assert_eq!(got, want, "kind {:?} input {input}", d.kind);
        }
    }

    #[test]
    fn unknown_and_missing_keys() {
        let defs = vec![CustomFieldDef {
            key: "need".into(),
            required: true,
            ..def(FieldKind::Text)
        }];
        let mut input = Map::new();
        input.insert("nope".into(), json!("x"));
        let errs = validate_custom_values(&defs, &input).expect_err("must refuse");
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["custom_fields.nope", "custom_fields.need"]);
    }

    #[test]
    fn definition_checks() {
        assert!(def(FieldKind::Enum).validate().is_ok());
        let bad = CustomFieldDef {
            key: "Bad Key".into(),
            options: vec![],
            ..def(FieldKind::Enum)
        };
        let errs = bad.validate().expect_err("must refuse");
        assert!(errs.for_field("key").is_some());
        assert!(errs.for_field("options").is_some());
        assert_eq!(parse_key("x'; drop table"), Err(Reason::InvalidKey));
    }
}
