//! In-process server tests: requests signed in the test (independent signer in `support`) over HTTP
//! and HTTPS, every refusal reason with its status and error type, faults, and config errors.

mod support;

use std::path::Path;
use std::time::Duration;

use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::{Config, Settings};
use rolesanywhere_emulator::server::{self, Limits, Running, ServeOptions, Tls};
use support::*;

struct Env {
    _tmp: tempfile::TempDir,
    root: Ca,
    server: Running,
}

impl Env {
    fn host(&self) -> String {
        self.server
            .url()
            .rsplit('/')
            .next()
            .expect("host")
            .to_string()
    }
    /// A leaf `subject` with a new `key_type` key from an intermediate `ca_name` (in `inter/`) under
    /// the root, carrying that intermediate's chain.
    fn leaf_via_intermediate(&self, ca_name: &str, subject: &str, key_type: KeyType) -> Identity {
        let inter_dir = self._tmp.path().join("inter");
        let inter = self
            .root
            .intermediate(&inter_dir, ca_name)
            .expect("intermediate");
        let issued = inter
            .issue(&IssueRequest::new(subject, KeySource::NewKey(key_type)))
            .expect("issue");
        let chain = std::fs::read_to_string(inter_dir.join("chain.pem")).expect("chain.pem");
        identity(issued, Some(chain))
    }

    fn call(&self, id: &Identity, f: impl FnOnce(&mut Call)) -> Response {
        let mut call = Call::new(&self.host(), "{\"durationSeconds\":900}");
        f(&mut call);
        let signed = sign(id, &call);
        send(
            &self.server.url(),
            self.server.tls_ca_pem().as_deref(),
            &signed,
            Duration::from_secs(10),
        )
        .expect("request")
    }
}

fn start_with(
    tls: Tls,
    profile_extra: &str,
    anchor_extra: &str,
    tail: &str,
    prepare: impl FnOnce(&Path, &Ca),
) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    prepare(tmp.path(), &root);
    let toml = format!(
        "{}{tail}",
        config_toml(tmp.path(), profile_extra, anchor_extra)
    );
    serve(tmp, root, &toml, tls)
}

/// Serves the config `toml` (paths relative to `tmp`) on a free loopback port.
fn serve(tmp: tempfile::TempDir, root: Ca, toml: &str, tls: Tls) -> Env {
    let config = Config::from_toml_str(toml, tmp.path()).expect("config");
    let server = server::spawn(
        config,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls,
        },
    )
    .expect("spawn");
    Env {
        _tmp: tmp,
        root,
        server,
    }
}

fn start() -> Env {
    start_with(Tls::None, "", "", "", |_, _| {})
}

fn assert_refused(r: &Response, status: u16, error_type: &str, needle: &str) {
    assert_eq!(r.status, status, "body: {}", r.body);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some(error_type),
        "body: {}",
        r.body
    );
    let msg = r.json()["message"].as_str().expect("message").to_string();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

/// [`assert_refused`] with 403 AccessDeniedException.
fn assert_denied(r: &Response, needle: &str) {
    assert_refused(r, 403, "AccessDeniedException", needle);
}

