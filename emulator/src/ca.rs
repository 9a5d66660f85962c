//! A small file-backed test CA: root and intermediate CAs, leaf certificates from new keys, CSRs or
//! public keys, and a cumulative CRL. CAs sign with EC or RSA keys; leaves may also hold ML-DSA
//! keys (their SubjectPublicKeyInfo goes into the certificate as given, see [`sign_certificate`]).
//!
//! Owns the CA directory layout (`ca.pem`, `ca.key` 0600, `chain.pem` for intermediates,
//! `issued.txt`, `revoked.txt`, `crl.pem`). It is for tests and demos: it must not be mistaken for
//! a production CA, and it must never print or log private keys. Files reach the disk through
//! [`crate::files`] (keys 0600, never through a link).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams,
    SanType, SerialNumber, SigningKey,
};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::crypto::{self, MlDsaLevel, PublicKey};
use crate::{der, files};

/// What went wrong in a CA operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The directory already holds a CA.
    #[error("{} already holds a CA (ca.key); choose another directory or remove it", dir.display())]
    CaExists {
        /// The CA directory.
        dir: PathBuf,
    },
    /// A file the operation needs could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file holds something other than what it should (no certificate, a key that does not
    /// belong to the certificate, a bad serial list).
    #[error("{}: {reason}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The request cannot be issued as asked: subject, SAN, validity or key type.
    #[error("{0}")]
    Request(String),
    /// The CSR or public key to certify is unusable.
    #[error("{0}")]
    KeyToCertify(String),
    /// The certificate to revoke was not issued by this CA.
    #[error(
        "certificate {subject} (serial {serial}) was not issued by this CA ({ca}); revoke it with its issuer"
    )]
    NotIssuedHere {
        /// The certificate's subject.
        subject: String,
        /// Its serial, base 10.
        serial: String,
        /// This CA's subject.
        ca: String,
    },
    /// A directory could not be created.
    #[error("cannot create {}", dir.display())]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing an output file failed or was refused.
    #[error(transparent)]
    File(#[from] files::Error),
    /// Key generation, encoding or signing failed.
    #[error("{what}: {reason}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The library's words.
        reason: String,
    },
}

impl Error {
    /// True for mistakes in the arguments or input files (exit 2); false when the system or a
    /// library failed (exit 1).
    pub fn is_usage(&self) -> bool {
        match self {
            Error::CaExists { .. }
            | Error::Read { .. }
            | Error::BadFile { .. }
            | Error::Request(_)
            | Error::KeyToCertify(_)
            | Error::NotIssuedHere { .. } => true,
            Error::File(f) => f.is_usage(),
            Error::CreateDir { .. } | Error::Crypto { .. } => false,
        }
    }
}

fn crypto<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Crypto {
        what,
        reason: e.to_string(),
    }
}

fn bad_file(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Key types the CA can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// NIST P-256.
    EcP256,
    /// NIST P-384.
    EcP384,
    /// NIST P-521 (leaf keys only: the CA cannot sign with P-521).
    EcP521,
    /// RSA 2048.
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096.
    Rsa4096,
    /// ML-DSA-44 (leaf keys only: the CA signs with EC or RSA).
    MlDsa44,
    /// ML-DSA-65 (leaf keys only).
    MlDsa65,
    /// ML-DSA-87 (leaf keys only).
    MlDsa87,
}

/// Every key type, in the order the command line lists them.
const KEY_TYPES: [KeyType; 9] = [
    KeyType::EcP256,
    KeyType::EcP384,
    KeyType::EcP521,
    KeyType::Rsa2048,
    KeyType::Rsa3072,
    KeyType::Rsa4096,
    KeyType::MlDsa44,
    KeyType::MlDsa65,
    KeyType::MlDsa87,
];

