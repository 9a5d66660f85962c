//! X.509 certificates: loading PEM bundles, the fields the protocol needs, and chain ordering.
//!
//! Owns parsing (x509-parser), issuer checks by name and signature, and the order of the chain sent in
//! `X-Amz-X509-Chain` (leaf first, then the certificate that issued it, …; at most [`MAX_CHAIN`]).
//! No network and no trust decisions: revocation, validity and the trust anchor are the service's
//! business; this module only avoids sending a chain that cannot work, and names what about a leaf
//! the service refuses ([`leaf_problems`], for warnings and hints; it never refuses by itself).

use crate::keys::PublicKeyDer as _;
use crate::keys::{Curve, PublicKey};
use crate::userfile;
use base64::Engine as _;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::X509Name;

/// Largest number of intermediates the service accepts in `X-Amz-X509-Chain` (the core's limit).
pub const MAX_CHAIN: usize = rolesanywhere_core::sigv4x509::MAX_CHAIN;

/// Most certificates read from one PEM file (`--certificate`, `--intermediates`): a chain has at
/// most [`MAX_CHAIN`] intermediates, so a hundred leaves room for bundles with unrelated CAs while a
/// hostile file cannot make us parse and compare without end.
pub const MAX_BUNDLE: usize = 100;

/// A parsed certificate with the fields the agent uses.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    public_key: PublicKey,
    serial: Vec<u8>,
    subject: String,
    issuer: String,
    /// The subject and issuer names as encoded: chain building matches these bytes.
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
    version: u32,
    is_ca: bool,
    key_usage_digital_signature: Option<bool>,
    signature_algorithm: String,
}

/// Certificate problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A certificate file could not be read (missing, not a regular file, too large).
    #[error("cannot read certificate file {}", crate::text::path(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: userfile::Error,
    },
    /// More certificates than any chain or bundle needs.
    #[error(
        "{what} holds more than {MAX_BUNDLE} certificates; give only the leaf and the \
         intermediates that issued it"
    )]
    TooManyCertificates {
        /// The file or source.
        what: String,
    },
    /// The source holds no `CERTIFICATE` PEM block.
    #[error("{what} holds no CERTIFICATE PEM block{hint}")]
    NoCertificate {
        /// The file or source.
        what: String,
        /// A hint when the data looks like something else (e.g. DER).
        hint: &'static str,
    },
    /// A `CERTIFICATE` PEM block that is not valid PEM.
    #[error("malformed PEM block {index} (line {line}) in {what}: {reason}")]
    Pem {
        /// The file or source.
        what: String,
        /// 1-based position of the block.
        index: usize,
        /// 1-based line where the problem was found.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// DER that is not an X.509 certificate.
    #[error("cannot parse {what} as an X.509 certificate")]
    Parse {
        /// Which certificate (`certificate 2 in chain.pem`).
        what: String,
        /// The parser's reason.
        #[source]
        source: X509Error,
    },
    /// Bytes after the certificate's DER.
    #[error("{what} has {len} bytes of trailing data after the certificate")]
    TrailingData {
        /// Which certificate.
        what: String,
        /// Number of extra bytes.
        len: usize,
    },
    /// A key Roles Anywhere cannot use (or that is malformed).
    #[error("{what} has an unusable public key")]
    PublicKey {
        /// Which certificate.
        what: String,
        /// Why.
        #[source]
        source: crate::keys::Error,
    },
    /// More intermediates than the service accepts.
    #[error(
        "certificate chain above {leaf} has more than {MAX_CHAIN} intermediates, at most \
         {MAX_CHAIN} are accepted; leave out certificates the trust anchor already holds"
    )]
    ChainTooLong {
        /// The leaf's subject.
        leaf: String,
    },
}

/// A certificate file or chain that cannot be used is the user's to fix.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}

impl Certificate {
    /// Parses DER.
    pub fn from_der(der: Vec<u8>) -> Result<Certificate, Error> {
        Self::parse(der, "certificate")
    }

