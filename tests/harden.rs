//! `agent::harden` in processes of their own (it changes the whole process for good): this test
//! binary runs itself again (`--exact hardened_child --ignored`) as the process to harden, and
//! looks at it from outside — the kernel's own view (`/proc/PID/status`, `/proc/PID/environ`,
//! `/proc/PID/mem` opened by another process of the same user) besides what the child reports.
//!
//! As root, the children and the reading process run as `nobody` (`setpriv`): root reads any
//! process's memory, but a process of the same unprivileged user must not read a hardened one's,
//! while it can read an unhardened one's (the control that makes the check able to fail).

use rolesanywhere_agent::agent::harden::{MEMLOCK_ENOUGH, harden};
use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The child's mode: `harden` or `control` (not hardened); unset, the child does nothing.
const CHILD: &str = "RA_HARDEN_CHILD";
/// Set: the child waits for its stdin to close after reporting, for the parent to look at it.
const WAIT: &str = "RA_HARDEN_WAIT";
/// A value put in the child's environment, to look for in `/proc/PID/environ`.
const MARKER: &str = "RA_HARDEN_MARKER";

fn dumpable() -> i32 {
    // SAFETY: PR_GET_DUMPABLE takes no argument and returns the flag.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) }
}

fn core_limit() -> (u64, u64) {
    let mut l = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: `l` is a valid, writable rlimit living across the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut l) }, 0);
    (l.rlim_cur, l.rlim_max)
}

fn memlock_limit() -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut l) }, 0);
    l.rlim_cur
}

/// A field of `/proc/PID/status` (`VmLck`, `CapEff`), as its text after the colon.
fn status_field(pid: &str, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// `VmLck` in KiB.
fn locked_kib(pid: &str) -> u64 {
    status_field(pid, "VmLck")
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap()
}

/// Whether a process with the environment's limits and capabilities gets its memory locked.
fn may_lock(limit: u64, cap_eff_hex: &str) -> bool {
    let caps = u64::from_str_radix(cap_eff_hex, 16).unwrap();
    limit == libc::RLIM_INFINITY || limit >= MEMLOCK_ENOUGH || caps & (1 << 14) != 0
}

/// The child half: reports as `key=value` lines on stdout, then waits if asked.
#[test]
#[ignore = "run by the tests below, in a process of its own"]
fn hardened_child() {
    let Some(mode) = std::env::var_os(CHILD) else {
        eprintln!("hardened_child: not run by its parent test; nothing to do");
        return;
    };
    println!("dumpable_before={}", dumpable());
    println!("memlock_limit={}", memlock_limit());
    println!("cap_eff={}", status_field("self", "CapEff"));
    if mode == "harden" {
        let lines = std::sync::Mutex::new(Vec::new());
        let h = harden(&|l: &str| lines.lock().unwrap().push(l.to_string()));
        println!("hardening={h}");
        println!("memory={:?}", h.memory);
        for l in lines.into_inner().unwrap() {
            println!("log={l}");
        }
    }
    // Memory touched after hardening: locked too when the memory is (MCL_FUTURE).
    let touched = vec![7u8; 4 << 20];
    println!("dumpable_after={}", dumpable());
    let (soft, hard) = core_limit();
    println!("core={soft},{hard}");
    println!("vmlck_kib={}", locked_kib("self"));
    if std::env::var_os(WAIT).is_some() {
        println!("ready");
        let mut rest = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut rest);
    }
    assert_eq!(touched[touched.len() - 1], 7);
}

/// A running child and what it reported up to `ready` (or its end).
struct Reported {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The rest of its stdout, kept open: the harness prints its summary after `ready`.
    stdout: BufReader<ChildStdout>,
    lines: Vec<String>,
}

impl Reported {
    fn get(&self, key: &str) -> String {
        let prefix = format!("{key}=");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("the child reported no {key}: {:?}", self.lines))
            .to_string()
    }

    fn logs(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("log="))
            .collect()
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Lets the child end and checks it passed.
    fn finish(mut self) {
        drop(self.stdin.take());
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}: {:?} {rest}", self.lines);
        let passed = rest.contains("1 passed") || self.lines.iter().any(|l| l.contains("1 passed"));
        assert!(passed, "{:?} {rest}", self.lines);
    }
}

fn own_exe() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// Runs the child half in `mode` (the test binary `exe`, through `wrap`, e.g. setpriv), waiting
/// with `wait`.
fn spawn(exe: &Path, mode: &str, wrap: &[&str], wait: bool, marker: &str) -> Reported {
    let mut cmd = match wrap.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    if let Some(dir) = exe.parent() {
        cmd.current_dir(dir);
    }
    cmd.args(["--exact", "hardened_child", "--ignored", "--nocapture"])
        .env(CHILD, mode)
        .env(MARKER, marker)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if wait {
        cmd.env(WAIT, "1");
    } else {
        cmd.env_remove(WAIT);
    }
    let mut child = cmd.spawn().unwrap();
    let stdin = child.stdin.take();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let line = line.trim_end_matches('\n').to_string();
        if line == "ready" {
            break;
        }
        lines.push(line);
        assert!(Instant::now() < deadline, "the child took too long");
    }
    Reported {
        child,
        stdin,
        stdout,
        lines,
    }
}

