//! `agent` (issue 11) with keys on real devices while the emulator issues short-lived credentials
//! (62 s, the shortest the client accepts; the agent refreshes at about half of it), asked by many
//! `credential-process --from-agent` processes at once:
//!
//! - a SoftHSM2 key (through OpenSC's pkcs11-spy, its PIN from `pin-source=file:` in the URI) next
//!   to a key file in one configuration: one C_Login for every refresh, CreateSession only for the
//!   agent's refreshes, never for a caller;
//! - a swtpm key behind a proxy that records every TPM command: one key load for the agent's life;
//! - SIGHUP adding a profile keeps the unchanged SoftHSM profile's session (no second login);
//!   SIGTERM exits 0 and finalizes the module;
//! - a wrong PIN in the PIN file stops the agent at start after one C_Login, never retried.
//!
//! CreateSession counts are the emulator's own (per profile, by the role session name each profile
//! asks for); PKCS#11 calls come from the spy's log, TPM commands from the proxy. The tests wait for
//! refreshes in parallel (about 100 s of wall time in all). Missing tools skip, or fail with
//! `HSM_TESTS_REQUIRED=1` (or `CI`).

use hsm_tests::emu::{self, Emu};
use hsm_tests::softhsm::{self, SoftHsm};
use hsm_tests::swtpm::{Behaviour, CONTROL_OK, HostileTpm, Swtpm};
use rolesanywhere_emulator::ca::{IssueRequest, KeySource, KeyType};
use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The emulator's credential lifetime: the shortest the client accepts.
const LIFETIME: u32 = 62;
/// TPM command codes (TPM 2.0 Part 2, TPM_CC).
const TPM2_CC_LOAD: u32 = 0x157;
const TPM2_CC_LOAD_EXTERNAL: u32 = 0x167;
const TPM2_CC_CREATE_PRIMARY: u32 = 0x131;
const TPM2_CC_SIGN: u32 = 0x15d;
const TPM2_CC_FLUSH_CONTEXT: u32 = 0x165;

/// A running `agent --config … --socket …` and its stderr so far.
struct Agent {
    child: Child,
    stderr: Arc<Mutex<String>>,
    socket: PathBuf,
}

/// The agent binary with `args` in a clean environment (PATH, HOME, `TSS2_LOG=all+none`) plus `env`.
fn agent_command(args: &[&str], env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(hsm_tests::agent_bin());
    cmd.args(args).env_clear();
    for k in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("TSS2_LOG", "all+none")
        .envs(env.iter().map(|(k, v)| (k, v)));
    cmd
}

