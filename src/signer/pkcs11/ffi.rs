//! The only unsafe code of the PKCS#11 backend: a small, safe wrapper over one module's function list.
//!
//! Why not cryptoki (docs/adr/0003-pkcs11-binding.md): its only single-part signing call runs its own
//! `C_SignInit` (so a `CKU_CONTEXT_SPECIFIC` login cannot go between `C_SignInit` and `C_Sign`) and
//! queries the length with a second `C_Sign`; and its function list is private, while asking the
//! module for a second one does not work with the p11-kit proxy (each `C_GetFunctionList` there is a
//! new, separate instance whose sessions the first does not know). So every call of this backend goes
//! through the one list held here. Owns: loading the library, the calls, buffer handling. Must not:
//! interpret results, retry logins, or keep PINs (they are borrowed for the duration of `C_Login` only).
#![allow(unsafe_code)]

use super::error::CallError;
use cryptoki_sys::{
    CK_ATTRIBUTE, CK_ATTRIBUTE_TYPE, CK_C_INITIALIZE_ARGS, CK_FLAGS, CK_FUNCTION_LIST, CK_INFO,
    CK_MECHANISM, CK_MECHANISM_INFO, CK_MECHANISM_TYPE, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE,
    CK_SLOT_ID, CK_SLOT_INFO, CK_TOKEN_INFO, CK_ULONG, CK_USER_TYPE,
};
use std::path::Path;
use std::ptr;
use std::sync::Arc;

/// Library information (`C_GetInfo`), blank-padded fields trimmed.
#[derive(Debug, Clone)]
pub(crate) struct LibraryInfo {
    /// `manufacturerID`.
    pub manufacturer: String,
    /// `libraryDescription`.
    pub description: String,
    /// `libraryVersion` (major, minor).
    pub version: (u8, u8),
}

/// Slot information (`C_GetSlotInfo`).
#[derive(Debug, Clone)]
pub(crate) struct SlotInfo {
    /// `slotDescription`.
    pub description: String,
    /// `manufacturerID`.
    pub manufacturer: String,
}

/// Token information (`C_GetTokenInfo`).
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    /// `label`.
    pub label: String,
    /// `manufacturerID`.
    pub manufacturer: String,
    /// `model`.
    pub model: String,
    /// `serialNumber`.
    pub serial: String,
    /// `flags` (`CKF_LOGIN_REQUIRED`, `CKF_PROTECTED_AUTHENTICATION_PATH`, …).
    pub flags: CK_FLAGS,
}

impl TokenInfo {
    /// `CKF_LOGIN_REQUIRED`: cryptographic functions need a logged-in user.
    pub fn login_required(&self) -> bool {
        self.flags & cryptoki_sys::CKF_LOGIN_REQUIRED != 0
    }
    /// `CKF_TOKEN_INITIALIZED`: the token has been set up (label, PINs) and holds objects.
    pub fn initialized(&self) -> bool {
        self.flags & cryptoki_sys::CKF_TOKEN_INITIALIZED != 0
    }
    /// `CKF_PROTECTED_AUTHENTICATION_PATH`: the PIN is entered on the device (pinpad, biometrics).
    pub fn protected_authentication_path(&self) -> bool {
        self.flags & cryptoki_sys::CKF_PROTECTED_AUTHENTICATION_PATH != 0
    }
}

