use kehu_core::ValidationErrors;

/// Everything the store can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// Optimistic concurrency: the record changed since `expected` was read.
    #[error("version conflict: expected {expected}, current {current}")]
    VersionConflict { expected: i64, current: i64 },
    /// Domain validation failed (including unique values already taken).
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationErrors),
    #[error("configuration: {0}")]
    Config(String),
    /// An encrypted field that does not open (no key, unknown key, altered).
    #[error("encrypted field: {0}")]
    Key(#[from] kehu_core::keyring::KeyError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// The name of the unique constraint a write violated, if that is what failed.
    pub fn unique_violation(&self) -> Option<String> {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation() => Some(
                e.constraint()
                    .map(str::to_string)
                    .unwrap_or_else(|| e.message().to_string()),
            ),
            _ => None,
        }
    }
}
