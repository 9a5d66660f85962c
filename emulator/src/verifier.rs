//! The CreateSession verifier: SigV4-X509 canonicalization, the request signature, the certificate
//! chain against the trust anchor (RFC 5280 constraints in [`crate::path`]), revocation, and the
//! profile/role/duration rules.
//!
//! Pure: it takes the request bytes, the configuration and "now" and returns a decision. It owns
//! its own canonicalization (never the agent's, so a client bug cannot cancel out) and must not do
//! I/O, read the clock or produce credentials.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use time::macros::format_description;
use x509_parser::prelude::{FromDer, X509Certificate, X509Version};
use x509_parser::revocation_list::CertificateRevocationList;

use crate::config::{Config, Profile, TrustAnchor};
use crate::crypto::{self, Hash, PublicKey};

/// Algorithm name for RSA keys.
pub const ALG_RSA: &str = "AWS4-X509-RSA-SHA256";
/// Algorithm name for EC keys of any curve.
pub const ALG_ECDSA: &str = "AWS4-X509-ECDSA-SHA256";
/// Algorithm name for ML-DSA-44/65/87 keys: a pure ML-DSA signature (empty context) over the
/// string to sign itself, not over a hash of it.
pub const ALG_MLDSA: &str = "AWS4-X509-MLDSA";
/// Allowed distance between X-Amz-Date and now, in seconds.
pub const MAX_SKEW_SECONDS: i64 = 300;
/// Most intermediates accepted in X-Amz-X509-Chain.
pub const MAX_INTERMEDIATES: usize = 5;
const SERVICE: &str = "rolesanywhere";

/// One HTTP request as it arrived: the path and query exactly as on the wire.
#[derive(Debug, Clone)]
pub struct HttpRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// The path, as on the wire (already URI-encoded).
    pub path: &'a str,
    /// The raw query string without `?`.
    pub query: &'a str,
    /// Header names and values; names in any case, repeated names allowed.
    pub headers: &'a [(String, String)],
    /// The body bytes.
    pub body: &'a [u8],
}

/// The AWS error family of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// 403 `AccessDeniedException`.
    AccessDenied,
    /// 400 `ValidationException`.
    Validation,
    /// 404 `ResourceNotFoundException`.
    ResourceNotFound,
}

impl ErrorKind {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::AccessDenied => 403,
            ErrorKind::Validation => 400,
            ErrorKind::ResourceNotFound => 404,
        }
    }

    /// The `X-Amzn-ErrorType` value.
    pub fn error_type(self) -> &'static str {
        match self {
            ErrorKind::AccessDenied => "AccessDeniedException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error family.
    pub kind: ErrorKind,
    /// The message returned to the client.
    pub message: String,
    /// The certificate's serial when it was read before the refusal.
    pub serial_decimal: Option<String>,
}

/// An accepted request: everything needed to issue a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Leaf serial, base 10.
    pub serial_decimal: String,
    /// Leaf serial, hex, even length, lowercase.
    pub serial_hex: String,
    /// The leaf's subject CN, if any.
    pub subject_cn: Option<String>,
    /// The trust anchor ARN.
    pub trust_anchor_arn: String,
    /// The profile ARN.
    pub profile_arn: String,
    /// The role ARN.
    pub role_arn: String,
    /// The session name the caller asked for, if any.
    pub role_session_name: Option<String>,
    /// The granted duration.
    pub duration_seconds: u32,
    /// The leaf certificate (DER), for what is derived from it after the checks (principal tags,
    /// the subject record).
    pub leaf_der: Vec<u8>,
}

fn deny(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: ErrorKind::AccessDenied,
        message: message.into(),
        serial_decimal: None,
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: ErrorKind::Validation,
        message: message.into(),
        serial_decimal: None,
    }
}

