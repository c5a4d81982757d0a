//! The store on both backends: the same scenarios run on SQLite and PostgreSQL.

use kehu_core::custom_field::{CustomFieldDef, FieldGroup, FieldKind, FieldRule};
use kehu_core::customer::{CustomerInput, CustomerRules};
use kehu_core::order::OrderInput;
use kehu_core::query::{parse_list_query, CUSTOMER_FIELDS};
use kehu_store::db::{Exec, RowGet};
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, Owner, ScopeFilter, Store, StoreError};
use serde_json::json;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test] async fn $name() { super::$name(kehu_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test] async fn $name() { super::$name(kehu_store::Backend::Postgres).await } )* }
    };
}

on_both_backends!(
    customers_list_filter_sort_and_page,
    versions_conflict,
    orders_refresh_rollups,
    bulk_demo_load,
    bulk_load_into_empty_database,
    personal_fields_sealed_at_rest,
    personal_custom_fields_sealed_at_rest,
    report_order_figures_equal_the_records,
    rotation_under_concurrent_writes,
    abbreviations_are_likely_duplicates,
    an_order_and_its_classes_commit_together,
    one_customers_rollups_equal_the_daily_refresh,
    concurrent_orders_of_one_customer_keep_its_digest,
    audit_appends_of_two_processes_keep_one_chain,
    feed_appends_wait_for_the_one_before
);

async fn add_customer(
    store: &Store,
    name: &str,
    industry: &str,
    region: &str,
    budget: i64,
) -> kehu_store::model::Customer {
    let industries = store.industries().await.expect("industries");
    let defs = store.custom_field_defs().await.expect("defs");
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &defs,
        today: store.today(),
    };
    let mut cf = serde_json::Map::new();
    if defs.iter().any(|d| d.key == "budget") {
        cf.insert("budget".into(), json!(budget));
    }
    let data = CustomerInput {
        name: Some(name.into()),
        industry: Some(industry.into()),
        sales_region: Some(region.into()),
        cooperation_start_on: Some("2021-03-15".into()),
        product_types: vec!["轴承".into()],
        custom_fields: cf,
        ..Default::default()
    }
    .validate(&rules)
    .expect("valid customer");
    store
        .insert_customer(
            &data,
            &Owner {
                owner_id: None,
                team: Some("华东一组".into()),
            },
            None,
            None,
        )
        .await
        .expect("insert")
}

/// An order of `fen` on `on`, validated as of `today`.
fn order_on(
    on: chrono::NaiveDate,
    fen: i64,
    today: chrono::NaiveDate,
) -> kehu_core::order::OrderData {
    OrderInput {
        ordered_on: Some(on.to_string()),
        amount_fen: Some(fen),
        ..Default::default()
    }
    .validate(today)
    .expect("valid order")
}

fn query(pairs: &[(&str, &str)], defs: &[CustomFieldDef]) -> kehu_core::query::ListQuery {
    let p: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    parse_list_query(&p, CUSTOMER_FIELDS, defs, "id").expect("query")
}

async fn customers_list_filter_sort_and_page(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    store
        .insert_custom_field(&CustomFieldDef {
            key: "budget".into(),
            label: "预算".into(),
            group: FieldGroup::Needs,
            kind: FieldKind::Money,
            required: false,
            options: vec![],
            rule: FieldRule::default(),
            position: 1,
        })
        .await
        .expect("custom field");
    let defs = store.custom_field_defs().await.expect("defs");
    for i in 0..7 {
        add_customer(
            &store,
            &format!("客户{i}"),
            if i % 2 == 0 { "制造业" } else { "金融" },
            "华东",
            i * 1000,
        )
        .await;
    }
    let first = add_customer(&store, "客户A", "制造业", "华南", 99).await;
    assert_eq!(
        first.code.len(),
        8,
        "generated code like C2026008: {}",
        first.code
    );

    let page = store
        .list_customers(
            &query(
                &[
                    ("industry", "制造业"),
                    ("sales_region", "华东"),
                    ("sort", "-cf.budget"),
                    ("limit", "2"),
                ],
                &defs,
            ),
            &ScopeFilter::All,
            true,
        )
        .await
        .expect("list");
    let names: Vec<&str> = page.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["客户6", "客户4"]);
    assert_eq!(page.total, Some(4));
    let cursor = page.next_cursor.expect("more pages");
    let page2 = store
        .list_customers(
            &query(
                &[
                    ("industry", "制造业"),
                    ("sales_region", "华东"),
                    ("sort", "-cf.budget"),
                    ("limit", "2"),
                    ("cursor", &cursor),
                ],
                &defs,
            ),
            &ScopeFilter::All,
            false,
        )
        .await
        .expect("list");
    let names: Vec<&str> = page2.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["客户2", "客户0"]);
    assert!(page2.next_cursor.is_none());

    let big = store
        .list_customers(
            &query(
                &[("cf.budget.gte", "3000"), ("product_types", "轴承")],
                &defs,
            ),
            &ScopeFilter::All,
            true,
        )
        .await
        .expect("list");
    assert_eq!(big.total, Some(4));
    let searched = store
        .list_customers(&query(&[("q", "客户a")], &defs), &ScopeFilter::All, true)
        .await
        .expect("search");
    assert_eq!(searched.total, Some(1));
    let scoped = store
        .list_customers(&query(&[], &defs), &ScopeFilter::Own { user_id: 42 }, true)
        .await
        .expect("scoped");
    assert_eq!(scoped.total, Some(0));
    db.cleanup(store).await;
}

async fn versions_conflict(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let c = add_customer(&store, "并发测试有限公司", "制造业", "华东", 0).await;
    let industries = store.industries().await.expect("industries");
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &[],
        today: store.today(),
    };
    let data = CustomerInput {
        name: Some("改名后".into()),
        cooperation_start_on: Some("2020-01-01".into()),
        ..Default::default()
    }
    .validate(&rules)
    .expect("valid");
    let owner = Owner {
        owner_id: None,
        team: None,
    };
    let updated = store
        .update_customer(c.id, c.version, &data, &owner, None)
        .await
        .expect("first edit wins");
    assert_eq!(updated.version, c.version + 1);
    let second = store
        .update_customer(c.id, c.version, &data, &owner, None)
        .await;
    assert!(
        matches!(second, Err(StoreError::VersionConflict { .. })),
        "{second:?}"
    );
    let dup = store
        .insert_customer(
            &kehu_core::customer::CustomerData {
                code: Some(updated.code.clone()),
                ..data.clone()
            },
            &owner,
            None,
            None,
        )
        .await;
    match dup {
        Err(StoreError::Invalid(e)) => assert_eq!(e.0[0].field, "code"),
        other => panic!("expected duplicate code error, got {other:?}"),
    }
    db.cleanup(store).await;
}