fn text(field: &[u8]) -> String {
    let end = field
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A buffer size the module asked for, refused above `max`: a broken or hostile module must not make
/// the process abort on a huge allocation. Reported as `CKR_DEVICE_MEMORY` from `function`.
fn sized(function: &'static str, n: CK_ULONG, max: usize) -> Result<usize, CallError> {
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or(CallError {
            function,
            rv: cryptoki_sys::CKR_DEVICE_MEMORY,
        })
}

/// Largest slot list, attribute value and signature we accept from a module.
const MAX_SLOTS: usize = 4096;
const MAX_ATTRIBUTE: usize = 1 << 20;
const MAX_SIGNATURE: usize = 64 * 1024;
/// Mechanisms one token may list; real tokens list a few hundred at most.
const MAX_MECHANISMS: usize = 4096;

fn check(function: &'static str, rv: CK_RV) -> Result<(), CallError> {
    if rv == cryptoki_sys::CKR_OK {
        Ok(())
    } else {
        Err(CallError { function, rv })
    }
}

/// A loaded PKCS#11 module and its function list.
pub(crate) struct Library {
    // Keeps the shared object mapped for as long as the function pointers below are used.
    _lib: cryptoki_sys::Pkcs11,
    list: CK_FUNCTION_LIST,
}

// SAFETY: the list holds plain function pointers into the mapped library, which lives as long as
// `Library`. Modules are initialised with CKF_OS_LOCKING_OK (thread-safe per PKCS#11 §5.4); when a
// module refuses that, every use still goes through a `Mutex<Session>` of the one signer.
unsafe impl Send for Library {}
// SAFETY: as above; no interior mutability on our side.
unsafe impl Sync for Library {}

macro_rules! func {
    ($self:expr, $name:ident) => {
        $self.list.$name.ok_or(CallError {
            function: stringify!($name),
            rv: cryptoki_sys::CKR_FUNCTION_NOT_SUPPORTED,
        })?
    };
}

impl Library {
    /// Loads the shared object at `path` and fetches its function list (no `C_Initialize` yet).
    pub fn load(path: &Path) -> Result<Library, String> {
        // SAFETY: loading a library runs its initialisers; loading a PKCS#11 module is what the user
        // asked for by naming it.
        let lib = unsafe { cryptoki_sys::Pkcs11::new(path) }.map_err(|e| e.to_string())?;
        let mut list: *mut CK_FUNCTION_LIST = ptr::null_mut();
        let get = lib.C_GetFunctionList.as_ref().map_err(|_| {
            "it does not export C_GetFunctionList (not a PKCS#11 module)".to_string()
        })?;
        // SAFETY: C_GetFunctionList writes one pointer to the location given.
        let rv = unsafe { get(&mut list) };
        if rv != cryptoki_sys::CKR_OK || list.is_null() {
            return Err(format!("C_GetFunctionList: {}", super::error::ckr_name(rv)));
        }
        // SAFETY: the module returned a non-null pointer to its function list, valid while loaded;
        // the 2.x list is a prefix of every later version's.
        let list = unsafe { *list };
        Ok(Library { _lib: lib, list })
    }

    /// `C_Initialize` with `CKF_OS_LOCKING_OK` (falling back to no flags on `CKR_CANT_LOCK`).
    /// An already initialised module is fine: it belongs to this process.
    pub fn initialize(&self) -> Result<(), CallError> {
        let f = func!(self, C_Initialize);
        for flags in [cryptoki_sys::CKF_OS_LOCKING_OK, 0] {
            let mut args = CK_C_INITIALIZE_ARGS {
                CreateMutex: None,
                DestroyMutex: None,
                LockMutex: None,
                UnlockMutex: None,
                flags,
                pReserved: ptr::null_mut(),
            };
            // SAFETY: `args` is a valid CK_C_INITIALIZE_ARGS that outlives the call.
            let rv = unsafe { f((&mut args as *mut CK_C_INITIALIZE_ARGS).cast()) };
            match rv {
                cryptoki_sys::CKR_OK | cryptoki_sys::CKR_CRYPTOKI_ALREADY_INITIALIZED => {
                    return Ok(());
                }
                cryptoki_sys::CKR_CANT_LOCK if flags != 0 => continue,
                _ => return check("C_Initialize", rv),
            }
        }
        check("C_Initialize", cryptoki_sys::CKR_CANT_LOCK)
    }

    /// `C_Finalize`. Only for a module no session of this process uses any more (see
    /// `module::finalize_unused`).
    pub fn finalize(&self) -> Result<(), CallError> {
        let f = func!(self, C_Finalize);
        // SAFETY: PKCS#11 §5.4: pReserved must be NULL; the caller guarantees no other use of the
        // module is in progress or follows.
        check("C_Finalize", unsafe { f(ptr::null_mut()) })
    }

    /// `C_GetInfo`.
    pub fn info(&self) -> Result<LibraryInfo, CallError> {
        let f = func!(self, C_GetInfo);
        // SAFETY: CK_INFO is plain data; all-zero is a valid value.
        let mut info: CK_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid out-pointer for the call.
        check("C_GetInfo", unsafe { f(&mut info) })?;
        Ok(LibraryInfo {
            manufacturer: text(&info.manufacturerID),
            description: text(&info.libraryDescription),
            version: (info.libraryVersion.major, info.libraryVersion.minor),
        })
    }

    /// `C_GetSlotList(tokenPresent=TRUE)`.
    pub fn slots_with_token(&self) -> Result<Vec<CK_SLOT_ID>, CallError> {
        let f = func!(self, C_GetSlotList);
        // Tokens may appear between the two calls: retry on CKR_BUFFER_TOO_SMALL a few times.
        for _ in 0..4 {
            let mut n: CK_ULONG = 0;
            // SAFETY: a null list asks for the count only.
            check("C_GetSlotList", unsafe {
                f(cryptoki_sys::CK_TRUE, ptr::null_mut(), &mut n)
            })?;
            let mut slots: Vec<CK_SLOT_ID> = vec![0; sized("C_GetSlotList", n, MAX_SLOTS)?];
            // SAFETY: `slots` has room for `n` entries.
            let rv = unsafe { f(cryptoki_sys::CK_TRUE, slots.as_mut_ptr(), &mut n) };
            if rv == cryptoki_sys::CKR_BUFFER_TOO_SMALL {
                continue;
            }
            check("C_GetSlotList", rv)?;
            slots.truncate(n as usize);
            return Ok(slots);
        }
        check("C_GetSlotList", cryptoki_sys::CKR_BUFFER_TOO_SMALL).map(|_| Vec::new())
    }

    /// `C_GetSlotInfo`.
    pub fn slot_info(&self, slot: CK_SLOT_ID) -> Result<SlotInfo, CallError> {
        let f = func!(self, C_GetSlotInfo);
        // SAFETY: plain data.
        let mut info: CK_SLOT_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        check("C_GetSlotInfo", unsafe { f(slot, &mut info) })?;
        Ok(SlotInfo {
            description: text(&info.slotDescription),
            manufacturer: text(&info.manufacturerID),
        })
    }

    /// `C_GetTokenInfo`.
    pub fn token_info(&self, slot: CK_SLOT_ID) -> Result<TokenInfo, CallError> {
        let f = func!(self, C_GetTokenInfo);
        // SAFETY: plain data.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        check("C_GetTokenInfo", unsafe { f(slot, &mut info) })?;
        Ok(TokenInfo {
            label: text(&info.label),
            manufacturer: text(&info.manufacturerID),
            model: text(&info.model),
            serial: text(&info.serialNumber),
            flags: info.flags,
        })
    }

    /// `C_GetMechanismInfo` flags, or `None` when the token lacks the mechanism.
    pub fn mechanism_flags(
        &self,
        slot: CK_SLOT_ID,
        mechanism: CK_MECHANISM_TYPE,
    ) -> Result<Option<CK_FLAGS>, CallError> {
        let f = func!(self, C_GetMechanismInfo);
        // SAFETY: plain data.
        let mut info: CK_MECHANISM_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointer.
        let rv = unsafe { f(slot, mechanism, &mut info) };
        if rv == cryptoki_sys::CKR_MECHANISM_INVALID {
            return Ok(None);
        }
        check("C_GetMechanismInfo", rv)?;
        Ok(Some(info.flags))
    }

    /// `C_GetMechanismList`: every mechanism the token in `slot` offers.
    pub fn mechanism_list(&self, slot: CK_SLOT_ID) -> Result<Vec<CK_MECHANISM_TYPE>, CallError> {
        let f = func!(self, C_GetMechanismList);
        for _ in 0..4 {
            let mut n: CK_ULONG = 0;
            // SAFETY: a null list asks for the count only.
            check("C_GetMechanismList", unsafe {
                f(slot, ptr::null_mut(), &mut n)
            })?;
            let mut list: Vec<CK_MECHANISM_TYPE> =
                vec![0; sized("C_GetMechanismList", n, MAX_MECHANISMS)?];
            // SAFETY: `list` has room for `n` entries.
            let rv = unsafe { f(slot, list.as_mut_ptr(), &mut n) };
            if rv == cryptoki_sys::CKR_BUFFER_TOO_SMALL {
                continue;
            }
            check("C_GetMechanismList", rv)?;
            list.truncate(n as usize);
            return Ok(list);
        }
        check("C_GetMechanismList", cryptoki_sys::CKR_BUFFER_TOO_SMALL).map(|_| Vec::new())
    }

    /// `C_OpenSession` (serial; read-write when `rw`).
    pub fn open_session(
        self: &Arc<Self>,
        slot: CK_SLOT_ID,
        rw: bool,
    ) -> Result<Session, CallError> {
        let f = func!(self, C_OpenSession);
        let mut flags = cryptoki_sys::CKF_SERIAL_SESSION;
        if rw {
            flags |= cryptoki_sys::CKF_RW_SESSION;
        }
        let mut handle: CK_SESSION_HANDLE = 0;
        // SAFETY: no callback; valid out-pointer.
        check("C_OpenSession", unsafe {
            f(slot, flags, ptr::null_mut(), None, &mut handle)
        })?;
        Ok(Session {
            lib: Arc::clone(self),
            handle,
        })
    }
}

/// An attribute template entry: type and value bytes (`CK_ULONG`s in native byte order, `CK_BBOOL`s
/// as one byte).
pub(crate) type Attr = (CK_ATTRIBUTE_TYPE, Vec<u8>);

/// A `CK_ULONG` value as template bytes.
pub(crate) fn ulong(v: CK_ULONG) -> Vec<u8> {
    v.to_ne_bytes().to_vec()
}

/// A `CK_BBOOL` value as template bytes.
pub(crate) fn bool_attr(v: bool) -> Vec<u8> {
    vec![if v {
        cryptoki_sys::CK_TRUE
    } else {
        cryptoki_sys::CK_FALSE
    }]
}

fn template(attrs: &[Attr]) -> Vec<CK_ATTRIBUTE> {
    attrs
        .iter()
        .map(|(t, v)| CK_ATTRIBUTE {
            type_: *t,
            // The module only reads templates passed to Find/Create/Generate.
            pValue: v.as_ptr() as *mut _,
            ulValueLen: v.len() as CK_ULONG,
        })
        .collect()
}

/// An open session; closed on drop.
pub(crate) struct Session {
    lib: Arc<Library>,
    handle: CK_SESSION_HANDLE,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(f) = self.lib.list.C_CloseSession {
            // SAFETY: the handle came from C_OpenSession on this library and is closed only here.
            let _ = unsafe { f(self.handle) };
        }
    }
}

