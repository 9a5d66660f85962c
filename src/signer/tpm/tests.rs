//! Backend tests against a private swtpm: keys made by tpm2-openssl and tpm2-tools, signatures
//! checked by `openssl dgst -verify`. Skip when swtpm or the tools are missing, fail when
//! `HSM_TESTS_REQUIRED=1` (or `CI`) is set.

use super::swtpm::Swtpm;
use super::*;
use crate::keys::PublicKeyDer as _;
use crate::secret::Secret;
use crate::sigv4x509::{Digest, HashAlg};
use rolesanywhere_core::{Classify as _, ErrorClass};
use std::path::PathBuf;

fn required() -> bool {
    std::env::var("HSM_TESTS_REQUIRED").is_ok_and(|v| v == "1") || std::env::var_os("CI").is_some()
}

/// A private swtpm, or `None` (after printing SKIP) when the tools are missing and not required.
fn tpm() -> Option<Swtpm> {
    match Swtpm::start() {
        Ok(t) => Some(t),
        Err(e) if required() => panic!("HSM_TESTS_REQUIRED: cannot run: {}", e.0),
        Err(e) => {
            eprintln!("SKIP: {}", e.0);
            None
        }
    }
}

fn opts_for(t: &Swtpm) -> KeyOptions {
    KeyOptions {
        tpm_tcti: Some(t.tcti()),
        ..KeyOptions::default()
    }
}

fn open_file(path: &PathBuf, opts: &KeyOptions) -> Result<TpmSigner, Error> {
    let data = std::fs::read(path).unwrap();
    open_key_file(&data, path, opts)
}

fn pem_public(path: &Path) -> PublicKey {
    let text = std::fs::read_to_string(path).unwrap();
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    PublicKey::from_spki_der(&der).unwrap()
}

/// Signs `msg` through the backend and checks the signature with `openssl dgst -verify`.
fn assert_openssl_verifies(t: &Swtpm, signer: &TpmSigner, pub_pem: &Path, alg: HashAlg, tag: &str) {
    let msg = format!("rolesanywhere test message {tag}");
    let sig = signer.sign(&Digest::compute(alg, msg.as_bytes())).unwrap();
    std::fs::write(t.path(&format!("{tag}.msg")), &msg).unwrap();
    std::fs::write(t.path(&format!("{tag}.sig")), &sig).unwrap();
    let dgst = format!("-{}", alg.name().to_lowercase());
    let out = t.run(&[
        "openssl",
        "dgst",
        &dgst,
        "-verify",
        pub_pem.to_str().unwrap(),
        "-signature",
        &format!("{tag}.sig"),
        &format!("{tag}.msg"),
    ]);
    assert!(
        out.status.success(),
        "openssl rejected the {tag} signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ec_p256_key_file_signs_what_openssl_verifies_in_five_commands() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("ec.tss2.pem", "EC", &["group:P-256"]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    assert_eq!(
        signer.public_key(),
        &pem_public(&t.path("ec.tss2.pem.pub.pem"))
    );
    // ReadPublic(0x81000001, absent) + CreatePrimary + Load + FlushContext(parent).
    assert_eq!(signer.commands(), 4);
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("ec.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "p256",
    );
    assert_eq!(signer.commands(), 5);
    // The key stays loaded: a second signature is one more command.
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("ec.tss2.pem.pub.pem"),
        HashAlg::Sha384,
        "p256b",
    );
    assert_eq!(signer.commands(), 6);
}

#[test]
fn ec_p384_key_file_signs_what_openssl_verifies() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("p384.tss2.pem", "EC", &["group:P-384"]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    assert_eq!(
        signer.key_kind(),
        crate::keys::KeyKind::Ec(crate::keys::Curve::P384)
    );
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("p384.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "p384",
    );
}

#[test]
fn rsa_2048_key_file_signs_pkcs1_that_openssl_verifies() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("rsa.tss2.pem", "RSA", &["bits:2048"]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    assert_eq!(signer.key_kind(), crate::keys::KeyKind::Rsa { bits: 2048 });
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("rsa.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "rsa",
    );
}

