//! The refresher against the real emulator issuing short-lived credentials (`credential_seconds`),
//! with real keys: key files from the emulator's CA, a SoftHSM2 token through OpenSC's pkcs11-spy
//! (counting `C_Login`, `C_Sign` and `C_Finalize`), and a swtpm that is restarted under it.
//!
//! The CreateSession counts are the emulator's own (`Running::sessions_issued`), not the
//! refresher's. Token tests run their body in a child process of this test binary whose environment
//! points SoftHSM at a private token directory and pkcs11-spy at a log (SoftHSM and the spy read
//! their environment once per process). Missing simulators skip, or fail with
//! `HSM_TESTS_REQUIRED=1`.

use hsm_tests::softhsm::{self, PIN, SoftHsm};
use hsm_tests::swtpm::Swtpm;
use rolesanywhere_agent::refresh::{
    Issued, Log, Policy, RefreshStatus, Refresher, RefresherOptions,
};
use rolesanywhere_agent::session::{Client, ClientOptions, Endpoint, SessionRequest};
use rolesanywhere_agent::signer::KeyOptions;
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Limits, Running, ServeOptions, Tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/refresh-ta";
const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:profile/refresh-p";
const ROLE: &str = "arn:aws:iam::123456789012:role/refresh";

/// The emulator, stoppable and restartable on the same port; counts every instance's sessions.
struct Service {
    dir: PathBuf,
    ca: Ca,
    addr: SocketAddr,
    lifetime: u32,
    running: Option<Running>,
    /// Sessions issued by instances already stopped.
    earlier: u64,
}

impl Service {
    /// A CA and an emulator issuing credentials that expire `lifetime` seconds after issue. The CA
    /// lives in `dir` (kept, so a child process can load it).
    fn start(dir: &Path, lifetime: u32) -> Service {
        let ca_dir = dir.join("ca");
        let ca = if ca_dir.join("ca.pem").is_file() {
            Ca::load(&ca_dir).unwrap()
        } else {
            Ca::init(&ca_dir, KeyType::EcP256, "refresh test CA").unwrap()
        };
        std::fs::write(dir.join("anchor.pem"), ca.cert_pem()).unwrap();
        let mut s = Service {
            dir: dir.to_path_buf(),
            ca,
            addr: "127.0.0.1:0".parse().unwrap(),
            lifetime,
            running: None,
            earlier: 0,
        };
        s.restart();
        s
    }

    fn restart(&mut self) {
        assert!(self.running.is_none());
        let toml = format!(
            "region = \"us-east-1\"\n[[trust_anchors]]\narn = \"{ANCHOR}\"\ncertificates = \
             \"anchor.pem\"\n[[profiles]]\narn = \"{PROFILE}\"\nrole_arns = [\"{ROLE}\"]\n\
             [[roles]]\narn = \"{ROLE}\"\n"
        );
        let config = Config::from_toml_str(&toml, &self.dir).unwrap();
        let limits = Limits {
            credential_seconds: Some(self.lifetime),
            ..Limits::default()
        };
        let running = server::spawn_with(
            config,
            limits,
            ServeOptions {
                listen: self.addr,
                tls: Tls::None,
            },
        )
        .unwrap();
        self.addr = running.url().trim_start_matches("http://").parse().unwrap();
        self.running = Some(running);
    }

    fn stop(&mut self) {
        let r = self.running.take().expect("running");
        self.earlier += r.sessions_issued();
    }

    /// Sessions issued by the running instance.
    fn now_issued(&self) -> u64 {
        self.running.as_ref().map_or(0, Running::sessions_issued)
    }

    /// Sessions issued by every instance.
    fn issued(&self) -> u64 {
        self.earlier + self.now_issued()
    }

    /// Serials of the leaf certificates the running instance saw, in order.
    fn serials(&self) -> Vec<String> {
        self.running
            .as_ref()
            .expect("running")
            .decisions()
            .into_iter()
            .filter_map(|d| d.serial_decimal)
            .collect()
    }

    fn client(&self) -> Client {
        let opts = ClientOptions {
            max_attempts: 1,
            timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        };
        Client::new(
            Endpoint::parse(&format!("http://{}", self.addr)).unwrap(),
            &opts,
        )
        .unwrap()
    }

