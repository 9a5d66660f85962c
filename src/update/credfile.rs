//! Setting one profile's three credential keys in the text of the shared credentials file.
//!
//! Pure; no I/O ([`super::write`] locks, reads and replaces the file). The file is read as botocore
//! reads it ([`crate::ini`]); in the credentials file a profile's section is `[NAME]` exactly (not
//! `[profile NAME]` as in `~/.aws/config`), and `[default]` is the profile `default`.
//!
//! Only `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` of that one section
//! change; every other byte stays: comments, blank lines, other sections, other keys of the same
//! section, line endings (`\n`, `\r\n`, `\r`), a last line without a newline, a header on the last
//! line. A key that is present is replaced where it is (keeping its indentation); missing keys go
//! after the last present one, or right below the header. A new section is appended at the end,
//! after a blank line.
//!
//! Duplicates: botocore (strict configparser) refuses a file that repeats a section or a key in a
//! section, while configparser's non-strict mode, the Go and the Rust SDKs merge them, the later
//! value winning. The three keys are written once; other repeats of them are removed; a repeated
//! `[NAME]` section is collapsed into the first, each of its other keys keeping the value a merging
//! reader saw (the last one). Other sections' duplicates are left alone (they are not ours to fix).
//!
//! Every result is read back and compared with what the old file meant: if any other section or
//! key would read differently (possible only with unusual indentation around what is removed),
//! nothing is written and [`Error::Unmergeable`] says where to look.

use crate::ini::{self, Entry, Line, eol_of, indent_of, parse, py_space, split_lines};
use zeroize::Zeroizing;

/// The three keys, in the order they are written.
pub const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The values for [`KEYS`], in that order.
#[derive(Clone, Copy)]
pub struct NewValues<'a>(pub [&'a str; 3]);

impl std::fmt::Debug for NewValues<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewValues(<redacted>)")
    }
}

/// Why a merge was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The profile name cannot be written as a section header botocore reads back as the same
    /// name, or is configparser's special `DEFAULT`.
    #[error("--profile {:?} cannot be used: {reason}", crate::text::redact(.name))]
    ProfileName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// A credential value a credentials file cannot hold as one option (empty, with a line
    /// break or surrounding blanks). Names the key, never the value.
    #[error("the {key} the service returned cannot be written to a credentials file: {reason}")]
    Value {
        /// The key.
        key: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Writing the keys would change how another setting reads.
    #[error(
        "cannot update [{profile}] without changing how other settings in the file read (unusual \
         indentation or duplicate sections near line {line}); the file was left as it is: fix \
         the indentation of that part or remove the duplicate sections by hand"
    )]
    Unmergeable {
        /// The profile.
        profile: String,
        /// 1-based line of the profile's (first) header.
        line: usize,
    },
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        match self {
            Error::ProfileName { .. } | Error::Unmergeable { .. } => {
                rolesanywhere_core::ErrorClass::Configuration
            }
            Error::Value { .. } => rolesanywhere_core::ErrorClass::Operational,
        }
    }
}

/// The result of [`merge`].
pub struct Merged {
    /// The new file content (it holds secrets: wiped on drop).
    pub text: Zeroizing<String>,
    /// True when the profile already had a section.
    pub updated: bool,
    /// 1-based line numbers (in the old text) of the headers of duplicate sections removed.
    pub removed_duplicates: Vec<usize>,
}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merged")
            .field("text", &"<redacted>")
            .field("updated", &self.updated)
            .field("removed_duplicates", &self.removed_duplicates)
            .finish()
    }
}

