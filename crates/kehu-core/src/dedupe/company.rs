//! Chinese company names reduced to what identifies the company, so that
//! 北京字节跳动科技有限公司, 字节跳动(北京)科技有限公司 and 字节跳动科技 compare equal.
//!
//! A name loses, in this order: width and case differences, bracketed regions
//! such as (北京) or (中国) (other brackets lose only the brackets), punctuation,
//! its legal form (有限公司, 股份有限公司, 集团, Co., Ltd. …) and a leading region
//! (北京, 浙江省, 杭州市 …). That is `full`. `core` also drops trailing business
//! words (科技, 信息技术, 贸易 …), which people leave out when they abbreviate.

use super::abbreviation::abbreviates;
use crate::region::{CITIES, PROVINCES};
use crate::text::to_half_width;
use pinyin::ToPinyin;

/// Legal forms, longest first so that 股份有限公司 goes before 有限公司.
const LEGAL_FORMS: &[&str] = &[
    "集团股份有限公司",
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "股份",
    "集团公司",
    "总公司",
    "公司",
    "集团",
];

/// Latin legal forms, matched as whole words at the end ("Co., Ltd.").
const LATIN_LEGAL_FORMS: &[&str] = &[
    "co",
    "ltd",
    "limited",
    "inc",
    "corp",
    "corporation",
    "company",
    "group",
    "llc",
    "plc",
];

/// Business words that end a name before its legal form, longest first.
const BUSINESS_WORDS: &[&str] = &[
    "网络科技",
    "信息科技",
    "信息技术",
    "科技发展",
    "技术开发",
    "电子商务",
    "文化传媒",
    "新材料",
    "新能源",
    "数字技术",
    "科技",
    "技术",
    "信息",
    "网络",
    "软件",
    "电子",
    "实业",
    "贸易",
    "商贸",
    "发展",
    "投资",
    "控股",
    "企业",
    "数字",
    "国际",
    "工业",
    "制造",
    "智能",
    "数据",
    "咨询",
    "服务",
    "管理",
    "文化",
    "传媒",
    "建设",
    "工程",
    "物流",
    "医药",
    "生物",
    "食品",
    "材料",
    "机械",
    "设备",
    "能源",
    "环保",
    "汽车",
    "电气",
    "化工",
    "technology",
    "tech",
];

/// Administrative suffixes after a place name, longest first.
const PLACE_SUFFIXES: &[&str] = &[
    "壮族自治区",
    "回族自治区",
    "维吾尔自治区",
    "自治区",
    "特别行政区",
    "省",
    "市",
];

/// A company name reduced for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyName {
    /// Without width/case differences, bracketed regions, punctuation, legal form and leading region.
    pub full: String,
    /// `full` without trailing business words; never shorter than two characters.
    pub core: String,
    /// The pinyin of `core` without tones (letters and digits stay as they are).
    pub pinyin: String,
    /// The province or city the name carried, if any (short form, e.g. 北京).
    pub place: Option<String>,
}

/// How two company names agree, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameAgreement {
    /// The same `full` name.
    Same,
    /// The same `core` name (one may carry 科技, the other not).
    SameCore,
    /// Different characters that sound the same (字节跳动 / 字节挑动).
    SamePinyin,
    /// One core is an abbreviation of the other (中石化 / 中国石油化工).
    Abbreviation,
    /// Only character overlap (bigram Dice coefficient).
    Similar,
}

impl NameAgreement {
    pub fn describe(self) -> &'static str {
        match self {
            NameAgreement::Same => "same normalized name",
            NameAgreement::SameCore => "same core name",
            NameAgreement::SamePinyin => "same pinyin",
            NameAgreement::Abbreviation => "abbreviation",
            NameAgreement::Similar => "similar name",
        }
    }

    pub fn describe_zh(self) -> &'static str {
        match self {
            NameAgreement::Same => "名称相同",
            NameAgreement::SameCore => "核心名相同",
            NameAgreement::SamePinyin => "读音相同",
            NameAgreement::Abbreviation => "简称",
            NameAgreement::Similar => "名称相似",
        }
    }
}

/// The place name (short form) at the start of `s`, with the length it takes
/// there including an administrative suffix (浙江省 → 浙江, 3 characters).
fn leading_place(s: &str) -> Option<(&'static str, usize)> {
    let found = PROVINCES
        .iter()
        .map(|(p, _)| *p)
        .chain(CITIES.iter().map(|(c, _)| *c))
        .filter(|p| s.starts_with(p))
        .max_by_key(|p| p.len())?;
    let rest = &s[found.len()..];
    let suffix = PLACE_SUFFIXES
        .iter()
        .find(|suf| rest.starts_with(*suf))
        .map_or(0, |suf| suf.len());
    Some((found, found.len() + suffix))
}

