//! ML-DSA identities (`AWS4-X509-MLDSA`): the verifier against Python `cryptography` (an
//! implementation we did not write) and the `ml-dsa` crate, the CA's certificates for ML-DSA keys
//! read back by Python, and CreateSession end to end: pure ML-DSA accepted (deterministic and
//! hedged), HashML-DSA, truncated signatures and algorithm/key mismatches refused.
//!
//! The Python tests skip when python3 lacks `cryptography` with ML-DSA (48 or later), and fail
//! instead when `HSM_TESTS_REQUIRED=1` or `CI` is set (scripts/install-deps installs it).

mod support;

use std::process::Command;
use std::str::FromStr as _;
use std::time::Duration;

use ml_dsa::pkcs8::DecodePrivateKey as _;
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::crypto::{CryptoError, MlDsaLevel, PublicKey};
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

const LEVELS: [(KeyType, &str); 3] = [
    (KeyType::MlDsa44, "44"),
    (KeyType::MlDsa65, "65"),
    (KeyType::MlDsa87, "87"),
];

/// A string to sign as a client builds it (the algorithm line is the ML-DSA one).
const STS: &str = "AWS4-X509-MLDSA\n20260301T120000Z\n20260301/us-east-1/rolesanywhere/aws4_request\n5f3e5b5c1ae0c1a5e0b06b2e4e6f4b0c5a5b7d7e7b0c2c4e9f1a3b5d7f9e1c3a";

/// The workspace's skip-or-fail rule (`hsm_tests::required`, which this crate cannot depend on:
/// hsm-tests depends on the emulator): `HSM_TESTS_REQUIRED=1` or a non-empty `CI`.
fn required() -> bool {
    std::env::var("HSM_TESTS_REQUIRED").is_ok_and(|v| v == "1")
        || std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// True when python3 has `cryptography` with ML-DSA; otherwise prints a SKIP line, or fails the
/// test when [`required`].
fn have_python_mldsa(test: &str) -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "from cryptography.hazmat.primitives.asymmetric import mldsa",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !required(),
            "python3 with cryptography 48 or later (ML-DSA) is required when HSM_TESTS_REQUIRED=1 or CI is set (scripts/install-deps installs it)"
        );
        eprintln!("SKIPPED {test}: python3 cryptography with ML-DSA (48 or later) is missing");
    }
    ok
}

const PY: &str = r#"import json, sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mldsa
PRIVATE = {'44': mldsa.MLDSA44PrivateKey, '65': mldsa.MLDSA65PrivateKey, '87': mldsa.MLDSA87PrivateKey}
PUBLIC = {'44': mldsa.MLDSA44PublicKey, '65': mldsa.MLDSA65PublicKey, '87': mldsa.MLDSA87PublicKey}
DER = serialization.Encoding.DER
"#;

fn python(script: &str, args: &[&str]) -> serde_json::Value {
    python_json(PY, script, args)
}

fn unhex(v: &serde_json::Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn level_of(kind: KeyType) -> MlDsaLevel {
    kind.ml_dsa_level().expect("an ML-DSA key type")
}

fn public_key_of(spki_der: &[u8]) -> PublicKey {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der).expect("SPKI");
    assert!(rest.is_empty());
    PublicKey::from_spki(&spki).expect("usable key")
}

