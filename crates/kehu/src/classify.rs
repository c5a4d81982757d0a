//! `kehu classify [--scheme KEY]… [--customer CODE] [--as-of DATE] [--json] [--dry-run]`:
//! evaluates the classification schemes for every customer (or one) as of a
//! date, prints the classes and stores the changes with their history.
//!
//! The published scheme versions run through the server's classification
//! service (`kehu_server::classifier`), the same engine as the daily job and
//! publishing: two passes over the customers, batch by batch (ranking for
//! percentile schemes, if any; then every scheme in dependency order), then
//! one transaction for the changes.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kehu_core::classify::score_text;
use kehu_core::Lang;
use kehu_server::classifier::{Classifier, Outcome, RunPlan};
use kehu_store::classes::cause;
use kehu_store::StoreError;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct Options {
    pub schemes: Vec<String>,
    pub customer: Option<String>,
    pub as_of: Option<chrono::NaiveDate>,
    pub json: bool,
    pub dry_run: bool,
}

pub async fn run(db: &str, opts: Options) -> Result<()> {
    let store = crate::open_store(db).await?;
    let as_of = opts.as_of.unwrap_or_else(|| store.today());
    let classifier = Classifier::new(store.clone());
    let set = classifier
        .published()
        .await
        .map_err(|e| anyhow::anyhow!("the published schemes do not compile: {e:?}"))?;
    for w in &opts.schemes {
        if set.index(w).is_none() {
            let keys: Vec<&str> = set.schemes.iter().map(|s| s.key.as_str()).collect();
            bail!("unknown scheme {w}: the schemes are {}", keys.join(", "));
        }
    }
    // The wanted schemes and those whose class they read.
    let targets = match opts.schemes.is_empty() {
        true => set.keys(),
        false => set.with_inputs(&opts.schemes),
    };
    let only = match &opts.customer {
        Some(code) => match store.customer_by_code(code).await {
            Ok(c) => Some(c.id),
            Err(StoreError::NotFound) => bail!("no customer with code {code}"),
            Err(e) => return Err(e).with_context(|| format!("looking up customer {code}")),
        },
        None => None,
    };
    let total = store.customer_count().await.context("counting customers")?;
    let bar = progress(total, opts.customer.is_none());
    let tick = |n: u64| bar.inc(n);

    bar.set_message("ranking");
    let populations = classifier
        .populations(&set, &targets, as_of, &tick)
        .await
        .map_err(|e| anyhow::anyhow!("reading customers: {e}"))?;
    bar.set_position(0);
    bar.set_message("classifying");
    let plan = RunPlan {
        set: &set,
        populations,
        as_of,
        cause: cause::EVALUATION,
        only,
        adjust: None,
    };
    let visit = |o: &Outcome<'_>| {
        if opts.json {
            print_json(o, as_of);
        } else if only.is_some() {
            let rule = match o.decision {
                Some(_) => {
                    o.scheme
                        .explain(o.facts, as_of, o.population, o.context, Lang::Zh)
                        .rule
                }
                None => "人工调整 override".to_string(),
            };
            println!("{:<18} {:<10} {}", o.scheme.key, o.class, rule);
        }
    };
    let result = classifier
        .evaluate(&plan, visit, &tick)
        .await
        .map_err(|e| anyhow::anyhow!("classifying: {e}"))?;
    bar.finish_and_clear();
    // Stored in one transaction: whole or not at all.
    let stored = match opts.dry_run {
        true => None,
        false => {
            let mut writer = classifier
                .writer(as_of, None)
                .await
                .context("starting to store classes")?;
            if opts.schemes.is_empty() && only.is_none() && as_of == store.today() {
                // Everyone, every scheme, today: the daily job's work for today is done.
                kehu_store::claim_job_day(writer.tx(), kehu_server::jobs::CLASSIFY_JOB, as_of)
                    .await
                    .context("recording the day's classification")?;
            }
            writer
                .write(&result.changes)
                .await
                .context("storing classes")?;
            Some(writer.finish().await.context("committing classes")?)
        }
    };
    if !opts.json && only.is_none() {
        let mut changed: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &result.changes {
            *changed.entry(c.scheme_key.as_str()).or_default() += 1;
        }
        println!("as of {as_of}, {} customers:", result.customers);
        for (scheme, counts) in &result.counts {
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let moved = changed.get(scheme.as_str()).copied().unwrap_or(0);
            println!("  {scheme:<18} {}  ({moved} changed)", parts.join(", "));
        }
    }
    // Stdout stays JSON lines with --json; the count goes to stderr then.
    let note = match stored {
        Some(n) => format!("{n} class changes stored"),
        None => format!(
            "dry run: {} class changes, nothing stored",
            result.changes.len()
        ),
    };
    if opts.json {
        eprintln!("{note}");
    } else {
        println!("{note}");
    }
    store.db.close().await;
    Ok(())
}

fn print_json(o: &Outcome<'_>, as_of: chrono::NaiveDate) {
    let mut line = serde_json::json!({"customer": o.facts.code, "scheme": o.scheme.key, "class": o.class, "as_of": as_of.to_string()});
    if let Some(score) = o.score {
        line["score"] = serde_json::json!(score_text(score));
    }
    if o.decision.is_none() {
        line["overridden"] = serde_json::json!(true);
    }
    println!("{line}");
}

fn progress(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {human_pos}/{human_len} customers {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
