//! The agent's credentials against the emulator's STS and throttling, with real clients: the
//! credentials `credential-process` obtains are accepted by botocore's `sts` client and by
//! `aws sts get-caller-identity` (the verification step in our docs), run offline against the
//! emulator; and `credential-process` gets through a throttled CreateSession by retrying.

mod common;

use common::*;
use rolesanywhere_emulator::config::Settings;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use std::io::{Read as _, Write as _};
use std::process::Command;
use std::time::Duration;

/// The emulator with the standard config plus `tail` (e.g. a `[throttle]` table), over HTTP.
fn emulator_with_settings(env: &Env, tail: &str) -> Running {
    let toml = format!("{}{tail}", env.config_toml("", "", ""));
    let settings = Settings::from_toml_str(&toml, &env.path("")).expect("settings");
    server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn")
}

/// botocore's `sts` client calls GetCallerIdentity at `url` with these credential_process-shaped
/// credentials: `{"ok": {...}}` or the ClientError's `{"code", "message", "status"}`.
fn botocore_caller(url: &str, creds: &serde_json::Value) -> serde_json::Value {
    let script = r#"
import json, os
import botocore.session
from botocore.exceptions import ClientError
c = botocore.session.get_session().create_client("sts", region_name="us-east-1",
    endpoint_url=os.environ["URL"], aws_access_key_id=os.environ["KEY"],
    aws_secret_access_key=os.environ["SECRET"], aws_session_token=os.environ["TOKEN"])
try:
    r = c.get_caller_identity()
    print(json.dumps({"ok": {k: r[k] for k in ("Arn", "UserId", "Account")}}))
except ClientError as e:
    print(json.dumps({"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}))
"#;
    let s = |k: &str| creds[k].as_str().expect(k).to_string();
    let out = Command::new("python3")
        .args(["-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("URL", url)
        .env("KEY", s("AccessKeyId"))
        .env("SECRET", s("SecretAccessKey"))
        .env("TOKEN", s("SessionToken"))
        .output()
        .expect("python3 with botocore (scripts/install-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script output")
}

fn session_name(env: &Env, name: &str) -> String {
    let pem = std::fs::read(env.path(&format!("{name}.pem"))).expect("pem");
    // The emulator names the session after the serial in lowercase hex, as openssl prints it.
    openssl_serial(&pem).to_lowercase()
}

/// The certificate's serial in hex, as openssl prints it.
fn openssl_serial(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-serial"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(pem)
        .expect("write");
    let out = child.wait_with_output().expect("openssl output");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

#[test]
fn botocore_get_caller_identity_accepts_the_credentials_credential_process_obtained() {
    let env = Env::new();
    env.leaf("host1");
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "host1", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let creds = run.credentials();
    let session = session_name(&env, "host1");
    let got = botocore_caller(&emu.url(), &creds);
    assert_eq!(
        got["ok"]["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/test-role/{session}"),
        "{got}"
    );
    assert_eq!(got["ok"]["Account"], "123456789012", "{got}");
    let user_id = got["ok"]["UserId"].as_str().expect("UserId");
    assert!(
        user_id.starts_with("AROA") && user_id.ends_with(&format!(":{session}")),
        "{user_id}"
    );
    // The debug view agrees, and names the certificate's CN as the source identity.
    let key = creds["AccessKeyId"].as_str().expect("key");
    let view = emu.session(key).expect("the session is remembered");
    assert_eq!(view.user_id, user_id);
    assert_eq!(view.source_identity, "CN=host1");

    let mut wrong = creds.clone();
    wrong["SecretAccessKey"] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into();
    let got = botocore_caller(&emu.url(), &wrong);
    assert_eq!(
        (got["code"].as_str(), got["status"].as_u64()),
        (Some("SignatureDoesNotMatch"), Some(403)),
        "{got}"
    );
    let mut unknown = creds.clone();
    unknown["AccessKeyId"] = "ASIAQWERTYUIOPASDFGH".into();
    let got = botocore_caller(&emu.url(), &unknown);
    assert_eq!(
        (got["code"].as_str(), got["status"].as_u64()),
        (Some("InvalidClientTokenId"), Some(403)),
        "{got}"
    );
}

/// The verification step of our docs, offline: the AWS CLI runs the agent as its
/// `credential_process` and calls `sts get-caller-identity` at the emulator.
#[test]
fn aws_cli_sts_get_caller_identity_through_credential_process() {
    if Command::new("aws").arg("--version").output().is_err() {
        eprintln!("skipped: the AWS CLI is not installed (scripts/install-deps installs awscli)");
        return;
    }
    let env = Env::new();
    env.leaf("cli-host");
    let emu = env.emulator();
    let args = env.credential_args(&emu.url(), "cli-host", &[]);
    let config = format!(
        "[profile ra]\nregion = us-east-1\ncredential_process = {} {}\n",
        env!("CARGO_BIN_EXE_rolesanywhere-agent"),
        args.join(" ")
    );
    std::fs::write(env.path("aws-config"), config).expect("aws config");
    let run = env.run_program(
        "aws",
        &[
            "sts",
            "get-caller-identity",
            "--profile",
            "ra",
            "--endpoint-url",
            &emu.url(),
            "--output",
            "json",
        ],
        &[
            ("AWS_CONFIG_FILE", &env.p("aws-config")),
            ("AWS_SHARED_CREDENTIALS_FILE", &env.p("no-credentials")),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("aws output JSON");
    let session = session_name(&env, "cli-host");
    assert_eq!(
        v["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/test-role/{session}")
    );
    assert_eq!(v["Account"], "123456789012");
    assert_eq!(emu.sessions_issued(), 1);
}

/// Sends `n` CreateSession requests that claim `serial` but carry no valid signature: each is
/// refused 403 after the throttle counted it, as at the service's front door.
fn spend_quota(emu: &Running, serial: &str, n: usize) {
    let host = emu.url().trim_start_matches("http://").to_string();
    for _ in 0..n {
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        write!(
            s,
            "POST /sessions HTTP/1.1\r\nHost: {host}\r\nAuthorization: AWS4-X509-ECDSA-SHA256 Credential={serial}/20260101/us-east-1/rolesanywhere/aws4_request, SignedHeaders=host, Signature=00\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 403"), "{out}");
    }
}

#[test]
fn credential_process_gets_through_a_throttled_create_session_by_retrying() {
    let env = Env::new();
    let serial = env.leaf("busy");
    let emu = emulator_with_settings(&env, "[throttle]\ncreate_session_per_second = 5\n");
    // The quota refills one request per 200 ms; the agent's first attempt usually comes sooner
    // after the quota is spent and is refused, its retries (after 100..300 ms, then 200..600 ms)
    // find a refilled quota. A slow start may miss the 429, so a few rounds are allowed.
    let mut saw_throttle = false;
    for _round in 0..4 {
        std::thread::sleep(Duration::from_millis(1100));
        let before = emu.decisions().len();
        spend_quota(&emu, &serial, 5);
        let run = env.credential_process(&emu.url(), "busy", &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert!(run.credentials()["AccessKeyId"].is_string());
        let agent: Vec<u16> = emu.decisions()[before + 5..]
            .iter()
            .map(|d| d.status)
            .collect();
        assert_eq!(agent.last(), Some(&201), "{agent:?}");
        assert!(
            agent[..agent.len() - 1].iter().all(|s| *s == 429),
            "{agent:?}"
        );
        if agent.len() > 1 {
            saw_throttle = true;
            break;
        }
    }
    assert!(saw_throttle, "the agent was never throttled");
    assert!(emu.throttled() >= 1);
}

#[test]
fn with_throttling_off_a_spent_quota_does_not_delay_credential_process() {
    let env = Env::new();
    let serial = env.leaf("free");
    let emu = emulator_with_settings(&env, "[throttle]\nenabled = false\n");
    spend_quota(&emu, &serial, 50);
    let run = env.credential_process(&emu.url(), "free", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(emu.throttled(), 0);
    assert_eq!(emu.decisions().last().map(|d| d.status), Some(201));
    assert_eq!(emu.requests(), 51);
}
