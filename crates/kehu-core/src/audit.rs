//! The audit log's tamper evidence: every entry carries the hash of the
//! entry before it, so editing or deleting one breaks the chain from there
//! on. What is hashed is fixed here, so the writer and `kehu audit verify`
//! agree byte for byte.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One entry as chained: its position and every field that is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// 1, 2, 3, … without gaps.
    pub pos: i64,
    /// UTC, microseconds: `2026-12-02T08:49:08.123456Z` (what both databases keep).
    pub at: String,
    pub actor_id: Option<i64>,
    /// `login`, `login_failed`, `customer.update`, `export`, …
    pub action: String,
    /// What it was done to: `customer:12`, `import:3`, `user:alice`, …
    pub target: String,
    /// What changed (personal data masked, never credentials).
    pub detail: Value,
    /// The client's address.
    pub client: Option<String>,
}

/// The hash of `r` chained after `prev` (hex SHA-256).
pub fn entry_hash(prev: &str, r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    // Each field on its own line, the detail as compact JSON with sorted
    // keys (serde_json's map): one encoding, whatever the database.
    for part in [
        prev.to_string(),
        r.pos.to_string(),
        r.at.clone(),
        r.actor_id.map(|a| a.to_string()).unwrap_or_default(),
        r.action.clone(),
        r.target.clone(),
        r.detail.to_string(),
        r.client.clone().unwrap_or_default(),
    ] {
        h.update(part.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// Where a chain stops holding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {expected} is missing (the next one found is {found}): deleted")]
    Missing { expected: i64, found: i64 },
    #[error("entry {pos} does not follow entry {}: the chain was rewritten", pos - 1)]
    Unlinked { pos: i64 },
    #[error("entry {pos} was changed after it was written")]
    Altered { pos: i64 },
}

/// Checks entries in position order, continuing after `(last_pos,
/// last_hash)` (0 and [`GENESIS`] at the start); returns the new last.
pub fn verify<'a>(
    mut last: (i64, String),
    entries: impl IntoIterator<Item = (&'a AuditRecord, &'a str, &'a str)>,
) -> Result<(i64, String), ChainBreak> {
    for (r, prev, hash) in entries {
        if r.pos != last.0 + 1 {
            return Err(ChainBreak::Missing {
                expected: last.0 + 1,
                found: r.pos,
            });
        }
        if prev != last.1 {
            return Err(ChainBreak::Unlinked { pos: r.pos });
        }
        if entry_hash(prev, r) != hash {
            return Err(ChainBreak::Altered { pos: r.pos });
        }
        last = (r.pos, hash.to_string());
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(n: i64) -> Vec<(AuditRecord, String, String)> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|pos| {
                let r = AuditRecord {
                    pos,
                    at: format!("2026-12-02T08:00:0{pos}.000000Z"),
                    actor_id: Some(7),
                    action: "customer.update".into(),
                    target: format!("customer:{pos}"),
                    detail: json!({"changed": {"industry": ["制造业", "IT服务"]}}),
                    client: Some("127.0.0.1".into()),
                };
                let hash = entry_hash(&prev, &r);
                let out = (r, prev.clone(), hash.clone());
                prev = hash;
                out
            })
            .collect()
    }

    fn check(entries: &[(AuditRecord, String, String)]) -> Result<(i64, String), ChainBreak> {
        verify(
            (0, GENESIS.to_string()),
            entries.iter().map(|(r, p, h)| (r, p.as_str(), h.as_str())),
        )
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_or_deletion_is_found() {
        let good = chain(5);
        assert_eq!(check(&good).expect("intact").0, 5);

        let mut edited = good.clone();
        edited[2].0.detail = json!({"changed": {"industry": ["制造业", "金融"]}});
        assert_eq!(check(&edited), Err(ChainBreak::Altered { pos: 3 }));

        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(
            check(&deleted),
            Err(ChainBreak::Missing {
                expected: 2,
                found: 3
            })
        );

        // Deleting one and renumbering the rest: the links no longer hold.
        let mut renumbered = good.clone();
        renumbered.remove(1);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.0.pos = i as i64 + 1;
        }
        assert_eq!(check(&renumbered), Err(ChainBreak::Unlinked { pos: 2 }));

        // Rehashing an edited entry does not help: the next one points at the old hash.
        let mut rehashed = good.clone();
        rehashed[2].0.actor_id = Some(1);
        rehashed[2].2 = entry_hash(&rehashed[2].1, &rehashed[2].0);
        assert_eq!(check(&rehashed), Err(ChainBreak::Unlinked { pos: 4 }));
    }
}
