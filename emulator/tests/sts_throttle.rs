//! The sessions the emulator grants, seen from outside: STS `GetCallerIdentity` called by botocore's
//! real `sts` client (its own SigV4) with credentials from a CreateSession signed in the test, the
//! debug view, and CreateSession throttling per (certificate, address) and in total.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use rolesanywhere_emulator::ca::{Ca, KeyType};
use rolesanywhere_emulator::config::Settings;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;

struct Env {
    tmp: tempfile::TempDir,
    root: Ca,
    server: Running,
}

/// The standard config plus `tail` (e.g. a `[throttle]` table), served over plain HTTP.
fn start(tail: &str) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    let toml = format!("{}{tail}", config_toml(tmp.path(), "", ""));
    let settings = Settings::from_toml_str(&toml, tmp.path()).expect("settings");
    let server = server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    Env { tmp, root, server }
}

impl Env {
    fn host(&self) -> String {
        self.server.url().trim_start_matches("http://").to_string()
    }

    fn signed(&self, id: &Identity) -> Signed {
        sign(id, &Call::new(&self.host(), "{\"durationSeconds\":900}"))
    }

    fn create_session(&self, id: &Identity) -> Response {
        send(
            &self.server.url(),
            None,
            &self.signed(id),
            Duration::from_secs(10),
        )
        .expect("request")
    }

    fn stats(&self) -> serde_json::Value {
        let (status, body) = get(&format!("{}/_emulator/stats", self.server.url()));
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).expect("stats JSON")
    }
}

/// A plain HTTP/1.1 GET: status and body.
fn get(url: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let (host, path) = url
        .trim_start_matches("http://")
        .split_once('/')
        .expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n").expect("body").1.to_string(),
    )
}