fn not_found(message: impl Into<String>) -> Refusal {
    Refusal {
        kind: ErrorKind::ResourceNotFound,
        message: message.into(),
        serial_decimal: None,
    }
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `AWS4-X509-RSA-SHA256`, `AWS4-X509-ECDSA-SHA256` or `AWS4-X509-MLDSA`.
    pub algorithm: String,
    /// The serial in `Credential=`, base 10.
    pub serial: String,
    /// Scope date `YYYYMMDD`.
    pub date: String,
    /// Scope region.
    pub region: String,
    /// Scope service.
    pub service: String,
    /// Scope terminator (`aws4_request`).
    pub terminator: String,
    /// The signed header names, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

/// Parses `Alg Credential=serial/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Result<Authorization, String> {
    let (algorithm, rest) = value
        .trim()
        .split_once(' ')
        .ok_or("authorization header has no credential part")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or_else(|| {
            format!(
                "authorization component {:?} is not name=value",
                part.trim()
            )
        })?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            other => return Err(format!("unknown authorization component {other:?}")),
        };
        if slot.replace(v).is_some() {
            return Err(format!("authorization component {k} repeated"));
        }
    }
    let credential = credential.ok_or("authorization has no Credential")?;
    let signed = signed.ok_or("authorization has no SignedHeaders")?;
    let signature = signature.ok_or("authorization has no Signature")?;
    let fields: Vec<&str> = credential.split('/').collect();
    let [serial, date, region, service, terminator] = fields.as_slice() else {
        return Err(format!(
            "credential {credential:?} is not serial/date/region/service/aws4_request"
        ));
    };
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "credential serial {serial:?} is not a decimal number"
        ));
    }
    let signature = hex::decode(signature).map_err(|_| "signature is not hex".to_string())?;
    Ok(Authorization {
        algorithm: algorithm.to_string(),
        serial: serial.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers: signed.split(';').map(str::to_string).collect(),
        signature,
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// SigV4 URI encoding: unreserved characters kept, every other byte `%XX` upper-case.
pub fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decoded query parameters, in wire order.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).ok_or_else(|| format!("bad percent-encoding in {k:?}"))?;
        let v = percent_decode(v).ok_or_else(|| format!("bad percent-encoding in {v:?}"))?;
        let k = String::from_utf8(k).map_err(|_| "query name is not utf-8".to_string())?;
        let v = String::from_utf8(v).map_err(|_| "query value is not utf-8".to_string())?;
        out.push((k, v));
    }
    Ok(out)
}

/// CanonicalQuery: names and values re-encoded, sorted by name then value, joined with `&`.
pub fn canonical_query(query: &str) -> Result<String, String> {
    let mut pairs: Vec<(String, String)> = parse_query(query)?
        .into_iter()
        .map(|(k, v)| (uri_encode(k.as_bytes()), uri_encode(v.as_bytes())))
        .collect();
    pairs.sort();
    Ok(pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&"))
}

fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn single_header<'h>(
    headers: &'h [(String, String)],
    name: &str,
) -> Result<Option<&'h str>, Refusal> {
    match header_values(headers, name).as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(invalid(format!("header {name} appears more than once"))),
    }
}

fn trim_collapse(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request for `req` with these signed headers (names lowercase, in the given order).
pub fn canonical_request(
    req: &HttpRequest<'_>,
    signed_headers: &[String],
) -> Result<String, String> {
    let mut out = String::new();
    out.push_str(req.method);
    out.push('\n');
    out.push_str(req.path);
    out.push('\n');
    out.push_str(&canonical_query(req.query)?);
    out.push('\n');
    for name in signed_headers {
        let values = header_values(req.headers, name);
        if values.is_empty() {
            return Err(format!("signed header {name} is not in the request"));
        }
        let joined = values
            .iter()
            .map(|v| trim_collapse(v))
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(&format!("{name}:{joined}\n"));
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(&hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        req.body,
    )));
    Ok(out)
}

/// StringToSign = Algorithm \n X-Amz-Date \n CredentialScope \n hex(SHA256(CanonicalRequest)).
pub fn string_to_sign(
    algorithm: &str,
    amz_date: &str,
    scope: &str,
    canonical_request: &str,
) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, canonical_request.as_bytes());
    format!("{algorithm}\n{amz_date}\n{scope}\n{}", hex::encode(hash))
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|t| t.assume_utc())
}

