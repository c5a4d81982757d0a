//! Encrypted backups and restores of the whole database.
//!
//! SQLite: `VACUUM INTO` takes a consistent snapshot while the server runs.
//! PostgreSQL: `pg_dump` (plain SQL) does; a restore runs the dump with
//! `psql` in one transaction after dropping the `public` schema, so a failed
//! restore changes nothing. Either way the file is sealed with the
//! keyring's primary key (`kehu_core::keyring`): the header says the
//! backend, the schema version, when, and which key; the body is the
//! snapshot in authenticated chunks. A restore decrypts and checks the
//! whole file before it touches the database.

use crate::db::{decode_n, Exec};
use crate::error::StoreError;
use crate::Store;
use chrono::{DateTime, Utc};
use kehu_core::keyring::{Keyring, Sealer, CHUNK, TAG};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"KEHUBAK1";

/// What a backup file says about itself (stored in clear, authenticated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupHeader {
    pub format: u32,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// The highest migration applied.
    pub schema: i64,
    pub created_at: DateTime<Utc>,
    /// The id of the key that encrypted it (never the key).
    pub key: String,
    /// The chunks' nonce prefix, hex.
    pub nonce: String,
}

/// A backup written: its header and size.
#[derive(Debug, Clone)]
pub struct BackupInfo {
    pub header: BackupHeader,
    pub bytes: u64,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Config(format!("{what} {}: {e}", path.display()))
}

/// The file path of a `sqlite://PATH[?…]` URL.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .map(|p| PathBuf::from(p.split('?').next().unwrap_or(p)))
}

fn backend_name(url: &str) -> Result<&'static str, StoreError> {
    if url.starts_with("sqlite:") {
        Ok("sqlite")
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok("postgres")
    } else {
        Err(StoreError::Config(format!(
            "database URL must start with sqlite:// or postgres://, got {url:?}"
        )))
    }
}

/// A file beside `path` with `suffix` added to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

impl Store {
    /// Writes an encrypted, consistent snapshot of the database at `url`
    /// (this store's) to `dest` (written beside it, then renamed).
    pub async fn backup(
        &self,
        url: &str,
        keyring: &Keyring,
        dest: &Path,
    ) -> Result<BackupInfo, StoreError> {
        let backend = backend_name(url)?;
        let schema = self
            .db
            .clone()
            .fetch_one(
                "SELECT COALESCE(MAX(version), 0) AS n FROM schema_migrations",
                vec![],
                decode_n,
            )
            .await?;
        let prefix: [u8; 7] = rand::random();
        let header = BackupHeader {
            format: 1,
            backend: backend.to_string(),
            schema,
            created_at: Utc::now(),
            key: keyring.primary().id().to_string(),
            nonce: hex::encode(prefix),
        };
        let partial = beside(dest, ".partial");
        let bytes = match backend {
            "sqlite" => {
                let db_path = sqlite_path(url)
                    .ok_or_else(|| StoreError::Config(format!("not a SQLite file URL: {url:?}")))?;
                let snapshot = beside(&db_path, &format!(".snapshot-{}", std::process::id()));
                let _ = std::fs::remove_file(&snapshot);
                self.db
                    .execute_long(
                        "VACUUM INTO $1",
                        crate::args![snapshot.to_string_lossy().to_string()],
                    )
                    .await?;
                let (keyring, header, partial2, snap) = (
                    keyring.clone(),
                    header.clone(),
                    partial.clone(),
                    snapshot.clone(),
                );
                let written = tokio::task::spawn_blocking(move || {
                    let file = std::fs::File::open(&snap)
                        .map_err(|e| io_error("cannot read the snapshot", &snap, e))?;
                    seal_to(&keyring, &header, file, &partial2)
                })
                .await
                .map_err(|e| StoreError::Config(format!("backup task failed: {e}")))?;
                let _ = std::fs::remove_file(&snapshot);
                written?
            }
            _ => {
                let (keyring, header, partial2, url) = (
                    keyring.clone(),
                    header.clone(),
                    partial.clone(),
                    url.to_string(),
                );
                tokio::task::spawn_blocking(move || {
                    let (url, password) = without_password(&url);
                    let mut command = std::process::Command::new("pg_dump");
                    if let Some(p) = password {
                        command.env("PGPASSWORD", p);
                    }
                    let mut child = command
                        .args(["--format=plain", "--no-owner", "--no-privileges", "--dbname"])
                        .arg(&url)
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .map_err(|e| {
                            StoreError::Config(format!(
                                "cannot run pg_dump ({e}): install the PostgreSQL client tools, or back up with pg_dump yourself (README, Backups)"
                            ))
                        })?;
                    let stdout = child.stdout.take().expect("piped stdout");
                    let sealed = seal_to(&keyring, &header, stdout, &partial2);
                    let out = child
                        .wait_with_output()
                        .map_err(|e| StoreError::Config(format!("pg_dump: {e}")))?;
                    if !out.status.success() {
                        let _ = std::fs::remove_file(&partial2);
                        return Err(StoreError::Config(format!(
                            "pg_dump failed: {}",
                            String::from_utf8_lossy(&out.stderr).trim()
                        )));
                    }
                    sealed
                })
                .await
                .map_err(|e| StoreError::Config(format!("backup task failed: {e}")))??
            }
        };
        std::fs::rename(&partial, dest).map_err(|e| io_error("cannot write", dest, e))?;
        Ok(BackupInfo { header, bytes })
    }
}