impl Session {
    /// `C_Login`. `pin` is `None` for a protected authentication path (pinpad).
    pub fn login(&self, user: CK_USER_TYPE, pin: Option<&[u8]>) -> Result<(), CallError> {
        let f = func!(self.lib, C_Login);
        let (p, n) = match pin {
            Some(p) => (p.as_ptr() as *mut u8, p.len() as CK_ULONG),
            None => (ptr::null_mut(), 0),
        };
        // SAFETY: `p` points to `n` readable bytes (or is null with n = 0) for the call's duration.
        check("C_Login", unsafe { f(self.handle, user, p, n) })
    }

    /// `C_FindObjectsInit` / `C_FindObjects` / `C_FindObjectsFinal`: every object matching `attrs`.
    pub fn find_objects(&self, attrs: &[Attr]) -> Result<Vec<CK_OBJECT_HANDLE>, CallError> {
        let init = func!(self.lib, C_FindObjectsInit);
        let find = func!(self.lib, C_FindObjects);
        let fin = func!(self.lib, C_FindObjectsFinal);
        let mut tmpl = template(attrs);
        // SAFETY: the template points into `attrs`, alive for the call.
        check("C_FindObjectsInit", unsafe {
            init(self.handle, tmpl.as_mut_ptr(), tmpl.len() as CK_ULONG)
        })?;
        let mut out = Vec::new();
        let result = loop {
            let mut batch: [CK_OBJECT_HANDLE; 64] = [0; 64];
            let mut n: CK_ULONG = 0;
            // SAFETY: `batch` has room for 64 handles.
            let rv = unsafe { find(self.handle, batch.as_mut_ptr(), 64, &mut n) };
            if let Err(e) = check("C_FindObjects", rv) {
                break Err(e);
            }
            let n = (n as usize).min(batch.len());
            out.extend_from_slice(&batch[..n]);
            if n < batch.len() {
                break Ok(());
            }
        };
        // SAFETY: ends the search started above.
        let rv = unsafe { fin(self.handle) };
        result?;
        check("C_FindObjectsFinal", rv)?;
        Ok(out)
    }

