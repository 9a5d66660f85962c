//! Key and parent passwords, and the sessions that carry them.
//!
//! Owns: where a TPM password comes from (flag, file, environment, terminal prompt) and the rule that
//! decides whether a key needs one; HMAC and policy sessions (salted with a loaded decryption key
//! where there is one). Must not put an auth value in a plain password session, a log line, a
//! `Debug` output or an error message, and must not retry a failed authorisation.

use super::error::Error;
use super::tcti::Tpm;
use crate::secret::{self, Secret, Source};
use crate::signer::KeyOptions;
use tss_esapi::{
    attributes::SessionAttributesBuilder,
    constants::SessionType,
    handles::{KeyHandle, SessionHandle},
    interface_types::{
        algorithm::HashingAlgorithm,
        session_handles::{AuthSession, PolicySession},
    },
    structures::{Auth, SymmetricDefinition},
};

/// Environment variable holding the TPM key password (keeps it out of argv).
pub(crate) const KEY_PASSWORD_ENV: &str = "ROLESANYWHERE_TPM_KEY_PASSWORD";
/// Environment variable holding the TPM parent (or hierarchy) password.
pub(crate) const PARENT_PASSWORD_ENV: &str = "ROLESANYWHERE_TPM_PARENT_PASSWORD";

/// An explicitly given secret: the value, else the file, else the environment variable.
fn explicit(
    value: Option<&Secret>,
    file: Option<&std::path::Path>,
    env: &str,
    what: &str,
) -> Result<Option<Secret>, Error> {
    if let Some(v) = value {
        return Ok(Some(v.clone()));
    }
    if let Some(p) = file {
        return Ok(Some(secret::read_file(p, what)?));
    }
    Ok(secret::from_env(env, what)?)
}

/// Whether the key is believed to need a password when none is given explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NeedsAuth {
    /// The key file says emptyAuth TRUE, or the key's policy does not use its auth value.
    No,
    /// The key file says emptyAuth FALSE (or omits it): ask on a terminal, fail without one.
    Yes,
    /// A persistent handle: nothing says; use the empty auth unless one is given.
    Unknown,
}

/// The key's password. `--no-tpm-key-password` forces the empty auth (tpm2_encodeobject 5.4 writes
/// the emptyAuth flag inverted, so the flag cannot always be trusted); an explicit password (flag,
/// file, `ROLESANYWHERE_TPM_KEY_PASSWORD`) wins over the file's flag for the same reason. Otherwise
/// `needs` decides; a prompt appears only on a terminal.
pub(crate) fn key_password(
    opts: &KeyOptions,
    needs: NeedsAuth,
    key: &str,
) -> Result<Secret, Error> {
    if opts.no_tpm_key_password {
        return Ok(Secret::new(String::new()));
    }
    let what = "TPM key password";
    if let Some(s) = explicit(
        opts.tpm_key_password.as_ref(),
        opts.tpm_key_password_file.as_deref(),
        KEY_PASSWORD_ENV,
        what,
    )? {
        return Ok(s);
    }
    match needs {
        NeedsAuth::No | NeedsAuth::Unknown => Ok(Secret::new(String::new())),
        NeedsAuth::Yes => Ok(secret::resolve(
            &[Source::Prompt(format!("Password for TPM key {key}: "))],
            what,
            &format!(
                "the key file says the key has a password: give it with --tpm-key-password-file or \
                 {KEY_PASSWORD_ENV}, or use --no-tpm-key-password if it has none"
            ),
        )?),
    }
}

/// The parent's password (for a hierarchy: the hierarchy's auth). Empty unless given; never prompted,
/// since almost no parent has one and a prompt would stall every unattended run.
pub(crate) fn parent_password(opts: &KeyOptions) -> Result<Secret, Error> {
    Ok(explicit(
        opts.tpm_parent_password.as_ref(),
        opts.tpm_parent_password_file.as_deref(),
        PARENT_PASSWORD_ENV,
        "TPM parent password",
    )?
    .unwrap_or_else(|| Secret::new(String::new())))
}

/// A TPM auth value from a password (its UTF-8 bytes, as tpm2-tools and tpm2-openssl use them).
pub(crate) fn to_auth(password: &Secret) -> tss_esapi::Result<Auth> {
    Auth::try_from(password.expose().as_bytes())
}

/// [`to_auth`], failing as an ESYS-local step about `object` (the length is checked before).
pub(crate) fn auth_value(password: &Secret, object: &str) -> Result<Auth, Error> {
    to_auth(password).map_err(|e| Error::command("Esys_TR_SetAuth", object, &e))
}