/// The place name (with its administrative suffix) that ends `s`, if any.
fn trailing_place(s: &str) -> Option<&str> {
    (0..s.len())
        .filter(|&i| s.is_char_boundary(i) && i > 0)
        .map(|i| &s[i..])
        .find(|tail| is_place(tail))
}

/// `s` names a place and nothing else (北京, 北京市, 中国, china).
fn is_place(s: &str) -> bool {
    if matches!(s, "中国" | "china" | "中国大陆") {
        return true;
    }
    matches!(leading_place(s), Some((_, len)) if len == s.len())
}

fn is_open_bracket(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '（' | '【' | '〔' | '「' | '《')
}

fn is_close_bracket(c: char) -> bool {
    matches!(c, ')' | ']' | '}' | '）' | '】' | '〕' | '」' | '》')
}

/// Drops bracketed places (and remembers the first); keeps other bracket contents.
fn strip_brackets(s: &str, place: &mut Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut inner = String::new();
    let mut depth = 0usize;
    for c in s.chars() {
        if is_open_bracket(c) {
            if depth == 0 {
                inner.clear();
            } else {
                inner.push(c);
            }
            depth += 1;
        } else if is_close_bracket(c) && depth > 0 {
            depth -= 1;
            if depth == 0 {
                if is_place(&inner) {
                    if place.is_none() {
                        *place = leading_place(&inner).map(|(p, _)| p.to_string());
                    }
                } else {
                    out.push_str(&inner);
                }
            } else {
                inner.push(c);
            }
        } else if depth > 0 {
            inner.push(c);
        } else {
            out.push(c);
        }
    }
    if depth > 0 {
        // An unclosed bracket keeps its text.
        out.push_str(&inner);
    }
    out
}

/// Removes the longest matching suffix from `words` while at least `keep`
/// characters remain; repeats until none applies.
fn strip_suffixes(mut s: String, words: &[&str], keep: usize) -> String {
    loop {
        let Some(word) = words
            .iter()
            .find(|w| s.ends_with(*w) && s[..s.len() - w.len()].chars().count() >= keep)
        else {
            return s;
        };
        s.truncate(s.len() - word.len());
    }
}

/// The pinyin of `s` without tones; characters without pinyin stay as they are.
pub fn pinyin_of(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for (c, p) in s.chars().zip(s.to_pinyin()) {
        match p {
            Some(p) => out.push_str(p.plain()),
            None => out.push(c),
        }
    }
    out
}

pub fn normalize(name: &str) -> CompanyName {
    let mut c = with_sound(name, String::new());
    c.pinyin = pinyin_of(&c.core);
    c
}

/// [`normalize`] with the pinyin already known (a stored `name_sound`):
/// the pinyin is the costly part, and a lookup by sound compares many
/// stored names.
pub fn with_sound(name: &str, pinyin: String) -> CompanyName {
    let (full, place) = full_and_place(name);
    let core = strip_suffixes(full.clone(), BUSINESS_WORDS, 2);
    CompanyName {
        full,
        core,
        pinyin,
        place,
    }
}

/// Only [`CompanyName::pinyin`]: how the name's core sounds, the key an
/// import looks stored names up by to find those differing only in business
/// words or in characters that sound alike (字节跳动科技 / 字节挑动: `zijietiaodong`).
pub fn name_sound(name: &str) -> String {
    normalize(name).pinyin
}

/// Only [`CompanyName::full`]: what an exact comparison needs (an import
/// compares a million stored names this way).
pub fn full_name(name: &str) -> String {
    full_and_place(name).0
}

/// [`CompanyName::core`] of a name already reduced to its `full` (a stored `name_key`).
pub fn core_of_full(full: &str) -> String {
    strip_suffixes(full.to_string(), BUSINESS_WORDS, 2)
}

