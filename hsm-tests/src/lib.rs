//! Shared fixtures for the tests against real SoftHSM2 and swtpm.
//!
//! Owns: the skip-or-fail rule, finding the agent binary, running it. It must not hide a missing
//! simulator in CI: with `HSM_TESTS_REQUIRED=1` (or a non-empty `CI`) a missing tool fails the test instead of
//! skipping it.
//!
//! - [`emu`]: an emulator with a fresh CA, anchor, profile and role, stopped on drop.
//! - [`softhsm`]: a private SoftHSM2 configuration and token directory per test.
//! - [`swtpm`]: a private swtpm on free loopback ports per test, killed on drop.

pub mod emu;
pub mod softhsm;
pub mod swtpm;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// True when missing simulators must fail the tests rather than skip them: the one skip-or-fail
/// rule of the workspace (the PKCS#11 unit tests and the CLI tests call this too).
pub fn required() -> bool {
    required_by(&|name| std::env::var_os(name))
}

/// The rule, with `env` looking up environment variables: `HSM_TESTS_REQUIRED=1`, or `CI` set to a
/// non-empty value (CI services set `CI=true`). `HSM_TESTS_REQUIRED=0` or an empty `CI` do not
/// require anything.
pub fn required_by(env: &dyn Fn(&str) -> Option<OsString>) -> bool {
    env("HSM_TESTS_REQUIRED").is_some_and(|v| v == "1") || env("CI").is_some_and(|v| !v.is_empty())
}

/// Call when a prerequisite is missing: panics when [`required`], else prints a SKIP line and returns
/// `true` so the caller can `return`.
#[must_use]
pub fn skip(reason: &str) -> bool {
    if required() {
        panic!("HSM_TESTS_REQUIRED: cannot run: {reason}");
    }
    eprintln!("SKIP: {reason}");
    true
}

/// True when `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// The workspace's target directory (the agent binary lives under `debug/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `rolesanywhere-agent` binary under test: `$RA_AGENT_BIN`, else the workspace's debug build
/// (`scripts/test` builds it first and exports `RA_AGENT_BIN`).
pub fn agent_bin() -> PathBuf {
    let p = std::env::var_os("RA_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/rolesanywhere-agent"));
    assert!(
        p.is_file(),
        "agent binary {} not found: run `cargo build` first, or run the suite with `scripts/test`, \
         which builds it and exports RA_AGENT_BIN",
        p.display()
    );
    p
}

/// A finished agent run.
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs the agent with `args` and a clean environment plus `env` (PATH and HOME are kept).
pub fn run_agent(args: &[&str], env: &[(&str, &str)]) -> Run {
    agent_command(args, env)
        .output()
        .expect("cannot start the agent binary")
        .into()
}

/// Like [`run_agent`], but kills the agent after `limit` ([`output_within`]): a hang fails the test
/// with a message instead of stalling the run. Returns the run and how long it took.
pub fn run_agent_within(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let out = output_within(&mut agent_command(args, env), limit);
    (out.into(), start.elapsed())
}

/// The agent binary with `args`, a cleared environment but `PATH`, `HOME`, `TSS2_LOG=all+none`
/// and `env`.
fn agent_command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(agent_bin());
    cmd.args(args).env_clear();
    for k in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("TSS2_LOG", "all+none");
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs `cmd` with stdin closed and its output captured, like [`Command::output`], but kills it (only
/// this child) and panics when it runs longer than `limit`: a test of something that must fail fast
/// (a FIFO, a hostile file) then fails after `limit` instead of hanging the suite.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    use std::process::Stdio;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the program under test");
    fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = pipe.read_to_end(&mut out);
            out
        })
    }
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = loop {
        if let Some(status) = child.try_wait().expect("cannot wait for the child") {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let collect = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    let Some(status) = status else {
        panic!(
            "{:?} still running after {limit:?}, killed; stderr so far:\n{}",
            cmd.get_program(),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output {
        status,
        stdout,
        stderr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required_with(vars: &[(&str, &str)]) -> bool {
        required_by(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
    }

    #[test]
    fn required_iff_hsm_tests_required_is_1_or_ci_is_non_empty() {
        assert!(!required_with(&[]));
        assert!(required_with(&[("HSM_TESTS_REQUIRED", "1")]));
        assert!(!required_with(&[("HSM_TESTS_REQUIRED", "0")]));
        assert!(!required_with(&[("HSM_TESTS_REQUIRED", "")]));
        assert!(required_with(&[("CI", "true")]));
        assert!(!required_with(&[("CI", "")]));
        assert!(required_with(&[("HSM_TESTS_REQUIRED", "0"), ("CI", "1")]));
    }
}