    /// A new P-256 key file and its certificate file in `dir`.
    fn key_files(&self, cn: &str) -> (PathBuf, PathBuf) {
        // A year: the CA's 30-day default would draw the expiry warning.
        let mut req = IssueRequest::new(&format!("CN={cn}"), KeySource::NewKey(KeyType::EcP256));
        req.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
        let issued = self.ca.issue(&req).unwrap();
        let key = replace(&self.dir, "key.pem", &issued.key_pem.unwrap());
        let cert = replace(&self.dir, "cert.pem", &issued.cert_pem);
        (key, cert)
    }

    /// A certificate for the public key in `public_pem`, valid from an hour ago for `days`.
    fn certify(&self, public_pem: &str, cn: &str, days: i64) -> String {
        let mut req = IssueRequest::new(
            &format!("CN={cn}"),
            KeySource::PublicKeyPem(public_pem.to_string()),
        );
        req.not_before = OffsetDateTime::now_utc() - time::Duration::hours(1);
        req.not_after = OffsetDateTime::now_utc() + time::Duration::days(days);
        self.ca.issue(&req).unwrap().cert_pem
    }
}

/// Writes `contents` beside `name` in `dir` and renames it over: how rotation tools replace files.
fn replace(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).unwrap();
    let p = dir.join(name);
    std::fs::rename(&tmp, &p).unwrap();
    p
}

/// The public key of the certificate file `cert`, by openssl.
fn public_of(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn request() -> SessionRequest {
    SessionRequest {
        region: "us-east-1".into(),
        profile_arn: PROFILE.into(),
        role_arn: ROLE.into(),
        trust_anchor_arn: ANCHOR.into(),
        duration_seconds: 3600,
        role_session_name: None,
    }
}

/// Log lines the refresher wrote.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn sink(&self) -> Log {
        let lines = self.0.clone();
        Arc::new(move |l: &str| {
            eprintln!("refresher: {l}");
            lines.lock().unwrap().push(l.to_string());
        })
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, needle: &str) -> usize {
        self.all().iter().filter(|l| l.contains(needle)).count()
    }
}

fn start(svc: &Service, key: KeyOptions, policy: Policy, lines: &Lines) -> Refresher {
    let mut opts = RefresherOptions::new(key, svc.client(), request());
    opts.policy = policy;
    opts.jitter_seed = Some(1);
    opts.log = Some(lines.sink());
    Refresher::start(opts).unwrap()
}

fn file_key(key: &Path, cert: &Path) -> KeyOptions {
    KeyOptions {
        private_key: Some(key.display().to_string()),
        certificate: Some(cert.display().to_string()),
        ..KeyOptions::default()
    }
}

/// Refreshes every ~6 s with credentials of 62 s: fast tests of the plumbing (the default half-life
/// schedule is in the first test and the unit tests).
fn quick() -> Policy {
    Policy {
        refresh_fraction: 0.1,
        jitter_fraction: 0.02,
        ..Policy::default()
    }
}

/// Waits for the set after `after`, at most `limit`.
fn next_set(r: &Refresher, after: u64, limit: Duration) -> Arc<Issued> {
    r.wait_newer(after, Instant::now() + limit)
        .unwrap_or_else(|| panic!("no set after generation {after} within {limit:?}"))
}

fn left(set: &Issued) -> f64 {
    (set.credentials.expires_at - OffsetDateTime::now_utc()).as_seconds_f64()
}

/// With the default schedule and 62 s credentials: one CreateSession per half-life (±5 %), each
/// set handed out while it has more than half its life left, no other calls (single flight).
#[test]
fn refreshes_once_per_half_life_with_one_create_session_each() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("half-life");
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), Policy::default(), &lines);
    let first = r.current().unwrap();
    assert_eq!((first.generation, svc.issued()), (1, 1));
    assert!(!first.credentials.access_key_id.is_empty());
    // Readers meanwhile always get a set with at least ~27 of its 62 s left.
    let reader = {
        let r = r.clone();
        std::thread::spawn(move || {
            let mut least = f64::MAX;
            let end = Instant::now() + Duration::from_secs(60);
            while Instant::now() < end {
                let set = r.current().expect("a set at every moment");
                least = least.min(left(&set));
                std::thread::sleep(Duration::from_millis(100));
            }
            least
        })
    };
    let second = next_set(&r, 1, Duration::from_secs(40));
    let third = next_set(&r, 2, Duration::from_secs(40));
    for (a, b) in [(&first, &second), (&second, &third)] {
        let gap = (b.obtained_at - a.obtained_at).as_seconds_f64();
        assert!((27.5..=35.0).contains(&gap), "refresh after {gap} s");
    }
    assert_eq!(third.generation, 3);
    assert_eq!(svc.issued(), 3, "CreateSession calls beyond the schedule");
    let least = reader.join().unwrap();
    assert!(least >= 26.0, "a reader got a set with {least} s left");
    assert_eq!(svc.issued(), 3);
    assert!(lines.all().is_empty(), "{:?}", lines.all());

    r.shutdown();
    r.shutdown();
    let t = Instant::now();
    assert!(
        r.wait_newer(3, Instant::now() + Duration::from_secs(30))
            .is_none()
    );
    assert!(t.elapsed() < Duration::from_secs(1));
}

