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
