//! Encryption keys and sealed streams (AES-256-GCM), without I/O.
//!
//! Keys live in a key file or the configuration, never in the database. A
//! [`Keyring`] holds one or more keys: the first (primary) encrypts, all of
//! them decrypt, so a new key can be put first and the data re-encrypted
//! while the old key still opens what was not yet. A key is named by its
//! id (a hash of the key, not the key).
//!
//! A sealed stream (backups) is a header and chunks: each chunk is
//! encrypted on its own with a nonce made of a random prefix, the chunk's
//! index and a "last" flag, and authenticated together with the header, so
//! reordered, dropped, truncated or altered chunks and an altered header
//! are all detected.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use sha2::{Digest, Sha256};

/// The plaintext bytes of one chunk of a sealed stream.
pub const CHUNK: usize = 1 << 20;
/// The bytes AES-GCM adds to each chunk.
pub const TAG: usize = 16;
const KEY_PREFIX: &str = "kehu-key-v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("line {line} of the key file is not a key (expected kehu-key-v1:BASE64 of 32 bytes)")]
    BadLine { line: usize },
    #[error("the key file holds no key")]
    Empty,
    #[error("no key with id {0}: the data was encrypted with a key that is not configured")]
    UnknownKey(String),
    #[error("the data does not decrypt: it was altered, cut short or encrypted with another key")]
    Damaged,
}

/// One AES-256 key.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; 32],
    id: String,
}

impl std::fmt::Debug for Key {
    /// Never the key itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        let mut h = Sha256::new();
        h.update(b"kehu-key-id");
        h.update(bytes);
        let id = hex::encode(&h.finalize()[..6]);
        Key { bytes, id }
    }

    /// `kehu-key-v1:BASE64` (or the bare base64).
    pub fn parse(text: &str) -> Option<Key> {
        let b64 = text.trim();
        let b64 = b64.strip_prefix(KEY_PREFIX).unwrap_or(b64);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let bytes: [u8; 32] = raw.try_into().ok()?;
        Some(Key::from_bytes(bytes))
    }

    /// The key as a key-file line.
    pub fn to_line(&self) -> String {
        format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(self.bytes)
        )
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.bytes.into())
    }

    /// A keyed hash (HMAC-SHA-256) of `data`, for equality search without
    /// the clear value.
    pub fn hmac(&self, data: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .expect("HMAC takes any key length");
        mac.update(data);
        mac.finalize().into_bytes().into()
    }
}

/// The configured keys, primary first.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    /// A key file: one key per line, primary first; `#` comments and blank
    /// lines ignored.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(Key::parse(line).ok_or(KeyError::BadLine { line: i + 1 })?);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# kehu encryption keys. The first encrypts; the others still decrypt.\n\
             # Keep this file out of the database directory's backups and readable only by kehu.\n",
        );
        for k in &self.keys {
            out.push_str(&k.to_line());
            out.push('\n');
        }
        out
    }

    pub fn primary(&self) -> &Key {
        &self.keys[0]
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    pub fn find(&self, id: &str) -> Result<&Key, KeyError> {
        self.keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_string()))
    }

    /// `new` first, the others after it (a rotation's first step).
    pub fn with_primary(&self, new: Key) -> Keyring {
        let id = new.id.clone();
        let mut keys = vec![new];
        keys.extend(self.keys.iter().filter(|k| k.id != id).cloned());
        Keyring { keys }
    }
}

/// What a sealed stream's chunks are bound to: the key, a random nonce
/// prefix and the header bytes (authenticated with every chunk).
pub struct Sealer<'a> {
    key: &'a Key,
    prefix: [u8; 7],
    header: &'a [u8],
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

