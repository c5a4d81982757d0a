//! The `kehu` binary as scripts use it ("Contract for scripts" in design.md),
//! on a fresh SQLite and PostgreSQL database each.

use kehu_store::testing::TestDatabase;
use kehu_store::Backend;
use serde_json::{json, Value};
use std::process::{Command, Output};

fn kehu(url: &str, args: &[&str]) -> Output {
    kehu_with(url, args, &[])
}

/// As [`kehu`], with environment variables set. Unless they name a key
/// file, the keys are the tests' (`KEHU_KEY`), so no key file is made
/// in the working directory.
fn kehu_with(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kehu"));
    command.arg("--db").arg(url).args(args);
    if env.iter().any(|(k, _)| *k == "KEHU_KEY_FILE") {
        command.env_remove("KEHU_KEY");
    } else {
        command.env("KEHU_KEY", kehu_store::testing::test_key_env());
    }
    command
        .envs(env.iter().copied())
        .output()
        .expect("run kehu")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "kehu failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Postgres).await } )* }
    };
}

on_both_backends!(
    classify_design_example,
    export_a_segment,
    import_templates_and_undo,
    scan_and_list_duplicates,
    anomalies_and_calendar,
    import_with_a_saved_template,
    audit_verify_finds_tampering,
    generate_tasks_and_run_jobs,
    predict_on_the_database,
    report_classification,
    backup_and_restore_round_trip,
    rotate_keys_under_a_running_reader,
    tokens_listed_and_revoked
);