/// Seals everything `input` yields into `dest`; returns the bytes written.
fn seal_to(
    keyring: &Keyring,
    header: &BackupHeader,
    mut input: impl Read,
    dest: &Path,
) -> Result<u64, StoreError> {
    let header_bytes = serde_json::to_vec(header).map_err(|e| StoreError::Config(e.to_string()))?;
    let prefix: [u8; 7] = hex::decode(&header.nonce)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| StoreError::Config("bad nonce prefix".into()))?;
    let sealer = Sealer::new(keyring.primary(), prefix, &header_bytes);
    let file = std::fs::File::create(dest).map_err(|e| io_error("cannot create", dest, e))?;
    let mut out = std::io::BufWriter::new(file);
    let w = |out: &mut std::io::BufWriter<std::fs::File>, b: &[u8]| {
        out.write_all(b)
            .map_err(|e| io_error("cannot write", dest, e))
    };
    w(&mut out, MAGIC)?;
    w(&mut out, &(header_bytes.len() as u32).to_be_bytes())?;
    w(&mut out, &header_bytes)?;
    let mut written = (MAGIC.len() + 4 + header_bytes.len()) as u64;
    // One chunk read ahead, so the last one is known as last.
    let mut current = read_chunk(&mut input)?;
    let mut index: u32 = 0;
    loop {
        let next = if current.len() == CHUNK {
            read_chunk(&mut input)?
        } else {
            Vec::new()
        };
        let last = next.is_empty();
        let sealed = sealer.seal(index, last, &current);
        w(&mut out, &(sealed.len() as u32).to_be_bytes())?;
        w(&mut out, &sealed)?;
        written += 4 + sealed.len() as u64;
        if last {
            break;
        }
        current = next;
        index = index
            .checked_add(1)
            .ok_or_else(|| StoreError::Config("backup too large".into()))?;
    }
    let file = out
        .into_inner()
        .map_err(|e| StoreError::Config(format!("cannot write {}: {e}", dest.display())))?;
    file.sync_all()
        .map_err(|e| io_error("cannot write", dest, e))?;
    Ok(written)
}