async fn orders_refresh_rollups(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let c = add_customer(&store, "订单测试有限公司", "制造业", "华东", 0).await;
    let today = store.today();
    for (days_ago, fen) in [(10, 50_000_000), (200, 30_000_000), (400, 99_000_000)] {
        let o = order_on(today - chrono::Duration::days(days_ago), fen, today);
        store.insert_order(c.id, &o).await.expect("order");
    }
    let c = store.customer(c.id).await.expect("customer");
    assert_eq!(c.purchase_12m_fen, 80_000_000);
    assert_eq!(c.order_count, 3);
    assert_eq!(c.last_order_on, Some(today - chrono::Duration::days(10)));
    assert_digest_current(&store, c.id, 3, 0).await;

    // Every write of an order or interaction rewrites the fact digest.
    let complaint = kehu_core::interaction::InteractionInput {
        kind: Some("complaint".into()),
        occurred_on: Some((today - chrono::Duration::days(3)).to_string()),
        summary: Some("交货延迟".into()),
        severity: Some("high".into()),
        satisfaction: Some(2),
        ..Default::default()
    }
    .validate(today)
    .expect("valid interaction");
    let i = store
        .insert_interaction(c.id, &complaint, None)
        .await
        .expect("interaction");
    assert_digest_current(&store, c.id, 3, 1).await;
    let first = store.facts_of(c.id).await.expect("facts").orders[0].clone();
    let orders = store
        .db
        .clone()
        .fetch_all(
            "SELECT id, version FROM orders WHERE customer_id = $1 ORDER BY id",
            kehu_store::args![c.id],
            |r: &dyn RowGet| Ok((r.int("id")?, r.int("version")?)),
        )
        .await
        .expect("orders");
    let moved = OrderInput {
        ordered_on: Some((today - chrono::Duration::days(700)).to_string()),
        amount_fen: Some(1),
        product_line: Some("产品B".into()),
        ..Default::default()
    }
    .validate(today)
    .expect("valid order");
    store
        .update_order(orders[0].0, orders[0].1, &moved)
        .await
        .expect("update");
    let facts = assert_digest_current(&store, c.id, 3, 1).await;
    assert_ne!(facts.orders[0], first, "the moved order is now the oldest");
    store
        .delete_order(orders[1].0, orders[1].1)
        .await
        .expect("delete");
    assert_digest_current(&store, c.id, 2, 1).await;
    let i = store
        .update_interaction(i.id, i.version, &complaint)
        .await
        .expect("update interaction");
    store
        .delete_interaction(i.id, i.version)
        .await
        .expect("delete interaction");
    assert_digest_current(&store, c.id, 2, 0).await;

    // A digest that is missing or damaged is never trusted: the records are
    // read instead, and rebuilding the digests puts them right.
    let other = add_customer(&store, "无订单有限公司", "制造业", "华东", 0).await;
    assert_digest_current(&store, other.id, 0, 0).await;
    for damaged in [false, true] {
        spoil_digests(&store, damaged, "true").await;
        assert_digest_current(&store, c.id, 2, 0).await;
    }
    assert_eq!(store.rebuild_fact_digests().await.expect("rebuild"), 2);
    let bytes = store
        .db
        .clone()
        .fetch_all(
            "SELECT fact_digest FROM customers ORDER BY id",
            vec![],
            |r: &dyn RowGet| r.opt_bytes("fact_digest"),
        )
        .await
        .expect("digests");
    assert_eq!(
        bytes[1],
        Some(vec![1, 0, 0, 0]),
        "no records: the empty digest"
    );
    assert!(bytes[0].as_ref().is_some_and(|b| b.len() > 4));
    assert_digest_current(&store, c.id, 2, 0).await;
    db.cleanup(store).await;
}

/// The customer's facts as a whole-base run, a catch-up and a one-customer
/// re-evaluation read them (from the digest) equal its records, with the
/// given numbers of orders and interactions.
async fn assert_digest_current(
    store: &Store,
    id: i64,
    orders: usize,
    interactions: usize,
) -> kehu_core::classify::Facts {
    let from_records = store.facts_of(id).await.expect("facts");
    let batch = store.facts_after(id - 1, 1).await.expect("batch");
    assert_eq!(batch.as_slice(), std::slice::from_ref(&from_records));
    let one = store
        .one_customer_inputs(id, store.today(), |_, _, _| ())
        .await
        .expect("one customer's inputs");
    assert_eq!(one.facts, from_records);
    let changed = store.facts_in(&[id]).await.expect("changed");
    assert_eq!(changed.as_slice(), std::slice::from_ref(&from_records));
    assert_eq!(
        (from_records.orders.len(), from_records.interactions.len()),
        (orders, interactions)
    );
    from_records
}

/// Every customer's derived columns, by id.
async fn rollup_snapshot(
    store: &Store,
) -> Vec<(
    i64,
    i64,
    i64,
    Option<chrono::NaiveDate>,
    Option<chrono::NaiveDate>,
    i64,
)> {
    store
        .db
        .clone()
        .fetch_all(
            "SELECT id, purchase_12m_fen, order_count, last_order_on, last_interaction_on, complaints_365d FROM customers ORDER BY id",
            vec![],
            |r: &dyn RowGet| Ok((r.int("id")?, r.int("purchase_12m_fen")?, r.int("order_count")?, r.opt_date("last_order_on")?, r.opt_date("last_interaction_on")?, r.int("complaints_365d")?)),
        )
        .await
        .expect("snapshot")
}

/// A write of one customer's order or interaction computes its rollups
/// from the records it read (`Rollups::of`); the daily refresh of everyone
/// computes them in SQL. At the edges of both windows they agree.
async fn one_customers_rollups_equal_the_daily_refresh(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let today = store.today();
    let (purchase_from, complaints_from) = kehu_core::classify::Rollups::window_starts(today);
    let day = |d: chrono::NaiveDate, shift: i64| d + chrono::Duration::days(shift);
    let edges = add_customer(&store, "窗口边界有限公司", "制造业", "华东", 0).await;
    let quiet = add_customer(&store, "只有旧单有限公司", "制造业", "华东", 0).await;
    let orders = [
        (edges.id, day(purchase_from, -1), 100),
        (edges.id, purchase_from, 20_000),
        (edges.id, today, 3_000_000),
        // Entered as if a month later: dated after the store's today.
        (edges.id, day(today, 20), 400_000_000),
        (quiet.id, day(purchase_from, -400), 5_000),
    ];
    for (customer, on, fen) in orders {
        let o = order_on(on, fen, day(today, 30));
        store.insert_order(customer, &o).await.expect("order");
    }
    let contacts = [
        (day(complaints_from, -1), "complaint"),
        (complaints_from, "complaint"),
        (today, "complaint"),
        (day(today, 2), "visit"),
    ];
    for (on, kind) in contacts {
        let i = kehu_core::interaction::InteractionInput {
            kind: Some(kind.into()),
            occurred_on: Some(on.to_string()),
            summary: Some("边界".into()),
            ..Default::default()
        }
        .validate(day(today, 30))
        .expect("valid interaction");
        store
            .insert_interaction(edges.id, &i, None)
            .await
            .expect("interaction");
    }
    let written = rollup_snapshot(&store).await;
    assert_eq!(
        written,
        vec![
            (
                edges.id,
                403_020_000,
                4,
                Some(day(today, 20)),
                Some(day(today, 2)),
                2
            ),
            (quiet.id, 0, 1, Some(day(purchase_from, -400)), None, 0),
        ]
    );
    store.refresh_all_rollups(today).await.expect("refresh");
    assert_eq!(rollup_snapshot(&store).await, written);
    db.cleanup(store).await;
}

