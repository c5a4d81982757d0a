//! The UI in a real headless Chromium (Debian `chromium` + `chromium-driver`)
//! through WebDriver: sign in, create a customer with a bad mobile number,
//! see the error beside the field, fix it, find the customer in the list;
//! edit a scheme's draft (a refused weight, then a new threshold), simulate
//! it, and override a customer's class with a reason; tag customers and
//! find them by segment; upload a file, map a column, apply it, undo it.

use crate::both_backends;
use crate::helpers::{password_of, spawn_app, Session};
use fantoccini::{Client, ClientBuilder, Locator};
use kehu_store::Backend;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

both_backends!(
    create_customer_fix_error_and_find_it,
    edit_simulate_and_override_classes,
    tag_customers_and_find_them_in_segments,
    import_a_file_map_apply_and_undo,
    review_a_duplicate_merge_and_undo,
    see_the_anomaly_report_and_edit_the_calendar,
    fill_in_the_public_form_and_accept_the_lead,
    an_auditor_searches_the_audit_log,
    an_admin_sets_who_sees_personal_fields,
    an_admin_erases_a_person_on_request,
    close_a_task_with_its_result_and_set_a_strategy,
    read_the_classification_report_and_its_movers,
    run_a_campaign_and_read_its_effect
);

/// A chromedriver process on a free port, killed on drop with the browser
/// it started.
struct Driver {
    child: Child,
    url: String,
    _profile: kehu_store::testing::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed chromedriver leaves its browser running (a test that
        // failed before closing its session, or never closed it): end every
        // process started with this driver's profile.
        kill_processes_with_arg(&format!("--user-data-dir={}", self._profile.0.display()));
    }
}

fn kill_processes_with_arg(arg: &str) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn start_browser() -> (Driver, Client) {
    let driver_bin =
        std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let chrome_bin = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&driver_bin).exists() && std::path::Path::new(&chrome_bin).exists(),
        "browser tests need Debian's chromium and chromium-driver ({chrome_bin}, {driver_bin}): `apt-get install chromium chromium-driver` (.ci/run does)"
    );
    let port = free_port();
    let child = Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = kehu_store::testing::TempDir::new("kehu-chrome");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chrome_bin,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000",
                     format!("--user-data-dir={}", driver._profile.0.display())]
        }
    });
    let caps = caps.as_object().cloned().expect("caps object");
    let mut last_err = String::new();
    for _ in 0..50 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&driver.url)
            .await
        {
            Ok(client) => return (driver, client),
            Err(e) => {
                last_err = e.to_string();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("cannot start a WebDriver session: {last_err}");
}

/// Waits until `css` matches an element whose text contains `text`.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let mut last = String::new();
    for _ in 0..50 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(text) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{css} never showed {text:?}; last text {last:?}; page {}",
        c.current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    );
}

/// Does `act` on the element `css` matches, waiting up to 3 s for it to
/// appear; finds it again when htmx swapped it out (a stale element, or
/// none for a moment) between finding and acting.
async fn on_element<T, F, Fut>(c: &Client, css: &str, what: &str, act: F) -> T
where
    F: Fn(fantoccini::elements::Element) -> Fut,
    Fut: std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
{
    const TRIES: usize = 30;
    for attempt in 1..=TRIES {
        let last = attempt == TRIES;
        let e = match c.find(Locator::Css(css)).await {
            Ok(e) => e,
            Err(_) if !last => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(_) => panic!("no element {css}"),
        };
        match act(e).await {
            Ok(done) => return done,
            Err(err) if !last && format!("{err:?}").contains("StaleElementReference") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => panic!("{what} {css}: {err:?}"),
        }
    }
    unreachable!("the last try returns or panics")
}

/// Types `value` into the field.
async fn fill(c: &Client, css: &str, value: &str) {
    on_element(c, css, "typing into", |e| async move {
        e.clear().await?;
        e.send_keys(value).await
    })
    .await
}

async fn click(c: &Client, css: &str) {
    on_element(
        c,
        css,
        "clicking",
        |e| async move { e.click().await.map(drop) },
    )
    .await
}

/// The current value of a form field.
async fn value_of(c: &Client, css: &str) -> Option<String> {
    on_element(c, css, "reading", |e| async move { e.prop("value").await }).await
}

/// Picks an option of a select by its value.
async fn select(c: &Client, css: &str, value: &str) {
    on_element(c, css, "selecting in", |e| async move {
        e.select_by_value(value).await
    })
    .await
}