/// Up to one chunk: fewer bytes only at the end of the input.
fn read_chunk(input: &mut impl Read) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    while filled < CHUNK {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(StoreError::Config(format!("reading the snapshot: {e}"))),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn damaged(why: &str) -> StoreError {
    StoreError::Config(format!(
        "the backup file is damaged or not a kehu backup ({why})"
    ))
}

/// Reads a backup's header (no key needed).
pub fn read_header(path: &Path) -> Result<BackupHeader, StoreError> {
    let mut f = std::fs::File::open(path).map_err(|e| io_error("cannot read", path, e))?;
    read_header_from(&mut f).map(|(h, _)| h)
}

fn read_header_from(input: &mut impl Read) -> Result<(BackupHeader, Vec<u8>), StoreError> {
    let mut magic = [0u8; 8];
    input
        .read_exact(&mut magic)
        .map_err(|_| damaged("too short"))?;
    if &magic != MAGIC {
        return Err(damaged("no kehu backup header"));
    }
    let mut len = [0u8; 4];
    input
        .read_exact(&mut len)
        .map_err(|_| damaged("too short"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > 64 * 1024 {
        return Err(damaged("header too long"));
    }
    let mut header_bytes = vec![0u8; len];
    input
        .read_exact(&mut header_bytes)
        .map_err(|_| damaged("too short"))?;
    let header: BackupHeader =
        serde_json::from_slice(&header_bytes).map_err(|_| damaged("unreadable header"))?;
    Ok((header, header_bytes))
}

/// Decrypts `src` into `dest`, checking every chunk; nothing of a damaged
/// file is left behind.
/// A new file only we may read (a decrypted database or dump): made anew,
/// never through a file or link someone left there.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// A PostgreSQL URL without its password, and the password (decoded): the
/// client tools take it from `PGPASSWORD`, so it never shows in the process
/// list.
fn without_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_string(), None);
    };
    (
        format!("{scheme}://{user}@{host}{tail}"),
        Some(percent_decoded(password)),
    )
}

fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn open_backup(keyring: &Keyring, src: &Path, dest: &Path) -> Result<BackupHeader, StoreError> {
    let result = open_into(keyring, src, dest);
    if result.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    result
}

fn open_into(keyring: &Keyring, src: &Path, dest: &Path) -> Result<BackupHeader, StoreError> {
    let file = std::fs::File::open(src).map_err(|e| io_error("cannot read", src, e))?;
    let mut input = std::io::BufReader::new(file);
    let (header, header_bytes) = read_header_from(&mut input)?;
    let key = keyring
        .find(&header.key)
        .map_err(|e| StoreError::Config(format!("cannot decrypt {}: {e}", src.display())))?;
    let prefix: [u8; 7] = hex::decode(&header.nonce)
        .ok()
        .and_then(|p| p.try_into().ok())
        .ok_or_else(|| damaged("bad nonce"))?;
    let sealer = Sealer::new(key, prefix, &header_bytes);
    let out_file = private_file(dest).map_err(|e| io_error("cannot create", dest, e))?;
    let mut out = std::io::BufWriter::new(out_file);
    let mut index: u32 = 0;
    let mut pending = read_sealed(&mut input)?.ok_or_else(|| damaged("no data"))?;
    loop {
        let next = read_sealed(&mut input)?;
        let last = next.is_none();
        let plain = sealer
            .open(index, last, &pending)
            .map_err(|e| StoreError::Config(format!("cannot restore {}: {e}", src.display())))?;
        out.write_all(&plain)
            .map_err(|e| io_error("cannot write", dest, e))?;
        match next {
            None => break,
            Some(n) => pending = n,
        }
        index = index
            .checked_add(1)
            .ok_or_else(|| damaged("too many chunks"))?;
    }
    out.flush().map_err(|e| io_error("cannot write", dest, e))?;
    Ok(header)
}

