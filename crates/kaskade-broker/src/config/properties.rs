//! Java `.properties` text (`java.util.Properties.load`), the format of
//! Kafka's `server.properties`: separators, comments, continuation lines
//! and escapes. Never fails: malformed escapes are kept as text, as far as
//! Java would accept them.

use std::path::Path;

use super::ConfigError;

/// Parses Java properties text (`java.util.Properties.load`): `key=value`,
/// `key: value` or `key value`; `#` and `!` comment lines; a line ending in
/// an odd number of backslashes continues on the next line (whose leading
/// whitespace is dropped); escapes `\t \n \r \f \uXXXX` and `\x` -> `x`.
/// Returns the pairs in order; later duplicates win when merged.
pub fn parse_properties(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = physical_lines(text);
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start_matches([' ', '\t', '\u{c}']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some(next) => logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}'])),
                None => break,
            }
        }
        out.push(split_key_value(&logical));
    }
    out
}

/// The lines of `text` split at Java's terminators, `\n`, `\r` and `\r\n`
/// (one terminator: a continued line ending in `\r\n` goes on with the
/// next line, not with an empty one).
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(['\n', '\r']) {
            Some(i) => {
                let terminator = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + terminator..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (String, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut key_end = chars.len();
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                key_end = i;
                break;
            }
            _ => i += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut j = key_end;
    while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
        j += 1;
    }
    if j < chars.len() && matches!(chars[j], '=' | ':') {
        j += 1;
        while j < chars.len() && matches!(chars[j], ' ' | '\t' | '\u{c}') {
            j += 1;
        }
    }
    let key: String = chars[..key_end].iter().collect();
    let value: String = chars[j.min(chars.len())..].iter().collect();
    (unescape(&key), unescape(&value))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                match (hex.len() == 4).then(|| u32::from_str_radix(&hex, 16).ok()).flatten().and_then(char::from_u32) {
                    Some(ch) => {
                        out.push(ch);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    // Java throws on a malformed \u escape; keep the text.
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Reads the `server.properties` pairs of a file (for tools that want the raw
/// pairs, e.g. to show what a file sets).
pub fn read_properties_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    Ok(parse_properties(&String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_format() {
        let text = "# comment\n! also comment\n\n  a=1\nb : 2\nc 3\nd=\ne\\=x=4\n\
                    long=one, \\\n    two, \\\n    three\nesc=tab\\there\\u0041\\\\\n\
                    spaces =  padded  \r\nwin=dos\r\n#x=continued\\\nnot.continued=5\n";
        let props = parse_properties(text);
        let get = |k: &str| props.iter().rev().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(get("a"), Some("1"));
        assert_eq!(get("b"), Some("2"));
        assert_eq!(get("c"), Some("3"));
        assert_eq!(get("d"), Some(""));
        assert_eq!(get("e=x"), Some("4"));
        assert_eq!(get("long"), Some("one, two, three"));
        assert_eq!(get("esc"), Some("tab\thereA\\"));
        assert_eq!(get("spaces"), Some("padded  "));
        assert_eq!(get("win"), Some("dos"));
        assert_eq!(get("not.continued"), Some("5"));
        assert_eq!(get("#x"), None);
        assert_eq!(props.len(), 10);
    }

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_properties(text)
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn line_terminators_are_javas() {
        // A continuation ending in \r\n (a file edited on Windows) goes on
        // with the next line, as with \n; a lone \r ends a line too.
        assert_eq!(parsed("list=a,\\\r\n    b\r\nnext=1\r\n"), pairs(&[("list", "a,b"), ("next", "1")]));
        assert_eq!(parsed("x=1\ry=2\r\rz=3"), pairs(&[("x", "1"), ("y", "2"), ("z", "3")]));
        // A continuation at the end of the text ends the value.
        assert_eq!(parsed("last=value\\"), pairs(&[("last", "value")]));
        // A continuation onto an empty line ends the value there.
        assert_eq!(parsed("a=x\\\n\nb=2"), pairs(&[("a", "x"), ("b", "2")]));
        // Two backslashes are an escaped backslash, not a continuation.
        assert_eq!(parsed("dir=C:\\\\\nnext=1"), pairs(&[("dir", "C:\\"), ("next", "1")]));
    }

    #[test]
    fn keys_and_values_as_java_splits_them() {
        // The first unescaped '=', ':' or whitespace ends the key; one '=' or
        // ':' after the whitespace is a separator, the rest is the value.
        assert_eq!(parsed("a=b=c"), pairs(&[("a", "b=c")]));
        assert_eq!(parsed("a = : b"), pairs(&[("a", ": b")]));
        assert_eq!(parsed("a:b"), pairs(&[("a", "b")]));
        assert_eq!(parsed("\tkey\tvalue"), pairs(&[("key", "value")]));
        assert_eq!(parsed("alone"), pairs(&[("alone", "")]));
        assert_eq!(parsed("with\\ space=1"), pairs(&[("with space", "1")]));
        assert_eq!(parsed("c\\:d=2"), pairs(&[("c:d", "2")]));
        // Escapes: \f, \r, \n, unknown letters stand for themselves; a
        // malformed \u escape keeps its text (Java would refuse the file).
        assert_eq!(parsed("v=\\f\\r\\n\\q"), pairs(&[("v", "\u{c}\r\nq")]));
        assert_eq!(parsed("u=\\u00e9\\u00zz"), pairs(&[("u", "\u{e9}u00zz")]));
        // Leading whitespace of a line and of a continued line is dropped,
        // trailing whitespace of a value is kept.
        assert_eq!(parsed("   k = v  \\\n\t  w  "), pairs(&[("k", "v  w  ")]));
        // Comments only start a line, never a continued one.
        assert_eq!(parsed("k=1\\\n#2"), pairs(&[("k", "1#2")]));
        assert_eq!(parsed("k=1 # not a comment"), pairs(&[("k", "1 # not a comment")]));
    }

    #[test]
    fn a_file_is_read_as_utf8_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.properties");
        std::fs::write(&path, "node.id=3\nname=caf\u{e9}\n").expect("write");
        assert_eq!(read_properties_file(&path).expect("read"), pairs(&[("node.id", "3"), ("name", "caf\u{e9}")]));
        let missing = dir.path().join("nope.properties");
        let err = read_properties_file(&missing).expect_err("missing file");
        assert!(err.to_string().contains("nope.properties"), "{err}");
    }
}
