//! PKCS#11 enrollment: key pair generation on a token, opening a key without a certificate, and
//! storing the issued certificate as a token object beside the key.
//!
//! The private key is created so that it can never leave the token and can only sign: `CKA_TOKEN`,
//! `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_SIGN` true and `CKA_DECRYPT`,
//! `CKA_UNWRAP`, `CKA_DERIVE` false. Nothing on the token is overwritten: an object that already has the
//! key's `CKA_ID` or label makes keygen fail, and another certificate for the key makes install-cert
//! fail unless `--replace`. Module loading, URI parsing, token selection, login and key lookup are the
//! PKCS#11 backend's building blocks, and the CSR is signed by the backend's own signer
//! ([`crate::signer::pkcs11::open_key`]). keygen and install-cert each use one session logged in
//! once: a PIN is asked for at most once per command.

use super::{DeviceArgs, Error, KeyType};
use crate::certs::Certificate;
use crate::keys::{Curve, KeyKind, PublicKey, der_tlv};
use crate::signer::pkcs11::ffi::{Attr, Session, bool_attr, ulong};
use crate::signer::pkcs11::find::{self, KeyObject, Token};
use crate::signer::pkcs11::uri::{ObjectType, Pkcs11Uri};
use crate::signer::pkcs11::{CallError, Error as P11Error, module, pin};
use cryptoki_sys::{CK_MECHANISM_TYPE, CK_OBJECT_HANDLE};

/// DER `ECParameters` (a named-curve OID) for `CKA_EC_PARAMS`.
fn ec_params(curve: Curve) -> Vec<u8> {
    der_tlv(0x06, curve.oid().as_bytes())
}

/// The mechanism and the public and private key templates for `key_type`.
pub(crate) fn key_templates(
    key_type: KeyType,
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
    let mechanism = match key_type.kind() {
        KeyKind::Ec(curve) => {
            public.push((CKA_EC_PARAMS, ec_params(curve)));
            CKM_EC_KEY_PAIR_GEN
        }
        KeyKind::Rsa { bits } => {
            public.push((CKA_MODULUS_BITS, ulong(bits as CK_ULONG)));
            public.push((CKA_PUBLIC_EXPONENT, vec![0x01, 0x00, 0x01]));
            CKM_RSA_PKCS_KEY_PAIR_GEN
        }
    };
    (mechanism, public, private)
}

/// `%XX` for every byte, as RFC 7512 writes binary `id` values.
pub(crate) fn pct_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

fn call(what: &str, call: CallError) -> Error {
    Error::Pkcs11Backend(P11Error::Call {
        what: what.to_string(),
        call,
        hint: String::new(),
    })
}

/// An open, logged-in session on the one token a URI names.
struct TokenSession {
    session: Session,
    token: Token,
    uri: Pkcs11Uri,
}