/// Orders of one customer written at the same time: each write reads the
/// customer's records for its digest and rollups, and none may miss the
/// others' (on PostgreSQL two writers read before either commits unless the
/// customer is locked first).
async fn concurrent_orders_of_one_customer_keep_its_digest(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let c = add_customer(&store, "并发下单有限公司", "制造业", "华东", 0).await;
    let today = store.today();
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let order = order_on(today, 1_000 + i, today);
            tokio::spawn(async move { store.insert_order(c.id, &order).await.map(|_| ()) })
        })
        .collect();
    for w in writers {
        w.await.expect("task").expect("order");
    }
    assert_digest_current(&store, c.id, 16, 0).await;
    let written = rollup_snapshot(&store).await;
    assert_eq!(written[0].2, 16, "order count");
    store.refresh_all_rollups(today).await.expect("refresh");
    assert_eq!(rollup_snapshot(&store).await, written);
    db.cleanup(store).await;
}

/// Two processes appending to one audit chain. Each knows the end it wrote
/// last and appends after it in one statement while that is still the end
/// (PostgreSQL); when the other has appended since, or the log was cut
/// back (a backup restored under it), the entries go after the real end.
async fn audit_appends_of_two_processes_keep_one_chain(backend: Backend) {
    use kehu_store::audit::NewAudit;
    let (db, a) = TestDatabase::new(backend).await.expect("test database");
    let b = Store::connect(&db.url)
        .await
        .expect("second process")
        .with_cipher(kehu_store::cipher::FieldCipher::new(
            &kehu_store::testing::test_keyring(),
            None,
        ));
    let entry = |n: i64| NewAudit {
        at: chrono::Utc::now(),
        actor_id: None,
        action: format!("test.{n}"),
        target: format!("test:{n}"),
        detail: json!({"n": n}),
        client: None,
    };
    a.append_audit(&[entry(1)]).await.expect("first");
    a.append_audit(&[entry(2), entry(3)])
        .await
        .expect("after its own");
    b.append_audit(&[entry(4)])
        .await
        .expect("the other process");
    // a still takes 3 for the end: position 4 is taken.
    a.append_audit(&[entry(5)])
        .await
        .expect("after the other's");
    // The last entry gone: a's end no longer is one.
    a.db.clone()
        .execute("DELETE FROM audit_log WHERE pos = 5", vec![])
        .await
        .expect("cut back");
    a.append_audit(&[entry(6)]).await.expect("after the cut");
    let actions: Vec<(i64, String)> =
        a.db.clone()
            .fetch_all(
                "SELECT pos, action FROM audit_log ORDER BY pos",
                vec![],
                |r: &dyn RowGet| Ok((r.int("pos")?, r.text("action")?)),
            )
            .await
            .expect("entries");
    let expected: Vec<(i64, String)> = [1, 2, 3, 4, 6]
        .iter()
        .zip(1..)
        .map(|(n, pos)| (pos, format!("test.{n}")))
        .collect();
    assert_eq!(actions, expected);
    let verified = a.verify_audit(None).await.expect("read").expect("unbroken");
    assert_eq!(verified.entries, 5);
    b.db.close().await;
    db.cleanup(a).await;
}

/// A write appending to the change feed waits while another transaction
/// holds the feed (PostgreSQL: its advisory lock, taken by the appending
/// statement itself; SQLite: the one write lock), so entries commit in
/// `seq` order and a reader never skips one committed late.
async fn feed_appends_wait_for_the_one_before(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let c = add_customer(&store, "先来后到有限公司", "制造业", "华东", 0).await;
    let today = store.today();
    let order = order_on(today, 1_000, today);
    let mut holder = store.db.begin().await.expect("holder");
    if backend == Backend::Postgres {
        holder
            .execute("SELECT pg_advisory_xact_lock(7071002)", vec![])
            .await
            .expect("feed lock");
    }
    let head = store.feed_head().await.expect("head");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move { store.insert_order(c.id, &order).await.map(|_| ()) })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "the append did not wait");
    assert_eq!(store.feed_head().await.expect("head"), head);
    holder.commit().await.expect("release");
    writer.await.expect("task").expect("order");
    assert!(store.feed_head().await.expect("head") > head);
    db.cleanup(store).await;
}

/// A new order written with its transaction left open, and class changes
/// written in that transaction: both or neither are stored.
async fn an_order_and_its_classes_commit_together(backend: Backend) {
    use kehu_store::classes::{cause, ClassChange};
    let (_db, store) = TestDatabase::new(backend).await.expect("test database");
    let c = add_customer(&store, "同一事务有限公司", "制造业", "华东", 0).await;
    let today = store.today();
    let order = order_on(today, 120_000_000, today);
    let change = ClassChange {
        customer_id: c.id,
        scheme_key: "value_tier".into(),
        from: None,
        to: "战略型".into(),
        score: None,
        scheme_version: 1,
        cause: cause::DATA_CHANGE,
        note: None,
    };
    let stored = |table: &'static str| {
        let store = store.clone();
        async move {
            let sql = format!("SELECT COUNT(*) AS n FROM {table} WHERE customer_id = $1");
            count(&store, &sql, kehu_store::args![c.id]).await
        }
    };
    let feed = || stored("change_feed");
    let feed_before = feed().await;
    let written = || async {
        let mut opened = store.insert_order_open(c.id, &order).await.expect("order");
        let facts = opened.take_facts();
        let (mut writer, _) = opened.class_writer(&store, today, None);
        writer
            .write(std::slice::from_ref(&change))
            .await
            .expect("classes");
        (writer, facts)
    };
    // Each table's rows of the customer, the feed's entries, its order count.
    let state = || async {
        let mut rows = Vec::new();
        for table in ["orders", "customer_classes", "class_history"] {
            rows.push(stored(table).await);
        }
        let orders = store.customer(c.id).await.expect("customer").order_count;
        (rows, feed().await - feed_before, orders)
    };

    // Dropped before the commit: neither the order nor its classes.
    drop(written().await);
    assert_eq!(state().await, (vec![0, 0, 0], 0, 0));

    // Finished: the order, its rollups, the classes and both feed entries
    // (written by one statement).
    let (writer, facts) = written().await;
    let done = writer.finish().await.expect("commit");
    assert_eq!(done.changes, 1);
    assert_eq!(state().await, (vec![1, 1, 1], 2, 1));
    // The facts handed on with the open write are those stored.
    assert_eq!(facts.orders.len(), 1);
    assert_eq!(facts, store.facts_of(c.id).await.expect("facts"));
}

async fn count(store: &Store, sql: &str, args: Vec<kehu_store::db::Arg>) -> i64 {
    store
        .db
        .clone()
        .fetch_one(sql, args, kehu_store::db::decode_n)
        .await
        .expect("count")
}

