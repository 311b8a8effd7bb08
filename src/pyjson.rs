//! JSON text exactly as CPython's `json.dumps(d)` writes it for a `dict[str, str]`:
//! separators `", "` and `": "`, `ensure_ascii=True` (non-ASCII as `\uXXXX`,
//! astral characters as surrogate pairs, lowercase hex), insertion order kept.

/// Append `s` as a JSON string literal the way CPython's `json` module does.
/// Runs of printable ASCII that need no escape are copied as one slice.
pub fn push_str_literal(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let plain = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    loop {
        let run = rest.bytes().position(|b| !plain(b)).unwrap_or(rest.len());
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        // `run` stopped at an ASCII byte or at the first byte of a multi-byte
        // character: a character boundary either way.
        let Some(ch) = rest.chars().next() else { break };
        rest = &rest[ch.len_utf8()..];
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            _ => {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    for shift in [12u32, 8, 4, 0] {
                        out.push(HEX[((*unit >> shift) & 0xf) as usize] as char);
                    }
                }
            }
        }
    }
    out.push('"');
}

/// Serialise ordered pairs as CPython's `json.dumps(dict(pairs))` would.
pub fn dumps_pairs<'a, I>(pairs: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut out = String::with_capacity(4096); // a wepppy dump is about 2 KB
    out.push('{');
    let mut first = true;
    for (k, v) in pairs {
        if !first {
            out.push_str(", ");
        }
        first = false;
        push_str_literal(&mut out, k);
        out.push_str(": ");
        push_str_literal(&mut out, v);
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object() {
        assert_eq!(dumps_pairs(std::iter::empty()), "{}");
    }

    #[test]
    fn separators_and_order() {
        let s = dumps_pairs([("b", "1"), ("a", "2")]);
        assert_eq!(s, r#"{"b": "1", "a": "2"}"#);
    }

    #[test]
    fn plain_runs_between_escapes() {
        let s = dumps_pairs([("timestamps:a", "x\"y\\zé"), ("é", "")]);
        assert_eq!(s, r#"{"timestamps:a": "x\"y\\z\u00e9", "\u00e9": ""}"#);
    }

    #[test]
    fn escapes_like_python() {
        // json.dumps({"k": "\"\\/\n\r\t\b\f\x00\x1f\x7f é€😀"})
        let s = dumps_pairs([("k", "\"\\/\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f} é€😀")]);
        assert_eq!(
            s,
            r#"{"k": "\"\\/\n\r\t\b\f\u0000\u001f\u007f \u00e9\u20ac\ud83d\ude00"}"#
        );
    }
}