    fn parse(der: Vec<u8>, what: &str) -> Result<Certificate, Error> {
        let (rest, x509) = X509Certificate::from_der(&der).map_err(|e| Error::Parse {
            what: what.to_string(),
            source: match e {
                x509_parser::nom::Err::Incomplete(_) => X509Error::InvalidCertificate,
                x509_parser::nom::Err::Error(e) | x509_parser::nom::Err::Failure(e) => e,
            },
        })?;
        if !rest.is_empty() {
            return Err(Error::TrailingData {
                what: what.to_string(),
                len: rest.len(),
            });
        }
        let public_key =
            PublicKey::from_spki_der(x509.public_key().raw).map_err(|source| Error::PublicKey {
                what: what.to_string(),
                source,
            })?;
        let serial = x509.tbs_certificate.serial.to_bytes_be();
        let key_usage_digital_signature = match x509.key_usage() {
            Ok(Some(ku)) => Some(ku.value.digital_signature()),
            Ok(None) => None,
            // A duplicated keyUsage cannot be relied on: report it as not allowing signatures.
            Err(_) => Some(false),
        };
        let oid = &x509.signature_algorithm.algorithm;
        let signature_algorithm =
            x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
        let cert = Certificate {
            public_key,
            serial,
            subject: rfc4514(x509.subject()),
            issuer: rfc4514(x509.issuer()),
            subject_raw: x509.subject().as_raw().to_vec(),
            issuer_raw: x509.issuer().as_raw().to_vec(),
            not_before: x509.validity().not_before.to_datetime(),
            not_after: x509.validity().not_after.to_datetime(),
            // x509-parser takes any 32-bit version field: 0xFFFFFFFF must not overflow.
            version: x509.version().0.saturating_add(1),
            is_ca: x509.is_ca(),
            key_usage_digital_signature,
            signature_algorithm,
            der: Vec::new(),
        };
        Ok(Certificate { der, ..cert })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Standard padded base64 of the DER (the `X-Amz-X509` form).
    pub fn der_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.der)
    }
    /// Serial number in base 10 (as `Credential=` and `read-certificate-data` use it).
    pub fn serial_decimal(&self) -> String {
        x509_parser::num_bigint::BigUint::from_bytes_be(&self.serial).to_str_radix(10)
    }
    /// Serial number in lower-case hex, even length.
    pub fn serial_hex(&self) -> String {
        let first = self.serial.iter().position(|&b| b != 0);
        match first {
            Some(i) => hex::encode(&self.serial[i..]),
            None => "00".to_string(),
        }
    }
    /// The subject public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    /// Subject DN in RFC 4514 form.
    pub fn subject(&self) -> String {
        self.subject.clone()
    }
    /// Issuer DN in RFC 4514 form.
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }
    /// Start of validity.
    pub fn not_before(&self) -> time::OffsetDateTime {
        self.not_before
    }
    /// End of validity.
    pub fn not_after(&self) -> time::OffsetDateTime {
        self.not_after
    }
    /// X.509 version as written in documents (1, 2 or 3); the service wants 3 for a leaf.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// True when basicConstraints says CA:true.
    pub fn is_ca(&self) -> bool {
        self.is_ca
    }
    /// Whether keyUsage allows digitalSignature; `None` when the certificate has no keyUsage.
    pub fn key_usage_digital_signature(&self) -> Option<bool> {
        self.key_usage_digital_signature
    }
    /// The issuer's signature algorithm (`sha256WithRSAEncryption`, `ecdsa-with-SHA256`, or the OID).
    pub fn signature_algorithm_name(&self) -> &str {
        &self.signature_algorithm
    }
    /// True when the issuer signed with MD5 or SHA-1, which the service rejects for a leaf.
    pub fn has_weak_signature_hash(&self) -> bool {
        let name = self.signature_algorithm.to_ascii_lowercase();
        name.contains("md5") || name.contains("sha1") || name.contains("sha-1")
    }
    /// The subject's attributes in certificate order: `(dotted OID, value)`; values that are not
    /// text (no string type x509-parser can read) are left out.
    pub fn subject_attributes(&self) -> Vec<(String, String)> {
        self.parsed()
            .map(|x| name_attributes(x.subject()))
            .unwrap_or_default()
    }
    /// The issuer's attributes, as [`Certificate::subject_attributes`].
    pub fn issuer_attributes(&self) -> Vec<(String, String)> {
        self.parsed()
            .map(|x| name_attributes(x.issuer()))
            .unwrap_or_default()
    }
    /// The subject alternative names of three kinds, each in certificate order (empty when the
    /// certificate has no such extension, or a duplicated one).
    pub fn subject_alt_names(&self) -> AltNames {
        let mut out = AltNames::default();
        let Some(x) = self.parsed() else {
            return out;
        };
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for name in &san.value.general_names {
                use x509_parser::extensions::GeneralName;
                match name {
                    GeneralName::DNSName(d) => out.dns.push((*d).to_string()),
                    GeneralName::URI(u) => out.uri.push((*u).to_string()),
                    GeneralName::DirectoryName(n) => out.directory_names.push(name_attributes(n)),
                    _ => {}
                }
            }
        }
        out
    }
    /// The certificate parsed again from its DER (it parsed once, so this only fails on a bug).
    fn parsed(&self) -> Option<X509Certificate<'_>> {
        X509Certificate::from_der(&self.der).ok().map(|(_, x)| x)
    }
    /// True when `issuer`'s subject is this certificate's issuer and its key verifies this signature.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        // Both parsed in `parse`; failing again would mean memory corruption, so "no" is safe.
        let (Ok((_, child)), Ok((_, parent))) = (
            X509Certificate::from_der(&self.der),
            X509Certificate::from_der(&issuer.der),
        ) else {
            return false;
        };
        // Names are compared as encoded: issuers copy their subject bytes into what they sign, and
        // RFC 5280 name-matching rules would only widen what we send, not what the service accepts.
        if child.issuer().as_raw() != parent.subject().as_raw() {
            return false;
        }
        match child.verify_signature(Some(parent.public_key())) {
            Ok(()) => true,
            // ring has no P-521 and no ECDSA with SHA-512: check those with RustCrypto.
            Err(X509Error::SignatureUnsupportedAlgorithm) => verify_ecdsa_fallback(
                &child.signature_algorithm.algorithm.to_id_string(),
                child.tbs_certificate.as_ref(),
                &child.signature_value.data,
                issuer.public_key(),
            ),
            Err(_) => false,
        }
    }

    /// True when the certificate is self-signed (a root: the trust anchor's business, not the chain's).
    pub fn is_self_signed(&self) -> bool {
        // The name check first: it is cheap, and most certificates fail it.
        self.subject_raw == self.issuer_raw && self.is_issued_by(self)
    }
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial_decimal())
            .field("key", &self.public_key)
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