impl KeyType {
    /// The command-line name (`ec-p256`, `rsa-2048`…).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::EcP521 => "ec-p521",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
            KeyType::MlDsa44 => "ml-dsa-44",
            KeyType::MlDsa65 => "ml-dsa-65",
            KeyType::MlDsa87 => "ml-dsa-87",
        }
    }

    /// The ML-DSA parameter set, for the ML-DSA key types.
    pub fn ml_dsa_level(self) -> Option<MlDsaLevel> {
        match self {
            KeyType::MlDsa44 => Some(MlDsaLevel::MlDsa44),
            KeyType::MlDsa65 => Some(MlDsaLevel::MlDsa65),
            KeyType::MlDsa87 => Some(MlDsaLevel::MlDsa87),
            _ => None,
        }
    }

    fn from_public_key(key: &PublicKey) -> Option<KeyType> {
        match key {
            PublicKey::P256(_) => Some(KeyType::EcP256),
            PublicKey::P384(_) => Some(KeyType::EcP384),
            PublicKey::P521(_) => Some(KeyType::EcP521),
            PublicKey::Rsa { bits: 2048, .. } => Some(KeyType::Rsa2048),
            PublicKey::Rsa { bits: 3072, .. } => Some(KeyType::Rsa3072),
            PublicKey::Rsa { bits: 4096, .. } => Some(KeyType::Rsa4096),
            PublicKey::Rsa { .. } => None,
            PublicKey::MlDsa { level, .. } => Some(match level {
                MlDsaLevel::MlDsa44 => KeyType::MlDsa44,
                MlDsaLevel::MlDsa65 => KeyType::MlDsa65,
                MlDsaLevel::MlDsa87 => KeyType::MlDsa87,
            }),
        }
    }
}