/// Signs in through the login page (an unauthenticated visit lands there).
async fn sign_in(c: &Client, base: &str, username: &str) {
    c.goto(&format!("{base}/customers")).await.expect("goto");
    wait_text(c, "h1", "kehu").await;
    fill(c, "#username", username).await;
    fill(c, "#password", &password_of(username)).await;
    click(c, "#login-submit").await;
    // The login page's own heading says 客户 too: wait to have left it, or
    // the next navigation races the sign-in's redirect.
    for _ in 0..50 {
        let url = c.current_url().await.expect("url");
        if url.path() != "/login" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_text(c, "h1", "客户").await;
    assert_ne!(
        c.current_url().await.expect("url").path(),
        "/login",
        "signed in"
    );
}

async fn create_customer_fix_error_and_find_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("xiaoli", "sales_rep", Some("华东一组")).await;
    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "xiaoli").await;

    // a new customer with a bad mobile number
    c.find(Locator::Css("#new-customer"))
        .await
        .expect("new")
        .click()
        .await
        .expect("click");
    wait_text(&c, "h1", "新建客户").await;
    fill(&c, "#f-name", "浏览器测试精密机械有限公司").await;
    c.execute(
        "document.getElementById('f-cooperation_start_on').value = '2021-03-15';",
        vec![],
    )
    .await
    .expect("set date");
    fill(&c, "[id='f-contact.name']", "王建国").await;
    fill(&c, "[id='f-contact.mobile']", "12345").await;
    c.find(Locator::Css("#save-customer"))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");

    // the error sits beside the field, and what was typed is kept
    let err = wait_text(&c, "[id='err-contact.mobile']", "手机号").await;
    assert!(err.contains("11"), "{err}");
    let kept = value_of(&c, "#f-name").await;
    assert_eq!(kept.as_deref(), Some("浏览器测试精密机械有限公司"));
    let invalid = c
        .find(Locator::Css("[id='f-contact.mobile']"))
        .await
        .expect("mobile")
        .attr("aria-invalid")
        .await
        .expect("attr");
    assert_eq!(invalid.as_deref(), Some("true"));

    // fixed, it saves and shows the customer's page
    fill(&c, "[id='f-contact.mobile']", "13812345678").await;
    c.find(Locator::Css("#save-customer"))
        .await
        .expect("save")
        .click()
        .await
        .expect("click");
    wait_text(&c, "h1", "浏览器测试精密机械有限公司").await;
    // The contact's personal fields are masked until revealed on purpose.
    wait_text(&c, "#contacts .contact-mobile", "138****5678").await;
    wait_text(&c, "#contacts .contact-name", "王*国").await;
    click(&c, "#reveal").await;
    wait_text(&c, "#revealed-note", "审计日志").await;
    wait_text(&c, "#contacts .contact-mobile", "13812345678").await;
    wait_text(&c, "#contacts .contact-name", "王建国").await;

    // and the list finds it by search (htmx swaps the results in place)
    c.goto(&format!("{base}/customers"))
        .await
        .expect("goto list");
    fill(&c, "#search", "精密机械").await;
    wait_text(&c, "#customer-table tbody", "浏览器测试精密机械有限公司").await;
    wait_text(&c, "#total", "1").await;

    c.close().await.expect("close browser");
    app.cleanup().await;
}

async fn edit_simulate_and_override_classes(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.token("api_admin", "admin", None).await;
    app.user("laowang", "admin", None).await;
    // 120万 in the last year, cooperating since 2021, no complaints: 战略型.
    let customer = api
        .customer("浏览器分类测试有限公司", serde_json::json!({}))
        .await;
    let id = customer["id"].as_i64().expect("id");
    let code = customer["code"].as_str().expect("code").to_string();
    let on = (app.store.today() - chrono::Days::new(10)).to_string();
    let r = api
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            serde_json::json!({"ordered_on": on, "amount_fen": 120_000_000}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "laowang").await;

    // The scheme list → 价值分层 → a new draft.
    c.goto(&format!("{base}/schemes")).await.expect("goto");
    click(&c, "#schemes tr[data-scheme='value_tier'] a").await;
    wait_text(&c, "h1", "价值分层").await;
    click(&c, "form[action='/schemes/value_tier/drafts'] button").await;
    wait_text(&c, "h1", "v2").await;
    wait_text(&c, "#status", "draft").await;

    // Weights that do not sum to 100 % are refused, and what was typed stays.
    fill(&c, "[id='f-dimensions[0].weight']", "70").await;
    click(&c, "#save").await;
    wait_text(&c, "#errors", "100").await;
    let kept = value_of(&c, "[id='f-dimensions[0].weight']").await;
    assert_eq!(kept.as_deref(), Some("70"));

    // A higher threshold for 高 value, saved.
    fill(&c, "[id='f-dimensions[0].weight']", "60").await;
    fill(
        &c,
        "[id='f-dimensions[0].levels[0].when']",
        "annual_purchase >= 200万",
    )
    .await;
    click(&c, "#save").await;
    wait_text(&c, "h1", "v2").await;
    let saved = value_of(&c, "[id='f-dimensions[0].levels[0].when']").await;
    assert_eq!(saved.as_deref(), Some("annual_purchase >= 200万"));
    assert!(
        c.find(Locator::Css("#errors")).await.is_err(),
        "no errors after a good save"
    );

    // Simulated: the customer would leave 战略型.
    click(&c, "#simulate").await;
    let sim = wait_text(&c, "#simulation", &code).await;
    assert!(sim.contains("战略型"), "{sim}");

    // On the customer's page: why, and an override that needs a reason.
    c.goto(&format!("{base}/customers/{id}"))
        .await
        .expect("goto");
    wait_text(&c, "#explanations tr[data-scheme='value_tier']", "战略型").await;
    click(&c, "#override-value_tier").await;
    select(&c, "#f-value_tier-class", "潜力型").await;
    click(&c, "#save-override-value_tier").await;
    wait_text(&c, "#err-value_tier-reason", "必填").await;
    fill(&c, "#f-value_tier-reason", "新产品线试点客户").await;
    click(&c, "#save-override-value_tier").await;
    let row = wait_text(&c, "#explanations tr[data-scheme='value_tier']", "人工调整").await;
    assert!(
        row.contains("潜力型") && row.contains("新产品线试点客户"),
        "{row}"
    );

    c.close().await.expect("close browser");
    app.cleanup().await;
}

