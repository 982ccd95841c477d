//! The members of a JSON object found in its text, each value kept as its JSON text: what
//! rendering a stored document needs (which top-level attributes it has, and their text to
//! copy), without parsing the values. One pass over the bytes: strings are skipped to their
//! closing quote, arrays and objects to their matching bracket.
//!
//! The text is expected to be JSON that scimd wrote; anything else gives None (the caller then
//! takes the long way, through a full parse), never a value cut in the wrong place. Strings
//! are checked for a closing quote and a valid escape after each backslash, scalars for
//! their characters, brackets for their nesting; not checked: the grammar of numbers, and
//! that `\u` is followed by four hex digits (the caller copies the value's text, and only the
//! escapes in a key are decoded, by serde_json).

use std::borrow::Cow;

/// The members of the object `text`, in their order: each key (borrowed unless it holds
/// escapes) with its value's text. None if `text` is not one object (besides whitespace).
pub fn members(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let mut scan = Scan { text, at: 0 };
    let mut out = Vec::with_capacity(16);
    scan.space();
    scan.expect(b'{')?;
    scan.space();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let key = scan.key()?;
            scan.space();
            scan.expect(b':')?;
            scan.space();
            let value = scan.value()?;
            out.push((key, value));
            scan.space();
            match scan.next()? {
                b',' => scan.space(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scan.space();
    (scan.at == text.len()).then_some(out)
}

/// How deep arrays and objects may nest in a value (scimd's own documents nest three deep).
const MAX_DEPTH: usize = 128;

struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// A string from its opening quote to past its closing one; whether it holds escapes.
    fn string(&mut self) -> Option<bool> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            self.at += special(&self.bytes()[self.at..])?;
            match self.next()? {
                b'"' => return Some(escaped),
                b'\\' => {
                    if !matches!(self.next()?, b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' | b'u') {
                        return None;
                    }
                    escaped = true;
                }
                // Control characters appear in JSON strings only escaped.
                _ => return None,
            }
        }
    }

    fn key(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at;
        let escaped = self.string()?;
        let quoted = &self.text[start..self.at];
        if escaped {
            serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(&quoted[1..quoted.len() - 1]))
        }
    }

    /// One value's text.
    fn value(&mut self) -> Option<&'a str> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.nested()?,
            _ => {
                while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' | b'a'..=b'z') = self.peek() {
                    self.at += 1;
                }
                let scalar = &self.text[start..self.at];
                let number = scalar.bytes().next().is_some_and(|b| b == b'-' || b.is_ascii_digit());
                if !(number || matches!(scalar, "true" | "false" | "null")) {
                    return None;
                }
            }
        }
        Some(&self.text[start..self.at])
    }

    /// An array or object, to past its closing bracket; each bracket matched by kind.
    fn nested(&mut self) -> Option<()> {
        let mut open: Vec<u8> = Vec::with_capacity(8);
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b @ (b'{' | b'[') => {
                    if open.len() == MAX_DEPTH {
                        return None;
                    }
                    open.push(if b == b'{' { b'}' } else { b']' });
                }
                b @ (b'}' | b']') => {
                    if open.pop()? != b {
                        return None;
                    }
                    if open.is_empty() {
                        self.at += 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            self.at += 1;
        }
    }
}