    /// `C_GetAttributeValue` for `types`: `None` for attributes the object lacks or hides
    /// (sensitive, invalid type); the caller decides whether that is an error.
    pub fn attributes(
        &self,
        object: CK_OBJECT_HANDLE,
        types: &[CK_ATTRIBUTE_TYPE],
    ) -> Result<Vec<Option<Vec<u8>>>, CallError> {
        let f = func!(self.lib, C_GetAttributeValue);
        let mut tmpl: Vec<CK_ATTRIBUTE> = types
            .iter()
            .map(|&t| CK_ATTRIBUTE {
                type_: t,
                pValue: ptr::null_mut(),
                ulValueLen: 0,
            })
            .collect();
        // SAFETY: null values ask for lengths only.
        let rv = unsafe {
            f(
                self.handle,
                object,
                tmpl.as_mut_ptr(),
                tmpl.len() as CK_ULONG,
            )
        };
        tolerate_missing(rv)?;
        let mut values: Vec<Option<Vec<u8>>> = tmpl
            .iter()
            .map(|a| {
                if a.ulValueLen == cryptoki_sys::CK_UNAVAILABLE_INFORMATION {
                    return Ok(None);
                }
                let n = sized("C_GetAttributeValue", a.ulValueLen, MAX_ATTRIBUTE)?;
                Ok(Some(vec![0u8; n]))
            })
            .collect::<Result<_, CallError>>()?;
        let mut wanted: Vec<CK_ATTRIBUTE> = Vec::new();
        for (a, v) in tmpl.iter().zip(values.iter_mut()) {
            if let Some(buf) = v {
                wanted.push(CK_ATTRIBUTE {
                    type_: a.type_,
                    pValue: buf.as_mut_ptr().cast(),
                    ulValueLen: buf.len() as CK_ULONG,
                });
            }
        }
        if wanted.is_empty() {
            return Ok(values);
        }
        // SAFETY: every pValue points to a buffer of ulValueLen bytes owned by `values`.
        let rv = unsafe {
            f(
                self.handle,
                object,
                wanted.as_mut_ptr(),
                wanted.len() as CK_ULONG,
            )
        };
        tolerate_missing(rv)?;
        let mut got = wanted.iter();
        for v in values.iter_mut() {
            if let Some(buf) = v {
                let a = got.next().map(|a| a.ulValueLen);
                match a {
                    Some(n) if n != cryptoki_sys::CK_UNAVAILABLE_INFORMATION => {
                        buf.truncate(n as usize)
                    }
                    _ => *v = None,
                }
            }
        }
        Ok(values)
    }