impl FromStr for KeyType {
    type Err = Error;
    fn from_str(s: &str) -> Result<KeyType, Error> {
        KEY_TYPES
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = KEY_TYPES.iter().map(|k| k.name()).collect();
                Error::Request(format!(
                    "unknown key type {s:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// A private key held as PKCS#8 DER; its `Debug` never shows the key.
struct SecretKeyDer(Vec<u8>);

impl Drop for SecretKeyDer {
    fn drop(&mut self) {
        // Best effort: the key lives in test directories anyway, but memory dumps should not.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// A generated key: PKCS#8 DER (secret) and SubjectPublicKeyInfo DER.
struct GeneratedKey {
    pkcs8: SecretKeyDer,
    spki: Vec<u8>,
}

fn generate_key(kind: KeyType) -> Result<GeneratedKey, Error> {
    use p521::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let mut rng = getrandom::rand_core::UnwrapErr(getrandom::SysRng);
    let (pkcs8, spki) = match kind {
        KeyType::EcP256 | KeyType::EcP384 => {
            let alg = if kind == KeyType::EcP256 {
                &rcgen::PKCS_ECDSA_P256_SHA256
            } else {
                &rcgen::PKCS_ECDSA_P384_SHA384
            };
            let kp = KeyPair::generate_for(alg).map_err(crypto("cannot generate an EC key"))?;
            (kp.serialize_der(), kp.subject_public_key_info())
        }
        KeyType::EcP521 => {
            let sk =
                <p521::SecretKey as p521::elliptic_curve::Generate>::generate_from_rng(&mut rng);
            let der = sk
                .to_pkcs8_der()
                .map_err(crypto("cannot encode the P-521 key"))?;
            let spki = sk
                .public_key()
                .to_public_key_der()
                .map_err(crypto("cannot encode the P-521 public key"))?;
            (der.as_bytes().to_vec(), spki.as_bytes().to_vec())
        }
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
            let bits = match kind {
                KeyType::Rsa2048 => 2048,
                KeyType::Rsa3072 => 3072,
                _ => 4096,
            };
            let sk = rsa::RsaPrivateKey::new(&mut rng, bits)
                .map_err(crypto("cannot generate an RSA key"))?;
            let der = rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(&sk)
                .map_err(crypto("cannot encode the RSA key"))?;
            let spki =
                rsa::pkcs8::EncodePublicKey::to_public_key_der(&rsa::RsaPublicKey::from(&sk))
                    .map_err(crypto("cannot encode the RSA public key"))?;
            (der.as_bytes().to_vec(), spki.as_bytes().to_vec())
        }
        KeyType::MlDsa44 => ml_dsa_key::<ml_dsa::MlDsa44>()?,
        KeyType::MlDsa65 => ml_dsa_key::<ml_dsa::MlDsa65>()?,
        KeyType::MlDsa87 => ml_dsa_key::<ml_dsa::MlDsa87>()?,
    };
    Ok(GeneratedKey {
        pkcs8: SecretKeyDer(pkcs8),
        spki,
    })
}

/// A new ML-DSA key from a random seed: its PKCS#8 in the seed-only form (`privateKey` holds
/// `[0] IMPLICIT OCTET STRING` with the 32-byte seed, as Python `cryptography` writes it) and its
/// SubjectPublicKeyInfo (the parameter set's OID, no parameters, the encoded key as BIT STRING).
fn ml_dsa_key<P>() -> Result<(Vec<u8>, Vec<u8>), Error>
where
    P: ml_dsa::MlDsaParams,
    P: ml_dsa::pkcs8::spki::AssociatedAlgorithmIdentifier<
            Params = ml_dsa::pkcs8::der::AnyRef<'static>,
        >,
{
    use ml_dsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
    let mut seed = ml_dsa::Seed::default();
    fill_random(&mut seed);
    let sk = ml_dsa::SigningKey::<P>::from_seed(&seed);
    zeroize::Zeroize::zeroize(seed.as_mut_slice());
    let pkcs8 = sk
        .to_pkcs8_der()
        .map_err(crypto("cannot encode the ML-DSA key"))?;
    let spki = ml_dsa::signature::Keypair::verifying_key(&sk)
        .to_public_key_der()
        .map_err(crypto("cannot encode the ML-DSA public key"))?;
    Ok((pkcs8.as_bytes().to_vec(), spki.as_bytes().to_vec()))
}

/// A CA: its certificate and signing key, stored in a directory.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    cert_der: Vec<u8>,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("dir", &self.dir)
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Where the certified public key comes from.
#[derive(Clone)]
pub enum KeySource {
    /// Generate a new key of this type; its PKCS#8 PEM is returned in [`Issued::key_pem`].
    NewKey(KeyType),
    /// A PKCS#10 request (PEM or DER); its self-signature is verified first.
    Csr(Vec<u8>),
    /// A `PUBLIC KEY` (SubjectPublicKeyInfo) PEM.
    PublicKeyPem(String),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::NewKey(k) => write!(f, "NewKey({})", k.name()),
            KeySource::Csr(b) => write!(f, "Csr({} bytes)", b.len()),
            KeySource::PublicKeyPem(_) => write!(f, "PublicKeyPem(..)"),
        }
    }
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// Subject as `CN=…,O=…` (CN, O, OU, C, ST, L; no escaped commas).
    pub subject: String,
    /// The certified key.
    pub key: KeySource,
    /// Subject alternative names: `dns:…`, `uri:…`, `ip:…`, `email:…`.
    pub sans: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// keyUsage digitalSignature (leaves need it).
    pub digital_signature: bool,
    /// Issue a CA certificate (basicConstraints CA:TRUE, keyCertSign, cRLSign).
    pub is_ca: bool,
}

impl IssueRequest {
    /// A leaf request valid from an hour ago for 30 days, with digitalSignature.
    pub fn new(subject: &str, key: KeySource) -> Self {
        let now = OffsetDateTime::now_utc();
        IssueRequest {
            subject: subject.to_string(),
            key,
            sans: Vec::new(),
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(30),
            digital_signature: true,
            is_ca: false,
        }
    }
}

/// An issued certificate.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The new private key as PKCS#8 PEM, when the CA generated it.
    pub key_pem: Option<String>,
    /// The serial number in base 10 (as in `Credential=`).
    pub serial_decimal: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("serial_decimal", &self.serial_decimal)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// Writes a private key to `path` as a new 0600 file renamed into place; refuses a symbolic
/// link or special file there ([`files::write_private`]).
pub fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    Ok(files::write_private(path, contents.as_bytes())?)
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes);
    // Positive and exactly 16 bytes: no sign bit, no leading zero byte.
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

fn parse_subject(subject: &str) -> Result<DistinguishedName, Error> {
    let mut dn = DistinguishedName::new();
    for part in subject.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| {
            Error::Request(format!("subject component {part:?} is not NAME=value"))
        })?;
        let ty = match k.trim().to_ascii_uppercase().as_str() {
            "CN" => DnType::CommonName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            "C" => DnType::CountryName,
            "ST" => DnType::StateOrProvinceName,
            "L" => DnType::LocalityName,
            other => {
                return Err(Error::Request(format!(
                    "subject attribute {other:?} is not supported (use CN, O, OU, C, ST, L)"
                )));
            }
        };
        dn.push(ty, v.trim());
    }
    if dn.iter().next().is_none() {
        return Err(Error::Request(format!(
            "subject {subject:?} is empty (expected e.g. \"CN=host,O=Example\")"
        )));
    }
    Ok(dn)
}

