//! A private swtpm per test on free loopback TCP ports, killed (only it) on drop.
//!
//! Owns: starting `swtpm socket` with its state in a temporary directory, waiting until its command
//! port accepts connections (polling the port, never a fixed sleep), relaxing the dictionary-attack
//! lockout of that private TPM so wrong-password tests cannot lock it, and running tpm2-tools and
//! tpm2-openssl against it. It must not touch any other TPM or process: it kills only the PID it
//! started. Uses only std so the agent's own unit tests can include it too.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Programs the TPM tests need.
pub const TOOLS: &[&str] = &[
    "swtpm",
    "tpm2_dictionarylockout",
    "tpm2_createprimary",
    "openssl",
];

/// A running private swtpm.
pub struct Swtpm {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// Why no swtpm could be started: a missing tool (skip or fail, see `hsm_tests::skip`).
#[derive(Debug)]
pub struct Unavailable(pub String);

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Two consecutive free loopback ports (swtpm's command port and control port = command + 1).
fn free_port_pair() -> u16 {
    loop {
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = a.local_addr().expect("local addr").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
}

impl Swtpm {
    /// Starts a fresh TPM (manufactured state, `TPM2_Startup(CLEAR)` done) and relaxes its lockout
    /// (1000 tries, no recovery wait). Panics when a started swtpm does not come up: that is a broken
    /// environment, not a missing tool.
    pub fn start() -> Result<Swtpm, Unavailable> {
        for t in TOOLS {
            if !on_path(t) {
                return Err(Unavailable(format!(
                    "{t} not installed (apt-get install swtpm swtpm-tools tpm2-tools tpm2-openssl)"
                )));
            }
        }
        // Another process may grab a port between probing and swtpm binding it: retry a few times.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let state = dir.path().join("state");
            std::fs::create_dir(&state).expect("state dir");
            let port = free_port_pair();
            let mut child = Command::new("swtpm")
                .arg("socket")
                .arg("--tpmstate")
                .arg(format!("dir={}", state.display()))
                .arg("--tpm2")
                .arg("--server")
                .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
                .arg("--ctrl")
                .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
                .arg("--flags")
                .arg("not-need-init,startup-clear")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cannot start swtpm");
            if wait_listening(&mut child, port) {
                let tpm = Swtpm { child, port, dir };
                tpm.tool(&[
                    "tpm2_dictionarylockout",
                    "-s",
                    "-n",
                    "1000",
                    "-t",
                    "0",
                    "-l",
                    "0",
                ]);
                tpm.tool(&["tpm2_dictionarylockout", "-c"]);
                return Ok(tpm);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("swtpm did not start listening on a loopback port after 5 attempts");
    }

    /// The TCTI for this TPM: `swtpm:host=127.0.0.1,port=P`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The command port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A scratch directory that lives as long as the TPM (key files, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A path in [`Self::dir`].
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs a program against this TPM (`TPM2TOOLS_TCTI`, `TPM2OPENSSL_TCTI` set, ESYS warnings
    /// silenced) in [`Self::dir`], without checking the result.
    pub fn run(&self, args: &[&str]) -> Output {
        let (prog, rest) = args.split_first().expect("a program");
        Command::new(prog)
            .args(rest)
            .current_dir(self.dir.path())
            .env("TPM2TOOLS_TCTI", self.tcti())
            .env("TPM2OPENSSL_TCTI", self.tcti())
            .env("TSS2_LOG", "all+none")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"))
    }

    /// Like [`Self::run`], but panics with the tool's stderr unless it succeeds; returns stdout.
    /// tpm2-tools commands are followed by `tpm2_flushcontext -t`, since swtpm has no resource
    /// manager and only three object slots.
    pub fn tool(&self, args: &[&str]) -> Vec<u8> {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0].starts_with("tpm2_") && args[0] != "tpm2_flushcontext" {
            let f = self.run(&["tpm2_flushcontext", "-t"]);
            assert!(f.status.success(), "tpm2_flushcontext -t failed");
        }
        out.stdout
    }

    /// Creates a key file with tpm2-openssl (`openssl genpkey -provider tpm2`), e.g. `alg` = `EC` with
    /// `["group:P-256"]` or `RSA` with `["bits:2048"]`; extra `-pkeyopt`s such as `user-auth:1234` or
    /// `parent:0x81000001`. Writes `name` and `name.pub.pem` (the public key) and returns the first.
    pub fn openssl_key(&self, name: &str, alg: &str, pkeyopts: &[&str]) -> PathBuf {
        let mut args = vec![
            "openssl",
            "genpkey",
            "-provider",
            "tpm2",
            "-provider",
            "default",
        ];
        args.extend(["-algorithm", alg]);
        for o in pkeyopts {
            args.extend(["-pkeyopt", o]);
        }
        args.extend(["-out", name]);
        self.tool(&args);
        let pub_name = format!("{name}.pub.pem");
        // Reading the public half of a key with a password makes tpm2-openssl load it, which needs
        // the password.
        let pass = pkeyopts
            .iter()
            .find_map(|o| o.strip_prefix("user-auth:"))
            .map(|p| format!("pass:{p}"));
        let mut extra = vec!["-out", &pub_name];
        if let Some(p) = &pass {
            extra.extend(["-passin", p]);
        }
        self.tool(&Self::pubout_args(name, &extra));
        self.path(name)
    }

    /// `openssl pkey` through tpm2-openssl printing the public half of `key`, then `extra`.
    pub fn pubout_args<'a>(key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "openssl",
            "pkey",
            "-provider",
            "tpm2",
            "-provider",
            "default",
            "-in",
            key,
            "-pubout",
        ];
        args.extend(extra);
        args
    }

    /// Creates an owner-hierarchy primary (`tpm2_createprimary -C o` with `args`, context in `ctx`)
    /// and makes it persistent at `handle`.
    pub fn persistent_primary(&self, args: &[&str], ctx: &str, handle: &str) {
        let mut create = vec!["tpm2_createprimary", "-C", "o"];
        create.extend(args);
        create.extend(["-c", ctx]);
        self.tool(&create);
        self.evict(ctx, handle);
    }

    /// Makes the object in context file `ctx` persistent at `handle` (`tpm2_evictcontrol -C o`).
    pub fn evict(&self, ctx: &str, handle: &str) {
        self.tool(&["tpm2_evictcontrol", "-C", "o", "-c", ctx, handle]);
    }

    /// A storage key with the ECC P-256 SRK template at 0x81000001 (`srk.ctx`); `extra` goes
    /// before `-c`, e.g. `["-u", "unique.bin"]` for another unique.
    pub fn persistent_srk(&self, extra: &[&str]) {
        let mut args = vec![
            "-g",
            "sha256",
            "-G",
            "ecc256:null:aes128cfb",
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
        ];
        args.extend(extra);
        self.persistent_primary(&args, "srk.ctx", "0x81000001");
    }

    /// A tpm2-tools EC key (`key.pub`, `key.priv`, loaded as `key.ctx`) under a new persistent
    /// parent 0x81000102, optionally with a parent password, a key password and a policy file (then
    /// without `userwithauth`). Returns its public key PEM (`key.pub.pem`).
    pub fn tools_key(
        &self,
        parent_pw: Option<&str>,
        key_pw: Option<&str>,
        policy: Option<&str>,
    ) -> PathBuf {
        let mut args = vec!["-G", "ecc256:null:aes128cfb"];
        if let Some(p) = parent_pw {
            args.extend(["-p", p]);
        }
        self.persistent_primary(&args, "parent.ctx", "0x81000102");
        let mut args = vec![
            "tpm2_create",
            "-C",
            "0x81000102",
            "-G",
            "ecc256",
            "-u",
            "key.pub",
            "-r",
            "key.priv",
        ];
        if let Some(p) = parent_pw {
            args.extend(["-P", p]);
        }
        if let Some(p) = key_pw {
            args.extend(["-p", p]);
        }
        if let Some(l) = policy {
            args.extend([
                "-L",
                l,
                "-a",
                "fixedtpm|fixedparent|sensitivedataorigin|sign",
            ]);
        }
        self.tool(&args);
        let mut args = vec![
            "tpm2_load",
            "-C",
            "0x81000102",
            "-u",
            "key.pub",
            "-r",
            "key.priv",
            "-c",
            "key.ctx",
        ];
        if let Some(p) = parent_pw {
            args.extend(["-P", p]);
        }
        self.tool(&args);
        self.tool(&[
            "tpm2_readpublic",
            "-c",
            "key.ctx",
            "-f",
            "pem",
            "-o",
            "key.pub.pem",
        ]);
        self.path("key.pub.pem")
    }

    /// [`Self::tools_key`] under a parent with password `parent_pw`, wrapped by
    /// `tpm2_encodeobject` into the key file `enc.tss2.pem`. Returns its public key PEM.
    pub fn encoded_tools_key(&self, parent_pw: &str) -> PathBuf {
        let pub_pem = self.tools_key(Some(parent_pw), None, None);
        self.tool(&[
            "tpm2_encodeobject",
            "-C",
            "0x81000102",
            "-P",
            parent_pw,
            "-u",
            "key.pub",
            "-r",
            "key.priv",
            "-o",
            "enc.tss2.pem",
        ]);
        pub_pem
    }

    /// [`Self::tools_key`] bound by a PolicyPCR to sha256 PCR 16 (policy file `pcr.policy`).
    /// Returns its public key PEM.
    pub fn pcr16_policy_key(&self) -> PathBuf {
        self.tool(&[
            "tpm2_createpolicy",
            "--policy-pcr",
            "-l",
            "sha256:16",
            "-L",
            "pcr.policy",
        ]);
        self.tools_key(None, None, Some("pcr.policy"))
    }
}

/// Waits until `port` accepts a connection, or the child exits, or 10 s pass.
fn wait_listening(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut backoff = Duration::from_millis(1);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        // Refused connects return at once; back off briefly so the poll does not spin a core the
        // starting swtpm needs.
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(20));
    }
    false
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // Only the process this fixture started, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