#[test]
fn python_ml_dsa_signatures_verify_for_44_65_87_and_ours_verify_in_python() {
    if !have_python_mldsa("python_ml_dsa_signatures_verify_for_44_65_87_and_ours_verify_in_python")
    {
        return;
    }
    let seed = [0x5a_u8; 32];
    for (kind, n) in LEVELS {
        let level = level_of(kind);
        let out = python(
            "k = PRIVATE[sys.argv[1]].from_seed_bytes(bytes.fromhex(sys.argv[2]))\n\
             msg = sys.argv[3].encode()\n\
             pub = k.public_key()\n\
             ours = bytes.fromhex(sys.argv[4])\n\
             pub.verify(ours, msg)\n\
             print(json.dumps({'spki': pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo).hex(),\n\
               'raw': pub.public_bytes_raw().hex(), 'sig': k.sign(msg).hex(), 'sig2': k.sign(msg).hex(),\n\
               'ctx_sig': k.sign(msg, b'ctx').hex()}))\n",
            &[n, &hex::encode(seed), STS, &hex::encode(ours(kind, &seed))],
        );
        let key = public_key_of(&unhex(&out["spki"]));
        match &key {
            PublicKey::MlDsa { level: l, key } => {
                assert_eq!(*l, level);
                assert_eq!(*key, unhex(&out["raw"]), "{level}: the SPKI's BIT STRING");
            }
            other => panic!("{level}: read as {other:?}"),
        }
        let (sig, sig2) = (unhex(&out["sig"]), unhex(&out["sig2"]));
        assert_ne!(sig, sig2, "{level}: Python signs hedged");
        assert_eq!(key.verify_ml_dsa(STS.as_bytes(), &sig), Ok(()), "{level}");
        assert_eq!(key.verify_ml_dsa(STS.as_bytes(), &sig2), Ok(()), "{level}");
        let mut other = STS.as_bytes().to_vec();
        other.push(b'\n');
        assert_eq!(
            key.verify_ml_dsa(&other, &sig),
            Err(CryptoError::BadSignature)
        );
        assert_eq!(
            key.verify_ml_dsa(STS.as_bytes(), &unhex(&out["ctx_sig"])),
            Err(CryptoError::BadSignature),
            "{level}: a signature with a context is not AWS4-X509-MLDSA"
        );
        assert!(matches!(
            key.verify_ml_dsa(STS.as_bytes(), &sig[..sig.len() - 1]),
            Err(CryptoError::SignatureLength { .. })
        ));
    }
}

/// The `ml-dsa` crate's deterministic signature over [`STS`] with the key of `seed`.
fn ours(kind: KeyType, seed: &[u8; 32]) -> Vec<u8> {
    use ml_dsa::signature::Signer as _;
    let seed = ml_dsa::Seed::from(*seed);
    match kind {
        KeyType::MlDsa44 => ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(&seed)
            .sign(STS.as_bytes())
            .encode()
            .to_vec(),
        KeyType::MlDsa65 => ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&seed)
            .sign(STS.as_bytes())
            .encode()
            .to_vec(),
        _ => ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_seed(&seed)
            .sign(STS.as_bytes())
            .encode()
            .to_vec(),
    }
}

/// A Python key: (its seed-only PKCS#8 PEM, its PUBLIC KEY PEM, the raw public key).
fn python_key(n: &str) -> (String, String, Vec<u8>) {
    let out = python(
        "k = PRIVATE[sys.argv[1]].generate()\n\
         print(json.dumps({'key': k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),\n\
           'pub': k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(),\n\
           'raw': k.public_key().public_bytes_raw().hex()}))\n",
        &[n],
    );
    let s = |k: &str| out[k].as_str().expect("string").to_string();
    (s("key"), s("pub"), unhex(&out["raw"]))
}

