//! doctor: check 3 (request: the ARNs offline; the endpoint, TLS and clock with --live) and check 7
//! (one live CreateSession), against the emulator and against a local server with a skewed `Date`.

use crate::common::*;
use rolesanywhere_emulator::server::Tls;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

/// `doctor` for leaf.pem / leaf.key, the test ARNs and `url`, plus `extra` (which may repeat a
/// flag: clap takes the last).
fn doctor_args(env: &Env, url: &str, extra: &[&str]) -> Vec<String> {
    let mut args = env.credential_args(url, "leaf", extra);
    args[0] = "doctor".into();
    args
}

fn doctor(env: &Env, url: &str, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let args = doctor_args(env, url, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = run_within(env.cmd(&args, vars), Duration::from_secs(60));
    eprintln!(
        "--- doctor {extra:?} (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    run
}

/// The report lines of check `number` with `status` (the padded status word and the check's
/// number, as the text report writes them).
fn lines<'a>(run: &'a Run, status: &str, number: u8) -> Vec<&'a str> {
    let prefix = format!("{status:<7} {number} ");
    run.stdout
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .collect()
}

/// The one line of check `number` with `status` whose text holds every needle.
#[track_caller]
fn line<'a>(run: &'a Run, status: &str, number: u8, needles: &[&str]) -> &'a str {
    let found: Vec<&str> = lines(run, status, number)
        .into_iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{status} {number}` line with {needles:?} in:\n{}",
        run.stdout
    );
    found[0]
}

#[test]
fn malformed_arn_is_a_failed_finding_not_a_usage_error() {
    let env = Env::new();
    env.leaf("leaf");
    let run = doctor(
        &env,
        "http://127.0.0.1:9",
        &["--role-arn", "arn:aws:iam::12345:role/test-role"],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let l = line(&run, "failed", 3, &["--role-arn: invalid --role-arn"]);
    assert!(l.contains("account \"12345\" must be 12 digits"), "{l}");
    assert!(
        l.contains("fix: write it as arn:aws:iam::ACCOUNT:role/NAME"),
        "{l}"
    );
    // The other ARNs are still checked; the settings' error repeats nothing.
    line(
        &run,
        "passed",
        3,
        &["--trust-anchor-arn: ", "is well formed"],
    );
    line(&run, "passed", 3, &["--profile-arn: ", "is well formed"]);
    assert_eq!(lines(&run, "failed", 3).len(), 1, "{}", run.stdout);
    line(&run, "skipped", 7, &["add --live"]);
}

#[test]
fn trust_anchor_and_profile_in_different_regions_or_accounts_fail() {
    let env = Env::new();
    env.leaf("leaf");
    let run = doctor(
        &env,
        "http://127.0.0.1:9",
        &[
            "--profile-arn",
            "arn:aws:rolesanywhere:eu-west-1:210987654321:profile/p-test",
        ],
        &[],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    line(
        &run,
        "failed",
        3,
        &[
            "the ARNs: the trust anchor (--trust-anchor-arn) is in region us-east-1 but the \
             profile (--profile-arn) is in region eu-west-1",
            "fix: use a trust anchor and a profile of the same region",
        ],
    );
    line(
        &run,
        "failed",
        3,
        &["is in account 123456789012 but the profile (--profile-arn) is in account 210987654321"],
    );
    // A role of another partition.
    let run = doctor(
        &env,
        "http://127.0.0.1:9",
        &["--role-arn", "arn:aws-cn:iam::123456789012:role/test-role"],
        &[],
    );
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        3,
        &[
            "the role (--role-arn) is in partition aws-cn but --trust-anchor-arn is in partition aws",
        ],
    );
}

#[test]
fn settings_errors_are_findings_with_the_settings_text() {
    let env = Env::new();
    env.leaf("leaf");
    let run = doctor(
        &env,
        "http://127.0.0.1:9",
        &["--session-duration", "100"],
        &[],
    );
    assert_eq!(run.code, 1, "not exit 2: {}", run.stderr);
    line(
        &run,
        "failed",
        3,
        &[
            "--session-duration: --session-duration 100 is out of range",
            "fix: give 900 to 43200 seconds",
        ],
    );
    let run = doctor(
        &env,
        "http://127.0.0.1:9",
        &["--region", "us-east-1-fips"],
        &[],
    );
    assert_eq!(run.code, 1);
    line(&run, "failed", 3, &["--region: invalid region"]);
    // A missing ARN: a warning saying what credential-process needs (nothing fails offline).
    let mut args = doctor_args(&env, "http://127.0.0.1:9", &[]);
    let at = args.iter().position(|a| a == "--role-arn").unwrap();
    args.drain(at..at + 2);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.run(&args, &[]);
    line(
        &run,
        "warning",
        3,
        &["--role-arn: not given", "credential-process needs it"],
    );
    assert!(lines(&run, "failed", 3).is_empty(), "{}", run.stdout);
}

#[test]
fn offline_touches_no_network() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let run = doctor(&env, &emu.url(), &[], &[]);
    line(
        &run,
        "passed",
        3,
        &[
            "the ARNs: the trust anchor and the profile are both in region us-east-1 of account \
             123456789012 (partition aws)",
        ],
    );
    line(
        &run,
        "passed",
        3,
        &[
            &format!("endpoint {}/sessions: signing region us-east-1", emu.url()),
            "session duration 3600 s",
        ],
    );
    line(
        &run,
        "skipped",
        3,
        &["endpoint: not contacted", "add --live"],
    );
    line(
        &run,
        "skipped",
        7,
        &["CreateSession: not attempted", "add --live"],
    );
    assert_eq!(emu.requests(), 0, "offline means no request");
}

/// The emulator over TLS for localhost (its CA in `server-ca.pem`).
fn tls_emulator(env: &Env, toml: &str) -> (rolesanywhere_emulator::server::Running, String) {
    let emu = env.emulator_with(
        toml,
        Tls::SelfIssued {
            ca_out: Some(env.path("server-ca.pem")),
        },
    );
    let url = emu.url().replace("127.0.0.1", "localhost");
    (emu, url)
}

#[test]
fn live_against_the_emulator_passes_endpoint_tls_clock_and_create_session() {
    let env = Env::new();
    env.leaf("leaf");
    let (emu, url) = tls_emulator(&env, &env.config_toml("", "", ""));
    let bundle = env.p("server-ca.pem");
    let run = doctor(&env, &url, &["--live"], &[("AWS_CA_BUNDLE", &bundle)]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let host = url.trim_start_matches("https://");
    line(
        &run,
        "passed",
        3,
        &["proxy: none", "connects to localhost directly"],
    );
    line(
        &run,
        "passed",
        3,
        &[
            "host localhost: the endpoint's host resolves to ",
            "127.0.0.1",
        ],
    );
    line(
        &run,
        "passed",
        3,
        &[
            &format!("TLS with {host}: the server's certificate verifies with AWS_CA_BUNDLE file"),
            "server-ca.pem (it replaces the system roots) (1 root)",
        ],
    );
    line(
        &run,
        "passed",
        3,
        &["clock: this machine's clock reads", "agree within a minute"],
    );
    let l = line(
        &run,
        "passed",
        7,
        &[
            &format!("CreateSession at {url}/sessions: credentials issued for {ROLE}"),
            "access key id ",
            "expiring ",
        ],
    );
    // The key id's first characters only, and no secret at all.
    let shown = l.split("access key id ").nth(1).unwrap();
    assert_eq!(shown.find('…'), Some(4), "{l}");
    assert_eq!(emu.sessions_issued(), 1);
    let issued = emu
        .decisions()
        .into_iter()
        .filter(|d| d.status == 201)
        .count();
    assert_eq!(issued, 1);
    assert!(
        !run.stdout.to_lowercase().contains("secret"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("Token"), "{}", run.stdout);

    // --no-verify-ssl: the connection works, with a warning instead of the TLS line.
    let run = doctor(&env, &url, &["--live", "--no-verify-ssl"], &[]);
    line(
        &run,
        "warning",
        3,
        &["--no-verify-ssl: TLS certificate verification is off"],
    );
    line(&run, "passed", 7, &["credentials issued"]);
}

#[test]
fn live_tls_failure_names_the_trust_store_and_skips_create_session() {
    let env = Env::new();
    env.leaf("leaf");
    let (emu, url) = tls_emulator(&env, &env.config_toml("", "", ""));
    let host = url.trim_start_matches("https://").to_string();
    // Without the emulator's CA: the system store.
    let run = doctor(&env, &url, &["--live"], &[]);
    assert_eq!(run.code, 1);
    let l = line(
        &run,
        "failed",
        3,
        &[&format!(
            "TLS with {host}: the server certificate of {url}/sessions is not trusted"
        )],
    );
    assert!(l.contains("UnknownIssuer"), "{l}");
    assert!(l.contains("the trust store used: the system store"), "{l}");
    assert!(
        l.contains("fix: the server's certificate does not chain to a trusted root"),
        "{l}"
    );
    assert!(l.contains("AWS_CA_BUNDLE"), "{l}");
    line(
        &run,
        "skipped",
        3,
        &["clock: not compared", "did not answer"],
    );
    line(
        &run,
        "skipped",
        7,
        &["the endpoint cannot be reached (check 3)"],
    );
    // Another CA in AWS_CA_BUNDLE: that file, alone, is named.
    let other = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/vectors/root-ca.pem");
    let run = doctor(&env, &url, &["--live"], &[("AWS_CA_BUNDLE", other)]);
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        3,
        &[
            "is not trusted",
            &format!(
                "the trust store used: AWS_CA_BUNDLE file {other} (it replaces the system roots) (1 root)"
            ),
        ],
    );
    assert_eq!(emu.requests(), 0, "an untrusted server sees no request");
}

#[test]
fn live_refusals_name_the_check_that_explains_them() {
    let env = Env::new();
    env.leaf("leaf");
    // A disabled profile: the ARNs (check 3).
    let toml = env.config_toml("", "", "").replace(
        &format!("arn = \"{PROFILE}\"\nrole_arns = [\"{ROLE}\"]\nduration_seconds = 43200\naccept_role_session_name = true\nenabled = true"),
        &format!("arn = \"{PROFILE}\"\nrole_arns = [\"{ROLE}\"]\nduration_seconds = 43200\naccept_role_session_name = true\nenabled = false"),
    );
    assert!(toml.contains("enabled = false"), "{toml}");
    let emu = env.emulator_with(&toml, Tls::None);
    let run = doctor(&env, &emu.url(), &["--live"], &[]);
    assert_eq!(run.code, 1);
    line(
        &run,
        "skipped",
        3,
        &[
            "reachable over plain http (answered HTTP ",
            "no TLS to verify",
        ],
    );
    line(
        &run,
        "failed",
        7,
        &[
            &format!(
                "CreateSession at {}/sessions: CreateSession refused",
                emu.url()
            ),
            "is disabled",
            "fix: the trust anchor or profile is missing or disabled",
            "see check 3 (request: the ARNs)",
        ],
    );
    drop(emu);

    // A role the profile does not list: check 3 too.
    let emu = env.emulator();
    let run = doctor(
        &env,
        &emu.url(),
        &[
            "--live",
            "--role-arn",
            "arn:aws:iam::123456789012:role/other-role",
        ],
        &[],
    );
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        7,
        &["does not list role", "see check 3 (request: --role-arn"],
    );
    drop(emu);

    // A trust policy that wants another CN: check 5.
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],"Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"other-host"}}}]}"#;
    let toml = env.config_toml("", "", "").replace(
        "max_session_duration = 43200",
        &format!("max_session_duration = 43200\ntrust_policy = '''{policy}'''"),
    );
    let emu = env.emulator_with(&toml, Tls::None);
    let run = doctor(&env, &emu.url(), &["--live"], &[]);
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        7,
        &["Unable to assume role", "see check 5 (trust policy"],
    );
}

/// A local HTTP server whose `Date` is `skew` seconds off this machine's clock: any GET gets a
/// 404, a POST a credential set (so check 7 passes and only the clock is judged). Every
/// connection is read with a time limit.
fn skewed_server(skew: i64) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            if reader.read_line(&mut first).is_err() {
                continue;
            }
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            let now = time::OffsetDateTime::now_utc();
            let date = (now + time::Duration::seconds(skew))
                .format(time::macros::format_description!(
                    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                ))
                .unwrap();
            let (status, body) = if first.starts_with("POST ") {
                let expiration = (now + time::Duration::hours(1))
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                (
                    "201 Created",
                    format!(
                        r#"{{"credentialSet":[{{"credentials":{{"accessKeyId":"ASIAFAKEKEYID1234567","secretAccessKey":"fake-secret-Zq9w","sessionToken":"fake-token-Zq9w","expiration":"{expiration}"}}}}]}}"#
                    ),
                )
            } else {
                ("404 Not Found", String::new())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nDate: {date}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn clock_skew_against_the_endpoint_date() {
    let env = Env::new();
    env.leaf("leaf");
    // 10 minutes: failed, quoting both times.
    let url = skewed_server(600);
    let run = doctor(&env, &url, &["--live"], &[]);
    assert_eq!(run.code, 1);
    let l = line(
        &run,
        "failed",
        3,
        &[
            "clock: this machine's clock reads ",
            "and the endpoint's Date says ",
            " GMT: ",
            "behind, more than the 5 minutes the service allows",
            "fix: set this machine's clock right",
        ],
    );
    assert!(l.contains("Z and the endpoint"), "{l}");
    // The Date is whole seconds: 9 min 59 s or 10 min, however the second falls.
    assert!(l.contains(": 9 min 5") || l.contains(": 10 min"), "{l}");
    // 2 minutes ahead of the server: a warning; the (fake) CreateSession passes, nothing fails.
    let url = skewed_server(-120);
    let run = doctor(&env, &url, &["--live"], &[]);
    line(
        &run,
        "warning",
        3,
        &["clock: ", ": 2 min", "ahead; the service allows 5 minutes"],
    );
    let l = line(&run, "passed", 7, &["access key id ASIA…"]);
    assert!(
        !l.contains("FAKEKEY") && !run.stdout.contains("Zq9w"),
        "{}",
        run.stdout
    );
    assert!(lines(&run, "failed", 3).is_empty(), "{}", run.stdout);
    // In step: passed.
    let url = skewed_server(0);
    let run = doctor(&env, &url, &["--live"], &[]);
    line(&run, "passed", 3, &["clock: ", "agree within a minute"]);
}

#[test]
fn live_unresolvable_and_closed_endpoints_fail_at_their_step() {
    let env = Env::new();
    env.leaf("leaf");
    let run = doctor(
        &env,
        "https://rolesanywhere.invalid",
        &["--live", "--connect-timeout", "3"],
        &[],
    );
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        3,
        &[
            "host rolesanywhere.invalid: the endpoint's host does not resolve",
            "fix: check the host name",
        ],
    );
    line(&run, "skipped", 7, &["cannot be reached"]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = doctor(&env, &url, &["--live"], &[]);
    assert_eq!(run.code, 1);
    line(
        &run,
        "failed",
        3,
        &[&format!(
            "endpoint {url}/sessions: cannot reach {url}/sessions"
        )],
    );
    line(
        &run,
        "passed",
        3,
        &["host 127.0.0.1: the endpoint's host is an IP address"],
    );
}

#[test]
fn a_proxy_in_use_is_named_without_its_password() {
    let env = Env::new();
    env.leaf("leaf");
    // A proxy that is not there: the proxy is named, and connecting to it fails.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = format!("http://user:Zq9w@127.0.0.1:{port}");
    let run = doctor(
        &env,
        "https://rolesanywhere.us-east-1.amazonaws.com",
        &["--live"],
        &[("HTTPS_PROXY", &proxy)],
    );
    line(
        &run,
        "passed",
        3,
        &[
            &format!("proxy http://127.0.0.1:{port}: from HTTPS_PROXY"),
            "through it",
        ],
    );
    line(
        &run,
        "failed",
        3,
        &[&format!("proxy http://127.0.0.1:{port}: ")],
    );
    assert!(
        !run.stdout.contains("Zq9w") && !run.stdout.contains("user:"),
        "{}",
        run.stdout
    );
    // NO_PROXY exempting the host: direct.
    let emu = env.emulator();
    let run = doctor(
        &env,
        &emu.url(),
        &["--live"],
        &[("HTTP_PROXY", &proxy), ("NO_PROXY", "127.0.0.1")],
    );
    line(
        &run,
        "passed",
        3,
        &["proxy: none for 127.0.0.1: HTTP_PROXY is set but NO_PROXY=127.0.0.1 exempts it"],
    );
    line(&run, "passed", 7, &["credentials issued"]);
}

#[test]
fn live_create_session_waits_for_a_key_that_opens() {
    let env = Env::new();
    env.leaf("leaf");
    // A key that is not the certificate's: check 1 cannot open the identity, so check 7 has
    // nothing to sign with (the endpoint itself is fine).
    env.openssl_key(
        "other",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let emu = env.emulator();
    let run = doctor(
        &env,
        &emu.url(),
        &["--live", "--private-key", &env.p("other.key")],
        &[],
    );
    line(&run, "passed", 3, &["clock: ", "agree within a minute"]);
    line(
        &run,
        "skipped",
        7,
        &["CreateSession: not attempted: no key that opens and matches the certificate"],
    );
    assert_eq!(emu.sessions_issued(), 0);
}
