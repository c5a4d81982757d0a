//! The UI's forms over plain HTTP: login CSRF, forced password change,
//! CSRF on every post, escaping of user text.

use crate::both_backends;
use crate::helpers::{password_of, spawn_app, spawn_app_with};
use kehu_store::Backend;
use reqwest::{redirect::Policy, Client, StatusCode};
use serde_json::{json, Value};

both_backends!(
    login_form_password_change_and_csrf,
    security_headers_plain_and_behind_tls,
    planted_session_cookie_is_not_kept,
    the_create_form_warns_of_a_likely_duplicate,
    contacts_that_are_one_person_are_warned_of_merged_and_undone,
    a_reveal_set_off_by_another_site_is_refused,
    api_tokens_on_the_account_page,
    every_form_post_needs_the_csrf_token,
    every_page_escapes_what_users_typed
);

/// The page at `url`, as text.
async fn html_of(c: &Client, url: String) -> String {
    c.get(url)
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html")
}

/// A browser-like client (cookies, no redirects followed) signed in as a
/// new admin `username`.
async fn signed_in(app: &crate::helpers::TestApp, username: &str) -> Client {
    app.user(username, "admin", None).await;
    let c = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    let base = &app.base;
    let login = html_of(&c, format!("{base}/login")).await;
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf_in(&login).as_str()),
            ("username", username),
            ("password", password_of(username).as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    c
}

fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf_token\" value=\"")
        .expect("csrf field")
        + "name=\"csrf_token\" value=\"".len();
    html[start..].split('"').next().unwrap_or("").to_string()
}

