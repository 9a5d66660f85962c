//! TPM backend errors: our own checks, or a TPM/TSS response code with its `TPM_RC` name.
//!
//! Owns: the error enum, the decoding of response codes into names, and the hints for the codes whose
//! fix is known (wrong password, lockout, changed PCRs, wrong parent, full TPM). Must not carry
//! secrets: no variant holds a password or auth value.

use std::path::PathBuf;
use tss_esapi::constants::response_code::Tss2ResponseCode;

/// TPM problems: our own checks, or the TPM's response code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCTI string is not one this agent can use.
    #[error("invalid TPM TCTI {:?}: {reason}", crate::text::redact(tcti))]
    TctiSyntax {
        /// The TCTI as given.
        tcti: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TPM could not be reached through the TCTI.
    #[error(
        "cannot open the TPM through TCTI {} (from {origin}): {cause}; check that the TPM or \
         simulator is running and reachable, or choose another with --tpm-tcti",
        crate::text::arg(tcti)
    )]
    TctiOpen {
        /// The TCTI used.
        tcti: String,
        /// Where the TCTI came from (`--tpm-tcti`, `TPM2TOOLS_TCTI`, the default …).
        origin: String,
        /// The TSS response code.
        cause: Rc,
    },
    /// A key file could not be read as a `TSS2 PRIVATE KEY`.
    #[error("cannot use TPM key file {path}", path = crate::text::path(path))]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: super::keyfile::Error,
    },
    /// A key the agent refuses by its own checks (algorithm, attributes, policy it cannot run).
    #[error("cannot use TPM key {key}: {reason}")]
    UnsupportedKey {
        /// The key's description.
        key: String,
        /// Why.
        reason: String,
    },
    /// The key's own signing scheme fixes another hash than the digest's (the TPM would refuse
    /// TPM2_Sign with TPM_RC_SCHEME): our check, before the TPM is asked.
    #[error(
        "{key} signs only with its own scheme, {scheme}, so it cannot sign a {digest} digest; {fix}"
    )]
    SchemeForbidsDigest {
        /// The key's description.
        key: String,
        /// The key's scheme (`ECDSA with SHA-256`).
        scheme: String,
        /// The digest asked for (`SHA-384`).
        digest: &'static str,
        /// What to do instead.
        fix: String,
    },
    /// A `handle:` argument that is not a persistent handle.
    #[error(
        "invalid TPM key handle {:?}: expected handle:0x81000000 … handle:0x81ffffff \
         (a persistent key, see tpm2_getcap handles-persistent)",
        crate::text::redact(.0)
    )]
    HandleSyntax(String),
    /// A password is too long for the object's name algorithm.
    #[error("the {what} is longer than {max} bytes, more than a TPM auth value can hold")]
    AuthTooLong {
        /// Which password.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The TPM (or the TSS below us) refused a command.
    #[error("{command} for {object} failed: {rc}{hint}")]
    Command {
        /// The TPM command (`TPM2_Load`, …).
        command: &'static str,
        /// The object it concerned (key file, handle, parent).
        object: String,
        /// The decoded response code.
        rc: Rc,
        /// A known fix, starting with "; ", or empty.
        hint: String,
    },
    /// A password could not be obtained.
    #[error(transparent)]
    Secret(#[from] crate::secret::Error),
    /// A previous panic while holding the TPM poisoned the lock: the TPM state is unknown.
    #[error("the TPM session for {0} is unusable after an earlier failure; restart the agent")]
    Poisoned(String),
}

/// A TSS2 response code, decoded for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rc {
    /// A response code with its numeric value.
    Code(u32),
    /// tss-esapi refused locally before anything was sent.
    Wrapper(tss_esapi::WrapperErrorKind),
}

impl Rc {
    /// Decodes a tss-esapi error.
    pub fn from_tss(e: &tss_esapi::Error) -> Rc {
        match e {
            tss_esapi::Error::WrapperError(k) => Rc::Wrapper(*k),
            tss_esapi::Error::Tss2Error(code) => Rc::Code(raw_code(code).unwrap_or(0)),
        }
    }

