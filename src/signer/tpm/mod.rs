//! TPM 2.0 keys: `TSS2 PRIVATE KEY` files and persistent handles, through any TCTI.
//!
//! Owns: bringing a key up in the TPM once per process (parent, sessions, load), signing digests with
//! it, and releasing everything on drop. Construction does all TPM I/O and fails before any network
//! call; [`TpmSigner::public_key`] is the TPM's public area, which the dispatcher compares with the
//! certificate. Must not: hash messages (only the core's [`Digest`] reaches TPM2_Sign), send an auth
//! value outside an HMAC or policy session, retry a failed authorisation (dictionary-attack lockout),
//! or put a password in a message.
//!
//! One credential fetch with a tpm2-openssl EC key file under the owner hierarchy sends:
//! `ReadPublic(0x81000001)` (probe for a persistent SRK) + `CreatePrimary` + `Load` +
//! `FlushContext(parent)` + `Sign` + `FlushContext(key)`; with a matching persistent SRK the probe
//! becomes two ReadPublic and CreatePrimary and its flush disappear. See [`command_count`].
//!
//! The backend's API: [`open_key_file`] and [`open_handle`] (signing keys; `check_key_file` for the fuzz target),
//! [`generate`] (key management: new keys for enrollment), [`resolved_tcti`] and [`command_count`].
//! The rest of the crate reaches the ones that talk to the TPM only through [`BACKEND`], which
//! `rolesanywhere-agent-tpm` hands to the library (`signer::backends`): `rolesanywhere-agent` does
//! not, and so links no libtss2. Everything else is private to the backend:
//!
//! - `tcti`: which TPM, and the context wrapper that counts commands and puts a deadline on each.
//! - `keyfile`: the key file format (decode and encode).
//! - `parent`: SRK templates and parents.
//! - `auth`: passwords and sessions.
//! - `policy`: key-file policies.
//! - `sign`: public areas, schemes and signature encodings.
//! - `key_management`: creating keys, as key files or persistent.

mod auth;
mod error;
mod key_management;
mod keyfile;
mod parent;
mod policy;
mod sign;
mod tcti;

#[cfg(test)]
#[path = "../../../hsm-tests/src/swtpm.rs"]
#[allow(dead_code, reason = "shared with hsm-tests, which uses all of it")]
mod swtpm;
#[cfg(test)]
mod tests;

pub(crate) use auth::KEY_PASSWORD_ENV;
pub use error::{Error, Rc};
pub use key_management::{Destination, Generated, KeySpec, generate};
/// The key file decoder and encoder, for the fuzz targets only.
#[cfg(feature = "fuzzing")]
pub(crate) use keyfile::TpmKeyFile;

use crate::keys::PublicKey;
use crate::signer::backends::TpmBackend;
use crate::signer::{KeyOptions, Signer};
use crate::sigv4x509::Digest;
use std::path::Path;
use std::sync::Mutex;
use tcti::Tpm;
use tss_esapi::{
    handles::{KeyHandle, ObjectHandle, TpmHandle},
    interface_types::session_handles::{AuthSession, PolicySession},
    structures::{Private, Public},
    traits::UnMarshall,
};

/// This backend behind the library's port ([`TpmBackend`]): what `rolesanywhere-agent-tpm` hands
/// to `cli::run`. Nothing else in the crate names the functions it calls (see
/// [`crate::signer::backends`]).
pub static BACKEND: Tss2Backend = Tss2Backend;

/// The TPM backend through libtss2 (tss-esapi): [`open_key_file`], [`open_handle`], [`generate`]
/// and [`command_count`].
#[derive(Debug)]
pub struct Tss2Backend;

impl TpmBackend for Tss2Backend {
    fn open_key_file(
        &self,
        data: &[u8],
        path: &Path,
        opts: &KeyOptions,
    ) -> Result<Box<dyn Signer>, Error> {
        Ok(Box::new(open_key_file(data, path, opts)?))
    }

    fn open_handle(&self, handle: &str, opts: &KeyOptions) -> Result<Box<dyn Signer>, Error> {
        Ok(Box::new(open_handle(handle, opts)?))
    }

    fn generate(
        &self,
        dest: &Destination,
        spec: &KeySpec,
        opts: &KeyOptions,
    ) -> Result<Generated, Error> {
        generate(dest, spec, opts)
    }

    fn command_count(&self) -> u64 {
        command_count()
    }
}

/// Number of TPM commands this process has sent so far (every context). The CLI prints it under
/// `--debug`; tests use it to pin the cost of a credential fetch.
pub fn command_count() -> u64 {
    tcti::command_count()
}