/// What the signing core reads of a certificate.
impl rolesanywhere_core::sigv4x509::CertificateDer for Certificate {
    fn der(&self) -> &[u8] {
        Certificate::der(self)
    }
    fn serial_decimal(&self) -> String {
        Certificate::serial_decimal(self)
    }
}

/// ECDSA signatures ring cannot check: P-521 with any SHA-2, and any curve with SHA-512.
pub(crate) fn verify_ecdsa_fallback(
    sig_oid: &str,
    tbs: &[u8],
    sig: &[u8],
    key: &PublicKey,
) -> bool {
    use ecdsa::signature::hazmat::PrehashVerifier as _;
    use sha2::Digest as _;
    let prehash = match sig_oid {
        "1.2.840.10045.4.3.2" => sha2::Sha256::digest(tbs).to_vec(),
        "1.2.840.10045.4.3.3" => sha2::Sha384::digest(tbs).to_vec(),
        "1.2.840.10045.4.3.4" => sha2::Sha512::digest(tbs).to_vec(),
        _ => return false,
    };
    let PublicKey::Ec { curve, point } = key else {
        return false;
    };
    match curve {
        Curve::P256 => {
            let (Ok(k), Ok(s)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p256::ecdsa::DerSignature::from_bytes(sig),
            ) else {
                return false;
            };
            k.verify_prehash(&prehash, &s).is_ok()
        }
        Curve::P384 => {
            let (Ok(k), Ok(s)) = (
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p384::ecdsa::DerSignature::from_bytes(sig),
            ) else {
                return false;
            };
            k.verify_prehash(&prehash, &s).is_ok()
        }
        Curve::P521 => {
            let (Ok(k), Ok(s)) = (
                p521::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p521::ecdsa::DerSignature::from_bytes(sig),
            ) else {
                return false;
            };
            k.verify_prehash(&prehash, &s).is_ok()
        }
    }
}

/// RFC 4514: last RDN first, `+` inside an RDN, short names for the usual attributes, `#hex` for the
/// rest.
/// Subject alternative names of the kinds the service's attribute mapping reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    /// `dNSName` values.
    pub dns: Vec<String>,
    /// `uniformResourceIdentifier` values.
    pub uri: Vec<String>,
    /// `directoryName` values, each as its attributes `(dotted OID, value)`.
    pub directory_names: Vec<Vec<(String, String)>>,
}

/// Every attribute of `name` with a text value, in certificate order (RDN by RDN, then within a
/// multi-valued RDN as encoded).
fn name_attributes(name: &X509Name<'_>) -> Vec<(String, String)> {
    name.iter_attributes()
        .filter_map(|atv| {
            let value = atv.as_str().ok()?;
            Some((atv.attr_type().to_id_string(), value.to_string()))
        })
        .collect()
}

