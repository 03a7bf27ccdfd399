//! Conversions between the Rust checkpoint model and LangGraph's Python shapes: config dicts
//! `{"configurable": {thread_id, checkpoint_ns, checkpoint_id}}`, checkpoint dicts whose
//! `channel_values` hold live Python values, metadata dicts, pending writes and
//! `CheckpointTuple`. Values cross through the codec; errors name the channel or key at fault.
//! Also where `SaverError` becomes a Python exception.

use std::collections::BTreeMap;

use ferrograph_checkpoint::{
    Checkpoint, CheckpointConfig, CheckpointMetadata, KeptTuple, ListConfig,
    PendingWrite, RawJson, CHECKPOINT_VERSION, DROPPED_METADATA_KEY,
    EXCLUDED_METADATA_KEYS, EXPECT_LATEST,
};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::{intern, IntoPyObjectExt};
use serde_json::{Map, Value};

use crate::codec::{self, DecodeCache, Registry, TAG};
use crate::errors::new_error;
pub use crate::errors::{saver_error, SaverResultExt};

fn invalid_config(py: Python<'_>, message: String) -> PyErr {
    new_error(py, "InvalidConfigError", message)
}

fn invalid_checkpoint(py: Python<'_>, message: String) -> PyErr {
    new_error(py, "InvalidCheckpointError", message)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// `obj[key]` for a dict (fast path) or any mapping; `None` when the key is absent.
fn get_key<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return d.get_item(key);
    }
    match obj.get_item(key) {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_instance_of::<PyKeyError>(obj.py()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A non-None value at `key`.
fn get_some<'py>(
    obj: &Bound<'py, PyAny>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(get_key(obj, key)?.filter(|v| !v.is_none()))
}

fn is_mapping(obj: &Bound<'_, PyAny>) -> bool {
    obj.cast::<PyDict>().is_ok() || obj.hasattr(intern!(obj.py(), "keys")).unwrap_or(false)
}

/// Iterates a dict or mapping's items.
fn items<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(d.iter().collect());
    }
    obj.call_method0(intern!(obj.py(), "items"))?
        .try_iter()?
        .map(|kv| kv?.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>())
        .collect()
}

/// The `configurable` mapping of a config, or a clear error naming what is missing.
fn configurable<'py>(config: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = config.py();
    if !is_mapping(config) {
        return Err(invalid_config(
            py,
            format!("a checkpoint config must be a dict like {{'configurable': {{'thread_id': ...}}}}, not {}", type_name(config)),
        ));
    }
    match get_some(config, intern!(py, "configurable"))? {
        Some(c) if is_mapping(&c) => Ok(c),
        Some(c) => Err(invalid_config(py, format!("config['configurable'] must be a dict, not {}", type_name(&c)))),
        None => Err(invalid_config(
            py,
            "config needs a 'configurable' dict with a 'thread_id' (e.g. {'configurable': {'thread_id': '1'}})".to_owned(),
        )),
    }
}

/// A thread (or run) id: a str, or an int or UUID (used through their `str`).
pub fn thread_id_from_py(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let py = value.py();
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    let is_uuid = value
        .get_type()
        .name()
        .is_ok_and(|n| n.to_str().is_ok_and(|n| n == "UUID"));
    if (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>()) || is_uuid {
        return Ok(value.str()?.to_str()?.to_owned());
    }
    Err(invalid_config(
        py,
        format!("{what} must be a str, not {}", type_name(value)),
    ))
}

fn optional_str(value: Option<Bound<'_, PyAny>>, what: &str) -> PyResult<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) => match v.cast::<PyString>() {
            Ok(s) => Ok(Some(s.to_str()?.to_owned())),
            Err(_) => Err(invalid_config(
                v.py(),
                format!("{what} must be a str, not {}", type_name(&v)),
            )),
        },
    }
}

