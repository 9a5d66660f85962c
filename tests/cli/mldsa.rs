//! ML-DSA identities (`AWS4-X509-MLDSA`, ADR 0004): keys made by Python `cryptography` (seed-only
//! PKCS#8) and the seed-and-expanded-key form built from the same seed, certificates from the
//! emulator's CA, signatures checked by the emulator and by `cryptography`.

use super::common::*;
use base64::Engine as _;
use std::process::Command;

const SETS: [&str; 3] = ["44", "65", "87"];

/// Python with `cryptography`'s ML-DSA; the tests need it (scripts/install-deps installs it).
fn python(script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Makes NAME.key with `cryptography` (ML-DSA-SET, seed-only PKCS#8 PEM, or encrypted with
/// `password`); returns the public key PEM.
fn cryptography_key(env: &Env, name: &str, set: &str, password: Option<&str>) -> String {
    const SCRIPT: &str = r#"
import sys
from cryptography.hazmat.primitives import serialization as s
from cryptography.hazmat.primitives.asymmetric import mldsa
cls = {"44": mldsa.MLDSA44PrivateKey, "65": mldsa.MLDSA65PrivateKey, "87": mldsa.MLDSA87PrivateKey}[sys.argv[1]]
key = cls.generate()
enc = s.BestAvailableEncryption(sys.argv[3].encode()) if len(sys.argv) > 3 else s.NoEncryption()
open(sys.argv[2], "wb").write(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, enc))
sys.stdout.write(key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo).decode())
"#;
    let path = env.p(&format!("{name}.key"));
    let mut args = vec![set, path.as_str()];
    args.extend(password);
    String::from_utf8(python(SCRIPT, &args)).unwrap()
}

fn pem_body(pem: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).expect("begin") + begin.len();
    let stop = pem.find(&end).expect("end");
    let b64: String = pem[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    rolesanywhere_core::encoding::der_tlv(tag, content)
}

/// The seed-and-expanded-key form ("both", OpenSSL 3.5's default) of a seed-only PKCS#8 DER: the
/// same seed, and the expanded key the `ml-dsa` crate derives from it.
fn both_form(seed_only: &[u8]) -> Vec<u8> {
    // PrivateKeyInfo ::= SEQUENCE { 0, SEQUENCE { OID }, OCTET STRING { [0] seed } }: the seed is
    // the last 32 bytes and the OID's last byte (17, 18, 19) names the set.
    let seed: [u8; 32] = seed_only[seed_only.len() - 32..].try_into().unwrap();
    assert_eq!(
        &seed_only[seed_only.len() - 36..seed_only.len() - 32],
        &[0x04, 0x22, 0x80, 0x20]
    );
    let oid_end = seed_only.len() - 36;
    #[allow(deprecated)]
    let expanded = match seed_only[oid_end - 1] {
        17 => ml_dsa::SigningKey::<ml_dsa::MlDsa44>::from_seed(&seed.into())
            .expanded_key()
            .to_expanded()
            .to_vec(),
        18 => ml_dsa::SigningKey::<ml_dsa::MlDsa65>::from_seed(&seed.into())
            .expanded_key()
            .to_expanded()
            .to_vec(),
        19 => ml_dsa::SigningKey::<ml_dsa::MlDsa87>::from_seed(&seed.into())
            .expanded_key()
            .to_expanded()
            .to_vec(),
        other => panic!("not an ML-DSA OID: last arc {other}"),
    };
    let mut both = tlv(0x04, &seed);
    both.extend(tlv(0x04, &expanded));
    // Version and AlgorithmIdentifier as they were, then the new privateKey.
    let inner_start = 2 + usize::from(seed_only[1] & 0x7f) * usize::from(seed_only[1] >= 0x80);
    let mut body = seed_only[inner_start..oid_end].to_vec();
    body.extend(tlv(0x04, &tlv(0x30, &both)));
    tlv(0x30, &body)
}

