//! Duplicate detection: which records of a set are likely the same company
//! or person. One matcher serves `kehu dedupe`, imports and the database scan.
//!
//! Records are compared field by field in the Fellegi–Sunter way: agreeing
//! on a value is evidence in proportion to how rare the value is (two records
//! sharing a social-security number say more than two sharing a state),
//! disagreeing is evidence against, a missing value is no evidence. Partial
//! agreement (a typo) counts in between. The summed evidence, with the prior
//! odds that two records of the set are duplicates, gives the pair's score:
//! a probability in [0, 1]. Agreement rates of true pairs are then learnt
//! from the confident pairs (one expectation–maximization step) and the
//! pairs re-scored. Finally duplicates of the same record are linked to each
//! other (a cluster of three gives three pairs) when the evidence holds.
//!
//! Only candidate pairs are compared: records sharing a blocking key (a
//! field's normalized value, a company's core name or its pinyin, …).
//! Keys shared by more than `max_block` records are too common to say
//! anything and are skipped.

pub mod abbreviation;
pub mod company;
pub mod contact;
pub mod similarity;

use company::{CompanyName, NameAgreement};
use std::collections::HashMap;

/// How a field's values are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text: case and width folded, Jaro–Winkler.
    Text,
    /// Digits and letters such as IDs, dates, postcodes: edit distance with transpositions.
    Code,
    /// A company name: see [`company`].
    Company,
    /// A phone number: digits only, the last 11 compared.
    Phone,
    /// An e-mail address: lower-cased, exact.
    Email,
    /// A postal address: text, but sharing one says less than its rarity
    /// suggests (many companies sit in one building).
    Address,
}

impl FieldKind {
    pub const ALL: [FieldKind; 6] = [
        FieldKind::Text,
        FieldKind::Code,
        FieldKind::Company,
        FieldKind::Phone,
        FieldKind::Email,
        FieldKind::Address,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Code => "code",
            FieldKind::Company => "company",
            FieldKind::Phone => "phone",
            FieldKind::Email => "email",
            FieldKind::Address => "address",
        }
    }

    pub fn parse(s: &str) -> Option<FieldKind> {
        FieldKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Below this similarity a value counts as different.
    fn floor(self) -> f64 {
        match self {
            FieldKind::Text => 0.75,
            // 知春路48号 and 知春路84号 are different buildings.
            FieldKind::Address => 0.92,
            FieldKind::Code => 0.6,
            FieldKind::Company => 0.5,
            FieldKind::Phone | FieldKind::Email => 0.9,
        }
    }

    /// The least evidence (bits) an agreement on this kind gives. Names,
    /// phones and e-mails identify by nature: two different companies rarely
    /// share one, however often it occurs in a small file full of its own
    /// duplicates (where counting would call it common).
    fn min_agreement_bits(self) -> f64 {
        match self {
            FieldKind::Text | FieldKind::Code | FieldKind::Address => 0.0,
            FieldKind::Company | FieldKind::Phone => 12.0,
            FieldKind::Email => 14.0,
        }
    }

    /// The most evidence (bits) an agreement on this kind gives: a shared
    /// address is a shared building, not yet the same company.
    fn max_agreement_bits(self) -> f64 {
        match self {
            FieldKind::Address => 10.0,
            _ => f64::INFINITY,
        }
    }

    /// The kind a column most likely holds, from its header and its values.
    pub fn infer<'a>(header: &str, values: impl Iterator<Item = &'a str>) -> FieldKind {
        let h = header.to_lowercase();
        let says = |words: &[&str]| words.iter().any(|w| h.contains(w));
        if says(&["phone", "mobile", "tel", "电话", "手机", "座机"]) {
            return FieldKind::Phone;
        }
        if says(&["email", "e-mail", "mail", "邮箱"]) {
            return FieldKind::Email;
        }

        let (mut present, mut codes, mut companies) = (0usize, 0usize, 0usize);
        for v in values.map(str::trim).filter(|v| !v.is_empty()).take(1000) {
            present += 1;
            if v.chars().all(|c| c.is_ascii_digit() || "-/. ".contains(c)) {
                codes += 1;
            }
            if ["公司", "集团", "厂", "中心", "研究院", "事务所"]
                .iter()
                .any(|w| v.contains(w))
            {
                companies += 1;
            }
        }
        if present > 0 && codes * 10 >= present * 9 {
            FieldKind::Code
        } else if says(&["company", "公司", "客户名称", "单位", "企业"])
            || companies * 3 >= present.max(1)
        {
            FieldKind::Company
        } else {
            FieldKind::Text
        }
    }
}