/// design.md's example, through the CLI: as of 2024-03-12, C2024001 → 战略型
/// and C2024002 → 优化型 in 价值分层 (value_tier).
async fn classify_design_example(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(&db.url, &["demo", "--customers", "40", "--seed", "7"]));
    for (code, want) in [("C2024001", "战略型"), ("C2024002", "优化型")] {
        let out = ok(kehu(
            &db.url,
            &[
                "classify",
                "--scheme",
                "value_tier",
                "--customer",
                code,
                "--as-of",
                "2024-03-12",
                "--json",
                "--dry-run",
            ],
        ));
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1, "{out}");
        assert_eq!(lines[0]["customer"], code);
        assert_eq!(lines[0]["scheme"], "value_tier");
        assert_eq!(lines[0]["class"], want, "{out}");
        assert_eq!(lines[0]["as_of"], "2024-03-12");
    }
    let c1 = store
        .customer_by_code("C2024001")
        .await
        .expect("C2024001")
        .id;
    assert!(
        store.class_history(c1).await.expect("history").is_empty(),
        "a dry run stores nothing"
    );

    // Every customer gets exactly one class per preset scheme, stored with its history.
    let run = kehu(&db.url, &["classify", "--as-of", "2024-03-12", "--json"]);
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("400 class changes stored"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let lines = json_lines(&ok(run));
    assert_eq!(lines.len(), 40 * 10, "40 customers × 10 schemes");
    for key in kehu_core::classify::presets::PRESET_KEYS {
        assert_eq!(
            lines.iter().filter(|l| l["scheme"] == *key).count(),
            40,
            "{key}"
        );
    }
    let history = store.class_history(c1).await.expect("history");
    assert_eq!(history.len(), 10);
    let value_tier = history
        .iter()
        .find(|h| h.scheme_key == "value_tier")
        .expect("value_tier");
    assert_eq!(
        (
            value_tier.from_class.as_deref(),
            value_tier.to_class.as_str(),
            value_tier.cause.as_str()
        ),
        (None, "战略型", "evaluation")
    );
    assert_eq!(value_tier.effective_on.to_string(), "2024-03-12");

    // The same date again changes nothing; a later date records only what moved.
    let again = kehu(&db.url, &["classify", "--as-of", "2024-03-12"]);
    assert!(ok(again).contains("0 class changes stored"));
    let later = ok(kehu(&db.url, &["classify", "--as-of", "2025-06-30"]));
    let moved: u64 = later
        .lines()
        .find_map(|l| l.strip_suffix(" class changes stored"))
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(moved > 0 && moved < 400, "{later}");
    let mut changed = Vec::new();
    for code in ["C2024001", "C2024002"] {
        let id = store.customer_by_code(code).await.expect("customer").id;
        changed.extend(
            store
                .class_history(id)
                .await
                .expect("history")
                .into_iter()
                .filter(|h| h.effective_on.to_string() == "2025-06-30"),
        );
    }
    assert!(changed.iter().all(|h| h.from_class.is_some() && h.from_class.as_deref() != Some(h.to_class.as_str())), "{changed:?}");

    // The summary names every scheme; errors exit non-zero with the reason on stderr.
    let summary = ok(kehu(
        &db.url,
        &["classify", "--as-of", "2024-03-12", "--dry-run"],
    ));
    assert!(
        summary.contains("value_tier")
            && summary.contains("need_type")
            && summary.contains("dry run"),
        "{summary}"
    );
    // A full run for today is the daily job's work for today: the server will not redo it.
    assert_eq!(
        store.job_done_for("classify").await.expect("job state"),
        None
    );
    ok(kehu(&db.url, &["classify"]));
    assert_eq!(
        store.job_done_for("classify").await.expect("job state"),
        Some(store.today())
    );
    let bad = kehu(&db.url, &["classify", "--scheme", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown scheme nope"));
    assert!(!kehu(&db.url, &["classify", "--customer", "C1999999"])
        .status
        .success());
    db.cleanup(store).await;
}

/// `kehu export customers` (Contract for scripts): CSV of a segment to a
/// file, XLSX to standard output, bad input refused with one line.
async fn export_a_segment(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(&db.url, &["demo", "--customers", "30", "--seed", "4"]));
    let dir =
        std::env::temp_dir().join(format!("kehu-export-{}-{:?}", std::process::id(), backend));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("east.csv");
    let out = kehu(
        &db.url,
        &[
            "export",
            "customers",
            "--format",
            "csv",
            "--segment",
            "华东",
            "--out",
            file.to_str().expect("path"),
        ],
    );
    ok(out);
    let text = std::fs::read_to_string(&file).expect("csv");
    let east = store
        .list_customers(
            &kehu_core::query::parse_list_query(
                &[
                    ("sales_region".into(), "华东".into()),
                    ("limit".into(), "200".into()),
                ],
                kehu_core::query::CUSTOMER_FIELDS,
                &[],
                "id",
            )
            .expect("query"),
            &kehu_store::ScopeFilter::All,
            false,
        )
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(
        text.lines().count(),
        east + 1,
        "a header and every 华东 customer"
    );
    let xlsx = kehu(&db.url, &["export", "customers", "--format", "xlsx"]);
    assert!(xlsx.status.success());
    assert!(xlsx.stdout.starts_with(b"PK"));
    let bad = kehu(&db.url, &["export", "customers", "--segment", "华东 AND ("]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("segment"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup(store).await;
}

/// `kehu dedupe` needs no database: a GBK file with `;` as Chinese Excel
/// writes it, the same company under three names, pairs on stdout.
#[test]
fn dedupe_a_csv_before_import() {
    let dir = std::env::temp_dir().join(format!("kehu-dedupe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = "客户编号;客户名称;手机\n\
               C1;北京字节跳动科技有限公司;13800138000\n\
               C2;字节跳动(北京)科技有限公司;\n\
               C3;上海电气集团股份有限公司;13911112222\n\
               C4;字节跳动科技;+86 138 0013 8000\n\
               C5;杭州娃哈哈集团有限公司;\n";
    let gbk: Vec<u8> = encode_gbk(csv);
    let file = dir.join("customers.csv");
    std::fs::write(&file, gbk).expect("write");
    let path = file.to_str().expect("utf-8 path");
    let unused_db = "sqlite://unused-by-dedupe.db";

    let out = ok(kehu(
        unused_db,
        &[
            "dedupe",
            path,
            "--fields",
            "客户名称,手机",
            "--id-field",
            "客户编号",
        ],
    ));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("id1,id2,score"));
    let mut pairs: Vec<(String, String, f64)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (
                cells[0].into(),
                cells[1].into(),
                cells[2].parse().expect("score"),
            )
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let ids: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(a, b, _)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(ids, [("C1", "C2"), ("C1", "C4"), ("C2", "C4")]);
    assert!(pairs.iter().all(|p| (0.5..=1.0).contains(&p.2)));

    let with_reasons = ok(kehu(
        unused_db,
        &[
            "dedupe",
            path,
            "--fields",
            "客户名称:company,手机:phone",
            "--id-field",
            "客户编号",
            "--reasons",
        ],
    ));
    assert!(with_reasons.starts_with("id1,id2,score,reasons\n"));
    assert!(with_reasons.contains("C1,C4,"), "{with_reasons}");
    assert!(with_reasons.contains("手机: same"), "{with_reasons}");

    // A threshold of 1 keeps only certainties; none here reach it exactly.
    let strict = ok(kehu(
        unused_db,
        &[
            "dedupe",
            path,
            "--fields",
            "客户名称",
            "--id-field",
            "客户编号",
            "--threshold",
            "1",
        ],
    ));
    assert_eq!(strict, "id1,id2,score\n");

    for (args, says) in [
        (vec!["--fields", "名字", "--id-field", "客户编号"], "名字"),
        (vec!["--fields", "客户名称", "--id-field", "编号"], "编号"),
        (
            vec!["--fields", "客户名称:fuzzy", "--id-field", "客户编号"],
            "fuzzy",
        ),
        (
            vec![
                "--fields",
                "客户名称",
                "--id-field",
                "客户编号",
                "--threshold",
                "2",
            ],
            "--threshold",
        ),
    ] {
        let mut all = vec!["dedupe", path];
        all.extend(args);
        let out = kehu(unused_db, &all);
        assert!(!out.status.success(), "{all:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{all:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// GBK bytes of `s`, the way Chinese Excel saves "CSV".
fn encode_gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

/// The same matcher on a workbook's first sheet.
#[test]
fn dedupe_an_xlsx() {
    let dir = std::env::temp_dir().join(format!("kehu-dedupe-xlsx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("客户.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows = [
        ["客户编号", "客户名称"],
        ["C1", "深圳市大疆创新科技有限公司"],
        ["C2", "大疆创新(深圳)科技有限公司"],
        ["C3", "珠海格力电器股份有限公司"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string(r as u32, c as u16, *cell).expect("cell");
        }
    }
    book.save(&path).expect("save");
    let out = ok(kehu(
        "sqlite://unused-by-dedupe.db",
        &[
            "dedupe",
            path.to_str().expect("utf-8"),
            "--fields",
            "客户名称",
            "--id-field",
            "客户编号",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with("C1,C2,"), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `kehu import` (Contract for scripts) on our users' templates with no
/// mapping file: a dry run writes nothing, `abort` refuses the whole file
/// for one bad row (one line on stderr, non-zero exit), `skip` imports the
/// others and `--errors` lists every problem; the same file again changes
/// nothing; orders feed the customer's totals; `kehu imports undo` takes an
/// import back.
async fn import_templates_and_undo(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let dir =
        std::env::temp_dir().join(format!("kehu-import-{}-{:?}", std::process::id(), backend));
    std::fs::create_dir_all(&dir).expect("dir");
    let customers = dir.join("客户.csv");
    std::fs::write(
        &customers,
        encode_gbk(
            "客户编号,客户名称,所属行业,企业规模(员工数),联系人,职务,座机,合作起始时间,年采购额(万元),核心产品类型\n\
             C2024001,华东精密制造有限公司,制造业,680,王建国,采购总监,0512-62881234,2021-03-15,120,精密轴承\n\
             C2024002,广州新锐商贸有限公司,零售业,85,陈晓燕,店长,13800138000,2023-06-20,35,清洁用品\n\
             C2024003,坏数据有限公司,制造业,很多,,,,2021-13-45,-3,\n",
        ),
    )
    .expect("write");
    let path = customers.to_str().expect("path");
    let count = || async { store.customer_count().await.expect("count") };

    let dry = ok(kehu(&db.url, &["import", "customers", path, "--dry-run"]));
    assert!(
        dry.contains("rows 3 · new 2 · updated 0 · unchanged 0 · invalid 1"),
        "{dry}"
    );
    assert_eq!(count().await, 0);

    let refused = kehu(&db.url, &["import", "customers", path]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(
        last.starts_with("kehu: import refused: 1 invalid row"),
        "{err}"
    );
    assert_eq!(count().await, 0);

    let errors = dir.join("errors.csv");
    let out = ok(kehu(
        &db.url,
        &[
            "import",
            "customers",
            path,
            "--on-invalid",
            "skip",
            "--errors",
            errors.to_str().expect("path"),
            "--json",
        ],
    ));
    let report: Value = serde_json::from_str(out.trim()).expect("one JSON report");
    assert_eq!(report["status"], "applied");
    assert_eq!(report["counts"]["new"], 2);
    assert_eq!(count().await, 2);
    let errors = std::fs::read_to_string(&errors).expect("errors");
    let lines: Vec<&str> = errors.lines().collect();
    assert_eq!(lines[0], "\u{feff}行号,列,字段,值,类型,原因");
    // 企业规模 is not a number; the date does not exist; the amount is negative.
    assert_eq!(lines.len(), 4, "{errors}");
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('\u{feff}') || l.starts_with("4,")),
        "{errors}"
    );

    let again = ok(kehu(
        &db.url,
        &["import", "customers", path, "--on-invalid", "skip"],
    ));
    assert!(again.contains("new 0 · updated 0 · unchanged 2"), "{again}");

    let orders = dir.join("orders.csv");
    let day = store.today() - chrono::Duration::days(30);
    std::fs::write(
        &orders,
        format!("客户编号,下单日期,金额(元),产品线\nC2024002,{day},\"120,000\",清洁用品\n"),
    )
    .expect("write");
    let out = ok(kehu(
        &db.url,
        &["import", "orders", orders.to_str().expect("path"), "--json"],
    ));
    let report: Value = serde_json::from_str(out.trim()).expect("report");
    assert_eq!(report["counts"]["new"], 1);
    let c2 = store.customer_by_code("C2024002").await.expect("C2024002");
    assert_eq!(c2.purchase_12m_fen, 12_000_000);

    let list = ok(kehu(&db.url, &["imports", "list"]));
    assert!(list.lines().count() >= 4, "{list}");
    let order_import = report["id"].as_i64().expect("id").to_string();
    let undone = ok(kehu(&db.url, &["imports", "undo", &order_import]));
    assert!(undone.contains("1 record(s) deleted"), "{undone}");
    let c2 = store.customer_by_code("C2024002").await.expect("C2024002");
    assert_eq!(c2.purchase_12m_fen, 0);
    let twice = kehu(&db.url, &["imports", "undo", &order_import]);
    assert!(!twice.status.success());

    let wrong = kehu(&db.url, &["import", "orders", path, "--dry-run"]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("客户编号") || err.contains("下单日期"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup(store).await;
}

async fn scan_and_list_duplicates(backend: Backend) {
    let (db, _store) = TestDatabase::new(backend).await.expect("test database");
    let dir = std::env::temp_dir().join(format!("kehu-dupes-{}-{:?}", std::process::id(), backend));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("客户.csv");
    std::fs::write(
        &file,
        "客户编号,客户名称,所属行业,合作起始时间,联系人,座机\n\
         C2024101,苏州华东精密制造有限公司,制造业,2021-03-15,王建国,0512-62881234\n\
         C2024102,华东精密制造(苏州)有限公司,制造业,2022-01-10,王建国,0512-62881234\n\
         C2024103,广州新锐商贸有限公司,零售业,2023-06-20,陈晓燕,020-87654321\n\
         C2024104,新锐商贸(广州)有限公司,零售业,2023-07-01,陈晓燕,020-87654321\n",
    )
    .expect("write");
    ok(kehu(
        &db.url,
        &["import", "customers", file.to_str().expect("path")],
    ));
    let truth = dir.join("truth.csv");
    std::fs::write(&truth, "code_a,code_b\nC2024102,C2024101\n").expect("write");
    let report: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &[
            "duplicates",
            "scan",
            "--json",
            "--truth",
            truth.to_str().expect("path"),
        ],
    )))
    .expect("json");
    assert_eq!(
        (report["customers"].clone(), report["found"].clone()),
        (json!(4), json!(2)),
        "{report}"
    );
    assert_eq!(
        report["truth"],
        json!({"known": 1, "compared": 1, "pairs_completeness": 1.0, "found": 1, "recall": 1.0, "other_pairs": 1})
    );
    std::fs::write(&truth, "C2024101,C9999999\n").expect("write");
    let unknown = kehu(
        &db.url,
        &[
            "duplicates",
            "scan",
            "--truth",
            truth.to_str().expect("path"),
        ],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no customer C9999999"));
    let listed = ok(kehu(&db.url, &["duplicates", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines[0], "pair,score,code_a,name_a,code_b,name_b,reasons");
    assert_eq!(lines.len(), 3, "{listed}");
    assert!(
        listed.contains("C2024101,苏州华东精密制造有限公司,C2024102,华东精密制造(苏州)有限公司"),
        "{listed}"
    );
    // A page at a time: standard error says which pairs, of how many, and how to go on.
    let first = kehu(&db.url, &["duplicates", "list", "--limit", "1"]);
    let note = String::from_utf8_lossy(&first.stderr).to_string();
    assert!(
        note.contains("pairs 1–1 of 2; next page: --offset 1"),
        "{note}"
    );
    let first = ok(first);
    let second = kehu(
        &db.url,
        &["duplicates", "list", "--limit", "1", "--offset", "1"],
    );
    let note = String::from_utf8_lossy(&second.stderr).to_string();
    assert!(
        note.contains("pairs 2–2 of 2") && !note.contains("next"),
        "{note}"
    );
    let second = ok(second);
    assert_eq!(
        [first.lines().nth(1), second.lines().nth(1)],
        [lines.get(1).copied(), lines.get(2).copied()]
    );
    let whole = kehu(&db.url, &["duplicates", "list"]);
    assert!(whole.stderr.is_empty(), "no note when all is shown");
    let bad = kehu(&db.url, &["duplicates", "list", "--limit", "0"]);
    assert!(!bad.status.success());
    let bad = kehu(&db.url, &["duplicates", "list", "--status", "maybe"]);
    assert!(!bad.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

async fn anomalies_and_calendar(backend: Backend) {
    let (db, _store) = TestDatabase::new(backend).await.expect("test database");
    let dir = std::env::temp_dir().join(format!(
        "kehu-anomalies-{}-{:?}",
        std::process::id(),
        backend
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let calendar = dir.join("calendar.txt");
    std::fs::write(&calendar, "2026-10-01 国庆节\n2026-02-30 坏日期\n").expect("write");
    let path = calendar.to_str().expect("path");
    let bad = kehu(&db.url, &["calendar", "set", path]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("line 2"),
        "{bad:?}"
    );
    std::fs::write(&calendar, "2026-10-01 国庆节\n2026-10-10 上班 国庆调休\n").expect("write");
    assert!(
        ok(kehu(&db.url, &["calendar", "set", path])).contains("1 holidays, 1 worked weekend days")
    );
    assert_eq!(
        ok(kehu(&db.url, &["calendar", "show"])),
        "2026-10-01 国庆节\n2026-10-10 上班 国庆调休\n"
    );

    let file = dir.join("客户.csv");
    std::fs::write(
        &file,
        "客户编号,客户名称,所属行业,合作起始时间\nC2024201,缺行业有限公司,,2021-03-15\nC2024202,完整资料有限公司,制造业,2021-03-15\n",
    )
    .expect("write");
    ok(kehu(
        &db.url,
        &["import", "customers", file.to_str().expect("path")],
    ));
    let ran: Value =
        serde_json::from_str(&ok(kehu(&db.url, &["anomalies", "run", "--json"]))).expect("json");
    assert_eq!(
        (ran["new"].clone(), ran["open"].clone()),
        (json!(1), json!(1)),
        "{ran}"
    );
    let listed = ok(kehu(&db.url, &["anomalies", "list"]));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(
        lines[0],
        "kind,code,name,description,assignee,found_on,due_on,overdue"
    );
    assert!(
        lines[1].starts_with("missing_fields,C2024201,缺行业有限公司,缺少：所属行业,"),
        "{listed}"
    );
    assert!(lines[1].ends_with(",false"), "{listed}");
    assert_eq!(
        ok(kehu(&db.url, &["anomalies", "list", "--overdue"]))
            .lines()
            .count(),
        1
    );
    std::fs::remove_dir_all(&dir).ok();
}

async fn import_with_a_saved_template(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let columns: std::collections::BTreeMap<String, Option<String>> = [
        ("单位全称", Some("name")),
        ("行业类别", Some("industry")),
        ("内部备注", None),
    ]
    .into_iter()
    .map(|(h, f)| (h.to_string(), f.map(str::to_string)))
    .collect();
    store
        .save_mapping("customers", "旧系统", &columns, None)
        .await
        .expect("template");
    let dir = std::env::temp_dir().join(format!(
        "kehu-template-{}-{:?}",
        std::process::id(),
        backend
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("旧系统.csv");
    std::fs::write(
        &file,
        "单位全称,行业类别,内部备注\n模板精工有限公司,制造业,x\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    let out = ok(kehu(
        &db.url,
        &[
            "import",
            "customers",
            path,
            "--mapping",
            "旧系统",
            "--dry-run",
        ],
    ));
    assert!(out.contains("rows 1 · new 1"), "{out}");
    let missing = kehu(
        &db.url,
        &["import", "customers", path, "--mapping", "没有这个模板"],
    );
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("neither a file nor a saved customers mapping template"),
        "{missing:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

async fn audit_verify_finds_tampering(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let dir = std::env::temp_dir().join(format!("kehu-audit-{}-{:?}", std::process::id(), backend));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("customers.csv");
    // Two audited operations from the command line.
    ok(kehu(
        &db.url,
        &["export", "customers", "--out", out.to_str().expect("path")],
    ));
    ok(kehu(
        &db.url,
        &["export", "customers", "--out", out.to_str().expect("path")],
    ));
    let intact = ok(kehu(&db.url, &["audit", "verify"]));
    assert!(
        intact.starts_with("audit log intact: 2 entries"),
        "{intact}"
    );
    assert!(
        intact.contains("every entry linked under a key"),
        "{intact}"
    );
    let anchor = intact
        .lines()
        .find_map(|l| l.strip_prefix("anchor to note down: "))
        .expect("an anchor")
        .to_string();
    assert!(anchor.starts_with("2:m1:"), "{anchor}");
    let held = ok(kehu(&db.url, &["audit", "verify", "--anchor", &anchor]));
    assert!(held.contains("entry 2 is as noted"), "{held}");
    let bad = kehu(&db.url, &["audit", "verify", "--anchor", "two"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--anchor: expected POS:LINK"),
        "{bad:?}"
    );
    use kehu_store::db::Exec;
    let original_target = store
        .db
        .clone()
        .fetch_one(
            "SELECT target FROM audit_log WHERE pos = 1",
            vec![],
            |r: &dyn kehu_store::db::RowGet| r.text("target"),
        )
        .await
        .expect("entry 1");
    store
        .db
        .clone()
        .execute(
            "UPDATE audit_log SET target = 'nothing' WHERE pos = 1",
            vec![],
        )
        .await
        .expect("tamper");
    let broken = kehu(&db.url, &["audit", "verify"]);
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("entry 1 was changed"),
        "{broken:?}"
    );
    // Put back, then the last entry deleted: the chain alone holds, the anchor does not.
    store
        .db
        .clone()
        .execute(
            "UPDATE audit_log SET target = $1 WHERE pos = 1",
            vec![kehu_store::db::Arg::from(original_target)],
        )
        .await
        .expect("put back");
    store
        .db
        .clone()
        .execute("DELETE FROM audit_log WHERE pos = 2", vec![])
        .await
        .expect("cut");
    ok(kehu(&db.url, &["audit", "verify"]));
    let cut = kehu(&db.url, &["audit", "verify", "--anchor", &anchor]);
    assert!(!cut.status.success());
    assert!(
        String::from_utf8_lossy(&cut.stderr).contains("cut short"),
        "{cut:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `kehu tasks generate`: the quarter's strategy tasks for a demo base,
/// once (a second run makes nothing); `kehu tasks list`; `kehu jobs run`
/// and `kehu jobs list`; a malformed period refused.
async fn generate_tasks_and_run_jobs(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(
        &db.url,
        &["demo", "--customers", "200", "--seed", "3"],
    ));
    ok(kehu(&db.url, &["classify"]));
    let bad = kehu(&db.url, &["tasks", "generate", "--period", "2026-Q9"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--period"),
        "{bad:?}"
    );
    // Next quarter: every slot lies ahead.
    let next = kehu_core::strategy::Period::quarter_of(store.today())
        .next()
        .label();
    let first: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &["tasks", "generate", "--period", &next, "--json"],
    )))
    .expect("json");
    assert_eq!(first["period"], next.as_str());
    let planned = first["planned"].as_u64().expect("planned");
    assert!(planned >= 200, "{first}");
    assert_eq!(first["created"], planned);
    let per_class: u64 = first["per_class"]
        .as_array()
        .expect("per class")
        .iter()
        .map(|c| c["tasks"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(per_class, planned);
    let again: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &["tasks", "generate", "--period", &next, "--json"],
    )))
    .expect("json");
    assert_eq!(again["created"], 0);
    let list = ok(kehu(&db.url, &["tasks", "list"]));
    assert!(list.starts_with("id,due,code,name,kind,title,owner,priority\n"));
    assert_eq!(list.lines().count() as u64, planned + 1);
    assert!(ok(kehu(&db.url, &["jobs", "run", "sessions"])).starts_with('{'));
    let jobs = ok(kehu(&db.url, &["jobs", "list"]));
    assert!(
        jobs.lines()
            .any(|l| l.starts_with("sessions,") && l.contains(",1,0,")),
        "{jobs}"
    );
    let unknown = kehu(&db.url, &["jobs", "run", "nope"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no job nope: the jobs are rollups,"),
        "{unknown:?}"
    );
    db.cleanup(store).await;
}

/// `kehu predict fit --summary FILE` on the CDNOW cohort prints the
/// paper's estimates as JSON (design.md's keys); bad rows are refused
/// with the row and column.
#[test]
fn predict_fit_on_cdnow() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kehu-core/testdata/cdnow_summary.csv"
    );
    let out = ok(kehu(
        "sqlite://unused-by-predict.db",
        &["predict", "fit", "--summary", file],
    ));
    let v: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["a", "alpha", "b", "p", "q", "r", "v"]);
    for (k, want) in [
        ("r", 0.243),
        ("alpha", 4.414),
        ("a", 0.793),
        ("b", 2.426),
        ("p", 6.25),
        ("q", 3.74),
        ("v", 15.44),
    ] {
        let got = v[k].as_f64().expect("number");
        // Three significant digits, as published.
        assert_eq!(format!("{got:.2e}"), format!("{want:.2e}"), "{k}");
    }

    let dir = std::env::temp_dir().join(format!("kehu-predict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let without_spend = dir.join("no_spend.csv");
    let rows: String = include_str!("../../kehu-core/testdata/cdnow_summary.csv")
        .lines()
        .map(|l| {
            l.rsplit_once(',')
                .expect("5 columns")
                .0
                .split_once(',')
                .expect("id")
                .1
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&without_spend, rows).expect("write");
    let out = ok(kehu(
        "sqlite://unused.db",
        &[
            "predict",
            "fit",
            "--summary",
            without_spend.to_str().expect("path"),
        ],
    ));
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert!(
        v.get("p").is_none() && v["r"].is_number(),
        "no spend, no Gamma-Gamma: {v}"
    );

    for (body, says) in [
        ("frequency,recency,T\n1,2,1\n", "row 2, T"),
        ("frequency,recency,T\n1,x,3\n", "row 2, recency"),
        ("frequency,recency\n1,2\n", "no column \"T\""),
        ("frequency,recency,T\n1,1,2\n", "至少需要 10"),
    ] {
        let f = dir.join("bad.csv");
        std::fs::write(&f, body).expect("write");
        let out = kehu(
            "sqlite://unused.db",
            &["predict", "fit", "--summary", f.to_str().expect("path")],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{body:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `kehu predict run`: the fit on a demo base's orders, stored per customer.
async fn predict_on_the_database(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(
        &db.url,
        &["demo", "--customers", "300", "--seed", "5"],
    ));
    let out = ok(kehu(&db.url, &["predict", "run"]));
    let report: Value = serde_json::from_str(out.trim()).expect("json");
    assert!(report["error"].is_null(), "{report}");
    let fitted = report["customers"].as_i64().expect("customers");
    assert!(fitted > 100, "{report}");
    assert_eq!(report["changed"].as_i64(), Some(fitted), "{report}");
    let runs = store.model_runs(5).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert!(runs[0].bg_nbd.is_some_and(|m| m.r > 0.0 && m.a > 0.0));
    db.cleanup(store).await;
}

/// `kehu report classification --period P`: the report as JSON, CSV and
/// XLSX for a classified demo base; unknown kinds and bad periods refused.
async fn report_classification(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(
        &db.url,
        &["demo", "--customers", "150", "--seed", "2"],
    ));
    ok(kehu(&db.url, &["classify"]));
    let quarter = kehu_core::strategy::Period::quarter_of(store.today()).label();
    let out = ok(kehu(
        &db.url,
        &["report", "classification", "--period", &quarter],
    ));
    let r: Value = serde_json::from_str(&out).expect("json");
    let customers = r["total"]["customers"].as_i64().expect("customers");
    assert!(customers >= 150, "{customers}");
    let classified: i64 = r["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .filter(|l| l["class"].is_string())
        .map(|l| l["customers"].as_i64().expect("n"))
        .sum();
    assert_eq!(
        classified, customers,
        "everyone has a value_tier class at the quarter's end"
    );
    let csv = ok(kehu(
        &db.url,
        &[
            "report",
            "classification",
            "--period",
            &quarter,
            "--scheme",
            "rfm",
            "--format",
            "csv",
        ],
    ));
    assert!(csv.starts_with("\u{feff}类别,客户数"), "{csv}");
    // One directory per backend: both run at once in this process.
    let dir = std::env::temp_dir().join(format!("kehu-report-{backend:?}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("r.xlsx");
    ok(kehu(
        &db.url,
        &[
            "report",
            "classification",
            "--period",
            &quarter,
            "--format",
            "xlsx",
            "--out",
            file.to_str().expect("path"),
        ],
    ));
    assert!(std::fs::read(&file).expect("file").starts_with(b"PK"));
    let strategy = ok(kehu(&db.url, &["report", "strategy", "--period", &quarter]));
    let s: Value = serde_json::from_str(&strategy).expect("json");
    let members: i64 = s["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["customers"].as_i64().expect("n"))
        .sum();
    assert!(
        s["lines"].as_array().is_some_and(|l| l.len() == 4),
        "value_tier's four classes"
    );
    assert!(members <= customers, "members at the start are a subset");
    // Cross-selling is as of today: per product, buyers and opportunities.
    let cross = ok(kehu(
        &db.url,
        &["report", "cross_sell", "--min-share", "20"],
    ));
    let x: Value = serde_json::from_str(&cross).expect("json");
    assert_eq!(x["min_share"], 2000);
    assert_eq!(x["population"].as_i64(), Some(customers), "{x}");
    let products = x["products"].as_array().expect("products");
    assert!(!products.is_empty(), "the demo's orders have product lines");
    for p in products {
        let opportunities = p["customers"].as_u64().expect("n");
        let in_groups: u64 = p["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["customers"].as_u64().expect("n"))
            .sum();
        // Groups do not overlap (one class, industry and size each).
        assert_eq!(opportunities, in_groups, "{p}");
    }
    let groups_csv = ok(kehu(
        &db.url,
        &[
            "report",
            "cross_sell",
            "--format",
            "csv",
            "--table",
            "groups",
        ],
    ));
    assert!(
        groups_csv.starts_with("\u{feff}产品,同类组"),
        "{groups_csv}"
    );
    // Marketing: the demo's six campaigns over three channels.
    let marketing = ok(kehu(&db.url, &["report", "marketing"]));
    let m: Value = serde_json::from_str(&marketing).expect("json");
    let campaigns = m["campaigns"].as_array().expect("campaigns");
    assert_eq!(campaigns.len(), 6);
    let reached: i64 = campaigns
        .iter()
        .map(|c| c["reached"].as_i64().expect("n"))
        .sum();
    assert!(reached > 0, "{m}");
    let channels = m["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 3);
    let by_channel: i64 = channels
        .iter()
        .map(|c| c["reached"].as_i64().expect("n"))
        .sum();
    assert_eq!(by_channel, reached, "channels add up their campaigns");
    let campaigns_csv = ok(kehu(
        &db.url,
        &[
            "report",
            "marketing",
            "--format",
            "csv",
            "--table",
            "campaigns",
        ],
    ));
    assert!(
        campaigns_csv.starts_with("\u{feff}活动,渠道"),
        "{campaigns_csv}"
    );
    // Tag analytics: the demo's tag catalogue with reach and trend.
    let tags = ok(kehu(&db.url, &["report", "tags", "--days", "30"]));
    let t: Value = serde_json::from_str(&tags).expect("json");
    assert_eq!(t["days"], 30);
    assert_eq!(t["trend_dates"].as_array().map(Vec::len), Some(7));
    let rows = t["tags"].as_array().expect("tags");
    assert!(!rows.is_empty());
    for row in rows {
        // Today's point of the trend is today's reach.
        assert_eq!(row["trend"][6], row["customers"], "{row}");
    }
    // Every kind takes --period (design.md's contract): tags as at the
    // period's last day, marketing the campaigns that ran in it, cross-selling
    // as of the period's last day (today while under way).
    let t: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &["report", "tags", "--period", &quarter],
    )))
    .expect("json");
    let q = kehu_core::strategy::Period::quarter_of(store.today());
    assert_eq!(
        (t["since"].as_str(), t["until"].as_str()),
        (
            Some(q.start.to_string().as_str()),
            Some(store.today().to_string().as_str())
        )
    );
    let m: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &["report", "marketing", "--period", "2000-Q1"],
    )))
    .expect("json");
    assert_eq!(
        (
            m["period"].as_str(),
            m["campaigns"].as_array().map(Vec::len)
        ),
        (Some("2000-Q1"), Some(0)),
        "no campaign ran then"
    );
    let m: Value = serde_json::from_str(&ok(kehu(
        &db.url,
        &[
            "report",
            "marketing",
            "--period",
            &store.today().format("%Y").to_string(),
        ],
    )))
    .expect("json");
    for c in m["campaigns"].as_array().expect("campaigns") {
        let (start, end) = (
            c["starts_on"].as_str().expect("start"),
            c["ends_on"].as_str().expect("end"),
        );
        let year = store.today().format("%Y").to_string();
        assert!(
            start <= format!("{year}-12-31").as_str() && end >= format!("{year}-01-01").as_str(),
            "{c}"
        );
    }
    ok(kehu(
        &db.url,
        &["report", "cross_sell", "--period", &quarter],
    ));
    // A past period: as of its last day.
    let past = ok(kehu(
        &db.url,
        &["report", "cross_sell", "--period", "2020-Q1"],
    ));
    assert!(past.contains("\"as_of\": \"2020-03-31\""), "{past}");
    let tags_csv = ok(kehu(&db.url, &["report", "tags", "--format", "csv"]));
    assert!(
        tags_csv.starts_with("\u{feff}标签,方式,客户数"),
        "{tags_csv}"
    );
    for (args, says) in [
        (
            vec!["report", "pie", "--period", "2026-Q1"],
            "unknown report",
        ),
        (vec!["report", "tags", "--days", "0"], "--days"),
        (vec!["report", "strategy"], "--period"),
        (
            vec!["report", "cross_sell", "--period", "2099-Q1"],
            "period",
        ),
        (vec!["report", "tags", "--period", "2099-Q1"], "--period"),
        (
            vec!["report", "tags", "--period", "2026-Q1", "--days", "30"],
            "--days",
        ),
        (
            vec!["report", "marketing", "--period", "2026-Q5"],
            "--period",
        ),
        (
            vec!["report", "cross_sell", "--min-share", "0"],
            "min_share",
        ),
        (
            vec!["report", "classification", "--period", "2026-Q7"],
            "--period",
        ),
        (
            vec![
                "report",
                "classification",
                "--period",
                "2026-Q1",
                "--scheme",
                "nope",
            ],
            "scheme",
        ),
    ] {
        let out = kehu(&db.url, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(says),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    db.cleanup(store).await;
}

/// `kehu backup FILE` / `kehu restore FILE`: an encrypted snapshot (the
/// key file made on first use), nothing readable in it, the database put
/// back as it was; a wrong key, a damaged file and a missing key file are
/// refused and leave the database as it is.
async fn backup_and_restore_round_trip(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(&db.url, &["demo", "--customers", "30", "--seed", "7"]));
    let before = store.customer_count().await.expect("count");
    let dir = kehu_store::testing::TempDir::new("kehu-backup-cli");
    let key_file = dir.0.join("kehu.key");
    let key_env = [("KEHU_KEY_FILE", key_file.to_str().expect("path"))];
    let file = dir.0.join("weekly.kbak");
    let file_arg = file.to_str().expect("path");
    let said = kehu_with(&db.url, &["backup", file_arg], &key_env);
    ok(said);
    assert!(key_file.exists(), "the key file is made on first use");
    let raw = std::fs::read(&file).expect("backup file");
    for clear in [
        &b"SQLite format 3"[..],
        "C2024001".as_bytes(),
        "CREATE TABLE".as_bytes(),
    ] {
        assert!(
            !raw.windows(clear.len()).any(|w| w == clear),
            "{} readable in the backup",
            String::from_utf8_lossy(clear)
        );
    }
    let shown = ok(kehu_with(&db.url, &["keys", "show"], &key_env));
    assert!(shown.contains("encrypts"), "{shown}");
    // The weekly job: today's file in the backup directory, the oldest beyond KEHU_BACKUP_KEEP removed.
    let weekly = dir.0.join("weekly");
    std::fs::create_dir_all(&weekly).expect("dir");
    std::fs::write(weekly.join("kehu-2020-01-06.kbak"), b"old").expect("old");
    std::fs::write(weekly.join("notes.txt"), b"not ours").expect("other");
    let ran = ok(kehu_with(
        &db.url,
        &["jobs", "run", "backup"],
        &[
            key_env[0],
            ("KEHU_BACKUP_DIR", weekly.to_str().expect("path")),
            ("KEHU_BACKUP_KEEP", "1"),
        ],
    ));
    assert!(ran.contains("kehu-2020-01-06.kbak"), "{ran}");
    let mut left: Vec<String> = std::fs::read_dir(&weekly)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].starts_with("kehu-20")
            && left[0].ends_with(".kbak")
            && left[0] != "kehu-2020-01-06.kbak"
    );
    assert_eq!(left[1], "notes.txt");

    // Lose a customer, then restore.
    use kehu_store::db::Exec;
    store
        .db
        .clone()
        .execute("DELETE FROM customers WHERE code = 'C2024001'", vec![])
        .await
        .expect("delete");
    drop(store);
    ok(kehu_with(&db.url, &["restore", file_arg], &key_env));
    let count = |url: String| async move {
        let s = kehu_store::Store::connect(&url).await.expect("connect");
        let n = s.customer_count().await.expect("count");
        s.db.close().await;
        n
    };
    assert_eq!(
        count(db.url.clone()).await,
        before,
        "the lost customer is back"
    );

    // Refusals that change nothing.
    let other_key = dir.0.join("other.key");
    std::fs::write(
        &other_key,
        format!("kehu-key-v1:{}\n", "A".repeat(43) + "="),
    )
    .expect("write key");
    let wrong = kehu_with(
        &db.url,
        &["restore", file_arg],
        &[("KEHU_KEY_FILE", other_key.to_str().expect("path"))],
    );
    assert!(!wrong.status.success());
    let why = String::from_utf8_lossy(&wrong.stderr);
    assert!(why.contains("no key with id"), "{why}");
    let mut damaged = raw.clone();
    let n = damaged.len();
    damaged[n / 2] ^= 0x40;
    let damaged_file = dir.0.join("damaged.kbak");
    std::fs::write(&damaged_file, &damaged).expect("write");
    let refused = kehu_with(
        &db.url,
        &["restore", damaged_file.to_str().expect("path")],
        &key_env,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("damaged"),
        "{:?}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let missing = kehu_with(
        &db.url,
        &["restore", file_arg],
        &[(
            "KEHU_KEY_FILE",
            dir.0.join("none.key").to_str().expect("path"),
        )],
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("key file"));
    assert_eq!(count(db.url.clone()).await, before, "nothing changed");
}

/// `kehu keys rotate`: a new key first in the key file (the old kept),
/// every contact re-sealed with it, and a process that was running with
/// the old keys (a server) still reads every contact and seals new ones
/// with the new key, having re-read the key file.
async fn rotate_keys_under_a_running_reader(backend: Backend) {
    use kehu_core::keyring::Keyring;
    use kehu_store::cipher::FieldCipher;
    use kehu_store::db::{Exec, RowGet};
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let dir = kehu_store::testing::TempDir::new("kehu-rotate-cli");
    let key_file = dir.0.join("kehu.key");
    let env = [("KEHU_KEY_FILE", key_file.to_str().expect("path"))];
    ok(kehu_with(
        &db.url,
        &["demo", "--customers", "30", "--seed", "7"],
        &env,
    ));
    let ring = |f: &std::path::Path| {
        Keyring::parse(&std::fs::read_to_string(f).expect("key file")).expect("keys")
    };
    let first = ring(&key_file);
    let keys_of_rows = |s: kehu_store::Store| async move {
        s.db.clone()
            .fetch_all(
                "SELECT DISTINCT COALESCE(pii_key, '-') AS k FROM contacts",
                vec![],
                |r: &dyn RowGet| r.text("k"),
            )
            .await
            .expect("keys")
    };
    assert_eq!(keys_of_rows(store.clone()).await, [first.primary().id()]);
    let server = kehu_store::Store::connect(&db.url)
        .await
        .expect("connect")
        .with_cipher(FieldCipher::new(&first, Some(key_file.clone())));
    let ids: Vec<i64> = store
        .db
        .clone()
        .fetch_all(
            "SELECT id AS n FROM contacts ORDER BY id",
            vec![],
            kehu_store::db::decode_n,
        )
        .await
        .expect("ids");
    let mut before = Vec::new();
    for id in &ids {
        before.push(server.contact(*id).await.expect("read"));
    }
    assert!(before.iter().any(|c| c.mobile.is_some()));

    let said = ok(kehu_with(
        &db.url,
        &["keys", "rotate", "--batch", "7"],
        &env,
    ));
    assert!(
        said.contains(&format!("{} contacts re-sealed", ids.len())),
        "{said}"
    );
    let second = ring(&key_file);
    assert_eq!(second.keys().len(), 2);
    assert_ne!(second.primary().id(), first.primary().id());
    assert_eq!(
        second.keys()[1].id(),
        first.primary().id(),
        "the old key stays"
    );
    assert_eq!(keys_of_rows(store.clone()).await, [second.primary().id()]);
    // The running reader had only the old key: it re-reads the file.
    for (id, was) in ids.iter().zip(&before) {
        assert_eq!(
            &server.contact(*id).await.expect("read after rotation"),
            was
        );
    }
    let customer = before[0].customer_id;
    let added = server
        .insert_contact(
            customer,
            &kehu_core::contact::ContactInput {
                name: Some("新联系人".into()),
                mobile: Some("13700001111".into()),
                ..Default::default()
            }
            .validate()
            .expect("valid"),
        )
        .await
        .expect("insert");
    let key_of_added = store
        .db
        .clone()
        .fetch_one(
            "SELECT pii_key AS k FROM contacts WHERE id = $1",
            vec![added.id.into()],
            |r: &dyn RowGet| r.text("k"),
        )
        .await
        .expect("key");
    assert_eq!(key_of_added, second.primary().id());
    server.db.close().await;

    // A key from KEHU_KEY cannot be rotated in place.
    let refused = kehu(&db.url, &["keys", "rotate"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("KEHU_KEY"));
    db.cleanup(store).await;
}

/// `kehu token create|list|revoke`: the list never shows a token; a
/// revoked one stops signing in at once; another user's id is refused;
/// making and revoking are in the audit log.
async fn tokens_listed_and_revoked(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    ok(kehu(&db.url, &["user", "add", "ops", "--role", "admin"]));
    ok(kehu(
        &db.url,
        &["user", "add", "other", "--role", "sales_rep"],
    ));
    let first = ok(kehu(
        &db.url,
        &["token", "create", "ops", "--label", "备份脚本"],
    ));
    let first = first.trim();
    let second = ok(kehu(&db.url, &["token", "create", "ops"]));
    let second = second.trim();
    ok(kehu(&db.url, &["token", "create", "other"]));
    let listed = ok(kehu(&db.url, &["token", "list", "ops"]));
    let rows: Vec<Vec<&str>> = listed.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows[0], ["id", "label", "created", "last_used", "revoked"]);
    assert_eq!(rows.len(), 3, "{listed}");
    assert_eq!(
        (rows[1][1], rows[2][1]),
        ("cli", "备份脚本"),
        "newest first"
    );
    assert!(!listed.contains(first) && !listed.contains(second));
    let first_id = rows[2][0];
    assert!(store.api_token_user(first).await.is_ok());

    let other_tokens = ok(kehu(&db.url, &["token", "list", "other"]));
    let other_id = other_tokens
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .expect("id");
    let refused = kehu(&db.url, &["token", "revoke", "ops", other_id]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("ops has no token {other_id}")),
        "{refused:?}"
    );
    ok(kehu(&db.url, &["token", "revoke", "ops", first_id]));
    assert!(store.api_token_user(first).await.is_err(), "revoked");
    assert!(
        store.api_token_user(second).await.is_ok(),
        "the other stays"
    );
    let listed = ok(kehu(&db.url, &["token", "list", "ops"]));
    let revoked = listed
        .lines()
        .find(|l| l.starts_with(&format!("{first_id}\t")))
        .expect("row");
    assert_ne!(revoked.rsplit('\t').next(), Some("-"), "{listed}");

    let (entries, _) = store
        .audit_entries(&kehu_store::audit::AuditFilter::default(), 100, 0)
        .await
        .expect("audit");
    let count = |action: &str| entries.iter().filter(|e| e.record.action == action).count();
    assert_eq!((count("token.create"), count("token.revoke")), (3, 1));
    assert!(entries
        .iter()
        .all(|e| !e.record.detail.to_string().contains(first)));
    db.cleanup(store).await;
}