impl<'a> Sealer<'a> {
    /// `prefix` must be random and never reused with the same key.
    pub fn new(key: &'a Key, prefix: [u8; 7], header: &'a [u8]) -> Sealer<'a> {
        Sealer {
            key,
            prefix,
            header,
        }
    }

    pub fn seal(&self, index: u32, last: bool, plain: &[u8]) -> Vec<u8> {
        let n = nonce(&self.prefix, index, last);
        self.key
            .cipher()
            .encrypt(
                Nonce::from_slice(&n),
                Payload {
                    msg: plain,
                    aad: self.header,
                },
            )
            .expect("AES-GCM encrypts any chunk under 64 GiB")
    }

    pub fn open(&self, index: u32, last: bool, sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let n = nonce(&self.prefix, index, last);
        self.key
            .cipher()
            .decrypt(
                Nonce::from_slice(&n),
                Payload {
                    msg: sealed,
                    aad: self.header,
                },
            )
            .map_err(|_| KeyError::Damaged)
    }
}

/// How a sealed field value starts: `enc1:KEYID:BASE64URL(nonce ‖ ciphertext)`.
pub const SEALED_PREFIX: &str = "enc1:";

/// The key id a stored value was sealed with; None for a clear value
/// (written before encryption was configured).
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(SEALED_PREFIX)?;
    rest.split_once(':').map(|(id, _)| id)
}

const BYTES_PREFIX: &str = "kehu-enc1:";

/// The key id sealed bytes name; None for clear bytes.
pub fn sealed_bytes_key_id(stored: &[u8]) -> Option<&str> {
    let rest = stored.strip_prefix(BYTES_PREFIX.as_bytes())?;
    let id = rest.get(..12)?;
    (rest.get(12) == Some(&b':')).then(|| std::str::from_utf8(id).ok())?
}

/// One key's sub-keys for fields: AES-256-GCM for the value, HMAC-SHA-256
/// for the blind index. Derived from the key, so a key file holds one line
/// per key and backups, values and indexes never share a key.
struct FieldKey {
    id: String,
    aead: Aes256Gcm,
    index: hmac::Hmac<Sha256>,
    /// Signs the audit log's links (`crate::audit::entry_link`).
    audit: [u8; 32],
}

/// Personal fields sealed one value at a time, and their blind indexes
/// (a keyed hash beside the value, for exact search and duplicate
/// detection without the clear value). The column name is authenticated
/// with the value, so a value moved to another column does not open.
/// Cheap to clone.
#[derive(Clone)]
pub struct FieldKeys {
    keys: std::sync::Arc<Vec<FieldKey>>,
}

impl std::fmt::Debug for FieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "FieldKeys({ids:?})")
    }
}

impl FieldKeys {
    pub fn new(ring: &Keyring) -> FieldKeys {
        use hmac::Mac;
        let keys = ring
            .keys()
            .iter()
            .map(|k| FieldKey {
                id: k.id.clone(),
                aead: Aes256Gcm::new(&k.hmac(b"kehu-field-value-v1").into()),
                index: <hmac::Hmac<Sha256> as Mac>::new_from_slice(&k.hmac(b"kehu-field-index-v1"))
                    .expect("HMAC takes any key length"),
                audit: k.hmac(b"kehu-audit-chain-v1"),
            })
            .collect();
        FieldKeys {
            keys: std::sync::Arc::new(keys),
        }
    }

