//! The UI in a real headless Chromium (Debian `chromium` + `chromium-driver`)
//! through WebDriver: sign in, create a customer with a bad mobile number,
//! see the error beside the field, fix it, find the customer in the list.

use crate::both_backends;
use crate::helpers::{password_of, spawn_app};
use fantoccini::{Client, ClientBuilder, Locator};
use kehu_store::Backend;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

both_backends!(create_customer_fix_error_and_find_it);

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: kehu_store::testing::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

async fn fill(c: &Client, css: &str, value: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|_| panic!("no element {css}"));
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

async fn create_customer_fix_error_and_find_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("xiaoli", "sales_rep", Some("华东一组")).await;
    let (_driver, c) = start_browser().await;
    let base = &app.base;

    // signing in: an unauthenticated visit lands on the login page
    c.goto(&format!("{base}/customers")).await.expect("goto");
    wait_text(&c, "h1", "kehu").await;
    fill(&c, "#username", "xiaoli").await;
    fill(&c, "#password", &password_of("xiaoli")).await;
    c.find(Locator::Css("#login-submit"))
        .await
        .expect("submit")
        .click()
        .await
        .expect("click");
    wait_text(&c, "h1", "客户").await;

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
    let kept = c
        .find(Locator::Css("#f-name"))
        .await
        .expect("name")
        .prop("value")
        .await
        .expect("value");
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
    wait_text(&c, "body", "13812345678").await;

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
