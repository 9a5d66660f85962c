//! Finding tokens and objects, and reading the public half of a key from what the token exposes.
//!
//! Owns: token selection by URI (library, slot and token attributes), object searches by class, id
//! and label, certificate candidates (YubiKey attestation certificates set aside), and public key
//! extraction (`CKA_PUBLIC_KEY_INFO`, `CKA_MODULUS`/`CKA_PUBLIC_EXPONENT`, `CKA_EC_POINT`, or the
//! public-key / certificate object with the same `CKA_ID`). Must not: sign anything to find out which
//! key is which (keys are matched to certificates by public key only) or log in.

use super::error::{CallError, Error, call};
use super::ffi::{Attr, Session, TokenInfo, ulong};
use super::mldsa;
use super::module::Module;
use super::uri::{ObjectType, Pkcs11Uri};
use crate::keys::CurveOid as _;
use crate::keys::PublicKeyDer as _;
use crate::keys::{Curve, PublicKey};
use cryptoki_sys::{CK_OBJECT_CLASS, CK_OBJECT_HANDLE, CK_SLOT_ID};
use spki::der::{Decode, asn1::ObjectIdentifier};

/// A present token that matched a URI.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// Its slot.
    pub slot: CK_SLOT_ID,
    /// `C_GetTokenInfo`.
    pub info: TokenInfo,
}

impl Token {
    /// A URI naming this token: its label, plus the serial number when `with_serial`.
    pub(crate) fn uri(&self, with_serial: bool) -> Pkcs11Uri {
        let mut u = Pkcs11Uri::default();
        u.token = Some(self.info.label.clone());
        u.serial = (with_serial && !self.info.serial.is_empty()).then(|| self.info.serial.clone());
        u
    }
}

/// Every present token matching the URI's library, slot and token attributes, in slot order.
pub(crate) fn tokens(module: &Module, uri: &Pkcs11Uri) -> Result<Vec<Token>, Error> {
    let lib = &module.lib;
    let what = || format!("PKCS#11 module {}", crate::text::path(&module.path));
    if uri.library_manufacturer.is_some()
        || uri.library_description.is_some()
        || uri.library_version.is_some()
    {
        let info = lib.info().map_err(|e| call(what(), e))?;
        if !uri.matches_library(&info) {
            return Ok(Vec::new());
        }
    }
    let slot_attrs = uri.slot_description.is_some() || uri.slot_manufacturer.is_some();
    let mut out = Vec::new();
    for slot in lib.slots_with_token().map_err(|e| call(what(), e))? {
        if slot_attrs {
            let info = lib.slot_info(slot).map_err(|e| call(what(), e))?;
            if !uri.matches_slot(slot, &info) {
                continue;
            }
        } else if uri.slot_id.is_some_and(|s| s != slot) {
            continue;
        }
        // A token removed or not yet ready between the slot list and here is simply absent.
        let Ok(info) = lib.token_info(slot) else {
            continue;
        };
        // SoftHSM (and others) keep an empty, uninitialised token around for `C_InitToken`.
        if !info.initialized() {
            continue;
        }
        if uri.matches_token(&info) {
            out.push(Token { slot, info });
        }
    }
    Ok(out)
}

/// URIs naming each token, with serials when labels repeat.
pub(crate) fn token_uris(tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .map(|t| {
            let dup = tokens
                .iter()
                .filter(|o| o.info.label == t.info.label)
                .count()
                > 1;
            t.uri(dup).to_string()
        })
        .collect()
}

/// Exactly one token matching the URI's token part (the one to generate keys on, write to, …).
pub(crate) fn select_token(module: &Module, uri: &Pkcs11Uri) -> Result<Token, Error> {
    let mut found = tokens(module, uri)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(token_not_found(module, uri)),
        _ => Err(Error::AmbiguousToken {
            uri: uri.token_part().to_string(),
            candidates: token_uris(&found).join(", "),
        }),
    }
}

/// The "no token" error, listing the tokens the module shows (as URIs, so labels are
/// percent-encoded) and why the wanted one may be invisible.
pub(crate) fn token_not_found(module: &Module, uri: &Pkcs11Uri) -> Error {
    let all = tokens(module, &Pkcs11Uri::default()).unwrap_or_default();
    Error::TokenNotFound {
        uri: uri.token_part().to_string(),
        module: crate::text::path(&module.path),
        seen: if all.is_empty() {
            "; the module shows no initialised token".into()
        } else {
            format!("; the module shows: {}", token_uris(&all).join(", "))
        },
        hint: super::visibility::hint(&module.path, super::visibility::is_softhsm(module)),
    }
}

