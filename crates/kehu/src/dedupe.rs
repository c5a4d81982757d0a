//! `kehu dedupe FILE --fields F1,F2,… --id-field ID [--threshold T]`: the
//! product's duplicate matcher on a CSV, before it is imported.

use anyhow::{bail, Context, Result};
use kehu_core::dedupe::{find_duplicates, Field, FieldKind};
use kehu_core::export::csv_field;
use kehu_server::tabular::Table;
use std::io::Write;

pub struct Options {
    pub file: std::path::PathBuf,
    pub fields: Vec<String>,
    pub id_field: String,
    pub threshold: f64,
    pub reasons: bool,
}

/// `NAME` or `NAME:KIND`.
fn parse_field(spec: &str) -> Result<(String, Option<FieldKind>)> {
    match spec.rsplit_once(':') {
        Some((name, kind)) => {
            let Some(kind) = FieldKind::parse(kind.trim()) else {
                let kinds: Vec<&str> = FieldKind::ALL.iter().map(|k| k.name()).collect();
                bail!(
                    "--fields: 未知的比较方式 / unknown kind {kind:?} for {name:?}; one of {}",
                    kinds.join(", ")
                );
            };
            Ok((name.trim().to_string(), Some(kind)))
        }
        None => Ok((spec.trim().to_string(), None)),
    }
}

pub fn run(opts: &Options) -> Result<()> {
    if !(0.0..=1.0).contains(&opts.threshold) {
        bail!(
            "--threshold: 应在 0 到 1 之间 / must be between 0 and 1, got {}",
            opts.threshold
        );
    }
    let table = Table::open(&opts.file)?;
    let headers = table.headers.clone();
    let column = |name: &str, flag: &str| {
        table.column(name).with_context(|| {
            format!(
                "{flag}: 文件中没有列 / no column {name:?} in {}; the columns are: {}",
                opts.file.display(),
                headers.join(", ")
            )
        })
    };
    let id_col = column(&opts.id_field, "--id-field")?;
    let mut wanted = Vec::new();
    for spec in opts.fields.iter().filter(|s| !s.trim().is_empty()) {
        let (name, kind) = parse_field(spec)?;
        wanted.push((column(&name, "--fields")?, name, kind));
    }
    if wanted.is_empty() {
        bail!("--fields: 至少一列 / name at least one column");
    }

    let mut ids = Vec::new();
    let mut records: Vec<Vec<String>> = Vec::new();
    for row in table {
        let row = row?;
        let cell = |i: usize| row.cells.get(i).cloned().unwrap_or_default();
        ids.push(cell(id_col));
        records.push(wanted.iter().map(|(i, _, _)| cell(*i)).collect());
    }
    let fields: Vec<Field> = wanted
        .iter()
        .enumerate()
        .map(|(f, (_, name, kind))| Field {
            name: name.clone(),
            kind: kind
                .unwrap_or_else(|| FieldKind::infer(name, records.iter().map(|r| r[f].as_str()))),
        })
        .collect();

    let outcome = find_duplicates(
        &fields,
        &records,
        kehu_core::dedupe::Options {
            threshold: opts.threshold,
            ..Default::default()
        },
    );
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    writeln!(
        out,
        "id1,id2,score{}",
        if opts.reasons { ",reasons" } else { "" }
    )?;
    for p in &outcome.pairs {
        write!(
            out,
            "{},{},{:.4}",
            csv_field(&ids[p.a]),
            csv_field(&ids[p.b]),
            p.score
        )?;
        if opts.reasons {
            let why: Vec<String> = p.evidence.iter().map(|e| e.describe(&fields)).collect();
            write!(out, ",{}", csv_field(&why.join("; ")))?;
        }
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

/// `kehu duplicates scan [--truth FILE]`: the whole-database scan, as the
/// server runs it; with known duplicate pairs (a CSV of two customer codes
/// per line), how many of them the blocking compared (pairs completeness)
/// and the queue holds (recall), and how many other pairs it holds.
pub async fn scan(db: &str, json: bool, truth: Option<&std::path::Path>) -> Result<()> {
    let store = crate::open_store(db).await?;
    let truth = match truth {
        Some(path) => Some(read_truth(&store, path).await?),
        None => None,
    };
    let report = kehu_server::duplicates::scan(&store)
        .await
        .map_err(crate::one_line)?;
    let evaluation = match truth {
        Some(truth) => Some(evaluate(&store, &truth).await?),
        None => None,
    };
    if json {
        let mut out = serde_json::to_value(&report)?;
        if let (Some(e), Some(o)) = (&evaluation, out.as_object_mut()) {
            o.insert(
                "truth".into(),
                serde_json::json!({
                    "known": e.known, "compared": e.compared, "pairs_completeness": e.pairs_completeness,
                    "found": e.found, "recall": e.recall, "other_pairs": e.other_pairs,
                }),
            );
        }
        println!("{out}");
    } else {
        if let Some(e) = &evaluation {
            println!(
                "known pairs {}: compared {} (pairs completeness {:.4}), in the queue {} (recall {:.4}); other pairs in the queue {}",
                e.known, e.compared, e.pairs_completeness, e.found, e.recall, e.other_pairs
            );
        }
        println!(
            "{} customers compared ({} candidate pairs, {} common keys skipped): {} likely pairs, {} open in the queue, {} rejected before and left so \
             (read {:.1} s, matched {:.1} s, stored {:.1} s)",
            report.customers,
            report.candidates,
            report.skipped_keys,
            report.found,
            report.open,
            report.still_rejected,
            report.read_seconds,
            report.match_seconds,
            report.store_seconds
        );
        println!(
            "{} contacts compared within their customers: {} pairs likely one person, {} open in the queue ({:.1} s)",
            report.contacts, report.contact_pairs_found, report.contact_pairs_open, report.contact_seconds
        );
    }
    Ok(())
}

/// `kehu duplicates list`: the queue (or the rejected pairs) as CSV
/// `pair,score,code_a,name_a,code_b,name_b,reasons`.
/// Known duplicate pairs as customer ids (lower first); codes not found are an error.
async fn read_truth(
    store: &kehu_store::Store,
    path: &std::path::Path,
) -> Result<std::collections::HashSet<(i64, i64)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--truth: cannot read {}", path.display()))?;
    let mut pairs = std::collections::HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let mut codes = line
            .trim()
            .trim_start_matches('\u{feff}')
            .split(',')
            .map(str::trim);
        let (Some(x), Some(y)) = (codes.next(), codes.next()) else {
            continue;
        };
        if n == 0 && store.customer_by_code(x).await.is_err() {
            continue; // a header row
        }
        let id = |code: &str| {
            let code = code.to_string();
            async move {
                store
                    .customer_by_code(&code)
                    .await
                    .map(|c| c.id)
                    .with_context(|| format!("--truth line {}: no customer {code}", n + 1))
            }
        };
        let (a, b) = (id(x).await?, id(y).await?);
        pairs.insert((a.min(b), a.max(b)));
    }
    Ok(pairs)
}

