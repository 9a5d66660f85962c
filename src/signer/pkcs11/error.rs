//! The PKCS#11 backend's error type and the `CKR_*` names its messages carry.
//!
//! Owns: turning cryptoki and raw `CK_RV` failures into messages that name the C function, the
//! `CKR_` code and the object involved, with a hint where the fix is known. Must not format secrets:
//! no variant carries a PIN, and URIs are stored in their PIN-less display form.

use std::path::PathBuf;

/// A failed PKCS#11 call: the C function and its `CKR_*` return code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    /// The C function, e.g. `C_Login`.
    pub function: &'static str,
    /// The raw return value.
    pub rv: cryptoki_sys::CK_RV,
}

impl CallError {
    /// The `CKR_*` name of the return value (`CKR_VENDOR_DEFINED+0x…`/hex when unknown).
    pub fn ckr(&self) -> String {
        ckr_name(self.rv)
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.function, self.ckr())
    }
}

impl std::error::Error for CallError {}

/// PKCS#11 problems, keeping the C function and `CKR_` code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `pkcs11:` URI does not follow RFC 7512.
    #[error("invalid PKCS#11 URI \"{uri}\": {reason}")]
    Uri {
        /// The URI as [`crate::text::arg`] shows it: cut where `pin-value` starts, escaped.
        uri: String,
        /// What is wrong, naming the bad part.
        reason: String,
    },
    /// No PKCS#11 module could be loaded.
    #[error("cannot load a PKCS#11 module: {tried}; {hint}")]
    NoModule {
        /// What was tried and why each failed.
        tried: String,
        /// How to fix it.
        hint: String,
    },
    /// The module file exists but could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {path}: {reason}{hint}", path = crate::text::path(path))]
    Module {
        /// The module path.
        path: PathBuf,
        /// Why it failed (loader message or `C_Initialize: CKR_…`).
        reason: String,
        /// What to check (starts with `; ` when present): for SoftHSM, its configuration.
        hint: String,
    },
    /// A PKCS#11 call failed.
    #[error("{what}: {call}{hint}")]
    Call {
        /// The object or step involved (`token "ra"`, `key pkcs11:…`).
        what: String,
        /// The C function and `CKR_` code (shown in the message, so not a `source`).
        call: CallError,
        /// Extra advice (starts with `; ` when present).
        hint: String,
    },
    /// Logging in failed (the PIN is never retried).
    #[error("cannot log in to token {token:?}: {call}{hint}")]
    Login {
        /// Token label.
        token: String,
        /// `C_Login` and its `CKR_` code (shown in the message, so not a `source`).
        call: CallError,
        /// Extra advice (starts with `; ` when present).
        hint: String,
    },
    /// No token matches the URI.
    #[error("no PKCS#11 token matches {uri} in module {module}{seen}{hint}")]
    TokenNotFound {
        /// The URI (PIN-less).
        uri: String,
        /// The module path.
        module: String,
        /// The tokens the module shows, as URIs (percent-encoded), or that it shows none; starts
        /// with `; `.
        seen: String,
        /// Why tokens may be invisible and how to list them (starts with `; `).
        hint: String,
    },
    /// Several tokens match where one is needed.
    #[error("{uri} matches several tokens; add a token= or serial= attribute: {candidates}")]
    AmbiguousToken {
        /// The URI (PIN-less).
        uri: String,
        /// URIs of the candidate tokens.
        candidates: String,
    },
    /// No certificate matches the URI.
    #[error(
        "no certificate matches {uri}; list the token's certificates with \
         `read-certificate-data --certificate 'pkcs11:token=LABEL'`"
    )]
    CertificateNotFound {
        /// The URI (PIN-less).
        uri: String,
    },
    /// Several certificates match the URI.
    #[error("{uri} matches several certificates; use one of: {candidates}")]
    AmbiguousCertificate {
        /// The URI (PIN-less).
        uri: String,
        /// URIs that select each candidate alone.
        candidates: String,
    },
    /// A certificate object's value does not parse.
    #[error("certificate {uri} on the token does not parse")]
    BadCertificate {
        /// The URI of the object.
        uri: String,
        /// The parse failure.
        #[source]
        source: crate::certs::Error,
    },
    /// No private key matches.
    #[error("no private key matches {uri}{hint}")]
    KeyNotFound {
        /// The URI searched (PIN-less).
        uri: String,
        /// Extra advice (starts with `; ` when present).
        hint: String,
    },
    /// Several private keys match and the certificate does not decide.
    #[error("{uri} matches several private keys; use one of: {candidates}")]
    AmbiguousKey {
        /// The URI searched (PIN-less).
        uri: String,
        /// URIs that select each candidate alone.
        candidates: String,
    },
    /// The key's public half cannot be determined from the token.
    #[error(
        "cannot read the public key of {uri}: the token has neither the key's public attributes \
         nor a public key or certificate object with its CKA_ID{detail}"
    )]
    NoPublicKey {
        /// The key's URI.
        uri: String,
        /// Extra detail (starts with `; ` when present).
        detail: String,
    },
    /// The key type or curve is not one Roles Anywhere accepts.
    #[error("key {uri} is unusable: {reason}")]
    UnsupportedKey {
        /// The key's URI.
        uri: String,
        /// Why.
        reason: String,
    },
    /// The token cannot sign a digest with this key.
    #[error("token {token:?} cannot sign with key {uri}: {reason}")]
    NoMechanism {
        /// Token label.
        token: String,
        /// The key's URI.
        uri: String,
        /// Which mechanisms are missing, and why the fallback is impossible.
        reason: String,
    },
    /// The token cannot generate (or would not be able to use) a key of the requested kind;
    /// found before anything was generated.
    #[error("token {token:?} cannot generate the {kind} key {uri}: {reason}")]
    NoKeyGeneration {
        /// Token label.
        token: String,
        /// The key kind asked for.
        kind: String,
        /// The target URI (PIN-less).
        uri: String,
        /// Which mechanisms are missing.
        reason: String,
    },
    /// A PIN could not be obtained.
    #[error(transparent)]
    Pin(#[from] crate::secret::Error),
    /// The token returned a signature of an unexpected form.
    #[error("malformed signature from {uri}")]
    Signature {
        /// The key's URI.
        uri: String,
        /// The conversion failure.
        #[source]
        source: crate::signer::encoding::Error,
    },
    /// `read-certificate-data` was given something other than a `pkcs11:` URI.
    #[error("{} is not a pkcs11: URI", crate::text::arg(.0))]
    NotAUri(String),
    /// A URI given to key management does not name what the operation needs (the new key's label,
    /// the key to store a certificate for, …).
    #[error("{uri}: {reason}")]
    TargetUri {
        /// The URI (PIN-less).
        uri: String,
        /// What is missing or wrong, and what to write instead.
        reason: String,
    },
    /// The token already holds an object key generation or certificate storage would duplicate.
    #[error("{target}: the token already has {what}; {hint}")]
    ObjectExists {
        /// The URI (PIN-less).
        target: String,
        /// What was found.
        what: String,
        /// How to proceed.
        hint: String,
    },
    /// The token did not return an attribute a newly generated key must have.
    #[error("{target}: the token returned no {what} for the new key")]
    NewKeyUnreadable {
        /// The URI (PIN-less).
        target: String,
        /// The attribute, or why the public key is unusable.
        what: String,
    },
    /// The system random source failed (drawing a new key's `CKA_ID`).
    #[error("cannot draw a random key id from the system random source")]
    RandomId(#[source] getrandom::Error),
    /// A certificate to store could not be described as a token object.
    #[error("cannot describe certificate {subject} as a token object: {reason}")]
    CertificateObject {
        /// The certificate's subject (escaped).
        subject: String,
        /// The parse failure.
        reason: String,
    },
}

/// Configuration: what the user fixes in the configuration (URI, module path, PIN source, which
/// objects are named, an object that already exists); front ends map it to the usage exit code.
/// Operational: the device failed or refused (wrong PIN, removed) or answered with something unusable.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        use rolesanywhere_core::ErrorClass::{Configuration, Operational};
        match self {
            Error::Uri { .. }
            | Error::NoModule { .. }
            | Error::Module { .. }
            | Error::TokenNotFound { .. }
            | Error::AmbiguousToken { .. }
            | Error::CertificateNotFound { .. }
            | Error::AmbiguousCertificate { .. }
            | Error::KeyNotFound { .. }
            | Error::AmbiguousKey { .. }
            | Error::UnsupportedKey { .. }
            | Error::NoMechanism { .. }
            | Error::NoKeyGeneration { .. }
            | Error::Pin(_)
            | Error::NotAUri(_)
            | Error::TargetUri { .. }
            | Error::ObjectExists { .. } => Configuration,
            Error::Call { .. }
            | Error::Login { .. }
            | Error::BadCertificate { .. }
            | Error::NoPublicKey { .. }
            | Error::Signature { .. }
            | Error::NewKeyUnreadable { .. }
            | Error::RandomId(_)
            | Error::CertificateObject { .. } => Operational,
        }
    }
}