fn rfc4514(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let short = match oid.as_str() {
                        "2.5.4.3" => Some("CN"),
                        "2.5.4.7" => Some("L"),
                        "2.5.4.8" => Some("ST"),
                        "2.5.4.10" => Some("O"),
                        "2.5.4.11" => Some("OU"),
                        "2.5.4.6" => Some("C"),
                        "2.5.4.9" => Some("STREET"),
                        "0.9.2342.19200300.100.1.25" => Some("DC"),
                        "0.9.2342.19200300.100.1.1" => Some("UID"),
                        _ => None,
                    };
                    match (short, atv.as_str()) {
                        (Some(short), Ok(value)) => format!("{short}={}", escape_4514(value)),
                        _ => {
                            let value = atv.attr_value();
                            use x509_parser::der_parser::asn1_rs::ToDer as _;
                            let der = value.to_der_vec().unwrap_or_default();
                            format!("{oid}=#{}", hex::encode(der))
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 escaping. Names come from certificates (untrusted text that reaches terminals), so
/// control characters and bidirectional formatting characters are written as `\XX` escapes of their
/// UTF-8 bytes, which RFC 4514 allows for any character.
fn escape_4514(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c.is_control() || is_bidi_format(c) {
            for b in c.encode_utf8(&mut [0; 4]).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Characters that reorder the text around them on a terminal (U+200E/F, U+202A..E, U+2066..9).
fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Something about a leaf certificate that Roles Anywhere refuses (see the protocol notes: X.509 v3,
/// not a CA, keyUsage digitalSignature, SHA-256 or stronger, inside its validity period). Displayed
/// as a predicate of the certificate: "the certificate {problem}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeafProblem {
    /// Not X.509 v3 (the version as written in documents).
    NotV3(u32),
    /// basicConstraints CA:TRUE.
    Ca,
    /// A keyUsage extension without digitalSignature.
    NoDigitalSignature,
    /// No keyUsage extension at all.
    NoKeyUsage,
    /// Signed with MD5 or SHA-1 (the algorithm's name).
    WeakSignature(String),
    /// Used before its notBefore.
    NotYetValid(time::OffsetDateTime),
    /// Used after its notAfter.
    Expired(time::OffsetDateTime),
}

impl LeafProblem {
    /// What the service needs instead, as a noun phrase ("keyUsage digitalSignature").
    pub fn requirement(&self) -> &'static str {
        match self {
            LeafProblem::NotV3(_) => "an X.509 v3 certificate",
            LeafProblem::Ca => "an end-entity certificate (basicConstraints CA:FALSE)",
            LeafProblem::NoDigitalSignature | LeafProblem::NoKeyUsage => {
                "keyUsage digitalSignature"
            }
            LeafProblem::WeakSignature(_) => "a signature hash of SHA-256 or stronger",
            LeafProblem::NotYetValid(_) | LeafProblem::Expired(_) => {
                "a certificate inside its validity period"
            }
        }
    }

    /// True for problems only time fixes (renewal, or the clock), not a differently made certificate.
    pub fn is_validity(&self) -> bool {
        matches!(self, LeafProblem::NotYetValid(_) | LeafProblem::Expired(_))
    }
}

impl std::fmt::Display for LeafProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let date = |t: &time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string())
        };
        match self {
            LeafProblem::NotV3(v) => write!(f, "is an X.509 v{v} certificate, not v3"),
            LeafProblem::Ca => f.write_str("is a CA certificate (basicConstraints CA:TRUE)"),
            LeafProblem::NoDigitalSignature => {
                f.write_str("has a keyUsage without digitalSignature")
            }
            LeafProblem::NoKeyUsage => {
                f.write_str("has no keyUsage extension, so no digitalSignature")
            }
            LeafProblem::WeakSignature(alg) => {
                write!(f, "is signed with {alg}, weaker than SHA-256")
            }
            LeafProblem::NotYetValid(t) => write!(f, "is not valid before {}", date(t)),
            LeafProblem::Expired(t) => write!(f, "expired on {}", date(t)),
        }
    }
}

/// What Roles Anywhere would refuse about `cert` as the leaf at `now`; empty when nothing.
pub fn leaf_problems(cert: &Certificate, now: time::OffsetDateTime) -> Vec<LeafProblem> {
    let mut found = Vec::new();
    if cert.version() != 3 {
        found.push(LeafProblem::NotV3(cert.version()));
    }
    if cert.is_ca() {
        found.push(LeafProblem::Ca);
    }
    match cert.key_usage_digital_signature() {
        Some(true) => {}
        Some(false) => found.push(LeafProblem::NoDigitalSignature),
        None => found.push(LeafProblem::NoKeyUsage),
    }
    // x509-parser's registry has no name for ecdsa-with-SHA1, so `has_weak_signature_hash` (which
    // matches names) misses it; its OID is what the name falls back to.
    const ECDSA_WITH_SHA1: &str = "1.2.840.10045.4.1";
    if cert.has_weak_signature_hash() || cert.signature_algorithm_name() == ECDSA_WITH_SHA1 {
        found.push(LeafProblem::WeakSignature(
            match cert.signature_algorithm_name() {
                ECDSA_WITH_SHA1 => "ecdsa-with-SHA1",
                name => name,
            }
            .to_string(),
        ));
    }
    if cert.not_before() > now {
        found.push(LeafProblem::NotYetValid(cert.not_before()));
    }
    if cert.not_after() < now {
        found.push(LeafProblem::Expired(cert.not_after()));
    }
    found
}

/// Parses every `CERTIFICATE` block of a PEM bundle, at most [`MAX_BUNDLE`]; `what` names the source
/// in errors. Other blocks (keys, parameters), damaged or not, and text between blocks are skipped,
/// as the reference helper's Go reader does; see [`crate::pem`] for what is accepted.
pub fn parse_pem_bundle(pem: &[u8], what: &str) -> Result<Vec<Certificate>, Error> {
    let mut certs = Vec::new();
    let pem_error = |index, e: &crate::pem::Error| Error::Pem {
        what: what.to_string(),
        index,
        line: e.line(),
        reason: match e {
            crate::pem::Error::Truncated { .. } | crate::pem::Error::NoEnd { .. } => {
                "missing -----END CERTIFICATE-----"
            }
            crate::pem::Error::LabelsDiffer { .. } => "BEGIN and END labels differ",
            crate::pem::Error::Base64 { .. } => "invalid base64",
            crate::pem::Error::Empty { .. } => "empty block",
        },
    };
    for (i, block) in crate::pem::blocks(pem).enumerate() {
        let index = i + 1;
        let block = match block {
            Ok(block) if is_certificate_label(block.label()) => block,
            Err(e) if is_certificate_label(e.label()) => return Err(pem_error(index, &e)),
            _ => continue,
        };
        // Checked as certificates are found, so a huge file costs no more parsing than the cap
        // allows.
        if certs.len() == MAX_BUNDLE {
            return Err(Error::TooManyCertificates {
                what: what.to_string(),
            });
        }
        if block.headers().next().is_some() {
            return Err(Error::Pem {
                what: what.to_string(),
                index,
                line: block.line(),
                reason: "unexpected header line",
            });
        }
        let der = block.decode().map_err(|e| pem_error(index, &e))?;
        let name = format!("certificate {} in {what}", certs.len() + 1);
        // A certificate is public: its DER leaves the zeroizing buffer.
        certs.push(Certificate::parse(der.to_vec(), &name)?);
    }
    if certs.is_empty() {
        let hint = if pem.starts_with(&[0x30, 0x82]) {
            " (it looks like DER: convert it with `openssl x509 -inform der -in FILE -out FILE.pem`)"
        } else {
            " (expected -----BEGIN CERTIFICATE-----)"
        };
        return Err(Error::NoCertificate {
            what: what.to_string(),
            hint,
        });
    }
    Ok(certs)
}

