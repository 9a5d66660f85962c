//! The emulator's CreateSession verifier on requests built from fuzz input and, unless the input
//! says otherwise, correctly signed with a vector key, so the fuzzer gets past the signature into
//! chain, revocation, query and body checks.
//!
//! Input: text fields separated by NUL: 0 options, 1 method, 2 path, 3 query, 4 extra headers
//! (`name:value` lines), 5 body, 6 chain (comma-separated: `@i` the vectors' intermediate, `@r` the
//! root, `@l` the leaf, anything else as given), 7 leaf base64 (option `x`), 8 signature hex
//! (option `u`), 9 a CRL (base64) for the trust anchor, 10 another anchor certificate (base64).
//! Options: `b` P-384 leaf, `c` RSA leaf (default P-256), `x` fuzzed leaf (signed with the P-256
//! key), `u` unsigned, `n` no default headers, `w` a date 301 s off. Empty method, path and query
//! take the vectors' values.
//!
//! Properties: no panic; an accepted request names the configured anchor, profile and role, and a
//! duration the profile and role allow.
#![no_main]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use rolesanywhere_emulator::config::{Config, Profile, TrustAnchor};
use rolesanywhere_emulator::verifier::{self, HttpRequest};
use std::sync::LazyLock;

const REGION: &str = "eu-west-2";
const ANCHOR: &str = "arn:aws:rolesanywhere:eu-west-2:111122223333:trust-anchor/fuzz";
const PROFILE: &str = "arn:aws:rolesanywhere:eu-west-2:111122223333:profile/fuzz";
const ROLE: &str = "arn:aws:iam::111122223333:role/Fuzz";
const DATE: &str = "20260301T120000Z";

fn pem_blocks(pem: &str) -> Vec<Vec<u8>> {
    pem.split("-----BEGIN ")
        .skip(1)
        .map(|block| {
            let body: String = block
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            STANDARD.decode(body).expect("vector PEM is valid base64")
        })
        .collect()
}

struct Vectors {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    p256: (Vec<u8>, p256::ecdsa::SigningKey),
    p384: (Vec<u8>, p384::ecdsa::SigningKey),
    rsa: (Vec<u8>, ring::signature::RsaKeyPair),
}

static VECTORS: LazyLock<Vectors> = LazyLock::new(|| {
    use p256::pkcs8::DecodePrivateKey as _;
    macro_rules! v {
        ($p:literal) => {
            include_str!(concat!("../../testdata/vectors/", $p))
        };
    }
    let cert = |pem: &str| pem_blocks(pem).remove(0);
    let key = |pem: &str| pem_blocks(pem).remove(0);
    Vectors {
        root: cert(v!("root-ca.pem")),
        intermediate: cert(v!("create-session-p384-chain/chain.pem")),
        p256: (
            cert(v!("create-session-p256/leaf.pem")),
            p256::ecdsa::SigningKey::from_pkcs8_der(&key(v!("create-session-p256/leaf.key")))
                .expect("vector P-256 key"),
        ),
        p384: (
            cert(v!("create-session-p384-chain/leaf.pem")),
            p384::ecdsa::SigningKey::from_pkcs8_der(&key(v!("create-session-p384-chain/leaf.key")))
                .expect("vector P-384 key"),
        ),
        rsa: (
            cert(v!("create-session-rsa/leaf.pem")),
            ring::signature::RsaKeyPair::from_pkcs8(&key(v!("create-session-rsa/leaf.key")))
                .expect("vector RSA key"),
        ),
    }
});

fn config(crl: &str, extra_anchor: &str) -> Config {
    let mut certificates = vec![VECTORS.root.clone()];
    if !extra_anchor.is_empty() {
        certificates.push(STANDARD.decode(extra_anchor.trim()).unwrap_or_default());
    }
    let crls = if crl.is_empty() {
        Vec::new()
    } else {
        vec![STANDARD.decode(crl.trim()).unwrap_or_default()]
    };
    Config {
        region: REGION.into(),
        trust_anchors: vec![TrustAnchor {
            arn: ANCHOR.into(),
            certificates,
            enabled: true,
            crls,
        }],
        profiles: vec![Profile {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 3600,
            accept_role_session_name: true,
            enabled: true,
            session_policy: None,
            managed_policy_arns: Vec::new(),
            attribute_mappings: Default::default(),
        }],
        roles: Vec::new(),
        faults: Vec::new(),
        admin: None,
        account_id: "123456789012".into(),
        state_file: None,
    }
}