/// The TCTI a TPM command would use with `--tpm-tcti flag` (`None`: the environment's or the
/// default), in `name:config` form: what enrollment records for later runs.
pub fn resolved_tcti(flag: Option<&str>) -> Result<String, Error> {
    Ok(tcti::resolve(flag)?.text)
}

/// A key loaded in a TPM, ready to sign. `Send + Sync`: the TPM context sits behind a mutex, so
/// signatures from several threads are serialised (the TPM runs one command at a time anyway).
pub struct TpmSigner {
    state: Mutex<State>,
    public: PublicKey,
    /// The hash the key's own scheme fixes (`None`: scheme NULL, any digest).
    scheme_hash: Option<tss_esapi::interface_types::algorithm::HashingAlgorithm>,
    desc: String,
}

/// What stays in the TPM while the signer lives, released in [`Drop`].
struct State {
    tpm: Tpm,
    key: KeyHandle,
    /// A persistent key is only closed in ESYS, never flushed.
    persistent: bool,
    /// The HMAC session that carries a non-empty key password; `None` for the empty auth, which a
    /// password session carries without revealing anything.
    session: Option<AuthSession>,
    /// A policy session and the steps to run in it before each signature.
    policy: Option<(PolicySession, Vec<policy::Step>)>,
    desc: String,
}

impl Drop for State {
    fn drop(&mut self) {
        // Errors here cannot be reported; the ESYS context's own drop retries whatever is left.
        if let Some((s, _)) = self.policy.take() {
            let _ = auth::flush_session(&mut self.tpm, s.into(), &self.desc);
        }
        if let Some(s) = self.session.take() {
            let _ = auth::flush_session(&mut self.tpm, s, &self.desc);
        }
        let obj = ObjectHandle::from(self.key);
        if self.persistent {
            let _ = self.tpm.local("Esys_TR_Close", &self.desc, move |c| {
                let mut obj = obj;
                c.tr_close(&mut obj)
            });
        } else {
            let _ = self.tpm.run("TPM2_FlushContext", &self.desc, move |c| {
                c.flush_context(obj)
            });
        }
    }
}

/// A key file decoded and checked without the TPM: everything loading needs from the file.
pub(crate) struct CheckedKeyFile {
    kf: keyfile::TpmKeyFile,
    public: Public,
    private: Private,
    info: sign::KeyInfo,
    steps: Vec<policy::Step>,
    needs: auth::NeedsAuth,
}

/// The part of [`open_key_file`] that reads only the file: decoding, the public area, the policy and
/// whether a password is needed. Separate so that hostile files are refused before any TPM I/O (and
/// so the fuzz target reaches it without a TPM).
pub(crate) fn check_key_file(data: &[u8], path: &Path) -> Result<CheckedKeyFile, Error> {
    let desc = format!("TPM key {}", crate::text::path(path));
    let file_err = |source| Error::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    let unsupported = |reason: String| Error::UnsupportedKey {
        key: desc.clone(),
        reason,
    };
    let kf = keyfile::TpmKeyFile::from_pem(data).map_err(file_err)?;
    let public = Public::unmarshall(&kf.public[2..])
        .map_err(|_| file_err(keyfile::Error::Der("pubkey is not a valid TPMT_PUBLIC")))?;
    let private = Private::try_from(&kf.private[2..]).map_err(|_| {
        file_err(keyfile::Error::Der(
            "privkey is larger than a TPM2B_PRIVATE",
        ))
    })?;
    let info = sign::key_info(&public).map_err(unsupported)?;
    let steps = policy::parse(&kf.policy).map_err(unsupported)?;
    if steps.is_empty() && !info.user_with_auth {
        return Err(unsupported(
            "the key can only be used through a policy, and the key file lists none".into(),
        ));
    }
    if !steps.is_empty() && !info.has_policy {
        return Err(unsupported(
            "the key file lists a policy, but the key has no authPolicy".into(),
        ));
    }
    // A policy without PolicyAuthValue never looks at the auth value.
    let needs = if (!steps.is_empty() && !policy::uses_auth_value(&steps)) || kf.empty_auth {
        auth::NeedsAuth::No
    } else {
        auth::NeedsAuth::Yes
    };
    Ok(CheckedKeyFile {
        kf,
        public,
        private,
        info,
        steps,
        needs,
    })
}

