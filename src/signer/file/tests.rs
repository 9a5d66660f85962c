//! Tests of the key-file backend against the fixtures in `testdata/keys/` (made by `make.sh` with
//! openssl, which also recorded each key's public half as openssl sees it) and against openssl itself.

use super::*;
use crate::keys::PublicKeyDer as _;
use crate::keys::{Curve, KeyKind};
use crate::sigv4x509::HashAlg;

const PASSWORD: &str = "correct-horse-battery";

/// Every loadable fixture and the kind of key in it.
const FIXTURES: &[(&str, KeyKind)] = &[
    ("rsa2048.pkcs1.pem", KeyKind::Rsa { bits: 2048 }),
    ("rsa2048.pkcs1.der", KeyKind::Rsa { bits: 2048 }),
    ("rsa2048.pkcs8.pem", KeyKind::Rsa { bits: 2048 }),
    ("rsa3072.pkcs1.pem", KeyKind::Rsa { bits: 3072 }),
    ("rsa3072.pkcs8.pem", KeyKind::Rsa { bits: 3072 }),
    ("rsa3072.pkcs8.der", KeyKind::Rsa { bits: 3072 }),
    ("rsa4096.pkcs1.pem", KeyKind::Rsa { bits: 4096 }),
    ("rsa4096.pkcs8.pem", KeyKind::Rsa { bits: 4096 }),
    ("ec-p256.sec1.pem", KeyKind::Ec(Curve::P256)),
    ("ec-p256.sec1.der", KeyKind::Ec(Curve::P256)),
    ("ec-p256.pkcs8.pem", KeyKind::Ec(Curve::P256)),
    ("ec-p384.sec1.pem", KeyKind::Ec(Curve::P384)),
    ("ec-p384.pkcs8.pem", KeyKind::Ec(Curve::P384)),
    ("ec-p384.params-sec1.pem", KeyKind::Ec(Curve::P384)),
    ("ec-p521.sec1.pem", KeyKind::Ec(Curve::P521)),
    ("ec-p521.pkcs8.pem", KeyKind::Ec(Curve::P521)),
    ("ec-p521.pkcs8.der", KeyKind::Ec(Curve::P521)),
    ("rsa2048.enc-aes256-sha512.pem", KeyKind::Rsa { bits: 2048 }),
    ("rsa3072.enc-aes256-sha384.pem", KeyKind::Rsa { bits: 3072 }),
    ("ec-p256.enc-scrypt.pem", KeyKind::Ec(Curve::P256)),
    ("ec-p384.enc-aes128-sha1.pem", KeyKind::Ec(Curve::P384)),
    ("ec-p521.enc-aes192-sha256.der", KeyKind::Ec(Curve::P521)),
    ("rsa2048.p12", KeyKind::Rsa { bits: 2048 }),
    ("ec-p256.p12", KeyKind::Ec(Curve::P256)),
    ("ec-p256-chain.p12", KeyKind::Ec(Curve::P256)),
    ("rsa4096-legacy.p12", KeyKind::Rsa { bits: 4096 }),
    ("ec-p384-legacy.p12", KeyKind::Ec(Curve::P384)),
];

/// Fixtures that need a password.
const ENCRYPTED: &[&str] = &[
    "rsa2048.enc-aes256-sha512.pem",
    "rsa3072.enc-aes256-sha384.pem",
    "ec-p256.enc-scrypt.pem",
    "ec-p384.enc-aes128-sha1.pem",
    "ec-p521.enc-aes192-sha256.der",
    "rsa2048.p12",
    "ec-p256.p12",
    "ec-p256-chain.p12",
    "rsa4096-legacy.p12",
    "ec-p384-legacy.p12",
    "ec-p256.nomac.p12",
    "ec-p256.unencrypted.p12",
];

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/keys")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    let p = fixture_path(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

fn with_password(pw: &str) -> KeyOptions {
    KeyOptions {
        pkcs8_password: Some(Secret::new(pw.into())),
        ..KeyOptions::default()
    }
}

/// No environment variable (one that is surely unset) and no prompt: tests never hang on a terminal.
fn quiet() -> PasswordPolicy {
    PasswordPolicy {
        env: "RA_FILEKEY_TEST_SURELY_UNSET_PASSWORD",
        prompt: false,
    }
}

fn load_bytes(data: &[u8], name: &str, opts: &KeyOptions) -> Result<FileKey, Error> {
    open_with(data, &Ctx::new(&fixture_path(name), opts, quiet()))
}

fn load(name: &str, opts: &KeyOptions) -> Result<FileKey, Error> {
    load_bytes(&read(name), name, opts)
}

fn load_ok(name: &str) -> FileKey {
    load(name, &with_password(PASSWORD)).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)))
}

/// The error and its sources, as the CLI prints them.
use crate::cli::error_text as chain;

fn openssl_public_key(name: &str) -> PublicKey {
    PublicKey::from_spki_der(&read(&format!("{name}.pub.der"))).unwrap()
}

