//! PINs: where they come from and the one `C_Login` each may cost.
//!
//! User PIN, first source that has one: the URI's `pin-value`, its `pin-source=file:PATH`, the
//! environment variable [`PIN_ENV`], a prompt when stdin is a terminal. Context-specific PIN (keys
//! with `CKA_ALWAYS_AUTHENTICATE`): the user PIN with `--reuse-pin`, `--pkcs11-context-pin-file`,
//! [`CONTEXT_PIN_ENV`], a prompt when stdin is a terminal. Must not: retry a failed login (a wrong
//! PIN burns one of the token's few tries), log or format a PIN, or keep one outside a [`Secret`].

use super::error::{CallError, Error};
use super::ffi::{Session, TokenInfo};
use super::uri::Pkcs11Uri;
use crate::secret::{self, Secret, Source};
use crate::signer::KeyOptions;

/// Environment variable holding the user PIN.
pub const PIN_ENV: &str = "ROLESANYWHERE_PKCS11_PIN";
/// Environment variable holding the context-specific PIN of `CKA_ALWAYS_AUTHENTICATE` keys.
pub const CONTEXT_PIN_ENV: &str = "ROLESANYWHERE_PKCS11_CONTEXT_PIN";

/// The user PIN for `token`: `given` (a PIN already read from its source, see
/// [`KeyOptions::pkcs11_pin`]), else the first URI (in order) that gives one, else the environment,
/// else a terminal prompt.
pub(crate) fn user_pin(
    uris: &[&Pkcs11Uri],
    token: &TokenInfo,
    given: Option<&Secret>,
) -> Result<Secret, Error> {
    let mut sources: Vec<Source> = given
        .map(|p| Source::Value(p.clone()))
        .into_iter()
        .collect();
    for u in uris {
        if let Some(v) = u.pin_value() {
            sources.push(Source::Value(v.clone()));
        }
        if let Some(p) = &u.pin_source {
            sources.push(Source::File(p.clone()));
        }
    }
    sources.push(Source::Env(PIN_ENV.into()));
    sources.push(Source::Prompt(format!(
        "PIN for PKCS#11 token {:?}: ",
        token.label
    )));
    Ok(secret::resolve(
        &sources,
        &format!("the user PIN of PKCS#11 token {:?}", token.label),
        &format!("add pin-source=file:/PATH to the URI or set {PIN_ENV}"),
    )?)
}

/// Whether a non-interactive user PIN source is configured (used to decide whether a token with a
/// protected authentication path should be given a PIN at all).
fn has_pin_source(uris: &[&Pkcs11Uri], given: Option<&Secret>) -> bool {
    given.is_some()
        || uris
            .iter()
            .any(|u| u.pin_value().is_some() || u.pin_source.is_some())
        || std::env::var_os(PIN_ENV).is_some()
}

/// Logs the session's token in as the user: exactly one `C_Login`. Returns the PIN used (for
/// `--reuse-pin`), or `None` when the token's protected authentication path (pinpad) was used or a
/// user was already logged in for this application.
pub(crate) fn login_user(
    session: &Session,
    token: &TokenInfo,
    uris: &[&Pkcs11Uri],
    given: Option<&Secret>,
) -> Result<Option<Secret>, Error> {
    let pin = if token.protected_authentication_path() && !has_pin_source(uris, given) {
        None
    } else {
        Some(user_pin(uris, token, given)?)
    };
    let rv = session.login(
        cryptoki_sys::CKU_USER,
        pin.as_ref().map(|p| p.expose().as_bytes()),
    );
    match rv {
        Ok(()) => Ok(pin),
        // PKCS#11 login state is per application and token: an earlier session of ours did it.
        Err(e) if e.rv == cryptoki_sys::CKR_USER_ALREADY_LOGGED_IN => Ok(pin),
        Err(e) => Err(login_error(&token.label, e)),
    }
}

