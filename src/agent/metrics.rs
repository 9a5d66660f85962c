//! Prometheus text exposition of the profiles' refresh state ([`render`]), and its opt-in HTTP
//! endpoint ([`run`], `--metrics-listen`): `GET /metrics`, nothing else.
//!
//! Format: text exposition format 0.0.4. One `# HELP` and one `# TYPE` line per family, then its
//! samples, families never interleaved; label values escaped (`\` as `\\`, `"` as `\"`, newline as
//! `\n`). Times are Unix seconds (alert on `metric - time()`), as Prometheus advises over ages.
//!
//! ```text
//! rolesanywhere_certificate_not_after_seconds{profile="web"} 1767225600
//! rolesanywhere_refresh_total{profile="web",result="success"} 12
//! rolesanywhere_create_session_duration_seconds_bucket{profile="web",le="0.05"} 11
//! ```
//!
//! The server reuses `serve`'s HTTP pieces ([`crate::serve::http`]): the same head limits and
//! request deadline, at most [`MAX_CONNECTIONS`] connections at once, one request per connection.
//! Must not: expose anything secret (the statuses hold none) or log per request.

use crate::refresh::{Log, RefreshStatus, schedule};
use crate::serve::http::{self, Conn, Method, ReadError, Response};
use crate::serve::sys::poll_readable;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The path served.
pub const PATH: &str = "/metrics";
/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Connections served at once; one more is answered 503. A scraper needs one.
pub const MAX_CONNECTIONS: usize = 16;
/// How long an accepted connection may wait before its request starts, and one write may block.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`run`] waits for connections in flight when stopping.
const DRAIN: Duration = Duration::from_secs(5);

/// Where the statuses come from: the registry's refreshers, by profile name.
pub type Snapshot = Arc<dyn Fn() -> Vec<(String, RefreshStatus)> + Send + Sync>;

/// Why the endpoint stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Waiting for connections failed.
    #[error("cannot wait for metrics connections")]
    Poll(#[source] std::io::Error),
    /// The listening socket could not be set up.
    #[error("cannot set up the metrics listener")]
    Listener(#[source] std::io::Error),
}

impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Operational
    }
}

/// Reads one time of a profile's status.
type TimeOf = fn(&RefreshStatus) -> Option<OffsetDateTime>;

