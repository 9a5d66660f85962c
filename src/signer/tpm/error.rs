//! TPM backend errors: our own checks, or a TPM/TSS response code with its `TPM_RC` name.
//!
//! Owns: the error enum, the decoding of response codes into names (TPM codes by their `TPM_RC_*`
//! name, TSS-layer codes by layer and meaning), the split between configuration mistakes and device
//! failures, and the hints for the codes whose fix is known (wrong password, lockout, changed PCRs,
//! wrong parent, full TPM). Must not carry secrets: no variant holds a password or auth value.

use std::path::PathBuf;
use std::time::Duration;
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
    /// The TPM's answer could not be read: it was malformed, cut short, or the connection broke
    /// (a TCTI, SYS or MU layer code, or ESYS refusing the response). The connection is unusable
    /// afterwards.
    #[error(
        "{command} for {object} failed: {rc}; the TPM's answer through TCTI {tcti} was malformed or \
         the connection broke: check that the TCTI names a TPM, simulator or resource manager and \
         that nothing in between drops or alters the traffic"
    )]
    Malformed {
        /// The TPM command.
        command: &'static str,
        /// The object it concerned.
        object: String,
        /// The TCTI used.
        tcti: String,
        /// The TSS response code.
        rc: Rc,
    },
    /// The TPM did not answer a command within the deadline. The worker thread that waits for the
    /// answer is abandoned and the connection is unusable afterwards (see `tcti`).
    #[error(
        "no answer from the TPM to {command} for {object} within {} (TCTI {tcti}); the TPM, \
         simulator or resource manager is stuck, or the endpoint is not a TPM: check it, or allow \
         more time with --tpm-timeout",
        seconds(*after)
    )]
    Timeout {
        /// The TPM command.
        command: &'static str,
        /// The object it concerned.
        object: String,
        /// The TCTI used.
        tcti: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// Opening the TCTI (which talks to the simulator's control port, or opens the device) did not
    /// finish within the deadline.
    #[error(
        "cannot open the TPM through TCTI {tcti} (from {origin}): no answer within {}; check that \
         the TPM or simulator is running and answering, or allow more time with --tpm-timeout",
        seconds(*after)
    )]
    OpenTimeout {
        /// The TCTI used.
        tcti: String,
        /// Where the TCTI came from.
        origin: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// A command was not sent because an earlier one left the connection unusable.
    #[error(
        "{command} for {object} was not sent: the TPM connection through TCTI {tcti} is unusable \
         since {reason}; open the key again"
    )]
    Unusable {
        /// The TPM command.
        command: &'static str,
        /// The object it concerned.
        object: String,
        /// The TCTI used.
        tcti: String,
        /// What broke the connection.
        reason: String,
    },
    /// The thread that talks to the TPM stopped (the TSS library panicked on an answer) or could not
    /// be started.
    #[error("{what} through TCTI {tcti} failed: {reason}")]
    Worker {
        /// The command or step.
        what: String,
        /// The TCTI used.
        tcti: String,
        /// What happened.
        reason: String,
    },
    /// No object at a persistent handle the configuration names (`handle:` or a key file's
    /// parent).
    #[error(
        "no {role} at TPM persistent handle {handle:#010x} (TPM2_ReadPublic: {rc}, TCTI {tcti}): \
         list the handles present with tpm2_getcap handles-persistent; {fix}"
    )]
    HandleNotFound {
        /// `key` or `parent key`.
        role: &'static str,
        /// The handle.
        handle: u32,
        /// The TCTI used.
        tcti: String,
        /// The TPM's answer (TPM_RC_HANDLE).
        rc: Rc,
        /// What to change.
        fix: &'static str,
    },
    /// TPM2_Load refused a key file's contents (integrity, binding, size, attribute or parameter
    /// errors about inPrivate/inPublic, or a parent that is not a storage key): the file is damaged or
    /// belongs to another TPM or parent.
    #[error(
        "TPM2_Load refused TPM key file {path} under {parent}: {rc}; the file is damaged, or was \
         made on another TPM or under another parent: check --private-key and --tpm-tcti (TCTI \
         {tcti}), or make a new key (enroll keygen)"
    )]
    KeyRefused {
        /// The key file.
        path: PathBuf,
        /// The parent it was loaded under.
        parent: String,
        /// The TCTI used.
        tcti: String,
        /// The TPM's response code.
        rc: Rc,
    },
    /// A password could not be obtained.
    #[error(transparent)]
    Secret(#[from] crate::secret::Error),
    /// A `--tpm-pcrs` value that is not `BANK:LIST`.
    #[error(
        "invalid --tpm-pcrs {:?}: {reason} (expected BANK:LIST such as sha256:0,7)",
        crate::text::redact(text)
    )]
    PcrSyntax {
        /// The text given.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A handle for a new persistent key or a parent that is not in the owner's persistent range.
    #[error(
        "{:?} is not a persistent handle; use 0x81000000..0x81ffffff (e.g. 0x81000010)",
        crate::text::redact(.0)
    )]
    PersistentHandleSyntax(String),
    /// The persistent handle a new key should go to already holds an object.
    #[error(
        "persistent handle {handle:#010x} is already in use; choose a free one (tpm2_getcap \
         handles-persistent) or remove the old key with tpm2_evictcontrol"
    )]
    HandleOccupied {
        /// The handle.
        handle: u32,
    },
    /// A PCR policy was asked for a persistent key, which has nowhere to record it.
    #[error(
        "--tpm-pcrs needs a key file (the policy is recorded in it); use --private-key FILE \
         instead of a persistent handle"
    )]
    PcrPolicyNeedsKeyFile,
    /// The TPM has no such PCR in the bank a policy names.
    #[error("the TPM has no PCR {pcr} in the requested bank; check --tpm-pcrs (tpm2_pcrread)")]
    NoSuchPcr {
        /// The PCR index.
        pcr: u8,
    },
    /// tss-esapi refused to build a structure for a command (a template, a handle, a selection).
    #[error("{what}")]
    Prepare {
        /// What was being built.
        what: String,
        /// tss-esapi's refusal.
        #[source]
        source: tss_esapi::Error,
    },
    /// The key the TPM created is not one the agent can sign with.
    #[error("the TPM created an unusable key: {0}")]
    NewKeyUnusable(String),
    /// A policy's digest could not be computed from its commands.
    #[error("cannot compute the key's policy digest: {0}")]
    PolicyDigest(String),
    /// A previous panic while holding the TPM poisoned the lock: the TPM state is unknown.
    #[error("the TPM session for {0} is unusable after an earlier failure; restart the agent")]
    Poisoned(String),
}

