//! The standard-library types beyond the core ones that a checkpoint may reasonably hold and
//! that cannot run code when rebuilt, each written with a tag of its own (no allowlisting):
//! fractions, complex numbers, ranges, pathlib paths, ipaddress values, compiled patterns, time
//! zones, deques and the dict flavours of `collections`; and numpy arrays and scalars when numpy
//! is imported. Types are recognised by identity (exact type), found in a table built once.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyComplex, PyDict, PyRange, PyType};

/// A standard type with a tag of its own; the tag is also how it is read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Std {
    Fraction,
    Complex,
    Range,
    PurePosixPath,
    PureWindowsPath,
    PosixPath,
    WindowsPath,
    IPv4Address,
    IPv6Address,
    IPv4Network,
    IPv6Network,
    IPv4Interface,
    IPv6Interface,
    Pattern,
    ZoneInfo,
    Timezone,
    Deque,
    OrderedDict,
    Counter,
    DefaultDict,
}

/// How the body of a standard type's tag is written.
pub enum Shape {
    /// A string (`str(value)`, or a zone key).
    Text,
    /// A list of typed values (the type's constructor arguments, or a deque's items).
    Items,
    /// `[[key, value], ...]`, a dict flavour's items in their order.
    Pairs,
    /// An int (a time zone's UTC offset in microseconds).
    Number,
}

const ALL: &[(Std, &str, &str, &str)] = &[
    (Std::Fraction, "fraction", "fractions", "Fraction"),
    (Std::Complex, "complex", "builtins", "complex"),
    (Std::Range, "range", "builtins", "range"),
    (Std::PurePosixPath, "pureposixpath", "pathlib", "PurePosixPath"),
    (Std::PureWindowsPath, "purewindowspath", "pathlib", "PureWindowsPath"),
    (Std::PosixPath, "posixpath", "pathlib", "PosixPath"),
    (Std::WindowsPath, "windowspath", "pathlib", "WindowsPath"),
    (Std::IPv4Address, "ipv4address", "ipaddress", "IPv4Address"),
    (Std::IPv6Address, "ipv6address", "ipaddress", "IPv6Address"),
    (Std::IPv4Network, "ipv4network", "ipaddress", "IPv4Network"),
    (Std::IPv6Network, "ipv6network", "ipaddress", "IPv6Network"),
    (Std::IPv4Interface, "ipv4interface", "ipaddress", "IPv4Interface"),
    (Std::IPv6Interface, "ipv6interface", "ipaddress", "IPv6Interface"),
    (Std::Pattern, "pattern", "re", "Pattern"),
    (Std::ZoneInfo, "zoneinfo", "zoneinfo", "ZoneInfo"),
    (Std::Timezone, "timezone", "datetime", "timezone"),
    (Std::Deque, "deque", "collections", "deque"),
    (Std::OrderedDict, "ordereddict", "collections", "OrderedDict"),
    (Std::Counter, "counter", "collections", "Counter"),
    (Std::DefaultDict, "defaultdict", "collections", "defaultdict"),
];

impl Std {
    fn row(self) -> &'static (Std, &'static str, &'static str, &'static str) {
        ALL.iter().find(|r| r.0 == self).unwrap_or(&ALL[0])
    }

    pub fn tag(self) -> &'static str {
        self.row().1
    }

    pub fn from_tag(tag: &str) -> Option<Std> {
        ALL.iter().find(|r| r.1 == tag).map(|r| r.0)
    }

    pub fn shape(self) -> Shape {
        match self {
            Std::Fraction | Std::Complex | Std::Range | Std::Pattern | Std::Deque => Shape::Items,
            Std::OrderedDict | Std::Counter | Std::DefaultDict => Shape::Pairs,
            Std::Timezone => Shape::Number,
            _ => Shape::Text,
        }
    }

    /// `module:name`, for messages.
    pub fn name(self) -> String {
        let (_, _, module, name) = self.row();
        format!("{module}:{name}")
    }

    /// The type itself (its module imported: all are in the standard library).
    pub fn class<'py>(self, py: Python<'py>) -> PyResult<Bound<'py, PyType>> {
        let table = table(py)?;
        let found = table.classes.iter().find(|(s, _)| *s == self).map(|(_, c)| c.bind(py).clone());
        found.ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err(format!("{} is not available", self.name())))
    }
}

struct Table {
    by_type: HashMap<usize, Std>,
    classes: Vec<(Std, Py<PyType>)>,
}

static TABLE: PyOnceLock<Table> = PyOnceLock::new();

fn table(py: Python<'_>) -> PyResult<&Table> {
    TABLE.get_or_try_init(py, || {
        let mut by_type = HashMap::new();
        let mut classes = Vec::new();
        for &(std, _, module, name) in ALL {
            let cls = match std {
                Std::Complex => py.get_type::<PyComplex>(),
                Std::Range => py.get_type::<PyRange>(),
                _ => py.import(module)?.getattr(name)?.cast_into::<PyType>()?,
            };
            by_type.insert(cls.as_type_ptr() as usize, std);
            classes.push((std, cls.unbind()));
        }
        Ok(Table { by_type, classes })
    })
}

/// The standard type a value's exact type is, if it is one of them.
pub fn kind_of(ty: &Bound<'_, PyType>) -> PyResult<Option<Std>> {
    Ok(table(ty.py())?.by_type.get(&(ty.as_type_ptr() as usize)).copied())
}

/// The builtin types a `defaultdict`'s `default_factory` may be (it is called on a missing key,
/// so nothing else is stored), by name.
pub const FACTORIES: &[&str] = &["list", "dict", "set", "frozenset", "tuple", "str", "bytes", "int", "float", "bool", "complex"];

/// The builtin type named `name` among [`FACTORIES`].
pub fn factory<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    if !FACTORIES.contains(&name) {
        return Ok(None);
    }
    py.import("builtins")?.getattr(name).map(Some)
}

/// The name of a `default_factory` that is one of [`FACTORIES`] (None for no factory).
pub fn factory_name(factory: &Bound<'_, PyAny>) -> PyResult<Option<Option<&'static str>>> {
    if factory.is_none() {
        return Ok(Some(None));
    }
    let builtins = factory.py().import("builtins")?;
    for name in FACTORIES {
        if builtins.getattr(*name)?.is(factory) {
            return Ok(Some(Some(name)));
        }
    }
    Ok(None)
}

/// numpy's `ndarray` and `generic` (the scalars' base) once numpy is imported: a value can only
/// be a numpy one then, so numpy is never imported to write.
pub struct Numpy {
    pub ndarray: Py<PyType>,
    pub generic: Py<PyType>,
}

static NUMPY: PyOnceLock<Numpy> = PyOnceLock::new();
static SYS_MODULES: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

pub fn numpy_if_loaded(py: Python<'_>) -> PyResult<Option<&Numpy>> {
    if let Some(np) = NUMPY.get(py) {
        return Ok(Some(np));
    }
    let modules = SYS_MODULES.get_or_try_init(py, || {
        py.import("sys")?.getattr("modules")?.cast_into::<PyDict>().map(Bound::unbind).map_err(PyErr::from)
    })?;
    let Some(numpy) = modules.bind(py).get_item("numpy")? else { return Ok(None) };
    let np = Numpy {
        ndarray: numpy.getattr("ndarray")?.cast_into::<PyType>()?.unbind(),
        generic: numpy.getattr("generic")?.cast_into::<PyType>()?.unbind(),
    };
    Ok(Some(NUMPY.get_or_init(py, || np)))
}
