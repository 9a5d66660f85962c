//! Golden tests over `testdata/vectors/` and behaviour tests of the signing core.
//!
//! They live in the agent, not in the core crate, because the vectors hold PEM certificates and chains
//! that only the agent parses and orders. The test signer below loads `leaf.key` with the RustCrypto
//! crates directly, independent of the file-key backend.

use super::*;
use crate::certs::{self, Certificate};
use crate::keys::PublicKey;
use crate::keys::PublicKeyDer as _;
use crate::signer::{SignError, Signer};
use ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};
use pkcs8::DecodePrivateKey as _;
use sha2::Digest as _;
use spki::EncodePublicKey as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

enum TestKey {
    Rsa(rsa::RsaPrivateKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

/// Signs with a PKCS#8 PEM key loaded by the RustCrypto crates; records the digests it was handed.
struct TestSigner {
    key: TestKey,
    public: PublicKey,
    seen: Mutex<Vec<Digest>>,
}

impl TestSigner {
    fn load(path: &Path) -> TestSigner {
        let pem = std::fs::read_to_string(path).unwrap();
        let (key, spki) = if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(&pem) {
            let spki = k.to_public_key().to_public_key_der().unwrap();
            (TestKey::Rsa(k), spki)
        } else if let Ok(k) = p256::SecretKey::from_pkcs8_pem(&pem) {
            let spki = k.public_key().to_public_key_der().unwrap();
            (TestKey::P256(p256::ecdsa::SigningKey::from(&k)), spki)
        } else {
            let k = p384::SecretKey::from_pkcs8_pem(&pem).unwrap();
            let spki = k.public_key().to_public_key_der().unwrap();
            (TestKey::P384(p384::ecdsa::SigningKey::from(&k)), spki)
        };
        TestSigner {
            key,
            public: PublicKey::from_spki_der(spki.as_bytes()).unwrap(),
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl Signer for TestSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, SignError> {
        self.seen.lock().unwrap().push(digest.clone());
        Ok(match &self.key {
            TestKey::Rsa(k) => k
                .sign(
                    rsa::Pkcs1v15Sign::new_unprefixed(),
                    &crate::signer::encoding::rsa_digest_info(digest),
                )
                .unwrap(),
            TestKey::P256(k) => {
                let s: p256::ecdsa::DerSignature = k.sign_prehash(digest.as_bytes()).unwrap();
                s.as_bytes().to_vec()
            }
            TestKey::P384(k) => {
                let s: p384::ecdsa::DerSignature = k.sign_prehash(digest.as_bytes()).unwrap();
                s.as_bytes().to_vec()
            }
        })
    }

    fn describe(&self) -> String {
        "test key".into()
    }
}

/// A signer that returns a fixed (wrong) answer, to test the checks on backend output.
struct FixedSigner {
    public: PublicKey,
    answer: Vec<u8>,
}

impl Signer for FixedSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, _: &Digest) -> Result<Vec<u8>, SignError> {
        Ok(self.answer.clone())
    }
    fn describe(&self) -> String {
        "fixed signer".into()
    }
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors")
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// ECDSA verification with the public key, SHA-256 of `message`, DER signature.
fn ecdsa_verifies(key: &PublicKey, message: &[u8], der: &[u8]) -> bool {
    let prehash = sha2::Sha256::digest(message);
    let PublicKey::Ec { curve, point } = key else {
        panic!("not an EC key")
    };
    match curve {
        crate::keys::Curve::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .unwrap()
            .verify_prehash(
                &prehash,
                &p256::ecdsa::DerSignature::from_bytes(der).unwrap(),
            )
            .is_ok(),
        crate::keys::Curve::P384 => p384::ecdsa::VerifyingKey::from_sec1_bytes(point)
            .unwrap()
            .verify_prehash(
                &prehash,
                &p384::ecdsa::DerSignature::from_bytes(der).unwrap(),
            )
            .is_ok(),
        crate::keys::Curve::P521 => unreachable!("no P-521 vector"),
    }
}

struct Case {
    dir: PathBuf,
    context: serde_json::Value,
    leaf: Certificate,
    chain: Vec<Certificate>,
    query: Vec<(String, String)>,
    time: time::OffsetDateTime,
}

impl Case {
    fn load(dir: PathBuf) -> Case {
        let context: serde_json::Value = serde_json::from_str(&read(&dir, "context.json")).unwrap();
        let leaf = certs::load_pem_file(&dir.join(context["certificate"].as_str().unwrap()))
            .unwrap()
            .remove(0);
        let chain = match context["intermediates"].as_str() {
            Some(f) => certs::load_pem_file(&dir.join(f)).unwrap(),
            None => Vec::new(),
        };
        // Reversed so that the sorting in the canonical query is exercised.
        let query: Vec<(String, String)> = context["query"]
            .as_object()
            .unwrap()
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let format =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let time = time::PrimitiveDateTime::parse(context["time"].as_str().unwrap(), format)
            .unwrap()
            .assume_utc();
        Case {
            dir,
            context,
            leaf,
            chain,
            query,
            time,
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: self.context["method"].as_str().unwrap(),
            host: self.context["host"].as_str().unwrap(),
            path: self.context["path"].as_str().unwrap(),
            query: &self.query,
            content_type: "application/json",
            body: self.context["body"].as_str().unwrap().as_bytes(),
        }
    }

    fn input(&self) -> SigningInput<'_> {
        SigningInput {
            region: self.context["region"].as_str().unwrap(),
            time: self.time,
            leaf: &self.leaf,
            chain: &self.chain,
        }
    }
}

fn all_cases() -> Vec<Case> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(vectors())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("context.json").is_file())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 3, "expected the three golden cases in {dirs:?}");
    dirs.into_iter().map(Case::load).collect()
}

