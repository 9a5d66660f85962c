//! Process hardening for a process holding secrets (the agent keeps PINs, passwords and session
//! credentials in memory for its whole life), as gpg-agent and ssh-agent do:
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dump, and other processes of the same user (not root)
//!   can no longer ptrace it nor read `/proc/PID/mem` or `/proc/PID/environ`.
//! - `setrlimit(RLIMIT_CORE, 0)` (soft and hard): no core file even if something made the process
//!   dumpable again.
//! - `mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT)`: no page reaches swap. Only where it cannot
//!   break the process: with `MCL_FUTURE` every later mapping counts against `RLIMIT_MEMLOCK`, so
//!   with the usual small limit (8 MiB) allocations and thread stacks would start failing. It is
//!   done when the limit is unlimited or at least [`MEMLOCK_ENOUGH`], or the process has
//!   `CAP_IPC_LOCK` (which lifts the limit); otherwise one line says why not and how to allow it.
//!   `MCL_ONFAULT` locks pages as they are touched instead of filling every reserved mapping (a
//!   thread's whole stack) at once; kernels before 4.4 lack it and get the plain call.
//!
//! [`harden`] never fails: each step that cannot be done is logged once and recorded in the
//! [`Hardening`] it returns (for the logs and `agent status`). The only `unsafe` of the agent
//! outside `sys.rs`, each use with its `SAFETY` note.
#![allow(unsafe_code)]

use std::fmt;
use std::io;

/// A `RLIMIT_MEMLOCK` this large is taken as room for the whole process to be locked.
pub const MEMLOCK_ENOUGH: u64 = 1 << 30;

/// `CAP_IPC_LOCK`'s bit in the capability sets of `/proc/self/status`.
const CAP_IPC_LOCK: u32 = 14;

/// What [`harden`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    /// The process is not dumpable (`PR_GET_DUMPABLE` reads 0 afterwards).
    pub not_dumpable: bool,
    /// `RLIMIT_CORE` is 0.
    pub no_core_files: bool,
    /// Whether memory is locked.
    pub memory: MemoryLock,
}

/// Whether the process's memory is locked, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryLock {
    /// `mlockall` succeeded: no page of the process goes to swap.
    Locked,
    /// Not tried: `RLIMIT_MEMLOCK` (bytes) is too small and the process lacks `CAP_IPC_LOCK`.
    LimitTooSmall {
        /// The soft limit.
        limit: u64,
    },
    /// `mlockall` (or reading the limit) failed.
    Failed {
        /// The system's error.
        error: String,
    },
}

impl fmt::Display for Hardening {
    /// One line for logs and `agent status`: `not dumpable, no core files, memory locked`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.not_dumpable {
            "not dumpable"
        } else {
            "still dumpable"
        })?;
        f.write_str(if self.no_core_files {
            ", no core files"
        } else {
            ", core files possible"
        })?;
        match &self.memory {
            MemoryLock::Locked => f.write_str(", memory locked"),
            MemoryLock::LimitTooSmall { limit } => {
                write!(f, ", memory not locked (RLIMIT_MEMLOCK {})", bytes(*limit))
            }
            MemoryLock::Failed { error } => write!(f, ", memory not locked ({error})"),
        }
    }
}

/// Hardens the process (see the module documentation); logs one line per step that could not be
/// done, with the fix where there is one.
pub fn harden(log: &dyn Fn(&str)) -> Hardening {
    let not_dumpable = match set_not_dumpable() {
        Ok(()) => true,
        Err(e) => {
            log(&format!(
                "warning: cannot make the process non-dumpable (PR_SET_DUMPABLE): {e}; other \
                 processes of this user could read its memory"
            ));
            false
        }
    };
    let no_core_files = match no_core_files() {
        Ok(()) => true,
        Err(e) => {
            log(&format!(
                "warning: cannot turn off core files (RLIMIT_CORE): {e}"
            ));
            false
        }
    };
    let memory = lock_memory();
    match &memory {
        MemoryLock::Locked => {}
        MemoryLock::LimitTooSmall { limit } => log(&format!(
            "memory is not locked (secrets could reach swap): RLIMIT_MEMLOCK is {} and locking all \
             of the process needs it unlimited; set LimitMEMLOCK=infinity in the systemd unit \
             (or `ulimit -l unlimited`), or give the agent CAP_IPC_LOCK",
            bytes(*limit)
        )),
        MemoryLock::Failed { error } => log(&format!(
            "warning: memory is not locked (secrets could reach swap): mlockall: {error}"
        )),
    }
    Hardening {
        not_dumpable,
        no_core_files,
        memory,
    }
}