    /// `C_SignInit` with a parameterless mechanism.
    pub fn sign_init(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        key: CK_OBJECT_HANDLE,
    ) -> Result<(), CallError> {
        let f = func!(self.lib, C_SignInit);
        let mut mech = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        // SAFETY: `mech` is valid for the call.
        check("C_SignInit", unsafe { f(self.handle, &mut mech, key) })
    }

    /// `C_Sign` into a buffer of `expected_len` bytes: one call when the guess is right (the caller
    /// knows the signature size from the key), a second only on `CKR_BUFFER_TOO_SMALL`, as the
    /// specification requires the operation to stay active in that case.
    pub fn sign(&self, data: &[u8], expected_len: usize) -> Result<Vec<u8>, CallError> {
        let f = func!(self.lib, C_Sign);
        let mut out = vec![0u8; expected_len.max(1)];
        let mut n = out.len() as CK_ULONG;
        // SAFETY: `data` is only read; `out` has room for `n` bytes.
        let mut rv = unsafe {
            f(
                self.handle,
                data.as_ptr() as *mut u8,
                data.len() as CK_ULONG,
                out.as_mut_ptr(),
                &mut n,
            )
        };
        if rv == cryptoki_sys::CKR_BUFFER_TOO_SMALL && (n as usize) > out.len() {
            out = vec![0u8; sized("C_Sign", n, MAX_SIGNATURE)?];
            // SAFETY: as above, with the size the module asked for.
            rv = unsafe {
                f(
                    self.handle,
                    data.as_ptr() as *mut u8,
                    data.len() as CK_ULONG,
                    out.as_mut_ptr(),
                    &mut n,
                )
            };
        }
        check("C_Sign", rv)?;
        out.truncate(n as usize);
        Ok(out)
    }

