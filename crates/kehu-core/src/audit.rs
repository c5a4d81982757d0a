//! The audit log's tamper evidence: every entry carries the link of the
//! entry before it, so editing or deleting one breaks the chain from there
//! on. A link is keyed — an HMAC-SHA-256 under a key kept outside the
//! database (`m1:KEYID:HEX`) — so someone who can write the database but
//! not read the key file cannot edit an entry and recompute the links
//! after it. Entries written without a key (before keyed links existed, or
//! by a process with no key) carry a plain SHA-256 (`HEX`); once a keyed
//! entry appears, an unkeyed one after it is a break. What is hashed is
//! fixed here, so the writer and `kehu audit verify` agree byte for byte.

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

/// What is hashed of `r` chained after `prev`: each field on its own line,
/// the detail as compact JSON with sorted keys (serde_json's map): one
/// encoding, whatever the database.
fn encoding(prev: &str, r: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::new();
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
        out.extend_from_slice(part.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The unkeyed link of `r` chained after `prev` (hex SHA-256).
pub fn entry_hash(prev: &str, r: &AuditRecord) -> String {
    hex::encode(Sha256::digest(encoding(prev, r)))
}

/// The start of a keyed link.
pub const KEYED: &str = "m1:";

/// A key that signs the chain: its id (in the link) and its audit subkey.
#[derive(Clone, Copy)]
pub struct ChainKey<'a> {
    pub id: &'a str,
    pub secret: &'a [u8; 32],
}

/// The link of `r` chained after `prev`: keyed under `key` when there is
/// one, else the plain hash.
pub fn entry_link(key: Option<ChainKey<'_>>, prev: &str, r: &AuditRecord) -> String {
    use hmac::Mac;
    match key {
        None => entry_hash(prev, r),
        Some(k) => {
            let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(k.secret)
                .expect("HMAC takes any key length");
            mac.update(&encoding(prev, r));
            format!(
                "{KEYED}{}:{}",
                k.id,
                hex::encode(mac.finalize().into_bytes())
            )
        }
    }
}

/// How far a chain has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The last entry checked (0 before the first).
    pub pos: i64,
    /// Its link ([`GENESIS`] before the first).
    pub link: String,
    /// The first keyed entry, if any was met.
    pub keyed_from: Option<i64>,
}

impl ChainHead {
    pub fn start() -> ChainHead {
        ChainHead {
            pos: 0,
            link: GENESIS.to_string(),
            keyed_from: None,
        }
    }
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
    #[error("entry {pos} is not signed although entries before it are: the chain was rewritten without the key")]
    Unkeyed { pos: i64 },
    #[error(
        "entry {pos} is signed with key {key}, which is not in the key file: it cannot be checked"
    )]
    UnknownKey { pos: i64, key: String },
    #[error(
        "the log was cut short: it ends at entry {found}, but entry {expected} was seen before"
    )]
    CutShort { expected: i64, found: i64 },
    #[error("entry {pos} is not the one seen before: the chain was rewritten")]
    NotAsSeen { pos: i64 },
}

/// Checks entries in position order, continuing after `last`
/// ([`ChainHead::start`] at the beginning); `keys` finds a signing key's
/// audit subkey by id. Returns the new head.
pub fn verify<'a>(
    mut last: ChainHead,
    entries: impl IntoIterator<Item = (&'a AuditRecord, &'a str, &'a str)>,
    keys: &dyn Fn(&str) -> Option<[u8; 32]>,
) -> Result<ChainHead, ChainBreak> {
    for (r, prev, link) in entries {
        if r.pos != last.pos + 1 {
            return Err(ChainBreak::Missing {
                expected: last.pos + 1,
                found: r.pos,
            });
        }
        if prev != last.link {
            return Err(ChainBreak::Unlinked { pos: r.pos });
        }
        let expected = match link.strip_prefix(KEYED) {
            Some(rest) => {
                let (id, _) = rest
                    .split_once(':')
                    .ok_or(ChainBreak::Altered { pos: r.pos })?;
                let secret = keys(id).ok_or_else(|| ChainBreak::UnknownKey {
                    pos: r.pos,
                    key: id.to_string(),
                })?;
                last.keyed_from.get_or_insert(r.pos);
                entry_link(
                    Some(ChainKey {
                        id,
                        secret: &secret,
                    }),
                    prev,
                    r,
                )
            }
            None if last.keyed_from.is_some() => return Err(ChainBreak::Unkeyed { pos: r.pos }),
            None => entry_hash(prev, r),
        };
        if expected != link {
            return Err(ChainBreak::Altered { pos: r.pos });
        }
        last.pos = r.pos;
        last.link = link.to_string();
    }
    Ok(last)
}

/// A head noted down earlier (`POS:LINK`), to find a log cut short or
/// rewritten since: the chain checks out on its own either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub pos: i64,
    pub link: String,
}

impl Anchor {
    /// `POS:LINK` as `kehu audit verify` prints it.
    pub fn parse(text: &str) -> Option<Anchor> {
        let (pos, link) = text.trim().split_once(':')?;
        let pos: i64 = pos.parse().ok().filter(|p| *p > 0)?;
        (!link.is_empty()).then(|| Anchor {
            pos,
            link: link.to_string(),
        })
    }

