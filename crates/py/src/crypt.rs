//! The Python face of `ferrograph-crypt`: `_core.Keyring`, which seals and opens stored values
//! (AES-256-GCM, see that crate). `ferrograph.checkpointers.Encryption` wraps it; its errors
//! become `ferrograph.errors` classes here, once.

use std::borrow::Cow;
use std::sync::Arc;

use ferrograph_checkpoint::{CheckpointMetadata, RawJson};
use ferrograph_crypt::{CryptError, Keyring};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

use crate::codec::TAG;
use crate::errors::new_error;

fn crypt_error(py: Python<'_>, err: CryptError) -> PyErr {
    match err {
        CryptError::InvalidKey(m) => PyValueError::new_err(m),
        e @ CryptError::UnknownKey { .. } => new_error(py, "EncryptionKeyError", e.to_string()),
        e @ (CryptError::Tampered { .. } | CryptError::Malformed(_)) => new_error(py, "DecryptionError", e.to_string()),
        e @ CryptError::Random(_) => new_error(py, "EncryptionError", e.to_string()),
    }
}

/// The bytes of a stored value as psycopg and sqlite3 hand them over (bytes, bytearray or a
/// memoryview of bytea).
fn data_of<'a>(data: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = data.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    if data.is_instance_of::<pyo3::types::PyMemoryView>() {
        return Ok(Cow::Owned(data.call_method0("tobytes")?.cast_into::<PyBytes>()?.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "expected bytes, not {}",
        data.get_type().name().map(|n| n.to_string()).unwrap_or_default()
    )))
}

/// AES-256-GCM keys by id, newest first: the first seals, every one opens.
#[pyclass(frozen, module = "ferrograph._core", name = "Keyring")]
pub struct PyKeyring {
    inner: Arc<Keyring>,
}

impl PyKeyring {
    pub(crate) fn keyring(&self) -> &Arc<Keyring> {
        &self.inner
    }
}

#[pymethods]
impl PyKeyring {
    /// `keys`: (key id, 32-byte key) pairs, newest first.
    #[new]
    fn new(keys: Vec<(String, Vec<u8>)>) -> PyResult<Self> {
        Keyring::new(keys).map(|inner| PyKeyring { inner: Arc::new(inner) }).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// The key ids, the sealing one first.
    #[getter]
    fn key_ids(&self) -> Vec<String> {
        self.inner.key_ids().into_iter().map(str::to_owned).collect()
    }

    /// `data` sealed with the first key under a fresh random nonce.
    fn seal<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let data = data_of(data)?;
        let inner = &self.inner;
        let sealed = py.detach(|| inner.seal(&data)).map_err(|e| crypt_error(py, e))?;
        Ok(PyBytes::new(py, &sealed))
    }

    /// The plaintext of a sealed value; EncryptionKeyError naming its key id when no key of
    /// this keyring has that id, DecryptionError when it does not authenticate.
    fn open<'py>(&self, py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let data = data_of(data)?;
        let inner = &self.inner;
        let plain = py.detach(|| inner.open(&data)).map_err(|e| crypt_error(py, e))?;
        Ok(PyBytes::new(py, &plain))
    }

    /// Whether `data` is sealed with the first key already.
    fn is_current(&self, data: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.is_current(&data_of(data)?))
    }

    fn __repr__(&self) -> String {
        format!("Keyring(key_ids={:?})", self.inner.key_ids())
    }
}