#[test]
fn password_key_signs_with_the_right_password_and_fails_once_with_the_wrong_one() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("pw.tss2.pem", "EC", &["group:P-256", "user-auth:s3cret"]);
    let mut opts = opts_for(&t);
    opts.tpm_key_password = Some(Secret::new("s3cret".into()));
    let signer = open_file(&key, &opts).unwrap();
    // The auth value travels in a salted HMAC session: one StartAuthSession more than without.
    assert_eq!(signer.commands(), 5);
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("pw.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "pw",
    );
    drop(signer);

    opts.tpm_key_password = Some(Secret::new("wrong-password".into()));
    let signer = open_file(&key, &opts).unwrap();
    let before = signer.commands();
    let e = signer.sign(&Digest::sha256(b"x")).unwrap_err().to_string();
    assert_eq!(
        signer.commands(),
        before + 1,
        "a wrong password must not be retried"
    );
    assert!(
        e.contains("TPM2_Sign") && e.contains("TPM_RC_AUTH_FAIL"),
        "{e}"
    );
    assert!(
        e.contains("not retried") && !e.contains("wrong-password"),
        "{e}"
    );
}

#[test]
fn key_password_file_is_used() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key(
        "pwf.tss2.pem",
        "EC",
        &["group:P-256", "user-auth:from-file"],
    );
    std::fs::write(t.path("pw.txt"), "from-file\n").unwrap();
    let mut opts = opts_for(&t);
    opts.tpm_key_password_file = Some(t.path("pw.txt"));
    let signer = open_file(&key, &opts).unwrap();
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("pwf.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "pwf",
    );
}

#[test]
fn matching_persistent_srk_replaces_create_primary() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("srk.tss2.pem", "EC", &["group:P-256"]);
    t.persistent_srk(&[]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    // Two ReadPublic (handle, then its public area) + Load; no CreatePrimary, no parent flush.
    assert_eq!(signer.commands(), 3);
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("srk.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "srk",
    );
}

#[test]
fn non_matching_persistent_srk_is_ignored() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("other.tss2.pem", "EC", &["group:P-256"]);
    // An RSA storage key at 0x81000001: not the ECC template, so a primary must be created.
    t.persistent_primary(&["-G", "rsa2048"], "rsa.ctx", "0x81000001");
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    assert_eq!(signer.commands(), 5);
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("other.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "oth",
    );
}

#[test]
fn persistent_handle_key_signs() {
    let Some(t) = tpm() else { return };
    let pub_pem = t.tools_key(None, None, None);
    t.evict("key.ctx", "0x81000103");
    let signer = open_handle("handle:0x81000103", &opts_for(&t)).unwrap();
    assert_eq!(signer.public_key(), &pem_public(&pub_pem));
    assert_eq!(signer.commands(), 2);
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "handle");
    assert!(signer.describe().contains("0x81000103"));
}

#[test]
fn persistent_handle_key_with_password_uses_its_session() {
    let Some(t) = tpm() else { return };
    let pub_pem = t.tools_key(None, Some("hpw"), None);
    t.evict("key.ctx", "0x81000104");
    let mut opts = opts_for(&t);
    opts.tpm_key_password = Some(Secret::new("hpw".into()));
    let signer = open_handle("handle:0x81000104", &opts).unwrap();
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "hpw");
}

#[test]
fn absent_persistent_handle_names_the_handle() {
    let Some(t) = tpm() else { return };
    let e = open_handle("handle:0x81000999", &opts_for(&t)).unwrap_err();
    // Issue 14 (17): a configuration mistake (exit 2), with the way to list the real handles.
    assert_eq!(e.class(), ErrorClass::Configuration, "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("0x81000999")
            && e.contains("TPM_RC_HANDLE")
            && e.contains("tpm2_getcap handles-persistent"),
        "{e}"
    );
}

/// Issue 14 (17): a key file whose persistent parent is not in the TPM is a configuration mistake
/// naming the parent handle.
#[test]
fn absent_persistent_parent_is_a_configuration_error_naming_it() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("gone.tss2.pem", "EC", &["group:P-256"]);
    let mut kf = keyfile::TpmKeyFile::from_pem(&std::fs::read(&key).unwrap()).unwrap();
    kf.parent = 0x8100_0777;
    std::fs::write(&key, kf.to_pem()).unwrap();
    let e = open_file(&key, &opts_for(&t)).expect_err("no parent at 0x81000777");
    assert_eq!(e.class(), ErrorClass::Configuration, "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("no parent key at TPM persistent handle 0x81000777")
            && e.contains("TPM_RC_HANDLE"),
        "{e}"
    );
}