impl Agent {
    /// Starts the agent on `config` with its socket at `dir/run/agent.sock` and waits until it
    /// serves (every profile opened and its first credentials fetched).
    fn start(config: &Path, dir: &Path, env: &[(String, String)]) -> Agent {
        let socket = dir.join("run/agent.sock");
        let mut child = agent_command(
            &[
                "agent",
                "--config",
                &path_str(config),
                "--socket",
                &path_str(&socket),
            ],
            env,
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the agent binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).is_ok_and(|n| n > 0) {
                eprint!("agent: {line}");
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let mut agent = Agent {
            child,
            stderr,
            socket,
        };
        let start = Instant::now();
        while !agent.log().contains("profile(s) on") {
            if let Some(s) = agent.child.try_wait().unwrap() {
                panic!("the agent exited ({s}) at start:\n{}", agent.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the agent did not start:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr contains `needle` (failing with stderr after `limit`).
    fn wait_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
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

    /// SIGTERM, then the exit code (failing after 20 s).
    fn terminate(&mut self) -> i32 {
        self.signal("TERM");
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the agent still runs after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `agent status --json`, parsed.
    fn status(&self) -> serde_json::Value {
        let out = agent_command(
            &[
                "agent",
                "status",
                "--json",
                "--agent-socket",
                &path_str(&self.socket),
            ],
            &[],
        )
        .stdin(Stdio::null())
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "agent status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("agent status --json is JSON")
    }

    /// The profile's successful refreshes (its first fetch included), from `agent status --json`.
    fn refreshes(&self, profile: &str) -> u64 {
        let status = self.status();
        let p = status["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == profile)
            .unwrap_or_else(|| panic!("no profile {profile} in {status}"));
        assert_eq!(p["refreshes_failed"], 0, "{status}");
        p["refreshes_ok"].as_u64().unwrap()
    }

    /// `n` `credential-process --from-agent PROFILE` processes started at once; each must exit 0
    /// with exactly one credentials object on stdout, every field set, not expired, and nothing on
    /// stderr. Returns the access key ids.
    fn callers(&self, profile: &str, n: usize) -> Vec<String> {
        let now = utc_now();
        let children: Vec<Child> = (0..n)
            .map(|_| {
                agent_command(
                    &[
                        "credential-process",
                        "--from-agent",
                        profile,
                        "--agent-socket",
                        &path_str(&self.socket),
                    ],
                    &[],
                )
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                let (stdout, stderr) = (
                    String::from_utf8(out.stdout).unwrap(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                );
                assert!(out.status.success(), "caller of {profile}: {stderr}");
                assert!(stderr.is_empty(), "{stderr}");
                assert!(
                    stdout.starts_with('{') && stdout.ends_with("}\n"),
                    "{stdout}"
                );
                let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                assert_eq!(v["Version"], 1, "{stdout}");
                for k in [
                    "AccessKeyId",
                    "SecretAccessKey",
                    "SessionToken",
                    "Expiration",
                ] {
                    assert!(
                        v[k].as_str().is_some_and(|s| !s.is_empty()),
                        "{k} in {stdout}"
                    );
                }
                assert!(
                    v["Expiration"].as_str().unwrap() > now.as_str(),
                    "expired credentials handed out at {now}: {stdout}"
                );
                v["AccessKeyId"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`, by date(1): comparable as a string with `Expiration`.
fn utc_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// CreateSession calls the emulator answered with credentials for `session_name` (each profile
/// asks for its own role session name).
fn sessions_for(emu: &Emu, session_name: &str) -> u64 {
    emu.running
        .decisions()
        .iter()
        .filter(|d| {
            d.message == "session issued" && d.role_session_name.as_deref() == Some(session_name)
        })
        .count() as u64
}

/// One `[profiles.NAME]` table against `emu`, asking for role session name NAME; `key` holds the
/// certificate and key lines.
fn profile(emu: &Emu, name: &str, key: &str) -> String {
    format!(
        "\n[profiles.{name}]\n{key}\ntrust_anchor_arn = \"{}\"\nprofile_arn = \"{}\"\n\
         role_arn = \"{}\"\nendpoint = \"{}\"\nrole_session_name = \"{name}\"\n",
        emu::TRUST_ANCHOR_ARN,
        emu::PROFILE_ARN,
        emu::ROLE_ARN,
        emu.running.url()
    )
}

/// A SoftHSM token "ra" with a P-256 key (label k) and its certificate from `emu`, a PIN file
/// holding `pin`, and pkcs11-spy logging to `spy.log`: the token, the `hsm` profile's key lines
/// and the spy log. `None` when skipped.
fn token(emu: &Emu, pin: &str) -> Option<(SoftHsm, String, PathBuf)> {
    let hsm = SoftHsm::new()?;
    let Some(spy) = softhsm::spy_module() else {
        let _ = hsm_tests::skip("OpenSC's pkcs11-spy.so is missing");
        return None;
    };
    hsm.init_token("ra");
    let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
    let cert = emu.issue_for_public_key(&public, "agent-token");
    hsm.write_cert("ra", &cert, "01", "k");
    let pin_file = hsm.file("pin", format!("{pin}\n").as_bytes());
    let key = format!(
        "certificate = \"pkcs11:token=ra;object=k;type=cert?pin-source=file:{pin_file}\"\n\
         pkcs11_lib = \"{}\"",
        spy.display()
    );
    let log = hsm.dir().join("spy.log");
    Some((hsm, key, log))
}

/// A P-256 key file and its certificate from `emu`, in `dir`: the profile's key lines.
fn key_file(emu: &Emu, dir: &Path, name: &str) -> String {
    let issued = emu
        .ca
        .issue(&IssueRequest::new(
            &format!("CN={name}"),
            KeySource::NewKey(KeyType::EcP256),
        ))
        .unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, issued.cert_pem).unwrap();
    std::fs::write(&key, issued.key_pem.unwrap()).unwrap();
    format!(
        "certificate = \"{}\"\nprivate_key = \"{}\"",
        cert.display(),
        key.display()
    )
}

/// Asks the agent for `profile` in parallel batches until it has refreshed `refreshes` times in
/// all (its first fetch included), at most `limit`; returns the access key ids the callers got and
/// how many callers there were. Every set lives about 31 s before the next, and callers ask every
/// second or so, so every set the agent fetched reaches them.
fn callers_until(
    agent: &Agent,
    profile: &str,
    batch: usize,
    refreshes: u64,
    limit: Duration,
) -> (BTreeSet<String>, usize) {
    let start = Instant::now();
    let mut keys = BTreeSet::new();
    let mut callers = 0;
    loop {
        let got = agent.callers(profile, batch);
        callers += got.len();
        keys.extend(got);
        let done = agent.refreshes(profile);
        if done >= refreshes {
            // The newest set too.
            let got = agent.callers(profile, batch);
            callers += got.len();
            keys.extend(got);
            eprintln!(
                "{profile}: {done} refreshes, {callers} callers, {} sets after {:?}",
                keys.len(),
                start.elapsed()
            );
            return (keys, callers);
        }
        assert!(
            start.elapsed() < limit,
            "{profile}: {done} refreshes within {limit:?}, wanted {refreshes}:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(1500));
    }
}

/// A SoftHSM profile and a key-file profile in one agent, through three refreshes of each (four
/// sets): one C_Login for all of them, one C_Sign and one CreateSession per refresh, none for
/// the hundreds of callers (batches of parallel `credential-process --from-agent`), who got every
/// set and only valid ones. SIGTERM exits 0 and finalizes the module.
#[test]
fn agent_with_a_softhsm_key_logs_in_once_for_many_refreshes_and_callers() {
    let emu = Emu::short_lived(LIFETIME);
    let Some((hsm, hsm_key, log)) = token(&emu, softhsm::PIN) else {
        return;
    };
    let config = hsm.dir().join("agent.toml");
    std::fs::write(
        &config,
        profile(&emu, "hsm", &hsm_key) + &profile(&emu, "file", &key_file(&emu, hsm.dir(), "file")),
    )
    .unwrap();
    let mut agent = Agent::start(&config, hsm.dir(), &hsm.spy_env(&log));
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);

    // A burst before the first refresh: one set for all of them.
    let burst = agent.callers("hsm", 40);
    assert_eq!(burst.iter().collect::<BTreeSet<_>>().len(), 1, "{burst:?}");
    let file_keys: BTreeSet<String> = agent.callers("file", 10).into_iter().collect();
    assert_eq!(file_keys.len(), 1);
    assert!(!burst.contains(file_keys.first().unwrap()));
    assert_eq!(
        sessions_for(&emu, "hsm"),
        1,
        "the burst cost no CreateSession"
    );
    assert_eq!(sessions_for(&emu, "file"), 1);

    // Half-life refreshes (~31 s each, with jitter): four sets in about 95 s.
    let (keys, callers) = callers_until(&agent, "hsm", 4, 4, Duration::from_secs(130));
    let callers = callers + burst.len();
    let refreshes = agent.refreshes("hsm");
    let sessions = sessions_for(&emu, "hsm");
    eprintln!(
        "hsm: C_Login {}, C_Sign {}, CreateSession {sessions}, refreshes {refreshes}, \
         callers {callers}, sets seen {}",
        softhsm::count_calls(&log, "C_Login"),
        softhsm::count_calls(&log, "C_Sign"),
        keys.len()
    );
    assert!(callers >= 50, "{callers} callers");
    assert_eq!(
        softhsm::count_calls(&log, "C_Login"),
        1,
        "one login for every refresh:\n{}",
        agent.log()
    );
    assert_eq!(sessions, refreshes, "CreateSession only for the refreshes");
    assert_eq!(softhsm::count_calls(&log, "C_Sign") as u64, refreshes);
    assert_eq!(
        keys.len() as u64,
        refreshes,
        "every set reached the callers"
    );
    // The key-file profile refreshed on its own schedule, with its own sessions only.
    assert_eq!(sessions_for(&emu, "file"), agent.refreshes("file"));
    assert!(agent.refreshes("file") >= 3);
    assert_eq!(
        emu.sessions_issued(),
        sessions + sessions_for(&emu, "file"),
        "no CreateSession for any caller"
    );
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 0);
    assert!(!agent.log().contains("failed"), "{}", agent.log());

    assert_eq!(agent.terminate(), 0, "{}", agent.log());
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 1);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
}

/// A swtpm key (no password) behind a recording proxy: through three refreshes and batches of
/// parallel callers, the agent loaded the key once (one TPM2_Load, no other load or primary
/// created more than once) and signed once per CreateSession; after SIGTERM nothing is left loaded.
#[test]
fn agent_with_a_tpm_key_loads_it_once_for_many_refreshes_and_callers() {
    let tpm = match Swtpm::start() {
        Ok(t) => t,
        Err(u) => {
            let _ = hsm_tests::skip(&u.0);
            return;
        }
    };
    let emu = Emu::short_lived(LIFETIME);
    let key = tpm.openssl_key("key.tss2.pem", "EC", &["group:P-256"]);
    let public = std::fs::read_to_string(tpm.path("key.tss2.pem.pub.pem")).unwrap();
    let cert = tpm.path("cert.pem");
    std::fs::write(&cert, emu.issue_for_public_key(&public, "agent-tpm")).unwrap();
    let proxy = HostileTpm::start(
        Behaviour::Proxy {
            port: tpm.port(),
            stall: None,
        },
        CONTROL_OK,
    );
    let config = tpm.path("agent.toml");
    std::fs::write(
        &config,
        profile(
            &emu,
            "tpm",
            &format!(
                "certificate = \"{}\"\nprivate_key = \"{}\"\ntpm_tcti = \"{}\"\n\
                 no_tpm_key_password = true",
                cert.display(),
                key.display(),
                proxy.tcti()
            ),
        ),
    )
    .unwrap();
    let mut agent = Agent::start(&config, tpm.dir(), &[]);
    assert_eq!(proxy.count(TPM2_CC_LOAD), 1, "{:x?}", proxy.commands());
    let burst = agent.callers("tpm", 40);
    assert_eq!(burst.iter().collect::<BTreeSet<_>>().len(), 1, "{burst:?}");
    assert_eq!(
        sessions_for(&emu, "tpm"),
        1,
        "the burst cost no CreateSession"
    );

    let (keys, callers) = callers_until(&agent, "tpm", 4, 4, Duration::from_secs(130));
    let callers = callers + burst.len();
    let refreshes = agent.refreshes("tpm");
    let sessions = sessions_for(&emu, "tpm");
    eprintln!(
        "tpm: TPM2_Load {}, TPM2_CreatePrimary {}, TPM2_Sign {} ({} completed), TPM commands {}, \
         CreateSession {sessions}, refreshes {refreshes}, callers {callers}, sets seen {}: {:x?}",
        proxy.count(TPM2_CC_LOAD),
        proxy.count(TPM2_CC_CREATE_PRIMARY),
        proxy.count(TPM2_CC_SIGN),
        proxy.succeeded(TPM2_CC_SIGN),
        proxy.commands().len(),
        keys.len(),
        proxy.commands()
    );
    assert!(callers >= 50, "{callers} callers");
    assert_eq!(
        proxy.count(TPM2_CC_LOAD),
        1,
        "one key load for the agent's life: {:x?}",
        proxy.commands()
    );
    assert_eq!(proxy.count(TPM2_CC_LOAD_EXTERNAL), 0);
    assert!(proxy.count(TPM2_CC_CREATE_PRIMARY) <= 1);
    assert_eq!(sessions, refreshes, "CreateSession only for the refreshes");
    assert_eq!(emu.sessions_issued(), sessions);
    // One signature per CreateSession (swtpm may answer a TPM2_Sign with TPM_RC_RETRY, which the
    // TSS sends again: that is the TPM's protocol, not a second signature).
    assert_eq!(proxy.succeeded(TPM2_CC_SIGN) as u64, refreshes);
    assert_eq!(
        keys.len() as u64,
        refreshes,
        "every set reached the callers"
    );
    assert!(!agent.log().contains("failed"), "{}", agent.log());

    assert_eq!(agent.terminate(), 0, "{}", agent.log());
    // The key flushed at exit (the parent was flushed once the key was loaded).
    let commands = proxy.commands();
    assert_eq!(
        commands.last(),
        Some(&(TPM2_CC_FLUSH_CONTEXT, Some(0))),
        "{commands:x?}"
    );
    assert_eq!(proxy.count(TPM2_CC_FLUSH_CONTEXT), 2, "{commands:x?}");
    let out = tpm.run(&["tpm2_getcap", "handles-transient"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "objects left loaded after the agent exited"
    );
}

/// SIGHUP with the SoftHSM profile unchanged and a key-file profile added: the new profile serves,
/// the SoftHSM one keeps its set, its session and its login (still one C_Login, no C_Finalize,
/// and its next refresh signs without logging in again). Changing it then does restart it (a
/// second C_Login). SIGTERM exits 0 and finalizes the module.
#[test]
fn agent_sighup_keeps_an_unchanged_softhsm_profile_logged_in() {
    let emu = Emu::short_lived(LIFETIME);
    let Some((hsm, hsm_key, log)) = token(&emu, softhsm::PIN) else {
        return;
    };
    let config = hsm.dir().join("agent.toml");
    let hsm_profile = profile(&emu, "hsm", &hsm_key);
    std::fs::write(&config, &hsm_profile).unwrap();
    let mut agent = Agent::start(&config, hsm.dir(), &hsm.spy_env(&log));
    let before = agent.callers("hsm", 5);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);

    let added = hsm_profile.clone() + &profile(&emu, "file", &key_file(&emu, hsm.dir(), "file"));
    std::fs::write(&config, added).unwrap();
    agent.signal("HUP");
    agent.wait_log(
        "configuration reloaded: 1 added, 0 removed, 0 changed, 1 unchanged",
        Duration::from_secs(30),
    );
    agent.callers("file", 5);
    let after = agent.callers("hsm", 5);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1, "{}", agent.log());
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 0);
    assert_eq!(after[0], before[0], "the cache was kept");
    assert_eq!(sessions_for(&emu, "hsm"), 1);

    // The next refresh signs in the session opened at start.
    let (keys, _) = callers_until(&agent, "hsm", 3, 2, Duration::from_secs(60));
    assert_eq!(keys.len(), 2);
    assert_eq!(sessions_for(&emu, "hsm"), 2);
    assert_eq!(softhsm::count_calls(&log, "C_Sign"), 2);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1, "{}", agent.log());

    // A changed profile is restarted: the one check above is not blind to restarts.
    let changed = hsm_profile.replace(
        "role_session_name = \"hsm\"",
        "session_duration = 1800\nrole_session_name = \"hsm\"",
    );
    assert_ne!(changed, hsm_profile);
    std::fs::write(&config, changed).unwrap();
    agent.signal("HUP");
    agent.wait_log(
        "configuration reloaded: 0 added, 1 removed, 1 changed, 0 unchanged",
        Duration::from_secs(30),
    );
    agent.callers("hsm", 2);
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 2, "{}", agent.log());
    // The old identity closed (the module finalized) before the new one logged in.
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 1);

    assert_eq!(agent.terminate(), 0, "{}", agent.log());
    assert!(agent.log().contains("agent stopped"), "{}", agent.log());
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 2);
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| {
            l.split_once(": ")
                .is_some_and(|(n, _)| n.trim().parse::<u64>().is_ok())
        })
        .unwrap();
    assert!(
        last.ends_with("C_Finalize"),
        "the module was not closed last: {last}"
    );
}

/// A PIN file holding a wrong PIN: the agent stops at start after exactly one C_Login (never
/// retried), with exit code 1 as every command gives for a PIN the token refuses (docs/cli.md: a
/// device refusal, not a mistake in the file's syntax), a message that names the profile and the
/// refused PIN but not the PIN itself, no request sent and no socket left behind.
#[test]
fn agent_with_a_wrong_pin_stops_at_start_after_one_login() {
    const WRONG: &str = "86420975";
    let emu = Emu::short_lived(LIFETIME);
    let Some((hsm, hsm_key, log)) = token(&emu, WRONG) else {
        return;
    };
    let config = hsm.dir().join("agent.toml");
    std::fs::write(&config, profile(&emu, "hsm", &hsm_key)).unwrap();
    let socket = hsm.dir().join("run/agent.sock");
    let out = hsm_tests::output_within(
        &mut agent_command(
            &[
                "agent",
                "--config",
                &path_str(&config),
                "--socket",
                &path_str(&socket),
            ],
            &hsm.spy_env(&log),
        ),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1, "{stderr}");
    assert!(!stderr.contains(WRONG), "the PIN reached stderr: {stderr}");
    for needle in [
        "profile hsm",
        "CKR_PIN_INCORRECT",
        "not retried",
        "pin-source",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(out.stdout.is_empty());
    assert!(!socket.exists(), "the socket is removed");
    assert_eq!(emu.requests(), 0);
}