async fn tag_customers_and_find_them_in_segments(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.token("api_admin", "admin", None).await;
    app.user("laozhang", "admin", None).await;
    let east = api
        .customer(
            "浏览器标签华东有限公司",
            serde_json::json!({"sales_region": "华东"}),
        )
        .await;
    api.customer(
        "浏览器标签华南有限公司",
        serde_json::json!({"sales_region": "华南"}),
    )
    .await;
    let east_id = east["id"].as_i64().expect("id");
    let tags: Vec<serde_json::Value> = api.get("/api/v1/tags").await.json().await.expect("tags");
    let need_id = tags
        .iter()
        .find(|t| t["path"] == "需求标签")
        .and_then(|t| t["id"].as_i64())
        .expect("需求标签");
    let industry_id = tags
        .iter()
        .find(|t| t["path"] == "基础标签/细分行业")
        .and_then(|t| t["id"].as_i64())
        .expect("细分行业");

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "laozhang").await;

    // A new tag under 需求标签; a synonym of an existing sibling is refused on the page.
    c.goto(&format!("{base}/tags")).await.expect("goto");
    wait_text(&c, "h1", "标签").await;
    select(&c, "#f-parent_id", &need_id.to_string()).await;
    fill(&c, "#f-name", "浏览器测试").await;
    click(&c, "#create-tag").await;
    wait_text(&c, "table.tags", "浏览器测试").await;
    select(&c, "#f-parent_id", &industry_id.to_string()).await;
    fill(&c, "#f-name", "工业").await;
    click(&c, "#create-tag").await;
    wait_text(&c, ".form-errors", "同义词").await;

    // On the customer's page: the tag is picked and shows.
    c.goto(&format!("{base}/customers/{east_id}"))
        .await
        .expect("goto");
    let tags: Vec<serde_json::Value> = api.get("/api/v1/tags").await.json().await.expect("tags");
    let new_id = tags
        .iter()
        .find(|t| t["path"] == "需求标签/浏览器测试")
        .and_then(|t| t["id"].as_i64())
        .expect("new tag");
    select(&c, "#f-tag_id", &new_id.to_string()).await;
    click(&c, "#add-tag").await;
    wait_text(&c, "#tags", "需求标签/浏览器测试").await;

    // The segment page: the tag's dimension finds it; a broken expression says where.
    c.goto(&format!("{base}/segments")).await.expect("goto");
    fill(&c, "#f-expression", "华东 AND 需求标签").await;
    click(&c, "#run-segment").await;
    wait_text(&c, "#segment-count", "1").await;
    wait_text(&c, "#segment-result", "浏览器标签华东有限公司").await;
    let export = c
        .find(Locator::Css("#export-csv"))
        .await
        .expect("export link")
        .attr("href")
        .await
        .expect("href");
    assert!(export.is_some_and(
        |h| h.starts_with("/api/v1/customers/export?segment=") && h.ends_with("format=csv")
    ));
    fill(&c, "#f-name", "华东需求客户").await;
    click(&c, "#save-segment").await;
    wait_text(&c, "#saved-segments", "华东需求客户").await;
    // The builder writes the same kind of expression: NOT region 华东.
    c.goto(&format!("{base}/segments")).await.expect("goto");
    click(&c, "#segment-form details summary").await;
    select(&c, "#b0-term", "sales_region = 华东").await;
    click(&c, "input[name='b0.not']").await;
    click(&c, "#build-segment").await;
    wait_text(&c, "#segment-count", "1").await;
    wait_text(&c, "#segment-result", "浏览器标签华南有限公司").await;
    let built = value_of(&c, "#f-expression").await;
    assert_eq!(built.as_deref(), Some("NOT sales_region = 华东"));
    // Groups put rows in parentheses: (华东 OR 华南) AND NOT 需求标签.
    // The page keeps the rows it was built from (the builder stays open).
    click(&c, "input[name='b0.not']").await;
    select(&c, "select[name='b1.join']", "OR").await;
    select(&c, "#b1-term", "sales_region = 华南").await;
    select(&c, "#b2-group", "2").await;
    select(&c, "#b2-term", "需求标签").await;
    click(&c, "input[name='b2.not']").await;
    click(&c, "#build-segment").await;
    wait_text(&c, "#segment-result", "浏览器标签华南有限公司").await;
    let built = value_of(&c, "#f-expression").await;
    assert_eq!(
        built.as_deref(),
        Some("(sales_region = 华东 OR sales_region = 华南) AND NOT 需求标签")
    );
    wait_text(&c, "#segment-count", "1").await;
    // A typed expression read back into the builder's rows.
    fill(
        &c,
        "#f-expression",
        "(sales_region = 华南 OR sales_region = 华北) AND NOT 需求标签",
    )
    .await;
    click(&c, "#to-builder").await;
    wait_text(&c, "#segment-result", "浏览器标签华南有限公司").await;
    assert_eq!(
        value_of(&c, "select[name='b0.field']").await.as_deref(),
        Some("sales_region")
    );
    assert_eq!(
        value_of(&c, "input[name='b1.value']").await.as_deref(),
        Some("华北")
    );
    assert_eq!(
        value_of(&c, "select[name='b1.join']").await.as_deref(),
        Some("OR")
    );
    assert_eq!(value_of(&c, "#b2-group").await.as_deref(), Some("2"));
    assert_eq!(value_of(&c, "#b2-term").await.as_deref(), Some("需求标签"));
    click(&c, "#build-segment").await;
    wait_text(&c, "#segment-result", "浏览器标签华南有限公司").await;
    assert_eq!(
        value_of(&c, "#f-expression").await.as_deref(),
        Some("(sales_region = 华南 OR sales_region = 华北) AND NOT 需求标签")
    );
    fill(&c, "#f-expression", "A AND (B OR (C AND D))").await;
    click(&c, "#to-builder").await;
    wait_text(&c, "#err-expression", "构建器").await;
    fill(&c, "#f-expression", "华东 AND (").await;
    click(&c, "#run-segment").await;
    wait_text(&c, "#err-expression", "第 9 个字符").await;

    // A hybrid tag: its rule proposes the 华东 customer, a person confirms from the queue.
    c.goto(&format!("{base}/tags")).await.expect("goto");
    select(&c, "#f-parent_id", &need_id.to_string()).await;
    fill(&c, "#f-name", "华东重点跟进").await;
    select(&c, "#f-mode", "hybrid").await;
    fill(&c, "#f-rule", "华东 AND NOT 风险标签").await;
    click(&c, "#create-tag").await;
    wait_text(&c, "table.tags", "华东 AND NOT 风险标签").await;
    click(&c, "#queue-link").await;
    wait_text(&c, "#queue", "浏览器标签华东有限公司").await;
    click(&c, "#queue button[id^='confirm-']").await;
    wait_text(&c, "#queue", "没有待确认").await;
    c.goto(&format!("{base}/customers/{east_id}"))
        .await
        .expect("goto");
    wait_text(&c, "#tags", "需求标签/华东重点跟进").await;

    // The usage review lists every tag with its reach; unused ones are removal candidates.
    c.goto(&format!("{base}/tags/review")).await.expect("goto");
    wait_text(&c, "#review", "需求标签/华东重点跟进").await;
    let candidates = wait_text(&c, "#candidates", "").await;
    assert!(
        candidates.parse::<u32>().is_ok_and(|n| n > 10),
        "{candidates}"
    );
    // Each tag's six-month trend is drawn, its counts in the title.
    let trend = c
        .find(Locator::Css("#review td.trend"))
        .await
        .expect("trend cell")
        .attr("title")
        .await
        .expect("title")
        .unwrap_or_default();
    assert_eq!(trend.matches(": ").count(), 7, "{trend}");
    assert!(c
        .find(Locator::Css("#review td.trend svg polyline"))
        .await
        .is_ok());

    c.close().await.expect("close browser");
    app.cleanup().await;
}