async fn bulk_demo_load(backend: Backend) {
    use kehu_core::demo::{code_floors, DemoConfig, DemoOwner};
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    // The load appends to what is there.
    let existing = add_customer(&store, "已有客户有限公司", "制造业", "华东", 0).await;
    let today = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).expect("date");
    let taken = kehu_store::bulk::taken(&store).await.expect("taken");
    let mut cfg = DemoConfig::new(7, today, 300);
    cfg.code_floors = code_floors(taken.codes.iter().map(String::as_str));
    cfg.taken_usccs = taken.usccs;
    cfg.owners = vec![DemoOwner {
        user_id: existing_user(&store).await,
        team: Some("华东一组".into()),
    }];
    let counts = load_demo(&store, cfg).await;
    assert!(
        !store.rollups_current(today).await.expect("job state"),
        "the customer that was there before was not refreshed by the load"
    );
    assert_eq!(counts.customers, 300);
    assert!(
        counts.contacts >= 300 && counts.orders > 300 && counts.interactions > 300,
        "{counts:?}"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) AS n FROM customers", vec![]).await,
        301
    );
    for (table, n) in [
        ("contacts", counts.contacts),
        ("orders", counts.orders),
        ("interactions", counts.interactions),
    ] {
        assert_eq!(
            count(
                &store,
                &format!("SELECT COUNT(*) AS n FROM {table}"),
                vec![]
            )
            .await,
            n as i64,
            "{table}"
        );
    }

    // design.md's examples, summed over the 12 months before 2024-03-12.
    let window_sum = "SELECT COALESCE(CAST(SUM(amount_fen) AS BIGINT), 0) AS n FROM orders WHERE customer_id = $1 AND ordered_on >= $2 AND ordered_on <= $3";
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(2023, 3, 13).expect("date"),
        chrono::NaiveDate::from_ymd_opt(2024, 3, 12).expect("date"),
    );
    let a = store.customer_by_code("C2024001").await.expect("C2024001");
    assert_eq!(
        count(&store, window_sum, kehu_store::args![a.id, from, to]).await,
        120_000_000
    );
    assert_eq!(
        a.cooperation_start_on,
        chrono::NaiveDate::from_ymd_opt(2021, 3, 15)
    );
    assert_eq!(a.industry.as_deref(), Some("制造业"));
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) AS n FROM interactions WHERE customer_id = $1 AND kind = 'complaint'",
            kehu_store::args![a.id]
        )
        .await,
        0
    );
    let b = store.customer_by_code("C2024002").await.expect("C2024002");
    assert_eq!(
        count(&store, window_sum, kehu_store::args![b.id, from, to]).await,
        35_000_000
    );
    assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM interactions WHERE customer_id = $1 AND kind = 'complaint' AND occurred_on = $2", kehu_store::args![b.id, to]).await, 1);
    assert!(b.product_types.contains(&"清洁用品".to_string()));

    // The rollups written by the loader are what a refresh computes.
    let before = rollup_snapshot(&store).await;
    assert!(
        before.iter().any(|r| r.1 > 0) && before.iter().any(|r| r.5 > 0),
        "some purchases and complaints"
    );
    store.refresh_all_rollups(today).await.expect("refresh");
    assert_eq!(rollup_snapshot(&store).await, before);
    assert!(store.rollups_current(today).await.expect("job state"));

    // What was there before is untouched.
    assert_eq!(
        store
            .customer(existing.id)
            .await
            .expect("existing customer"),
        existing
    );

    // Normal inserts after the load get fresh ids.
    let later = add_customer(&store, "后来的客户有限公司", "金融", "华北", 0).await;
    assert!(later.id > before.iter().map(|r| r.0).max().unwrap_or(0));
    db.cleanup(store).await;
}

/// A user to own demo customers.
/// Generates and bulk-loads the demo data of `cfg`.
async fn load_demo(
    store: &Store,
    cfg: kehu_core::demo::DemoConfig,
) -> kehu_store::bulk::BulkCounts {
    kehu_store::testing::load_demo(store, cfg)
        .await
        .expect("demo load")
}

/// A load into an empty database leaves every rollup current: the daily
/// refresh skips that day.
async fn bulk_load_into_empty_database(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let today = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).expect("date");
    assert!(!store.rollups_current(today).await.expect("job state"));
    let counts = load_demo(&store, kehu_core::demo::DemoConfig::new(3, today, 20)).await;
    assert_eq!(counts.customers, 20);
    assert!(store.rollups_current(today).await.expect("job state"));
    // Every loaded name is keyed as the single-row writes key it.
    let keys = store
        .db
        .clone()
        .fetch_all(
            "SELECT name, name_key, name_sound FROM customers",
            vec![],
            |r: &dyn RowGet| {
                Ok((
                    r.text("name")?,
                    r.opt_text("name_key")?,
                    r.opt_text("name_sound")?,
                ))
            },
        )
        .await
        .expect("keys");
    for (name, key, sound) in keys {
        use kehu_core::dedupe::company;
        assert_eq!(key, Some(company::full_name(&name)), "{name}");
        assert_eq!(sound, Some(company::name_sound(&name)), "{name}");
    }
    let tomorrow = today.succ_opt().expect("date");
    assert!(!store.rollups_current(tomorrow).await.expect("job state"));
    // The migration seeded the custom fields the preset schemes read.
    let keys: Vec<String> = store
        .custom_field_defs()
        .await
        .expect("defs")
        .into_iter()
        .map(|d| d.key)
        .collect();
    for key in ["intent_stage", "expected_close_on", "need_type"] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    // Classification facts come back whole, in batches, in id order.
    let first = store.facts_after(0, 15).await.expect("facts");
    let rest = store
        .facts_after(first.last().expect("some").customer_id, 15)
        .await
        .expect("facts");
    assert_eq!((first.len(), rest.len()), (15, 5));
    let all: Vec<_> = first.iter().chain(&rest).collect();
    assert!(all.windows(2).all(|w| w[0].customer_id < w[1].customer_id));
    assert_eq!(
        all.iter().map(|f| f.orders.len() as u64).sum::<u64>(),
        counts.orders
    );
    assert_eq!(
        all.iter().map(|f| f.interactions.len() as u64).sum::<u64>(),
        counts.interactions
    );
    assert!(all
        .iter()
        .all(|f| f.orders.windows(2).all(|w| w[0].on <= w[1].on)));
    // Batches are bulk reads (rusqlite on SQLite), one customer is not:
    // both decode every field the same way.
    for f in &all {
        let one = store.facts_of(f.customer_id).await.expect("one");
        assert_eq!(&one, *f);
    }
    assert!(all
        .iter()
        .any(|f| !f.custom.is_empty() && !f.product_types.is_empty()));
    assert!(all.iter().any(|f| f.founded_on.is_some()));
    db.cleanup(store).await;
}

async fn existing_user(store: &Store) -> i64 {
    store
        .insert_user(&kehu_store::NewUser {
            username: "rep",
            display_name: "销售",
            password_hash: "x",
            role: "sales_rep",
            team: Some("华东一组"),
            must_change_password: false,
        })
        .await
        .expect("user")
        .id
}

/// The raw personal columns of a contact: mobile, email, id_number, mobile_idx, pii_key.
async fn raw_contact(store: &Store, id: i64) -> [Option<String>; 5] {
    store
        .db
        .clone()
        .fetch_one(
            "SELECT mobile, email, id_number, mobile_idx, pii_key FROM contacts WHERE id = $1",
            vec![id.into()],
            |r: &dyn RowGet| {
                Ok([
                    r.opt_text("mobile")?,
                    r.opt_text("email")?,
                    r.opt_text("id_number")?,
                    r.opt_text("mobile_idx")?,
                    r.opt_text("pii_key")?,
                ])
            },
        )
        .await
        .expect("raw contact")
}