    /// The id of the key new values are sealed with.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// The key new audit entries are linked under.
    pub fn audit_signing(&self) -> crate::audit::ChainKey<'_> {
        crate::audit::ChainKey {
            id: &self.keys[0].id,
            secret: &self.keys[0].audit,
        }
    }

    /// The audit subkey of key `id`, to check links made under it.
    pub fn audit_key(&self, id: &str) -> Option<[u8; 32]> {
        self.keys.iter().find(|k| k.id == id).map(|k| k.audit)
    }

    /// `nonce ‖ ciphertext` of `plain` under the primary key, `aad`
    /// authenticated with it.
    fn seal_raw(&self, aad: &str, plain: &[u8], nonce: [u8; 12]) -> Vec<u8> {
        let sealed = self.keys[0]
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts anything under 64 GiB");
        let mut raw = Vec::with_capacity(12 + sealed.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&sealed);
        raw
    }

    /// `nonce ‖ ciphertext` opened with the key named `id`.
    fn open_raw(&self, id: &str, aad: &str, raw: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_string()))?;
        if raw.len() < 12 + TAG {
            return Err(KeyError::Damaged);
        }
        key.aead
            .decrypt(
                Nonce::from_slice(&raw[..12]),
                Payload {
                    msg: &raw[12..],
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Damaged)
    }

    /// `plain` sealed with the primary key; `nonce` must be random.
    pub fn seal(&self, column: &str, plain: &str, nonce: [u8; 12]) -> String {
        let raw = self.seal_raw(column, plain.as_bytes(), nonce);
        format!(
            "{SEALED_PREFIX}{}:{}",
            self.primary_id(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    }

    /// A stored value in clear: a sealed one opened, a clear one as it is.
    pub fn open<'a>(
        &self,
        column: &str,
        stored: &'a str,
    ) -> Result<std::borrow::Cow<'a, str>, KeyError> {
        let Some(id) = sealed_key_id(stored) else {
            return Ok(std::borrow::Cow::Borrowed(stored));
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&stored[SEALED_PREFIX.len() + id.len() + 1..])
            .map_err(|_| KeyError::Damaged)?;
        String::from_utf8(self.open_raw(id, column, &raw)?)
            .map(std::borrow::Cow::Owned)
            .map_err(|_| KeyError::Damaged)
    }

    /// `plain` bytes (a whole uploaded file) sealed with the primary key:
    /// `kehu-enc1:KEYID:` then the nonce and the ciphertext, `scope` as the
    /// associated data.
    pub fn seal_bytes(&self, scope: &str, plain: &[u8], nonce: [u8; 12]) -> Vec<u8> {
        let mut out = format!("{BYTES_PREFIX}{}:", self.primary_id()).into_bytes();
        out.extend(self.seal_raw(scope, plain, nonce));
        out
    }

    /// Stored bytes in clear: sealed ones opened, clear ones as they are.
    pub fn open_bytes<'a>(
        &self,
        scope: &str,
        stored: &'a [u8],
    ) -> Result<std::borrow::Cow<'a, [u8]>, KeyError> {
        let Some(id) = sealed_bytes_key_id(stored) else {
            return Ok(std::borrow::Cow::Borrowed(stored));
        };
        self.open_raw(id, scope, &stored[BYTES_PREFIX.len() + id.len() + 1..])
            .map(std::borrow::Cow::Owned)
    }

    fn index_with(key: &FieldKey, column: &str, plain: &str) -> String {
        use hmac::Mac;
        let mut mac = key.index.clone();
        mac.update(column.as_bytes());
        mac.update(&[0]);
        mac.update(plain.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The blind index of `plain` in `column` under the primary key.
    pub fn index(&self, column: &str, plain: &str) -> String {
        Self::index_with(&self.keys[0], column, plain)
    }

    /// The blind index under every key: what a lookup matches while a
    /// rotation is under way.
    pub fn indexes(&self, column: &str, plain: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| Self::index_with(k, column, plain))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes([b; 32])
    }

    #[test]
    fn key_file_round_trip_and_errors() {
        let ring = Keyring::new(key(1)).with_primary(key(2));
        assert_eq!(ring.primary().id(), key(2).id());
        let text = ring.to_text();
        let back = Keyring::parse(&text).expect("parse");
        let ids: Vec<&str> = back.keys().iter().map(Key::id).collect();
        assert_eq!(ids, [key(2).id(), key(1).id()]);
        assert!(!text.contains(key(1).id()), "ids are not in the file");
        assert_eq!(
            Keyring::parse("# nothing\n\n").unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Keyring::parse(&format!("{}\nnot-a-key\n", key(1).to_line())).unwrap_err(),
            KeyError::BadLine { line: 2 }
        );
        // 31 bytes is not an AES-256 key.
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 31]);
        assert!(Key::parse(&short).is_none());
        assert!(format!("{:?}", key(3)).starts_with("Key("));
        assert!(ring.find("000000000000").is_err());
    }

    #[test]
    fn chunks_open_only_as_sealed() {
        let k = key(7);
        let header = b"header";
        let s = Sealer::new(&k, [9; 7], header);
        let a = s.seal(0, false, b"first");
        let b = s.seal(1, true, b"second");
        assert_eq!(s.open(0, false, &a).expect("open"), b"first");
        assert_eq!(s.open(1, true, &b).expect("open"), b"second");
        // Reordered, not last when it was, altered, another header, another key.
        assert!(s.open(1, true, &a).is_err());
        assert!(s.open(1, false, &b).is_err());
        let mut bad = a.clone();
        bad[0] ^= 1;
        assert!(s.open(0, false, &bad).is_err());
        assert!(Sealer::new(&k, [9; 7], b"other")
            .open(0, false, &a)
            .is_err());
        assert!(Sealer::new(&key(8), [9; 7], header)
            .open(0, false, &a)
            .is_err());
        assert_eq!(a.len(), 5 + TAG);
    }

    #[test]
    fn field_values_seal_open_and_index() {
        let one = FieldKeys::new(&Keyring::new(key(1)));
        let a = one.seal("contacts.mobile", "13812345678", [1; 12]);
        let b = one.seal("contacts.mobile", "13812345678", [2; 12]);
        assert!(a.starts_with(SEALED_PREFIX) && !a.contains("138"));
        assert_ne!(a, b, "a random nonce: equal values do not look equal");
        assert_eq!(sealed_key_id(&a), Some(key(1).id()));
        assert_eq!(one.open("contacts.mobile", &a).unwrap(), "13812345678");
        // A clear value (before encryption) reads as it is.
        assert_eq!(
            one.open("contacts.mobile", "13812345678").unwrap(),
            "13812345678"
        );
        assert_eq!(sealed_key_id("13812345678"), None);
        // Another column, an altered byte, a cut value, another key: refused.
        assert_eq!(one.open("contacts.email", &a), Err(KeyError::Damaged));
        let mut bad = a.clone().into_bytes();
        let last = bad.len() - 1;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(one.open("contacts.mobile", &bad), Err(KeyError::Damaged));
        assert_eq!(
            one.open("contacts.mobile", &a[..a.len() - 20]),
            Err(KeyError::Damaged)
        );
        let other = FieldKeys::new(&Keyring::new(key(2)));
        assert_eq!(
            other.open("contacts.mobile", &a),
            Err(KeyError::UnknownKey(key(1).id().to_string()))
        );
        // After a rotation both keys open; new values use the new one.
        let both = FieldKeys::new(&Keyring::new(key(1)).with_primary(key(2)));
        assert_eq!(both.open("contacts.mobile", &a).unwrap(), "13812345678");
        assert_eq!(both.primary_id(), key(2).id());
        // Blind indexes: equal values equal, per column, per key; the
        // rotation's lookups match both keys' indexes.
        let i = one.index("contacts.mobile", "13812345678");
        assert_eq!(i, one.index("contacts.mobile", "13812345678"));
        assert_eq!(i.len(), 32);
        assert_ne!(i, one.index("contacts.email", "13812345678"));
        assert_ne!(i, one.index("contacts.mobile", "13812345679"));
        assert_eq!(both.indexes("contacts.mobile", "13812345678")[1], i);
        assert_ne!(both.index("contacts.mobile", "13812345678"), i);
    }

    #[test]
    fn files_seal_and_open_whole() {
        let one = FieldKeys::new(&Keyring::new(key(1)));
        let file = "客户名称,手机\n星河,13812345678\n".as_bytes();
        let sealed = one.seal_bytes("import_files", file, [3; 12]);
        assert!(!sealed.windows(11).any(|w| w == b"13812345678"));
        assert_eq!(sealed_bytes_key_id(&sealed), Some(key(1).id()));
        assert_eq!(one.open_bytes("import_files", &sealed).unwrap(), file);
        assert_eq!(
            one.open_bytes("import_files", file).unwrap(),
            file,
            "clear bytes as they are"
        );
        assert_eq!(one.open_bytes("other", &sealed), Err(KeyError::Damaged));
        let mut bad = sealed.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(one.open_bytes("import_files", &bad), Err(KeyError::Damaged));
        assert!(FieldKeys::new(&Keyring::new(key(2)))
            .open_bytes("import_files", &sealed)
            .is_err());
    }

    #[test]
    fn hmac_is_keyed() {
        assert_eq!(key(1).hmac(b"13812345678"), key(1).hmac(b"13812345678"));
        assert_ne!(key(1).hmac(b"13812345678"), key(2).hmac(b"13812345678"));
    }
}
