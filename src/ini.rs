//! Reading INI files the way botocore does: Python's `configparser.RawConfigParser` with its defaults.
//!
//! Pure. Shared by the two AWS files the agent edits in place, `~/.aws/config`
//! ([`crate::enroll::awsconfig`]) and `~/.aws/credentials` ([`crate::update::credfile`]); both
//! change a few lines and must find sections, options and their extent exactly as the SDKs will:
//!
//! - lines end in `\n`, `\r\n` or `\r`; a line whose stripped text starts with `#` or `;` is a comment
//!   and a blank line is nothing, wherever they are;
//! - a non-blank line indented deeper than the option line above it continues that option's value;
//! - otherwise a line whose stripped text matches `\[(.+)\]` (up to the last `]`) starts a section,
//!   and any other line with `=` or `:` is an option (the name is the text before the first of them,
//!   compared case-insensitively).

use zeroize::Zeroizing;

/// One line: its text without the ending, and the ending (`""` for a last line without one).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    pub text: &'a str,
    pub end: &'a str,
}

/// Splits as Python's universal newlines do: `\r\n`, `\r` and `\n` end a line.
pub(crate) fn split_lines(s: &str) -> Vec<Line<'_>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        let end_len = match b[i] {
            b'\n' => 1,
            b'\r' if b.get(i + 1) == Some(&b'\n') => 2,
            b'\r' => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        out.push(Line {
            text: &s[start..i],
            end: &s[i..i + end_len],
        });
        i += end_len;
        start = i;
    }
    if start < s.len() {
        out.push(Line {
            text: &s[start..],
            end: "",
        });
    }
    out
}

/// The line ending to use for new lines near `line`: its own, else the file's first, else `\n`.
pub(crate) fn eol_of<'a>(lines: &[Line<'a>], line: usize) -> &'a str {
    std::iter::once(&lines[line])
        .chain(lines.iter())
        .map(|l| l.end)
        .find(|e| !e.is_empty())
        .unwrap_or("\n")
}

/// An option with its continuation lines (and the blank or comment lines between them).
#[derive(Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub first: usize,
    pub last: usize,
}

#[derive(Debug)]
pub(crate) struct Section {
    pub name: String,
    pub header: usize,
    pub entries: Vec<Entry>,
}

/// Python's `str.isspace` for the characters that matter here (Rust's `is_whitespace` lacks the
/// information separators U+001C..U+001F).
pub(crate) fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The sections of a config file, as `configparser.RawConfigParser._read` finds them.
pub(crate) fn parse(lines: &[Line<'_>]) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    // Whether the last option line started a value that indented lines continue.
    let mut in_option = false;
    let mut indent_level = 0usize;
    for (i, line) in lines.iter().enumerate() {
        let value = line.text.trim_matches(py_space);
        if value.is_empty() || value.starts_with('#') || value.starts_with(';') {
            continue;
        }
        let indent = line.text.chars().take_while(|c| py_space(*c)).count();
        if let Some(s) = sections
            .last_mut()
            .filter(|_| in_option && indent > indent_level)
        {
            if let Some(e) = s.entries.last_mut() {
                e.last = i;
            }
            continue;
        }
        indent_level = indent;
        if let Some(name) = header_name(value) {
            sections.push(Section {
                name: name.to_string(),
                header: i,
                entries: Vec::new(),
            });
            in_option = false;
            continue;
        }
        // Lines before the first section, and lines without a delimiter, are errors to Python; they
        // are kept as they are (and do not end the value above, as in Python).
        let Some(s) = sections.last_mut() else {
            continue;
        };
        if let Some(at) = value.find(['=', ':']) {
            let key = value[..at].trim_end_matches(py_space).to_lowercase();
            in_option = !key.is_empty();
            s.entries.push(Entry {
                key,
                first: i,
                last: i,
            });
        }
    }
    sections
}

/// The section name of a stripped line matching `\[(?P<header>.+)\]` (greedy: up to the last `]`).
pub(crate) fn header_name(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then(|| &rest[..close])
}

/// The leading whitespace of a line (what configparser measures its indentation by).
pub(crate) fn indent_of(text: &str) -> &str {
    let body = text.trim_start_matches(py_space);
    &text[..text.len() - body.len()]
}

/// The value configparser gives an option: the text after the first `=` or `:` stripped, then each
/// continuation line stripped (blank ones as empty lines, comment lines left out), joined with `\n`,
/// trailing whitespace removed. Zeroizing: values in a credentials file are secrets.
pub(crate) fn value(lines: &[Line<'_>], entry: &Entry) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    let first = lines[entry.first].text.trim_matches(py_space);
    let at = first.find(['=', ':']).map_or(first.len(), |i| i + 1);
    let mut parts: Vec<&str> = vec![first[at..].trim_matches(py_space)];
    for l in &lines[entry.first + 1..=entry.last] {
        let v = l.text.trim_matches(py_space);
        if !(v.starts_with('#') || v.starts_with(';')) {
            parts.push(v);
        }
    }
    out.reserve(parts.iter().map(|p| p.len() + 1).sum());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(p);
    }
    let keep = out.trim_end_matches(py_space).len();
    out.truncate(keep);
    out
}

/// One section as [`read`] gives it: its name and its options with their values, in file order.
pub(crate) type ReadSection = (String, Vec<(String, Zeroizing<String>)>);

/// What a reader sees: each section (duplicates included, in file order) with its options and
/// their values (duplicates included).
pub(crate) fn read(text: &str) -> Vec<ReadSection> {
    let lines = split_lines(text);
    parse(&lines)
        .into_iter()
        .map(|s| {
            let entries = s
                .entries
                .iter()
                .map(|e| (e.key.clone(), value(&lines, e)))
                .collect();
            (s.name, entries)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_found_the_way_configparser_finds_them() {
        // ` [b]` is indented deeper than `j: w`, so it continues j's value; `\t[x]]` follows a
        // header, so it is one (named up to the last `]`).
        let text =
            "; c\n[a] trailing\nk = v\n  cont\n\n  more\n# c\nj: w\n [b]\n[c]\n\t[x]]\n=bad\n";
        let lines = split_lines(text);
        let s = parse(&lines);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "c", "x]"]);
        let a: Vec<(&str, usize, usize)> = s[0]
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.first, e.last))
            .collect();
        assert_eq!(a, [("k", 2, 5), ("j", 7, 8)]);
        assert_eq!(split_lines("a\rb\r\nc").len(), 3);
    }

    #[test]
    fn values_are_joined_and_stripped_like_configparser() {
        let text = "[a]\nk =  v1 \n  cont\n\n  # c\n  more\n\nj:\n";
        let r = read(text);
        assert_eq!(r.len(), 1);
        let got: Vec<(&str, &str)> = r[0]
            .1
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, [("k", "v1\ncont\n\nmore"), ("j", "")]);
        assert_eq!(indent_of(" \t x"), " \t ");
    }
}