/// `30 s`, `1.5 s`: a deadline for messages.
pub(crate) fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
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

    /// True when the code says the TPM's answer could not be read: anything from the TCTI (I/O),
    /// SYS or MU layers (framing and unmarshalling of the response), and the ESYS codes for a
    /// malformed, short or unauthenticated response, an I/O failure or a context left in a bad
    /// state. tss-esapi's `WrongValueFromTpm` is the same thing seen one layer up.
    pub fn is_transport(self) -> bool {
        match self {
            Rc::Wrapper(k) => k == tss_esapi::WrapperErrorKind::WrongValueFromTpm,
            Rc::Code(rc) => match rc >> 16 {
                8..=10 => true,
                7 => matches!(
                    rc & 0xffff,
                    BASE_BAD_SEQUENCE
                        | BASE_NO_CONNECTION
                        | BASE_IO_ERROR
                        | BASE_MALFORMED_RESPONSE
                        | BASE_INSUFFICIENT_RESPONSE
                        | BASE_RSP_AUTH_FAILED
                ),
                _ => false,
            },
        }
    }

    /// True for a TPM2_Load refusal that is about the key file's contents or its parent: a format
    /// one code tied to a parameter (inPrivate, inPublic) or to the parent handle, or
    /// TPM_RC_SENSITIVE. Session-numbered codes (a wrong parent password) and warnings (a full TPM)
    /// are not.
    pub fn is_key_file_refusal(self) -> bool {
        match self.code() {
            Some(rc) if rc >> 16 == 0 && rc & 0x80 != 0 => {
                rc & 0x40 != 0 || (1..8).contains(&((rc >> 8) & 0xf))
            }
            Some(rc) if rc >> 16 == 0 => rc & 0xfff == RC_SENSITIVE,
            _ => false,
        }
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

/// TPM_RC_INITIALIZE: the TPM was reset and TPM2_Startup has not run.
pub const RC_INITIALIZE: u32 = 0x100;
/// TPM_RC_REFERENCE_H0: the first handle references a transient object that is not loaded.
pub const RC_REFERENCE_H0: u32 = 0x910;
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
/// TPM_RC_SENSITIVE: the private area did not unmarshal after decryption.
pub const RC_SENSITIVE: u32 = 0x155;

// TSS2 base response codes (the low 16 bits of a TSS-layer code), tss2_common.h.
const BASE_BAD_SEQUENCE: u32 = 7;
const BASE_NO_CONNECTION: u32 = 8;
const BASE_IO_ERROR: u32 = 10;
const BASE_MALFORMED_RESPONSE: u32 = 17;
const BASE_INSUFFICIENT_RESPONSE: u32 = 19;
const BASE_RSP_AUTH_FAILED: u32 = 27;

/// What a TSS2 base response code means, for messages.
fn base_meaning(base: u32) -> Option<&'static str> {
    Some(match base {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer: the answer does not fit",
        7 => "bad sequence: an earlier command on this connection failed",
        8 => "no connection",
        9 => "try again",
        10 => "I/O error: the connection failed or nothing answered",
        11 => "bad value",
        12 => "not permitted",
        13 => "invalid sessions",
        14 => "no decrypt parameter",
        15 => "no encrypt parameter",
        16 => "bad size",
        17 => "malformed response",
        18 => "insufficient context: the answer is larger than the TSS accepts",
        19 => "insufficient response: the answer is too short",
        20 => "incompatible TCTI",
        21 => "not supported",
        22 => "bad TCTI structure",
        23 => "out of memory",
        24 => "bad ESYS handle",
        25 => "multiple decrypt sessions",
        26 => "multiple encrypt sessions",
        27 => "the answer failed its HMAC check",
        _ => return None,
    })
}

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
        0x088 => "TPM_RC_MGF",
        0x089 => "TPM_RC_MODE",
        0x08a => "TPM_RC_TYPE",
        0x08b => "TPM_RC_HANDLE",
        0x08c => "TPM_RC_KDF",
        0x08d => "TPM_RC_RANGE",
        0x08e => "TPM_RC_AUTH_FAIL",
        0x08f => "TPM_RC_NONCE",
        0x090 => "TPM_RC_PP",
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
        0x0a1 => "TPM_RC_RESERVED_BITS",
        0x0a2 => "TPM_RC_BAD_AUTH",
        0x0a3 => "TPM_RC_EXPIRED",
        0x0a4 => "TPM_RC_POLICY_CC",
        0x0a5 => "TPM_RC_BINDING",
        0x0a6 => "TPM_RC_CURVE",
        0x0a7 => "TPM_RC_ECC_POINT",
        0x100 => "TPM_RC_INITIALIZE",
        0x101 => "TPM_RC_FAILURE",
        0x103 => "TPM_RC_SEQUENCE",
        0x10b => "TPM_RC_PRIVATE",
        0x119 => "TPM_RC_HMAC",
        0x120 => "TPM_RC_DISABLED",
        0x121 => "TPM_RC_EXCLUSIVE",
        0x124 => "TPM_RC_AUTH_TYPE",
        0x125 => "TPM_RC_AUTH_MISSING",
        0x126 => "TPM_RC_POLICY",
        0x127 => "TPM_RC_PCR",
        0x128 => "TPM_RC_PCR_CHANGED",
        0x12d => "TPM_RC_UPGRADE",
        0x12e => "TPM_RC_TOO_MANY_CONTEXTS",
        0x12f => "TPM_RC_AUTH_UNAVAILABLE",
        0x130 => "TPM_RC_REBOOT",
        0x131 => "TPM_RC_UNBALANCED",
        0x142 => "TPM_RC_COMMAND_SIZE",
        0x143 => "TPM_RC_COMMAND_CODE",
        0x144 => "TPM_RC_AUTHSIZE",
        0x145 => "TPM_RC_AUTH_CONTEXT",
        0x146 => "TPM_RC_NV_RANGE",
        0x147 => "TPM_RC_NV_SIZE",
        0x148 => "TPM_RC_NV_LOCKED",
        0x149 => "TPM_RC_NV_AUTHORIZATION",
        0x14a => "TPM_RC_NV_UNINITIALIZED",
        0x14b => "TPM_RC_NV_SPACE",
        0x14c => "TPM_RC_NV_DEFINED",
        0x150 => "TPM_RC_BAD_CONTEXT",
        0x151 => "TPM_RC_CPHASH",
        0x152 => "TPM_RC_PARENT",
        0x153 => "TPM_RC_NEEDS_TEST",
        0x154 => "TPM_RC_NO_RESULT",
        0x155 => "TPM_RC_SENSITIVE",
        0x901 => "TPM_RC_CONTEXT_GAP",
        0x902 => "TPM_RC_OBJECT_MEMORY",
        0x903 => "TPM_RC_SESSION_MEMORY",
        0x904 => "TPM_RC_MEMORY",
        0x905 => "TPM_RC_SESSION_HANDLES",
        0x906 => "TPM_RC_OBJECT_HANDLES",
        0x907 => "TPM_RC_LOCALITY",
        0x908 => "TPM_RC_YIELDED",
        0x909 => "TPM_RC_CANCELED",
        0x90a => "TPM_RC_TESTING",
        0x910 => "TPM_RC_REFERENCE_H0",
        0x911 => "TPM_RC_REFERENCE_H1",
        0x912 => "TPM_RC_REFERENCE_H2",
        0x913 => "TPM_RC_REFERENCE_H3",
        0x914 => "TPM_RC_REFERENCE_H4",
        0x915 => "TPM_RC_REFERENCE_H5",
        0x916 => "TPM_RC_REFERENCE_H6",
        0x918 => "TPM_RC_REFERENCE_S0",
        0x919 => "TPM_RC_REFERENCE_S1",
        0x91a => "TPM_RC_REFERENCE_S2",
        0x91b => "TPM_RC_REFERENCE_S3",
        0x91c => "TPM_RC_REFERENCE_S4",
        0x91d => "TPM_RC_REFERENCE_S5",
        0x91e => "TPM_RC_REFERENCE_S6",
        0x920 => "TPM_RC_NV_RATE",
        0x921 => "TPM_RC_LOCKOUT",
        0x922 => "TPM_RC_RETRY",
        0x923 => "TPM_RC_NV_UNAVAILABLE",
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
                match base_meaning(rc & 0xffff) {
                    Some(m) => write!(f, " ({m})"),
                    None => Ok(()),
                }
            }
            Rc::Code(rc) => {
                // Format-zero codes with the TCG-vendor bit (0x400) are the TPM maker's own.
                let name = match self.tpm_name() {
                    Some(n) => n,
                    None if rc & 0x80 == 0 && rc & 0x400 != 0 => "vendor-specific TPM code",
                    None => "unknown TPM code",
                };
                write!(f, "{name} ({rc:#x}")?;
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

/// Configuration when the user's configuration is at fault (a TCTI, key file, handle or password
/// that cannot work), operational when the TPM fails or refuses: the CLI exits 2 for the first, 1
/// for the second.
///
/// Configuration: a bad TCTI string, an unreadable or refused key file (also when the TPM refuses
/// to load it), a key the agent cannot use, a bad or empty persistent handle, an overlong or
/// missing password. Operational: the TPM refusing an authorisation (wrong password, lockout), a
/// failing, full, stuck or unreachable TPM, a malformed answer.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        use rolesanywhere_core::ErrorClass;
        match self {
            Error::TctiSyntax { .. }
            | Error::KeyFile { .. }
            | Error::KeyRefused { .. }
            | Error::UnsupportedKey { .. }
            | Error::SchemeForbidsDigest { .. }
            | Error::HandleSyntax(_)
            | Error::HandleNotFound { .. }
            | Error::AuthTooLong { .. }
            | Error::Secret(_)
            | Error::PcrSyntax { .. }
            | Error::PersistentHandleSyntax(_)
            | Error::HandleOccupied { .. }
            | Error::PcrPolicyNeedsKeyFile
            | Error::NoSuchPcr { .. } => ErrorClass::Configuration,
            Error::TctiOpen { .. }
            | Error::Command { .. }
            | Error::Malformed { .. }
            | Error::Timeout { .. }
            | Error::OpenTimeout { .. }
            | Error::Unusable { .. }
            | Error::Worker { .. }
            | Error::Prepare { .. }
            | Error::NewKeyUnusable(_)
            | Error::PolicyDigest(_)
            | Error::Poisoned(_) => ErrorClass::Operational,
        }
    }
}

