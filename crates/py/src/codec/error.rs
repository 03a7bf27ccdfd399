//! The codec's error type: plain data (no pyo3), so it is Send and testable without Python.
//! Write-side variants become `SerializationError`, read-side ones `CorruptCheckpointError`.

use std::fmt;

/// One step into a value, kept only while an error travels back up to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    /// A dict key, rendered with `repr`-like quoting: `['items']`.
    Key(String),
    /// A list/tuple/set position: `[3]`.
    Index(usize),
    /// An attribute or field of a class instance: `.name`.
    Attr(String),
}

/// Where in a value an error happened; `root` is the caller's context (default `value`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuePath {
    root: Option<String>,
    /// Innermost segment first: errors push while unwinding, which keeps success paths free.
    rev: Vec<PathSeg>,
}

impl ValuePath {
    pub fn push_outer(&mut self, seg: PathSeg) {
        self.rev.push(seg);
    }
    pub fn set_root(&mut self, root: Option<&str>) {
        self.root = root.map(str::to_owned);
    }
}

/// A path longer than this many segments is shown as its outermost `SHOWN_OUTER` and innermost
/// `SHOWN_INNER` segments around a count of the rest: a value nested a thousand levels deep
/// would otherwise fill the error message (and a terminal) with its path.
const SHOWN_OUTER: usize = 8;
const SHOWN_INNER: usize = 3;

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => write!(f, "[{k}]"),
            PathSeg::Index(i) => write!(f, "[{i}]"),
            PathSeg::Attr(a) => write!(f, ".{a}"),
        }
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.as_deref().unwrap_or("value"))?;
        let mut outermost_first = self.rev.iter().rev();
        let len = self.rev.len();
        if len <= SHOWN_OUTER + SHOWN_INNER + 1 {
            return outermost_first.try_for_each(|seg| write!(f, "{seg}"));
        }
        for seg in outermost_first.clone().take(SHOWN_OUTER) {
            write!(f, "{seg}")?;
        }
        write!(f, "...({} more levels)...", len - SHOWN_OUTER - SHOWN_INNER)?;
        outermost_first.by_ref().skip(len - SHOWN_INNER).try_for_each(|seg| write!(f, "{seg}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// Write: a value of a type the codec has no encoding for (a lambda, a file, any object).
    Unsupported { path: ValuePath, type_name: String, reason: String },
    /// Write: an instance of a dataclass / pydantic model / enum / class not on the allowlist.
    NotAllowlisted { path: ValuePath, class: String },
    /// Write or read: nesting deeper than the configured limit.
    TooDeep { path: ValuePath, limit: usize, writing: bool },
    /// Write: Python raised while the codec read the value (e.g. a failing `__dict__`).
    Python { path: ValuePath, message: String },
    /// Read: the bytes are not JSON.
    InvalidJson { message: String },
    /// Read: a tag the codec does not know.
    UnknownTag { path: ValuePath, tag: String },
    /// Read: a class name that is not on the allowlist.
    ClassNotAllowed { path: ValuePath, class: String },
    /// Read: an allowlisted class whose module is not imported in this process (never imported
    /// by the codec).
    ClassNotLoaded { path: ValuePath, class: String },
    /// Read: a tag whose body does not have the expected shape.
    Malformed { path: ValuePath, tag: String, message: String },
    /// Read: rebuilding a value raised in Python (an enum value that no longer exists, ...).
    Rebuild { path: ValuePath, what: String, message: String },
}

impl CodecError {
    /// True for errors found while writing (SerializationError), false for reading.
    pub fn is_write(&self) -> bool {
        match self {
            CodecError::Unsupported { .. }
            | CodecError::NotAllowlisted { .. }
            | CodecError::Python { .. } => true,
            CodecError::TooDeep { writing, .. } => *writing,
            _ => false,
        }
    }

    pub fn path_mut(&mut self) -> Option<&mut ValuePath> {
        match self {
            CodecError::Unsupported { path, .. }
            | CodecError::NotAllowlisted { path, .. }
            | CodecError::TooDeep { path, .. }
            | CodecError::Python { path, .. }
            | CodecError::UnknownTag { path, .. }
            | CodecError::ClassNotAllowed { path, .. }
            | CodecError::ClassNotLoaded { path, .. }
            | CodecError::Malformed { path, .. }
            | CodecError::Rebuild { path, .. } => Some(path),
            CodecError::InvalidJson { .. } => None,
        }
    }

    /// Adds the step from the enclosing container; called while the error unwinds.
    pub(crate) fn at(mut self, seg: PathSeg) -> Self {
        if let Some(p) = self.path_mut() {
            p.push_outer(seg);
        }
        self
    }

    pub(crate) fn with_root(mut self, root: Option<&str>) -> Self {
        if let Some(p) = self.path_mut() {
            p.set_root(root);
        }
        self
    }

    pub(crate) fn malformed(tag: &str, message: impl Into<String>) -> Self {
        CodecError::Malformed { path: ValuePath::default(), tag: tag.to_owned(), message: message.into() }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Unsupported { path, type_name, reason } => {
                write!(f, "cannot serialize {path}: values of type '{type_name}' {reason}")
            }
            CodecError::NotAllowlisted { path, class } => {
                let short = class.rsplit([':', '.']).next().unwrap_or(class);
                write!(
                    f,
                    "cannot serialize {path}: class '{class}' is not allowed in checkpoints; name it \
                     in the graph's state schema, or allow it with compile(..., allowed_types=[{short}]) \
                     or ferrograph.serde.allow({short})"
                )
            }
            // What is too deep first, then where: the path of a deep value is long even when
            // abbreviated.
            CodecError::TooDeep { path, limit, writing } => write!(
                f,
                "cannot {} {}: nested too deep (deeper than the limit of {limit} levels) at {path}",
                if *writing { "serialize" } else { "deserialize" },
                path.root.as_deref().unwrap_or("value"),
            ),
            CodecError::Python { path, message } => {
                write!(f, "cannot serialize {path}: reading it raised {message}")
            }
            CodecError::InvalidJson { message } => write!(f, "checkpoint data is not valid JSON: {message}"),
            CodecError::UnknownTag { path, tag } => {
                write!(f, "corrupt checkpoint data at {path}: unknown type tag {tag:?}")
            }
            CodecError::ClassNotAllowed { path, class } => write!(
                f,
                "refusing to rebuild {path}: class '{class}' is not allowed for this read (the \
                 reading graph's schemas do not name it); allow it with compile(..., allowed_types=[...]), \
                 ferrograph.serde.allow(...) or ferrograph.serde.Serializer(allowed=[...]), or pass \
                 --allow {class} to the ferrograph command"
            ),
            CodecError::ClassNotLoaded { path, class } => write!(
                f,
                "cannot rebuild {path}: class '{class}' is allowed but its module is not \
                 imported in this process (the codec never imports modules; import it first)"
            ),
            CodecError::Malformed { path, tag, message } => {
                write!(f, "corrupt checkpoint data at {path}: malformed {tag:?} value: {message}")
            }
            CodecError::Rebuild { path, what, message } => {
                write!(f, "cannot rebuild {path} as {what}: {message}")
            }
        }
    }
}

