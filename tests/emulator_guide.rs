//! The guide at the top of `emulator/README.md` is run as written: its marked shell blocks are
//! extracted in order and run by bash (`set -euo pipefail`) in a temp dir with the real AWS CLI,
//! `rolesanywhere-emulator` and this build's `rolesanywhere-agent` on PATH. Each step's output is
//! held to the `#>` lines the README shows under its commands, and to what the test itself knows
//! the step must show, so an edit that breaks the walkthrough, or that makes it claim other
//! output, fails here.
//!
//! A block is marked by an HTML comment on the line before its fence:
//! `<!-- guide: NAME -->` (must succeed) or `<!-- guide: NAME fails -->` (must fail: it runs in a
//! subshell and its exit status must not be 0). Inside a block, `#> TEXT` is a line the step
//! prints; `…` in TEXT stands for any text.

use std::io::Read as _;
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

/// One marked block of the README.
#[derive(Debug, PartialEq)]
struct Step {
    name: String,
    fails: bool,
    code: String,
    /// The `#>` lines, without the marker.
    expected: Vec<String>,
}

const MARKER: &str = "<!-- guide: ";

/// The marked blocks of `markdown`, in order; an error names the line that breaks the format.
fn guide_steps(markdown: &str) -> Result<Vec<Step>, String> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut steps: Vec<Step> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(rest) = lines[i].strip_prefix(MARKER) else {
            i += 1;
            continue;
        };
        let at = i + 1;
        let spec = rest
            .strip_suffix(" -->")
            .ok_or_else(|| format!("line {at}: a guide marker must end with \" -->\""))?;
        let (name, fails) = match spec.strip_suffix(" fails") {
            Some(name) => (name, true),
            None => (spec, false),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "line {at}: step name {name:?} is not [A-Za-z0-9-]+"
            ));
        }
        if steps.iter().any(|s| s.name == name) {
            return Err(format!("line {at}: step {name:?} appears twice"));
        }
        if !matches!(lines.get(i + 1), Some(&"```sh")) {
            return Err(format!(
                "line {}: the guide marker for {name:?} must be followed by a ```sh fence",
                at + 1
            ));
        }
        let body_start = i + 2;
        let len = lines[body_start..]
            .iter()
            .position(|l| *l == "```")
            .ok_or_else(|| format!("line {at}: the block of step {name:?} is not closed"))?;
        let body = &lines[body_start..body_start + len];
        steps.push(Step {
            name: name.to_string(),
            fails,
            code: body.iter().map(|l| format!("{l}\n")).collect(),
            expected: body
                .iter()
                .filter_map(|l| l.trim_start().strip_prefix("#>"))
                .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end().to_string())
                .collect(),
        });
        i = body_start + len + 1;
    }
    Ok(steps)
}

