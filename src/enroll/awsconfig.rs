//! Inserting or replacing one profile's `credential_process` in the text of an AWS config file.
//!
//! Pure; no I/O ([`super::install`] reads and writes the file). The file is read the way botocore
//! reads it ([`crate::ini`]: Python's `configparser.RawConfigParser` with its defaults, then
//! botocore's profile mapping), so "the profile" here is exactly what an SDK would take for it:
//!
//! - botocore maps a section whose name starts with `profile` and splits (shell-like) into exactly
//!   two words to the profile named by the second word, and `[default]` to `default`.
//!
//! Everything outside the lines that are changed stays byte for byte: comments, other sections,
//! line endings, a missing final newline. Other settings of the profile (`region = …`) are kept;
//! only its `credential_process` is replaced. botocore refuses a file with a duplicate section
//! (as the old `install-cert … >> ~/.aws/config` advice produced on renewal): such duplicates are
//! collapsed into the first, keeping settings the first does not have.

/// The result of [`merge_profile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The new file content.
    pub text: String,
    /// True when the profile already had a section (its `credential_process` was replaced or added).
    pub updated: bool,
    /// 1-based line numbers (in the old text) of the headers of duplicate sections that were removed.
    pub removed_duplicates: Vec<usize>,
}

/// `[profile NAME]`, or `[default]` for the profile `default` (as the AWS CLI writes it).
pub fn section_header(name: &str) -> String {
    if name == "default" {
        "[default]".to_string()
    } else {
        format!("[profile {name}]")
    }
}

/// True for a profile name that can be written as `[profile NAME]` and read back as NAME by
/// botocore without quoting: no whitespace, brackets, quotes, comment or shell characters.
pub fn is_plain_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@+=,:/".contains(c))
}

/// Sets `credential_process = COMMAND` in the profile `name` of the config file text `existing`,
/// adding the section at the end when there is none. `name` must satisfy [`is_plain_profile_name`]
/// and `command` must be one line.
pub fn merge_profile(existing: &str, name: &str, command: &str) -> Merged {
    let lines = split_lines(existing);
    let sections = parse(&lines);
    let ours: Vec<&Section> = sections
        .iter()
        .filter(|s| botocore_profile_name(&s.name).as_deref() == Some(name))
        .collect();
    let new_line = format!("credential_process = {command}");
    let Some((keep, dups)) = ours.split_first() else {
        return Merged {
            text: append_section(existing, &lines, name, &new_line),
            updated: false,
            removed_duplicates: Vec::new(),
        };
    };

    // Settings of the duplicates the kept section lacks, in file order (first one wins).
    let mut known: Vec<&str> = keep.entries.iter().map(|e| e.key.as_str()).collect();
    let mut carried: Vec<&str> = Vec::new();
    for d in dups {
        for e in &d.entries {
            if e.key != CREDENTIAL_PROCESS && !known.contains(&e.key.as_str()) {
                known.push(&e.key);
                carried.extend(lines[e.first..=e.last].iter().map(|l| l.text));
            }
        }
    }

    // Line edits: (first line, last line, replacement lines; the last line's ending is kept).
    let mut edits: Vec<(usize, usize, Option<Vec<&str>>)> = Vec::new();
    let mut ours_lines: Vec<&str> = vec![new_line.as_str()];
    ours_lines.extend(carried);
    let cps: Vec<&Entry> = keep
        .entries
        .iter()
        .filter(|e| e.key == CREDENTIAL_PROCESS)
        .collect();
    match cps.split_first() {
        Some((first, rest)) => {
            edits.push((first.first, first.last, Some(ours_lines)));
            for e in rest {
                edits.push((e.first, e.last, None));
            }
        }
        None => {
            let mut with_header = vec![lines[keep.header].text];
            with_header.extend(ours_lines);
            edits.push((keep.header, keep.header, Some(with_header)));
        }
    }
    for d in dups {
        let last = d.entries.last().map_or(d.header, |e| e.last);
        edits.push((d.header, last, None));
    }
    edits.sort_by_key(|e| e.0);

    let eol = eol_of(&lines, keep.header);
    let mut text = String::with_capacity(existing.len() + new_line.len());
    let mut next = 0;
    for (first, last, replacement) in edits {
        for l in &lines[next..first] {
            text.push_str(l.text);
            text.push_str(l.end);
        }
        if let Some(r) = replacement {
            text.push_str(&r.join(eol));
            text.push_str(lines[last].end);
        }
        next = last + 1;
    }
    for l in &lines[next..] {
        text.push_str(l.text);
        text.push_str(l.end);
    }
    Merged {
        text,
        updated: true,
        removed_duplicates: dups.iter().map(|d| d.header + 1).collect(),
    }
}