fn person(mobile: &str) -> kehu_store::privacy::PersonQuery {
    kehu_store::privacy::PersonQuery {
        mobile: Some(mobile.into()),
        ..Default::default()
    }
}

/// Mobile, e-mail and ID number are stored sealed with a blind index;
/// they read back clear, are found by exact value, and a rotation
/// re-seals everything (clear rows of before, older keys) while lookups
/// keep working.
async fn personal_fields_sealed_at_rest(backend: Backend) {
    use kehu_core::keyring::{Key, Keyring};
    use kehu_store::cipher::FieldCipher;
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let customer = add_customer(&store, "加密测试有限公司", "制造业", "华东", 0).await;
    let data = kehu_core::contact::ContactInput {
        name: Some("王小明".into()),
        mobile: Some("138-1234-5678".into()),
        email: Some("Wang@Example.com".into()),
        id_number: Some("11010519491231002X".into()),
        ..Default::default()
    }
    .validate()
    .expect("valid contact");
    let c = store
        .insert_contact(customer.id, &data)
        .await
        .expect("insert");
    assert_eq!(c.mobile.as_deref(), Some("13812345678"), "returned clear");
    let raw = raw_contact(&store, c.id).await;
    for v in &raw[..3] {
        let v = v.as_deref().expect("stored");
        assert!(v.starts_with("enc1:"), "{v}");
        for clear in ["13812345678", "5678", "wang@", "11010519491231002X"] {
            assert!(!v.contains(clear), "{clear} readable in {v}");
        }
    }
    assert!(raw[3].is_some(), "a blind index beside the mobile");
    let first_key = kehu_store::testing::test_keyring()
        .primary()
        .id()
        .to_string();
    assert_eq!(raw[4].as_deref(), Some(first_key.as_str()));
    assert_eq!(store.contact(c.id).await.expect("read"), c);
    // Found by exact value (index), never by a fragment.
    let found = store
        .find_people(&person("13812345678"))
        .await
        .expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].contact.email.as_deref(), Some("wang@example.com"));
    assert!(store
        .find_people(&person("1381234567"))
        .await
        .expect("find")
        .is_empty());
    let dupes = store
        .likely_duplicates("另一个名字", Some("13812345678"), 5)
        .await
        .expect("duplicates");
    assert_eq!(
        dupes.iter().map(|d| d.id).collect::<Vec<_>>(),
        [customer.id]
    );
    let rows = store.dedupe_rows().await.expect("dedupe rows");
    let row = rows.iter().find(|r| r.id == customer.id).expect("row");
    assert_eq!(row.phone.as_deref(), Some("13812345678"));

    // A contact written before encryption (a store without keys) reads,
    // is found, and is sealed by the next pass.
    let clear_store = Store::connect(&db.url).await.expect("connect");
    let old = clear_store
        .insert_contact(
            customer.id,
            &kehu_core::contact::ContactInput {
                name: Some("李四".into()),
                mobile: Some("13900001111".into()),
                ..Default::default()
            }
            .validate()
            .expect("valid"),
        )
        .await
        .expect("insert clear");
    assert_eq!(
        raw_contact(&store, old.id).await[0].as_deref(),
        Some("13900001111")
    );
    assert_eq!(
        store.contact(old.id).await.expect("read").mobile.as_deref(),
        Some("13900001111")
    );
    assert_eq!(
        store
            .find_people(&person("13900001111"))
            .await
            .expect("find")
            .len(),
        1
    );
    // Without keys, a sealed value is an error, never ciphertext shown as data.
    assert!(matches!(
        clear_store.contact(c.id).await,
        Err(StoreError::Key(_))
    ));
    clear_store.db.close().await;
    assert_eq!(store.contacts_to_reseal().await.expect("count"), 1);
    let done = store.reseal_contacts(10, |_| ()).await.expect("seal");
    assert_eq!((done.sealed, done.skipped), (1, 0));
    assert!(raw_contact(&store, old.id).await[0]
        .as_deref()
        .expect("stored")
        .starts_with("enc1:"));
    assert_eq!(
        store.contact(old.id).await.expect("read").version,
        old.version,
        "sealing is not an edit"
    );

    // Rotation: a new key first; until the pass ends both keys' indexes match.
    let ring = kehu_store::testing::test_keyring().with_primary(Key::from_bytes([9; 32]));
    let rotated = Store::connect(&db.url)
        .await
        .expect("connect")
        .with_cipher(FieldCipher::new(&ring, None));
    assert_eq!(rotated.contacts_to_reseal().await.expect("count"), 2);
    assert_eq!(
        rotated
            .find_people(&person("13812345678"))
            .await
            .expect("find")
            .len(),
        1
    );
    let mut seen = Vec::new();
    let done = rotated
        .reseal_contacts(1, |n| seen.push(n))
        .await
        .expect("rotate");
    assert_eq!(
        (done.sealed, seen),
        (2, vec![1, 2]),
        "one row per transaction here"
    );
    assert_eq!(rotated.contacts_to_reseal().await.expect("count"), 0);
    assert_eq!(
        raw_contact(&rotated, c.id).await[4].as_deref(),
        Some(ring.primary().id())
    );
    assert_eq!(
        rotated
            .find_people(&person("13812345678"))
            .await
            .expect("find")
            .len(),
        1
    );
    assert_eq!(rotated.contact(c.id).await.expect("read"), c);
    // The new key alone opens everything; the old key alone no longer does.
    let new_only = Store::connect(&db.url)
        .await
        .expect("connect")
        .with_cipher(FieldCipher::new(
            &Keyring::new(Key::from_bytes([9; 32])),
            None,
        ));
    assert_eq!(new_only.contact(c.id).await.expect("read"), c);
    assert!(matches!(store.contact(c.id).await, Err(StoreError::Key(_))));
    new_only.db.close().await;
    rotated.db.close().await;

    db.cleanup(store).await;

    // The bulk loader seals too.
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    load_demo(
        &store,
        kehu_core::demo::DemoConfig::new(3, store.today(), 20),
    )
    .await;
    let clear_left = count(
        &store,
        "SELECT COUNT(*) AS n FROM contacts WHERE (mobile IS NOT NULL AND mobile NOT LIKE 'enc1:%') \
         OR (email IS NOT NULL AND email NOT LIKE 'enc1:%') OR pii_key IS NULL",
        vec![],
    )
    .await;
    assert_eq!(clear_left, 0);
    db.cleanup(store).await;
}

/// A customer's `custom_fields` as stored.
async fn raw_custom_fields(store: &Store, id: i64) -> String {
    store
        .db
        .clone()
        .fetch_one(
            "SELECT custom_fields FROM customers WHERE id = $1",
            vec![id.into()],
            |r: &dyn RowGet| r.json("custom_fields"),
        )
        .await
        .expect("custom fields")
        .to_string()
}