/// Reads `{"configurable": {"thread_id", "checkpoint_ns"?, "checkpoint_id"?}}` (and the
/// engine's [`EXPECT_LATEST`] mark).
pub fn config_from_py(config: &Bound<'_, PyAny>) -> PyResult<CheckpointConfig> {
    let py = config.py();
    let c = configurable(config)?;
    let Some(thread) = get_some(&c, intern!(py, "thread_id"))? else {
        return Err(invalid_config(
            py,
            "config['configurable'] needs a 'thread_id'".to_owned(),
        ));
    };
    Ok(CheckpointConfig {
        thread_id: thread_id_from_py(&thread, "config['configurable']['thread_id']")?,
        checkpoint_ns: optional_str(
            get_some(&c, intern!(py, "checkpoint_ns"))?,
            "config['configurable']['checkpoint_ns']",
        )?
        .unwrap_or_default(),
        checkpoint_id: optional_str(
            get_some(&c, intern!(py, "checkpoint_id"))?,
            "config['configurable']['checkpoint_id']",
        )?,
        expect_latest: match get_some(&c, intern!(py, EXPECT_LATEST))? {
            Some(v) => v.is_truthy()?,
            None => false,
        },
    })
}

/// Reads a `list()` config: as [`config_from_py`], except that a missing `checkpoint_ns` means
/// every namespace. `None` (or an empty dict) means every thread.
pub fn list_config_from_py(config: Option<&Bound<'_, PyAny>>) -> PyResult<Option<ListConfig>> {
    let Some(config) = config.filter(|c| !c.is_none()) else {
        return Ok(None);
    };
    if config.cast::<PyDict>().is_ok_and(|d| d.is_empty()) {
        return Ok(None);
    }
    let py = config.py();
    let c = configurable(config)?;
    let Some(thread) = get_some(&c, intern!(py, "thread_id"))? else {
        return Err(invalid_config(
            py,
            "config['configurable'] needs a 'thread_id' (pass config=None to list every thread)"
                .to_owned(),
        ));
    };
    Ok(Some(ListConfig {
        thread_id: thread_id_from_py(&thread, "config['configurable']['thread_id']")?,
        checkpoint_ns: optional_str(
            get_some(&c, intern!(py, "checkpoint_ns"))?,
            "config['configurable']['checkpoint_ns']",
        )?,
        checkpoint_id: optional_str(
            get_some(&c, intern!(py, "checkpoint_id"))?,
            "config['configurable']['checkpoint_id']",
        )?,
    }))
}

fn wrap_configurable<'py>(
    py: Python<'py>,
    inner: Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let outer = PyDict::new(py);
    outer.set_item(intern!(py, "configurable"), inner)?;
    Ok(outer)
}

/// `{"configurable": {"thread_id", "checkpoint_ns", "checkpoint_id"}}`; `checkpoint_id` is left
/// out when the config has none.
pub fn config_to_py<'py>(
    py: Python<'py>,
    config: &CheckpointConfig,
) -> PyResult<Bound<'py, PyDict>> {
    config_dict(py, &config.thread_id, &config.checkpoint_ns, config.checkpoint_id.as_deref())
}

/// [`config_to_py`] from its parts.
pub fn config_dict<'py>(
    py: Python<'py>,
    thread_id: &str,
    checkpoint_ns: &str,
    checkpoint_id: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let inner = PyDict::new(py);
    inner.set_item(intern!(py, "thread_id"), thread_id)?;
    inner.set_item(intern!(py, "checkpoint_ns"), checkpoint_ns)?;
    if let Some(id) = checkpoint_id {
        inner.set_item(intern!(py, "checkpoint_id"), id)?;
    }
    wrap_configurable(py, inner)
}

/// A channel version as stored: strings as they are, ints as their decimal digits (read back
/// as ints, see [`version_to_py`]), floats as their `repr` (read back as strings).
pub fn version_from_py(value: &Bound<'_, PyAny>, what: &dyn Fn() -> String) -> PyResult<String> {
    if let Ok(s) = value.cast_exact::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>() {
        if let Ok(i) = value.extract::<i64>() {
            return Ok(i.to_string());
        }
        return Ok(value.str()?.to_str()?.to_owned());
    }
    if let Ok(f) = value.cast::<PyFloat>() {
        return Ok(f.repr()?.to_str()?.to_owned());
    }
    if let Ok(s) = value.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    Err(invalid_checkpoint(
        value.py(),
        format!(
            "{} must be a str, int or float version, not {}",
            what(),
            type_name(value)
        ),
    ))
}