#[test]
fn key_under_password_protected_persistent_parent_from_tpm2_encodeobject() {
    let Some(t) = tpm() else { return };
    let pub_pem = t.encoded_tools_key("parentpw");
    let key = t.path("enc.tss2.pem");
    let mut opts = opts_for(&t);
    // tpm2_encodeobject 5.4 writes the emptyAuth flag inverted: say explicitly there is none.
    opts.no_tpm_key_password = true;
    opts.tpm_parent_password = Some(Secret::new("parentpw".into()));
    let signer = open_file(&key, &opts).unwrap();
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "enc");
    drop(signer);

    opts.tpm_parent_password = Some(Secret::new("nope".into()));
    let e = open_file(&key, &opts)
        .expect_err("wrong parent password accepted")
        .to_string();
    assert!(
        e.contains("TPM2_Load") && e.contains("TPM_RC_AUTH_FAIL"),
        "{e}"
    );
    assert!(e.contains("parent password"), "{e}");
}

#[test]
fn pcr_policy_key_signs_until_the_pcr_is_extended() {
    let Some(t) = tpm() else { return };
    let pub_pem = t.pcr16_policy_key();
    // The policy's PCR digest: SHA-256 over the selected PCR values (PCR 16 is all zeros at reset).
    use sha2::Digest as _;
    let pcr_digest = sha2::Sha256::digest([0u8; 32]).to_vec();
    let mut params = vec![0x00, 0x20];
    params.extend(&pcr_digest);
    params.extend([0, 0, 0, 1, 0x00, 0x0b, 3, 0x00, 0x00, 0x01]);
    let tpm2b = |name: &str| std::fs::read(t.path(name)).unwrap();
    let kf = keyfile::TpmKeyFile {
        empty_auth: true,
        policy: vec![keyfile::PolicyCommand {
            code: policy::CC_POLICY_PCR,
            params,
        }],
        description: Some("pcr16 bound".into()),
        rsa_parent: false,
        parent: 0x8100_0102,
        public: tpm2b("key.pub"),
        private: tpm2b("key.priv"),
    };
    let key = t.path("pcr.tss2.pem");
    std::fs::write(&key, kf.to_pem()).unwrap();
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "pcr1");
    // The policy session is re-armed for every signature.
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "pcr2");
    drop(signer);

    t.tool(&["tpm2_pcrextend", &format!("16:sha256={}", "11".repeat(32))]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    let e = signer.sign(&Digest::sha256(b"x")).unwrap_err().to_string();
    assert!(
        e.contains("TPM2_PolicyPCR") && e.contains("PCR values differ"),
        "{e}"
    );
}

#[test]
fn key_from_another_parent_fails_to_load_with_a_hint() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("np.tss2.pem", "EC", &["group:P-256"]);
    // Claim the RSA parent: the TPM refuses the blob, which belongs to the ECC SRK.
    let mut kf = keyfile::TpmKeyFile::from_pem(&std::fs::read(&key).unwrap()).unwrap();
    kf.rsa_parent = true;
    std::fs::write(&key, kf.to_pem()).unwrap();
    let e = open_file(&key, &opts_for(&t)).expect_err("loaded under the wrong parent");
    // Issue 14 (17): the file does not fit this TPM or parent: configuration, exit 2.
    assert!(
        matches!(e, Error::KeyRefused { .. }) && e.class() == ErrorClass::Configuration,
        "{e:?}"
    );
    let e = e.to_string();
    assert!(
        e.contains("TPM2_Load") && e.contains("parent") && e.contains("np.tss2.pem"),
        "{e}"
    );
}

#[test]
fn handles_are_flushed_when_the_signer_is_dropped() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("fl.tss2.pem", "EC", &["group:P-256", "user-auth:pw"]);
    let mut opts = opts_for(&t);
    opts.tpm_key_password = Some(Secret::new("pw".into()));
    // swtpm has three object slots: without flushing, the fourth signer could not load.
    for i in 0..4 {
        let signer = open_file(&key, &opts).unwrap();
        signer.sign(&Digest::sha256(&[i])).unwrap();
    }
    let out = t.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    let out = t.tool(&["tpm2_getcap", "handles-loaded-session"]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn signer_is_shared_across_threads() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("mt.tss2.pem", "EC", &["group:P-256"]);
    let signer = std::sync::Arc::new(open_file(&key, &opts_for(&t)).unwrap());
    let handles: Vec<_> = (0..4u8)
        .map(|i| {
            let s = signer.clone();
            std::thread::spawn(move || s.sign(&Digest::sha256(&[i])).map(|sig| sig.len()))
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().unwrap() > 60);
    }
}

