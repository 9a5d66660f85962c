//! PKCS#11 tokens (HSMs, YubiKeys, SoftHSM) addressed by RFC 7512 URIs.
//!
//! [`open`] does all the token work before any network call: load the module, pick the token, find
//! the certificate, log in once, find the key and match it to the certificate by public key (never by
//! trial signatures), check the signing mechanism and resolve the context PIN of always-authenticate
//! keys. The [`Pkcs11Signer`] it returns then costs one `C_SignInit` and one `C_Sign` per signature.
//! Must not: log or format PINs, retry a login, or hand the token anything but a digest.
//!
//! Submodules: [`uri`] (RFC 7512), `module` (loading), `find` (tokens, objects, public keys), `pin`
//! (PIN sources and login), `sign` (the signer), `ffi` (the only unsafe code), `visibility` (why a
//! token is not seen), `error`.

mod error;
pub(crate) mod ffi;
pub(crate) mod find;
pub(crate) mod module;
pub(crate) mod pin;
mod sign;
pub(crate) mod uri;
mod visibility;

#[cfg(test)]
mod tests;

pub use crate::text::arg as redact_uri;
pub use error::{CallError, Error, ckr_name};
pub use pin::{CONTEXT_PIN_ENV, PIN_ENV};
pub use sign::Pkcs11Signer;
pub use uri::is_pkcs11_uri;

use crate::certs::Certificate;
use crate::keys::PublicKey;
use crate::secret::Secret;
use crate::signer::KeyOptions;
use cryptoki_sys::CK_SLOT_ID;
use ffi::Session;
use find::{CertObject, KeyObject, Token};
use module::Module;
use uri::{ObjectType, Pkcs11Uri};

/// What [`open`] found on the token.
pub struct Opened {
    /// The key, logged in as needed.
    pub signer: Pkcs11Signer,
    /// The leaf: from the token when `--certificate` is a URI, else the file certificate given.
    pub leaf: Certificate,
    /// Other certificates on the token (chain candidates when no `--intermediates` is given).
    pub token_certificates: Vec<Certificate>,
}

fn parse_if_uri(v: Option<&str>) -> Result<Option<Pkcs11Uri>, Error> {
    v.filter(|s| is_pkcs11_uri(s))
        .map(Pkcs11Uri::parse)
        .transpose()
}

/// Open sessions by slot, and which slots are logged in; at most one `C_Login` per token.
struct Sessions {
    module: Module,
    open: Vec<(CK_SLOT_ID, Session)>,
    logged_in: Vec<CK_SLOT_ID>,
    user_pin: Option<Secret>,
}

impl Sessions {
    fn new(module: Module) -> Sessions {
        Sessions {
            module,
            open: Vec::new(),
            logged_in: Vec::new(),
            user_pin: None,
        }
    }

    fn get(&mut self, token: &Token) -> Result<&Session, Error> {
        if let Some(i) = self.open.iter().position(|(s, _)| *s == token.slot) {
            return Ok(&self.open[i].1);
        }
        let s = self
            .module
            .lib
            .open_session(token.slot, false)
            .map_err(|e| error::call(format!("token {:?}", token.info.label), e))?;
        self.open.push((token.slot, s));
        let last = self.open.len() - 1;
        Ok(&self.open[last].1)
    }

    fn login(&mut self, token: &Token, uris: &[&Pkcs11Uri]) -> Result<(), Error> {
        if self.logged_in.contains(&token.slot) {
            return Ok(());
        }
        let pin = {
            let s = self.get(token)?;
            pin::login_user(s, &token.info, uris)?
        };
        self.logged_in.push(token.slot);
        if pin.is_some() {
            self.user_pin = pin;
        }
        Ok(())
    }

    fn is_logged_in(&self, token: &Token) -> bool {
        self.logged_in.contains(&token.slot)
    }

    fn take(&mut self, slot: CK_SLOT_ID) -> Option<Session> {
        let i = self.open.iter().position(|(s, _)| *s == slot)?;
        Some(self.open.swap_remove(i).1)
    }
}

/// Opens a session on `token` (read-write when `rw`) and logs the user in with exactly one
/// `C_Login`, the PIN coming from the URIs' `pin-value`/`pin-source`, [`PIN_ENV`] or a prompt.
/// For enrollment (issue 5): generating keys and writing certificates need a R/W user session.
#[allow(dead_code)] // used by the enrollment work (issue 5)
pub(crate) fn open_logged_in(
    module: &Module,
    token: &Token,
    uris: &[&Pkcs11Uri],
    rw: bool,
) -> Result<Session, Error> {
    let s = module
        .lib
        .open_session(token.slot, rw)
        .map_err(|e| error::call(format!("token {:?}", token.info.label), e))?;
    pin::login_user(&s, &token.info, uris)?;
    Ok(s)
}

