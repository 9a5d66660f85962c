//! SigV4-X509 request signing for IAM Roles Anywhere `CreateSession`.
//!
//! Pure: no I/O, no clock reads, no HTTP-client types. Callers pass the method, path, query, headers,
//! body, time, certificate and chain; this module returns the headers to add. The only thing that
//! reaches a [`Signer`] is a [`Digest`] this module made by hashing the string to sign.
//!
//! It must not read the clock, touch files or know the HTTP client: retries call it again with a new
//! time, and `--debug` prints the canonical request and string to sign it returns (no secrets: the
//! request carries only public material and the signature).

//!
//! It does not check that the signer's key is the certificate's: that is decided where an identity is
//! opened, before any request exists.

pub use crate::{Digest, HashAlg, MlDsaMu};

use crate::{Classify, ErrorClass, KeyKind, PublicKey, SignError, Signer};
use base64::Engine as _;
use std::fmt::Write as _;

/// Most intermediates `X-Amz-X509-Chain` may carry (the service's limit).
pub const MAX_CHAIN: usize = 5;

/// Signing failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The backend failed to sign or returned a malformed signature.
    #[error("cannot sign request")]
    Sign(#[from] SignError),
    /// More intermediates than the service accepts.
    #[error("certificate chain has {0} intermediates; at most 5 are accepted")]
    ChainTooLong(usize),
}

impl Error {
    /// A chain too long is the user's to fix; a signing failure is classified by the backend.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Sign(s) => s.class(),
            Error::ChainTooLong(_) => ErrorClass::Configuration,
        }
    }
}

impl Classify for Error {
    fn class(&self) -> ErrorClass {
        Error::class(self)
    }
}

/// What the core needs of an X.509 certificate: its DER and its serial number. Parsing certificates
/// stays outside the core; the agent implements this for its parsed certificates.
pub trait CertificateDer {
    /// The certificate's DER encoding.
    fn der(&self) -> &[u8];
    /// The serial number in decimal, as `Credential=` carries it.
    fn serial_decimal(&self) -> String;
}

/// The parts of the HTTP request that are signed.
#[derive(Debug, Clone)]
pub struct RequestParts<'a> {
    /// `POST`.
    pub method: &'a str,
    /// `Host` header value (with `:port` when not the scheme's default).
    pub host: &'a str,
    /// Path exactly as sent on the wire (already URI-encoded), e.g. `/sessions`.
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    /// `Content-Type` header value.
    pub content_type: &'a str,
    /// The body bytes.
    pub body: &'a [u8],
}

/// Who signs, when and where; `C` is the caller's certificate type.
pub struct SigningInput<'a, C> {
    /// Signing region (never a `-fips` name).
    pub region: &'a str,
    /// Signing time (whole seconds are used).
    pub time: time::OffsetDateTime,
    /// The leaf certificate.
    pub leaf: &'a C,
    /// Intermediates in issuer order (leaf excluded).
    pub chain: &'a [C],
}

/// Headers to add to the request, plus the intermediate strings for `--debug`.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// `X-Amz-Date`, `X-Amz-X509`, optional `X-Amz-X509-Chain`, `Authorization`, in that order.
    pub headers: Vec<(String, String)>,
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string to sign whose SHA-256 was signed.
    pub string_to_sign: String,
}

/// `AWS4-X509-RSA-SHA256`, `AWS4-X509-ECDSA-SHA256` or `AWS4-X509-MLDSA`.
pub fn algorithm_for(kind: KeyKind) -> &'static str {
    match kind {
        KeyKind::Rsa { .. } => "AWS4-X509-RSA-SHA256",
        KeyKind::Ec(_) => "AWS4-X509-ECDSA-SHA256",
        KeyKind::MlDsa(_) => "AWS4-X509-MLDSA",
    }
}

/// Signs `message` the way `kind` wants: the digest of `alg` for RSA and EC keys, the μ of pure
/// ML-DSA (empty context) for ML-DSA keys, which have no choice of hash. The signer receives a
/// value this function computed, never `message`.
fn sign_message(
    signer: &dyn Signer,
    kind: KeyKind,
    message: &[u8],
    alg: HashAlg,
) -> Result<Vec<u8>, SignError> {
    let signature = match kind {
        KeyKind::MlDsa(_) => {
            let mu = MlDsaMu::compute(signer.public_key(), message).ok_or_else(|| {
                SignError::MalformedSignature {
                    signer: signer.describe(),
                    kind,
                    detail: "the signer reports an ML-DSA key kind but a public key of another \
                             kind"
                        .into(),
                }
            })?;
            signer.sign_ml_dsa_mu(&mu)?
        }
        KeyKind::Rsa { .. } | KeyKind::Ec(_) => signer.sign(&Digest::compute(alg, message))?,
    };
    check_signature_shape(signer, kind, &signature)?;
    Ok(signature)
}