/// A label value escaped as the exposition format wants it.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A float as the format writes it: Rust's shortest round-tripping decimal (never an exponent),
/// `+Inf`/`-Inf`/`NaN` spelt as Go's parser reads them.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Unix seconds, with the fraction kept.
fn unix(t: OffsetDateTime) -> String {
    float(t.unix_timestamp_nanos() as f64 / 1e9)
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics of `profiles` at `now`, in the text exposition format 0.0.4. A profile without a
/// value (no certificate opened yet, no set yet) has no sample in that family.
pub fn render(profiles: &[(String, RefreshStatus)], now: OffsetDateTime) -> String {
    let mut out = String::with_capacity(1024 + profiles.len() * 1536);
    let labelled: Vec<(String, &RefreshStatus)> = profiles
        .iter()
        .map(|(name, s)| (format!("profile=\"{}\"", label_value(name)), s))
        .collect();

    let gauges: [(&str, &str, TimeOf); 3] = [
        (
            "rolesanywhere_certificate_not_after_seconds",
            "Unix time at which the certificate the profile signs with expires.",
            |s| s.certificate.as_ref().map(|c| c.not_after),
        ),
        (
            "rolesanywhere_credentials_expiration_seconds",
            "Unix time at which the profile's cached credentials expire.",
            |s| s.expires_at,
        ),
        (
            "rolesanywhere_last_refresh_seconds",
            "Unix time at which the profile's cached credentials were obtained.",
            |s| s.obtained_at,
        ),
    ];
    for (name, help, value) in gauges {
        family(&mut out, name, "gauge", help);
        for (labels, s) in &labelled {
            if let Some(t) = value(s) {
                let _ = writeln!(out, "{name}{{{labels}}} {}", unix(t));
            }
        }
    }

    let name = "rolesanywhere_credentials_usable";
    family(
        &mut out,
        name,
        "gauge",
        "1 when the profile has credentials it hands out now, 0 when callers are refused.",
    );
    for (labels, s) in &labelled {
        let usable = match (s.obtained_at, s.expires_at) {
            (Some(obtained), Some(expires)) => schedule::usable(now, obtained, expires),
            _ => false,
        };
        let _ = writeln!(out, "{name}{{{labels}}} {}", u8::from(usable));
    }

    let name = "rolesanywhere_refresh_total";
    family(
        &mut out,
        name,
        "counter",
        "Credential refresh attempts of the profile, by result.",
    );
    for (labels, s) in &labelled {
        let _ = writeln!(out, "{name}{{{labels},result=\"success\"}} {}", s.successes);
        let _ = writeln!(out, "{name}{{{labels},result=\"failure\"}} {}", s.failures);
    }

    let name = "rolesanywhere_create_session_duration_seconds";
    family(
        &mut out,
        name,
        "histogram",
        "Wall time of the profile's CreateSession calls, successful or not.",
    );
    for (labels, s) in &labelled {
        for (le, n) in s.latency.cumulative() {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{}\"}} {n}", float(le));
        }
        let count = s.latency.count();
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", float(s.latency.sum()));
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
    out
}

struct Shared {
    snapshot: Snapshot,
    stop: UnixStream,
    active: Mutex<usize>,
    idle: Condvar,
}

/// Serves `GET /metrics` on `listener` until `stop` becomes readable, then finishes the requests
/// in flight (a few seconds at most) and returns. Other paths are answered 404, other methods on
/// the path 405.
pub fn run(
    listener: TcpListener,
    snapshot: Snapshot,
    stop: UnixStream,
    log: Log,
) -> Result<(), Error> {
    // Non-blocking: every pending connection is taken after a poll, up to WouldBlock.
    listener.set_nonblocking(true).map_err(Error::Listener)?;
    let shared = Arc::new(Shared {
        snapshot,
        stop,
        active: Mutex::new(0),
        idle: Condvar::new(),
    });
    let fds = [listener.as_raw_fd(), shared.stop.as_raw_fd()];
    let mut failing = false;
    loop {
        let ready = poll_readable(&fds, None).map_err(Error::Poll)?;
        if ready & 2 != 0 {
            break;
        }
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    failing = false;
                    admit(&shared, stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or memory: said once per streak; the pause keeps a
                    // persistent failure from spinning.
                    if !failing {
                        log(&format!("cannot accept a metrics connection: {e}"));
                        failing = true;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                    break;
                }
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + DRAIN;
    let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
    while *active > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        active = shared
            .idle
            .wait_timeout(active, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    Ok(())
}

/// Starts a thread for `stream`, or answers 503 when at the connection cap.
fn admit(shared: &Arc<Shared>, mut stream: TcpStream) {
    {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        if *active >= MAX_CONNECTIONS {
            drop(active);
            // Best effort and never blocking the accept loop: the answer fits the socket buffer.
            if stream.set_nonblocking(true).is_ok() {
                let r = Response::text(503, "too many connections");
                let _ = http::write_response(&mut stream, &r, true);
            }
            return;
        }
        *active += 1;
    }
    let s = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-connection".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            connection(&s, stream);
            let mut active = s.active.lock().unwrap_or_else(|e| e.into_inner());
            *active -= 1;
            s.idle.notify_all();
        });
    if spawned.is_err() {
        let mut active = shared.active.lock().unwrap_or_else(|e| e.into_inner());
        *active -= 1;
    }
}

/// Answers one request, then closes: a scraper asks once every several seconds.
fn connection(shared: &Shared, stream: TcpStream) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)));
    if setup.is_err() {
        return;
    }
    let fds = [stream.as_raw_fd(), shared.stop.as_raw_fd()];
    match poll_readable(&fds, Some(IO_TIMEOUT)) {
        Ok(ready) if ready & 1 != 0 && ready & 2 == 0 => {}
        // Nothing came in time, stopping, or poll failed.
        _ => return,
    }
    let mut conn = Conn::new(stream);
    let response = match conn.read_request() {
        Ok(req) => answer(shared, &req),
        Err(ReadError::Closed | ReadError::Io) => return,
        Err(ReadError::Timeout) => Response::text(408, "request timeout"),
        Err(ReadError::Bad(status, reason)) => Response::text(status, reason),
    };
    let _ = http::write_response(&mut conn.stream, &response, true);
}

