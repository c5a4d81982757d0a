//! Abbreviated company names (中石化 for 中国石油化工, 招行 for 招商银行), and
//! how to find them among many names without comparing every pair.
//!
//! A short core abbreviates a long name when it starts with the same
//! character and the rest of its characters follow in order, not all
//! together, in a name at least two characters longer ([`abbreviates`]).
//! Two ways to find such pairs cheaply:
//! - from the long name: the cores that would abbreviate it are few
//!   ([`abbreviations_of`]: its first character and up to three more in
//!   order), so they are looked up like any other key (by sound in the store,
//!   by core in the scan);
//! - from the short core: the long names containing its characters, by
//!   character postings in memory ([`AbbreviationIndex`], an import) or a
//!   prefix range and a `LIKE` pattern in the database
//!   ([`expansion_pattern`], one name being entered).
//!
//! Two-character cores are looked up only when they are well-known short
//! names ([`KNOWN_SHORT_NAMES`]: 招行 for 招商银行, 工行 for 中国工商银行),
//! and then only against the name they stand for: any two characters in
//! order "abbreviate" too many unrelated names (宏信 / 宏达信息).

use super::company::pinyin_of;
use roaring::RoaringBitmap;
use std::collections::HashMap;

/// The longest abbreviation looked for (中石化, 上汽大众): abbreviations take
/// a character or two of each word, and longer ones are rare.
pub const ABBREVIATION_MAX: usize = 4;

/// The shortest core looked up as an abbreviation (on entry, on import and
/// in the scan's blocking): a two-character core "abbreviates" many
/// unrelated names (宏信 / 宏达信息).
pub const LOOKED_UP_MIN: usize = 3;

/// Two-character short names in common use and the normalized name each
/// stands for (legal form and leading place taken off, as
/// `company::full_name` does): the only two-character cores that
/// abbreviate, and only names starting with theirs.
pub const KNOWN_SHORT_NAMES: &[(&str, &str)] = &[
    ("工行", "中国工商银行"),
    ("农行", "中国农业银行"),
    ("中行", "中国银行"),
    ("建行", "中国建设银行"),
    ("交行", "交通银行"),
    ("招行", "招商银行"),
    ("浦发", "浦东发展银行"),
    ("邮储", "中国邮政储蓄银行"),
    ("国开", "国家开发银行"),
    ("国航", "中国国际航空"),
    ("东航", "中国东方航空"),
    ("南航", "中国南方航空"),
    ("国网", "国家电网"),
    ("南网", "中国南方电网"),
    ("中建", "中国建筑"),
    ("中冶", "中国冶金科工"),
    ("中核", "中国核工业"),
    ("中远", "中国远洋"),
];

/// The name a well-known two-character short name stands for.
pub fn known_expansion(short: &str) -> Option<&'static str> {
    KNOWN_SHORT_NAMES
        .iter()
        .find(|(s, _)| *s == short)
        .map(|(_, long)| *long)
}

/// The well-known short names of a normalized `full` name (工行 for
/// 中国工商银行股份 → 中国工商银行…).
fn known_shorts_of(full: &str) -> impl Iterator<Item = &'static str> + '_ {
    KNOWN_SHORT_NAMES
        .iter()
        .filter(move |(short, long)| full.starts_with(long) && !full.contains(short))
        .map(|(short, _)| *short)
}

/// Characters of a long name whose abbreviations are enumerated (the words an
/// abbreviation takes from come first).
const ENUMERATED_PREFIX: usize = 12;

/// `short` is an abbreviation of `long`: same first character, its characters
/// in order but not all together within `long`, not starting with `long`'s
/// first two characters together, and at least two characters shorter —
/// or, of two characters, a [`KNOWN_SHORT_NAMES`] entry of a name starting
/// with the one it stands for.
pub fn abbreviates(short: &str, long: &str) -> bool {
    let (s, l) = (short.chars().count(), long.chars().count());
    if s == 2 {
        // Two characters: a well-known short name, of the name it stands for.
        return known_shorts_of(long).any(|k| k == short);
    }
    if s < 2 || l < s + 2 || short.chars().next() != long.chars().next() {
        return false;
    }
    if long.contains(short) {
        // A prefix or a part is another company (华为 / 华为终端), not an abbreviation.
        return false;
    }
    if s > 2 && short.chars().nth(1) == long.chars().nth(1) {
        // The name's first word kept whole and one character of another is
        // the same brand in another line (舜铭设 / 舜铭电气设备), while an
        // abbreviation takes a character of each word (中石化 / 中国石油化工).
        return false;
    }
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|d| d == c))
}