/// Loads a `TSS2 PRIVATE KEY` file's key into the TPM named by `opts`.
///
/// Order: parse and check the file (no TPM yet), open the TCTI, obtain passwords (a prompt only on a
/// terminal), bring up the parent, start the sessions the key needs (salted with the parent), load,
/// release the parent. On any error the ESYS context's drop flushes what was created.
pub fn open_key_file(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<TpmSigner, Error> {
    let desc = format!("TPM key {}", crate::text::path(path));
    let CheckedKeyFile {
        kf,
        public,
        private,
        info,
        steps,
        needs,
    } = check_key_file(data, path)?;

    let mut tpm = Tpm::open_resolved(opts)?;
    let key_pw = if needs == auth::NeedsAuth::No && !steps.is_empty() {
        // A policy without PolicyAuthValue never looks at the auth value.
        crate::secret::Secret::new(String::new())
    } else {
        auth::key_password(opts, needs, &crate::text::path(path))?
    };
    auth::check_len(&key_pw, "TPM key password")?;
    let parent_pw = auth::parent_password(opts)?;
    auth::check_len(&parent_pw, "TPM parent password")?;

    let kind = if kf.rsa_parent {
        parent::SrkKind::Rsa2048
    } else {
        parent::SrkKind::EccP256
    };
    let parent = parent::open(&mut tpm, kf.parent, kind, &parent_pw)?;

    let mut session = None;
    let mut policy_state = None;
    if !steps.is_empty() {
        let ps = auth::policy_session(&mut tpm, Some(parent.handle), &desc)?;
        policy_state = Some((ps, steps));
    } else if !key_pw.is_empty() {
        session = Some(if parent.owns_session {
            parent.session
        } else {
            auth::hmac_session(&mut tpm, Some(parent.handle), &desc)?
        });
    }
    let load = |tpm: &mut Tpm, parent: &parent::Parent| {
        let (session, handle) = (parent.session, parent.handle);
        let (private, public) = (private.clone(), public.clone());
        tpm.run(
            "TPM2_Load",
            &format!("{desc} under {}", parent.desc),
            move |c| c.execute_with_session(Some(session), |c| c.load(handle, private, public)),
        )
    };
    let mut parent = parent;
    let loaded = match load(&mut tpm, &parent) {
        // A persistent SRK with the right template but another unique field is a different key:
        // fall back to the primary the key file actually names. No auth failed, so nothing counts
        // towards lockout.
        Err(e) if parent.substitute && e.is_wrong_parent() => {
            parent.release(&mut tpm)?;
            parent = parent::create(&mut tpm, kf.parent, kind, &parent_pw)?;
            load(&mut tpm, &parent)
        }
        r => r,
    };
    // A refusal about the file's contents (integrity, binding, size) is a damaged file or one from
    // another TPM or parent: configuration, not a failing device.
    let key = loaded.map_err(|e| match e {
        Error::Command {
            command: "TPM2_Load",
            rc,
            ..
        } if rc.is_key_file_refusal() => Error::KeyRefused {
            path: path.to_path_buf(),
            parent: parent.desc.clone(),
            tcti: tpm.tcti().text.clone(),
            rc,
        },
        e => e,
    })?;
    let parent_session = parent.session;
    if parent.owns_session && session != Some(parent_session) {
        auth::flush_session(&mut tpm, parent_session, &parent.desc)?;
    }
    parent.release(&mut tpm)?;
    if !key_pw.is_empty() {
        let auth = auth::auth_value(&key_pw, &desc)?;
        tpm.local("Esys_TR_SetAuth", &desc, move |c| {
            c.tr_set_auth(key.into(), auth)
        })?;
    }
    Ok(TpmSigner {
        state: Mutex::new(State {
            tpm,
            key,
            persistent: false,
            session,
            policy: policy_state,
            desc: desc.clone(),
        }),
        public: info.public,
        scheme_hash: info.scheme_hash,
        desc,
    })
}

/// Parses `handle:0x81……` (hex, or decimal as tpm2-tools also accepts).
fn parse_handle(text: &str) -> Result<u32, Error> {
    let bad = || Error::HandleSyntax(text.to_string());
    let v = text.strip_prefix("handle:").ok_or_else(bad)?.trim();
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => v.parse::<u32>(),
    }
    .map_err(|_| bad())?;
    if !parent::is_persistent(n) {
        return Err(bad());
    }
    Ok(n)
}

