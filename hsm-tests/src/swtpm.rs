//! A private swtpm per test on free loopback TCP ports, killed (only it) on drop.
//!
//! Owns: starting `swtpm socket` with its state in a temporary directory, waiting until its command
//! port accepts connections (polling the port, never a fixed sleep), relaxing the dictionary-attack
//! lockout of that private TPM so wrong-password tests cannot lock it, and running tpm2-tools and
//! tpm2-openssl against it. It must not touch any other TPM or process: it kills only the PID it
//! started. Uses only std so the agent's own unit tests can include it too.
//!
//! [`HostileTpm`] is the opposite: a TCP endpoint that speaks the swtpm TCTI's wire protocol badly
//! (never answers, answers garbage, drops the connection, or forwards to a real swtpm and stalls one
//! command), for the tests of what the agent does when a TPM misbehaves; forwarding, it records
//! every command's code, for the tests that count what the agent asks of the TPM.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
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
            let mut child = Self::spawn(&state, port);
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

    /// Kills this swtpm and starts it again on the same ports with the same state: what a host reset
    /// or a restarted simulator does to a running client (open connections break, transient objects
    /// and sessions are gone, `TPM2_Startup(CLEAR)` runs again; persistent objects stay).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let state = self.dir.path().join("state");
        // The ports were just released; another process could take one meanwhile, so try a while.
        for _ in 0..50 {
            let mut child = Self::spawn(&state, self.port);
            if wait_listening(&mut child, self.port) {
                self.child = child;
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("swtpm did not listen again on port {}", self.port);
    }

    fn spawn(state: &Path, port: u16) -> Child {
        Command::new("swtpm")
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
            .expect("cannot start swtpm")
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

/// What one port of a [`HostileTpm`] does with each connection.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Reads the request and never answers; the connection stays open until the endpoint is dropped.
    Silent,
    /// Reads the request, answers these bytes and closes.
    Answer(&'static [u8]),
    /// Reads the request and closes without answering.
    Close,
    /// Forwards TPM commands to a real TPM's command `port` on loopback and relays its answers, but
    /// never answers a command whose `TPM_CC` is `stall` (e.g. `0x15d` TPM2_Sign). Every command's
    /// code is recorded ([`HostileTpm::commands`]).
    Proxy {
        /// The real swtpm's command port.
        port: u16,
        /// The command code to swallow, if any.
        stall: Option<u32>,
    },
}

/// The swtpm control channel's success answer (a 4-byte zero result code), which is all the swtpm
/// TCTI needs from the control port (it sets the locality when it starts).
pub const CONTROL_OK: Behaviour = Behaviour::Answer(&[0, 0, 0, 0]);

/// The commands a [`Behaviour::Proxy`] forwarded: each `TPM_CC` with the response code the TPM
/// answered (`None` while unanswered, or never, for a stalled one).
type Commands = Vec<(u32, Option<u32>)>;

/// A misbehaving TPM endpoint on a pair of loopback ports (command port, control port = command + 1),
/// reached with the TCTI [`HostileTpm::tcti`]. Threads and connections end when it is dropped.
pub struct HostileTpm {
    port: u16,
    stop: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
    commands: Arc<Mutex<Commands>>,
}

impl HostileTpm {
    /// Listens on two free consecutive ports: `command` handles the TPM command port, `control` the
    /// swtpm control port.
    pub fn start(command: Behaviour, control: Behaviour) -> HostileTpm {
        let stop = Arc::new(AtomicBool::new(false));
        let commands = Arc::new(Mutex::new(Vec::new()));
        loop {
            let port = free_port_pair();
            let (Ok(cmd), Ok(ctrl)) = (
                TcpListener::bind((Ipv4Addr::LOCALHOST, port)),
                TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)),
            ) else {
                continue;
            };
            let acceptors = [(cmd, command), (ctrl, control)]
                .into_iter()
                .map(|(listener, behaviour)| {
                    let stop = stop.clone();
                    let commands = commands.clone();
                    std::thread::spawn(move || accept_loop(listener, behaviour, stop, commands))
                })
                .collect();
            return HostileTpm {
                port,
                stop,
                acceptors,
                commands,
            };
        }
    }

    /// `swtpm:host=127.0.0.1,port=P`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// Every command a [`Behaviour::Proxy`] port received so far, in order (the stalled one
    /// included), as its `TPM_CC` and the TPM's response code: the TPM's own view of what a client
    /// sent, e.g. how often it loaded a key (`0x157` TPM2_Load).
    pub fn commands(&self) -> Vec<(u32, Option<u32>)> {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many commands with this `TPM_CC` the proxy received.
    pub fn count(&self, code: u32) -> usize {
        self.commands().iter().filter(|c| c.0 == code).count()
    }

    /// How many commands with this `TPM_CC` the TPM completed (`TPM_RC_SUCCESS`); the others were
    /// refused or deferred, e.g. `TPM_RC_RETRY`, which the client's TSS sends again by itself.
    pub fn succeeded(&self, code: u32) -> usize {
        self.commands()
            .iter()
            .filter(|c| c.0 == code && c.1 == Some(0))
            .count()
    }
}

impl Drop for HostileTpm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake both accept loops so they see the flag.
        for p in [self.port, self.port + 1] {
            let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, p));
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    behaviour: Behaviour,
    stop: Arc<AtomicBool>,
    commands: Arc<Mutex<Commands>>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let stop = stop.clone();
        let commands = commands.clone();
        std::thread::spawn(move || serve(conn, behaviour, &stop, &commands));
    }
}

/// Holds `conn` open without answering until the endpoint is dropped.
fn hold(conn: TcpStream, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = conn.shutdown(Shutdown::Both);
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, stop: &AtomicBool, commands: &Mutex<Commands>) {
    let mut buf = [0u8; 4096];
    match behaviour {
        Behaviour::Silent => {
            let _ = conn.read(&mut buf);
            hold(conn, stop);
        }
        Behaviour::Answer(bytes) => {
            if matches!(conn.read(&mut buf), Ok(n) if n > 0) {
                let _ = conn.write_all(bytes);
            }
        }
        Behaviour::Close => {
            let _ = conn.read(&mut buf);
        }
        Behaviour::Proxy { port, stall } => {
            let Ok(mut up) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
                return;
            };
            // One TPM message at a time: a 10-byte header (tag, size, code) and size - 10 more bytes.
            while let Some(cmd) = read_message(&mut conn) {
                let code = u32::from_be_bytes([cmd[6], cmd[7], cmd[8], cmd[9]]);
                commands
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((code, None));
                if stall == Some(code) {
                    // Free the real TPM (swtpm serves one connection at a time), keep the client
                    // waiting.
                    drop(up);
                    hold(conn, stop);
                    return;
                }
                let Some(rsp) = up.write_all(&cmd).ok().and_then(|_| read_message(&mut up)) else {
                    return;
                };
                let rc = u32::from_be_bytes([rsp[6], rsp[7], rsp[8], rsp[9]]);
                if let Some(last) = commands
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last_mut()
                {
                    last.1 = Some(rc);
                }
                if conn.write_all(&rsp).is_err() {
                    return;
                }
            }
        }
    }
}

/// Reads one TPM command or response (header size field included), or `None` at the end.
fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut msg = vec![0u8; 10];
    s.read_exact(&mut msg).ok()?;
    let size = u32::from_be_bytes([msg[2], msg[3], msg[4], msg[5]]) as usize;
    if !(10..=1 << 16).contains(&size) {
        return None;
    }
    msg.resize(size, 0);
    s.read_exact(&mut msg[10..]).ok()?;
    Some(msg)
}