#[test]
fn http_session_with_p256_key_is_issued_with_service_shaped_credentials() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "p256-client");
    let before = time::OffsetDateTime::now_utc();
    let r = env.call(&id, |_| {});
    assert_eq!(r.status, 201, "body: {}", r.body);
    let v = r.json();
    let set = &v["credentialSet"][0];
    let creds = &set["credentials"];
    let key_id = creds["accessKeyId"].as_str().expect("key id");
    assert!(key_id.starts_with("ASIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(creds["secretAccessKey"].as_str().expect("secret").len(), 40);
    assert!(creds["sessionToken"].as_str().expect("token").len() > 200);
    let exp = creds["expiration"].as_str().expect("expiration");
    assert_eq!(exp.len(), 20, "{exp}");
    let exp_t = time::OffsetDateTime::parse(exp, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    let granted = (exp_t - before).whole_seconds();
    assert!(
        (898..=902).contains(&granted),
        "expiration {exp} is {granted}s away"
    );
    assert_eq!(set["roleArn"], ROLE);
    assert_eq!(set["sourceIdentity"], "CN=p256-client");
    let serial_hex = format!(
        "{:032x}",
        id.serial_decimal.parse::<u128>().expect("16-byte serial")
    );
    assert_eq!(
        set["assumedRoleUser"]["arn"],
        format!("arn:aws:sts::123456789012:assumed-role/EmulatorRole/{serial_hex}")
    );
    assert!(
        v["subjectArn"]
            .as_str()
            .expect("subject")
            .starts_with("arn:aws:rolesanywhere:us-east-1:123456789012:subject/")
    );
    let d = env.server.decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, 201);
    assert_eq!(d[0].role_session_name.as_deref(), Some(serial_hex.as_str()));
    assert_eq!(d[0].duration_seconds, Some(900));
    assert_eq!(
        d[0].serial_decimal.as_deref(),
        Some(id.serial_decimal.as_str())
    );
}

/// Refresh tests need credentials shorter than the service's 900 s minimum, and a count of the
/// sets issued that the decision log's bound does not cut.
#[test]
fn credential_seconds_shortens_expiration_and_stats_count_sessions() {
    let mut env = start();
    let toml = format!(
        "{}[server]\ncredential_seconds = 70\n",
        config_toml(env._tmp.path(), "", "")
    );
    let settings = Settings::from_toml_str(&toml, env._tmp.path()).expect("settings");
    assert_eq!(settings.limits.credential_seconds, Some(70));
    env.server = server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    let id = leaf(&env.root, KeyType::EcP256, "short-lived");
    let expiry_in = |r: &Response| {
        let exp = r.json()["credentialSet"][0]["credentials"]["expiration"]
            .as_str()
            .expect("expiration")
            .to_string();
        let t = time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339)
            .expect("rfc3339");
        (t - time::OffsetDateTime::now_utc()).whole_seconds()
    };
    let r = env.call(&id, |_| {});
    assert_eq!(r.status, 201, "body: {}", r.body);
    assert!((68..=71).contains(&expiry_in(&r)), "{}", expiry_in(&r));
    // The granted duration is still what the request asked for.
    assert_eq!(env.server.decisions()[0].duration_seconds, Some(900));
    env.server.set_credential_seconds(None);
    let r = env.call(&id, |_| {});
    assert!((898..=901).contains(&expiry_in(&r)), "{}", expiry_in(&r));
    let r = env.call(&id, |c| c.corrupt_signature = true);
    assert_eq!(r.status, 403);
    assert_eq!(
        (env.server.requests(), env.server.sessions_issued()),
        (3, 2)
    );

    let stats = get(&format!("{}/_emulator/stats", env.server.url()));
    let v: serde_json::Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(v["sessions_issued"], 2, "{stats}");
    assert_eq!(v["requests"], 3, "{stats}");
    assert!(v["credential_seconds"].is_null(), "{stats}");
    assert_eq!(env.server.requests(), 3, "the stats request was counted");
    assert!(
        config_error("region = \"us-east-1\"\n[server]\ncredential_seconds = 0\n")
            .contains("server.credential_seconds: 0 is outside 1..43200")
    );
}

/// A plain HTTP/1.1 GET on loopback; the body.
fn get(url: &str) -> String {
    use std::io::{Read as _, Write as _};
    let hostport = url.trim_start_matches("http://");
    let (host, path) = hostport.split_once('/').expect("path");
    let mut s = std::net::TcpStream::connect(host).expect("connect");
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n").expect("body").1.to_string()
}