/// An upload whose name column has a header nobody knows: kept, mapped by
/// hand beside its first rows, checked again, applied (skipping the bad
/// row), its 待跟进 customer marked in the list, then undone.
async fn import_a_file_map_apply_and_undo(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("daoru", "admin", None).await;
    let dir = kehu_store::testing::TempDir::new("kehu-import-ui");
    let file = dir.0.join("客户导入.csv");
    let csv = "客户编号,单位全称,所属行业,合作起始时间\n\
               C2025301,浏览器导入精工有限公司,制造业,2021-04-01\n\
               C2025302,浏览器导入物流有限公司,,2022-05-01\n\
               C2025303,浏览器导入坏行有限公司,制造业,2021-02-30\n";
    std::fs::write(&file, encoding_rs::GBK.encode(csv).0).expect("write");

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "daoru").await;
    c.goto(&format!("{base}/imports")).await.expect("goto");
    wait_text(&c, "h1", "导入").await;
    select(&c, "#kind", "customers").await;
    c.find(Locator::Css("#file"))
        .await
        .expect("file input")
        .send_keys(file.to_str().expect("path"))
        .await
        .expect("choose file");
    click(&c, "#upload").await;

    // Nothing knows 单位全称: the page says so and offers the columns.
    wait_text(&c, "#problems", "客户名称").await;
    wait_text(&c, "#columns", "浏览器导入精工有限公司").await;
    select(&c, "#col_1", "name").await;
    click(&c, "#recheck").await;
    wait_text(&c, "[data-count='new']", "2").await;
    wait_text(&c, "[data-count='invalid']", "1").await;
    wait_text(&c, "[data-count='follow_up']", "1").await;
    wait_text(&c, "#problems", "日期").await;
    // The columns as chosen, kept as a template for the next file like it.
    fill(&c, "#template_name", "单位全称模板").await;
    click(&c, "#save-template").await;
    wait_text(&c, "#apply-template-form", "单位全称模板").await;
    let saved = app.store.mappings().await.expect("templates");
    assert_eq!(saved.len(), 1);
    assert_eq!(
        saved[0].columns.get("单位全称"),
        Some(&Some("name".to_string()))
    );

    click(&c, "#on-invalid-skip").await;
    click(&c, "#apply").await;
    wait_text(&c, "#status", "已导入").await;

    c.goto(&format!("{base}/customers")).await.expect("goto");
    wait_text(&c, "#customer-table", "浏览器导入物流有限公司").await;
    let marked = c
        .find_all(Locator::Css("#customer-table .follow-up"))
        .await
        .expect("badges");
    assert_eq!(marked.len(), 1, "one customer lacks its industry");

    c.goto(&format!("{base}/imports")).await.expect("goto");
    c.find(Locator::Css("#imports a"))
        .await
        .expect("the import")
        .click()
        .await
        .expect("open");
    click(&c, "#undo").await;
    wait_text(&c, "#status", "已撤销").await;
    assert_eq!(app.store.customer_count().await.expect("count"), 0);
    app.cleanup().await;
}