/// The emulator stops: the last good set is handed out until its margin before expiry, then
/// `current()` fails (never an expired set); failures are logged once each with the next attempt's
/// time, at most one attempt per 2 s. Restarted on the same port, the service is used again within
/// the backoff cap (a quarter of the lifetime).
#[test]
fn outage_keeps_the_last_set_until_it_expires_then_recovers_on_the_same_port() {
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("outage");
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), quick(), &lines);
    let first = r.current().unwrap();
    svc.stop();
    let down_at = Instant::now();

    // Until the set's margin (5 s for 62 s) it is served; then never again.
    let expires = first.credentials.expires_at;
    let mut last_ok = None;
    let unavailable = loop {
        match r.current() {
            Ok(set) => {
                assert_eq!(set.generation, 1);
                assert!(left(&set) > 4.0, "{} s left", left(&set));
                last_ok = Some(OffsetDateTime::now_utc());
            }
            Err(u) => break u,
        }
        assert!(down_at.elapsed() < Duration::from_secs(70), "never expired");
        std::thread::sleep(Duration::from_millis(100));
    };
    let until_expiry = (expires - last_ok.unwrap()).as_seconds_f64();
    assert!((4.0..=6.5).contains(&until_expiry), "{until_expiry}");
    assert!(
        unavailable.reason.contains("expired") && unavailable.reason.contains("fails"),
        "{}",
        unavailable.reason
    );
    assert!(
        !unavailable
            .reason
            .contains(&first.credentials.access_key_id)
    );
    // The next failure after the expiry says nothing valid is left (it comes within the backoff
    // cap, 15.5 s for 62 s sets); meanwhile nothing is handed out.
    let failed_lines = || -> Vec<String> {
        lines
            .all()
            .into_iter()
            .filter(|l| l.starts_with("refreshing credentials failed"))
            .collect()
    };
    let after_expiry = Instant::now();
    while !failed_lines()
        .last()
        .is_some_and(|l| l.contains("no valid credentials to serve"))
    {
        assert!(r.current().is_err());
        assert!(
            after_expiry.elapsed() < Duration::from_secs(20),
            "no failure logged after the expiry: {:?}",
            failed_lines()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(r.current().is_err());

    let failures = failed_lines();
    let outage = down_at.elapsed().as_secs_f64();
    assert!(!failures.is_empty());
    assert!(
        (failures.len() as f64) <= outage / 2.0 + 1.0,
        "{} attempts in {outage} s",
        failures.len()
    );
    for l in &failures {
        assert!(
            l.contains("cannot reach") && l.contains("next attempt at"),
            "{l}"
        );
    }
    assert!(failures[0].contains("serving the previous credentials until"));
    assert!(
        failures
            .last()
            .unwrap()
            .contains("no valid credentials to serve")
    );
    assert_eq!(svc.issued(), 1);

    svc.restart();
    let back = Instant::now();
    let set = next_set(&r, 1, Duration::from_secs(20));
    assert!(
        back.elapsed() <= Duration::from_millis(15_500 + 1_000),
        "recovered after {:?}",
        back.elapsed()
    );
    assert_eq!(set.generation, 2);
    assert!(r.current().is_ok());
    assert_eq!(svc.now_issued(), 1);
    assert_eq!(lines.count("succeeded again after"), 1);
    eprintln!(
        "outage test: {} failed attempts in {outage:.0} s; CreateSession calls seen: {} before, {} \
         after the restart",
        failures.len(),
        svc.earlier,
        svc.now_issued()
    );
}

/// No service at start: `start` returns (the failure is operational), `current()` says why, and
/// the first set comes when the service does.
#[test]
fn first_fetch_failure_is_retried_and_nothing_is_handed_out_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("first");
    svc.stop();
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), quick(), &lines);
    let u = r.current().unwrap_err();
    assert!(
        u.reason.starts_with("no credentials yet: cannot reach"),
        "{}",
        u.reason
    );
    assert!(lines.all()[0].contains("(attempt 1 in a row)"));
    svc.restart();
    let set = next_set(&r, 0, Duration::from_secs(10));
    assert_eq!(set.generation, 1);
    assert_eq!(svc.issued(), 1);
}