#[test]
fn https_session_with_rsa_key_through_intermediate_is_issued() {
    let env = start_with(Tls::SelfIssued { ca_out: None }, "", "", "", |_, _| {});
    assert!(env.server.url().starts_with("https://127.0.0.1:"));
    let id = env.leaf_via_intermediate("Test Intermediate", "CN=rsa-client", KeyType::Rsa2048);
    let r = env.call(&id, |_| {});
    assert_eq!(r.status, 201, "body: {}", r.body);

    let no_chain = Identity {
        chain_pem: None,
        ..id
    };
    let r = env.call(&no_chain, |_| {});
    assert_denied(&r, "Untrusted signing certificate");
}

#[test]
fn p384_and_p521_keys_are_accepted() {
    let env = start();
    for kind in [KeyType::EcP384, KeyType::EcP521] {
        let id = leaf(&env.root, kind, kind.name());
        let r = env.call(&id, |_| {});
        assert_eq!(r.status, 201, "{}: {}", kind.name(), r.body);
    }
}

#[test]
fn tampered_signature_is_refused_as_invalid_signature() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.corrupt_signature = true);
    assert_denied(&r, "Invalid signature");
    let d = env.server.decisions();
    assert_eq!(d[0].error_type.as_deref(), Some("AccessDeniedException"));
}

#[test]
fn wrong_serial_in_credential_is_refused() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.serial = Some("12345".into()));
    assert_denied(&r, "serial");
}

#[test]
fn stale_date_is_refused() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let old = (time::OffsetDateTime::now_utc() - time::Duration::minutes(6))
        .format(&fmt)
        .expect("fmt");
    let r = env.call(&id, |c| c.amz_date = old);
    assert_denied(&r, "x-amz-date");
}

#[test]
fn wrong_region_in_scope_is_refused() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.region = "eu-west-1".into());
    assert_denied(&r, "region");
}

#[test]
fn certificate_from_another_ca_is_untrusted() {
    let env = start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let other =
        Ca::init(&tmp.path().join("other"), KeyType::EcP256, "Test Root").expect("other CA");
    let id = leaf(&other, KeyType::EcP256, "c");
    let r = env.call(&id, |_| {});
    assert_denied(&r, "Untrusted signing certificate");
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let env = start();
    let now = time::OffsetDateTime::now_utc();
    for (nb, na, needle) in [
        (
            now - time::Duration::days(10),
            now - time::Duration::days(1),
            "expired",
        ),
        (
            now + time::Duration::days(1),
            now + time::Duration::days(10),
            "not valid before",
        ),
    ] {
        let mut req = IssueRequest::new("CN=timed", KeySource::NewKey(KeyType::EcP256));
        req.not_before = nb;
        req.not_after = na;
        let id = identity(env.root.issue(&req).expect("issue"), None);
        let r = env.call(&id, |_| {});
        assert_denied(&r, needle);
    }
}

#[test]
fn leaf_without_digital_signature_or_with_ca_true_is_refused() {
    let env = start();
    let mut req = IssueRequest::new("CN=nods", KeySource::NewKey(KeyType::EcP256));
    req.digital_signature = false;
    let id = identity(env.root.issue(&req).expect("issue"), None);
    assert_denied(&env.call(&id, |_| {}), "digitalSignature");
    let mut req = IssueRequest::new("CN=ca-leaf", KeySource::NewKey(KeyType::EcP256));
    req.is_ca = true;
    let id = identity(env.root.issue(&req).expect("issue"), None);
    assert_denied(&env.call(&id, |_| {}), "CA");
}