/// Certificates matching `uri` on `tokens`; logs in (once) and searches again only when nothing is
/// visible on a single token that requires login.
fn search_certificates(
    sessions: &mut Sessions,
    tokens: &[Token],
    uri: &Pkcs11Uri,
    uris: &[&Pkcs11Uri],
) -> Result<Vec<CertObject>, Error> {
    let search = |sessions: &mut Sessions| -> Result<Vec<CertObject>, Error> {
        let mut out = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            let s = sessions.get(t)?;
            out.extend(
                find::certificates(s, i, uri.id.as_deref(), uri.object.as_deref())
                    .map_err(|e| error::call(format!("token {:?}", t.info.label), e))?,
            );
        }
        Ok(out)
    };
    let found = search(sessions)?;
    match tokens {
        [t] if found.is_empty() && t.info.login_required() && !sessions.is_logged_in(t) => {
            // Certificates are normally public; without a PIN to offer, report "not found" rather
            // than demand a PIN for objects that may not exist.
            match sessions.login(t, uris) {
                Err(Error::Pin(crate::secret::Error::Missing { .. })) => Ok(found),
                Err(e) => Err(e),
                Ok(()) => search(sessions),
            }
        }
        _ => Ok(found),
    }
}

/// URIs selecting each certificate alone (token label, serial when labels repeat, label, id).
fn certificate_uris(tokens: &[Token], certs: &[CertObject], base: &Pkcs11Uri) -> Vec<String> {
    certs
        .iter()
        .map(|c| {
            let t = &tokens[c.token];
            let dup = tokens
                .iter()
                .filter(|o| o.info.label == t.info.label)
                .count()
                > 1;
            let mut token_uri = t.uri(dup);
            token_uri.module_name = base.module_name.clone();
            token_uri.module_path = base.module_path.clone();
            find::object_uri(&token_uri, &c.label, &c.id, ObjectType::Cert).to_string()
        })
        .collect()
}

fn check_type(uri: &Pkcs11Uri, raw: &str, wanted: ObjectType, flag: &str) -> Result<(), Error> {
    if find::type_allows(uri, wanted) {
        return Ok(());
    }
    Err(Error::Uri {
        uri: crate::text::arg(raw),
        reason: format!(
            "{flag} needs a {} object, but the URI has a different type=",
            match wanted {
                ObjectType::Cert => "type=cert",
                _ => "type=private",
            }
        ),
    })
}

/// Opens the token named by `opts` and finds the key (and the certificate, when it is on the token).
/// `file_certificate` is the leaf when `--certificate` is a file; the key is matched to it by public key.
pub fn open(opts: &KeyOptions, file_certificate: Option<&Certificate>) -> Result<Opened, Error> {
    let (signer, leaf, token_certificates) = open_inner(opts, file_certificate, true)?;
    let leaf = leaf.ok_or_else(|| no_certificate(opts))?;
    Ok(Opened {
        signer,
        leaf,
        token_certificates,
    })
}

/// Opens only the key named by `--private-key pkcs11:…` (for `sign-string` without a certificate):
/// the URI must select one private key; everything else is as for [`open`].
pub fn open_key(opts: &KeyOptions) -> Result<Pkcs11Signer, Error> {
    let opts = KeyOptions {
        certificate: None,
        intermediates: None,
        ..opts.clone()
    };
    if parse_if_uri(opts.private_key.as_deref())?.is_none() {
        return Err(Error::NotAUri(
            opts.private_key
                .as_deref()
                .map(crate::text::arg)
                .unwrap_or_default(),
        ));
    }
    Ok(open_inner(&opts, None, false)?.0)
}

fn no_certificate(opts: &KeyOptions) -> Error {
    Error::KeyNotFound {
        uri: opts
            .private_key
            .as_deref()
            .map(crate::text::arg)
            .unwrap_or_default(),
        hint: "; no certificate was given: use --certificate with a file or pkcs11: URI".into(),
    }
}

type Parts = (Pkcs11Signer, Option<Certificate>, Vec<Certificate>);

