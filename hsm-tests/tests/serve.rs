//! `serve` (the agent binary) with keys on real devices, read through IMDS over raw HTTP while the
//! emulator issues short-lived credentials (62 s, the shortest the client accepts): a SoftHSM2 key
//! through OpenSC's pkcs11-spy (one login for every refresh; the token directory swapped away and
//! back), and a swtpm key with swtpm restarted under the running server.
//!
//! CreateSession counts are the emulator's own; PKCS#11 call counts come from the spy's log.
//! Missing tools skip, or fail with `HSM_TESTS_REQUIRED=1` (or `CI`).

use hsm_tests::emu::Emu;
use hsm_tests::softhsm::{self, PIN, SoftHsm};
use hsm_tests::swtpm::Swtpm;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// The emulator's credential lifetime: the shortest the client accepts. `serve` refreshes at about
/// half of it.
const LIFETIME: u32 = 62;
const CREDS: &str = "/latest/meta-data/iam/security-credentials/";

/// A running `serve --port 0`: its address and its stderr so far.
struct Serve {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts `serve --port 0` with `key_args` and the emulator's endpoint and ARNs, in a clean
    /// environment (PATH, HOME, `TSS2_LOG=all+none`) plus `env`; waits for the IMDS line.
    fn start(emu: &Emu, key_args: &[&str], env: &[(String, String)]) -> Serve {
        let mut cmd = Command::new(hsm_tests::agent_bin());
        cmd.args(["serve", "--port", "0"])
            .args(key_args)
            .args(emu.args())
            .env_clear();
        for k in ["PATH", "HOME"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd.env("TSS2_LOG", "all+none")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot start the agent binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while err.read_line(&mut line).is_ok_and(|n| n > 0) {
                eprint!("serve: {line}");
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
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no environment line; stderr:\n{}", stderr.lock().unwrap())
            });
        let url = line
            .trim_end()
            .strip_prefix("AWS_EC2_METADATA_SERVICE_ENDPOINT=http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Serve {
            child,
            addr: url.trim_end_matches('/').parse().unwrap(),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGTERM, then the exit code (failing after 20 s).
    fn terminate(&mut self) -> i32 {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "serve still running after SIGTERM; stderr:\n{}",
                self.stderr()
            );
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

/// Sends `raw` on a new connection; returns the status and the body (framed by Content-Length).
fn exchange(addr: SocketAddr, raw: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(raw.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).unwrap(),
            1,
            "connection closed in the head"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("no Content-Length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

/// An IMDSv2 reader: a session token, then the role name.
struct Imds {
    addr: SocketAddr,
    token: String,
    path: String,
}

impl Imds {
    fn new(addr: SocketAddr) -> Imds {
        let (status, token) = exchange(
            addr,
            "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n",
        );
        assert_eq!(status, 200, "{token}");
        let mut imds = Imds {
            addr,
            token,
            path: CREDS.to_string(),
        };
        let (status, role) = imds.get();
        assert_eq!(status, 200, "{role}");
        assert!(!role.is_empty() && !role.contains('\n'), "{role:?}");
        imds.path.push_str(&role);
        imds
    }

    fn get(&self) -> (u16, String) {
        exchange(
            self.addr,
            &format!(
                "GET {} HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token: {}\r\n\r\n",
                self.path, self.token
            ),
        )
    }

    /// The served credentials' access key id, after checking the answer is 200 with every field
    /// non-empty and an expiry in the future.
    fn access_key(&self) -> String {
        let (status, body) = self.get();
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["Code"], "Success", "{body}");
        for k in ["AccessKeyId", "SecretAccessKey", "Token", "Expiration"] {
            assert!(
                v[k].as_str().is_some_and(|s| !s.is_empty()),
                "{k} in {body}"
            );
        }
        assert!(
            v["Expiration"].as_str().unwrap() > utc_now().as_str(),
            "expired: {body}"
        );
        v["AccessKeyId"].as_str().unwrap().to_string()
    }

    /// Polls every 250 ms (each answer checked by [`Imds::access_key`]) until `sets` distinct sets
    /// were seen, at most `limit`; returns them in order.
    fn poll_sets(&self, keys: &mut Vec<String>, sets: usize, limit: Duration) {
        let start = Instant::now();
        while keys.len() < sets {
            let key = self.access_key();
            if keys.last() != Some(&key) {
                assert!(!keys.contains(&key), "an older set again: {key}");
                keys.push(key);
                eprintln!("set {} after {:?}", keys.len(), start.elapsed());
                continue;
            }
            assert!(
                start.elapsed() < limit,
                "{} sets within {limit:?}, wanted {sets}",
                keys.len()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Now as `YYYY-MM-DDTHH:MM:SSZ`, by date(1): comparable as a string with `Expiration`.
fn utc_now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A SoftHSM token "ra" with a P-256 key (label k) and its certificate from `emu`, and pkcs11-spy;
/// `None` when skipped.
fn token(emu: &Emu) -> Option<(SoftHsm, String)> {
    let hsm = SoftHsm::new()?;
    let Some(spy) = softhsm::spy_module() else {
        let _ = hsm_tests::skip("OpenSC's pkcs11-spy.so is missing");
        return None;
    };
    hsm.init_token("ra");
    let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
    let cert = emu.issue_for_public_key(&public, "serve-token");
    hsm.write_cert("ra", &cert, "01", "k");
    Some((hsm, spy.display().to_string()))
}

fn token_cert() -> String {
    format!("pkcs11:token=ra;object=k;type=cert?pin-value={PIN}")
}

/// Through three refreshes (four sets, each read over IMDS and never expired or empty): one
/// C_Login for the life of the server, one CreateSession and one C_Sign per set; SIGTERM exits 0
/// and finalizes the module.
#[test]
fn serve_with_a_softhsm_key_logs_in_once_across_refreshes() {
    let emu = Emu::short_lived(LIFETIME);
    let Some((hsm, spy)) = token(&emu) else {
        return;
    };
    let log = hsm.dir().join("spy.log");
    let cert = token_cert();
    let mut serve = Serve::start(
        &emu,
        &["--pkcs11-lib", &spy, "--certificate", &cert],
        &hsm.spy_env(&log),
    );
    let imds = Imds::new(serve.addr);
    let mut keys = Vec::new();
    // Half-life refreshes (~31 s each, with jitter): four sets in about 95 s.
    imds.poll_sets(&mut keys, 4, Duration::from_secs(115));
    assert_eq!(emu.sessions_issued(), keys.len() as u64, "{keys:?}");
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
    assert_eq!(softhsm::count_calls(&log, "C_Sign"), keys.len());
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 0);
    let stderr = serve.stderr();
    assert!(!stderr.contains("failed"), "{stderr}");
    assert!(!stderr.contains(PIN), "the PIN reached the log: {stderr}");
    assert_eq!(serve.terminate(), 0, "{}", serve.stderr());
    assert_eq!(softhsm::count_calls(&log, "C_Finalize"), 1);
}

/// The token's directory is moved away (the token disappears) and back while `serve` runs: the
/// last good set is served meanwhile, the failed refresh is logged, the token is opened and logged
/// in again once, and the next set is served; the emulator issued exactly the sets served.
#[test]
fn serve_with_a_softhsm_token_swapped_away_and_back_logs_in_again_once() {
    let emu = Emu::short_lived(LIFETIME);
    let Some((hsm, spy)) = token(&emu) else {
        return;
    };
    let log = hsm.dir().join("spy.log");
    let cert = token_cert();
    let serve = Serve::start(
        &emu,
        &["--pkcs11-lib", &spy, "--certificate", &cert],
        &hsm.spy_env(&log),
    );
    let imds = Imds::new(serve.addr);
    let mut keys = vec![imds.access_key()];
    assert_eq!(softhsm::count_calls(&log, "C_Login"), 1);
    let tokens = hsm.dir().join("tokens");
    let away = hsm.dir().join("tokens.away");
    std::fs::rename(&tokens, &away).unwrap();
    std::fs::create_dir(&tokens).unwrap();
    // The half-life refresh (~31 s) fails for the missing token; the first set is served meanwhile.
    let t = Instant::now();
    while !serve.stderr().contains("refreshing credentials failed") {
        assert_eq!(imds.access_key(), keys[0]);
        assert!(t.elapsed() < Duration::from_secs(45), "{}", serve.stderr());
        std::thread::sleep(Duration::from_millis(250));
    }
    std::fs::remove_dir(&tokens).unwrap();
    std::fs::rename(&away, &tokens).unwrap();
    // Retried within the backoff cap (a quarter of the lifetime), before the first set expires.
    imds.poll_sets(&mut keys, 2, Duration::from_secs(25));
    assert_eq!(emu.sessions_issued(), keys.len() as u64, "{keys:?}");
    assert_eq!(
        softhsm::count_calls(&log, "C_Login"),
        2,
        "{}",
        serve.stderr()
    );
    let stderr = serve.stderr();
    assert_eq!(
        stderr.matches("again after the device fault").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains(PIN), "the PIN reached the log: {stderr}");
}

/// swtpm restarted under `serve` (connections break, the loaded key is gone): the next refresh
/// loads the key again, logged once; every answer before and after is 200 with valid credentials,
/// the emulator issued exactly the sets served, and serving goes on with the refresh after that.
#[test]
fn serve_with_a_tpm_key_survives_a_swtpm_restart() {
    let mut tpm = match Swtpm::start() {
        Ok(t) => t,
        Err(u) => {
            let _ = hsm_tests::skip(&u.0);
            return;
        }
    };
    let emu = Emu::short_lived(LIFETIME);
    let key = tpm.openssl_key("key.tss2.pem", "EC", &["group:P-256"]);
    let public = std::fs::read_to_string(tpm.path("key.tss2.pem.pub.pem")).unwrap();
    let cert = tpm.path("cert.pem");
    std::fs::write(&cert, emu.issue_for_public_key(&public, "serve-tpm")).unwrap();
    let (key, cert) = (path_str(&key), path_str(&cert));
    let tcti = tpm.tcti();
    let mut serve = Serve::start(
        &emu,
        &[
            "--certificate",
            &cert,
            "--private-key",
            &key,
            "--tpm-tcti",
            &tcti,
            "--no-tpm-key-password",
        ],
        &[],
    );
    let imds = Imds::new(serve.addr);
    let mut keys = vec![imds.access_key()];
    tpm.restart();
    // The refresh at ~31 s meets the reset TPM and reloads the key; the one at ~62 s shows serving
    // goes on.
    imds.poll_sets(&mut keys, 3, Duration::from_secs(80));
    assert_eq!(emu.sessions_issued(), keys.len() as u64, "{keys:?}");
    let stderr = serve.stderr();
    assert_eq!(
        stderr.matches("again after the device fault").count(),
        1,
        "{stderr}"
    );
    assert_eq!(serve.terminate(), 0, "{}", serve.stderr());
    let out = tpm.run(&["tpm2_getcap", "handles-transient"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "objects left loaded after serve exited"
    );
}

fn path_str(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}
