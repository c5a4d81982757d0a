//! Scheduled reports: setting them up (bad input, rights), the daily job
//! making each schedule's report of the period just ended once (and the
//! periods it missed while no server ran), keeping it
//! as XLSX or PDF and e-mailing it through SMTP over TLS (a local sink with a
//! certificate of a private CA), and a delivery that fails recorded and retried;
//! the tag analytics and the marketing report scheduled like the others.

use crate::both_backends;
use crate::helpers::{
    first_error, ok_json, problem, smtp_sink_with, spawn_app_with_mail, Session, SinkTls, TestApp,
    SINK_CA_PEM,
};
use kehu_core::report::schedule::ReportCadence;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(
    scheduled_reports_are_made_once_kept_and_mailed,
    tag_and_marketing_reports_are_scheduled
);

async fn run_reports_job(admin: &Session) -> Value {
    ok_json(admin.post("/api/v1/jobs/classify/run", json!({})).await).await;
    ok_json(admin.post("/api/v1/jobs/reports/run", json!({})).await).await
}

/// A server whose e-mail goes over TLS to a local sink, and what the sink received.
async fn app_mailing_over_tls(backend: kehu_store::Backend) -> (TestApp, MailSink) {
    let (port, sink) = smtp_sink_with(SinkTls::Wrapper).await;
    let mail = kehu_server::mail::MailSettings::parse(
        &format!("smtps://reports:s3cret@localhost:{port}"),
        "kehu@example.com",
    )
    .and_then(|m| m.with_ca_pem(SINK_CA_PEM))
    .expect("mail settings");
    (spawn_app_with_mail(backend, Some(mail)).await, sink)
}

type MailSink = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

