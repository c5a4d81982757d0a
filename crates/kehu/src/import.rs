//! `kehu import customers|contacts|orders|interactions FILE [--mapping M] [--dry-run]`
//! and `kehu imports list|undo ID`: the server's import engine
//! (`kehu_server::imports`) on a CSV or workbook, with a progress bar, the
//! counts on stdout and the error report in a file.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use kehu_core::import::RowProblem;
use kehu_core::import_mapping::{ImportKind, MappingFile};
use kehu_core::Lang;
use kehu_server::imports::{self, ImportOptions, ImportReport, Importer, OnInvalid, ProblemSink};
use kehu_server::tabular::Table;
use kehu_server::{AppState, Settings};
use std::path::PathBuf;

pub struct Options {
    pub kind: String,
    pub file: PathBuf,
    pub mapping: Option<PathBuf>,
    pub dry_run: bool,
    pub on_invalid: String,
    pub skip_suspects: bool,
    pub errors: Option<PathBuf>,
    pub owner: Option<String>,
    pub json: bool,
}

/// Problems to the error file as they come (every one, not only the first
/// thousand the report keeps), rows read to the progress bar.
struct Sink {
    bar: ProgressBar,
    file: Option<std::io::BufWriter<std::fs::File>>,
    failed: Option<std::io::Error>,
}

impl ProblemSink for Sink {
    fn problem(&mut self, p: &RowProblem) {
        use std::io::Write;
        if let (Some(f), None) = (&mut self.file, &self.failed) {
            let csv = imports::problems_csv(std::slice::from_ref(p), Lang::Zh);
            // Without the header line and BOM of a whole report.
            let line = csv.split_once("\r\n").map_or("", |(_, rest)| rest);
            if let Err(e) = f.write_all(line.as_bytes()) {
                self.failed = Some(e);
            }
        }
    }
    fn progress(&mut self, rows: u64) {
        self.bar.set_position(rows);
    }
}

fn read_mapping(path: &std::path::Path) -> Result<MappingFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--mapping: cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "--mapping {}: not a mapping file ({{\"kind\": \"customers\", \"columns\": {{\"表头\": \"field\"}}}})",
            path.display()
        )
    })
}

pub async fn run(db: &str, opts: Options) -> Result<()> {
    let Some(kind) = ImportKind::parse(&opts.kind) else {
        bail!(
            "kehu import: unknown kind {:?}; one of: {}",
            opts.kind,
            imports::kind_names()
        );
    };
    let Some(on_invalid) = OnInvalid::parse(&opts.on_invalid) else {
        bail!(
            "--on-invalid: {:?} is neither skip nor abort",
            opts.on_invalid
        );
    };
    let sha = imports::sha256_of_file(&opts.file)
        .with_context(|| format!("cannot read {}", opts.file.display()))?;
    let store = crate::open_store(db).await?;
    // A mapping file, or else a template saved in the UI under that name.
    let mapping = match opts.mapping.as_deref() {
        Some(path) if path.exists() => Some(read_mapping(path)?),
        Some(name) => {
            let name = name.to_string_lossy();
            let saved = store.mapping_named(kind.name(), &name).await.map_err(|_| {
                anyhow::anyhow!(
                    "--mapping {name}: neither a file nor a saved {} mapping template",
                    kind.name()
                )
            })?;
            Some(imports::template_mapping(&saved))
        }
        None => None,
    };
    let owner = match &opts.owner {
        None => None,
        Some(name) => Some(
            store
                .auth_user_by_name(name)
                .await
                .map_err(|_| anyhow::anyhow!("--owner: no user named {name:?}"))?
                .user,
        ),
    };
    let state = AppState::new(store, Settings::offline(db));
    let importer = Importer {
        user_id: owner.as_ref().map(|u| u.id),
        team: owner.and_then(|u| u.team),
        actor: None,
    };
    let options = ImportOptions {
        kind,
        file_name: opts
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        mapping,
        on_invalid,
        skip_suspects: opts.skip_suspects,
    };
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(if opts.dry_run {
        "checking"
    } else {
        "importing"
    });
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let file = match &opts.errors {
        None => None,
        Some(path) => {
            use std::io::Write;
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("--errors: cannot create {}", path.display()))?,
            );
            let header = imports::problems_csv(&[], Lang::Zh);
            f.write_all(header.as_bytes())?;
            Some(f)
        }
    };
    let mut sink = Sink {
        bar: bar.clone(),
        file,
        failed: None,
    };
    let open = |path: &std::path::Path| {
        Table::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    };
    let mut timing = None;
    let report = if opts.dry_run {
        let report = imports::dry_run(&state, open(&opts.file)?, &options, &importer, &mut sink)
            .await
            .map_err(crate::one_line)?;
        let id = state
            .store
            .record_unapplied(
                &kehu_store::imports::NewImport {
                    kind: kind.name(),
                    file_name: &options.file_name,
                    file_sha256: &sha,
                    user_id: importer.user_id,
                },
                &report.outcome(None, opts.skip_suspects),
                None,
            )
            .await?;
        ImportReport {
            id: Some(id),
            ..report
        }
    } else {
        let started = std::time::Instant::now();
        let (report, touched) = imports::apply(
            &state,
            open(&opts.file)?,
            &options,
            &importer,
            None,
            &sha,
            &mut sink,
        )
        .await
        .map_err(crate::one_line)?;
        let written = started.elapsed();
        // Said at once: the import is committed, while bringing classes up
        // to date after a large one takes minutes.
        bar.suspend(|| {
            eprintln!(
                "checked and written in {:.1} s (committed); now bringing the classes and tag rules of {} customer(s) up to date",
                written.as_secs_f64(),
                touched.customers.len()
            )
        });
        bar.set_message("classifying");
        let started = std::time::Instant::now();
        imports::after_import(&state, &touched, None).await;
        state.audit(
            None,
            "import.apply",
            format!("import:{}", report.id.unwrap_or(0)),
            serde_json::json!({"kind": kind.name(), "file": opts.file.display().to_string(), "counts": report.counts, "via": "cli"}),
        );
        state.auditor.flush().await;
        timing = Some((written, touched.customers.len(), started.elapsed()));
        report
    };
    bar.finish_and_clear();
    if let Some(mut f) = sink.file.take() {
        use std::io::Write;
        f.flush()?;
    }
    if let Some(e) = sink.failed {
        bail!("--errors: writing the error report failed: {e}");
    }
    print_report(&report, opts.json, opts.errors.is_some())?;
    if let Some((written, customers, classified)) = timing {
        eprintln!(
            "checked and written in {:.1} s; classes and tag rules of {customers} customer(s) brought up to date in {:.1} s",
            written.as_secs_f64(),
            classified.as_secs_f64()
        );
    }
    if report.status == "refused" {
        bail!(
            "import refused: {} invalid row(s), nothing written (use --on-invalid skip to import the valid rows)",
            report.counts.invalid
        );
    }
    Ok(())
}