/// A field taking part in the comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub kind: FieldKind,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Pairs scoring at least this (a probability) are reported.
    pub threshold: f64,
    /// Blocking keys shared by more records than this are skipped.
    pub max_block: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: 0.5,
            max_block: 30,
        }
    }
}

/// Why a pair was proposed: one agreeing field.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// Index into the fields.
    pub field: usize,
    /// 1.0 for the same (normalized) value.
    pub similarity: f64,
    /// For company names: how they agree.
    pub name_agreement: Option<NameAgreement>,
}

impl Evidence {
    /// "名称: same core name", "soc_sec_id: same", "surname: similar (0.93)".
    pub fn describe(&self, fields: &[Field]) -> String {
        let name = &fields[self.field].name;
        match self.name_agreement {
            Some(how) => format!("{name}: {}", how.describe()),
            None if self.similarity >= 1.0 => format!("{name}: same"),
            None => format!("{name}: similar ({:.2})", self.similarity),
        }
    }
}

/// Two records (indexes into the input) that are likely the same.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: usize,
    pub b: usize,
    /// The probability that they are the same, in [0, 1].
    pub score: f64,
    /// The agreeing fields, strongest first.
    pub evidence: Vec<Evidence>,
}

/// The pairs found and how much work finding them took.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Best first; ties by record order.
    pub pairs: Vec<Pair>,
    /// Pairs compared (the blocking's output).
    pub candidates: usize,
    /// Blocking keys skipped because too many records shared them.
    pub skipped_keys: usize,
}

/// A value prepared for comparison.
#[derive(Debug, Clone)]
enum Prepared {
    /// The text and its characters (compared many times, split once).
    Plain(String, Box<[char]>),
    Company(Box<CompanyName>),
}

impl Prepared {
    /// The text whose frequency measures how common the value is: for a
    /// company the full normalized name (two records agreeing exactly agree
    /// on it; its core alone is shared by many unrelated companies).
    fn key(&self) -> &str {
        match self {
            Prepared::Plain(s, _) => s,
            Prepared::Company(c) => &c.full,
        }
    }
}

fn prepare(kind: FieldKind, raw: &str) -> Option<Prepared> {
    let folded = crate::text::clean(raw).to_lowercase();
    let value = match kind {
        FieldKind::Text | FieldKind::Email | FieldKind::Address => folded,
        FieldKind::Code => folded.chars().filter(|c| c.is_alphanumeric()).collect(),
        FieldKind::Phone => {
            let digits: String = folded.chars().filter(char::is_ascii_digit).collect();
            // +86 / 0086 before a mobile, kept landlines whole.
            let keep = digits.len().min(11);
            digits[digits.len() - keep..].to_string()
        }
        FieldKind::Company => {
            let name = company::normalize(&folded);
            if name.full.is_empty() {
                return None;
            }
            return Some(Prepared::Company(Box::new(name)));
        }
    };
    (!value.is_empty()).then(|| {
        let chars = value.chars().collect();
        Prepared::Plain(value, chars)
    })
}

/// Similarity of two prepared values of a field, in [0, 1].
fn similarity(kind: FieldKind, a: &Prepared, b: &Prepared) -> (f64, Option<NameAgreement>) {
    match (a, b) {
        (Prepared::Company(x), Prepared::Company(y)) => {
            let (s, how) = company::compare(x, y);
            (s, Some(how))
        }
        (Prepared::Plain(x, _), Prepared::Plain(y, _)) if x == y => (1.0, None),
        (Prepared::Plain(_, x), Prepared::Plain(_, y)) => {
            let s = match kind {
                FieldKind::Code | FieldKind::Phone => {
                    let longest = x.len().max(y.len()).max(1);
                    1.0 - similarity::osa_distance(x, y) as f64 / longest as f64
                }
                FieldKind::Email => 0.0,
                FieldKind::Text | FieldKind::Company | FieldKind::Address => {
                    similarity::jaro_winkler(x, y)
                }
            };
            (s, None)
        }
        _ => (0.0, None),
    }
}