const CREDENTIAL_PROCESS: &str = "credential_process";

use crate::ini::{Entry, Line, Section, eol_of, parse, py_space, split_lines};

/// The profile botocore maps a section to (`configloader.build_profile_map`).
fn botocore_profile_name(section: &str) -> Option<String> {
    if section.starts_with("profile") {
        match shlex_split(section)?.as_slice() {
            [_, name] => Some(name.clone()),
            _ => None,
        }
    } else if section == "default" {
        Some("default".into())
    } else {
        None
    }
}

/// Python's `shlex.split` (POSIX mode): whitespace separates words, `'…'` is literal, `"…"` allows
/// `\"` and `\\`, a backslash outside quotes escapes the next character. `None` where Python raises.
fn shlex_split(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(w) = word.take() {
                    words.push(w);
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\') => w.push(c),
                            c => {
                                w.push('\\');
                                w.push(c);
                            }
                        },
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// `existing` with a new section for `name` at the end, separated by a blank line.
fn append_section(existing: &str, lines: &[Line<'_>], name: &str, option: &str) -> String {
    let eol = lines
        .iter()
        .map(|l| l.end)
        .find(|e| !e.is_empty())
        .unwrap_or("\n");
    let mut text = existing.to_string();
    if let Some(last) = lines.last() {
        if last.end.is_empty() {
            text.push_str(eol);
        }
        if !last.text.trim_matches(py_space).is_empty() {
            text.push_str(eol);
        }
    }
    text.push_str(&section_header(name));
    text.push_str(eol);
    text.push_str(option);
    text.push_str(eol);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "/usr/bin/rolesanywhere-agent credential-process --certificate /c.pem";

    /// A config with everything that must survive: comments of both kinds, another profile with a
    /// continuation value, sso-session and services sections, a profile whose name starts like ours.
    const OTHERS: &str = "\
# my AWS config
; managed by hand
[default]
region = eu-west-1

[profile work]
sso_session = corp
s3 =
    addressing_style = path
    signature_version = s3v4

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1

[services local]
s3 =
  endpoint_url = http://127.0.0.1:9000

[profile rolesanywhere-old]
credential_process = /old/agent
";

    fn merged(existing: &str) -> Merged {
        merge_profile(existing, "rolesanywhere", CMD)
    }

    #[test]
    fn a_new_profile_is_appended_and_nothing_else_changes() {
        let m = merged(OTHERS);
        assert!(!m.updated);
        assert_eq!(
            m.text,
            format!("{OTHERS}\n[profile rolesanywhere]\ncredential_process = {CMD}\n")
        );
        // Idempotent: a second run replaces the line it wrote, byte for byte the same file.
        let again = merged(&m.text);
        assert!(again.updated && again.removed_duplicates.is_empty());
        assert_eq!(again.text, m.text);
    }

    #[test]
    fn an_empty_or_missing_file_gets_just_the_profile() {
        assert_eq!(
            merged("").text,
            format!("[profile rolesanywhere]\ncredential_process = {CMD}\n")
        );
        assert_eq!(
            merge_profile("", "default", CMD).text,
            format!("[default]\ncredential_process = {CMD}\n")
        );
    }

    #[test]
    fn the_profile_is_replaced_in_place_keeping_its_other_settings_and_comments_around_it() {
        let before = "# top\n[profile rolesanywhere]\nregion = us-east-1\n\
                      credential_process = old --flag\n    continued value\n\n# about work\n\
                      [profile work]\nregion = eu-west-1\n";
        let m = merged(before);
        assert!(m.updated);
        assert_eq!(
            m.text,
            format!(
                "# top\n[profile rolesanywhere]\nregion = us-east-1\ncredential_process = {CMD}\n\n\
                 # about work\n[profile work]\nregion = eu-west-1\n"
            )
        );
    }

    #[test]
    fn a_section_without_credential_process_gets_it_below_the_header() {
        let m = merged("[profile rolesanywhere]\nregion = us-east-1\n");
        assert_eq!(
            m.text,
            format!("[profile rolesanywhere]\ncredential_process = {CMD}\nregion = us-east-1\n")
        );
    }

    #[test]
    fn crlf_files_keep_crlf_and_a_missing_final_newline_stays_missing() {
        let crlf = "[default]\r\nregion = eu-west-1\r\n\r\n[profile rolesanywhere]\r\ncredential_process = old";
        let m = merged(crlf);
        assert_eq!(
            m.text,
            format!(
                "[default]\r\nregion = eu-west-1\r\n\r\n[profile rolesanywhere]\r\ncredential_process = {CMD}"
            )
        );
        // Appending to a file without a final newline ends its last line first.
        let m = merged("[default]\r\nregion = eu-west-1");
        assert_eq!(
            m.text,
            format!(
                "[default]\r\nregion = eu-west-1\r\n\r\n[profile rolesanywhere]\r\ncredential_process = {CMD}\r\n"
            )
        );
        let m = merged("[default]\nregion = eu-west-1");
        assert_eq!(
            m.text,
            format!(
                "[default]\nregion = eu-west-1\n\n[profile rolesanywhere]\ncredential_process = {CMD}\n"
            )
        );
    }

    /// What `install-cert … >> ~/.aws/config` left after a renewal: two sections botocore refuses.
    #[test]
    fn duplicate_sections_from_appending_are_collapsed_into_the_first() {
        let before = "[default]\nregion = eu-west-1\n# Add to ~/.aws/config:\n\
                      [profile rolesanywhere]\ncredential_process = first\n\
                      # Add to ~/.aws/config:\n[profile rolesanywhere]\ncredential_process = second\n\
                      output = json\n[profile   \"rolesanywhere\"]\nregion = us-east-1\n\
                      credential_process = third\n\n[profile work]\nregion = x\n";
        let m = merged(before);
        assert!(m.updated);
        assert_eq!(m.removed_duplicates, [7, 10]);
        assert_eq!(
            m.text,
            format!(
                "[default]\nregion = eu-west-1\n# Add to ~/.aws/config:\n\
                 [profile rolesanywhere]\ncredential_process = {CMD}\noutput = json\nregion = us-east-1\n\
                 # Add to ~/.aws/config:\n\n[profile work]\nregion = x\n"
            )
        );
        // Duplicate options inside the one section are collapsed too (botocore refuses those as well).
        let m = merged("[profile rolesanywhere]\ncredential_process = a\nCredential_Process = b\n");
        assert_eq!(
            m.text,
            format!("[profile rolesanywhere]\ncredential_process = {CMD}\n")
        );
    }

    #[test]
    fn default_is_the_default_section_or_profile_default() {
        let before = "[default]\nregion = a\n[profile default]\ncredential_process = x\n";
        let m = merge_profile(before, "default", CMD);
        assert_eq!(m.removed_duplicates, [3]);
        assert_eq!(
            m.text,
            format!("[default]\ncredential_process = {CMD}\nregion = a\n")
        );
    }

    #[test]
    fn lookalike_sections_and_indented_headers_are_not_the_profile() {
        // `[profile rolesanywhere-old]`, `[rolesanywhere]` (not a profile) and an indented
        // `[profile rolesanywhere]` that continues a value are someone else's.
        let before = "[profile rolesanywhere-old]\ncredential_process = x\n[rolesanywhere]\na = b\n\
                      [profile work]\nnote = x\n    [profile rolesanywhere]\n";
        let m = merged(before);
        assert!(!m.updated);
        assert!(m.text.starts_with(before), "{}", m.text);
    }

    #[test]
    fn profile_names_follow_botocore() {
        for (section, want) in [
            ("profile ra", Some("ra")),
            ("profile   ra", Some("ra")),
            ("profile \"ra\"", Some("ra")),
            ("profile 'r a'", Some("r a")),
            ("profiles ra", Some("ra")),
            ("profile a b", None),
            ("profile", None),
            ("profile \"ra", None),
            ("default", Some("default")),
            ("ra", None),
            ("sso-session ra", None),
        ] {
            assert_eq!(botocore_profile_name(section).as_deref(), want, "{section}");
        }
    }

    #[test]
    fn plain_profile_names() {
        for ok in ["rolesanywhere", "prod-eu_1", "a.b@c"] {
            assert!(is_plain_profile_name(ok), "{ok}");
        }
        for bad in ["", "a b", "a]b", "a\"b", "a#b", "a\nb", "'a'"] {
            assert!(!is_plain_profile_name(bad), "{bad:?}");
        }
    }

    /// botocore itself reads every merged file: it parses, the profile has exactly our command, and
    /// every other section reads as it did before (the old file read leniently, since botocore
    /// refuses the duplicates that are being collapsed).
    #[test]
    fn botocore_reads_the_merged_files_and_sees_the_other_sections_unchanged() {
        const SCRIPT: &str = r#"
import sys, json, configparser
from botocore import configloader
def sections(path, strict):
    cp = configparser.RawConfigParser(strict=strict)
    cp.read([path])
    return {s: dict(cp.items(s)) for s in cp.sections()}
print(json.dumps({
    "before": sections(sys.argv[1], False),
    "after": sections(sys.argv[2], True),
    "profiles": configloader.load_config(sys.argv[2])["profiles"],
}))
"#;
        let probe = std::process::Command::new("python3")
            .args(["-c", "import botocore"])
            .output();
        if !probe.is_ok_and(|o| o.status.success()) {
            assert!(!hsm_tests::required(), "python3 with botocore is required");
            eprintln!("SKIP: python3 with botocore not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let fixtures = [
            OTHERS.to_string(),
            OTHERS.replace('\n', "\r\n"),
            OTHERS.trim_end().to_string(),
            format!(
                "{OTHERS}[profile rolesanywhere]\ncredential_process = a\n\
                     [profile rolesanywhere]\nregion = x\ncredential_process = b"
            ),
            "[profile work]\nnote = x\n    [profile rolesanywhere]\n".to_string(),
        ];
        for (i, before) in fixtures.iter().enumerate() {
            let m = merged(before);
            let (b, a) = (dir.path().join("before"), dir.path().join("after"));
            std::fs::write(&b, before).unwrap();
            std::fs::write(&a, &m.text).unwrap();
            let o = std::process::Command::new("python3")
                .args(["-c", SCRIPT])
                .arg(&b)
                .arg(&a)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "fixture {i}: botocore refused {:?}: {}",
                m.text,
                String::from_utf8_lossy(&o.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(
                v["profiles"]["rolesanywhere"]["credential_process"], CMD,
                "fixture {i}: {v}"
            );
            let ours = |name: &str| botocore_profile_name(name).as_deref() == Some("rolesanywhere");
            let after = v["after"].as_object().unwrap();
            assert_eq!(
                after.keys().filter(|k| ours(k)).count(),
                1,
                "fixture {i}: {v}"
            );
            for (name, settings) in v["before"].as_object().unwrap() {
                if !ours(name) {
                    assert_eq!(&after[name], settings, "fixture {i}: section {name}");
                }
            }
        }
    }
}