/// Verifies `sig` over `digest` with the RustCrypto verifiers and the public key openssl reported.
fn verify_with_crates(name: &str, digest: &Digest, sig: &[u8]) {
    use ecdsa::signature::hazmat::PrehashVerifier as _;
    use spki::DecodePublicKey as _;
    let spki = read(&format!("{name}.pub.der"));
    let z = digest.as_bytes();
    match openssl_public_key(name).kind() {
        KeyKind::Rsa { .. } => {
            let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
            let scheme = match digest.alg() {
                HashAlg::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                HashAlg::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
                HashAlg::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            key.verify(scheme, z, sig)
                .unwrap_or_else(|e| panic!("{name}: RSA signature does not verify: {e}"));
        }
        KeyKind::MlDsa(_) => panic!("{name}: no ML-DSA key among the openssl fixtures"),
        KeyKind::Ec(Curve::P256) => {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
            let sig = p256::ecdsa::DerSignature::from_bytes(sig).unwrap();
            key.verify_prehash(z, &sig)
                .unwrap_or_else(|e| panic!("{name}: P-256 signature does not verify: {e}"));
        }
        KeyKind::Ec(Curve::P384) => {
            let key = p384::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
            let sig = p384::ecdsa::DerSignature::from_bytes(sig).unwrap();
            key.verify_prehash(z, &sig)
                .unwrap_or_else(|e| panic!("{name}: P-384 signature does not verify: {e}"));
        }
        KeyKind::Ec(Curve::P521) => {
            let key = p521::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
            let sig = p521::ecdsa::DerSignature::from_bytes(sig).unwrap();
            key.verify_prehash(z, &sig)
                .unwrap_or_else(|e| panic!("{name}: P-521 signature does not verify: {e}"));
        }
    }
}

#[test]
fn every_fixture_loads_with_the_public_key_openssl_reports() {
    for (name, kind) in FIXTURES {
        let key = load_ok(name);
        assert_eq!(
            key.signer.public_key(),
            &openssl_public_key(name),
            "{name}: public key differs from openssl's"
        );
        assert_eq!(key.signer.key_kind(), *kind, "{name}");
        assert_eq!(
            key.signer.describe(),
            fixture_path(name).display().to_string()
        );
        let is_p12 = name.ends_with(".p12");
        assert_eq!(!key.certificates.is_empty(), is_p12, "{name}: certificates");
    }
}

#[test]
fn every_fixture_signs_digests_that_verify() {
    for (name, _) in FIXTURES {
        let key = load_ok(name);
        let digest = Digest::sha256(format!("message for {name}").as_bytes());
        let sig = key.signer.sign(&digest).unwrap();
        verify_with_crates(name, &digest, &sig);
    }
}

#[test]
fn signs_sha384_and_sha512_digests_with_the_matching_digest_info() {
    for name in ["rsa2048.pkcs1.pem", "ec-p256.sec1.pem", "ec-p521.sec1.pem"] {
        let key = load_ok(name);
        for alg in [HashAlg::Sha384, HashAlg::Sha512] {
            let digest = Digest::compute(alg, b"sign-string test");
            let sig = key.signer.sign(&digest).unwrap();
            verify_with_crates(name, &digest, &sig);
        }
    }
}

/// Runs openssl. A missing binary fails the test: this is the independent check and must not pass
/// silently.
fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl must be installed to run the independent signature checks")
}

