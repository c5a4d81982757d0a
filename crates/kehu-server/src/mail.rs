//! Outgoing e-mail over SMTP to the configured relay (`KEHU_SMTP_URL`,
//! `smtp://[user:password@]host[:port]`, and `KEHU_MAIL_FROM`). Plain SMTP
//! only: the relay is expected on the host or the LAN. The password never
//! reaches a log or an error message.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Clone)]
pub struct MailSettings {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    password: Option<String>,
    pub from: String,
}

impl std::fmt::Debug for MailSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl MailSettings {
    /// `smtp://[user:password@]host[:port]` (port 25 when absent).
    pub fn parse(url: &str, from: &str) -> Result<MailSettings, String> {
        let rest = url.strip_prefix("smtp://").ok_or_else(|| {
            "KEHU_SMTP_URL: 应以 smtp:// 开头 / must start with smtp://".to_string()
        })?;
        let (auth, host_port) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let (username, password) = match auth.map(|a| a.split_once(':').unwrap_or((a, ""))) {
            Some((u, p)) => (Some(u.to_string()), Some(p.to_string())),
            None => (None, None),
        };
        let host_port = host_port.trim_end_matches('/');
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| {
                    "KEHU_SMTP_URL: 端口无效 / the port is not a number".to_string()
                })?,
            ),
            None => (host_port.to_string(), 25),
        };
        if host.is_empty() {
            return Err("KEHU_SMTP_URL: 缺少主机 / no host".into());
        }
        from.parse::<lettre::message::Mailbox>()
            .map_err(|_| format!("KEHU_MAIL_FROM: “{from}”不是有效地址 / not an address"))?;
        Ok(MailSettings {
            host,
            port,
            username,
            password,
            from: from.to_string(),
        })
    }

    /// From the environment; None when `KEHU_SMTP_URL` is not set (no e-mail).
    pub fn from_env() -> Result<Option<MailSettings>, String> {
        match std::env::var("KEHU_SMTP_URL") {
            Ok(url) if !url.trim().is_empty() => {
                let from =
                    std::env::var("KEHU_MAIL_FROM").unwrap_or_else(|_| "kehu@localhost".into());
                MailSettings::parse(url.trim(), from.trim()).map(Some)
            }
            _ => Ok(None),
        }
    }
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
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        transport = transport.credentials(Credentials::new(u.clone(), p.clone()));
    }
    transport
        .build()
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", settings.host, settings.port))
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
            (s.host.as_str(), s.port, s.username.as_deref()),
            ("mail.example.com", 2525, Some("kehu"))
        );
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the password stays out of Debug"
        );
        let s = MailSettings::parse("smtp://127.0.0.1", "kehu@localhost").expect("parses");
        assert_eq!((s.port, s.username), (25, None));
        for (url, from) in [
            ("http://x", "a@b.c"),
            ("smtp://:25", "a@b.c"),
            ("smtp://x:port", "a@b.c"),
            ("smtp://x", "not an address"),
        ] {
            assert!(MailSettings::parse(url, from).is_err(), "{url} {from}");
        }
    }
}