/// A custom field with a mask holds personal information: its values are
/// stored sealed and read clear; a field marked personal later is sealed
/// by the next pass, and opened back when it is unmarked.
async fn personal_custom_fields_sealed_at_rest(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let def = |mask: bool| CustomFieldDef {
        key: "budget".into(),
        label: "预算".into(),
        group: FieldGroup::Needs,
        kind: FieldKind::Money,
        required: false,
        options: vec![],
        rule: FieldRule {
            mask: mask.then_some(kehu_core::privacy::MaskPattern { first: 1, last: 0 }),
            ..Default::default()
        },
        position: 1,
    };
    let field = store
        .insert_custom_field(&def(true))
        .await
        .expect("custom field");
    let c = add_customer(&store, "预算保密有限公司", "制造业", "华东", 880_000).await;
    assert_eq!(c.custom_fields["budget"], json!(880_000), "returned clear");
    let raw = raw_custom_fields(&store, c.id).await;
    assert!(
        raw.contains("\"budget\":\"enc1:") && !raw.contains("880000"),
        "{raw}"
    );
    assert_eq!(
        store.customer(c.id).await.expect("read").custom_fields["budget"],
        json!(880_000)
    );
    let listed = store
        .list_customers(&query(&[], &[]), &ScopeFilter::All, false)
        .await
        .expect("list");
    assert_eq!(listed.items[0].custom_fields["budget"], json!(880_000));
    assert!(
        store.reseal_customers(10).await.expect("pass").sealed == 0,
        "nothing to do"
    );

    // Unmarked: opened back by the next pass; marked again: sealed again.
    let field = store
        .update_custom_field(field.id, field.version, &def(false))
        .await
        .expect("unmark");
    assert_eq!(store.reseal_customers(10).await.expect("pass").sealed, 1);
    assert!(raw_custom_fields(&store, c.id).await.contains("880000"));
    store
        .update_custom_field(field.id, field.version, &def(true))
        .await
        .expect("mark");
    assert_eq!(store.reseal_customers(10).await.expect("pass").sealed, 1);
    assert!(!raw_custom_fields(&store, c.id).await.contains("880000"));
    assert_eq!(
        store.customer(c.id).await.expect("read").version,
        c.version,
        "sealing is not an edit"
    );
    db.cleanup(store).await;
}

/// The classification report reads orders from the fact digests: its
/// figures equal a GROUP BY over the order records (the query the report
/// used before), for every customer, also when digests are missing or damaged.
async fn report_order_figures_equal_the_records(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    load_demo(
        &store,
        kehu_core::demo::DemoConfig::new(5, d("2025-06-30"), 60),
    )
    .await;
    let at = |s: &str| d(s).and_hms_opt(0, 0, 0).expect("time").and_utc();
    let w = kehu_store::reports::ReportWindow {
        year_start: d("2024-04-01"),
        previous_start: d("2025-01-01"),
        previous_end: d("2025-03-31"),
        ago_start: d("2024-04-01"),
        ago_end: d("2024-06-30"),
        start: d("2025-04-01"),
        end: d("2025-06-30"),
        starts_at: at("2025-04-01"),
        // Whenever the demo says they were created: everyone is in.
        ends_at: at("2100-01-01"),
    };
    use kehu_core::report::CustomerPeriod;
    // The order figures only: classes and newness are not the orders' business.
    let records: std::collections::HashMap<i64, CustomerPeriod> = store
        .db
        .clone()
        .fetch_all(
            "SELECT customer_id, \
             CAST(SUM(CASE WHEN ordered_on >= $1 THEN amount_fen ELSE 0 END) AS BIGINT) AS revenue, \
             CAST(SUM(CASE WHEN ordered_on >= $1 THEN 1 ELSE 0 END) AS BIGINT) AS orders, \
             CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $1 THEN ordered_on END) AS BIGINT) AS days, \
             CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $1 THEN product_line END) AS BIGINT) AS lines, \
             CAST(MAX(CASE WHEN ordered_on >= $2 AND ordered_on < $1 THEN 1 ELSE 0 END) AS BIGINT) AS previous, \
             CAST(MAX(CASE WHEN ordered_on < $1 THEN 1 ELSE 0 END) AS BIGINT) AS year_before, \
             CAST(SUM(CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN amount_fen ELSE 0 END) AS BIGINT) AS revenue_ago, \
             CAST(SUM(CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN 1 ELSE 0 END) AS BIGINT) AS orders_ago, \
             CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN product_line END) AS BIGINT) AS lines_ago \
             FROM orders WHERE ordered_on >= $3 AND ordered_on <= $4 GROUP BY customer_id",
            vec![
                w.start.into(),
                w.previous_start.into(),
                w.year_start.into(),
                w.end.into(),
                w.ago_start.into(),
                w.ago_end.into(),
            ],
            |r: &dyn RowGet| {
                let customer_id = r.int("customer_id")?;
                Ok((
                    customer_id,
                    CustomerPeriod {
                        customer_id,
                        revenue_fen: r.int("revenue")?,
                        orders: r.int("orders")?,
                        order_days: r.int("days")?,
                        lines: r.int("lines")?,
                        bought_previous: r.int("previous")? > 0,
                        bought_year_before: r.int("year_before")? > 0,
                        revenue_ago_fen: r.int("revenue_ago")?,
                        orders_ago: r.int("orders_ago")?,
                        lines_ago: r.int("lines_ago")?,
                        ..CustomerPeriod::default()
                    },
                ))
            },
        )
        .await
        .expect("the records' figures")
        .into_iter()
        .collect();
    assert!(
        records
            .values()
            .any(|f| f.orders > 0 && f.orders_ago > 0 && f.bought_previous),
        "the demo has orders in every window: {records:?}"
    );
    let compare = |periods: Vec<CustomerPeriod>| {
        assert_eq!(periods.len(), 60, "every customer created before the end");
        for c in periods {
            let want = CustomerPeriod {
                customer_id: c.customer_id,
                class_before: c.class_before.clone(),
                class_after: c.class_after.clone(),
                is_new: c.is_new,
                ..records.get(&c.customer_id).cloned().unwrap_or_default()
            };
            assert_eq!(c, want);
        }
    };
    compare(
        store
            .customer_periods("value_tier", &w)
            .await
            .expect("periods"),
    );
    // Missing and damaged digests: those customers' records are read.
    spoil_digests(&store, false, "id % 3 = 0").await;
    spoil_digests(&store, true, "id % 3 = 1").await;
    compare(
        store
            .customer_periods("value_tier", &w)
            .await
            .expect("periods"),
    );
    db.cleanup(store).await;
}

/// Makes the fact digests of the customers matching `filter` missing (NULL)
/// or `damaged` (a byte no digest starts with).
async fn spoil_digests(store: &Store, damaged: bool, filter: &str) {
    let value = match (damaged, store.db.backend()) {
        (false, _) => "NULL",
        (true, Backend::Postgres) => "'\\x01'",
        (true, Backend::Sqlite) => "x'01'",
    };
    store
        .db
        .clone()
        .execute(
            &format!("UPDATE customers SET fact_digest = {value} WHERE {filter}"),
            vec![],
        )
        .await
        .expect("spoil the digests");
}