#[test]
fn the_ca_certifies_python_ml_dsa_public_keys_and_python_reads_the_certificates() {
    if !have_python_mldsa(
        "the_ca_certifies_python_ml_dsa_public_keys_and_python_reads_the_certificates",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    // Each parameter set under a CA of another key type: the chain is ECDSA or RSA.
    for ((_, n), (ca_type, sig_oid)) in LEVELS.into_iter().zip([
        (KeyType::EcP256, "1.2.840.10045.4.3.2"),
        (KeyType::EcP384, "1.2.840.10045.4.3.3"),
        (KeyType::Rsa2048, "1.2.840.113549.1.1.11"),
    ]) {
        let ca = Ca::init(&tmp.path().join(n), ca_type, "ML-DSA Test Root").expect("CA");
        let (_, public_pem, raw) = python_key(n);
        let issued = ca
            .issue(&IssueRequest::new(
                &format!("CN=mldsa-{n},O=Test"),
                KeySource::PublicKeyPem(public_pem),
            ))
            .expect("issue");
        assert!(issued.key_pem.is_none());
        let out = python(
            "cert = x509.load_pem_x509_certificate(sys.argv[2].encode())\n\
             ca = x509.load_pem_x509_certificate(sys.argv[3].encode())\n\
             cert.verify_directly_issued_by(ca)\n\
             pub = cert.public_key()\n\
             ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value\n\
             print(json.dumps({'type': isinstance(pub, PUBLIC[sys.argv[1]]), 'raw': pub.public_bytes_raw().hex(),\n\
               'sig_oid': cert.signature_algorithm_oid.dotted_string, 'digital_signature': ku.digital_signature,\n\
               'serial': str(cert.serial_number)}))\n",
            &[n, &issued.cert_pem, &ca.cert_pem()],
        );
        assert_eq!(out["type"], true, "ML-DSA-{n}: {out}");
        assert_eq!(unhex(&out["raw"]), raw, "ML-DSA-{n}: the certified key");
        assert_eq!(out["sig_oid"], sig_oid, "ML-DSA-{n}");
        assert_eq!(out["digital_signature"], true);
        assert_eq!(out["serial"], issued.serial_decimal.as_str());
    }
}

#[test]
fn ml_dsa_keys_the_ca_generates_are_seed_only_pkcs8_as_python_writes_them() {
    if !have_python_mldsa("ml_dsa_keys_the_ca_generates_are_seed_only_pkcs8_as_python_writes_them")
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Root").expect("CA");
    for (kind, n) in LEVELS {
        let issued = ca
            .issue(&IssueRequest::new("CN=generated", KeySource::NewKey(kind)))
            .expect("issue");
        let key_pem = issued.key_pem.clone().expect("a new key");
        let ours = der_of(&key_pem).remove(0);
        // PrivateKeyInfo v1, the parameter set's OID, and privateKey = OCTET STRING { [0] IMPLICIT
        // OCTET STRING (32-byte seed) }: 54 bytes.
        assert_eq!(ours.len(), 54, "{}", hex::encode(&ours));
        assert_eq!(&ours[..5], [0x30, 0x34, 0x02, 0x01, 0x00]);
        assert_eq!(&ours[18..22], [0x04, 0x22, 0x80, 0x20]);
        let out = python(
            "k = serialization.load_pem_private_key(sys.argv[2].encode(), None)\n\
             cert = x509.load_pem_x509_certificate(sys.argv[3].encode())\n\
             print(json.dumps({'type': isinstance(k, PRIVATE[sys.argv[1]]),\n\
               'der': k.private_bytes(DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).hex(),\n\
               'matches': k.public_key().public_bytes_raw() == cert.public_key().public_bytes_raw()}))\n",
            &[n, &key_pem, &issued.cert_pem],
        );
        assert_eq!(out["type"], true, "ML-DSA-{n}: {out}");
        assert_eq!(
            unhex(&out["der"]),
            ours,
            "ML-DSA-{n}: Python writes the same PKCS#8 back"
        );
        assert_eq!(out["matches"], true, "ML-DSA-{n}: key and certificate");
    }
}

#[test]
fn ml_dsa_is_a_leaf_key_type_only_and_ml_dsa_csrs_are_refused_with_the_way_out() {
    assert_eq!(KeyType::from_str("ml-dsa-65").ok(), Some(KeyType::MlDsa65));
    for (kind, _) in LEVELS {
        assert_eq!(KeyType::from_str(kind.name()).ok(), Some(kind));
    }
    let unknown = KeyType::from_str("ml-dsa-66")
        .expect_err("unknown")
        .to_string();
    assert!(
        unknown.contains("ml-dsa-44, ml-dsa-65, ml-dsa-87"),
        "{unknown}"
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let err = Ca::init(&tmp.path().join("root"), KeyType::MlDsa65, "Root").expect_err("refused");
    assert!(err.is_usage());
    let msg = err.to_string();
    assert!(
        msg.contains("a CA key cannot be ml-dsa-65") && msg.contains("ec-p256"),
        "{msg}"
    );
    assert!(!tmp.path().join("root/ca.key").exists());

    // A CSR for an ML-DSA key, self-signed with pure ML-DSA (RFC 9881): the CA does not check
    // ML-DSA signatures on X.509 objects and says how to certify the key instead.
    let ca = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Root").expect("CA");
    let csr = ml_dsa_csr();
    let err = ca
        .issue(&IssueRequest::new("CN=csr", KeySource::Csr(csr)))
        .expect_err("refused");
    let msg = err.to_string();
    assert!(err.is_usage());
    assert!(
        msg.contains("ML-DSA-65") && msg.contains("--public-key"),
        "{msg}"
    );
}

/// `CertificationRequest` for an ML-DSA-65 key, signed with it.
fn ml_dsa_csr() -> Vec<u8> {
    use ml_dsa::pkcs8::EncodePublicKey as _;
    use ml_dsa::signature::{Keypair as _, Signer as _};
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = body.len();
        if n < 0x80 {
            out.push(n as u8);
        } else if n < 0x100 {
            out.extend([0x81, n as u8]);
        } else {
            out.extend([0x82, (n >> 8) as u8, n as u8]);
        }
        out.extend_from_slice(body);
        out
    }
    let sk = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&[9u8; 32].into());
    let spki = sk.verifying_key().to_public_key_der().expect("spki");
    // CN=csr
    let cn = tlv(
        0x30,
        &[&tlv(0x06, &[0x55, 0x04, 0x03])[..], &tlv(0x0c, b"csr")].concat(),
    );
    let subject = tlv(0x30, &tlv(0x31, &cn));
    let info = tlv(
        0x30,
        &[
            &tlv(0x02, &[0])[..],
            &subject,
            spki.as_bytes(),
            &tlv(0xa0, &[]),
        ]
        .concat(),
    );
    let alg = tlv(
        0x30,
        &tlv(
            0x06,
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12],
        ),
    );
    let sig = sk.sign(&info).encode();
    let bits = tlv(0x03, &[&[0u8][..], &sig].concat());
    tlv(0x30, &[info, alg, bits].concat())
}