fn parse_san(san: &str) -> Result<SanType, Error> {
    let (kind, value) = san.split_once(':').ok_or_else(|| {
        Error::Request(format!(
            "SAN {san:?} has no kind (expected dns:, uri:, ip: or email:)"
        ))
    })?;
    let ia5 = |v: &str| {
        rcgen::string::Ia5String::try_from(v.to_string())
            .map_err(|_| Error::Request(format!("SAN {san:?} is not ASCII")))
    };
    Ok(match kind.to_ascii_lowercase().as_str() {
        "dns" => SanType::DnsName(ia5(value)?),
        "uri" => SanType::URI(ia5(value)?),
        "email" => SanType::Rfc822Name(ia5(value)?),
        "ip" => SanType::IpAddress(
            value
                .parse()
                .map_err(|_| Error::Request(format!("SAN {san:?} is not an IP address")))?,
        ),
        other => {
            return Err(Error::Request(format!(
                "SAN kind {other:?} is not supported (use dns, uri, ip or email)"
            )));
        }
    })
}

/// Stands in for the subject key while rcgen builds the TBS; the real SubjectPublicKeyInfo is
/// spliced in afterwards so that any key type (P-521, any RSA size, ML-DSA, which rcgen does not
/// know as a subject key) can be certified, all through this one path.
struct Placeholder(Vec<u8>);