/// A key rotation while a server that still holds only the old key keeps
/// editing contacts: no edit is lost (a row changed since it was read is
/// skipped, and sealed by the next pass), every value opens with the new
/// keyring, and once the writes stop a second pass leaves nothing under
/// the old key.
async fn rotation_under_concurrent_writes(backend: Backend) {
    use kehu_core::contact::ContactInput;
    use kehu_core::keyring::Key;
    use kehu_store::cipher::FieldCipher;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let customer = add_customer(&store, "轮换测试有限公司", "制造业", "华东", 0).await;
    let contact = |i: u64| {
        ContactInput {
            name: Some(format!("联系人{i}")),
            mobile: Some(format!("1380000{i:04}")),
            email: Some(format!("p{i}@example.com")),
            ..Default::default()
        }
        .validate()
        .expect("valid")
    };
    let mut expected: BTreeMap<i64, String> = BTreeMap::new();
    for i in 0..120 {
        let c = store
            .insert_contact(customer.id, &contact(i))
            .await
            .expect("insert");
        expected.insert(c.id, c.mobile.expect("mobile"));
    }
    let ids: Vec<i64> = expected.keys().copied().collect();
    // A server that read the key file before the rotation.
    let dir = kehu_store::testing::TempDir::new("kehu-rotation-writes");
    let key_file = dir.0.join("kehu.key");
    let old = kehu_store::testing::test_keyring();
    std::fs::write(&key_file, old.to_text()).expect("key file");
    let server = Store::connect(&db.url)
        .await
        .expect("connect")
        .with_cipher(FieldCipher::new(&old, Some(key_file.clone())));
    // The rotation writes the new key first in the file, then re-seals.
    let ring = old.with_primary(Key::from_bytes([9; 32]));
    std::fs::write(&key_file, ring.to_text()).expect("rotated key file");
    let rotated = Store::connect(&db.url)
        .await
        .expect("connect")
        .with_cipher(FieldCipher::new(&ring, None));

    // The server edits contacts round and round until the pass ends: it
    // seals with the old key until it meets a row under the new one and
    // re-reads the key file.
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, ids, done) = (server.clone(), ids.clone(), done.clone());
        tokio::spawn(async move {
            let mut written: BTreeMap<i64, String> = BTreeMap::new();
            let mut n: u64 = 0;
            while !done.load(Ordering::SeqCst) || n < 60 {
                let id = ids[(n as usize * 7) % ids.len()];
                let now = store.contact(id).await.expect("read");
                let edit = contact(5_000 + n);
                let c = store
                    .update_contact(id, now.version, &edit)
                    .await
                    .expect("edit");
                written.insert(id, c.mobile.expect("mobile"));
                n += 1;
                tokio::task::yield_now().await;
            }
            (written, n)
        })
    };
    let first = rotated.reseal_contacts(3, |_| ()).await.expect("rotate");
    done.store(true, Ordering::SeqCst);
    let (written, n) = writer.await.expect("writer");
    expected.extend(written);
    assert!(n >= 60, "edits made during the rotation: {n}");
    // Rows the server re-wrote under the new key meanwhile were not read.
    assert!(
        first.sealed > 0 && first.sealed + first.skipped <= ids.len() as u64,
        "{first:?}"
    );

    // The second pass seals what the old-key writer wrote meanwhile.
    let second = rotated
        .reseal_contacts(3, |_| ())
        .await
        .expect("second pass");
    assert_eq!(second.skipped, 0, "{second:?}");
    assert_eq!(rotated.contacts_to_reseal().await.expect("count"), 0);
    for (id, mobile) in &expected {
        let c = rotated
            .contact(*id)
            .await
            .expect("opens with the new keyring");
        assert_eq!(
            c.mobile.as_ref(),
            Some(mobile),
            "contact {id}: no edit lost"
        );
        assert_eq!(
            raw_contact(&rotated, *id).await[4].as_deref(),
            Some(ring.primary().id())
        );
    }
    rotated.db.close().await;
    server.db.close().await;
    db.cleanup(store).await;
}

/// A company entered under its abbreviation, or under its full name when the
/// abbreviation is stored, is a likely duplicate; a two-character
/// abbreviation and a name holding the entered one whole are not.
async fn abbreviations_are_likely_duplicates(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    add_customer(&store, "中国石油化工集团有限公司", "制造业", "华东", 0).await;
    add_customer(&store, "中石油有限公司", "制造业", "华东", 0).await;
    add_customer(&store, "中山石化工程有限公司", "制造业", "华东", 0).await;
    add_customer(&store, "华为技术有限公司", "制造业", "华东", 0).await;
    add_customer(&store, "招商银行股份有限公司", "金融业", "华南", 0).await;
    add_customer(&store, "工行", "金融业", "华北", 0).await;
    let likely = |name: &'static str| {
        let store = store.clone();
        async move {
            let found = store
                .likely_duplicates(name, None, 5)
                .await
                .expect("duplicates");
            found.into_iter().map(|c| c.name).collect::<Vec<_>>()
        }
    };
    // The stored long name an entered abbreviation stands for; 中山石化工程
    // is 石化工程 of the city 中山, not a name starting with 中.
    assert_eq!(likely("中石化").await, ["中国石油化工集团有限公司"]);
    // The stored abbreviation of an entered long name.
    assert_eq!(
        likely("中国石油天然气股份有限公司").await,
        ["中石油有限公司"]
    );
    // Two characters are too loose to warn on, unless they are a well-known
    // short name — and then only of the name it stands for, both ways.
    assert!(likely("中化").await.is_empty());
    assert_eq!(likely("招行").await, ["招商银行股份有限公司"]);
    assert_eq!(likely("中国工商银行股份有限公司杭州分行").await, ["工行"]);
    assert!(likely("招远商行有限公司").await.is_empty());
    assert!(likely("华润万家有限公司").await.is_empty());
    db.cleanup(store).await;
}

/// A server's commits leave the write-ahead log to the checkpoint thread: a
/// write far below the commits' own threshold reaches the database file
/// anyway, soon after its commit.
#[tokio::test]
async fn sqlite_log_copied_by_the_checkpoint_thread() {
    let dir = kehu_store::testing::TempDir::new("kehu-wal");
    let file = dir.0.join("wal.db");
    let db = kehu_store::db::Db::connect_with(
        &format!("sqlite://{}", file.display()),
        kehu_store::db::Workload::Server,
    )
    .await
    .expect("connect");
    let mut conn = db.clone();
    conn.execute("CREATE TABLE blobs (b BLOB NOT NULL)", vec![])
        .await
        .expect("create");
    let start = std::fs::metadata(&file).expect("file").len();
    // ~100 pages: a commit copies only past 10,000.
    conn.execute("INSERT INTO blobs (b) VALUES (randomblob(400000))", vec![])
        .await
        .expect("insert");
    let copied = async {
        loop {
            if std::fs::metadata(&file).expect("file").len() >= start + 400_000 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), copied)
        .await
        .expect("the log reaches the database file within 5 s of its commit");
}

