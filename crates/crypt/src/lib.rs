//! Encryption at rest of checkpoint values: AES-256-GCM (RustCrypto's `aes-gcm`; nothing
//! hand-written here) in a small envelope that names the key it was sealed with, so keys
//! rotate. A [`Keyring`] seals with its first key and opens with any of its keys.
//!
//! Envelope: [`MAGIC`] (4 bytes, starting with a zero byte, which no JSON text starts with, so
//! sealed and plain values are told apart by their first byte), the format (1 byte), the key
//! id's length (1 byte) and the key id (UTF-8), a 96-bit nonce drawn from the operating
//! system's CSPRNG for every value, then the ciphertext with its 16-byte tag. The header before
//! the nonce is authenticated too (associated data), so a key id cannot be swapped unnoticed.

use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

/// What every sealed value starts with.
pub const MAGIC: &[u8; 4] = b"\0FGE";
/// The envelope format this crate writes (and the only one it reads).
pub const FORMAT: u8 = 1;
/// An AES-256 key's length.
pub const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    /// A key given to a keyring is unusable (wrong length, bad or duplicate id, no key at all).
    #[error("{0}")]
    InvalidKey(String),
    /// The value was sealed with a key the keyring does not hold.
    #[error("the value is encrypted with key id {key_id:?}, which is not among this saver's keys ({})", quoted(.known))]
    UnknownKey { key_id: String, known: Vec<String> },
    /// Authentication failed: the stored bytes were altered, or the key under that id is not
    /// the one the value was sealed with. GCM cannot tell these apart, and never yields
    /// plaintext for either.
    #[error("the value encrypted with key id {key_id:?} failed authentication: the key given under that id is not the one it was encrypted with, or the stored bytes were altered")]
    Tampered { key_id: String },
    /// Not an envelope this crate wrote (truncated, or an unknown format).
    #[error("not a valid encrypted value: {0}")]
    Malformed(String),
    /// The operating system's random number generator failed; nothing was sealed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
}

fn quoted(ids: &[String]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter().map(|id| format!("{id:?}")).collect::<Vec<_>>().join(", ")
}

pub type Result<T> = std::result::Result<T, CryptError>;

/// Whether `data` is a sealed value (rather than plain text the codec wrote).
pub fn is_sealed(data: &[u8]) -> bool {
    data.starts_with(MAGIC)
}

/// The parts of an envelope: the key id, the authenticated header, the nonce and the
/// ciphertext with its tag.
struct Envelope<'a> {
    key_id: &'a str,
    header: &'a [u8],
    nonce: &'a [u8],
    sealed: &'a [u8],
}

fn parse(data: &[u8]) -> Result<Envelope<'_>> {
    if !is_sealed(data) {
        return Err(CryptError::Malformed("it does not start with the envelope's marker".to_owned()));
    }
    let rest = &data[MAGIC.len()..];
    let (&format, rest) = rest
        .split_first()
        .ok_or_else(|| CryptError::Malformed("it ends after its marker".to_owned()))?;
    if format != FORMAT {
        return Err(CryptError::Malformed(format!("envelope format {format} is not {FORMAT}, the one this version reads")));
    }
    let (&id_len, rest) = rest
        .split_first()
        .ok_or_else(|| CryptError::Malformed("it ends before its key id".to_owned()))?;
    let id_len = usize::from(id_len);
    if id_len == 0 || rest.len() < id_len + NONCE_BYTES + TAG_BYTES {
        return Err(CryptError::Malformed("it is shorter than its header says".to_owned()));
    }
    let key_id = std::str::from_utf8(&rest[..id_len])
        .map_err(|_| CryptError::Malformed("its key id is not UTF-8".to_owned()))?;
    let header_len = MAGIC.len() + 2 + id_len;
    Ok(Envelope {
        key_id,
        header: &data[..header_len],
        nonce: &data[header_len..header_len + NONCE_BYTES],
        sealed: &data[header_len + NONCE_BYTES..],
    })
}

/// The id of the key `data` was sealed with.
pub fn key_id_of(data: &[u8]) -> Result<&str> {
    parse(data).map(|e| e.key_id)
}

/// Keys by id; the first one seals. Its `Debug` names the ids, never the keys.
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("key_ids", &self.key_ids()).finish()
    }
}