#[test]
fn revoked_certificate_is_refused_and_others_still_pass() {
    let mut revoked_id = None;
    let mut good_id = None;
    let env = start_with(Tls::None, "", "crls = [\"root/crl.pem\"]", "", |dir, _| {
        let root = Ca::load(&dir.join("root")).expect("load");
        let bad = leaf(&root, KeyType::EcP256, "revoked");
        root.revoke(&bad.cert_pem).expect("revoke");
        revoked_id = Some(bad);
        good_id = Some(leaf(&root, KeyType::EcP256, "good"));
    });
    let r = env.call(&revoked_id.expect("revoked"), |_| {});
    assert_denied(&r, "revoked");
    let r = env.call(&good_id.expect("good"), |_| {});
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn role_session_name_needs_accept_role_session_name() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| {
        c.body = "{\"durationSeconds\":900,\"roleSessionName\":\"my-session\"}".into()
    });
    assert_denied(&r, "Not authorized to set roleSessionName");

    let env = start_with(
        Tls::None,
        "accept_role_session_name = true",
        "",
        "",
        |_, _| {},
    );
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| {
        c.body = "{\"durationSeconds\":900,\"roleSessionName\":\"my-session\"}".into()
    });
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.json()["credentialSet"][0]["assumedRoleUser"]["arn"]
            .as_str()
            .expect("arn")
            .ends_with("/my-session")
    );
    assert_eq!(
        env.server.decisions()[0].role_session_name.as_deref(),
        Some("my-session")
    );
}

#[test]
fn duration_outside_limits_is_a_validation_error() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    for (body, needle) in [
        ("{\"durationSeconds\":899}", "900..43200"),
        ("{\"durationSeconds\":43201}", "900..43200"),
        ("{\"durationSeconds\":3601}", "profile"),
        ("{\"durationSeconds\":\"x\"}", "whole number"),
        ("not json", "not JSON"),
    ] {
        let r = env.call(&id, |c| c.body = body.into());
        assert_refused(&r, 400, "ValidationException", needle);
    }
    let r = env.call(&id, |c| c.body = "{}".into());
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        env.server
            .decisions()
            .last()
            .and_then(|d| d.duration_seconds),
        Some(3600)
    );
}

#[test]
fn duration_above_role_maximum_is_a_validation_error() {
    // The profile allows 43200 here so that the role's 7200 is the binding limit.
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root");
    let toml = config_toml(tmp.path(), "", "")
        .replace("duration_seconds = 3600", "duration_seconds = 43200");
    let env = serve(tmp, root, &toml, Tls::None);
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.body = "{\"durationSeconds\":7201}".into());
    assert_refused(&r, 400, "ValidationException", "role's maximum");
    let r = env.call(&id, |c| c.body = "{\"durationSeconds\":7200}".into());
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn unknown_anchor_or_profile_is_not_found_and_unlisted_role_is_denied() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.query[2].1 = ANCHOR.replace("1111", "9999"));
    assert_refused(&r, 404, "ResourceNotFoundException", "trust anchor");
    let r = env.call(&id, |c| c.query[0].1 = PROFILE.replace("6666", "9999"));
    assert_refused(&r, 404, "ResourceNotFoundException", "profile");
    let r = env.call(&id, |c| {
        c.query[1].1 = "arn:aws:iam::123456789012:role/Other".into()
    });
    assert_denied(&r, "does not list role");
    let r = env.call(&id, |c| c.query.truncate(2));
    assert_refused(&r, 400, "ValidationException", "trustAnchorArn");
}

#[test]
fn arns_in_the_json_body_are_accepted() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| {
        c.query.clear();
        c.body = serde_json::json!({"durationSeconds": 900, "profileArn": PROFILE, "roleArn": ROLE, "trustAnchorArn": ANCHOR}).to_string();
    });
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn disabled_anchor_and_profile_are_denied() {
    let env = start_with(Tls::None, "", "enabled = false", "", |_, _| {});
    let id = leaf(&env.root, KeyType::EcP256, "c");
    assert_denied(&env.call(&id, |_| {}), "disabled");
    let env = start_with(Tls::None, "enabled = false", "", "", |_, _| {});
    let id = leaf(&env.root, KeyType::EcP256, "c");
    assert_denied(&env.call(&id, |_| {}), "disabled");
}

