//! `rolesanywhere-agent` carries no TPM backend: for a TPM key it runs `rolesanywhere-agent-tpm` in
//! its own process (src/cli/companion.rs), decided before it does anything. Here the companion is a
//! stand-in named by `ROLESANYWHERE_AGENT_TPM` that records what it was given; the real one is
//! exercised by every TPM test (hsm-tests, and the malformed key file test in cli.rs).

use super::common::*;
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;

const FRONT: &str = env!("CARGO_BIN_EXE_rolesanywhere-agent");
const INSTALLED: &str = "/usr/libexec/rolesanywhere-agent/rolesanywhere-agent-tpm";

/// A file the front takes for a TPM key (its first PEM block); never parsed on these paths.
fn tss2_key(env: &Env) -> String {
    std::fs::write(
        env.path("tpm.key"),
        "-----BEGIN TSS2 PRIVATE KEY-----\nAAAA\n-----END TSS2 PRIVATE KEY-----\n",
    )
    .unwrap();
    env.p("tpm.key")
}

/// An executable stand-in for the companion: records its arguments (one per line) in
/// `companion-args.txt`, prints `forwarded`, exits with `code`.
fn recorder(env: &Env, code: i32) -> String {
    let path = env.path("companion.sh");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >\"$(dirname \"$0\")/companion-args.txt\"\n\
             echo forwarded\nexit {code}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path_str(&path)
}

fn recorded_args(env: &Env) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(env.path("companion-args.txt")).ok()?;
    Some(text.lines().map(str::to_string).collect())
}

fn session_args(cert: &str, key: &str, url: &str) -> Vec<String> {
    [
        "credential-process",
        "--certificate",
        cert,
        "--private-key",
        key,
        "--trust-anchor-arn",
        TRUST_ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
        "--endpoint",
        url,
    ]
    .map(str::to_string)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The environment as `env` prints it, without what the shell sets itself.
fn env_lines(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("OLDPWD="))
        .map(str::to_string)
        .collect()
}

/// The companion replaces the front in its own process, with exactly the front's argv (`argv[0]`
/// as the caller gave it) and environment plus `ROLESANYWHERE_AGENT_FRONT`; its output and exit
/// code are the run's.
#[test]
fn a_tpm_key_file_runs_the_companion_in_place_with_the_same_argv_and_environment() {
    let env = Env::new();
    let key = tss2_key(&env);
    // The companion is /bin/sh: it runs the file its first argument names, `credential-process`,
    // from the working directory, and /proc/$$/cmdline is the argv the front passed, argv[0]
    // included (a #! script never sees argv[0]).
    std::fs::write(
        env.path("credential-process"),
        "tr '\\000' '\\n' </proc/$$/cmdline >argv.txt\nenv >env.txt\necho $$ >pid.txt\n\
         echo companion-out\necho companion-err >&2\nexit 7\n",
    )
    .unwrap();
    let args = session_args("leaf.pem", &key, "http://127.0.0.1:9");
    let mut cmd = env.cmd(&strs(&args), &[("ROLESANYWHERE_AGENT_TPM", "/bin/sh")]);
    cmd.arg0("ra-front")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "companion-out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "companion-err\n");

    let argv = std::fs::read_to_string(env.path("argv.txt")).unwrap();
    let mut want = vec!["ra-front".to_string()];
    want.extend(args);
    assert_eq!(argv.lines().collect::<Vec<_>>(), strs(&want));
    let ran_in = std::fs::read_to_string(env.path("pid.txt")).unwrap();
    assert_eq!(ran_in.trim(), pid.to_string(), "the same process");

    let front = std::fs::canonicalize(FRONT).unwrap();
    let home = env.path("x");
    let want: BTreeSet<String> = [
        format!("PATH={}", std::env::var("PATH").unwrap_or_default()),
        format!("HOME={}", path_str(home.parent().unwrap())),
        "ROLESANYWHERE_AGENT_TPM=/bin/sh".into(),
        format!("ROLESANYWHERE_AGENT_FRONT={}", path_str(&front)),
    ]
    .into_iter()
    .collect();
    let got = env_lines(&std::fs::read_to_string(env.path("env.txt")).unwrap());
    assert_eq!(got, want);
}

/// A persistent handle and a keygen target are TPM keys too; the companion's exit code 0 and
/// output are the run's.
#[test]
fn a_tpm_handle_and_a_tpm_keygen_target_run_the_companion() {
    let env = Env::new();
    let companion = recorder(&env, 0);
    let runs: [&[&str]; 3] = [
        &["sign-string", "--private-key", "handle:0x81000001"],
        &["enroll", "keygen", "--private-key", "new.tss2"],
        &["enroll", "keygen", "--persist", "0x81000002"],
    ];
    for args in runs {
        let _ = std::fs::remove_file(env.path("companion-args.txt"));
        let run = env.run(args, &[("ROLESANYWHERE_AGENT_TPM", &companion)]);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "forwarded\n", "{args:?}");
        assert_eq!(run.stderr, "", "{args:?}");
        assert_eq!(recorded_args(&env).unwrap(), args, "{args:?}");
    }
    assert!(!env.path("new.tss2").exists());
}

