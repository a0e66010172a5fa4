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
    let mut lines = text.split(['\n', '\r']).peekable();
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
}