#[test]
fn golden_canonical_strings_match_byte_for_byte() {
    for case in all_cases() {
        let name = case.dir.display().to_string();
        let parts = case.parts();
        let date = amz_date(case.time);
        assert_eq!(date, case.context["time"].as_str().unwrap(), "{name}");
        let x509 = case.leaf.der_base64();
        let chain = chain_header(&case.chain).unwrap();
        let headers = headers_to_sign(&parts, &date, &x509, chain.as_deref());

        assert_eq!(
            canonical_query(&case.query),
            read(&case.dir, "canonical-query.txt"),
            "{name}"
        );
        assert_eq!(
            signed_headers(&headers),
            read(&case.dir, "signed-headers.txt"),
            "{name}"
        );
        let canonical = canonical_request(&parts, &headers);
        assert_eq!(
            canonical,
            read(&case.dir, "canonical-request.txt"),
            "{name}"
        );
        let algorithm = case.context["algorithm"].as_str().unwrap();
        let scope = credential_scope(case.time, case.input().region);
        assert_eq!(
            string_to_sign(algorithm, &date, &scope, &canonical),
            read(&case.dir, "string-to-sign.txt"),
            "{name}"
        );
    }
}

#[test]
fn golden_sign_request_produces_expected_headers() {
    for case in all_cases() {
        let name = case.dir.display().to_string();
        let signer = TestSigner::load(&case.dir.join("leaf.key"));
        let signed = sign_request(&case.parts(), &case.input(), &signer).unwrap();
        let expected_auth = read(&case.dir, "authorization.txt");
        let sts = read(&case.dir, "string-to-sign.txt");
        assert_eq!(
            signed.canonical_request,
            read(&case.dir, "canonical-request.txt")
        );
        assert_eq!(signed.string_to_sign, sts);
        assert_eq!(
            algorithm_for(signer.key_kind()),
            case.context["algorithm"].as_str().unwrap()
        );

        let names: Vec<&str> = signed.headers.iter().map(|(n, _)| n.as_str()).collect();
        let value = |n: &str| {
            signed
                .headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            value("X-Amz-Date").unwrap(),
            case.context["time"].as_str().unwrap()
        );
        assert_eq!(value("X-Amz-X509").unwrap(), case.leaf.der_base64());
        if case.chain.is_empty() {
            assert_eq!(
                names,
                ["X-Amz-Date", "X-Amz-X509", "Authorization"],
                "{name}"
            );
        } else {
            assert_eq!(
                names,
                [
                    "X-Amz-Date",
                    "X-Amz-X509",
                    "X-Amz-X509-Chain",
                    "Authorization"
                ],
                "{name}"
            );
            // The chain header is the one in the canonical request, which the vector fixes.
            let chain = value("X-Amz-X509-Chain").unwrap();
            assert!(
                signed
                    .canonical_request
                    .contains(&format!("\nx-amz-x509-chain:{chain}\n")),
                "{name}"
            );
        }

        let auth = value("Authorization").unwrap();
        if case.context["signature_is_deterministic"]
            .as_bool()
            .unwrap()
        {
            assert_eq!(auth, expected_auth, "{name}");
        } else {
            let (prefix, ours) = auth.split_once("Signature=").unwrap();
            let (expected_prefix, theirs) = expected_auth.split_once("Signature=").unwrap();
            assert_eq!(prefix, expected_prefix, "{name}");
            for sig in [ours, theirs] {
                assert!(
                    ecdsa_verifies(
                        case.leaf.public_key(),
                        sts.as_bytes(),
                        &hex::decode(sig).unwrap()
                    ),
                    "{name}: signature {sig} does not verify"
                );
            }
        }

        // Only SHA-256 of the string to sign reached the signer, for every curve.
        let seen = signer.seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].alg(), HashAlg::Sha256);
        assert_eq!(
            seen[0].as_bytes(),
            sha2::Sha256::digest(sts.as_bytes()).as_slice()
        );
    }
}