#[test]
fn openssl_verifies_signatures_over_a_message_whose_sha256_was_signed() {
    let dir = tempfile::tempdir().unwrap();
    let message = b"AWS4-X509-ECDSA-SHA256\n20260101T000000Z\nstring to sign";
    std::fs::write(dir.path().join("msg"), message).unwrap();
    for name in [
        "rsa2048.pkcs1.pem",
        "rsa4096-legacy.p12",
        "ec-p256.sec1.pem",
        "ec-p384.enc-aes128-sha1.pem",
        "ec-p521.pkcs8.pem",
    ] {
        let key = load_ok(name);
        let sig = key.signer.sign(&Digest::sha256(message)).unwrap();
        std::fs::write(dir.path().join("sig"), &sig).unwrap();
        std::fs::copy(
            fixture_path(&format!("{name}.pub.der")),
            dir.path().join("pub.der"),
        )
        .unwrap();
        let out = openssl(
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.der",
                "-keyform",
                "DER",
                "-signature",
                "sig",
                "msg",
            ],
            dir.path(),
        );
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
            "{name}: openssl says {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rsa_signature_is_byte_identical_to_openssl_s() {
    // RSASSA-PKCS1-v1_5 is deterministic: the same key and message give the same bytes.
    let dir = tempfile::tempdir().unwrap();
    let message = b"deterministic";
    std::fs::write(dir.path().join("msg"), message).unwrap();
    for name in ["rsa2048.pkcs8.pem", "rsa3072.pkcs1.pem"] {
        let out = openssl(
            &[
                "dgst",
                "-sha256",
                "-sign",
                fixture_path(name).to_str().unwrap(),
                "-out",
                "sig",
                "msg",
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = std::fs::read(dir.path().join("sig")).unwrap();
        let ours = load_ok(name).signer.sign(&Digest::sha256(message)).unwrap();
        assert_eq!(hex::encode(ours), hex::encode(theirs), "{name}");
    }
}

#[test]
fn pkcs12_returns_the_key_s_certificate_first_and_the_rest_after() {
    assert_eq!(
        load_ok("rsa2048.p12").certificates,
        vec![read("rsa2048.crt.der")]
    );
    assert_eq!(
        load_ok("ec-p384-legacy.p12").certificates,
        vec![read("ec-p384.crt.der")]
    );
    assert_eq!(
        load_ok("ec-p256-chain.p12").certificates,
        vec![read("leaf.crt.der"), read("ca.crt.der")]
    );
}

#[test]
fn pkcs12_variants_load_empty_password_no_mac_and_no_encryption() {
    let want = openssl_public_key("ec-p256.pkcs8.pem");
    let cert = read("ec-p256.crt.der");
    for (name, pw) in [
        ("ec-p256.empty-password.p12", ""),
        ("ec-p256.empty-password-legacy.p12", ""),
        ("ec-p256.nomac.p12", PASSWORD),
        ("ec-p256.unencrypted.p12", PASSWORD),
    ] {
        let key =
            load(name, &with_password(pw)).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        assert_eq!(key.signer.public_key(), &want, "{name}");
        assert_eq!(key.certificates, vec![cert.clone()], "{name}");
    }
    // Without a MAC, a wrong password is still caught (by padding or structure), never a bad key.
    let e = load("ec-p256.nomac.p12", &with_password("nope"))
        .err()
        .unwrap();
    assert!(matches!(e, Error::WrongPassword { .. }), "{e}");
}

#[test]
fn password_sources_are_flag_then_file_then_environment_then_prompt() {
    let opts = KeyOptions {
        pkcs8_password: Some(Secret::new("flag".into())),
        pkcs8_password_file: Some("/pw".into()),
        ..KeyOptions::default()
    };
    let path = Path::new("k.pem");
    let ctx = Ctx::new(
        path,
        &opts,
        PasswordPolicy {
            env: PASSWORD_ENV,
            prompt: true,
        },
    );
    let got: Vec<String> = ctx
        .password_sources()
        .iter()
        .map(|s| match s {
            Source::Value(v) => format!("value:{}", v.expose()),
            Source::File(p) => format!("file:{}", p.display()),
            Source::Env(n) => format!("env:{n}"),
            Source::Prompt(_) => "prompt".into(),
        })
        .collect();
    assert_eq!(
        got,
        [
            "value:flag",
            "file:/pw",
            "env:ROLESANYWHERE_PKCS8_PASSWORD",
            "prompt"
        ]
    );
}

#[test]
fn password_flag_wins_over_password_file() {
    let opts = KeyOptions {
        pkcs8_password: Some(Secret::new("not-it".into())),
        pkcs8_password_file: Some(fixture_path("password.txt")),
        ..KeyOptions::default()
    };
    let e = load("rsa2048.enc-aes256-sha512.pem", &opts).err().unwrap();
    assert!(matches!(e, Error::WrongPassword { .. }), "{e}");
}

#[test]
fn password_file_decrypts_pkcs8_and_pkcs12() {
    let opts = KeyOptions {
        pkcs8_password_file: Some(fixture_path("password.txt")),
        ..KeyOptions::default()
    };
    for name in ["ec-p256.enc-scrypt.pem", "ec-p256.p12"] {
        let key = load(name, &opts).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        assert_eq!(key.signer.public_key(), &openssl_public_key(name));
    }
}

#[test]
fn unreadable_password_file_names_the_key_and_the_password_file() {
    let opts = KeyOptions {
        pkcs8_password_file: Some("/nonexistent/pw.txt".into()),
        ..KeyOptions::default()
    };
    let e = load("ec-p256.p12", &opts).err().unwrap();
    let msg = chain(&e);
    assert!(matches!(e, Error::Password { .. }), "{msg}");
    assert!(
        msg.contains("ec-p256.p12") && msg.contains("/nonexistent/pw.txt"),
        "{msg}"
    );
}

#[test]
fn missing_password_names_the_file_and_the_three_non_interactive_ways() {
    for name in ENCRYPTED {
        let e = load(name, &KeyOptions::default()).err().unwrap();
        assert!(matches!(e, Error::PasswordMissing { .. }), "{name}: {e}");
        let msg = e.to_string();
        for needle in [
            *name,
            "--pkcs8-password,",
            "--pkcs8-password-file",
            "ROLESANYWHERE_PKCS8_PASSWORD",
        ] {
            assert!(msg.contains(needle), "{name}: {needle} missing from: {msg}");
        }
    }
}

#[test]
fn wrong_password_is_one_clear_error_without_the_password() {
    for name in ENCRYPTED {
        let e = load(name, &with_password("hunter2-wrong")).err().unwrap();
        let msg = chain(&e);
        assert!(matches!(e, Error::WrongPassword { .. }), "{name}: {msg}");
        assert!(msg.contains("wrong password or corrupt file"), "{msg}");
        assert!(msg.contains(name), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}

#[test]
fn unencrypted_files_never_ask_for_a_password() {
    // With no password source at all, plain keys still load.
    for name in ["rsa2048.pkcs1.pem", "ec-p256.pkcs8.pem", "ec-p256.sec1.der"] {
        load(name, &KeyOptions::default()).unwrap();
    }
}

/// `EncryptedPrivateKeyInfo` with the given PBES2 parameters and junk ciphertext: enough to reach
/// the parameter checks, which must refuse before deriving (and before asking for a password).
fn encrypted_with(params: pkcs5::pbes2::Parameters) -> Vec<u8> {
    use der::Encode as _;
    let info = ::pkcs8::EncryptedPrivateKeyInfoRef {
        encryption_algorithm: pkcs5::EncryptionScheme::Pbes2(params),
        encrypted_data: der::asn1::OctetStringRef::new(&[0u8; 32]).unwrap(),
    };
    der::pem::encode_string(
        "ENCRYPTED PRIVATE KEY",
        der::pem::LineEnding::LF,
        &info.to_der().unwrap(),
    )
    .unwrap()
    .into_bytes()
}

fn assert_kdf_refused(data: &[u8], parameter: &str, value: &str) {
    let start = std::time::Instant::now();
    let e = load_bytes(data, "hostile.pem", &KeyOptions::default())
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, Error::KdfLimit { .. }), "{msg}");
    assert!(msg.contains(parameter) && msg.contains(value), "{msg}");
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "refusal took {:?}",
        start.elapsed()
    );
}

#[test]
fn absurd_pbkdf2_iterations_are_refused_before_deriving() {
    let mut kdf = pkcs5::pbes2::Pbkdf2Params::hmac_sha256(10_000_001, &[1; 16]).unwrap();
    let ok = encrypted_with(pkcs5::pbes2::Parameters {
        kdf: kdf.into(),
        encryption: pkcs5::pbes2::EncryptionScheme::Aes256Cbc { iv: [0; 16] },
    });
    assert_kdf_refused(&ok, "PBKDF2 iteration count", "10000001");
    kdf.iteration_count = u32::MAX;
    let data = encrypted_with(pkcs5::pbes2::Parameters {
        kdf: kdf.into(),
        encryption: pkcs5::pbes2::EncryptionScheme::Aes128Cbc { iv: [0; 16] },
    });
    assert_kdf_refused(&data, "PBKDF2 iteration count", &u32::MAX.to_string());
}

#[test]
fn absurd_scrypt_cost_or_memory_is_refused_before_deriving() {
    let scrypt = |log_n: u8, r: u32, p: u32| {
        let params = pkcs5::scrypt::Params::new(log_n, r, p).unwrap();
        encrypted_with(pkcs5::pbes2::Parameters {
            kdf: pkcs5::pbes2::ScryptParams::from_params_and_salt(params, &[2; 16])
                .unwrap()
                .into(),
            encryption: pkcs5::pbes2::EncryptionScheme::Aes256Cbc { iv: [0; 16] },
        })
    };
    assert_kdf_refused(&scrypt(21, 8, 1), "scrypt cost N", "2097152");
    // N is allowed, but 128·N·r·p = 128·2^20·8·2 bytes = 2 GiB is not.
    assert_kdf_refused(&scrypt(20, 8, 2), "scrypt memory", "2147483648");
}

#[test]
fn absurd_pkcs12_mac_iterations_are_refused_before_deriving() {
    use crate::keys::der_tlv;
    let oid = |s: &str| {
        der_tlv(
            0x06,
            der::asn1::ObjectIdentifier::new(s).unwrap().as_bytes(),
        )
    };
    let empty_safe = der_tlv(0x30, &[]);
    let auth_safe = der_tlv(
        0x30,
        &[
            oid("1.2.840.113549.1.7.1"),
            der_tlv(0xa0, &der_tlv(0x04, &empty_safe)),
        ]
        .concat(),
    );
    let alg = der_tlv(
        0x30,
        &[oid("2.16.840.1.101.3.4.2.1"), vec![0x05, 0x00]].concat(),
    );
    let mac = der_tlv(
        0x30,
        &[
            der_tlv(0x30, &[alg, der_tlv(0x04, &[0; 32])].concat()),
            der_tlv(0x04, &[7; 8]),
            der_tlv(0x02, &[0x01, 0x31, 0x2d, 0x00]), // 20,000,000
        ]
        .concat(),
    );
    let pfx = der_tlv(0x30, &[der_tlv(0x02, &[3]), auth_safe, mac].concat());
    assert_kdf_refused(&pfx, "PKCS#12 MAC iteration count", "20000000");
}

#[test]
fn absurd_pkcs12_pbe_iterations_are_refused_before_deriving() {
    use crate::keys::der_tlv;
    let oid = |s: &str| {
        der_tlv(
            0x06,
            der::asn1::ObjectIdentifier::new(s).unwrap().as_bytes(),
        )
    };
    // pbeWithSHAAnd3-KeyTripleDES-CBC with 2^31 iterations, in an encryptedData without a MAC.
    let pbe_params = der_tlv(
        0x30,
        &[
            der_tlv(0x04, &[5; 8]),
            der_tlv(0x02, &[0x00, 0x80, 0, 0, 0]),
        ]
        .concat(),
    );
    let alg = der_tlv(0x30, &[oid("1.2.840.113549.1.12.1.3"), pbe_params].concat());
    let eci = der_tlv(
        0x30,
        &[oid("1.2.840.113549.1.7.1"), alg, der_tlv(0x80, &[0; 16])].concat(),
    );
    let encrypted_data = der_tlv(0x30, &[der_tlv(0x02, &[0]), eci].concat());
    let content_info = der_tlv(
        0x30,
        &[oid("1.2.840.113549.1.7.6"), der_tlv(0xa0, &encrypted_data)].concat(),
    );
    let safes = der_tlv(0x30, &content_info);
    let auth_safe = der_tlv(
        0x30,
        &[
            oid("1.2.840.113549.1.7.1"),
            der_tlv(0xa0, &der_tlv(0x04, &safes)),
        ]
        .concat(),
    );
    let pfx = der_tlv(0x30, &[der_tlv(0x02, &[3]), auth_safe].concat());
    assert_kdf_refused(&pfx, "PKCS#12 PBE iteration count", "2147483648");
}

/// Issue 14 (8): PBES2 parameters that panicked `pkcs5` (scrypt N=0; a 3DES IV shorter than 8
/// bytes) or that are out of range, in keys openssl made with one DER field edited
/// (`testdata/keys/hostile/make.py`). Each is refused by name, with or without a password: the
/// parameters are checked before a password is asked for and before anything is derived.
#[test]
fn issue_14_pbes2_parameters_are_checked_before_the_crate_sees_them() {
    let cases: &[(&str, &str)] = &[
        (
            "pbes2-scrypt-n0.pem",
            "scrypt cost N is 0; it must be a power of two, at least 2",
        ),
        (
            "pbes2-scrypt-n1.pem",
            "scrypt cost N is 1; it must be a power of two, at least 2",
        ),
        (
            "pbes2-scrypt-n3.pem",
            "scrypt cost N is 3; it must be a power of two, at least 2",
        ),
        ("pbes2-scrypt-r0.pem", "scrypt block size r is 0"),
        ("pbes2-scrypt-p0.pem", "scrypt parallelization p is 0"),
        (
            "pbes2-scrypt-r70000.pem",
            "asks for scrypt block size r 70000, above this program's limit of 65535",
        ),
        ("pbes2-scrypt-salt-empty.pem", "the PBES2 salt is empty"),
        (
            "pbes2-scrypt-keylen-huge.pem",
            "PBES2 key length 2147483648 does not match the 32-byte key of AES-256-CBC",
        ),
        (
            "pbes2-scrypt-keylen-16.pem",
            "PBES2 key length 16 does not match the 32-byte key of AES-256-CBC",
        ),
        (
            "pbes2-pbkdf2-iterations-0.pem",
            "PBKDF2 iteration count is 0",
        ),
        ("pbes2-pbkdf2-salt-empty.pem", "the PBES2 salt is empty"),
        (
            "pbes2-pbkdf2-salt-64.pem",
            "asks for PBES2 salt length 64, above this program's limit of 32",
        ),
        (
            "pbes2-pbkdf2-keylen-0.pem",
            "PBES2 key length 0 does not match the 16-byte key of AES-128-CBC",
        ),
        (
            "pbes2-des3-iv-4.pem",
            "the DES-EDE3-CBC IV has 4 bytes, not 8",
        ),
        (
            "pbes2-des3-iv-16.pem",
            "the DES-EDE3-CBC IV has 16 bytes, not 8",
        ),
        (
            "pbes2-aes-iv-15.pem",
            "the AES-128-CBC IV has 15 bytes, not 16",
        ),
        (
            "pbes2-aes-iv-empty.pem",
            "the AES-128-CBC IV has 0 bytes, not 16",
        ),
    ];
    for (name, want) in cases {
        let data = read(&format!("hostile/{name}"));
        for opts in [with_password(PASSWORD), KeyOptions::default()] {
            let data = data.clone();
            let start = std::time::Instant::now();
            let got = std::panic::catch_unwind(move || {
                load_bytes(&data, name, &opts).err().map(|e| chain(&e))
            });
            let msg = got
                .unwrap_or_else(|_| panic!("{name}: panicked"))
                .unwrap_or_else(|| panic!("{name}: accepted"));
            assert!(msg.contains(want), "{name}: {msg}");
            assert!(msg.contains(name), "{name}: {msg}");
            assert!(!msg.contains(PASSWORD), "{msg}");
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "{name}"
            );
        }
    }
}

