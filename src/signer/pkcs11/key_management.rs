//! Key management on a token (parsec's per-provider `key_management`): key pair generation, opening
//! a key without a certificate, and storing certificates as token objects beside the key.
//!
//! The private key is created so that it can never leave the token and can only sign: `CKA_TOKEN`,
//! `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_SIGN` true and `CKA_DECRYPT`,
//! `CKA_UNWRAP`, `CKA_DERIVE` false. Nothing on the token is overwritten: an object that already has the
//! key's `CKA_ID` or label makes [`generate_key`] fail, and another certificate for the key makes
//! [`TokenKey::store_certificate`] fail unless asked to replace it. Each operation uses one read-write
//! session logged in once (a PIN is asked for at most once per command), through the module instance
//! the signing path uses. Must not: print (the front reports what was done), retry a login, or
//! overwrite or delete anything but a certificate it was asked to replace.

use super::error::{CallError, Error};
use super::ffi::{Attr, Session, bool_attr, ulong};
use super::find::{self, KeyObject, Token};
use super::module::{self, Module};
use super::uri::{ObjectType, Pkcs11Uri};
use super::{mldsa, pin};
use crate::certs::Certificate;
use crate::keys::CurveOid as _;
use crate::keys::{Curve, KeyKind, PublicKey};
use cryptoki_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE};
use std::path::{Path, PathBuf};

/// DER `ECParameters` (a named-curve OID) for `CKA_EC_PARAMS`.
fn ec_params(curve: Curve) -> Vec<u8> {
    der::Encode::to_der(&curve.oid())
        .expect("a named-curve OID is a few bytes, far below DER's limits")
}

/// The mechanism and the public and private key templates for a key of `kind`.
fn key_templates(
    kind: KeyKind,
    id: &[u8],
    label: &str,
) -> (CK_MECHANISM_TYPE, Vec<Attr>, Vec<Attr>) {
    use cryptoki_sys::*;
    let mut public: Vec<Attr> = vec![
        (CKA_CLASS, ulong(CKO_PUBLIC_KEY)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_VERIFY, bool_attr(true)),
        (CKA_ENCRYPT, bool_attr(false)),
        (CKA_WRAP, bool_attr(false)),
        (CKA_ID, id.to_vec()),
        (CKA_LABEL, label.as_bytes().to_vec()),
    ];
    let private: Vec<Attr> = vec![
        (CKA_CLASS, ulong(CKO_PRIVATE_KEY)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(true)),
        (CKA_SENSITIVE, bool_attr(true)),
        (CKA_EXTRACTABLE, bool_attr(false)),
        (CKA_SIGN, bool_attr(true)),
        (CKA_DECRYPT, bool_attr(false)),
        (CKA_UNWRAP, bool_attr(false)),
        (CKA_DERIVE, bool_attr(false)),
        (CKA_ID, id.to_vec()),
        (CKA_LABEL, label.as_bytes().to_vec()),
    ];
    let mechanism = match kind {
        KeyKind::Ec(curve) => {
            public.push((CKA_EC_PARAMS, ec_params(curve)));
            CKM_EC_KEY_PAIR_GEN
        }
        KeyKind::Rsa { bits } => {
            public.push((CKA_MODULUS_BITS, ulong(bits as CK_ULONG)));
            public.push((CKA_PUBLIC_EXPONENT, vec![0x01, 0x00, 0x01]));
            CKM_RSA_PKCS_KEY_PAIR_GEN
        }
        KeyKind::MlDsa(set) => {
            // PKCS#11 3.2: the parameter set goes in the public key template.
            public.push((mldsa::ck::CKA_PARAMETER_SET, ulong(mldsa::ckp(set))));
            mldsa::ck::CKM_ML_DSA_KEY_PAIR_GEN
        }
    };
    (mechanism, public, private)
}

/// `%XX` for every byte, as RFC 7512 writes binary `id` values.
fn pct_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

fn call(what: &str, call: CallError) -> Error {
    super::error::call(what, call)
}

