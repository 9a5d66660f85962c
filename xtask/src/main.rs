//! Build-time tasks for packaging (`scripts/package`), kept out of the agent so that the binary every
//! `credential_process` call starts carries no man page or completion generator.
//!
//! `cargo run -p xtask -- dist-files --out DIR` writes, from the very clap definitions the binaries
//! parse their arguments with (so the pages cannot drift from `--help`):
//!
//! - `DIR/man/NAME.1`: one page per command and subcommand (`rolesanywhere-agent.1`,
//!   `rolesanywhere-agent-enroll-install-cert.1`, `rolesanywhere-emulator-ca-issue.1`, …);
//! - `DIR/completions/bash/NAME`, `DIR/completions/zsh/_NAME`, `DIR/completions/fish/NAME.fish`,
//!   named as Debian's bash-completion, zsh and fish look them up.

use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Tasks.
#[derive(Parser)]
#[command(name = "xtask")]
enum Task {
    /// Write the man pages and shell completions of both binaries into OUT.
    DistFiles {
        /// Output directory (created; files in it are overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Date on the man pages, YYYY-MM-DD (scripts/package: the commit's date, so that a rebuild
        /// of the same commit is identical).
        #[arg(long)]
        date: String,
    },
}

fn main() -> ExitCode {
    let Task::DistFiles { out, date } = Task::parse();
    match dist_files(&out, &date) {
        Ok(count) => {
            eprintln!("xtask: wrote {count} files under {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// An I/O failure with the file it happened to.
#[derive(Debug)]
struct Error {
    path: PathBuf,
    source: std::io::Error,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)
    }
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error {
        path: path.to_path_buf(),
        source,
    }
}

fn dist_files(out: &Path, date: &str) -> Result<usize, Error> {
    let agent = rolesanywhere_agent::cli::args::Cli::command();
    let emulator = rolesanywhere_emulator::cli::Cli::command();
    let mut count = 0;
    let man = out.join("man");
    std::fs::create_dir_all(&man).map_err(at(&man))?;
    count += man_pages(agent.clone(), &man, date, Some(&agent_extra_sections()))?;
    count += man_pages(emulator.clone(), &man, date, None)?;
    for cmd in [agent, emulator] {
        count += completions(cmd, &out.join("completions"))?;
    }
    Ok(count)
}

/// One page for `cmd` and one for each visible subcommand, recursively, as
/// `clap_mangen::generate_to` does, plus `extra` roff on the top page.
fn man_pages(
    cmd: clap::Command,
    dir: &Path,
    date: &str,
    extra: Option<&str>,
) -> Result<usize, Error> {
    // The footer: the command and its version. The agent's version line (revision, backends) is too
    // long for it and stays in the VERSION section.
    let version = cmd.get_version().and_then(|v| v.split_whitespace().next());
    let source = format!("{} {}", cmd.get_name(), version.unwrap_or_default());
    let title = Title {
        date,
        source: &source,
    };
    // Building names every subcommand's page `parent-sub` and its synopsis `parent sub`.
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    page(cmd, &title, dir, extra)
}

/// The `.TH` fields every page of one binary shares.
struct Title<'a> {
    date: &'a str,
    source: &'a str,
}

fn page(
    cmd: clap::Command,
    title: &Title<'_>,
    dir: &Path,
    extra: Option<&str>,
) -> Result<usize, Error> {
    let mut count = 0;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        count += page(sub.clone(), title, dir, None)?;
    }
    // Every field set: clap_mangen writes an empty field as nothing, which shifts the ones after it.
    let man = clap_mangen::Man::new(cmd)
        .date(title.date)
        .source(title.source)
        .manual("rolesanywhere-agent");
    let path = dir.join(man.get_filename());
    let mut text = Vec::new();
    man.render(&mut text).map_err(at(&path))?;
    if let Some(extra) = extra {
        text.extend_from_slice(extra.as_bytes());
    }
    std::fs::write(&path, text).map_err(at(&path))?;
    Ok(count + 1)
}