    /// `C_CreateObject`.
    pub fn create_object(&self, attrs: &[Attr]) -> Result<CK_OBJECT_HANDLE, CallError> {
        let f = func!(self.lib, C_CreateObject);
        let mut tmpl = template(attrs);
        let mut h: CK_OBJECT_HANDLE = 0;
        // SAFETY: the template points into `attrs`; valid out-pointer.
        check("C_CreateObject", unsafe {
            f(
                self.handle,
                tmpl.as_mut_ptr(),
                tmpl.len() as CK_ULONG,
                &mut h,
            )
        })?;
        Ok(h)
    }

    /// `C_GenerateKeyPair` with a parameterless mechanism: returns (public, private) handles.
    pub fn generate_key_pair(
        &self,
        mechanism: CK_MECHANISM_TYPE,
        public: &[Attr],
        private: &[Attr],
    ) -> Result<(CK_OBJECT_HANDLE, CK_OBJECT_HANDLE), CallError> {
        let f = func!(self.lib, C_GenerateKeyPair);
        let mut mech = CK_MECHANISM {
            mechanism,
            pParameter: ptr::null_mut(),
            ulParameterLen: 0,
        };
        let mut pt = template(public);
        let mut st = template(private);
        let (mut hp, mut hs): (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) = (0, 0);
        // SAFETY: templates point into the caller's slices; valid out-pointers.
        check("C_GenerateKeyPair", unsafe {
            f(
                self.handle,
                &mut mech,
                pt.as_mut_ptr(),
                pt.len() as CK_ULONG,
                st.as_mut_ptr(),
                st.len() as CK_ULONG,
                &mut hp,
                &mut hs,
            )
        })?;
        Ok((hp, hs))
    }

    /// `C_DestroyObject`.
    pub fn destroy_object(&self, object: CK_OBJECT_HANDLE) -> Result<(), CallError> {
        let f = func!(self.lib, C_DestroyObject);
        // SAFETY: plain handles.
        check("C_DestroyObject", unsafe { f(self.handle, object) })
    }
}

/// Attribute reads report hidden or unknown attributes through these codes while still filling in
/// the others (PKCS#11 §5.7 C_GetAttributeValue).
fn tolerate_missing(rv: CK_RV) -> Result<(), CallError> {
    match rv {
        cryptoki_sys::CKR_ATTRIBUTE_SENSITIVE | cryptoki_sys::CKR_ATTRIBUTE_TYPE_INVALID => Ok(()),
        _ => check("C_GetAttributeValue", rv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_sizes_above_the_cap_are_refused_not_allocated() {
        assert_eq!(sized("C_Sign", 256, MAX_SIGNATURE), Ok(256));
        let e = sized("C_GetAttributeValue", CK_ULONG::MAX, MAX_ATTRIBUTE).unwrap_err();
        assert_eq!(e.to_string(), "C_GetAttributeValue: CKR_DEVICE_MEMORY");
    }
}