/// `X-Amz-Date`: `YYYYMMDDTHHMMSSZ` in UTC, whole seconds.
pub fn amz_date(time: time::OffsetDateTime) -> String {
    let t = time.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `YYYYMMDD/REGION/rolesanywhere/aws4_request`.
pub fn credential_scope(time: time::OffsetDateTime, region: &str) -> String {
    let date = amz_date(time);
    format!("{}/{region}/rolesanywhere/aws4_request", &date[..8])
}

/// RFC 3986 percent-encoding as SigV4 wants it: `A-Z a-z 0-9 - _ . ~` kept, every other byte of the
/// UTF-8 form as `%XX` with upper-case hex (so a space is `%20`, never `+`).
fn uri_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Canonical query: parameters sorted by encoded name (then value), `name=value` joined by `&`.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| {
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(k, &mut ek);
            uri_encode(v, &mut ev);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Trims the value and collapses runs of spaces into one (SigV4's header canonicalisation).
fn canonical_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut last_space = false;
    for c in value.trim().chars() {
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// Lower-cased names and canonical values, sorted by name; a repeated name keeps one entry whose
/// values are joined by `,` in the order given.
fn canonical_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = Vec::with_capacity(headers.len());
    let mut sorted: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), canonical_header_value(v)))
        .collect();
    // Stable: repeated headers keep their order.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in sorted {
        match list.last_mut() {
            Some((last, joined)) if *last == name => {
                joined.push(',');
                joined.push_str(&value);
            }
            _ => list.push((name, value)),
        }
    }
    list
}

/// The headers SigV4-X509 signs for CreateSession: `Content-Type`, `Host`, `X-Amz-Date`, `X-Amz-X509`
/// and `X-Amz-X509-Chain` when there is a chain.
pub fn headers_to_sign<'a>(
    parts: &RequestParts<'a>,
    amz_date: &'a str,
    x509: &'a str,
    chain: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("content-type", parts.content_type),
        ("host", parts.host),
        ("x-amz-date", amz_date),
        ("x-amz-x509", x509),
    ];
    if let Some(chain) = chain {
        headers.push(("x-amz-x509-chain", chain));
    }
    headers
}

/// `SignedHeaders`: the lower-cased names of `headers`, sorted, joined by `;`.
pub fn signed_headers(headers: &[(&str, &str)]) -> String {
    canonical_headers(headers)
        .into_iter()
        .map(|(n, _)| n)
        .collect::<Vec<_>>()
        .join(";")
}

/// The canonical request:
///
/// ```text
/// Method \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
/// ```
///
/// where `CanonicalHeaders` is one `name:value\n` line per signed header (hence the blank line
/// before `SignedHeaders`). The path is signed exactly as it goes on the wire.
pub fn canonical_request(parts: &RequestParts<'_>, headers: &[(&str, &str)]) -> String {
    use sha2::Digest as _;
    let canonical = canonical_headers(headers);
    let path = if parts.path.is_empty() {
        "/"
    } else {
        parts.path
    };
    let mut out = String::new();
    out.push_str(parts.method);
    out.push('\n');
    out.push_str(path);
    out.push('\n');
    out.push_str(&canonical_query(parts.query));
    out.push('\n');
    for (name, value) in &canonical {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers(headers));
    out.push('\n');
    out.push_str(&hex::encode(sha2::Sha256::digest(parts.body)));
    out
}

/// The string to sign:
///
/// ```text
/// Algorithm \n X-Amz-Date \n CredentialScope \n hex(SHA256(CanonicalRequest))
/// ```
pub fn string_to_sign(
    algorithm: &str,
    amz_date: &str,
    credential_scope: &str,
    canonical_request: &str,
) -> String {
    use sha2::Digest as _;
    format!(
        "{algorithm}\n{amz_date}\n{credential_scope}\n{}",
        hex::encode(sha2::Sha256::digest(canonical_request.as_bytes()))
    )
}

