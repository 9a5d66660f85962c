//! PKCS#12 (`.p12`, `.pfx`, RFC 7292): the key and certificates of a password-protected bundle.
//!
//! Owns the walk of the PFX structure, the integrity check (HMAC with the RFC 7292 appendix B MAC
//! key, before anything is decrypted), the bags and the certificate order (the one whose public key
//! matches the key first, then the rest as found). Decryption itself is [`pbe`](super::pbe)'s. Only
//! password integrity and privacy modes exist in practice; public-key modes are refused.
//!
//! ```text
//! PFX ::= SEQUENCE { version INTEGER (3), authSafe ContentInfo, macData MacData OPTIONAL }
//! ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY OPTIONAL }
//! MacData ::= SEQUENCE { mac DigestInfo, macSalt OCTET STRING, iterations INTEGER DEFAULT 1 }
//! AuthenticatedSafe ::= SEQUENCE OF ContentInfo    -- data, or encryptedData holding SafeContents
//! EncryptedData ::= SEQUENCE { version INTEGER, EncryptedContentInfo }
//! EncryptedContentInfo ::= SEQUENCE { contentType OID, algorithm AlgorithmIdentifier,
//!                                     encryptedContent [0] IMPLICIT OCTET STRING }
//! SafeContents ::= SEQUENCE OF SafeBag
//! SafeBag ::= SEQUENCE { bagId OID, bagValue [0] EXPLICIT ANY, bagAttributes SET OPTIONAL }
//! CertBag ::= SEQUENCE { certId OID, certValue [0] EXPLICIT OCTET STRING }
//! ```

use super::pbe::{self, Hash, Password, Scheme};
use super::sign::PrivateKey;
use super::{Ctx, Error, pkcs8};
use crate::keys::PublicKey;
use crate::keys::PublicKeyDer as _;
use crate::signer::asn1::{self, Asn1Error, Reader, Tlv};
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ENVELOPED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.3");
const ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const SAFE_CONTENTS_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.6");
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const PBMAC1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.14");

/// How deep `safeContentsBag`s may nest (real files do not nest at all).
const MAX_NESTING: usize = 4;

/// What a PKCS#12 file held.
pub(super) struct Opened {
    /// The one private key.
    pub key: PrivateKey,
    /// Certificates (DER), the one for the key first.
    pub certificates: Vec<Vec<u8>>,
}

/// Reads a PFX: checks the MAC, decrypts the bags, returns the key and certificates.
pub(super) fn open(ctx: &Ctx<'_>, der: &[u8]) -> Result<Opened, Error> {
    let m = |e: Asn1Error| ctx.malformed_msg(format!("PKCS#12 {}", e.0));
    let pfx = asn1::single(der, asn1::SEQUENCE, "PFX").map_err(m)?;
    let mut r = pfx.reader();
    let version = r
        .next("version")
        .and_then(|v| v.as_u64("version"))
        .map_err(m)?;
    if version != 3 {
        return Err(ctx.malformed_msg(format!("PKCS#12 version {version}, expected 3")));
    }
    let auth_safe = r.expect(asn1::SEQUENCE, "authSafe").map_err(m)?;
    let mac_data = if r.is_empty() {
        None
    } else {
        Some(r.expect(asn1::SEQUENCE, "macData").map_err(m)?)
    };
    r.finish("PFX").map_err(m)?;

    let mut ci = auth_safe.reader();
    let content_type = ci.expect(asn1::OID, "authSafe contentType").map_err(m)?;
    if content_type.is_oid(&SIGNED_DATA) {
        return Err(ctx.unsupported_algorithm("PKCS#12 public-key integrity mode (signedData)"));
    }
    if !content_type.is_oid(&DATA) {
        return Err(ctx.malformed_msg(format!(
            "PKCS#12 authSafe has content type {}",
            content_type.oid_string()
        )));
    }
    let safe_bytes = explicit_octets(&mut ci, "authSafe").map_err(m)?;

    // The MAC is checked first: it tells a wrong password apart from a damaged file before any bag
    // is decrypted. Its parameters are checked before the password is asked for, and so is the
    // key-derivation work of the whole file: the MAC and every item outside encrypted content (what
    // is inside is charged as it is found).
    let mac = mac_data.map(|d| Mac::parse(ctx, d)).transpose()?;
    let mut plan = Plan::default();
    plan.auth_safe(ctx, safe_bytes)?;
    ctx.check_kdf_budget(
        mac.as_ref()
            .map_or(0, |m| m.iterations)
            .saturating_add(plan.cost),
    )?;
    let mut walker = Walker {
        ctx,
        password: None,
        keys: Vec::new(),
        certificates: Vec::new(),
    };
    if let Some(mac) = mac {
        walker.password = Some(mac.verify(ctx, safe_bytes)?);
    }

    let safes = asn1::single(safe_bytes, asn1::SEQUENCE, "AuthenticatedSafe").map_err(m)?;
    let mut safes = safes.reader();
    while !safes.is_empty() {
        let info = safes.expect(asn1::SEQUENCE, "ContentInfo").map_err(m)?;
        walker.content_info(info)?;
    }

    let Walker {
        mut keys,
        certificates,
        ..
    } = walker;
    // The walk stops at a second key.
    let Some(key) = keys.pop() else {
        return Err(Error::NoKey {
            path: ctx.path.into(),
            what: "the PKCS#12 file has no private key bag".into(),
        });
    };
    let public = ctx.public_key(&key)?;
    let certificates = order_certificates(&public, certificates);
    Ok(Opened { key, certificates })
}