/// How the scan did on known pairs.
struct Evaluation {
    known: usize,
    compared: usize,
    pairs_completeness: f64,
    found: usize,
    recall: f64,
    other_pairs: usize,
}

async fn evaluate(
    store: &kehu_store::Store,
    truth: &std::collections::HashSet<(i64, i64)>,
) -> Result<Evaluation> {
    use kehu_server::duplicates::{scan_input, scan_options};
    let rows = store.dedupe_rows().await?;
    let (fields, records) = scan_input(&rows);
    let (candidates, _) = kehu_core::dedupe::candidate_pairs_of(&fields, &records, scan_options());
    let compared = candidates
        .iter()
        .filter(|&&(a, b)| {
            let (x, y) = (rows[a as usize].id, rows[b as usize].id);
            truth.contains(&(x.min(y), x.max(y)))
        })
        .count();
    let (open, _) = store
        .list_pairs("open", &kehu_store::listing::ScopeFilter::All, i64::MAX, 0)
        .await?;
    let found = open
        .iter()
        .filter(|p| truth.contains(&(p.a_id, p.b_id)))
        .count();
    let known = truth.len().max(1) as f64;
    Ok(Evaluation {
        known: truth.len(),
        compared,
        pairs_completeness: compared as f64 / known,
        found,
        recall: found as f64 / known,
        other_pairs: open.len() - found,
    })
}

/// The queue as CSV on standard output, `limit` pairs after `offset`; when
/// there are more, standard error says which were shown and how to go on.
pub async fn list(db: &str, status: &str, limit: i64, offset: i64) -> Result<()> {
    let store = crate::open_store(db).await?;
    if !matches!(status, "open" | "rejected") {
        bail!("--status: open | rejected");
    }
    let (pairs, total) = store
        .list_pairs(
            status,
            &kehu_store::listing::ScopeFilter::All,
            limit,
            offset,
        )
        .await?;
    let shown_to = offset + pairs.len() as i64;
    if shown_to < total || (offset > 0 && total > 0) {
        let (from, next) = (offset + 1, shown_to);
        let (more_zh, more_en) = if shown_to < total {
            (
                format!("；下一页 --offset {next}"),
                format!("; next page: --offset {next}"),
            )
        } else {
            Default::default()
        };
        eprintln!(
            "显示第 {from}–{shown_to} 对，共 {total} 对{more_zh} / pairs {from}–{shown_to} of {total}{more_en}"
        );
    }
    let mut ids: Vec<i64> = pairs.iter().flat_map(|p| [p.a_id, p.b_id]).collect();
    ids.sort_unstable();
    ids.dedup();
    let customers: std::collections::HashMap<i64, (String, String)> = store
        .customers_in(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, (c.code, c.name)))
        .collect();
    let mut out = std::io::stdout().lock();
    let line = writeln!(out, "pair,score,code_a,name_a,code_b,name_b,reasons");
    if line.is_err() {
        return Ok(());
    }
    let none = (String::new(), String::new());
    for p in pairs {
        let (a, b) = (
            customers.get(&p.a_id).unwrap_or(&none),
            customers.get(&p.b_id).unwrap_or(&none),
        );
        let line = writeln!(
            out,
            "{},{:.4},{},{},{},{},{}",
            p.id,
            p.score,
            csv_field(&a.0),
            csv_field(&a.1),
            csv_field(&b.0),
            csv_field(&b.1),
            csv_field(&p.reasons.join("; "))
        );
        // A reader that stopped (`| head`) is not an error.
        if line.is_err() {
            break;
        }
    }
    Ok(())
}
