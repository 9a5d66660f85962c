//! Build script: the git revision `version` reports (`RA_REVISION` for the crate).
//!
//! In order: `RA_BUILD_REVISION` when set (a packager building from a tarball names the revision);
//! else `git rev-parse HEAD` (12 hex digits) with `-dirty` when tracked files differ from HEAD, but
//! only when this crate is the top of that git repository (not a crate vendored into another
//! project's repository, whose revision would be a lie); else `unknown`.
//!
//! Reruns only when the revision can have changed: HEAD, the branch it points to (also in a git
//! worktree, where `.git` is a file), `src/` and `Cargo.toml` (edits there change the dirty marker and
//! rebuild the crate anyway). Edits elsewhere in the tree are picked up at the next commit or source
//! change, so that editing the docs does not recompile the agent.
//!
//! Release builds of the `rolesanywhere-agent` binary (and of its TPM companion,
//! `rolesanywhere-agent-tpm`) on Linux are linked by lld with
//! `build/link-order.txt` as its symbol ordering file (written by `scripts/link-order`): the
//! functions one `credential-process` runs lie together at the start of the text, so that a cold
//! start faults in a few 64 KiB windows of code instead of most of them (ADR 0002, "The RSS
//! round"). rustc on x86_64 Linux links with its own rust-lld already (`-B` ahead of the system's
//! linkers); `-fuse-ld=lld` makes any other toolchain take Debian's `ld.lld`, which the option
//! needs (GNU ld does not know it). Without `ld.lld` on PATH or without the file the binary is linked
//! as usual, with a build warning; installing lld later takes effect with the next change to this
//! script's inputs (`cargo clean -p rolesanywhere-agent --release` forces it).

use std::path::{Path, PathBuf};
use std::process::Command;

const OVERRIDE: &str = "RA_BUILD_REVISION";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    println!("cargo:rerun-if-env-changed={OVERRIDE}");
    for path in ["build.rs", "Cargo.toml", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let revision = match std::env::var(OVERRIDE) {
        Ok(r) if !r.trim().is_empty() => checked_override(r.trim()),
        _ => git_revision(&manifest_dir).unwrap_or_else(|| "unknown".into()),
    };
    println!("cargo:rustc-env=RA_REVISION={revision}");
    link_order(&manifest_dir);
}

const ORDER_FILE: &str = "build/link-order.txt";

/// Only the shipped binaries: tests, debug builds, the emulator and fuzz/ link as before.
fn link_order(dir: &Path) {
    println!("cargo:rerun-if-changed={ORDER_FILE}");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !release || !linux {
        return;
    }
    let order = dir.join(ORDER_FILE);
    if !order.is_file() {
        println!(
            "cargo:warning={ORDER_FILE} is missing: linking without a code order (run scripts/link-order)"
        );
        return;
    }
    if !on_path("ld.lld") {
        println!(
            "cargo:warning=ld.lld not found: linking without the code order of {ORDER_FILE} (install lld; scripts/install-deps does)"
        );
        return;
    }
    // The companion runs the same code for a TPM key: the same order serves it (its TPM functions,
    // not in the file, go after the listed ones). Cargo refuses link arguments for a binary the
    // build does not have: the companion exists with the `tpm` feature only.
    let mut bins = vec!["rolesanywhere-agent"];
    if std::env::var_os("CARGO_FEATURE_TPM").is_some() {
        bins.push("rolesanywhere-agent-tpm");
    }
    for bin in bins {
        println!("cargo:rustc-link-arg-bin={bin}=-fuse-ld=lld");
        println!(
            "cargo:rustc-link-arg-bin={bin}=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Names a newer build no longer has (renamed functions, other dependency versions) are
        // skipped; they only cost residency, so they need not be listed on every build.
        println!("cargo:rustc-link-arg-bin={bin}=-Wl,--no-warn-symbol-ordering");
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// The override ends up in `--version` and the man pages: keep it to one printable word.
fn checked_override(r: &str) -> String {
    let ok = r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-~".contains(&b));
    if !ok {
        panic!(
            "{OVERRIDE}={r:?}: use at most 64 characters from A-Z a-z 0-9 . _ + - ~ (e.g. a commit hash)"
        );
    }
    r.to_string()
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        // Never take the index lock or rewrite the index: a build must not disturb a concurrent git
        // command, and a rewritten index would look like a change.
        .arg("--no-optional-locks")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim_end().to_string())
}

fn git_revision(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    // Files whose change means HEAD moved: in a worktree these live in different directories
    // (HEAD and its reflog in the worktree's git dir, branches in the common one); git knows where.
    let mut watched = vec!["HEAD".to_string(), "logs/HEAD".into(), "packed-refs".into()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = dir.join(path);
            // A missing file would make cargo rerun the script on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let hash = git(dir, &["rev-parse", "--short=12", "HEAD"])?;
    let changes = git(dir, &["status", "--porcelain", "--untracked-files=no"])?;
    Some(if changes.is_empty() {
        hash
    } else {
        format!("{hash}-dirty")
    })
}