#[test]
fn status_faults_apply_in_order_then_requests_succeed() {
    let tail = "[[faults]]\nkind = \"status\"\nstatus = 503\ntimes = 2\n[[faults]]\nkind = \"status\"\nstatus = 429\n";
    let env = start_with(Tls::None, "", "", tail, |_, _| {});
    let id = leaf(&env.root, KeyType::EcP256, "c");
    assert_refused(
        &env.call(&id, |_| {}),
        503,
        "ServiceUnavailableException",
        "injected",
    );
    assert_refused(
        &env.call(&id, |_| {}),
        503,
        "ServiceUnavailableException",
        "injected",
    );
    assert_refused(
        &env.call(&id, |_| {}),
        429,
        "ThrottlingException",
        "injected",
    );
    assert_eq!(env.call(&id, |_| {}).status, 201);
    let statuses: Vec<u16> = env.server.decisions().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [503, 503, 429, 201]);
}

#[test]
fn malformed_body_fault_answers_201_with_invalid_json() {
    let env = start_with(
        Tls::None,
        "",
        "",
        "[[faults]]\nkind = \"malformed-body\"\n",
        |_, _| {},
    );
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |_| {});
    assert_eq!(r.status, 201);
    assert!(
        serde_json::from_str::<serde_json::Value>(&r.body).is_err(),
        "{}",
        r.body
    );
    assert_eq!(env.call(&id, |_| {}).status, 201);
}

#[test]
fn hang_fault_never_answers_and_server_still_stops() {
    let env = start_with(
        Tls::None,
        "",
        "",
        "[[faults]]\nkind = \"hang\"\n",
        |_, _| {},
    );
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let call = Call::new(&env.host(), "{}");
    let started = std::time::Instant::now();
    let r = send(
        &env.server.url(),
        None,
        &sign(&id, &call),
        Duration::from_millis(700),
    );
    assert!(r.is_err(), "a hang fault answered");
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(env.server.decisions()[0].status, 0);
    assert_eq!(env.call(&id, |_| {}).status, 201);
    drop(env);
}

#[test]
fn unknown_path_is_not_an_operation() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let mut signed = sign(&id, &Call::new(&env.host(), "{}"));
    signed.path_and_query = signed.path_and_query.replace("/sessions", "/other");
    let r = send(&env.server.url(), None, &signed, Duration::from_secs(5)).expect("send");
    assert_refused(&r, 404, "UnknownOperationException", "POST /sessions");
}

#[test]
fn self_issued_tls_ca_is_written_for_aws_ca_bundle() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("tls-ca.pem");
    let env = start_with(
        Tls::SelfIssued {
            ca_out: Some(out.clone()),
        },
        "",
        "",
        "",
        |_, _| {},
    );
    let written = std::fs::read_to_string(&out).expect("ca_out written");
    assert_eq!(Some(written), env.server.tls_ca_pem());
    let id = leaf(&env.root, KeyType::EcP256, "c");
    assert_eq!(env.call(&id, |_| {}).status, 201);
}

fn config_error(toml: &str) -> String {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root");
    let toml = toml.replace(
        "ROOT",
        &tmp.path().join("root/ca.pem").display().to_string(),
    );
    format!(
        "{:#}",
        Config::from_toml_str(&toml, tmp.path()).expect_err("config must be refused")
    )
}