    /// Whether the log still holds this entry as it was: `at` is the link
    /// stored at position `pos` now (None: no such entry), `len` the log's
    /// length.
    pub fn check(&self, len: i64, at: Option<&str>) -> Result<(), ChainBreak> {
        match at {
            None => Err(ChainBreak::CutShort {
                expected: self.pos,
                found: len,
            }),
            Some(l) if l != self.link => Err(ChainBreak::NotAsSeen { pos: self.pos }),
            Some(_) => Ok(()),
        }
    }
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pos, self.link)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: [u8; 32] = [7; 32];
    const KEY: ChainKey<'static> = ChainKey {
        id: "a1b2c3",
        secret: &SECRET,
    };

    fn record(pos: i64) -> AuditRecord {
        AuditRecord {
            pos,
            at: format!("2026-12-02T08:00:0{pos}.000000Z"),
            actor_id: Some(7),
            action: "customer.update".into(),
            target: format!("customer:{pos}"),
            detail: json!({"changed": {"industry": ["制造业", "IT服务"]}}),
            client: Some("127.0.0.1".into()),
        }
    }

    /// Entries 1..=n, those from `keyed_from` on linked under `key`.
    fn chain(n: i64, key: ChainKey<'_>, keyed_from: i64) -> Vec<(AuditRecord, String, String)> {
        relink(
            &(1..=n)
                .map(|pos| (record(pos), String::new(), String::new()))
                .collect::<Vec<_>>(),
            1,
            Some(key),
            keyed_from,
        )
    }

    /// The links recomputed from entry `from` on (as someone editing the
    /// table would), under `key` from `keyed_from` on.
    fn relink(
        entries: &[(AuditRecord, String, String)],
        from: usize,
        key: Option<ChainKey<'_>>,
        keyed_from: i64,
    ) -> Vec<(AuditRecord, String, String)> {
        let mut out = entries.to_vec();
        let mut prev = if from > 1 {
            out[from - 2].2.clone()
        } else {
            GENESIS.to_string()
        };
        for e in out.iter_mut().skip(from - 1) {
            let k = key.filter(|_| e.0.pos >= keyed_from);
            e.1 = prev.clone();
            e.2 = entry_link(k, &prev, &e.0);
            prev = e.2.clone();
        }
        out
    }

    fn check(entries: &[(AuditRecord, String, String)]) -> Result<ChainHead, ChainBreak> {
        verify(
            ChainHead::start(),
            entries.iter().map(|(r, p, h)| (r, p.as_str(), h.as_str())),
            &|id| (id == KEY.id).then_some(SECRET),
        )
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_or_deletion_is_found() {
        let good = chain(5, KEY, 1);
        let head = check(&good).expect("intact");
        assert_eq!((head.pos, head.keyed_from), (5, Some(1)));
        assert!(head.link.starts_with("m1:a1b2c3:"), "{}", head.link);

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

        // Relinking an edited entry alone does not help: the next one points at the old link.
        let mut rehashed = good.clone();
        rehashed[2].0.actor_id = Some(1);
        rehashed[2].2 = entry_link(Some(KEY), &rehashed[2].1, &rehashed[2].0);
        assert_eq!(check(&rehashed), Err(ChainBreak::Unlinked { pos: 4 }));
    }

    #[test]
    fn relinking_the_rest_of_the_chain_needs_the_key() {
        let mut edited = chain(5, KEY, 1);
        edited[2].0.actor_id = Some(1);
        // Without the key: plain hashes after signed entries.
        assert_eq!(
            check(&relink(&edited, 3, None, 1)),
            Err(ChainBreak::Unkeyed { pos: 3 })
        );
        // With a key of one's own under the same id: the links do not match.
        let forged = ChainKey {
            id: KEY.id,
            secret: &[9; 32],
        };
        assert_eq!(
            check(&relink(&edited, 3, Some(forged), 1)),
            Err(ChainBreak::Altered { pos: 3 })
        );
        // Under a key the verifier does not hold: it says so.
        let unknown = ChainKey {
            id: "ffffff",
            secret: &[9; 32],
        };
        assert_eq!(
            check(&relink(&edited, 3, Some(unknown), 1)),
            Err(ChainBreak::UnknownKey {
                pos: 3,
                key: "ffffff".into()
            })
        );
        // Only the key's holder can: that is what the key protects.
        assert!(check(&relink(&edited, 3, Some(KEY), 1)).is_ok());
    }

    #[test]
    fn entries_before_signing_began_stay_valid() {
        let mixed = chain(5, KEY, 3);
        assert!(!mixed[1].2.starts_with(KEYED));
        let head = check(&mixed).expect("intact");
        assert_eq!((head.pos, head.keyed_from), (5, Some(3)));
        let mut edited = mixed.clone();
        edited[0].0.target = "customer:99".into();
        assert_eq!(check(&edited), Err(ChainBreak::Altered { pos: 1 }));
    }

    #[test]
    fn an_anchor_noted_earlier_finds_a_log_cut_short_or_rewritten() {
        let good = chain(5, KEY, 1);
        let noted = Anchor::parse(&format!("4:{}", good[3].2)).expect("anchor");
        assert_eq!(noted.to_string(), format!("4:{}", good[3].2));
        assert_eq!(noted.check(5, Some(&good[3].2)), Ok(()));
        assert_eq!(
            noted.check(3, None),
            Err(ChainBreak::CutShort {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(
            noted.check(5, Some("m1:a1b2c3:00")),
            Err(ChainBreak::NotAsSeen { pos: 4 })
        );
        for bad in ["", "4", "0:abc", "x:abc", "4:"] {
            assert_eq!(Anchor::parse(bad), None, "{bad:?}");
        }
    }
}
