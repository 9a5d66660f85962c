//! What a user builds and installs: a bare `cargo build --release` (README "Use") must produce the
//! binaries the README and the Debian package name (the agent, its TPM companion, the emulator), so
//! the workspace's default members are checked here rather than trusted; and every systemd unit
//! under contrib/systemd/ must be a package asset.
//!
//! Runs `cargo metadata --no-deps` and reads files only (no build, no network).

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn bare_cargo_build_builds_the_agent_its_tpm_companion_and_the_emulator() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata failed: {out:?}");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let defaults: BTreeSet<&str> = meta["workspace_default_members"]
        .as_array()
        .expect("cargo reports workspace_default_members")
        .iter()
        .filter_map(|id| id.as_str())
        .collect();
    let mut bins = BTreeSet::new();
    for package in meta["packages"].as_array().expect("packages") {
        if !defaults.contains(package["id"].as_str().unwrap_or_default()) {
            continue;
        }
        for target in package["targets"].as_array().expect("targets") {
            let is_bin = target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"));
            if is_bin {
                bins.insert(target["name"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert_eq!(
        bins.into_iter().collect::<Vec<_>>(),
        [
            "rolesanywhere-agent",
            "rolesanywhere-agent-tpm",
            "rolesanywhere-emulator"
        ],
        "binaries built by a bare `cargo build` (default-members in Cargo.toml)"
    );
}

/// Every unit under contrib/systemd/ is a Debian package asset (scripts/check-package checks the
/// installed files), and each service runs the agent where the package installs it.
#[test]
fn every_systemd_unit_is_packaged_and_runs_the_installed_agent() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let deb = &manifest[manifest.find("[package.metadata.deb]").unwrap()..];
    let assets = &deb[deb.find("assets = [").unwrap()..];
    let assets = &assets[..assets.find("\n]").unwrap()];
    assert!(assets.contains(r#"["target/release/rolesanywhere-agent", "usr/bin/", "755"]"#));
    // Where the agent looks for its TPM companion after ROLESANYWHERE_AGENT_TPM and its own directory.
    assert!(assets.contains(
        r#"["target/release/rolesanywhere-agent-tpm", "usr/libexec/rolesanywhere-agent/", "755"]"#
    ));
    assert_eq!(
        rolesanywhere_agent::cli::companion::INSTALLED,
        "/usr/libexec/rolesanywhere-agent/rolesanywhere-agent-tpm"
    );
    let mut units = Vec::new();
    for entry in std::fs::read_dir(root.join("contrib/systemd")).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().unwrap().to_str().unwrap();
        let asset = format!(
            r#"["contrib/systemd/*.{ext}", "usr/share/doc/rolesanywhere-agent/examples/systemd/", "644"]"#
        );
        assert!(
            assets.contains(&asset),
            "{} is not packaged",
            path.display()
        );
        let text = std::fs::read_to_string(&path).unwrap();
        if ext == "service" {
            let exec = text
                .lines()
                .find_map(|l| l.strip_prefix("ExecStart="))
                .unwrap_or_else(|| panic!("no ExecStart in {}", path.display()));
            assert!(
                exec.starts_with("/usr/bin/rolesanywhere-agent "),
                "{}: {exec}",
                path.display()
            );
        }
        units.push(path.file_name().unwrap().to_str().unwrap().to_string());
    }
    units.sort();
    assert_eq!(
        units,
        [
            "rolesanywhere-agent.service",
            "rolesanywhere-agent.socket",
            "rolesanywhere-serve.service",
            "rolesanywhere-serve.socket",
            "rolesanywhere-update.service"
        ]
    );
}