/// NAME.key (seed-only, `cryptography`), NAME-both.key (same key, both form), and NAME.pem and
/// NAME-both.pem from the emulator's CA. Returns the serial and the public key PEM.
fn ml_dsa_identity(env: &Env, name: &str, set: &str) -> (String, String) {
    let public = cryptography_key(env, name, set, None);
    let seed_only = pem_body(
        &std::fs::read_to_string(env.path(&format!("{name}.key"))).unwrap(),
        "PRIVATE KEY",
    );
    std::fs::write(
        env.path(&format!("{name}-both.key")),
        pem("PRIVATE KEY", &both_form(&seed_only)),
    )
    .unwrap();
    let serial = env.issue_with(&env.ca, name, public.clone(), |_| {});
    std::fs::copy(
        env.path(&format!("{name}.pem")),
        env.path(&format!("{name}-both.pem")),
    )
    .unwrap();
    (serial, public)
}

fn credentials_with_ml_dsa(set: &str) {
    let env = Env::new();
    let (serial, _) = ml_dsa_identity(&env, "pq", set);
    let emu = env.emulator();
    for name in ["pq", "pq-both"] {
        let run = env.credential_process(&emu.url(), name, &[]);
        let creds = run.credentials();
        assert!(run.stderr.is_empty(), "{name}: stderr: {}", run.stderr);
        assert!(
            creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"),
            "{creds}"
        );
    }
    let d = emu.decisions();
    assert_eq!(d.len(), 2);
    for decision in &d {
        assert_eq!(decision.status, 201, "{}", decision.message);
        assert_eq!(decision.serial_decimal.as_deref(), Some(serial.as_str()));
    }
}

#[test]
fn credential_process_with_ml_dsa_44_both_key_forms() {
    credentials_with_ml_dsa("44");
}

#[test]
fn credential_process_with_ml_dsa_65_both_key_forms() {
    credentials_with_ml_dsa("65");
}

#[test]
fn credential_process_with_ml_dsa_87_both_key_forms() {
    credentials_with_ml_dsa("87");
}

#[test]
fn encrypted_pkcs8_ml_dsa_key_from_cryptography_works() {
    let env = Env::new();
    let public = cryptography_key(&env, "enc", "65", Some("correct horse"));
    assert!(
        std::fs::read_to_string(env.path("enc.key"))
            .unwrap()
            .contains("ENCRYPTED PRIVATE KEY")
    );
    env.issue_with(&env.ca, "enc", public, |_| {});
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "enc", &["--pkcs8-password", "correct horse"]);
    run.credentials();
    assert_eq!(emu.decisions()[0].status, 201);
}

/// `sign-string` over the reference's test message, verified by `cryptography` (which builds the
/// message itself from the raw public key); the two key forms give the same signature
/// (deterministic signing).
#[test]
fn sign_string_is_verified_by_cryptography_and_deterministic() {
    const VERIFY: &str = r#"
import sys, hashlib
from cryptography.hazmat.primitives import serialization as s
pub = s.load_pem_public_key(open(sys.argv[1], "rb").read())
raw = pub.public_bytes_raw()
message = b"AWS Roles Anywhere Credential Helper Signing Test" + b"1" + hashlib.sha256(b"IAM RA" + raw).digest()
pub.verify(bytes.fromhex(sys.argv[2]), message)
try:
    pub.verify(bytes.fromhex(sys.argv[2]), message + b"x")
    sys.exit("a signature over another message verified")
except Exception:
    pass
print("verified", len(bytes.fromhex(sys.argv[2])))
"#;
    let env = Env::new();
    for (set, sig_len) in SETS.iter().zip([2420, 3309, 4627]) {
        let name = format!("s{set}");
        let (_, public) = ml_dsa_identity(&env, &name, set);
        std::fs::write(env.path(&format!("{name}.pub.pem")), public).unwrap();
        let mut signatures = Vec::new();
        for key in [format!("{name}.key"), format!("{name}-both.key")] {
            let run = env.run(
                &[
                    "sign-string",
                    "--private-key",
                    &env.p(&key),
                    "--format",
                    "text",
                ],
                &[],
            );
            assert_eq!(run.code, 0, "{key}: {}", run.stderr);
            signatures.push(run.stdout.clone());
        }
        assert_eq!(signatures[0], signatures[1], "ML-DSA-{set}: forms differ");
        let out = python(
            VERIFY,
            &[&env.p(&format!("{name}.pub.pem")), &signatures[0]],
        );
        assert_eq!(
            String::from_utf8(out).unwrap().trim(),
            format!("verified {sig_len}")
        );
        // --digest does not change a pure ML-DSA signature.
        let run = env.run(
            &[
                "sign-string",
                "--private-key",
                &env.p(&format!("{name}.key")),
                "--format",
                "text",
                "--digest",
                "SHA512",
            ],
            &[],
        );
        assert_eq!(run.stdout, signatures[0]);
    }
}