async fn review_a_duplicate_merge_and_undo(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("hebing", "admin", None).await;
    let api = app.token("hebing_api", "admin", None).await;
    let a = api.customer("北京星河精密机械有限公司", json!({})).await;
    let b = api
        .customer("星河精密机械(北京)有限公司", json!({"notes": "展会结识"}))
        .await;
    api.customer("广州南方物流有限公司", json!({})).await;

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "hebing").await;
    c.goto(&format!("{base}/duplicates")).await.expect("goto");
    wait_text(&c, "h1", "重复客户").await;
    click(&c, "#scan").await;
    wait_text(&c, "#scan-result", "发现 1 对").await;
    wait_text(&c, "#pairs", "星河精密机械(北京)有限公司").await;
    click(&c, "#pairs a.button").await;

    // Side by side: the older record stays; its name is swapped for the other's.
    wait_text(&c, "h1", "是否为同一家公司").await;
    wait_text(&c, "[data-field='notes']", "展会结识").await;
    click(&c, "#field-name-b").await;
    click(&c, "#merge").await;
    wait_text(&c, "#merge-status", "已合并").await;
    wait_text(&c, "#survivor-link", "星河精密机械(北京)有限公司").await;
    assert_eq!(app.store.customer_count().await.expect("count"), 2);
    let survivor = app
        .store
        .customer(a["id"].as_i64().expect("id"))
        .await
        .expect("survivor");
    assert_eq!(survivor.name, "星河精密机械(北京)有限公司");
    assert_eq!(survivor.notes.as_deref(), Some("展会结识"));
    assert_eq!(survivor.aliases, ["北京星河精密机械有限公司"]);

    click(&c, "#undo").await;
    wait_text(&c, "#merge-status", "已撤销").await;
    assert_eq!(app.store.customer_count().await.expect("count"), 3);
    let back = app
        .store
        .customer(b["id"].as_i64().expect("id"))
        .await
        .expect("the absorbed customer is back");
    assert_eq!(back.name, "星河精密机械(北京)有限公司");
    c.goto(&format!("{base}/customers/{}", a["id"]))
        .await
        .expect("goto");
    wait_text(&c, "#duplicates", "星河精密机械(北京)有限公司").await;
    wait_text(&c, "#merges", "已撤销").await;
    app.cleanup().await;
}

async fn see_the_anomaly_report_and_edit_the_calendar(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("jiancha", "admin", None).await;
    let api = app.token("jiancha_api", "admin", None).await;
    let c = api.customer("异常检查测试有限公司", json!({})).await;
    let r = api
        .post(
            &format!("/api/v1/customers/{}/contacts", c["id"]),
            json!({"name": "孙七"}),
        )
        .await;
    assert!(r.status().is_success());

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "jiancha").await;
    // A bad calendar line is named and nothing is saved; a good one is.
    c.goto(&format!("{base}/admin/calendar"))
        .await
        .expect("goto");
    fill(&c, "#calendar-text", "2026-10-01 国庆节\n2026-13-01 坏").await;
    click(&c, "#save-calendar").await;
    wait_text(&c, "#calendar-errors", "line 2").await;
    assert!(app.store.calendar_days().await.expect("days").is_empty());
    fill(
        &c,
        "#calendar-text",
        "2026-10-01 国庆节\n2026-10-10 上班 国庆调休",
    )
    .await;
    click(&c, "#save-calendar").await;
    wait_text(&c, "#calendar-saved", "已保存").await;
    assert_eq!(app.store.calendar_days().await.expect("days").len(), 2);

    c.goto(&format!("{base}/anomalies")).await.expect("goto");
    wait_text(&c, "h1", "异常数据报告").await;
    click(&c, "#run-check").await;
    wait_text(&c, "#run-result", "新增 1 项").await;
    wait_text(&c, "#anomalies", "联系人 孙* 没有电话和邮箱").await;
    wait_text(&c, "[data-kind='unreachable_contact'] [data-open]", "1").await;
    click(&c, "#filter-overdue").await;
    c.find(Locator::Css(".filters button"))
        .await
        .expect("filter")
        .click()
        .await
        .expect("click");
    wait_text(&c, "#total", "0").await;
    app.cleanup().await;
}

async fn fill_in_the_public_form_and_accept_the_lead(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("shenhe", "admin", None).await;
    let api = app.token("shenhe_api", "admin", None).await;
    let r = api
        .post(
            "/api/v1/intake-forms",
            json!({"slug": "contact-us", "title": "联系我们", "fields": ["contact.mobile", "notes"],
                   "purpose": "仅用于回复您的咨询。"}),
        )
        .await;
    assert!(r.status().is_success());

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    // Anyone, not signed in (in Chinese, whatever the browser's language):
    // without consent the form comes back with the reason.
    c.goto(&format!("{base}/lang/zh")).await.expect("goto");
    c.goto(&format!("{base}/f/contact-us")).await.expect("goto");
    wait_text(&c, "h1", "联系我们").await;
    wait_text(&c, "#purpose", "仅用于回复您的咨询").await;
    fill(&c, "input[name='name']", "杭州云帆数据科技有限公司").await;
    fill(&c, "input[name='contact.name']", "周八").await;
    fill(&c, "input[name='contact.mobile']", "139-0013-9000").await;
    click(&c, "#submit").await;
    wait_text(&c, "#form-errors", "同意").await;
    assert_eq!(app.store.leads("pending", 10, 0).await.expect("leads").1, 0);
    click(&c, "#consent").await;
    click(&c, "#submit").await;
    wait_text(&c, "#thanks", "已收到").await;

    // The lead, reviewed: a new customer with the submitter as its contact.
    sign_in(&c, base, "shenhe").await;
    c.goto(&format!("{base}/leads")).await.expect("goto");
    wait_text(&c, "#leads", "杭州云帆数据科技有限公司").await;
    wait_text(&c, "#leads", "139****9000").await;
    click(&c, "#leads .accept").await;
    wait_text(&c, "h1", "杭州云帆数据科技有限公司").await;
    assert_eq!(app.store.customer_count().await.expect("count"), 1);
    app.cleanup().await;
}