#[test]
fn config_errors_name_the_key_and_the_problem() {
    let base = "region = \"us-east-1\"\n";
    let anchor = format!("[[trust_anchors]]\narn = \"{ANCHOR}\"\ncertificates = \"ROOT\"\n");
    let cases = [
        (format!("{base}colour = 1\n"), "colour"),
        ("region = \"nowhere\"\n".to_string(), "region"),
        (
            format!(
                "{base}[[profiles]]\narn = \"{PROFILE}\"\nrole_arns = []\nduration_seconds = 100\n"
            ),
            "profiles[0].duration_seconds",
        ),
        (
            format!("{base}[[faults]]\nkind = \"explode\"\n"),
            "faults[0].kind",
        ),
        (
            format!("{base}[[faults]]\nkind = \"status\"\n"),
            "faults[0].status",
        ),
        (
            format!(
                "{base}[[trust_anchors]]\narn = \"{ANCHOR}\"\ncertificates = \"missing.pem\"\n"
            ),
            "trust_anchors[0].certificates",
        ),
        (
            format!("{base}[[trust_anchors]]\narn = \"not-an-arn\"\ncertificates = \"ROOT\"\n"),
            "trust_anchors[0].arn",
        ),
        (
            format!("{base}{anchor}crls = [\"missing-crl.pem\"]\n"),
            "trust_anchors[0].crls[0]",
        ),
        (
            format!("{base}[[roles]]\narn = \"{ROLE}\"\nmax_session_duration = 60\n"),
            "roles[0].max_session_duration",
        ),
        (
            format!("{base}[server]\nmax_connections = 0\n"),
            "server.max_connections",
        ),
        (
            format!("{base}[server]\nidle_timeout_seconds = 0\n"),
            "server.idle_timeout_seconds",
        ),
        (
            format!("{base}[server]\nrequest_timeout_seconds = 1e9\n"),
            "server.request_timeout_seconds",
        ),
        (
            format!("{base}[server]\ndecisions_kept = 2000000\n"),
            "server.decisions_kept",
        ),
        (format!("{base}[server]\nbacklog = 5\n"), "backlog"),
    ];
    for (toml, key) in cases {
        let msg = config_error(&toml);
        assert!(msg.contains(key), "error {msg:?} does not name {key}");
    }
}

#[test]
fn crl_not_signed_by_the_anchor_is_a_config_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root");
    let other = Ca::init(&tmp.path().join("other"), KeyType::EcP256, "Other Root").expect("other");
    let victim = leaf(&other, KeyType::EcP256, "v");
    other.revoke(&victim.cert_pem).expect("revoke");
    let toml = config_toml(tmp.path(), "", "crls = [\"other/crl.pem\"]");
    let msg = format!(
        "{:#}",
        Config::from_toml_str(&toml, tmp.path()).expect_err("foreign CRL")
    );
    assert!(
        msg.contains("not signed by a certificate of this trust anchor"),
        "{msg}"
    );
}

#[test]
fn algorithm_that_does_not_fit_the_key_is_refused() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.algorithm = Some("AWS4-X509-RSA-SHA256".into()));
    assert_denied(&r, "does not fit");
    let r = env.call(&id, |c| c.algorithm = Some("AWS4-HMAC-SHA256".into()));
    assert_denied(&r, "unsupported signing algorithm");
}

#[test]
fn each_required_header_must_be_signed() {
    let env = start();
    let id = env.leaf_via_intermediate("I", "CN=c", KeyType::EcP256);
    for name in [
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-x509",
        "x-amz-x509-chain",
    ] {
        let r = env.call(&id, |c| c.unsigned = vec![name.to_string()]);
        assert_denied(&r, &format!("do not include {name}"));
    }
    assert_eq!(env.call(&id, |_| {}).status, 201);
}