fn full_and_place(name: &str) -> (String, Option<String>) {
    let lowered: String = to_half_width(name)
        .chars()
        .flat_map(char::to_lowercase)
        .collect();
    let mut place = None;
    let unbracketed = strip_brackets(&lowered, &mut place);
    let mut words: Vec<&str> = unbracketed
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    while words.len() > 1 && LATIN_LEGAL_FORMS.contains(words.last().unwrap_or(&"")) {
        words.pop();
    }
    let plain = words.concat();
    let mut full = strip_suffixes(plain, LEGAL_FORMS, 2);
    // Leading places, possibly two (浙江省杭州市…), while two characters remain.
    while let Some((p, len)) = leading_place(&full) {
        if full[len..].chars().count() < 2 {
            break;
        }
        if place.is_none() {
            place = Some(p.to_string());
        }
        full.drain(..len);
    }
    // A legal form may have stood before a bracketed place: 字节跳动科技有限公司(北京).
    let mut full = strip_suffixes(full, LEGAL_FORMS, 2);
    // A place at the end, as 联想北京 / 阿里巴巴中国 are written without brackets.
    if let Some(p) = trailing_place(&full) {
        if full[..full.len() - p.len()].chars().count() >= 2 {
            full.truncate(full.len() - p.len());
        }
    }
    (full, place)
}