    /// The numeric code, if there is one.
    pub fn code(self) -> Option<u32> {
        match self {
            Rc::Code(c) => Some(c),
            Rc::Wrapper(_) => None,
        }
    }

    /// The `TPM_RC_*` name of a TPM-layer code (format one codes without their handle, session or
    /// parameter number), if known.
    pub fn tpm_name(self) -> Option<&'static str> {
        let rc = self.code()?;
        if rc >> 16 != 0 {
            return None;
        }
        let base = if rc & 0x80 != 0 {
            0x80 | (rc & 0x3f)
        } else {
            rc & 0xfff
        };
        tpm_rc_name(base)
    }

    /// True for the base code `base` (e.g. `0x08e` TPM_RC_AUTH_FAIL), ignoring handle/session numbers.
    pub fn is(self, base: u32) -> bool {
        match self.code() {
            Some(rc) if rc >> 16 == 0 => {
                if rc & 0x80 != 0 {
                    0x80 | (rc & 0x3f) == base
                } else {
                    rc & 0xfff == base
                }
            }
            _ => false,
        }
    }
}

/// TPM_RC_AUTH_FAIL: wrong auth value, DA counter incremented.
pub const RC_AUTH_FAIL: u32 = 0x08e;
/// TPM_RC_BAD_AUTH: wrong auth value on a noDA object.
pub const RC_BAD_AUTH: u32 = 0x0a2;
/// TPM_RC_LOCKOUT: dictionary-attack lockout.
pub const RC_LOCKOUT: u32 = 0x921;
/// TPM_RC_VALUE.
pub const RC_VALUE: u32 = 0x084;
/// TPM_RC_POLICY_FAIL.
pub const RC_POLICY_FAIL: u32 = 0x09d;
/// TPM_RC_INTEGRITY.
pub const RC_INTEGRITY: u32 = 0x09f;
/// TPM_RC_HANDLE.
pub const RC_HANDLE: u32 = 0x08b;
/// TPM_RC_OBJECT_MEMORY.
pub const RC_OBJECT_MEMORY: u32 = 0x902;
/// TPM_RC_SESSION_MEMORY.
pub const RC_SESSION_MEMORY: u32 = 0x903;
/// TPM_RC_HIERARCHY.
pub const RC_HIERARCHY: u32 = 0x085;

/// tss-esapi 7.7 keeps the raw value private but prints it as `Response code value: 0x…` in the
/// `Display` of the inner code; that is the only stable way to recover it.
fn raw_code(code: &Tss2ResponseCode) -> Option<u32> {
    let text = match code {
        Tss2ResponseCode::Success => return Some(0),
        Tss2ResponseCode::FormatZero(c) => c.to_string(),
        Tss2ResponseCode::FormatOne(c) => c.to_string(),
    };
    let hex = text.rsplit("0x").next()?;
    u32::from_str_radix(hex.trim(), 16).ok()
}