/// The inverse of [`version_from_py`]: a string of plain decimal digits (an int version) comes
/// back as an int, any other version as the string it was.
pub fn version_to_py<'py>(py: Python<'py>, version: &str) -> PyResult<Bound<'py, PyAny>> {
    let digits = version.strip_prefix('-').unwrap_or(version);
    let canonical = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && !(version.starts_with('-') && digits == "0");
    if canonical {
        if let Ok(i) = version.parse::<i64>() {
            return i.into_bound_py_any(py);
        }
    }
    PyString::new(py, version).into_bound_py_any(py)
}

/// The version after `current` (None for a channel never written), in the one format
/// (`ferrograph_checkpoint::format_version`): every saver's `get_next_version`.
#[pyfunction]
#[pyo3(signature = (current))]
pub fn next_version(py: Python<'_>, current: Option<&Bound<'_, PyAny>>) -> PyResult<String> {
    let current = match current.filter(|c| !c.is_none()) {
        Some(c) => Some(version_from_py(c, &|| "current".to_owned())?),
        None => None,
    };
    ferrograph_checkpoint::next_version(current.as_deref()).map_err(|e| saver_error(py, e))
}

/// A `{channel: version}` mapping.
pub fn versions_from_py(
    obj: &Bound<'_, PyAny>,
    what: &dyn Fn() -> String,
) -> PyResult<BTreeMap<String, String>> {
    if obj.is_none() {
        return Ok(BTreeMap::new());
    }
    if !is_mapping(obj) {
        return Err(invalid_checkpoint(
            obj.py(),
            format!(
                "{} must be a dict of channel versions, not {}",
                what(),
                type_name(obj)
            ),
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in items(obj)? {
        let key = k
            .cast::<PyString>()
            .map_err(|_| {
                invalid_checkpoint(
                    obj.py(),
                    format!(
                        "{} keys must be channel names (str), not {}",
                        what(),
                        type_name(&k)
                    ),
                )
            })?
            .to_str()?
            .to_owned();
        let version = version_from_py(&v, &|| format!("{}[{key:?}]", what()))?;
        out.insert(key, version);
    }
    Ok(out)
}

pub fn versions_to_py<'py, K: AsRef<str>, V: AsRef<str>>(
    py: Python<'py>,
    versions: impl IntoIterator<Item = (K, V)>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in versions {
        d.set_item(k.as_ref(), version_to_py(py, v.as_ref())?)?;
    }
    Ok(d)
}

/// Encodes a value to its stored text; `context` is only formatted when encoding fails.
fn encode_raw(
    value: &Bound<'_, PyAny>,
    registry: &Registry,
    context: &dyn Fn() -> String,
) -> PyResult<RawJson> {
    codec::encode_with(value, registry, None, |text| RawJson::from_trusted(text))
        .map_err(|e| codec::to_py_err(value.py(), &e.with_root(Some(&context()))))
}

pub(crate) fn encode_channel(
    value: &Bound<'_, PyAny>,
    registry: &Registry,
    channel: &str,
) -> PyResult<RawJson> {
    encode_raw(value, registry, &|| format!("channel_values['{channel}']"))
}

pub(crate) fn encode_write(value: &Bound<'_, PyAny>, registry: &Registry, channel: &str) -> PyResult<RawJson> {
    encode_raw(value, registry, &|| format!("writes['{channel}']"))
}

/// Decodes stored text; `context` is only formatted when decoding fails.
fn decode_raw<'py>(
    py: Python<'py>,
    value: &RawJson,
    registry: &Registry,
    context: &dyn Fn() -> String,
) -> PyResult<Bound<'py, PyAny>> {
    codec::from_json(py, value.as_bytes(), registry)
        .map_err(|e| codec::to_py_err(py, &e.with_root(Some(&context()))))
}

