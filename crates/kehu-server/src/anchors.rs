//! The audit log's anchors, published outside the database every day. The
//! chain shows any edited or missing entry on its own, but not a log cut
//! short at its end: that needs a head noted down elsewhere (`POS:LINK`).
//! The daily job verifies the whole chain against the last anchor it
//! wrote, then appends today's to a file outside the database
//! (`KEHU_AUDIT_ANCHORS`) and sends it to everyone who reads the audit log
//! (in-app, and by e-mail and webhook where configured) — so someone who
//! can change the database cannot also change what was noted. A break is
//! sent to them instead, and the job fails with it.

use crate::error::ApiError;
use crate::AppState;
use kehu_core::audit::Anchor;
use kehu_core::role::Permission;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The `job_runs` name of the daily anchor.
pub const ANCHOR_JOB: &str = "audit_anchor";

/// The anchors file: `KEHU_AUDIT_ANCHORS` (`off`: none is written; the
/// anchors still go to the auditors), else `audit-anchors.txt` in the data
/// directory.
pub fn file_from_env(database_url: &str) -> Option<PathBuf> {
    match std::env::var("KEHU_AUDIT_ANCHORS") {
        Ok(v) if v.trim() == "off" => None,
        Ok(v) if !v.trim().is_empty() => Some(PathBuf::from(v.trim())),
        _ => Some(crate::backups::data_dir(database_url).join("audit-anchors.txt")),
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnchorRun {
    pub entries: i64,
    /// Today's anchor, `POS:LINK`.
    pub anchor: String,
    /// The earlier anchor the log was checked against (the file's last).
    pub checked_against: Option<String>,
    /// Where it was appended.
    pub file: Option<String>,
    /// Users sent it.
    pub sent_to: usize,
}

/// The last anchor in the file (None: no file yet, or no line).
pub fn last_anchor(path: &Path) -> Result<Option<Anchor>, ApiError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, &e)),
    };
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(None);
    };
    // `TIME POS:LINK`: the anchor is the last word.
    let word = line.split_whitespace().last().unwrap_or_default();
    Anchor::parse(word).map(Some).ok_or_else(|| {
        ApiError::Internal(format!(
            "{}: the last line is not an anchor (TIME POS:LINK): {line:?}",
            path.display()
        ))
    })
}

fn file_error(path: &Path, e: &std::io::Error) -> ApiError {
    ApiError::Internal(format!("audit anchors {}: {e}", path.display()))
}

/// The roles that read the audit log: whom anchors and breaks go to.
async fn auditor_roles(state: &AppState) -> Result<Vec<String>, ApiError> {
    Ok(state
        .store
        .roles()
        .await?
        .into_iter()
        .filter(|r| r.grants.has(Permission::AuditRead))
        .map(|r| r.key)
        .collect())
}

/// The daily run: verify, append, send.
pub async fn run(state: &AppState) -> Result<AnchorRun, ApiError> {
    state.auditor.flush().await;
    let file = state.settings.audit_anchors.as_deref();
    let previous = match file {
        Some(path) => last_anchor(path)?,
        None => None,
    };
    let roles = auditor_roles(state).await?;
    let verified = match state.store.verify_audit(previous.as_ref()).await? {
        Ok(v) => v,
        Err(broken) => {
            let (zh, en) = (
                format!("审计日志校验失败：{broken}。请立即核查数据库，最近一次外发的锚点在锚点文件和之前的通知里。"),
                format!("The audit log does not verify: {broken}. Check the database now; the last anchor sent out is in the anchors file and the earlier notifications."),
            );
            state
                .store
                .notify_roles(&roles, "audit_broken", &zh, &en)
                .await?;
            return Err(ApiError::Internal(format!(
                "the audit log does not verify: {broken}"
            )));
        }
    };
    let anchor = format!("{}:{}", verified.entries, verified.last_hash);
    if verified.entries == 0 {
        return Ok(AnchorRun {
            entries: 0,
            anchor: String::new(),
            checked_against: None,
            file: None,
            sent_to: 0,
        });
    }
    if let Some(path) = file {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| file_error(path, &e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| file_error(path, &e))?;
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
        writeln!(f, "{now} {anchor}")
            .and_then(|()| f.sync_all())
            .map_err(|e| file_error(path, &e))?;
    }
    let zh = format!(
        "今日审计日志锚点：{anchor}（共 {} 条，校验通过）。请保存在数据库之外；日后用 kehu audit verify --anchor {anchor} 或审计页面的“锚点”核对，日志被截短或改写即可发现。",
        verified.entries
    );
    let en = format!(
        "Today's audit log anchor: {anchor} ({} entries, verified). Keep it outside the database; later, kehu audit verify --anchor {anchor} (or the anchor field of the audit page) shows a log cut short or rewritten since.",
        verified.entries
    );
    let sent_to = state
        .store
        .notify_roles(&roles, "audit_anchor", &zh, &en)
        .await?;
    Ok(AnchorRun {
        entries: verified.entries,
        anchor,
        checked_against: previous.map(|a| format!("{}:{}", a.pos, a.link)),
        file: file.map(|p| p.display().to_string()),
        sent_to,
    })
}
