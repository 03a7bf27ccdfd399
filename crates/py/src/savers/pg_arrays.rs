//! Postgres array literals of a batch's columns: the Postgres savers store a batch's checkpoint
//! rows and pending writes with one statement whose columns are bound as arrays, sent as
//! literals (`{"a","b",NULL}`; psycopg adapts a str much faster than a list). Building them in
//! Python cost more than the statement's server time for a 10-node run's batch.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

/// Appends `value` as a quoted element of an array literal (`"` and `\` escaped).
fn push_text(out: &mut String, value: &str) {
    out.reserve(value.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, b) in value.bytes().enumerate() {
        if b == b'"' || b == b'\\' {
            out.push_str(&value[start..i]);
            out.push('\\');
            start = i;
        }
    }
    out.push_str(&value[start..]);
    out.push('"');
}

/// Appends `value` as a bytea element in hex form (`"\\x..."`: the array literal's escape
/// leaves `\x...`, bytea's hex input).
fn push_bytea(out: &mut String, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(value.len() * 2 + 6);
    out.push_str("\"\\\\x");
    for b in value {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out.push('"');
}

/// Appends `value` as an element of kind `kind` (see [`pg_array_columns`]).
fn push_element(out: &mut String, value: &Bound<'_, PyAny>, kind: char) -> PyResult<()> {
    let wrong = |what: &str| {
        let name = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!("an array of {what} holds a {name}"))
    };
    match kind {
        't' if value.is_none() => out.push_str("NULL"),
        't' => push_text(out, value.cast::<PyString>().map_err(|_| wrong("str"))?.to_str()?),
        'i' => out.push_str(&value.extract::<i64>().map_err(|_| wrong("int"))?.to_string()),
        'b' => push_bytea(out, value.cast::<PyBytes>().map_err(|_| wrong("bytes"))?.as_bytes()),
        other => return Err(PyValueError::new_err(format!("unknown array kind {other:?}"))),
    }
    Ok(())
}

/// The array literal of `values`, of kind `kind`: `t` text (None is NULL), `i` integer, `b`
/// bytea.
#[pyfunction]
pub fn pg_array(values: &Bound<'_, PyAny>, kind: char) -> PyResult<String> {
    let mut out = String::from("{");
    for (n, value) in values.try_iter()?.enumerate() {
        if n > 0 {
            out.push(',');
        }
        push_element(&mut out, &value?, kind)?;
    }
    out.push('}');
    Ok(out)
}

/// The array literals of `rows`' columns, one per character of `kinds` (see [`pg_array`]):
/// a batch's rows bound column by column. Every row has at least `len(kinds)` columns.
#[pyfunction]
pub fn pg_array_columns(rows: &Bound<'_, PyAny>, kinds: &str) -> PyResult<Vec<String>> {
    let mut columns: Vec<String> = kinds.chars().map(|_| String::from("{")).collect();
    for (n, row) in rows.try_iter()?.enumerate() {
        let row = row?;
        // A row is a list (a put's held row) or a tuple (a write's).
        let row = match row.cast_into::<PyList>() {
            Ok(list) => list.to_tuple(),
            Err(e) => e.into_inner().cast_into::<PyTuple>().map_err(|_| PyTypeError::new_err("a row must be a list or a tuple"))?,
        };
        for ((i, kind), out) in kinds.chars().enumerate().zip(columns.iter_mut()) {
            if n > 0 {
                out.push(',');
            }
            push_element(out, &row.get_borrowed_item(i)?.to_owned(), kind)?;
        }
    }
    for column in &mut columns {
        column.push('}');
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_elements_escape_quotes_and_backslashes_only() {
        let mut out = String::new();
        push_text(&mut out, r#"{"a":"b\n"} é,"#);
        assert_eq!(out, r#""{\"a\":\"b\\n\"} é,""#);
    }

    #[test]
    fn bytea_elements_are_hex_behind_an_escaped_backslash() {
        let mut out = String::new();
        push_bytea(&mut out, &[0, 0xab, b'{']);
        assert_eq!(out, r#""\\x00ab7b""#);
    }
}