fn decode_cert(b64: &str, what: &str) -> Result<Vec<u8>, Refusal> {
    let der = STANDARD
        .decode(b64.trim())
        .map_err(|_| deny(format!("{what} is not standard base64")))?;
    match X509Certificate::from_der(&der) {
        Ok(([], _)) => Ok(der),
        Ok(_) => Err(deny(format!("{what} has bytes after the certificate"))),
        Err(_) => Err(deny(format!("{what} is not a DER X.509 certificate"))),
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Refusal> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|_| deny("certificate does not parse"))
}

/// Checks one CreateSession request at `now`, in the service's order: [`authenticate`] the
/// signature first (nothing about resources is revealed to a request whose signature does not hold),
/// then [`resolve`] the trust anchor and profile it names, then [`authorize`] the certificate chain,
/// role, session name and duration against them.
pub fn verify(
    req: &HttpRequest<'_>,
    config: &Config,
    now: OffsetDateTime,
) -> Result<Accepted, Refusal> {
    let signed = authenticate(req, config, now)?;
    let resources = resolve(req, config).map_err(signed.tag())?;
    authorize(&signed, resources, config, now)
}

/// A request whose signature holds for the leaf certificate it carries.
struct Authenticated {
    /// The leaf certificate (DER), from `X-Amz-X509`.
    leaf_der: Vec<u8>,
    /// The intermediates (DER), from `X-Amz-X509-Chain`, in order; at most [`MAX_INTERMEDIATES`].
    chain_ders: Vec<Vec<u8>>,
    /// The leaf's serial, base 10; every later refusal carries it.
    serial_decimal: String,
}

impl Authenticated {
    /// Marks a refusal with the leaf's serial.
    fn tag(&self) -> impl Fn(Refusal) -> Refusal + '_ {
        |mut r: Refusal| {
            r.serial_decimal = Some(self.serial_decimal.clone());
            r
        }
    }
}

/// The configured objects a request names.
struct Resources<'c> {
    /// What the caller asked for (query and body).
    input: Input,
    /// The trust anchor, enabled.
    anchor: &'c TrustAnchor,
    /// The profile, enabled.
    profile: &'c Profile,
}