/// A byte count as a person reads it.
fn bytes(n: u64) -> String {
    if n == libc::RLIM_INFINITY {
        "unlimited".into()
    } else if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} bytes")
    }
}

fn set_not_dumpable() -> io::Result<()> {
    // SAFETY: PR_SET_DUMPABLE takes one integer argument (0 or 1); the unused ones are passed as 0
    // as prctl(2) asks. No memory is shared with the kernel.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: PR_GET_DUMPABLE takes no argument and returns the flag.
    let now = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
    if now != 0 {
        return Err(io::Error::other(format!(
            "the flag still reads {now} afterwards"
        )));
    }
    Ok(())
}

fn no_core_files() -> io::Result<()> {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `zero` is a valid rlimit that lives across the call; setrlimit only reads it.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn memlock_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit that lives across the call; getrlimit fills it.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit.rlim_cur)
}

/// True when the effective capability set of `/proc/self/status` (`CapEff:`, hex) holds
/// `CAP_IPC_LOCK`.
fn has_ipc_lock(status: &str) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

fn lock_memory() -> MemoryLock {
    let limit = match memlock_limit() {
        Ok(l) => l,
        Err(e) => {
            return MemoryLock::Failed {
                error: format!("cannot read RLIMIT_MEMLOCK: {e}"),
            };
        }
    };
    let capable = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| has_ipc_lock(&s));
    if limit != libc::RLIM_INFINITY && limit < MEMLOCK_ENOUGH && !capable {
        return MemoryLock::LimitTooSmall { limit };
    }
    let mut flags = libc::MCL_CURRENT | libc::MCL_FUTURE | libc::MCL_ONFAULT;
    loop {
        // SAFETY: mlockall takes flags only; it changes how pages are kept, not what they hold.
        if unsafe { libc::mlockall(flags) } == 0 {
            return MemoryLock::Locked;
        }
        let e = io::Error::last_os_error();
        // Kernels before 4.4 refuse the unknown MCL_ONFAULT with EINVAL.
        if e.raw_os_error() == Some(libc::EINVAL) && flags & libc::MCL_ONFAULT != 0 {
            flags &= !libc::MCL_ONFAULT;
            continue;
        }
        return MemoryLock::Failed {
            error: e.to_string(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_ipc_lock_is_read_from_the_effective_set() {
        let status = |eff: &str| {
            format!(
                "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t{eff}\nCapBnd:\t000001ffffffffff\n"
            )
        };
        assert!(has_ipc_lock(&status("000001fffeffffff")));
        assert!(has_ipc_lock(&status("0000000000004000")));
        assert!(!has_ipc_lock(&status("0000000000000000")));
        assert!(!has_ipc_lock(&status("000001ffffffbfff")));
        assert!(!has_ipc_lock("Name:\tx\n"));
    }

    #[test]
    fn the_summary_says_what_was_done() {
        let h = Hardening {
            not_dumpable: true,
            no_core_files: true,
            memory: MemoryLock::LimitTooSmall { limit: 8 << 20 },
        };
        assert_eq!(
            h.to_string(),
            "not dumpable, no core files, memory not locked (RLIMIT_MEMLOCK 8 MiB)"
        );
        assert_eq!(bytes(libc::RLIM_INFINITY), "unlimited");
        assert_eq!(bytes(65536), "64 KiB");
        assert_eq!(bytes(1000), "1000 bytes");
    }
}