#[test]
fn golden_p384_chain_header_is_chain_pem_in_order() {
    let case = Case::load(vectors().join("create-session-p384-chain"));
    assert_eq!(case.chain.len(), 1);
    // build_chain finds the same chain from a shuffled bundle with the root and the leaf mixed in.
    let root = certs::load_pem_file(&vectors().join("root-ca.pem")).unwrap();
    let mut candidates = root.clone();
    candidates.push(case.leaf.clone());
    candidates.extend(case.chain.iter().cloned());
    candidates.extend(case.chain.iter().cloned());
    let built = certs::build_chain(&case.leaf, candidates).unwrap();
    assert_eq!(built, case.chain);

    let header = chain_header(&built).unwrap().unwrap();
    let canonical = read(&case.dir, "canonical-request.txt");
    assert!(canonical.contains(&format!("\nx-amz-x509-chain:{header}\n")));
    assert!(!header.contains(','), "one intermediate, no separator");
}

#[test]
fn chain_header_joins_with_commas_in_issuer_order() {
    let case = Case::load(vectors().join("create-session-p384-chain"));
    let root = certs::load_pem_file(&vectors().join("root-ca.pem")).unwrap();
    let two = vec![case.chain[0].clone(), root[0].clone()];
    assert_eq!(
        chain_header(&two).unwrap().unwrap(),
        format!("{},{}", case.chain[0].der_base64(), root[0].der_base64())
    );
    assert_eq!(chain_header::<Certificate>(&[]).unwrap(), None);
}

#[test]
fn sign_request_rejects_more_than_five_intermediates() {
    let case = Case::load(vectors().join("create-session-p384-chain"));
    let signer = TestSigner::load(&case.dir.join("leaf.key"));
    let six = vec![case.chain[0].clone(); 6];
    let input = SigningInput {
        chain: &six,
        ..case.input()
    };
    let err = sign_request(&case.parts(), &input, &signer).unwrap_err();
    assert!(matches!(err, Error::ChainTooLong(6)), "{err:?}");
    assert!(signer.seen.lock().unwrap().is_empty(), "nothing was signed");
    let five = vec![case.chain[0].clone(); 5];
    assert_eq!(
        chain_header(&five).unwrap().unwrap().matches(',').count(),
        4
    );
}

#[test]
fn sign_request_rejects_malformed_backend_signatures() {
    let rsa = Case::load(vectors().join("create-session-rsa"));
    let short = FixedSigner {
        public: rsa.leaf.public_key().clone(),
        answer: vec![1; 255],
    };
    let err = sign_request(&rsa.parts(), &rsa.input(), &short).unwrap_err();
    assert!(
        matches!(err, Error::Sign(SignError::MalformedSignature { .. })),
        "{err:?}"
    );
    // Printed as the chain `cannot sign request: test key returned a malformed …`.
    assert_eq!(err.to_string(), "cannot sign request");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("255 bytes, expected 256"), "{cause}");
    assert_eq!(err.class(), crate::signer::ErrorClass::Operational);

    let ec = Case::load(vectors().join("create-session-p256"));
    let raw = FixedSigner {
        public: ec.leaf.public_key().clone(),
        answer: vec![1; 64],
    };
    let err = sign_request(&ec.parts(), &ec.input(), &raw).unwrap_err();
    assert!(
        matches!(err, Error::Sign(SignError::MalformedSignature { .. })),
        "{err:?}"
    );
}