async fn scheduled_reports_are_made_once_kept_and_mailed(backend: kehu_store::Backend) {
    let (app, sink) = app_mailing_over_tls(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let manager = app.token("mgr", "sales_manager", Some("华东")).await;
    admin.customer("定期报表客户", json!({})).await;

    let quarterly = ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "classification", "cadence": "quarterly", "recipients": "boss@example.com, ops@example.com", "format": "pdf"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        quarterly["recipients"],
        json!(["boss@example.com", "ops@example.com"])
    );
    assert_eq!(quarterly["format"], "pdf");
    ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "strategy", "cadence": "每月"}),
        )
        .await,
    )
    .await;
    for (body, field) in [
        (json!({"cadence": "monthly"}), "kind"),
        (
            json!({"kind": "classification", "cadence": "weekly"}),
            "cadence",
        ),
        (
            json!({"kind": "classification", "cadence": "monthly", "recipients": "boss@"}),
            "recipients",
        ),
        (
            json!({"kind": "classification", "cadence": "monthly", "scheme": "nope"}),
            "scheme",
        ),
        (
            json!({"kind": "classification", "cadence": "monthly", "format": "docx"}),
            "format",
        ),
    ] {
        let p = problem(
            boss.post("/api/v1/report-schedules", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{body}: {p}");
    }
    // A team's report reader does not schedule reports over everyone.
    let r = manager
        .post(
            "/api/v1/report-schedules",
            json!({"kind": "strategy", "cadence": "monthly"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        manager.get("/api/v1/report-schedules").await.status(),
        StatusCode::FORBIDDEN
    );

    let ran = run_reports_job(&admin).await;
    assert_eq!(
        ran["summary"]["made"].as_array().map(Vec::len),
        Some(2),
        "{ran}"
    );
    assert_eq!(ran["summary"]["mailed"], 1, "{ran}");
    let today = app.store.today();
    let quarter = ReportCadence::Quarterly.last_complete(today).label();
    let month = ReportCadence::Monthly.last_complete(today).label();
    let o = ok_json(boss.get("/api/v1/report-schedules").await).await;
    assert_eq!(o["mail_configured"], true);
    let reports = o["reports"].as_array().expect("reports");
    let of = |period: &str| {
        reports
            .iter()
            .find(|r| r["period"] == period)
            .cloned()
            .unwrap_or_else(|| panic!("no {period}: {o}"))
    };
    let q = of(&quarter);
    assert!(q["mailed_at"].is_string(), "{q}");
    assert!(
        of(&month)["mailed_at"].is_null(),
        "no recipients: kept only"
    );
    // The message: over TLS, both recipients, the PDF attached under its name.
    let sent = sink.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1);
    for needle in [
        "[tls]",
        "AUTH PLAIN",
        "RCPT TO:<boss@example.com>",
        "RCPT TO:<ops@example.com>",
        &format!("classification-value_tier-{quarter}.pdf"),
        "Content-Type: application/pdf",
    ] {
        assert!(sent[0].contains(needle), "{needle}: {}", sent[0]);
    }
    let file = boss
        .get(&format!("/api/v1/stored-reports/{}/file", q["id"]))
        .await;
    assert_eq!(file.status(), StatusCode::OK);
    let bytes = file.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"%PDF-"));
    let text = crate::helpers::pdf_text(&bytes);
    assert!(
        text.contains(&format!("客户分类报表 · 价值分层 · {quarter}")),
        "{text}"
    );
    // The monthly one was asked for as XLSX.
    let monthly = of(&month);
    let file = boss
        .get(&format!("/api/v1/stored-reports/{}/file", monthly["id"]))
        .await;
    assert!(file.bytes().await.expect("bytes").starts_with(b"PK"));
    // Stored reports cover every team: one whose reports reach only a team
    // gets the same refusal for a stored report and for a missing id.
    let team_manager = app
        .token("mgr_team", "sales_manager", Some("华南一组"))
        .await;
    for id in [q["id"].clone(), json!(999_999)] {
        problem(
            team_manager
                .get(&format!("/api/v1/stored-reports/{id}/file"))
                .await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }

    // Again: nothing new is made or sent.
    let again = run_reports_job(&admin).await;
    assert_eq!(again["summary"]["made"], json!([]), "{again}");
    assert_eq!(sink.lock().expect("lock").len(), 1);
    // Months no server ran are caught up: had the monthly schedule been
    // made three months earlier, the next run makes the months it missed,
    // oldest first, and only those.
    let monthly_id = monthly["schedule_id"].as_i64().expect("schedule");
    use kehu_store::db::Exec;
    app.store
        .db
        .clone()
        .execute(
            "UPDATE report_schedules SET created_at = $1 WHERE id = $2",
            vec![
                kehu_store::db::Arg::from(chrono::Utc::now() - chrono::Duration::days(92)),
                kehu_store::db::Arg::from(monthly_id),
            ],
        )
        .await
        .expect("made earlier");
    let owed: Vec<String> = ReportCadence::Monthly
        .owed(today - chrono::Duration::days(92), today)
        .iter()
        .map(|p| format!("{monthly_id}: {}", p.label()))
        .filter(|m| !m.ends_with(&month))
        .collect();
    assert!(owed.len() >= 2, "{owed:?}");
    let caught_up = run_reports_job(&admin).await;
    assert_eq!(caught_up["summary"]["made"], json!(owed), "{caught_up}");
    let again = run_reports_job(&admin).await;
    assert_eq!(again["summary"]["made"], json!([]), "{again}");
    // Stopped schedules make nothing; their reports stay.
    let stopped = ok_json(
        boss.post(
            &format!("/api/v1/report-schedules/{}/stop", quarterly["id"]),
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(stopped["active"], false);

    // The page lists both.
    let web = app.login("boss2", "management", None).await;
    let page = web
        .get("/reports/schedules")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains(&quarter) && page.contains(&month), "{page}");
    app.cleanup().await;

    // A relay that refuses: the failure is kept with the report and tried again.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mail = kehu_server::mail::MailSettings::parse(
        &format!("smtp://127.0.0.1:{closed}"),
        "kehu@example.com",
    )
    .expect("mail settings");
    let app = spawn_app_with_mail(backend, Some(mail)).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "classification", "cadence": "monthly", "recipients": "boss@example.com"}),
        )
        .await,
    )
    .await;
    let ran = run_reports_job(&admin).await;
    assert_eq!(ran["summary"]["mail_failed"], 1, "{ran}");
    run_reports_job(&admin).await;
    let o = ok_json(boss.get("/api/v1/report-schedules").await).await;
    let r = &o["reports"][0];
    assert!(r["mailed_at"].is_null());
    assert_eq!(r["mail_attempts"], 2, "tried again on the next run: {r}");
    assert!(
        r["mail_error"].as_str().is_some_and(|e| e.contains("SMTP")),
        "{r}"
    );
    // A schedule whose scheme is gone holds up neither the others' e-mail nor
    // its own next try: the run fails naming it, on the jobs page.
    let broken = ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "strategy", "cadence": "quarterly"}),
        )
        .await,
    )
    .await;
    let mut db = app.store.db.clone();
    kehu_store::db::Exec::execute(
        &mut db,
        "UPDATE report_schedules SET scheme = 'gone' WHERE id = $1",
        vec![kehu_store::db::Arg::from(
            broken["id"].as_i64().expect("id"),
        )],
    )
    .await
    .expect("break the schedule");
    let r = admin.post("/api/v1/jobs/reports/run", json!({})).await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let jobs = ok_json(admin.get("/api/v1/jobs").await).await;
    let job = jobs
        .as_array()
        .and_then(|j| j.iter().find(|j| j["name"] == "reports").cloned())
        .expect("reports job");
    assert!(
        job["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("scheme")),
        "{job}"
    );
    let o = ok_json(boss.get("/api/v1/report-schedules").await).await;
    assert_eq!(
        o["reports"][0]["mail_attempts"], 3,
        "the e-mail was still tried: {o}"
    );
    app.cleanup().await;
}

