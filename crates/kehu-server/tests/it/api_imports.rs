//! Imports through the API: upload (a dry run), apply with abort or skip,
//! idempotent re-runs, 待跟进, the error report, undo, rights and scopes.

use crate::both_backends;
use crate::helpers::{error_fields, first_error, problem, spawn_app, upload_import, Session};
use kehu_store::Backend;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    customers_template_dry_run_apply_rerun_and_undo,
    orders_and_interactions_feed_rollups_and_classes,
    rights_and_scopes_of_imports,
    bad_files_and_undo_conflicts,
    mapping_templates_saved_and_reused,
    a_shared_phone_makes_a_suspect,
    a_close_name_makes_a_suspect,
    an_abbreviation_makes_a_suspect,
    a_large_file_is_written_in_batches_and_undone_whole,
);

/// The duplicate-suspect problems of an import report.
fn suspects(report: &Value) -> Vec<&Value> {
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["code"] == "duplicate_suspect")
        .collect()
}

/// GBK, as Chinese Excel saves a CSV.
fn gbk(s: &str) -> Vec<u8> {
    encoding_rs::GBK.encode(s).0.into_owned()
}

async fn checked(s: &Session, kind: &str, name: &str, bytes: Vec<u8>) -> Value {
    let r = upload_import(s, kind, name, bytes).await;
    let status = r.status();
    let body: Value = r.json().await.expect("report");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "dry_run");
    body
}