/// EXIT STATUS and SEE ALSO for `rolesanywhere-agent(1)`: what clap has no place for.
fn agent_extra_sections() -> String {
    use roff::{Roff, bold, roman};
    let doc = "/usr/share/doc/rolesanywhere-agent";
    Roff::new()
        .control("SH", ["EXIT STATUS"])
        .text([roman(
            "0 success; 1 operational failure (device, network, service refusal); \
             2 usage or configuration error.",
        )])
        .control("SH", ["SEE ALSO"])
        .text([
            roman("The reference of every command, flag and environment variable: "),
            bold(format!("{doc}/docs/cli.md")),
            roman("; profiles, secrets, TLS and proxies: "),
            bold(format!("{doc}/docs/configuration.md")),
            roman("; enrollment on a token or TPM: "),
            bold(format!("{doc}/docs/enrollment.md")),
            roman("; the backends: "),
            bold(format!("{doc}/docs/backends/")),
            roman("."),
        ])
        .to_roff()
}

/// bash, zsh and fish completions for `cmd`, in the directories `scripts/package` installs from.
fn completions(mut cmd: clap::Command, dir: &Path) -> Result<usize, Error> {
    let name = cmd.get_name().to_string();
    for (shell, sub, file) in [
        (Shell::Bash, "bash", name.clone()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let sub = dir.join(sub);
        std::fs::create_dir_all(&sub).map_err(at(&sub))?;
        let path = sub.join(file);
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, &name, &mut text);
        let mut text = String::from_utf8_lossy(&text).into_owned();
        if shell == Shell::Bash {
            text = fix_bash_hyphenated_name(&text, &name);
        }
        std::fs::write(&path, text).map_err(at(&path))?;
    }
    Ok(3)
}

/// clap_complete's bash script for a binary whose name has a hyphen completes nothing after the
/// first subcommand (clap-rs/clap#6421, unfixed in 4.6.12): its dispatch loop spells the state of
/// `rolesanywhere-agent enroll` as `rolesanywhere__agent__subcmd__enroll`, but the case arms that
/// hold the options as `rolesanywhere__subcmd__agent__subcmd__enroll`, so no arm ever matches.
/// Spell the arms as the loop does. Once upstream is fixed the arm spelling no longer occurs and
/// this changes nothing.
fn fix_bash_hyphenated_name(script: &str, name: &str) -> String {
    let arms = name.replace('-', "__subcmd__");
    let dispatch = name.replace('-', "__");
    script.replace(&arms, &dispatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bash script's states: every `cmd="STATE"` the dispatch loop sets, and every `STATE)` arm.
    fn states_and_arms(script: &str) -> (Vec<String>, Vec<String>) {
        let mut states = Vec::new();
        let mut arms = Vec::new();
        for line in script.lines() {
            let line = line.trim();
            if let Some(state) = line
                .strip_prefix("cmd=\"")
                .and_then(|l| l.strip_suffix('"'))
            {
                if !state.is_empty() {
                    states.push(state.to_string());
                }
            } else if let Some(arm) = line.strip_suffix(')')
                && !arm.is_empty()
                && arm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                arms.push(arm.to_string());
            }
        }
        (states, arms)
    }

    fn bash_script(mut cmd: clap::Command) -> String {
        let name = cmd.get_name().to_string();
        let mut text = Vec::new();
        clap_complete::generate(Shell::Bash, &mut cmd, &name, &mut text);
        fix_bash_hyphenated_name(&String::from_utf8(text).unwrap(), &name)
    }

    /// Without the fix, `rolesanywhere-agent enroll <TAB>` and every subcommand's flags complete
    /// nothing (clap-rs/clap#6421).
    #[test]
    fn every_bash_completion_state_has_its_case_arm() {
        for cmd in [
            rolesanywhere_agent::cli::args::Cli::command(),
            rolesanywhere_emulator::cli::Cli::command(),
        ] {
            let (states, arms) = states_and_arms(&bash_script(cmd));
            assert!(
                states.iter().any(|s| s.ends_with("__subcmd__enroll"))
                    || states.iter().any(|s| s.ends_with("__subcmd__ca")),
                "{states:?}"
            );
            for state in &states {
                assert!(arms.contains(state), "no case arm for {state}: {arms:?}");
            }
        }
    }
}