/// An open, logged-in session on the one token a URI names.
struct TokenSession {
    session: Session,
    token: Token,
    uri: Pkcs11Uri,
    /// The module file actually loaded (from `--pkcs11-lib`, the URI, or the p11-kit proxy).
    module_path: PathBuf,
}

impl TokenSession {
    /// A read-write session on the one token `raw` names, the user logged in with exactly one
    /// `C_Login` (PIN from the URI's `pin-value`/`pin-source`, [`super::PIN_ENV`] or a prompt).
    fn open(raw: &str, pkcs11_lib: Option<&Path>) -> Result<TokenSession, Error> {
        Self::open_checked(raw, pkcs11_lib, &|_, _| Ok(()))
    }

    /// [`TokenSession::open`], running `before_login` on the token first (a check that needs no
    /// login fails before a PIN is asked for).
    fn open_checked(
        raw: &str,
        pkcs11_lib: Option<&Path>,
        before_login: &dyn Fn(&Module, &Token) -> Result<(), Error>,
    ) -> Result<TokenSession, Error> {
        let uri = Pkcs11Uri::parse(raw)?;
        let module = module::load(pkcs11_lib, &[&uri])?;
        let token = find::select_token(&module, &uri.token_part())?;
        before_login(&module, &token)?;
        let session = module
            .lib
            .open_session(token.slot, true)
            .map_err(|e| call(&format!("token {:?}", token.info.label), e))?;
        pin::login_user(&session, &token.info, &[&uri], None)?;
        Ok(TokenSession {
            session,
            token,
            uri,
            module_path: module.path.clone(),
        })
    }

    fn what(&self) -> String {
        format!("token {:?}", self.token.info.label)
    }

    /// The user's URI narrowed to one object: their token and query attributes, the object's label
    /// and id, and its type. `Display` leaves out any `pin-value`.
    fn object_uri(&self, label: &str, id: &[u8], kind: ObjectType) -> String {
        let mut u = self.uri.clone();
        u.object = (!label.is_empty()).then(|| label.to_string());
        u.id = (!id.is_empty()).then(|| id.to_vec());
        u.object_type = Some(kind);
        u.to_string()
    }
}

/// A CKA_ID for a key the URI does not name: 8 random bytes, as pkcs11-tool and p11tool leave it to
/// the caller and a collision among one token's keys is then negligible.
fn random_id() -> Result<Vec<u8>, Error> {
    let mut id = vec![0u8; 8];
    getrandom::fill(&mut id).map_err(Error::RandomId)?;
    Ok(id)
}

/// Fails if any object on the token has `id` or `label`.
fn refuse_existing(ts: &TokenSession, id: &[u8], label: &str) -> Result<(), Error> {
    let hint = "choose another id= and object= or delete the old objects first \
                (pkcs11-tool --delete-object)"
        .to_string();
    let found = |attr: Attr| {
        ts.session
            .find_objects(&[attr])
            .map(|v| !v.is_empty())
            .map_err(|e| call(&ts.what(), e))
    };
    if found((cryptoki_sys::CKA_ID, id.to_vec()))? {
        return Err(Error::ObjectExists {
            target: ts.uri.to_string(),
            what: format!("an object with id {}", pct_encode(id)),
            hint,
        });
    }
    if found((cryptoki_sys::CKA_LABEL, label.as_bytes().to_vec()))? {
        return Err(Error::ObjectExists {
            target: ts.uri.to_string(),
            what: format!("an object labelled {label:?}"),
            hint,
        });
    }
    Ok(())
}

