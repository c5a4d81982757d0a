//! Notifications beyond the inbox: outgoing webhooks (WeCom / DingTalk /
//! Feishu bots or any HTTP endpoint) and the retry rule of the delivery
//! outbox. A webhook's body is signed: `X-Kehu-Signature: sha256=HEX` is
//! HMAC-SHA256 with the webhook's secret over `TIMESTAMP.BODY`, the
//! timestamp (Unix seconds) sent as `X-Kehu-Timestamp`, so a receiver can
//! check both who sent it and that it is fresh.

use crate::error::{Reason, ValidationErrors};
use crate::text::{clean, parse_text};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

labelled_enum!(WebhookFormat {
    Generic = "generic" / "通用",
    Wecom = "wecom" / "企业微信",
    Dingtalk = "dingtalk" / "钉钉",
    Feishu = "feishu" / "飞书",
});

/// Tries before a delivery is given up (marked failed, still listed).
pub const MAX_ATTEMPTS: i64 = 8;

/// Minutes to wait after the `attempts`-th failed try: 1, 2, 4 … at most 6 hours.
pub fn backoff_minutes(attempts: i64) -> i64 {
    let exp = attempts.clamp(1, 10) - 1;
    (1_i64 << exp).min(360)
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct WebhookInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    /// generic (default) | wecom | dingtalk | feishu
    #[serde(default)]
    pub format: Option<String>,
    /// At least 16 characters; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookData {
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    /// None: the caller generates one.
    pub secret: Option<String>,
}

impl WebhookInput {
    pub fn validate(&self) -> Result<WebhookData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = e.check("name", parse_text(self.name.as_deref().unwrap_or(""), 100));
        let url = e.check(
            "url",
            parse_text(self.url.as_deref().unwrap_or(""), 2000).and_then(|u| {
                let rest = u
                    .strip_prefix("https://")
                    .or_else(|| u.strip_prefix("http://"));
                match rest {
                    Some(r)
                        if !r.is_empty()
                            && !r.starts_with('/')
                            && !u.contains(char::is_whitespace) =>
                    {
                        Ok(u)
                    }
                    _ => Err(Reason::Other {
                        zh: "应为 http:// 或 https:// 开头的网址".into(),
                        en: "must be an http:// or https:// address".into(),
                    }),
                }
            }),
        );
        let format = e.check(
            "format",
            match self.format.as_deref().map(clean).filter(|f| !f.is_empty()) {
                None => Ok(WebhookFormat::Generic),
                Some(f) => WebhookFormat::parse(&f),
            },
        );
        let secret = e.check(
            "secret",
            match self
                .secret
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                None => Ok(None),
                Some(s) if s.chars().count() >= 16 && s.chars().count() <= 200 => {
                    Ok(Some(s.to_string()))
                }
                Some(_) => Err(Reason::OutOfRange {
                    min: Some("16".into()),
                    max: Some("200".into()),
                }),
            },
        );
        e.into_result()?;
        match (name, url, format, secret) {
            (Some(name), Some(url), Some(format), Some(secret)) => Ok(WebhookData {
                name,
                url,
                format,
                secret,
            }),
            _ => Err(ValidationErrors::single("name", Reason::Required)),
        }
    }
}

/// One notification as webhooks carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub user: &'a str,
    pub text_zh: &'a str,
    pub text_en: &'a str,
    pub created_at: &'a str,
}

/// The JSON body for a webhook of `format`.
pub fn payload(format: WebhookFormat, n: &Notice<'_>) -> Value {
    let text = format!("kehu · {}：{}", n.user, n.text_zh);
    match format {
        WebhookFormat::Generic => json!({
            "notification_id": n.id, "kind": n.kind, "user": n.user,
            "text_zh": n.text_zh, "text_en": n.text_en, "created_at": n.created_at,
        }),
        WebhookFormat::Wecom | WebhookFormat::Dingtalk => {
            json!({"msgtype": "text", "text": {"content": text}})
        }
        WebhookFormat::Feishu => json!({"msg_type": "text", "content": {"text": text}}),
    }
}

/// `sha256=HEX` of HMAC-SHA256(secret, "TIMESTAMP.BODY").
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // An HMAC key may be of any length: new_from_slice does not fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_six_hours() {
        let waits: Vec<i64> = (1..=11).map(backoff_minutes).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 360, 360]);
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // The HMAC is RFC 4231's (test case 2); ours covers "TIMESTAMP.BODY".
        assert_eq!(
            signature("Jefe", 0, b"x"),
            signature("Jefe", 0, b"x"),
            "deterministic"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "the HMAC itself is RFC 4231's"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"1700000000.{\"a\":1}");
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature("Jefe", 1_700_000_000, br#"{"a":1}"#), want);
        assert_ne!(
            want,
            signature("Jefe", 1_700_000_001, br#"{"a":1}"#),
            "the timestamp is signed"
        );
        assert_ne!(want, signature("other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn webhooks_are_checked_and_shaped_per_bot() {
        let ok = WebhookInput {
            name: Some("销售群机器人".into()),
            url: Some("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc".into()),
            format: Some("企业微信".into()),
            secret: None,
        }
        .validate()
        .expect("valid");
        assert_eq!((ok.format, ok.secret), (WebhookFormat::Wecom, None));
        for (url, secret, field) in [
            ("ftp://x", None, "url"),
            ("https://", None, "url"),
            ("http://a b", None, "url"),
            ("https://x.example", Some("short"), "secret"),
        ] {
            let e = WebhookInput {
                name: Some("x".into()),
                url: Some(url.into()),
                format: None,
                secret: secret.map(str::to_string),
            }
            .validate()
            .expect_err(url);
            assert_eq!(e.0[0].field, field, "{url}");
        }
        let n = Notice {
            id: 7,
            kind: "overdue",
            user: "rep1",
            text_zh: "任务已逾期",
            text_en: "overdue",
            created_at: "2026-12-02T08:00:00Z",
        };
        assert_eq!(
            payload(WebhookFormat::Dingtalk, &n)["text"]["content"],
            "kehu · rep1：任务已逾期"
        );
        assert_eq!(
            payload(WebhookFormat::Feishu, &n)["content"]["text"],
            "kehu · rep1：任务已逾期"
        );
        assert_eq!(payload(WebhookFormat::Generic, &n)["notification_id"], 7);
    }
}
