//! Keys and scheduled backups. The keyring comes from `KEHU_KEY` (one key,
//! base64) or a key file (`KEHU_KEY_FILE`; by default `kehu.key` beside the
//! SQLite database, else `kehu-data/kehu.key`), made with a fresh random
//! key on first use — never from the database. The weekly job writes an
//! encrypted snapshot (kehu-store `backup`) to the backup directory and
//! keeps the latest few.

use crate::error::ApiError;
use crate::AppState;
use kehu_core::keyring::{Key, Keyring};
use kehu_store::cipher::FieldCipher;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The `job_runs` name of the weekly backup.
pub const BACKUP_JOB: &str = "backup";

/// Where scheduled backups go and how many are kept.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub dir: PathBuf,
    pub keep: usize,
}

impl BackupSettings {
    /// `KEHU_BACKUP_DIR` (`off` turns the weekly backup off; default
    /// `backups/` in the data directory) and `KEHU_BACKUP_KEEP` (default 8).
    pub fn from_env(database_url: &str) -> Result<Option<BackupSettings>, String> {
        let dir = match std::env::var("KEHU_BACKUP_DIR") {
            Ok(v) if v.trim() == "off" => return Ok(None),
            Ok(v) if !v.trim().is_empty() => PathBuf::from(v.trim()),
            _ => data_dir(database_url).join("backups"),
        };
        let keep = match std::env::var("KEHU_BACKUP_KEEP") {
            Ok(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("KEHU_BACKUP_KEEP: a whole number ≥ 1, got {v:?}"))?,
            Err(_) => 8,
        };
        Ok(Some(BackupSettings { dir, keep }))
    }
}

/// The directory of the SQLite database, else `kehu-data`.
pub(crate) fn data_dir(database_url: &str) -> PathBuf {
    kehu_store::backup::sqlite_path(database_url)
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("kehu-data"))
}

/// The key file in use: `KEHU_KEY_FILE`, else `kehu.key` in the data directory.
pub fn key_file(database_url: &str) -> PathBuf {
    match std::env::var("KEHU_KEY_FILE") {
        Ok(p) if !p.trim().is_empty() => PathBuf::from(p.trim()),
        _ => data_dir(database_url).join("kehu.key"),
    }
}

/// The configured keys. With `create`, a missing key file is made with a
/// new random key (readable by its owner only).
pub fn load_keyring(database_url: &str, create: bool) -> Result<Keyring, String> {
    if let Ok(k) = std::env::var("KEHU_KEY") {
        return Key::parse(&k)
            .map(Keyring::new)
            .ok_or_else(|| "KEHU_KEY: not a key (base64 of 32 bytes)".to_string());
    }
    let path = key_file(database_url);
    match std::fs::read_to_string(&path) {
        Ok(text) => Keyring::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let ring = Keyring::new(Key::from_bytes(rand::random()));
            write_key_file(&path, &ring)?;
            tracing::info!(path = %path.display(), "made a new encryption key file");
            Ok(ring)
        }
        Err(e) => Err(format!(
            "cannot read the key file {} ({e}); set KEHU_KEY_FILE or KEHU_KEY",
            path.display()
        )),
    }
}

/// The key file the keys were read from, which a running server re-reads
/// after a rotation (None: the key is `KEHU_KEY`).
pub fn key_source(database_url: &str) -> Option<PathBuf> {
    match std::env::var("KEHU_KEY") {
        Ok(_) => None,
        Err(_) => Some(key_file(database_url)),
    }
}

/// Contacts' personal fields sealed with the configured keys.
pub fn field_cipher(database_url: &str, create: bool) -> Result<FieldCipher, String> {
    Ok(FieldCipher::new(
        &load_keyring(database_url, create)?,
        key_source(database_url),
    ))
}

/// Writes a key file (owner-only on Unix), replacing it atomically.
pub fn write_key_file(path: &Path, ring: &Keyring) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("key-new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::io::Write::write_all(&mut f, ring.to_text().as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What the weekly backup did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupRun {
    pub file: String,
    pub bytes: u64,
    pub key: String,
    /// Older backups deleted to keep the configured number.
    pub removed: Vec<String>,
}

/// The scheduled backup: today's file in the backup directory, then the
/// oldest beyond `keep` removed (only files this job names).
pub async fn run(state: &AppState) -> Result<BackupRun, ApiError> {
    let settings = &state.settings;
    let Some(b) = &settings.backups else {
        return Err(ApiError::Conflict {
            zh: "定期备份已关闭（KEHU_BACKUP_DIR=off）".into(),
            en: "scheduled backups are off (KEHU_BACKUP_DIR=off)".into(),
        });
    };
    let Some(keyring) = &settings.keyring else {
        return Err(ApiError::Conflict {
            zh: "没有配置加密密钥，无法备份".into(),
            en: "no encryption key is configured, so nothing can be backed up".into(),
        });
    };
    std::fs::create_dir_all(&b.dir)
        .map_err(|e| ApiError::Internal(format!("cannot create {}: {e}", b.dir.display())))?;
    let name = format!("kehu-{}.kbak", state.store.today());
    let path = b.dir.join(&name);
    let info = state
        .store
        .backup(&settings.database_url, keyring, &path)
        .await?;
    let mut ours: Vec<String> = std::fs::read_dir(&b.dir)
        .map_err(|e| ApiError::Internal(format!("cannot list {}: {e}", b.dir.display())))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("kehu-") && n.ends_with(".kbak"))
        .collect();
    // kehu-YYYY-MM-DD.kbak sorts by date.
    ours.sort();
    let excess = ours.len().saturating_sub(b.keep);
    let removed: Vec<String> = ours.into_iter().take(excess).collect();
    for r in &removed {
        let _ = std::fs::remove_file(b.dir.join(r));
    }
    state.audit(
        None,
        "backup",
        "database".into(),
        serde_json::json!({"file": path.display().to_string(), "bytes": info.bytes, "key": info.header.key, "schema": info.header.schema, "via": "schedule"}),
    );
    Ok(BackupRun {
        file: path.display().to_string(),
        bytes: info.bytes,
        key: info.header.key,
        removed,
    })
}