impl Error {
    /// True when the token's session or login is gone (the device was removed, the token is not
    /// present, the session was closed or its handle is invalid, the login was lost), or the key
    /// handle found at open no longer names an object (the token was re-initialised or its object
    /// store replaced: SoftHSM answers `CKR_OBJECT_HANDLE_INVALID` when its token directory was
    /// swapped): the key can only be used again through a new session, search and login. For
    /// long-running commands, which open the identity again once per such fault.
    pub fn is_session_lost(&self) -> bool {
        match self {
            Error::Call { call, .. } | Error::Login { call, .. } => matches!(
                call.rv,
                cryptoki_sys::CKR_SESSION_HANDLE_INVALID
                    | cryptoki_sys::CKR_SESSION_CLOSED
                    | cryptoki_sys::CKR_DEVICE_REMOVED
                    | cryptoki_sys::CKR_TOKEN_NOT_PRESENT
                    | cryptoki_sys::CKR_USER_NOT_LOGGED_IN
                    | cryptoki_sys::CKR_KEY_HANDLE_INVALID
                    | cryptoki_sys::CKR_OBJECT_HANDLE_INVALID
            ),
            _ => false,
        }
    }

    /// True when a login was refused because of the PIN (wrong, locked, expired, of the wrong form):
    /// it must never be tried again automatically.
    pub fn is_pin_refused(&self) -> bool {
        matches!(self, Error::Login { call, .. } if matches!(
            call.rv,
            cryptoki_sys::CKR_PIN_INCORRECT
                | cryptoki_sys::CKR_PIN_LOCKED
                | cryptoki_sys::CKR_PIN_EXPIRED
                | cryptoki_sys::CKR_PIN_INVALID
                | cryptoki_sys::CKR_PIN_LEN_RANGE
        ))
    }
}