/// The key id a stored value is sealed with, or None for a plain (unencrypted) value.
#[pyfunction]
fn sealed_key_id(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Option<String>> {
    let data = data_of(data)?;
    if !ferrograph_crypt::is_sealed(&data) {
        return Ok(None);
    }
    ferrograph_crypt::key_id_of(&data).map(|id| Some(id.to_owned())).map_err(|e| crypt_error(py, e))
}

/// The text a saver that keeps JSON text (the native memory saver) stores for a sealed value:
/// `{"__fg__":"sealed","v":"<the envelope in base64>"}`. The codec never writes that for a
/// user's dict (it escapes one holding its tag key), so sealed and plain values are told apart.
pub(crate) fn seal_json(py: Python<'_>, ring: &Keyring, plain: &RawJson) -> PyResult<RawJson> {
    let sealed = ring.seal(plain.as_bytes()).map_err(|e| crypt_error(py, e))?;
    Ok(RawJson::from_trusted(format!("{{\"{TAG}\":\"sealed\",\"v\":\"{}\"}}", ferrograph_crypt::to_text(&sealed))))
}

/// The envelope of a value [`seal_json`] wrote, or None for a plain value.
fn sealed_of(stored: &RawJson) -> Option<Result<Vec<u8>, CryptError>> {
    let text = stored.as_str().strip_prefix("{\"")?.strip_prefix(TAG)?.strip_prefix("\":\"sealed\",\"v\":\"")?;
    Some(text.strip_suffix("\"}").ok_or_else(|| CryptError::Malformed("its text is cut short".to_owned())).and_then(ferrograph_crypt::from_text))
}

/// The plain text of a stored value (the value itself when it is plain). `ring` None: the
/// saver has no encryption, so a sealed value is an error naming its key id. `what` says
/// where the value was read, for the error.
pub(crate) fn open_json(py: Python<'_>, ring: Option<&Keyring>, stored: &RawJson, what: &dyn Fn() -> String) -> PyResult<RawJson> {
    let Some(sealed) = sealed_of(stored) else {
        return Ok(stored.clone());
    };
    let plain = open_sealed(py, ring, sealed, what)?;
    let text = String::from_utf8(plain).map_err(|_| new_error(py, "DecryptionError", format!("cannot read {}: its plaintext is not text", what())))?;
    Ok(RawJson::from_trusted(text))
}

/// The plaintext of sealed bytes; the errors of [`open_json`].
fn open_sealed(py: Python<'_>, ring: Option<&Keyring>, sealed: Result<Vec<u8>, CryptError>, what: &dyn Fn() -> String) -> PyResult<Vec<u8>> {
    let opened = sealed.and_then(|sealed| match ring {
        Some(ring) => ring.open(&sealed),
        None => Err(CryptError::UnknownKey { key_id: ferrograph_crypt::key_id_of(&sealed)?.to_owned(), known: Vec::new() }),
    });
    opened.map_err(|e| {
        let message = match (&e, ring) {
            (CryptError::UnknownKey { key_id, .. }, None) => format!(
                "a stored value is encrypted with key id '{key_id}', and this saver has no encryption: give it encryption=Encryption(...) with that key"
            ),
            _ => e.to_string(),
        };
        let name = if matches!(e, CryptError::UnknownKey { .. }) { "EncryptionKeyError" } else { "DecryptionError" };
        new_error(py, name, format!("cannot read {}: {message}", what()))
    })
}

/// How the native memory saver keeps sealed metadata: `{"__fg__": "sealed", "v": <base64>}`
/// (a map, as metadata is; the run id a user's metadata could hold is under other keys).
pub(crate) fn seal_metadata(py: Python<'_>, ring: &Keyring, metadata: &CheckpointMetadata) -> PyResult<CheckpointMetadata> {
    let plain = serde_json::to_vec(&metadata.0).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let sealed = ring.seal(&plain).map_err(|e| crypt_error(py, e))?;
    let mut m = serde_json::Map::new();
    m.insert(TAG.to_owned(), "sealed".into());
    m.insert("v".to_owned(), ferrograph_crypt::to_text(&sealed).into());
    Ok(CheckpointMetadata(m))
}

fn sealed_metadata(metadata: &CheckpointMetadata) -> Option<Result<Vec<u8>, CryptError>> {
    if metadata.len() != 2 || metadata.get(TAG).and_then(|t| t.as_str()) != Some("sealed") {
        return None;
    }
    let text = metadata.get("v")?.as_str()?;
    Some(ferrograph_crypt::from_text(text))
}

/// Metadata as [`seal_metadata`] kept it, opened (as it is when it is plain); errors as
/// [`open_json`]'s.
pub(crate) fn open_metadata(py: Python<'_>, ring: Option<&Keyring>, metadata: CheckpointMetadata, what: &dyn Fn() -> String) -> PyResult<CheckpointMetadata> {
    let Some(sealed) = sealed_metadata(&metadata) else {
        return Ok(metadata);
    };
    let opened = open_sealed(py, ring, sealed, what)?;
    serde_json::from_slice(&opened)
        .map(CheckpointMetadata)
        .map_err(|_| new_error(py, "DecryptionError", format!("cannot read {}: its plaintext is not a JSON object", what())))
}

/// Whether metadata is sealed with `ring`'s sealing key already (false for plain metadata).
pub(crate) fn is_current_metadata(ring: &Keyring, metadata: &CheckpointMetadata) -> bool {
    matches!(sealed_metadata(metadata), Some(Ok(sealed)) if ring.is_current(&sealed))
}

/// Whether metadata is sealed (with any key).
pub(crate) fn is_sealed_metadata(metadata: &CheckpointMetadata) -> bool {
    sealed_metadata(metadata).is_some()
}

/// Whether a stored value is sealed with `ring`'s sealing key already.
pub(crate) fn is_current_json(ring: &Keyring, stored: &RawJson) -> bool {
    matches!(sealed_of(stored), Some(Ok(sealed)) if ring.is_current(&sealed))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyKeyring>()?;
    m.add_function(wrap_pyfunction!(sealed_key_id, m)?)?;
    Ok(())
}