/// The authorization header, the date, the signed headers, the leaf certificate and its key, and the
/// signature over the canonical request; then the chain header's certificates (decoded, counted).
fn authenticate(
    req: &HttpRequest<'_>,
    config: &Config,
    now: OffsetDateTime,
) -> Result<Authenticated, Refusal> {
    let auth_value = single_header(req.headers, "authorization")?
        .ok_or_else(|| deny("missing authentication: no authorization header"))?;
    let auth = parse_authorization(auth_value)
        .map_err(|e| deny(format!("malformed authorization header: {e}")))?;
    if ![ALG_RSA, ALG_ECDSA, ALG_MLDSA].contains(&auth.algorithm.as_str()) {
        return Err(deny(format!(
            "unsupported signing algorithm {:?} (expected {ALG_RSA}, {ALG_ECDSA} or {ALG_MLDSA})",
            auth.algorithm
        )));
    }
    if auth.service != SERVICE || auth.terminator != "aws4_request" {
        return Err(deny(format!(
            "credential scope names service {:?} and terminator {:?}; expected rolesanywhere/aws4_request",
            auth.service, auth.terminator
        )));
    }
    if auth.region != config.region {
        return Err(deny(format!(
            "credential scope region {} does not match this endpoint's region {}",
            auth.region, config.region
        )));
    }
    let amz_date = single_header(req.headers, "x-amz-date")?
        .ok_or_else(|| deny("missing x-amz-date header"))?;
    let signed_at = parse_amz_date(amz_date)
        .ok_or_else(|| deny(format!("x-amz-date {amz_date:?} is not YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(deny(format!(
            "credential scope date {} is not the date of x-amz-date {amz_date}",
            auth.date
        )));
    }
    let skew = (now - signed_at).whole_seconds();
    if skew.abs() > MAX_SKEW_SECONDS {
        return Err(deny(format!(
            "signature expired or not yet valid: x-amz-date {amz_date} is {skew} s from the server time (limit {MAX_SKEW_SECONDS} s)"
        )));
    }
    let chain_header = single_header(req.headers, "x-amz-x509-chain")?;
    let mut required = vec!["content-type", "host", "x-amz-date", "x-amz-x509"];
    if chain_header.is_some() {
        required.push("x-amz-x509-chain");
    }
    for name in &required {
        if !auth.signed_headers.iter().any(|h| h == name) {
            return Err(deny(format!("signed headers do not include {name}")));
        }
    }
    if auth
        .signed_headers
        .iter()
        .any(|h| h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(deny("signed header names must be lowercase"));
    }
    let leaf_b64 = single_header(req.headers, "x-amz-x509")?
        .ok_or_else(|| deny("missing x-amz-x509 header"))?;
    let leaf_der = decode_cert(leaf_b64, "x-amz-x509")?;
    let leaf = parse(&leaf_der)?;
    let mut signed = Authenticated {
        serial_decimal: leaf.tbs_certificate.serial.to_string(),
        leaf_der: Vec::new(),
        chain_ders: Vec::new(),
    };
    let with_serial = signed.tag();
    let leaf_key = PublicKey::from_spki(leaf.public_key())
        .map_err(|e| with_serial(deny(format!("certificate key not usable: {e}"))))?;
    let expected_alg = match leaf_key {
        PublicKey::Rsa { .. } => ALG_RSA,
        PublicKey::MlDsa { .. } => ALG_MLDSA,
        PublicKey::P256(_) | PublicKey::P384(_) | PublicKey::P521(_) => ALG_ECDSA,
    };
    if auth.algorithm != expected_alg {
        return Err(with_serial(deny(format!(
            "algorithm {} does not fit the certificate's {} key (expected {expected_alg})",
            auth.algorithm,
            leaf_key.describe()
        ))));
    }
    // The service canonicalizes SignedHeaders sorted; a client that signed them in another order
    // computed a different canonical request and must fail here as it would there.
    let mut sorted_headers = auth.signed_headers.clone();
    sorted_headers.sort();
    sorted_headers.dedup();
    let canonical = canonical_request(req, &sorted_headers).map_err(|e| with_serial(deny(e)))?;
    let scope = format!("{}/{}/{SERVICE}/aws4_request", auth.date, auth.region);
    let sts = string_to_sign(&auth.algorithm, amz_date, &scope, &canonical);
    let checked = if expected_alg == ALG_MLDSA {
        leaf_key.verify_ml_dsa(sts.as_bytes(), &auth.signature)
    } else {
        leaf_key.verify(Hash::Sha256, sts.as_bytes(), &auth.signature)
    };
    checked.map_err(|e| {
        with_serial(deny(match e {
            // A length that cannot be the key's says more than a failed check: truncated in
            // transit, or signed with another parameter set.
            crypto::CryptoError::SignatureLength { .. } => format!("Invalid signature: {e}"),
            _ => "Invalid signature".to_string(),
        }))
    })?;
    if auth.serial != signed.serial_decimal {
        return Err(with_serial(deny(format!(
            "credential serial {} is not the certificate's serial {}",
            auth.serial, signed.serial_decimal
        ))));
    }

    let mut chain_ders = Vec::new();
    if let Some(chain) = chain_header {
        for (i, part) in chain.split(',').enumerate() {
            chain_ders.push(
                decode_cert(part, &format!("x-amz-x509-chain certificate {i}"))
                    .map_err(&with_serial)?,
            );
        }
        if chain_ders.len() > MAX_INTERMEDIATES {
            return Err(with_serial(invalid(format!(
                "x-amz-x509-chain holds {} certificates; at most {MAX_INTERMEDIATES} are accepted",
                chain_ders.len()
            ))));
        }
    }
    // The tagger borrows `signed`, and the parsed leaf borrows `leaf_der`: both end here.
    drop(with_serial);
    drop(leaf);
    signed.leaf_der = leaf_der;
    signed.chain_ders = chain_ders;
    Ok(signed)
}

