//! The two system calls std does not wrap: `poll(2)` over several descriptors, and taking
//! ownership of the listening sockets systemd passes (`LISTEN_FDS`, from descriptor 3).
//!
//! The only `unsafe` of the server, each use with its `SAFETY` note.
#![allow(unsafe_code)]

use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd as _, RawFd};
use std::time::Duration;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// Waits until one of `fds` is readable (or hung up), up to `timeout` (`None`: no limit); returns
/// which are, as a bit mask (at most 64 descriptors). 0 when the time ran out.
pub fn poll_readable(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<u64> {
    assert!(
        fds.len() <= 64,
        "poll_readable takes at most 64 descriptors"
    );
    let mut set = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 64];
    for (slot, &fd) in set.iter_mut().zip(fds) {
        slot.fd = fd;
        slot.events = libc::POLLIN;
    }
    let ms = timeout.map_or(-1, |t| {
        // Rounded up, so a short wait does not become a busy loop of zero-length polls.
        i32::try_from(
            t.as_millis()
                .saturating_add(u128::from(t.subsec_nanos() % 1_000_000 != 0)),
        )
        .unwrap_or(i32::MAX)
    });
    loop {
        // SAFETY: `set` is a valid, initialized array of `pollfd` of at least `fds.len()` entries,
        // borrowed mutably for the duration of the call; poll writes only `revents` within it.
        let n = unsafe { libc::poll(set.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut mask = 0u64;
        for (i, slot) in set[..fds.len()].iter().enumerate() {
            if slot.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                mask |= 1 << i;
            }
        }
        return Ok(mask);
    }
}

/// Takes ownership of systemd's listening socket number `index` (descriptor 3 + `index`) and checks
/// that it is a TCP stream socket.
///
/// Must be called at most once per index, and only when `LISTEN_PID` is this process and `index` is
/// below `LISTEN_FDS` (the caller's check).
pub fn systemd_listener(index: usize) -> io::Result<TcpListener> {
    let fd = LISTEN_FDS_START
        + RawFd::try_from(index).map_err(|_| io::Error::other("too many LISTEN_FDS"))?;
    // SAFETY: systemd's socket activation protocol passes descriptors 3 .. 3 + LISTEN_FDS to the
    // process named by LISTEN_PID, open, for it to own; nothing else in this process opened them
    // (they were open before it started, so no later open could return them), and the caller
    // takes each index once. If the descriptor is not a socket, the checks below fail and the
    // listener is dropped, closing a descriptor that was ours anyway.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    let sock = socket2::SockRef::from(&listener);
    if sock.r#type()? != socket2::Type::STREAM {
        return Err(io::Error::other("it is not a stream socket"));
    }
    listener.local_addr()?;
    Ok(listener)
}