/// Every text that [`abbreviates`] `long`, each once, sorted: its
/// well-known two-character short names, and its first character with
/// others picked in order from its first [`ENUMERATED_PREFIX`] characters
/// (not the second), [`LOOKED_UP_MIN`]`..=`[`ABBREVIATION_MAX`] in all.
pub fn abbreviations_of(long: &str) -> Vec<String> {
    let chars: Vec<char> = long.chars().take(ENUMERATED_PREFIX).collect();
    let total = long.chars().count();
    let longest = ABBREVIATION_MAX.min(total.saturating_sub(2));
    let mut out: Vec<String> = known_shorts_of(long).map(str::to_string).collect();
    let mut picked: Vec<usize> = Vec::with_capacity(ABBREVIATION_MAX);
    for len in LOOKED_UP_MIN..=longest {
        // Positions after the first, in increasing order: an odometer.
        picked.clear();
        picked.extend(1..len);
        loop {
            let text: String = std::iter::once(chars[0])
                .chain(picked.iter().map(|&i| chars[i]))
                .collect();
            if !long.contains(&text) && picked[0] > 1 {
                out.push(text);
            }
            // The rightmost position that can still move right, then the
            // ones after it packed behind it.
            let Some(k) = (0..picked.len())
                .rev()
                .find(|&k| picked[k] < chars.len() - (picked.len() - k))
            else {
                break;
            };
            picked[k] += 1;
            for j in k + 1..picked.len() {
                picked[j] = picked[j - 1] + 1;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How the cores that may abbreviate a normalized `full` name sound, each
/// once ([`abbreviations_of`]): stored customers are found by how their core sounds
/// (`customers.name_sound`), so these find the stored abbreviations of a name
/// being entered.
pub fn abbreviation_sounds(full: &str) -> Vec<String> {
    let mut sounds: Vec<String> = abbreviations_of(full)
        .iter()
        .map(|a| pinyin_of(a))
        .collect();
    sounds.sort_unstable();
    sounds.dedup();
    sounds
}

/// Where the stored names that `core` may abbreviate are, by their
/// normalized `full` (`customers.name_key`): `from <= full < until` (the
/// names starting with its first character, an index range) and `full LIKE
/// like`. The pattern also admits names holding the core whole, which
/// [`abbreviates`] then refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpansionPattern {
    pub from: String,
    pub until: String,
    pub like: String,
}

/// The pattern for a core of [`LOOKED_UP_MIN`]`..=`[`ABBREVIATION_MAX`]
/// characters or a well-known short name, else None. A core holds only letters and digits (the
/// normalization drops punctuation), so `%` and `_` never need escaping.
pub fn expansion_pattern(core: &str) -> Option<ExpansionPattern> {
    if let Some(long) = known_expansion(core) {
        // The names starting with the one it stands for.
        let mut until: Vec<char> = long.chars().collect();
        let last = until.pop()?;
        until.push(next_char(last)?);
        return Some(ExpansionPattern {
            from: long.to_string(),
            until: until.into_iter().collect(),
            like: format!("{long}%"),
        });
    }
    if !looked_up(core) || core.chars().any(|c| !c.is_alphanumeric()) {
        return None;
    }
    let first = core.chars().next()?;
    let next = next_char(first)?;
    let mut like = String::with_capacity(core.len() * 2);
    for c in core.chars() {
        like.push(c);
        like.push('%');
    }
    Some(ExpansionPattern {
        from: first.to_string(),
        until: next.to_string(),
        like,
    })
}

/// The next scalar value: byte order of UTF-8 is code point order, so a
/// text's range of names starting with it ends before this.
fn next_char(c: char) -> Option<char> {
    (c as u32 + 1..=char::MAX as u32).find_map(char::from_u32)
}

/// Names in memory, found both ways: the long names a core abbreviates
/// (postings of each long name's first character and of every character it
/// holds) and the short cores that abbreviate a long name (a long name's
/// abbreviations looked up among them). `K` says what a name belongs to (a
/// stored customer, a row of a file).
#[derive(Debug)]
pub struct AbbreviationIndex<K> {
    names: Vec<(K, Box<str>)>,
    first: HashMap<char, RoaringBitmap>,
    holds: HashMap<char, RoaringBitmap>,
    cores: HashMap<Box<str>, Vec<u32>>,
}

impl<K> Default for AbbreviationIndex<K> {
    fn default() -> Self {
        AbbreviationIndex {
            names: Vec::new(),
            first: HashMap::new(),
            holds: HashMap::new(),
            cores: HashMap::new(),
        }
    }
}

/// A core [`LOOKED_UP_MIN`]`..=`[`ABBREVIATION_MAX`] characters long, or a
/// well-known short name: one that is looked up as an abbreviation.
pub fn looked_up(core: &str) -> bool {
    (LOOKED_UP_MIN..=ABBREVIATION_MAX).contains(&core.chars().count())
        || known_expansion(core).is_some()
}

impl<K> AbbreviationIndex<K> {
    /// Adds a name by its normalized `full` and `core`; one neither long
    /// enough to be abbreviated nor short enough to abbreviate is left out.
    pub fn insert(&mut self, key: K, full: &str, core: &str) {
        // Two characters longer than the shortest looked up, or the name a
        // well-known short name stands for (招商银行 for 招行).
        let long =
            full.chars().count() >= LOOKED_UP_MIN + 2 || known_shorts_of(full).next().is_some();
        let short = looked_up(core);
        let Ok(at) = u32::try_from(self.names.len()) else {
            return;
        };
        if long {
            let mut chars = full.chars();
            if let Some(c) = chars.next() {
                self.first.entry(c).or_default().insert(at);
            }
            for c in chars {
                self.holds.entry(c).or_default().insert(at);
            }
        }
        if short {
            self.cores.entry(core.into()).or_default().push(at);
        }
        if long || short {
            self.names.push((key, full.into()));
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The long names `core` abbreviates, in insertion order, at most `limit`.
    pub fn abbreviated_by(&self, core: &str, limit: usize) -> Vec<&K> {
        if !looked_up(core) {
            return Vec::new();
        }
        // A well-known short name: the names holding the one it stands for.
        let mut chars = known_expansion(core).unwrap_or(core).chars();
        let Some(first) = chars.next().and_then(|c| self.first.get(&c)) else {
            return Vec::new();
        };
        let mut postings = vec![first];
        for c in chars {
            match self.holds.get(&c) {
                Some(p) => postings.push(p),
                None => return Vec::new(),
            }
        }
        // The shortest first: each intersection is no bigger than the one
        // before, and the long postings of common characters (公, 科) are
        // never copied.
        postings.sort_by_key(|p| p.len());
        let mut found = postings[0] & postings[1];
        for p in &postings[2..] {
            if found.is_empty() {
                break;
            }
            found &= *p;
        }
        found
            .iter()
            .map(|at| &self.names[at as usize])
            .filter(|(_, full)| abbreviates(core, full))
            .take(limit)
            .map(|(k, _)| k)
            .collect()
    }

    /// The names whose core abbreviates `full`, in insertion order, at most `limit`.
    pub fn abbreviations_in(&self, full: &str, limit: usize) -> Vec<&K> {
        let mut at: Vec<u32> = abbreviations_of(full)
            .iter()
            .filter_map(|a| self.cores.get(a.as_str()))
            .flatten()
            .copied()
            .collect();
        at.sort_unstable();
        at.dedup();
        at.truncate(limit);
        at.into_iter().map(|i| &self.names[i as usize].0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_are_in_order_start_alike_and_are_not_parts() {
        let cases = [
            ("中石化", "中国石油化工", true),
            ("招行", "招商银行", true),
            ("中石化", "中石化销售", false), // a part, another company
            ("华为", "华为终端", false),     // a prefix
            ("中化石", "中国石油化工", false), // out of order
            ("国石化", "中国石油化工", false), // another first character
            ("中石", "中国石", false),       // not two characters shorter
            ("中", "中国石油", false),       // one character is no abbreviation
            ("舜铭设", "舜铭电气设备", false), // the brand whole, then another word
            ("中石油", "中国石油天然气", true), // a word whole after the first
            ("工行", "中国工商银行", true),  // well known, another first character
            ("工行", "中国工商银行北京分行", true),
            ("招银", "招商银行", false), // two characters, not a known short name
            ("宏信", "宏达信息", false),
            ("招行", "招远商行", false), // known, but not of this name
        ];
        for (short, long, want) in cases {
            assert_eq!(abbreviates(short, long), want, "{short} / {long}");
        }
    }

    #[test]
    fn enumerated_abbreviations_are_exactly_those_that_abbreviate() {
        for long in [
            "中国石油化工",
            "招商银行",
            "abcdefghijklmnop",
            "中石",
            "华为终端",
        ] {
            let listed = abbreviations_of(long);
            let prefix: Vec<char> = long.chars().take(ENUMERATED_PREFIX).collect();
            // Every ordered pick of the prefix, checked by brute force (two
            // characters abbreviate only as a well-known short name).
            let mut want = Vec::new();
            for mask in 0u32..(1 << (prefix.len() - 1).min(20)) {
                let text: String = std::iter::once(prefix[0])
                    .chain(
                        (1..prefix.len())
                            .filter(|i| mask & (1 << (i - 1)) != 0)
                            .map(|i| prefix[i]),
                    )
                    .collect();
                if text.chars().count() <= ABBREVIATION_MAX && abbreviates(&text, long) {
                    want.push(text);
                }
            }
            want.sort_unstable();
            want.dedup();
            assert_eq!(listed, want, "{long}");
        }
        assert!(abbreviations_of("中国石油化工").contains(&"中石化".to_string()));
        assert_eq!(abbreviations_of("招商银行"), ["招行"]);
        assert_eq!(abbreviations_of("招商银河"), Vec::<String>::new());
        assert!(abbreviations_of("中国工商银行").contains(&"工行".to_string()));
        let sounds = abbreviation_sounds(&crate::dedupe::company::full_name(
            "中国石油化工集团有限公司",
        ));
        assert!(sounds.contains(&"zhongshihua".to_string()), "{sounds:?}");
        assert!(sounds.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
    }

    #[test]
    fn patterns_range_over_the_first_character() {
        let p = expansion_pattern("中石化").unwrap();
        assert_eq!(p.from, "中");
        assert_eq!(p.until, "丮");
        assert_eq!(p.like, "中%石%化%");
        assert!(p.from.as_str() <= "中国石油化工" && "中国石油化工" < p.until.as_str());
        assert_eq!(expansion_pattern("招银"), None, "two characters, not known");
        let known = expansion_pattern("工行").unwrap();
        assert_eq!(known.like, "中国工商银行%");
        assert!(
            known.from.as_str() <= "中国工商银行" && "中国工商银行北京分行" < known.until.as_str()
        );
        assert!("中国工商银衍" >= known.until.as_str());
        assert_eq!(expansion_pattern("中国石油化"), None, "too long");
        assert_eq!(expansion_pattern("a%b"), None);
    }

    #[test]
    fn the_index_finds_abbreviations_both_ways() {
        let mut names = AbbreviationIndex::default();
        for (id, full, core) in [
            (1, "中国石油化工", "中国石油化工"),
            (2, "中石化销售", "中石化"),
            (3, "中国石油天然气", "中国石油天然气"),
            (4, "招商银行", "招商银行"),
            (5, "中山石化工程", "中山石化"),
            (6, "石油化工", "石油"),
            (7, "中石油", "中石油"),
            (8, "招行", "招行"),
            (9, "招远", "招远"),
            (10, "招远商行", "招远"),
        ] {
            names.insert(id, full, core);
        }
        let by = |core: &str, limit| -> Vec<i32> {
            names
                .abbreviated_by(core, limit)
                .into_iter()
                .copied()
                .collect()
        };
        assert_eq!(by("中石化", 10), vec![1, 5]);
        assert_eq!(by("中石化", 1), vec![1]);
        assert_eq!(by("中石油", 10), vec![1, 3]);
        assert_eq!(by("招行", 10), vec![4], "a well-known short name");
        assert_eq!(
            by("招远", 10),
            Vec::<i32>::new(),
            "two characters, not known"
        );
        assert_eq!(by("中天气", 10), vec![3]);
        assert_eq!(by("中无有", 10), Vec::<i32>::new());
        let within = |full: &str| -> Vec<i32> {
            names
                .abbreviations_in(full, 10)
                .into_iter()
                .copied()
                .collect()
        };
        assert_eq!(
            within("中国石油化工"),
            vec![2, 7],
            "中石化 (a core) and 中石油"
        );
        assert_eq!(within("中国石油天然气"), vec![7]);
        assert_eq!(within("招商银行"), vec![8]);
        assert_eq!(
            names.len(),
            7,
            "石油化工, 招远 and 招远商行 neither abbreviate nor are long enough"
        );
    }
}