/// botocore's `sts` client against `url` with these credentials and region calls `operation`;
/// `{"ok": response}` or `{"code", "message", "status"}` from its ClientError.
fn botocore_sts(
    url: &str,
    creds: &serde_json::Value,
    region: &str,
    operation: &str,
) -> serde_json::Value {
    let script = r#"
import json, os, sys
import botocore.session
from botocore.exceptions import ClientError
s = botocore.session.get_session()
c = s.create_client("sts", region_name=os.environ["REGION"], endpoint_url=os.environ["URL"],
    aws_access_key_id=os.environ["KEY"], aws_secret_access_key=os.environ["SECRET"],
    aws_session_token=os.environ["TOKEN"] or None)
try:
    r = getattr(c, os.environ["OP"])()
    r.pop("ResponseMetadata", None)
    print(json.dumps({"ok": r}, default=str))
except ClientError as e:
    print(json.dumps({"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
        "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}))
"#;
    let s = |k: &str| creds[k].as_str().unwrap_or("").to_string();
    let out = Command::new("python3")
        .args(["-c", script])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("URL", url)
        .env("REGION", region)
        .env("OP", operation)
        .env("KEY", s("accessKeyId"))
        .env("SECRET", s("secretAccessKey"))
        .env("TOKEN", s("sessionToken"))
        .output()
        .expect("python3 (botocore is required: scripts/install-deps)");
    assert!(
        out.status.success(),
        "botocore script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("script output JSON")
}

fn credentials(r: &Response) -> serde_json::Value {
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["credentialSet"][0]["credentials"].clone()
}

#[test]
fn botocore_get_caller_identity_names_the_assumed_role_of_the_issued_session() {
    let env = start("");
    let id = leaf(&env.root, KeyType::EcP256, "sts-client");
    let r = env.create_session(&id);
    let creds = credentials(&r);
    let set = &r.json()["credentialSet"][0];
    let got = botocore_sts(&env.server.url(), &creds, REGION, "get_caller_identity");
    let ok = &got["ok"];
    assert_eq!(ok["Arn"], set["assumedRoleUser"]["arn"], "{got}");
    assert_eq!(
        ok["UserId"], set["assumedRoleUser"]["assumedRoleId"],
        "{got}"
    );
    assert_eq!(ok["Account"], "123456789012", "{got}");
    let serial_hex = format!(
        "{:032x}",
        id.serial_decimal.parse::<u128>().expect("serial")
    );
    assert_eq!(
        ok["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/EmulatorRole/{serial_hex}")
    );
    let user_id = ok["UserId"].as_str().expect("UserId");
    let (role_id, session) = user_id.split_once(':').expect("AROA…:session");
    assert_eq!(session, serial_hex);
    assert!(
        role_id.starts_with("AROA") && role_id.len() == 21,
        "{role_id}"
    );
    // A second session of the same role has its own keys but the same role id.
    let again = env.create_session(&id);
    let set2 = &again.json()["credentialSet"][0];
    assert_ne!(set2["credentials"]["accessKeyId"], creds["accessKeyId"]);
    assert_eq!(set2["assumedRoleUser"]["assumedRoleId"], user_id);
}

#[test]
fn sts_refuses_foreign_wrong_and_mismatched_credentials_with_stss_codes() {
    let env = start("");
    let id = leaf(&env.root, KeyType::EcP256, "sts-refusals");
    let creds = credentials(&env.create_session(&id));
    let url = env.server.url();
    let with = |k: &str, v: &str| {
        let mut c = creds.clone();
        c[k] = serde_json::Value::String(v.to_string());
        c
    };
    let cases = [
        (
            with(
                "secretAccessKey",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            REGION,
            "SignatureDoesNotMatch",
            "does not match the signature",
        ),
        (
            with("accessKeyId", "ASIAUNKNOWNKEY000000"),
            REGION,
            "InvalidClientTokenId",
            "security token included in the request is invalid",
        ),
        (
            with("sessionToken", "bm90IHRoZSB0b2tlbg=="),
            REGION,
            "InvalidClientTokenId",
            "security token included in the request is invalid",
        ),
        (
            with("sessionToken", ""),
            REGION,
            "InvalidClientTokenId",
            "security token included in the request is invalid",
        ),
        (
            creds.clone(),
            "eu-west-1",
            "SignatureDoesNotMatch",
            "Credential should be scoped to a valid region",
        ),
    ];
    for (c, region, code, needle) in cases {
        let got = botocore_sts(&url, &c, region, "get_caller_identity");
        assert_eq!(got["code"], code, "{got}");
        assert_eq!(got["status"], 403, "{got}");
        let msg = got["message"].as_str().expect("message");
        assert!(msg.contains(needle), "{msg}");
        let secret = creds["secretAccessKey"].as_str().expect("secret");
        assert!(!msg.contains(secret), "the secret leaked: {msg}");
    }
    // Another STS action, properly signed: botocore sees STS's InvalidAction.
    let got = botocore_sts(&url, &creds, REGION, "get_session_token");
    assert_eq!(got["code"], "InvalidAction", "{got}");
    assert_eq!(got["status"], 400, "{got}");
}

#[test]
fn sts_says_expired_token_once_the_credentials_expire() {
    let env = start("[server]\ncredential_seconds = 1\n");
    let id = leaf(&env.root, KeyType::EcP256, "short");
    let creds = credentials(&env.create_session(&id));
    std::thread::sleep(Duration::from_millis(2100));
    let got = botocore_sts(&env.server.url(), &creds, REGION, "get_caller_identity");
    assert_eq!(got["code"], "ExpiredToken", "{got}");
    assert_eq!(got["status"], 403, "{got}");
    assert!(
        got["message"]
            .as_str()
            .expect("message")
            .contains("expired"),
        "{got}"
    );
}

#[test]
fn the_debug_view_shows_the_session_but_not_its_secrets() {
    let env = start("");
    let id = leaf(&env.root, KeyType::EcP256, "debug-view");
    let r = env.create_session(&id);
    let creds = credentials(&r);
    let set = &r.json()["credentialSet"][0];
    let key = creds["accessKeyId"].as_str().expect("key");
    let (status, body) = get(&format!("{}/_emulator/sessions/{key}", env.server.url()));
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["accessKeyId"], key);
    assert_eq!(v["roleArn"], ROLE);
    assert_eq!(v["assumedRoleArn"], set["assumedRoleUser"]["arn"]);
    assert_eq!(v["userId"], set["assumedRoleUser"]["assumedRoleId"]);
    assert_eq!(v["account"], "123456789012");
    assert_eq!(v["sourceIdentity"], "CN=debug-view");
    assert_eq!(v["expiration"], creds["expiration"]);
    assert_eq!(v["serialNumber"], id.serial_decimal.as_str());
    // The default attribute mappings: the subject's and issuer's attributes.
    assert_eq!(
        v["principalTags"],
        serde_json::json!({
            "x509Subject/CN": "debug-view",
            "x509Subject/O": "Test",
            "x509Issuer/CN": "Test Root",
        })
    );
    assert!(v["sessionPolicy"].is_null(), "{v}");
    for secret in ["secretAccessKey", "sessionToken"] {
        let s = creds[secret].as_str().expect(secret);
        assert!(!body.contains(s), "{secret} in the debug view: {body}");
    }
    let (status, body) = get(&format!(
        "{}/_emulator/sessions/ASIANOSUCHKEY0000000",
        env.server.url()
    ));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no session with access key id"), "{body}");
    // Neither view is a CreateSession decision.
    assert_eq!(env.server.requests(), 1);
}

/// Sends `signed` `n` times from `threads` threads at once; the statuses and bodies, and how long
/// the whole burst took.
fn burst(env: &Env, signed: &Signed, n: usize, threads: usize) -> (Vec<Response>, Duration) {
    let url = env.server.url();
    let started = Instant::now();
    let responses = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let url = url.clone();
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % threads == t)
                        .map(|_| {
                            send(&url, None, signed, Duration::from_secs(10)).expect("request")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect()
    });
    (responses, started.elapsed())
}

#[test]
fn fifty_requests_in_a_second_from_one_certificate_are_throttled_like_the_service() {
    let env = start("");
    let id = leaf(&env.root, KeyType::EcP256, "hammer");
    let signed = env.signed(&id);
    let (responses, took) = burst(&env, &signed, 50, 8);
    assert!(took < Duration::from_secs(1), "the burst took {took:?}");
    let ok = responses.iter().filter(|r| r.status == 201).count();
    let throttled: Vec<&Response> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(
        ok + throttled.len(),
        50,
        "other statuses among {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // A full bucket (10) plus what refilled during the burst (10 per second).
    let most = 10 + (took.as_secs_f64() * 10.0).ceil() as usize;
    assert!((10..=most).contains(&ok), "{ok} issued in {took:?}");
    for r in &throttled {
        assert_eq!(r.header("x-amzn-errortype"), Some("ThrottlingException"));
        assert_eq!(r.json(), serde_json::json!({"message": "Rate exceeded"}));
    }
    let stats = env.stats();
    assert_eq!(stats["throttled"], throttled.len() as u64, "{stats}");
    assert_eq!(env.server.throttled(), throttled.len() as u64);
    let logged_429 = env
        .server
        .decisions()
        .iter()
        .filter(|d| d.status == 429)
        .inspect(|d| {
            assert_eq!(d.error_type.as_deref(), Some("ThrottlingException"));
            assert_eq!(
                d.serial_decimal.as_deref(),
                Some(id.serial_decimal.as_str())
            );
        })
        .count();
    assert_eq!(logged_429, throttled.len());
    // The limit is per certificate: another one is served at once.
    let other = leaf(&env.root, KeyType::EcP256, "neighbour");
    assert_eq!(env.create_session(&other).status, 201);
    // And the bucket refills: a second later the first certificate is served again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(env.create_session(&id).status, 201);
}

#[test]
fn with_throttling_off_fifty_requests_all_pass() {
    let env = start("[throttle]\nenabled = false\n");
    let id = leaf(&env.root, KeyType::EcP256, "unthrottled");
    let (responses, _) = burst(&env, &env.signed(&id), 50, 8);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(env.stats()["throttled"], 0);
}

#[test]
fn a_total_limit_spans_certificates_and_the_per_certificate_rate_is_configurable() {
    let env = start("[throttle]\ncreate_session_per_second = 2\ntotal_per_second = 3\n");
    let ids: Vec<Identity> = (0..5)
        .map(|i| leaf(&env.root, KeyType::EcP256, &format!("fleet-{i}")))
        .collect();
    let signed: Vec<Signed> = ids.iter().map(|id| env.signed(id)).collect();
    let statuses: Vec<u16> = signed
        .iter()
        .map(|s| {
            send(&env.server.url(), None, s, Duration::from_secs(10))
                .expect("request")
                .status
        })
        .collect();
    assert_eq!(statuses, [201, 201, 201, 429, 429]);
    std::thread::sleep(Duration::from_millis(1100));
    // Per certificate: 2 per second.
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            send(&env.server.url(), None, &signed[4], Duration::from_secs(10))
                .expect("request")
                .status
        })
        .collect();
    assert_eq!(statuses, [201, 201, 429]);
    assert_eq!(env.stats()["throttled"], 3);
    drop(env.tmp);
}

#[test]
fn throttle_settings_are_validated_and_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    let base = config_toml(tmp.path(), "", "");
    let err = |tail: &str| {
        format!(
            "{:#}",
            Settings::from_toml_str(&format!("{base}{tail}"), tmp.path()).expect_err(tail)
        )
    };
    assert!(
        err("[throttle]\ncreate_session_per_second = 0\n")
            .contains("throttle.create_session_per_second: 0 is outside 1..1000000")
    );
    assert!(
        err("[throttle]\ntotal_per_second = 2000000\n")
            .contains("throttle.total_per_second: 2000000 is outside")
    );
    assert!(err("[throttle]\nper_second = 5\n").contains("per_second"));
    let s = Settings::from_toml_str(&base, tmp.path()).expect("default");
    assert!(s.limits.throttle.enabled);
    assert_eq!(s.limits.throttle.create_session_per_second, 10);
    assert_eq!(s.limits.throttle.total_per_second, None);
}