fn is_certificate_label(label: &str) -> bool {
    label == "CERTIFICATE" || label == "X509 CERTIFICATE"
}

/// Reads a PEM file of one or more certificates (the first is the leaf for `--certificate`): a regular
/// file of at most [`userfile::Kind::Certificates`]' size and [`MAX_BUNDLE`] certificates.
pub fn load_pem_file(path: &Path) -> Result<Vec<Certificate>, Error> {
    let data =
        userfile::read(path, userfile::Kind::Certificates).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
    parse_pem_bundle(&data, &crate::text::path(path))
}

/// Orders `candidates` into the chain above `leaf`: issuer order, leaf excluded, duplicates,
/// self-signed roots and unrelated certificates dropped, at most [`MAX_CHAIN`].
///
/// Candidates are indexed by their encoded subject, so each step looks up the certificates named as
/// the current one's issuer instead of scanning (and verifying signatures across) the whole pool, and
/// building stops as soon as the chain is too long: the work is linear in the number of candidates.
pub fn build_chain(
    leaf: &Certificate,
    candidates: Vec<Certificate>,
) -> Result<Vec<Certificate>, Error> {
    let mut seen: HashSet<Vec<u8>> = HashSet::with_capacity(candidates.len());
    let mut by_subject: HashMap<Vec<u8>, Vec<Certificate>> = HashMap::new();
    for c in candidates {
        if c != *leaf && seen.insert(c.der.clone()) {
            by_subject.entry(c.subject_raw.clone()).or_default().push(c);
        }
    }
    let mut chain: Vec<Certificate> = Vec::new();
    // Every step removes a certificate from the pool, so a loop of cross-signed CAs still ends.
    loop {
        let current = chain.last().unwrap_or(leaf);
        let Some(named) = by_subject.get_mut(&current.issuer_raw) else {
            break;
        };
        // A root is the trust anchor's: sending it wastes one of the five slots.
        let Some(i) = named
            .iter()
            .position(|c| current.is_issued_by(c) && !c.is_self_signed())
        else {
            break;
        };
        chain.push(named.remove(i));
        if chain.len() > MAX_CHAIN {
            return Err(Error::ChainTooLong {
                leaf: leaf.subject(),
            });
        }
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn vectors() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors")
    }

    fn one(path: &str) -> Certificate {
        load_pem_file(&vectors().join(path)).unwrap().remove(0)
    }

    fn root() -> Certificate {
        one("root-ca.pem")
    }
    fn intermediate() -> Certificate {
        one("create-session-p384-chain/chain.pem")
    }
    fn p384_leaf() -> Certificate {
        one("create-session-p384-chain/leaf.pem")
    }
    fn p256_leaf() -> Certificate {
        one("create-session-p256/leaf.pem")
    }
    fn rsa_leaf() -> Certificate {
        one("create-session-rsa/leaf.pem")
    }

    /// Makes certificates with the openssl CLI (an independent implementation) in a temp dir.
    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            Pki {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        /// Creates `name` (key `name.key`, certificate `name.pem`), self-signed or issued by `ca`.
        fn cert(&self, name: &str, subject: &str, curve: &str, ca: Option<&str>) -> Certificate {
            let mut args: Vec<String> = ["req", "-x509", "-newkey", "ec", "-pkeyopt"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.push(format!("ec_paramgen_curve:{curve}"));
            args.extend(
                [
                    "-nodes",
                    "-days",
                    "2",
                    "-sha512",
                    "-subj",
                    subject,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-keyout",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
            args.push(format!("{name}.key"));
            args.push("-out".into());
            args.push(format!("{name}.pem"));
            if let Some(ca) = ca {
                args.extend([
                    "-CA".into(),
                    format!("{ca}.pem"),
                    "-CAkey".into(),
                    format!("{ca}.key"),
                ]);
            }
            let out = Command::new("openssl")
                .args(&args)
                .current_dir(self.dir.path())
                .output()
                .expect(
                    "openssl must be installed to run this test (Debian: apt-get install openssl)",
                );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            load_pem_file(&self.dir.path().join(format!("{name}.pem")))
                .unwrap()
                .remove(0)
        }
    }

    #[test]
    fn accessors_read_the_vector_certificates() {
        let leaf = rsa_leaf();
        // Decimal as in the vector's `Credential=`; hex as `openssl x509 -serial` prints it.
        assert_eq!(
            leaf.serial_decimal(),
            "1512366075204170929049582354406559215"
        );
        assert_eq!(leaf.serial_hex(), "0123456789abcdef0123456789abcdef");
        assert_eq!(p256_leaf().serial_decimal(), "7");
        assert_eq!(p256_leaf().serial_hex(), "07");
        assert_eq!(leaf.subject(), "CN=rsa-leaf.vector.test,O=Vector");
        assert_eq!(leaf.issuer(), "CN=Vector Root CA,O=Vector");
        assert_eq!(leaf.version(), 3);
        assert!(!leaf.is_ca());
        assert_eq!(leaf.key_usage_digital_signature(), Some(true));
        assert_eq!(leaf.signature_algorithm_name(), "ecdsa-with-SHA256");
        assert!(!leaf.has_weak_signature_hash());
        assert_eq!(
            leaf.not_before(),
            time::macros::datetime!(2026-02-28 12:00:00 UTC)
        );
        assert_eq!(
            leaf.not_after(),
            time::macros::datetime!(2036-02-27 12:00:00 UTC)
        );
        assert!(matches!(
            leaf.public_key().kind(),
            crate::keys::KeyKind::Rsa { bits: 2048 }
        ));

        let ca = intermediate();
        assert!(ca.is_ca());
        assert_eq!(ca.key_usage_digital_signature(), Some(false));
        assert_eq!(
            p384_leaf().signature_algorithm_name(),
            "sha256WithRSAEncryption"
        );
        assert_eq!(
            p384_leaf().public_key().kind(),
            crate::keys::KeyKind::Ec(Curve::P384)
        );
    }

    #[test]
    fn rfc4514_escapes_special_characters() {
        assert_eq!(escape_4514("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_4514(" #x "), "\\ #x\\ ");
        assert_eq!(escape_4514("#x"), "\\#x");
        assert_eq!(escape_4514("a\"<>;\\"), "a\\\"\\<\\>\\;\\\\");
    }

    #[test]
    fn leaf_problems_name_ca_key_usage_and_validity() {
        let inside = time::macros::datetime!(2030-01-01 0:00 UTC);
        assert_eq!(leaf_problems(&rsa_leaf(), inside), []);
        assert_eq!(
            leaf_problems(&intermediate(), inside),
            [LeafProblem::Ca, LeafProblem::NoDigitalSignature]
        );
        let after = time::macros::datetime!(2037-01-01 0:00 UTC);
        let p = leaf_problems(&rsa_leaf(), after);
        assert_eq!(p.len(), 1);
        assert!(p[0].is_validity());
        assert_eq!(p[0].to_string(), "expired on 2036-02-27T12:00:00Z");
        assert_eq!(
            LeafProblem::Ca.requirement(),
            "an end-entity certificate (basicConstraints CA:FALSE)"
        );
    }

    /// Names reach terminals: escape sequences and text reordering must not survive.
    #[test]
    fn rfc4514_escapes_control_and_bidi_characters() {
        assert_eq!(escape_4514("a\x1b[31mb"), "a\\1B[31mb");
        assert_eq!(escape_4514("x\0y\n"), "x\\00y\\0A");
        assert_eq!(escape_4514("ab\u{202e}cd"), "ab\\E2\\80\\AEcd");
        assert_eq!(escape_4514("\u{85}"), "\\C2\\85");
        assert_eq!(escape_4514("Zoë"), "Zoë");
    }

    #[test]
    fn is_issued_by_checks_name_and_signature() {
        assert!(p384_leaf().is_issued_by(&intermediate()));
        assert!(intermediate().is_issued_by(&root()));
        assert!(p256_leaf().is_issued_by(&root()));
        assert!(rsa_leaf().is_issued_by(&root()));
        assert!(!p384_leaf().is_issued_by(&root()));
        assert!(!root().is_issued_by(&intermediate()));
        assert!(root().is_self_signed());
        assert!(!intermediate().is_self_signed());
    }

    #[test]
    fn is_issued_by_rejects_impostor_with_same_name() {
        let pki = Pki::new();
        // Same encoded subject as the vectors' root, different key.
        let impostor = pki.cert("fake", "/O=Vector/CN=Vector Root CA", "P-256", None);
        assert_eq!(impostor.subject(), root().subject());
        assert!(!p256_leaf().is_issued_by(&impostor));
        assert!(
            build_chain(&p256_leaf(), vec![impostor])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn is_issued_by_verifies_p521_and_sha512_signatures() {
        let pki = Pki::new();
        let root = pki.cert("root", "/CN=P-521 root", "P-521", None);
        let mid = pki.cert("mid", "/CN=P-384 mid", "P-384", Some("root"));
        let leaf = pki.cert("leaf", "/CN=leaf", "P-256", Some("mid"));
        assert_eq!(mid.signature_algorithm_name(), "ecdsa-with-SHA512");
        assert!(root.is_self_signed());
        assert!(mid.is_issued_by(&root));
        assert!(leaf.is_issued_by(&mid));
        assert!(!leaf.is_issued_by(&root));
        let other = pki.cert("other", "/CN=P-521 root", "P-521", None);
        assert!(!mid.is_issued_by(&other), "same name, other P-521 key");
    }

    #[test]
    fn build_chain_orders_and_drops_root_duplicates_leaf_and_unrelated() {
        let pki = Pki::new();
        let root = pki.cert("root", "/CN=root", "P-256", None);
        let a = pki.cert("a", "/CN=a", "P-256", Some("root"));
        let b = pki.cert("b", "/CN=b", "P-256", Some("a"));
        let leaf = pki.cert("leaf", "/CN=leaf", "P-256", Some("b"));
        let unrelated = intermediate();
        let candidates = vec![
            root.clone(),
            a.clone(),
            unrelated,
            leaf.clone(),
            b.clone(),
            a.clone(),
        ];
        assert_eq!(build_chain(&leaf, candidates).unwrap(), vec![b.clone(), a]);
        assert!(build_chain(&leaf, Vec::new()).unwrap().is_empty());
        // A gap stops the chain: what is above it cannot be linked to the leaf.
        assert!(build_chain(&leaf, vec![root]).unwrap().is_empty());
    }

    #[test]
    fn build_chain_rejects_more_than_five_intermediates() {
        let pki = Pki::new();
        pki.cert("c0", "/CN=root", "P-256", None);
        let mut all = Vec::new();
        for i in 1..=7 {
            all.push(pki.cert(
                &format!("c{i}"),
                &format!("/CN=ca {i}"),
                "P-256",
                Some(&format!("c{}", i - 1)),
            ));
        }
        let leaf6 = all[5].clone();
        let five = build_chain(&leaf6, all.clone()).unwrap();
        assert_eq!(five.len(), 5);
        assert_eq!(five[0], all[4]);
        assert_eq!(five[4], all[0]);

        let leaf = pki.cert("leaf", "/CN=leaf", "P-256", Some("c7"));
        let err = build_chain(&leaf, all).unwrap_err();
        assert!(matches!(&err, Error::ChainTooLong { .. }), "{err:?}");
        assert!(
            err.to_string().contains("CN=leaf") && err.to_string().contains("more than 5"),
            "{err}"
        );
    }

    #[test]
    fn from_der_rejects_trailing_data_and_garbage() {
        let mut der = rsa_leaf().der().to_vec();
        der.push(0);
        assert!(matches!(
            Certificate::from_der(der),
            Err(Error::TrailingData { len: 1, .. })
        ));
        assert!(matches!(
            Certificate::from_der(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            Certificate::from_der(Vec::new()),
            Err(Error::Parse { .. })
        ));
        assert_eq!(
            Certificate::from_der(rsa_leaf().der().to_vec()).unwrap(),
            rsa_leaf()
        );
    }

    #[test]
    fn from_der_never_panics_on_truncated_or_corrupted_input() {
        let der = p384_leaf().der().to_vec();
        for len in 0..der.len() {
            assert!(
                Certificate::from_der(der[..len].to_vec()).is_err(),
                "prefix {len}"
            );
        }
        // Flipping any single byte may still parse (e.g. inside the signature) but must never panic.
        for i in 0..der.len() {
            let mut bad = der.clone();
            bad[i] ^= 0xff;
            if let Ok(c) = Certificate::from_der(bad) {
                let _ = (
                    c.serial_decimal(),
                    c.subject(),
                    c.is_issued_by(&intermediate()),
                );
            }
        }
    }

    #[test]
    fn parse_pem_bundle_skips_other_blocks_and_text() {
        let root = std::fs::read_to_string(vectors().join("root-ca.pem")).unwrap();
        let chain =
            std::fs::read_to_string(vectors().join("create-session-p384-chain/chain.pem")).unwrap();
        let key = std::fs::read_to_string(vectors().join("create-session-p256/leaf.key")).unwrap();
        let bundle = format!(
            "subject=whatever\r\n{key}\n{chain}\nsome text\n{}",
            root.replace('\n', "\r\n")
        );
        let certs = parse_pem_bundle(bundle.as_bytes(), "bundle.pem").unwrap();
        assert_eq!(certs, vec![intermediate(), self::root()]);
    }

    /// Like the reference helper's Go reader: a damaged block that is not a certificate (a key cut
    /// short by a careless paste) does not hide the certificates after it.
    #[test]
    fn parse_pem_bundle_skips_damaged_blocks_that_are_not_certificates() {
        let root = std::fs::read_to_string(vectors().join("root-ca.pem")).unwrap();
        let bundle = format!(
            "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n{root}-----BEGIN X509 CRL-----\nAA\n-----END FOO-----\n{root}"
        );
        let certs = parse_pem_bundle(bundle.as_bytes(), "bundle.pem").unwrap();
        assert_eq!(certs, vec![self::root(), self::root()]);
    }

    #[test]
    fn parse_pem_bundle_errors_name_the_source_and_block() {
        let root = std::fs::read_to_string(vectors().join("root-ca.pem")).unwrap();
        let key = std::fs::read_to_string(vectors().join("create-session-p256/leaf.key")).unwrap();

        let err = parse_pem_bundle(key.as_bytes(), "key.pem").unwrap_err();
        assert!(matches!(&err, Error::NoCertificate { what, .. } if what == "key.pem"));
        assert!(err.to_string().contains("BEGIN CERTIFICATE"), "{err}");

        let err = parse_pem_bundle(rsa_leaf().der(), "leaf.der").unwrap_err();
        assert!(
            err.to_string().contains("openssl x509 -inform der"),
            "{err}"
        );

        // Second certificate's body is valid base64 but not a certificate.
        let broken =
            format!("{root}-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n");
        let err = parse_pem_bundle(broken.as_bytes(), "chain.pem").unwrap_err();
        assert!(
            matches!(&err, Error::Parse { what, .. } if what == "certificate 2 in chain.pem"),
            "{err:?}"
        );

        let bad64 = "-----BEGIN CERTIFICATE-----\nAAAA\n!!!!\n-----END CERTIFICATE-----\n";
        let err = parse_pem_bundle(bad64.as_bytes(), "x").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Pem {
                    index: 1,
                    line: 3,
                    reason: "invalid base64",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "malformed PEM block 1 (line 3) in x: invalid base64"
        );
        let unterminated = root.replace("-----END CERTIFICATE-----", "");
        assert!(matches!(
            parse_pem_bundle(unterminated.as_bytes(), "x"),
            Err(Error::Pem { .. })
        ));
        let mismatched = root.replace("END CERTIFICATE", "END PRIVATE KEY");
        assert!(matches!(
            parse_pem_bundle(mismatched.as_bytes(), "x"),
            Err(Error::Pem { .. })
        ));
    }

    /// Issue 14: more than [`MAX_BUNDLE`] certificates is refused, and parsing stops there.
    #[test]
    fn parse_pem_bundle_refuses_more_than_a_hundred_certificates() {
        let root = std::fs::read_to_string(vectors().join("root-ca.pem")).unwrap();
        assert_eq!(
            parse_pem_bundle(root.repeat(MAX_BUNDLE).as_bytes(), "ok.pem")
                .unwrap()
                .len(),
            MAX_BUNDLE
        );
        let err = parse_pem_bundle(root.repeat(MAX_BUNDLE + 1).as_bytes(), "many.pem").unwrap_err();
        assert!(matches!(&err, Error::TooManyCertificates { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "many.pem holds more than 100 certificates; give only the leaf and the intermediates \
             that issued it"
        );
        // A broken certificate after the hundredth is not even parsed: the count stops first.
        let broken = root.repeat(MAX_BUNDLE)
            + "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            parse_pem_bundle(broken.as_bytes(), "x"),
            Err(Error::TooManyCertificates { .. })
        ));
    }

    /// Issue 14: chain building was quadratic in the candidates (27 s for 40,000 intermediates):
    /// every candidate was compared with every other and checked for a self-signature.
    #[test]
    fn build_chain_is_linear_in_the_number_of_candidates() {
        // 20,000 distinct certificates (signature bytes changed) that issue nothing here.
        let base = rsa_leaf().der().to_vec();
        let mut candidates: Vec<Certificate> = (0..20_000u32)
            .map(|i| {
                let mut der = base.clone();
                let n = der.len();
                der[n - 4..].copy_from_slice(&i.to_be_bytes());
                Certificate::from_der(der).unwrap()
            })
            .collect();
        candidates.push(intermediate());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(build_chain(&p384_leaf(), candidates).map_err(|e| e.to_string()));
        });
        let chain = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("building the chain took more than 5 s")
            .unwrap();
        assert_eq!(chain, vec![intermediate()]);
    }

    #[test]
    fn load_pem_file_error_names_the_path() {
        let path = vectors().join("no-such-file.pem");
        let err = load_pem_file(&path).unwrap_err();
        assert!(matches!(&err, Error::Read { path: p, .. } if *p == path));
        assert!(err.to_string().contains("no-such-file.pem"), "{err}");
        assert!(std::error::Error::source(&err).is_some());
    }

    /// Issue 14: certificates the `certs` fuzz target found panicking, one per file in
    /// `testdata/fuzz-regressions/certs/` (DER, minimised with `cargo fuzz tmin`). Each must parse
    /// or be refused, never panic, and what parses must give every accessor without panicking.
    #[test]
    fn fuzz_regressions_never_panic() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions/certs");
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let der = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| {
                Certificate::from_der(der).map(|c| {
                    let _ = (c.serial_decimal(), c.subject(), c.is_self_signed());
                    c.version()
                })
            });
            let Ok(parsed) = result else {
                panic!("{} panicked", path.display());
            };
            // version-u32-max.der: version field 0xFFFFFFFF, not a v3 certificate however counted.
            if let Ok(version) = parsed {
                assert_ne!(version, 3, "{}", path.display());
            }
            checked += 1;
        }
        assert!(
            checked >= 1,
            "regression inputs missing from {}",
            dir.display()
        );
    }

    #[test]
    fn debug_shows_identity_not_der() {
        let dbg = format!("{:?}", rsa_leaf());
        assert!(dbg.contains("CN=rsa-leaf.vector.test"), "{dbg}");
        assert!(!dbg.contains("MII"), "{dbg}");
    }
}