/// Decodes a metadata value.
fn decode_value(
    py: Python<'_>,
    value: &Value,
    registry: &Registry,
    context: &dyn Fn() -> String,
) -> PyResult<Py<PyAny>> {
    match value {
        // The common plain-JSON leaves skip the codec's bookkeeping.
        Value::Null => Ok(py.None()),
        Value::String(s) => Ok(PyString::new(py, s).into_any().unbind()),
        Value::Bool(b) => b.into_py_any(py),
        Value::Number(n) if n.is_i64() => n.as_i64().into_py_any(py),
        Value::Object(m) if m.is_empty() => Ok(PyDict::new(py).into_any().unbind()),
        // The context is only formatted when decoding fails.
        _ => codec::from_value(py, value, registry)
            .map(Bound::unbind)
            .map_err(|e| codec::to_py_err(py, &e.with_root(Some(&context())))),
    }
}

/// A checkpoint dict with live channel values (decoded through the codec) and LangGraph's keys:
/// `v, id, ts, channel_values, channel_versions, versions_seen, updated_channels`.
/// With a `cache`, channel values it decoded before are copied rather than parsed.
pub fn checkpoint_to_py<'py>(
    py: Python<'py>,
    kept: &KeptTuple,
    registry: &Registry,
    cache: Option<&DecodeCache>,
) -> PyResult<Bound<'py, PyDict>> {
    let values = PyDict::new(py);
    for (channel, value) in &kept.values {
        let decode = || decode_raw(py, value, registry, &|| format!("channel_values['{channel}']"));
        let v = match cache {
            Some(cache) => cache.get_or_decode(py, value, decode)?,
            None => decode()?,
        };
        values.set_item(&**channel, v)?;
    }
    let seen = PyDict::new(py);
    for (node, versions) in kept.versions_seen() {
        seen.set_item(&**node, versions_to_py(py, versions.iter().map(|(k, v)| (k, v)))?)?;
    }
    let d = PyDict::new(py);
    d.set_item(intern!(py, "v"), kept.v())?;
    d.set_item(intern!(py, "id"), kept.id())?;
    d.set_item(intern!(py, "ts"), kept.ts())?;
    d.set_item(intern!(py, "channel_values"), values)?;
    d.set_item(
        intern!(py, "channel_versions"),
        versions_to_py(py, kept.channel_versions().iter().map(|(k, v)| (k, v)))?,
    )?;
    d.set_item(intern!(py, "versions_seen"), seen)?;
    match kept.updated_channels() {
        Some(u) => d.set_item(intern!(py, "updated_channels"), PyList::new(py, u.iter().map(|c| &**c))?)?,
        None => d.set_item(intern!(py, "updated_channels"), py.None())?,
    }
    Ok(d)
}

/// Reads a checkpoint dict for `put`: only channels in `new_versions` are encoded (the channel
/// is named in a `SerializationError`), because a saver stores no other values (they are read
/// back from the versions stored earlier).
pub fn checkpoint_from_py_for_put(
    obj: &Bound<'_, PyAny>,
    new_versions: &BTreeMap<String, String>,
    registry: &Registry,
) -> PyResult<Checkpoint> {
    checkpoint_fields(obj, registry, new_versions)
}