#[test]
fn credential_fetch_costs_six_commands_and_prints_its_wall_time() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("cost.tss2.pem", "EC", &["group:P-256"]);
    let data = std::fs::read(&key).unwrap();
    let opts = opts_for(&t);
    let runs = 20u32;
    let start = std::time::Instant::now();
    for i in 0..runs {
        // One credential fetch: open (context, parent, load), one signature, drop (flush).
        let signer = open_key_file(&data, &key, &opts).unwrap();
        signer.sign(&Digest::sha256(&i.to_be_bytes())).unwrap();
        assert_eq!(signer.commands(), 5);
    }
    let per = start.elapsed() / runs;
    eprintln!(
        "TPM cost per credential fetch (EC P-256 key file, swtpm over TCP): 6 commands, {per:?}"
    );
    t.persistent_srk(&[]);
    let start = std::time::Instant::now();
    for i in 0..runs {
        let signer = open_key_file(&data, &key, &opts).unwrap();
        signer.sign(&Digest::sha256(&i.to_be_bytes())).unwrap();
        assert_eq!(signer.commands(), 4);
    }
    let per = start.elapsed() / runs;
    eprintln!("TPM cost per credential fetch with a persistent SRK: 5 commands, {per:?}");
    // Nothing left behind after all the fetches.
    let out = t.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn policy_password_key_is_authorised_through_the_policy_session() {
    let Some(t) = tpm() else { return };
    t.tool(&["tpm2_startauthsession", "-S", "trial.ctx"]);
    t.tool(&[
        "tpm2_policyauthvalue",
        "-S",
        "trial.ctx",
        "-L",
        "auth.policy",
    ]);
    t.tool(&["tpm2_flushcontext", "trial.ctx"]);
    let pub_pem = t.tools_key(None, Some("polpw"), Some("auth.policy"));
    let tpm2b = |name: &str| std::fs::read(t.path(name)).unwrap();
    let kf = keyfile::TpmKeyFile {
        empty_auth: false,
        // Written as PolicyPassword, run as PolicyAuthValue (same policy digest).
        policy: vec![keyfile::PolicyCommand {
            code: policy::CC_POLICY_PASSWORD,
            params: vec![],
        }],
        description: None,
        rsa_parent: false,
        parent: 0x8100_0102,
        public: tpm2b("key.pub"),
        private: tpm2b("key.priv"),
    };
    let key = t.path("polpw.tss2.pem");
    std::fs::write(&key, kf.to_pem()).unwrap();
    let mut opts = opts_for(&t);
    opts.tpm_key_password = Some(Secret::new("polpw".into()));
    let signer = open_file(&key, &opts).unwrap();
    assert_openssl_verifies(&t, &signer, &pub_pem, HashAlg::Sha256, "polpw");
    drop(signer);

    opts.tpm_key_password = Some(Secret::new("bad".into()));
    let signer = open_file(&key, &opts).unwrap();
    let e = signer.sign(&Digest::sha256(b"x")).unwrap_err().to_string();
    assert!(
        e.contains("TPM2_Sign") && e.contains("TPM_RC_AUTH_FAIL"),
        "{e}"
    );
}

#[test]
fn persistent_srk_with_another_unique_falls_back_to_the_real_primary() {
    let Some(t) = tpm() else { return };
    let key = t.openssl_key("uq.tss2.pem", "EC", &["group:P-256"]);
    // Same template, zero-filled unique (as some provisioning tools make it): a different key.
    // tpm2_createprimary -u takes a TPMU_PUBLIC_ID with little-endian sizes: x and y of 32 zero bytes.
    let mut unique = vec![0x20, 0x00];
    unique.extend([0u8; 32]);
    unique.extend([0x20, 0x00]);
    unique.extend([0u8; 32]);
    std::fs::write(t.path("unique.bin"), unique).unwrap();
    t.persistent_srk(&["-u", "unique.bin"]);
    let signer = open_file(&key, &opts_for(&t)).unwrap();
    // 2 ReadPublic + failed Load + CreatePrimary + Load + FlushContext(parent).
    assert_eq!(signer.commands(), 6);
    assert_openssl_verifies(
        &t,
        &signer,
        &t.path("uq.tss2.pem.pub.pem"),
        HashAlg::Sha256,
        "uq",
    );
}