/// What the request asks for (query and body), and the trust anchor and profile it names, which
/// must exist and be enabled.
fn resolve<'c>(req: &HttpRequest<'_>, config: &'c Config) -> Result<Resources<'c>, Refusal> {
    let input = read_input(req)?;
    let anchor = config
        .trust_anchor(&input.trust_anchor_arn)
        .ok_or_else(|| not_found(format!("trust anchor {} not found", input.trust_anchor_arn)))?;
    let profile = config
        .profile(&input.profile_arn)
        .ok_or_else(|| not_found(format!("profile {} not found", input.profile_arn)))?;
    if !anchor.enabled {
        return Err(deny(format!("trust anchor {} is disabled", anchor.arn)));
    }
    if !profile.enabled {
        return Err(deny(format!("profile {} is disabled", profile.arn)));
    }
    Ok(Resources {
        input,
        anchor,
        profile,
    })
}

/// The leaf's own rules, its chain up to the trust anchor at `now`, and the profile's rules for the
/// role, the session name and the duration.
fn authorize(
    signed: &Authenticated,
    resources: Resources<'_>,
    config: &Config,
    now: OffsetDateTime,
) -> Result<Accepted, Refusal> {
    let with_serial = signed.tag();
    let Resources {
        input,
        anchor,
        profile,
    } = resources;
    let leaf = parse(&signed.leaf_der).map_err(&with_serial)?;
    check_leaf(&leaf).map_err(&with_serial)?;
    let mut path = vec![leaf];
    for der in &signed.chain_ders {
        path.push(parse(der).map_err(&with_serial)?);
    }
    check_chain(&path, anchor, now).map_err(&with_serial)?;

    if !profile.role_arns.contains(&input.role_arn) {
        return Err(with_serial(deny(format!(
            "profile {} does not list role {}",
            profile.arn, input.role_arn
        ))));
    }
    if input.role_session_name.is_some() && !profile.accept_role_session_name {
        return Err(with_serial(deny("Not authorized to set roleSessionName")));
    }
    let role_max = config.role_max_session(&input.role_arn);
    if input.duration_seconds > profile.duration_seconds {
        return Err(with_serial(invalid(format!(
            "durationSeconds {} exceeds the profile's durationSeconds {}",
            input.duration_seconds, profile.duration_seconds
        ))));
    }
    if input.duration_seconds > role_max {
        return Err(with_serial(invalid(format!(
            "durationSeconds {} exceeds the role's maximum session duration {role_max}",
            input.duration_seconds
        ))));
    }
    let leaf = &path[0];
    let subject_cn = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    let raw = leaf.raw_serial();
    let trimmed = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => raw,
    };
    Ok(Accepted {
        serial_decimal: signed.serial_decimal.clone(),
        serial_hex: hex::encode(trimmed),
        subject_cn,
        trust_anchor_arn: input.trust_anchor_arn,
        profile_arn: input.profile_arn,
        role_arn: input.role_arn,
        role_session_name: input.role_session_name,
        duration_seconds: input.duration_seconds,
        leaf_der: signed.leaf_der.clone(),
    })
}

/// What the caller asked for, from the query string and the JSON body.
struct Input {
    trust_anchor_arn: String,
    profile_arn: String,
    role_arn: String,
    role_session_name: Option<String>,
    duration_seconds: u32,
}

fn read_input(req: &HttpRequest<'_>) -> Result<Input, Refusal> {
    let query =
        parse_query(req.query).map_err(|e| invalid(format!("malformed query string: {e}")))?;
    let body: serde_json::Value = if req.body.is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| invalid(format!("request body is not JSON: {e}")))?
    };
    let Some(obj) = body.as_object() else {
        return Err(invalid("request body is not a JSON object"));
    };
    let arn = |name: &str| -> Result<String, Refusal> {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == name) {
            return Ok(v.clone());
        }
        match obj.get(name) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(invalid(format!("{name} must be a string"))),
            None => Err(invalid(format!(
                "{name} is required (query string or body)"
            ))),
        }
    };
    let trust_anchor_arn = arn("trustAnchorArn")?;
    let profile_arn = arn("profileArn")?;
    let role_arn = arn("roleArn")?;
    let duration_seconds = match obj.get("durationSeconds") {
        None | Some(serde_json::Value::Null) => 3600,
        Some(v) => {
            let n = v
                .as_u64()
                .ok_or_else(|| invalid("durationSeconds must be a whole number"))?;
            if !(900..=43200).contains(&n) {
                return Err(invalid(format!(
                    "durationSeconds {n} is outside 900..43200"
                )));
            }
            n as u32
        }
    };
    let role_session_name = match obj.get("roleSessionName") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => {
            let ok = (2..=64).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
            if !ok {
                return Err(invalid(format!(
                    "roleSessionName {s:?} must be 2..64 characters of [A-Za-z0-9_+=,.@-]"
                )));
            }
            Some(s.clone())
        }
        Some(_) => return Err(invalid("roleSessionName must be a string")),
    };
    Ok(Input {
        trust_anchor_arn,
        profile_arn,
        role_arn,
        role_session_name,
        duration_seconds,
    })
}