/// What the AuthenticatedSafe asks for that can be seen without decrypting anything: the
/// key-derivation work of each encryptedData and of the shrouded key bags of the `data` contents, and
/// whether it holds more than one key. Reads the structure the walk reads and derives nothing.
#[derive(Default)]
struct Plan {
    /// Key-derivation work, in the units of [`pbe::MAX_FILE_KDF_ITERATIONS`].
    cost: u64,
    /// Key bags (plain or shrouded) seen.
    keys: usize,
}

impl Plan {
    fn auth_safe(&mut self, ctx: &Ctx<'_>, safe_bytes: &[u8]) -> Result<(), Error> {
        let m = |e: Asn1Error| ctx.malformed_msg(format!("PKCS#12 {}", e.0));
        let safes = asn1::single(safe_bytes, asn1::SEQUENCE, "AuthenticatedSafe").map_err(m)?;
        let mut safes = safes.reader();
        while !safes.is_empty() {
            let info = safes.expect(asn1::SEQUENCE, "ContentInfo").map_err(m)?;
            let mut r = info.reader();
            let content_type = r.expect(asn1::OID, "ContentInfo contentType").map_err(m)?;
            if content_type.is_oid(&DATA) {
                self.safe_contents(ctx, explicit_octets(&mut r, "data").map_err(m)?, 0)?;
            } else if content_type.is_oid(&ENCRYPTED_DATA) {
                let wrapper = r.expect(asn1::CONTEXT_0, "encryptedData").map_err(m)?;
                let ed = asn1::single(wrapper.value, asn1::SEQUENCE, "EncryptedData").map_err(m)?;
                let mut ed = ed.reader();
                ed.expect(asn1::INTEGER, "EncryptedData version")
                    .map_err(m)?;
                let mut eci = ed
                    .expect(asn1::SEQUENCE, "EncryptedContentInfo")
                    .map_err(m)?
                    .reader();
                eci.expect(asn1::OID, "EncryptedContentInfo contentType")
                    .map_err(m)?;
                let alg = eci
                    .expect(asn1::SEQUENCE, "content encryption")
                    .map_err(m)?;
                self.cost = self.cost.saturating_add(Scheme::parse(ctx, alg)?.cost());
            }
            // Other content types are refused by the walk, with its reason.
        }
        Ok(())
    }

    fn safe_contents(&mut self, ctx: &Ctx<'_>, bytes: &[u8], depth: usize) -> Result<(), Error> {
        let m = |e: Asn1Error| ctx.malformed_msg(format!("PKCS#12 {}", e.0));
        if depth > MAX_NESTING {
            return Err(ctx.malformed_msg("PKCS#12 safeContentsBags nest too deeply"));
        }
        let contents = asn1::single(bytes, asn1::SEQUENCE, "SafeContents").map_err(m)?;
        let mut bags = contents.reader();
        while !bags.is_empty() {
            let mut r = bags.expect(asn1::SEQUENCE, "SafeBag").map_err(m)?.reader();
            let bag_id = r.expect(asn1::OID, "bagId").map_err(m)?;
            let mut wrapper = r.expect(asn1::CONTEXT_0, "bagValue").map_err(m)?.reader();
            let value = wrapper.next("bagValue").map_err(m)?;
            if bag_id.is_oid(&KEY_BAG) || bag_id.is_oid(&SHROUDED_KEY_BAG) {
                self.keys += 1;
                if self.keys > 1 {
                    return Err(several_keys(ctx));
                }
            }
            if bag_id.is_oid(&SHROUDED_KEY_BAG) {
                let (alg, _) = pbe::encrypted_private_key_info(ctx, value.raw)?;
                self.cost = self.cost.saturating_add(Scheme::parse(ctx, alg)?.cost());
            } else if bag_id.is_oid(&SAFE_CONTENTS_BAG) {
                self.safe_contents(ctx, value.raw, depth + 1)?;
            }
        }
        Ok(())
    }
}