fn tpm_rc_name(base: u32) -> Option<&'static str> {
    Some(match base {
        0x081 => "TPM_RC_ASYMMETRIC",
        0x082 => "TPM_RC_ATTRIBUTES",
        0x083 => "TPM_RC_HASH",
        0x084 => "TPM_RC_VALUE",
        0x085 => "TPM_RC_HIERARCHY",
        0x087 => "TPM_RC_KEY_SIZE",
        0x08a => "TPM_RC_TYPE",
        0x08b => "TPM_RC_HANDLE",
        0x08d => "TPM_RC_RANGE",
        0x08e => "TPM_RC_AUTH_FAIL",
        0x08f => "TPM_RC_NONCE",
        0x092 => "TPM_RC_SCHEME",
        0x095 => "TPM_RC_SIZE",
        0x096 => "TPM_RC_SYMMETRIC",
        0x097 => "TPM_RC_TAG",
        0x098 => "TPM_RC_SELECTOR",
        0x09a => "TPM_RC_INSUFFICIENT",
        0x09b => "TPM_RC_SIGNATURE",
        0x09c => "TPM_RC_KEY",
        0x09d => "TPM_RC_POLICY_FAIL",
        0x09f => "TPM_RC_INTEGRITY",
        0x0a0 => "TPM_RC_TICKET",
        0x0a2 => "TPM_RC_BAD_AUTH",
        0x0a3 => "TPM_RC_EXPIRED",
        0x0a4 => "TPM_RC_POLICY_CC",
        0x0a5 => "TPM_RC_BINDING",
        0x0a6 => "TPM_RC_CURVE",
        0x0a7 => "TPM_RC_ECC_POINT",
        0x100 => "TPM_RC_INITIALIZE",
        0x101 => "TPM_RC_FAILURE",
        0x124 => "TPM_RC_AUTH_TYPE",
        0x125 => "TPM_RC_AUTH_MISSING",
        0x126 => "TPM_RC_POLICY",
        0x127 => "TPM_RC_PCR",
        0x128 => "TPM_RC_PCR_CHANGED",
        0x12f => "TPM_RC_AUTH_UNAVAILABLE",
        0x143 => "TPM_RC_COMMAND_CODE",
        0x145 => "TPM_RC_AUTH_CONTEXT",
        0x150 => "TPM_RC_BAD_CONTEXT",
        0x152 => "TPM_RC_PARENT",
        0x902 => "TPM_RC_OBJECT_MEMORY",
        0x903 => "TPM_RC_SESSION_MEMORY",
        0x905 => "TPM_RC_SESSION_HANDLES",
        0x906 => "TPM_RC_OBJECT_HANDLES",
        0x908 => "TPM_RC_YIELDED",
        0x90a => "TPM_RC_TESTING",
        0x921 => "TPM_RC_LOCKOUT",
        0x922 => "TPM_RC_RETRY",
        _ => return None,
    })
}

/// The TSS layer a non-TPM response code comes from (bits 16–23).
fn layer_name(rc: u32) -> &'static str {
    match rc >> 16 {
        6 => "FAPI",
        7 => "ESYS",
        8 => "SYS",
        9 => "MU",
        10 => "TCTI",
        11 => "resource manager",
        _ => "TSS",
    }
}

impl std::fmt::Display for Rc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rc::Wrapper(k) => write!(f, "tss-esapi refused the request ({k})"),
            Rc::Code(rc) if rc >> 16 != 0 => {
                write!(f, "{} error {rc:#x}", layer_name(rc))?;
                if rc & 0xffff == 0x000a {
                    f.write_str(" (I/O error: nothing answered)")?;
                }
                Ok(())
            }
            Rc::Code(rc) => {
                match self.tpm_name() {
                    Some(n) => write!(f, "{n} ({rc:#x}")?,
                    None => write!(f, "TPM_RC {rc:#x} (")?,
                }
                if rc & 0x80 != 0 {
                    let n = (rc >> 8) & 0xf;
                    if rc & 0x40 != 0 {
                        write!(f, ", parameter {n}")?;
                    } else if n >= 8 {
                        write!(f, ", session {}", n - 8)?;
                    } else if n > 0 {
                        write!(f, ", handle {n}")?;
                    }
                }
                f.write_str(")")
            }
        }
    }
}

