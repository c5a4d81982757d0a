use kehu_server::api::dto::UserCreate;
use kehu_server::{Application, Settings};
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, Store};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

/// Runs each listed `async fn NAME(backend: Backend)` once per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(kehu_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$name(kehu_store::Backend::Postgres).await } )* }
    };
}

pub struct TestApp {
    pub base: String,
    pub store: Store,
    db: Option<TestDatabase>,
}

/// A signed-in HTTP client: cookie session + CSRF token, or a bearer token.
pub struct Session {
    pub client: Client,
    pub base: String,
    pub csrf: Option<String>,
    pub bearer: Option<String>,
    pub user_id: i64,
    pub lang: &'static str,
}

impl TestApp {
    /// Says customer `id` was created at `at` (a past scenario).
    pub async fn backdate_customer(&self, id: i64, at: chrono::DateTime<chrono::Utc>) {
        use kehu_store::db::{Arg, Exec};
        self.store
            .db
            .clone()
            .execute(
                "UPDATE customers SET created_at = $1 WHERE id = $2",
                vec![Arg::from(at), Arg::from(id)],
            )
            .await
            .expect("backdate");
    }

    /// Records that customer `id` entered `class` of `scheme` on `on`.
    pub async fn class_since(&self, id: i64, scheme: &str, class: &str, on: chrono::NaiveDate) {
        use kehu_store::db::{Arg, Exec};
        self.store
            .db
            .clone()
            .execute(
                "INSERT INTO class_history (customer_id, scheme_key, from_class, to_class, effective_on, changed_at, cause) \
                 VALUES ($1, $2, NULL, $3, $4, $5, 'evaluation')",
                vec![
                    Arg::from(id),
                    Arg::from(scheme),
                    Arg::from(class),
                    Arg::from(on),
                    Arg::from(chrono::Utc::now()),
                ],
            )
            .await
            .expect("class history");
    }
}

/// The ids of a page of customers behind a report's number (`items`).
pub async fn listed_ids(s: &Session, path: &str) -> Vec<i64> {
    let page = ok_json(s.get(path).await).await;
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {page}"))
        .iter()
        .map(|c| c["id"].as_i64().expect("id"))
        .collect()
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| ()).await
}

/// A server that sends e-mail through `mail`.
pub async fn spawn_app_with_mail(
    backend: Backend,
    mail: Option<kehu_server::mail::MailSettings>,
) -> TestApp {
    spawn_app_with(backend, |s| s.mail = mail).await
}

/// A server with its settings changed by `adjust` first.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let mut settings = Settings {
        database_url: db.url.clone(),
        addr: "127.0.0.1:0".into(),
        secure_cookies: false,
        run_jobs: false,
        mail: None,
        keyring: Some(kehu_store::testing::test_keyring()),
        key_file: None,
        rate_limit: None,
        trusted_proxies: Default::default(),
        backups: None,
        audit_anchors: None,
        today: None,
    };
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("build app");
    let addr = app.local_addr().expect("bound address");
    tokio::spawn(app.run(std::future::pending()));
    TestApp {
        base: format!("http://{addr}"),
        store,
        db: Some(db),
    }
}

impl TestApp {
    /// Creates a user with a known password.
    pub async fn user(&self, username: &str, role: &str, team: Option<&str>) -> i64 {
        let created = kehu_server::api::users::create_user(
            &self.store,
            UserCreate {
                username: username.into(),
                display_name: None,
                role: role.into(),
                team: team.map(String::from),
                password: Some(password_of(username)),
            },
        )
        .await
        .expect("create user");
        created.user.id
    }

    /// A user signed in through POST /api/v1/session (cookie + CSRF).
    pub async fn login(&self, username: &str, role: &str, team: Option<&str>) -> Session {
        let user_id = self.user(username, role, team).await;
        let client = Client::builder()
            .cookie_store(true)
            .build()
            .expect("client");
        let r = client
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({"username": username, "password": password_of(username)}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::OK, "login of {username}");
        let body: Value = r.json().await.expect("session json");
        Session {
            client,
            base: self.base.clone(),
            csrf: body["csrf_token"].as_str().map(String::from),
            bearer: None,
            user_id,
            lang: "zh-CN",
        }
    }

    /// A user with a bearer API token (no cookies, no CSRF).
    pub async fn token(&self, username: &str, role: &str, team: Option<&str>) -> Session {
        let user_id = self.user(username, role, team).await;
        let token = kehu_server::auth::random_token();
        self.store
            .create_api_token(user_id, "test", &token)
            .await
            .expect("token");
        Session {
            client: Client::new(),
            base: self.base.clone(),
            csrf: None,
            bearer: Some(token),
            user_id,
            lang: "zh-CN",
        }
    }