/// Only one key is used: a file holding more is refused at the second, before parsing (or
/// decrypting) it.
fn several_keys(ctx: &Ctx<'_>) -> Error {
    ctx.malformed_msg(
        "the PKCS#12 file holds more than one private key; export the one to use into its own file",
    )
}

/// `[0] EXPLICIT OCTET STRING` (the `content` of a `data` ContentInfo): the octets.
fn explicit_octets<'a>(r: &mut Reader<'a>, what: &str) -> Result<&'a [u8], Asn1Error> {
    let wrapper = r.expect(asn1::CONTEXT_0, what)?;
    let octets = asn1::single(wrapper.value, asn1::OCTET_STRING, what)?;
    r.finish(what)?;
    Ok(octets.value)
}

/// The MAC of a password-integrity PFX.
struct Mac<'a> {
    hash: Hash,
    digest: &'a [u8],
    salt: &'a [u8],
    iterations: u64,
}

impl<'a> Mac<'a> {
    fn parse(ctx: &Ctx<'_>, mac_data: Tlv<'a>) -> Result<Mac<'a>, Error> {
        let m = |e: Asn1Error| ctx.malformed_msg(format!("PKCS#12 {}", e.0));
        let mut r = mac_data.reader();
        let digest_info = r.expect(asn1::SEQUENCE, "mac").map_err(m)?;
        let mut di = digest_info.reader();
        let alg = di.expect(asn1::SEQUENCE, "mac algorithm").map_err(m)?;
        let digest = di
            .expect(asn1::OCTET_STRING, "mac digest")
            .map_err(m)?
            .value;
        let salt = r.expect(asn1::OCTET_STRING, "macSalt").map_err(m)?.value;
        let iterations = if r.is_empty() {
            1
        } else {
            r.next("mac iterations")
                .and_then(|t| t.as_u64("mac iterations"))
                .map_err(m)?
        };
        r.finish("macData").map_err(m)?;
        let oid = alg.reader().expect(asn1::OID, "mac algorithm").map_err(m)?;
        if oid.is_oid(&PBMAC1) {
            return Err(ctx.unsupported_algorithm("PKCS#12 PBMAC1 integrity (RFC 9579)"));
        }
        let hash = Hash::from_oid(&oid).ok_or_else(|| {
            ctx.unsupported_algorithm(&format!("PKCS#12 MAC digest {}", oid.oid_string()))
        })?;
        if digest.len() != hash.output_len() {
            return Err(ctx.malformed_msg("PKCS#12 MAC has the wrong length for its digest"));
        }
        pbe::check_iterations(ctx, "PKCS#12 MAC iteration count", iterations)?;
        Ok(Mac {
            hash,
            digest,
            salt,
            iterations,
        })
    }

    /// Asks for the password and checks the MAC with it; returns the password in the encoding
    /// that matched (see [`Password::with_empty_bmp`]).
    fn verify(&self, ctx: &Ctx<'_>, data: &[u8]) -> Result<Password, Error> {
        let password = ctx.password()?;
        // One MAC key (one hash block): the retry with the other empty-password encoding is not
        // charged again.
        ctx.charge_kdf(self.iterations)?;
        let candidates = std::iter::once(password.clone()).chain(password.with_empty_bmp());
        for candidate in candidates {
            let key = pbe::pkcs12_kdf(
                self.hash,
                candidate.bmp(),
                self.salt,
                3,
                self.iterations,
                self.hash.output_len(),
            );
            if self.hash.hmac_verify(&key, data, self.digest) {
                return Ok(candidate);
            }
        }
        Err(ctx.wrong_password())
    }
}