/// Certificate files rotated under a running refresher are used at the next refresh; a replacement
/// for another key is refused and logged once, the previous identity keeps working; a leaf that
/// expires within 30 days is warned about once, not at every refresh.
#[test]
fn rotated_certificate_is_used_and_a_mismatching_replacement_is_kept_out() {
    let tmp = tempfile::tempdir().unwrap();
    let svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("rotation");
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), quick(), &lines);
    let serial1 = svc.serials()[0].clone();

    let renewed = svc.certify(&public_of(&cert), "renewed", 10);
    replace(tmp.path(), "cert.pem", &renewed);
    let g = next_set(&r, 1, Duration::from_secs(15)).generation;
    let serials = svc.serials();
    let serial2 = serials.last().unwrap().clone();
    assert_ne!(serial1, serial2);
    assert_eq!(lines.count("certificate rotated: now CN=renewed"), 1);
    assert_eq!(lines.count("warning: the leaf certificate CN=renewed"), 1);

    // A certificate for a key the refresher does not have.
    let other = svc
        .ca
        .issue(&IssueRequest::new(
            "CN=foreign",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .unwrap()
        .cert_pem;
    replace(tmp.path(), "cert.pem", &other);
    let g = next_set(&r, g, Duration::from_secs(15)).generation;
    let g = next_set(&r, g, Duration::from_secs(15)).generation;
    assert!(g >= 4);
    // Every set after the refusal still came from the renewed certificate.
    let serials = svc.serials();
    assert!(serials[2..].iter().all(|s| *s == serial2), "{serials:?}");
    assert_eq!(
        lines.count("keeping the previous ones"),
        1,
        "{:?}",
        lines.all()
    );
    assert!(
        lines
            .all()
            .iter()
            .any(|l| l.contains("does not match certificate"))
    );
    // The renewed leaf's expiry warning was not repeated at each refresh.
    assert_eq!(lines.count("warning: the leaf certificate"), 1);
    assert_eq!(svc.issued(), serials.len() as u64);
}

/// The end of validity of the certificate file `cert`, by openssl.
fn not_after_of(cert: &Path) -> OffsetDateTime {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
        .arg(cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    // notAfter=2026-12-01 00:25:00Z
    let value = text
        .trim()
        .trim_start_matches("notAfter=")
        .replace(' ', "T");
    OffsetDateTime::parse(&value, &time::format_description::well_known::Rfc3339).unwrap()
}

/// Polls `status()` until `done` holds, at most `limit`.
fn status_when(
    r: &Refresher,
    limit: Duration,
    done: impl Fn(&RefreshStatus) -> bool,
) -> RefreshStatus {
    let deadline = Instant::now() + limit;
    loop {
        let s = r.status();
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never reached: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `status()` tells the certificate signing (escaped; replaced when the file is rotated), the
/// cached set's times, the successes and failures with the last failure's time and secret-free
/// message (kept after a success), and one CreateSession latency per attempt that reached it.
#[test]
fn status_reports_certificate_counts_last_failure_and_latency() {
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("status\u{1b}[31m");
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), quick(), &lines);
    let first = r.current().unwrap();
    let s = r.status();
    let c = s.certificate.clone().expect("certificate");
    // The escape character reaches no terminal: RFC 4514 writes it as `\1B`.
    assert_eq!(c.subject, "CN=status\\1B[31m");
    assert_eq!(c.serial, svc.serials()[0]);
    assert_eq!(c.not_after, not_after_of(&cert));
    assert_eq!(s.expires_at, Some(first.credentials.expires_at));
    assert_eq!(s.obtained_at, Some(first.obtained_at));
    assert_eq!((s.successes, s.failures), (1, 0));
    assert!(s.last_failure.is_none());
    assert_eq!(s.latency.count(), 1);
    assert!(
        s.latency.sum() > 0.0 && s.latency.sum() < 5.0,
        "{:?}",
        s.latency
    );

    svc.stop();
    let s = status_when(&r, Duration::from_secs(20), |s| s.failures > 0);
    let (at, message) = s.last_failure.clone().unwrap();
    assert!(message.contains("cannot reach"), "{message}");
    assert!(!message.contains(&first.credentials.access_key_id));
    assert!(!message.contains(first.credentials.session_token.expose()));
    assert!((OffsetDateTime::now_utc() - at).abs() < time::Duration::seconds(10));
    assert_eq!(s.successes, 1);
    // The failed attempts reached CreateSession (connection refused): their time is counted too.
    assert_eq!(s.latency.count(), s.successes + s.failures);
    assert_eq!(s.expires_at, Some(first.credentials.expires_at));

    let renewed = svc.certify(&public_of(&cert), "renewed status", 365);
    replace(tmp.path(), "cert.pem", &renewed);
    svc.restart();
    let set = next_set(&r, 1, Duration::from_secs(20));
    let s = r.status();
    let c = s.certificate.clone().unwrap();
    assert_eq!(c.subject, "CN=renewed status");
    assert_eq!(&c.serial, svc.serials().last().unwrap());
    assert_eq!(c.not_after, not_after_of(&cert));
    assert_eq!(s.successes, 2);
    assert!(s.failures >= 1);
    assert!(
        s.last_failure.is_some(),
        "the last failure is kept after a success"
    );
    assert_eq!(s.obtained_at, Some(set.obtained_at));
    assert_eq!(s.expires_at, Some(set.credentials.expires_at));
    assert_eq!(s.latency.count(), s.successes + s.failures);
}

/// `wait_usable` with no service: times out with the reason `current()` gives; wakes as soon as the
/// first set arrives once the service is up; then answers at once. A waiter is released by
/// shutdown.
#[test]
fn wait_usable_waits_for_the_first_set_and_is_released_by_shutdown() {
    let tmp = tempfile::tempdir().unwrap();
    let mut svc = Service::start(tmp.path(), 62);
    let (key, cert) = svc.key_files("wait");
    svc.stop();
    let lines = Lines::default();
    let r = start(&svc, file_key(&key, &cert), quick(), &lines);
    let begin = Instant::now();
    let u = r
        .wait_usable(Instant::now() + Duration::from_millis(500))
        .unwrap_err();
    assert!(begin.elapsed() >= Duration::from_millis(500));
    assert!(
        u.reason.starts_with("no credentials yet: cannot reach"),
        "{}",
        u.reason
    );
    assert_eq!(u, r.current().unwrap_err());

    svc.restart();
    let set = r
        .wait_usable(Instant::now() + Duration::from_secs(20))
        .unwrap();
    assert_eq!((set.generation, svc.issued()), (1, 1));
    let begin = Instant::now();
    let again = r
        .wait_usable(Instant::now() + Duration::from_secs(20))
        .unwrap();
    assert!(begin.elapsed() < Duration::from_millis(500));
    assert_eq!(again.generation, 1);

    // A second refresher with no service: its waiter is let go by shutdown, not the deadline.
    svc.stop();
    let r2 = start(&svc, file_key(&key, &cert), quick(), &Lines::default());
    let waiter = {
        let r2 = r2.clone();
        std::thread::spawn(move || {
            let begin = Instant::now();
            let result = r2.wait_usable(Instant::now() + Duration::from_secs(60));
            (result, begin.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    r2.shutdown();
    let (result, waited) = waiter.join().unwrap();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(
        result.unwrap_err().reason,
        "the credential service is shutting down"
    );
}

/// Runs `body` in a child process of this test binary (`--exact NAME`) with SoftHSM pointed at a
/// private token directory and pkcs11-spy at SoftHSM and `spy.log`; `setup` runs here first.
fn on_token(name: &str, setup: impl FnOnce(&SoftHsm), body: impl FnOnce(&SoftHsm, &Path)) {
    const CHILD: &str = "RA_REFRESH_TEST_DIR";
    if let Some(dir) = std::env::var_os(CHILD) {
        let hsm = SoftHsm::at(PathBuf::from(dir));
        let spy = softhsm::spy_module().expect("the parent checked for pkcs11-spy");
        body(&hsm, &spy);
        return;
    }
    let Some(hsm) = SoftHsm::new() else { return };
    if softhsm::spy_module().is_none() {
        let _ = hsm_tests::skip("OpenSC's pkcs11-spy.so is missing");
        return;
    }
    setup(&hsm);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, hsm.dir())
        .envs(hsm.spy_env(&hsm.dir().join("spy.log")))
        .env_remove("ROLESANYWHERE_PKCS11_PIN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child test {name} failed:\n{text}"
    );
}

/// A token "ra" with a P-256 key (id 01, label k) and a certificate for it from the CA in the
/// token's directory.
fn token_setup(hsm: &SoftHsm) {
    hsm.init_token("ra");
    let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
    let svc = Service::start(hsm.dir(), 62);
    let cert = svc.certify(&public, "token", 365);
    hsm.write_cert("ra", &cert, "01", "k");
}

fn token_key(spy: &Path) -> KeyOptions {
    KeyOptions {
        certificate: Some(format!(
            "pkcs11:token=ra;object=k;type=cert?pin-value={PIN}"
        )),
        pkcs11_lib: Some(spy.to_path_buf()),
        ..KeyOptions::default()
    }
}

/// One login for the life of the refresher, however many refreshes; the module is finalized at
/// shutdown.
#[test]
fn softhsm_key_through_many_refreshes_with_one_login() {
    on_token(
        "softhsm_key_through_many_refreshes_with_one_login",
        token_setup,
        |hsm, spy| {
            let svc = Service::start(hsm.dir(), 62);
            let log = hsm.dir().join("spy.log");
            let lines = Lines::default();
            let r = start(&svc, token_key(spy), quick(), &lines);
            let mut g = 1;
            while g < 5 {
                g = next_set(&r, g, Duration::from_secs(15)).generation;
            }
            assert_eq!(svc.issued(), 5);
            assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
            assert_eq!(softhsm::count_calls(&log, "C_Sign"), 5);
            assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 0);
            r.shutdown();
            assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 1);
            assert_eq!(
                softhsm::count_calls(&log, "C_OpenSession"),
                softhsm::count_calls(&log, "C_CloseSession"),
                "sessions left open at shutdown"
            );
            assert!(lines.all().is_empty(), "{:?}", lines.all());
        },
    );
}

/// The token's directory disappears (the token is gone) and comes back: the refresher logs the
/// lost session, opens the token again when it is back, logs in once more, and refreshes again.
#[test]
fn softhsm_token_swapped_away_and_back_logs_in_again_once() {
    on_token(
        "softhsm_token_swapped_away_and_back_logs_in_again_once",
        token_setup,
        |hsm, spy| {
            let svc = Service::start(hsm.dir(), 62);
            let log = hsm.dir().join("spy.log");
            let lines = Lines::default();
            let r = start(&svc, token_key(spy), quick(), &lines);
            assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
            let tokens = hsm.dir().join("tokens");
            let away = hsm.dir().join("tokens.away");
            std::fs::rename(&tokens, &away).unwrap();
            std::fs::create_dir(&tokens).unwrap();
            // Until a refresh fails for the missing token.
            let t = Instant::now();
            while lines.count("refreshing credentials failed") == 0 {
                assert!(t.elapsed() < Duration::from_secs(20), "{:?}", lines.all());
                std::thread::sleep(Duration::from_millis(100));
            }
            std::fs::remove_dir(&tokens).unwrap();
            std::fs::rename(&away, &tokens).unwrap();
            let set = next_set(&r, 1, Duration::from_secs(30));
            assert!(set.generation >= 2);
            assert_eq!(
                softhsm::count_calls(&log, "C_Login"),
                2,
                "{:?}",
                lines.all()
            );
            assert_eq!(lines.count("again after the device fault"), 1);
            let g = next_set(&r, set.generation, Duration::from_secs(15)).generation;
            assert!(g > set.generation);
            assert_eq!(softhsm::count_calls(&log, "C_Login"), 2);
            r.shutdown();
        },
    );
}

/// A wrong PIN is never retried: `start` fails (the login is the identity's open), one C_Login.
#[test]
fn softhsm_wrong_pin_fails_start_with_one_login() {
    on_token(
        "softhsm_wrong_pin_fails_start_with_one_login",
        token_setup,
        |hsm, spy| {
            let svc = Service::start(hsm.dir(), 62);
            let key = KeyOptions {
                certificate: Some("pkcs11:token=ra;object=k;type=cert?pin-value=0000".into()),
                pkcs11_lib: Some(spy.to_path_buf()),
                ..KeyOptions::default()
            };
            let mut opts = RefresherOptions::new(key, svc.client(), request());
            opts.log = Some(Lines::default().sink());
            let e = match Refresher::start(opts) {
                Ok(_) => panic!("started with a wrong PIN"),
                Err(e) => e,
            };
            assert!(e.to_string().contains("CKR_PIN_INCORRECT"), "{e}");
            assert!(!e.to_string().contains("0000"), "{e}");
            assert_eq!(
                softhsm::count_calls(&hsm.dir().join("spy.log"), "C_Login"),
                1
            );
            assert_eq!(svc.issued(), 0);
        },
    );
}

/// This test process opens TPM keys itself, as `rolesanywhere-agent-tpm` does: with the crate's
/// TPM backend installed (`rolesanywhere-agent` has none).
fn with_tpm_backend() {
    #[cfg(feature = "tpm")]
    {
        use rolesanywhere_agent::signer::backends::{Backends, install, installed};
        install(Backends {
            tpm: Some(&rolesanywhere_agent::signer::tpm::BACKEND),
        });
        assert!(installed().has_tpm());
    }
}

/// swtpm is restarted (connections break, the loaded key is gone): the refresher opens the key
/// again and keeps refreshing.
#[test]
fn swtpm_restarted_under_a_running_refresher_reloads_the_key() {
    with_tpm_backend();
    let mut tpm = match Swtpm::start() {
        Ok(t) => t,
        Err(u) => {
            let _ = hsm_tests::skip(&u.0);
            return;
        }
    };
    let key = tpm.openssl_key("key.tss2.pem", "EC", &["group:P-256"]);
    let public = std::fs::read_to_string(tpm.path("key.tss2.pem.pub.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(dir.path(), 62);
    let cert = replace(dir.path(), "cert.pem", &svc.certify(&public, "tpm", 365));
    let opts = KeyOptions {
        tpm_tcti: Some(tpm.tcti()),
        no_tpm_key_password: true,
        ..file_key(&key, &cert)
    };
    let lines = Lines::default();
    let r = start(&svc, opts, quick(), &lines);
    let g = next_set(&r, 1, Duration::from_secs(15)).generation;
    tpm.restart();
    let set = next_set(&r, g, Duration::from_secs(30));
    let set = next_set(&r, set.generation, Duration::from_secs(15));
    assert!(set.generation >= g + 2);
    assert_eq!(
        lines.count("again after the device fault"),
        1,
        "{:?}",
        lines.all()
    );
    assert_eq!(svc.issued(), set.generation);
    let transient = || {
        let out = tpm.run(&["tpm2_getcap", "handles-transient"]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // swtpm has no resource manager: the key the refresher loaded is visible to tpm2-tools.
    assert!(!transient().is_empty());
    r.shutdown();
    assert_eq!(transient(), "", "objects left loaded after shutdown");
}

/// A TPM that cannot be reached at start is not a configuration mistake: `start` returns, nothing is
/// handed out, and opening is retried in the background (rate-bounded like any attempt).
#[test]
fn unreachable_tpm_at_start_is_retried_in_the_background() {
    with_tpm_backend();
    let tpm = match Swtpm::start() {
        Ok(t) => t,
        Err(u) => {
            let _ = hsm_tests::skip(&u.0);
            return;
        }
    };
    let made = tpm.openssl_key("key.tss2.pem", "EC", &["group:P-256"]);
    let public = std::fs::read_to_string(tpm.path("key.tss2.pem.pub.pem")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.tss2.pem");
    std::fs::copy(&made, &key).unwrap();
    let tcti = tpm.tcti();
    drop(tpm);
    let svc = Service::start(dir.path(), 62);
    let cert = replace(dir.path(), "cert.pem", &svc.certify(&public, "tpm", 365));
    let opts = KeyOptions {
        tpm_tcti: Some(tcti),
        no_tpm_key_password: true,
        ..file_key(&key, &cert)
    };
    let lines = Lines::default();
    let r = start(&svc, opts, quick(), &lines);
    let u = r.current().unwrap_err();
    assert!(u.reason.contains("cannot open the TPM"), "{}", u.reason);
    std::thread::sleep(Duration::from_secs(5));
    let tries = lines.count("refreshing credentials failed");
    assert!((2..=4).contains(&tries), "{:?}", lines.all());
    assert_eq!(svc.issued(), 0);
    r.shutdown();
}
