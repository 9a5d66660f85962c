//! PKCS#11 enrollment: key pair generation on a token, opening a key without a certificate, and
//! storing the issued certificate as a token object beside the key.
//!
//! The private key is created so that it can never leave the token and can only sign: `CKA_TOKEN`,
//! `CKA_PRIVATE`, `CKA_SENSITIVE` true, `CKA_EXTRACTABLE` false, `CKA_SIGN` true and `CKA_DECRYPT`,
//! `CKA_UNWRAP`, `CKA_DERIVE` false. Nothing on the token is overwritten: an object that already has the
//! key's `CKA_ID` or label makes keygen fail, and an existing certificate for the key makes install-cert
//! fail unless `--replace`. Module loading, token selection and login come from the PKCS#11 backend.

use super::{DeviceArgs, Error, KeyType};
use crate::certs::Certificate;
use crate::keys::{Curve, KeyKind, PublicKey, der_tlv};
use crate::signer::Signer;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

/// DER `ECParameters` (a named-curve OID) for `CKA_EC_PARAMS`.
fn ec_params(curve: Curve) -> Vec<u8> {
    der_tlv(0x06, curve.oid().as_bytes())
}

/// The mechanism and the public and private key templates for `key_type`.
pub(crate) fn key_templates(
    key_type: KeyType,
    id: &[u8],
    label: &str,
) -> (Mechanism<'static>, Vec<Attribute>, Vec<Attribute>) {
    let mut public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let private = vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let mechanism = match key_type.kind() {
        KeyKind::Ec(curve) => {
            public.push(Attribute::EcParams(ec_params(curve)));
            Mechanism::EccKeyPairGen
        }
        KeyKind::Rsa { bits } => {
            public.push(Attribute::ModulusBits((bits as u64).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
    };
    (mechanism, public, private)
}

/// `%XX` for every byte, as RFC 7512 writes binary `id` values.
pub(crate) fn pct_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02x}")).collect()
}

/// Percent-encodes a label for a URI path attribute (RFC 7512 `pk11-pchar`).
pub(crate) fn pct_encode_text(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~:[]@!$'()*+,=&".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The public key of a generated key pair, from the public key object.
fn public_key_of(
    session: &Session,
    handle: ObjectHandle,
    kind: KeyKind,
    target: &str,
) -> Result<PublicKey, Error> {
    let p11 = |source| Error::Pkcs11 {
        function: "C_GetAttributeValue",
        target: target.to_string(),
        source,
    };
    let missing = |what: &str| Error::Pkcs11Missing {
        target: target.to_string(),
        what: what.to_string(),
    };
    match kind {
        KeyKind::Ec(curve) => {
            let attrs = session
                .get_attributes(handle, &[AttributeType::EcPoint])
                .map_err(p11)?;
            let point = attrs
                .into_iter()
                .find_map(|a| match a {
                    Attribute::EcPoint(p) => Some(p),
                    _ => None,
                })
                .ok_or_else(|| missing("CKA_EC_POINT"))?;
            // CKA_EC_POINT is a DER OCTET STRING around the point; some modules give the bare point.
            let want = 1 + 2 * curve.field_len();
            let bare = if point.len() == want {
                &point[..]
            } else {
                strip_octet_string(&point).ok_or_else(|| missing("a valid CKA_EC_POINT"))?
            };
            PublicKey::ec(curve, bare).map_err(|source| Error::PublicKey {
                key: target.to_string(),
                source,
            })
        }
        KeyKind::Rsa { .. } => {
            let attrs = session
                .get_attributes(
                    handle,
                    &[AttributeType::Modulus, AttributeType::PublicExponent],
                )
                .map_err(p11)?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let n = n.ok_or_else(|| missing("CKA_MODULUS"))?;
            let e = e.ok_or_else(|| missing("CKA_PUBLIC_EXPONENT"))?;
            Ok(PublicKey::rsa(&n, &e))
        }
    }
}

/// The content of a DER OCTET STRING that spans all of `der`.
fn strip_octet_string(der: &[u8]) -> Option<&[u8]> {
    if *der.first()? != 0x04 {
        return None;
    }
    let l0 = *der.get(1)? as usize;
    let (len, hdr) = match l0 {
        0..=0x7f => (l0, 2),
        0x81 => (*der.get(2)? as usize, 3),
        0x82 => (((*der.get(2)? as usize) << 8) | *der.get(3)? as usize, 4),
        _ => return None,
    };
    let body = der.get(hdr..)?;
    (body.len() == len).then_some(body)
}

/// Fails if any object on the token has `id` or `label`.
fn refuse_existing(session: &Session, id: &[u8], label: &str, target: &str) -> Result<(), Error> {
    let p11 = |source| Error::Pkcs11 {
        function: "C_FindObjects",
        target: target.to_string(),
        source,
    };
    let hint = "choose another id= and object= or delete the old objects first \
                (pkcs11-tool --delete-object)"
        .to_string();
    if !session
        .find_objects(&[Attribute::Id(id.to_vec())])
        .map_err(p11)?
        .is_empty()
    {
        return Err(Error::Pkcs11Exists {
            target: target.to_string(),
            what: format!("an object with id {}", pct_encode(id)),
            hint,
        });
    }
    if !session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(p11)?
        .is_empty()
    {
        return Err(Error::Pkcs11Exists {
            target: target.to_string(),
            what: format!("an object labelled {label:?}"),
            hint,
        });
    }
    Ok(())
}

/// Generates a key pair in `session` (logged in, R/W) and returns its public key.
pub(crate) fn generate_in(
    session: &Session,
    key_type: KeyType,
    id: &[u8],
    label: &str,
    target: &str,
) -> Result<PublicKey, Error> {
    refuse_existing(session, id, label, target)?;
    let (mechanism, public, private) = key_templates(key_type, id, label);
    let (pub_handle, _) = session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(|source| Error::Pkcs11 {
            function: "C_GenerateKeyPair",
            target: target.to_string(),
            source,
        })?;
    public_key_of(session, pub_handle, key_type.kind(), target)
}

/// The `CKO_CERTIFICATE` template for `cert`, tied to the key by `id` and `label`.
pub(crate) fn certificate_template(
    cert: &Certificate,
    id: &[u8],
    label: &str,
) -> Result<Vec<Attribute>, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, x) = X509Certificate::from_der(cert.der()).map_err(|e| e.to_string())?;
    Ok(vec![
        Attribute::Class(ObjectClass::CERTIFICATE),
        Attribute::CertificateType(CertificateType::X_509),
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Value(cert.der().to_vec()),
        Attribute::Subject(x.subject().as_raw().to_vec()),
        Attribute::Issuer(x.issuer().as_raw().to_vec()),
        Attribute::SerialNumber(der_tlv(0x02, x.raw_serial())),
        Attribute::Id(id.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
    ])
}

/// Stores `cert` in `session` with `id` and `label`; existing certificates with that id are refused,
/// or with `replace` destroyed after the new one is in place.
pub(crate) fn store_in(
    session: &Session,
    cert: &Certificate,
    id: &[u8],
    label: &str,
    replace: bool,
    target: &str,
) -> Result<(), Error> {
    let p11 = |function| {
        move |source| Error::Pkcs11 {
            function,
            target: target.to_string(),
            source,
        }
    };
    let old = session
        .find_objects(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::Id(id.to_vec()),
        ])
        .map_err(p11("C_FindObjects"))?;
    if !old.is_empty() && !replace {
        return Err(Error::Pkcs11Exists {
            target: target.to_string(),
            what: format!("a certificate with id {}", pct_encode(id)),
            hint: "use --replace to install a renewed certificate".into(),
        });
    }
    let template = certificate_template(cert, id, label).map_err(|reason| Error::Usage(reason))?;
    session
        .create_object(&template)
        .map_err(p11("C_CreateObject"))?;
    for h in old {
        session.destroy_object(h).map_err(p11("C_DestroyObject"))?;
    }
    Ok(())
}

