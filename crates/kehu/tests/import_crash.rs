//! An import killed (SIGKILL) in the middle: the database is as before the
//! import — not one of its rows, no record of it as applied — and running
//! it again imports the whole file.

use kehu_store::testing::TestDatabase;
use kehu_store::Backend;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 20_000;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Postgres).await } )* }
    };
}

on_both_backends!(an_import_killed_midway_leaves_nothing);

/// Customers in the template's layout; every tenth row has a negative
/// amount, so the error report grows while the import runs.
fn big_file() -> String {
    let mut s = String::from("客户编号,客户名称,所属行业,合作起始时间,年采购额(万元)\n");
    for i in 0..ROWS {
        let amount = if i % 10 == 9 { "-1" } else { "12.5" };
        s.push_str(&format!(
            "K{:07},测试{i}号贸易有限公司,零售业,2022-01-01,{amount}\n",
            i + 1
        ));
    }
    s
}

async fn an_import_killed_midway_leaves_nothing(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    store.migrate().await.expect("migrate");
    let dir = std::env::temp_dir().join(format!(
        "kehu-import-crash-{}-{backend:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("big.csv");
    std::fs::write(&file, big_file()).expect("write");
    let errors = dir.join("errors.csv");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_kehu"))
            .env("KEHU_KEY", kehu_store::testing::test_key_env())
            .arg("--db")
            .arg(&db.url)
            .args(["import", "customers"])
            .arg(&file)
            .args(["--on-invalid", "skip", "--errors"])
            .arg(&errors)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run kehu import")
    };
    let mut child = run();
    // The error report is written as the rows are: once part of it is on
    // disk, the import's transaction is open and half done.
    let started = Instant::now();
    let midway = 200 * 60; // bytes: about 200 of the 2,000 problems
    loop {
        let written = std::fs::metadata(&errors).map(|m| m.len()).unwrap_or(0);
        if written as usize >= midway {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before it could be interrupted"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "import too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let written = std::fs::metadata(&errors).map(|m| m.len()).unwrap_or(0) as usize;
    assert!(
        written < 2_000 * 60,
        "killed before the end ({written} bytes of problems)"
    );

    // As before the import.
    assert_eq!(store.customer_count().await.expect("count"), 0);
    let records = store.list_imports(None, 10).await.expect("imports");
    assert!(records.iter().all(|r| r.status != "applied"), "{records:?}");

    // Run again to the end: everything valid is there.
    let status = run().wait().expect("import");
    assert!(status.success());
    assert_eq!(
        store.customer_count().await.expect("count"),
        (ROWS - ROWS / 10) as u64
    );
    let problems = std::fs::read_to_string(&errors).expect("errors");
    assert_eq!(problems.lines().count(), 1 + ROWS / 10);
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup(store).await;
}