fn check_leaf(leaf: &X509Certificate<'_>) -> Result<(), Refusal> {
    if leaf.version() != X509Version::V3 {
        return Err(deny(
            "Untrusted signing certificate: the certificate is not X.509 v3",
        ));
    }
    match leaf.basic_constraints() {
        Ok(Some(bc)) if bc.value.ca => {
            return Err(deny(
                "Untrusted signing certificate: the certificate is a CA (basicConstraints CA:TRUE)",
            ));
        }
        Err(_) => {
            return Err(deny(
                "Untrusted signing certificate: malformed basicConstraints",
            ));
        }
        _ => {}
    }
    match leaf.key_usage() {
        Ok(Some(ku)) if !ku.value.digital_signature() => {
            return Err(deny(
                "Untrusted signing certificate: keyUsage lacks digitalSignature",
            ));
        }
        Err(_) => return Err(deny("Untrusted signing certificate: malformed keyUsage")),
        _ => {}
    }
    Ok(())
}

fn within_validity(cert: &X509Certificate<'_>, now: OffsetDateTime) -> Result<(), Refusal> {
    let t = now.unix_timestamp();
    let v = cert.validity();
    if t < v.not_before.timestamp() {
        return Err(deny(format!(
            "Untrusted signing certificate: {} is not valid before {}",
            cert.subject(),
            v.not_before
        )));
    }
    if t > v.not_after.timestamp() {
        return Err(deny(format!(
            "Untrusted signing certificate: {} expired at {}",
            cert.subject(),
            v.not_after
        )));
    }
    Ok(())
}

fn signed_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw()
        && PublicKey::from_spki(issuer.public_key())
            .and_then(|k| {
                crypto::verify_signed_object(child.as_raw(), &child.signature_algorithm, &k)
            })
            .is_ok()
}