fn open_inner(
    opts: &KeyOptions,
    file_certificate: Option<&Certificate>,
    want_leaf: bool,
) -> Result<Parts, Error> {
    let cert_uri = parse_if_uri(opts.certificate.as_deref())?;
    let key_uri = parse_if_uri(opts.private_key.as_deref())?;
    if let (Some(u), Some(raw)) = (&cert_uri, &opts.certificate) {
        check_type(u, raw, ObjectType::Cert, "--certificate")?;
    }
    if let (Some(u), Some(raw)) = (&key_uri, &opts.private_key) {
        check_type(u, raw, ObjectType::Private, "--private-key")?;
    }
    let uris: Vec<&Pkcs11Uri> = key_uri.iter().chain(cert_uri.iter()).collect();
    let module = module::load(opts.pkcs11_lib.as_deref(), &uris)?;
    let mut sessions = Sessions::new(module.clone());

    // The certificate, when it lives on a token.
    let mut cert_token: Option<Token> = None;
    let mut leaf_obj: Option<CertObject> = None;
    if let Some(cu) = &cert_uri {
        let tokens = find::tokens(&module, &cu.token_part())?;
        if tokens.is_empty() {
            return Err(find::token_not_found(&module, cu));
        }
        let mut found = search_certificates(&mut sessions, &tokens, cu, &uris)?;
        if found.len() > 1 && found.iter().any(|c| !find::is_attestation(c)) {
            found.retain(|c| !find::is_attestation(c));
        }
        match found.len() {
            0 => {
                return Err(Error::CertificateNotFound {
                    uri: cu.to_string(),
                });
            }
            1 => {}
            _ => {
                return Err(Error::AmbiguousCertificate {
                    uri: cu.to_string(),
                    candidates: certificate_uris(&tokens, &found, cu).join(", "),
                });
            }
        }
        let c = found.remove(0);
        cert_token = Some(tokens[c.token].clone());
        leaf_obj = Some(c);
    }

    let leaf: Option<Certificate> = match (&leaf_obj, file_certificate) {
        (Some(c), _) => Some(Certificate::from_der(c.der.clone()).map_err(|source| {
            Error::BadCertificate {
                uri: opts
                    .certificate
                    .as_deref()
                    .map(crate::text::arg)
                    .unwrap_or_default(),
                source,
            }
        })?),
        (None, Some(f)) => Some(f.clone()),
        (None, None) if want_leaf => return Err(no_certificate(opts)),
        (None, None) => None,
    };
    let leaf_public: Option<PublicKey> = match &leaf_obj {
        Some(c) => find::certificate_public_key(&c.der),
        None => leaf.as_ref().map(|l| l.public_key().clone()),
    };

    // The key's token: the key URI's, else the certificate's.
    let key_token = match (&key_uri, &cert_token) {
        (Some(ku), ct) => {
            let mut tokens = find::tokens(&module, &ku.token_part())?;
            // Several tokens match the key URI: the certificate's token decides, if it is one.
            if let Some(ct) = ct
                .as_ref()
                .filter(|ct| tokens.len() > 1 && tokens.iter().any(|t| t.slot == ct.slot))
            {
                tokens = vec![ct.clone()];
            }
            match tokens.len() {
                0 => return Err(find::token_not_found(&module, ku)),
                1 => tokens.remove(0),
                _ => {
                    return Err(Error::AmbiguousToken {
                        uri: ku.to_string(),
                        candidates: find::token_uris(&tokens).join(", "),
                    });
                }
            }
        }
        (None, Some(ct)) => ct.clone(),
        (None, None) => {
            return Err(Error::NotAUri(opts.private_key.clone().unwrap_or_default()));
        }
    };

    if key_token.info.login_required() {
        sessions.login(&key_token, &uris)?;
    }
    let key = {
        let found = find_key(
            &mut sessions,
            &key_token,
            key_uri.as_ref(),
            leaf_obj.as_ref(),
            leaf_public.as_ref(),
        )?;
        match found {
            Some(k) => k,
            None if !sessions.is_logged_in(&key_token) => {
                // The key may be a private object, invisible until login.
                sessions.login(&key_token, &uris)?;
                find_key(
                    &mut sessions,
                    &key_token,
                    key_uri.as_ref(),
                    leaf_obj.as_ref(),
                    leaf_public.as_ref(),
                )?
                .ok_or_else(|| key_not_found(&key_token, key_uri.as_ref()))?
            }
            None => return Err(key_not_found(&key_token, key_uri.as_ref())),
        }
    };

    let token_uri = key_token.uri(false);
    let key_uri_text =
        find::object_uri(&token_uri, &key.label, &key.id, ObjectType::Private).to_string();
    let public = key.public_or_error(&key_uri_text)?;
    let mechanism = sign::Mechanism::choose(
        &module.lib,
        key_token.slot,
        &public,
        &key_token.info,
        &key_uri_text,
    )?;
    let context_pin = if key.always_authenticate {
        Some(pin::context_pin(
            opts,
            sessions.user_pin.as_ref(),
            &key_token.info,
            &key_uri_text,
        )?)
    } else {
        None
    };

    // Chain candidates from the token that holds the certificate (else the key's).
    let mut token_certificates = Vec::new();
    if let Some(leaf) = leaf.as_ref().filter(|_| opts.intermediates.is_none()) {
        let t = cert_token.clone().unwrap_or_else(|| key_token.clone());
        let s = sessions.get(&t)?;
        let all = find::certificates(s, 0, None, None)
            .map_err(|e| error::call(format!("token {:?}", t.info.label), e))?;
        for c in all {
            if c.der == leaf.der() || find::is_attestation(&c) {
                continue;
            }
            // Unparseable objects cannot be chain members; the chain check reports what is missing.
            if let Ok(cert) = Certificate::from_der(c.der) {
                token_certificates.push(cert);
            }
        }
    }

    let session = sessions
        .take(key_token.slot)
        .ok_or_else(|| key_not_found(&key_token, key_uri.as_ref()))?;
    let signer = Pkcs11Signer::new(
        session,
        key.handle,
        public,
        mechanism,
        key_uri_text,
        key_token.info.label.clone(),
        context_pin,
    );
    Ok((signer, leaf, token_certificates))
}