fn answer(shared: &Shared, req: &http::Request) -> Response {
    if req.path != PATH {
        return Response::text(404, "not found; the metrics are at /metrics");
    }
    if req.method != Some(Method::Get) {
        let mut r = Response::text(405, "only GET is served");
        r.allow = Some("GET");
        return r;
    }
    let body = render(&(shared.snapshot)(), OffsetDateTime::now_utc());
    Response::new(200, CONTENT_TYPE, Zeroizing::new(body.into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refresh::{CertificateInfo, LatencyHistogram};
    use std::io::{Read as _, Write as _};
    use std::process::{Command, Stdio};
    use time::macros::datetime;

    /// Two profiles: one with everything (a name that needs every escape), one that has not opened
    /// its identity nor fetched a set yet.
    fn sample() -> (Vec<(String, RefreshStatus)>, OffsetDateTime) {
        let now = datetime!(2026-03-01 12:00:00.25 UTC);
        let mut latency = LatencyHistogram::default();
        for ms in [30, 80, 80, 1_200, 40_000] {
            latency.observe(Duration::from_millis(ms));
        }
        let full = RefreshStatus {
            certificate: Some(CertificateInfo {
                subject: "CN=web".into(),
                serial: "4660".into(),
                not_after: datetime!(2027-01-01 00:00:00 UTC),
            }),
            expires_at: Some(now + time::Duration::minutes(50)),
            obtained_at: Some(now - time::Duration::minutes(10)),
            last_failure: Some((now, "cannot reach".into())),
            successes: 12,
            failures: 3,
            latency,
        };
        let name = "we\"b\\1\nx".to_string();
        (
            vec![(name, full), ("idle".into(), RefreshStatus::default())],
            now,
        )
    }

    /// `render`'s output parsed by the Prometheus Python client's own parser: every sample as
    /// (name, labels, value) lines, in JSON.
    fn parse_with_prometheus_client(text: &str) -> Option<Vec<serde_json::Value>> {
        let script = "import sys, json\n\
            from prometheus_client.parser import text_string_to_metric_families\n\
            out = []\n\
            for f in text_string_to_metric_families(sys.stdin.read()):\n\
            \x20   for s in f.samples:\n\
            \x20       out.append({'family': f.name, 'type': f.type, 'help': f.documentation,\n\
            \x20                   'name': s.name, 'labels': s.labels, 'value': s.value})\n\
            print(json.dumps(out))\n";
        let have = Command::new("python3")
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            let _ = hsm_tests::skip(
                "python3 with prometheus_client is missing (scripts/install-deps installs it)",
            );
            return None;
        }
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "the parser refused the text: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn value(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        samples
            .iter()
            .find(|s| {
                s["name"] == name
                    && s["labels"].as_object().unwrap().len() == labels.len()
                    && labels.iter().all(|(k, v)| s["labels"][*k] == *v)
            })
            .map(|s| s["value"].as_f64().unwrap())
    }

    #[test]
    fn render_round_trips_through_the_prometheus_parser() {
        let (profiles, now) = sample();
        let text = render(&profiles, now);
        let Some(samples) = parse_with_prometheus_client(&text) else {
            return;
        };
        let web = profiles[0].0.as_str();
        let s = &profiles[0].1;
        let p = [("profile", web)];
        let secs = |t: OffsetDateTime| t.unix_timestamp_nanos() as f64 / 1e9;
        assert_eq!(
            value(&samples, "rolesanywhere_certificate_not_after_seconds", &p),
            Some(secs(s.certificate.as_ref().unwrap().not_after))
        );
        assert_eq!(
            value(&samples, "rolesanywhere_credentials_expiration_seconds", &p),
            Some(secs(s.expires_at.unwrap()))
        );
        assert_eq!(
            value(&samples, "rolesanywhere_last_refresh_seconds", &p),
            Some(secs(s.obtained_at.unwrap()))
        );
        assert_eq!(
            value(&samples, "rolesanywhere_credentials_usable", &p),
            Some(1.0)
        );
        for (result, n) in [("success", 12.0), ("failure", 3.0)] {
            assert_eq!(
                value(
                    &samples,
                    "rolesanywhere_refresh_total",
                    &[("profile", web), ("result", result)]
                ),
                Some(n)
            );
        }
        let h = "rolesanywhere_create_session_duration_seconds";
        for (le, n) in [
            ("0.05", 1.0),
            ("0.1", 3.0),
            ("1", 3.0),
            ("2.5", 4.0),
            ("30", 4.0),
            ("+Inf", 5.0),
        ] {
            assert_eq!(
                value(
                    &samples,
                    &format!("{h}_bucket"),
                    &[("profile", web), ("le", le)]
                ),
                Some(n),
                "le={le}"
            );
        }
        assert_eq!(value(&samples, &format!("{h}_count"), &p), Some(5.0));
        let sum = value(&samples, &format!("{h}_sum"), &p).unwrap();
        assert!((sum - 41.39).abs() < 1e-9, "{sum}");

        // The profile with nothing yet: no times, not usable, zero counts, an empty histogram.
        let idle = [("profile", "idle")];
        assert_eq!(
            value(
                &samples,
                "rolesanywhere_certificate_not_after_seconds",
                &idle
            ),
            None
        );
        assert_eq!(
            value(
                &samples,
                "rolesanywhere_credentials_expiration_seconds",
                &idle
            ),
            None
        );
        assert_eq!(
            value(&samples, "rolesanywhere_credentials_usable", &idle),
            Some(0.0)
        );
        assert_eq!(
            value(
                &samples,
                "rolesanywhere_refresh_total",
                &[("profile", "idle"), ("result", "failure")]
            ),
            Some(0.0)
        );
        assert_eq!(value(&samples, &format!("{h}_count"), &idle), Some(0.0));

        // Types and help as declared; one family per name.
        let kinds: Vec<(String, String)> = samples
            .iter()
            .map(|s| {
                (
                    s["family"].as_str().unwrap().to_string(),
                    s["type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(kinds.contains(&(h.to_string(), "histogram".to_string())));
        assert!(
            kinds
                .iter()
                .any(|(f, t)| f.starts_with("rolesanywhere_refresh") && t == "counter")
        );
        assert!(kinds.contains(&(
            "rolesanywhere_certificate_not_after_seconds".to_string(),
            "gauge".to_string()
        )));
        assert!(
            samples
                .iter()
                .all(|s| !s["help"].as_str().unwrap().is_empty())
        );
    }

    #[test]
    fn render_escapes_label_values_and_orders_families() {
        let (profiles, now) = sample();
        let text = render(&profiles, now);
        assert!(text.contains(r#"{profile="we\"b\\1\nx"}"#), "{text}");
        assert!(!text.contains("we\"b\\1\nx"));
        // Each family's HELP and TYPE come once, before its samples.
        for name in [
            "rolesanywhere_certificate_not_after_seconds",
            "rolesanywhere_credentials_expiration_seconds",
            "rolesanywhere_last_refresh_seconds",
            "rolesanywhere_refresh_total",
            "rolesanywhere_create_session_duration_seconds",
        ] {
            assert_eq!(
                text.matches(&format!("# TYPE {name} ")).count(),
                1,
                "{name}"
            );
            let help = text.find(&format!("# HELP {name} ")).unwrap();
            let first = text.find(&format!("\n{name}")).unwrap();
            assert!(help < first, "{name}");
        }
        assert!(text.ends_with('\n'));
    }

    /// One request over a real connection; returns the status line, the headers and the body.
    fn get(addr: std::net::SocketAddr, request: &str) -> (String, String, String) {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        (status.to_string(), headers.to_lowercase(), body.to_string())
    }

    #[test]
    fn run_serves_get_metrics_and_nothing_else_until_stopped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(0u32));
        let c = calls.clone();
        let snapshot: Snapshot = Arc::new(move || {
            *c.lock().unwrap() += 1;
            sample().0
        });
        let (stop_rx, mut stop_tx) = UnixStream::pair().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let l = lines.clone();
        let log: Log = Arc::new(move |s: &str| l.lock().unwrap().push(s.to_string()));
        let server = std::thread::spawn(move || run(listener, snapshot, stop_rx, log));

        let (status, headers, body) = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            headers.contains("content-type: text/plain; version=0.0.4"),
            "{headers}"
        );
        assert!(headers.contains("connection: close"));
        assert!(
            body.contains("rolesanywhere_refresh_total{profile=\"idle\",result=\"success\"} 0\n")
        );
        assert_eq!(*calls.lock().unwrap(), 1);
        if let Some(samples) = parse_with_prometheus_client(&body) {
            assert_eq!(
                value(
                    &samples,
                    "rolesanywhere_refresh_total",
                    &[("profile", "we\"b\\1\nx"), ("result", "success")]
                ),
                Some(12.0)
            );
        }

        let (status, _, _) = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let (status, _, _) = get(addr, "GET / HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, _, _) = get(addr, "GET /latest/meta-data/ HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 404 Not Found");
        let (status, headers, _) = get(addr, "PUT /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        assert!(headers.contains("allow: get"));
        let (status, _, _) = get(addr, "GARBAGE\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert_eq!(*calls.lock().unwrap(), 2, "only GET /metrics renders");

        // A connection that never sends is closed after the timeout, not held.
        let mut silent = TcpStream::connect(addr).unwrap();
        silent
            .set_read_timeout(Some(IO_TIMEOUT + Duration::from_secs(5)))
            .unwrap();
        let begin = Instant::now();
        let mut buf = [0u8; 16];
        assert_eq!(silent.read(&mut buf).unwrap_or(0), 0);
        assert!(begin.elapsed() < IO_TIMEOUT + Duration::from_secs(3));

        stop_tx.write_all(b"x").unwrap();
        server.join().unwrap().unwrap();
        assert!(TcpStream::connect(addr).is_err(), "still listening");
        assert!(
            lines.lock().unwrap().is_empty(),
            "{:?}",
            lines.lock().unwrap()
        );
    }
}
