//! User and group names of `allow_uids`, `allow_gids` and `socket_group`, resolved to ids.
//!
//! Names are looked up with `getpwnam_r(3)` / `getgrnam_r(3)` rather than by reading `/etc/passwd`
//! and `/etc/group`: the C library follows `nsswitch.conf`, so users and groups from LDAP, sssd or
//! systemd-userdb resolve as they do for `ls -l` and `id`. Resolution happens once, when the
//! configuration is read (and again on reload); a name removed from the database afterwards keeps
//! its id until then. The only `unsafe` of the configuration is here, one call per function.

use super::Problem;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;

/// Largest buffer offered to the lookups: a group with thousands of members needs a large one;
/// past this the entry is refused rather than growing without bound.
const MAX_BUFFER: usize = 1 << 20;

/// An entry of `allow_uids`/`allow_gids`/`socket_group` as written: a number or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IdOrName {
    /// A number (or a string of digits, as `chown` takes it).
    Id(u32),
    /// A name to look up.
    Name(String),
}

/// Ids are 0 to 2^32 - 2: (uid_t)-1 means "no change" to the kernel and names nobody.
const MAX_ID: i64 = u32::MAX as i64 - 1;

const RANGE: &str = "out of range: ids are 0 to 4294967294";

impl<'de> Deserialize<'de> for IdOrName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdOrName, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IdOrName;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IdOrName, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|v| i64::from(*v) <= MAX_ID)
                    .map(IdOrName::Id)
                    .ok_or_else(|| E::custom(RANGE))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IdOrName, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IdOrName, E> {
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                    return self.visit_i64(v.parse().unwrap_or(i64::MAX));
                }
                Ok(IdOrName::Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The uid of `v`.
pub(super) fn user(v: &IdOrName) -> Result<u32, Problem> {
    match v {
        IdOrName::Id(id) => Ok(*id),
        IdOrName::Name(name) => match user_id(name) {
            Ok(Some(uid)) => Ok(uid),
            Ok(None) => Err(Problem::UnknownUser),
            Err(e) => Err(Problem::Lookup(e)),
        },
    }
}

/// The gid of `v`.
pub(super) fn group(v: &IdOrName) -> Result<u32, Problem> {
    match v {
        IdOrName::Id(id) => Ok(*id),
        IdOrName::Name(name) => match group_id(name) {
            Ok(Some(gid)) => Ok(gid),
            Ok(None) => Err(Problem::UnknownGroup),
            Err(e) => Err(Problem::Lookup(e)),
        },
    }
}

/// The agent's effective uid: who may read a profile that names no one.
pub(super) fn effective_uid() -> u32 {
    crate::agent::sys::euid()
}

/// The `*_r` lookups' answers that mean "no such entry" (getpwnam_r(3): 0 with a null result, or
/// one of these, depending on the C library and the NSS module).
fn not_found(rc: i32) -> bool {
    [libc::ENOENT, libc::ESRCH, libc::EBADF, libc::EPERM].contains(&rc)
}

/// `getpwnam_r(3)`: `None` when there is no such user.
fn user_id(name: &str) -> io::Result<Option<u32>> {
    #[allow(unsafe_code)]
    // SAFETY: `lookup` passes what getpwnam_r(3) takes (see there); reading `pw_uid` of an entry it
    // filled in is sound.
    unsafe {
        lookup::<libc::passwd>(name, libc::getpwnam_r, |e| e.pw_uid)
    }
}

/// `getgrnam_r(3)`: `None` when there is no such group.
fn group_id(name: &str) -> io::Result<Option<u32>> {
    #[allow(unsafe_code)]
    // SAFETY: as in `user_id`, for getgrnam_r(3) and one `group` entry's `gr_gid`.
    unsafe {
        lookup::<libc::group>(name, libc::getgrnam_r, |e| e.gr_gid)
    }
}

/// The signature of getpwnam_r(3) and getgrnam_r(3) for entry type `T`.
type NamR<T> = unsafe extern "C" fn(
    *const libc::c_char,
    *mut T,
    *mut libc::c_char,
    libc::size_t,
    *mut *mut T,
) -> libc::c_int;

/// One `*nam_r` lookup, its buffer grown on ERANGE up to [`MAX_BUFFER`]; `id` reads the number
/// out of the filled-in entry (only that: the entry's strings point into a buffer freed here).
///
/// # Safety
/// `f` must be getpwnam_r or getgrnam_r with `T` its entry type.
#[allow(unsafe_code)]
unsafe fn lookup<T>(name: &str, f: NamR<T>, id: impl Fn(&T) -> u32) -> io::Result<Option<u32>> {
    let Ok(name) = CString::new(name) else {
        return Ok(None); // a NUL byte: nothing is named so
    };
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        let mut entry = MaybeUninit::<T>::uninit();
        let mut result: *mut T = std::ptr::null_mut();
        // SAFETY: `name` is a NUL-terminated string; `entry` is writable storage for one `T`;
        // `buf` is writable for `buf.len()` bytes; `result` is a writable pointer; all live across
        // the call, and `f` is a `*nam_r` for `T` (the caller's promise).
        let rc = unsafe {
            f(
                name.as_ptr(),
                entry.as_mut_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_BUFFER {
            size *= 4;
            continue;
        }
        if rc != 0 {
            return if not_found(rc) {
                Ok(None)
            } else {
                Err(io::Error::from_raw_os_error(rc))
            };
        }
        if result.is_null() {
            return Ok(None);
        }
        // SAFETY: a zero return with a non-null `result` means the entry was filled in, and
        // `result` points to `entry`, which (with `buf`) is still alive here.
        return Ok(Some(id(unsafe { &*result })));
    }
}