impl Error {
    /// True when the TPM connection or the TPM's state behind it is gone: the connection broke or
    /// cannot be opened (a restarted simulator or resource manager), the TPM was reset and needs
    /// TPM2_Startup (TPM_RC_INITIALIZE), or the loaded key's handle no longer names it
    /// (TPM_RC_HANDLE, TPM_RC_REFERENCE_H0). For long-running commands, which open the key again
    /// once per such fault. A refused password is not among them (see [`Error::is_auth_refused`]).
    pub fn is_reset(&self) -> bool {
        match self {
            Error::TctiOpen { .. }
            | Error::OpenTimeout { .. }
            | Error::Malformed { .. }
            | Error::Unusable { .. }
            | Error::Timeout { .. }
            | Error::Worker { .. } => true,
            Error::Command { rc, .. } => {
                rc.is(RC_INITIALIZE) || rc.is(RC_HANDLE) || rc.is(RC_REFERENCE_H0)
            }
            _ => false,
        }
    }

    /// True when the TPM refused an authorisation (wrong password, dictionary-attack lockout): it
    /// must never be tried again automatically.
    pub fn is_auth_refused(&self) -> bool {
        match self {
            Error::Command { rc, .. } => {
                rc.is(RC_AUTH_FAIL) || rc.is(RC_BAD_AUTH) || rc.is(RC_LOCKOUT)
            }
            _ => false,
        }
    }

