//! What a user builds and installs: a bare `cargo build --release` (README "Use") must produce both
//! binaries the README and the Debian package name, so the workspace's default members are checked
//! here rather than trusted.
//!
//! Runs `cargo metadata --no-deps` only (no build, no network).

use std::collections::BTreeSet;
use std::process::Command;

#[test]
fn bare_cargo_build_builds_the_agent_and_the_emulator() {
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
        ["rolesanywhere-agent", "rolesanywhere-emulator"],
        "binaries built by a bare `cargo build` (default-members in Cargo.toml)"
    );
}
