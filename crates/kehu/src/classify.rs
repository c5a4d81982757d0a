//! `kehu classify [--scheme KEY]… [--customer CODE] [--as-of DATE] [--json] [--dry-run]`:
//! evaluates the classification schemes for every customer (or one) as of a
//! date, prints the classes and stores the changes with their history.
//!
//! The published scheme versions run through the server's classification
//! service (`kehu_server::classifier`), the same engine as the daily job and
//! publishing: one pass reading and measuring every customer, batch by
//! batch, then every scheme decided in dependency order, then one
//! transaction for the changes.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kehu_core::classify::score_text;
use kehu_core::Lang;
use kehu_server::classifier::{Classifier, Outcome, Phase, RunPlan};
use kehu_store::classes::cause;
use kehu_store::StoreError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

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
    let total = match only {
        Some(_) => 1,
        None => store.customer_count().await.context("counting customers")?,
    };
    let bar = progress(total, opts.customer.is_none());
    let started = Instant::now();
    // When deciding began: the summary tells reading from deciding.
    let deciding_since = std::sync::OnceLock::new();
    let tick = |phase: Phase, n: u64| {
        if phase == Phase::Deciding && deciding_since.set(Instant::now()).is_ok() {
            bar.set_message("classifying");
            bar.set_position(0);
        } else if phase == Phase::Reading && bar.message().is_empty() {
            bar.set_message("reading");
        }
        bar.inc(n)
    };
    let mut plan = RunPlan::over(&set, &targets, as_of, cause::EVALUATION);
    plan.only = only;
    // One customer: explained against everyone's ranking, like a full run.
    let explained = match only {
        Some(id) => {
            plan.populations = Some(
                classifier
                    .ranked_populations(&set, &plan.evaluated, as_of)
                    .await
                    .map_err(|e| anyhow::anyhow!("ranking customers: {e}"))?,
            );
            Some(
                store
                    .facts_of(id)
                    .await
                    .context("reading the customer's data")?,
            )
        }
        None => None,
    };
    let visit = |o: &Outcome<'_>| {
        if opts.json {
            print_json(o, as_of);
        } else if let Some(facts) = &explained {
            let rule = match o.verdict {
                Some(_) => {
                    o.scheme
                        .explain(facts, as_of, o.population, o.context, Lang::Zh)
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
    let decided = Instant::now();
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
            Some(writer.finish().await.context("committing classes")?.changes)
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
        let reading_done = deciding_since.get().copied().unwrap_or(decided);
        println!(
            "time: reading and measuring {:.2} s, deciding {:.2} s, storing {:.2} s",
            (reading_done - started).as_secs_f64(),
            (decided - reading_done).as_secs_f64(),
            decided.elapsed().as_secs_f64()
        );
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
    let mut line = serde_json::json!({"customer": o.code, "scheme": o.scheme.key, "class": o.class, "as_of": as_of.to_string()});
    if let Some(score) = o.score {
        line["score"] = serde_json::json!(score_text(score));
    }
    if o.verdict.is_none() {
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