/// The [`Error::Login`] for a failed `C_Login`, with advice for the usual codes.
pub(crate) fn login_error(token: &str, call: CallError) -> Error {
    let hint = match call.rv {
        cryptoki_sys::CKR_PIN_INCORRECT => format!(
            "; the PIN is wrong and was not retried (tokens lock after a few failures): check \
             pin-value, pin-source, {PIN_ENV} or the context PIN source"
        ),
        cryptoki_sys::CKR_PIN_LOCKED => {
            "; the PIN is locked: unblock it with the token's SO PIN or PUK".into()
        }
        cryptoki_sys::CKR_PIN_LEN_RANGE | cryptoki_sys::CKR_PIN_INVALID => {
            "; the PIN has the wrong length or characters for this token".into()
        }
        cryptoki_sys::CKR_USER_PIN_NOT_INITIALIZED => {
            "; the token has no user PIN yet: initialise it first".into()
        }
        _ => String::new(),
    };
    Error::Login {
        token: token.to_string(),
        call,
        hint,
    }
}

/// The context-specific PIN of an always-authenticate key, resolved before any signature so a
/// missing one fails early.
pub(crate) fn context_pin(
    opts: &KeyOptions,
    user_pin: Option<&Secret>,
    token: &TokenInfo,
    key: &str,
) -> Result<Secret, Error> {
    let mut sources = Vec::new();
    if let Some(p) = user_pin.filter(|_| opts.reuse_pin) {
        sources.push(Source::Value(p.clone()));
    }
    if let Some(p) = &opts.pkcs11_context_pin {
        sources.push(Source::Value(p.clone()));
    }
    if let Some(p) = &opts.pkcs11_context_pin_file {
        sources.push(Source::File(p.clone()));
    }
    sources.push(Source::Env(CONTEXT_PIN_ENV.into()));
    sources.push(Source::Prompt(format!(
        "context-specific PIN for key {key} on token {:?}: ",
        token.label
    )));
    Ok(secret::resolve(
        &sources,
        &format!("the context-specific PIN of key {key} (it has CKA_ALWAYS_AUTHENTICATE)"),
        &format!("use --reuse-pin, --pkcs11-context-pin-file PATH or set {CONTEXT_PIN_ENV}"),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenInfo {
        TokenInfo {
            label: "ra".into(),
            manufacturer: String::new(),
            model: String::new(),
            serial: String::new(),
            flags: 0,
        }
    }

    #[test]
    fn uri_pin_value_wins_over_pin_source_of_later_uri() {
        let a = Pkcs11Uri::parse("pkcs11:token=ra?pin-value=1111").unwrap();
        let b = Pkcs11Uri::parse("pkcs11:token=ra?pin-source=file:/nonexistent").unwrap();
        assert_eq!(
            user_pin(&[&a, &b], &token(), None).unwrap().expose(),
            "1111"
        );
    }

    #[test]
    fn pin_source_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pin");
        std::fs::write(&p, "2468\n").unwrap();
        let u =
            Pkcs11Uri::parse(&format!("pkcs11:token=ra?pin-source=file:{}", p.display())).unwrap();
        assert_eq!(user_pin(&[&u], &token(), None).unwrap().expose(), "2468");
    }

    #[test]
    fn reuse_pin_gives_the_user_pin_as_context_pin() {
        let opts = KeyOptions {
            reuse_pin: true,
            ..KeyOptions::default()
        };
        let user = Secret::new("1234".into());
        let p = context_pin(&opts, Some(&user), &token(), "pkcs11:object=k").unwrap();
        assert_eq!(p.expose(), "1234");
    }

    #[test]
    fn context_pin_file_is_used_without_reuse_pin() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ctx");
        std::fs::write(&f, "9999").unwrap();
        let opts = KeyOptions {
            pkcs11_context_pin_file: Some(f),
            ..KeyOptions::default()
        };
        let user = Secret::new("1234".into());
        let p = context_pin(&opts, Some(&user), &token(), "k").unwrap();
        assert_eq!(p.expose(), "9999");
    }

    #[test]
    fn wrong_pin_error_names_ckr_and_token() {
        let e = login_error(
            "ra",
            CallError {
                function: "C_Login",
                rv: cryptoki_sys::CKR_PIN_INCORRECT,
            },
        );
        let m = e.to_string();
        assert!(
            m.starts_with("cannot log in to token \"ra\": C_Login: CKR_PIN_INCORRECT"),
            "{m}"
        );
        assert!(m.contains("not retried"), "{m}");
    }
}