/// One field of every record, prepared, with how often each value occurs.
struct Column {
    kind: FieldKind,
    values: Vec<Option<Prepared>>,
    /// −log2 of each record's value frequency (0 when missing): the
    /// information an exact agreement on it carries.
    surprise: Vec<f64>,
    /// Probability that two records with the field agree by chance (Σ p²).
    chance: f64,
}

impl Column {
    fn new<'a>(kind: FieldKind, raw: impl Iterator<Item = &'a str>) -> Column {
        let values: Vec<Option<Prepared>> = raw.map(|v| prepare(kind, v)).collect();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for v in values.iter().flatten() {
            *counts.entry(v.key().to_string()).or_default() += 1;
        }
        let present = values.iter().flatten().count();
        let n = present.max(1) as f64;
        let surprise = values
            .iter()
            .map(|v| {
                v.as_ref()
                    .map_or(0.0, |v| -(counts[v.key()] as f64 / n).log2())
            })
            .collect();
        let chance = if present == 0 {
            1.0
        } else {
            let n = present as f64;
            counts
                .values()
                .map(|&c| (c as f64 / n).powi(2))
                .sum::<f64>()
                .max(1.0 / n)
        };
        Column {
            kind,
            values,
            surprise,
            chance,
        }
    }

    /// The blocking keys of one value.
    fn keys(&self, v: &Prepared, out: &mut Vec<String>) {
        match v {
            Prepared::Plain(s, _) => out.push(s.clone()),
            Prepared::Company(c) => {
                out.push(c.core.clone());
                out.push(format!("py:{}", c.pinyin));
                if c.full != c.core {
                    out.push(c.full.clone());
                }
                // Character bigrams of the core catch typos and reorderings.
                let chars: Vec<char> = c.core.chars().collect();
                for w in chars.windows(2) {
                    out.push(format!("bi:{}{}", w[0], w[1]));
                }
            }
        }
    }
}

/// Per-field agreement rates of true duplicates ("m"), before learning.
const PRIOR_AGREEMENT: f64 = 0.9;

/// One field of a pair's comparison: similarity, or None when a value is missing.
type Cell = Option<(f64, Option<NameAgreement>)>;
/// A pair's comparison, field by field.
type Comparison = [Cell];

/// A field's weights in bits, derived from its agreement rate `m` once
/// rather than for every pair.
#[derive(Debug, Clone, Copy)]
struct FieldWeights {
    /// log2 m: an exact agreement adds this plus the value's surprise.
    log_m: f64,
    /// Full weight of a partial agreement at similarity 1.
    agree: f64,
    /// Weight of a disagreement (negative).
    disagree: f64,
}

impl FieldWeights {
    fn new(col: &Column, m: f64) -> FieldWeights {
        FieldWeights {
            log_m: m.log2(),
            agree: (m / col.chance)
                .log2()
                .max(col.kind.min_agreement_bits())
                .min(col.kind.max_agreement_bits()),
            disagree: ((1.0 - m) / (1.0 - col.chance).max(1e-9)).log2(),
        }
    }
}

struct Scorer<'c> {
    columns: &'c [Column],
    weights: Vec<FieldWeights>,
    /// log2 of the prior odds that a candidate pair is a duplicate.
    prior: f64,
}