/// One sealed chunk, or None at the end of the file.
fn read_sealed(input: &mut impl Read) -> Result<Option<Vec<u8>>, StoreError> {
    let mut len = [0u8; 4];
    match input.read(&mut len[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(StoreError::Config(format!("reading the backup: {e}"))),
    }
    input
        .read_exact(&mut len[1..])
        .map_err(|_| damaged("cut short"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > CHUNK + TAG {
        return Err(damaged("chunk too long"));
    }
    let mut buf = vec![0u8; len];
    input
        .read_exact(&mut buf)
        .map_err(|_| damaged("cut short"))?;
    Ok(Some(buf))
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreInfo {
    pub header: BackupHeader,
    /// SQLite: where the database that was replaced was kept.
    pub previous: Option<PathBuf>,
}

/// Replaces the database at `url` with the backup `src`. The file is
/// decrypted and checked first; on SQLite the replaced database is kept
/// beside it (`….before-restore`), on PostgreSQL the restore is one
/// transaction. The server must not be running on the database.
pub async fn restore(url: &str, keyring: &Keyring, src: &Path) -> Result<RestoreInfo, StoreError> {
    let backend = backend_name(url)?;
    let header = read_header(src)?;
    if header.backend != backend {
        return Err(StoreError::Config(format!(
            "{} is a backup of a {} database; restore it into a {} one",
            src.display(),
            header.backend,
            header.backend
        )));
    }
    match backend {
        "sqlite" => {
            let db_path = sqlite_path(url)
                .ok_or_else(|| StoreError::Config(format!("not a SQLite file URL: {url:?}")))?;
            if let Some(dir) = db_path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
            }
            let incoming = beside(&db_path, ".restore-tmp");
            let (k, s, i) = (keyring.clone(), src.to_path_buf(), incoming.clone());
            let header = tokio::task::spawn_blocking(move || open_backup(&k, &s, &i))
                .await
                .map_err(|e| StoreError::Config(format!("restore task failed: {e}")))??;
            if let Err(e) = check_sqlite(&incoming).await {
                let _ = std::fs::remove_file(&incoming);
                return Err(e);
            }
            let previous = if db_path.exists() {
                let kept = beside(&db_path, ".before-restore");
                std::fs::rename(&db_path, &kept)
                    .map_err(|e| io_error("cannot move aside", &db_path, e))?;
                Some(kept)
            } else {
                None
            };
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(beside(&db_path, suffix));
            }
            std::fs::rename(&incoming, &db_path)
                .map_err(|e| io_error("cannot put in place", &db_path, e))?;
            Ok(RestoreInfo { header, previous })
        }
        _ => {
            // The decrypted dump: a name nobody can guess, readable by us alone,
            // and gone when psql has read it.
            let dump = std::env::temp_dir().join(format!(
                "kehu-restore-{}.sql",
                hex::encode(rand::random::<[u8; 12]>())
            ));
            let (k, s, d) = (keyring.clone(), src.to_path_buf(), dump.clone());
            let header = tokio::task::spawn_blocking(move || open_backup(&k, &s, &d))
                .await
                .map_err(|e| StoreError::Config(format!("restore task failed: {e}")))??;
            let url = url.to_string();
            let d = dump.clone();
            let ran = tokio::task::spawn_blocking(move || {
                let (url, password) = without_password(&url);
                let mut command = std::process::Command::new("psql");
                if let Some(p) = password {
                    command.env("PGPASSWORD", p);
                }
                command
                    .args([
                        "--quiet",
                        "--no-psqlrc",
                        "--single-transaction",
                        "-v",
                        "ON_ERROR_STOP=1",
                    ])
                    .args(["-c", "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"])
                    .arg("-f")
                    .arg(&d)
                    .arg("--dbname")
                    .arg(&url)
                    .output()
            })
            .await
            .map_err(|e| StoreError::Config(format!("restore task failed: {e}")))?;
            let _ = std::fs::remove_file(&dump);
            let out = ran.map_err(|e| {
                StoreError::Config(format!(
                    "cannot run psql ({e}): install the PostgreSQL client tools (README, Backups)"
                ))
            })?;
            if !out.status.success() {
                return Err(StoreError::Config(format!(
                    "the restore failed and changed nothing: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            Ok(RestoreInfo {
                header,
                previous: None,
            })
        }
    }
}

/// A decrypted SQLite file that is whole and is a kehu database.
async fn check_sqlite(path: &Path) -> Result<(), StoreError> {
    use sqlx::{ConnectOptions, Connection, Row};
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await?;
    let ok: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    let migrations: i64 = sqlx::query("SELECT COUNT(*) FROM schema_migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(|_| damaged("not a kehu database"))?
        .try_get(0)?;
    conn.close().await?;
    if ok != "ok" || migrations == 0 {
        return Err(damaged("the database inside fails its integrity check"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kehu_core::keyring::Key;

    fn ring(b: u8) -> Keyring {
        Keyring::new(Key::from_bytes([b; 32]))
    }

    #[test]
    fn passwords_leave_the_url_for_the_environment() {
        let table = [
            (
                "postgres://kehu:kehu@127.0.0.1:5432/kehu",
                "postgres://kehu@127.0.0.1:5432/kehu",
                Some("kehu"),
            ),
            (
                "postgres://u:p%40ss%3Aw@db/x?sslmode=require",
                "postgres://u@db/x?sslmode=require",
                Some("p@ss:w"),
            ),
            ("postgresql://u@db/x", "postgresql://u@db/x", None),
            ("postgres://db:5432/x", "postgres://db:5432/x", None),
            ("not a url", "not a url", None),
        ];
        for (url, bare, password) in table {
            let (got, p) = without_password(url);
            assert_eq!((got.as_str(), p.as_deref()), (bare, password), "{url}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn decrypted_files_are_ours_alone_and_made_anew() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("kehu-private-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("x.sql");
        std::fs::write(&path, b"left by someone").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let f = private_file(&path).expect("file");
        let mode = f.metadata().expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read(&path).expect("read"),
            b"",
            "a new file, not the old one"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn header() -> BackupHeader {
        BackupHeader {
            format: 1,
            backend: "sqlite".into(),
            schema: 23,
            created_at: Utc::now(),
            key: ring(1).primary().id().to_string(),
            nonce: hex::encode([3u8; 7]),
        }
    }

    /// Sizes around the chunk boundary: empty, one byte, exactly one chunk,
    /// one chunk and a byte, several chunks.
    #[test]
    fn seal_and_open_round_trip() {
        let dir = crate::testing::TempDir::new("kehu-backup-unit");
        for size in [0usize, 1, CHUNK, CHUNK + 1, 2 * CHUNK + 17] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let sealed = dir.0.join(format!("b{size}"));
            let opened = dir.0.join(format!("o{size}"));
            seal_to(&ring(1), &header(), &data[..], &sealed).expect("seal");
            let raw = std::fs::read(&sealed).expect("read");
            if size > 64 {
                assert!(
                    !raw.windows(64).any(|w| w == &data[..64]),
                    "plaintext leaked"
                );
            }
            open_backup(&ring(1), &sealed, &opened).expect("open");
            assert_eq!(std::fs::read(&opened).expect("read"), data, "size {size}");
        }
    }

    #[test]
    fn damage_and_wrong_keys_are_refused() {
        let dir = crate::testing::TempDir::new("kehu-backup-damage");
        let data = vec![5u8; CHUNK + 100];
        let sealed = dir.0.join("b");
        let out = dir.0.join("o");
        seal_to(&ring(1), &header(), &data[..], &sealed).expect("seal");
        let raw = std::fs::read(&sealed).expect("read");
        let try_open = |bytes: &[u8], keys: &Keyring| {
            let p = dir.0.join("x");
            std::fs::write(&p, bytes).expect("write");
            let r = open_backup(keys, &p, &out);
            assert!(!out.exists() || r.is_ok(), "a failed open leaves nothing");
            r
        };
        assert!(try_open(&raw, &ring(1)).is_ok());
        // Another key: named by id, not found.
        let e = try_open(&raw, &ring(2)).unwrap_err().to_string();
        assert!(e.contains("no key with id"), "{e}");
        // The old key still opens after a rotation.
        let rotated = ring(1).with_primary(Key::from_bytes([9; 32]));
        assert!(try_open(&raw, &rotated).is_ok());
        // A flipped bit in the body, cut short, the last chunk dropped, the header changed.
        let mut flipped = raw.clone();
        let n = flipped.len();
        flipped[n - 40] ^= 1;
        assert!(try_open(&flipped, &ring(1)).is_err());
        assert!(try_open(&raw[..raw.len() - 10], &ring(1)).is_err());
        let first_chunk_end = {
            let hlen = u32::from_be_bytes(raw[8..12].try_into().expect("len")) as usize;
            let start = 12 + hlen;
            let clen = u32::from_be_bytes(raw[start..start + 4].try_into().expect("len")) as usize;
            start + 4 + clen
        };
        assert!(try_open(&raw[..first_chunk_end], &ring(1)).is_err());
        let mut changed = raw.clone();
        let at = changed
            .windows(11)
            .position(|w| w == b"\"schema\":23")
            .expect("schema in header");
        changed[at + 10] = b'4';
        assert!(try_open(&changed, &ring(1)).is_err());
        assert!(try_open(b"SQLite format 3\0", &ring(1)).is_err());
    }
}