/// Issue 14 (10): twelve items of 10,000,000 PBKDF2 iterations each in a small PKCS#12 file took
/// 38 s (openssl takes as long): the limit was per item. The whole file's cost is now summed and
/// refused before any derivation.
#[test]
fn issue_14_pkcs12_kdf_cost_is_budgeted_per_file_before_deriving() {
    let data = read("hostile/p12-12-bags-10m.p12");
    for opts in [with_password(PASSWORD), KeyOptions::default()] {
        let data = data.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                load_bytes(&data, "p12-12-bags-10m.p12", &opts)
                    .err()
                    .map(|e| (matches!(e, Error::KdfBudget { .. }), chain(&e))),
            );
        });
        let (budget, msg) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("derived keys instead of refusing the file")
            .expect("accepted");
        assert!(budget, "{msg}");
        assert!(
            msg.contains(
                "p12-12-bags-10m.p12 needs 120000000 key-derivation iterations in all, above this \
                 program's limit of 30000000 per file"
            ),
            "{msg}"
        );
    }
}

/// Issue 14 (10): a bag inside encrypted content is only seen after that content is decrypted; it
/// is charged to the same budget before its own key is derived.
#[test]
fn issue_14_pkcs12_kdf_budget_covers_bags_inside_encrypted_content() {
    let data = read("hostile/p12-hidden-bag.p12");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            load_bytes(&data, "p12-hidden-bag.p12", &with_password(PASSWORD))
                .err()
                .map(|e| chain(&e)),
        );
    });
    let msg = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("derived the hidden bag's key instead of refusing it")
        .expect("accepted");
    // 1 iteration to open the content, then 3 × 10,000,000 for the 3DES key and IV.
    assert!(
        msg.contains("needs 30000001 key-derivation iterations in all"),
        "{msg}"
    );
}

