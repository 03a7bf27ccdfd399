//! The class allowlist: which classes the codec may write and rebuild, keyed by
//! `module:qualname`. Classes are held as already-imported class objects; names allowlisted by
//! path (ferrograph's and LangChain's own types) are resolved from `sys.modules` only, never by
//! importing anything.
//!
//! Allowlists are layered: a registry has classes of its own and may stand on a parent, whose
//! classes it also allows. The process-wide registry is the root; a `Serializer` stands on it,
//! and a graph's allowed set (the classes its schemas name) is laid over the serializer of the
//! saver it calls, for those calls only, so one graph's classes never become another's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};

/// The default limit on nesting, in Python containers/objects, for writing and reading.
pub const DEFAULT_MAX_DEPTH: usize = 1000;

/// Classes allowlisted by name in every registry; rebuilt only once their module is imported.
pub const DEFAULT_CLASS_PATHS: &[&str] = &[
    "ferrograph.types:Send",
    "ferrograph.types:Command",
    "ferrograph.types:Interrupt",
    "langchain_core.messages.ai:AIMessage",
    "langchain_core.messages.ai:AIMessageChunk",
    "langchain_core.messages.human:HumanMessage",
    "langchain_core.messages.human:HumanMessageChunk",
    "langchain_core.messages.system:SystemMessage",
    "langchain_core.messages.system:SystemMessageChunk",
    "langchain_core.messages.tool:ToolMessage",
    "langchain_core.messages.tool:ToolMessageChunk",
    "langchain_core.messages.function:FunctionMessage",
    "langchain_core.messages.function:FunctionMessageChunk",
    "langchain_core.messages.chat:ChatMessage",
    "langchain_core.messages.chat:ChatMessageChunk",
    "langchain_core.messages.modifier:RemoveMessage",
];

/// How instances of an allowlisted class are written and rebuilt.
#[derive(Debug)]
pub enum ClassKind {
    /// `Enum` subclass: written by value, rebuilt with `cls(value)`.
    Enum,
    /// Dataclass: fields by name; init fields go to `cls(**kw)`, the rest are set afterwards.
    Dataclass { init: Vec<Py<PyString>>, no_init: Vec<Py<PyString>> },
    /// pydantic v2 model: `__dict__` + extras, rebuilt with `model_construct` (no validation, so
    /// the rebuilt model is exactly the one written).
    Pydantic,
    /// `typing.NamedTuple` / `collections.namedtuple`: items, rebuilt with `cls(*items)`.
    NamedTuple,
    /// A subclass of a builtin type (str, int, list, dict, ...): the builtin value and the
    /// `__dict__` attributes, rebuilt as pickle does: the builtin's own `__new__` (and, for a
    /// container, its own `extend`/`update`), then `object.__setattr__`.
    Subclass { base: Builtin },
    /// Any other class: `__slots__` and `__dict__` attributes, rebuilt with `cls.__new__(cls)`
    /// then `object.__setattr__`, as `copy` does.
    Object { slots: Vec<Py<PyString>> },
}

/// The builtin types whose subclasses the codec writes as (or with) their builtin value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    Str,
    Int,
    Float,
    Bytes,
    List,
    Dict,
    Tuple,
    Set,
    FrozenSet,
}

impl Builtin {
    /// The builtin type `ty` derives from, if any (bool and enums are classes of their own).
    pub fn base_of(ty: &Bound<'_, PyType>) -> PyResult<Option<Builtin>> {
        use pyo3::types::{PyBytes, PyFloat, PyFrozenSet, PyInt, PyList, PySet};
        Ok(Some(if ty.is_subclass_of::<PyString>()? {
            Builtin::Str
        } else if ty.is_subclass_of::<PyInt>()? {
            Builtin::Int
        } else if ty.is_subclass_of::<PyFloat>()? {
            Builtin::Float
        } else if ty.is_subclass_of::<PyBytes>()? {
            Builtin::Bytes
        } else if ty.is_subclass_of::<PyList>()? {
            Builtin::List
        } else if ty.is_subclass_of::<PyDict>()? {
            Builtin::Dict
        } else if ty.is_subclass_of::<PyTuple>()? {
            Builtin::Tuple
        } else if ty.is_subclass_of::<PySet>()? {
            Builtin::Set
        } else if ty.is_subclass_of::<PyFrozenSet>()? {
            Builtin::FrozenSet
        } else {
            return Ok(None);
        }))
    }

