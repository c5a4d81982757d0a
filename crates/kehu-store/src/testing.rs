//! Fresh databases for tests: a new SQLite file or a uniquely named
//! PostgreSQL database per test. Used by this crate's and the server's tests.

use crate::{Backend, Store, StoreError};

/// The PostgreSQL server tests create their databases on. `.ci/run` creates
/// the `kehu` role and database; override with `KEHU_TEST_POSTGRES_URL`.
pub fn postgres_admin_url() -> String {
    std::env::var("KEHU_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://kehu@127.0.0.1:5432/kehu".to_string())
}

/// A database that exists for one test.
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    pg_name: Option<String>,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("{prefix}-{}-{}", std::process::id(), unique()));
        let _ = std::fs::create_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

impl TestDatabase {
    /// Creates an empty, migrated database on `backend`.
    pub async fn new(backend: Backend) -> Result<(TestDatabase, Store), StoreError> {
        let db = match backend {
            Backend::Sqlite => {
                let dir = TempDir::new("kehu-test");
                let url = format!("sqlite://{}/kehu.db", dir.0.display());
                TestDatabase {
                    url,
                    backend,
                    pg_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_admin_url();
                let name = format!("kehu_test_{}", unique());
                let admin = Store::connect(&admin_url).await.map_err(|e| StoreError::Config(format!("cannot reach PostgreSQL at {admin_url} ({e}); run .ci/run's setup or set KEHU_TEST_POSTGRES_URL")))?;
                use crate::db::Exec;
                // concurrent CREATE DATABASE can collide on the template; retry briefly
                let mut attempt = 0;
                loop {
                    match admin
                        .db
                        .clone()
                        .execute(&format!("CREATE DATABASE {name}"), vec![])
                        .await
                    {
                        Ok(_) => break,
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::debug!(error = %e, attempt, "retrying CREATE DATABASE");
                            tokio::time::sleep(std::time::Duration::from_millis(200 * attempt))
                                .await;
                        }
                        Err(e) => return Err(e),
                    }
                }
                admin.db.close().await;
                let base = admin_url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_string())
                    .unwrap_or(admin_url.clone());
                TestDatabase {
                    url: format!("{base}/{name}"),
                    backend,
                    pg_name: Some(name),
                    _dir: None,
                }
            }
        };
        let store = Store::connect(&db.url)
            .await?
            .with_cipher(crate::cipher::FieldCipher::new(&test_keyring(), None));
        store.migrate().await?;
        Ok((db, store))
    }

    /// Drops a PostgreSQL test database (SQLite files go with their directory).
    pub async fn cleanup(self, store: Store) {
        store.db.close().await;
        if let Some(name) = &self.pg_name {
            if let Ok(admin) = Store::connect(&postgres_admin_url()).await {
                use crate::db::Exec;
                let _ = admin
                    .db
                    .clone()
                    .execute(
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                        vec![],
                    )
                    .await;
                admin.db.close().await;
            }
        }
    }
}

/// Generates and bulk-loads the demo data of `cfg` in small chunks (tests).
pub async fn load_demo(
    store: &Store,
    cfg: kehu_core::demo::DemoConfig,
) -> Result<crate::bulk::BulkCounts, StoreError> {
    let mut generator = kehu_core::demo::DemoGenerator::new(cfg);
    let mut loader =
        crate::bulk::BulkLoader::begin(store, generator.today(), generator.total()).await?;
    loop {
        let chunk = generator.next_chunk(64);
        if chunk.is_empty() {
            break;
        }
        loader.load(&chunk).await?;
    }
    loader.finish().await
}

/// The key tests seal personal fields with (fixed, so a test's processes agree).
pub fn test_keyring() -> kehu_core::keyring::Keyring {
    kehu_core::keyring::Keyring::new(kehu_core::keyring::Key::from_bytes([7; 32]))
}

/// [`test_keyring`] as `KEHU_KEY` would give it.
pub fn test_key_env() -> String {
    test_keyring().primary().to_line()
}