impl Scorer<'_> {
    fn compare_into(&self, a: usize, b: usize, out: &mut Vec<Cell>) {
        out.extend(
            self.columns
                .iter()
                .map(|col| match (&col.values[a], &col.values[b]) {
                    (Some(x), Some(y)) => Some(similarity(col.kind, x, y)),
                    _ => None,
                }),
        );
    }

    fn compare(&self, a: usize, b: usize) -> Vec<Cell> {
        let mut out = Vec::with_capacity(self.columns.len());
        self.compare_into(a, b, &mut out);
        out
    }

    /// The comparisons of many pairs, one after the other in one vector,
    /// on every core (the matcher's hot loop).
    fn compare_all(&self, pairs: &[(u32, u32)]) -> Vec<Cell> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = pairs.len().div_ceil(threads).max(1024);
        let parts: Vec<Vec<Cell>> = std::thread::scope(|scope| {
            let workers: Vec<_> = pairs
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(part.len() * self.columns.len());
                        for &(a, b) in part {
                            self.compare_into(a as usize, b as usize, &mut out);
                        }
                        out
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("comparison worker panicked"))
                .collect()
        });
        parts.concat()
    }

    /// Evidence in bits (log2 likelihood ratio) that the pair is the same.
    fn weight(&self, a: usize, cmp: &Comparison) -> f64 {
        let mut total = 0.0;
        for (f, c) in cmp.iter().enumerate() {
            let Some((s, _)) = c else { continue };
            let col = &self.columns[f];
            let w = &self.weights[f];
            let floor = col.kind.floor();
            total += if *s >= 1.0 {
                (w.log_m + col.surprise[a])
                    .max(col.kind.min_agreement_bits())
                    .min(col.kind.max_agreement_bits())
            } else if *s >= floor {
                w.disagree + (w.agree - w.disagree) * (s - floor) / (1.0 - floor)
            } else {
                w.disagree
            };
        }
        total
    }

    /// Sets the agreement rate of true pairs on field `f`.
    fn set_agreement(&mut self, f: usize, m: f64) {
        self.weights[f] = FieldWeights::new(&self.columns[f], m);
    }

    fn score(&self, a: usize, cmp: &Comparison) -> f64 {
        let bits = self.weight(a, cmp) + self.prior;
        1.0 / (1.0 + (-bits).exp2())
    }
}

fn evidence_of(cmp: &Comparison, columns: &[Column]) -> Vec<Evidence> {
    let mut ev: Vec<Evidence> = cmp
        .iter()
        .enumerate()
        .filter_map(|(field, c)| {
            let (similarity, name_agreement) = (*c)?;
            (similarity >= columns[field].kind.floor()).then_some(Evidence {
                field,
                similarity,
                name_agreement,
            })
        })
        .collect();
    ev.sort_by(|x, y| {
        y.similarity
            .total_cmp(&x.similarity)
            .then(x.field.cmp(&y.field))
    });
    ev
}

/// Candidate pairs (a < b), each once: records sharing a blocking key.
fn candidate_pairs(columns: &[Column], max_block: usize) -> (Vec<(u32, u32)>, usize) {
    let mut blocks: HashMap<(usize, String), Vec<u32>> = HashMap::new();
    let mut keys = Vec::new();
    for (f, col) in columns.iter().enumerate() {
        for (i, v) in col.values.iter().enumerate() {
            let Some(v) = v else { continue };
            keys.clear();
            col.keys(v, &mut keys);
            keys.sort_unstable();
            keys.dedup();
            for k in keys.drain(..) {
                blocks.entry((f, k)).or_default().push(i as u32);
            }
        }
    }
    let mut skipped = 0;
    let mut pairs: Vec<u64> = Vec::new();
    for ids in blocks.values() {
        if ids.len() > max_block {
            skipped += 1;
            continue;
        }
        for (x, &a) in ids.iter().enumerate() {
            for &b in &ids[x + 1..] {
                pairs.push(((a as u64) << 32) | b as u64);
            }
        }
    }
    for col in columns.iter().filter(|c| c.kind == FieldKind::Company) {
        abbreviation_pairs(col, max_block, &mut pairs);
    }
    pairs.sort_unstable();
    pairs.dedup();
    let pairs = pairs
        .into_iter()
        .map(|p| ((p >> 32) as u32, p as u32))
        .collect();
    (pairs, skipped)
}

/// Pairs of a long name and a core that may abbreviate it (中国石油化工 /
/// 中石化), which share no blocking key: each long name's possible
/// abbreviations looked up among the cores. A core shared by more than
/// `max_block` records is left out, as its own block was; so are
/// two-character ones (宏信) but the well-known short names (招行), as on
/// entry: on a million demo customers any two characters doubled the pairs
/// compared and put no more true pairs in the queue (BENCHMARKS, session 27).
fn abbreviation_pairs(col: &Column, max_block: usize, pairs: &mut Vec<u64>) {
    let companies = || {
        col.values.iter().enumerate().filter_map(|(i, v)| match v {
            Some(Prepared::Company(c)) => Some((i as u32, c)),
            _ => None,
        })
    };
    let mut by_core: HashMap<&str, Vec<u32>> = HashMap::new();
    for (i, c) in companies() {
        if abbreviation::looked_up(&c.core) {
            by_core.entry(c.core.as_str()).or_default().push(i);
        }
    }
    for (long, c) in companies() {
        for short in abbreviation::abbreviations_of(&c.full) {
            let Some(ids) = by_core.get(short.as_str()) else {
                continue;
            };
            if ids.len() > max_block {
                continue;
            }
            for &s in ids {
                let (a, b) = (long.min(s), long.max(s));
                pairs.push(((a as u64) << 32) | b as u64);
            }
        }
    }
}