/// Handles of objects of `class` with the given id and label (absent ones match anything).
pub(crate) fn find_objects(
    session: &Session,
    class: CK_OBJECT_CLASS,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Result<Vec<CK_OBJECT_HANDLE>, CallError> {
    let mut t: Vec<Attr> = vec![(cryptoki_sys::CKA_CLASS, ulong(class))];
    if let Some(id) = id {
        t.push((cryptoki_sys::CKA_ID, id.to_vec()));
    }
    if let Some(l) = label {
        t.push((cryptoki_sys::CKA_LABEL, l.as_bytes().to_vec()));
    }
    session.find_objects(&t)
}

/// The object class a URI's `type` selects, if it is compatible with `wanted`.
pub(crate) fn type_allows(uri: &Pkcs11Uri, wanted: ObjectType) -> bool {
    uri.object_type.is_none_or(|t| t == wanted)
}

/// A certificate object on a token.
#[derive(Debug, Clone)]
pub(crate) struct CertObject {
    /// Index into the token list it was found with.
    pub token: usize,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_VALUE` (DER).
    pub der: Vec<u8>,
}

/// Certificates on a session's token matching id and label (X.509 only).
pub(crate) fn certificates(
    session: &Session,
    token: usize,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Result<Vec<CertObject>, CallError> {
    let mut out = Vec::new();
    for h in find_objects(session, cryptoki_sys::CKO_CERTIFICATE, id, label)? {
        let v = session.attributes(
            h,
            &[
                cryptoki_sys::CKA_CERTIFICATE_TYPE,
                cryptoki_sys::CKA_VALUE,
                cryptoki_sys::CKA_ID,
                cryptoki_sys::CKA_LABEL,
            ],
        )?;
        let x509 = v[0]
            .as_deref()
            .is_none_or(|t| t == ulong(cryptoki_sys::CKC_X_509).as_slice());
        let Some(der) = v[1].clone().filter(|d| !d.is_empty() && x509) else {
            continue;
        };
        out.push(CertObject {
            token,
            id: v[2].clone().unwrap_or_default(),
            label: String::from_utf8_lossy(v[3].as_deref().unwrap_or_default()).into_owned(),
            der,
        });
    }
    Ok(out)
}

/// YubiKey PIV attestation certificates (ykcs11 gives them the slot key's `CKA_ID`, so a URI by id
/// matches them too): by label, or by Yubico's attestation extension arc 1.3.6.1.4.1.41482.3.
pub(crate) fn is_attestation(c: &CertObject) -> bool {
    if c.label.starts_with("X.509 Certificate for PIV Attestation") {
        return true;
    }
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&c.der) else {
        return false;
    };
    cert.extensions()
        .iter()
        .any(|e| e.oid.to_id_string().starts_with("1.3.6.1.4.1.41482.3."))
}

/// The public key in a certificate's DER (independent of the certificate type used elsewhere).
pub(crate) fn certificate_public_key(der: &[u8]) -> Option<PublicKey> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    PublicKey::from_spki_der(cert.tbs_certificate.subject_pki.raw).ok()
}

/// A private key object and what we know about it.
#[derive(Debug, Clone)]
pub(crate) struct KeyObject {
    /// Its handle.
    pub handle: CK_OBJECT_HANDLE,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// `CKA_LABEL`.
    pub label: String,
    /// The public half, when the token lets us find it.
    pub public: Option<PublicKey>,
    /// Why the public half is unknown (for the error when it is needed).
    pub public_error: Option<String>,
    /// `CKA_ALWAYS_AUTHENTICATE`.
    pub always_authenticate: bool,
}

impl KeyObject {
    /// The public half, or [`Error::NoPublicKey`] naming the key by `uri` and saying why it is unknown.
    pub(crate) fn public_or_error(&self, uri: &str) -> Result<PublicKey, Error> {
        self.public.clone().ok_or_else(|| Error::NoPublicKey {
            uri: uri.to_string(),
            detail: self
                .public_error
                .as_deref()
                .map(|e| format!("; {e}"))
                .unwrap_or_default(),
        })
    }
}

const KEY_ATTRS: [cryptoki_sys::CK_ATTRIBUTE_TYPE; 8] = [
    cryptoki_sys::CKA_KEY_TYPE,
    cryptoki_sys::CKA_ID,
    cryptoki_sys::CKA_LABEL,
    cryptoki_sys::CKA_ALWAYS_AUTHENTICATE,
    cryptoki_sys::CKA_MODULUS,
    cryptoki_sys::CKA_PUBLIC_EXPONENT,
    cryptoki_sys::CKA_EC_PARAMS,
    cryptoki_sys::CKA_EC_POINT,
];

/// Private keys on a session's token matching id and label, with their public halves.
pub(crate) fn private_keys(
    session: &Session,
    id: Option<&[u8]>,
    label: Option<&str>,
) -> Result<Vec<KeyObject>, CallError> {
    let mut out = Vec::new();
    for h in find_objects(session, cryptoki_sys::CKO_PRIVATE_KEY, id, label)? {
        let v = session.attributes(h, &KEY_ATTRS)?;
        let key_id = v[1].clone().unwrap_or_default();
        let mut k = KeyObject {
            handle: h,
            label: String::from_utf8_lossy(v[2].as_deref().unwrap_or_default()).into_owned(),
            always_authenticate: v[3].as_deref().is_some_and(|b| b.first() == Some(&1)),
            public: None,
            public_error: None,
            id: key_id,
        };
        match public_from_attrs(&v[0], &v[4], &v[5], &v[6], &v[7]) {
            Ok(Some(p)) => k.public = Some(p),
            Ok(None) => match public_from_companions(session, &k.id) {
                Ok(p) => k.public = p,
                Err(e) => k.public_error = Some(e),
            },
            Err(e) => k.public_error = Some(e),
        }
        out.push(k);
    }
    Ok(out)
}

/// The public key from a key object's own attributes; `Ok(None)` when they are not there (EC
/// private keys usually lack `CKA_EC_POINT`).
fn public_from_attrs(
    key_type: &Option<Vec<u8>>,
    modulus: &Option<Vec<u8>>,
    exponent: &Option<Vec<u8>>,
    params: &Option<Vec<u8>>,
    point: &Option<Vec<u8>>,
) -> Result<Option<PublicKey>, String> {
    let kt = key_type.as_deref();
    // An ML-DSA private key object holds no public value: the public key object (or the
    // certificate) with its CKA_ID gives it.
    if kt == Some(ulong(mldsa::ck::CKK_ML_DSA).as_slice()) {
        return Ok(None);
    }
    if kt == Some(ulong(cryptoki_sys::CKK_RSA).as_slice()) {
        return Ok(match (modulus, exponent) {
            (Some(m), Some(e)) if !m.is_empty() && !e.is_empty() => Some(PublicKey::rsa(m, e)),
            _ => None,
        });
    }
    if kt == Some(ulong(cryptoki_sys::CKK_EC).as_slice()) {
        let (Some(params), Some(point)) = (params, point) else {
            return Ok(None);
        };
        if point.is_empty() {
            return Ok(None);
        }
        return ec_public(params, point).map(Some);
    }
    Err(match kt {
        Some(_) => "the key type is neither RSA, EC nor ML-DSA".into(),
        None => "the key type (CKA_KEY_TYPE) cannot be read".into(),
    })
}

/// EC public key from `CKA_EC_PARAMS` (a named-curve OID) and `CKA_EC_POINT` (normally a DER OCTET
/// STRING around the point; some tokens give the bare point).
pub(crate) fn ec_public(params: &[u8], point: &[u8]) -> Result<PublicKey, String> {
    let oid = ObjectIdentifier::from_der(params)
        .map_err(|_| "CKA_EC_PARAMS is not a named-curve OID".to_string())?;
    let curve = Curve::from_oid(&oid).ok_or_else(|| format!("unsupported EC curve {oid}"))?;
    let bare_len = 1 + 2 * curve.field_len();
    let bare = if point.len() == bare_len && point[0] == 0x04 {
        point.to_vec()
    } else {
        spki::der::asn1::OctetString::from_der(point)
            .map_err(|_| "CKA_EC_POINT is neither a point nor a DER OCTET STRING".to_string())?
            .as_bytes()
            .to_vec()
    };
    PublicKey::ec(curve, &bare).map_err(|e| e.to_string())
}

/// The public key from the public-key object, else the certificate, with the same `CKA_ID`.
fn public_from_companions(session: &Session, id: &[u8]) -> Result<Option<PublicKey>, String> {
    if id.is_empty() {
        return Ok(None);
    }
    let pubs = find_objects(session, cryptoki_sys::CKO_PUBLIC_KEY, Some(id), None)
        .map_err(|e| e.to_string())?;
    for h in pubs {
        let v = session
            .attributes(
                h,
                &[
                    cryptoki_sys::CKA_KEY_TYPE,
                    cryptoki_sys::CKA_MODULUS,
                    cryptoki_sys::CKA_PUBLIC_EXPONENT,
                    cryptoki_sys::CKA_EC_PARAMS,
                    cryptoki_sys::CKA_EC_POINT,
                    cryptoki_sys::CKA_PUBLIC_KEY_INFO,
                    mldsa::ck::CKA_PARAMETER_SET,
                    cryptoki_sys::CKA_VALUE,
                ],
            )
            .map_err(|e| e.to_string())?;
        if v[0].as_deref() == Some(ulong(mldsa::ck::CKK_ML_DSA).as_slice())
            && let Some(value) = v[7].as_deref().filter(|b| !b.is_empty())
        {
            return mldsa::public_key(v[6].as_deref(), value).map(Some);
        }
        if let Some(p) = public_from_attrs(&v[0], &v[1], &v[2], &v[3], &v[4])? {
            return Ok(Some(p));
        }
        if let Some(spki) = v[5].as_deref().filter(|s| !s.is_empty()) {
            return PublicKey::from_spki_der(spki)
                .map(Some)
                .map_err(|e| e.to_string());
        }
    }
    let certs = certificates(session, 0, Some(id), None).map_err(|e| e.to_string())?;
    Ok(certs
        .iter()
        .filter(|c| !is_attestation(c))
        .find_map(|c| certificate_public_key(&c.der)))
}

/// A URI selecting one object on a token: the token part, then label and id when known.
pub(crate) fn object_uri(token: &Pkcs11Uri, label: &str, id: &[u8], kind: ObjectType) -> Pkcs11Uri {
    let mut u = token.clone();
    u.object = (!label.is_empty()).then(|| label.to_string());
    u.id = (!id.is_empty()).then(|| id.to_vec());
    u.object_type = Some(kind);
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    const P256_OID_DER: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    #[test]
    fn ec_point_is_read_wrapped_or_bare() {
        let mut point = vec![0x04];
        point.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&point);
        let a = ec_public(&P256_OID_DER, &wrapped).unwrap();
        let b = ec_public(&P256_OID_DER, &point).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, PublicKey::ec(Curve::P256, &point).unwrap());
    }

    #[test]
    fn ec_point_rejects_unknown_curves_and_garbage() {
        let secp256k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
        assert!(
            ec_public(&secp256k1, &[4; 65])
                .unwrap_err()
                .contains("unsupported EC curve")
        );
        assert!(ec_public(&P256_OID_DER, &[1, 2, 3]).is_err());
        assert!(ec_public(&[0x13, 0x01, 0x41], &[4; 65]).is_err());
    }

    #[test]
    fn rsa_public_comes_from_modulus_and_exponent() {
        let kt = Some(ulong(cryptoki_sys::CKK_RSA));
        let p = public_from_attrs(
            &kt,
            &Some(vec![0, 0xc1, 2]),
            &Some(vec![1, 0, 1]),
            &None,
            &None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p, PublicKey::rsa(&[0xc1, 2], &[1, 0, 1]));
        assert_eq!(
            public_from_attrs(&kt, &None, &None, &None, &None).unwrap(),
            None
        );
        let dsa = Some(ulong(cryptoki_sys::CKK_DSA));
        assert!(public_from_attrs(&dsa, &None, &None, &None, &None).is_err());
    }

    #[test]
    fn attestation_certificates_are_recognised_by_label() {
        let c = CertObject {
            token: 0,
            id: vec![1],
            label: "X.509 Certificate for PIV Attestation 9a".into(),
            der: vec![],
        };
        assert!(is_attestation(&c));
        let c = CertObject {
            label: "X.509 Certificate for PIV Authentication".into(),
            ..c
        };
        assert!(!is_attestation(&c));
    }
}