    /// A submission of web form `slug` (no sign-in), with consent.
    pub async fn submit_form(&self, slug: &str, values: Value) -> Response {
        Client::new()
            .post(format!("{}/api/v1/public/forms/{slug}", self.base))
            .json(&json!({"values": values, "consent": true}))
            .send()
            .await
            .expect("submit")
    }

    pub async fn cleanup(mut self) {
        if let Some(db) = self.db.take() {
            db.cleanup(self.store.clone()).await;
        }
    }
}

pub fn password_of(username: &str) -> String {
    let _ = username;
    "Correct-Horse-Battery-7".to_string()
}

impl Session {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Accept-Language", self.lang);
        if let Some(t) = &self.bearer {
            rb = rb.bearer_auth(t);
        }
        if let Some(c) = &self.csrf {
            rb = rb.header("X-CSRF-Token", c);
        }
        rb
    }
    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }
    /// A page's HTML, whatever its status.
    pub async fn html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("html")
    }
    /// A request with a JSON body.
    pub async fn send_json(&self, method: Method, path: &str, body: Value) -> Response {
        let what = method.to_string();
        self.request(method, path)
            .json(&body)
            .send()
            .await
            .expect(&what)
    }
    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send_json(Method::POST, path, body).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.send_json(Method::PATCH, path, body).await
    }
    pub async fn delete(&self, path: &str) -> Response {
        self.request(Method::DELETE, path)
            .send()
            .await
            .expect("DELETE")
    }
    pub async fn put_json(&self, path: &str, body: Value) -> Response {
        self.send_json(Method::PUT, path, body).await
    }
    /// Accepts the oldest pending lead (the first listed) as a new customer: its id.
    pub async fn accept_oldest_lead(&self) -> i64 {
        let leads = ok_json(self.get("/api/v1/leads").await).await;
        let lead = leads["leads"][0]["id"].clone();
        let accepted = ok_json(
            self.post(&format!("/api/v1/leads/{lead}/accept"), json!({}))
                .await,
        )
        .await;
        accepted["customer_id"].as_i64().expect("customer")
    }

    pub fn english(mut self) -> Session {
        self.lang = "en";
        self
    }

    /// Creates a customer and returns its JSON (asserting 201).
    pub async fn customer(&self, name: &str, extra: Value) -> Value {
        let mut body = json!({"name": name, "industry": "制造业", "sales_region": "华东", "cooperation_start_on": "2021-03-15"});
        if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
            b.extend(e);
        }
        let r = self.post("/api/v1/customers", body).await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "create {name}: {json}");
        json
    }
}

/// The JSON body of a successful response (asserting success).
pub async fn ok_json(r: Response) -> Value {
    let status = r.status();
    let body: Value = r.json().await.expect("json");
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Reads a problem+json response, checking the content type and status.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status, "status");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        ct.starts_with("application/problem+json"),
        "content type {ct}"
    );
    r.json().await.expect("problem json")
}

/// The fields a validation problem names, in order.
pub fn error_fields(p: &Value) -> Vec<String> {
    p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str().map(str::to_string))
        .collect()
}

/// The first field error of a validation problem: (field, code).
pub fn first_error(p: &Value) -> (String, String) {
    let e = &p["errors"][0];
    (
        e["field"].as_str().unwrap_or("").to_string(),
        e["code"].as_str().unwrap_or("").to_string(),
    )
}

/// The entry for `scheme` in a per-scheme list (a customer's classes or explanations).
pub fn of_scheme(list: &Value, scheme: &str) -> Value {
    list.as_array()
        .and_then(|a| a.iter().find(|e| e["scheme"] == scheme).cloned())
        .unwrap_or_else(|| panic!("no {scheme} entry in {list}"))
}

/// How a test SMTP sink talks: in clear, offering STARTTLS, or in TLS from
/// the first byte (with the certificate of tests/it/fixtures/smtp-tls,
/// signed by its `ca.pem`, for `localhost` and 127.0.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    None,
    StartTls,
    Wrapper,
}

/// A local SMTP sink: accepts every message and keeps each session's
/// transcript (commands and data) for the test to read.
pub async fn smtp_sink() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    smtp_sink_with(SinkTls::None).await
}

/// The test CA that signed the TLS sink's certificate (PEM).
pub const SINK_CA_PEM: &[u8] = include_bytes!("fixtures/smtp-tls/ca.pem");