/// Where the first byte that ends a run of plain string characters is: a quote, a backslash
/// or a control character. Eight bytes at a time (most of a document is string text): a byte
/// equal to `c` is a zero byte of `word ^ c…c`, and `(x - 0x01…01) & !x & 0x80…80` marks
/// the zero bytes of `x` (and `(word - 0x20…20) & !word & 0x80…80` those below 0x20);
/// bytes above a marked one can be marked falsely by the borrow, never those below, so the
/// lowest mark is exact.
fn special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let marks = zero(word ^ (ONES * u64::from(b'"')))
            | zero(word ^ (ONES * u64::from(b'\\')))
            | (word.wrapping_sub(ONES * 0x20) & !word & HIGH);
        if marks != 0 {
            return Some(at + (marks.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The members as serde_json reads them, each value parsed.
    fn parsed(text: &str) -> Vec<(String, Value)> {
        match serde_json::from_str::<Value>(text).unwrap() {
            Value::Object(map) => map.into_iter().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn finds_each_member_and_its_text_as_serde_json_reads_them() {
        let documents = [
            r#"{}"#,
            r#" { } "#,
            r#"{"userName":"bjensen","active":true,"x":null,"n":-1.5e3,"zero":0}"#,
            r#"{"name":{"givenName":"Bärbel","familyName":"O\"Brien \\ {[\u00e9]}"},"emails":[{"value":"a@b","primary":true},{"value":"c]d}"}]}"#,
            "{\n  \"a\" : [ [], {}, [[1,2],[3]], \"]\" ] ,\n \"b\":\"\\u2028 😀\"\t}",
            r#"{"tab\tkey":1,"quote\"key":{"inner":[{"deep":{"deeper":[1]}}]}}"#,
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","manager":{"value":"m"}}}"#,
        ];
        for doc in documents {
            let found = members(doc).unwrap_or_else(|| panic!("no members found in {doc}"));
            let as_serde: Vec<(String, Value)> =
                found.iter().map(|(k, v)| (k.to_string(), serde_json::from_str(v).unwrap())).collect();
            let (mut sorted, mut expected) = (as_serde, parsed(doc));
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(sorted, expected, "{doc}");
        }
        // The members in the text's order.
        let order: Vec<_> = members(r#"{"z":1,"a":{"y":2},"m":[3]}"#).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(order, ["z", "a", "m"]);
        // A value's text is its exact span, spaces inside it kept.
        assert_eq!(members(r#"{"a": [1, 2] }"#).unwrap(), vec![(Cow::Borrowed("a"), "[1, 2]")]);
        // A key with escapes is decoded, others are borrowed.
        let keys = members(r#"{"plain":1,"t\u00e9l":2}"#).unwrap();
        assert!(matches!(keys[0].0, Cow::Borrowed("plain")));
        assert_eq!(keys[1].0, "tél");
    }

    /// The eight-at-a-time search finds the first special byte wherever it stands, whatever
    /// stands around it (multi-byte characters, other special bytes, a word's edge).
    #[test]
    fn the_first_special_byte_is_found_at_every_position() {
        let fillers: [&[u8]; 3] = [b"a", "é".as_bytes(), &[0x7f]];
        for len in 0..20 {
            for filler in fillers {
                let plain: Vec<u8> = filler.iter().copied().cycle().take(len * filler.len()).collect();
                assert_eq!(special(&plain), None);
                for at in 0..=plain.len() {
                    for first in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                        for after in [b'"', 0x01, b'z'] {
                            let mut text = plain[..at].to_vec();
                            text.push(first);
                            text.push(after);
                            text.extend_from_slice(&plain[at..]);
                            assert_eq!(special(&text), Some(at), "{text:?}");
                        }
                    }
                }
            }
        }
        assert_eq!(special(b" !#[]{}~\x20"), None);
    }

    #[test]
    fn anything_but_one_object_is_refused() {
        for text in [
            "",
            "[]",
            "\"a\"",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":[1,2}",
            "{\"a\":{\"b\":1]}",
            "{\"a\":\"unterminated}",
            "{\"a\":\"bad \\x escape\"}",
            "{\"a\":\"raw \n newline\"}",
            "{\"a\":undefined}",
            "{\"a\":1}{}",
            "{\"a\":1} x",
            "{a:1}",
        ] {
            assert_eq!(members(text), None, "{text:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(members(&deep), None);
        let fine = format!("{{\"a\":{}{}}}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(members(&fine).unwrap().len(), 1);
    }
}