async fn an_auditor_searches_the_audit_log(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("shenji", "auditor", None).await;
    let api = app.token("shenji_admin", "admin", None).await;
    let c = api.customer("审计页面测试有限公司", json!({})).await;
    let r = api
        .patch(
            &format!("/api/v1/customers/{}", c["id"]),
            json!({"industry": "金融", "version": c["version"]}),
        )
        .await;
    assert!(r.status().is_success());

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    // An auditor reads no customers: signing in leads to the audit log.
    c.goto(&format!("{base}/login")).await.expect("goto");
    fill(&c, "#username", "shenji").await;
    fill(&c, "#password", &password_of("shenji")).await;
    click(&c, "#login-submit").await;
    wait_text(&c, "h1", "审计日志").await;
    click(&c, "#verify").await;
    wait_text(&c, "#chain", "哈希链完整").await;
    wait_text(&c, "#audit", "customer.update").await;
    fill(&c, "#filter-action", "customer.update").await;
    c.find(Locator::Css(".filters button"))
        .await
        .expect("search")
        .click()
        .await
        .expect("click");
    wait_text(&c, "#total", "1").await;
    wait_text(&c, "#audit", "金融").await;
    app.cleanup().await;
}

async fn close_a_task_with_its_result_and_set_a_strategy(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("xiaowang", "sales_rep", Some("华东")).await;
    app.user("guanli", "admin", None).await;
    let rep_api = app.token("xiaowang_api", "sales_rep", Some("华东")).await;
    let customer = rep_api.customer("任务测试有限公司", json!({})).await;
    // The API user's task, handed to the UI user by a manager.
    let manager = app.token("jingli", "sales_manager", Some("华东")).await;
    let ui_rep = app
        .store
        .auth_user_by_name("xiaowang")
        .await
        .expect("user")
        .user
        .id;
    let r = manager
        .post(
            "/api/v1/tasks",
            json!({"customer": customer["code"], "kind": "拜访", "title": "季度拜访采购部",
                   "due_on": app.store.today().to_string(), "owner_id": ui_rep}),
        )
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "xiaowang").await;
    c.goto(&format!("{base}/inbox")).await.expect("goto");
    wait_text(&c, "#notifications", "季度拜访采购部").await;
    c.goto(&format!("{base}/tasks")).await.expect("goto");
    wait_text(&c, "#tasks", "季度拜访采购部").await;
    click(&c, "#tasks a[href^='/tasks/']").await;
    wait_text(&c, "h1", "季度拜访采购部").await;
    // Closing without a result is refused, naming the field.
    click(&c, "#close-done").await;
    wait_text(&c, "#err-summary", "关闭任务必须填写结果").await;
    fill(&c, "#f-summary", "拜访采购部，确认明年框架协议").await;
    fill(&c, "#f-next_step", "下月报价").await;
    click(&c, "#close-done").await;
    wait_text(&c, "#task-status", "已完成").await;
    wait_text(&c, ".follow-ups", "拜访采购部").await;
    c.goto(&format!("{base}/customers/{}", customer["id"]))
        .await
        .expect("goto");
    wait_text(&c, "#tracking-log", "确认明年框架协议").await;
    wait_text(&c, "#tracking-log .class-after", "型").await;
    c.goto(&format!("{base}/follow-ups")).await.expect("goto");
    wait_text(&c, "#total", "1").await;

    // The admin sets a strategy: an unschedulable cadence is named, then fixed.
    click(&c, "form[action='/logout'] button").await;
    wait_text(&c, "h1", "kehu").await;
    sign_in(&c, base, "guanli").await;
    c.goto(&format!("{base}/admin/strategies"))
        .await
        .expect("goto");
    wait_text(&c, "#strategies", "战略型").await;
    select(&c, "#f-scheme_key", "value_tier").await;
    fill(&c, "#f-class_name", "优化型").await;
    fill(&c, "#f-cadence", "每周拜访9次").await;
    fill(&c, "#f-sla_hours", "8").await;
    fill(&c, "#f-goal", "降低服务成本").await;
    select(&c, "#f-goal_metric", "retention").await;
    fill(&c, "#f-goal_target", "85").await;
    select(&c, "#f-owner_level", "assistant").await;
    click(&c, "#save-strategy").await;
    wait_text(&c, "#err-cadence", "无法排期").await;
    fill(&c, "#f-cadence", "每季度促销信息1次 + 每半年电话1次").await;
    click(&c, "#save-strategy").await;
    wait_text(
        &c,
        "#strategies [data-class='优化型'] .cadence",
        "每季度促销信息1次 + 每半年电话1次",
    )
    .await;
    // The scheduler's page: run a job now and see it counted.
    c.goto(&format!("{base}/admin/jobs")).await.expect("goto");
    click(&c, "[data-run='sessions']").await;
    wait_text(&c, "#ran", "sessions").await;
    wait_text(&c, "[data-job='sessions'] [data-runs]", "1").await;
    app.cleanup().await;
}