async fn apply(s: &Session, id: &Value, on_invalid: &str) -> Value {
    let r = s
        .post(
            &format!("/api/v1/imports/{id}/apply"),
            json!({"on_invalid": on_invalid}),
        )
        .await;
    let status = r.status();
    let body: Value = r.json().await.expect("report");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn counts(report: &Value) -> [u64; 7] {
    let c = &report["counts"];
    [
        "rows",
        "new",
        "updated",
        "unchanged",
        "invalid",
        "duplicate_suspects",
        "follow_up",
    ]
    .map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

/// The summary of an import undone.
async fn undone(s: &Session, id: &Value) -> Value {
    let r = s
        .post(&format!("/api/v1/imports/{id}/undo"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("undo")
}

/// The JSON of a GET.
async fn json_at(s: &Session, path: &str) -> Value {
    s.get(path).await.json().await.expect("json")
}

async fn customer_count(s: &Session) -> u64 {
    let r = json_at(s, "/api/v1/customers?with_total=true&limit=1").await;
    r["total"].as_u64().expect("total")
}

const TEMPLATE: &str = "客户编号,客户名称,所属行业,企业规模(员工数),联系人,职务,座机,合作起始时间,年采购额(万元),核心产品类型\n\
C2024001,华东精密制造有限公司,制造业,680,王建国,采购总监,0512-62881234,2021-03-15,120,精密轴承、传动部件\n\
C2024002,广州新锐商贸有限公司,零售业,85,陈晓燕,店长,020-38881234,2023/6/20,35,仓储搬运设备\n\
C2024003,宁波港通物流有限公司,,300,,,,,,\n\
C2024004,苏州某某机械有限公司,制造业,-5,,,,2022-01-01,,\n\
C2024005,=cmd|' /C calc'!A0,制造业,,,,,2022-01-01,,\n\
C2024001,华东精密制造有限公司,制造业,680,王建国,采购总监,0512-62881234,2021-03-15,120,精密轴承\n\
,华东精密制造(苏州)有限公司,制造业,200,,,,2020-01-01,,\n";

async fn customers_template_dry_run_apply_rerun_and_undo(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.login("imp_admin", "admin", None).await;
    let report = checked(&admin, "customers", "客户.csv", gbk(TEMPLATE)).await;
    // 7 rows: 4 new (one 待跟进, one a likely duplicate), 3 invalid
    // (employees -5, a formula, a repeated code).
    assert_eq!(
        counts(&report),
        [7, 4, 0, 0, 3, 1, 1],
        "{}",
        report["problems"]
    );
    let problems = report["problems"].as_array().expect("problems");
    let find = |row: u64| {
        problems
            .iter()
            .find(|p| p["row"] == row)
            .unwrap_or_else(|| panic!("no problem on row {row}: {problems:?}"))
    };
    assert_eq!(find(5)["column"], "企业规模(员工数)");
    assert_eq!(find(5)["code"], "out_of_range");
    assert_eq!(find(6)["column"], "客户名称");
    assert_eq!(find(7)["column"], "客户编号");
    assert!(find(7)["reason_en"]
        .as_str()
        .unwrap_or("")
        .contains("row 2"));
    assert_eq!(find(8)["code"], "duplicate_suspect");
    assert_eq!(find(8)["warning"], true);
    assert_eq!(customer_count(&admin).await, 0, "a dry run writes nothing");

    // Abort: one invalid row and nothing is written.
    let id = report["id"].clone();
    let refused = apply(&admin, &id, "abort").await;
    assert_eq!(refused["status"], "refused");
    assert_eq!(customer_count(&admin).await, 0);

    // Skip: the valid rows, all at once.
    let applied = apply(&admin, &id, "skip").await;
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(counts(&applied)[1], 4);
    assert_eq!(customer_count(&admin).await, 4);
    let list = json_at(&admin, "/api/v1/customers?code=C2024003").await;
    let c3 = &list["items"][0];
    assert_eq!(
        c3["missing_fields"],
        json!(["industry", "cooperation_start_on"])
    );
    let list = json_at(&admin, "/api/v1/customers?code=C2024001").await;
    let c1 = &list["items"][0];
    assert_eq!(c1["declared_annual_purchase_fen"], 120_000_000i64);
    assert_eq!(c1["employees"], 680);
    assert_eq!(c1["missing_fields"], json!([]));
    let contacts = json_at(
        &admin,
        &format!("/api/v1/contacts?customer_id={}&reveal=true", c1["id"]),
    )
    .await;
    assert_eq!(contacts["items"][0]["name"], "王建国");
    assert_eq!(contacts["items"][0]["landline"], "0512-62881234");
    let version_before = c1["version"].clone();

    // The same file again changes nothing.
    let again = checked(&admin, "customers", "客户.csv", gbk(TEMPLATE)).await;
    assert_eq!(
        counts(&again)[..5],
        [7, 0, 0, 4, 3],
        "{}",
        again["problems"]
    );
    let again = apply(&admin, &again["id"], "skip").await;
    assert_eq!(counts(&again)[..4], [7, 0, 0, 4]);
    let c1_after = json_at(&admin, &format!("/api/v1/customers/{}", c1["id"])).await;
    assert_eq!(c1_after["version"], version_before, "nothing rewritten");

    // A new row naming a stored company differently is a likely duplicate of it.
    let twin = "客户名称,所属行业\n（苏州）华东精密制造股份有限公司,制造业\n";
    let twin = checked(&admin, "customers", "twin.csv", twin.as_bytes().to_vec()).await;
    assert_eq!(counts(&twin)[..6], [1, 1, 0, 0, 0, 1], "{twin}");
    assert!(
        twin["problems"][0]["reason_en"]
            .as_str()
            .unwrap_or("")
            .contains("existing customer C2024001"),
        "{twin}"
    );

    // A changed file updates only what it names; empty cells keep values.
    let change = "客户编号,客户名称,年采购额(万元),所属行业\nC2024001,华东精密制造有限公司,130,\nC2024003,宁波港通物流有限公司,,物流运输\n";
    let changed = checked(&admin, "customers", "更新.csv", change.as_bytes().to_vec()).await;
    assert_eq!(counts(&changed)[..5], [2, 0, 2, 0, 0], "{changed}");
    let changed = apply(&admin, &changed["id"], "abort").await;
    assert_eq!(changed["status"], "applied");
    let c1_now = json_at(&admin, &format!("/api/v1/customers/{}", c1["id"])).await;
    assert_eq!(c1_now["declared_annual_purchase_fen"], 130_000_000i64);
    assert_eq!(c1_now["industry"], "制造业");

    // Undo the update: the values are back.
    let undo = admin
        .post(
            &format!("/api/v1/imports/{}/undo", changed["id"]),
            json!({}),
        )
        .await;
    assert_eq!(undo.status(), StatusCode::OK);
    let c1_back = json_at(&admin, &format!("/api/v1/customers/{}", c1["id"])).await;
    assert_eq!(c1_back["declared_annual_purchase_fen"], 120_000_000i64);

    // Undo the first import: its customers (and their contacts) are gone.
    let undo: Value = admin
        .post(&format!("/api/v1/imports/{id}/undo"), json!({}))
        .await
        .json()
        .await
        .expect("undo");
    assert_eq!(undo["deleted"], 6, "4 customers and 2 contacts: {undo}");
    assert_eq!(customer_count(&admin).await, 0);
    let twice = admin
        .post(&format!("/api/v1/imports/{id}/undo"), json!({}))
        .await;
    problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await;

    // The error report, in the reader's language.
    let csv = admin
        .get(&format!("/api/v1/imports/{id}/problems.csv"))
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        csv.starts_with("\u{feff}行号,列,字段,值,类型,原因"),
        "{csv}"
    );
    assert!(csv.contains("'=cmd"), "formula cells are defused: {csv}");
    app.cleanup().await;
}

async fn orders_and_interactions_feed_rollups_and_classes(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.login("imp_orders", "admin", None).await;
    let c = admin
        .customer("杭州云帆科技有限公司", json!({"code": "C2025001"}))
        .await;
    let today = app.store.today();
    let day = |ago: i64| (today - chrono::Duration::days(ago)).to_string();
    let orders = format!(
        "客户编号\t下单日期\t金额(元)\t产品线\nC2025001\t{}\t600000\t云服务器\nC2025001\t{}\t\"450,000.50\"\t存储\nC9999999\t{}\t100\tx\nC2025001\t{}\t100\tx\n",
        day(10),
        day(40),
        day(5),
        day(-3)
    );
    let report = checked(&admin, "orders", "订单.tsv", orders.into_bytes()).await;
    assert_eq!(
        counts(&report)[..5],
        [4, 2, 0, 0, 2],
        "{}",
        report["problems"]
    );
    let applied = apply(&admin, &report["id"], "skip").await;
    assert_eq!(applied["status"], "applied");
    let after = json_at(&admin, &format!("/api/v1/customers/{}", c["id"])).await;
    assert_eq!(after["purchase_12m_fen"], 105_000_050i64);
    assert_eq!(after["order_count"], 2);
    // Re-classified at once: 105万 in 12 months is 高价值 in 价值分层.
    let explanations = json_at(
        &admin,
        &format!("/api/v1/customers/{}/explanations", c["id"]),
    )
    .await;
    let text = explanations.to_string();
    assert!(text.contains("高"), "{text}");

    let interactions = format!(
        "客户编号,日期,类型,摘要\nC2025001,{},投诉,交货延迟\nC2025001,{},拜访,季度回访\n",
        day(2),
        day(1)
    );
    let report = checked(
        &admin,
        "interactions",
        "互动.csv",
        interactions.clone().into_bytes(),
    )
    .await;
    assert_eq!(counts(&report)[..5], [2, 2, 0, 0, 0]);
    apply(&admin, &report["id"], "abort").await;
    let after = json_at(&admin, &format!("/api/v1/customers/{}", c["id"])).await;
    assert_eq!(after["complaints_365d"], 1);
    let again = checked(
        &admin,
        "interactions",
        "互动.csv",
        interactions.into_bytes(),
    )
    .await;
    assert_eq!(counts(&again)[..5], [2, 0, 0, 2, 0]);

    // Undo the orders: the rollups follow.
    let r = admin
        .post(
            &format!("/api/v1/imports/{}/undo", applied["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after = json_at(&admin, &format!("/api/v1/customers/{}", c["id"])).await;
    assert_eq!(after["purchase_12m_fen"], 0);
    app.cleanup().await;
}

async fn rights_and_scopes_of_imports(backend: Backend) {
    let app = spawn_app(backend).await;
    let rep_a = app.login("imp_rep_a", "sales_rep", Some("A")).await;
    let rep_b = app.login("imp_rep_b", "sales_rep", Some("B")).await;
    let service = app.login("imp_service", "service", Some("A")).await;
    let mine = rep_a
        .customer("甲方科技有限公司", json!({"code": "C2025101"}))
        .await;
    rep_b
        .customer("乙方科技有限公司", json!({"code": "C2025102"}))
        .await;

    // Orders for another team's customer: as if it did not exist.
    let orders = "客户编号,下单日期,金额(元)\nC2025101,2024-01-05,100\nC2025102,2024-01-05,100\n";
    let report = checked(&rep_a, "orders", "o.csv", orders.as_bytes().to_vec()).await;
    let orders_id = report["id"].clone();
    assert_eq!(counts(&report)[..5], [2, 1, 0, 0, 1]);
    assert_eq!(report["problems"][0]["row"], 3);
    assert_eq!(report["problems"][0]["field"], "customer_code");

    // A customer row naming another team's customer is refused, not merged.
    let customers =
        "客户编号,客户名称,所属行业,合作起始时间\nC2025102,乙方科技有限公司,金融,2020-01-01\n";
    let report = checked(&rep_a, "customers", "c.csv", customers.as_bytes().to_vec()).await;
    assert_eq!(counts(&report)[..5], [1, 0, 0, 0, 1]);

    // 客服 imports no customers, and of interactions only service records and complaints.
    let r = upload_import(
        &service,
        "customers",
        "c.csv",
        customers.as_bytes().to_vec(),
    )
    .await;
    problem(r, StatusCode::FORBIDDEN).await;
    let tickets = "客户编号,日期,类型,摘要\nC2025101,2024-02-01,投诉,发票错误\nC2025101,2024-02-02,拜访,上门\n";
    let report = checked(
        &service,
        "interactions",
        "i.csv",
        tickets.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(counts(&report)[..5], [2, 1, 0, 0, 1]);
    assert_eq!(report["problems"][0]["field"], "kind");

    // Someone else's import cannot be read, applied or undone.
    let id = report["id"].clone();
    for r in [
        rep_b.get(&format!("/api/v1/imports/{id}")).await,
        rep_b
            .post(
                &format!("/api/v1/imports/{id}/apply"),
                json!({"on_invalid": "skip"}),
            )
            .await,
    ] {
        problem(r, StatusCode::NOT_FOUND).await;
    }
    let listed = json_at(&rep_b, "/api/v1/imports").await;
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .all(|r| r["id"] != id));
    // Nor its error report downloaded, checked again, or (once applied) undone.
    let applied = apply(&rep_a, &orders_id, "skip").await;
    assert_eq!(applied["status"], "applied");
    for id in [&id, &orders_id] {
        for r in [
            rep_b
                .get(&format!("/api/v1/imports/{id}/problems.csv"))
                .await,
            rep_b
                .post(&format!("/api/v1/imports/{id}/dry-run"), json!({}))
                .await,
            rep_b
                .post(&format!("/api/v1/imports/{id}/undo"), json!({}))
                .await,
        ] {
            problem(r, StatusCode::NOT_FOUND).await;
        }
    }
    let still = json_at(&rep_a, &format!("/api/v1/imports/{orders_id}")).await;
    assert_eq!(still["status"], "applied", "{still}");
    let _ = mine;
    app.cleanup().await;
}

async fn bad_files_and_undo_conflicts(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.login("imp_bad", "admin", None).await.english();

    // A new code with a stored customer's USCC is refused, not a renamed code.
    admin
        .customer(
            "厦门鹭江贸易有限公司",
            json!({"code": "C2025250", "uscc": "91350100M000100Y43"}),
        )
        .await;
    let renamed =
        "客户编号,客户名称,统一社会信用代码\nC2029999,厦门鹭江贸易有限公司,91350100M000100Y43\n";
    let renamed_bytes = renamed.as_bytes().to_vec();
    let renamed = checked(&admin, "customers", "r.csv", renamed_bytes.clone()).await;
    assert_eq!(counts(&renamed)[..5], [1, 0, 0, 0, 1], "{renamed}");
    assert_eq!(renamed["problems"][0]["field"], "code");
    assert!(
        renamed["problems"][0]["reason_en"]
            .as_str()
            .unwrap_or("")
            .contains("C2025250"),
        "{renamed}"
    );

    // A file name is data: no path, no line breaks kept.
    for (sent, kept) in [
        ("../../etc/客户.csv", "客户.csv"),
        ("..\\..\\导入.csv", "导入.csv"),
        ("\"quoted\"; x=.csv", "\"quoted\"; x=.csv"),
    ] {
        let report = checked(&admin, "customers", sent, renamed_bytes.clone()).await;
        assert_eq!(report["file_name"], kept, "{report}");
    }
    // A line break in the part's header breaks the upload: refused, named.
    let p = problem(
        upload_import(
            &admin,
            "customers",
            "x\r\nSet-Cookie: a=b.csv",
            renamed_bytes.clone(),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "file");

    // A file of another kind: the missing column is named.
    let r = upload_import(
        &admin,
        "orders",
        "c.csv",
        "客户名称,所属行业\n某公司,制造业\n".into(),
    )
    .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(first_error(&p).0, "mapping");
    assert!(p.to_string().contains("客户编号"), "{p}");
    // No kind, no file, an empty file, a broken workbook.
    let form = Form::new().text("kind", "customers");
    let r = admin
        .request(Method::POST, "/api/v1/imports")
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(
        first_error(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await).0,
        "file"
    );
    let r = upload_import(&admin, "nonsense", "c.csv", b"a\n1\n".to_vec()).await;
    assert_eq!(
        first_error(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await).0,
        "kind"
    );
    let r = upload_import(&admin, "customers", "c.xlsx", b"not a workbook".to_vec()).await;
    assert_eq!(
        first_error(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await).0,
        "file"
    );

    // A workbook, laid out like the template.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (col, h) in [
        "客户编号",
        "客户名称",
        "所属行业",
        "合作起始时间",
        "年采购额(万元)",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, col as u16, *h).expect("cell");
    }
    sheet.write_string(1, 0, "C2025201").expect("cell");
    sheet
        .write_string(1, 1, "深圳鹏城电子有限公司")
        .expect("cell");
    sheet.write_string(1, 2, "制造业").expect("cell");
    sheet.write_string(1, 3, "2022-05-01").expect("cell");
    sheet.write_number(1, 4, 88.5).expect("cell");
    let bytes = book.save_to_buffer().expect("xlsx");
    let report = checked(&admin, "customers", "客户.xlsx", bytes).await;
    assert_eq!(
        counts(&report)[..5],
        [1, 1, 0, 0, 0],
        "{}",
        report["problems"]
    );
    let applied = apply(&admin, &report["id"], "abort").await;
    let list = json_at(&admin, "/api/v1/customers?code=C2025201").await;
    let c = list["items"][0].clone();
    assert_eq!(c["declared_annual_purchase_fen"], 88_500_000i64);
    // An applied import cannot be applied again.
    let r = admin
        .post(
            &format!("/api/v1/imports/{}/apply", applied["id"]),
            json!({"on_invalid": "skip"}),
        )
        .await;
    problem(r, StatusCode::CONFLICT).await;

    // Edited since: the undo is refused and names the record; nothing changes.
    let r = admin
        .patch(
            &format!("/api/v1/customers/{}", c["id"]),
            json!({"version": c["version"], "notes": "已核实"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin
        .post(
            &format!("/api/v1/imports/{}/undo", applied["id"]),
            json!({}),
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(p.to_string().contains("changed after the import"), "{p}");
    let still = json_at(&admin, &format!("/api/v1/customers/{}", c["id"])).await;
    assert_eq!(still["notes"], "已核实");

    // Custom fields by their labels (意向阶段, 预计成交日期), checked like any field.
    let custom = "客户编号,客户名称,所属行业,合作起始时间,意向阶段,预计成交日期\n\
                  C2025210,厦门海沧贸易有限公司,零售业,2022-01-01,大希望,2027/1/15\n\
                  C2025211,厦门集美贸易有限公司,零售业,2022-01-01,很想买,2027-02-01\n";
    let report = checked(&admin, "customers", "cf.csv", custom.as_bytes().to_vec()).await;
    assert_eq!(counts(&report)[..5], [2, 1, 0, 0, 1], "{report}");
    assert!(
        report["mapping"].to_string().contains("cf.intent_stage"),
        "{report}"
    );
    assert_eq!(report["problems"][0]["column"], "意向阶段");
    assert_eq!(report["problems"][0]["field"], "custom_fields.intent_stage");
    apply(&admin, &report["id"], "skip").await;
    let list = json_at(&admin, "/api/v1/customers?code=C2025210").await;
    assert_eq!(list["items"][0]["custom_fields"]["intent_stage"], "大希望");
    assert_eq!(
        list["items"][0]["custom_fields"]["expected_close_on"],
        "2027-01-15"
    );

    // Re-checking with a mapping: a column left out, another renamed.
    let odd = "编号,公司全称,Industry\nC2025202,珠海海川船舶有限公司,制造业\n";
    let r = upload_import(&admin, "customers", "odd.csv", odd.into()).await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(p.to_string().contains("客户名称"), "{p}");
    let form = Form::new()
        .text("kind", "customers")
        .text(
            "mapping",
            json!({"columns": {"编号": "code", "公司全称": "name", "Industry": null}}).to_string(),
        )
        .part(
            "file",
            Part::bytes(odd.as_bytes().to_vec()).file_name("odd.csv"),
        );
    let r = admin
        .request(Method::POST, "/api/v1/imports")
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::CREATED);
    let report: Value = r.json().await.expect("report");
    assert_eq!(counts(&report)[..5], [1, 1, 0, 0, 0]);
    assert_eq!(counts(&report)[6], 1, "no industry: 待跟进");
    let again: Value = admin
        .post(
            &format!("/api/v1/imports/{}/dry-run", report["id"]),
            json!({"mapping": {"columns": {"编号": "code", "公司全称": "name", "Industry": "industry"}}}),
        )
        .await
        .json()
        .await
        .expect("report");
    assert!(
        again["mapping"].to_string().contains("\"industry\""),
        "{again}"
    );
    let applied = apply(&admin, &report["id"], "abort").await;
    assert_eq!(applied["status"], "applied");
    let list = json_at(&admin, "/api/v1/customers?code=C2025202").await;
    assert_eq!(list["items"][0]["industry"], "制造业");
    app.cleanup().await;
}

async fn mapping_templates_saved_and_reused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let service = app.token("service1", "service", None).await;
    let columns = json!({"单位全称": "name", "行业类别": "industry", "起始合作": "cooperation_start_on", "内部备注": null});

    // Checked: a known kind, known fields, a name; only those who import the kind save it.
    let p = problem(
        admin
            .post(
                "/api/v1/import-mappings",
                json!({"kind": "customers", "name": "", "columns": {"单位全称": "colour"}}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&p);
    assert_eq!(fields, ["name", "columns.单位全称"], "{p}");
    let r = service
        .post(
            "/api/v1/import-mappings",
            json!({"kind": "customers", "name": "旧系统", "columns": columns}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let saved: Value = admin
        .post(
            "/api/v1/import-mappings",
            json!({"kind": "customers", "name": "旧系统", "columns": columns}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(saved["columns"], columns, "{saved}");
    let id = saved["id"].as_i64().expect("id");
    // Saving under the same name replaces it.
    let again: Value = admin
        .post(
            "/api/v1/import-mappings",
            json!({"kind": "customers", "name": "旧系统", "columns": columns}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["id"], id);
    assert_eq!(
        json_at(&admin, "/api/v1/import-mappings")
            .await
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // An upload with the template: headers nothing else would recognize.
    let csv =
        "单位全称,行业类别,起始合作,内部备注\n模板导入精工有限公司,制造业,2021-04-01,不导入\n"
            .as_bytes()
            .to_vec();
    let form = Form::new()
        .text("kind", "customers")
        .text("mapping_id", id.to_string())
        .part("file", Part::bytes(csv.clone()).file_name("旧系统导出.csv"));
    let r = admin
        .request(Method::POST, "/api/v1/imports")
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::CREATED);
    let report: Value = r.json().await.expect("report");
    assert_eq!(counts(&report)[..2], [1, 1], "{report}");
    // A template of another kind is refused, naming it.
    let orders: Value = admin
        .post(
            "/api/v1/import-mappings",
            json!({"kind": "orders", "name": "订单", "columns": {"单号": "order_no"}}),
        )
        .await
        .json()
        .await
        .expect("json");
    let p = problem(
        admin
            .post(
                &format!("/api/v1/imports/{}/dry-run", report["id"]),
                json!({"mapping_id": orders["id"]}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "mapping_id");
    let rechecked: Value = admin
        .post(
            &format!("/api/v1/imports/{}/dry-run", report["id"]),
            json!({"mapping_id": id}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(counts(&rechecked)[..2], [1, 1]);
    let r = admin
        .request(Method::DELETE, &format!("/api/v1/import-mappings/{id}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = admin
        .request(Method::DELETE, &format!("/api/v1/import-mappings/{id}"))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

async fn a_shared_phone_makes_a_suspect(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let stored = admin.customer("杭州云帆数据科技有限公司", json!({})).await;
    let r = admin
        .post(
            &format!("/api/v1/customers/{}/contacts", stored["id"]),
            json!({"name": "周八", "mobile": "13900139000", "landline": "0571-88886666"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Another name, the same people: by mobile (written another way) and by landline.
    let csv = "客户名称,所属行业,合作起始时间,联系人,手机,座机\n\
               云帆科技(杭州)有限责任公司,IT服务,2022-01-01,周八,139 0013 9000,\n\
               西湖数智有限公司,IT服务,2022-01-01,吴九,,057188886666\n\
               完全无关有限公司,IT服务,2022-01-01,郑十,13700137000,\n\
               坏号码有限公司,IT服务,2022-01-01,钱十一,1380013800,\n";
    let report = checked(&admin, "customers", "新客户.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(counts(&report)[..2], [4, 3], "{report}");
    // The error report is read by others than the importer: personal cells masked.
    let bad = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["field"] == "contact.mobile")
        .cloned()
        .expect("the bad mobile");
    assert_eq!(
        (bad["row"].clone(), bad["value"].clone()),
        (json!(5), json!("138***3800"))
    );
    let csv_report = admin
        .get(&format!("/api/v1/imports/{}/problems.csv", report["id"]))
        .await
        .text()
        .await
        .expect("csv");
    assert!(csv_report.contains("138***3800"), "{csv_report}");
    for clear in ["1380013800", "13900139000", "88886666"] {
        assert!(!csv_report.contains(clear), "{clear} in {csv_report}");
        assert!(!report.to_string().contains(clear), "{clear} in {report}");
    }
    assert_eq!(report["counts"]["duplicate_suspects"], 2, "{report}");
    let reasons: Vec<&str> = suspects(&report)
        .into_iter()
        .filter_map(|p| p["reason_en"].as_str())
        .collect();
    let code = stored["code"].as_str().expect("code");
    assert_eq!(
        reasons,
        [
            format!("likely the same company as existing customer {code} (same phone 139****9000)"),
            format!(
                "likely the same company as existing customer {code} (same phone 0571-****6666)"
            ),
        ],
        "{report}"
    );
    app.cleanup().await;
}

/// A new row whose name sounds like a stored customer's or an earlier
/// row's — the same core with business words left out, or characters
/// that sound alike — is a likely duplicate; a sister company (the same
/// core, other business words) and an unrelated name are not.
async fn a_close_name_makes_a_suspect(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let stored = admin.customer("北京字节跳动科技有限公司", json!({})).await;
    let code = stored["code"].as_str().expect("code").to_string();
    let csv = "客户名称,所属行业,合作起始时间\n\
               字节跳动控股有限公司,IT服务,2022-01-01\n\
               字节跳动有限公司,IT服务,2022-01-01\n\
               字节挑动科技有限公司,IT服务,2022-01-01\n\
               云杉智能网络有限公司,IT服务,2022-01-01\n\
               云杉智能有限公司,IT服务,2022-01-01\n\
               完全无关有限公司,IT服务,2022-01-01\n";
    let report = checked(&admin, "customers", "相近名称.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(counts(&report)[..2], [6, 6], "{report}");
    assert_eq!(report["counts"]["duplicate_suspects"], 3, "{report}");
    let found: Vec<(u64, String, String)> = suspects(&report)
        .into_iter()
        .map(|p| {
            (
                p["row"].as_u64().expect("row"),
                p["reason_en"].as_str().expect("en").to_string(),
                p["reason_zh"].as_str().expect("zh").to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                3,
                format!("likely the same company as existing customer {code} (close name: same core name)"),
                format!("可能与已有客户 {code} 重复（名称相近：核心名相同）"),
            ),
            (
                4,
                format!("likely the same company as existing customer {code} (close name: same pinyin)"),
                format!("可能与已有客户 {code} 重复（名称相近：读音相同）"),
            ),
            (
                6,
                "likely the same company as row 5 (close name: same core name)".to_string(),
                "可能与第 5 行是同一家公司（名称相近：核心名相同）".to_string(),
            ),
        ],
        "{report}"
    );
    // A stored name's sound follows a rename.
    let renamed = admin
        .patch(
            &format!("/api/v1/customers/{}", stored["id"]),
            json!({"name": "上海云杉智能有限公司", "version": stored["version"]}),
        )
        .await;
    assert_eq!(
        renamed.status(),
        StatusCode::OK,
        "{:?}",
        renamed.text().await
    );
    let csv = "客户名称,所属行业,合作起始时间\n字节挑动科技有限公司,IT服务,2022-01-01\n云杉智能网络有限公司,IT服务,2022-01-01\n";
    let report = checked(&admin, "customers", "改名后.csv", csv.as_bytes().to_vec()).await;
    let rows: Vec<u64> = suspects(&report)
        .into_iter()
        .filter_map(|p| p["row"].as_u64())
        .collect();
    assert_eq!(rows, [3], "only the name that now sounds alike: {report}");
    app.cleanup().await;
}

/// A new row under an abbreviation of a stored customer's name, or under
/// the full name of a stored abbreviation, is a likely duplicate; so is one
/// abbreviating an earlier row or abbreviated by one. Two characters are
/// too loose to warn on by name alone (宏信 / 宏达信息), unless they are a
/// well-known short name of the other (招行 / 招商银行).
async fn an_abbreviation_makes_a_suspect(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let sinopec = admin.customer("中国石油化工集团有限公司", json!({})).await;
    let petrochina = admin.customer("中石油有限公司", json!({})).await;
    let code = |c: &Value| c["code"].as_str().expect("code").to_string();
    let (sinopec, petrochina) = (code(&sinopec), code(&petrochina));
    let csv = "客户名称,所属行业,合作起始时间\n\
               中石化有限公司,IT服务,2022-01-01\n\
               中国石油天然气股份有限公司,IT服务,2022-01-01\n\
               华润万家超市有限公司,IT服务,2022-01-01\n\
               华万家有限公司,IT服务,2022-01-01\n\
               云智联有限公司,IT服务,2022-01-01\n\
               云帆智能互联有限公司,IT服务,2022-01-01\n\
               招行,IT服务,2022-01-01\n\
               招商银行股份有限公司,IT服务,2022-01-01\n\
               宏信有限公司,IT服务,2022-01-01\n\
               宏达信息有限公司,IT服务,2022-01-01\n";
    let expected = [
        (
            2,
            format!("likely the same company as existing customer {sinopec} (close name: abbreviation)"),
            format!("可能与已有客户 {sinopec} 重复（名称相近：简称）"),
        ),
        (
            3,
            format!("likely the same company as existing customer {petrochina} (close name: abbreviation)"),
            format!("可能与已有客户 {petrochina} 重复（名称相近：简称）"),
        ),
        (
            5,
            "likely the same company as row 4 (close name: abbreviation)".to_string(),
            "可能与第 4 行是同一家公司（名称相近：简称）".to_string(),
        ),
        (
            7,
            "likely the same company as row 6 (close name: abbreviation)".to_string(),
            "可能与第 6 行是同一家公司（名称相近：简称）".to_string(),
        ),
        (
            9,
            "likely the same company as row 8 (close name: abbreviation)".to_string(),
            "可能与第 8 行是同一家公司（名称相近：简称）".to_string(),
        ),
    ];
    let found = |report: &Value| -> Vec<(u64, String, String)> {
        suspects(report)
            .into_iter()
            .map(|p| {
                (
                    p["row"].as_u64().expect("row"),
                    p["reason_en"].as_str().expect("en").to_string(),
                    p["reason_zh"].as_str().expect("zh").to_string(),
                )
            })
            .collect()
    };
    // With many new rows the stored names are read into memory once, with
    // few each name is looked up in the database: the same answers.
    let padding: String = (0..250)
        .map(|i| format!("填充{i:03}号有限公司,IT服务,2022-01-01\n"))
        .collect();
    let padded = format!("{csv}{padding}");
    let report = checked(&admin, "customers", "简称多.csv", padded.into_bytes()).await;
    assert_eq!(counts(&report)[..2], [260, 260], "{report}");
    assert_eq!(found(&report), expected, "{report}");
    let report = checked(&admin, "customers", "简称.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(counts(&report)[..2], [10, 10], "{report}");
    assert_eq!(found(&report), expected, "{report}");
    // Applying plans the rows again on the import's transaction: the same warnings.
    let applied = apply(&admin, &report["id"], "abort").await;
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(found(&applied), expected, "{applied}");
    app.cleanup().await;
}

/// Every customer as (code → (id, name, employees)), page by page.
async fn all_customers(s: &Session) -> std::collections::BTreeMap<String, (i64, String, i64)> {
    let mut out = std::collections::BTreeMap::new();
    let mut path = "/api/v1/customers?sort=code&limit=500".to_string();
    loop {
        let page = json_at(s, &path).await;
        for c in page["items"].as_array().expect("items") {
            out.insert(
                c["code"].as_str().expect("code").to_string(),
                (
                    c["id"].as_i64().expect("id"),
                    c["name"].as_str().expect("name").to_string(),
                    c["employees"].as_i64().unwrap_or(-1),
                ),
            );
        }
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("/api/v1/customers?sort=code&limit=500&cursor={next}"),
            None => return out,
        }
    }
}

/// More rows than one statement writes: new customers with and without
/// codes (the generated codes never take a given one), each with its own
/// contact; then every one updated; then both imports undone.
async fn a_large_file_is_written_in_batches_and_undone_whole(backend: Backend) {
    const ROWS: usize = 1_200;
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let first = admin.customer("先建的客户有限公司", json!({})).await;
    let first_code = first["code"].as_str().expect("code").to_string();
    let (prefix, n) = first_code.split_at(5);
    // The code the store would generate next, given to a row of the file.
    let taken = format!("{prefix}{:03}", n.parse::<u64>().expect("number") + 1);
    let code_of = |i: usize| match i {
        0 => taken.clone(),
        _ if i.is_multiple_of(2) => format!("K{i:05}"),
        _ => String::new(),
    };
    let name_of = |i: usize| format!("批次{i:04}号企业");
    let mut csv =
        String::from("客户编号,客户名称,所属行业,企业规模(员工数),合作起始时间,联系人,座机\n");
    for i in 0..ROWS {
        let (person, phone) = match i % 3 {
            0 => (format!("联系人{i:04}"), format!("010-6{i:07}")),
            _ => (String::new(), String::new()),
        };
        csv.push_str(&format!(
            "{},{},IT服务,{},2022-01-01,{person},{phone}\n",
            code_of(i),
            name_of(i),
            i + 1
        ));
    }
    let report = checked(&admin, "customers", "批量.csv", csv.into_bytes()).await;
    let applied = apply(&admin, &report["id"], "skip").await;
    assert_eq!(applied["status"], "applied", "{applied}");
    assert_eq!(
        counts(&applied)[..3],
        [ROWS as u64, ROWS as u64, 0],
        "{applied}"
    );
    let stored = all_customers(&admin).await;
    assert_eq!(stored.len(), ROWS + 1);
    let by_name: std::collections::HashMap<&str, (&String, i64, i64)> = stored
        .iter()
        .map(|(code, (id, name, employees))| (name.as_str(), (code, *id, *employees)))
        .collect();
    for i in 0..ROWS {
        let (code, _, employees) = by_name[name_of(i).as_str()];
        assert_eq!(employees, i as i64 + 1, "row {i}");
        match code_of(i) {
            given if given.is_empty() => assert!(code.starts_with(prefix), "row {i}: {code}"),
            given => assert_eq!(*code, given, "row {i}"),
        }
    }
    // Each contact belongs to its own row's customer.
    for i in [0, 3, 501, 1_197] {
        let (_, id, _) = by_name[name_of(i).as_str()];
        let contacts = json_at(
            &admin,
            &format!("/api/v1/contacts?customer_id={id}&reveal=true"),
        )
        .await;
        let names: Vec<&str> = contacts["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, [format!("联系人{i:04}")], "row {i}: {contacts}");
    }

    // Every customer again by its code, one more employee each.
    let mut csv = String::from("客户编号,客户名称,所属行业,企业规模(员工数),合作起始时间\n");
    for i in 0..ROWS {
        let (code, ..) = by_name[name_of(i).as_str()];
        csv.push_str(&format!(
            "{code},{},IT服务,{},2022-01-01\n",
            name_of(i),
            i + 2
        ));
    }
    let report = checked(&admin, "customers", "批量更新.csv", csv.into_bytes()).await;
    let updated = apply(&admin, &report["id"], "abort").await;
    assert_eq!(
        counts(&updated)[..3],
        [ROWS as u64, 0, ROWS as u64],
        "{updated}"
    );
    let now = all_customers(&admin).await;
    for (code, (id, name, employees)) in &now {
        let (_, before_id, before) = by_name[name.as_str()];
        assert_eq!(*id, before_id, "{code}");
        let expected = if *code == first_code { -1 } else { before + 1 };
        assert_eq!(*employees, expected, "{code} {name}");
    }

    // Undone: every value back, then every customer of the first import gone.
    let undo = undone(&admin, &updated["id"]).await;
    assert_eq!(undo["restored"], ROWS, "{undo}");
    assert_eq!(all_customers(&admin).await, stored);
    let undo = undone(&admin, &applied["id"]).await;
    assert_eq!(
        undo["deleted"],
        ROWS + ROWS / 3,
        "customers and contacts: {undo}"
    );
    assert_eq!(customer_count(&admin).await, 1);
    app.cleanup().await;
}
