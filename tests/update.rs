//! End-to-end tests of `update` against the in-process emulator: the file it writes, concurrent
//! writers, kill -9 during writes, failures that must leave the file untouched, and signals.

mod common;

use common::*;
use rolesanywhere_emulator::server::Tls;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Someone's credentials file: comments, other profiles, CRLF in places, no final newline.
const OTHERS: &str = "# my credentials\n[default]\naws_access_key_id = AKIADEFAULT\n\
                      aws_secret_access_key = defaultsecret\n\n; work account\r\n[work]\r\n\
                      aws_access_key_id = AKIAWORK\r\naws_secret_access_key = worksecret\r\nregion = eu-west-1";

const KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// `update` arguments for leaf.pem / leaf.key against `url`, plus `extra`.
fn update_args(env: &Env, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = env.credential_args(url, "leaf", extra);
    args[0] = "update".into();
    args
}

fn update_cmd(env: &Env, url: &str, file: &Path, extra: &[&str]) -> Command {
    let args = update_args(env, url, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.cmd(
        &args,
        &[("AWS_SHARED_CREDENTIALS_FILE", file.to_str().unwrap())],
    )
}

fn run_update(env: &Env, url: &str, file: &Path, extra: &[&str]) -> Run {
    run_within(update_cmd(env, url, file, extra), Duration::from_secs(60))
}

/// The options of `[section]` (lower-cased keys, values stripped), read the simple way: enough for
/// the files these tests make, whose exact bytes are checked besides.
fn section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut out: Option<Vec<(String, String)>> = None;
    let mut inside = false;
    for line in text.split(['\n', '\r']) {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            inside = h == name;
            if inside {
                assert!(out.is_none(), "[{name}] twice in {text:?}");
                out = Some(Vec::new());
            }
        } else if inside && let Some((k, v)) = t.split_once('=') {
            out.as_mut()
                .unwrap()
                .push((k.trim().to_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// Asserts `[name]` holds exactly the three keys, once each, non-empty; returns the access key id.
fn assert_complete(text: &str, name: &str) -> String {
    let s = section(text, name).unwrap_or_else(|| panic!("no [{name}] in {text:?}"));
    let keys: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, KEYS, "[{name}] in {text:?}");
    assert!(s.iter().all(|(_, v)| !v.is_empty()), "{text:?}");
    assert!(s[0].1.starts_with("ASIA"), "{text:?}");
    s[0].1.clone()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn once_writes_only_the_three_keys_and_botocore_reads_them() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let file = env.path("credentials");
    std::fs::write(&file, OTHERS).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = run_update(&env, &emu.url(), &file, &["--profile", "ra", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let text = std::fs::read_to_string(&file).unwrap();
    // Appended after the untouched old bytes: the last line ended (with the file's first ending,
    // `\n`), a blank line, the section.
    let rest = text
        .strip_prefix(&format!("{OTHERS}\n\n[ra]\n"))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_eq!(rest.lines().count(), 3, "{text:?}");
    let id = assert_complete(&text, "ra");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(emu.decisions().len(), 1);

    // A second run replaces the keys in place: same bytes around them.
    let run = run_update(&env, &emu.url(), &file, &["--profile", "ra", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let again = std::fs::read_to_string(&file).unwrap();
    assert!(
        again.starts_with(&format!("{OTHERS}\n\n[ra]\n")),
        "{again:?}"
    );
    assert_ne!(assert_complete(&again, "ra"), id, "not new credentials");

    if !have_python_botocore() {
        return;
    }
    let script = "import sys; from botocore import configloader as c\n\
                  p = c.raw_config_parse(sys.argv[1])\n\
                  print(p['ra']['aws_access_key_id'], p['work']['region'], p['default']['aws_access_key_id'])";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = assert_complete(&again, "ra");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{id} eu-west-1 AKIADEFAULT")
    );
}

fn have_python_botocore() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import botocore"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !hsm_tests::required(),
        "python3 with botocore is required"
    );
    ok
}

#[test]
fn a_missing_directory_is_created_0700_and_the_file_0600_and_a_wide_file_is_narrowed() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    // The default location: $HOME/.aws/credentials (HOME is the test dir).
    let args = update_args(&env, &emu.url(), &["--once"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_within(env.cmd(&args, &[]), Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let file = env.path(".aws/credentials");
    assert_eq!(mode(&env.path(".aws")), 0o700);
    assert_eq!(mode(&file), 0o600);
    assert_complete(&std::fs::read_to_string(&file).unwrap(), "default");

    // A file readable by others is narrowed to its owner, and the user is told.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = run_within(env.cmd(&args, &[]), Duration::from_secs(60));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(mode(&file), 0o600);
    assert!(run.stderr.contains("was mode 0644"), "{}", run.stderr);
    // No temporary files left; the lock file stays beside the file.
    let mut names: Vec<String> = std::fs::read_dir(env.path(".aws"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["credentials", "credentials.lock"]);
}

/// Eight `update --once` processes at the same time, each for its own profile, on one file: the
/// lock serializes them, so every section is there, whole, and the old content too.
#[test]
fn eight_concurrent_writers_each_keep_their_section() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let file = env.path("credentials");
    std::fs::write(&file, OTHERS).unwrap();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let profile = format!("p{i}");
            let mut c = update_cmd(&env, &emu.url(), &file, &["--profile", &profile, "--once"]);
            c.stdout(Stdio::null()).stderr(Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(OTHERS), "{text:?}");
    let mut ids: Vec<String> = (0..8)
        .map(|i| assert_complete(&text, &format!("p{i}")))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "{text:?}");
    assert_eq!(emu.decisions().len(), 8);
}

/// `--once` that fails (service refusal, service down) exits 1 and leaves the file byte for byte
/// as it was: same content, same inode, no lock or temporary file made.
#[test]
fn a_failed_once_leaves_the_file_untouched_and_exits_1() {
    let env = Env::new();
    env.leaf("leaf");
    let denied = env.emulator_with(
        &env.config_toml(
            "",
            "",
            "[[faults]]\nkind = \"status\"\nstatus = 403\ntimes = 100\n",
        ),
        Tls::None,
    );
    let file = env.path("credentials");
    let before = format!("{OTHERS}\n[ra]\naws_access_key_id = OLD\n");
    std::fs::write(&file, &before).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    let inode = std::fs::metadata(&file).unwrap().ino();
    let files_before = std::fs::read_dir(env.dir.path()).unwrap().count();

    let run = run_update(&env, &denied.url(), &file, &["--profile", "ra", "--once"]);
    run.assert_failure(1, &["HTTP 403"]);
    // Down: a port nobody listens on (the emulator's, after it stopped).
    let url = denied.url();
    drop(denied);
    let run = run_update(&env, &url, &file, &["--profile", "ra", "--once"]);
    run.assert_failure(1, &[]);

    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
    assert_eq!(
        std::fs::read_dir(env.dir.path()).unwrap().count(),
        files_before
    );
}

#[test]
fn usage_errors_exit_2_before_any_request() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let file = env.path("credentials");
    for (extra, needle) in [
        (&["--profile", "DEFAULT", "--once"][..], "DEFAULT"),
        (&["--profile", "", "--once"][..], "empty"),
        (
            &["--session-duration", "10", "--once"][..],
            "--session-duration",
        ),
    ] {
        let run = run_update(&env, &emu.url(), &file, extra);
        run.assert_failure(2, &[needle]);
    }
    let run = env.run(&["update", "--once"], &[]);
    run.assert_failure(2, &["update needs"]);
    assert!(emu.decisions().is_empty());
    assert!(!file.exists());
}

/// `kill -9` at random moments of `update --once` runs: the file is always the old one or a new
/// one, whole and readable; the next successful run cleans up what a killed one left.
#[test]
fn kill_9_at_any_moment_leaves_the_old_or_the_new_file_whole() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let file = env.path("credentials");
    std::fs::write(&file, OTHERS).unwrap();
    // A fixed sequence of delays, spread over a run's life (a debug build takes tens of ms).
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut snapshots = Vec::new();
    let mut written = 0;
    for _ in 0..40 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 150_000);
        let mut c = update_cmd(&env, &emu.url(), &file, &["--profile", "ra", "--once"]);
        c.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let status = child.wait().unwrap();
        if status.success() {
            written += 1;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        if text != OTHERS {
            assert!(text.starts_with(&format!("{OTHERS}\n\n[ra]\n")), "{text:?}");
            assert_complete(&text, "ra");
        }
        snapshots.push(text);
    }
    eprintln!("{written} of 40 runs finished before the kill");
    let run = run_update(&env, &emu.url(), &file, &["--profile", "ra", "--once"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let names: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
    if have_python_botocore() {
        let script = "import sys, json; from botocore import configloader as c\n\
                      for p in sys.argv[1:]: c.raw_config_parse(p)";
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["-c".to_string(), script.to_string()];
        for (i, s) in snapshots.iter().enumerate() {
            let p = dir.path().join(i.to_string());
            std::fs::write(&p, s).unwrap();
            args.push(path_str(&p));
        }
        let out = Command::new("python3").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Waits until `file` holds a complete `[name]`, up to `limit`.
fn wait_for_section(file: &Path, name: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && section(&text, name).is_some_and(|s| s.len() == 3)
        {
            return text;
        }
        assert!(start.elapsed() < limit, "[{name}] never written");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The loop writes the first set, then SIGTERM (and SIGINT) end it with 0, promptly.
#[test]
fn loop_mode_writes_and_exits_0_on_sigterm_and_sigint() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let file = env.path("credentials");
    for signal in ["TERM", "INT"] {
        let _ = std::fs::remove_file(&file);
        let mut c = update_cmd(&env, &emu.url(), &file, &["--profile", "ra"]);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = c.spawn().unwrap();
        let text = wait_for_section(&file, "ra", Duration::from_secs(30));
        assert_complete(&text, "ra");
        let kill = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let start = Instant::now();
        let out = wait_within(child, Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "signal {signal}: {stderr}");
        assert!(start.elapsed() < Duration::from_secs(10));
        assert!(out.stdout.is_empty());
        assert!(stderr.contains("wrote credentials to [ra]"), "{stderr}");
        assert!(
            !stderr.contains(&text[text.find("aws_secret_access_key = ").unwrap() + 24..][..8])
        );
    }
}

/// Waits for `child` up to `limit` (killing it and failing the test after), then collects its output.
fn wait_within(mut child: Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Loop mode with the emulator's short-lived credentials (62 s, the shortest the client accepts):
/// at each half-life refresh the file is rewritten with a new set (seen by its access key id
/// changing, every read complete), the emulator issued exactly the sets written, the file stays
/// 0600 and botocore parses it, and SIGTERM exits 0.
#[test]
fn loop_mode_rewrites_the_file_with_each_short_lived_set() {
    const LIFETIME: u32 = 62;
    let env = Env::new();
    env.leaf("leaf");
    let config = rolesanywhere_emulator::config::Config::from_toml_str(
        &env.config_toml("", "", ""),
        env.dir.path(),
    )
    .unwrap();
    let emu = rolesanywhere_emulator::server::spawn_with(
        config,
        rolesanywhere_emulator::server::Limits {
            credential_seconds: Some(LIFETIME),
            ..Default::default()
        },
        rolesanywhere_emulator::server::ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: Tls::None,
        },
    )
    .unwrap();
    let file = env.path("credentials");
    std::fs::write(&file, OTHERS).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut c = update_cmd(&env, &emu.url(), &file, &["--profile", "ra"]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    // The first set, then one per half-life (~31 s with jitter): three sets in about 65 s.
    let mut keys: Vec<String> = Vec::new();
    let start = Instant::now();
    while keys.len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(85),
            "{} sets written in {:?}",
            keys.len(),
            start.elapsed()
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with(OTHERS), "other bytes changed: {text:?}");
        if section(&text, "ra").is_some() {
            let id = assert_complete(&text, "ra");
            if keys.last() != Some(&id) {
                assert!(!keys.contains(&id), "an older set again: {id}");
                eprintln!("set {} after {:?}", keys.len() + 1, start.elapsed());
                keys.push(id);
            }
        }
        assert_eq!(mode(&file), 0o600);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        start.elapsed() > Duration::from_secs(45),
        "refreshed too early"
    );
    assert_eq!(emu.sessions_issued(), keys.len() as u64, "{keys:?}");

    if have_python_botocore() {
        let script = "import sys; from botocore import configloader as c\n\
                      p = c.raw_config_parse(sys.argv[1])\n\
                      print(p['ra']['aws_access_key_id'], bool(p['ra']['aws_session_token']))";
        let out = Command::new("python3")
            .args(["-c", script])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{} True", keys[2])
        );
    }

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = wait_within(child, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr.matches("wrote credentials to [ra]").count(),
        keys.len(),
        "{stderr}"
    );
    assert_eq!(mode(&file), 0o600);
}
