//! Hostile clients against the server (issue 14, items 4 and 14): junk requests with long paths
//! must not grow what the emulator keeps or logs, and idle, half-open or slow connections must
//! neither starve real requests nor live past their timeouts. Real sockets on loopback, the real
//! binary where the process's limits matter; every wait is bounded.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, ServeOptions, Tls};
use support::*;

/// `rolesanywhere-emulator serve` as a child process, killed when dropped.
struct ServeChild {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
    _stdout: std::process::ChildStdout,
}

impl ServeChild {
    /// Starts `serve --config CONFIG EXTRA…`, under `ulimit -n NOFILE` when given, and waits for
    /// its `listening on URL` line.
    fn start(config: &Path, extra: &[&str], nofile: Option<u32>) -> ServeChild {
        let bin = env!("CARGO_BIN_EXE_rolesanywhere-emulator");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .args(extra)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rolesanywhere-emulator serve");
        let (tx, stderr) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("first stdout line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let errs: Vec<String> = stderr.try_iter().collect();
                panic!("serve did not start: {line:?} {errs:?}")
            })
            .to_string();
        ServeChild {
            child,
            url,
            stderr,
            _stdout: out.into_inner(),
        }
    }

    fn addr(&self) -> String {
        self.url.rsplit('/').next().expect("host:port").to_string()
    }

    /// The next `n` decision lines on stderr, each within 20 s.
    fn decision_lines(&self, n: usize) -> Vec<String> {
        let mut lines = Vec::new();
        while lines.len() < n {
            let line = self
                .stderr
                .recv_timeout(Duration::from_secs(20))
                .expect("a decision line on stderr");
            if line.contains("\"event\":\"decision\"") {
                lines.push(line);
            }
        }
        lines
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A root CA in `dir/root`, the standard config (plus `tail`) in `dir/config.toml`, and a client.
fn setup(dir: &Path, tail: &str) -> (std::path::PathBuf, Identity) {
    let root = Ca::init(&dir.join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("{}{tail}", config_toml(dir, "", ""))).expect("config");
    (config, leaf(&root, KeyType::EcP256, "client"))
}

/// The first bytes of a TLS ClientHello record that announces 512 bytes and never sends them.
const PARTIAL_CLIENT_HELLO: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];