struct Env {
    _tmp: tempfile::TempDir,
    root: Ca,
    server: Running,
}

impl Env {
    /// An in-process server over HTTP whose trust anchor is an `ca_type` root.
    fn start(ca_type: KeyType) -> Env {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = Ca::init(&tmp.path().join("root"), ca_type, "Test Root").expect("root CA");
        let toml = config_toml(tmp.path(), "", "");
        let config = Config::from_toml_str(&toml, tmp.path()).expect("config");
        let server = server::spawn(
            config,
            ServeOptions {
                listen: "127.0.0.1:0".parse().expect("addr"),
                tls: Tls::None,
            },
        )
        .expect("spawn");
        Env {
            _tmp: tmp,
            root,
            server,
        }
    }

    fn call(&self, id: &Identity, f: impl FnOnce(&mut Call)) -> Response {
        let host = self
            .server
            .url()
            .rsplit('/')
            .next()
            .expect("host")
            .to_string();
        let mut call = Call::new(&host, "{\"durationSeconds\":900}");
        f(&mut call);
        send(
            &self.server.url(),
            None,
            &sign(id, &call),
            Duration::from_secs(30),
        )
        .expect("request")
    }

    /// The last decision's message.
    fn last_message(&self) -> String {
        self.server
            .decisions()
            .last()
            .expect("a decision")
            .message
            .clone()
    }
}

fn assert_denied(r: &Response, needle: &str) {
    assert_eq!(r.status, 403, "body: {}", r.body);
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    let msg = r.json()["message"].as_str().expect("message").to_string();
    assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
}

