//! A small JSON reader and writer, so the wasm bundle carries no serde.
//!
//! The widget reads and writes a handful of fixed shapes (feed messages,
//! poll answers, its `localStorage` entries, Kommo's answers) and sends a few
//! (the call result, the settings, Kommo notifications). serde's generic
//! machinery (`serde_json`, the derived visitors, float parsing and printing)
//! was the largest part of the bundle, so the widget parses JSON into a plain
//! [`Json`] tree and writes it with [`Writer`]; the shapes themselves are in
//! [`crate::wire`]. The bytes written are the ones `serde_json` writes for
//! the same types (unit tests compare them).
//!
//! Numbers are kept as their text and read as integers only: every number
//! the widget handles is an integer (ids, offsets, Unix times, durations),
//! and serde refused a fraction where an integer was expected too.

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    /// The number as written.
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    /// Members in document order.
    Obj(Vec<(String, Json)>),
}

/// Parses a JSON text (the whole text, surrounding whitespace allowed).
pub fn parse(text: &str) -> Option<Json> {
    let mut p = Parser { s: text.as_bytes(), i: 0, depth: 0 };
    let v = p.value()?;
    p.ws();
    (p.i == p.s.len()).then_some(v)
}

impl Json {
    /// `self[key]` of an object (the first member of that name).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Json::Obj(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }

    /// A non-negative integer (no fraction, no exponent).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// An integer (no fraction, no exponent).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Num(n) => n.parse().ok(),
            _ => None,
        }
    }
}

/// An object's members as a `serde_json::Map` holds them: ordered by name,
/// and of equal names only the last.
pub fn map_order(members: &[(String, Json)]) -> Vec<&(String, Json)> {
    let mut sorted: Vec<&(String, Json)> = members.iter().rev().collect();
    // Stable: of equal names, the last in the text comes first and stays.
    sort_by(&mut sorted, |a, b| a.0 < b.0);
    sorted.dedup_by(|later, kept| later.0 == kept.0);
    sorted
}