fn checkpoint_fields(
    obj: &Bound<'_, PyAny>,
    registry: &Registry,
    only: &BTreeMap<String, String>,
) -> PyResult<Checkpoint> {
    let py = obj.py();
    if !is_mapping(obj) {
        return Err(invalid_checkpoint(
            py,
            format!("a checkpoint must be a dict, not {}", type_name(obj)),
        ));
    }
    let id = match get_some(obj, intern!(py, "id"))? {
        Some(id) => id
            .cast::<PyString>()
            .map_err(|_| {
                invalid_checkpoint(
                    py,
                    format!("checkpoint['id'] must be a str, not {}", type_name(&id)),
                )
            })?
            .to_str()?
            .to_owned(),
        None => {
            return Err(invalid_checkpoint(
                py,
                "a checkpoint needs an 'id'".to_owned(),
            ))
        }
    };
    let v = match get_some(obj, intern!(py, "v"))? {
        Some(v) => v.extract::<u32>().map_err(|_| {
            invalid_checkpoint(
                py,
                format!("checkpoint {id:?}: 'v' must be a non-negative int"),
            )
        })?,
        None => CHECKPOINT_VERSION,
    };
    let ts = match get_some(obj, intern!(py, "ts"))? {
        Some(ts) => ts
            .cast::<PyString>()
            .map_err(|_| invalid_checkpoint(py, format!("checkpoint {id:?}: 'ts' must be a str")))?
            .to_str()?
            .to_owned(),
        None => ferrograph_checkpoint::now_iso8601(),
    };
    let mut channel_values = BTreeMap::new();
    if let Some(values) = get_some(obj, intern!(py, "channel_values"))? {
        if let Ok(d) = values.cast::<PyDict>() {
            for channel in only.keys() {
                if let Some(value) = d.get_item(channel)? {
                    channel_values.insert(channel.clone(), encode_channel(&value, registry, channel)?);
                }
            }
        } else if is_mapping(&values) {
            for (k, value) in items(&values)? {
                let channel = channel_name(&k, &id)?;
                if only.contains_key(&channel) {
                    let encoded = encode_channel(&value, registry, &channel)?;
                    channel_values.insert(channel, encoded);
                }
            }
        } else {
            return Err(invalid_checkpoint(
                py,
                format!("checkpoint {id:?}: 'channel_values' must be a dict"),
            ));
        }
    }
    let channel_versions = match get_some(obj, intern!(py, "channel_versions"))? {
        Some(v) => versions_from_py(&v, &|| "checkpoint['channel_versions']".to_owned())?,
        None => BTreeMap::new(),
    };
    let mut versions_seen = BTreeMap::new();
    if let Some(seen) = get_some(obj, intern!(py, "versions_seen"))? {
        if !is_mapping(&seen) {
            return Err(invalid_checkpoint(
                py,
                format!("checkpoint {id:?}: 'versions_seen' must be a dict"),
            ));
        }
        for (node, versions) in items(&seen)? {
            let node = node
                .cast::<PyString>()
                .map_err(|_| {
                    invalid_checkpoint(
                        py,
                        format!("checkpoint {id:?}: 'versions_seen' keys must be str"),
                    )
                })?
                .to_str()?
                .to_owned();
            let what = || format!("checkpoint['versions_seen'][{node:?}]");
            let versions = versions_from_py(&versions, &what)?;
            versions_seen.insert(node, versions);
        }
    }
    let updated_channels = match get_some(obj, intern!(py, "updated_channels"))? {
        Some(u) => Some(u.extract::<Vec<String>>().map_err(|_| {
            invalid_checkpoint(
                py,
                format!("checkpoint {id:?}: 'updated_channels' must be a list of str or None"),
            )
        })?),
        None => None,
    };
    Ok(Checkpoint {
        v,
        id,
        ts,
        channel_values,
        channel_versions,
        versions_seen,
        updated_channels,
    })
}

fn channel_name(k: &Bound<'_, PyAny>, id: &str) -> PyResult<String> {
    match k.cast::<PyString>() {
        Ok(s) => Ok(s.to_str()?.to_owned()),
        Err(_) => Err(invalid_checkpoint(
            k.py(),
            format!(
                "checkpoint {id:?}: channel names must be str, not {}",
                type_name(k)
            ),
        )),
    }
}

/// A metadata dict; each value decoded through the codec.
pub fn metadata_to_py<'py>(
    py: Python<'py>,
    metadata: &CheckpointMetadata,
    registry: &Registry,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in metadata.iter() {
        d.set_item(
            k,
            decode_value(py, v, registry, &|| format!("metadata['{k}']"))?,
        )?;
    }
    Ok(d)
}

