//! The agent's system calls std does not wrap: the peer's credentials (`SO_PEERCRED`) and
//! supplementary groups (`SO_PEERGROUPS`) of a connected Unix socket, the effective uid, and
//! taking ownership of the Unix socket systemd passes.
//!
//! The only `unsafe` of the socket server, each use with its `SAFETY` note. Linux only, like the
//! rest of the agent.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, RawFd};
use std::os::unix::net::UnixListener;

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and always succeeds.
    unsafe { libc::geteuid() }
}

/// The pid, uid and gid of the process that connected the socket `fd`, as the kernel recorded
/// them at `connect(2)` (they cannot be forged by the peer).
pub(crate) fn peer_credentials(fd: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a valid, writable `ucred` and `len` holds its exact size, so the kernel
    // writes at most that many bytes into it; `fd` is a descriptor borrowed for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::other("SO_PEERCRED returned a short answer"));
    }
    Ok((cred.pid, cred.uid, cred.gid))
}

/// Most supplementary groups a process can have (`NGROUPS_MAX` on Linux).
const MAX_GROUPS: usize = 65536;

/// The supplementary groups of the process that connected `fd` (Linux 4.13+). An older kernel
/// (`ENOPROTOOPT`) gives an empty list: only the primary gid is then known.
pub(crate) fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is a valid, writable buffer of exactly `len` bytes; the kernel writes at
        // most `len` bytes and on ERANGE only updates `len` to the size it needs.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let needed = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(needed.min(groups.len()));
            return Ok(groups);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if needed > groups.len() && needed <= MAX_GROUPS => {
                groups.resize(needed, 0);
            }
            Some(libc::ENOPROTOOPT) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
}

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub(crate) const LISTEN_FDS_START: RawFd = 3;

/// Takes ownership of systemd's first passed socket (descriptor 3) and checks that it is a
/// listening Unix stream socket; marks it close-on-exec.
///
/// Must be called at most once, and only when `LISTEN_PID` is this process and `LISTEN_FDS` is at
/// least 1 (the caller's check).
pub(crate) fn systemd_unix_listener() -> io::Result<UnixListener> {
    let fd = LISTEN_FDS_START;
    // SAFETY: systemd's socket activation protocol passes descriptors 3 .. 3 + LISTEN_FDS to the
    // process named by LISTEN_PID, open, for it to own; nothing else in this process opened them
    // (they were open before it started, so no later open could return them), and the caller takes
    // it once. If it is not a Unix stream socket the checks below fail and the listener is
    // dropped, closing a descriptor that was ours anyway.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    if socket2::SockRef::from(&listener).r#type()? != socket2::Type::STREAM {
        return Err(io::Error::other("it is not a stream socket"));
    }
    // std refuses an address that is not AF_UNIX here.
    listener
        .local_addr()
        .map_err(|_| io::Error::other("it is not a Unix socket"))?;
    let mut listening: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `listening` is a valid, writable c_int and `len` its exact size; `fd` is open (owned
    // by `listener`, alive for the call).
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&raw mut listening).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if listening == 0 {
        return Err(io::Error::other("it is not listening"));
    }
    // systemd passes it inheritable; a PKCS#11 module that runs a helper must not get it.
    // SAFETY: F_GETFD/F_SETFD on an open descriptor we own; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd as _;
    use std::os::unix::net::UnixStream;

    /// The three numbers of a `/proc/self/status` line (`Uid:`, `Gid:`), or the list (`Groups:`).
    fn status_field(name: &str) -> Vec<u32> {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap();
        line[name.len() + 1..]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    }

    #[test]
    fn a_socket_pair_sees_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let (pid, uid, gid) = peer_credentials(a.as_fd()).unwrap();
        assert_eq!(pid, std::process::id() as i32);
        assert_eq!(uid, status_field("Uid")[1], "effective uid");
        assert_eq!(gid, status_field("Gid")[1], "effective gid");
        assert_eq!(euid(), status_field("Uid")[1]);
        let mut groups = peer_groups(a.as_fd()).unwrap();
        let mut want = status_field("Groups");
        groups.sort_unstable();
        want.sort_unstable();
        assert_eq!(groups, want);
    }

    #[test]
    fn a_file_is_not_a_socket() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(peer_credentials(f.as_fd()).is_err());
        assert!(peer_groups(f.as_fd()).is_err());
    }
}