fn columns_of<R: AsRef<str>>(fields: &[Field], records: &[Vec<R>]) -> Vec<Column> {
    fields
        .iter()
        .enumerate()
        .map(|(f, field)| {
            Column::new(
                field.kind,
                records
                    .iter()
                    .map(move |r| r.get(f).map(AsRef::as_ref).unwrap_or("")),
            )
        })
        .collect()
}

/// The pairs [`find_duplicates`] would compare (a < b), and the blocking
/// keys it would skip: to measure the blocking's pairs completeness against
/// known duplicates.
pub fn candidate_pairs_of<R: AsRef<str>>(
    fields: &[Field],
    records: &[Vec<R>],
    options: Options,
) -> (Vec<(u32, u32)>, usize) {
    if records.len() < 2 || fields.is_empty() {
        return (Vec::new(), 0);
    }
    candidate_pairs(&columns_of(fields, records), options.max_block)
}

/// Likely duplicate pairs among `records` (each a row of the fields' values,
/// in the order of `fields`).
pub fn find_duplicates<R: AsRef<str>>(
    fields: &[Field],
    records: &[Vec<R>],
    options: Options,
) -> Outcome {
    let n = records.len();
    if n < 2 || fields.is_empty() {
        return Outcome::default();
    }
    let columns = columns_of(fields, records);
    let (candidates, skipped_keys) = candidate_pairs(&columns, options.max_block);
    let mut scorer = Scorer {
        columns: &columns,
        weights: columns
            .iter()
            .map(|col| FieldWeights::new(col, PRIOR_AGREEMENT))
            .collect(),
        // About one duplicate per record among all n(n-1)/2 pairs.
        prior: -(((n as f64) - 1.0) / 2.0).max(1.0).log2(),
    };
    let width = fields.len();
    let flat = scorer.compare_all(&candidates);
    let comparisons: Vec<&Comparison> = flat.chunks(width).collect();

    // One EM step: agreement rates of the confident pairs become the m's.
    let confident: Vec<usize> = (0..candidates.len())
        .filter(|&i| scorer.score(candidates[i].0 as usize, comparisons[i]) >= 0.99)
        .collect();
    if confident.len() >= 10 {
        for (f, col) in columns.iter().enumerate() {
            let (mut agree, mut both) = (0usize, 0usize);
            for &i in &confident {
                if let Some((s, _)) = comparisons[i][f] {
                    both += 1;
                    if s >= col.kind.floor() {
                        agree += 1;
                    }
                }
            }
            if both > 0 {
                scorer.set_agreement(f, (agree as f64 / both as f64).clamp(0.5, 0.995));
            }
        }
    }

    let mut pairs: Vec<Pair> = candidates
        .iter()
        .zip(&comparisons)
        .filter_map(|(&(a, b), cmp)| {
            let score = scorer.score(a as usize, cmp);
            (score >= options.threshold).then(|| Pair {
                a: a as usize,
                b: b as usize,
                score,
                evidence: evidence_of(cmp, &columns),
            })
        })
        .collect();
    link_clusters(&scorer, &columns, &mut pairs, options.threshold);
    pairs.sort_by(|x, y| {
        y.score
            .total_cmp(&x.score)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    Outcome {
        pairs,
        candidates: candidates.len(),
        skipped_keys,
    }
}

/// Two records both duplicates of a third are compared with each other even
/// when no blocking key brought them together, and scored with the
/// support of the third: their own evidence plus the weaker of their two
/// links to it.
fn link_clusters(scorer: &Scorer, columns: &[Column], pairs: &mut Vec<Pair>, threshold: f64) {
    let mut linked: HashMap<usize, Vec<(usize, f64)>> = HashMap::new();
    let mut known: std::collections::HashSet<(usize, usize)> = Default::default();
    for p in pairs.iter() {
        linked.entry(p.a).or_default().push((p.b, p.score));
        linked.entry(p.b).or_default().push((p.a, p.score));
        known.insert((p.a, p.b));
    }
    let mut added = Vec::new();
    let mut hubs: Vec<&usize> = linked.keys().collect();
    hubs.sort_unstable();
    for hub in hubs {
        let around = &linked[hub];
        for (x, &(a, sa)) in around.iter().enumerate() {
            for &(b, sb) in &around[x + 1..] {
                let (a, b) = (a.min(b), a.max(b));
                if !known.insert((a, b)) {
                    continue;
                }
                let cmp = scorer.compare(a, b);
                let own = scorer.score(a, &cmp);
                // Bayes with the hub's links as a second opinion.
                let support = sa.min(sb);
                let combined = own * support / (own * support + (1.0 - own) * (1.0 - support));
                let score = own.max(combined.min(support));
                if score >= threshold {
                    added.push(Pair {
                        a,
                        b,
                        score,
                        evidence: evidence_of(&cmp, columns),
                    });
                }
            }
        }
    }
    pairs.extend(added);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(spec: &[(&str, FieldKind)]) -> Vec<Field> {
        spec.iter()
            .map(|(n, k)| Field {
                name: n.to_string(),
                kind: *k,
            })
            .collect()
    }

    #[test]
    fn kinds_are_inferred_from_headers_and_values() {
        let cases: [(&str, &[&str], FieldKind); 6] = [
            ("手机", &["13800138000"], FieldKind::Phone),
            ("email", &["a@b.cn"], FieldKind::Email),
            ("soc_sec_id", &["6988048", "7364009"], FieldKind::Code),
            ("客户名称", &["字节跳动"], FieldKind::Company),
            (
                "name",
                &["北京某某科技有限公司", "上海某某集团"],
                FieldKind::Company,
            ),
            ("surname", &["waller", "berry"], FieldKind::Text),
        ];
        for (header, values, want) in cases {
            assert_eq!(
                FieldKind::infer(header, values.iter().copied()),
                want,
                "{header}"
            );
        }
    }

    #[test]
    fn the_same_company_under_three_names_is_found_with_reasons() {
        let f = fields(&[("名称", FieldKind::Company), ("电话", FieldKind::Phone)]);
        let records = vec![
            vec!["北京字节跳动科技有限公司", "010-12345678"],
            vec!["字节跳动(北京)科技有限公司", ""],
            vec!["字节跳动科技", ""],
            vec!["北京百度网讯科技有限公司", "010-59928888"],
            vec!["杭州娃哈哈集团有限公司", "0571-86032866"],
            vec!["上海电气集团股份有限公司", "021-33261888"],
            vec!["中国石油化工集团有限公司", "010-59960114"],
            vec!["华为技术有限公司", "0755-28780808"],
        ];
        let out = find_duplicates(&f, &records, Options::default());
        let found: Vec<(usize, usize)> = out.pairs.iter().map(|p| (p.a, p.b)).collect();
        for want in [(0, 1), (0, 2), (1, 2)] {
            assert!(found.contains(&want), "{want:?} in {found:?}");
        }
        assert_eq!(found.len(), 3, "{found:?}");
        let best = &out.pairs[0];
        assert_eq!(best.evidence[0].describe(&f), "名称: same normalized name");
    }

    #[test]
    fn rare_agreements_weigh_more_than_common_ones() {
        let f = fields(&[("surname", FieldKind::Text), ("state", FieldKind::Text)]);
        let mut records: Vec<Vec<String>> = (0..60)
            .map(|i| vec![format!("name{i:03}x"), "nsw".to_string()])
            .collect();
        records.push(vec!["zyxwvut".into(), "vic".into()]);
        records.push(vec!["zyxwvut".into(), "nsw".into()]);
        let out = find_duplicates(&f, &records, Options::default());
        // Sharing nsw says nothing; the rare surname carries the pair.
        assert_eq!(out.pairs.len(), 1, "{:?}", out.pairs);
        assert_eq!((out.pairs[0].a, out.pairs[0].b), (60, 61));
    }

    #[test]
    fn missing_values_are_no_evidence_and_tiny_inputs_are_fine() {
        let f = fields(&[("a", FieldKind::Code)]);
        assert!(find_duplicates(&f, &[vec!["1"]], Options::default())
            .pairs
            .is_empty());
        let out = find_duplicates(&f, &[vec![""], vec![""], vec![""]], Options::default());
        assert!(out.pairs.is_empty());
        assert_eq!(out.candidates, 0);
    }
}