/// Reads a metadata dict (None reads as empty), encoding it through the codec; its keys must
/// be str.
pub fn metadata_from_py(
    obj: &Bound<'_, PyAny>,
    registry: &Registry,
) -> PyResult<CheckpointMetadata> {
    json_object_from_py(obj, registry, "metadata").map(CheckpointMetadata)
}

/// Reads a `list(filter=...)` dict, encoded the way metadata is so typed values compare equal.
pub fn filter_from_py(obj: &Bound<'_, PyAny>, registry: &Registry) -> PyResult<Map<String, Value>> {
    json_object_from_py(obj, registry, "filter")
}

fn json_object_from_py(
    obj: &Bound<'_, PyAny>,
    registry: &Registry,
    what: &str,
) -> PyResult<Map<String, Value>> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Map::new());
    }
    let dict;
    let obj = if obj.cast::<PyDict>().is_ok() {
        obj
    } else if is_mapping(obj) {
        dict = PyDict::new(py);
        for (k, v) in items(obj)? {
            dict.set_item(k, v)?;
        }
        dict.as_any()
    } else {
        return Err(invalid_checkpoint(
            py,
            format!("{what} must be a dict, not {}", type_name(obj)),
        ));
    };
    match codec::to_value(obj, registry, Some(what)).map_err(|e| codec::to_py_err(py, &e))? {
        Value::Object(m) if !m.contains_key(TAG) => Ok(m),
        _ => Err(invalid_checkpoint(
            py,
            format!("{what} keys must all be str (and not {TAG:?})"),
        )),
    }
}

/// The metadata a saver stores with a checkpoint, as LangGraph's `get_checkpoint_metadata`
/// makes it: `metadata` (None reads as empty) without NUL characters in its top-level strings,
/// plus the config's `metadata` and `configurable` str/int/float/bool entries where it has no
/// such key (skipping ids and `__`-prefixed keys); with `drop_writes`, also without
/// [`DROPPED_METADATA_KEY`], as LangGraph's `get_serializable_checkpoint_metadata` (its
/// Postgres saver's). The one implementation: every saver's `put` and the run's checkpoints
/// use it.
#[pyfunction]
#[pyo3(signature = (config, metadata, drop_writes = false))]
pub fn checkpoint_metadata<'py>(
    config: &Bound<'py, PyAny>,
    metadata: &Bound<'py, PyAny>,
    drop_writes: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let py = config.py();
    let merged = PyDict::new(py);
    if !metadata.is_none() {
        if !is_mapping(metadata) {
            return Err(invalid_checkpoint(
                py,
                format!("metadata must be a dict, not {}", type_name(metadata)),
            ));
        }
        for (k, v) in items(metadata)? {
            if drop_writes && k.cast::<PyString>().is_ok_and(|k| k.to_str().is_ok_and(|k| k == DROPPED_METADATA_KEY)) {
                continue;
            }
            match v.cast::<PyString>() {
                Ok(s) if s.to_str()?.contains('\0') => merged.set_item(k, s.to_str()?.replace('\0', ""))?,
                _ => merged.set_item(k, v)?,
            }
        }
    }
    if !is_mapping(config) {
        return Ok(merged);
    }
    let sources = [
        get_some(config, intern!(py, "metadata"))?,
        get_some(config, intern!(py, "configurable"))?,
    ];
    for source in sources.into_iter().flatten() {
        if !is_mapping(&source) {
            continue;
        }
        for (k, v) in items(&source)? {
            let Ok(key) = k.cast::<PyString>() else {
                continue;
            };
            let key = key.to_str()?;
            if merged.contains(key)?
                || EXCLUDED_METADATA_KEYS.contains(&key)
                || key.starts_with("__")
            {
                continue;
            }
            if let Ok(s) = v.cast::<PyString>() {
                merged.set_item(key, s.to_str()?.replace('\0', ""))?;
            } else if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
                merged.set_item(key, v)?;
            }
        }
    }
    Ok(merged)
}

