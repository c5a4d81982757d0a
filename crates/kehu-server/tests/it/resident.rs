//! A server keeps everyone's measured metrics and stored classes between
//! whole-base runs and catches up from the change feed. After data changes
//! (a new order, a new, an edited and a deleted customer) and a class
//! written by another process, its next run reads only the changed
//! customers and gives exactly what a fresh server reading everything gives.

use crate::both_backends;
use chrono::NaiveDate;
use kehu_core::customer::{CustomerInput, CustomerRules};
use kehu_core::order::OrderInput;
use kehu_server::classifier::{Classifier, RunPlan};
use kehu_store::classes::{cause, ClassChange, ClassWriter};
use kehu_store::db::{Exec, RowGet};
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, Owner, Store};

both_backends!(a_warm_run_equals_a_cold_run);

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 30).expect("date")
}

/// Changes of a dry run over everyone by a server that has kept nothing.
async fn cold_changes(store: &Store) -> Vec<(i64, String, Option<String>, String)> {
    let fresh = Classifier::new(store.clone());
    let set = fresh.published().await.expect("schemes");
    let plan = RunPlan::everyone(&set, day(), cause::EVALUATION);
    let result = fresh
        .evaluate(&plan, |_| {}, &|_, _| {})
        .await
        .expect("run");
    assert_eq!(
        result.measured, result.customers,
        "a fresh server reads everyone"
    );
    sorted(&result.changes)
}

fn sorted(changes: &[ClassChange]) -> Vec<(i64, String, Option<String>, String)> {
    let mut v: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c.customer_id,
                c.scheme_key.clone(),
                c.from.clone(),
                c.to.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn a_warm_run_equals_a_cold_run(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    kehu_store::testing::load_demo(&store, kehu_core::demo::DemoConfig::new(11, day(), 120))
        .await
        .expect("demo load");

    let server = Classifier::new(store.clone());
    let first = server
        .run_all(day(), cause::EVALUATION, None, None)
        .await
        .expect("first run");
    assert_eq!(first.measured, 120);
    assert_eq!(first.changes.len(), 120 * 10, "everyone's first classes");
    // Nothing changed: nothing read, nothing stored.
    let again = server
        .run_all(day(), cause::EVALUATION, None, None)
        .await
        .expect("again");
    assert_eq!((again.measured, again.changes.len()), (0, 0));

    let ids: Vec<i64> = store
        .db
        .clone()
        .fetch_all(
            "SELECT id FROM customers ORDER BY id",
            vec![],
            |r: &dyn RowGet| r.int("id"),
        )
        .await
        .expect("customers");
    // A big order makes a customer more valuable.
    let order = OrderInput {
        ordered_on: Some("2025-06-01".into()),
        amount_fen: Some(900_000_000),
        ..Default::default()
    }
    .validate(day())
    .expect("valid order");
    store.insert_order(ids[0], &order).await.expect("order");
    // One customer leaves, one edited, one new.
    let gone = store.customer(ids[1]).await.expect("customer");
    store
        .delete_customer(gone.id, gone.version)
        .await
        .expect("delete");
    let industries = store.industries().await.expect("industries");
    let defs = store.custom_field_defs().await.expect("defs");
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &defs,
        today: day(),
    };
    let input = |name: &str, employees: i64| CustomerInput {
        name: Some(name.into()),
        industry: Some("制造业".into()),
        employees: Some(employees),
        cooperation_start_on: Some("2020-01-15".into()),
        ..Default::default()
    };
    let edited = store.customer(ids[2]).await.expect("customer");
    let owner = Owner {
        owner_id: edited.owner_id,
        team: edited.team.clone(),
    };
    store
        .update_customer(
            edited.id,
            edited.version,
            &input("改过的客户有限公司", 5_000)
                .validate(&rules)
                .expect("valid"),
            &owner,
            None,
        )
        .await
        .expect("update");
    let new = store
        .insert_customer(
            &input("新来的客户有限公司", 30)
                .validate(&rules)
                .expect("valid"),
            &owner,
            None,
            None,
        )
        .await
        .expect("insert");
    // Another process writes a class the rules would not give.
    let stray = ClassChange {
        customer_id: ids[3],
        scheme_key: "value_tier".into(),
        from: None,
        to: "手工类".into(),
        score: None,
        scheme_version: 1,
        cause: cause::EVALUATION,
        note: None,
    };
    let mut w = ClassWriter::begin(&store, day(), None)
        .await
        .expect("begin");
    w.write(&[stray]).await.expect("write");
    w.finish().await.expect("commit");

    let expected = cold_changes(&store).await;
    assert!(
        expected
            .iter()
            .any(|c| c.0 == ids[3] && c.2.as_deref() == Some("手工类")),
        "the stray class is corrected: {expected:?}"
    );
    assert!(expected.iter().any(|c| c.0 == new.id), "{expected:?}");
    let warm = server
        .run_all(day(), cause::EVALUATION, None, None)
        .await
        .expect("warm run");
    // The order's, the edited and the new customer: the deleted one is not read.
    assert_eq!(warm.measured, 3);
    assert_eq!(warm.customers, 120);
    assert_eq!(sorted(&warm.changes), expected);
    // What it stored is what a fresh server finds: nothing left to change.
    assert_eq!(cold_changes(&store).await, Vec::new());
    assert_eq!(
        server
            .run_all(day(), cause::EVALUATION, None, None)
            .await
            .expect("after")
            .changes
            .len(),
        0
    );
    db.cleanup(store).await;
}
