//! The scheduler with two `kehu serve` processes on one database: each
//! daily job runs once however many servers run it, a
//! restarted server does not run them again, and a job whose server died
//! holding it is taken over once the lease runs out.

use chrono::Utc;
use kehu_store::db::{Arg, Exec, RowGet};
use kehu_store::jobs::Due;
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, Store};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Jobs due once per day or quarter: each must have run exactly once.
const ONCE: &[&str] = &[
    "anomalies",
    "strategy_tasks",
    "dormant_tasks",
    "backup",
    "audit_anchor",
    "sessions",
];

fn kehu(url: &str, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .env("KEHU_KEY", kehu_store::testing::test_key_env())
        .arg("--db")
        .arg(url)
        .args(args)
        .output()
        .expect("run kehu");
    assert!(
        out.status.success(),
        "kehu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serve(url: &str, backups: &std::path::Path, anchors: &std::path::Path) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    Command::new(env!("CARGO_BIN_EXE_kehu"))
        .env("KEHU_KEY", kehu_store::testing::test_key_env())
        .arg("--db")
        .arg(url)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("KEHU_LOG", "warn")
        .env("KEHU_RATE_LIMIT", "off")
        .env("KEHU_BACKUP_DIR", backups)
        .env("KEHU_AUDIT_ANCHORS", anchors)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kehu serve")
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs per job, and whether any job is held right now.
async fn job_runs(store: &Store) -> (HashMap<String, i64>, bool) {
    let states = store.job_states().await.expect("job states");
    let now = Utc::now();
    let busy = states
        .iter()
        .any(|s| s.lease_until.is_some_and(|u| u > now));
    (states.into_iter().map(|s| (s.job, s.runs)).collect(), busy)
}

/// Waits until `reminders` (run every round, late in it) has run `n` times
/// more than `before` and nothing is held: every server finished a round.
async fn wait_rounds(store: &Store, before: i64, n: i64) -> HashMap<String, i64> {
    for _ in 0..600 {
        let (runs, busy) = job_runs(store).await;
        if !busy && runs.get("reminders").copied().unwrap_or(0) >= before + n {
            return runs;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!(
        "the servers did not finish their rounds: {:?}",
        job_runs(store).await
    );
}

async fn two_servers_run_each_job_once(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    kehu(&db.url, &["demo", "--customers", "300", "--seed", "7"]);
    // An audited command: the log has an entry for the day's anchor.
    kehu(&db.url, &["export", "customers"]);

    // A server died holding the dormant-customer job: its lease has run out.
    let dead = store
        .claim_job(
            "dormant_tasks",
            Due::Every(chrono::Duration::zero()),
            "dead-server",
            chrono::Duration::seconds(-1),
        )
        .await
        .expect("claim");
    assert!(dead.is_some());

    let backups = kehu_store::testing::TempDir::new("kehu-scheduler-backups");
    let anchors_dir = kehu_store::testing::TempDir::new("kehu-scheduler-anchors");
    let anchors = anchors_dir.0.join("audit-anchors.txt");
    let (a, b) = (
        serve(&db.url, &backups.0, &anchors),
        serve(&db.url, &backups.0, &anchors),
    );
    // Both servers' first rounds: the reminders job runs in each round of
    // whichever server holds it; two runs mean both got past it.
    wait_rounds(&store, 0, 1).await;
    // Give the slower server time to walk its round too, then read again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (runs, _) = job_runs(&store).await;
    stop(a);
    stop(b);
    for job in ONCE {
        assert_eq!(
            runs.get(*job),
            Some(&1),
            "{job} ran once across two servers: {runs:?}"
        );
    }
    let written = std::fs::read_dir(&backups.0).expect("backups").count();
    assert_eq!(written, 1, "one weekly backup across two servers");
    let noted = std::fs::read_to_string(&anchors).expect("anchors");
    assert_eq!(noted.lines().count(), 1, "one audit anchor a day: {noted}");
    // The quarter's work was made once: as many strategy tasks as distinct slots.
    let mut d = store.db.clone();
    let counts = d
        .fetch_one(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT source_key) AS k FROM tasks WHERE source = 'strategy'",
            vec![],
            |r: &dyn RowGet| Ok((r.int("n")?, r.int("k")?)),
        )
        .await
        .expect("counts");
    assert!(counts.0 > 0, "the demo customers get strategy tasks");
    assert_eq!(counts.0, counts.1);

    // A restart: the day's and the quarter's jobs are done and stay done.
    let before = runs.get("reminders").copied().unwrap_or(0);
    // Make the next round's reminders job due at once.
    d.execute(
        "UPDATE job_runs SET finished_at = $1 WHERE job = 'reminders'",
        vec![Arg::from(Utc::now() - chrono::Duration::hours(1))],
    )
    .await
    .expect("reminders due");
    let c = serve(&db.url, &backups.0, &anchors);
    let again = wait_rounds(&store, before, 1).await;
    stop(c);
    for job in ONCE {
        assert_eq!(
            again.get(*job),
            Some(&1),
            "{job} not run again after a restart: {again:?}"
        );
    }
    db.cleanup(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgres() {
    two_servers_run_each_job_once(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_sqlite() {
    two_servers_run_each_job_once(Backend::Sqlite).await;
}
