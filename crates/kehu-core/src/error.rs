//! Field-level validation errors, localized in Chinese and English.
//!
//! Every refusal names the field and the reason; the server turns a
//! [`ValidationErrors`] into problem+json or into inline form errors.

use std::fmt;

/// UI / error language. Chinese is the default everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// Picks the first supported language of an `Accept-Language` header value.
    pub fn from_accept_language(header: &str) -> Lang {
        for part in header.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("zh") {
                return Lang::Zh;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Zh
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    Required,
    TooLong {
        max: usize,
    },
    ControlCharacters,
    UsccFormat,
    UsccCheck {
        expected: char,
    },
    IdNumberFormat,
    IdNumberBirthDate,
    IdNumberCheck {
        expected: char,
    },
    MobileFormat,
    LandlineFormat,
    PhoneFormat,
    EmailFormat,
    DateFormat,
    DateOutOfRange,
    AmountFormat,
    AmountNegative,
    AmountTooLarge,
    NumberFormat,
    IntegerFormat,
    BoolFormat,
    OutOfRange {
        min: Option<String>,
        max: Option<String>,
    },
    UnknownOption {
        allowed: Vec<String>,
    },
    PatternMismatch {
        pattern: String,
    },
    UnknownField,
    Immutable,
    /// The caller's role may see this personal field but not change it.
    NotEditable,
    InvalidKey,
    Duplicate,
    Other {
        zh: String,
        en: String,
    },
    /// A problem in a rule definition (classification scheme, condition):
    /// a stable code for scripts and the explanation in both languages.
    Rule {
        code: &'static str,
        zh: String,
        en: String,
    },
}

impl Reason {
    /// Stable machine-readable code, for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Required => "required",
            Reason::TooLong { .. } => "too_long",
            Reason::ControlCharacters => "control_characters",
            Reason::UsccFormat => "uscc_format",
            Reason::UsccCheck { .. } => "uscc_check",
            Reason::IdNumberFormat => "id_number_format",
            Reason::IdNumberBirthDate => "id_number_birth_date",
            Reason::IdNumberCheck { .. } => "id_number_check",
            Reason::MobileFormat => "mobile_format",
            Reason::LandlineFormat => "landline_format",
            Reason::PhoneFormat => "phone_format",
            Reason::EmailFormat => "email_format",
            Reason::DateFormat => "date_format",
            Reason::DateOutOfRange => "date_out_of_range",
            Reason::AmountFormat => "amount_format",
            Reason::AmountNegative => "amount_negative",
            Reason::AmountTooLarge => "amount_too_large",
            Reason::NumberFormat => "number_format",
            Reason::IntegerFormat => "integer_format",
            Reason::BoolFormat => "bool_format",
            Reason::OutOfRange { .. } => "out_of_range",
            Reason::UnknownOption { .. } => "unknown_option",
            Reason::PatternMismatch { .. } => "pattern_mismatch",
            Reason::UnknownField => "unknown_field",
            Reason::Immutable => "immutable",
            Reason::NotEditable => "not_editable",
            Reason::InvalidKey => "invalid_key",
            Reason::Duplicate => "duplicate",
            Reason::Other { .. } => "invalid",
            Reason::Rule { code, .. } => code,
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        let zh = lang == Lang::Zh;
        let pick = |z: &str, e: &str| if zh { z.to_string() } else { e.to_string() };
        match self {
            Reason::Required => pick("必填项不能为空", "is required"),
            Reason::TooLong { max } => {
                if zh {
                    format!("长度不能超过 {max} 个字符")
                } else {
                    format!("must be at most {max} characters")
                }
            }
            Reason::ControlCharacters => pick("包含不可见的控制字符", "contains control characters"),
            Reason::UsccFormat => pick(
                "统一社会信用代码应为 18 位，由数字和大写字母（不含 I、O、S、V、Z）组成",
                "a unified social credit code has 18 characters: digits and capital letters except I, O, S, V, Z",
            ),
            Reason::UsccCheck { expected } => {
                if zh {
                    format!("统一社会信用代码校验位错误（按 GB 32100 应为 {expected}）")
                } else {
                    format!("wrong check character of the unified social credit code (GB 32100 expects {expected})")
                }
            }
            Reason::IdNumberFormat => pick(
                "身份证号应为 18 位：17 位数字加 1 位数字或 X",
                "an ID number has 18 characters: 17 digits and a digit or X",
            ),
            Reason::IdNumberBirthDate => pick("身份证号中的出生日期不存在", "the birth date inside the ID number is not a real date"),
            Reason::IdNumberCheck { expected } => {
                if zh {
                    format!("身份证号校验位错误（按 GB 11643 应为 {expected}）")
                } else {
                    format!("wrong check digit of the ID number (GB 11643 expects {expected})")
                }
            }
            Reason::MobileFormat => pick(
                "手机号应为 11 位数字，以 13–19 开头",
                "a mobile number has 11 digits and starts with 13–19",
            ),
            Reason::LandlineFormat => pick(
                "座机号应为 区号-号码[-分机]，例如 010-12345678-123",
                "a landline is area code-number[-extension], e.g. 010-12345678-123",
            ),
            Reason::PhoneFormat => pick(
                "不是有效的手机、座机或 400/800 号码",
                "is not a valid mobile, landline or 400/800 number",
            ),
            Reason::EmailFormat => pick("邮箱格式不正确，例如 name@example.com", "is not a valid e-mail address, e.g. name@example.com"),
            Reason::DateFormat => pick("日期格式不正确，应为 YYYY-MM-DD", "is not a valid date (YYYY-MM-DD)"),
            Reason::DateOutOfRange => pick("日期超出合理范围（1900–2100 年）", "date is out of range (1900–2100)"),
            Reason::AmountFormat => pick(
                "金额格式不正确，应为元，最多两位小数，例如 1234.56",
                "is not a valid amount in yuan with at most two decimals, e.g. 1234.56",
            ),
            Reason::AmountNegative => pick("金额不能为负数", "amount must not be negative"),
            Reason::AmountTooLarge => pick("金额过大", "amount is too large"),
            Reason::NumberFormat => pick("不是有效的数字", "is not a valid number"),
            Reason::IntegerFormat => pick("应为整数", "must be a whole number"),
            Reason::BoolFormat => pick("应为 是/否（true/false）", "must be true or false"),
            Reason::OutOfRange { min, max } => match (min, max, zh) {
                (Some(a), Some(b), true) => format!("应在 {a} 到 {b} 之间"),
                (Some(a), Some(b), false) => format!("must be between {a} and {b}"),
                (Some(a), None, true) => format!("不能小于 {a}"),
                (Some(a), None, false) => format!("must be at least {a}"),
                (None, Some(b), true) => format!("不能大于 {b}"),
                (None, Some(b), false) => format!("must be at most {b}"),
                (None, None, _) => pick("超出范围", "is out of range"),
            },
            Reason::UnknownOption { allowed } => {
                if zh {
                    format!("不是可选值之一：{}", allowed.join("、"))
                } else {
                    format!("is not one of: {}", allowed.join(", "))
                }
            }
            Reason::PatternMismatch { pattern } => {
                if zh {
                    format!("不符合校验规则 {pattern}")
                } else {
                    format!("does not match the rule {pattern}")
                }
            }
            Reason::UnknownField => pick("未知字段", "unknown field"),
            Reason::Immutable => pick("该字段不能修改", "cannot be changed"),
            Reason::NotEditable => pick(
                "您的角色无权修改该个人信息字段",
                "your role may not change this personal field",
            ),
            Reason::InvalidKey => pick(
                "键名只能包含小写字母、数字和下划线，并以字母开头",
                "a key has lower-case letters, digits and underscores and starts with a letter",
            ),
            Reason::Duplicate => pick("该值已存在", "this value already exists"),
            Reason::Other { zh: z, en: e } | Reason::Rule { zh: z, en: e, .. } => pick(z, e),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Lang::En))
    }
}

/// One refused field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: Reason,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: Reason) -> Self {
        FieldError {
            field: field.into(),
            reason,
        }
    }
}

/// All refused fields of one input, so a form can show every error at once.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl ValidationErrors {
    pub fn single(field: impl Into<String>, reason: Reason) -> Self {
        ValidationErrors(vec![FieldError::new(field, reason)])
    }
    pub fn push(&mut self, field: impl Into<String>, reason: Reason) {
        self.0.push(FieldError::new(field, reason));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Ok(()) when nothing was refused.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
    /// Records the error of `result` under `field` and returns its value.
    pub fn check<T>(&mut self, field: &str, result: Result<T, Reason>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(r) => {
                self.push(field, r);
                None
            }
        }
    }
    pub fn for_field(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }
}