/// Management reads this quarter's classification report, narrows it to a
/// segment, opens the customers behind a cell of the transition matrix,
/// sees a customer's predicted P(alive) on its page, then gives a segment
/// a task per customer and opens the segment's report.
async fn read_the_classification_report_and_its_movers(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("laoban", "management", None).await;
    let admin = app.token("admin_api", "admin", None).await;
    let today = app.store.today();
    let mut first = 0;
    for i in 0..20i64 {
        let region = if i % 2 == 0 { "华东" } else { "华北" };
        let c = admin
            .customer(
                &format!("报表浏览器客户{i:02}"),
                json!({"sales_region": region}),
            )
            .await;
        let id = c["id"].as_i64().expect("id");
        if i == 0 {
            first = id;
        }
        for k in 0..(1 + i % 4) {
            let on = today - chrono::Duration::days(5 + k * (20 + i));
            // The first order is 产品A, later ones 产品B (15 of the 20 buy it).
            let line = if k == 0 { "产品A" } else { "产品B" };
            let r = admin
                .post(
                    &format!("/api/v1/customers/{id}/orders"),
                    json!({"ordered_on": on.to_string(), "amount_fen": 1_000_000 + 10_000 * i, "product_line": line}),
                )
                .await;
            assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        }
    }
    let ran = admin.post("/api/v1/jobs/predictions/run", json!({})).await;
    assert_eq!(ran.status(), reqwest::StatusCode::OK);
    let quarter = kehu_core::strategy::Period::quarter_of(today).label();

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "laoban").await;
    // 管理层's dashboard: the distribution as a pie, purchases by month, the funnel.
    click(&c, "nav a[href='/dashboard']").await;
    wait_text(&c, "#panel-distribution h2", "价值分层").await;
    assert!(c
        .find(Locator::Css("#panel-distribution svg.pie path"))
        .await
        .is_ok());
    assert!(c
        .find(Locator::Css("#panel-revenue svg.columns rect"))
        .await
        .is_ok());
    assert!(c
        .find(Locator::Css("#panel-funnel svg.funnel rect"))
        .await
        .is_ok());
    click(&c, "nav a[href='/reports/classification']").await;
    wait_text(&c, "h1", "分类报表").await;
    fill(&c, "#report-form input[name='period']", &quarter).await;
    click(&c, "#report-submit").await;
    wait_text(&c, "#report-period", &quarter).await;
    wait_text(&c, "#class-table tr.total", "20").await;
    // A segment narrows it.
    fill(&c, "#report-form input[name='segment']", "华北").await;
    click(&c, "#report-submit").await;
    wait_text(&c, "#class-table tr.total", "10").await;
    // A malformed period is named on the page.
    fill(&c, "#report-form input[name='period']", "2026-Q9").await;
    click(&c, "#report-submit").await;
    wait_text(&c, "#report-error", "period").await;
    fill(&c, "#report-form input[name='period']", &quarter).await;
    fill(&c, "#report-form input[name='segment']", "").await;
    click(&c, "#report-submit").await;
    // The whole report again (not the error page still on screen).
    wait_text(&c, "#class-table tr.total", "20").await;
    // The customers behind a cell, then one of them.
    click(&c, "#transitions td a").await;
    wait_text(&c, "h1", "迁移客户").await;
    wait_text(&c, "#moved", "报表浏览器客户").await;
    click(&c, "#moved a[href^='/customers/']").await;
    wait_text(&c, "#prediction", "P(alive)").await;
    // Cross-selling: the report from the classification report's link,
    // then the first customer (产品A only), whom 15 of 19 others suggest 产品B.
    c.goto(&format!("{base}/reports/classification"))
        .await
        .expect("goto");
    click(&c, "#cross-sell-link").await;
    wait_text(&c, "h1", "交叉销售").await;
    fill(&c, "#cross-sell-form input[name='min_share']", "0").await;
    click(&c, "#cross-sell-submit").await;
    wait_text(&c, "#report-error", "min_share").await;
    fill(&c, "#cross-sell-form input[name='min_share']", "30").await;
    click(&c, "#cross-sell-submit").await;
    wait_text(&c, "#products tr[data-product='产品B']", "15").await;
    c.goto(&format!("{base}/customers/{first}"))
        .await
        .expect("goto");
    wait_text(&c, "#suggestions", "产品B").await;
    wait_text(&c, "#peer-group", "全部客户").await;
    // The segment as the target of tasks and of the report.
    c.goto(&format!("{base}/segments?expression=%E5%8D%8E%E5%8C%97"))
        .await
        .expect("goto");
    wait_text(&c, "#segment-count", "10").await;
    click(&c, "#make-tasks").await;
    wait_text(&c, "#segment-tasks", "必填").await;
    fill(&c, "#segment-tasks input[name='title']", "年终回访").await;
    click(&c, "#make-tasks").await;
    wait_text(&c, "#made-tasks", "10").await;
    click(&c, "#segment-report").await;
    wait_text(&c, "#report-period", "华北").await;
    app.cleanup().await;
}

async fn run_a_campaign_and_read_its_effect(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("xiaoma", "marketing", None).await;
    let admin = app.token("admin_api", "admin", None).await;
    for i in 0..3 {
        admin
            .customer(
                &format!("营销浏览器客户{i}"),
                json!({"sales_region": "华北"}),
            )
            .await;
    }
    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "xiaoma").await;
    c.goto(&format!("{base}/campaigns")).await.expect("goto");
    wait_text(&c, "h1", "营销活动").await;
    click(&c, "#new-campaign summary").await;
    fill(&c, "#f-name", "冬季客户答谢会").await;
    select(&c, "#f-channel", "event").await;
    fill(&c, "#f-window_days", "0").await;
    click(&c, "#create-campaign").await;
    wait_text(&c, "#err-window_days", "1").await;
    fill(&c, "#f-window_days", "30").await;
    click(&c, "#create-campaign").await;
    wait_text(&c, "h1", "冬季客户答谢会").await;
    fill(&c, "#f-segment", "华北").await;
    click(&c, "#touch-submit").await;
    wait_text(&c, "#touch-result", "3").await;
    wait_text(&c, "#touched", "3").await;
    click(&c, "a[href='/reports/marketing']").await;
    wait_text(&c, "#campaign-table", "冬季客户答谢会").await;
    wait_text(&c, "#channels", "活动").await;
    c.close().await.expect("close browser");
    app.cleanup().await;
}