/// `X-Amz-X509-Chain`: each intermediate's DER in standard base64, in issuer order, joined by `,`.
/// `None` without intermediates (the header is then neither sent nor signed).
pub fn chain_header<C: CertificateDer>(chain: &[C]) -> Result<Option<String>, Error> {
    if chain.len() > MAX_CHAIN {
        return Err(Error::ChainTooLong(chain.len()));
    }
    if chain.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        chain
            .iter()
            .map(|c| base64::engine::general_purpose::STANDARD.encode(c.der()))
            .collect::<Vec<_>>()
            .join(","),
    ))
}

/// Signs a request: builds the canonical request and string to sign, hands SHA-256 of the latter to
/// `signer` and returns the headers to add.
pub fn sign_request<C: CertificateDer>(
    parts: &RequestParts<'_>,
    input: &SigningInput<'_, C>,
    signer: &dyn Signer,
) -> Result<SignedRequest, Error> {
    let kind = signer.key_kind();
    let algorithm = algorithm_for(kind);
    let date = amz_date(input.time);
    let scope = credential_scope(input.time, input.region);
    let x509 = base64::engine::general_purpose::STANDARD.encode(input.leaf.der());
    let chain = chain_header(input.chain)?;

    let headers = headers_to_sign(parts, &date, &x509, chain.as_deref());
    let canonical = canonical_request(parts, &headers);
    let to_sign = string_to_sign(algorithm, &date, &scope, &canonical);
    // SHA-256 for every RSA key and curve (even P-384 and P-521): the service hashes with SHA-256.
    // ML-DSA keys sign the μ of the string to sign.
    let signature = sign_message(signer, kind, to_sign.as_bytes(), HashAlg::Sha256)?;

    let authorization = format!(
        "{algorithm} Credential={}/{scope}, SignedHeaders={}, Signature={}",
        input.leaf.serial_decimal(),
        signed_headers(&headers),
        hex::encode(&signature)
    );
    let mut out = vec![
        ("X-Amz-Date".to_string(), date.clone()),
        ("X-Amz-X509".to_string(), x509.clone()),
    ];
    if let Some(chain) = &chain {
        out.push(("X-Amz-X509-Chain".to_string(), chain.clone()));
    }
    out.push(("Authorization".to_string(), authorization));
    Ok(SignedRequest {
        headers: out,
        canonical_request: canonical,
        string_to_sign: to_sign,
    })
}

/// RSA: exactly the modulus length; ECDSA: a DER `SEQUENCE { r, s }` whose values fit the curve.
fn check_signature_shape(signer: &dyn Signer, kind: KeyKind, sig: &[u8]) -> Result<(), SignError> {
    let detail = match kind {
        KeyKind::Rsa { bits } => {
            let want = bits.div_ceil(8);
            (sig.len() != want).then(|| format!("{} bytes, expected {want}", sig.len()))
        }
        KeyKind::Ec(curve) => crate::encoding::ecdsa_der_to_raw(sig, curve.field_len())
            .err()
            .map(|e| e.to_string()),
        KeyKind::MlDsa(set) => (sig.len() != set.signature_len())
            .then(|| format!("{} bytes, expected {}", sig.len(), set.signature_len())),
    };
    match detail {
        None => Ok(()),
        Some(detail) => Err(SignError::MalformedSignature {
            signer: signer.describe(),
            kind,
            detail,
        }),
    }
}

/// The `sign-string` test message: `"AWS Roles Anywhere Credential Helper Signing Test" ‖ "1" ‖
/// SHA256("IAM RA" ‖ PUBKEY)`, signed with `alg` (an ML-DSA key ignores `alg`: pure ML-DSA over the
/// message, through its μ). Returns the signature in canonical form.
pub fn sign_test_string(signer: &dyn Signer, alg: HashAlg) -> Result<Vec<u8>, Error> {
    let message = test_string_message(signer.public_key());
    Ok(sign_message(signer, signer.key_kind(), &message, alg)?)
}

/// The message `sign-string` signs (the 32 raw bytes of the inner SHA-256, PUBKEY as
/// [`PublicKey::sign_string_bytes`]).
pub fn test_string_message(key: &PublicKey) -> Vec<u8> {
    use sha2::Digest as _;
    let mut inner = sha2::Sha256::new();
    inner.update(b"IAM RA");
    inner.update(key.sign_string_bytes());
    let mut message = b"AWS Roles Anywhere Credential Helper Signing Test".to_vec();
    message.extend_from_slice(b"1");
    message.extend_from_slice(&inner.finalize());
    message
}