/// Uses the persistent key `handle:0x81……`.
///
/// The key's password comes from `--tpm-key-password` (or its file and environment variable); with
/// none given, the empty auth is used, since a persistent handle does not say whether it has one.
pub fn open_handle(handle: &str, opts: &KeyOptions) -> Result<TpmSigner, Error> {
    let n = parse_handle(handle)?;
    let desc = format!("TPM persistent key {n:#010x}");
    let mut tpm = Tpm::open_resolved(opts)?;
    let tpm_handle =
        TpmHandle::try_from(n).map_err(|e| Error::command("TPM2_ReadPublic", &desc, &e))?;
    let obj = tpm
        .run("TPM2_ReadPublic", &desc, move |c| {
            c.execute_without_session(|c| c.tr_from_tpm_public(tpm_handle))
        })
        .map_err(|e| {
            if let Some(rc) = e.absent_handle_rc() {
                Error::HandleNotFound {
                    role: "key",
                    rc,
                    handle: n,
                    tcti: tpm.tcti().text.clone(),
                    fix: "give the handle of the key (handle:0x81…), or make the key persistent \
                          there with tpm2_evictcontrol",
                }
            } else {
                e
            }
        })?;
    let key = KeyHandle::from(obj);
    let (public, _, _) = tpm.run("TPM2_ReadPublic", &desc, move |c| {
        c.execute_without_session(|c| c.read_public(key))
    })?;
    let unsupported = |reason: String| Error::UnsupportedKey {
        key: desc.clone(),
        reason,
    };
    let info = sign::key_info(&public).map_err(unsupported)?;
    if !info.user_with_auth {
        return Err(unsupported(
            "the key can only be used through a policy, which a handle does not describe: \
             use a key file that lists the policy"
                .into(),
        ));
    }
    let pw = auth::key_password(opts, auth::NeedsAuth::Unknown, &desc)?;
    auth::check_len(&pw, "TPM key password")?;
    let session = if pw.is_empty() {
        None
    } else {
        let auth = auth::auth_value(&pw, &desc)?;
        tpm.local("Esys_TR_SetAuth", &desc, move |c| c.tr_set_auth(obj, auth))?;
        // The key salts its own session when it can decrypt; otherwise the session is unsalted,
        // which still keeps the password itself off the bus.
        Some(auth::hmac_session(
            &mut tpm,
            info.can_salt.then_some(key),
            &desc,
        )?)
    };
    Ok(TpmSigner {
        state: Mutex::new(State {
            tpm,
            key,
            persistent: true,
            session,
            policy: None,
            desc: desc.clone(),
        }),
        public: info.public,
        scheme_hash: info.scheme_hash,
        desc,
    })
}

impl TpmSigner {
    fn sign_digest(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        if let Some((scheme, fix)) = sign::scheme_refusal(&self.public, self.scheme_hash, digest) {
            return Err(Error::SchemeForbidsDigest {
                key: self.desc.clone(),
                scheme,
                digest: sign::hash_name(sign::hashing(digest.alg())),
                fix,
            });
        }
        let mut guard = self
            .state
            .lock()
            .map_err(|_| Error::Poisoned(self.desc.clone()))?;
        let st = &mut *guard;
        let session = match &st.policy {
            Some((ps, steps)) => {
                policy::run(&mut st.tpm, *ps, steps, &self.desc)?;
                AuthSession::from(*ps)
            }
            None => st.session.unwrap_or(AuthSession::Password),
        };
        let scheme = sign::scheme(&self.public, digest);
        let key = st.key;
        let d =
            sign::tpm_digest(digest).map_err(|e| Error::command("TPM2_Sign", &self.desc, &e))?;
        let sig = st.tpm.run("TPM2_Sign", &self.desc, move |c| {
            let ticket = sign::null_ticket()?;
            c.execute_with_session(Some(session), |c| c.sign(key, d, scheme, ticket))
        })?;
        sign::canonical(&self.public, &sig).map_err(|reason| Error::UnsupportedKey {
            key: self.desc.clone(),
            reason: format!("malformed signature from the TPM: {reason}"),
        })
    }

    /// TPM commands this signer's context has sent so far (opening included; the flushes on drop
    /// come after).
    pub fn commands(&self) -> u64 {
        self.state.lock().map(|s| s.tpm.commands()).unwrap_or(0)
    }

    /// The TCTI the key is reached through, for messages.
    pub fn tcti(&self) -> String {
        self.state
            .lock()
            .map(|s| s.tpm.tcti().text.clone())
            .unwrap_or_default()
    }
}

impl Signer for TpmSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, crate::signer::SignError> {
        Ok(self
            .sign_digest(digest)
            .map_err(crate::signer::Error::from)?)
    }

    fn describe(&self) -> String {
        self.desc.clone()
    }
}

impl std::fmt::Debug for TpmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmSigner")
            .field("key", &self.desc)
            .field("public", &self.public)
            .finish()
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn handle_syntax_is_checked_before_any_tpm_access() {
        assert_eq!(parse_handle("handle:0x81000101").unwrap(), 0x8100_0101);
        assert_eq!(parse_handle("handle:2164260865").unwrap(), 0x8100_0001);
        for bad in ["handle:0x40000001", "handle:", "handle:0xzz", "0x81000001"] {
            let e = parse_handle(bad).unwrap_err().to_string();
            assert!(e.contains("0x81000000"), "{bad}: {e}");
        }
    }

    #[test]
    fn signer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<TpmSigner>();
    }
}
