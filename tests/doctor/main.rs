//! End-to-end tests of `rolesanywhere-agent doctor`: each check's passing and failing case,
//! asserting the finding's line and the exit code.

#[path = "../common/mod.rs"]
mod common;

mod chain;
mod identity;
mod policy;
mod request;

use common::*;
use std::path::PathBuf;

const EC_P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// An Env with `leaf.key` / `leaf.pem` issued by its CA.
fn env_with_leaf() -> Env {
    let env = Env::new();
    let public = env.openssl_key("leaf", EC_P256);
    env.issue_with(&env.ca, "leaf", public, |_| {});
    env
}

/// `doctor` with the leaf's key and certificate, plus `extra`.
fn doctor(env: &Env, extra: &[&str]) -> Run {
    let mut args = vec![
        "doctor".to_string(),
        "--certificate".to_string(),
        env.p("leaf.pem"),
        "--private-key".to_string(),
        env.p("leaf.key"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, &[])
}

/// An agent configuration with profile `web` for leaf.pem / leaf.key.
fn agent_config(env: &Env) -> PathBuf {
    let path = env.path("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[profiles.web]
certificate = "{cert}"
private_key = "{key}"
trust_anchor_arn = "{TRUST_ANCHOR}"
profile_arn = "{PROFILE}"
role_arn = "{ROLE}"
endpoint = "https://127.0.0.1:9/"
"#,
            cert = env.p("leaf.pem"),
            key = env.p("leaf.key"),
        ),
    )
    .unwrap();
    path
}

/// The JSON report of a run, its stdout being exactly one JSON object.
fn json_report(run: &Run) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim_end()).unwrap_or_else(|e| panic!("{e}: {run:?}"))
}

#[test]
fn without_a_certificate_and_key_there_is_nothing_to_check() {
    let env = Env::new();
    let run = env.run(&["doctor"], &[]);
    run.assert_failure(2, &["doctor needs --certificate and --private-key"]);
}

#[test]
fn the_json_report_has_every_check_and_counts_that_add_up() {
    let env = env_with_leaf();
    let run = doctor(&env, &["--format", "json"]);
    let report = json_report(&run);
    let findings = report["findings"].as_array().unwrap();
    let numbers: std::collections::BTreeSet<u64> = findings
        .iter()
        .map(|f| f["number"].as_u64().unwrap())
        .collect();
    assert_eq!(
        numbers,
        (1..=7).collect(),
        "every check reports at least one line: {report}"
    );
    let count = |s: &str| findings.iter().filter(|f| f["status"] == s).count() as u64;
    assert_eq!(report["passed"], count("passed"));
    assert_eq!(report["warnings"], count("warning"));
    assert_eq!(report["failed"], count("failed"));
    assert_eq!(report["skipped"], count("skipped"));
    // Offline by default: check 7 says how to ask for it.
    let live = findings.iter().find(|f| f["check"] == "live").unwrap();
    assert_eq!(live["status"], "skipped");
    assert!(live["cause"].as_str().unwrap().contains("--live"), "{live}");
    assert_eq!(run.code, if count("failed") > 0 { 1 } else { 0 }, "{run:?}");
}

#[test]
fn an_agent_profile_is_checked_from_the_configuration_file() {
    let env = env_with_leaf();
    let config = agent_config(&env);
    let config = path_str(&config);
    let run = env.run(
        &[
            "doctor",
            "--from-agent",
            "web",
            "--config",
            &config,
            "--format",
            "json",
        ],
        &[],
    );
    let report = json_report(&run);
    let text = report.to_string();
    assert!(
        text.contains("leaf.pem"),
        "the profile's certificate is checked: {text}"
    );

    let run = env.run(&["doctor", "--from-agent", "api", "--config", &config], &[]);
    run.assert_failure(
        2,
        &["profile api is not in", "agent.toml", "(its profiles: web)"],
    );

    // The profile's flags come from the file: a session flag with --from-agent is a usage error.
    let run = env.run(
        &[
            "doctor",
            "--from-agent",
            "web",
            "--config",
            &config,
            "--certificate",
            "x.pem",
        ],
        &[],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn a_password_given_on_the_command_line_is_never_printed() {
    let env = env_with_leaf();
    let encrypted = env.p("leaf.enc.key");
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        &env.p("leaf.key"),
        "-out",
        &encrypted,
        "-passout",
        "pass:Pa55-w0rd-xyzzy",
    ]);
    for password in ["Pa55-w0rd-xyzzy", "wrong-Pa55-xyzzy"] {
        let run = env.run(
            &[
                "doctor",
                "--certificate",
                &env.p("leaf.pem"),
                "--private-key",
                &encrypted,
                "--pkcs8-password",
                password,
                "--format",
                "json",
            ],
            &[],
        );
        assert!(
            !run.stdout.contains("xyzzy") && !run.stderr.contains("xyzzy"),
            "{run:?}"
        );
        json_report(&run);
    }
}