/// A server's connections keep a small page cache (each drops it whenever
/// another connection has committed); a one-shot command's a large one.
#[tokio::test]
async fn sqlite_page_cache_follows_the_workload() {
    let dir = kehu_store::testing::TempDir::new("kehu-cache");
    for (workload, kib) in [
        (kehu_store::db::Workload::Server, -2_000),
        (kehu_store::db::Workload::Command, -65_536),
    ] {
        let url = format!("sqlite://{}", dir.0.join("cache.db").display());
        let mut db = kehu_store::db::Db::connect_with(&url, workload)
            .await
            .expect("connect");
        let size = db
            .fetch_one("PRAGMA cache_size", vec![], |r: &dyn RowGet| {
                r.int("cache_size")
            })
            .await
            .expect("cache_size");
        assert_eq!(size, kib, "{workload:?}");
        db.close().await;
    }
}

/// A SQLite file database in a temporary directory (kept while the first
/// value lives) holding one table `n` of `column`.
async fn sqlite_with_table(
    name: &str,
    column: &str,
) -> (
    kehu_store::testing::TempDir,
    std::path::PathBuf,
    kehu_store::db::Db,
) {
    let dir = kehu_store::testing::TempDir::new(name);
    let file = dir.0.join("test.db");
    let mut db = kehu_store::db::Db::connect(&format!("sqlite://{}", file.display()))
        .await
        .expect("connect");
    db.execute(&format!("CREATE TABLE n ({column})"), vec![])
        .await
        .expect("create");
    (dir, file, db)
}

/// SQLite writers of one pool take turns before they take a connection:
/// writers waiting behind an open transaction leave the pool's other
/// connections to readers (waiting at SQLite's lock instead, each would
/// hold a connection, and as many as the pool has would stall every read).
#[tokio::test]
async fn sqlite_writers_wait_for_their_turn_without_a_connection() {
    let (_dir, _, db) = sqlite_with_table("kehu-turns", "v INTEGER NOT NULL").await;
    let size = db
        .sqlite_pool()
        .expect("sqlite")
        .options()
        .get_max_connections();
    let mut first = db.begin().await.expect("first writer");
    first
        .execute("INSERT INTO n (v) VALUES (0)", vec![])
        .await
        .expect("insert");
    let writers: Vec<_> = (1..=i64::from(size))
        .map(|v| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut tx = db.begin().await?;
                tx.execute("INSERT INTO n (v) VALUES ($1)", kehu_store::args![v])
                    .await?;
                tx.commit().await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut reader = db.clone();
    let seen = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        reader.fetch_one("SELECT COUNT(*) AS n FROM n", vec![], |r: &dyn RowGet| {
            r.int("n")
        }),
    )
    .await
    .expect("a read is served while writers wait")
    .expect("count");
    assert_eq!(seen, 0, "the open transaction is not visible yet");
    first.commit().await.expect("commit");
    for w in writers {
        w.await
            .expect("join")
            .expect("each writer commits in its turn");
    }
    let all = reader
        .fetch_one("SELECT COUNT(*) AS n FROM n", vec![], |r: &dyn RowGet| {
            r.int("n")
        })
        .await
        .expect("count");
    assert_eq!(all, i64::from(size) + 1);
}

/// On a file database statements run on the calling thread with no busy
/// wait inside SQLite: a write that finds another process holding the
/// lock tries again after async pauses — the runtime's one thread keeps
/// serving other tasks meanwhile — and goes through once it is released.
#[tokio::test]
async fn sqlite_writes_wait_for_another_process_without_holding_the_thread() {
    let (_dir, file, db) = sqlite_with_table("kehu-lite-busy", "v INTEGER NOT NULL").await;
    let other = rusqlite::Connection::open(&file).expect("another process's connection");
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO n (v) VALUES (1);")
        .expect("the other writer takes the lock");
    let holder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        other
            .execute_batch("COMMIT")
            .expect("the other writer commits");
    });
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let started = std::time::Instant::now();
    let mut tx = db.begin().await.expect("the write waits for the lock");
    tx.execute("INSERT INTO n (v) VALUES (2)", vec![])
        .await
        .expect("insert");
    tx.commit().await.expect("commit");
    let waited = started.elapsed();
    ticker.abort();
    holder.join().expect("the other writer's thread");
    assert!(
        waited >= std::time::Duration::from_millis(250),
        "went through while the lock was held ({waited:?})"
    );
    let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        ticked >= 10,
        "the runtime's thread was held while waiting ({ticked} ticks of 10 ms in {waited:?})"
    );
    let mut reader = db.clone();
    let both = reader
        .fetch_one("SELECT SUM(v) AS n FROM n", vec![], |r: &dyn RowGet| {
            r.int("n")
        })
        .await
        .expect("sum");
    assert_eq!(both, 3, "both writes stored");
}

/// A transaction dropped without commit is rolled back, the next one gets
/// the writers' turn at once, and SQL holding several statements is not
/// run in part.
#[tokio::test]
async fn sqlite_transactions_dropped_roll_back_and_several_statements_are_refused() {
    let (_dir, _, mut db) = sqlite_with_table("kehu-lite-tx", "v INTEGER NOT NULL UNIQUE").await;
    {
        let mut tx = db.begin().await.expect("begin");
        tx.execute("INSERT INTO n (v) VALUES (1)", vec![])
            .await
            .expect("insert");
    }
    let mut tx = tokio::time::timeout(std::time::Duration::from_secs(1), db.begin())
        .await
        .expect("the turn is given up with the dropped transaction")
        .expect("begin");
    tx.execute("INSERT INTO n (v) VALUES (2)", vec![])
        .await
        .expect("insert");
    let taken = tx
        .execute("INSERT INTO n (v) VALUES (2)", vec![])
        .await
        .expect_err("a value taken");
    assert!(
        taken.unique_violation().is_some(),
        "read as a unique violation: {taken}"
    );
    tx.commit().await.expect("commit");
    let refused = db
        .execute(
            "INSERT INTO n (v) VALUES ($1); INSERT INTO n (v) VALUES (4)",
            kehu_store::args![3],
        )
        .await;
    assert!(refused.is_err(), "several statements with arguments run");
    let stored = db
        .fetch_all("SELECT v FROM n ORDER BY v", vec![], |r: &dyn RowGet| {
            r.int("v")
        })
        .await
        .expect("rows");
    assert_eq!(stored, vec![2], "the dropped transaction's row is gone");
}

/// PostgreSQL connections are not pinged before each use (a round trip
/// per checkout), but one idle for a while is: connections the server
/// closed meanwhile are replaced, not handed to a request that would fail.
#[tokio::test]
async fn postgres_connections_closed_while_idle_are_replaced() {
    let (db, store) = TestDatabase::new(Backend::Postgres)
        .await
        .expect("test database");
    let one = |store: Store| async move {
        store
            .db
            .clone()
            .fetch_one(
                "SELECT CAST(1 AS BIGINT) AS n",
                vec![],
                kehu_store::db::decode_n,
            )
            .await
    };
    one(store.clone()).await.expect("first use");
    let admin = Store::connect(&db.url).await.expect("admin");
    let closed = admin
        .db
        .clone()
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            vec![],
        )
        .await
        .expect("terminate");
    assert!(closed >= 1, "the pool's connections were closed");
    admin.db.close().await;
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    assert_eq!(
        one(store.clone())
            .await
            .expect("after the server closed them"),
        1
    );
    db.cleanup(store).await;
}
