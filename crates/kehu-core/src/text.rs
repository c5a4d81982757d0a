//! Text cleanup applied to every input: full-width → half-width, whitespace
//! collapsed and trimmed, control characters refused.

use crate::error::Reason;

/// Full-width ASCII variants (U+FF01–U+FF5E) and the ideographic space become
/// their half-width forms. Chinese characters are left alone.
pub fn to_half_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Half-width conversion, runs of whitespace collapsed to one space, trimmed.
pub fn clean(s: &str) -> String {
    let half = to_half_width(s);
    let mut out = String::with_capacity(half.len());
    let mut pending_space = false;
    for c in half.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
        }
    }
    out
}

/// A cleaned, non-empty text of at most `max` characters without control characters.
pub fn parse_text(raw: &str, max: usize) -> Result<String, Reason> {
    let s = clean(raw);
    if s.is_empty() {
        return Err(Reason::Required);
    }
    if s.chars().any(|c| c.is_control()) {
        return Err(Reason::ControlCharacters);
    }
    if s.chars().count() > max {
        return Err(Reason::TooLong { max });
    }
    Ok(s)
}

/// Like [`parse_text`] but an empty input is `None` rather than an error.
pub fn parse_optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, Reason> {
    match raw.map(clean) {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => parse_text(&s, max).map(Some),
    }
}

/// Multi-line text (summaries, notes): keeps line breaks, trims each line,
/// allows tabs and newlines but no other control characters.
pub fn parse_long_text(raw: &str, max: usize) -> Result<String, Reason> {
    let half = to_half_width(raw);
    let lines: Vec<&str> = half.lines().map(str::trim).collect();
    let s = lines.join("\n").trim().to_string();
    if s.is_empty() {
        return Err(Reason::Required);
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Reason::ControlCharacters);
    }
    if s.chars().count() > max {
        return Err(Reason::TooLong { max });
    }
    Ok(s)
}

/// An uploaded file's name as kept: the last path component, without
/// control characters, at most 200 characters; `upload.csv` when nothing
/// is left. It is only ever data (shown, and its extension read), but a
/// name such as `../../etc/x` or one with a line break is not kept as sent.
pub fn upload_name(sent: Option<&str>) -> String {
    let base = sent
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let clean = clean.trim();
    if clean.is_empty() || clean == "." || clean == ".." {
        "upload.csv".to_string()
    } else {
        clean.to_string()
    }
}

/// What a URL shown in messages, logs and lists loses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlSecrets {
    /// A database URL: its password (`user:***@`, `password=***`).
    Password,
    /// A bot's URL, whose key may sit anywhere (WeCom `?key=`, DingTalk
    /// `?access_token=`, Feishu the last path segment): the user-info,
    /// every query value, path segments long enough to be a key.
    Credentials,
}

/// `url` with its secrets starred, as `secrets` says.
pub fn redacted_url(url: &str, secrets: UrlSecrets) -> String {
    let all = secrets == UrlSecrets::Credentials;
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (prefix, authority, path) = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            let end = after.find('/').unwrap_or(after.len());
            (&base[..i + 3], &after[..end], &after[end..])
        }
        None => ("", "", base),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) if all => format!("***@{host}"),
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let path = if all {
        path.split('/')
            .map(|segment| match segment.chars().count() {
                n if n >= 16 => format!("{}***", segment.chars().take(4).collect::<String>()),
                _ => segment.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/")
    } else {
        path.to_string()
    };
    let mut out = format!("{prefix}{authority}{path}");
    if let Some(q) = query {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if all || k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_lose_their_secrets() {
        use super::{
            redacted_url,
            UrlSecrets::{Credentials, Password},
        };
        for (url, secrets, shown) in [
            (
                "postgres://kehu:s3cret@127.0.0.1:5432/kehu",
                Password,
                "postgres://kehu:***@127.0.0.1:5432/kehu",
            ),
            (
                "postgres://kehu:p@ss@db/kehu?sslmode=require",
                Password,
                "postgres://kehu:***@db/kehu?sslmode=require",
            ),
            (
                "postgres://kehu@db/kehu",
                Password,
                "postgres://kehu@db/kehu",
            ),
            (
                "postgres://db/kehu?user=kehu&password=s3cret",
                Password,
                "postgres://db/kehu?user=kehu&password=***",
            ),
            (
                "sqlite://kehu.db?mode=rwc",
                Password,
                "sqlite://kehu.db?mode=rwc",
            ),
            ("kehu.db", Password, "kehu.db"),
            (
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7e1b-4ab2",
                Credentials,
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***",
            ),
            (
                "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1",
                Credentials,
                "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=***",
            ),
            (
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f6a8c1e-93d4-4b1a-9c0e-5d7f",
                Credentials,
                "https://open.feishu.cn/open-apis/bot/v2/hook/2f6a***",
            ),
            (
                "https://user:pw@example.com/hook",
                Credentials,
                "https://***@example.com/hook",
            ),
            (
                "http://127.0.0.1:8080/hook",
                Credentials,
                "http://127.0.0.1:8080/hook",
            ),
            ("https://example.com", Credentials, "https://example.com"),
        ] {
            assert_eq!(redacted_url(url, secrets), shown, "{url}");
        }
    }

    #[test]
    fn upload_names_are_data() {
        for (sent, kept) in [
            (Some("客户.csv"), "客户.csv"),
            (Some("../../etc/passwd.csv"), "passwd.csv"),
            (Some("C:\\Users\\王\\导出.xlsx"), "导出.xlsx"),
            (Some("a\r\nX-Injected: 1.csv"), "aX-Injected: 1.csv"),
            (Some("../.."), "upload.csv"),
            (Some("dir/"), "upload.csv"),
            (None, "upload.csv"),
        ] {
            assert_eq!(upload_name(sent), kept, "{sent:?}");
        }
        assert_eq!(upload_name(Some(&"长".repeat(300))).chars().count(), 200);
    }

    use super::*;

    #[test]
    fn cleans_width_and_whitespace() {
        let cases = [
            ("  华东　科技  有限公司 ", "华东 科技 有限公司"),
            ("ＡＢＣ１２３", "ABC123"),
            ("（北京）", "(北京)"),
            ("a\t\n b", "a b"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "input {input:?}");
        }
    }

    #[test]
    fn parse_text_refuses() {
        assert_eq!(parse_text("   ", 10), Err(Reason::Required));
        assert_eq!(
            parse_text("abcdefghijk", 10),
            Err(Reason::TooLong { max: 10 })
        );
        assert_eq!(parse_text("a\u{0007}b", 10), Err(Reason::ControlCharacters));
        assert_eq!(parse_text("<script>", 10), Ok("<script>".into()));
        assert_eq!(parse_optional_text(Some("  "), 5), Ok(None));
    }
}
