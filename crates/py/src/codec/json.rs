//! JSON text primitives of the codec, without Python: the writer's string escaping and number
//! formatting, and the byte [`Reader`] the decoder drives (whitespace, literals, strings,
//! numbers, skipping a value). Pure, so it is tested with plain `cargo test`.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is `"`, `\` or a control byte (< 0x20). A flag above
/// a true match may be spurious (borrows carry upwards), but the lowest flag is always exact.
#[inline(always)]
fn special_mask(w: u64) -> u64 {
    let quote = w ^ (LO * u64::from(b'"'));
    let backslash = w ^ (LO * u64::from(b'\\'));
    ((quote.wrapping_sub(LO) & !quote)
        | (backslash.wrapping_sub(LO) & !backslash)
        | (w.wrapping_sub(LO * 0x20) & !w))
        & HI
}

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b);
    u64::from_le_bytes(w)
}

/// The offset of the first flagged byte in a 16-byte window, from its two word masks.
#[inline(always)]
fn first_flag(m1: u64, m2: u64) -> usize {
    (if m1 != 0 { m1.trailing_zeros() } else { 64 + m2.trailing_zeros() } / 8) as usize
}

/// The bytes a JSON string cannot hold raw, by value: one load a byte where three comparisons
/// were, for the short strings (keys, ids, names) that most of a value's strings are.
const SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = true;
        c += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// Offset of the first `"`, `\` or control byte: the bytes a JSON string cannot hold raw.
/// Scans 16 bytes per step; the tail of a long string is the last 16 bytes (overlapping bytes
/// already found clean), a short string is looked up byte by byte.
#[inline(always)]
pub fn find_special(b: &[u8]) -> Option<usize> {
    if b.len() < 16 {
        return b.iter().position(|&c| SPECIAL[usize::from(c)]);
    }
    let mut base = 0;
    while base + 16 <= b.len() {
        let (m1, m2) = (special_mask(word(&b[base..base + 8])), special_mask(word(&b[base + 8..base + 16])));
        if m1 | m2 != 0 {
            return Some(base + first_flag(m1, m2));
        }
        base += 16;
    }
    if base == b.len() {
        return None;
    }
    let last = b.len() - 16;
    let (m1, m2) = (special_mask(word(&b[last..last + 8])), special_mask(word(&b[last + 8..])));
    (m1 | m2 != 0).then(|| last + first_flag(m1, m2))
}

/// Appends `s` as a JSON string literal; runs of bytes that need no escape are copied whole.
#[inline]
pub fn write_str(out: &mut String, s: &str) {
    match find_special(s.as_bytes()) {
        None => {
            out.reserve(s.len() + 2);
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Some(first) => write_escaped(out, s, first),
    }
}

#[inline(never)]
fn write_escaped(out: &mut String, s: &str, first: usize) {
    out.reserve(s.len() + 8);
    out.push('"');
    let bytes = s.as_bytes();
    let (mut start, mut i) = (0, first);
    loop {
        out.push_str(&s[start..i]);
        write_escape(out, bytes[i]);
        start = i + 1;
        match find_special(&bytes[start..]) {
            Some(off) => i = start + off,
            None => break,
        }
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cold]
fn write_escape(out: &mut String, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        b'"' => out.push_str("\\\""),
        b'\\' => out.push_str("\\\\"),
        b'\n' => out.push_str("\\n"),
        b'\r' => out.push_str("\\r"),
        b'\t' => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        _ => {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 15)]));
        }
    }
}

pub fn write_i64(out: &mut String, i: i64) {
    out.push_str(itoa::Buffer::new().format(i));
}

pub fn write_u64(out: &mut String, u: u64) {
    out.push_str(itoa::Buffer::new().format(u));
}

/// Appends a finite float in its shortest round-tripping form, which always has a `.` or an
/// exponent, so it reads back as a float and never as an int. False (nothing written) for NaN
/// and infinities, which JSON cannot hold.
pub fn write_f64(out: &mut String, f: f64) -> bool {
    if !f.is_finite() {
        return false;
    }
    out.push_str(zmij::Buffer::new().format_finite(f));
    true
}