/// An agent whose configuration has a TPM profile is the companion's from its start: the front
/// binds no socket first.
#[test]
fn an_agent_with_a_tpm_profile_runs_the_companion_before_binding_its_socket() {
    let env = Env::new();
    env.leaf("web");
    let companion = recorder(&env, 0);
    let profile = |name: &str, key: &str| {
        format!(
            "[profiles.{name}]\ncertificate = \"{}\"\nprivate_key = \"{key}\"\n\
             trust_anchor_arn = \"{TRUST_ANCHOR}\"\nprofile_arn = \"{PROFILE}\"\n\
             role_arn = \"{ROLE}\"\nendpoint = \"http://127.0.0.1:9\"\n",
            env.p("web.pem")
        )
    };
    let config = env.path("agent.toml");
    std::fs::write(
        &config,
        format!(
            "{}{}",
            profile("web", &env.p("web.key")),
            profile("tpm", "handle:0x81000001")
        ),
    )
    .unwrap();
    let socket = env.p("run/agent.sock");
    let args = ["agent", "--config", &path_str(&config), "--socket", &socket];
    let run = env.run(&args, &[("ROLESANYWHERE_AGENT_TPM", &companion)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "forwarded\n");
    assert_eq!(recorded_args(&env).unwrap(), args);
    assert!(
        !env.path("run").exists(),
        "the front made the socket's directory"
    );
}

/// A key file that is not a TPM key: the front runs the command itself and never the companion.
#[test]
fn a_key_file_credential_process_does_not_run_the_companion() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let companion = recorder(&env, 0);
    let run = env.credential_process_env(
        &emu.url(),
        "leaf",
        &[],
        &[("ROLESANYWHERE_AGENT_TPM", &companion)],
    );
    run.credentials();
    assert_eq!(recorded_args(&env), None, "the companion ran");
    // Nor for a failure that only the key's opening finds.
    let run = env.run(
        &strs(&session_args(
            &env.p("leaf.pem"),
            "/nonexistent/k.tss2",
            &emu.url(),
        )),
        &[("ROLESANYWHERE_AGENT_TPM", &companion)],
    );
    run.assert_failure(2, &["/nonexistent/k.tss2"]);
    assert_eq!(recorded_args(&env), None, "the companion ran");
}

/// No companion: exit 2 before anything else, naming the key, every path tried and the fix.
#[test]
fn a_missing_companion_exits_2_naming_the_key_the_paths_tried_and_the_fix() {
    let env = Env::new();
    let key = tss2_key(&env);
    let args = session_args("leaf.pem", &key, "http://127.0.0.1:9");
    let missing = env.p("nowhere/rolesanywhere-agent-tpm");
    env.run(&strs(&args), &[("ROLESANYWHERE_AGENT_TPM", &missing)])
        .assert_failure(
            2,
            &[
                &key,
                &missing,
                "hint: install the rolesanywhere-agent package again",
                "copy both rolesanywhere-agent and rolesanywhere-agent-tpm into one directory",
            ],
        );

    // Relative: refused, not looked up.
    env.run(
        &strs(&args),
        &[("ROLESANYWHERE_AGENT_TPM", "bin/rolesanywhere-agent-tpm")],
    )
    .assert_failure(
        2,
        &[
            "ROLESANYWHERE_AGENT_TPM=bin/rolesanywhere-agent-tpm is not an absolute path",
            "hint: set ROLESANYWHERE_AGENT_TPM to the absolute path",
        ],
    );

    // Without the variable: next to the front, then where the package puts it.
    if Path::new(INSTALLED).exists() {
        eprintln!("SKIP: {INSTALLED} is installed here: not checking that it is reported missing");
        return;
    }
    let alone = env.path("alone");
    std::fs::create_dir(&alone).unwrap();
    let front = alone.join("rolesanywhere-agent");
    std::fs::copy(FRONT, &front).unwrap();
    let mut cmd = std::process::Command::new(&front);
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(env.path("alone"));
    run_command(cmd).assert_failure(
        2,
        &[
            &key,
            &path_str(&alone.join("rolesanywhere-agent-tpm")),
            INSTALLED,
        ],
    );
}

/// A companion that is not one never makes the front run again and again: the front itself named
/// as the companion, or a stand-in that runs the front again, ends with exit 2.
#[test]
fn a_companion_that_runs_the_front_again_is_refused() {
    let env = Env::new();
    let key = tss2_key(&env);
    let args = session_args("leaf.pem", &key, "http://127.0.0.1:9");
    env.run(&strs(&args), &[("ROLESANYWHERE_AGENT_TPM", FRONT)])
        .assert_failure(2, &["is not rolesanywhere-agent-tpm", &key]);

    let again = env.path("again.sh");
    std::fs::write(
        &again,
        "#!/bin/sh\necho run >>\"$(dirname \"$0\")/runs.txt\"\nexec \"$ROLESANYWHERE_AGENT_FRONT\" \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&again, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.run(
        &strs(&args),
        &[("ROLESANYWHERE_AGENT_TPM", &path_str(&again))],
    )
    .assert_failure(2, &[&path_str(&again), "is not rolesanywhere-agent-tpm"]);
    assert_eq!(
        std::fs::read_to_string(env.path("runs.txt")).unwrap(),
        "run\n"
    );
}