/// Collects keys and certificates from the AuthenticatedSafe.
struct Walker<'c, 'p> {
    ctx: &'c Ctx<'p>,
    /// The password once known (from the MAC check, or asked for at the first encrypted item).
    password: Option<Password>,
    keys: Vec<PrivateKey>,
    certificates: Vec<Vec<u8>>,
}

impl Walker<'_, '_> {
    fn password(&mut self) -> Result<&Password, Error> {
        let password = match self.password.take() {
            Some(p) => p,
            None => self.ctx.password()?.clone(),
        };
        Ok(self.password.insert(password))
    }

    fn m(&self) -> impl Fn(Asn1Error) -> Error + '_ {
        |e| self.ctx.malformed_msg(format!("PKCS#12 {}", e.0))
    }

    fn content_info(&mut self, info: Tlv<'_>) -> Result<(), Error> {
        let mut r = info.reader();
        let content_type = r
            .expect(asn1::OID, "ContentInfo contentType")
            .map_err(self.m())?;
        if content_type.is_oid(&DATA) {
            let bytes = explicit_octets(&mut r, "data").map_err(self.m())?;
            return self.safe_contents(bytes, 0);
        }
        if content_type.is_oid(&ENVELOPED_DATA) {
            return Err(self
                .ctx
                .unsupported_algorithm("PKCS#12 public-key privacy mode (envelopedData)"));
        }
        if !content_type.is_oid(&ENCRYPTED_DATA) {
            return Err(self.ctx.malformed_msg(format!(
                "PKCS#12 content type {}",
                content_type.oid_string()
            )));
        }
        let (scheme, ciphertext) = {
            let m = self.m();
            let wrapper = r.expect(asn1::CONTEXT_0, "encryptedData").map_err(&m)?;
            r.finish("encryptedData").map_err(&m)?;
            let ed = asn1::single(wrapper.value, asn1::SEQUENCE, "EncryptedData").map_err(&m)?;
            let mut ed = ed.reader();
            ed.expect(asn1::INTEGER, "EncryptedData version")
                .map_err(&m)?;
            let eci = ed
                .expect(asn1::SEQUENCE, "EncryptedContentInfo")
                .map_err(&m)?;
            let mut eci = eci.reader();
            eci.expect(asn1::OID, "EncryptedContentInfo contentType")
                .map_err(&m)?;
            let alg = eci
                .expect(asn1::SEQUENCE, "content encryption")
                .map_err(&m)?;
            let ciphertext = encrypted_content(&mut eci).map_err(&m)?;
            (Scheme::parse(self.ctx, alg)?, ciphertext)
        };
        let ctx = self.ctx;
        let plain = scheme.decrypt(ctx, &ciphertext, self.password()?)?;
        // As with PKCS#8, padding that passes by chance leaves noise that does not parse.
        if asn1::single(&plain, asn1::SEQUENCE, "SafeContents").is_err() {
            return Err(self.ctx.wrong_password());
        }
        self.safe_contents(&plain, 0)
    }

    fn safe_contents(&mut self, bytes: &[u8], depth: usize) -> Result<(), Error> {
        if depth > MAX_NESTING {
            return Err(self
                .ctx
                .malformed_msg("PKCS#12 safeContentsBags nest too deeply"));
        }
        let contents = asn1::single(bytes, asn1::SEQUENCE, "SafeContents").map_err(self.m())?;
        let mut bags = contents.reader();
        while !bags.is_empty() {
            let bag = bags.expect(asn1::SEQUENCE, "SafeBag").map_err(self.m())?;
            let mut r = bag.reader();
            let (bag_id, value) = {
                let m = self.m();
                let bag_id = r.expect(asn1::OID, "bagId").map_err(&m)?;
                let wrapper = r.expect(asn1::CONTEXT_0, "bagValue").map_err(&m)?;
                let mut inner = wrapper.reader();
                let value = inner.next("bagValue").map_err(&m)?;
                inner.finish("bagValue").map_err(&m)?;
                if !r.is_empty() {
                    r.expect(asn1::SET, "bagAttributes").map_err(&m)?;
                }
                r.finish("SafeBag").map_err(&m)?;
                (bag_id, value)
            };
            if (bag_id.is_oid(&KEY_BAG) || bag_id.is_oid(&SHROUDED_KEY_BAG))
                && !self.keys.is_empty()
            {
                return Err(several_keys(self.ctx));
            }
            if bag_id.is_oid(&KEY_BAG) {
                let key = pkcs8::parse(self.ctx, value.raw)?;
                self.keys.push(key);
            } else if bag_id.is_oid(&SHROUDED_KEY_BAG) {
                let (alg, _) = pbe::encrypted_private_key_info(self.ctx, value.raw)?;
                Scheme::parse(self.ctx, alg)?;
                let ctx = self.ctx;
                let key = pkcs8::decrypt_with(ctx, value.raw, self.password()?)?;
                self.keys.push(key);
            } else if bag_id.is_oid(&CERT_BAG) {
                if let Some(cert) = cert_bag(value).map_err(self.m())? {
                    // The same cap as a PEM bundle: ordering and chain building stay cheap.
                    if self.certificates.len() == crate::certs::MAX_BUNDLE {
                        return Err(self.ctx.malformed_msg(format!(
                            "the PKCS#12 file holds more than {} certificates",
                            crate::certs::MAX_BUNDLE
                        )));
                    }
                    self.certificates.push(cert.to_vec());
                }
            } else if bag_id.is_oid(&SAFE_CONTENTS_BAG) {
                self.safe_contents(value.raw, depth + 1)?;
            }
            // CRL, secret and unknown bags carry nothing we use.
        }
        Ok(())
    }
}