/// Why the bytes are not JSON, and where (a byte offset into them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: usize,
    pub what: &'static str,
}

/// A number as read: ints that fit 64 bits stay exact; anything else is a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// A cursor over JSON bytes. Methods that read a token expect the cursor on its first byte
/// (after [`Reader::peek`] skipped whitespace).
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    /// The byte offset of the cursor.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn err(&self, what: &'static str) -> SyntaxError {
        SyntaxError { pos: self.pos, what }
    }

    /// The next byte after whitespace, without consuming it.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.data.get(self.pos) {
            if !matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(c);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes the byte [`Reader::peek`] returned.
    #[inline]
    pub fn bump(&mut self) {
        self.pos += 1;
    }

    /// Consumes `c` (after whitespace) if it is next.
    #[inline]
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub fn expect(&mut self, c: u8, what: &'static str) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    /// Only whitespace may follow the value.
    pub fn end(&mut self) -> Result<(), SyntaxError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.err("trailing characters")),
        }
    }

    /// `true`, `false` or `null`, whose first byte is next.
    pub fn literal(&mut self, word: &'static str) -> Result<(), SyntaxError> {
        if self.data[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("expected value"))
        }
    }

    /// A string whose `"` is next, as UTF-8 bytes that are not yet checked to be UTF-8 (the
    /// caller's decoder checks them anyway: see [`Reader::string_str`]). Borrowed from the
    /// input when it has no escapes, otherwise unescaped into `scratch`.
    #[inline]
    pub fn string<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Result<&'s [u8], SyntaxError>
    where
        'a: 's,
    {
        let start = self.pos + 1;
        let rest = &self.data[start..];
        let Some(off) = find_special(rest) else {
            self.pos = self.data.len();
            return Err(self.err("EOF while parsing a string"));
        };
        if rest[off] == b'"' {
            self.pos = start + off + 1;
            return Ok(&rest[..off]);
        }
        self.escaped_string(start, scratch)
    }

    /// [`Reader::string`], checked to be UTF-8.
    pub fn string_str<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Result<&'s str, SyntaxError>
    where
        'a: 's,
    {
        let start = self.pos;
        let bytes = self.string(scratch)?;
        std::str::from_utf8(bytes).map_err(|_| SyntaxError { pos: start, what: "invalid UTF-8 in string" })
    }

    #[inline(never)]
    fn escaped_string<'s>(&mut self, start: usize, scratch: &'s mut Vec<u8>) -> Result<&'s [u8], SyntaxError> {
        scratch.clear();
        let mut i = start;
        loop {
            let rest = &self.data[i..];
            let Some(off) = find_special(rest) else {
                self.pos = self.data.len();
                return Err(self.err("EOF while parsing a string"));
            };
            scratch.extend_from_slice(&rest[..off]);
            i += off;
            match self.data[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Ok(scratch.as_slice());
                }
                b'\\' => {
                    self.pos = i;
                    i = self.escape(i + 1, scratch)?;
                }
                _ => {
                    self.pos = i;
                    return Err(self.err("control character in string"));
                }
            }
        }
    }

    /// Reads the escape after a `\` at `i`; returns the offset after it.
    fn escape(&mut self, i: usize, out: &mut Vec<u8>) -> Result<usize, SyntaxError> {
        let Some(&c) = self.data.get(i) else {
            return Err(self.err("EOF while parsing a string"));
        };
        let mut push = |c: char| out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        push(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(i + 1)?;
                if !(0xD800..0xE000).contains(&hi) {
                    push(char::from_u32(hi).ok_or_else(|| self.err("invalid escape"))?);
                    return Ok(i + 5);
                }
                let lo = match (self.data.get(i + 5), self.data.get(i + 6)) {
                    (Some(b'\\'), Some(b'u')) if hi < 0xDC00 => self.hex4(i + 7)?,
                    _ => return Err(self.err("lone surrogate in hex escape")),
                };
                if !(0xDC00..0xE000).contains(&lo) {
                    return Err(self.err("lone surrogate in hex escape"));
                }
                let code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                push(char::from_u32(code).ok_or_else(|| self.err("invalid escape"))?);
                return Ok(i + 11);
            }
            _ => return Err(self.err("invalid escape")),
        });
        Ok(i + 1)
    }

    fn hex4(&self, i: usize) -> Result<u32, SyntaxError> {
        let digits = self.data.get(i..i + 4).ok_or_else(|| self.err("EOF while parsing a string"))?;
        digits.iter().try_fold(0u32, |n, &c| {
            let d = char::from(c).to_digit(16).ok_or_else(|| self.err("invalid escape"))?;
            Ok(n * 16 + d)
        })
    }

    /// A number whose first byte (`-` or a digit) is next.
    pub fn number(&mut self) -> Result<Number, SyntaxError> {
        let d = self.data;
        let start = self.pos;
        let mut i = start;
        let neg = d.get(i) == Some(&b'-');
        i += usize::from(neg);
        let digits_start = i;
        match d.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while d.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(SyntaxError { pos: i, what: "invalid number" }),
        }
        let digits_end = i;
        let mut float = false;
        if d.get(i) == Some(&b'.') {
            i += 1;
            float = true;
            let frac = i;
            while d.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac {
                return Err(SyntaxError { pos: i, what: "invalid number" });
            }
        }
        if matches!(d.get(i), Some(b'e' | b'E')) {
            i += 1;
            float = true;
            if matches!(d.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp = i;
            while d.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp {
                return Err(SyntaxError { pos: i, what: "invalid number" });
            }
        }
        self.pos = i;
        if !float && digits_end - digits_start <= 20 {
            let mag = d[digits_start..digits_end]
                .iter()
                .try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')));
            match (mag, neg) {
                (Some(m), false) => {
                    return Ok(i64::try_from(m).map_or(Number::UInt(m), Number::Int));
                }
                (Some(m), true) if m <= 1 << 63 => return Ok(Number::Int(0i64.wrapping_sub_unsigned(m))),
                _ => {}
            }
        }
        // Too big for 64 bits, or a float: the standard parser is exact (round-to-nearest).
        let text = std::str::from_utf8(&d[start..i]).map_err(|_| self.err("invalid number"))?;
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Number::Float(f)),
            _ => Err(SyntaxError { pos: start, what: "number out of range" }),
        }
    }

    /// Skips one value whose first byte is next, without recursion, and returns its bytes. Only
    /// its bracket and string structure is checked: callers that use the bytes parse them.
    pub fn skip_value(&mut self) -> Result<&'a [u8], SyntaxError> {
        let start = self.pos;
        let mut depth = 0usize;
        let mut scratch = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("EOF while parsing a value")),
                Some(b'"') => {
                    self.string(&mut scratch)?;
                }
                Some(b'[' | b'{') => {
                    depth += 1;
                    self.bump();
                }
                Some(b']' | b'}') => {
                    depth = depth.checked_sub(1).ok_or_else(|| self.err("expected value"))?;
                    self.bump();
                }
                Some(b',' | b':') if depth > 0 => self.bump(),
                Some(_) => {
                    while self.data.get(self.pos).is_some_and(|c| {
                        !matches!(c, b',' | b':' | b']' | b'}' | b'"' | b'[' | b'{' | b' ' | b'\n' | b'\r' | b'\t')
                    }) {
                        self.pos += 1;
                    }
                }
            }
            if depth == 0 {
                return Ok(&self.data[start..self.pos]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut out = String::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn strings_escape_exactly_what_json_requires() {
        assert_eq!(esc(""), r#""""#);
        assert_eq!(esc("plain text, long enough to cross a 16-byte block"), "\"plain text, long enough to cross a 16-byte block\"");
        assert_eq!(esc("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(esc("\n\r\t\u{8}\u{c}\u{0}\u{1f}"), r#""\n\r\t\b\f\u0000\u001f""#);
        assert_eq!(esc("\u{7f}é→😀/"), "\"\u{7f}é→😀/\"");
        // Every position within and across blocks, so the word scan and the tail both count.
        for n in 0..40 {
            let mut s = "x".repeat(n);
            s.push('"');
            s.push_str(&"y".repeat(n % 7));
            assert_eq!(esc(&s), format!("\"{}\\\"{}\"", "x".repeat(n), "y".repeat(n % 7)));
            assert_eq!(serde_json::from_str::<String>(&esc(&s)).unwrap(), s);
        }
    }

    #[test]
    fn the_short_string_table_marks_exactly_what_json_cannot_hold_raw() {
        for c in 0..=255u8 {
            assert_eq!(SPECIAL[usize::from(c)], c == b'"' || c == b'\\' || c < 0x20, "byte {c:#x}");
            // Through both scans: alone (the table) and in a 16-byte block (the word masks).
            let block = [c; 16];
            assert_eq!(find_special(&[c]), find_special(&block), "byte {c:#x}");
        }
    }

    #[test]
    fn find_special_reports_the_first_match_only() {
        assert_eq!(find_special(b"abcdefghijklmnopqrstuvwxyz"), None);
        assert_eq!(find_special(b"\xff\xfe\x80\x7f abc"), None);
        // A control byte right after a quote-like byte: the borrow must not hide or move it.
        assert_eq!(find_special(b"aaaaaaa!\x00\"bbbbbbbbbbbbbb"), Some(8));
        assert_eq!(find_special(b"aaaaaaaaaaaaaaaaaaaa\\"), Some(20));
        for i in 0..33 {
            for c in [b'"', b'\\', 0u8, 0x1f] {
                let mut v = vec![b'z'; 33];
                v[i] = c;
                v[32.min(i + 1)] = b'"';
                assert_eq!(find_special(&v), Some(i), "byte {c:#x} at {i}");
            }
        }
        // Every length, so the padded tail is tested at each size.
        for len in 0..40 {
            assert_eq!(find_special(&vec![b'~'; len]), None, "clean, length {len}");
            for i in 0..len {
                let mut v = vec![b' '; len];
                v[i] = b'\n';
                assert_eq!(find_special(&v), Some(i), "length {len}, control byte at {i}");
            }
        }
    }

    #[test]
    fn numbers_format_so_they_read_back_as_the_same_kind() {
        let mut s = String::new();
        write_i64(&mut s, i64::MIN);
        s.push(' ');
        write_u64(&mut s, u64::MAX);
        assert_eq!(s, "-9223372036854775808 18446744073709551615");
        for f in [0.0, -0.0, 1.0, 1e16, 1e-7, 0.1, 123456.789, f64::MAX, f64::MIN_POSITIVE, 5e-324] {
            let mut s = String::new();
            assert!(write_f64(&mut s, f));
            assert!(s.contains(['.', 'e', 'E']), "{s} would read back as an int");
            assert_eq!(Reader::new(s.as_bytes()).number(), Ok(Number::Float(f)));
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), f.to_bits());
        }
        assert!(!write_f64(&mut s, f64::NAN));
        assert!(!write_f64(&mut s, f64::NEG_INFINITY));
    }

    fn num(s: &str) -> Result<Number, SyntaxError> {
        let mut r = Reader::new(s.as_bytes());
        let n = r.number()?;
        r.end()?;
        Ok(n)
    }

    #[test]
    fn numbers_parse_exactly_within_64_bits() {
        assert_eq!(num("0"), Ok(Number::Int(0)));
        assert_eq!(num("-0"), Ok(Number::Int(0)));
        assert_eq!(num("-9223372036854775808"), Ok(Number::Int(i64::MIN)));
        assert_eq!(num("9223372036854775807"), Ok(Number::Int(i64::MAX)));
        assert_eq!(num("9223372036854775808"), Ok(Number::UInt(1 << 63)));
        assert_eq!(num("18446744073709551615"), Ok(Number::UInt(u64::MAX)));
        assert_eq!(num("18446744073709551616"), Ok(Number::Float(18446744073709551616.0)));
        assert_eq!(num("-9223372036854775809"), Ok(Number::Float(-9223372036854775809.0)));
        assert_eq!(num("1.5e3"), Ok(Number::Float(1500.0)));
        assert_eq!(num("-2E-2"), Ok(Number::Float(-0.02)));
        assert_eq!(num("1e400").unwrap_err().what, "number out of range");
        for bad in ["01", "1.", ".5", "-", "1e", "1e+", "+1", "0x10"] {
            assert!(num(bad).is_err(), "{bad} parsed");
        }
    }

    fn string(s: &str) -> Result<String, SyntaxError> {
        let mut r = Reader::new(s.as_bytes());
        let mut scratch = Vec::new();
        assert_eq!(r.peek(), Some(b'"'));
        let out = r.string_str(&mut scratch)?.to_owned();
        r.end()?;
        Ok(out)
    }

    #[test]
    fn strings_unescape_and_refuse_bad_input() {
        assert_eq!(string(r#""plain""#).unwrap(), "plain");
        assert_eq!(string(r#""a\"b\\c\/\b\f\n\r\t""#).unwrap(), "a\"b\\c/\u{8}\u{c}\n\r\t");
        assert_eq!(string(r#""\u00e9\u2192\ud83d\ude00x""#).unwrap(), "é→😀x");
        assert_eq!(string("\"é→\"").unwrap(), "é→");
        assert_eq!(string(r#""\ud83d""#).unwrap_err().what, "lone surrogate in hex escape");
        assert_eq!(string(r#""\ude00""#).unwrap_err().what, "lone surrogate in hex escape");
        assert_eq!(string(r#""\x""#).unwrap_err().what, "invalid escape");
        assert_eq!(string(r#""\u12G4""#).unwrap_err().what, "invalid escape");
        assert_eq!(string("\"a\nb\"").unwrap_err().what, "control character in string");
        assert_eq!(string("\"abc").unwrap_err().what, "EOF while parsing a string");
        assert_eq!(string("\"ab\\").unwrap_err().what, "EOF while parsing a string");
        let mut r = Reader::new(b"\"a\xffb\" ");
        let err = r.string_str(&mut Vec::new()).unwrap_err();
        assert_eq!((err.pos, err.what), (0, "invalid UTF-8 in string"));
        // Unchecked, the bytes come back as they are, escapes decoded to UTF-8.
        let mut r = Reader::new(b"\"a\xff\\u00e9\"");
        assert_eq!(r.string(&mut Vec::new()).unwrap(), b"a\xff\xc3\xa9");
    }

    #[test]
    fn skip_value_is_flat_and_returns_the_span() {
        let mut r = Reader::new(br#" {"a": [1, "]}", {"b": null}]} , 3"#);
        assert_eq!(r.peek(), Some(b'{'));
        assert_eq!(r.skip_value().unwrap(), br#"{"a": [1, "]}", {"b": null}]}"#);
        assert!(r.eat(b','));
        assert_eq!(r.peek(), Some(b'3'));
        assert_eq!(r.skip_value().unwrap(), b"3");
        let deep = "[".repeat(1_000_000);
        assert!(Reader::new(deep.as_bytes()).skip_value().is_err());
        assert!(Reader::new(b"]").skip_value().is_err());
    }

    #[test]
    fn errors_point_at_the_offending_byte() {
        let mut r = Reader::new(b"[1,\n  x]");
        r.bump();
        r.number().unwrap();
        r.expect(b',', "expected ','").unwrap();
        assert_eq!(r.peek(), Some(b'x'));
        assert_eq!(r.literal("null").unwrap_err(), SyntaxError { pos: 6, what: "expected value" });
        assert_eq!(r.expect(b']', "expected ']'").unwrap_err().pos, 6);
    }
}
