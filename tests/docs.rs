//! The CLI reference cannot fall behind the code: every flag and command the binary's `--help` lists
//! must appear in `docs/cli.md`.
//!
//! Runs the built binary only for its help text (no network, no files besides the doc).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rolesanywhere-agent");

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

/// The long flags an option section of clap's help defines (`--name` at the start of an option line,
/// not the ones mentioned in descriptions, which clap indents further).
fn flags_in_help(text: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 || indent > 6 {
            continue;
        }
        let option = line.trim_start();
        let option = option.strip_prefix("-h, ").unwrap_or(option);
        let option = option.strip_prefix("-V, ").unwrap_or(option);
        if let Some(name) = option.strip_prefix("--") {
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if name != "help" && name != "version" {
                flags.insert(format!("--{name}"));
            }
        }
    }
    flags
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

#[test]
fn every_flag_in_help_is_documented_in_cli_md() {
    let doc = cli_md();
    let mut missing = Vec::new();
    for command in [
        "credential-process",
        "sign-string",
        "read-certificate-data",
        "update",
        "serve",
    ] {
        let flags = flags_in_help(&help(&[command]));
        assert!(
            flags.contains("--certificate"),
            "no flags parsed from `{command} --help`: {flags:?}"
        );
        for flag in flags {
            if !mentions(&doc, &flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md does not mention: {}",
        missing.join(", ")
    );
}

#[test]
fn every_command_in_help_is_documented_in_cli_md() {
    let doc = cli_md();
    let text = help(&[]);
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.contains(&"credential-process"), "{text}");
    for c in commands {
        assert!(
            doc.contains(&format!("`{c}`")),
            "docs/cli.md does not mention the {c} command"
        );
    }
}

#[test]
fn help_parser_finds_flags_but_not_mentions_in_descriptions() {
    let sample = "Options:\n      --tpm-key-password <TPM_KEY_PASSWORD>\n          TPM key password \
                  (prefer --tpm-key-password-file)\n  -h, --help\n          Print help\n";
    let flags = flags_in_help(sample);
    assert_eq!(
        flags.into_iter().collect::<Vec<_>>(),
        ["--tpm-key-password"]
    );
    assert!(mentions("`--tpm-key-password VALUE`", "--tpm-key-password"));
    assert!(!mentions("`--tpm-key-password-file`", "--tpm-key-password"));
}