fn print_report(r: &ImportReport, json: bool, errors_in_file: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let c = &r.counts;
    let status = match r.status.as_str() {
        "dry_run" => "试运行 dry run — nothing written",
        "applied" => "已导入 applied",
        "refused" => "已拒绝 refused — nothing written",
        other => other,
    };
    println!(
        "import #{} {} ← {} ({status})",
        r.id.unwrap_or(0),
        r.kind,
        r.file_name
    );
    println!(
        "rows {} · new {} · updated {} · unchanged {} · invalid {} · duplicate suspects {} (skipped {}) · 待跟进 {}",
        c.rows, c.new, c.updated, c.unchanged, c.invalid, c.duplicate_suspects, c.skipped, c.follow_up
    );
    let mapped: Vec<String> = r
        .mapping
        .iter()
        .map(|m| format!("{} → {}", m.header, m.field))
        .collect();
    println!("columns: {}", mapped.join(", "));
    if !r.problems.is_empty() && !errors_in_file {
        for p in r.problems.iter().take(20) {
            // The field always; the column too when the file has one for it.
            eprintln!(
                "row {} {}{}{}: {} ({:?})",
                p.row,
                if p.warning { "warning " } else { "" },
                p.field,
                if p.column.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", p.column)
                },
                p.reason_en,
                p.value
            );
        }
        if r.counts.problems > 20 {
            eprintln!(
                "… {} problems in all; --errors FILE writes them all",
                r.counts.problems
            );
        }
    }
    Ok(())
}

/// `kehu imports list`: the latest imports.
pub async fn list(db: &str) -> Result<()> {
    use std::io::Write;
    let store = crate::open_store(db).await?;
    let mut out = std::io::stdout().lock();
    for r in store.list_imports(None, 50).await? {
        let counts: imports::ImportCounts =
            serde_json::from_value(r.counts.clone()).unwrap_or_default();
        let line = writeln!(
            out,
            "#{}\t{}\t{}\t{}\t{}\tnew {} updated {} invalid {}",
            r.id,
            r.created_at.format("%Y-%m-%d %H:%M"),
            r.kind,
            r.status,
            r.file_name,
            counts.new,
            counts.updated,
            counts.invalid
        );
        // A reader that stopped (`| head`) is not an error.
        if line.is_err() {
            break;
        }
    }
    Ok(())
}

/// `kehu imports undo ID`: undoes an applied import as a whole.
pub async fn undo(db: &str, id: i64) -> Result<()> {
    let store = crate::open_store(db).await?;
    let state = AppState::new(store, Settings::offline(db));
    let summary = state
        .store
        .undo_import(id, None)
        .await
        .map_err(|e| crate::one_line(e.into()))?;
    imports::after_import(&state, &summary.touched, None).await;
    state.audit(
        None,
        "import.undo",
        format!("import:{id}"),
        serde_json::json!({"deleted": summary.deleted, "restored": summary.restored, "via": "cli"}),
    );
    state.auditor.flush().await;
    println!(
        "import #{id} undone: {} record(s) deleted, {} restored",
        summary.deleted, summary.restored
    );
    Ok(())
}