impl Keyring {
    /// A keyring of `(key id, 32-byte key)` pairs, newest first: the first seals, all open.
    pub fn new<I, K>(keys: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, K)>,
        K: AsRef<[u8]>,
    {
        let mut ring = Vec::new();
        for (id, key) in keys {
            if id.is_empty() || id.len() > usize::from(u8::MAX) {
                return Err(CryptError::InvalidKey(format!(
                    "a key id must be 1 to 255 bytes of UTF-8, got {} bytes ({id:?})",
                    id.len()
                )));
            }
            if ring.iter().any(|(known, _)| *known == id) {
                return Err(CryptError::InvalidKey(format!("key id {id:?} is given twice")));
            }
            let key = key.as_ref();
            if key.len() != KEY_BYTES {
                return Err(CryptError::InvalidKey(format!(
                    "the key with id {id:?} is {} bytes; AES-256 needs exactly {KEY_BYTES}",
                    key.len()
                )));
            }
            let cipher = Aes256Gcm::new_from_slice(key)
                .map_err(|_| CryptError::InvalidKey(format!("the key with id {id:?} is not a valid AES-256 key")))?;
            ring.push((id, cipher));
        }
        if ring.is_empty() {
            return Err(CryptError::InvalidKey("a keyring needs at least one key".to_owned()));
        }
        Ok(Keyring { keys: ring })
    }

    /// The key ids, newest (the sealing one) first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The id of the key that seals.
    pub fn current(&self) -> &str {
        &self.keys[0].0
    }

    /// `plaintext` sealed with the first key under a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let (id, cipher) = &self.keys[0];
        let mut out = Vec::with_capacity(MAGIC.len() + 2 + id.len() + NONCE_BYTES + plaintext.len() + TAG_BYTES);
        out.extend_from_slice(MAGIC);
        out.push(FORMAT);
        // The length was checked against u8::MAX when the keyring was made.
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        let header_len = out.len();
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| CryptError::Random(e.to_string()))?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &out[..header_len] })
            .map_err(|_| CryptError::InvalidKey(format!("AES-GCM refused to encrypt {} bytes", plaintext.len())))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plaintext of a sealed value, if one of this keyring's keys authenticates it.
    pub fn open(&self, data: &[u8]) -> Result<Vec<u8>> {
        let envelope = parse(data)?;
        let Some((_, cipher)) = self.keys.iter().find(|(id, _)| id == envelope.key_id) else {
            return Err(CryptError::UnknownKey {
                key_id: envelope.key_id.to_owned(),
                known: self.keys.iter().map(|(id, _)| id.clone()).collect(),
            });
        };
        cipher
            .decrypt(Nonce::from_slice(envelope.nonce), Payload { msg: envelope.sealed, aad: envelope.header })
            .map_err(|_| CryptError::Tampered { key_id: envelope.key_id.to_owned() })
    }

    /// Whether `data` is already sealed with the sealing key (a re-encryption skips it).
    pub fn is_current(&self, data: &[u8]) -> bool {
        key_id_of(data).is_ok_and(|id| id == self.current())
    }
}