#[test]
fn read_certificate_data_names_the_parameter_set() {
    let env = Env::new();
    for set in SETS {
        let name = format!("r{set}");
        let (serial, _) = ml_dsa_identity(&env, &name, set);
        let run = env.run(
            &[
                "read-certificate-data",
                "--certificate",
                &env.p(&format!("{name}.pem")),
            ],
            &[],
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let want = format!("ML-DSA-{set}");
        assert_eq!(v["keyType"], want.as_str());
        assert_eq!(v["supportedAlgorithms"], serde_json::json!([want]));
        assert_eq!(v["serialNumber"], serial.as_str());
    }
}

#[test]
fn mismatched_ml_dsa_key_is_refused_before_any_request() {
    let env = Env::new();
    ml_dsa_identity(&env, "mine", "65");
    cryptography_key(&env, "other", "65", None);
    std::fs::copy(env.path("other.key"), env.path("mine.key")).unwrap();
    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "mine", &[]);
    run.assert_failure(2, &["does not match certificate", "mine.key", "mine.pem"]);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn malformed_and_truncated_ml_dsa_keys_exit_2_without_panicking() {
    let env = Env::new();
    let (_, _) = ml_dsa_identity(&env, "t", "44");
    let emu = env.emulator();
    let seed_only = pem_body(
        &std::fs::read_to_string(env.path("t.key")).unwrap(),
        "PRIVATE KEY",
    );
    let both = both_form(&seed_only);
    // Truncations of both forms at a spread of lengths (every length is covered by the unit
    // tests), as PEM and as DER.
    for der in [&seed_only, &both] {
        let step = (der.len() / 23).max(1);
        for len in (1..der.len()).step_by(step) {
            for (file, data) in [
                ("t.key", pem("PRIVATE KEY", &der[..len]).into_bytes()),
                ("t.key", der[..len].to_vec()),
            ] {
                std::fs::write(env.path(file), &data).unwrap();
                let run = env.credential_process(&emu.url(), "t", &[]);
                assert_eq!(run.code, 2, "cut at {len}: {}", run.stderr);
                assert!(run.stdout.is_empty());
                assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
                assert!(run.stderr.contains("t.key"), "{}", run.stderr);
            }
        }
    }
    // The expanded-only form names the forms that are read.
    let expanded_only = {
        let mut body = seed_only[..seed_only.len() - 36].to_vec();
        body.drain(..2);
        body.extend(tlv(0x04, &tlv(0x04, &[5u8; 2560])));
        tlv(0x30, &body)
    };
    std::fs::write(env.path("t.key"), pem("PRIVATE KEY", &expanded_only)).unwrap();
    let run = env.credential_process(&emu.url(), "t", &[]);
    run.assert_failure(
        2,
        &[
            "t.key",
            "expanded-key-only form",
            "seed-only form",
            "OpenSSL 3.5",
        ],
    );
    assert_eq!(emu.requests(), 0);
}