impl Error {
    /// True when the user's configuration is at fault (a TCTI, key file, handle or password that
    /// cannot work), as opposed to the TPM failing or refusing: the CLI exits 2 for these, 1 otherwise.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            Error::TctiSyntax { .. }
                | Error::KeyFile { .. }
                | Error::UnsupportedKey { .. }
                | Error::SchemeForbidsDigest { .. }
                | Error::HandleSyntax(_)
                | Error::AuthTooLong { .. }
                | Error::Secret(_)
        )
    }

    /// True when TPM2_Load said the key's blob does not belong to the parent it was loaded under.
    pub(crate) fn is_wrong_parent(&self) -> bool {
        matches!(self, Error::Command { command: "TPM2_Load", rc, .. }
            if rc.is(RC_INTEGRITY) || rc.is(RC_VALUE))
    }

    /// A TPM command failure, with the hint that fits its code.
    pub(crate) fn command(command: &'static str, object: &str, e: &tss_esapi::Error) -> Error {
        let rc = Rc::from_tss(e);
        let hint = if rc.is(RC_LOCKOUT) {
            "; the TPM is in dictionary-attack lockout after too many wrong passwords: wait for the \
             lockout to expire or reset it with tpm2_dictionarylockout -c (lockout auth needed)"
        } else if rc.is(RC_OBJECT_MEMORY) || rc.is(RC_SESSION_MEMORY) {
            "; the TPM is out of object or session slots: use a resource manager \
             (device:/dev/tpmrm0) or flush stale objects with tpm2_flushcontext -t -s"
        } else if command == "TPM2_Load" && (rc.is(RC_INTEGRITY) || rc.is(RC_VALUE)) {
            "; the key was not made under this parent: check the key file's parent (persistent \
             handle, rsaParent) and that this is the TPM the key was created on"
        } else if command == "TPM2_ReadPublic" && rc.is(RC_HANDLE) {
            "; no object at this persistent handle (list them with tpm2_getcap handles-persistent)"
        } else if command == "TPM2_PolicyPCR" && (rc.is(RC_VALUE) || rc.is(RC_POLICY_FAIL)) {
            "; the PCR values differ from those the key's policy was sealed to (a PCR was extended \
             or the boot state changed)"
        } else if rc.is(RC_POLICY_FAIL) {
            "; the key's policy is not satisfied (the PCR values or the policy in the key file do \
             not match the key's authPolicy)"
        } else if command == "TPM2_CreatePrimary" && (rc.is(RC_AUTH_FAIL) || rc.is(RC_BAD_AUTH)) {
            "; the hierarchy password is wrong: give the right one with --tpm-parent-password-file \
             or ROLESANYWHERE_TPM_PARENT_PASSWORD (not retried, to avoid dictionary-attack lockout)"
        } else if command == "TPM2_Load" && (rc.is(RC_AUTH_FAIL) || rc.is(RC_BAD_AUTH)) {
            "; the parent password is wrong: give it with --tpm-parent-password-file or \
             ROLESANYWHERE_TPM_PARENT_PASSWORD (not retried, to avoid dictionary-attack lockout)"
        } else if rc.is(RC_AUTH_FAIL) || rc.is(RC_BAD_AUTH) {
            "; the key password is wrong: give it with --tpm-key-password-file or \
             ROLESANYWHERE_TPM_KEY_PASSWORD, or --no-tpm-key-password if the key has none \
             (not retried, to avoid dictionary-attack lockout)"
        } else if rc.is(RC_HIERARCHY) {
            "; the hierarchy is disabled"
        } else {
            ""
        };
        Error::Command {
            command,
            object: object.to_string(),
            rc,
            hint: hint.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_fail_in_session_one_is_named_with_its_session() {
        let rc = Rc::Code(0x98e);
        assert!(rc.is(RC_AUTH_FAIL));
        assert_eq!(rc.to_string(), "TPM_RC_AUTH_FAIL (0x98e, session 1)");
    }

    #[test]
    fn format_zero_and_tss_layer_codes_are_named() {
        assert_eq!(Rc::Code(0x921).to_string(), "TPM_RC_LOCKOUT (0x921)");
        assert!(Rc::Code(0x921).is(RC_LOCKOUT));
        assert_eq!(
            Rc::Code(0xa000a).to_string(),
            "TCTI error 0xa000a (I/O error: nothing answered)"
        );
        assert!(!Rc::Code(0xa000a).is(RC_VALUE));
        assert_eq!(
            Rc::Code(0x1c4).to_string(),
            "TPM_RC_VALUE (0x1c4, parameter 1)"
        );
    }

    #[test]
    fn raw_code_recovered_from_tss_esapi_error() {
        let e = tss_esapi::Error::Tss2Error(Tss2ResponseCode::from(0x98eu32));
        assert_eq!(Rc::from_tss(&e), Rc::Code(0x98e));
        let msg = Error::command("TPM2_Sign", "key k.pem", &e).to_string();
        assert!(
            msg.contains("TPM2_Sign for key k.pem failed: TPM_RC_AUTH_FAIL"),
            "{msg}"
        );
        assert!(msg.contains("not retried"), "{msg}");
    }
}