#[test]
fn more_than_five_intermediates_are_refused() {
    let env = start();
    let mut cas = vec![
        env.root
            .intermediate(&env._tmp.path().join("i0"), "I0")
            .expect("i0"),
    ];
    for i in 1..6 {
        let dir = env._tmp.path().join(format!("i{i}"));
        let next = cas[i - 1]
            .intermediate(&dir, &format!("I{i}"))
            .expect("intermediate");
        cas.push(next);
    }
    let chain6 = std::fs::read_to_string(env._tmp.path().join("i5/chain.pem")).expect("chain");
    assert_eq!(der_of(&chain6).len(), 6);
    let issued = cas[5]
        .issue(&IssueRequest::new(
            "CN=deep",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .expect("issue");
    let id = identity(issued, Some(chain6));
    assert_refused(
        &env.call(&id, |_| {}),
        400,
        "ValidationException",
        "at most 5",
    );

    let chain5 = std::fs::read_to_string(env._tmp.path().join("i4/chain.pem")).expect("chain");
    let issued = cas[4]
        .issue(&IssueRequest::new(
            "CN=five",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .expect("issue");
    let id = identity(issued, Some(chain5));
    assert_eq!(env.call(&id, |_| {}).status, 201);
}

#[test]
fn sha1_signed_leaf_is_refused() {
    let env = start();
    let dir = env._tmp.path();
    let key = dir.join("sha1.key");
    let csr = dir.join("sha1.csr");
    let cert = dir.join("sha1.pem");
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n",
    )
    .expect("ext");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let s = |p: &Path| p.to_str().expect("utf-8").to_string();
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &s(&key),
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        &s(&key),
        "-subj",
        "/CN=sha1",
        "-out",
        &s(&csr),
    ]);
    let sign_with = |digest: &str, serial: &str| {
        run(&[
            "x509",
            "-req",
            digest,
            "-in",
            &s(&csr),
            "-CA",
            &s(&dir.join("root/ca.pem")),
            "-CAkey",
            &s(&dir.join("root/ca.key")),
            "-set_serial",
            serial,
            "-days",
            "2",
            "-extfile",
            &s(&ext),
            "-out",
            &s(&cert),
        ]);
        Identity {
            cert_pem: std::fs::read_to_string(&cert).expect("cert"),
            chain_pem: None,
            key_pem: std::fs::read_to_string(&key).expect("key"),
            serial_decimal: serial.to_string(),
        }
    };
    let id = sign_with("-sha1", "4242");
    assert_denied(&env.call(&id, |_| {}), "sha-256 or stronger");
    // The same openssl path with SHA-256 is accepted: the refusal above is about the hash alone.
    let id = sign_with("-sha256", "4243");
    assert_eq!(env.call(&id, |_| {}).status, 201);
}

#[test]
fn debug_output_never_shows_private_keys() {
    let env = start();
    let issued = env
        .root
        .issue(&IssueRequest::new(
            "CN=c",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .expect("issue");
    let key_pem = issued.key_pem.clone().expect("key");
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for shown in [format!("{issued:?}"), format!("{:?}", env.root)] {
        assert!(
            !shown.contains(&body[..40]) && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
    }
}

#[test]
fn https_with_certificate_and_key_files_serves_that_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let tls_ca = Ca::init(&tmp.path().join("tls-ca"), KeyType::EcP384, "TLS CA").expect("tls ca");
    let mut req = IssueRequest::new("CN=localhost", KeySource::NewKey(KeyType::EcP256));
    req.sans = vec!["ip:127.0.0.1".into(), "dns:localhost".into()];
    let issued = tls_ca.issue(&req).expect("server cert");
    let cert = tmp.path().join("server.pem");
    let key = tmp.path().join("server.key");
    std::fs::write(&cert, &issued.cert_pem).expect("write cert");
    std::fs::write(&key, issued.key_pem.as_deref().expect("key")).expect("write key");
    let env = start_with(Tls::Files { cert, key }, "", "", "", |_, _| {});
    assert!(env.server.tls_ca_pem().is_none());
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let signed = sign(&id, &Call::new(&env.host(), "{}"));
    let r = send(
        &env.server.url(),
        Some(&tls_ca.cert_pem()),
        &signed,
        Duration::from_secs(10),
    )
    .expect("https");
    assert_eq!(r.status, 201, "{}", r.body);
    // A client trusting another CA must fail the handshake.
    assert!(
        send(
            &env.server.url(),
            Some(&env.root.cert_pem()),
            &signed,
            Duration::from_secs(10)
        )
        .is_err()
    );
}

#[test]
fn tls_key_file_that_is_not_a_key_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cert = tmp.path().join("c.pem");
    let key = tmp.path().join("k.pem");
    std::fs::write(&cert, "not a cert").expect("write");
    std::fs::write(&key, "not a key").expect("write");
    let config = Config::from_toml_str("region = \"us-east-1\"\n", tmp.path()).expect("config");
    let err = server::spawn(
        config,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::Files {
                cert: cert.clone(),
                key,
            },
        },
    )
    .expect_err("bad tls files");
    assert!(
        format!("{err:#}").contains(&cert.display().to_string()),
        "{err:#}"
    );
}

#[test]
fn http2_request_carries_host_in_authority_and_is_accepted() {
    // HTTP/2 has no Host header; the signed host must be read from :authority (curl speaks h2 via ALPN).
    let env = start_with(Tls::SelfIssued { ca_out: None }, "", "", "", |_, _| {});
    let ca = env._tmp.path().join("tls-ca.pem");
    std::fs::write(&ca, env.server.tls_ca_pem().expect("tls ca")).expect("write ca");
    let id = leaf(&env.root, KeyType::EcP256, "h2");
    let signed = sign(&id, &Call::new(&env.host(), "{\"durationSeconds\":900}"));
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["--silent", "--show-error", "--http2", "--cacert"])
        .arg(&ca);
    cmd.args(["--write-out", "\n%{http_version} %{http_code}"]);
    for (n, v) in signed.headers.iter().filter(|(n, _)| n != "host") {
        cmd.args(["-H", &format!("{n}: {v}")]);
    }
    cmd.args(["--data-binary", &signed.body]);
    cmd.arg(format!("{}{}", env.server.url(), signed.path_and_query));
    let out = cmd.output().expect("curl is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.trim_end().ends_with("2 201"),
        "curl: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn headers_signed_out_of_order_are_an_invalid_signature() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let r = env.call(&id, |c| c.reverse_signed_headers = true);
    assert_denied(&r, "Invalid signature");
}

#[test]
fn leaves_from_p384_and_rsa_roots_are_accepted() {
    // P-384 roots sign with ecdsa-with-SHA384 and RSA roots with sha256WithRSAEncryption: both
    // certificate-signature paths of the verifier are exercised.
    for root_type in [KeyType::EcP384, KeyType::Rsa2048] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Ca::init(&tmp.path().join("root"), root_type, "Root").expect("root");
        let toml = config_toml(tmp.path(), "", "");
        let env = serve(tmp, root, &toml, Tls::None);
        let id = leaf(&env.root, KeyType::EcP256, "c");
        let r = env.call(&id, |_| {});
        assert_eq!(r.status, 201, "{}: {}", root_type.name(), r.body);
    }
}