impl PublicKeyData for Placeholder {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Builds the certificate for `params` over `spki_der`, signed by `issuer`.
fn sign_certificate(
    params: &CertificateParams,
    spki_der: &[u8],
    issuer: &Issuer<'_, &KeyPair>,
) -> Result<Vec<u8>, Error> {
    let draft = params
        .signed_by(&Placeholder(vec![4u8; 65]), issuer)
        .map_err(crypto("cannot build the certificate"))?;
    let broken = |e: der::SpliceError| Error::Crypto {
        what: "internal error",
        reason: format!("rcgen's certificate: {e}"),
    };
    let new_tbs = der::replace_spki(draft.der(), spki_der).map_err(|e| match e {
        der::SpliceError::PublicKey(e) => {
            Error::KeyToCertify(format!("public key is not DER: {e}"))
        }
        der::SpliceError::Layout(_) => broken(e),
    })?;
    let signature = issuer
        .key()
        .sign(&new_tbs)
        .map_err(crypto("cannot sign the certificate"))?;
    der::assemble(draft.der(), &new_tbs, &signature).map_err(broken)
}

fn key_identifier(spki_der: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref()[..20].to_vec()
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn signing_key(kind: KeyType, pkcs8: &SecretKeyDer) -> Result<KeyPair, Error> {
    let alg = match kind {
        KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        KeyType::EcP521 => {
            return Err(Error::Request(
                "a CA key cannot be ec-p521 (this CA signs with ring, which has no P-521); use ec-p256, ec-p384 or rsa-*".into(),
            ));
        }
        KeyType::MlDsa44 | KeyType::MlDsa65 | KeyType::MlDsa87 => {
            return Err(Error::Request(format!(
                "a CA key cannot be {} (this CA signs certificates and CRLs with ECDSA or RSA; ML-DSA keys are for leaf certificates); use ec-p256, ec-p384 or rsa-*",
                kind.name()
            )));
        }
    };
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.0.as_slice());
    KeyPair::from_pkcs8_der_and_sign_algo(&der, alg)
        .map_err(crypto("generated CA key is not usable for signing"))
}

impl Ca {
    /// Creates a self-signed root CA in `dir` (created if missing; refused if it already holds one).
    pub fn init(dir: &Path, key_type: KeyType, cn: &str) -> Result<Ca, Error> {
        refuse_existing_ca(dir)?;
        let generated = generate_key(key_type)?;
        let key = signing_key(key_type, &generated.pkcs8)?;
        prepare_dir(dir)?;
        let now = OffsetDateTime::now_utc();
        let params = ca_params(cn, now, &generated.spki);
        let cert = params
            .self_signed(&key)
            .map_err(crypto("cannot self-sign the CA certificate"))?;
        let ca = Ca {
            dir: dir.to_path_buf(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
        };
        ca.save(&generated, None)?;
        Ok(ca)
    }

    /// Loads a CA from `dir` (`ca.pem`, `ca.key`).
    pub fn load(dir: &Path) -> Result<Ca, Error> {
        let cert_path = dir.join("ca.pem");
        let cert_pem = read(&cert_path)?;
        let cert_der = crate::pem::decode_label(&cert_pem, "CERTIFICATE")
            .map_err(|e| bad_file(&cert_path, e))?
            .into_iter()
            .next()
            .ok_or_else(|| bad_file(&cert_path, "holds no CERTIFICATE"))?;
        let key_path = dir.join("ca.key");
        let key_pem = read(&key_path)?;
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad_file(&key_path, format!("not a usable PKCS#8 CA key: {e}")))?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| bad_file(&cert_path, format!("not a certificate: {e}")))?;
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(bad_file(
                &key_path,
                format!(
                    "does not belong to the certificate in {}",
                    cert_path.display()
                ),
            ));
        }
        Ok(Ca {
            dir: dir.to_path_buf(),
            cert_pem,
            cert_der,
            key,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.cert_pem.clone()
    }

    /// The CA's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates an intermediate CA in `dir`, signed by this CA, with a key of this CA's type.
    /// `dir/chain.pem` holds the intermediates up to (not including) the root, issuer order.
    pub fn intermediate(&self, dir: &Path, cn: &str) -> Result<Ca, Error> {
        refuse_existing_ca(dir)?;
        let cert_path = self.dir.join("ca.pem");
        let (_, own) = X509Certificate::from_der(&self.cert_der)
            .map_err(|e| bad_file(&cert_path, format!("not a certificate: {e}")))?;
        let own_key =
            PublicKey::from_spki(own.public_key()).map_err(|e| bad_file(&cert_path, e))?;
        let key_type = KeyType::from_public_key(&own_key).ok_or_else(|| {
            bad_file(
                &cert_path,
                "the CA's key type cannot be reproduced for an intermediate",
            )
        })?;
        let generated = generate_key(key_type)?;
        let key = signing_key(key_type, &generated.pkcs8)?;
        prepare_dir(dir)?;
        let now = OffsetDateTime::now_utc();
        let params = ca_params(cn, now, &generated.spki);
        let der = sign_certificate(&params, &generated.spki, &self.issuer()?)?;
        let cert_pem = crate::pem::encode("CERTIFICATE", &der);
        let parent_chain = std::fs::read_to_string(self.dir.join("chain.pem")).unwrap_or_default();
        let ca = Ca {
            dir: dir.to_path_buf(),
            cert_pem: cert_pem.clone(),
            cert_der: der,
            key,
        };
        ca.save(&generated, Some(format!("{cert_pem}{parent_chain}")))?;
        Ok(ca)
    }

    fn issuer(&self) -> Result<Issuer<'_, &KeyPair>, Error> {
        Issuer::from_ca_cert_der(&self.cert_der.clone().into(), &self.key).map_err(|e| {
            bad_file(
                &self.dir.join("ca.pem"),
                format!("cannot be used as an issuer: {e}"),
            )
        })
    }

