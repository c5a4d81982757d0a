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

/// `kehu duplicates scan`: the whole-database scan, as the server runs it.
pub async fn scan(db: &str, json: bool) -> Result<()> {
    let store = crate::open_store(db).await?;
    let report = kehu_server::duplicates::scan(&store)
        .await
        .map_err(crate::one_line)?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
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
    }
    Ok(())
}

/// `kehu duplicates list`: the queue (or the rejected pairs) as CSV
/// `pair,score,code_a,name_a,code_b,name_b,reasons`.
pub async fn list(db: &str, status: &str, limit: i64) -> Result<()> {
    let store = crate::open_store(db).await?;
    if !matches!(status, "open" | "rejected") {
        bail!("--status: open | rejected");
    }
    let (pairs, _) = store
        .list_pairs(status, &kehu_store::listing::ScopeFilter::All, limit, 0)
        .await?;
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