#[test]
fn kept_decisions_are_bounded_in_count_and_bytes_issue_14_item_4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = setup(tmp.path(), "");
    let config = Config::from_file(&config).expect("config");
    let server = server::spawn(
        config,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    let addr = server.url().rsplit('/').next().expect("addr").to_string();
    // 1 200 requests with 32 KiB paths (38 MiB of attacker text) on four kept-alive connections.
    let path = format!("/{}", "a".repeat(32 * 1024));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
            std::thread::spawn(move || {
                let tcp = TcpStream::connect(&addr).expect("connect");
                tcp.set_read_timeout(Some(Duration::from_secs(20)))
                    .expect("timeout");
                let mut conn = BufReader::new(tcp);
                for _ in 0..300 {
                    let (status, body) = exchange(&mut conn, request.as_bytes()).expect("exchange");
                    assert_eq!(status, 404);
                    assert!(
                        body.len() < 2048,
                        "the answer echoes the path: {} bytes",
                        body.len()
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let tcp = TcpStream::connect(&addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let (status, _) = exchange(
        &mut BufReader::new(tcp),
        format!("GET /last-request HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .expect("last request");
    assert_eq!(status, 404);

    let kept = server.decisions();
    assert_eq!(
        kept.len(),
        1000,
        "the default keeps the last 1000 decisions"
    );
    assert!(
        kept.last().expect("last").message.contains("/last-request"),
        "the newest decision is kept: {:?}",
        kept.last()
    );
    let bytes: usize = kept
        .iter()
        .map(|d| {
            d.message.len()
                + d.error_type.as_ref().map_or(0, String::len)
                + d.serial_decimal.as_ref().map_or(0, String::len)
                + d.role_session_name.as_ref().map_or(0, String::len)
        })
        .sum();
    assert!(bytes <= 1000 * 600, "decisions hold {bytes} bytes");
    let long = &kept[0].message;
    assert!(
        long.starts_with("no operation GET /aaaa") && long.ends_with("more bytes)"),
        "{long:?}"
    );
}

#[test]
fn certificate_text_in_decisions_is_escaped_issue_14_item_4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = setup(tmp.path(), "");
    let root = Ca::load(&tmp.path().join("root")).expect("root");
    let server = server::spawn(
        Config::from_file(&config).expect("config"),
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    // An expired certificate is named in the refusal; its subject carries an escape sequence and
    // a newline that would forge a line on a terminal or in a line-oriented log.
    let now = time::OffsetDateTime::now_utc();
    let mut req = IssueRequest::new(
        "CN=\u{1b}[31mevil\nhint: forged",
        KeySource::NewKey(KeyType::EcP256),
    );
    req.not_before = now - time::Duration::days(10);
    req.not_after = now - time::Duration::days(1);
    let id = identity(root.issue(&req).expect("issue"), None);
    let host = server.url().rsplit('/').next().expect("host").to_string();
    let signed = sign(&id, &Call::new(&host, "{}"));
    let r = send(&server.url(), None, &signed, Duration::from_secs(10)).expect("send");
    assert_eq!(r.status, 403, "{}", r.body);
    let d = server.decisions();
    let message = &d.last().expect("decision").message;
    assert!(message.contains("expired"), "{message:?}");
    assert!(
        !message.contains('\u{1b}') && !message.contains('\n'),
        "control characters kept raw: {message:?}"
    );
    assert!(message.contains("\\u{1b}"), "{message:?}");
}

#[test]
fn log_lines_are_bounded_issue_14_item_4() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = setup(tmp.path(), "");
    let serve = ServeChild::start(&config, &["--http"], None);
    let addr = serve.addr();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(&addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let path = format!("/{}", "b".repeat(40 * 1024));
        tcp.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("write");
        let mut answer = Vec::new();
        std::io::Read::read_to_end(&mut tcp, &mut answer).expect("read");
        assert!(answer.starts_with(b"HTTP/1.1 404"));
    }
    for line in serve.decision_lines(3) {
        assert!(line.len() <= 1024, "a log line of {} bytes", line.len());
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        let message = v["message"].as_str().expect("message");
        assert!(
            message.starts_with("no operation GET /bbbb") && message.ends_with("more bytes)"),
            "{message}"
        );
    }
}

#[test]
fn idle_and_half_open_connections_do_not_starve_real_requests_issue_14_item_14() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, id) = setup(tmp.path(), "");
    let tls_ca = tmp.path().join("tls-ca.pem");
    let tls_ca_arg = tls_ca.to_str().expect("utf-8").to_string();
    // 128 descriptors: without a cap the server runs out of them long before 300 sockets.
    let serve = ServeChild::start(&config, &["--tls-ca-out", &tls_ca_arg], Some(128));
    let addr = serve.addr();
    let sock: std::net::SocketAddr = addr.parse().expect("socket address");
    let mut held = Vec::new();
    let started = Instant::now();
    for i in 0..330 {
        if started.elapsed() > Duration::from_secs(20) {
            break;
        }
        let Ok(mut tcp) = TcpStream::connect_timeout(&sock, Duration::from_millis(500)) else {
            continue;
        };
        // The last 30 start a TLS handshake and never finish it.
        if i >= 300 {
            let _ = tcp.write_all(PARTIAL_CLIENT_HELLO);
        }
        held.push(tcp);
    }
    let ca = std::fs::read_to_string(&tls_ca).expect("tls ca");
    let started = Instant::now();
    let signed = sign(&id, &Call::new(&addr, "{}"));
    let r = send(&serve.url, Some(&ca), &signed, Duration::from_secs(5))
        .expect("a real request is served while 330 sockets sit idle");
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(held);
}

#[test]
fn idle_half_open_and_slow_connections_are_closed_after_the_timeouts_issue_14_item_14() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = setup(
        tmp.path(),
        "[server]\nhandshake_timeout_seconds = 0.5\nrequest_timeout_seconds = 0.5\nidle_timeout_seconds = 0.5\n",
    );
    let within = Duration::from_secs(4);
    let connect = |addr: &str| {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        tcp
    };
    let closed = |what: &str, stream: &mut dyn std::io::Read| {
        let took = wait_closed(stream, within).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            took >= Duration::from_millis(300),
            "{what}: closed after {took:?}, before the timeout"
        );
    };

    let tls_ca = tmp.path().join("tls-ca.pem");
    let tls = ServeChild::start(
        &config,
        &["--tls-ca-out", tls_ca.to_str().expect("utf-8")],
        None,
    );
    closed("TCP without a byte", &mut connect(&tls.addr()));
    let mut half = connect(&tls.addr());
    half.write_all(PARTIAL_CLIENT_HELLO).expect("write");
    closed("unfinished TLS handshake", &mut half);
    // A finished handshake and then no request.
    let ca = std::fs::read_to_string(&tls_ca).expect("tls ca");
    let mut roots = rustls::RootCertStore::empty();
    for der in der_of(&ca) {
        roots.add(der.into()).expect("root");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut conn =
        rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).expect("tls client");
    let mut tcp = connect(&tls.addr());
    tcp.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).expect("handshake");
    }
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    closed(
        "TLS session without a request",
        &mut rustls::StreamOwned::new(conn, tcp),
    );
    drop(tls);

    let http = ServeChild::start(&config, &["--http"], None);
    let addr = http.addr();
    // Keep-alive after an answer.
    let tcp = connect(&addr);
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut kept = BufReader::new(tcp);
    let (status, _) = exchange(
        &mut kept,
        format!("GET /x HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .expect("exchange");
    assert_eq!(status, 404);
    let mut tcp = kept.into_inner();
    tcp.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    closed("kept-alive connection after an answer", &mut tcp);
    // Half a request head, then nothing (slowloris).
    let mut slow = connect(&addr);
    slow.write_all(format!("POST /sessions HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .expect("write");
    closed("half a request head", &mut slow);
    // A whole head announcing 100 body bytes, and 10 of them.
    let mut slow = connect(&addr);
    slow.write_all(
        format!("POST /sessions HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 100\r\n\r\n0123456789")
            .as_bytes(),
    )
    .expect("write");
    slow.set_read_timeout(Some(within)).expect("timeout");
    let mut line = String::new();
    BufReader::new(&slow)
        .read_line(&mut line)
        .expect("an answer to the slow body");
    assert!(line.starts_with("HTTP/1.1 408"), "{line:?}");
}

#[test]
fn a_connection_beyond_the_cap_is_closed_when_every_connection_is_busy_issue_14_item_14() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (config, _) = setup(
        tmp.path(),
        "[[faults]]\nkind = \"hang\"\ntimes = 2\n[server]\nmax_connections = 2\n",
    );
    let serve = ServeChild::start(&config, &["--http"], None);
    let addr = serve.addr();
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(&addr).expect("connect");
        tcp.write_all(format!("GET /hang HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .expect("write");
        busy.push(tcp);
    }
    // Both hang faults are in flight once their decisions are logged.
    serve.decision_lines(2);
    let mut third = TcpStream::connect(&addr).expect("connect");
    third
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let _ = third.write_all(format!("GET /third HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    let took = wait_closed(&mut third, Duration::from_secs(4))
        .unwrap_or_else(|e| panic!("the connection beyond the cap: {e}"));
    assert!(took < Duration::from_secs(2), "closed after {took:?}");
    drop(busy);
}
