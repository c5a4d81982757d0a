//! Outgoing e-mail over SMTP to the configured relay (`KEHU_SMTP_URL`,
//! `KEHU_MAIL_FROM`, and `KEHU_SMTP_CA_FILE` for a relay whose certificate
//! a private CA signed). Three ways to reach the relay:
//! `smtp://` plain (a relay on the host or the LAN), `smtp://…?tls=required`
//! STARTTLS that must succeed before anything else is said, and `smtps://`
//! TLS from the first byte. Certificates are checked against the public
//! roots (webpki-roots) and the configured CA; there is no switch to accept
//! an invalid one. The password never reaches a log or an error message.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    /// Plain SMTP (`smtp://`, port 25).
    Plain,
    /// STARTTLS, required: the relay must upgrade before credentials or
    /// mail are sent (`smtp://…?tls=required`, port 587).
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Tls,
}

#[derive(Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
    pub username: Option<String>,
    password: Option<String>,
    pub from: String,
    /// Certificates trusted beside the public roots (a private CA).
    extra_roots: Option<Certificate>,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("from", &self.from)
            .field("extra_roots", &self.extra_roots.is_some())
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    /// `smtp://[user:password@]host[:port][?tls=required]` or
    /// `smtps://[user:password@]host[:port]`; the user and password may be
    /// percent-encoded (a `@` or `:` in a password).
    pub fn parse(url: &str, from: &str) -> Result<MailSettings, String> {
        let (security, rest) = if let Some(rest) = url.strip_prefix("smtps://") {
            (MailSecurity::Tls, rest)
        } else if let Some(rest) = url.strip_prefix("smtp://") {
            (MailSecurity::Plain, rest)
        } else {
            return Err(
                "KEHU_SMTP_URL: 应以 smtp:// 或 smtps:// 开头 / must start with smtp:// or smtps://"
                    .into(),
            );
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let security = match (security, query) {
            (s, None | Some("")) => s,
            (MailSecurity::Plain, Some("tls=required")) => MailSecurity::StartTls,
            (_, Some(q)) => {
                return Err(format!(
                    "KEHU_SMTP_URL: 不支持的参数“{q}”（smtp:// 只接受 ?tls=required）/ unsupported parameter “{q}” (smtp:// takes only ?tls=required)"
                ))
            }
        };
        let (auth, host_port) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    "KEHU_SMTP_URL: 用户名或密码的 % 编码无效 / the user or password is not valid percent-encoded UTF-8"
                        .to_string()
                })
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            Some((u, p)) => (Some(decode(u)?), Some(decode(p)?)),
            None => (None, None),
        };
        let host_port = host_port.trim_end_matches('/');
        let default_port = match security {
            MailSecurity::Plain => 25,
            MailSecurity::StartTls => 587,
            MailSecurity::Tls => 465,
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| {
                    "KEHU_SMTP_URL: 端口无效 / the port is not a number".to_string()
                })?,
            ),
            None => (host_port.to_string(), default_port),
        };
        if host.is_empty() {
            return Err("KEHU_SMTP_URL: 缺少主机 / no host".into());
        }
        from.parse::<lettre::message::Mailbox>()
            .map_err(|_| format!("KEHU_MAIL_FROM: “{from}”不是有效地址 / not an address"))?;
        Ok(MailSettings {
            host,
            port,
            security,
            username,
            password,
            from: from.to_string(),
            extra_roots: None,
        })
    }

    /// Trusts the certificates of `pem` (a private CA) beside the public
    /// roots. Read now, so a bad file stops the start rather than every delivery.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<MailSettings, String> {
        let invalid =
            || "KEHU_SMTP_CA_FILE: 不是 PEM 格式的证书 / holds no PEM certificate".to_string();
        // A file without a certificate block parses as no certificates at all.
        if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid());
        }
        self.extra_roots = Some(Certificate::from_pem(pem).map_err(|_| invalid())?);
        Ok(self)
    }

    /// Whether a password would cross the network in clear: plain SMTP with
    /// credentials to a relay that is not on this host.
    pub fn sends_password_in_clear(&self) -> bool {
        let local = self.host == "localhost"
            || self
                .host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.security == MailSecurity::Plain && self.password.is_some() && !local
    }

    /// From the environment; None when `KEHU_SMTP_URL` is not set (no e-mail).
    pub fn from_env() -> Result<Option<MailSettings>, String> {
        let url = match std::env::var("KEHU_SMTP_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ => return Ok(None),
        };
        let from = std::env::var("KEHU_MAIL_FROM").unwrap_or_else(|_| "kehu@localhost".into());
        let mut settings = MailSettings::parse(url.trim(), from.trim())?;
        if let Ok(path) = std::env::var("KEHU_SMTP_CA_FILE") {
            if !path.trim().is_empty() {
                let pem = std::fs::read(path.trim()).map_err(|e| {
                    format!("KEHU_SMTP_CA_FILE: 无法读取 {path} / cannot read it: {e}")
                })?;
                settings = settings.with_ca_pem(&pem)?;
            }
        }
        if settings.sends_password_in_clear() {
            tracing::warn!(
                host = %settings.host,
                "KEHU_SMTP_URL: the SMTP password goes to a remote relay without TLS; use smtps:// or ?tls=required"
            );
        }
        Ok(Some(settings))
    }

    /// The TLS parameters for the relay (public roots plus the configured CA).
    fn tls_parameters(&self) -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(self.host.clone());
        if let Some(ca) = &self.extra_roots {
            builder = builder.add_root_certificate(ca.clone());
        }
        builder
            .build_rustls()
            .map_err(|e| format!("TLS: {}", with_causes(&e)))
    }
}