    fn save(&self, key: &GeneratedKey, chain: Option<String>) -> Result<(), Error> {
        write_private(
            &self.dir.join("ca.key"),
            &crate::pem::encode("PRIVATE KEY", &key.pkcs8.0),
        )?;
        write_file(&self.dir.join("ca.pem"), &self.cert_pem)?;
        if let Some(chain) = chain {
            write_file(&self.dir.join("chain.pem"), &chain)?;
        }
        Ok(())
    }

    /// Issues a certificate.
    pub fn issue(&self, req: &IssueRequest) -> Result<Issued, Error> {
        if req.not_after <= req.not_before {
            return Err(Error::Request(
                "not_after must be later than not_before".into(),
            ));
        }
        let (spki, key_pem) = match &req.key {
            KeySource::NewKey(kind) => {
                let g = generate_key(*kind)?;
                (
                    g.spki.clone(),
                    Some(crate::pem::encode("PRIVATE KEY", &g.pkcs8.0)),
                )
            }
            KeySource::Csr(bytes) => (csr_public_key(bytes)?, None),
            KeySource::PublicKeyPem(pem) => {
                let der = crate::pem::decode_label(pem, "PUBLIC KEY")
                    .map_err(|e| Error::KeyToCertify(format!("public key PEM: {e}")))?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        Error::KeyToCertify("public key PEM holds no PUBLIC KEY block".into())
                    })?;
                let (_, spki) = SubjectPublicKeyInfo::from_der(&der).map_err(|e| {
                    Error::KeyToCertify(format!("public key is not a SubjectPublicKeyInfo: {e}"))
                })?;
                PublicKey::from_spki(&spki).map_err(|e| {
                    Error::KeyToCertify(format!("public key cannot be certified: {e}"))
                })?;
                (der, None)
            }
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = parse_subject(&req.subject)?;
        params.subject_alt_names = req
            .sans
            .iter()
            .map(|s| parse_san(s))
            .collect::<Result<_, _>>()?;
        params.not_before = req.not_before;
        params.not_after = req.not_after;
        params.serial_number = Some(random_serial());
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&spki));
        params.use_authority_key_identifier_extension = true;
        if req.is_ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            if req.digital_signature {
                params.key_usages.push(KeyUsagePurpose::DigitalSignature);
            }
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = if req.digital_signature {
                vec![KeyUsagePurpose::DigitalSignature]
            } else {
                vec![KeyUsagePurpose::KeyEncipherment]
            };
        }
        let der = sign_certificate(&params, &spki, &self.issuer()?)?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(crypto("internal error: issued certificate does not parse"))?;
        let serial_decimal = cert.tbs_certificate.serial.to_string();
        let index_path = self.dir.join("issued.txt");
        let mut index = files::open_append(&index_path)?;
        writeln!(index, "{}\t{}", hex::encode(cert.raw_serial()), req.subject).map_err(
            |source| files::Error::Write {
                path: index_path.clone(),
                source,
            },
        )?;
        Ok(Issued {
            cert_pem: crate::pem::encode("CERTIFICATE", &der),
            key_pem,
            serial_decimal,
        })
    }

    /// Revokes a certificate issued by this CA; rewrites the cumulative `crl.pem` and returns its path.
    pub fn revoke(&self, cert_pem: &str) -> Result<PathBuf, Error> {
        let der = crate::pem::decode_label(cert_pem, "CERTIFICATE")
            .map_err(|e| Error::Request(format!("certificate to revoke: {e}")))?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Request("certificate to revoke: no CERTIFICATE block".into()))?;
        let (_, cert) = X509Certificate::from_der(&der)
            .map_err(|e| Error::Request(format!("certificate to revoke does not parse: {e}")))?;
        let cert_path = self.dir.join("ca.pem");
        let (_, own) = X509Certificate::from_der(&self.cert_der)
            .map_err(|e| bad_file(&cert_path, format!("not a certificate: {e}")))?;
        let own_key =
            PublicKey::from_spki(own.public_key()).map_err(|e| bad_file(&cert_path, e))?;
        if cert.issuer().as_raw() != own.subject().as_raw()
            || crypto::verify_signed_object(&der, &cert.signature_algorithm, &own_key).is_err()
        {
            return Err(Error::NotIssuedHere {
                subject: cert.subject().to_string(),
                serial: cert.tbs_certificate.serial.to_string(),
                ca: own.subject().to_string(),
            });
        }
        let revoked_path = self.dir.join("revoked.txt");
        let mut serials: Vec<String> = std::fs::read_to_string(&revoked_path)
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(String::new())
                } else {
                    Err(Error::Read {
                        path: revoked_path.clone(),
                        source: e,
                    })
                }
            })?
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect();
        let serial_hex = hex::encode(cert.raw_serial());
        if !serials.contains(&serial_hex) {
            serials.push(serial_hex);
        }
        let now = OffsetDateTime::now_utc();
        let mut revoked_certs = Vec::new();
        for s in &serials {
            let bytes = hex::decode(s)
                .map_err(|_| bad_file(&revoked_path, format!("holds a bad serial {s:?}")))?;
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: now,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let crl = CertificateRevocationListParams {
            this_update: now - time::Duration::minutes(5),
            next_update: now + time::Duration::days(30),
            crl_number: SerialNumber::from_slice(&(serials.len() as u64).to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::PreSpecified(key_identifier(own.public_key().raw)),
        }
        .signed_by(&self.issuer()?)
        .map_err(crypto("cannot sign the CRL"))?;
        write_file(&revoked_path, &format!("{}\n", serials.join("\n")))?;
        let crl_path = self.dir.join("crl.pem");
        write_file(&crl_path, &crate::pem::encode("X509 CRL", crl.der()))?;
        Ok(crl_path)
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), Error> {
    Ok(files::write_public(path, contents.as_bytes())?)
}

/// A CA directory is never reused: its `ca.key` (a file, or a link to one, dangling or not) says a
/// CA lives there, and overwriting it would orphan every certificate the old key issued.
fn refuse_existing_ca(dir: &Path) -> Result<(), Error> {
    if std::fs::symlink_metadata(dir.join("ca.key")).is_ok() {
        return Err(Error::CaExists {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn prepare_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::CreateDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    refuse_existing_ca(dir)
}

fn ca_params(cn: &str, now: OffsetDateTime, spki: &[u8]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    params.serial_number = Some(random_serial());
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(spki));
    params.use_authority_key_identifier_extension = true;
    params
}

fn csr_public_key(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = |m: String| Error::KeyToCertify(m);
    let der = if bytes.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(bytes).map_err(|_| bad("CSR PEM is not UTF-8".into()))?;
        crate::pem::decode_all(text)
            .map_err(|e| bad(format!("CSR PEM: {e}")))?
            .into_iter()
            .find(|(l, _)| l == "CERTIFICATE REQUEST" || l == "NEW CERTIFICATE REQUEST")
            .map(|(_, d)| d)
            .ok_or_else(|| bad("CSR PEM holds no CERTIFICATE REQUEST block".into()))?
    } else {
        bytes.to_vec()
    };
    let (_, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| bad(format!("CSR does not parse: {e}")))?;
    let spki = &csr.certification_request_info.subject_pki;
    let key =
        PublicKey::from_spki(spki).map_err(|e| bad(format!("CSR key cannot be certified: {e}")))?;
    if let PublicKey::MlDsa { level, .. } = key {
        return Err(bad(format!(
            "the CSR is for an {level} key, and this CA checks CSR self-signatures made with EC or RSA keys only; certify the key from its public key instead (`ca issue --public-key`, IssueRequest with KeySource::PublicKeyPem)"
        )));
    }
    crypto::verify_signed_object(&der, &csr.signature_algorithm, &key)
        .map_err(|e| bad(format!("CSR self-signature is invalid ({e}); refusing to certify a key whose possession is not proven")))?;
    Ok(spki.raw.to_vec())
}

/// Fills `buf` from the operating system's random source. The emulator cannot issue serials or
/// credentials without one, and on Linux the source only fails before the pool is first seeded at boot.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source is available");
}