fn key_not_found(token: &Token, key_uri: Option<&Pkcs11Uri>) -> Error {
    match key_uri {
        Some(u) => Error::KeyNotFound {
            uri: u.to_string(),
            hint: format!(
                "; no private key on token {:?} has that id or label",
                token.info.label
            ),
        },
        None => Error::KeyNotFound {
            uri: token.uri(false).to_string(),
            hint: "; no private key on the token has the certificate's public key (looked by \
                   CKA_ID, label, then every key): name the key with --private-key pkcs11:…"
                .into(),
        },
    }
}

/// The key: by the key URI's id/label (choosing by public key among several), or derived from the
/// certificate (its `CKA_ID`, then its label, then every private key), always by public key.
fn find_key(
    sessions: &mut Sessions,
    token: &Token,
    key_uri: Option<&Pkcs11Uri>,
    cert: Option<&CertObject>,
    leaf_public: Option<&PublicKey>,
) -> Result<Option<KeyObject>, Error> {
    let label = token.info.label.clone();
    let s = sessions.get(token)?;
    let err = |e| error::call(format!("token {label:?}"), e);
    let matching = |keys: &[KeyObject]| -> Option<KeyObject> {
        keys.iter()
            .find(|k| k.public.is_some() && k.public.as_ref() == leaf_public)
            .cloned()
    };
    if let Some(ku) = key_uri {
        let mut keys =
            find::private_keys(s, ku.id.as_deref(), ku.object.as_deref()).map_err(err)?;
        if let Some(k) = matching(&keys) {
            return Ok(Some(k));
        }
        return match keys.len() {
            0 => Ok(None),
            // One key that does not match: the caller's certificate check names both sides.
            1 => Ok(Some(keys.remove(0))),
            _ => Err(Error::AmbiguousKey {
                uri: ku.to_string(),
                candidates: keys
                    .iter()
                    .map(|k| {
                        find::object_uri(&token.uri(false), &k.label, &k.id, ObjectType::Private)
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        };
    }
    let Some(cert) = cert else {
        return Ok(None);
    };
    if !cert.id.is_empty() {
        let keys = find::private_keys(s, Some(&cert.id), None).map_err(err)?;
        if let Some(k) = matching(&keys) {
            return Ok(Some(k));
        }
    }
    if !cert.label.is_empty() {
        let keys = find::private_keys(s, None, Some(&cert.label)).map_err(err)?;
        if let Some(k) = matching(&keys) {
            return Ok(Some(k));
        }
    }
    let keys = find::private_keys(s, None, None).map_err(err)?;
    Ok(matching(&keys))
}

/// Every certificate matching the `--certificate` URI in `opts`, each with a URI (token label
/// included) that selects it alone, for `read-certificate-data`. Certificates whose value does not
/// parse as X.509 are left out; none at all is [`Error::CertificateNotFound`]. Sorted by URI.
pub fn list_certificates(opts: &KeyOptions) -> Result<Vec<(String, Certificate)>, Error> {
    let raw = opts.certificate.as_deref().unwrap_or_default();
    let Some(cu) = parse_if_uri(Some(raw))? else {
        return Err(Error::NotAUri(raw.to_string()));
    };
    check_type(&cu, raw, ObjectType::Cert, "--certificate")?;
    let module = module::load(opts.pkcs11_lib.as_deref(), &[&cu])?;
    let tokens = find::tokens(&module, &cu.token_part())?;
    if tokens.is_empty() {
        return Err(find::token_not_found(&module, &cu));
    }
    let mut sessions = Sessions::new(module);
    let found = search_certificates(&mut sessions, &tokens, &cu, &[&cu])?;
    let uris = certificate_uris(&tokens, &found, &cu);
    let mut listed: Vec<(String, Certificate)> = uris
        .into_iter()
        .zip(found)
        .filter_map(|(u, c)| Certificate::from_der(c.der).ok().map(|cert| (u, cert)))
        .collect();
    if listed.is_empty() {
        return Err(Error::CertificateNotFound {
            uri: cu.to_string(),
        });
    }
    // Tokens return objects in no particular order; sorted output is stable between runs.
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(listed)
}