/// Checks that `name` can be a section of the credentials file: not empty, no control characters
/// or line breaks, no surrounding blanks (configparser would not keep them), and not `DEFAULT`
/// (configparser's section of defaults for every other section).
pub fn check_profile_name(name: &str) -> Result<(), Error> {
    let err = |reason| {
        Err(Error::ProfileName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return err("it is empty");
    }
    if name.chars().any(char::is_control) {
        return err("it contains control characters or line breaks");
    }
    if name.trim_matches(py_space) != name {
        return err("it starts or ends with blanks, which configparser does not keep");
    }
    if name == "DEFAULT" {
        return err(
            "[DEFAULT] is configparser's section of defaults for every other profile, so \
             credentials written there would apply to all of them",
        );
    }
    Ok(())
}

fn check_values(values: &NewValues<'_>) -> Result<(), Error> {
    for (key, v) in KEYS.iter().zip(values.0) {
        let reason = if v.is_empty() {
            "it is empty"
        } else if v.chars().any(char::is_control) {
            "it contains control characters or line breaks"
        } else if v.trim_matches(py_space) != v {
            "it starts or ends with blanks"
        } else {
            continue;
        };
        return Err(Error::Value { key, reason });
    }
    Ok(())
}

/// A piece of an output line.
enum Piece<'a> {
    /// A line of the old file, as it was.
    Raw(&'a str),
    /// `INDENT KEY = VALUE`.
    Setting(&'a str, &'a str, &'a str),
}

/// A replacement of old lines `first..=last` (the last line's ending is kept); `None` removes them.
struct Edit<'a> {
    first: usize,
    last: usize,
    with: Option<Vec<Piece<'a>>>,
}

/// Sets the three keys of section `[profile]` in the credentials file text `existing`.
pub fn merge(existing: &str, profile: &str, values: NewValues<'_>) -> Result<Merged, Error> {
    check_profile_name(profile)?;
    check_values(&values)?;
    let lines = split_lines(existing);
    let sections = parse(&lines);
    let ours: Vec<&ini::Section> = sections.iter().filter(|s| s.name == profile).collect();
    // Sized so that building the text never reallocates (no stray copies of secrets): the old text,
    // the new lines with their indentation, and two bytes of line ending per old line.
    let new_len: usize = KEYS
        .iter()
        .zip(values.0)
        .map(|(k, v)| k.len() + v.len() + 8)
        .sum();
    let capacity = 2 * existing.len() + 2 * lines.len() + 3 * new_len + profile.len() + 16;
    let mut text = Zeroizing::new(String::with_capacity(capacity));

    let Some((keep, dups)) = ours.split_first() else {
        append_section(&mut text, existing, &lines, profile, &values);
        if !reads_as_intended(existing, &text, profile, &values) {
            return Err(Error::Unmergeable {
                profile: profile.to_string(),
                line: lines.len(),
            });
        }
        return Ok(Merged {
            text,
            updated: false,
            removed_duplicates: Vec::new(),
        });
    };

    let is_ours_key = |k: &str| KEYS.contains(&k);
    let mut edits: Vec<Edit<'_>> = Vec::new();
    let remove = |e: &Entry| Edit {
        first: e.first,
        last: e.last,
        with: None,
    };

    // Other keys of the duplicates: each keeps its last occurrence over all our sections (what a
    // merging reader sees); one that last occurs in a duplicate is carried into the kept section
    // and its occurrences there are removed.
    let mut carried: Vec<&Entry> = Vec::new();
    let all: Vec<&Entry> = ours.iter().flat_map(|s| s.entries.iter()).collect();
    for d in dups {
        for e in &d.entries {
            let last_of_key = all.iter().rev().find(|x| x.key == e.key);
            if !is_ours_key(&e.key) && last_of_key.is_some_and(|x| std::ptr::eq(*x, e)) {
                carried.push(e);
                edits.extend(keep.entries.iter().filter(|k| k.key == e.key).map(remove));
            }
        }
    }

    // The three keys: the first occurrence in the kept section replaced in place, repeats removed.
    let mut replaced: Vec<(&Entry, &'static str, &str)> = Vec::new();
    let mut missing: Vec<(&'static str, &str)> = Vec::new();
    for (key, value) in KEYS.iter().zip(values.0) {
        let mut found = keep.entries.iter().filter(|e| e.key == *key);
        match found.next() {
            Some(first) => replaced.push((first, key, value)),
            None => missing.push((key, value)),
        }
        edits.extend(found.map(remove));
    }
    // New lines go after the last replaced key, indented like it (so that neither it nor the line
    // after it reads as a continuation), or below the header, indented like the next line that is
    // not blank or a comment (which must not become a continuation of ours).
    let anchor = replaced.iter().map(|r| r.0.first).max();
    let indent = match anchor {
        Some(at) => indent_of(lines[at].text),
        None => lines[keep.header + 1..]
            .iter()
            .map(|l| l.text)
            .find(|t| {
                let v = t.trim_matches(py_space);
                !(v.is_empty() || v.starts_with('#') || v.starts_with(';'))
            })
            .map_or("", indent_of),
    };
    let mut added: Vec<Piece<'_>> = missing
        .iter()
        .map(|(k, v)| Piece::Setting(indent, k, v))
        .collect();
    added.extend(
        carried
            .iter()
            .flat_map(|e| lines[e.first..=e.last].iter().map(|l| Piece::Raw(l.text))),
    );
    for (e, key, value) in &replaced {
        let mut with = vec![Piece::Setting(indent_of(lines[e.first].text), key, value)];
        if Some(e.first) == anchor {
            with.append(&mut added);
        }
        edits.push(Edit {
            first: e.first,
            last: e.last,
            with: Some(with),
        });
    }
    if anchor.is_none() && !added.is_empty() {
        let mut with = vec![Piece::Raw(lines[keep.header].text)];
        with.append(&mut added);
        edits.push(Edit {
            first: keep.header,
            last: keep.header,
            with: Some(with),
        });
    }
    for d in dups {
        let last = d.entries.last().map_or(d.header, |e| e.last);
        edits.push(Edit {
            first: d.header,
            last,
            with: None,
        });
    }
    edits.sort_by_key(|e| e.first);
    edits.dedup_by_key(|e| e.first);

    let eol = eol_of(&lines, keep.header);
    let mut next = 0;
    for edit in &edits {
        for l in &lines[next..edit.first] {
            text.push_str(l.text);
            text.push_str(l.end);
        }
        if let Some(pieces) = &edit.with {
            for (i, p) in pieces.iter().enumerate() {
                if i > 0 {
                    text.push_str(eol);
                }
                push_piece(&mut text, p);
            }
            text.push_str(lines[edit.last].end);
        }
        next = edit.last + 1;
    }
    for l in &lines[next..] {
        text.push_str(l.text);
        text.push_str(l.end);
    }
    debug_assert!(text.capacity() == capacity, "the text was reallocated");

    if !reads_as_intended(existing, &text, profile, &values) {
        return Err(Error::Unmergeable {
            profile: profile.to_string(),
            line: keep.header + 1,
        });
    }
    Ok(Merged {
        text,
        updated: true,
        removed_duplicates: dups.iter().map(|d| d.header + 1).collect(),
    })
}

fn push_piece(text: &mut String, p: &Piece<'_>) {
    match p {
        Piece::Raw(s) => text.push_str(s),
        Piece::Setting(indent, key, value) => {
            text.push_str(indent);
            text.push_str(key);
            text.push_str(" = ");
            text.push_str(value);
        }
    }
}

/// `existing` with a new section `[profile]` at the end, after a blank line.
fn append_section(
    text: &mut String,
    existing: &str,
    lines: &[Line<'_>],
    profile: &str,
    values: &NewValues<'_>,
) {
    let eol = lines
        .iter()
        .map(|l| l.end)
        .find(|e| !e.is_empty())
        .unwrap_or("\n");
    text.push_str(existing);
    if let Some(last) = lines.last() {
        if last.end.is_empty() {
            text.push_str(eol);
        }
        if !last.text.trim_matches(py_space).is_empty() {
            text.push_str(eol);
        }
    }
    text.push('[');
    text.push_str(profile);
    text.push(']');
    text.push_str(eol);
    for (key, value) in KEYS.iter().zip(values.0) {
        push_piece(text, &Piece::Setting("", key, value));
        text.push_str(eol);
    }
}

/// True when `new` reads as `old` with the profile's keys set: every other section the same in the
/// same order, the profile once, holding the three keys once each with the new values and every
/// other key with the value a merging reader saw in the old file.
fn reads_as_intended(old: &str, new: &str, profile: &str, values: &NewValues<'_>) -> bool {
    let (old, new) = (ini::read(old), ini::read(new));
    let mut old_others = others(&old, profile);
    // The profile's first section stays where it was (compared by name only); its duplicates go.
    let mut seen = false;
    old_others.retain(|(name, _)| *name != profile || !std::mem::replace(&mut seen, true));
    if !seen {
        // A new section goes at the end.
        old_others.push((profile, Vec::new()));
    }
    if others(&new, profile) != old_others {
        return false;
    }
    if new.iter().filter(|s| s.0 == profile).count() != 1 {
        return false;
    }
    let new_ours = new
        .iter()
        .find(|s| s.0 == profile)
        .map_or(&[][..], |s| &s.1[..]);
    for (key, value) in KEYS.iter().zip(values.0) {
        let mut found = new_ours.iter().filter(|(k, _)| k == key);
        let (Some((_, v)), None) = (found.next(), found.next()) else {
            return false;
        };
        if v.as_str() != value {
            return false;
        }
    }
    let mut want = merged_profile(&old, profile);
    let mut got = merged_profile(&new, profile);
    want.retain(|(k, _)| !KEYS.contains(k));
    got.retain(|(k, _)| !KEYS.contains(k));
    want == got
}

/// Every section with its options, the profile's without them: borrowed, so that no value (other
/// profiles' secrets) is copied out of the wiped buffers.
fn others<'a>(r: &'a [ini::ReadSection], profile: &str) -> Vec<(&'a str, Vec<(&'a str, &'a str)>)> {
    r.iter()
        .map(|(name, entries)| {
            let entries = if name == profile {
                Vec::new()
            } else {
                entries
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect()
            };
            (name.as_str(), entries)
        })
        .collect()
}

/// The profile as a merging reader sees it: each key's last value over all its sections, by key.
fn merged_profile<'a>(r: &'a [ini::ReadSection], profile: &str) -> Vec<(&'a str, &'a str)> {
    let mut m: Vec<(&str, &str)> = Vec::new();
    for (_, entries) in r.iter().filter(|s| s.0 == profile) {
        for (k, v) in entries {
            m.retain(|(x, _)| x != k);
            m.push((k.as_str(), v.as_str()));
        }
    }
    m.sort_unstable();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "aws_access_key_id = ASIANEW\naws_secret_access_key = secret/NEW+\n\
                         aws_session_token = token/NEW==";

    fn m(existing: &str, profile: &str) -> String {
        merge(existing, profile, NEW)
            .unwrap_or_else(|e| panic!("{existing:?}: {e}"))
            .text
            .to_string()
    }

    /// Byte-for-byte: (what, before, profile, after). `{3}` stands for the three new lines with
    /// `\n` between them, `{3crlf}` with `\r\n`.
    const CASES: &[(&str, &str, &str, &str)] = &[
        ("empty file", "", "default", "[default]\n{3}\n"),
        (
            "appended after a blank line, the rest untouched",
            "# mine\n[work]\naws_access_key_id = W\n; note\n",
            "ra",
            "# mine\n[work]\naws_access_key_id = W\n; note\n\n[ra]\n{3}\n",
        ),
        (
            "appended after a file that ends in a blank line: no second blank line",
            "[work]\nregion = x\n\n",
            "ra",
            "[work]\nregion = x\n\n[ra]\n{3}\n",
        ),
        (
            "replaced in place, comments and other keys kept",
            "# top\n[ra]\n# ours\naws_access_key_id = OLD\nregion = eu-west-1\n\
             aws_secret_access_key=OLDSECRET\naws_session_token :OLDTOKEN\n  more token\n\n# end\n",
            "ra",
            "# top\n[ra]\n# ours\naws_access_key_id = ASIANEW\nregion = eu-west-1\n\
             aws_secret_access_key = secret/NEW+\naws_session_token = token/NEW==\n\n# end\n",
        ),
        (
            "CRLF kept, and a last line without newline that is not a key stays (the reference drops it)",
            "[a]\r\nx = 1\r\n[ra]\r\naws_access_key_id = OLD\r\nregion = x",
            "ra",
            "[a]\r\nx = 1\r\n[ra]\r\naws_access_key_id = ASIANEW\r\n\
             aws_secret_access_key = secret/NEW+\r\naws_session_token = token/NEW==\r\nregion = x",
        ),
        (
            "CRLF section added below the header",
            "[ra]\r\nregion = x\r\n",
            "ra",
            "[ra]\r\n{3crlf}\r\nregion = x\r\n",
        ),
        (
            "appended to a file without a final newline: its last line is ended first",
            "[work]\r\nregion = x",
            "ra",
            "[work]\r\nregion = x\r\n\r\n[ra]\r\n{3crlf}\r\n",
        ),
        (
            "a header on the last line, without newline, is kept once",
            "[a]\nx = 1\n[ra]",
            "ra",
            "[a]\nx = 1\n[ra]\n{3}",
        ),
        (
            "keys in any case are the same key; repeats removed",
            "[ra]\nAWS_ACCESS_KEY_ID = A\nAws_Session_Token = T\naws_access_key_id = B\n",
            "ra",
            "[ra]\naws_access_key_id = ASIANEW\naws_session_token = token/NEW==\n\
             aws_secret_access_key = secret/NEW+\n",
        ),
        (
            "indentation of a replaced key kept; new ones indented like the line below the header",
            "[ra]\n  region = x\n[rb]\n\taws_access_key_id = OLD\n\tregion = y\n",
            "ra",
            "[ra]\n  aws_access_key_id = ASIANEW\n  aws_secret_access_key = secret/NEW+\n  \
             aws_session_token = token/NEW==\n  region = x\n[rb]\n\taws_access_key_id = OLD\n\tregion = y\n",
        ),
        (
            "duplicate sections collapsed into the first; other keys keep their last value",
            "[ra]\nregion = a\naws_access_key_id = OLD\n[x]\nk = v\n[ra]\nregion = b\noutput = json\n\
             aws_session_token = OLD\n[y]\nk = w\n",
            "ra",
            "[ra]\naws_access_key_id = ASIANEW\naws_secret_access_key = secret/NEW+\n\
             aws_session_token = token/NEW==\nregion = b\noutput = json\n[x]\nk = v\n[y]\nk = w\n",
        ),
        (
            "only the exact section: lookalikes are someone else's; a trailing comment on the header is fine",
            "[profile ra]\nx = 1\n[ ra ]\nx = 2\n[ra-old]\nx = 3\n[ra] ; mine\nx = 4\n",
            "ra",
            "[profile ra]\nx = 1\n[ ra ]\nx = 2\n[ra-old]\nx = 3\n[ra] ; mine\n{3}\nx = 4\n",
        ),
        (
            "an indented header continues the value above: not a section",
            "[a]\nk = v\n  [ra]\n",
            "ra",
            "[a]\nk = v\n  [ra]\n\n[ra]\n{3}\n",
        ),
        (
            "lone CR line endings",
            "[ra]\raws_access_key_id = OLD\rregion = x\r",
            "ra",
            "[ra]\raws_access_key_id = ASIANEW\raws_secret_access_key = secret/NEW+\r\
             aws_session_token = token/NEW==\rregion = x\r",
        ),
    ];

    #[test]
    fn merges_byte_for_byte() {
        for (what, before, profile, after) in CASES {
            let want = after
                .replace("{3crlf}", &THREE.replace('\n', "\r\n"))
                .replace("{3}", THREE);
            assert_eq!(m(before, profile), want, "{what}");
            // Idempotent: the same values again change nothing.
            assert_eq!(m(&want, profile), want, "{what}: second run");
        }
    }

    #[test]
    fn refuses_names_and_values_a_credentials_file_cannot_hold() {
        for bad in ["", "DEFAULT", "a\nb", "a\rb", " a", "a\t"] {
            let e = merge("", bad, NEW).unwrap_err();
            assert!(matches!(e, Error::ProfileName { .. }), "{bad:?}: {e}");
        }
        for ok in ["default", "Default", "my profile", "a]b", "ra@x"] {
            let t = m("", ok);
            let read = ini::read(&t);
            assert_eq!(read.len(), 1, "{ok}");
            assert_eq!(read[0].0, ok);
        }
        for (i, bad) in ["", "a\nb", " lead", "x\u{7}"].iter().enumerate() {
            let mut v = NEW;
            v.0[i % 3] = bad;
            let e = merge("[a]\n", "ra", v).unwrap_err();
            let text = e.to_string();
            assert!(matches!(e, Error::Value { .. }), "{bad:?}: {text}");
            assert!(text.contains(KEYS[i % 3]), "{text}");
        }
    }

    /// Removing a duplicate section would make the indented header after it continue the value
    /// above: refused, nothing to write.
    #[test]
    fn refuses_a_merge_that_would_change_another_setting() {
        let before = "[ra]\nx = 1\n[a]\nk = v\n[ra]\n     z = 1\n   [b]\nc = d\n";
        let e = merge(before, "ra", NEW).unwrap_err();
        assert!(matches!(e, Error::Unmergeable { line: 1, .. }), "{e}");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_errors() {
        let merged = merge("[ra]\naws_secret_access_key = OLDSECRET\n", "ra", NEW).unwrap();
        let dbg = format!("{merged:?} {NEW:?}");
        assert!(
            !dbg.contains("secret/NEW") && !dbg.contains("OLDSECRET"),
            "{dbg}"
        );
    }

    use super::tests_support::*;

    /// The property, on thousands of generated files: the merge succeeds (always, without unusual
    /// indentation), reading the result gives exactly the new values for the profile and everything
    /// else as before (the check `merge` makes itself, here made explicit), everything before the
    /// profile's first section is the same bytes, and a second merge changes nothing. Python's
    /// configparser is the independent reader in the next test.
    #[test]
    fn generated_files_keep_everything_but_the_three_keys() {
        let mut refused = 0;
        for case in 0..4000u64 {
            let seed = 0x9E37_79B9_7F4A_7C15 ^ case;
            let mut rng = Rng(seed);
            let indent = case % 2 == 1;
            let before = generate(&mut rng, indent);
            let merged = match merge(&before, "ra", NEW) {
                Ok(merged) => merged,
                Err(Error::Unmergeable { .. }) if indent => {
                    refused += 1;
                    continue;
                }
                Err(e) => panic!("seed {seed:#x}: {before:?}: {e}"),
            };
            let after = merged.text.as_str();
            assert!(
                reads_as_intended(&before, after, "ra", &NEW),
                "seed {seed:#x}: {before:?} -> {after:?}"
            );
            let lines = split_lines(&before);
            let first = parse(&lines)
                .iter()
                .find(|s| s.name == "ra")
                .map(|s| s.header);
            let prefix: usize = lines[..first.unwrap_or(lines.len())]
                .iter()
                .map(|l| l.text.len() + l.end.len())
                .sum();
            assert_eq!(
                &after[..prefix],
                &before[..prefix],
                "seed {seed:#x}: bytes before the profile changed"
            );
            assert_eq!(
                merge(after, "ra", NEW).unwrap().text.as_str(),
                after,
                "seed {seed:#x}: not idempotent"
            );
        }
        // Refusals are for odd indentation around removed duplicates only: rare.
        assert!(
            refused < 100,
            "{refused} refusals out of 2000 indented files"
        );
    }
}

/// The generator shared by the property tests.
#[cfg(test)]
mod tests_support {
    use super::NewValues;

    pub const NEW: NewValues<'static> = NewValues(["ASIANEW", "secret/NEW+", "token/NEW=="]);

    /// A small deterministic generator (xorshift): no dependency, and a failing seed is printed.
    pub struct Rng(pub u64);

    impl Rng {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
        pub fn chance(&mut self, percent: usize) -> bool {
            self.below(100) < percent
        }
    }

    /// A credentials file of sections (ours among them, sometimes twice), options of the three keys
    /// in any case and others, continuation lines, comments, blank lines; one line ending style
    /// (or all mixed), sometimes no final newline; indentation only when `indent` is set.
    pub fn generate(rng: &mut Rng, indent: bool) -> String {
        let eol_style = rng.pick(&["\n", "\r\n", "\r", "mixed"]);
        let mut lines: Vec<String> = Vec::new();
        if rng.chance(30) {
            lines.push(rng.pick(&["# credentials", "; by hand", ""]).to_string());
        }
        for _ in 0..rng.below(5) + 1 {
            let name = rng.pick(&["ra", "ra", "default", "work", "profile ra", "ra-old", "Ra"]);
            let pad = if indent { rng.pick(&["", "", " "]) } else { "" };
            let trailer = rng.pick(&["", "", " ; c"]);
            lines.push(format!("{pad}[{name}]{trailer}"));
            for _ in 0..rng.below(6) {
                let pad = if indent {
                    rng.pick(&["", "", "  ", "\t"])
                } else {
                    ""
                };
                match rng.below(10) {
                    0 => lines.push(
                        rng.pick(&["# c", "; c", "  # indented comment"])
                            .to_string(),
                    ),
                    1 => lines.push(String::new()),
                    _ => {
                        let key = rng.pick(&[
                            "aws_access_key_id",
                            "aws_secret_access_key",
                            "aws_session_token",
                            "AWS_Session_Token",
                            "region",
                            "output",
                            "aws_security_token",
                        ]);
                        let delim = rng.pick(&[" = ", "=", " =", ": ", " :"]);
                        let value = format!("v{}", rng.below(1000));
                        lines.push(format!("{pad}{key}{delim}{value}"));
                        if rng.chance(15) {
                            lines.push(format!("{pad}    cont{}", rng.below(100)));
                        }
                    }
                }
            }
        }
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            text.push_str(l);
            let last = i + 1 == lines.len();
            if last && rng.chance(25) {
                break;
            }
            text.push_str(if eol_style == "mixed" {
                rng.pick(&["\n", "\r\n", "\r"])
            } else {
                eol_style
            });
        }
        text
    }
}

/// Python's configparser (non-strict, so that files with duplicates can be compared) and botocore's
/// own `raw_config_parse` read the merged files: the independent reader of the property.
#[cfg(test)]
mod python_tests {
    use super::tests_support::*;
    use super::*;

    const SCRIPT: &str = r#"
import sys, json, io, os, tempfile, configparser
from botocore import configloader
cases = json.load(sys.stdin)
failures, checked, boto = [], 0, 0
KEYS = ["aws_access_key_id", "aws_secret_access_key", "aws_session_token"]
def read(text, strict):
    cp = configparser.RawConfigParser(strict=strict)
    cp.read_file(io.StringIO(text, newline=None))
    return {s: dict(cp.items(s)) for s in cp.sections()}
for i, c in enumerate(cases):
    try:
        before = read(c["before"], False)
    except configparser.Error:
        continue
    try:
        after = read(c["after"], False)
    except configparser.Error as e:
        failures.append([i, "after unreadable: %s" % e]); continue
    checked += 1
    p = c["profile"]
    want = dict(before.get(p, {}))
    want.update(zip(KEYS, c["values"]))
    if after.get(p) != want:
        failures.append([i, "profile reads %r, want %r" % (after.get(p), want)])
    if {s: v for s, v in after.items() if s != p} != {s: v for s, v in before.items() if s != p}:
        failures.append([i, "other sections changed"])
    try:
        read(c["after"], True)
    except configparser.Error:
        continue
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, "w", newline="") as f:
        f.write(c["after"])
    try:
        got = configloader.raw_config_parse(path)[p]
        boto += 1
        if [got.get(k) for k in KEYS] != c["values"]:
            failures.append([i, "botocore reads %r" % got])
    finally:
        os.unlink(path)
print(json.dumps({"checked": checked, "botocore": boto, "failures": failures}))
"#;

    #[test]
    fn configparser_and_botocore_read_the_merged_files_as_intended() {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import botocore"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            assert!(!hsm_tests::required(), "python3 with botocore is required");
            eprintln!("SKIP: python3 with botocore not installed");
            return;
        }
        let mut cases = Vec::new();
        for case in 0..600u64 {
            let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ case);
            let before = generate(&mut rng, case % 2 == 1);
            if let Ok(merged) = merge(&before, "ra", NEW) {
                cases.push(serde_json::json!({
                    "before": before,
                    "after": merged.text.as_str(),
                    "profile": "ra",
                    "values": NEW.0,
                }));
            }
        }
        let mut child = std::process::Command::new("python3")
            .args(["-c", SCRIPT])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let input = serde_json::to_vec(&cases).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write as _;
            stdin.write_all(&input).unwrap();
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let failures = v["failures"].as_array().unwrap();
        if let Some(f) = failures.first() {
            let i = f[0].as_u64().unwrap() as usize;
            panic!(
                "{} failures; first: {} for {:?} -> {:?}",
                failures.len(),
                f[1],
                cases[i]["before"],
                cases[i]["after"]
            );
        }
        // Most generated files are readable by configparser and, merged, by botocore (strict).
        assert!(v["checked"].as_u64().unwrap() > 400, "{v}");
        assert!(v["botocore"].as_u64().unwrap() > 100, "{v}");
    }
}