/// True when `line` is `pattern` with each `…` standing for any text (anchored at both ends).
fn matches(pattern: &str, line: &str) -> bool {
    let line = line.trim_end();
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(p) => rest = &rest[p + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

const STEP_LINE: &str = "@@guide-step ";

/// The bash script that runs `steps` in one shell, printing a step line before each (stdout and
/// stderr together, in order). A step marked `fails` runs in a subshell with `set -e`, and the
/// script stops if it succeeds.
fn driver(steps: &[Step]) -> String {
    let mut s = String::from("set -euo pipefail\nexec 2>&1\n");
    for step in steps {
        s.push_str(&format!("echo '{STEP_LINE}{}'\n", step.name));
        if step.fails {
            s.push_str(&format!(
                "set +e\n(\nset -e\n{}\n)\nguide_rc=$?\nset -e\n\
                 if [ \"$guide_rc\" -eq 0 ]; then echo '@@guide: step {} succeeded but the guide says it fails'; exit 97; fi\n\
                 echo \"@@guide-exit $guide_rc\"\n",
                step.code, step.name
            ));
        } else {
            s.push_str(&step.code);
        }
    }
    s.push_str(&format!("echo '{STEP_LINE}end'\n"));
    s
}

/// The output of each step, by name, from the driver's combined output.
fn split_output(output: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in output.lines() {
        if let Some(name) = line.strip_prefix(STEP_LINE) {
            out.push((name.to_string(), Vec::new()));
        } else if let Some((_, lines)) = out.last_mut() {
            lines.push(line.to_string());
        }
    }
    out
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut t = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let m = if path.is_dir() {
            newest(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        t = t.max(m);
    }
    t
}

/// `rolesanywhere-emulator`: `$RA_EMULATOR_BIN` (scripts/test exports it), else beside this
/// build's agent binary; it must be newer than the emulator's sources.
fn emulator_bin(agent: &Path) -> PathBuf {
    let bin = std::env::var_os("RA_EMULATOR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| agent.with_file_name("rolesanywhere-emulator"));
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| {
            panic!(
                "the emulator binary {} is not there ({e}): run `cargo build -p rolesanywhere-emulator` \
                 (or the suite with scripts/test, which builds it and exports RA_EMULATOR_BIN)",
                bin.display()
            )
        });
    let emulator = Path::new(env!("CARGO_MANIFEST_DIR")).join("emulator");
    assert!(
        built >= newest(&emulator.join("src")),
        "the emulator binary {} is older than emulator/src: run `cargo build -p rolesanywhere-emulator`",
        bin.display()
    );
    bin
}

fn require(program: &str) {
    assert!(
        Command::new(program).arg("--version").output().is_ok(),
        "{program} is required (scripts/install-deps installs it)"
    );
}

/// Runs `script` with bash in `dir` with `path` first on PATH and HOME inside `dir`; kills its
/// process group after `limit`. Returns (exit code, combined output).
fn run_bash(dir: &Path, path: &Path, script: &str, limit: Duration) -> (Option<i32>, String) {
    let work = dir.join("work");
    let home = dir.join("home");
    std::fs::create_dir_all(&work).expect("work dir");
    std::fs::create_dir_all(&home).expect("home dir");
    std::fs::write(dir.join("guide.sh"), script).expect("script");
    let log = dir.join("guide.out");
    let out = std::fs::File::create(&log).expect("output file");
    let system_path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![path.to_path_buf()];
    paths.extend(std::env::split_paths(&system_path));
    let mut child = Command::new("bash")
        .arg(dir.join("guide.sh"))
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::join_paths(paths).expect("PATH"))
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("output file"))
        .stderr(out)
        .process_group(0)
        .spawn()
        .expect("bash");
    let deadline = Instant::now() + limit;
    let code = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status.code(),
            None if Instant::now() > deadline => {
                // The guide's process group: bash, the emulator it started, any client.
                let pgid = i32::try_from(child.id()).expect("pid");
                // SAFETY: kill(2) with the negated id of the process group this test created.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let mut text = String::new();
    std::fs::File::open(&log)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("read output");
    (code, text)
}

/// The steps the guide must have, in order, and whether each fails.
const STEPS: &[(&str, bool)] = &[
    ("start", false),
    ("pki", false),
    ("create-trust-anchor", false),
    ("create-trust-anchor-acm-pca", true),
    ("list-trust-anchors", false),
    ("create-role", false),
    ("create-profile", false),
    ("put-attribute-mapping", false),
    ("credential-process", false),
    ("get-caller-identity", false),
    ("other-cn", false),
    ("refused-other-cn", true),
    ("why-other-cn", false),
    ("disable-profile", false),
    ("refused-disabled-profile", true),
    ("revoke", false),
    ("refused-revoked", true),
    ("debug-view", false),
];

fn assert_contains(step: &str, out: &str, needles: &[&str]) {
    for n in needles {
        assert!(
            out.contains(n),
            "step {step}: the output lacks {n:?}:\n{out}"
        );
    }
}

#[test]
fn the_emulator_readme_guide_runs_as_written() {
    require("aws");
    require("curl");
    let agent = Path::new(env!("CARGO_BIN_EXE_rolesanywhere-agent"));
    let emulator = emulator_bin(agent);
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("emulator/README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("emulator/README.md");
    let steps = guide_steps(&readme).unwrap_or_else(|e| panic!("emulator/README.md: {e}"));
    let found: Vec<(&str, bool)> = steps.iter().map(|s| (s.name.as_str(), s.fails)).collect();
    assert_eq!(found, STEPS, "the guide's marked steps");

    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    symlink(agent, bin.join("rolesanywhere-agent")).expect("link");
    symlink(&emulator, bin.join("rolesanywhere-emulator")).expect("link");
    let (code, output) = run_bash(dir.path(), &bin, &driver(&steps), Duration::from_secs(300));
    let ran = split_output(&output);
    assert_eq!(
        code,
        Some(0),
        "the guide stopped in step {:?}:\n{output}",
        ran.last().map(|(n, _)| n)
    );
    let names: Vec<&str> = ran.iter().map(|(n, _)| n.as_str()).collect();
    let mut all: Vec<&str> = STEPS.iter().map(|(n, _)| *n).collect();
    all.push("end");
    assert_eq!(names, all, "{output}");

    // Every `#>` line the README shows, in order, among the step's output lines.
    for (step, (_, lines)) in steps.iter().zip(&ran) {
        let mut from = 0;
        for want in &step.expected {
            match lines[from..].iter().position(|l| matches(want, l)) {
                Some(p) => from += p + 1,
                None => panic!(
                    "step {}: no output line (after the ones matched before) matches the README's\n#> {want}\noutput:\n{}",
                    step.name,
                    lines.join("\n")
                ),
            }
        }
    }

    // What each step must show, whatever the README's `#>` lines say.
    let out = |name: &str| -> String {
        ran.iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.join("\n"))
            .unwrap_or_default()
    };
    let role = "arn:aws:iam::123456789012:role/OnPremBackupRole";
    assert_contains(
        "create-trust-anchor",
        &out("create-trust-anchor"),
        &[
            "\"name\": \"external-ca-trust\"",
            "\"sourceType\": \"CERTIFICATE_BUNDLE\"",
            "\"trustAnchorArn\": \"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/",
            "\"enabled\": true",
        ],
    );
    assert_contains(
        "create-trust-anchor-acm-pca",
        &out("create-trust-anchor-acm-pca"),
        &[
            "An error occurred (ValidationException) when calling the CreateTrustAnchor operation",
            "AWS_ACM_PCA",
        ],
    );
    let table = out("list-trust-anchors");
    assert!(
        table.contains("ListTrustAnchors")
            && table
                .lines()
                .any(|l| l.contains("|  True") && l.contains("external-ca-trust")),
        "the table lists the new anchor, enabled:\n{table}"
    );
    assert_contains(
        "create-role",
        &out("create-role"),
        &[
            &format!("\"Arn\": \"{role}\""),
            "\"aws:PrincipalTag/x509Subject/CN\": \"backup-server.corp.example.com\"",
            "\"aws:SourceArn\": \"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/",
        ],
    );
    assert_contains(
        "create-profile",
        &out("create-profile"),
        &[
            "\"name\": \"backup-server-profile\"",
            &format!("\"{role}\""),
            "\"durationSeconds\": 3600",
            "\"enabled\": true",
            "arn:aws:s3:::corp-backups-prod/*",
        ],
    );
    let creds = out("credential-process");
    let line = creds
        .lines()
        .find(|l| l.starts_with("{\"Version\":1,"))
        .unwrap_or_else(|| panic!("no credential_process JSON:\n{creds}"));
    let creds: serde_json::Value = serde_json::from_str(line).expect("credentials JSON");
    assert!(
        creds["AccessKeyId"]
            .as_str()
            .is_some_and(|k| k.starts_with("ASIA")),
        "{creds}"
    );
    assert_contains(
        "get-caller-identity",
        &out("get-caller-identity"),
        &["\"Arn\": \"arn:aws:sts::123456789012:assumed-role/OnPremBackupRole/"],
    );
    let refused = "rolesanywhere-agent: CreateSession refused by https://127.0.0.1:";
    assert_contains(
        "refused-other-cn",
        &out("refused-other-cn"),
        &[
            refused,
            &format!("HTTP 403 AccessDeniedException: Unable to assume role for {role}."),
            "@@guide-exit 1",
        ],
    );
    assert_contains(
        "refused-disabled-profile",
        &out("refused-disabled-profile"),
        &[
            refused,
            "HTTP 403 AccessDeniedException",
            "is disabled",
            "@@guide-exit 1",
        ],
    );
    assert_contains(
        "refused-revoked",
        &out("refused-revoked"),
        &[
            refused,
            "HTTP 403 AccessDeniedException: Untrusted signing certificate",
            "is revoked",
            "@@guide-exit 1",
        ],
    );
    assert_contains(
        "why-other-cn",
        &out("why-other-cn"),
        &[
            "StringEquals \"aws:PrincipalTag/x509Subject/CN\" [\"backup-server.corp.example.com\"] is false for request value [\"web-01.corp.example.com\"]",
        ],
    );
    let view = out("debug-view");
    let start = view.find('{').unwrap_or_else(|| panic!("no JSON:\n{view}"));
    let view: serde_json::Value =
        serde_json::from_str(&view[start..]).unwrap_or_else(|e| panic!("{e}: {view}"));
    assert_eq!(view["accessKeyId"], creds["AccessKeyId"], "{view}");
    assert_eq!(view["roleArn"], role, "{view}");
    assert_eq!(
        view["principalTags"]["x509Subject/CN"], "backup-server.corp.example.com",
        "{view}"
    );
    assert_eq!(view["principalTags"]["x509Subject/OU"], "backup", "{view}");
    assert!(
        view["principalTags"].get("x509Subject/O").is_none(),
        "the mapping left O out: {view}"
    );
    assert_eq!(
        view["sourceIdentity"], "CN=backup-server.corp.example.com",
        "{view}"
    );
    assert!(
        view["sessionPolicy"]
            .as_str()
            .is_some_and(|p| p.contains("arn:aws:s3:::corp-backups-prod/*")),
        "{view}"
    );
}

#[test]
fn guide_steps_parses_marked_blocks_and_refuses_broken_ones() {
    let md = "text\n<!-- guide: one -->\n```sh\necho a\n#> a\n```\n\n```sh\nnot marked\n```\n\
              <!-- guide: two fails -->\n```sh\nfalse\n  #> x…y\n```\n";
    let steps = guide_steps(md).expect("parses");
    assert_eq!(
        steps,
        [
            Step {
                name: "one".into(),
                fails: false,
                code: "echo a\n#> a\n".into(),
                expected: vec!["a".into()],
            },
            Step {
                name: "two".into(),
                fails: true,
                code: "false\n  #> x…y\n".into(),
                expected: vec!["x…y".into()],
            },
        ]
    );
    for (md, error) in [
        (
            "<!-- guide: a -->\ntext\n",
            "must be followed by a ```sh fence",
        ),
        ("<!-- guide: a -->\n```sh\necho\n", "is not closed"),
        ("<!-- guide: a b -->\n```sh\n```\n", "is not [A-Za-z0-9-]+"),
        (
            "<!-- guide: a -->\n```sh\n```\n<!-- guide: a -->\n```sh\n```\n",
            "appears twice",
        ),
        ("<!-- guide: a\n", "must end with"),
    ] {
        let e = guide_steps(md).expect_err(md);
        assert!(e.contains(error), "{md:?}: {e}");
    }
}

#[test]
fn matches_treats_the_ellipsis_as_any_text_anchored_at_both_ends() {
    assert!(matches("abc", "abc  "));
    assert!(!matches("abc", "abcd"));
    assert!(!matches("abc", "xabc"));
    assert!(matches("a…c", "abbbc"));
    assert!(matches("a…", "a"));
    assert!(matches("…c", "abc"));
    assert!(matches("a…b…c", "a-b-c"));
    assert!(!matches("a…b…c", "a-c-b"));
    assert!(!matches("ab…bc", "abc"));
    assert!(matches("…", ""));
}