/// A sealed value as text, for stores that keep text (the native memory saver keeps values as
/// JSON text): the envelope in standard base64, with padding.
pub fn to_text(sealed: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(sealed.len().div_ceil(3) * 4);
    for chunk in sealed.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The envelope [`to_text`] wrote; `Malformed` for anything else.
pub fn from_text(text: &str) -> Result<Vec<u8>> {
    let bad = || CryptError::Malformed("its text is not base64".to_owned());
    let bytes = text.as_bytes();
    if bytes.len() % 4 != 0 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (at, chunk) in bytes.chunks(4).enumerate() {
        let last = at + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return Err(bad());
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return Err(bad()),
            };
            n = n << 6 | u32::from(v);
        }
        n <<= 6 * pad;
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(ids: &[(&str, u8)]) -> Keyring {
        Keyring::new(ids.iter().map(|(id, fill)| ((*id).to_owned(), [*fill; KEY_BYTES]))).unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let keys = ring(&[("k1", 1)]);
        let sealed = keys.seal(b"{\"secret\":\"hunter2\"}").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(key_id_of(&sealed).unwrap(), "k1");
        assert_eq!(keys.open(&sealed).unwrap(), b"{\"secret\":\"hunter2\"}");
        assert_eq!(keys.open(&keys.seal(b"").unwrap()).unwrap(), b"");
    }

    #[test]
    fn every_seal_draws_a_new_nonce() {
        let keys = ring(&[("k1", 1)]);
        let a = keys.seal(b"same").unwrap();
        let b = keys.seal(b"same").unwrap();
        assert_ne!(a, b);
        let header = MAGIC.len() + 2 + 2;
        assert_ne!(a[header..header + NONCE_BYTES], b[header..header + NONCE_BYTES]);
    }

    #[test]
    fn rotation_reads_old_keys_and_seals_with_the_first() {
        let old = ring(&[("2025", 1)]);
        let sealed_old = old.seal(b"[1,2]").unwrap();
        let rotated = ring(&[("2026", 2), ("2025", 1)]);
        assert_eq!(rotated.open(&sealed_old).unwrap(), b"[1,2]");
        assert!(!rotated.is_current(&sealed_old));
        let sealed_new = rotated.seal(b"[1,2]").unwrap();
        assert_eq!(key_id_of(&sealed_new).unwrap(), "2026");
        assert!(rotated.is_current(&sealed_new));
        assert_eq!(
            old.open(&sealed_new),
            Err(CryptError::UnknownKey { key_id: "2026".to_owned(), known: vec!["2025".to_owned()] })
        );
    }

    #[test]
    fn a_wrong_key_under_the_same_id_is_refused_naming_the_id() {
        let sealed = ring(&[("k", 1)]).seal(b"plain").unwrap();
        let err = ring(&[("k", 9)]).open(&sealed).unwrap_err();
        assert_eq!(err, CryptError::Tampered { key_id: "k".to_owned() });
        assert!(err.to_string().contains("\"k\""));
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let keys = ring(&[("k1", 1), ("k2", 2)]);
        let sealed = keys.seal(b"some plaintext value").unwrap();
        for i in 0..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 0x01;
            assert!(keys.open(&altered).is_err(), "byte {i} altered was accepted");
        }
        // The key id is authenticated: relabelling a value with another known id fails.
        let mut relabelled = sealed.clone();
        relabelled[MAGIC.len() + 3] = b'2';
        assert_eq!(keys.open(&relabelled), Err(CryptError::Tampered { key_id: "k2".to_owned() }));
        for len in 0..sealed.len() {
            assert!(keys.open(&sealed[..len]).is_err(), "truncated to {len} bytes was accepted");
        }
    }

    #[test]
    fn plain_json_is_not_sealed() {
        for plain in [&b"{}"[..], b"[1]", b"\"s\"", b"1", b"null", b" true"] {
            assert!(!is_sealed(plain));
            assert!(matches!(ring(&[("k", 1)]).open(plain), Err(CryptError::Malformed(_))));
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        let short = Keyring::new([("k".to_owned(), vec![0u8; 16])]).unwrap_err();
        assert!(short.to_string().contains("16 bytes"));
        let twice = Keyring::new([("k".to_owned(), [0u8; 32]), ("k".to_owned(), [1u8; 32])]).unwrap_err();
        assert!(twice.to_string().contains("twice"));
        assert!(Keyring::new(Vec::<(String, [u8; 32])>::new()).is_err());
        assert!(Keyring::new([(String::new(), [0u8; 32])]).is_err());
        assert!(Keyring::new([("x".repeat(256), [0u8; 32])]).is_err());
        assert!(!format!("{:?}", ring(&[("k", 7)])).contains("7, 7"));
    }

    #[test]
    fn text_round_trips_every_length() {
        let keys = ring(&[("k1", 1)]);
        for len in 0..40 {
            let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let sealed = keys.seal(&plain).unwrap();
            let text = to_text(&sealed);
            assert!(text.bytes().all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)));
            assert_eq!(from_text(&text).unwrap(), sealed);
            assert_eq!(from_text(&to_text(&plain)).unwrap(), plain);
        }
        assert_eq!(to_text(b"foobar"), "Zm9vYmFy");
        assert_eq!(to_text(b"fooba"), "Zm9vYmE=");
        assert_eq!(to_text(b"foob"), "Zm9vYg==");
        for bad in ["Zm9", "Zm9vY===", "Zm=vYmFy", "Zm9v*mFy"] {
            assert!(matches!(from_text(bad), Err(CryptError::Malformed(_))), "{bad}");
        }
    }
}
