//! Opening a key (and its certificate) on a token, in named steps.
//!
//! [`open`] and [`open_key`] run, in this order: [`Request::parse`] (the `pkcs11:` URIs of
//! `--certificate` and `--private-key`), `module::load`, [`locate_certificate`] (when the certificate
//! is on a token), [`Leaf::resolve`] (the leaf and its public key), [`key_token`] (the token that holds
//! the key), [`locate_key`] (login as needed, then the key by URI or by the certificate),
//! [`Signing::prepare`] (mechanism and context PIN), [`chain_candidates`] (the token's other
//! certificates), and last the signer over the session the key was found in. [`list_certificates`]
//! shares the first steps. Must not: log in twice on one token, or sign anything to tell keys apart.

use super::error::{self, Error};
use super::ffi::Session;
use super::find::{self, CertObject, KeyObject, Token};
use super::module::{self, Module};
use super::pin;
use super::sign::{Mechanism, Pkcs11Signer};
use super::uri::{ObjectType, Pkcs11Uri, is_pkcs11_uri};
use crate::certs::Certificate;
use crate::keys::PublicKey;
use crate::secret::Secret;
use crate::signer::KeyOptions;
use cryptoki_sys::CK_SLOT_ID;

/// What [`open`] found on the token.
pub struct Opened {
    /// The key, logged in as needed.
    pub signer: Pkcs11Signer,
    /// The leaf: from the token when `--certificate` is a URI, else the file certificate given.
    pub leaf: Certificate,
    /// Other certificates on the token (chain candidates when no `--intermediates` is given).
    pub token_certificates: Vec<Certificate>,
}

