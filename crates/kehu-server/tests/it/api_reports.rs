//! The classification report through the API and the page: class lines,
//! transitions from the class history with their customers, revenue,
//! churn and repurchase by the stated definitions, a segment, the
//! reader's scope, CSV and XLSX, bad parameters, rights, and a past
//! period that reads the same after later data arrives.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app, spawn_app_with, Session};
use chrono::{NaiveDate, TimeZone, Utc};
use kehu_store::db::{Arg, Exec};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(
    classification_report_by_period_scheme_and_segment,
    report_sla_follows_the_segment_and_the_period_end,
    a_past_report_reads_the_same_after_a_merge
);

async fn order(s: &Session, id: i64, on: &str, fen: i64) {
    let r = s
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": on, "amount_fen": fen}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "order {on}");
}

fn line<'a>(report: &'a Value, class: Option<&str>) -> &'a Value {
    report["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .find(|l| l["class"].as_str() == class)
        .unwrap_or_else(|| panic!("no line {class:?}: {report}"))
}

/// The day this scenario is set on (the server's calendar is frozen there:
/// its dates are 2026's, and its last quarter is the one under way).
fn scenario_today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 12, 5).expect("date")
}

async fn classification_report_by_period_scheme_and_segment(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.today = Some(scenario_today())).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let east_manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let service = app.token("svc1", "service", None).await;
    let mut db = app.store.db.clone();

    // Six customers that existed before Q3 2026, 潜力型 at the end of Q3
    // (from the class history), three of them in 华北.
    let north_rep = app.user("rep_north", "sales_rep", Some("华北")).await;
    let east_rep = app.user("rep_east", "sales_rep", Some("华东")).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (region, owner) = if i < 3 {
            ("华北", north_rep)
        } else {
            ("华东", east_rep)
        };
        let c = classified_customer(
            &app,
            &admin,
            &format!("报表客户{i}"),
            json!({"sales_region": region, "owner_id": owner}),
            ("潜力型", "2026-08-15"),
        )
        .await;
        let id = c["id"].as_i64().expect("id");
        ids.push(id);
    }
    // Q3 orders for the first four; Q4 orders for 0, 1 (two days) and 4 only.
    for &id in &ids[..4] {
        order(&admin, id, "2026-08-01", 100_000).await;
    }
    // Last quarter's report now, before this quarter's data arrives.
    let q3_before = ok_json(
        boss.get("/api/v1/reports/classification?period=2026-Q3")
            .await,
    )
    .await;
    order(&admin, ids[0], "2026-10-10", 200_000).await;
    order(&admin, ids[1], "2026-10-11", 50_000).await;
    order(&admin, ids[1], "2026-11-20", 50_001).await;
    order(&admin, ids[4], "2026-11-01", 30_000).await;
    // A year earlier (Q4 2025), for the strategy report's growth.
    order(&admin, ids[0], "2025-10-05", 90_000).await;
    // One customer new in Q4.
    let fresh = admin
        .customer("新客户", json!({"sales_region": "华南"}))
        .await;
    let fresh = fresh["id"].as_i64().expect("id");
    // Made on the scenario's day, whatever the clock says.
    db.execute(
        "UPDATE customers SET created_at = $1 WHERE id = $2",
        vec![
            Arg::from(Utc.with_ymd_and_hms(2026, 12, 5, 2, 0, 0).unwrap()),
            Arg::from(fresh),
        ],
    )
    .await
    .expect("date the new customer");

    let r = ok_json(
        boss.get("/api/v1/reports/classification?scheme=value_tier&period=2026-Q4")
            .await,
    )
    .await;
    assert_eq!(r["period"], "2026-Q4");
    assert_eq!(r["previous_start"], "2026-07-01");
    assert_eq!(r["total"]["customers"], 7, "{r}");
    assert_eq!(r["total"]["customers_before"], 6);
    assert_eq!(r["total"]["new_customers"], 1);
    assert_eq!(r["total"]["revenue_fen"], 330_001);
    assert_eq!(r["total"]["orders"], 4);
    assert_eq!(
        r["total"]["average_order_fen"], 82_500,
        "330,001 / 4 rounded"
    );
    // Churn by the class at the start (潜力型): 4 bought in Q3, 2 of them (ids 2, 3) not in Q4.
    let potential = line(&r, Some("潜力型"));
    assert_eq!(
        (
            potential["churn_base"].as_i64(),
            potential["churned"].as_i64()
        ),
        (Some(4), Some(2)),
        "{r}"
    );
    assert_eq!(potential["churn_rate"], 5_000);
    // Repurchase within Q4: of 3 buyers, only id 1 bought on two days.
    assert_eq!(
        (
            r["total"]["repurchase_base"].as_i64(),
            r["total"]["repurchased"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert!(r["definition_text"]["churn"]
        .as_str()
        .expect("text")
        .contains("上期有购买"));

    // Transitions end where the customers' classes are today.
    let mut now_class = std::collections::HashMap::new();
    for &id in ids.iter().chain([&fresh]) {
        let classes = ok_json(admin.get(&format!("/api/v1/customers/{id}/classes")).await).await;
        let k = classes
            .as_array()
            .expect("classes")
            .iter()
            .find(|c| c["scheme"] == "value_tier")
            .map(|c| c["class"].as_str().expect("class").to_string());
        now_class.insert(id, k);
    }
    let mut expected: std::collections::BTreeMap<(Option<String>, Option<String>), i64> =
        Default::default();
    for &id in &ids {
        *expected
            .entry((Some("潜力型".into()), now_class[&id].clone()))
            .or_default() += 1;
    }
    *expected
        .entry((None, now_class[&fresh].clone()))
        .or_default() += 1;
    let got: std::collections::BTreeMap<(Option<String>, Option<String>), i64> = r["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            (
                (
                    t["from"].as_str().map(String::from),
                    t["to"].as_str().map(String::from),
                ),
                t["customers"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let (to, n) = expected
        .iter()
        .find(|((from, _), _)| from.is_some())
        .map(|((_, to), n)| (to.clone().unwrap_or_else(|| "-".into()), *n))
        .expect("a move");
    let moved = ok_json(
        boss.get(&format!(
            "/api/v1/reports/classification/customers?period=2026-Q4&from=%E6%BD%9C%E5%8A%9B%E5%9E%8B&to={}",
            urlencode(&to)
        ))
        .await,
    )
    .await;
    assert_eq!(moved["total"], n, "{moved}");
    assert!(moved["items"][0]["code"].is_string());

    // A segment, and a manager's team.
    let north = ok_json(
        boss.get("/api/v1/reports/classification?period=2026-Q4&segment=%E5%8D%8E%E5%8C%97")
            .await,
    )
    .await;
    assert_eq!(north["total"]["customers"], 3);
    assert_eq!(north["segment"], "华北");
    assert!(
        north["definition_text"]["segment"]
            .as_str()
            .is_some_and(|t| t.contains("今天")),
        "the report says its segment is today's: {north}"
    );
    let east = ok_json(
        east_manager
            .get("/api/v1/reports/classification?period=2026-Q4")
            .await,
    )
    .await;
    assert_eq!(
        east["total"]["customers"], 3,
        "the 华东 team's three: {east}"
    );
    // The other definitions.
    let across = ok_json(
        boss.get(
            "/api/v1/reports/classification?period=2026-Q4&churn=year&repurchase=across_periods",
        )
        .await,
    )
    .await;
    assert_eq!(across["definitions"]["repurchase"], "across_periods");
    let potential = line(&across, Some("潜力型"));
    assert_eq!(
        (
            potential["repurchase_base"].as_i64(),
            potential["repurchased"].as_i64()
        ),
        (Some(4), Some(2))
    );

    // Files.
    let csv = boss
        .get("/api/v1/reports/classification?period=2026-Q4&format=csv")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .contains("classification-value_tier-2026-Q4.csv"));
    let text = csv.text().await.expect("csv");
    assert!(text.starts_with("\u{feff}类别,客户数,占比"), "{text}");
    assert!(
        text.lines()
            .last()
            .expect("total")
            .starts_with("合计,7,100.00 %"),
        "{text}"
    );
    let matrix = boss
        .get("/api/v1/reports/classification?period=2026-Q4&format=csv&table=transitions")
        .await
        .text()
        .await
        .expect("csv");
    assert!(matrix.contains("上期 \\ 本期"), "{matrix}");
    let xlsx = boss
        .get("/api/v1/reports/classification?period=2026-Q4&format=xlsx")
        .await;
    let bytes = xlsx.bytes().await.expect("bytes");
    let book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).expect("xlsx");
    use calamine::Reader;
    assert_eq!(
        book.sheet_names(),
        ["分类分布", "迁移矩阵", "服务时限", "数据质量", "定义"]
    );
    // The file says how its numbers are defined, as the page does.
    let mut book = book;
    let defined = book.worksheet_range("定义").expect("definitions sheet");
    let churn_text = r["definition_text"]["churn"].as_str().expect("churn text");
    assert!(
        defined.rows().any(|row| row
            .iter()
            .any(|c| matches!(c, calamine::Data::String(t) if t == churn_text))),
        "{defined:?}"
    );
    let defs_csv = boss
        .get("/api/v1/reports/classification?period=2026-Q4&format=csv&table=definitions")
        .await
        .text()
        .await
        .expect("csv");
    assert!(defs_csv.contains(churn_text), "{defs_csv}");
    // The same tables as a document: titled, every table, every page numbered.
    let pdf = boss
        .get("/api/v1/reports/classification?period=2026-Q4&format=pdf")
        .await;
    assert_eq!(pdf.status(), StatusCode::OK);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.headers()["content-disposition"]
        .to_str()
        .expect("header")
        .contains("classification-value_tier-2026-Q4.pdf"));
    let bytes = pdf.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = crate::helpers::pdf_text(&bytes);
    for needle in [
        "客户分类报表 · 价值分层 · 2026-Q4",
        "分类分布",
        "迁移矩阵",
        "服务时限",
        "数据质量",
        "定义",
        "战略型",
        "合计",
        "第 1 页",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }

    // Bad parameters name the field.
    for (query, field) in [
        ("period=2026-Q5", "period"),
        ("", "period"),
        ("period=2026-Q4&scheme=nope", "scheme"),
        (
            "period=2026-Q4&segment=%E5%8D%8E%E4%B8%9C%20AND%20(",
            "segment",
        ),
        ("period=2026-Q4&churn=sometimes", "churn"),
        ("period=2026-Q4&format=docx", "format"),
        ("period=2026-Q4&format=csv&table=pie", "table"),
    ] {
        let p = problem(
            boss.get(&format!("/api/v1/reports/classification?{query}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{query}: {p}");
    }
    let p = problem(
        boss.get("/api/v1/reports/classification/customers?period=2026-Q4&from=-")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "to");
    assert_eq!(
        service
            .get("/api/v1/reports/classification?period=2026-Q4")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Last quarter's report reads the same after this quarter's data.
    let q3_after = ok_json(
        boss.get("/api/v1/reports/classification?period=2026-Q3")
            .await,
    )
    .await;
    for key in ["classes", "total", "transitions", "sla", "quality"] {
        assert_eq!(q3_before[key], q3_after[key], "{key}");
    }
    assert_eq!(q3_after["total"]["revenue_fen"], 400_000);

    // Strategy effectiveness: 潜力型's goal (order growth) against Q4 2025.
    let s = ok_json(boss.get("/api/v1/reports/strategy?period=2026-Q4").await).await;
    assert_eq!(
        (s["ago_start"].as_str(), s["ago_end"].as_str()),
        (Some("2025-10-01"), Some("2025-12-31"))
    );
    let potential = s["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .find(|l| l["class"] == "潜力型")
        .expect("潜力型");
    assert_eq!(potential["metric"], "order_growth", "{potential}");
    assert_eq!(
        (
            potential["customers"].as_i64(),
            potential["orders"].as_i64(),
            potential["orders_ago"].as_i64()
        ),
        (Some(6), Some(4), Some(1))
    );
    assert_eq!(potential["actual"], 30_000, "4 orders against 1: +300 %");
    let target = potential["target"].as_i64().expect("target");
    assert_eq!(potential["met"], json!(30_000 >= target * 100));
    assert_eq!(
        (
            potential["retention_base"].as_i64(),
            potential["retained"].as_i64()
        ),
        (Some(4), Some(2))
    );
    let lapsed = ok_json(
        boss.get("/api/v1/reports/strategy/customers?period=2026-Q4&class=%E6%BD%9C%E5%8A%9B%E5%9E%8B&measure=lapsed").await,
    )
    .await;
    assert_eq!(lapsed["total"], 2, "bought before, not in Q4: {lapsed}");
    for (query, field) in [
        (
            "period=2026-Q4&class=%E6%BD%9C%E5%8A%9B%E5%9E%8B&measure=some",
            "measure",
        ),
        ("period=2026-Q4&measure=members", "class"),
    ] {
        let p = problem(
            boss.get(&format!("/api/v1/reports/strategy/customers?{query}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{query}");
    }
    // The class's strategy tasks: made for this quarter, one closed.
    let made = ok_json(
        admin
            .post("/api/v1/tasks/generate", json!({"period": "2026-Q4"}))
            .await,
    )
    .await;
    assert!(made["created"].as_i64().unwrap_or(0) > 0, "{made}");
    let open = ok_json(
        admin
            .get("/api/v1/tasks?owner=all&view=open&limit=500")
            .await,
    )
    .await;
    let first = open["items"][0]["id"].as_i64().expect("a task");
    let closed = admin
        .post(
            &format!("/api/v1/tasks/{first}/close"),
            json!({"summary": "已回访"}),
        )
        .await;
    assert_eq!(closed.status(), StatusCode::OK);
    let s = ok_json(boss.get("/api/v1/reports/strategy?period=2026-Q4").await).await;
    let sum = |key: &str| -> i64 {
        s["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l["tasks"][key].as_i64().unwrap_or(0))
            .sum()
    };
    assert_eq!(sum("due"), open["total"].as_i64().expect("total"), "{s}");
    assert_eq!(sum("done"), 1);

    // Point in time: had the task just closed been due last quarter, it
    // counts as it stood at that quarter's end — open and overdue, not
    // done — whatever happened to it since.
    app.store
        .db
        .clone()
        .execute(
            "UPDATE tasks SET due_at = $1 WHERE id = $2",
            vec![
                Arg::from(Utc.with_ymd_and_hms(2026, 9, 15, 2, 0, 0).unwrap()),
                Arg::from(first),
            ],
        )
        .await
        .expect("due last quarter");
    let q3 = ok_json(boss.get("/api/v1/reports/strategy?period=2026-Q3").await).await;
    let q3_sum = |key: &str| -> i64 {
        q3["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l["tasks"][key].as_i64().unwrap_or(0))
            .sum()
    };
    assert_eq!(
        (
            q3_sum("due"),
            q3_sum("done"),
            q3_sum("on_time"),
            q3_sum("overdue")
        ),
        (1, 0, 0, 1),
        "closed after the quarter: open past its due time at its end; {q3}"
    );
    let csv = boss
        .get("/api/v1/reports/strategy?period=2026-Q4&format=csv")
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        csv.starts_with("\u{feff}类别,目标,目标值,实际,达成"),
        "{csv}"
    );
    let xlsx = boss
        .get("/api/v1/reports/strategy?period=2026-Q4&format=xlsx")
        .await
        .bytes()
        .await
        .expect("bytes");
    let book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.to_vec())).expect("xlsx");
    assert_eq!(calamine::Reader::sheet_names(&book), ["策略效果", "定义"]);

    // The page.
    let viewer = app.login("boss2", "management", None).await;
    let page = viewer
        .get("/reports/classification?period=2026-Q4&scheme=value_tier")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("id=\"class-table\"") && page.contains("class=\"compact heat\""),
        "the report page: {page}"
    );
    assert!(
        page.contains("合计") && page.contains("&#x2f;reports&#x2f;classification&#x2f;customers?"),
        "{page}"
    );
    let bad = viewer
        .get("/reports/classification?period=2026-Q9")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        bad.contains("id=\"report-error\""),
        "a bad period is shown on the page"
    );
    let bad = viewer
        .get("/reports/classification?period=2026-Q4&churn=sometimes")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        bad.contains("id=\"report-error\"") && bad.contains("churn"),
        "an unknown churn definition is named, not silently replaced: {bad}"
    );
    let page = viewer
        .get("/reports/strategy?period=2026-Q4")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("id=\"strategy-table\"") && page.contains("data-class=\"潜力型\""),
        "{page}"
    );
    let list = viewer
        .get("/reports/strategy/customers?period=2026-Q4&class=%E6%BD%9C%E5%8A%9B%E5%9E%8B&measure=lapsed")
        .await
        .text()
        .await
        .expect("html");
    assert!(list.contains("id=\"moved-total\">2<"), "{list}");
    app.cleanup().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The quarter holding `d` and the one before, as `YYYY-Qn`.
fn quarters_of(d: NaiveDate) -> (String, String, NaiveDate) {
    use chrono::Datelike;
    let q = (d.month() - 1) / 3 + 1;
    let (py, pq) = if q == 1 {
        (d.year() - 1, 4)
    } else {
        (d.year(), q - 1)
    };
    let prev_start = NaiveDate::from_ymd_opt(py, (pq - 1) * 3 + 1, 1).expect("date");
    (
        format!("{}-Q{q}", d.year()),
        format!("{py}-Q{pq}"),
        prev_start,
    )
}

/// A customer created on 2026-03-01, in `class` of `value_tier` from the day `on`.
async fn classified_customer(
    app: &crate::helpers::TestApp,
    s: &Session,
    name: &str,
    fields: Value,
    (class, on): (&str, &str),
) -> Value {
    let c = s.customer(name, fields).await;
    let id = c["id"].as_i64().expect("id");
    app.backdate_customer(id, Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap())
        .await;
    let on = NaiveDate::parse_from_str(on, "%Y-%m-%d").expect("date");
    app.class_since(id, "value_tier", class, on).await;
    ok_json(s.get(&format!("/api/v1/customers/{id}")).await).await
}

/// A merge made after a period's end does not change that period's
/// report: the absorbed customer is counted on its own, with its class
/// and orders then (also in a chain of merges), and its drill-down shows
/// the customer it is part of today. A merge made before the end and
/// undone since counts as it stood: one customer holding both's orders.
async fn a_past_report_reads_the_same_after_a_merge(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.today = Some(scenario_today())).await;
    let admin = app.token("admin1", "admin", None).await;
    let east_manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    // 甲's class is the latest written: it must not pass to 乙 through a merge.
    let mut ids = Vec::new();
    for (name, class) in [
        ("合并前甲", ("潜力型", "2026-09-01")),
        ("合并前乙", ("战略型", "2026-08-15")),
        ("合并前丙", ("优化型", "2026-08-15")),
    ] {
        let fields = json!({"sales_region": "华东"});
        let c = classified_customer(&app, &admin, name, fields, class).await;
        ids.push(c["id"].as_i64().expect("id"));
    }
    let (ia, ib, ic) = (ids[0], ids[1], ids[2]);
    // Q2 and Q3 orders for 甲 (two days in Q3), Q3 for 乙, Q2 only for 丙.
    order(&admin, ia, "2026-05-10", 40_000).await;
    order(&admin, ia, "2026-08-01", 100_000).await;
    order(&admin, ia, "2026-08-20", 20_000).await;
    order(&admin, ib, "2026-09-01", 300_000).await;
    order(&admin, ic, "2026-06-01", 70_000).await;
    let report = |s: &'static str| {
        let (admin, manager) = (&admin, &east_manager);
        async move {
            let who = if s == "manager" { manager } else { admin };
            ok_json(
                who.get("/api/v1/reports/classification?period=2026-Q3")
                    .await,
            )
            .await
        }
    };
    let before = report("admin").await;
    let manager_before = report("manager").await;
    assert_eq!(before["total"]["customers"], 3, "{before}");
    assert_eq!(line(&before, Some("潜力型"))["revenue_fen"], 120_000);
    assert_eq!(line(&before, Some("潜力型"))["repurchased"], 1);
    // Churn is by the class at Q2's end: none then.
    assert_eq!(line(&before, None)["churned"], 1, "丙: {before}");

    // Merges `absorbed` into `survivor` as they are now, taking the defaults.
    let merge = |survivor: i64, absorbed: i64| {
        let admin = &admin;
        async move {
            let get = |id: i64| async move {
                ok_json(admin.get(&format!("/api/v1/customers/{id}")).await).await
            };
            let (s, a) = (get(survivor).await, get(absorbed).await);
            let body = json!({"survivor_id": survivor, "absorbed_id": absorbed,
                "survivor_version": s["version"], "absorbed_version": a["version"], "choices": {}});
            ok_json(admin.post("/api/v1/merges", body).await).await
        }
    };
    let same = |want: &Value, got: &Value| {
        for key in ["classes", "total", "transitions"] {
            assert_eq!(want[key], got[key], "{key}: {got}");
        }
    };
    // 甲 into 乙 after Q3: Q3 reads the same, for a manager too.
    let first = merge(ib, ia).await;
    same(&before, &report("admin").await);
    assert_eq!(manager_before["total"], report("manager").await["total"]);
    // 甲 moved from nothing to 潜力型; it is 乙 today.
    let listed = ok_json(
        admin
            .get("/api/v1/reports/classification/customers?period=2026-Q3&from=-&to=潜力型")
            .await,
    )
    .await;
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(listed["items"][0]["id"], ib, "{listed}");

    // Undone, and (say) made during Q3: at Q3's end 乙 held 甲 and its orders.
    let r = admin
        .post(&format!("/api/v1/merges/{}/undo", first["id"]), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "undo");
    app.store
        .db
        .clone()
        .execute(
            "UPDATE customer_merges SET merged_at = $1 WHERE id = $2",
            vec![
                Arg::from(Utc.with_ymd_and_hms(2026, 9, 15, 2, 0, 0).unwrap()),
                Arg::from(first["id"].as_i64().expect("id")),
            ],
        )
        .await
        .expect("date the merge");
    let folded = report("admin").await;
    assert_eq!(folded["total"]["customers"], 2, "{folded}");
    assert_eq!(
        folded["total"]["revenue_fen"],
        before["total"]["revenue_fen"]
    );
    let strategic = line(&folded, Some("战略型"));
    assert_eq!(
        (
            strategic["customers"].as_i64(),
            strategic["revenue_fen"].as_i64(),
            strategic["orders"].as_i64()
        ),
        (Some(1), Some(420_000), Some(3)),
        "乙 held 甲's orders at the end of Q3: {folded}"
    );
    assert_eq!(line(&folded, Some("潜力型"))["customers"], 0, "{folded}");

    // 甲 into 乙 and 乙 into 丙 today, a chain over that: Q3 still reads as it stood.
    merge(ib, ia).await;
    merge(ic, ib).await;
    same(&folded, &report("admin").await);
}

/// The report's SLA counts only the segment's service requests, and a
/// past period's as they stood at its end: a request closed after the
/// period was still open then.
async fn report_sla_follows_the_segment_and_the_period_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let service = app.token("svc1", "service", None).await;
    let today = kehu_store::today_in_china();
    let (this_q, last_q, last_start) = quarters_of(today);
    let north = admin
        .customer("北方服务客户", json!({"sales_region": "华北"}))
        .await;
    let east = admin
        .customer("东方服务客户", json!({"sales_region": "华东"}))
        .await;
    for c in [&north, &east] {
        let r = admin
            .post(
                &format!("/api/v1/customers/{}/interactions", c["id"]),
                json!({"kind": "投诉", "occurred_on": today.to_string(), "summary": "到货破损", "severity": "high"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    ok_json(
        admin
            .post("/api/v1/jobs/complaint_tasks/run", json!({}))
            .await,
    )
    .await;
    let sla_of = |query: String| {
        let boss = &boss;
        async move {
            let r = ok_json(
                boss.get(&format!("/api/v1/reports/classification?{query}"))
                    .await,
            )
            .await;
            r["sla"]["total"].clone()
        }
    };
    let everyone = sla_of(format!("period={this_q}")).await;
    assert_eq!(everyone["total"], 2, "{everyone}");
    let segment = sla_of(format!("period={this_q}&segment=%E5%8D%8E%E5%8C%97")).await;
    assert_eq!(segment["total"], 1, "only 华北's request: {segment}");

    // The north request belongs to last quarter (made and due then), and is
    // answered only now.
    let items = ok_json(
        service
            .get(&format!(
                "/api/v1/tasks?kind=service&customer={}",
                north["id"]
            ))
            .await,
    )
    .await;
    let task = items["items"][0].clone();
    let made = Utc.from_utc_datetime(&last_start.and_hms_opt(2, 0, 0).expect("time"));
    let mut db = app.store.db.clone();
    db.execute(
        "UPDATE tasks SET created_at = $1, due_at = $2 WHERE id = $3",
        vec![
            Arg::from(made),
            Arg::from(made + chrono::Duration::hours(4)),
            Arg::from(task["id"].as_i64().expect("id")),
        ],
    )
    .await
    .expect("backdate");
    ok_json(
        service
            .post(
                &format!("/api/v1/tasks/{}/close", task["id"]),
                json!({"summary": "已补发"}),
            )
            .await,
    )
    .await;
    let past = sla_of(format!("period={last_q}")).await;
    assert_eq!(
        (
            past["total"].as_i64(),
            past["open_breached"].as_i64(),
            past["late"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "open and past due at the quarter's end: {past}"
    );
    // The live SLA view of the same days counts it as answered late.
    let live = ok_json(
        boss.get(&format!(
            "/api/v1/tasks/sla?from={last_start}&to={}",
            last_start + chrono::Months::new(3)
        ))
        .await,
    )
    .await;
    assert_eq!(live["total"]["late"], 1, "{live}");
    app.cleanup().await;
}