impl std::error::Error for CodecError {}

impl From<super::json::SyntaxError> for CodecError {
    fn from(e: super::json::SyntaxError) -> Self {
        CodecError::InvalidJson { message: format!("{} at byte {}", e.what, e.pos) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_renders_outermost_first_with_root() {
        let e = CodecError::Unsupported {
            path: ValuePath::default(),
            type_name: "function".into(),
            reason: "cannot be serialized".into(),
        }
        .at(PathSeg::Attr("x".into()))
        .at(PathSeg::Index(3))
        .at(PathSeg::Key("'items'".into()))
        .with_root(Some("state"));
        assert_eq!(
            e.to_string(),
            "cannot serialize state['items'][3].x: values of type 'function' cannot be serialized"
        );
        assert!(e.is_write());
    }

    #[test]
    fn a_deep_path_is_shown_abbreviated_after_what_is_wrong() {
        let mut e = CodecError::TooDeep { path: ValuePath::default(), limit: 1000, writing: true };
        for _ in 0..1000 {
            e = e.at(PathSeg::Index(0));
        }
        let e = e.at(PathSeg::Key("'messages'".into())).with_root(Some("state"));
        let text = e.to_string();
        assert_eq!(
            text,
            "cannot serialize state: nested too deep (deeper than the limit of 1000 levels) at \
             state['messages'][0][0][0][0][0][0][0]...(990 more levels)...[0][0][0]"
        );
    }

    #[test]
    fn a_short_path_is_shown_whole() {
        let mut e = CodecError::TooDeep { path: ValuePath::default(), limit: 12, writing: false };
        for i in 0..12 {
            e = e.at(PathSeg::Index(i));
        }
        assert!(e.to_string().ends_with("at value[11][10][9][8][7][6][5][4][3][2][1][0]"), "{e}");
    }

    #[test]
    fn read_errors_are_not_write_errors() {
        let e = CodecError::malformed("tuple", "expected a list");
        assert!(!e.is_write());
        assert!(e.to_string().contains("at value"));
        assert!(!CodecError::TooDeep { path: ValuePath::default(), limit: 3, writing: false }.is_write());
    }

    #[test]
    fn syntax_errors_are_invalid_json_with_an_offset() {
        let e = CodecError::from(super::super::json::SyntaxError { pos: 7, what: "expected value" });
        assert_eq!(e.to_string(), "checkpoint data is not valid JSON: expected value at byte 7");
        assert!(!e.is_write());
        assert_eq!(e.clone().at(PathSeg::Index(1)), e);
    }
}