/// Sørensen–Dice coefficient of the character bigrams (a one-character text is its own bigram).
pub fn bigram_dice(a: &str, b: &str) -> f64 {
    fn bigrams(s: &str) -> Vec<(char, char)> {
        let chars: Vec<char> = s.chars().collect();
        match chars.len() {
            0 => Vec::new(),
            1 => vec![(chars[0], '\0')],
            _ => chars.windows(2).map(|w| (w[0], w[1])).collect(),
        }
    }
    let (mut x, mut y) = (bigrams(a), bigrams(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    let total = x.len() + y.len();
    x.sort_unstable();
    y.sort_unstable();
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / total as f64
}

/// How close two names must compare ([`compare`]) for a record being
/// entered or imported to be marked a likely duplicate by its name alone:
/// the same core with business words left out (0.95) or the same sound
/// (0.85) count; the same core with other business words (吉利控股 /
/// 吉利汽车, 0.6: often sister companies) and names registered in two
/// places (× 0.7) do not.
pub const CLOSE_NAME: f64 = 0.8;

/// Stored names compared with one being entered or imported that sounds
/// like them, the oldest first: a common sound (宏信 / 鸿信 / 弘信 …) is
/// shared by hundreds, and comparing them all would make a large import
/// many times slower (BENCHMARKS, session 19).
pub const COMPARED_PER_SOUND: usize = 20;

/// How `a` and `b` agree when they compare at least [`CLOSE_NAME`].
pub fn close_names(a: &CompanyName, b: &CompanyName) -> Option<(f64, NameAgreement)> {
    let (score, how) = compare(a, b);
    (score >= CLOSE_NAME).then_some((score, how))
}

/// How alike two company names are, in [0, 1], and the strongest agreement.
/// Names registered in two different places are not the same company by
/// name alone (北京华信 / 上海华信), so a place conflict lowers the name's weight.
pub fn compare(a: &CompanyName, b: &CompanyName) -> (f64, NameAgreement) {
    let (score, how) = if a.full == b.full {
        (1.0, NameAgreement::Same)
    } else if a.core == b.core && (a.full.starts_with(&b.full) || b.full.starts_with(&a.full)) {
        // One left (some of) its business words out: 字节跳动 / 字节跳动科技.
        (0.95, NameAgreement::SameCore)
    } else if a.core == b.core {
        // Different business words on the same core are often sister
        // companies (吉利控股 / 吉利汽车): alike, not the same.
        (0.6, NameAgreement::SameCore)
    } else if a.pinyin == b.pinyin {
        (0.85, NameAgreement::SamePinyin)
    } else if abbreviates(&a.core, &b.full) || abbreviates(&b.core, &a.full) {
        (0.8, NameAgreement::Abbreviation)
    } else {
        let dice = bigram_dice(&a.full, &b.full).max(bigram_dice(&a.core, &b.core));
        let sound = strsim::jaro_winkler(&a.pinyin, &b.pinyin);
        // Sound alone is weak evidence: only when characters also overlap.
        (dice.max(sound * dice.sqrt()), NameAgreement::Similar)
    };
    match (&a.place, &b.place) {
        (Some(p), Some(q)) if p != q => (score * 0.7, how),
        _ => (score, how),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reduce_to_what_identifies_the_company() {
        let cases = [
            (
                "北京字节跳动科技有限公司",
                "字节跳动科技",
                "字节跳动",
                Some("北京"),
            ),
            (
                "字节跳动(北京)科技有限公司",
                "字节跳动科技",
                "字节跳动",
                Some("北京"),
            ),
            (
                "字节跳动（北京）科技有限公司",
                "字节跳动科技",
                "字节跳动",
                Some("北京"),
            ),
            ("字节跳动科技", "字节跳动科技", "字节跳动", None),
            (
                "浙江省杭州市娃哈哈集团有限公司",
                "娃哈哈",
                "娃哈哈",
                Some("浙江"),
            ),
            ("华为技术有限公司", "华为技术", "华为", None),
            ("阿里巴巴(中国)有限公司", "阿里巴巴", "阿里巴巴", None),
            ("ＡＢＣ Trading Co., Ltd.", "abctrading", "abctrading", None),
            ("上海市 电气 股份有限公司", "电气", "电气", Some("上海")),
            ("北京公司", "北京", "北京", None),
            ("腾讯科技(深圳)有限公司", "腾讯科技", "腾讯", Some("深圳")),
            ("小米【科技】有限责任公司", "小米科技", "小米", None),
        ];
        for (input, full, core, place) in cases {
            let n = normalize(input);
            assert_eq!(n.full, full, "full of {input}");
            assert_eq!(n.core, core, "core of {input}");
            assert_eq!(n.place.as_deref(), place, "place of {input}");
        }
    }

    #[test]
    fn comparisons_name_their_reason() {
        let cases = [
            (
                "北京字节跳动科技有限公司",
                "字节跳动(北京)科技有限公司",
                NameAgreement::Same,
            ),
            (
                "北京字节跳动科技有限公司",
                "字节跳动",
                NameAgreement::SameCore,
            ),
            (
                "字节跳动科技有限公司",
                "字节挑动科技有限公司",
                NameAgreement::SamePinyin,
            ),
            (
                "中石化",
                "中国石油化工集团有限公司",
                NameAgreement::Abbreviation,
            ),
            (
                "华为技术有限公司",
                "华为终端有限公司",
                NameAgreement::Similar,
            ),
        ];
        for (a, b, want) in cases {
            let (score, how) = compare(&normalize(a), &normalize(b));
            assert_eq!(how, want, "{a} vs {b}");
            assert!((0.0..=1.0).contains(&score));
        }
        let (branch, _) = compare(
            &normalize("北京华信科技有限公司"),
            &normalize("上海华信科技有限公司"),
        );
        let (same, _) = compare(
            &normalize("北京华信科技有限公司"),
            &normalize("华信科技有限公司"),
        );
        assert!(
            branch < same,
            "a place conflict weighs less: {branch} vs {same}"
        );
    }

    #[test]
    fn close_names_sound_alike_and_compare_close() {
        use NameAgreement::*;
        let cases = [
            (
                "北京字节跳动科技有限公司",
                "字节跳动有限公司",
                Some(SameCore),
            ),
            (
                "北京字节跳动科技有限公司",
                "字节挑动科技有限公司",
                Some(SamePinyin),
            ),
            (
                "北京字节跳动科技有限公司",
                "字节跳动(北京)科技有限公司",
                Some(Same),
            ),
            // A sister company, another place, another company.
            ("北京字节跳动科技有限公司", "字节跳动控股有限公司", None),
            ("北京字节跳动有限公司", "上海字节跳动科技有限公司", None),
            ("北京字节跳动科技有限公司", "杭州云帆科技有限公司", None),
        ];
        for (a, b, want) in cases {
            let (a, b) = (normalize(a), normalize(b));
            let got = close_names(&a, &b).map(|(_, how)| how);
            assert_eq!(got, want, "{a:?} / {b:?}");
            assert_eq!(close_names(&b, &a).map(|(_, how)| how), want, "symmetric");
        }
        assert_eq!(name_sound("北京字节跳动科技有限公司"), "zijietiaodong");
        assert_eq!(name_sound("字节挑动"), name_sound("字节跳动科技"));
        let name = "北京字节跳动科技有限公司";
        assert_eq!(with_sound(name, name_sound(name)), normalize(name));
        assert_eq!(core_of_full(&full_name(name)), normalize(name).core);
    }

    #[test]
    fn dice_is_symmetric_and_bounded() {
        assert_eq!(bigram_dice("abc", "abc"), 1.0);
        assert_eq!(bigram_dice("", "abc"), 0.0);
        assert_eq!(bigram_dice("ab", "cd"), 0.0);
        assert_eq!(
            bigram_dice("华为技术", "华为终端"),
            bigram_dice("华为终端", "华为技术")
        );
    }
}