#[test]
fn ml_dsa_44_65_87_sessions_are_issued_directly_and_through_an_intermediate() {
    let env = Env::start(KeyType::EcP256);
    for (kind, _) in LEVELS {
        let id = leaf(&env.root, kind, kind.name());
        let r = env.call(&id, |_| {});
        assert_eq!(r.status, 201, "{}: {}", kind.name(), r.body);
        assert_eq!(
            r.json()["credentialSet"][0]["roleArn"].as_str(),
            Some(ROLE),
            "{}",
            r.body
        );
    }
    let inter_dir = env._tmp.path().join("inter");
    let inter = env
        .root
        .intermediate(&inter_dir, "Inter")
        .expect("intermediate");
    let issued = inter
        .issue(&IssueRequest::new(
            "CN=via-inter",
            KeySource::NewKey(KeyType::MlDsa87),
        ))
        .expect("issue");
    let chain = std::fs::read_to_string(inter_dir.join("chain.pem")).expect("chain.pem");
    let r = env.call(&identity(issued, Some(chain)), |_| {});
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn a_request_signed_by_python_cryptography_is_accepted_and_with_a_context_refused() {
    if !have_python_mldsa(
        "a_request_signed_by_python_cryptography_is_accepted_and_with_a_context_refused",
    ) {
        return;
    }
    let env = Env::start(KeyType::Rsa2048);
    for (_, n) in LEVELS {
        let (key_pem, public_pem, _) = python_key(n);
        let issued = env
            .root
            .issue(&IssueRequest::new(
                &format!("CN=python-{n}"),
                KeySource::PublicKeyPem(public_pem),
            ))
            .expect("issue");
        let id = Identity {
            cert_pem: issued.cert_pem,
            chain_pem: None,
            key_pem: key_pem.clone(),
            serial_decimal: issued.serial_decimal,
        };
        for (context, status) in [("", 201), ("ctx", 403)] {
            let key_pem = key_pem.clone();
            let ctx = context.to_string();
            let r = env.call(&id, |c| {
                c.signer = Some(Box::new(move |msg: &[u8]| {
                    let out = python(
                        "k = serialization.load_pem_private_key(sys.argv[1].encode(), None)\n\
                         ctx = sys.argv[3].encode() or None\n\
                         print(json.dumps({'sig': k.sign(bytes.fromhex(sys.argv[2]), ctx).hex()}))\n",
                        &[&key_pem, &hex::encode(msg), &ctx],
                    );
                    unhex(&out["sig"])
                }))
            });
            assert_eq!(
                r.status, status,
                "ML-DSA-{n} context {context:?}: {}",
                r.body
            );
        }
    }
}

/// A way to sign the string to sign with an ML-DSA-65 key.
type SignWith = fn(&ml_dsa::ExpandedSigningKey<ml_dsa::MlDsa65>, &[u8]) -> Vec<u8>;

/// `sign` with the ML-DSA key of `id` through `f(key, string to sign)`.
fn with_key(id: &Identity, f: SignWith) -> Signer {
    let der = der_of(&id.key_pem).remove(0);
    let sk = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_pkcs8_der(&der).expect("ML-DSA-65 key");
    Box::new(move |msg| f(sk.expanded_key(), msg))
}

#[test]
fn hash_ml_dsa_prehashed_truncated_and_tampered_signatures_are_refused() {
    let env = Env::start(KeyType::EcP256);
    let id = leaf(&env.root, KeyType::MlDsa65, "c");
    // The right scheme first, through the same path: the refusals below are the scheme's.
    let r = env.call(&id, |c| {
        c.signer = Some(with_key(&id, |k, m| {
            k.sign_deterministic(m, &[])
                .expect("sign")
                .encode()
                .to_vec()
        }))
    });
    assert_eq!(r.status, 201, "{}", r.body);
    let refused: [SignWith; 2] = [
        // HashML-DSA-SHA256: M' = 01 ‖ 00 ‖ OID(SHA-256) ‖ SHA-256(M).
        |k, m| {
            let digest = ring::digest::digest(&ring::digest::SHA256, m);
            let oid = [
                0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
            ];
            k.sign_internal(&[&[1, 0], &oid, digest.as_ref()], &Default::default())
                .encode()
                .to_vec()
        },
        // Pure ML-DSA over the SHA-256 of the string to sign, as for ECDSA.
        |k, m| {
            let digest = ring::digest::digest(&ring::digest::SHA256, m);
            k.sign_deterministic(digest.as_ref(), &[])
                .expect("sign")
                .encode()
                .to_vec()
        },
    ];
    for f in refused {
        let r = env.call(&id, |c| c.signer = Some(with_key(&id, f)));
        assert_denied(&r, "Invalid signature");
    }
    let r = env.call(&id, |c| c.corrupt_signature = true);
    assert_denied(&r, "Invalid signature");
    let r = env.call(&id, |c| {
        c.signer = Some(with_key(&id, |k, m| {
            let mut s = k
                .sign_deterministic(m, &[])
                .expect("sign")
                .encode()
                .to_vec();
            s.pop();
            s
        }))
    });
    assert_denied(
        &r,
        "Invalid signature: an ML-DSA-65 signature is 3309 bytes, this one 3308",
    );
    assert!(env.last_message().contains("ML-DSA-65"));
    let r = env.call(&id, |c| c.signer = Some(Box::new(|_| Vec::new())));
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn algorithm_and_key_must_match_both_ways() {
    let env = Env::start(KeyType::EcP256);
    let mldsa = leaf(&env.root, KeyType::MlDsa44, "m");
    for alg in ["AWS4-X509-ECDSA-SHA256", "AWS4-X509-RSA-SHA256"] {
        let r = env.call(&mldsa, |c| c.algorithm = Some(alg.into()));
        assert_denied(
            &r,
            &format!(
                "algorithm {alg} does not fit the certificate's ML-DSA-44 key (expected AWS4-X509-MLDSA)"
            ),
        );
        assert!(env.last_message().contains(alg));
    }
    for (kind, family, expected) in [
        (KeyType::EcP256, "ec", "AWS4-X509-ECDSA-SHA256"),
        (KeyType::Rsa2048, "rsa", "AWS4-X509-RSA-SHA256"),
    ] {
        let id = leaf(&env.root, kind, "classic");
        let r = env.call(&id, |c| c.algorithm = Some("AWS4-X509-MLDSA".into()));
        assert_denied(
            &r,
            &format!(
                "algorithm AWS4-X509-MLDSA does not fit the certificate's {family} key (expected {expected})"
            ),
        );
    }
    let r = env.call(&mldsa, |c| {
        c.algorithm = Some("AWS4-X509-MLDSA-SHA256".into())
    });
    assert_denied(
        &r,
        "expected AWS4-X509-RSA-SHA256, AWS4-X509-ECDSA-SHA256 or AWS4-X509-MLDSA",
    );
}

fn emulator(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rolesanywhere-emulator"))
        .args(args)
        .env_clear()
        .output()
        .expect("run rolesanywhere-emulator")
}

/// The certified key's SubjectPublicKeyInfo (DER) in a certificate PEM file.
fn certified_spki(cert: &std::path::Path) -> Vec<u8> {
    let pem = std::fs::read_to_string(cert).expect("certificate");
    let der = der_of(&pem).remove(0);
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(&der).expect("certificate");
    c.public_key().raw.to_vec()
}

#[test]
fn the_command_line_issues_ml_dsa_leaves_from_new_and_given_keys_and_refuses_an_ml_dsa_ca() {
    use ml_dsa::pkcs8::EncodePublicKey as _;
    use ml_dsa::signature::Keypair as _;
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_string();
    let run = |args: &[&str]| {
        let out = emulator(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["ca", "init", "--dir", &path("root")]);
    let (key, cert) = (path("leaf.key"), path("leaf.pem"));
    run(&[
        "ca",
        "issue",
        "--dir",
        &path("root"),
        "--new-key",
        "ml-dsa-65",
        "--key-out",
        &key,
        "--subject",
        "CN=leaf",
        "--out",
        &cert,
    ]);
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key_der = der_of(&std::fs::read_to_string(&key).expect("key")).remove(0);
    let sk = ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_pkcs8_der(&key_der).expect("ML-DSA-65");
    let spki = sk.verifying_key().to_public_key_der().expect("spki");
    assert_eq!(
        certified_spki(cert.as_ref()),
        spki.as_bytes(),
        "key and certificate"
    );

    // The same public key as a PUBLIC KEY PEM.
    let public = path("given.pub");
    std::fs::write(
        &public,
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, spki.as_bytes())
        ),
    )
    .expect("write");
    let given = path("given.pem");
    run(&[
        "ca",
        "issue",
        "--dir",
        &path("root"),
        "--public-key",
        &public,
        "--subject",
        "CN=given",
        "--out",
        &given,
    ]);
    assert_eq!(certified_spki(given.as_ref()), spki.as_bytes());

    run(&[
        "init",
        "--dir",
        &path("demo"),
        "--client-key-type",
        "ml-dsa-44",
    ]);
    let client = der_of(&std::fs::read_to_string(path("demo/client.key")).expect("key")).remove(0);
    assert!(ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_pkcs8_der(&client).is_ok());
    let client_spki = certified_spki(tmp.path().join("demo/client.pem").as_ref());
    assert!(matches!(
        public_key_of(&client_spki),
        PublicKey::MlDsa {
            level: MlDsaLevel::MlDsa44,
            ..
        }
    ));

    let out = emulator(&[
        "ca",
        "init",
        "--dir",
        &path("pq"),
        "--key-type",
        "ml-dsa-87",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a CA key cannot be ml-dsa-87"), "{stderr}");
    assert!(!tmp.path().join("pq/ca.key").exists());
}
