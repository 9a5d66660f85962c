//! The emulator's README cannot fall behind its command line: every command (`ca issue`, …) and
//! every long flag, walked from the clap definitions the binary parses with, must appear in
//! `emulator/README.md`, and a flag in the README's row for its own command.

use clap::CommandFactory as _;
use std::path::Path;

/// Every command path with its long flags, depth first (clap's `help` left out).
fn command_tree(cmd: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
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
        command_tree(sub, &name, out);
    }
}

/// True when `flag` occurs in `text` as a whole flag (not as the start of a longer one).
fn mentions(text: &str, flag: &str) -> bool {
    text.match_indices(flag).any(|(i, _)| {
        let next = text[i + flag.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The README's table row for `command`: the line starting "| `COMMAND" followed by its flags
/// (` -`, ` [`, ` (`) or the closing backtick, so `ca` does not find the row of `ca init`.
fn row<'a>(readme: &'a str, command: &str) -> Option<&'a str> {
    readme.lines().find(|l| {
        l.strip_prefix("| `")
            .and_then(|r| r.strip_prefix(command))
            .is_some_and(|r| ["`", " -", " [", " ("].iter().any(|p| r.starts_with(p)))
    })
}

#[test]
fn every_command_and_flag_is_in_the_readme_row_of_its_command() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("emulator/README.md");
    let mut tree = Vec::new();
    command_tree(&rolesanywhere_emulator::cli::Cli::command(), "", &mut tree);
    assert!(tree.iter().any(|(c, _)| c == "ca issue"), "{tree:?}");
    let mut missing = Vec::new();
    for (command, flags) in &tree {
        if flags.is_empty() {
            continue; // a group of subcommands (`ca`)
        }
        let Some(text) = row(&readme, command) else {
            missing.push(format!("a table row for `{command}`"));
            continue;
        };
        for flag in flags {
            if !mentions(text, flag) {
                missing.push(format!("{command} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "emulator/README.md does not document: {}",
        missing.join(", ")
    );
}

#[test]
fn row_finds_the_command_and_not_a_longer_one() {
    let t = "| `ca init --dir D` | x |\n| `ca intermediate --dir D` | y |\n| `init --dir` | z |\n";
    assert_eq!(row(t, "ca init"), Some("| `ca init --dir D` | x |"));
    assert_eq!(row(t, "init"), Some("| `init --dir` | z |"));
    assert_eq!(row(t, "ca"), None);
}