fn check_chain(
    path: &[X509Certificate<'_>],
    anchor: &TrustAnchor,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    let anchors: Vec<X509Certificate<'_>> = anchor
        .certificates
        .iter()
        .filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c))
        .collect();
    let mut trusted_by = None;
    let mut used = 0;
    for (i, cert) in path.iter().enumerate() {
        used = i + 1;
        crypto::signature_algorithm(&cert.signature_algorithm).map_err(|e| {
            deny(format!(
                "Untrusted signing certificate: {}: {e}",
                cert.subject()
            ))
        })?;
        within_validity(cert, now)?;
        if let Some(a) = anchors
            .iter()
            .find(|a| a.as_raw() == cert.as_raw() || signed_by(cert, a))
        {
            trusted_by = Some(a);
            break;
        }
        match path.get(i + 1) {
            Some(next) if signed_by(cert, next) => {}
            Some(next) => {
                return Err(deny(format!(
                    "Untrusted signing certificate: {} is not issued by the next chain certificate {}",
                    cert.subject(),
                    next.subject()
                )));
            }
            None => {}
        }
    }
    let Some(root) = trusted_by else {
        return Err(deny(format!(
            "Untrusted signing certificate: no chain to trust anchor {} (check the intermediates sent in x-amz-x509-chain)",
            anchor.arn
        )));
    };
    within_validity(root, now)?;
    // The certificates the anchor vouches for, from the one it issued down to the leaf; a chain
    // that repeats the anchor itself does not make it a path member twice.
    let below: Vec<&X509Certificate<'_>> = path[..used]
        .iter()
        .rev()
        .filter(|c| c.as_raw() != root.as_raw())
        .collect();
    crate::path::check(root, &below)
        .map_err(|e| deny(format!("Untrusted signing certificate: {e}")))?;
    for crl_der in &anchor.crls {
        let Ok((_, crl)) = CertificateRevocationList::from_der(crl_der) else {
            return Err(deny(format!(
                "trust anchor {} holds a CRL that does not parse",
                anchor.arn
            )));
        };
        let crl_signer_ok = anchors.iter().any(|a| {
            a.subject().as_raw() == crl.issuer().as_raw()
                && PublicKey::from_spki(a.public_key())
                    .and_then(|k| {
                        crypto::verify_signed_object(crl_der, &crl.signature_algorithm, &k)
                    })
                    .is_ok()
        });
        if !crl_signer_ok {
            // A CRL the anchor did not sign says nothing about its certificates.
            continue;
        }
        for cert in &path[..used] {
            if cert.issuer().as_raw() == crl.issuer().as_raw()
                && crl
                    .iter_revoked_certificates()
                    .any(|r| *r.serial() == cert.tbs_certificate.serial)
            {
                return Err(deny(format!(
                    "Untrusted signing certificate: {} (serial {}) is revoked",
                    cert.subject(),
                    cert.tbs_certificate.serial
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: &str = "AWS4-X509-ECDSA-SHA256 Credential=4242/20260301/eu-west-2/rolesanywhere/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-x509, Signature=3045ab";

    #[test]
    fn authorization_header_is_split_into_its_parts() {
        let a = parse_authorization(AUTH).expect("valid");
        assert_eq!(a.algorithm, ALG_ECDSA);
        assert_eq!(
            (a.serial.as_str(), a.date.as_str(), a.region.as_str()),
            ("4242", "20260301", "eu-west-2")
        );
        assert_eq!(
            a.signed_headers,
            ["content-type", "host", "x-amz-date", "x-amz-x509"]
        );
        assert_eq!(a.signature, [0x30, 0x45, 0xab]);
    }

    #[test]
    fn malformed_authorization_headers_are_refused() {
        for bad in [
            "AWS4-X509-ECDSA-SHA256",
            &AUTH.replace("4242/", "10f2/"),
            &AUTH.replace("/aws4_request", ""),
            &AUTH.replace("Signature=3045ab", "Signature=zz"),
            &AUTH.replace(", Signature=3045ab", ""),
            &format!("{AUTH}, Signature=00"),
            &AUTH.replace("SignedHeaders", "Headers"),
        ] {
            assert!(parse_authorization(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn uri_encode_keeps_only_unreserved_characters() {
        assert_eq!(uri_encode(b"aZ09-_.~"), "aZ09-_.~");
        assert_eq!(uri_encode(b"a:b/c d+\xff"), "a%3Ab%2Fc%20d%2B%FF");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let headers = vec![
            (
                "Content-Type".to_string(),
                "  application/json  ".to_string(),
            ),
            ("X-Amz-Date".to_string(), "20260301T120000Z".to_string()),
            ("x-custom".to_string(), "a   b".to_string()),
            ("X-CUSTOM".to_string(), "c".to_string()),
        ];
        let req = HttpRequest {
            method: "POST",
            path: "/sessions",
            query: "",
            headers: &headers,
            body: b"",
        };
        let names = vec!["content-type".to_string(), "x-custom".to_string()];
        let c = canonical_request(&req, &names).expect("canonical");
        assert!(
            c.contains("content-type:application/json\nx-custom:a b,c\n\ncontent-type;x-custom\n"),
            "{c}"
        );
        assert!(c.ends_with("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        let missing = vec!["host".to_string()];
        assert!(canonical_request(&req, &missing).is_err());
    }

    #[test]
    fn amz_date_must_be_compact_utc() {
        assert!(parse_amz_date("20260301T120000Z").is_some());
        assert!(parse_amz_date("2026-03-01T12:00:00Z").is_none());
        assert!(parse_amz_date("20260301T120000").is_none());
    }
}