#[test]
fn legacy_encrypted_pem_is_refused_with_a_conversion_hint() {
    let e = load("refused.legacy-encrypted.pem", &with_password(PASSWORD))
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, Error::LegacyEncryptedPem { .. }), "{msg}");
    assert!(msg.contains("openssl pkcs8 -topk8") && msg.contains("refused.legacy-encrypted.pem"));
}

#[test]
fn small_rsa_and_unsupported_algorithms_are_refused_by_name() {
    let e = load("refused.rsa1024.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(matches!(e, Error::RsaKeySize { bits: 1024, .. }), "{e}");
    assert!(
        e.to_string().contains("RSA-1024") && e.to_string().contains("2048"),
        "{e}"
    );
    let e = load("refused.ed25519.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::UnsupportedKey { what, .. } if what == "Ed25519"),
        "{e}"
    );
    assert!(e.to_string().contains("holds an Ed25519 key"), "{e}");
    let e = load("refused.ec-p224.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(e.to_string().contains("holds an EC P-224"), "{e}");
    let e = load("refused.public-key.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::UnsupportedPem { label, .. } if label == "PUBLIC KEY"),
        "{e}"
    );
}

#[test]
fn files_that_are_not_keys_give_errors_naming_the_file() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty"),
        (b"  \n\t", "empty"),
        (b"hello world", "neither a PEM block nor DER"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA", "truncated"),
        (
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            "base64",
        ),
        (b"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", "FOO"),
        (b"\x30\x03\x02\x01", "not a DER key"),
    ];
    for (data, needle) in cases {
        let e = load_bytes(data, "bad.key", &KeyOptions::default())
            .err()
            .unwrap();
        let msg = chain(&e);
        assert!(msg.contains("bad.key") && msg.contains(needle), "{msg}");
    }
    let certs_only = read("rsa2048.p12.pub.der");
    assert!(load_bytes(&certs_only, "pub.der", &KeyOptions::default()).is_err());
}

/// Go's encoding/pem (the reference helper) reads indented armour, CRLF and any line width; so do we.
/// Errors in a key block name the line and never quote the body.
#[test]
fn pem_keys_are_read_as_laxly_as_the_reference_and_errors_name_the_line() {
    let pem = String::from_utf8(read("ec-p256.pkcs8.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut lax = String::from("friendlyName: web01\r\n  -----BEGIN PRIVATE KEY-----\r\n");
    for chunk in body.as_bytes().chunks(76) {
        lax.push_str(std::str::from_utf8(chunk).unwrap());
        lax.push_str(" \r\n");
    }
    lax.push_str("\t-----END PRIVATE KEY-----\r\n");
    let key = load_bytes(lax.as_bytes(), "lax.pem", &KeyOptions::default()).unwrap();
    assert_eq!(
        key.signer.public_key(),
        &openssl_public_key("ec-p256.pkcs8.pem")
    );

    let damaged = lax.replacen(&body[10..20], "#%&'()*+,;", 1);
    let e = load_bytes(damaged.as_bytes(), "bad.pem", &KeyOptions::default())
        .err()
        .unwrap();
    let msg = chain(&e);
    assert!(
        msg.ends_with("bad.pem: bad base64 in PEM block PRIVATE KEY at line 3"),
        "{msg}"
    );
    assert!(!msg.contains(&body[..10]) && !msg.contains('#'), "{msg}");
}

#[test]
fn pem_with_a_certificate_before_the_key_loads_the_key() {
    let cert = der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &read("ec-p256.crt.der"),
    )
    .unwrap();
    let data = [
        cert.as_bytes(),
        b"Bag Attributes: junk\n",
        &read("ec-p256.pkcs8.pem"),
    ]
    .concat();
    let key = load_bytes(&data, "combined.pem", &KeyOptions::default()).unwrap();
    assert_eq!(
        key.signer.public_key(),
        &openssl_public_key("ec-p256.pkcs8.pem")
    );
    let only_cert = load_bytes(cert.as_bytes(), "cert.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(matches!(only_cert, Error::NoKey { .. }), "{only_cert}");
    // A certificate cut short beside the key is skipped, as the reference helper's Go reader skips it.
    let cut = [b"-----BEGIN CERTIFICATE-----\nMIIB\n", &data[..]].concat();
    let key = load_bytes(&cut, "cut.pem", &KeyOptions::default()).unwrap();
    assert_eq!(
        key.signer.public_key(),
        &openssl_public_key("ec-p256.pkcs8.pem")
    );
}

/// Issue 14: a key after 40,000 certificate blocks (2.4 MB, over the file cap, so given as bytes) was
/// found in quadratic time (23 s): every skipped block got a buffer the size of the whole file.
#[test]
fn issue_14_a_key_after_forty_thousand_pem_blocks_is_found_in_linear_time() {
    let cert = der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &read("ec-p256.crt.der"),
    )
    .unwrap();
    let mut data = cert.repeat(40_000 * 60 / cert.len());
    data.push_str(&"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n".repeat(40_000));
    let data = [data.as_bytes(), &read("ec-p256.pkcs8.pem")].concat();
    assert!(data.len() > 2_400_000, "{}", data.len());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(
            load_bytes(&data, "many-blocks.pem", &KeyOptions::default())
                .map(|k| k.signer.public_key().clone())
                .map_err(|e| e.to_string()),
        );
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("scanning the PEM blocks took more than 5 s");
    assert_eq!(got.unwrap(), openssl_public_key("ec-p256.pkcs8.pem"));
    // Blocks without a key: one mention of each label, not one per block.
    let only = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".repeat(1000);
    let e = load_bytes(only.as_bytes(), "certs.pem", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .ends_with("holds no private key: only PEM blocks labelled CERTIFICATE"),
        "{e}"
    );
}

/// A PFX without MAC whose AuthenticatedSafe is one `data` ContentInfo holding `bags`.
fn pfx_with_bags(bags: &[Vec<u8>]) -> Vec<u8> {
    use crate::keys::der_tlv;
    let safe_contents = der_tlv(0x30, &bags.concat());
    let data = |content: &[u8]| {
        der_tlv(
            0x30,
            &[
                der_tlv(0x06, DATA_OID),
                der_tlv(0xa0, &der_tlv(0x04, content)),
            ]
            .concat(),
        )
    };
    let auth_safe = data(&der_tlv(0x30, &data(&safe_contents)));
    der_tlv(0x30, &[der_tlv(0x02, &[3]), auth_safe].concat())
}

/// `1.2.840.113549.1.7.1` (PKCS#7 data), encoded.
const DATA_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];

/// A SafeBag of `bag_oid` (encoded) around `value`.
fn safe_bag(bag_oid: &[u8], value: &[u8]) -> Vec<u8> {
    use crate::keys::der_tlv;
    der_tlv(
        0x30,
        &[der_tlv(0x06, bag_oid), der_tlv(0xa0, value)].concat(),
    )
}

#[test]
fn pkcs12_with_more_than_a_hundred_certificates_is_refused() {
    use crate::keys::der_tlv;
    // certBag { x509Certificate, [0] OCTET STRING cert }
    let x509_cert_oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
    let cert_bag_oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
    let key_bag_oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
    let cert = read("ec-p256.crt.der");
    let cert_bag = safe_bag(
        cert_bag_oid.as_bytes(),
        &der_tlv(
            0x30,
            &[
                der_tlv(0x06, x509_cert_oid.as_bytes()),
                der_tlv(0xa0, &der_tlv(0x04, &cert)),
            ]
            .concat(),
        ),
    );
    let (_, key_der) = der::pem::decode_vec(&read("ec-p256.pkcs8.pem")).unwrap();
    let key_bag = safe_bag(key_bag_oid.as_bytes(), &key_der);
    let mut bags = vec![key_bag];
    bags.extend(std::iter::repeat_n(cert_bag, 100));
    let key = load_bytes(&pfx_with_bags(&bags), "hundred.p12", &KeyOptions::default()).unwrap();
    assert_eq!(key.certificates.len(), 100);
    bags.push(bags[1].clone());
    let e = load_bytes(&pfx_with_bags(&bags), "many.p12", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .ends_with("many.p12: the PKCS#12 file holds more than 100 certificates"),
        "{e}"
    );
}

/// Only one key is used, so a second key bag is refused before it is parsed: a file of hundreds of
/// RSA keys costs no more than one.
#[test]
fn pkcs12_with_a_second_key_is_refused_at_the_second_key() {
    let key_bag_oid = der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
    let (_, rsa) = der::pem::decode_vec(&read("rsa4096.pkcs8.pem")).unwrap();
    let bag = safe_bag(key_bag_oid.as_bytes(), &rsa);
    let one = pfx_with_bags(std::slice::from_ref(&bag));
    assert!(load_bytes(&one, "one.p12", &KeyOptions::default()).is_ok());
    let many = pfx_with_bags(&vec![bag; 400]);
    let start = std::time::Instant::now();
    let e = load_bytes(&many, "many.p12", &KeyOptions::default())
        .err()
        .unwrap();
    assert!(
        e.to_string().ends_with(
            "many.p12: the PKCS#12 file holds more than one private key; export the one to use \
             into its own file"
        ),
        "{e}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}

#[test]
fn debug_output_shows_path_and_public_key_only() {
    let key = load_ok("ec-p256.sec1.pem");
    let dbg = format!("{:?}", key.signer);
    assert!(dbg.starts_with("FileSigner { path: "), "{dbg}");
    assert!(dbg.contains("PublicKey(EC P-256, "), "{dbg}");
    assert!(!dbg.contains("key:") && !dbg.contains("Scalar"), "{dbg}");
}

/// Every prefix of every fixture and byte flips across it give an error or a key, never a panic.
#[test]
fn truncated_and_corrupted_fixtures_never_panic() {
    let all: Vec<&str> = FIXTURES
        .iter()
        .map(|(n, _)| *n)
        .chain([
            "refused.legacy-encrypted.pem",
            "refused.rsa1024.pem",
            "refused.ed25519.pem",
            "refused.ec-p224.pem",
            "refused.public-key.pem",
            "ec-p256.empty-password.p12",
            "ec-p256.empty-password-legacy.p12",
            "ec-p256.nomac.p12",
            "ec-p256.unencrypted.p12",
        ])
        .collect();
    let opts = with_password(PASSWORD);
    for name in all {
        let data = read(name);
        let is_der = !data.starts_with(b"-----");
        for len in 0..data.len() {
            let r = std::panic::catch_unwind(|| load_bytes(&data[..len], name, &opts).is_ok());
            match r {
                Ok(loaded) => assert!(
                    !(is_der && loaded),
                    "{name}: DER prefix of {len} bytes loaded"
                ),
                Err(_) => panic!("{name}: panicked on a prefix of {len} bytes"),
            }
        }
        // Flips at spread-out offsets (scrypt fixtures are costly to decrypt: fewer of them).
        let flips = if name.contains("scrypt") { 8 } else { 48 };
        for i in 0..flips {
            let at = (i * 7919 + 13) % data.len();
            for mask in [0x01u8, 0x80] {
                let mut bad = data.clone();
                bad[at] ^= mask;
                let r = std::panic::catch_unwind(|| {
                    let _ = load_bytes(&bad, name, &opts);
                });
                assert!(r.is_ok(), "{name}: panicked with byte {at} xor {mask:#04x}");
            }
        }
    }
}

/// Through the dispatcher, as the CLI uses it: a PKCS#12 file alone gives the key and its leaf
/// certificate, and the key/certificate check passes; a mismatched `--certificate` is caught.
#[test]
fn pkcs12_alone_is_a_complete_identity_through_signer_open() {
    let opts = KeyOptions {
        private_key: Some(fixture_path("ec-p256-chain.p12").display().to_string()),
        pkcs8_password: Some(Secret::new(PASSWORD.into())),
        ..KeyOptions::default()
    };
    let id = crate::signer::open(&opts).unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(id.leaf.der(), &read("leaf.crt.der")[..]);
    assert_eq!(
        id.signer.public_key(),
        &openssl_public_key("ec-p256-chain.p12")
    );

    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.pem");
    let pem = der::pem::encode_string(
        "CERTIFICATE",
        der::pem::LineEnding::LF,
        &read("rsa2048.crt.der"),
    )
    .unwrap();
    std::fs::write(&other, pem).unwrap();
    let mismatched = KeyOptions {
        certificate: Some(other.display().to_string()),
        ..opts
    };
    let e = crate::signer::open(&mismatched).err().unwrap();
    assert!(
        matches!(e, crate::signer::Error::CertificateKeyMismatch { .. }),
        "{}",
        chain(&e)
    );
}

#[test]
fn articles_follow_how_key_types_are_said() {
    for (word, article) in [
        ("Ed25519", "an"),
        ("Ed448", "an"),
        ("EC P-224 (secp224r1)", "an"),
        ("X25519", "an"),
        ("RSA-PSS-restricted", "an"),
        ("SM2", "an"),
        ("DSA", "a"),
        ("key of algorithm 1.2.3", "a"),
    ] {
        assert_eq!(super::article(word), article, "{word}");
    }
}

#[test]
fn unsupported_algorithm_points_to_the_extraction_commands() {
    let e = Error::UnsupportedAlgorithm {
        path: "old.p12".into(),
        algorithm: "PKCS#12 PBMAC1 integrity (RFC 9579)".into(),
    }
    .to_string();
    assert!(
        e.contains("openssl pkcs12 -in FILE -nocerts -out key.pem")
            && e.contains("-nokeys -out cert.pem")
            && e.contains("docs/backends/file.md"),
        "{e}"
    );
    assert!(!e.contains("-export"), "{e}");
}

/// Issue 14: key files the `key_file` fuzz target found panicking, one per file in
/// `testdata/fuzz-regressions/key_file/` (minimised with `cargo fuzz tmin`). Each must be refused
/// with an error naming the file, never a panic.
#[test]
fn fuzz_regressions_are_refused_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz-regressions/key_file");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let opts = with_password(PASSWORD);
        let result = std::panic::catch_unwind(|| {
            open_with(&data, &Ctx::new(&path, &opts, quiet())).map(|_| ())
        });
        match result {
            Ok(Err(e)) => assert!(
                chain(&e).contains(&*path.to_string_lossy()),
                "{}",
                chain(&e)
            ),
            Ok(Ok(())) => panic!("{} loaded", path.display()),
            Err(_) => panic!("{} panicked", path.display()),
        }
        checked += 1;
    }
    assert!(
        checked >= 1,
        "regression inputs missing from {}",
        dir.display()
    );
}