#[test]
fn server_table_sets_the_limits_and_decisions_kept_bounds_the_log() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root");
    let toml = format!(
        "{}[server]\nmax_connections = 7\nhandshake_timeout_seconds = 2\nrequest_timeout_seconds = 1.5\nidle_timeout_seconds = 0.25\ndecisions_kept = 3\n",
        config_toml(tmp.path(), "", "")
    );
    let settings = Settings::from_toml_str(&toml, tmp.path()).expect("settings");
    assert_eq!(
        settings.limits,
        Limits {
            max_connections: 7,
            handshake_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(1500),
            idle_timeout: Duration::from_millis(250),
            decisions_kept: 3,
            credential_seconds: None,
            throttle: Default::default(),
        }
    );
    assert_eq!(
        Settings::from_toml_str(&config_toml(tmp.path(), "", ""), tmp.path())
            .expect("settings")
            .limits,
        Limits::default()
    );
    let server = server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    assert_eq!(server.max_connections(), 7);
    let env = Env {
        _tmp: tmp,
        root,
        server,
    };
    let id = leaf(&env.root, KeyType::EcP256, "c");
    for _ in 0..4 {
        assert_eq!(env.call(&id, |c| c.region = "eu-west-1".into()).status, 403);
    }
    assert_eq!(env.call(&id, |_| {}).status, 201);
    let kept: Vec<u16> = env.server.decisions().iter().map(|d| d.status).collect();
    assert_eq!(kept, [403, 403, 201]);
}

#[test]
fn oversized_body_is_refused_with_413() {
    let env = start();
    let id = leaf(&env.root, KeyType::EcP256, "c");
    let big = format!(
        "{{\"durationSeconds\":900,\"pad\":\"{}\"}}",
        "x".repeat(70 * 1024)
    );
    let r = env.call(&id, |c| c.body = big);
    assert_refused(&r, 413, "ValidationException", "larger than 65536 bytes");
}