#[test]
fn canonical_query_encodes_everything_but_unreserved() {
    let q = vec![
        ("b".to_string(), "a b+c".to_string()),
        ("a".to_string(), "x/y~z*-_.".to_string()),
        ("c d".to_string(), "é=&".to_string()),
        ("a".to_string(), "".to_string()),
    ];
    assert_eq!(
        canonical_query(&q),
        "a=&a=x%2Fy~z%2A-_.&b=a%20b%2Bc&c%20d=%C3%A9%3D%26"
    );
    assert_eq!(canonical_query(&[]), "");
}

#[test]
fn canonical_request_lowercases_trims_collapses_and_sorts_headers() {
    let parts = RequestParts {
        method: "POST",
        host: "h",
        path: "/sessions",
        query: &[],
        content_type: "x",
        body: b"",
    };
    let headers = [
        ("X-Amz-Date", "  20260301T120000Z "),
        ("Host", "a   b  c"),
        ("Content-Type", "application/json"),
    ];
    let expected = "POST\n/sessions\n\ncontent-type:application/json\nhost:a b c\n\
                    x-amz-date:20260301T120000Z\n\ncontent-type;host;x-amz-date\n\
                    e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(canonical_request(&parts, &headers), expected);
    assert_eq!(signed_headers(&headers), "content-type;host;x-amz-date");
}

#[test]
fn amz_date_is_utc_whole_seconds() {
    let t = time::macros::datetime!(2026-03-01 14:00:00.999 +02:00);
    assert_eq!(amz_date(t), "20260301T120000Z");
    assert_eq!(
        credential_scope(t, "eu-west-2"),
        "20260301/eu-west-2/rolesanywhere/aws4_request"
    );
}

