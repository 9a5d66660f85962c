//! End-to-end tests of `agent`: the binary with a TOML configuration against the in-process
//! emulator, asked by the real client (`credential-process --from-agent`) and by botocore through a
//! `credential_process` line; CreateSession counted by the emulator; the socket's modes and a caller
//! of another uid (setpriv); SIGHUP with a changed, a broken and a shrunk file; configuration
//! mistakes at start; the metrics endpoint; SIGTERM.

mod common;

use common::*;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running agent and its stderr so far.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<String>>,
    socket: PathBuf,
}

impl Agent {
    /// Starts `agent --config CONFIG --socket SOCKET` plus `extra` and waits until it serves.
    fn start(env: &Env, config: &Path, socket: &Path, extra: &[&str]) -> Agent {
        let mut args = vec![
            "agent".to_string(),
            "--config".into(),
            path_str(config),
            "--socket".into(),
            path_str(socket),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = env.cmd(&args, &[]);
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).is_ok_and(|n| n > 0) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let agent = Agent {
            child,
            stderr,
            socket: socket.to_path_buf(),
        };
        agent.wait_log("profile(s) on", Duration::from_secs(60));
        agent
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle` (failing with stderr after `limit`).
    fn wait_log(&self, needle: &str, limit: Duration) {
        self.wait_log_count(needle, 1, limit);
    }

    /// Waits until stderr contains `needle` `count` times.
    fn wait_log_count(&self, needle: &str, count: usize, limit: Duration) {
        let start = Instant::now();
        while self.log().matches(needle).count() < count {
            assert!(
                start.elapsed() < limit,
                "agent log lacks {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    fn wait(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("agent still running; stderr:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `credential-process --from-agent NAME` through this agent's socket.
    fn fetch(&self, env: &Env, name: &str) -> Run {
        env.run(
            &[
                "credential-process",
                "--from-agent",
                name,
                "--agent-socket",
                &path_str(&self.socket),
            ],
            &[],
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `[profiles.NAME]` table for NAME.pem / NAME.key against `url`, plus `extra` lines.
fn profile(env: &Env, name: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
[profiles.{name}]
certificate = "{cert}"
private_key = "{key}"
trust_anchor_arn = "{TRUST_ANCHOR}"
profile_arn = "{PROFILE}"
role_arn = "{ROLE}"
endpoint = "{url}"
{extra}
"#,
        cert = env.p(&format!("{name}.pem")),
        key = env.p(&format!("{name}.key")),
    )
}

fn write_config(env: &Env, text: &str) -> PathBuf {
    let path = env.path("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// botocore resolves the agent's credentials through a `credential_process` line that runs
/// `credential-process --from-agent`; the status report names the profile without any secret; one
/// CreateSession served every caller; SIGTERM exits 0 and removes the socket.
#[test]
fn botocore_reads_the_agents_credentials_through_credential_process() {
    let env = Env::new();
    env.leaf("web");
    let emu = env.emulator();
    let config = write_config(&env, &profile(&env, "web", &emu.url(), ""));
    let socket = env.path("run/agent.sock");
    let mut agent = Agent::start(&env, &config, &socket, &[]);
    assert_eq!(mode(&socket), 0o600);
    assert_eq!(mode(socket.parent().unwrap()), 0o700);

    let first = agent.fetch(&env, "web").credentials();
    let aws_config = env.path("aws-config");
    std::fs::write(
        &aws_config,
        format!(
            "[profile web]\ncredential_process = {} credential-process --from-agent web \
             --agent-socket {}\n",
            env!("CARGO_BIN_EXE_rolesanywhere-agent"),
            path_str(&socket)
        ),
    )
    .unwrap();
    let script = "import json, botocore.session\n\
                  s = botocore.session.Session(profile='web')\n\
                  c = s.get_credentials()\n\
                  f = c.get_frozen_credentials()\n\
                  print(json.dumps({'method': c.method, 'key': f.access_key, 'secret': f.secret_key, \
                  'token': f.token}))";
    let run = env.run_program(
        "python3",
        &["-c", script],
        &[
            ("AWS_CONFIG_FILE", &path_str(&aws_config)),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(got["method"], "custom-process");
    assert_eq!(got["key"], first["AccessKeyId"]);
    assert_eq!(got["secret"], first["SecretAccessKey"]);
    assert_eq!(got["token"], first["SessionToken"]);

    let status = env.run(
        &["agent", "status", "--agent-socket", &path_str(&socket)],
        &[],
    );
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("web"), "{}", status.stdout);
    assert!(status.stdout.contains("CN=web"), "{}", status.stdout);
    let json = env.run(
        &[
            "agent",
            "status",
            "--json",
            "--agent-socket",
            &path_str(&socket),
        ],
        &[],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let report: serde_json::Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(report["profiles"][0]["name"], "web");
    assert_eq!(report["profiles"][0]["refreshes_ok"], 1);
    for secret in [
        first["SecretAccessKey"].as_str().unwrap(),
        first["SessionToken"].as_str().unwrap(),
    ] {
        assert!(!status.stdout.contains(secret));
        assert!(!json.stdout.contains(secret));
        assert!(!agent.log().contains(secret));
    }
    assert_eq!(
        emu.sessions_issued(),
        1,
        "one CreateSession for every caller"
    );

    agent.signal("TERM");
    assert_eq!(agent.wait(Duration::from_secs(20)), 0, "{}", agent.log());
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
    assert!(!socket.exists(), "the socket is removed at exit");
    agent
        .fetch(&env, "web")
        .assert_failure(1, &["no agent is listening"]);
}

/// 100 callers at once, each a `credential-process --from-agent` process: all get the same set,
/// and the emulator saw one CreateSession.
#[test]
fn a_hundred_parallel_callers_cost_one_create_session() {
    let env = Env::new();
    env.leaf("web");
    let emu = env.emulator();
    let config = write_config(&env, &profile(&env, "web", &emu.url(), ""));
    let socket = env.path("run/agent.sock");
    let _agent = Agent::start(&env, &config, &socket, &[]);
    let children: Vec<_> = (0..100)
        .map(|_| {
            env.cmd(
                &[
                    "credential-process",
                    "--from-agent",
                    "web",
                    "--agent-socket",
                    &path_str(&socket),
                ],
                &[],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let mut keys = std::collections::BTreeSet::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stdout_bytes: out.stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed: Duration::ZERO,
        };
        keys.insert(
            run.credentials()["AccessKeyId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(emu.sessions_issued(), 1);
}

/// Unknown profiles and callers the profile does not allow are refused with exit 2 and an empty
/// stdout. The other uid (nobody, through setpriv) passes the socket's group permission and is
/// refused by the agent itself, on SO_PEERCRED; allowed by uid or by group, it gets the set.
#[test]
fn callers_are_checked_by_the_kernel_reported_uid_and_groups() {
    let env = Env::new();
    env.leaf("web");
    env.leaf("ops");
    env.leaf("grp");
    let emu = env.emulator();
    // A world-traversable place for the socket and a copy of the binary: the test's own dirs are
    // private to root.
    let shared = tempfile::Builder::new()
        .prefix("ra-agent")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = shared.path().join("rolesanywhere-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_rolesanywhere-agent"), &bin).unwrap();
    let socket = shared.path().join("agent/agent.sock");
    let group = 4242u32;
    let text = format!(
        "socket_group = {group}\n{}{}{}",
        profile(&env, "web", &emu.url(), ""),
        profile(&env, "ops", &emu.url(), "allow_uids = [65534]"),
        profile(&env, "grp", &emu.url(), &format!("allow_gids = [{group}]")),
    );
    let config = write_config(&env, &text);
    let agent = Agent::start(&env, &config, &socket, &[]);
    assert_eq!(mode(&socket), 0o660);
    assert_eq!(mode(socket.parent().unwrap()), 0o750);
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(std::fs::metadata(&socket).unwrap().gid(), group);

    agent
        .fetch(&env, "nope")
        .assert_failure(2, &["no profile nope"]);
    let as_nobody = |name: &str, groups: &str| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            &format!("--regid={groups}"),
            "--clear-groups",
            path_str(&bin).as_str(),
            "credential-process",
            "--from-agent",
            name,
            "--agent-socket",
            &path_str(&socket),
        ])
        .env_clear()
        .current_dir(shared.path());
        run_command(c)
    };
    as_nobody("web", &group.to_string()).assert_failure(2, &["uid 65534 may not read profile web"]);
    // Allowed by uid.
    as_nobody("ops", &group.to_string()).credentials();
    // Allowed by group.
    as_nobody("grp", &group.to_string()).credentials();
    // Without the socket's group the kernel refuses the connection before the agent sees it.
    as_nobody("ops", "65534").assert_failure(1, &["agent.sock"]);
    assert!(
        agent.log().contains("uid 65534"),
        "the refusal is logged: {}",
        agent.log()
    );
}

/// SIGHUP: an added profile starts, an unchanged one keeps its cached set (no new CreateSession), a
/// broken file is reported and changes nothing, and a removed profile is gone.
#[test]
fn sighup_reloads_the_configuration() {
    let env = Env::new();
    env.leaf("web");
    env.leaf("ops");
    let emu = env.emulator();
    let web = profile(&env, "web", &emu.url(), "");
    let config = write_config(&env, &web);
    let socket = env.path("run/agent.sock");
    let agent = Agent::start(&env, &config, &socket, &[]);
    let before = agent.fetch(&env, "web").credentials();
    agent
        .fetch(&env, "ops")
        .assert_failure(2, &["no profile ops"]);

    write_config(
        &env,
        &format!("{web}{}", profile(&env, "ops", &emu.url(), "")),
    );
    agent.signal("HUP");
    agent.wait_log("1 added", Duration::from_secs(30));
    let after = agent.fetch(&env, "web").credentials();
    assert_eq!(
        before["AccessKeyId"], after["AccessKeyId"],
        "unchanged profile kept its set"
    );
    agent.fetch(&env, "ops").credentials();
    assert_eq!(emu.sessions_issued(), 2);

    write_config(&env, &format!("{web}\nbogus_key = 1\n"));
    agent.signal("HUP");
    agent.wait_log("not reloaded", Duration::from_secs(30));
    assert!(agent.log().contains("agent.toml"), "{}", agent.log());
    agent.fetch(&env, "ops").credentials();

    write_config(&env, &web);
    agent.signal("HUP");
    agent.wait_log("1 removed", Duration::from_secs(30));
    agent
        .fetch(&env, "ops")
        .assert_failure(2, &["no profile ops"]);
    agent.fetch(&env, "web").credentials();
    assert_eq!(emu.sessions_issued(), 2);

    // Only the allow list changes: applied in place, the identity and its set kept.
    write_config(&env, &format!("{web}allow_uids = [65534]\n"));
    agent.signal("HUP");
    // The third reload (the broken file was not one).
    agent.wait_log_count("configuration reloaded", 3, Duration::from_secs(30));
    assert!(
        agent
            .log()
            .contains("0 added, 0 removed, 0 changed, 1 unchanged")
    );
    agent
        .fetch(&env, "web")
        .assert_failure(2, &["may not read profile web"]);
    write_config(&env, &web);
    agent.signal("HUP");
    let start = Instant::now();
    let again = loop {
        let run = agent.fetch(&env, "web");
        if run.code == 0 || start.elapsed() > Duration::from_secs(30) {
            break run.credentials();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(before["AccessKeyId"], again["AccessKeyId"]);
    // A changed setting restarts the profile: a new identity and CreateSession.
    write_config(
        &env,
        &web.replace("[profiles.web]", "[profiles.web]\nsession_duration = 1800"),
    );
    agent.signal("HUP");
    agent.wait_log_count("configuration reloaded", 5, Duration::from_secs(30));
    assert!(
        agent
            .log()
            .contains("0 added, 0 removed, 1 changed, 0 unchanged")
    );
    let changed = agent.fetch(&env, "web").credentials();
    assert_ne!(before["AccessKeyId"], changed["AccessKeyId"]);
    assert_eq!(emu.sessions_issued(), 3);
}

/// An agent that started with key-file profiles only runs without the TPM backend (it never ran
/// rolesanywhere-agent-tpm): a TPM profile added by SIGHUP is refused with the fix, restarting the
/// agent, and the other profiles keep serving.
#[cfg(feature = "tpm")]
#[test]
fn sighup_refuses_a_tpm_profile_in_an_agent_started_without_one() {
    let env = Env::new();
    env.leaf("web");
    let emu = env.emulator();
    let web = profile(&env, "web", &emu.url(), "");
    let config = write_config(&env, &web);
    let socket = env.path("run/agent.sock");
    let agent = Agent::start(&env, &config, &socket, &[]);
    let before = agent.fetch(&env, "web").credentials();

    // web's certificate (the file must exist), with a TPM handle as the key.
    let tpm = web.replace("[profiles.web]", "[profiles.tpm]").replace(
        &format!("private_key = \"{}\"", env.p("web.key")),
        "private_key = \"handle:0x81000001\"",
    );
    assert!(tpm.contains("handle:0x81000001"), "{tpm}");
    write_config(&env, &format!("{web}{tpm}"));
    agent.signal("HUP");
    agent.wait_log("profile tpm did not start", Duration::from_secs(30));
    let log = agent.log();
    assert!(
        log.contains(
            "profile tpm did not start: handle:0x81000001 is a TPM key, but this process started \
             without the TPM backend"
        ),
        "{log}"
    );
    assert!(log.contains("restart it (the agent"), "{log}");
    assert!(
        log.contains("0 added, 0 removed, 0 changed, 1 unchanged"),
        "{log}"
    );
    agent
        .fetch(&env, "tpm")
        .assert_failure(2, &["no profile tpm"]);
    let after = agent.fetch(&env, "web").credentials();
    assert_eq!(before["AccessKeyId"], after["AccessKeyId"]);
    assert_eq!(emu.sessions_issued(), 1);
}

/// Mistakes in the file stop the agent at start with exit 2, naming the file, the line and the key,
/// before any socket is created.
#[test]
fn configuration_mistakes_fail_at_start_with_file_line_and_key() {
    let env = Env::new();
    env.leaf("web");
    let url = "http://127.0.0.1:9";
    let socket = env.path("run/agent.sock");
    let start = |text: Option<&str>| {
        let config = env.path("agent.toml");
        match text {
            Some(t) => std::fs::write(&config, t).unwrap(),
            None => {
                let _ = std::fs::remove_file(&config);
            }
        }
        env.run(
            &[
                "agent",
                "--config",
                &path_str(&config),
                "--socket",
                &path_str(&socket),
            ],
            &[],
        )
    };
    let good = profile(&env, "web", url, "");
    start(Some(&format!("{good}colour = \"blue\"\n")))
        .assert_failure(2, &["agent.toml:", "colour"]);
    let bad_arn = good.replace(ROLE, "arn:aws:iam::123456789012:user/bob");
    let line = bad_arn
        .lines()
        .position(|l| l.starts_with("role_arn"))
        .unwrap()
        + 1;
    start(Some(&bad_arn)).assert_failure(2, &[&format!("agent.toml:{line}"), "role_arn"]);
    start(None).assert_failure(2, &["agent.toml", "No such file"]);
    assert!(!socket.exists());
}

/// The metrics endpoint serves the profile's state in the Prometheus text format.
#[test]
fn metrics_endpoint_reports_each_profile() {
    let env = Env::new();
    env.leaf("web");
    let emu = env.emulator();
    let config = write_config(&env, &profile(&env, "web", &emu.url(), ""));
    let socket = env.path("run/agent.sock");
    let agent = Agent::start(&env, &config, &socket, &["--metrics-listen", "127.0.0.1:0"]);
    let log = agent.log();
    let url = log
        .lines()
        .find_map(|l| l.split("serving metrics on ").nth(1))
        .unwrap_or_else(|| panic!("no metrics line: {log}"))
        .trim()
        .to_string();
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("rolesanywhere_refresh_total{profile=\"web\",result=\"success\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("rolesanywhere_certificate_not_after_seconds{profile=\"web\"}"),
        "{body}"
    );
}
