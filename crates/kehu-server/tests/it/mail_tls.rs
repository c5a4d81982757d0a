//! E-mail to a relay over TLS: `smtps://` (TLS from the first byte) and
//! `?tls=required` (STARTTLS before anything else), the relay's certificate
//! checked against a configured CA; an untrusted certificate or a relay
//! that cannot upgrade gets nothing, and the error says why.

use crate::helpers::{smtp_sink_with, SinkTls, SINK_CA_PEM};
use kehu_server::mail::{send, MailSettings};

async fn send_one(settings: &MailSettings) -> Result<(), String> {
    send(
        settings,
        &["boss@example.com".to_string()],
        "季度报告",
        "附件是本季度的分类报告。",
        None,
    )
    .await
}

#[tokio::test]
async fn mail_goes_over_tls_and_starttls_with_the_password_inside() {
    for (tls, url) in [
        (SinkTls::Wrapper, "smtps://kehu:s3cret@localhost:{port}"),
        (
            SinkTls::StartTls,
            "smtp://kehu:s3cret@127.0.0.1:{port}?tls=required",
        ),
    ] {
        let (port, sink) = smtp_sink_with(tls).await;
        let settings = MailSettings::parse(
            &url.replace("{port}", &port.to_string()),
            "kehu@example.com",
        )
        .expect("settings")
        .with_ca_pem(SINK_CA_PEM)
        .expect("CA");
        send_one(&settings).await.expect("sent");
        let mails = sink.lock().expect("lock").clone();
        assert_eq!(mails.len(), 1, "{tls:?}: {mails:?}");
        let t = &mails[0];
        let at = |what: &str| {
            t.find(what)
                .unwrap_or_else(|| panic!("{tls:?}: no {what} in {t}"))
        };
        // The password and the message travel only after the switch to TLS.
        assert!(at("[tls]") < at("AUTH"), "{tls:?}: {t}");
        assert!(
            at("[tls]") < at("RCPT TO:<boss@example.com>"),
            "{tls:?}: {t}"
        );
        if tls == SinkTls::StartTls {
            assert!(at("STARTTLS") < at("[tls]"), "{t}");
            assert!(
                !t[..at("[tls]")].contains("AUTH"),
                "nothing before TLS: {t}"
            );
        }
    }
}

#[tokio::test]
async fn an_untrusted_certificate_or_no_starttls_gets_nothing() {
    // The sink's certificate is signed by the test CA, which is not trusted here.
    let (port, sink) = smtp_sink_with(SinkTls::Wrapper).await;
    let settings = MailSettings::parse(&format!("smtps://localhost:{port}"), "kehu@example.com")
        .expect("settings");
    let e = send_one(&settings).await.expect_err("refused");
    assert!(
        e.contains("SMTP localhost:") && e.to_lowercase().contains("certificate"),
        "{e}"
    );
    assert!(!e.contains("error: Connection error"), "said once: {e}");
    // A relay that offers no STARTTLS: required means nothing goes in clear.
    let (plain_port, plain_sink) = smtp_sink_with(SinkTls::None).await;
    let settings = MailSettings::parse(
        &format!("smtp://kehu:s3cret@127.0.0.1:{plain_port}?tls=required"),
        "kehu@example.com",
    )
    .expect("settings")
    .with_ca_pem(SINK_CA_PEM)
    .expect("CA");
    let e = send_one(&settings).await.expect_err("refused");
    assert!(!e.contains("s3cret"), "{e}");
    assert!(sink.lock().expect("lock").is_empty());
    assert!(
        plain_sink.lock().expect("lock").is_empty(),
        "no message in clear"
    );
}