#[test]
fn harden_turns_off_dumping_and_core_files_and_locks_memory_where_it_may() {
    let c = spawn(&own_exe(), "harden", &[], true, "m");
    assert_eq!(c.get("dumpable_before"), "1");
    assert_eq!(c.get("dumpable_after"), "0");
    assert_eq!(c.get("core"), "0,0");
    let limit: u64 = c.get("memlock_limit").parse().unwrap();
    let pid = c.pid();
    if may_lock(limit, &c.get("cap_eff")) {
        assert_eq!(c.get("memory"), "Locked");
        assert!(c.logs().is_empty(), "{:?}", c.logs());
        assert_eq!(
            c.get("hardening"),
            "not dumpable, no core files, memory locked"
        );
        // The kernel's view, read from outside: the 4 MiB touched after hardening is locked.
        let kib = locked_kib(&pid);
        assert!(kib >= 4 * 1024, "VmLck {kib} kB");
    } else {
        assert_eq!(
            c.get("memory"),
            format!("LimitTooSmall {{ limit: {limit} }}")
        );
        let logs = c.logs();
        assert_eq!(logs.len(), 1, "{logs:?}");
        assert!(
            logs[0].starts_with("memory is not locked")
                && logs[0].contains("LimitMEMLOCK=infinity")
                && logs[0].contains("CAP_IPC_LOCK"),
            "{}",
            logs[0]
        );
        assert_eq!(locked_kib(&pid), 0);
    }
    c.finish();

    // The control: the same child, not hardened, keeps the defaults.
    let c = spawn(&own_exe(), "control", &[], false, "m");
    assert_eq!(c.get("dumpable_after"), "1");
    assert_eq!(c.get("vmlck_kib"), "0");
    c.finish();
}

/// `sh -c SCRIPT` through `wrap`; true when it succeeded, with its stdout.
fn run(wrap: &[&str], script: &str) -> (bool, String) {
    let mut argv: Vec<&str> = wrap.to_vec();
    argv.extend(["sh", "-c", script]);
    let out = Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_same_user_process_cannot_read_a_hardened_process_memory_or_environment() {
    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let wrap: &[&str] = if root {
        if !hsm_tests::have("setpriv") {
            let _ = hsm_tests::skip("setpriv (util-linux) is missing: cannot run as nobody");
            return;
        }
        &[
            "setpriv",
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
        ]
    } else {
        &[]
    };
    // A copy of this test binary in a world-traversable directory: a fresh clone's target dir may
    // sit under a private (0700) directory that nobody cannot enter.
    let shared = tempfile::Builder::new()
        .prefix("ra-harden")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = shared.path().join("harden-test");
    std::fs::copy(own_exe(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (runnable, _) = run(wrap, &format!("test -x '{}'", exe.display()));
    assert!(
        runnable,
        "{} is not executable by the test's unprivileged user (directory modes?)",
        exe.display()
    );

    let marker = format!("harden-marker-{}", std::process::id());
    let control = spawn(&exe, "control", wrap, true, &marker);
    let hardened = spawn(&exe, "harden", wrap, true, &marker);
    assert_eq!(hardened.get("dumpable_after"), "0");

    let environ = |pid: &str| run(wrap, &format!("cat /proc/{pid}/environ"));
    let mem = |pid: &str| run(wrap, &format!("exec 3</proc/{pid}/mem"));
    let (ok, env) = environ(&control.pid());
    assert!(
        ok && env.contains(&marker),
        "the control's environ: {ok} {env:?}"
    );
    assert!(
        mem(&control.pid()).0,
        "the control's mem could not be opened"
    );
    let (ok, env) = environ(&hardened.pid());
    assert!(
        !ok && !env.contains(&marker),
        "the hardened environ was read"
    );
    assert!(!mem(&hardened.pid()).0, "the hardened mem was opened");

    // Unprivileged with the usual small RLIMIT_MEMLOCK: not locked, and said once.
    let limit: u64 = hardened.get("memlock_limit").parse().unwrap();
    if !may_lock(limit, &hardened.get("cap_eff")) {
        assert!(hardened.get("memory").starts_with("LimitTooSmall"));
        assert_eq!(hardened.logs().len(), 1, "{:?}", hardened.logs());
        assert!(hardened.logs()[0].contains("LimitMEMLOCK=infinity"));
    }
    control.finish();
    hardened.finish();
}
