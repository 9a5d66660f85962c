//! End-to-end tests of `serve`: the binary against the in-process emulator, read by real clients
//! (botocore through IMDS and through the container provider) and by raw HTTP for every error case;
//! SIGTERM with a request in flight; refresh, outage and recovery with short-lived credentials,
//! counted by the emulator.

mod common;

use common::*;
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Limits, Running, ServeOptions, Tls};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const ROLE_NAME: &str = "test-role";
const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// A running `serve`: its stdout lines (the environment), its stderr so far, its address.
struct Serve {
    child: Child,
    vars: Vec<(String, String)>,
    stderr: Arc<Mutex<String>>,
    addr: SocketAddr,
}

impl Serve {
    /// Starts `serve --port 0` for leaf.pem/leaf.key against `url` plus `extra`, and waits for the
    /// environment lines (`lines` of them).
    fn start(env: &Env, url: &str, extra: &[&str], lines: usize) -> Serve {
        let mut args = env.credential_args(url, "leaf", &["--port", "0"]);
        args[0] = "serve".into();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = env.cmd(&args, &[]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
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
        let (tx, rx) = mpsc::channel();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            let mut line = String::new();
            while out.read_line(&mut line).is_ok_and(|n| n > 0) {
                let _ = tx.send(line.clone());
                line.clear();
            }
        });
        let mut vars = Vec::new();
        while vars.len() < lines {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| {
                    let _ = child.kill();
                    panic!("no environment line; stderr:\n{}", stderr.lock().unwrap())
                });
            let (k, v) = line.trim_end_matches('\n').split_once('=').unwrap();
            vars.push((k.to_string(), v.to_string()));
        }
        let endpoint = vars
            .iter()
            .find(|(k, _)| {
                k == "AWS_EC2_METADATA_SERVICE_ENDPOINT"
                    || k == "AWS_CONTAINER_CREDENTIALS_FULL_URI"
            })
            .unwrap()
            .1
            .clone();
        let hostport = endpoint
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap();
        Serve {
            child,
            vars,
            stderr,
            addr: hostport.parse().unwrap(),
        }
    }

    fn var(&self, name: &str) -> &str {
        &self.vars.iter().find(|(k, _)| k == name).unwrap().1
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the exit status (killing the process after `limit` and failing).
    fn wait(&mut self, limit: Duration) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "serve still running; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer: status, head (lower-cased), body.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim())
        })
    }
}

/// Reads one answer from `s` (framed by Content-Length).
fn read_answer(s: &mut TcpStream) -> Answer {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert_eq!(
            n,
            1,
            "connection closed in the head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let mut a = Answer {
        status,
        head,
        body: String::new(),
    };
    let len: usize = a.header("content-length").unwrap().parse().unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    a.body = String::from_utf8(body).unwrap();
    a
}

/// Sends `raw` on a new connection and reads one answer.
fn exchange(addr: SocketAddr, raw: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    read_answer(&mut s)
}

fn put_token(addr: SocketAddr, ttl: &str) -> Answer {
    exchange(
        addr,
        &format!(
            "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n\r\n"
        ),
    )
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Answer {
    let token = token
        .map(|t| format!("X-aws-ec2-metadata-token: {t}\r\n"))
        .unwrap_or_default();
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\n{token}\r\n"),
    )
}

fn token(addr: SocketAddr) -> String {
    let a = put_token(addr, "21600");
    assert_eq!(a.status, 200, "{a:?}");
    a.body
}

/// Asserts an EC2-shaped credentials body (keys in EC2's order, no empty field, not expired) and
/// returns it parsed.
fn assert_imds_credentials(body: &str) -> serde_json::Value {
    let mut at = 0;
    for k in [
        "Code",
        "LastUpdated",
        "Type",
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
    ] {
        let pos = body[at..]
            .find(&format!("\"{k}\":"))
            .unwrap_or_else(|| panic!("{k} missing or out of order in {body}"));
        at += pos;
    }
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 7, "{body}");
    assert_eq!(v["Code"], "Success");
    assert_eq!(v["Type"], "AWS-HMAC");
    for k in ["AccessKeyId", "SecretAccessKey", "Token"] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} in {body}"
        );
    }
    assert!(v["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    for k in ["LastUpdated", "Expiration"] {
        let t = v[k].as_str().unwrap();
        assert!(t.len() == 20 && t.ends_with('Z'), "{k} {t}");
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap();
    }
    let expires = time::OffsetDateTime::parse(
        v["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires > time::OffsetDateTime::now_utc(), "expired: {body}");
    v
}

fn have_botocore() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import botocore.session"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || !hsm_tests::required(),
        "python3 with botocore is required"
    );
    ok
}