/// A stable insertion sort (`less(a, b)`: `a` goes before `b`), for the
/// short, mostly sorted lists the widget sorts: a fraction of the code of
/// `slice::sort`, which is instantiated anew for every element type.
pub fn sort_by<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && less(&v[j], &v[j - 1]) {
            v.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// A value as compact JSON text, objects in [`map_order`] (as
/// `serde_json::Value` prints). Numbers are kept as written.
pub fn to_text(value: &Json) -> String {
    fn write(out: &mut String, value: &Json) {
        match value {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(n),
            Json::Str(s) => write_str(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            Json::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in map_order(members).into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    write(out, v);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(&mut out, value);
    out
}

/// Nesting deeper than this is refused (serde_json's limit too).
const MAX_DEPTH: u32 = 128;

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        self.s[self.i..].starts_with(word).then(|| {
            self.i += word.len();
            value
        })
    }

    fn value(&mut self) -> Option<Json> {
        self.ws();
        match *self.s.get(self.i)? {
            b'n' => self.literal(b"null", Json::Null),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'"' => self.string().map(Json::Str),
            b'[' => {
                self.enter()?;
                let mut items = Vec::new();
                if !self.eat(b']') {
                    loop {
                        items.push(self.value()?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Some(Json::Arr(items))
            }
            b'{' => {
                self.enter()?;
                let mut members = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        if !self.eat(b':') {
                            return None;
                        }
                        members.push((key, self.value()?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                self.depth -= 1;
                Some(Json::Obj(members))
            }
            _ => self.number(),
        }
    }

    fn enter(&mut self) -> Option<()> {
        self.i += 1;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as text.
    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let first = *self.s.get(self.i)?;
        let int = self.digits();
        if int == 0 || (first == b'0' && int > 1) {
            return None;
        }
        if self.s.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        // Only ASCII was consumed, so this is a char boundary.
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        Some(Json::Num(text.to_owned()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        h.iter().try_fold(0u32, |acc, &b| Some(acc * 16 + char::from(b).to_digit(16)?))
    }

    /// A string starting at `"`; the input is valid UTF-8 (a `&str`).
    fn string(&mut self) -> Option<String> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            match b {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return None;
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1F => return None,
                b => out.push(b),
            }
        }
    }
}

/// Writes JSON text: `{`/`}` and `[`/`]` with the commas in between.
#[derive(Default)]
pub struct Writer {
    out: String,
    /// Right after `{` or `[`: the next member takes no comma. Only
    /// [`Writer::key`] and [`Writer::item`] write commas.
    first: bool,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    /// Starts an object (as a value).
    pub fn open(&mut self) -> &mut Self {
        self.out.push('{');
        self.first = true;
        self
    }

    pub fn close(&mut self) -> &mut Self {
        self.out.push('}');
        self.first = false;
        self
    }

    pub fn open_array(&mut self) -> &mut Self {
        self.out.push('[');
        self.first = true;
        self
    }

    pub fn close_array(&mut self) -> &mut Self {
        self.out.push(']');
        self.first = false;
        self
    }

    /// The name of the next object member; its value follows.
    pub fn key(&mut self, name: &str) -> &mut Self {
        self.sep();
        write_str(&mut self.out, name);
        self.out.push(':');
        self
    }

    /// Marks the start of an array element (the comma before it).
    pub fn item(&mut self) -> &mut Self {
        self.sep();
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        write_str(&mut self.out, s);
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.out.push_str("null");
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        write_u64(&mut self.out, n);
        self
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.out.push('-');
        }
        write_u64(&mut self.out, n.unsigned_abs());
        self
    }

    /// `null` or the value.
    pub fn opt_i64(&mut self, n: Option<i64>) -> &mut Self {
        match n {
            Some(n) => self.i64(n),
            None => self.null(),
        }
    }

    pub fn opt_u64(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.u64(n),
            None => self.null(),
        }
    }
}

/// Decimal digits of `n`.
pub fn write_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        out.push(char::from(b));
    }
}

/// `n` in decimal.
pub fn u64_string(n: u64) -> String {
    let mut s = String::new();
    write_u64(&mut s, n);
    s
}

/// A JSON string literal, escaped as serde_json escapes it.
pub fn write_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                out.push(char::from(HEX[(c as usize) >> 4]));
                out.push(char::from(HEX[(c as usize) & 0xF]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse() {
        let v =
            parse(r#" {"a": [1, -2, 3.5e2, true, false, null], "b": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "c": {}} "#)
                .unwrap();
        assert_eq!(v.get("a").unwrap().as_array().unwrap().len(), 6);
        assert_eq!(v.get("a").unwrap().as_array().unwrap()[1].as_i64(), Some(-2));
        assert_eq!(v.get("a").unwrap().as_array().unwrap()[2].as_u64(), None, "not an integer");
        assert_eq!(v.get("b").unwrap().as_str(), Some("x\"\\/\u{8}\u{c}\n\r\té😀"));
        assert_eq!(v.get("c"), Some(&Json::Obj(vec![])));
        assert_eq!(parse("\"ünï 名前\"").unwrap().as_str(), Some("ünï 名前"));
        assert_eq!(parse("18446744073709551615").unwrap().as_u64(), Some(u64::MAX));
    }

    #[test]
    fn bad_json_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "01",
            "1.",
            "-",
            "1e",
            "\"\\x\"",
            "\"\u{1}\"",
            "nul",
            "[1] x",
            "{a:1}",
            "\"\\ud800\"",
            "+1",
            ".5",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(parse(&deep), None);
    }

    #[test]
    fn strings_are_escaped_like_serde_json() {
        for s in ["plain", "q\"b\\s/", "\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}", "ünï 名前 😀", "</script>"] {
            let mut out = String::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
            assert_eq!(parse(&out).unwrap().as_str(), Some(s));
        }
    }

    #[test]
    fn values_print_as_serde_json_values_print() {
        for text in [r#"{"b":[1,"x\n",{"d":null,"c":true}],"a":-2,"b":false}"#, "[]", "{}", "\"s\"", "12"] {
            let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(to_text(&parse(text).unwrap()), theirs.to_string(), "{text}");
        }
    }

    #[test]
    fn the_sort_is_stable() {
        let mut v = vec![(3, 'a'), (1, 'b'), (3, 'c'), (0, 'd'), (1, 'e')];
        sort_by(&mut v, |a, b| a.0 < b.0);
        assert_eq!(v, [(0, 'd'), (1, 'b'), (1, 'e'), (3, 'a'), (3, 'c')]);
        let mut empty: Vec<u8> = Vec::new();
        sort_by(&mut empty, |a, b| a < b);
    }

    #[test]
    fn the_writer_places_commas() {
        let mut w = Writer::new();
        w.open().key("a").u64(0).key("b").open_array();
        w.item().i64(-12).item().null().item().open().key("c").bool(true).close().close_array();
        w.key("d").opt_u64(Some(u64::MAX)).key("e").opt_i64(None).key("f").str("x").close();
        assert_eq!(w.finish(), r#"{"a":0,"b":[-12,null,{"c":true}],"d":18446744073709551615,"e":null,"f":"x"}"#);
        assert_eq!(u64_string(1_763_691_600_123), "1763691600123");
    }
}