/// A task's writes, `[(channel, value), ...]`, with each value encoded (a `SerializationError`
/// names the channel).
pub fn writes_from_py(
    writes: &Bound<'_, PyAny>,
    registry: &Registry,
) -> PyResult<Vec<(String, RawJson)>> {
    let py = writes.py();
    let mut out = Vec::new();
    for item in writes.try_iter()? {
        let item = item?;
        let (channel, value) = match item.cast::<PyTuple>() {
            Ok(t) if t.len() == 2 => (t.get_item(0)?, t.get_item(1)?),
            _ => item
                .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                .map_err(|_| {
                    invalid_checkpoint(
                        py,
                        format!(
                            "each write must be a (channel, value) pair, not {}",
                            type_name(&item)
                        ),
                    )
                })?,
        };
        let channel = channel
            .cast::<PyString>()
            .map_err(|_| {
                invalid_checkpoint(
                    py,
                    format!(
                        "a write's channel must be a str, not {}",
                        type_name(&channel)
                    ),
                )
            })?
            .to_str()?
            .to_owned();
        let value = encode_write(&value, registry, &channel)?;
        out.push((channel, value));
    }
    Ok(out)
}

/// `[(task_id, channel, value), ...]` with live values; with a `cache`, values it decoded
/// before are copied rather than parsed.
pub fn pending_writes_to_py<'py>(
    py: Python<'py>,
    writes: &[PendingWrite],
    registry: &Registry,
    cache: Option<&DecodeCache>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for w in writes {
        let decode = || decode_raw(py, &w.value, registry, &|| format!("writes['{}']", w.channel));
        let value = match cache {
            Some(cache) => cache.get_or_decode(py, &w.value, decode)?,
            None => decode()?,
        };
        list.append(PyTuple::new(
            py,
            [
                w.task_id.as_str().into_bound_py_any(py)?,
                w.channel.as_str().into_bound_py_any(py)?,
                value,
            ],
        )?)?;
    }
    Ok(list)
}

static CHECKPOINT_TUPLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TUPLE_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A `ferrograph.checkpointers.base.CheckpointTuple` with live values; `pending_writes` is
/// always a list.
/// With a `cache`, channel values it decoded before are copied rather than parsed.
pub fn tuple_to_py<'py>(
    py: Python<'py>,
    kept: &KeptTuple,
    registry: &Registry,
    cache: Option<&DecodeCache>,
) -> PyResult<Bound<'py, PyAny>> {
    let parent = match kept.parent_config() {
        Some(p) => config_to_py(py, &p)?.into_any(),
        None => py.None().into_bound(py),
    };
    new_checkpoint_tuple(
        py,
        [
            config_to_py(py, &kept.config)?.into_any(),
            checkpoint_to_py(py, kept, registry, cache)?.into_any(),
            // Kept as its JSON text (`CheckpointMetadata::to_text`): decoded in one pass.
            decode_raw(py, &kept.metadata, registry, &|| "metadata".to_owned())?,
            parent,
            pending_writes_to_py(py, &kept.pending_writes, registry, cache)?.into_any(),
        ],
    )
}

/// A `CheckpointTuple` of (config, checkpoint, metadata, parent_config, pending_writes).
pub fn new_checkpoint_tuple<'py>(py: Python<'py>, fields: [Bound<'py, PyAny>; 5]) -> PyResult<Bound<'py, PyAny>> {
    let cls = CHECKPOINT_TUPLE.import(py, "ferrograph.checkpointers.base", "CheckpointTuple")?;
    // `tuple.__new__(cls, items)` builds the NamedTuple without running its Python `__new__`.
    let tuple_new = TUPLE_NEW.get_or_try_init(py, || {
        py.get_type::<PyTuple>()
            .getattr(intern!(py, "__new__"))
            .map(Bound::unbind)
    })?;
    tuple_new.bind(py).call1((cls, PyTuple::new(py, fields)?))
}