async fn login_form_password_change_and_csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = kehu_server::api::users::create_user(
        &app.store,
        kehu_server::api::dto::UserCreate {
            username: "newbie".into(),
            display_name: None,
            role: "sales_rep".into(),
            team: Some("华东一组".into()),
            password: None,
        },
    )
    .await
    .expect("user");
    let one_time = created.initial_password.expect("generated password");
    let c = Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client");
    let base = &app.base;

    let r = c
        .get(format!("{base}/customers"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/login?next=%2Fcustomers")
    );
    let page = html_of(&c, format!("{base}/login")).await;
    let login_csrf = csrf_in(&page);
    let forged = c
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", "forged"),
            ("username", "newbie"),
            ("password", one_time.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::OK);
    assert!(
        forged.text().await.expect("html").contains("CSRF"),
        "a forged login form is refused"
    );
    let ok = c
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", login_csrf.as_str()),
            ("username", "newbie"),
            ("password", one_time.as_str()),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ok.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/"),
        "no open redirect"
    );

    // a one-time password must be replaced first
    let r = c
        .get(format!("{base}/customers"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/account/password")
    );
    let form = html_of(&c, format!("{base}/account/password")).await;
    let csrf = csrf_in(&form);
    let mismatch = c
        .post(format!("{base}/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", one_time.as_str()),
            ("new_password", "a good long passphrase"),
            ("confirm_password", "different"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(mismatch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch
        .text()
        .await
        .expect("html")
        .contains("两次输入的新密码不一致"));
    let changed = c
        .post(format!("{base}/account/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", one_time.as_str()),
            ("new_password", "a good long passphrase"),
            ("confirm_password", "a good long passphrase"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(changed.status(), StatusCode::OK);
    let list = c
        .get(format!("{base}/customers"))
        .send()
        .await
        .expect("get");
    assert_eq!(list.status(), StatusCode::OK);

    // every form post needs the session's token
    let no_token = c
        .post(format!("{base}/customers/new"))
        .form(&[("name", "无令牌"), ("cooperation_start_on", "2021-01-01")])
        .send()
        .await
        .expect("post");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let auditor = app.token("audit1", "auditor", None).await;
    let refused: Value = auditor
        .get("/api/v1/audit?action=csrf.refused")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        refused["entries"][0]["target"], "POST /customers/new",
        "{refused}"
    );
    // A custom field's label is shown escaped on the form.
    let admin = app.token("cf_admin", "admin", None).await;
    let r = admin
        .post(
            "/api/v1/custom-fields",
            json!({"key": "xss_label", "label": "<img src=x onerror=alert(1)>", "group": "basic", "kind": "text"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = html_of(&c, format!("{base}/customers/new")).await;
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;") && !html.contains("<img src=x"),
        "a custom field label is escaped"
    );
    let csrf = csrf_in(&html);
    let created = c
        .post(format!("{base}/customers/new"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "<script>alert('x')</script>有限公司"),
            ("cooperation_start_on", "2021-01-01"),
            ("declared_annual_purchase_fen", "35.5"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let detail = c
        .get(format!(
            "{base}{}",
            created
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        ))
        .send()
        .await
        .expect("get");
    let csp = detail
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = detail.text().await.expect("html");
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>alert"),
        "user text is escaped"
    );
    assert!(
        html.contains("35.50万"),
        "35.5 万元 stored as fen and shown in 万"
    );
    app.cleanup().await;
}

/// A new customer whose normalized name is an existing customer's (or who
/// shares a contact's mobile) is not saved until the user says it is
/// another company; the warning names the existing customer.
async fn the_create_form_warns_of_a_likely_duplicate(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.token("dup_api", "admin", None).await;
    let existing = api
        .customer(
            "杭州云帆科技有限公司",
            serde_json::json!({"code": "C2025401"}),
        )
        .await;
    let c = signed_in(&app, "dup_ui").await;
    let base = &app.base;
    let form = html_of(&c, format!("{base}/customers/new")).await;
    let csrf = csrf_in(&form);
    let fields = |confirm: bool| {
        let mut f = vec![
            ("csrf_token", csrf.clone()),
            ("name", "云帆科技（杭州）有限公司".to_string()),
            ("cooperation_start_on", "2022-01-01".to_string()),
        ];
        if confirm {
            f.push(("confirm_duplicates", "1".to_string()));
        }
        f
    };
    let warned = c
        .post(format!("{base}/customers/new"))
        .form(&fields(false))
        .send()
        .await
        .expect("post");
    assert_eq!(warned.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = warned.text().await.expect("html");
    assert!(html.contains("duplicates-warning"), "{html}");
    assert!(html.contains("C2025401"), "the existing customer is named");
    assert!(html.contains("confirm-duplicates"));
    assert_eq!(app.store.customer_count().await.expect("count"), 1);
    let saved = c
        .post(format!("{base}/customers/new"))
        .form(&fields(true))
        .send()
        .await
        .expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.store.customer_count().await.expect("count"), 2);
    // A name that leaves the business words out warns too; a sister
    // company's (the same core, other business words) does not.
    for (name, warns) in [("云帆有限公司", true), ("云帆控股有限公司", false)] {
        let r = c
            .post(format!("{base}/customers/new"))
            .form(&[
                ("csrf_token", csrf.clone()),
                ("name", name.to_string()),
                ("cooperation_start_on", "2022-01-01".to_string()),
            ])
            .send()
            .await
            .expect("post");
        if warns {
            assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
            assert!(r.text().await.expect("html").contains("C2025401"), "{name}");
        } else {
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{name}");
        }
    }
    assert_eq!(app.store.customer_count().await.expect("count"), 3);

    // Renaming another customer to the same company warns too.
    let other = api
        .customer(
            "宁波港通物流有限公司",
            serde_json::json!({"code": "C2025402"}),
        )
        .await;
    let edit_url = format!("{base}/customers/{}/edit", other["id"]);
    let edit = html_of(&c, edit_url.clone()).await;
    let rename = |confirm: bool| {
        let mut f = vec![
            ("csrf_token", csrf_in(&edit)),
            ("version", other["version"].to_string()),
            ("name", "杭州云帆科技股份有限公司".to_string()),
            ("industry", "制造业".to_string()),
            ("sales_region", "华东".to_string()),
            ("cooperation_start_on", "2021-03-15".to_string()),
        ];
        if confirm {
            f.push(("confirm_duplicates", "1".to_string()));
        }
        f
    };
    let warned = c
        .post(&edit_url)
        .form(&rename(false))
        .send()
        .await
        .expect("post");
    assert_eq!(warned.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(warned.text().await.expect("html").contains("C2025401"));
    let saved = c
        .post(&edit_url)
        .form(&rename(true))
        .send()
        .await
        .expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let _ = existing;
    app.cleanup().await;
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Every answer — pages, API, errors — carries the security headers; HSTS
/// and Secure cookies only when served behind TLS.
async fn security_headers_plain_and_behind_tls(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = Client::new();
    for path in ["/login", "/api/v1/customers", "/no-such-page", "/healthz"] {
        let r = c
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        let csp = header(&r, "content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(
            header(&r, "x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(header(&r, "x-frame-options"), Some("DENY"), "{path}");
        assert_eq!(
            header(&r, "strict-transport-security"),
            None,
            "{path}: no HSTS over plain HTTP"
        );
    }
    app.cleanup().await;

    let app = spawn_app_with(backend, |s| s.secure_cookies = true).await;
    app.user("tls_user", "sales_rep", None).await;
    let r = c
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("get");
    assert!(header(&r, "strict-transport-security").is_some_and(|v| v.contains("max-age=")));
    let r = c
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"username": "tls_user", "password": password_of("tls_user")}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = header(&r, "set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.starts_with("kehu_session=")
            && cookie.contains("; Secure")
            && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    app.cleanup().await;
}

/// Session fixation: a session id planted in the browser before login is
/// not the one the login makes, and never signs anyone in.
async fn planted_session_cookie_is_not_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("li", "sales_rep", None).await;
    let base = &app.base;
    let planted = "planted-by-an-attacker-0123456789";
    let url: reqwest::Url = base.parse().expect("url");
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&format!("kehu_session={planted}; Path=/"), &url);
    let c = Client::builder()
        .cookie_provider(jar.clone())
        .redirect(Policy::none())
        .build()
        .expect("client");
    let page = html_of(&c, format!("{base}/login")).await;
    let ok = c
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf_in(&page).as_str()),
            ("username", "li"),
            ("password", password_of("li").as_str()),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let set = header(&ok, "set-cookie").unwrap_or_default().to_string();
    let issued = set
        .strip_prefix("kehu_session=")
        .and_then(|v| v.split(';').next())
        .expect("a new session cookie")
        .to_string();
    assert_ne!(issued, planted);
    // The planted id signs nobody in.
    let attacker = Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");
    let r = attacker
        .get(format!("{base}/customers"))
        .header("cookie", format!("kehu_session={planted}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sent to the login page");
    let r = attacker
        .get(format!("{base}/customers"))
        .header("cookie", format!("kehu_session={issued}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "the issued one works");
    app.cleanup().await;
}

/// The account page makes a token (shown once), lists it without the
/// secret, and revokes it; a blank name is refused on the page.
async fn api_tokens_on_the_account_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app
        .login("page_tokens", "sales_rep", Some("华东一组"))
        .await;
    let base = &app.base;
    let page = html_of(&me.client, format!("{base}/account/password")).await;
    assert!(page.contains("id=\"api-tokens\""), "{page}");
    let csrf = csrf_in(&page);
    let blank = me
        .client
        .post(format!("{base}/account/tokens"))
        .form(&[("csrf_token", csrf.as_str()), ("name", " ")])
        .send()
        .await
        .expect("post");
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let made = me
        .client
        .post(format!("{base}/account/tokens"))
        .form(&[("csrf_token", csrf.as_str()), ("name", "周报脚本")])
        .send()
        .await
        .expect("post")
        .text()
        .await
        .expect("html");
    let shown = made
        .split("id=\"new-token\"")
        .nth(1)
        .and_then(|rest| rest.split("<code>").nth(1))
        .and_then(|rest| rest.split("</code>").next())
        .expect("the new token on the page")
        .to_string();
    let with_token = |token: String| {
        let url = format!("{base}/api/v1/customers");
        async move {
            Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("get")
                .status()
        }
    };
    assert_eq!(with_token(shown.clone()).await, StatusCode::OK);
    let again = html_of(&me.client, format!("{base}/account/password")).await;
    assert!(
        again.contains("周报脚本") && !again.contains(&shown),
        "listed, never shown again"
    );
    let id = again
        .split("data-token=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a listed token")
        .to_string();
    let r = me
        .client
        .post(format!("{base}/account/tokens/{id}/revoke"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("revoke");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    assert_eq!(with_token(shown).await, StatusCode::UNAUTHORIZED);
    let after = html_of(&me.client, format!("{base}/account/password")).await;
    assert!(after.contains("已撤销"), "{after}");
    app.cleanup().await;
}

/// The contact form warns before a second record of one person; saved
/// anyway, the pair shows on the customer page, opens side by side, merges
/// with the fields picked, and the merge is undone from the customer page.
async fn contacts_that_are_one_person_are_warned_of_merged_and_undone(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.token("contact_api", "admin", None).await;
    let customer = api.customer("苏州恒瑞精密机械有限公司", json!({})).await;
    let id = customer["id"].as_i64().expect("id");
    let r = api
        .post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "张伟", "mobile": "13800138000", "title": "采购经理"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first: Value = r.json().await.expect("json");
    let c = signed_in(&app, "contact_ui").await;
    let base = &app.base;
    let page_url = format!("{base}/customers/{id}");
    let csrf = csrf_in(&html_of(&c, page_url.clone()).await);
    let fields = |confirm: bool| {
        let mut f = vec![
            ("csrf_token", csrf.clone()),
            ("name", "张玮".to_string()),
            ("mobile", "138-0013-8000".to_string()),
            ("email", "zw@hengrui.cn".to_string()),
        ];
        if confirm {
            f.push(("confirm_duplicates", "1".to_string()));
        }
        f
    };
    let url = format!("{base}/customers/{id}/contacts");
    let warned = c
        .post(&url)
        .form(&fields(false))
        .send()
        .await
        .expect("post");
    assert_eq!(warned.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = warned.text().await.expect("html");
    assert!(html.contains("contact-duplicates-warning"), "{html}");
    assert!(
        html.contains("可能与已有联系人 张* 是同一人（手机相同、姓名读音相同）"),
        "{html}"
    );
    assert!(
        !html.contains("13800138000"),
        "a clear mobile in the warning"
    );
    let listed = |s: &serde_json::Value| s["items"].as_array().map(Vec::len);
    let contacts =
        crate::helpers::ok_json(api.get(&format!("/api/v1/contacts?customer_id={id}")).await).await;
    assert_eq!(listed(&contacts), Some(1), "nothing saved on a warning");
    let saved = c.post(&url).form(&fields(true)).send().await.expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);

    // The customer page proposes the pair; its page shows both side by side.
    let page = html_of(&c, page_url.clone()).await;
    assert!(page.contains("id=\"contact-pairs\""), "{page}");
    let pair = page
        .split("data-contact-pair=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("pair link")
        .to_string();
    let pair_page = html_of(&c, format!("{base}/contact-duplicates/{pair}")).await;
    assert!(
        pair_page.contains("138****8000"),
        "masked values: {pair_page}"
    );
    let second = crate::helpers::ok_json(
        api.get(&format!("/api/v1/contacts?customer_id={id}&sort=id"))
            .await,
    )
    .await;
    let second = &second["items"][1];
    let second_id = second["id"].as_i64().expect("id");
    let first_id = first["id"].as_i64().expect("id");
    let merged = c
        .post(format!("{base}/contact-duplicates/{pair}/merge"))
        .form(&[
            ("csrf_token", csrf_in(&pair_page)),
            ("survivor", first_id.to_string()),
            (&format!("version_{first_id}"), first["version"].to_string()),
            (
                &format!("version_{second_id}"),
                second["version"].to_string(),
            ),
            ("field_name", first_id.to_string()),
            ("field_email", second_id.to_string()),
        ])
        .send()
        .await
        .expect("merge");
    assert_eq!(merged.status(), StatusCode::SEE_OTHER);
    let kept = crate::helpers::ok_json(
        api.get(&format!("/api/v1/contacts/{first_id}?reveal=true"))
            .await,
    )
    .await;
    assert_eq!(
        (&kept["name"], &kept["email"]),
        (&json!("张伟"), &json!("zw@hengrui.cn"))
    );
    let page = html_of(&c, page_url.clone()).await;
    assert!(!page.contains("id=\"contact-pairs\""), "merged: no pair");
    let merge_id = page
        .split("data-contact-merge=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("merge record")
        .to_string();
    let undone = c
        .post(format!("{base}/contact-merges/{merge_id}/undo"))
        .form(&[("csrf_token", csrf_in(&page))])
        .send()
        .await
        .expect("undo");
    assert_eq!(undone.status(), StatusCode::SEE_OTHER);
    let contacts =
        crate::helpers::ok_json(api.get(&format!("/api/v1/contacts?customer_id={id}")).await).await;
    assert_eq!(listed(&contacts), Some(2), "both back");
    let page = html_of(&c, page_url).await;
    assert!(page.contains("已撤销"), "the merge shows as undone");
    // The queue of contact pairs lists it again (found anew: a new pair).
    let queue = html_of(&c, format!("{base}/contact-duplicates")).await;
    assert_eq!(queue.matches("data-contact-pair=").count(), 1, "{queue}");
    app.cleanup().await;
}

/// A link on another site to "show in clear" (the browser says so in
/// `Sec-Fetch-Site`) shows masked values and writes no reveal in the user's
/// name; from kehu's own page it reveals, audited. Bearer tokens are not
/// ambient credentials and are not affected.
async fn a_reveal_set_off_by_another_site_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let api = app.token("reveal_api", "admin", None).await;
    let customer = api.customer("苏州恒瑞精密机械有限公司", json!({})).await;
    let id = customer["id"].as_i64().expect("id");
    let r = api
        .post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "张伟", "mobile": "13800138000"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c = signed_in(&app, "reveal_ui").await;
    let base = &app.base;
    let page = |site: &'static str| {
        let c = &c;
        async move {
            c.get(format!("{base}/customers/{id}?reveal=1"))
                .header("sec-fetch-site", site)
                .send()
                .await
                .expect("get")
                .text()
                .await
                .expect("html")
        }
    };
    let elsewhere = page("cross-site").await;
    assert!(
        !elsewhere.contains("13800138000"),
        "revealed from another site"
    );
    assert!(elsewhere.contains("138****8000"));
    let api_elsewhere = c
        .get(format!(
            "{base}/api/v1/contacts?customer_id={id}&reveal=true"
        ))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("get");
    assert_eq!(api_elsewhere.status(), StatusCode::FORBIDDEN);
    let auditor = app.token("reveal_audit", "auditor", None).await;
    let reveals = || async {
        let v: Value = auditor
            .get("/api/v1/audit?action=contact.reveal")
            .await
            .json()
            .await
            .expect("json");
        v["entries"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(reveals().await, 0);
    let own = page("same-origin").await;
    assert!(own.contains("13800138000"), "revealed from kehu's own page");
    assert_eq!(reveals().await, 1);
    let r = api
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/contacts?customer_id={id}&reveal=true"),
        )
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK, "a bearer token is not ambient");
    app.cleanup().await;
}

/// Every route the page router answers `method` (`get`, `post`) on, read
/// from its source: the sweeps below then cover a page added later
/// without anyone listing it.
fn routes_of(method: &str) -> Vec<String> {
    let call_of = format!("{method}(");
    let source = include_str!("../../src/ui/mod.rs");
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let body = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = body
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(body.len(), |(i, _)| i);
        let call = &body[..end];
        if call.contains(&call_of) {
            if let Some(path) = call.split('"').nth(1) {
                out.push(path.to_string());
            }
        }
        rest = &body[end..];
    }
    out
}

/// A route's path parameters filled with records that exist (id 1 of
/// each kind, the preset scheme and role keys).
fn filled(route: &str) -> String {
    route
        .split('/')
        .map(|part| match part {
            "{scheme}" => "value_tier",
            "{verdict}" => "confirm",
            "{step}" => "submit",
            "{name}" => "rollups",
            "{lang}" => "zh",
            "{key}" if route.starts_with("/schemes") => "value_tier",
            "{key}" => "sales_rep",
            p if p.starts_with('{') => "1",
            p => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// CSRF on all state-changing requests: a signed-in admin's post to every
/// page route — on records that exist — without the form's token is
/// refused with 403 and recorded, and changes nothing. (The sign-in form
/// and the public web forms have no session; they are tested apart.)
async fn every_form_post_needs_the_csrf_token(backend: Backend) {
    let app = spawn_app(backend).await;
    kehu_store::testing::load_demo(
        &app.store,
        kehu_core::demo::DemoConfig::new(5, app.store.today(), 30),
    )
    .await
    .expect("demo");
    let admin = app.login("csrf-admin", "admin", None).await;
    let auditor = app.token("csrf-auditor", "auditor", None).await;
    let before = app.store.customer_count().await.expect("count");
    let routes = routes_of("post");
    assert!(routes.len() >= 70, "{routes:?}");
    let mut swept = 0;
    let mut wrong = Vec::new();
    for route in routes
        .iter()
        .filter(|r| *r != "/login" && !r.starts_with("/f/"))
    {
        let path = filled(route);
        let post = admin.client.post(format!("{}{path}", app.base));
        let r = if route == "/imports" {
            // The upload form is multipart, its token a part like the file.
            let form = reqwest::multipart::Form::new()
                .text("kind", "customers")
                .part(
                    "file",
                    reqwest::multipart::Part::bytes("name\nCSRF 测试\n".as_bytes().to_vec())
                        .file_name("c.csv"),
                );
            post.multipart(form).send().await
        } else {
            post.form(&[("name", "CSRF 测试"), ("reason", "x")])
                .send()
                .await
        }
        .expect("post");
        swept += 1;
        if r.status() != StatusCode::FORBIDDEN {
            wrong.push(format!("{route} → POST {path}: {}", r.status()));
        }
    }
    assert!(
        wrong.is_empty(),
        "posts taken without the CSRF token:\n{}",
        wrong.join("\n")
    );
    assert_eq!(app.store.customer_count().await.expect("count"), before);
    let refused = auditor
        .get("/api/v1/audit?action=csrf.refused&limit=1000")
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert!(
        refused["total"].as_i64().unwrap_or(0) >= swept,
        "every refusal recorded: {} of {swept}",
        refused["total"]
    );
    app.cleanup().await;
}

/// XSS: markup typed into every kind of record and a custom field's label
/// comes back escaped on every page (each `get(` route of the page
/// router, the records it shows being the ones written here).
async fn every_page_escapes_what_users_typed(backend: Backend) {
    // Short enough for every field it goes into (a label holds 40).
    const P: &str = "\"><img src=x onerror=alert(1)><script>";
    let app = spawn_app(backend).await;
    let api = app.token("xss-admin", "admin", None).await;
    let today = app.store.today().to_string();
    let created = |path: &'static str, body: Value| {
        let api = &api;
        async move {
            let r = api.post(path, body.clone()).await;
            let status = r.status();
            let out: Value = r.json().await.unwrap_or(Value::Null);
            assert_eq!(status, StatusCode::CREATED, "{path} {body}: {out}");
            out
        }
    };
    created(
        "/api/v1/custom-fields",
        json!({"key": "xss", "label": P, "group": "basic", "kind": "text"}),
    )
    .await;
    let c = api
        .customer(
            &format!("{P}有限公司"),
            json!({"city": P, "notes": P, "custom_fields": {"xss": P}}),
        )
        .await;
    assert_eq!(c["id"], 1, "{c}");
    created(
        "/api/v1/customers/1/contacts",
        json!({"name": P, "notes": P}),
    )
    .await;
    created(
        "/api/v1/customers/1/orders",
        json!({"ordered_on": today, "amount_fen": 100_000, "product_line": P, "notes": P}),
    )
    .await;
    created(
        "/api/v1/customers/1/interactions",
        json!({"kind": "complaint", "occurred_on": today, "summary": P, "severity": "high"}),
    )
    .await;
    created(
        "/api/v1/tasks",
        json!({"customer": c["code"], "kind": "回访", "title": P, "detail": P, "due_on": today, "owner_id": api.user_id}),
    )
    .await;
    created(
        "/api/v1/campaigns",
        json!({"name": P, "channel": "online", "starts_on": today, "ends_on": today}),
    )
    .await;
    created(
        "/api/v1/segments",
        json!({"name": P, "expression": "华东", "shared": true}),
    )
    .await;

    let page = app.login("xss-viewer", "admin", None).await;
    let mut seen = 0;
    let mut raw = Vec::new();
    for route in routes_of("get") {
        let path = filled(&route);
        let r = page
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        let html = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        let body = r.text().await.expect("body");
        if !html {
            continue;
        }
        seen += 1;
        if body.contains("<img src=x") || body.contains("alert(1)><script>") {
            raw.push(format!("{route} → {path}"));
        }
    }
    assert!(seen >= 40, "pages read: {seen}");
    assert!(raw.is_empty(), "unescaped markup on:\n{}", raw.join("\n"));
    // The markup is on the pages, escaped: the sweep looked at it.
    let shown = page
        .client
        .get(format!("{}/customers/1", app.base))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(
        shown.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the customer page shows the name"
    );
    app.cleanup().await;
}
