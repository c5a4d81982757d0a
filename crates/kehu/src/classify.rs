//! `kehu classify [--scheme KEY]… [--customer CODE] [--as-of DATE] [--json] [--dry-run]`:
//! evaluates the classification schemes for every customer (or one) as of a
//! date, prints the classes and stores the changes with their history.
//!
//! Two passes over the customers, batch by batch: the first measures what
//! percentile indicators rank against (only for schemes that have them), the
//! second evaluates every scheme in dependency order.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kehu_core::classify::presets::{compile_presets, PRESET_KEYS};
use kehu_core::classify::{
    evaluation_order, score_text, ClassContext, Facts, Population, PopulationBuilder, Scheme,
};
use kehu_core::Lang;
use kehu_store::classes::{cause, ClassChange, ClassWriter};
use kehu_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;

/// Customers read per batch.
const BATCH: i64 = 5_000;

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
    let schemes = compile_schemes(&store, &opts.schemes).await?;
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

    let populations = populations(&store, &schemes, as_of, &bar).await?;
    bar.set_position(0);
    bar.set_message("classifying");
    let mut counts: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new(); schemes.len()];
    // One transaction for the whole run: stored whole or not at all.
    let mut writer = match opts.dry_run {
        true => None,
        false => Some(
            ClassWriter::begin(&store, as_of, cause::EVALUATION, None)
                .await
                .context("starting to store classes")?,
        ),
    };
    let mut after = 0;
    loop {
        let batch = match only {
            Some(id) => vec![store.facts_of(id).await?],
            None => store
                .facts_after(after, BATCH)
                .await
                .context("reading customers")?,
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            break;
        };
        after = last.customer_id;
        let stored = store
            .classes_between(first.customer_id, last.customer_id)
            .await
            .context("reading stored classes")?;
        let mut changes = Vec::new();
        let none = BTreeMap::new();
        for f in &batch {
            let stored_here = stored.get(&f.customer_id).unwrap_or(&none);
            let mut classes: BTreeMap<String, String> = BTreeMap::new();
            for (i, s) in schemes.iter().enumerate() {
                let before = stored_here.get(&s.key);
                let ctx = ClassContext {
                    previous: before.map(String::as_str),
                    others: Some(&classes),
                };
                let decision = s.evaluate(f, as_of, &populations[i], ctx);
                let class = s.classes[decision.class].key.clone();
                let score = s.weighted_score(&decision);
                *counts[i].entry(class.clone()).or_default() += 1;
                if opts.json {
                    print_json(f, s, &class, score, as_of);
                } else if only.is_some() {
                    let e = s.explain(f, as_of, &populations[i], ctx, Lang::Zh);
                    println!("{:<18} {:<10} {}", s.key, class, e.rule);
                }
                if before != Some(&class) {
                    changes.push(ClassChange {
                        customer_id: f.customer_id,
                        scheme_key: s.key.clone(),
                        from: before.cloned(),
                        to: class.clone(),
                        score,
                    });
                }
                classes.insert(s.key.clone(), class);
            }
        }
        if let Some(w) = writer.as_mut() {
            w.write(&changes).await.context("storing classes")?;
        }
        bar.inc(batch.len() as u64);
        if only.is_some() {
            break;
        }
    }
    let stored = match writer {
        Some(w) => Some(w.finish().await.context("committing classes")?),
        None => None,
    };
    bar.finish_and_clear();
    if !opts.json && only.is_none() {
        println!("as of {as_of}:");
        for (s, c) in schemes.iter().zip(&counts) {
            let parts: Vec<String> = c.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!("  {:<18} {}", s.key, parts.join(", "));
        }
    }
    // Stdout stays JSON lines with --json; the count goes to stderr then.
    let note = match stored {
        Some(n) => format!("{n} class changes stored"),
        None => "dry run: nothing stored".to_string(),
    };
    if opts.json {
        eprintln!("{note}");
    } else {
        println!("{note}");
    }
    store.db.close().await;
    Ok(())
}

fn print_json(f: &Facts, s: &Scheme, class: &str, score: Option<i64>, as_of: chrono::NaiveDate) {
    let mut line = serde_json::json!({"customer": f.code, "scheme": s.key, "class": class, "as_of": as_of.to_string()});
    if let Some(score) = score {
        line["score"] = serde_json::json!(score_text(score));
    }
    println!("{line}");
}

/// The preset schemes (all, or the named ones plus those they read), in evaluation order.
async fn compile_schemes(store: &Store, wanted: &[String]) -> Result<Vec<Scheme>> {
    let custom = store
        .custom_field_defs()
        .await
        .context("reading custom fields")?;
    let compiled = compile_presets(&custom).map_err(|(key, e)| {
        anyhow::anyhow!("scheme {key} does not compile with this database's custom fields: {e}")
    })?;
    for w in wanted {
        if !compiled.iter().any(|s| &s.key == w) {
            bail!(
                "unknown scheme {w}: the schemes are {}",
                PRESET_KEYS.join(", ")
            );
        }
    }
    let order = evaluation_order(&compiled).map_err(|cycle| {
        anyhow::anyhow!("schemes read each other's classes in a cycle: {cycle}")
    })?;
    let mut ordered: Vec<Scheme> = order.into_iter().map(|i| compiled[i].clone()).collect();
    if !wanted.is_empty() {
        // Keep the wanted ones and whatever they read.
        let mut keep: Vec<String> = wanted.to_vec();
        for s in ordered.iter().rev() {
            if keep.contains(&s.key) {
                keep.extend(s.depends_on.iter().cloned());
            }
        }
        ordered.retain(|s| keep.contains(&s.key));
    }
    Ok(ordered)
}

/// The first pass: what each scheme's percentile indicators rank against.
async fn populations(
    store: &Store,
    schemes: &[Scheme],
    as_of: chrono::NaiveDate,
    bar: &ProgressBar,
) -> Result<Vec<Population>> {
    let mut builders: Vec<PopulationBuilder> = schemes
        .iter()
        .map(|s| PopulationBuilder::new(s, as_of))
        .collect();
    if !builders.iter().any(PopulationBuilder::needed) {
        return Ok(vec![Population::default(); schemes.len()]);
    }
    bar.set_message("ranking");
    let mut after = 0;
    loop {
        let batch = store
            .facts_after(after, BATCH)
            .await
            .context("reading customers")?;
        let Some(last) = batch.last() else { break };
        after = last.customer_id;
        for f in &batch {
            builders
                .iter_mut()
                .filter(|b| b.needed())
                .for_each(|b| b.add(f));
        }
        bar.inc(batch.len() as u64);
    }
    Ok(builders
        .into_iter()
        .map(PopulationBuilder::finish)
        .collect())
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