/// Opens the token named by `opts` and finds the key (and the certificate, when it is on the token).
/// `file_certificate` is the leaf when `--certificate` is a file; the key is matched to it by public key.
pub fn open(opts: &KeyOptions, file_certificate: Option<&Certificate>) -> Result<Opened, Error> {
    let found = open_inner(opts, file_certificate, true)?;
    let leaf = found.leaf.ok_or_else(|| no_certificate(opts))?;
    Ok(Opened {
        signer: found.signer,
        leaf,
        token_certificates: found.token_certificates,
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
    Ok(open_inner(&opts, None, false)?.signer)
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

/// What the steps of [`open_inner`] produce together.
struct Found {
    signer: Pkcs11Signer,
    /// `None` only for [`open_key`], which asks for no certificate.
    leaf: Option<Certificate>,
    token_certificates: Vec<Certificate>,
}

fn open_inner(
    opts: &KeyOptions,
    file_certificate: Option<&Certificate>,
    want_leaf: bool,
) -> Result<Found, Error> {
    let request = Request::parse(opts)?;
    let uris = request.uris();
    let mut sessions = Sessions::new(module::load(opts.pkcs11_lib.as_deref(), &uris)?);
    sessions.given_pin = opts.pkcs11_pin.clone();
    let on_token = request
        .certificate
        .as_ref()
        .map(|cu| locate_certificate(&mut sessions, cu, &uris))
        .transpose()?;
    let leaf = Leaf::resolve(opts, on_token.as_ref(), file_certificate, want_leaf)?;
    let token = key_token(
        &sessions.module,
        request.key.as_ref(),
        on_token.as_ref().map(|c| &c.token),
        opts,
    )?;
    let key = locate_key(
        &mut sessions,
        &token,
        request.key.as_ref(),
        on_token.as_ref().map(|c| &c.object),
        leaf.public.as_ref(),
        &uris,
    )?;
    let signing = Signing::prepare(&sessions, &token, &key, opts)?;
    let chain_token = on_token.as_ref().map_or(&token, |c| &c.token);
    let token_certificates = match leaf.certificate.as_ref() {
        Some(l) if opts.intermediates.is_none() => chain_candidates(&mut sessions, chain_token, l)?,
        _ => Vec::new(),
    };
    let session = sessions
        .take(token.slot)
        .ok_or_else(|| key_not_found(&token, request.key.as_ref()))?;
    let signer = Pkcs11Signer::new(
        session,
        key.handle,
        signing.public,
        signing.mechanism,
        signing.uri,
        token.info.label.clone(),
        signing.context_pin,
    );
    Ok(Found {
        signer,
        leaf: leaf.certificate,
        token_certificates,
    })
}

/// The `pkcs11:` URIs among `--certificate` and `--private-key`, each checked for its `type=`.
struct Request {
    certificate: Option<Pkcs11Uri>,
    key: Option<Pkcs11Uri>,
}

impl Request {
    fn parse(opts: &KeyOptions) -> Result<Request, Error> {
        let certificate = parse_if_uri(opts.certificate.as_deref())?;
        let key = parse_if_uri(opts.private_key.as_deref())?;
        if let (Some(u), Some(raw)) = (&certificate, &opts.certificate) {
            check_type(u, raw, ObjectType::Cert, "--certificate")?;
        }
        if let (Some(u), Some(raw)) = (&key, &opts.private_key) {
            check_type(u, raw, ObjectType::Private, "--private-key")?;
        }
        Ok(Request { certificate, key })
    }

    /// Both URIs, the key's first: PIN sources are taken in this order.
    fn uris(&self) -> Vec<&Pkcs11Uri> {
        self.key.iter().chain(self.certificate.iter()).collect()
    }
}

fn parse_if_uri(v: Option<&str>) -> Result<Option<Pkcs11Uri>, Error> {
    v.filter(|s| is_pkcs11_uri(s))
        .map(Pkcs11Uri::parse)
        .transpose()
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

/// The certificate `--certificate pkcs11:…` selects, and its token.
struct TokenCertificate {
    token: Token,
    object: CertObject,
}

/// Exactly one certificate matching `uri` (YubiKey attestation certificates set aside when others
/// match), logging in only when nothing is visible without.
fn locate_certificate(
    sessions: &mut Sessions,
    uri: &Pkcs11Uri,
    uris: &[&Pkcs11Uri],
) -> Result<TokenCertificate, Error> {
    let tokens = find::tokens(&sessions.module, &uri.token_part())?;
    if tokens.is_empty() {
        return Err(find::token_not_found(&sessions.module, uri));
    }
    let mut found = search_certificates(sessions, &tokens, uri, uris)?;
    if found.len() > 1 && found.iter().any(|c| !find::is_attestation(c)) {
        found.retain(|c| !find::is_attestation(c));
    }
    match found.len() {
        0 => Err(Error::CertificateNotFound {
            uri: uri.to_string(),
        }),
        1 => {
            let object = found.remove(0);
            Ok(TokenCertificate {
                token: tokens[object.token].clone(),
                object,
            })
        }
        _ => Err(Error::AmbiguousCertificate {
            uri: uri.to_string(),
            candidates: certificate_uris(&tokens, &found, uri).join(", "),
        }),
    }
}

/// The leaf certificate and the public key the private key must have.
struct Leaf {
    certificate: Option<Certificate>,
    public: Option<PublicKey>,
}

impl Leaf {
    /// From the token object when there is one, else the file certificate; none at all is an error
    /// when `want_leaf`.
    fn resolve(
        opts: &KeyOptions,
        on_token: Option<&TokenCertificate>,
        file_certificate: Option<&Certificate>,
        want_leaf: bool,
    ) -> Result<Leaf, Error> {
        let certificate = match (on_token, file_certificate) {
            (Some(c), _) => Some(Certificate::from_der(c.object.der.clone()).map_err(
                |source| {
                    Error::BadCertificate {
                        uri: opts
                            .certificate
                            .as_deref()
                            .map(crate::text::arg)
                            .unwrap_or_default(),
                        source,
                    }
                },
            )?),
            (None, Some(f)) => Some(f.clone()),
            (None, None) if want_leaf => return Err(no_certificate(opts)),
            (None, None) => None,
        };
        let public = match on_token {
            Some(c) => find::certificate_public_key(&c.object.der),
            None => certificate.as_ref().map(|l| l.public_key().clone()),
        };
        Ok(Leaf {
            certificate,
            public,
        })
    }
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

/// The key's token: the key URI's (the certificate's token deciding among several), else the
/// certificate's.
fn key_token(
    module: &Module,
    key_uri: Option<&Pkcs11Uri>,
    cert_token: Option<&Token>,
    opts: &KeyOptions,
) -> Result<Token, Error> {
    let Some(ku) = key_uri else {
        return match cert_token {
            Some(ct) => Ok(ct.clone()),
            None => Err(Error::NotAUri(opts.private_key.clone().unwrap_or_default())),
        };
    };
    let mut tokens = find::tokens(module, &ku.token_part())?;
    if let Some(ct) =
        cert_token.filter(|ct| tokens.len() > 1 && tokens.iter().any(|t| t.slot == ct.slot))
    {
        tokens = vec![ct.clone()];
    }
    match tokens.len() {
        0 => Err(find::token_not_found(module, ku)),
        1 => Ok(tokens.remove(0)),
        _ => Err(Error::AmbiguousToken {
            uri: ku.to_string(),
            candidates: find::token_uris(&tokens).join(", "),
        }),
    }
}

/// Logs in when the token requires it, then finds the key; when nothing is found before login, logs
/// in (once) and looks again, as the key may be a private object.
fn locate_key(
    sessions: &mut Sessions,
    token: &Token,
    key_uri: Option<&Pkcs11Uri>,
    cert: Option<&CertObject>,
    leaf_public: Option<&PublicKey>,
    uris: &[&Pkcs11Uri],
) -> Result<KeyObject, Error> {
    if token.info.login_required() {
        sessions.login(token, uris)?;
    }
    if let Some(k) = find_key(sessions, token, key_uri, cert, leaf_public)? {
        return Ok(k);
    }
    if sessions.is_logged_in(token) {
        return Err(key_not_found(token, key_uri));
    }
    sessions.login(token, uris)?;
    find_key(sessions, token, key_uri, cert, leaf_public)?
        .ok_or_else(|| key_not_found(token, key_uri))
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

/// How the found key will sign: its public half, the mechanism the token offers for it, its URI,
/// and the context PIN when it is always-authenticate (resolved now, so a missing one fails early).
struct Signing {
    public: PublicKey,
    mechanism: Mechanism,
    uri: String,
    context_pin: Option<Secret>,
}

impl Signing {
    fn prepare(
        sessions: &Sessions,
        token: &Token,
        key: &KeyObject,
        opts: &KeyOptions,
    ) -> Result<Signing, Error> {
        let uri = find::object_uri(&token.uri(false), &key.label, &key.id, ObjectType::Private)
            .to_string();
        let public = key.public_or_error(&uri)?;
        let mechanism =
            Mechanism::choose(&sessions.module.lib, token.slot, &public, &token.info, &uri)?;
        let context_pin = key
            .always_authenticate
            .then(|| pin::context_pin(opts, sessions.user_pin.as_ref(), &token.info, &uri))
            .transpose()?;
        Ok(Signing {
            public,
            mechanism,
            uri,
            context_pin,
        })
    }
}

/// The other certificates on `token` (chain candidates when no `--intermediates` is given): not the
/// leaf, not attestation certificates, and only those that parse.
fn chain_candidates(
    sessions: &mut Sessions,
    token: &Token,
    leaf: &Certificate,
) -> Result<Vec<Certificate>, Error> {
    let s = sessions.get(token)?;
    let all = find::certificates(s, 0, None, None)
        .map_err(|e| error::call(format!("token {:?}", token.info.label), e))?;
    Ok(all
        .into_iter()
        .filter(|c| c.der != leaf.der() && !find::is_attestation(c))
        // Unparseable objects cannot be chain members; the chain check reports what is missing.
        .filter_map(|c| Certificate::from_der(c.der).ok())
        .collect())
}

/// Open sessions by slot, and which slots are logged in; at most one `C_Login` per token.
struct Sessions {
    module: Module,
    open: Vec<(CK_SLOT_ID, Session)>,
    logged_in: Vec<CK_SLOT_ID>,
    user_pin: Option<Secret>,
    /// [`KeyOptions::pkcs11_pin`]: the user PIN read before the open.
    given_pin: Option<Secret>,
}

impl Sessions {
    fn new(module: Module) -> Sessions {
        Sessions {
            module,
            open: Vec::new(),
            logged_in: Vec::new(),
            user_pin: None,
            given_pin: None,
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
        let given = self.given_pin.clone();
        let pin = {
            let s = self.get(token)?;
            pin::login_user(s, &token.info, uris, given.as_ref())?
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