/// The tag analytics and the marketing report are scheduled too: they read
/// no scheme, are made for the period just ended and e-mailed under their
/// own names.
async fn tag_and_marketing_reports_are_scheduled(backend: kehu_store::Backend) {
    let (app, sink) = app_mailing_over_tls(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    admin.customer("标签报表客户", json!({})).await;
    let tags = ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "标签分析", "scheme": "nope", "cadence": "monthly", "recipients": "boss@example.com", "format": "pdf"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (tags["kind"].as_str(), tags["scheme"].as_str()),
        (Some("tags"), Some("")),
        "{tags}"
    );
    ok_json(
        boss.post(
            "/api/v1/report-schedules",
            json!({"kind": "marketing", "cadence": "quarterly", "format": "pdf"}),
        )
        .await,
    )
    .await;
    let ran = run_reports_job(&admin).await;
    let today = app.store.today();
    let month = ReportCadence::Monthly.last_complete(today);
    let quarter = ReportCadence::Quarterly.last_complete(today).label();
    assert_eq!(ran["summary"]["failed"], json!([]), "{ran}");
    assert_eq!(
        ran["summary"]["made"].as_array().map(Vec::len),
        Some(2),
        "{ran}"
    );
    let o = ok_json(boss.get("/api/v1/report-schedules").await).await;
    let text_of = |period: String| {
        let reports = o["reports"].clone();
        let boss = &boss;
        async move {
            let r = reports
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["period"] == period.as_str()).cloned())
                .unwrap_or_else(|| panic!("no {period}: {reports}"));
            let file = boss
                .get(&format!("/api/v1/stored-reports/{}/file", r["id"]))
                .await;
            assert_eq!(file.status(), StatusCode::OK);
            crate::helpers::pdf_text(&file.bytes().await.expect("bytes"))
        }
    };
    let text = text_of(month.label()).await;
    assert!(
        text.contains(&format!("标签分析 · {} → {}", month.start, month.end)),
        "{text}"
    );
    let text = text_of(quarter.clone()).await;
    assert!(text.contains("营销效果"), "{text}");
    let sent = sink.lock().expect("lock").clone();
    assert_eq!(sent.len(), 1, "only the tag analytics has a recipient");
    for needle in [
        "RCPT TO:<boss@example.com>",
        &format!("tags-{}.pdf", month.label()),
        "Content-Type: application/pdf",
    ] {
        assert!(sent[0].contains(needle), "{needle}: {}", sent[0]);
    }
    app.cleanup().await;
}
