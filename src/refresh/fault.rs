//! What a failed attempt means for the refresher: retry soon, retry later, open the device again,
//! or stop.
//!
//! Pure classification of the errors other modules raise (`session::Error`, the identity's open-time
//! error), by their own classes and by the device backends' own judgement of a lost session
//! (`pkcs11::Error::is_session_lost`, `tpm::Error::is_reset`) and of a refused PIN or password.
//! Never retries anything itself.

use super::schedule::FailureKind;
use crate::session;
use crate::signer::{self, Classify, ErrorClass, SignError};

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Back off and try again (the kind decides how long).
    Retry(FailureKind),
    /// The device session is gone (token removed, TPM reset): close the identity and open it again
    /// (one new login / key load) at the next attempt.
    DeviceLost,
    /// A PIN or password was refused: never tried again automatically; the refresher stops.
    Fatal,
}

/// The class of an identity error: a refused PIN or TPM password is fatal, a lost device session
/// means opening again, configuration mistakes are refusals, the rest transient.
pub fn of_identity(e: &signer::Error) -> Fault {
    match e {
        signer::Error::Pkcs11(p) if p.is_pin_refused() => Fault::Fatal,
        signer::Error::Pkcs11(p) if p.is_session_lost() => Fault::DeviceLost,
        #[cfg(feature = "tpm")]
        signer::Error::Tpm(t) if t.is_auth_refused() => Fault::Fatal,
        #[cfg(feature = "tpm")]
        signer::Error::Tpm(t) if t.is_reset() => Fault::DeviceLost,
        e if e.class() == ErrorClass::Configuration => Fault::Retry(FailureKind::Refused),
        _ => Fault::Retry(FailureKind::Transient),
    }
}

/// The class of a CreateSession failure: a device fault while signing is judged as the identity's;
/// a refusal by the service (4xx other than throttling) or a configuration mistake backs off
/// longer than 5xx, throttling and network failures.
pub fn of_session(e: &session::Error) -> Fault {
    if let Some(id) = device_error(e) {
        return of_identity(id);
    }
    if e.class() == ErrorClass::Configuration {
        return Fault::Retry(FailureKind::Refused);
    }
    match e {
        session::Error::Service { status, .. } if (400..500).contains(status) && *status != 429 => {
            Fault::Retry(FailureKind::Refused)
        }
        session::Error::LeafRefused { .. } => Fault::Retry(FailureKind::Refused),
        _ => Fault::Retry(FailureKind::Transient),
    }
}

/// The backend's error behind a signing failure, found in `e`'s chain: a [`SignError`] carries it
/// as its (boxed) source, which its `Display` and `source()` make transparent.
fn device_error(e: &session::Error) -> Option<&signer::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(SignError::Device { source, .. }) = err.downcast_ref::<SignError>() {
            return source.downcast_ref::<signer::Error>();
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::pkcs11::{CallError, Error as P11};

    fn call(function: &'static str, rv: cryptoki_sys::CK_RV) -> P11 {
        P11::Call {
            what: "signing".into(),
            call: CallError { function, rv },
            hint: String::new(),
        }
    }

    fn login(rv: cryptoki_sys::CK_RV) -> P11 {
        P11::Login {
            token: "t".into(),
            call: CallError {
                function: "C_Login",
                rv,
            },
            hint: String::new(),
        }
    }

    /// A signing failure as the session client reports it: the backend error inside a SignError
    /// inside the core's signing error.
    fn while_signing(e: P11) -> session::Error {
        let sign: SignError = signer::Error::from(e).into();
        session::Error::Sign(crate::sigv4x509::Error::Sign(sign))
    }

    #[test]
    fn lost_pkcs11_sessions_mean_opening_again_and_refused_pins_stop() {
        for rv in [
            cryptoki_sys::CKR_SESSION_HANDLE_INVALID,
            cryptoki_sys::CKR_DEVICE_REMOVED,
            cryptoki_sys::CKR_TOKEN_NOT_PRESENT,
            cryptoki_sys::CKR_USER_NOT_LOGGED_IN,
            cryptoki_sys::CKR_SESSION_CLOSED,
            cryptoki_sys::CKR_OBJECT_HANDLE_INVALID,
        ] {
            assert_eq!(
                of_session(&while_signing(call("C_SignInit", rv))),
                Fault::DeviceLost,
                "{rv:#x}"
            );
            assert_eq!(
                of_identity(&signer::Error::from(call("C_OpenSession", rv))),
                Fault::DeviceLost
            );
        }
        for rv in [
            cryptoki_sys::CKR_PIN_INCORRECT,
            cryptoki_sys::CKR_PIN_LOCKED,
        ] {
            assert_eq!(
                of_identity(&signer::Error::from(login(rv))),
                Fault::Fatal,
                "{rv:#x}"
            );
            assert_eq!(of_session(&while_signing(login(rv))), Fault::Fatal);
        }
        assert_eq!(
            of_session(&while_signing(call(
                "C_Sign",
                cryptoki_sys::CKR_FUNCTION_FAILED
            ))),
            Fault::Retry(FailureKind::Transient)
        );
    }

    #[test]
    fn service_refusals_back_off_longer_than_outages() {
        let service = |status| session::Error::Service {
            url: "https://x/sessions".into(),
            status,
            error_type: String::new(),
            message: String::new(),
            attempts: 1,
        };
        for s in [400, 403, 404] {
            assert_eq!(
                of_session(&service(s)),
                Fault::Retry(FailureKind::Refused),
                "{s}"
            );
        }
        for s in [429, 500, 503] {
            assert_eq!(
                of_session(&service(s)),
                Fault::Retry(FailureKind::Transient),
                "{s}"
            );
        }
        let transport = session::Error::Transport {
            url: "https://x/sessions".into(),
            attempts: 1,
            failure: session::TransportFailure::Io,
            transient: true,
            source: "connection refused".into(),
        };
        assert_eq!(of_session(&transport), Fault::Retry(FailureKind::Transient));
        let endpoint = session::Error::Endpoint {
            url: "x".into(),
            reason: "bad".into(),
        };
        assert_eq!(of_session(&endpoint), Fault::Retry(FailureKind::Refused));
    }
}