/// Checks the length before any TPM command, so a too-long password fails as our own error.
pub(crate) fn check_len(password: &Secret, what: &'static str) -> Result<(), Error> {
    // TPM2B_AUTH holds at most one digest of the largest hash (SHA-512).
    const MAX: usize = 64;
    if password.expose().len() > MAX {
        return Err(Error::AuthTooLong { what, max: MAX });
    }
    Ok(())
}

/// Starts an HMAC session with `continueSession`, salted with `salt` when given (a loaded decryption
/// key: the session key is then unknown to anyone watching the bus).
pub(crate) fn hmac_session(
    tpm: &mut Tpm,
    salt: Option<KeyHandle>,
    object: &str,
) -> Result<AuthSession, Error> {
    start(tpm, salt, SessionType::Hmac, object)
}

/// Starts a policy session with `continueSession`, salted with `salt` when given.
pub(crate) fn policy_session(
    tpm: &mut Tpm,
    salt: Option<KeyHandle>,
    object: &str,
) -> Result<PolicySession, Error> {
    let s = start(tpm, salt, SessionType::Policy, object)?;
    PolicySession::try_from(s).map_err(|e| Error::command("TPM2_StartAuthSession", object, &e))
}

fn start(
    tpm: &mut Tpm,
    salt: Option<KeyHandle>,
    kind: SessionType,
    object: &str,
) -> Result<AuthSession, Error> {
    let session = tpm
        .run("TPM2_StartAuthSession", object, move |c| {
            c.execute_without_session(|c| {
                c.start_auth_session(
                    salt,
                    None,
                    None,
                    kind,
                    SymmetricDefinition::AES_128_CFB,
                    HashingAlgorithm::Sha256,
                )
            })
        })?
        .ok_or_else(|| {
            Error::command(
                "TPM2_StartAuthSession",
                object,
                &tss_esapi::Error::WrapperError(tss_esapi::WrapperErrorKind::WrongValueFromTpm),
            )
        })?;
    let (attrs, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .build();
    tpm.local("Esys_TRSess_SetAttributes", object, move |c| {
        c.tr_sess_set_attributes(session, attrs, mask)
    })?;
    Ok(session)
}

/// Flushes a session this process started.
pub(crate) fn flush_session(
    tpm: &mut Tpm,
    session: AuthSession,
    object: &str,
) -> Result<(), Error> {
    match session {
        AuthSession::Password => Ok(()),
        s => tpm.run("TPM2_FlushContext", object, move |c| {
            c.flush_context(SessionHandle::from(s).into())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> KeyOptions {
        KeyOptions::default()
    }

    #[test]
    fn no_key_password_flag_forces_empty_auth_over_explicit_values() {
        let mut o = opts();
        o.no_tpm_key_password = true;
        o.tpm_key_password = Some(Secret::new("1234".into()));
        assert!(key_password(&o, NeedsAuth::Yes, "k").unwrap().is_empty());
    }

    #[test]
    fn explicit_password_wins_over_empty_auth_flag() {
        let mut o = opts();
        o.tpm_key_password = Some(Secret::new("1234".into()));
        assert_eq!(
            key_password(&o, NeedsAuth::No, "k").unwrap().expose(),
            "1234"
        );
    }

    #[test]
    fn password_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\n").unwrap();
        let mut o = opts();
        o.tpm_key_password_file = Some(p.clone());
        assert_eq!(
            key_password(&o, NeedsAuth::Yes, "k").unwrap().expose(),
            "s3cret"
        );
        o.tpm_parent_password_file = Some(p);
        assert_eq!(parent_password(&o).unwrap().expose(), "s3cret");
    }

    #[test]
    fn missing_password_without_terminal_fails_with_a_hint() {
        if secret::can_prompt() || std::env::var_os(KEY_PASSWORD_ENV).is_some() {
            return; // an interactive run would prompt instead
        }
        let e = key_password(&opts(), NeedsAuth::Yes, "k.pem")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--tpm-key-password-file") && e.contains("--no-tpm-key-password"),
            "{e}"
        );
        assert!(
            key_password(&opts(), NeedsAuth::Unknown, "h")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn overlong_password_is_refused_before_the_tpm_sees_it() {
        let s = Secret::new("x".repeat(65));
        let e = check_len(&s, "TPM key password").unwrap_err().to_string();
        assert!(e.contains("64") && !e.contains("xxxx"), "{e}");
    }
}