/// The public key from the new public key object.
fn public_key_of(
    ts: &TokenSession,
    handle: CK_OBJECT_HANDLE,
    kind: KeyKind,
) -> Result<PublicKey, Error> {
    use cryptoki_sys::*;
    let missing = |what: &str| Error::NewKeyUnreadable {
        target: ts.uri.to_string(),
        what: what.to_string(),
    };
    let v = ts
        .session
        .attributes(
            handle,
            &[
                CKA_MODULUS,
                CKA_PUBLIC_EXPONENT,
                CKA_EC_PARAMS,
                CKA_EC_POINT,
                mldsa::ck::CKA_PARAMETER_SET,
                CKA_VALUE,
            ],
        )
        .map_err(|e| call(&ts.what(), e))?;
    let get = |i: usize| v.get(i).cloned().flatten().filter(|b| !b.is_empty());
    match kind {
        KeyKind::Ec(_) => {
            let params = get(2).ok_or_else(|| missing("CKA_EC_PARAMS"))?;
            let point = get(3).ok_or_else(|| missing("CKA_EC_POINT"))?;
            find::ec_public(&params, &point).map_err(|reason| Error::NewKeyUnreadable {
                target: ts.uri.to_string(),
                what: format!("usable public key ({reason})"),
            })
        }
        KeyKind::Rsa { .. } => {
            let n = get(0).ok_or_else(|| missing("CKA_MODULUS"))?;
            let e = get(1).ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?;
            Ok(PublicKey::rsa(&n, &e))
        }
        KeyKind::MlDsa(set) => {
            let value = get(5).ok_or_else(|| missing("CKA_VALUE"))?;
            let public = mldsa::public_key(v.get(4).cloned().flatten().as_deref(), &value)
                .map_err(|reason| Error::NewKeyUnreadable {
                    target: ts.uri.to_string(),
                    what: format!("usable public key ({reason})"),
                })?;
            if public.kind() != kind {
                return Err(Error::NewKeyUnreadable {
                    target: ts.uri.to_string(),
                    what: format!("{} public key (it reported {})", set.name(), public.kind()),
                });
            }
            Ok(public)
        }
    }
}

/// A key pair [`generate_key`] made.
#[derive(Debug)]
pub struct GeneratedKey {
    /// Its public half, as the token reports it.
    pub public: PublicKey,
    /// A URI that selects the private key (`type=private`; no PIN).
    pub uri: String,
}

/// Generates a key pair of `kind` on the token named by `uri` (`object=` required; a random `id=`
/// when absent), loading the module as the signing path does (`pkcs11_lib` first).
pub fn generate_key(
    uri: &str,
    pkcs11_lib: Option<&Path>,
    kind: KeyKind,
) -> Result<GeneratedKey, Error> {
    let parsed = Pkcs11Uri::parse(uri)?;
    let Some(label) = parsed.object.clone().filter(|l| !l.is_empty()) else {
        return Err(Error::TargetUri {
            uri: parsed.to_string(),
            reason: "name the new key with object=LABEL (and id=%XX) in the URI".into(),
        });
    };
    if parsed.object_type.is_some_and(|t| t != ObjectType::Private) {
        return Err(Error::TargetUri {
            uri: parsed.to_string(),
            reason: "keygen creates a key pair; leave out type= or use type=private".into(),
        });
    }
    let id = parsed
        .id
        .clone()
        .filter(|i| !i.is_empty())
        .map_or_else(random_id, Ok)?;
    let ts = TokenSession::open_checked(uri, pkcs11_lib, &|module, token| {
        can_generate(module, token, kind, &parsed)
    })?;
    refuse_existing(&ts, &id, &label)?;
    let (mechanism, public, private) = key_templates(kind, &id, &label);
    let (pub_handle, _) = ts
        .session
        .generate_key_pair(mechanism, &public, &private)
        .map_err(|e| call(&ts.what(), e))?;
    Ok(GeneratedKey {
        public: public_key_of(&ts, pub_handle, kind)?,
        uri: ts.object_uri(&label, &id, ObjectType::Private),
    })
}

/// For ML-DSA: the token must list `CKM_ML_DSA_KEY_PAIR_GEN` (and a signing mechanism for the key,
/// else the key would be useless), checked before any login or generation. RSA and EC are left to
/// `C_GenerateKeyPair`, as before.
fn can_generate(
    module: &Module,
    token: &Token,
    kind: KeyKind,
    uri: &Pkcs11Uri,
) -> Result<(), Error> {
    let KeyKind::MlDsa(set) = kind else {
        return Ok(());
    };
    let offered = mldsa::offered(&module.lib, token.slot);
    let refuse = |reason: String| Error::NoKeyGeneration {
        token: token.info.label.clone(),
        kind: set.name().into(),
        uri: uri.to_string(),
        reason: format!("{reason}; nothing was generated"),
    };
    if !mldsa::can_generate(&offered) {
        let signing = mldsa::select(&offered).err().unwrap_or_default();
        return Err(refuse(format!(
            "it does not offer CKM_ML_DSA_KEY_PAIR_GEN{}",
            if signing.is_empty() {
                String::new()
            } else {
                format!(" and {}", signing.trim_start_matches("this token "))
            }
        )));
    }
    mldsa::select(&offered).map(|_| ()).map_err(refuse)
}