/// botocore's default chain in a clean environment plus `vars`: the credentials it resolves and
/// which provider found them.
fn botocore(env: &Env, vars: &[(&str, &str)]) -> serde_json::Value {
    let script = "import json, botocore.session\n\
                  s = botocore.session.get_session()\n\
                  c = s.get_credentials()\n\
                  f = c.get_frozen_credentials()\n\
                  print(json.dumps({'method': c.method, 'key': f.access_key, 'secret': f.secret_key, \
                  'token': f.token}))";
    let mut all = vec![
        ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ];
    all.extend_from_slice(vars);
    let run = env.run_program("python3", &["-c", script], &all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap()
}

/// botocore finds the served credentials through IMDS (the endpoint written with and without its
/// trailing slash) and through the container provider (full URI + token file); every client sees
/// the one set the emulator issued (one CreateSession).
#[test]
fn botocore_reads_the_credentials_through_imds_and_the_container_endpoint() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let token_file = env.path("run/token");
    std::fs::create_dir(env.path("run")).unwrap();
    let serve = Serve::start(
        &env,
        &emu.url(),
        &["--container-token-file", &path_str(&token_file)],
        3,
    );
    let endpoint = serve.var("AWS_EC2_METADATA_SERVICE_ENDPOINT").to_string();
    assert_eq!(endpoint, format!("http://{}/", serve.addr));
    assert_eq!(
        serve.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        format!("http://{}/v1/credentials", serve.addr)
    );
    assert_eq!(
        serve.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        path_str(&token_file)
    );
    let file_token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(file_token.len(), 64);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let raw = get(
        serve.addr,
        &format!("{CREDS}{ROLE_NAME}"),
        Some(&token(serve.addr)),
    );
    assert_eq!(raw.status, 200, "{raw:?}");
    let served = assert_imds_credentials(&raw.body);

    if !have_botocore() {
        return;
    }
    let without_slash = endpoint.trim_end_matches('/').to_string();
    for e in [endpoint.as_str(), without_slash.as_str()] {
        let got = botocore(&env, &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", e)]);
        assert_eq!(got["method"], "iam-role", "{e}");
        assert_eq!(got["key"], served["AccessKeyId"], "{e}");
        assert_eq!(got["secret"], served["SecretAccessKey"], "{e}");
        assert_eq!(got["token"], served["Token"], "{e}");
    }
    let got = botocore(
        &env,
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                serve.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
            ),
            (
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
                serve.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_eq!(got["method"], "container-role");
    assert_eq!(got["key"], served["AccessKeyId"]);
    assert_eq!(got["secret"], served["SecretAccessKey"]);
    assert_eq!(got["token"], served["Token"]);
    assert_eq!(
        emu.sessions_issued(),
        1,
        "one CreateSession for every client"
    );
    let stderr = serve.stderr.lock().unwrap().clone();
    for secret in [
        file_token.as_str(),
        served["SecretAccessKey"].as_str().unwrap(),
        served["Token"].as_str().unwrap(),
    ] {
        assert!(!stderr.contains(secret), "a secret in stderr:\n{stderr}");
    }
}

/// Every IMDS and container error case, at the HTTP level.
#[test]
fn imds_and_container_error_cases_at_the_http_level() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let token_file = env.path("token");
    std::fs::write(&token_file, "c".repeat(40)).unwrap();
    let serve = Serve::start(
        &env,
        &emu.url(),
        &["--container-token-file", &path_str(&token_file)],
        3,
    );
    let a = serve.addr;

    // Token TTL: missing, zero, too long, not a number → 400; in range → the token and the header.
    for ttl in [
        None,
        Some("0"),
        Some("21601"),
        Some("abc"),
        Some("-1"),
        Some(""),
    ] {
        let head = ttl
            .map(|t| format!("X-aws-ec2-metadata-token-ttl-seconds: {t}\r\n"))
            .unwrap_or_default();
        let r = exchange(a, &format!("PUT /latest/api/token HTTP/1.1\r\n{head}\r\n"));
        assert_eq!(r.status, 400, "{ttl:?}: {r:?}");
    }
    let r = put_token(a, "21600");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert_eq!(r.body.len(), 43);
    let tok = r.body;
    assert_ne!(token(a), tok, "tokens are random");
    // Refused through a proxy; a versioned path is 403 as on EC2; GET of the token path is 405.
    let r = exchange(
        a,
        "PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n",
    );
    assert_eq!(r.status, 403, "{r:?}");
    let r = exchange(
        a,
        "PUT /2021-03-23/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
    );
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(get(a, "/latest/api/token", Some(&tok)).status, 405);

    // GETs: no token, unknown token → 401; the role name without a newline, with the TTL header.
    assert_eq!(get(a, CREDS, None).status, 401);
    assert_eq!(get(a, CREDS, Some("nope")).status, 401);
    assert_eq!(get(a, "/latest/meta-data/", None).status, 401);
    let r = get(a, CREDS, Some(&tok));
    assert_eq!((r.status, r.body.as_str()), (200, ROLE_NAME));
    let left: u64 = r
        .header("x-aws-ec2-metadata-token-ttl-seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!((21590..=21600).contains(&left), "{left}");
    assert_eq!(
        get(a, CREDS.trim_end_matches('/'), Some(&tok)).body,
        ROLE_NAME
    );
    // The credentials with and without a trailing slash, and with doubled slashes: no redirect.
    let mut ids = Vec::new();
    for path in [
        format!("{CREDS}{ROLE_NAME}"),
        format!("{CREDS}{ROLE_NAME}/"),
        format!("//latest//meta-data/iam/security-credentials//{ROLE_NAME}"),
    ] {
        let r = get(a, &path, Some(&tok));
        assert_eq!(r.status, 200, "{path}: {r:?}");
        ids.push(assert_imds_credentials(&r.body)["AccessKeyId"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        get(a, &format!("{CREDS}other-role"), Some(&tok)).status,
        404
    );
    assert_eq!(get(a, "/latest/meta-data/ami-id", Some(&tok)).status, 404);
    let r = exchange(
        a,
        &format!("DELETE {CREDS} HTTP/1.1\r\nX-aws-ec2-metadata-token: {tok}\r\n\r\n"),
    );
    assert_eq!(r.status, 405);
    // A token expires after its TTL.
    let short = put_token(a, "1").body;
    assert_eq!(get(a, CREDS, Some(&short)).status, 200);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(get(a, CREDS, Some(&short)).status, 401);

    // Container endpoint: no Authorization 401, a wrong one 403, the file's 200 with AccountId.
    let c = |auth: Option<&str>| {
        let auth = auth
            .map(|t| format!("Authorization: {t}\r\n"))
            .unwrap_or_default();
        exchange(
            a,
            &format!("GET /v1/credentials HTTP/1.1\r\nAccept: application/json\r\n{auth}\r\n"),
        )
    };
    assert_eq!(c(None).status, 401);
    assert_eq!(c(Some(&"d".repeat(40))).status, 403);
    assert_eq!(c(Some(&"c".repeat(39))).status, 403);
    let r = c(Some(&"c".repeat(40)));
    assert_eq!(r.status, 200, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["AccountId"], "123456789012");
    assert_eq!(v["AccessKeyId"], ids[0]);
    assert_eq!(v.as_object().unwrap().len(), 5, "{}", r.body);

    // Limits: a huge head, a long request line, too many headers, chunked bodies; each answered
    // and the connection closed.
    let big = format!(
        "GET {CREDS} HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000));
    let many = format!("GET {CREDS} HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(65));
    for (raw, status) in [
        (big.as_str(), 431),
        (long.as_str(), 414),
        (many.as_str(), 431),
        (
            "PUT /latest/api/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            501,
        ),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("NONSENSE\r\n\r\n", 400),
    ] {
        let mut s = TcpStream::connect(a).unwrap();
        let _ = s.write_all(raw.as_bytes());
        let r = read_answer(&mut s);
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.header("connection"), Some("close"));
        let mut rest = Vec::new();
        assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);
    }

    // Keep-alive: several requests on one connection, pipelined too.
    let mut s = TcpStream::connect(a).unwrap();
    let one = format!("GET {CREDS} HTTP/1.1\r\nX-aws-ec2-metadata-token: {tok}\r\n\r\n");
    s.write_all(one.repeat(3).as_bytes()).unwrap();
    for _ in 0..3 {
        assert_eq!(read_answer(&mut s).body, ROLE_NAME);
    }
    s.write_all(one.as_bytes()).unwrap();
    assert_eq!(read_answer(&mut s).body, ROLE_NAME);
    assert_eq!(emu.sessions_issued(), 1);
}

/// A non-loopback listener serves only the container endpoint; no IMDS there.
#[test]
fn a_non_loopback_listener_serves_only_the_container_endpoint() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let token_file = env.path("token");
    // A wildcard address is not loopback (connections reach it on 127.0.0.1 all the same).
    let serve = Serve::start(
        &env,
        &emu.url(),
        &[
            "--listen",
            "0.0.0.0:0",
            "--container-token-file",
            &path_str(&token_file),
        ],
        2,
    );
    let port = serve.addr.port();
    assert!(
        serve
            .vars
            .iter()
            .all(|(k, _)| k != "AWS_EC2_METADATA_SERVICE_ENDPOINT")
    );
    let a: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(put_token(a, "60").status, 404);
    let tok = std::fs::read_to_string(&token_file).unwrap();
    let r = exchange(
        a,
        &format!("GET /v1/credentials HTTP/1.1\r\nAuthorization: {tok}\r\n\r\n"),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

/// `--listen` on IPv6 loopback serves IMDS; bad values and `--hop-limit 0` are usage errors.
#[test]
fn listen_takes_ipv6_and_bad_values_are_usage_errors() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        let serve = Serve::start(
            &env,
            &emu.url(),
            &["--listen", "[::1]:0", "--hop-limit", "1"],
            1,
        );
        assert!(serve.addr.is_ipv6());
        let t = token(serve.addr);
        assert_eq!(get(serve.addr, CREDS, Some(&t)).body, ROLE_NAME);
    }
    for (extra, needle) in [
        (&["--listen", "localhost:80"][..], "--listen"),
        (&["--hop-limit", "0"][..], "--hop-limit"),
    ] {
        let mut args = env.credential_args(&emu.url(), "leaf", extra);
        args[0] = "serve".into();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        env.run(&args, &[]).assert_failure(2, &[needle]);
    }
    // A port in use: operational, before any CreateSession.
    let before = emu.sessions_issued();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let mut args = env.credential_args(&emu.url(), "leaf", &["--port", &port]);
    args[0] = "serve".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    env.run(&args, &[]).assert_failure(1, &["cannot listen on"]);
    assert_eq!(emu.sessions_issued(), before);
}

/// SIGTERM: the request being received is finished (with `Connection: close`), idle connections
/// close, new ones are refused, and the process exits 0.
#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let mut serve = Serve::start(&env, &emu.url(), &[], 1);
    let a = serve.addr;
    let tok = token(a);
    let mut idle = TcpStream::connect(a).unwrap();
    let mut busy = TcpStream::connect(a).unwrap();
    let request =
        format!("GET {CREDS}{ROLE_NAME} HTTP/1.1\r\nX-aws-ec2-metadata-token: {tok}\r\n\r\n");
    let (first, rest) = request.split_at(20);
    busy.write_all(first.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    serve.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));
    busy.write_all(rest.as_bytes()).unwrap();
    let r = read_answer(&mut busy);
    assert_eq!(r.status, 200, "{r:?}");
    assert_imds_credentials(&r.body);
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(
        serve.wait(Duration::from_secs(10)),
        0,
        "{}",
        serve.stderr.lock().unwrap()
    );
    let mut rest = Vec::new();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(idle.read_to_end(&mut rest).unwrap(), 0);
    assert!(TcpStream::connect(a).is_err());
    let stderr = serve.stderr.lock().unwrap().clone();
    assert!(stderr.contains("serve stopped"), "{stderr}");
}

/// The emulator, restartable on the same port, issuing credentials that live `lifetime` seconds.
fn short_lived(env: &Env, addr: SocketAddr, lifetime: u32) -> Running {
    let config = Config::from_toml_str(&env.config_toml("", "", ""), env.dir.path()).unwrap();
    server::spawn_with(
        config,
        Limits {
            credential_seconds: Some(lifetime),
            ..Limits::default()
        },
        ServeOptions {
            listen: addr,
            tls: Tls::None,
        },
    )
    .unwrap()
}

/// Short-lived credentials through several refreshes (counted by the emulator), with no answer ever
/// expired or empty; the emulator stopped → 503 with an error body once the last set expires;
/// restarted → credentials again.
#[test]
fn refresh_outage_and_recovery_with_short_lived_credentials() {
    // The shortest lifetime the client accepts (credentials must outlive a minute).
    const LIFETIME: u32 = 62;
    let env = Env::new();
    env.leaf("leaf");
    let emu = short_lived(&env, "127.0.0.1:0".parse().unwrap(), LIFETIME);
    let emu_addr: SocketAddr = emu.url().trim_start_matches("http://").parse().unwrap();
    let serve = Serve::start(&env, &emu.url(), &[], 1);
    let a = serve.addr;
    let tok = token(a);
    let path = format!("{CREDS}{ROLE_NAME}");

    // A lifetime and a half of polling: every answer valid; a new set about every half-life.
    let mut keys: Vec<String> = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(u64::from(LIFETIME) * 3 / 2 + 5) {
        let r = get(a, &path, Some(&tok));
        assert_eq!(r.status, 200, "{r:?}");
        let v = assert_imds_credentials(&r.body);
        let key = v["AccessKeyId"].as_str().unwrap().to_string();
        if keys.last() != Some(&key) {
            keys.push(key);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let issued = emu.sessions_issued();
    eprintln!("{} sets seen, {issued} CreateSession calls", keys.len());
    assert!(keys.len() >= 3, "{keys:?}");
    // Half-life refresh: about two sets per lifetime, and every set issued was served.
    assert!(
        issued >= keys.len() as u64 && issued <= keys.len() as u64 + 1,
        "{issued} vs {keys:?}"
    );
    assert!(
        issued <= 7,
        "{issued} CreateSession calls in three lifetimes"
    );

    // Outage: the last set is served while valid, then 503 with an AWS-shaped body, never 200
    // with expired or empty fields.
    drop(emu);
    let outage = Instant::now();
    let mut saw_503 = false;
    while outage.elapsed() < Duration::from_secs(u64::from(LIFETIME) + 5) {
        let r = get(a, &path, Some(&tok));
        match r.status {
            200 => {
                assert!(!saw_503, "200 after 503 while the service is down");
                assert_imds_credentials(&r.body);
            }
            503 => {
                saw_503 = true;
                let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
                assert_eq!(v["Code"], "CredentialsUnavailable", "{}", r.body);
                assert!(v["Message"].as_str().is_some_and(|m| !m.is_empty()));
                assert!(r.body.find("AccessKeyId").is_none());
            }
            s => panic!("status {s}: {r:?}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        saw_503,
        "still 200 {} s into the outage",
        outage.elapsed().as_secs()
    );

    // Recovery: the same port again; credentials within the backoff cap (a quarter lifetime).
    let emu = short_lived(&env, emu_addr, LIFETIME);
    let back = Instant::now();
    loop {
        let r = get(a, &path, Some(&tok));
        if r.status == 200 {
            let v = assert_imds_credentials(&r.body);
            assert!(!keys.contains(&v["AccessKeyId"].as_str().unwrap().to_string()));
            break;
        }
        assert_eq!(r.status, 503);
        assert!(back.elapsed() < Duration::from_secs(15), "no recovery");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "recovered after {:?}; {} CreateSession calls",
        back.elapsed(),
        emu.sessions_issued()
    );
    assert_eq!(emu.sessions_issued(), 1);
}

/// Socket activation: under `systemd-socket-activate` (the same protocol as a socket unit) the
/// passed socket is served, `--port` ignored.
#[test]
fn systemd_socket_activation_serves_the_passed_socket() {
    let Ok(activate) = which("systemd-socket-activate") else {
        assert!(
            !hsm_tests::required(),
            "systemd-socket-activate is required"
        );
        return;
    };
    let env = Env::new();
    env.leaf("leaf");
    let emu = env.emulator();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = env.credential_args(&emu.url(), "leaf", &["--port", "1"]);
    args[0] = "serve".into();
    let home = format!("HOME={}", path_str(env.dir.path()));
    let mut all = vec![
        "-l".to_string(),
        format!("127.0.0.1:{port}"),
        "-E".to_string(),
        home,
        "--".to_string(),
        env!("CARGO_BIN_EXE_rolesanywhere-agent").to_string(),
    ];
    all.extend(args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut cmd = Command::new(activate);
    cmd.args(&all)
        .current_dir(env.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = Instant::now();
    let mut s = loop {
        match TcpStream::connect(addr) {
            Ok(s) => break s,
            Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("{e}"),
        }
    };
    s.write_all(
        b"PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n",
    )
    .unwrap();
    let r = read_answer(&mut s);
    assert_eq!(r.status, 200, "{r:?}");
    let r = get(addr, &format!("{CREDS}{ROLE_NAME}"), Some(&r.body));
    assert_eq!(r.status, 200, "{r:?}");
    assert_imds_credentials(&r.body);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line,
        format!("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://{addr}/\n")
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn which(program: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or(())
}