/// Generates a key pair on the token named by `uri`.
pub fn generate(uri: &str, dev: &DeviceArgs, key_type: KeyType) -> Result<PublicKey, Error> {
    let _ = (uri, dev, key_type);
    Err(crate::signer::pkcs11::Error::Todo.into())
}

/// Opens the private key named by `uri` as a signer.
pub fn open_signer(uri: &str, dev: &DeviceArgs) -> Result<Box<dyn Signer>, Error> {
    let _ = (uri, dev);
    Err(crate::signer::pkcs11::Error::Todo.into())
}

/// Where `store_certificate` put the certificate.
pub struct Stored {
    /// A URI that selects the certificate.
    pub certificate_uri: String,
    /// A URI that selects the private key.
    pub private_key_uri: String,
}

/// Stores `cert` on the token beside the key named by `uri`.
pub fn store_certificate(
    uri: &str,
    dev: &DeviceArgs,
    cert: &Certificate,
    replace: bool,
) -> Result<Stored, Error> {
    let _ = (uri, dev, cert, replace);
    Err(crate::signer::pkcs11::Error::Todo.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(attrs: &[Attribute], want: &Attribute) -> bool {
        attrs
            .iter()
            .any(|a| format!("{a:?}") == format!("{want:?}"))
    }

    #[test]
    fn private_key_template_is_sensitive_unextractable_and_sign_only() {
        for kt in [KeyType::EcP256, KeyType::Rsa3072] {
            let (_, _, private) = key_templates(kt, &[1], "k");
            for want in [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Decrypt(false),
                Attribute::Unwrap(false),
                Attribute::Derive(false),
                Attribute::Id(vec![1]),
                Attribute::Label(b"k".to_vec()),
            ] {
                assert!(has(&private, &want), "{kt:?}: missing {want:?}");
            }
        }
    }

    #[test]
    fn public_template_carries_curve_or_modulus_size() {
        let (m, public, _) = key_templates(KeyType::EcP384, &[1], "k");
        assert!(matches!(m, Mechanism::EccKeyPairGen));
        assert!(has(
            &public,
            &Attribute::EcParams(vec![0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22])
        ));
        let (m, public, _) = key_templates(KeyType::Rsa2048, &[1], "k");
        assert!(matches!(m, Mechanism::RsaPkcsKeyPairGen));
        assert!(has(&public, &Attribute::ModulusBits(2048u64.into())));
    }

    #[test]
    fn ec_point_octet_string_is_unwrapped() {
        let mut wrapped = vec![0x04, 0x41, 0x04];
        wrapped.extend([7u8; 64]);
        assert_eq!(strip_octet_string(&wrapped).map(<[u8]>::len), Some(65));
        assert_eq!(strip_octet_string(&wrapped[..10]), None);
        assert_eq!(strip_octet_string(&[]), None);
    }

    #[test]
    fn uri_encoding_of_ids_and_labels() {
        assert_eq!(pct_encode(&[0x01, 0xab]), "%01%ab");
        assert_eq!(pct_encode_text("my key;1"), "my%20key%3B1");
    }
}