/// `encryptedContent [0] IMPLICIT OCTET STRING`: primitive, or constructed from OCTET STRING
/// pieces (some writers split it).
fn encrypted_content(r: &mut Reader<'_>) -> Result<Zeroizing<Vec<u8>>, Asn1Error> {
    let t = r.next("encryptedContent")?;
    r.finish("EncryptedContentInfo")?;
    match t.tag {
        asn1::CONTEXT_0_PRIMITIVE => Ok(Zeroizing::new(t.value.to_vec())),
        asn1::CONTEXT_0 => {
            let mut out = Zeroizing::new(Vec::with_capacity(t.value.len()));
            let mut parts = t.reader();
            while !parts.is_empty() {
                out.extend_from_slice(parts.expect(asn1::OCTET_STRING, "encryptedContent")?.value);
            }
            Ok(out)
        }
        _ => Err(Asn1Error(
            "encryptedContent: expected [0] IMPLICIT OCTET STRING".into(),
        )),
    }
}

/// The DER certificate in a CertBag, or None for certificate types other than X.509.
fn cert_bag<'a>(value: Tlv<'a>) -> Result<Option<&'a [u8]>, Asn1Error> {
    let bag = value.expect(asn1::SEQUENCE, "CertBag")?;
    let mut r = bag.reader();
    let cert_id = r.expect(asn1::OID, "certId")?;
    if !cert_id.is_oid(&X509_CERTIFICATE) {
        return Ok(None);
    }
    Ok(Some(explicit_octets(&mut r, "certValue")?))
}

/// The certificate whose public key is `public` first, the others after it in file order.
/// Certificates that do not parse stay in the list: the certificate loader reports them.
fn order_certificates(public: &PublicKey, mut certificates: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let matches = |der: &[u8]| {
        x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, c)| PublicKey::from_spki_der(c.public_key().raw).ok())
            .is_some_and(|k| &k == public)
    };
    if let Some(i) = certificates.iter().position(|c| matches(c)) {
        let leaf = certificates.remove(i);
        certificates.insert(0, leaf);
    }
    certificates
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/testdata/keys/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn order_certificates_puts_the_key_s_certificate_first() {
        let public = PublicKey::from_spki_der(&read("ec-p256.pkcs8.pem.pub.der")).unwrap();
        let ca = read("ca.crt.der");
        let leaf = read("leaf.crt.der");
        let other = read("rsa2048.crt.der");
        let got = order_certificates(
            &public,
            vec![ca.clone(), other.clone(), leaf.clone(), b"junk".to_vec()],
        );
        assert_eq!(got, vec![leaf, ca, other, b"junk".to_vec()]);
    }

    #[test]
    fn order_certificates_keeps_order_without_a_match() {
        let public = PublicKey::from_spki_der(&read("ec-p384.pkcs8.pem.pub.der")).unwrap();
        let certs = vec![read("ca.crt.der"), read("leaf.crt.der")];
        assert_eq!(order_certificates(&public, certs.clone()), certs);
    }
}