impl TokenSession {
    fn open(raw: &str, dev: &DeviceArgs, rw: bool) -> Result<TokenSession, Error> {
        let uri = Pkcs11Uri::parse(raw)?;
        let module = module::load(dev.pkcs11_lib.as_deref(), &[&uri])?;
        let token = find::select_token(&module, &uri.token_part())?;
        let session = module
            .lib
            .open_session(token.slot, rw)
            .map_err(|e| call(&format!("token {:?}", token.info.label), e))?;
        pin::login_user(&session, &token.info, &[&uri])?;
        Ok(TokenSession {
            session,
            token,
            uri,
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
        return Err(Error::Pkcs11Exists {
            target: ts.uri.to_string(),
            what: format!("an object with id {}", pct_encode(id)),
            hint,
        });
    }
    if found((cryptoki_sys::CKA_LABEL, label.as_bytes().to_vec()))? {
        return Err(Error::Pkcs11Exists {
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
    let missing = |what: &str| Error::Pkcs11Missing {
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
            ],
        )
        .map_err(|e| call(&ts.what(), e))?;
    let get = |i: usize| v.get(i).cloned().flatten().filter(|b| !b.is_empty());
    match kind {
        KeyKind::Ec(_) => {
            let params = get(2).ok_or_else(|| missing("CKA_EC_PARAMS"))?;
            let point = get(3).ok_or_else(|| missing("CKA_EC_POINT"))?;
            find::ec_public(&params, &point).map_err(|reason| Error::Pkcs11Missing {
                target: ts.uri.to_string(),
                what: format!("usable public key ({reason})"),
            })
        }
        KeyKind::Rsa { .. } => {
            let n = get(0).ok_or_else(|| missing("CKA_MODULUS"))?;
            let e = get(1).ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?;
            Ok(PublicKey::rsa(&n, &e))
        }
    }
}

/// Generates a key pair on the token named by `uri` (`object=` required; a random `id=` when absent).
pub fn generate(uri: &str, dev: &DeviceArgs, key_type: KeyType) -> Result<PublicKey, Error> {
    let parsed = Pkcs11Uri::parse(uri)?;
    let Some(label) = parsed.object.clone().filter(|l| !l.is_empty()) else {
        return Err(Error::Usage(format!(
            "{parsed}: name the new key with object=LABEL (and id=%XX) in the URI"
        )));
    };
    if parsed.object_type.is_some_and(|t| t != ObjectType::Private) {
        return Err(Error::Usage(format!(
            "{parsed}: keygen creates a key pair; leave out type= or use type=private"
        )));
    }
    let id = parsed
        .id
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| rand::random::<[u8; 8]>().to_vec());
    let ts = TokenSession::open(uri, dev, true)?;
    refuse_existing(&ts, &id, &label)?;
    let (mechanism, public, private) = key_templates(key_type, &id, &label);
    let (pub_handle, _) = ts
        .session
        .generate_key_pair(mechanism, &public, &private)
        .map_err(|e| call(&ts.what(), e))?;
    let key = public_key_of(&ts, pub_handle, key_type.kind())?;
    crate::cli::stderr_line(&format!(
        "rolesanywhere-agent: generated {} key {}",
        key.kind(),
        ts.object_uri(&label, &id, ObjectType::Private)
    ));
    Ok(key)
}

/// A private key found on a token through a logged-in session.
pub struct TokenKey {
    ts: TokenSession,
    key: KeyObject,
    public: PublicKey,
    uri: String,
}

/// Finds the one private key `uri` names; `rw` when the session will write.
fn open_key(raw: &str, dev: &DeviceArgs, rw: bool) -> Result<TokenKey, Error> {
    let ts = TokenSession::open(raw, dev, rw)?;
    if ts.uri.object.is_none() && ts.uri.id.is_none() {
        return Err(Error::Usage(format!(
            "{}: name the key with id= or object= in the URI",
            ts.uri
        )));
    }
    let mut keys = find::private_keys(&ts.session, ts.uri.id.as_deref(), ts.uri.object.as_deref())
        .map_err(|e| call(&ts.what(), e))?;
    let key = match keys.len() {
        1 => keys.remove(0),
        0 => {
            return Err(P11Error::KeyNotFound {
                uri: ts.uri.to_string(),
                hint: format!(
                    "; no private key on token {:?} has that id or label",
                    ts.token.info.label
                ),
            }
            .into());
        }
        _ => {
            return Err(P11Error::AmbiguousKey {
                uri: ts.uri.to_string(),
                candidates: keys
                    .iter()
                    .map(|k| ts.object_uri(&k.label, &k.id, ObjectType::Private))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
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

/// Where `store_certificate` put the certificate.
pub struct Stored {
    /// A URI that selects the certificate (`type=cert`).
    pub certificate_uri: String,
    /// A URI that selects the private key (`type=private`).
    pub private_key_uri: String,
    /// False when the identical certificate was already on the token.
    pub written: bool,
}

/// The `CKO_CERTIFICATE` template for `cert`, tied to the key by `id` and `label`.
pub(crate) fn certificate_template(
    cert: &Certificate,
    id: &[u8],
    label: &str,
) -> Result<Vec<Attr>, String> {
    use cryptoki_sys::*;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, x) = X509Certificate::from_der(cert.der()).map_err(|e| e.to_string())?;
    Ok(vec![
        (CKA_CLASS, ulong(CKO_CERTIFICATE)),
        (CKA_CERTIFICATE_TYPE, ulong(CKC_X_509)),
        (CKA_TOKEN, bool_attr(true)),
        (CKA_PRIVATE, bool_attr(false)),
        (CKA_VALUE, cert.der().to_vec()),
        (CKA_SUBJECT, x.subject().as_raw().to_vec()),
        (CKA_ISSUER, x.issuer().as_raw().to_vec()),
        (CKA_SERIAL_NUMBER, der_tlv(0x02, x.raw_serial())),
        (CKA_ID, id.to_vec()),
        (CKA_LABEL, label.as_bytes().to_vec()),
    ])
}

/// Opens the key `uri` names in a read-write session, for [`TokenKey::store_certificate`].
pub fn open_for_install(uri: &str, dev: &DeviceArgs) -> Result<TokenKey, Error> {
    open_key(uri, dev, true)
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

    /// Stores `cert` with the key's id and label. Another certificate with that id is refused, or
    /// with `replace` destroyed once the new one is in place; the identical certificate is left as is.
    pub fn store_certificate(&self, cert: &Certificate, replace: bool) -> Result<Stored, Error> {
        let ts = &self.ts;
        let (id, label) = (&self.key.id, &self.key.label);
        let stored = |written| Stored {
            certificate_uri: ts.object_uri(label, id, ObjectType::Cert),
            private_key_uri: self.uri.clone(),
            written,
        };
        if id.is_empty() {
            return Err(Error::Usage(format!(
                "{}: the key has no CKA_ID to tie a certificate to",
                self.uri
            )));
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
            return Err(Error::Pkcs11Exists {
                target: self.uri.clone(),
                what: format!("another certificate with id {}", pct_encode(id)),
                hint: "use --replace to install a renewed certificate".into(),
            });
        }
        let template = certificate_template(cert, id, label).map_err(Error::Unexpected)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::*;

    fn has(attrs: &[Attr], t: CK_ATTRIBUTE_TYPE, v: &[u8]) -> bool {
        attrs.iter().any(|(at, av)| *at == t && av == v)
    }

    #[test]
    fn private_key_template_is_sensitive_unextractable_and_sign_only() {
        for kt in [KeyType::EcP256, KeyType::Rsa3072] {
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
        let (m, public, _) = key_templates(KeyType::EcP384, &[1], "k");
        assert_eq!(m, CKM_EC_KEY_PAIR_GEN);
        assert!(has(
            &public,
            CKA_EC_PARAMS,
            &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22]
        ));
        let (m, public, _) = key_templates(KeyType::Rsa2048, &[1], "k");
        assert_eq!(m, CKM_RSA_PKCS_KEY_PAIR_GEN);
        assert!(has(&public, CKA_MODULUS_BITS, &ulong(2048)));
    }

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(pct_encode(&[0x01, 0xab]), "%01%ab");
    }
}