    pub fn py_type(self, py: Python<'_>) -> Bound<'_, PyType> {
        use pyo3::types::{PyBytes, PyFloat, PyFrozenSet, PyInt, PyList, PySet};
        match self {
            Builtin::Str => py.get_type::<PyString>(),
            Builtin::Int => py.get_type::<PyInt>(),
            Builtin::Float => py.get_type::<PyFloat>(),
            Builtin::Bytes => py.get_type::<PyBytes>(),
            Builtin::List => py.get_type::<PyList>(),
            Builtin::Dict => py.get_type::<PyDict>(),
            Builtin::Tuple => py.get_type::<PyTuple>(),
            Builtin::Set => py.get_type::<PySet>(),
            Builtin::FrozenSet => py.get_type::<PyFrozenSet>(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::Str => "str",
            Builtin::Int => "int",
            Builtin::Float => "float",
            Builtin::Bytes => "bytes",
            Builtin::List => "list",
            Builtin::Dict => "dict",
            Builtin::Tuple => "tuple",
            Builtin::Set => "set",
            Builtin::FrozenSet => "frozenset",
        }
    }
}

#[derive(Debug)]
pub struct ClassEntry {
    /// `module:qualname`.
    pub name: String,
    pub cls: Py<PyType>,
    pub kind: ClassKind,
}

#[derive(Default)]
struct Tables {
    by_name: HashMap<String, Arc<ClassEntry>>,
    by_type: HashMap<usize, Arc<ClassEntry>>,
    paths: HashSet<String>,
}

/// The allowlist plus the codec's settings. Cheap to share (`Arc`); the lock is never held
/// while Python code runs.
pub struct Registry {
    /// This layer's own classes; shared by the layers made from it with [`Registry::over`].
    tables: Arc<Mutex<Tables>>,
    /// The registry whose classes this one allows too.
    parent: Option<Arc<Registry>>,
    max_depth: usize,
}

impl Registry {
    /// A root registry with the default allowlist ([`DEFAULT_CLASS_PATHS`]).
    pub fn new(max_depth: usize) -> Self {
        let tables = Tables {
            paths: DEFAULT_CLASS_PATHS.iter().map(|s| (*s).to_owned()).collect(),
            ..Tables::default()
        };
        Registry { tables: Arc::new(Mutex::new(tables)), parent: None, max_depth }
    }

    /// An empty layer on `parent`.
    pub fn child(parent: Arc<Registry>, max_depth: usize) -> Self {
        Registry { tables: Arc::default(), parent: Some(parent), max_depth }
    }

    /// This layer's own classes (shared: a class allowed later in one is allowed in both) on
    /// `base` instead of its parent, with `base`'s depth limit.
    pub fn over(&self, base: Arc<Registry>) -> Self {
        Registry { tables: self.tables.clone(), max_depth: base.max_depth, parent: Some(base) }
    }

    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic elsewhere cannot leave the maps half-updated: recover the data.
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Allowlists a class object: it may be written, and rebuilt by its `module:qualname`.
    pub fn allow_class(&self, cls: &Bound<'_, PyType>) -> PyResult<Arc<ClassEntry>> {
        let name = class_name(cls)?;
        let kind = classify(cls)?;
        let entry = Arc::new(ClassEntry { name: name.clone(), cls: cls.clone().unbind(), kind });
        let mut t = self.lock();
        t.by_type.insert(cls.as_type_ptr() as usize, entry.clone());
        t.by_name.insert(name, entry.clone());
        Ok(entry)
    }

    /// Allowlists a class by `module:qualname` without importing it.
    pub fn allow_path(&self, name: &str) {
        self.lock().paths.insert(name.to_owned());
    }

    /// Every allowlisted `module:qualname` (this layer's and its parents'), sorted.
    pub fn allowed_names(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let mut layer = Some(self);
        while let Some(reg) = layer {
            let t = reg.lock();
            v.extend(t.by_name.keys().chain(t.paths.iter()).cloned());
            layer = reg.parent.as_deref();
        }
        v.sort();
        v.dedup();
        v
    }

    /// This layer's own `module:qualname`s, sorted (not its parents').
    pub fn own_names(&self) -> Vec<String> {
        let t = self.lock();
        let mut v: Vec<String> = t.by_name.keys().chain(t.paths.iter()).cloned().collect();
        v.sort();
        v.dedup();
        v
    }

    /// The entry for the exact type of a value being written, if that type is allowlisted.
    pub fn lookup_type(&self, ty: &Bound<'_, PyType>) -> PyResult<Option<Arc<ClassEntry>>> {
        let mut name = None;
        let mut layer = Some(self);
        while let Some(reg) = layer {
            if let Some(e) = reg.find_type(ty, &mut name)? {
                return Ok(Some(e));
            }
            layer = reg.parent.as_deref();
        }
        Ok(None)
    }

    /// [`Registry::lookup_type`] in this layer alone; `name` is the type's name, computed once.
    fn find_type(&self, ty: &Bound<'_, PyType>, name: &mut Option<String>) -> PyResult<Option<Arc<ClassEntry>>> {
        if let Some(e) = self.lock().by_type.get(&(ty.as_type_ptr() as usize)) {
            return Ok(Some(e.clone()));
        }
        if name.is_none() {
            *name = Some(class_name(ty)?);
        }
        let name = name.as_deref().unwrap_or_default();
        let listed = {
            let t = self.lock();
            t.paths.contains(name) || t.by_name.get(name).is_some_and(|e| e.cls.is(ty))
        };
        if listed {
            return self.allow_class(ty).map(Some);
        }
        Ok(None)
    }

    /// The class to rebuild for a name read from a checkpoint. `Ok(None)`: not allowlisted;
    /// `Err(())`: allowlisted by path but its module is not imported.
    pub fn lookup_name(&self, py: Python<'_>, name: &str) -> PyResult<Result<Option<Arc<ClassEntry>>, ()>> {
        let mut layer = Some(self);
        while let Some(reg) = layer {
            {
                let t = reg.lock();
                if let Some(e) = t.by_name.get(name) {
                    return Ok(Ok(Some(e.clone())));
                }
                if !t.paths.contains(name) {
                    layer = reg.parent.as_deref();
                    continue;
                }
            }
            return match resolve_loaded(py, name)? {
                Some(cls) => reg.allow_class(&cls).map(|e| Ok(Some(e))),
                None => Ok(Err(())),
            };
        }
        Ok(Ok(None))
    }
}

pub fn class_name(cls: &Bound<'_, PyType>) -> PyResult<String> {
    let module = cls.module()?;
    let qualname = cls.qualname()?;
    Ok(format!("{}:{}", module.to_str()?, qualname.to_str()?))
}

/// Finds `module:qualname` among already-imported modules, reading `__dict__`s only, so that no
/// module `__getattr__` (which may import) ever runs.
fn resolve_loaded<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyType>>> {
    let Some((module, qualname)) = name.split_once(':') else { return Ok(None) };
    let modules = py.import("sys")?.getattr("modules")?;
    let Ok(modules) = modules.cast_into::<PyDict>() else { return Ok(None) };
    let Some(mut cur) = modules.get_item(module)? else { return Ok(None) };
    for part in qualname.split('.') {
        let dict = match cur.getattr("__dict__") {
            Ok(d) => d,
            Err(_) => return Ok(None),
        };
        match dict.get_item(part) {
            Ok(next) => cur = next,
            Err(_) => return Ok(None),
        }
    }
    let Ok(cls) = cur.cast_into::<PyType>() else { return Ok(None) };
    Ok(if class_name(&cls)? == name { Some(cls) } else { None })
}

static ENUM_TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Whether `cls` is an `Enum` subclass.
pub fn is_enum(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    cls.is_subclass(ENUM_TYPE.import(cls.py(), "enum", "Enum")?)
}

fn classify(cls: &Bound<'_, PyType>) -> PyResult<ClassKind> {
    let py = cls.py();
    if is_enum(cls)? {
        return Ok(ClassKind::Enum);
    }
    if cls.hasattr("__pydantic_fields__")? && cls.hasattr("model_construct")? {
        return Ok(ClassKind::Pydantic);
    }
    if let Ok(fields) = cls.getattr("__dataclass_fields__") {
        let (mut init, mut no_init) = (Vec::new(), Vec::new());
        for f in fields.cast_into::<PyDict>()?.values() {
            // ClassVar and InitVar pseudo-fields are not instance state.
            if f.getattr("_field_type")?.getattr("name")?.extract::<String>()? != "_FIELD" {
                continue;
            }
            let name = f.getattr("name")?.cast_into::<PyString>()?.unbind();
            if f.getattr("init")?.is_truthy()? { init.push(name) } else { no_init.push(name) }
        }
        return Ok(ClassKind::Dataclass { init, no_init });
    }
    if cls.is_subclass_of::<PyTuple>()? && cls.hasattr("_fields")? {
        return Ok(ClassKind::NamedTuple);
    }
    if let Some(base) = Builtin::base_of(cls)? {
        return Ok(ClassKind::Subclass { base });
    }
    let mut slots = Vec::new();
    for base in cls.mro() {
        let Ok(d) = base.getattr("__dict__") else { continue };
        let Ok(s) = d.get_item("__slots__") else { continue };
        let names: Vec<Bound<'_, PyAny>> = if s.is_instance_of::<PyString>() {
            vec![s]
        } else {
            s.try_iter()?.collect::<PyResult<_>>()?
        };
        for n in names {
            let n = n.cast_into::<PyString>()?;
            let text = n.to_str()?;
            if text != "__dict__" && text != "__weakref__" && !slots.iter().any(|x: &Py<PyString>| x.bind(py).to_str().ok() == Some(text)) {
                slots.push(n.unbind());
            }
        }
    }
    Ok(ClassKind::Object { slots })
}
