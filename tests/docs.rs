//! The CLI reference cannot fall behind the code: every command and every long flag of every
//! command (walked from the clap definitions the binary parses with, `enroll …` included) must
//! appear in `docs/cli.md`, and the binary's `--help` must agree with those definitions.
//!
//! The emulator's own flags are held to `emulator/README.md` by `emulator/tests/docs.rs`.

use clap::CommandFactory as _;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rolesanywhere-agent");

/// Every command path (`credential-process`, `enroll keygen`, …) with its long flags, depth first;
/// clap's own `help` command and `--help`/`--version` flags left out.
fn command_tree(cmd: &clap::Command) -> Vec<(String, Vec<String>)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = if path.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{path} {}", sub.get_name())
            };
            let flags = sub
                .get_arguments()
                .filter_map(clap::Arg::get_long)
                .filter(|l| *l != "help" && *l != "version")
                .map(|l| format!("--{l}"))
                .collect();
            out.push((name.clone(), flags));
            walk(sub, &name, out);
        }
    }
    let mut out = Vec::new();
    walk(cmd, "", &mut out);
    out
}

/// True when `flag` occurs in `doc` as a whole flag (`--tpm-key-password` does not count as found
/// inside `--tpm-key-password-file`).
fn mentions(doc: &str, flag: &str) -> bool {
    doc.match_indices(flag).any(|(i, _)| {
        let next = doc[i + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

fn cli_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The section of `doc` for `command`: from its `## command` (or `### command`) heading to the next
/// heading of the same or a higher level.
fn section<'a>(doc: &'a str, command: &str) -> Option<&'a str> {
    let mut start = None;
    let mut level = 0;
    let mut offset = 0;
    for line in doc.split_inclusive('\n') {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && line[hashes..].starts_with(' ') {
            if let Some(s) = start {
                if hashes <= level {
                    return Some(&doc[s..offset]);
                }
            } else if line[hashes..].trim() == command {
                start = Some(offset);
                level = hashes;
            }
        }
        offset += line.len();
    }
    start.map(|s| &doc[s..])
}

/// The text of `command`'s section before its first subsection.
fn preamble<'a>(doc: &'a str, command: &str) -> &'a str {
    let s = section(doc, command).unwrap_or("");
    let body_start = s.find('\n').map_or(s.len(), |i| i + 1);
    s[body_start..]
        .find("\n#")
        .map_or(s, |i| &s[..body_start + i + 1])
}

fn help(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("the agent binary runs");
    assert!(out.status.success(), "{args:?} --help failed: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

#[test]
fn every_command_and_flag_is_documented_in_cli_md() {
    let doc = cli_md();
    let tree = command_tree(&rolesanywhere_agent::cli::args::Cli::command());
    assert!(
        tree.iter().any(|(c, _)| c == "enroll install-cert"),
        "the walk misses enroll: {tree:?}"
    );
    let mut missing = Vec::new();
    for (command, flags) in &tree {
        if !doc.contains(&format!("`{command}`")) {
            missing.push(format!("the `{command}` command"));
        }
        // Commands with subcommands have no flags of their own worth a section.
        if flags.is_empty() {
            continue;
        }
        // Enroll commands have sections of their own, below the `## enroll` text that documents
        // the device flags they share; the signing commands share the key-flag table, so for them
        // the whole reference counts.
        let text = if let Some((parent, _)) = command.split_once(' ') {
            match section(&doc, command) {
                Some(s) => format!("{}{s}", preamble(&doc, parent)),
                None => {
                    missing.push(format!("a `### {command}` section"));
                    continue;
                }
            }
        } else {
            doc.clone()
        };
        for flag in flags {
            if !mentions(&text, flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md does not document: {}",
        missing.join(", ")
    );
}

/// The binary's help is generated from the same definitions the tree walk reads: a flag listed by
/// one is listed by the other (guards against the binary parsing with something else).
#[test]
fn help_output_lists_the_flags_of_the_definitions() {
    let tree = command_tree(&rolesanywhere_agent::cli::args::Cli::command());
    for (command, flags) in tree.iter().filter(|(_, f)| !f.is_empty()) {
        let args: Vec<&str> = command.split(' ').collect();
        let text = help(&args);
        for flag in flags {
            assert!(mentions(&text, flag), "`{command} --help` lacks {flag}");
        }
    }
}

/// Every environment variable of the reference's table is named in the `--help` of
/// `credential-process`, which reads them all (they used to be in no help text at all).
#[test]
fn every_documented_environment_variable_is_in_the_help() {
    let doc = cli_md();
    let table = section(&doc, "Environment variables").expect("an Environment variables section");
    // Table rows only: the text below the table names variables that are *not* read.
    let rows: String = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| l.split('|').nth(1).unwrap_or(""))
        .collect();
    let mut names: Vec<&str> = rows
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.len() > 2
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    names.dedup();
    assert!(names.contains(&"ROLESANYWHERE_PKCS11_PIN"), "{names:?}");
    let text = help(&["credential-process"]);
    let missing: Vec<&&str> = names.iter().filter(|n| !mentions(&text, n)).collect();
    assert!(
        missing.is_empty(),
        "credential-process --help does not name {missing:?}"
    );
}

#[test]
fn section_finds_a_heading_and_stops_at_the_next_one() {
    let doc = "# T\n## a\nx --one\n### a b\ny\n## c\nz --two\n";
    assert_eq!(section(doc, "a"), Some("## a\nx --one\n### a b\ny\n"));
    assert_eq!(section(doc, "a b"), Some("### a b\ny\n"));
    assert_eq!(section(doc, "c"), Some("## c\nz --two\n"));
    assert_eq!(section(doc, "d"), None);
    assert_eq!(preamble(doc, "a"), "## a\nx --one\n");
    assert!(mentions("`--tpm-key-password VALUE`", "--tpm-key-password"));
    assert!(!mentions("`--tpm-key-password-file`", "--tpm-key-password"));
}