/// A private key found on a token through a logged-in session.
pub struct TokenKey {
    ts: TokenSession,
    key: KeyObject,
    public: PublicKey,
    uri: String,
}

/// Opens the one private key `uri` names in a read-write session, for
/// [`TokenKey::store_certificate`] and [`TokenKey::store_ca_certificates`].
pub fn open_for_install(uri: &str, pkcs11_lib: Option<&Path>) -> Result<TokenKey, Error> {
    let ts = TokenSession::open(uri, pkcs11_lib)?;
    if ts.uri.object.is_none() && ts.uri.id.is_none() {
        return Err(Error::TargetUri {
            uri: ts.uri.to_string(),
            reason: "name the key with id= or object= in the URI".into(),
        });
    }
    let mut keys = find::private_keys(&ts.session, ts.uri.id.as_deref(), ts.uri.object.as_deref())
        .map_err(|e| call(&ts.what(), e))?;
    let key = match keys.len() {
        1 => keys.remove(0),
        0 => {
            return Err(Error::KeyNotFound {
                uri: ts.uri.to_string(),
                hint: format!(
                    "; no private key on token {:?} has that id or label",
                    ts.token.info.label
                ),
            });
        }
        _ => {
            return Err(Error::AmbiguousKey {
                uri: ts.uri.to_string(),
                candidates: keys
                    .iter()
                    .map(|k| ts.object_uri(&k.label, &k.id, ObjectType::Private))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let uri = ts.object_uri(&key.label, &key.id, ObjectType::Private);
    let public = key.public_or_error(&uri)?;
    Ok(TokenKey {
        ts,
        key,
        public,
        uri,
    })
}

/// Where [`TokenKey::store_certificate`] put the certificate.
#[derive(Debug)]
pub struct StoredCertificate {
    /// A URI that selects the certificate (`type=cert`).
    pub certificate_uri: String,
    /// A URI that selects the private key (`type=private`).
    pub private_key_uri: String,
    /// False when the identical certificate was already on the token.
    pub written: bool,
}

/// The `CKO_CERTIFICATE` template for `cert`, tied to the key by `id` and `label`.
fn certificate_template(cert: &Certificate, id: &[u8], label: &str) -> Result<Vec<Attr>, Error> {
    use cryptoki_sys::*;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, x) = X509Certificate::from_der(cert.der()).map_err(|e| Error::CertificateObject {
        subject: cert.subject().escape_debug().to_string(),
        reason: e.to_string(),
    })?;
    // The INTEGER as the certificate holds it (content bytes unchanged), which is what PKCS#11
    // readers compare `CKA_SERIAL_NUMBER` with.
    let serial = der::asn1::IntRef::new(x.raw_serial())
        .and_then(|i| der::Encode::to_der(&i))
        .map_err(|e| Error::CertificateObject {
            subject: cert.subject().escape_debug().to_string(),
            reason: format!("serial number: {e}"),
        })?;
    Ok(vec![
        (CKA_CLASS, ulong(CKO_CERTIFICATE)),
        (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_VALUE, cert.der().to_vec()),
        (CKA_SUBJECT, x.subject().as_raw().to_vec()),
        (CKA_ISSUER, x.issuer().as_raw().to_vec()),
        (CKA_SERIAL_NUMBER, serial),
        (CKA_ID, id.to_vec()),
        (CKA_LABEL, label.as_bytes().to_vec()),
    ])
}

/// Where [`TokenKey::store_ca_certificates`] put one CA certificate.
#[derive(Debug)]
pub struct StoredCa {
    /// The certificate's subject.
    pub subject: String,
    /// A URI that selects its object (`type=cert`).
    pub uri: String,
    /// False when the identical certificate was already on the token.
    pub written: bool,
}

/// The `CKA_ID` of a CA certificate object: its subjectKeyIdentifier (what chain builders look for),
/// else SHA-1 of its public key as RFC 5280 §4.2.1.2 method 1 derives one. Never `key_id`: the key's
/// id selects the key's own objects, and a CA certificate sharing it would be taken for the key's.
fn ca_certificate_id(cert: &Certificate, key_id: &[u8]) -> Vec<u8> {
    use sha1::Digest as _;
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
    let parsed = X509Certificate::from_der(cert.der()).ok().map(|(_, x)| x);
    let ski = parsed.as_ref().and_then(|x| {
        x.extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            })
    });
    let id = ski.filter(|i| !i.is_empty()).unwrap_or_else(|| {
        let key_bits = parsed
            .as_ref()
            .map(|x| x.public_key().subject_public_key.data.to_vec())
            .unwrap_or_else(|| cert.der().to_vec());
        sha1::Sha1::digest(key_bits).to_vec()
    });
    if id == key_id {
        // Only a CA certificate for the key itself could get here; its DER's hash differs from it.
        sha1::Sha1::digest(cert.der()).to_vec()
    } else {
        id
    }
}

/// The `CKA_LABEL` of a CA certificate object: `CA ` and its subject, which can never be the label
/// of a key (keygen refuses labels already in use, and this one names a certificate).
fn ca_certificate_label(cert: &Certificate, key_label: &str) -> String {
    let label = format!("CA {}", cert.subject());
    if label == key_label {
        format!("{label} (certificate)")
    } else {
        label
    }
}

/// The `CKO_CERTIFICATE` template for an intermediate CA certificate: public (`CKA_PRIVATE` false,
/// readable without login by every process that signs), `CKA_CERTIFICATE_CATEGORY` authority (2).
fn ca_certificate_template(cert: &Certificate, id: &[u8], label: &str) -> Result<Vec<Attr>, Error> {
    let mut t = certificate_template(cert, id, label)?;
    t.push((cryptoki_sys::CKA_CERTIFICATE_CATEGORY, ulong(2)));
    Ok(t)
}

impl TokenKey {
    /// The key's public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's URI (no PIN).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The PKCS#11 module file that was loaded to reach the key.
    pub fn module_path(&self) -> &Path {
        &self.ts.module_path
    }

    /// Stores `cert` with the key's id and label. Another certificate with that id is refused, or
    /// with `replace` destroyed once the new one is in place; the identical certificate is left as is.
    pub fn store_certificate(
        &self,
        cert: &Certificate,
        replace: bool,
    ) -> Result<StoredCertificate, Error> {
        let ts = &self.ts;
        let (id, label) = (&self.key.id, &self.key.label);
        let stored = |written| StoredCertificate {
            certificate_uri: ts.object_uri(label, id, ObjectType::Cert),
            private_key_uri: self.uri.clone(),
            written,
        };
        if id.is_empty() {
            return Err(Error::TargetUri {
                uri: self.uri.clone(),
                reason: "the key has no CKA_ID to tie a certificate to".into(),
            });
        }
        let old = find::find_objects(&ts.session, cryptoki_sys::CKO_CERTIFICATE, Some(id), None)
            .map_err(|e| call(&ts.what(), e))?;
        let mut others = Vec::new();
        for h in old {
            let v = ts
                .session
                .attributes(h, &[cryptoki_sys::CKA_VALUE])
                .map_err(|e| call(&ts.what(), e))?;
            if v.first().cloned().flatten().as_deref() == Some(cert.der()) {
                return Ok(stored(false));
            }
            others.push(h);
        }
        if !others.is_empty() && !replace {
            return Err(Error::ObjectExists {
                target: self.uri.clone(),
                what: format!("another certificate with id {}", pct_encode(id)),
                hint: "use --replace to install a renewed certificate".into(),
            });
        }
        let template = certificate_template(cert, id, label)?;
        ts.session
            .create_object(&template)
            .map_err(|e| call(&ts.what(), e))?;
        for h in others {
            ts.session
                .destroy_object(h)
                .map_err(|e| call(&ts.what(), e))?;
        }
        Ok(stored(true))
    }

    /// Stores the intermediate CA certificates `chain` on the token beside the key, so the identity
    /// does not depend on the file they came from (often removable media). A certificate already on
    /// the token (byte for byte) is left as it is; nothing is replaced or removed (other keys on the
    /// token may need it). The signing path finds them among the token's certificates.
    pub fn store_ca_certificates(&self, chain: &[Certificate]) -> Result<Vec<StoredCa>, Error> {
        let ts = &self.ts;
        let on_token =
            find::certificates(&ts.session, 0, None, None).map_err(|e| call(&ts.what(), e))?;
        let mut out = Vec::new();
        for cert in chain {
            if let Some(c) = on_token.iter().find(|c| c.der == cert.der()) {
                out.push(StoredCa {
                    subject: cert.subject(),
                    uri: ts.object_uri(&c.label, &c.id, ObjectType::Cert),
                    written: false,
                });
                continue;
            }
            let id = ca_certificate_id(cert, &self.key.id);
            let label = ca_certificate_label(cert, &self.key.label);
            let template = ca_certificate_template(cert, &id, &label)?;
            ts.session
                .create_object(&template)
                .map_err(|e| Error::Call {
                    what: format!(
                        "{}: storing the intermediate CA certificate {}",
                        ts.what(),
                        cert.subject().escape_debug()
                    ),
                    call: e,
                    hint: "; if the token cannot hold it, give --out FILE on permanent storage: \
                           the file gets the certificate and the chain, and the profile names it \
                           as --intermediates"
                        .into(),
                })?;
            out.push(StoredCa {
                subject: cert.subject(),
                uri: ts.object_uri(&label, &id, ObjectType::Cert),
                written: true,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::MlDsaSet;
    use cryptoki_sys::*;

    fn has(attrs: &[Attr], t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> bool {
        attrs.iter().any(|(at, av)| *at == t && av == v)
    }

    #[test]
    fn private_key_template_is_sensitive_unextractable_and_sign_only() {
        for kt in [
            KeyKind::Ec(Curve::P256),
            KeyKind::Rsa { bits: 3072 },
            KeyKind::MlDsa(MlDsaSet::MlDsa65),
        ] {
            let (_, _, private) = key_templates(kt, &[1], "k");
            for (t, v) in [
                (CKA_TOKEN, true),
                (CKA_PRIVATE, true),
                (CKA_SENSITIVE, true),
                (CKA_EXTRACTABLE, false),
                (CKA_SIGN, true),
                (CKA_DECRYPT, false),
                (CKA_UNWRAP, false),
                (CKA_DERIVE, false),
            ] {
                assert!(has(&private, t, &bool_attr(v)), "{kt:?}: attribute {t:#x}");
            }
            assert!(has(&private, CKA_ID, &[1]) && has(&private, CKA_LABEL, b"k"));
        }
    }

    #[test]
    fn public_template_carries_curve_or_modulus_size() {
        let (m, public, _) = key_templates(KeyKind::Ec(Curve::P384), &[1], "k");
        assert_eq!(m, CKM_EC_KEY_PAIR_GEN);
        assert!(has(
            &public,
            CKA_EC_PARAMS,
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]
        ));
        let (m, public, _) = key_templates(KeyKind::Rsa { bits: 2048 }, &[1], "k");
        assert_eq!(m, CKM_RSA_PKCS_KEY_PAIR_GEN);
        assert!(has(&public, CKA_MODULUS_BITS, &ulong(2048)));
        for (set, ckp) in [
            (MlDsaSet::MlDsa44, 1),
            (MlDsaSet::MlDsa65, 2),
            (MlDsaSet::MlDsa87, 3),
        ] {
            let (m, public, _) = key_templates(KeyKind::MlDsa(set), &[1], "k");
            assert_eq!(m, 0x1c, "CKM_ML_DSA_KEY_PAIR_GEN");
            assert!(
                has(&public, 0x61d, &ulong(ckp)),
                "CKA_PARAMETER_SET for {set:?}"
            );
        }
    }

    /// `CKA_SERIAL_NUMBER` is the certificate's serial INTEGER as encoded in it (sign byte included),
    /// as pkcs11-tool and p11-kit write it.
    #[test]
    fn certificate_template_serial_is_the_certificate_s_integer() {
        let d = tempfile::tempdir().unwrap();
        for (serial, want) in [
            ("1", &[0x02, 0x01, 0x01][..]),
            ("0x80112233", &[0x02, 0x05, 0x00, 0x80, 0x11, 0x22, 0x33]),
        ] {
            openssl(
                d.path(),
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "k.pem",
                    "-out",
                    "c.pem",
                    "-subj",
                    "/CN=s",
                    "-set_serial",
                    serial,
                ],
            );
            let cert = read_pem(&d.path().join("c.pem"));
            // Certificate and TBSCertificate SEQUENCEs (two-byte lengths), version [0], the serial.
            assert_eq!(cert.der()[8..13], [0xa0, 0x03, 0x02, 0x01, 0x02]);
            assert_eq!(&cert.der()[13..13 + want.len()], want);
            let template = certificate_template(&cert, &[1], "k").unwrap();
            assert!(has(&template, CKA_SERIAL_NUMBER, want), "{serial}");
        }
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(pct_encode(&[0x01, 0xab]), "%01%ab");
    }

    /// Runs openssl in `dir`, panicking with its stderr on failure; returns stdout.
    fn openssl(dir: &std::path::Path, args: &[&str]) -> String {
        let o = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn read_pem(path: &std::path::Path) -> Certificate {
        crate::certs::load_pem_file(path).unwrap().remove(0)
    }

    /// The CA certificate's CKA_ID is its subjectKeyIdentifier, else the same SHA-1 of the public
    /// key openssl's `subjectKeyIdentifier=hash` computes; never the key's id.
    #[test]
    fn ca_certificate_ids_follow_rfc_5280_and_never_take_the_key_id() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "with-ski.pem",
                "-subj",
                "/CN=Issuing CA",
                "-days",
                "1",
            ],
        );
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-key",
                "ca.key",
                "-out",
                "no-ski.pem",
                "-subj",
                "/CN=Issuing CA",
                "-days",
                "1",
                "-addext",
                "subjectKeyIdentifier=none",
                "-addext",
                "authorityKeyIdentifier=none",
            ],
        );
        let text = openssl(
            dir,
            &[
                "x509",
                "-in",
                "with-ski.pem",
                "-noout",
                "-ext",
                "subjectKeyIdentifier",
            ],
        );
        let ski: Vec<u8> = text
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(ski.len(), 20, "{text}");
        let with_ski = read_pem(&dir.join("with-ski.pem"));
        let no_ski = read_pem(&dir.join("no-ski.pem"));
        assert_eq!(ca_certificate_id(&with_ski, &[1]), ski);
        assert_eq!(ca_certificate_id(&no_ski, &[1]), ski);
        let other = ca_certificate_id(&with_ski, &ski);
        assert!(other != ski && other.len() == 20, "{other:02x?}");
    }

    #[test]
    fn ca_certificate_objects_are_public_authority_certificates_labelled_apart_from_the_key() {
        let der = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/ca.crt.der"),
        )
        .unwrap();
        let ca = Certificate::from_der(der).unwrap();
        let label = ca_certificate_label(&ca, "host");
        assert_eq!(label, format!("CA {}", ca.subject()));
        assert_ne!(ca_certificate_label(&ca, &label), label);
        let t = ca_certificate_template(&ca, &[9], &label).unwrap();
        for (attr, value) in [
            (CKA_CLASS, ulong(CKO_CERTIFICATE)),
            (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
            (CKA_CERTIFICATE_CATEGORY, ulong(2)),
            (CKA_TOKEN, bool_attr(true)),
            (CKA_PRIVATE, bool_attr(false)),
            (CKA_ID, vec![9]),
            (CKA_VALUE, ca.der().to_vec()),
        ] {
            assert!(has(&t, attr, &value), "attribute {attr:#x}");
        }
    }
}