/// An error and the errors beneath it, so a TLS failure says which
/// certificate check failed. A cause that repeats its parent's words
/// replaces them rather than saying them twice, and a segment said twice in
/// a row (lettre's "Connection error: Connection error: …") is said once.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        let last = parts.last_mut().expect("one part at least");
        if more.contains(last.as_str()) {
            *last = more;
        } else if !last.contains(&more) {
            parts.push(more);
        }
        cause = c.source();
    }
    let joined = parts.join(": ");
    let mut segments: Vec<&str> = joined.split(": ").collect();
    segments.dedup();
    segments.join(": ")
}

/// A file sent with a message.
pub struct File {
    pub name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// Sends one message to `to`; the error says why not (never the password).
pub async fn send(
    settings: &MailSettings,
    to: &[String],
    subject: &str,
    body: &str,
    file: Option<File>,
) -> Result<(), String> {
    let mut message = Message::builder()
        .from(
            settings
                .from
                .parse()
                .map_err(|e| format!("from address: {e}"))?,
        )
        .subject(subject);
    for r in to {
        message = message.to(r.parse().map_err(|e| format!("recipient {r}: {e}"))?);
    }
    let text = SinglePart::plain(body.to_string());
    let message = match file {
        None => message.singlepart(text),
        Some(f) => {
            let kind =
                ContentType::parse(f.content_type).map_err(|e| format!("content type: {e}"))?;
            message.multipart(
                MultiPart::mixed()
                    .singlepart(text)
                    .singlepart(Attachment::new(f.name).body(f.bytes, kind)),
            )
        }
    }
    .map_err(|e| format!("message: {e}"))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        .port(settings.port)
        .timeout(Some(std::time::Duration::from_secs(30)));
    transport = match settings.security {
        MailSecurity::Plain => transport.tls(Tls::None),
        MailSecurity::StartTls => transport.tls(Tls::Required(settings.tls_parameters()?)),
        MailSecurity::Tls => transport.tls(Tls::Wrapper(settings.tls_parameters()?)),
    };
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "SMTP {}:{}: {}",
                settings.host,
                settings.port,
                with_causes(&e)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        let s = MailSettings::parse(
            "smtp://kehu:s3cret@mail.example.com:2525",
            "kehu@example.com",
        )
        .expect("parses");
        assert_eq!(
            (s.host.as_str(), s.port, s.security, s.username.as_deref()),
            ("mail.example.com", 2525, MailSecurity::Plain, Some("kehu"))
        );
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the password stays out of Debug"
        );
        assert!(s.sends_password_in_clear());
        let s = MailSettings::parse("smtp://127.0.0.1", "kehu@localhost").expect("parses");
        assert_eq!(
            (s.port, s.security, s.username),
            (25, MailSecurity::Plain, None)
        );
        let s = MailSettings::parse("smtp://u:p@127.0.0.1", "kehu@localhost").expect("parses");
        assert!(!s.sends_password_in_clear(), "a relay on this host");
        // The default port follows the protection.
        for (url, port, security) in [
            ("smtps://mail.example.com", 465, MailSecurity::Tls),
            ("smtps://mail.example.com:2465", 2465, MailSecurity::Tls),
            (
                "smtp://mail.example.com?tls=required",
                587,
                MailSecurity::StartTls,
            ),
            (
                "smtp://u:p@mail.example.com:2587/?tls=required",
                2587,
                MailSecurity::StartTls,
            ),
        ] {
            let s = MailSettings::parse(url, "a@b.c").expect(url);
            assert_eq!((s.port, s.security), (port, security), "{url}");
            assert!(!s.sends_password_in_clear(), "{url}");
        }
        // A percent-encoded password with an @ and a colon.
        let s = MailSettings::parse("smtps://kehu%40corp:p%40ss%3Aw@mail.example.com", "a@b.c")
            .expect("parses");
        assert_eq!(
            (s.username.as_deref(), s.password.as_deref()),
            (Some("kehu@corp"), Some("p@ss:w"))
        );
        for (url, from) in [
            ("http://x", "a@b.c"),
            ("smtp://:25", "a@b.c"),
            ("smtp://x:port", "a@b.c"),
            ("smtp://x", "not an address"),
            ("smtp://x?tls=opportunistic", "a@b.c"),
            ("smtps://x?tls=required", "a@b.c"),
            ("smtp://u:%ff@x", "a@b.c"),
        ] {
            assert!(MailSettings::parse(url, from).is_err(), "{url} {from}");
        }
    }

    #[test]
    fn ca_files() {
        let s = MailSettings::parse("smtps://x", "a@b.c").expect("parses");
        let pem = include_bytes!("../tests/it/fixtures/smtp-tls/ca.pem");
        assert!(s.clone().with_ca_pem(pem).is_ok());
        for bad in [
            &b""[..],
            b"not a certificate",
            b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        ] {
            let e = s.clone().with_ca_pem(bad).expect_err("refused");
            assert!(e.starts_with("KEHU_SMTP_CA_FILE"), "{e}");
        }
    }
}