fn serial_decimal(der: &[u8]) -> String {
    rolesanywhere_agent::certs::Certificate::from_der(der.to_vec())
        .map(|c| c.serial_decimal())
        .unwrap_or_else(|_| "1".into())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let f: Vec<&str> = text.split('\0').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or("");
    let opts = field(0);
    let v = &*VECTORS;

    let (leaf, alg) = if opts.contains('x') {
        (
            STANDARD.decode(field(7).trim()).unwrap_or_default(),
            verifier::ALG_ECDSA,
        )
    } else if opts.contains('c') {
        (v.rsa.0.clone(), verifier::ALG_RSA)
    } else if opts.contains('b') {
        (v.p384.0.clone(), verifier::ALG_ECDSA)
    } else {
        (v.p256.0.clone(), verifier::ALG_ECDSA)
    };
    let chain: Vec<String> = field(6)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|item| match item {
            "@i" => STANDARD.encode(&v.intermediate),
            "@r" => STANDARD.encode(&v.root),
            "@l" => STANDARD.encode(&leaf),
            other => other.to_string(),
        })
        .collect();
    let amz_date = if opts.contains('w') {
        "20260301T120501Z"
    } else {
        DATE
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    if !opts.contains('n') {
        headers.push(("Content-Type".into(), "application/json".into()));
        headers.push((
            "Host".into(),
            "rolesanywhere.eu-west-2.amazonaws.com".into(),
        ));
        headers.push(("X-Amz-Date".into(), amz_date.into()));
        headers.push(("X-Amz-X509".into(), STANDARD.encode(&leaf)));
        if !chain.is_empty() {
            headers.push(("X-Amz-X509-Chain".into(), chain.join(",")));
        }
    }
    for line in field(4).lines() {
        if let Some((n, val)) = line.split_once(':') {
            headers.push((n.to_string(), val.to_string()));
        }
    }
    let default_query = format!(
        "profileArn={}&roleArn={}&trustAnchorArn={}",
        verifier::uri_encode(PROFILE.as_bytes()),
        verifier::uri_encode(ROLE.as_bytes()),
        verifier::uri_encode(ANCHOR.as_bytes())
    );
    let method = Some(field(1)).filter(|s| !s.is_empty()).unwrap_or("POST");
    let path = Some(field(2))
        .filter(|s| !s.is_empty())
        .unwrap_or("/sessions");
    let query = Some(field(3))
        .filter(|s| !s.is_empty())
        .unwrap_or(&default_query);
    let body = field(5).as_bytes();

    // Sign what the verifier will canonicalize: every header present, names lowercase and sorted.
    let mut signed: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    signed.sort();
    signed.dedup();
    let unsigned = HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let scope = format!("{}/{REGION}/rolesanywhere/aws4_request", &DATE[..8]);
    let canonical = verifier::canonical_request(&unsigned, &signed).unwrap_or_default();
    let sts = verifier::string_to_sign(alg, amz_date, &scope, &canonical);
    let signature = if opts.contains('u') {
        field(8).to_string()
    } else if opts.contains('b') && !opts.contains('x') {
        // SigV4-X509 hashes with SHA-256 whatever the curve.
        use p384::ecdsa::signature::hazmat::PrehashSigner as _;
        let digest = ring::digest::digest(&ring::digest::SHA256, sts.as_bytes());
        let s: p384::ecdsa::Signature = v
            .p384
            .1
            .sign_prehash(digest.as_ref())
            .expect("P-384 signing of a SHA-256 digest");
        hex::encode(s.to_der().as_bytes())
    } else if opts.contains('c') {
        let mut sig = vec![0; v.rsa.1.public().modulus_len()];
        v.rsa
            .1
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                sts.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a vector key");
        hex::encode(sig)
    } else {
        use p256::ecdsa::signature::Signer as _;
        let s: p256::ecdsa::Signature = v.p256.1.sign(sts.as_bytes());
        hex::encode(s.to_der().as_bytes())
    };
    headers.push((
        "Authorization".into(),
        format!(
            "{alg} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            serial_decimal(&leaf),
            signed.join(";")
        ),
    ));
    let req = HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let now = time::macros::datetime!(2026-03-01 12:00:00 UTC);
    let decision = verifier::verify(&req, &config(field(9), field(10)), now);
    // To see where a seed ends up: FUZZ_VERBOSE=1 fuzz/target/…/emulator_verifier SEED
    if std::env::var_os("FUZZ_VERBOSE").is_some() {
        eprintln!("{decision:?}");
    }
    if let Ok(ok) = decision {
        assert_eq!(ok.trust_anchor_arn, ANCHOR);
        assert_eq!(ok.profile_arn, PROFILE);
        assert_eq!(ok.role_arn, ROLE);
        assert!((900..=3600).contains(&ok.duration_seconds));
    }
});