    /// True when a ReadPublic found nothing at the handle (TPM_RC_HANDLE).
    pub(crate) fn is_absent_handle(&self) -> bool {
        self.absent_handle_rc().is_some()
    }

    /// The TPM_RC_HANDLE answer of a ReadPublic that found nothing, if this is one.
    pub(crate) fn absent_handle_rc(&self) -> Option<Rc> {
        match self {
            Error::Command {
                command: "TPM2_ReadPublic",
                rc,
                ..
            } if rc.is(RC_HANDLE) => Some(*rc),
            _ => None,
        }
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
            "TCTI error 0xa000a (I/O error: the connection failed or nothing answered)"
        );
        assert!(!Rc::Code(0xa000a).is(RC_VALUE));
        assert_eq!(
            Rc::Code(0x1c4).to_string(),
            "TPM_RC_VALUE (0x1c4, parameter 1)"
        );
    }

    /// Issue 14 (16): codes outside the old table came out as `TPM_RC 0x401 ()`.
    #[test]
    fn every_tpm_code_gets_a_name_or_a_class() {
        assert_eq!(Rc::Code(0x155).to_string(), "TPM_RC_SENSITIVE (0x155)");
        assert_eq!(Rc::Code(0x923).to_string(), "TPM_RC_NV_UNAVAILABLE (0x923)");
        assert_eq!(Rc::Code(0x910).to_string(), "TPM_RC_REFERENCE_H0 (0x910)");
        assert_eq!(
            Rc::Code(0x2c8).to_string(),
            "TPM_RC_MGF (0x2c8, parameter 2)"
        );
        assert_eq!(
            Rc::Code(0x401).to_string(),
            "vendor-specific TPM code (0x401)"
        );
        assert_eq!(Rc::Code(0x17e).to_string(), "unknown TPM code (0x17e)");
        // Every format-zero base the spec defines (TPM 2.0 part 2, table 16) has a name.
        for base in [
            0x100, 0x101, 0x103, 0x10b, 0x119, 0x120, 0x121, 0x124, 0x125, 0x126, 0x127,
        ]
        .into_iter()
        .chain([
            0x128, 0x12d, 0x12e, 0x12f, 0x130, 0x131, 0x150, 0x151, 0x152, 0x153, 0x154, 0x155,
        ])
        .chain(0x142..=0x14c)
        .chain(0x901..=0x90a)
        .chain(0x910..=0x916)
        .chain(0x918..=0x91e)
        .chain(0x920..=0x923)
        {
            assert!(Rc::Code(base).tpm_name().is_some(), "{base:#x}");
        }
    }

    /// Issue 14 (16): the codes a hostile or broken endpoint produced came out as bare hex.
    #[test]
    fn tss_layer_codes_are_named_in_words_and_classed_as_transport() {
        for (rc, text) in [
            (
                0x70007,
                "ESYS error 0x70007 (bad sequence: an earlier command on this connection failed)",
            ),
            (
                0x80012,
                "SYS error 0x80012 (insufficient context: the answer is larger than the TSS accepts)",
            ),
            (
                0x90006,
                "MU error 0x90006 (insufficient buffer: the answer does not fit)",
            ),
            (
                0x7001b,
                "ESYS error 0x7001b (the answer failed its HMAC check)",
            ),
        ] {
            assert_eq!(Rc::Code(rc).to_string(), text);
            assert!(Rc::Code(rc).is_transport(), "{rc:#x}");
        }
        // ESYS refusing our own arguments, and every TPM-layer code, are not transport failures.
        for rc in [0x7000b, 0x98e, 0x18b, 0x902] {
            assert!(!Rc::Code(rc).is_transport(), "{rc:#x}");
        }
        assert!(Rc::Wrapper(tss_esapi::WrapperErrorKind::WrongValueFromTpm).is_transport());
    }

    /// Issue 14 (17): what TPM2_Load says about a damaged file versus about the session or the TPM.
    #[test]
    fn load_refusals_about_the_file_are_told_from_auth_and_capacity_failures() {
        // INTEGRITY on parameter 1 (inPrivate), BINDING on 2 (inPublic), SIZE on 1, TYPE on handle 1
        // (the parent is no storage key), SENSITIVE (format zero).
        for rc in [0x1df, 0x2e5, 0x1d5, 0x18a, 0x155] {
            assert!(Rc::Code(rc).is_key_file_refusal(), "{rc:#x}");
        }
        // AUTH_FAIL in session 1, OBJECT_MEMORY, LOCKOUT, FAILURE, a TCTI error.
        for rc in [0x98e, 0x902, 0x921, 0x101, 0xa000a] {
            assert!(!Rc::Code(rc).is_key_file_refusal(), "{rc:#x}");
        }
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