/// A local SMTP sink speaking `tls`; a session that switched to TLS has
/// a `[tls]` line in its transcript where it did.
pub async fn smtp_sink_with(tls: SinkTls) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = got.clone();
    let acceptor = sink_tls_acceptor();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut transcript = String::new();
                match tls {
                    SinkTls::None => {
                        sink_session(socket, true, false, &mut transcript).await;
                    }
                    SinkTls::StartTls => {
                        if let Some(plain) = sink_session(socket, true, true, &mut transcript).await
                        {
                            if let Ok(secure) = acceptor.accept(plain).await {
                                transcript.push_str("[tls]\n");
                                sink_session(secure, false, false, &mut transcript).await;
                            }
                        }
                    }
                    SinkTls::Wrapper => {
                        if let Ok(secure) = acceptor.accept(socket).await {
                            transcript.push_str("[tls]\n");
                            sink_session(secure, true, false, &mut transcript).await;
                        }
                    }
                }
                if transcript.contains("DATA") {
                    kept.lock().expect("lock").push(transcript);
                }
            });
        }
    });
    (port, got)
}

/// The sink's TLS side: its certificate and key from the fixtures.
fn sink_tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(include_bytes!("fixtures/smtp-tls/server.pem"))
        .collect::<Result<Vec<_>, _>>()
        .expect("server.pem");
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/smtp-tls/server.key"))
        .expect("server.key");
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// One SMTP conversation on `stream` (greeting first when `greet`: not after
/// STARTTLS), written to `transcript`. Returns the
/// stream when the client asked for STARTTLS (and was told to go ahead).
async fn sink_session<S>(
    stream: S,
    greet: bool,
    offer_starttls: bool,
    transcript: &mut String,
) -> Option<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = BufReader::new(stream);
    if greet
        && stream
            .get_mut()
            .write_all(b"220 sink ESMTP\r\n")
            .await
            .is_err()
    {
        return None;
    }
    let mut in_data = false;
    loop {
        let mut line = String::new();
        match stream.read_line(&mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']);
        transcript.push_str(line);
        transcript.push('\n');
        let reply: &[u8] = if in_data {
            if line == "." {
                in_data = false;
                b"250 queued\r\n"
            } else {
                continue;
            }
        } else {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                if offer_starttls {
                    b"250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
                } else {
                    b"250-sink\r\n250 AUTH PLAIN LOGIN\r\n"
                }
            } else if upper.starts_with("STARTTLS") && offer_starttls {
                let _ = stream.get_mut().write_all(b"220 go ahead\r\n").await;
                return Some(stream.into_inner());
            } else if upper.starts_with("AUTH") {
                b"235 authenticated\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go on\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = stream.get_mut().write_all(b"221 bye\r\n").await;
                return None;
            } else {
                b"250 ok\r\n"
            }
        };
        if stream.get_mut().write_all(reply).await.is_err() {
            return None;
        }
    }
}

/// The text of a PDF as `pdftotext` (poppler-utils, installed by .ci/run)
/// reads it: what a reader would see, independent of how it is encoded.
pub fn pdf_text(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!(
        "kehu-test-{}-{}.pdf",
        std::process::id(),
        kehu_server::auth::random_token()
    ));
    std::fs::write(&path, pdf).expect("write the PDF");
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext (apt install poppler-utils)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 text")
}

/// Uploads `bytes` as file `name` for an import of `kind` (the dry run's answer).
pub async fn upload_import(s: &Session, kind: &str, name: &str, bytes: Vec<u8>) -> Response {
    let form = reqwest::multipart::Form::new()
        .text("kind", kind.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    s.request(Method::POST, "/api/v1/imports")
        .multipart(form)
        .send()
        .await
        .expect("upload")
}

/// A role's stored field rights with `changes` applied, put back by `admin`.
pub async fn set_rights(admin: &Session, role: &str, changes: &[(&str, &str)]) {
    let roles = ok_json(admin.get("/api/v1/roles").await).await;
    let mut rights = roles
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["key"] == role)
        .expect("role")["field_rights"]
        .clone();
    for (key, access) in changes {
        rights[*key] = json!(access);
    }
    ok_json(
        admin
            .put_json(&format!("/api/v1/roles/{role}/field-rights"), rights)
            .await,
    )
    .await;
}

/// A 403 whose message names `field` (a filter, sort or segment on a
/// field the reader may not see in clear); returns the problem.
pub async fn refused_naming(r: Response, field: &str) -> Value {
    let p = problem(r, StatusCode::FORBIDDEN).await;
    let detail = p["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(field), "{field}: {p}");
    p
}