/// `openssl dgst` over the same message, for an independent reference.
fn openssl(args: &[&str], dir: &Path) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed to run this test (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn sign_test_string_rsa_matches_openssl_for_every_digest() {
    let dir = vectors().join("create-session-rsa");
    let signer = TestSigner::load(&dir.join("leaf.key"));
    let tmp = tempfile::tempdir().unwrap();
    let msg = tmp.path().join("msg");
    std::fs::write(&msg, test_string_message(signer.public_key())).unwrap();
    let key = dir.join("leaf.key");
    for (alg, flag) in [
        (HashAlg::Sha256, "-sha256"),
        (HashAlg::Sha384, "-sha384"),
        (HashAlg::Sha512, "-sha512"),
    ] {
        let ours = sign_test_string(&signer, alg).unwrap();
        let theirs = openssl(
            &[
                "dgst",
                flag,
                "-sign",
                key.to_str().unwrap(),
                msg.to_str().unwrap(),
            ],
            tmp.path(),
        );
        assert_eq!(hex::encode(ours), hex::encode(theirs), "{alg:?}");
    }
}

#[test]
fn sign_test_string_ecdsa_verifies_with_openssl() {
    let dir = vectors().join("create-session-p384-chain");
    let signer = TestSigner::load(&dir.join("leaf.key"));
    let tmp = tempfile::tempdir().unwrap();
    let msg = tmp.path().join("msg");
    std::fs::write(&msg, test_string_message(signer.public_key())).unwrap();
    let pubkey = tmp.path().join("pub.pem");
    let key = dir.join("leaf.key");
    openssl(
        &[
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            pubkey.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let sig = tmp.path().join("sig");
    for (alg, flag) in [(HashAlg::Sha256, "-sha256"), (HashAlg::Sha384, "-sha384")] {
        std::fs::write(&sig, sign_test_string(&signer, alg).unwrap()).unwrap();
        let out = openssl(
            &[
                "dgst",
                flag,
                "-verify",
                pubkey.to_str().unwrap(),
                "-signature",
                sig.to_str().unwrap(),
                msg.to_str().unwrap(),
            ],
            tmp.path(),
        );
        assert_eq!(
            String::from_utf8_lossy(&out).trim(),
            "Verified OK",
            "{alg:?}"
        );
    }
}

#[test]
fn test_string_message_hashes_public_key_bytes() {
    let signer = TestSigner::load(&vectors().join("create-session-p256/leaf.key"));
    let msg = test_string_message(signer.public_key());
    let prefix = b"AWS Roles Anywhere Credential Helper Signing Test1";
    assert_eq!(&msg[..prefix.len()], prefix);
    let PublicKey::Ec { point, .. } = signer.public_key() else {
        panic!("p256 vector is EC")
    };
    let mut inner = b"IAM RA".to_vec();
    inner.extend_from_slice(point);
    assert_eq!(
        &msg[prefix.len()..],
        sha2::Sha256::digest(&inner).as_slice()
    );
    assert_eq!(msg.len(), prefix.len() + 32);
}

/// An ML-DSA-65 signer from a fixed seed (RustCrypto `ml-dsa` directly, not the file backend) that
/// records the μ it is handed and never accepts a hash digest.
struct MlDsaTestSigner {
    key: Box<ml_dsa::SigningKey<ml_dsa::MlDsa65>>,
    public: PublicKey,
    seen: Mutex<Vec<MlDsaMu>>,
    truncate: bool,
}

impl MlDsaTestSigner {
    fn new(truncate: bool) -> MlDsaTestSigner {
        use ml_dsa::Keypair as _;
        let key = Box::new(ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(
            &[11u8; 32].into(),
        ));
        let public = PublicKey::ml_dsa(
            crate::keys::MlDsaSet::MlDsa65,
            &key.verifying_key().encode(),
        )
        .unwrap();
        MlDsaTestSigner {
            key,
            public,
            seen: Mutex::new(Vec::new()),
            truncate,
        }
    }
}

impl Signer for MlDsaTestSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, _: &Digest) -> Result<Vec<u8>, SignError> {
        panic!("an ML-DSA key was handed a hash digest")
    }
    fn sign_ml_dsa_mu(&self, mu: &MlDsaMu) -> Result<Vec<u8>, SignError> {
        self.seen.lock().unwrap().push(mu.clone());
        let mut sig = self
            .key
            .expanded_key()
            .sign_mu_deterministic(&(*mu.as_bytes()).into())
            .encode()
            .to_vec();
        if self.truncate {
            sig.pop();
        }
        Ok(sig)
    }
    fn describe(&self) -> String {
        "ml-dsa test key".into()
    }
}

#[test]
fn ml_dsa_keys_sign_the_mu_of_the_string_to_sign_as_aws4_x509_mldsa() {
    use ml_dsa::Keypair as _;
    let case = Case::load(vectors().join("create-session-p256"));
    let signer = MlDsaTestSigner::new(false);
    let signed = sign_request(&case.parts(), &case.input(), &signer).unwrap();
    assert!(signed.string_to_sign.starts_with("AWS4-X509-MLDSA\n"));
    let seen = signer.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0],
        MlDsaMu::compute(&signer.public, signed.string_to_sign.as_bytes()).unwrap()
    );
    let auth = &signed.headers.last().unwrap().1;
    assert!(auth.starts_with("AWS4-X509-MLDSA Credential="), "{auth}");
    let sig_hex = auth.rsplit("Signature=").next().unwrap();
    let sig = hex::decode(sig_hex).unwrap();
    assert_eq!(sig.len(), 3309);
    // Pure ML-DSA over the whole string to sign, empty context: what the service verifies.
    let sig = ml_dsa::Signature::<ml_dsa::MlDsa65>::try_from(sig.as_slice()).unwrap();
    assert!(signer.key.verifying_key().verify_with_context(
        signed.string_to_sign.as_bytes(),
        &[],
        &sig
    ));

    // A signature one byte short is never sent.
    let short = MlDsaTestSigner::new(true);
    let err = sign_request(&case.parts(), &case.input(), &short).unwrap_err();
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(cause.contains("3308 bytes, expected 3309"), "{cause}");
}

#[test]
fn a_backend_without_ml_dsa_refuses_it_by_default() {
    let case = Case::load(vectors().join("create-session-p256"));
    let no_mldsa = FixedSigner {
        public: MlDsaTestSigner::new(false).public,
        answer: vec![0; 3309],
    };
    let err = sign_request(&case.parts(), &case.input(), &no_mldsa).unwrap_err();
    assert_eq!(err.class(), crate::signer::ErrorClass::Configuration);
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(
        cause.contains("fixed signer cannot sign with an ML-DSA key"),
        "{cause}"
    );
}
