//! Chinese identifiers and contact numbers, parsed into types
//! ("parse, don't validate"): a value of these types is always valid.

use crate::error::Reason;
use crate::text::to_half_width;
use chrono::NaiveDate;
use std::sync::LazyLock;

const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// 统一社会信用代码 (GB 32100-2015), stored upper case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uscc(String);

impl Uscc {
    /// Parses and checks the check character. Lower case is accepted.
    pub fn parse(raw: &str) -> Result<Uscc, Reason> {
        let s: String = to_half_width(raw).trim().to_ascii_uppercase();
        let expected = Self::expected_check(&s)?;
        let last = s.chars().last().unwrap_or(' ');
        if last != expected {
            return Err(Reason::UsccCheck { expected });
        }
        Ok(Uscc(s))
    }

    /// Accepts a code whose only fault is the check character (early pilot
    /// codes are legal yet fail it); the caller records who confirmed it and why.
    pub fn parse_confirmed(raw: &str) -> Result<Uscc, Reason> {
        let s: String = to_half_width(raw).trim().to_ascii_uppercase();
        Self::expected_check(&s)?;
        Ok(Uscc(s))
    }

    fn expected_check(s: &str) -> Result<char, Reason> {
        let chars: Vec<char> = s.chars().collect();
        if chars.len() != 18 {
            return Err(Reason::UsccFormat);
        }
        let mut values = Vec::with_capacity(18);
        for c in &chars {
            match USCC_CHARS.find(*c) {
                Some(v) => values.push(v as u32),
                None => return Err(Reason::UsccFormat),
            }
        }
        let sum: u32 = values[..17]
            .iter()
            .zip(USCC_WEIGHTS)
            .map(|(v, w)| v * w)
            .sum();
        let check = (31 - sum % 31) % 31;
        Ok(USCC_CHARS.as_bytes()[check as usize] as char)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Resident ID number (GB 11643-1999), 18 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

impl IdNumber {
    pub fn parse(raw: &str) -> Result<IdNumber, Reason> {
        let s: String = to_half_width(raw).trim().to_ascii_uppercase();
        let b = s.as_bytes();
        if b.len() != 18
            || !b[..17].iter().all(u8::is_ascii_digit)
            || !(b[17].is_ascii_digit() || b[17] == b'X')
        {
            return Err(Reason::IdNumberFormat);
        }
        let birth = &s[6..14];
        let date =
            NaiveDate::parse_from_str(birth, "%Y%m%d").map_err(|_| Reason::IdNumberBirthDate)?;
        if date < NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(date) {
            return Err(Reason::IdNumberBirthDate);
        }
        let sum: u32 = b[..17]
            .iter()
            .zip(ID_WEIGHTS)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        let expected = ID_CHECK[(sum % 11) as usize] as char;
        if b[17] as char != expected {
            return Err(Reason::IdNumberCheck { expected });
        }
        Ok(IdNumber(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn birth_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }
}

/// Digits and the characters people type between them.
fn phone_chars(raw: &str) -> String {
    to_half_width(raw)
        .chars()
        .filter(|c| !matches!(c, ' ' | '(' | ')' | '.'))
        .collect()
}

/// Mobile number `1[3-9]` + 9 digits, after stripping +86 / 86.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

impl Mobile {
    pub fn parse(raw: &str) -> Result<Mobile, Reason> {
        let s: String = phone_chars(raw).replace('-', "");
        let s = s
            .strip_prefix("+86")
            .or_else(|| s.strip_prefix("0086"))
            .unwrap_or(&s);
        let s = if s.len() == 13 {
            s.strip_prefix("86").unwrap_or(s)
        } else {
            s
        };
        let b = s.as_bytes();
        if b.len() == 11
            && b[0] == b'1'
            && (b'3'..=b'9').contains(&b[1])
            && b.iter().all(u8::is_ascii_digit)
        {
            Ok(Mobile(s.to_string()))
        } else {
            Err(Reason::MobileFormat)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

static LANDLINE_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^(0\d{2,3})-?([2-9]\d{6,7})(?:(?:-|转|ext\.?|#)(\d{1,6}))?$")
        .expect("landline regex")
});
static SERVICE_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^([48]00)-?(\d{3})-?(\d{4})$").expect("service number regex")
});

/// Landline: `0` + 2–3-digit area code, 7–8-digit number starting 2–9,
/// optional extension. Stored as `010-12345678` or `010-12345678-123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Landline {
    pub area: String,
    pub number: String,
    pub extension: Option<String>,
}

impl Landline {
    pub fn parse(raw: &str) -> Result<Landline, Reason> {
        let s = phone_chars(raw).to_ascii_lowercase();
        let s = s
            .strip_prefix("+86-")
            .or_else(|| s.strip_prefix("+86"))
            .map(|r| format!("0{}", r.trim_start_matches('0')))
            .unwrap_or(s);
        let caps = LANDLINE_RE.captures(&s).ok_or(Reason::LandlineFormat)?;
        let area = caps[1].to_string();
        let number = caps[2].to_string();
        // Beijing, Shanghai, Tianjin, Chongqing and the 02x codes have
        // 3-digit area codes (010, 02x) and 8-digit numbers; a 4-digit area
        // code such as 0755 is written in full. Ambiguous splits of an
        // unseparated string prefer the 3-digit code when it starts 01/02.
        let (area, number) = if !s.contains('-')
            && area.len() == 4
            && (area.starts_with("01") || area.starts_with("02"))
        {
            let joined = format!("{area}{number}");
            (joined[..3].to_string(), joined[3..].to_string())
        } else {
            (area, number)
        };
        if number.len() < 7 || number.len() > 8 || !(b'2'..=b'9').contains(&number.as_bytes()[0]) {
            return Err(Reason::LandlineFormat);
        }
        Ok(Landline {
            area,
            number,
            extension: caps.get(3).map(|m| m.as_str().to_string()),
        })
    }

    pub fn formatted(&self) -> String {
        match &self.extension {
            Some(ext) => format!("{}-{}-{}", self.area, self.number, ext),
            None => format!("{}-{}", self.area, self.number),
        }
    }
}

/// Any business phone number, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phone {
    Mobile(Mobile),
    Landline(Landline),
    /// 400/800 service number, stored as `400-123-4567`.
    Service(String),
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, Reason> {
        if let Ok(m) = Mobile::parse(raw) {
            return Ok(Phone::Mobile(m));
        }
        if let Ok(l) = Landline::parse(raw) {
            return Ok(Phone::Landline(l));
        }
        let s = phone_chars(raw);
        if let Some(c) = SERVICE_RE.captures(&s) {
            return Ok(Phone::Service(format!("{}-{}-{}", &c[1], &c[2], &c[3])));
        }
        Err(Reason::PhoneFormat)
    }

    pub fn formatted(&self) -> String {
        match self {
            Phone::Mobile(m) => m.as_str().to_string(),
            Phone::Landline(l) => l.formatted(),
            Phone::Service(s) => s.clone(),
        }
    }
}

static EMAIL_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
        .expect("email regex")
});

/// E-mail address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Reason> {
        let s = to_half_width(raw).trim().to_lowercase();
        if s.len() > 254 {
            return Err(Reason::TooLong { max: 254 });
        }
        let local = s.split('@').next().unwrap_or("");
        if !EMAIL_RE.is_match(&s)
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
            || local.len() > 64
        {
            return Err(Reason::EmailFormat);
        }
        Ok(Email(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uscc_table() {
        let cases: &[(&str, Result<&str, Reason>)] = &[
            ("91350100M000100Y43", Ok("91350100M000100Y43")),
            ("91350100m000100y43", Ok("91350100M000100Y43")),
            ("91440300708461136T", Ok("91440300708461136T")),
            ("91110000600037341l", Ok("91110000600037341L")),
            (" 91110000600037341L ", Ok("91110000600037341L")),
            (
                "911100006000373410",
                Err(Reason::UsccCheck { expected: 'L' }),
            ),
            ("91350100M000100Y4", Err(Reason::UsccFormat)),
            ("91350100M000100Y4II", Err(Reason::UsccFormat)),
            ("9135010OM000100Y43", Err(Reason::UsccFormat)),
            ("", Err(Reason::UsccFormat)),
        ];
        for (input, want) in cases {
            let got = Uscc::parse(input).map(|u| u.0);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "input {input:?}"
            );
        }
        assert!(Uscc::parse_confirmed("911100006000373410").is_ok());
        assert_eq!(
            Uscc::parse_confirmed("9111000060003734"),
            Err(Reason::UsccFormat)
        );
    }

    #[test]
    fn id_number_table() {
        let cases: &[(&str, Result<&str, Reason>)] = &[
            ("11010519491231002X", Ok("11010519491231002X")),
            ("11010519491231002x", Ok("11010519491231002X")),
            (
                "110105194912310021",
                Err(Reason::IdNumberCheck { expected: 'X' }),
            ),
            ("110105194902300021", Err(Reason::IdNumberBirthDate)),
            ("1101051949123100", Err(Reason::IdNumberFormat)),
            ("11010519491231002Y", Err(Reason::IdNumberFormat)),
        ];
        for (input, want) in cases {
            let got = IdNumber::parse(input).map(|u| u.0);
            assert_eq!(
                got.as_deref().map_err(Clone::clone),
                want.clone(),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn mobile_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("13812345678", Some("13812345678")),
            ("+86 138 1234 5678", Some("13812345678")),
            ("8613812345678", Some("13812345678")),
            ("138-1234-5678", Some("13812345678")),
            ("１３８１２３４５６７８", Some("13812345678")),
            ("19912345678", Some("19912345678")),
            ("12812345678", None),
            ("1381234567", None),
            ("138123456789", None),
            ("010-12345678", None),
            ("abc", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                Mobile::parse(input).ok().map(|m| m.0),
                want.map(String::from),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn landline_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("010-62345678", Some("010-62345678")),
            ("01062345678", Some("010-62345678")),
            ("0755-2345678", Some("0755-2345678")),
            ("(0571)87654321", Some("0571-87654321")),
            ("021-62345678-123", Some("021-62345678-123")),
            ("021-62345678转88", Some("021-62345678-88")),
            ("+86-10-62345678", Some("010-62345678")),
            ("010-12345678", None),
            ("010-02345678", None),
            ("10-12345678", None),
            ("010-123456", None),
            ("13812345678", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                Landline::parse(input).ok().map(|l| l.formatted()),
                want.map(String::from),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn phone_classifies() {
        assert!(matches!(Phone::parse("13812345678"), Ok(Phone::Mobile(_))));
        assert!(matches!(
            Phone::parse("010-62345678"),
            Ok(Phone::Landline(_))
        ));
        assert_eq!(
            Phone::parse("400 800 1234").map(|p| p.formatted()),
            Ok("400-800-1234".into())
        );
        assert_eq!(Phone::parse("12345"), Err(Reason::PhoneFormat));
    }

    #[test]
    fn email_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Li.Ming@Example.COM", Some("li.ming@example.com")),
            ("a+tag@sub.example.cn", Some("a+tag@sub.example.cn")),
            ("ｌｉ＠ｅｘａｍｐｌｅ．ｃｏｍ", Some("li@example.com")),
            ("no-at-sign", None),
            ("a@b", None),
            ("a..b@example.com", None),
            (".a@example.com", None),
            ("a@-example.com", None),
            ("a b@example.com", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                Email::parse(input).ok().map(|e| e.0),
                want.map(String::from),
                "input {input:?}"
            );
        }
    }
}
