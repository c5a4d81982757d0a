//! A quarter's strategy tasks stored in many small batches (on PostgreSQL
//! several at once, each its own transaction) are exactly the tasks one
//! batch makes, and a second generation makes none.

use crate::both_backends;
use chrono::NaiveDate;
use kehu_core::strategy::Period;
use kehu_server::classifier::Classifier;
use kehu_server::tasks::generate_in_batches;
use kehu_store::classes::cause;
use kehu_store::db::{Exec, RowGet};
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, Store};

both_backends!(small_batches_make_the_same_tasks);

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).expect("date")
}

type TaskRow = (i64, String, Option<i64>, Option<String>, String, String);

/// Every task but its id and creation time, in a stable order.
async fn tasks_of(store: &Store) -> Vec<TaskRow> {
    store
        .db
        .clone()
        .fetch_all(
            "SELECT customer_id, source_key, owner_id, team, kind, title FROM tasks ORDER BY customer_id, source_key",
            vec![],
            |r: &dyn RowGet| {
                Ok((
                    r.int("customer_id")?,
                    r.text("source_key")?,
                    r.opt_int("owner_id")?,
                    r.opt_text("team")?,
                    r.text("kind")?,
                    r.text("title")?,
                ))
            },
        )
        .await
        .expect("tasks")
}

async fn small_batches_make_the_same_tasks(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    kehu_store::testing::load_demo(&store, kehu_core::demo::DemoConfig::new(5, day(), 150))
        .await
        .expect("demo load");
    Classifier::new(store.clone())
        .run_all(day(), cause::EVALUATION, None, None)
        .await
        .expect("classified");
    let next = Period::quarter_of(day()).next();

    let small = generate_in_batches(&store, &next, day(), None, 7)
        .await
        .expect("small batches");
    assert!(small.planned > 100, "{small:?}");
    assert_eq!(small.created, small.planned, "every slot made once");
    let by_small = tasks_of(&store).await;
    assert_eq!(by_small.len() as u64, small.planned);
    let again = generate_in_batches(&store, &next, day(), None, 7)
        .await
        .expect("again");
    assert_eq!((again.planned, again.created), (small.planned, 0));

    store
        .db
        .clone()
        .execute("DELETE FROM tasks", vec![])
        .await
        .expect("tasks removed");
    let whole = generate_in_batches(&store, &next, day(), None, usize::MAX)
        .await
        .expect("one batch");
    assert_eq!(whole.created, small.created);
    assert_eq!(tasks_of(&store).await, by_small);
    db.cleanup(store).await;
}