/// Shorthand for [`Error::Call`].
pub(crate) fn call(what: impl Into<String>, call: CallError) -> Error {
    Error::Call {
        what: what.into(),
        call,
        hint: String::new(),
    }
}

/// The `CKR_*` name of a return value.
pub fn ckr_name(rv: cryptoki_sys::CK_RV) -> String {
    if let Some((_, n)) = CKR_TABLE.iter().find(|(c, _)| *c == rv) {
        return (*n).to_string();
    }
    if rv >= cryptoki_sys::CKR_VENDOR_DEFINED {
        return format!(
            "CKR_VENDOR_DEFINED+{:#x}",
            rv - cryptoki_sys::CKR_VENDOR_DEFINED
        );
    }
    format!("CKR_{rv:#x}")
}

macro_rules! ckr_table {
    ($($name:ident),* $(,)?) => {
        const CKR_TABLE: &[(cryptoki_sys::CK_RV, &str)] = &[$((cryptoki_sys::$name, stringify!($name))),*];
    };
}

ckr_table!(
    CKR_OK,
    CKR_CANCEL,
    CKR_HOST_MEMORY,
    CKR_SLOT_ID_INVALID,
    CKR_GENERAL_ERROR,
    CKR_FUNCTION_FAILED,
    CKR_ARGUMENTS_BAD,
    CKR_NO_EVENT,
    CKR_NEED_TO_CREATE_THREADS,
    CKR_CANT_LOCK,
    CKR_ATTRIBUTE_READ_ONLY,
    CKR_ATTRIBUTE_SENSITIVE,
    CKR_ATTRIBUTE_TYPE_INVALID,
    CKR_ATTRIBUTE_VALUE_INVALID,
    CKR_ACTION_PROHIBITED,
    CKR_DATA_INVALID,
    CKR_DATA_LEN_RANGE,
    CKR_DEVICE_ERROR,
    CKR_DEVICE_MEMORY,
    CKR_DEVICE_REMOVED,
    CKR_FUNCTION_CANCELED,
    CKR_FUNCTION_NOT_PARALLEL,
    CKR_FUNCTION_NOT_SUPPORTED,
    CKR_CURVE_NOT_SUPPORTED,
    CKR_KEY_HANDLE_INVALID,
    CKR_KEY_SIZE_RANGE,
    CKR_KEY_TYPE_INCONSISTENT,
    CKR_KEY_FUNCTION_NOT_PERMITTED,
    CKR_MECHANISM_INVALID,
    CKR_MECHANISM_PARAM_INVALID,
    CKR_OBJECT_HANDLE_INVALID,
    CKR_OPERATION_ACTIVE,
    CKR_OPERATION_NOT_INITIALIZED,
    CKR_PIN_INCORRECT,
    CKR_PIN_INVALID,
    CKR_PIN_LEN_RANGE,
    CKR_PIN_EXPIRED,
    CKR_PIN_LOCKED,
    CKR_SESSION_CLOSED,
    CKR_SESSION_COUNT,
    CKR_SESSION_HANDLE_INVALID,
    CKR_SESSION_PARALLEL_NOT_SUPPORTED,
    CKR_SESSION_READ_ONLY,
    CKR_SESSION_EXISTS,
    CKR_SESSION_READ_ONLY_EXISTS,
    CKR_SESSION_READ_WRITE_SO_EXISTS,
    CKR_SIGNATURE_INVALID,
    CKR_SIGNATURE_LEN_RANGE,
    CKR_TEMPLATE_INCOMPLETE,
    CKR_TEMPLATE_INCONSISTENT,
    CKR_TOKEN_NOT_PRESENT,
    CKR_TOKEN_NOT_RECOGNIZED,
    CKR_TOKEN_WRITE_PROTECTED,
    CKR_USER_ALREADY_LOGGED_IN,
    CKR_USER_NOT_LOGGED_IN,
    CKR_USER_PIN_NOT_INITIALIZED,
    CKR_USER_TYPE_INVALID,
    CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
    CKR_USER_TOO_MANY_TYPES,
    CKR_DOMAIN_PARAMS_INVALID,
    CKR_BUFFER_TOO_SMALL,
    CKR_SAVED_STATE_INVALID,
    CKR_INFORMATION_SENSITIVE,
    CKR_STATE_UNSAVEABLE,
    CKR_CRYPTOKI_NOT_INITIALIZED,
    CKR_CRYPTOKI_ALREADY_INITIALIZED,
    CKR_MUTEX_BAD,
    CKR_MUTEX_NOT_LOCKED,
    CKR_FUNCTION_REJECTED,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_errors_show_function_and_ckr_name() {
        let c = CallError {
            function: "C_Login",
            rv: cryptoki_sys::CKR_PIN_INCORRECT,
        };
        assert_eq!(c.to_string(), "C_Login: CKR_PIN_INCORRECT");
    }

    /// Key management's own failures: an object that is already there or a URI that names no key
    /// is the user's to fix (exit 2, as `enroll keygen` has always exited for an existing id); a
    /// token that does not describe the key it just made, or no randomness, is not.
    #[test]
    fn key_management_errors_say_their_class() {
        use rolesanywhere_core::{Classify, ErrorClass};
        let configuration = [
            Error::ObjectExists {
                target: "pkcs11:token=ra".into(),
                what: "an object labelled \"k\"".into(),
                hint: "h".into(),
            },
            Error::TargetUri {
                uri: "pkcs11:token=ra".into(),
                reason: "r".into(),
            },
        ];
        for e in configuration {
            assert_eq!(e.class(), ErrorClass::Configuration, "{e}");
        }
        let operational = [
            Error::NewKeyUnreadable {
                target: "pkcs11:token=ra".into(),
                what: "CKA_EC_POINT".into(),
            },
            Error::CertificateObject {
                subject: "CN=x".into(),
                reason: "r".into(),
            },
            Error::Call {
                what: "token \"ra\"".into(),
                call: CallError {
                    function: "C_GenerateKeyPair",
                    rv: cryptoki_sys::CKR_DEVICE_REMOVED,
                },
                hint: String::new(),
            },
        ];
        for e in operational {
            assert_eq!(e.class(), ErrorClass::Operational, "{e}");
        }
    }

    #[test]
    fn unknown_codes_are_shown_in_hex() {
        assert_eq!(
            ckr_name(cryptoki_sys::CKR_VENDOR_DEFINED + 5),
            "CKR_VENDOR_DEFINED+0x5"
        );
        assert_eq!(ckr_name(0x777), "CKR_0x777");
    }
}