async fn an_admin_sets_who_sees_personal_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("guanli", "admin", None).await;
    let api = app.token("guanli_api", "admin", None).await;
    let marketing = app.token("shichang", "marketing", None).await;
    let customer = api.customer("字段权限测试有限公司", json!({})).await;
    let contact = api
        .post(
            &format!("/api/v1/customers/{}/contacts", customer["id"]),
            json!({"name": "赵六", "mobile": "13987654321"}),
        )
        .await;
    let contact: serde_json::Value = contact.json().await.expect("json");
    let path = format!("/api/v1/contacts/{}", contact["id"]);
    let before: serde_json::Value = marketing.get(&path).await.json().await.expect("json");
    assert_eq!(before["mobile"], "139****4321");

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "guanli").await;
    c.goto(&format!("{base}/admin/roles")).await.expect("goto");
    wait_text(&c, "h1", "角色与权限").await;
    let select = "select[name='contact.mobile'][form='rights-marketing']";
    assert_eq!(value_of(&c, select).await.as_deref(), Some("masked"));
    c.execute(
        &format!("document.querySelector(\"{select}\").value = 'hidden';"),
        vec![],
    )
    .await
    .expect("choose hidden");
    click(&c, "#rights-marketing button").await;
    wait_role(&api, "marketing", |r| {
        r["field_rights"]["contact.mobile"] == "hidden"
    })
    .await;
    c.goto(&format!("{base}/admin/roles")).await.expect("goto");
    wait_text(&c, "h1", "角色与权限").await;
    assert_eq!(value_of(&c, select).await.as_deref(), Some("hidden"));
    // Marketing no longer sees the mobile at all; the name stays masked.
    let after: serde_json::Value = marketing.get(&path).await.json().await.expect("json");
    assert!(after["mobile"].is_null(), "{after}");
    assert_eq!(after["name"], "赵*");

    // A new role copied from a preset, then its reach changed in the permissions table.
    fill(&c, "#new-role #f-key", "key_account").await;
    fill(&c, "#new-role #f-name_zh", "大客户经理").await;
    c.execute(
        "document.querySelector('#new-role #f-copy_from').value = 'sales_rep';",
        vec![],
    )
    .await
    .expect("copy from");
    click(&c, "#new-role button").await;
    wait_text(&c, "#grants thead", "大客户经理").await;
    let reach = "select[name='customer_read'][form='grants-key_account']";
    assert_eq!(value_of(&c, reach).await.as_deref(), Some("team"));
    c.execute(
        &format!("document.querySelector(\"{reach}\").value = 'all';"),
        vec![],
    )
    .await
    .expect("choose all");
    click(&c, "#grants-key_account button").await;
    wait_role(&api, "key_account", |r| {
        r["grants"]["customer_read"] == "all"
    })
    .await;
    c.close().await.expect("close browser");
    app.cleanup().await;
}

async fn an_admin_erases_a_person_on_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("dpo_page", "admin", None).await;
    let api = app.token("dpo_api", "admin", None).await;
    let customer = api.customer("删除请求测试有限公司", json!({})).await;
    let contact: serde_json::Value = api
        .post(
            &format!("/api/v1/customers/{}/contacts", customer["id"]),
            json!({"name": "钱七", "mobile": "13511112222"}),
        )
        .await
        .json()
        .await
        .expect("json");

    let (_driver, c) = start_browser().await;
    let base = &app.base;
    sign_in(&c, base, "dpo_page").await;
    c.goto(&format!("{base}/admin/privacy"))
        .await
        .expect("goto");
    wait_text(&c, "h1", "个人信息请求").await;
    // A bad mobile is named beside its field.
    fill(&c, "#f-mobile", "135").await;
    click(&c, "#search-person").await;
    wait_text(&c, "#err-mobile", "手机号").await;
    fill(&c, "#f-mobile", "135-1111-2222").await;
    click(&c, "#search-person").await;
    wait_text(&c, "#people", "删除请求测试有限公司").await;
    wait_text(&c, "#people", "钱*").await;
    fill(
        &c,
        "#people .erase-person input[name='reason']",
        "本人书面申请",
    )
    .await;
    click(&c, "#people .erase-person button").await;
    wait_text(&c, "#erased", "已删除").await;
    let after: serde_json::Value = api
        .get(&format!("/api/v1/contacts/{}?reveal=true", contact["id"]))
        .await
        .json()
        .await
        .expect("json");
    assert!(after["mobile"].is_null(), "{after}");
    assert_eq!(after["name"], "（已删除）");
    c.close().await.expect("close browser");
    app.cleanup().await;
}

/// Waits until the role `key`, read through the API, passes `check`.
async fn wait_role(api: &Session, key: &str, check: impl Fn(&serde_json::Value) -> bool) {
    for _ in 0..50 {
        let roles: serde_json::Value = api.get("/api/v1/roles").await.json().await.expect("json");
        if roles
            .as_array()
            .and_then(|r| r.iter().find(|r| r["key"] == key))
            .is_some_and(&check)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the change to role {key} was not saved");
}
