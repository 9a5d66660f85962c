//! Tests of opening and reloading identities: file rotation and refusal with real keys and
//! certificates from the emulator's CA, and a token certificate re-resolved on a real SoftHSM2 token
//! through OpenSC's pkcs11-spy, counting the logins.

use super::live::{newest_valid, token_wide_uri};
use super::*;
use crate::signer::Reload;
use hsm_tests::softhsm::{self, PIN, SoftHsm};
use rolesanywhere_core::Digest;
use rolesanywhere_emulator::ca::{self, Ca, IssueRequest, KeyType};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use time::{Duration, OffsetDateTime};

/// A test CA and a key with certificates issued for it, in a temp dir.
struct Fx {
    dir: tempfile::TempDir,
    ca: Ca,
}

impl Fx {
    fn new() -> Fx {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::init(&dir.path().join("ca"), KeyType::EcP256, "identity test CA").unwrap();
        Fx { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A new key (PKCS#8 PEM) and a certificate for it.
    fn new_key(&self, cn: &str) -> (String, String) {
        let issued = self
            .ca
            .issue(&IssueRequest::new(
                &format!("CN={cn}"),
                ca::KeySource::NewKey(KeyType::EcP256),
            ))
            .unwrap();
        (issued.key_pem.unwrap(), issued.cert_pem)
    }

    /// Another certificate for the key in `cert_pem`, valid from `not_before`.
    fn reissue(&self, cert_pem: &str, cn: &str, not_before: OffsetDateTime) -> String {
        // openssl, not our own encoder, takes the public key out of the certificate.
        let pem = self.path("for-reissue.pem");
        std::fs::write(&pem, cert_pem).unwrap();
        let out = Command::new("openssl")
            .args(["x509", "-pubkey", "-noout", "-in"])
            .arg(&pem)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let public = String::from_utf8(out.stdout).unwrap();
        let mut req = IssueRequest::new(&format!("CN={cn}"), ca::KeySource::PublicKeyPem(public));
        req.not_before = not_before;
        self.ca.issue(&req).unwrap().cert_pem
    }

    /// Replaces `name` the way rotation tools do: write beside it, then rename over it.
    fn replace(&self, name: &str, contents: &str) -> PathBuf {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        let p = self.path(name);
        std::fs::rename(&tmp, &p).unwrap();
        p
    }

    fn file_opts(&self, key: &Path, cert: &Path) -> KeyOptions {
        KeyOptions {
            private_key: Some(key.display().to_string()),
            certificate: Some(cert.display().to_string()),
            ..KeyOptions::default()
        }
    }
}

fn serial(c: &Certificate) -> String {
    c.serial_hex()
}

/// The current identity still signs (the core only hands the signer a digest).
fn signs(id: &LiveIdentity) {
    id.identity()
        .signer
        .sign(&Digest::sha256(b"still signing"))
        .unwrap();
}

fn err<T>(r: Result<T, Error>) -> Error {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn reload_picks_up_a_rotated_certificate_file() {
    let fx = Fx::new();
    let (key_pem, cert1) = fx.new_key("rotating");
    let key = fx.replace("key.pem", &key_pem);
    let cert = fx.replace("cert.pem", &cert1);
    let mut id = LiveIdentity::open(&fx.file_opts(&key, &cert)).unwrap();
    let first = serial(&id.identity().leaf);
    assert_eq!(id.reload().unwrap(), Reload::Unchanged);

    let cert2 = fx.reissue(
        &cert1,
        "rotated",
        OffsetDateTime::now_utc() - Duration::minutes(5),
    );
    fx.replace("cert.pem", &cert2);
    assert_eq!(id.reload().unwrap(), Reload::Certificate);
    let second = serial(&id.identity().leaf);
    assert_ne!(first, second);
    assert_eq!(id.identity().leaf.subject(), "CN=rotated");
    signs(&id);
    assert_eq!(id.reload().unwrap(), Reload::Unchanged);
}

#[test]
fn reload_follows_a_swapped_symlink_like_a_kubernetes_secret() {
    let fx = Fx::new();
    let (key_pem, cert1) = fx.new_key("k8s");
    let cert2 = fx.reissue(&cert1, "k8s-2", OffsetDateTime::now_utc());
    for (dir, cert) in [("v1", &cert1), ("v2", &cert2)] {
        std::fs::create_dir(fx.path(dir)).unwrap();
        std::fs::write(fx.path(dir).join("tls.key"), &key_pem).unwrap();
        std::fs::write(fx.path(dir).join("tls.crt"), cert).unwrap();
    }
    std::os::unix::fs::symlink("v1", fx.path("..data")).unwrap();
    let key = fx.path("tls.key");
    let cert = fx.path("tls.crt");
    std::os::unix::fs::symlink("..data/tls.key", &key).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", &cert).unwrap();
    let mut id = LiveIdentity::open(&fx.file_opts(&key, &cert)).unwrap();
    assert_eq!(id.identity().leaf.subject(), "CN=k8s");

    std::os::unix::fs::symlink("v2", fx.path("..data.new")).unwrap();
    std::fs::rename(fx.path("..data.new"), fx.path("..data")).unwrap();
    assert_eq!(id.reload().unwrap(), Reload::Certificate);
    assert_eq!(id.identity().leaf.subject(), "CN=k8s-2");
}

#[test]
fn reload_refuses_a_certificate_for_another_key_and_keeps_the_old_identity() {
    let fx = Fx::new();
    let (key_pem, cert1) = fx.new_key("mine");
    let (_, foreign) = fx.new_key("someone-else");
    let key = fx.replace("key.pem", &key_pem);
    let cert = fx.replace("cert.pem", &cert1);
    let mut id = LiveIdentity::open(&fx.file_opts(&key, &cert)).unwrap();
    let before = serial(&id.identity().leaf);

    fx.replace("cert.pem", &foreign);
    let e = err(id.reload());
    assert!(matches!(e, Error::CertificateKeyMismatch { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&*cert.display().to_string()) && text.contains("CN=someone-else"),
        "{text}"
    );
    assert!(e.is_configuration());
    assert_eq!(serial(&id.identity().leaf), before);
    signs(&id);

    // A half-written file (rotation in progress) is refused the same way.
    fx.replace("cert.pem", &cert1[..cert1.len() / 2]);
    assert!(matches!(err(id.reload()), Error::Certificate(_)));
    assert_eq!(serial(&id.identity().leaf), before);

    // Once the right certificate is back, nothing changed.
    fx.replace("cert.pem", &cert1);
    assert_eq!(id.reload().unwrap(), Reload::Unchanged);
}

#[test]
fn reload_reopens_a_replaced_key_file_only_with_its_certificate() {
    let fx = Fx::new();
    let (key1, cert1) = fx.new_key("old-key");
    let (key2, cert2) = fx.new_key("new-key");
    let key = fx.replace("key.pem", &key1);
    let cert = fx.replace("cert.pem", &cert1);
    let mut id = LiveIdentity::open(&fx.file_opts(&key, &cert)).unwrap();
    let old_public = id.identity().signer.public_key().clone();

    // The key rotated first: the old certificate does not match it; the old key stays.
    fx.replace("key.pem", &key2);
    assert!(matches!(
        err(id.reload()),
        Error::CertificateKeyMismatch { .. }
    ));
    assert_eq!(id.identity().signer.public_key(), &old_public);
    signs(&id);

    fx.replace("cert.pem", &cert2);
    assert_eq!(id.reload().unwrap(), Reload::Key);
    assert_ne!(id.identity().signer.public_key(), &old_public);
    assert_eq!(
        id.identity().signer.public_key(),
        id.identity().leaf.public_key()
    );
    signs(&id);
    assert_eq!(id.reload().unwrap(), Reload::Unchanged);
}

#[test]
fn reload_rebuilds_the_chain_from_rotated_intermediates() {
    let fx = Fx::new();
    let sub = fx
        .ca
        .intermediate(&fx.path("sub"), "identity sub CA")
        .unwrap();
    let issued = sub
        .issue(&IssueRequest::new(
            "CN=chained",
            ca::KeySource::NewKey(KeyType::EcP256),
        ))
        .unwrap();
    let key = fx.replace("key.pem", &issued.key_pem.unwrap());
    let cert = fx.replace("cert.pem", &issued.cert_pem);
    let chain = fx.replace("chain.pem", &sub.cert_pem());
    let opts = KeyOptions {
        intermediates: Some(chain),
        ..fx.file_opts(&key, &cert)
    };
    let mut id = LiveIdentity::open(&opts).unwrap();
    assert_eq!(id.identity().chain.len(), 1);

    // An unrelated bundle: the chain is empty now, and that is a change.
    fx.replace("chain.pem", &fx.ca.cert_pem());
    assert_eq!(id.reload().unwrap(), Reload::Certificate);
    assert!(id.identity().chain.is_empty());
    fx.replace("chain.pem", &sub.cert_pem());
    assert_eq!(id.reload().unwrap(), Reload::Certificate);
    assert_eq!(id.identity().chain.len(), 1);
}

#[test]
fn open_is_the_live_identity_without_its_sources() {
    let fx = Fx::new();
    let (key_pem, cert1) = fx.new_key("one-shot");
    let key = fx.replace("key.pem", &key_pem);
    let cert = fx.replace("cert.pem", &cert1);
    let id = open(&fx.file_opts(&key, &cert)).unwrap();
    assert_eq!(id.leaf.subject(), "CN=one-shot");
    assert_eq!(id.signer.public_key(), id.leaf.public_key());
}

/// Environment of the child process that runs a token test's body (see [`on_token`]).
const CHILD_ENV: &str = "RA_IDENTITY_TEST_DIR";

/// Runs `setup` here and `body` in a child process of this test binary (`--exact NAME`) whose
/// environment points SoftHSM at a private token directory and pkcs11-spy at SoftHSM and a log:
/// SoftHSM reads its configuration once per process, and the spy its environment at load.
/// Skips (or fails when required) without SoftHSM, its tools or pkcs11-spy.
fn on_token(name: &str, setup: impl FnOnce(&SoftHsm), body: impl FnOnce(&SoftHsm, &Path)) {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        let hsm = SoftHsm::at(PathBuf::from(dir));
        let spy = softhsm::spy_module().expect("the parent checked for pkcs11-spy");
        body(&hsm, &spy);
        return;
    }
    let Some(hsm) = SoftHsm::new() else { return };
    if softhsm::spy_module().is_none() {
        let _ = hsm_tests::skip("OpenSC's pkcs11-spy.so is missing");
        return;
    }
    setup(&hsm);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("signer::identity::tests::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, hsm.dir())
        .envs(hsm.spy_env(&hsm.dir().join("spy.log")))
        .env_remove(crate::signer::pkcs11::PIN_ENV)
        .env_remove(crate::signer::pkcs11::CONTEXT_PIN_ENV)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child test {name} failed:\n{text}"
    );
}

/// The CA the parent made for a token test, loaded again in the child.
fn token_ca(hsm: &SoftHsm) -> Ca {
    let dir = hsm.dir().join("ca");
    if dir.join("ca.pem").is_file() {
        Ca::load(&dir).unwrap()
    } else {
        Ca::init(&dir, KeyType::EcP256, "token test CA").unwrap()
    }
}

fn issue_for(ca: &Ca, public_pem: &str, cn: &str, not_before: OffsetDateTime) -> String {
    let mut req = IssueRequest::new(
        &format!("CN={cn}"),
        ca::KeySource::PublicKeyPem(public_pem.to_string()),
    );
    req.not_before = not_before;
    ca.issue(&req).unwrap().cert_pem
}

/// The refresher's case: the token certificate is renewed (a newer one written under the same
/// label) while the identity stays open. The reload finds it through a new session of the same
/// module and keeps the logged-in signer: pkcs11-spy sees one C_Login in all. A certificate for
/// another key written later is refused and the renewed identity keeps signing.
#[test]
fn reload_re_resolves_the_token_certificate_without_logging_in_again() {
    on_token(
        "reload_re_resolves_the_token_certificate_without_logging_in_again",
        |hsm| {
            hsm.init_token("ra");
            let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
            let ca = token_ca(hsm);
            let cert = issue_for(
                &ca,
                &public,
                "first",
                OffsetDateTime::now_utc() - Duration::days(1),
            );
            hsm.write_cert("ra", &cert, "01", "k");
            std::fs::write(hsm.dir().join("public.pem"), public).unwrap();
        },
        |hsm, spy| {
            let log = hsm.dir().join("spy.log");
            let logins = || softhsm::count_calls(&log, "C_Login");
            let opts = KeyOptions {
                certificate: Some(format!(
                    "pkcs11:token=ra;object=k;type=cert?pin-value={PIN}"
                )),
                pkcs11_lib: Some(spy.to_path_buf()),
                ..KeyOptions::default()
            };
            let mut id = LiveIdentity::open(&opts).unwrap();
            assert_eq!(id.identity().leaf.subject(), "CN=first");
            signs(&id);
            assert_eq!(logins(), 1);
            assert_eq!(id.reload().unwrap(), Reload::Unchanged);

            // Renewal: a newer certificate under the same id and label, written by another process.
            let public = std::fs::read_to_string(hsm.dir().join("public.pem")).unwrap();
            let ca = token_ca(hsm);
            let renewed = issue_for(
                &ca,
                &public,
                "renewed",
                OffsetDateTime::now_utc() - Duration::hours(1),
            );
            hsm.write_cert("ra", &renewed, "01", "k");
            assert_eq!(id.reload().unwrap(), Reload::Certificate);
            assert_eq!(id.identity().leaf.subject(), "CN=renewed");
            signs(&id);
            assert_eq!(id.reload().unwrap(), Reload::Unchanged);

            // A newer certificate for another key: refused, the renewed identity stays.
            let foreign = ca
                .issue(&IssueRequest::new(
                    "CN=foreign",
                    ca::KeySource::NewKey(KeyType::EcP256),
                ))
                .unwrap()
                .cert_pem;
            hsm.write_cert("ra", &foreign, "01", "k");
            let e = err(id.reload());
            assert!(matches!(e, Error::CertificateKeyMismatch { .. }), "{e:?}");
            assert!(!e.to_string().contains(PIN), "{e}");
            assert_eq!(id.identity().leaf.subject(), "CN=renewed");
            signs(&id);

            assert_eq!(logins(), 1, "a reload logged in again");
            assert_eq!(softhsm::count_calls(&log, "C_Sign"), 3);
        },
    );
}

#[test]
fn newest_valid_prefers_the_latest_certificate_valid_now() {
    let fx = Fx::new();
    let (_, c0) = fx.new_key("base");
    let now = OffsetDateTime::now_utc();
    let parse = |pem: &str| crate::certs::parse_pem_bundle(pem.as_bytes(), "c").unwrap()[0].clone();
    let old = parse(&fx.reissue(&c0, "old", now - Duration::days(2)));
    let newer = parse(&fx.reissue(&c0, "newer", now - Duration::hours(2)));
    let future = parse(&fx.reissue(&c0, "future", now + Duration::days(1)));
    let pick = |v: Vec<Certificate>, at| newest_valid(v, at).map(|c| c.subject());
    assert_eq!(
        pick(vec![old.clone(), future.clone(), newer.clone()], now).as_deref(),
        Some("CN=newer")
    );
    // Nothing valid at that time: the latest issued, for the service to judge.
    assert_eq!(
        pick(vec![old.clone(), future.clone()], now - Duration::days(30)).as_deref(),
        Some("CN=future")
    );
    assert_eq!(pick(Vec::new(), now), None);
}

#[test]
fn token_wide_uri_drops_only_object_and_id() {
    assert_eq!(
        token_wide_uri("pkcs11:token=ra;object=k;id=%01;type=cert?pin-value=1234"),
        "pkcs11:token=ra;type=cert?pin-value=1234"
    );
    assert_eq!(
        token_wide_uri("  PKCS11:OBJECT=k;token=a%3bb;ID=%02"),
        "PKCS11:token=a%3bb"
    );
    assert_eq!(token_wide_uri("pkcs11:object=k"), "pkcs11:");
}

#[test]
fn certificate_description_never_shows_pin_value() {
    let der = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/leaf.crt.der"),
    )
    .unwrap();
    let leaf = Certificate::from_der(der).unwrap();
    let d = describe_certificate("pkcs11:token=a;type=cert?pin-value=hunter2", &leaf);
    assert!(
        !d.contains("hunter2") && d.contains("pin-value=<redacted>"),
        "{d}"
    );
}

#[test]
fn debug_never_shows_pin_value() {
    let opts = KeyOptions {
        certificate: Some("pkcs11:token=a;object=b?pin-value=1234&module-path=/x.so".into()),
        private_key: Some("pkcs11:token=a?pin-value=98765".into()),
        ..Default::default()
    };
    let d = format!("{opts:?}");
    assert!(!d.contains("1234") && !d.contains("98765"), "{d}");
    assert!(d.contains("object=b?pin-value=<redacted>"), "{d}");
}

/// The agent reads secret files once, at start: an encrypted key file then opens, and a rotated
/// one reloads, after its password file is gone (a one-shot secret, systemd's LoadCredential=).
#[test]
fn secret_files_read_once_outlive_the_files() {
    let fx = Fx::new();
    let (key_pem, cert_pem) = fx.new_key("secret-once");
    let encrypt = |plain: &str, out: &Path| {
        let clear = fx.path("clear.pem");
        std::fs::write(&clear, plain).unwrap();
        let status = Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:Tr0ub4dor",
                "-in",
            ])
            .arg(&clear)
            .arg("-out")
            .arg(out)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::remove_file(&clear).unwrap();
    };
    let key = fx.path("key.pem");
    encrypt(&key_pem, &key);
    let cert = fx.replace("cert.pem", &cert_pem);
    let pw = fx.path("pw");
    std::fs::write(&pw, "Tr0ub4dor\n").unwrap();
    let opts = KeyOptions {
        pkcs8_password_file: Some(pw.clone()),
        ..fx.file_opts(&key, &cert)
    };
    let read = opts.with_secret_files_read().unwrap();
    assert_eq!(read.pkcs8_password.as_ref().unwrap().expose(), "Tr0ub4dor");
    assert!(read.pkcs8_password_file.is_none());
    std::fs::remove_file(&pw).unwrap();
    // Without the read, the same options now fail: the file is gone.
    assert!(LiveIdentity::open(&opts).is_err());
    let mut id = LiveIdentity::open(&read).unwrap();
    signs(&id);
    // A rotated key, encrypted with the same password, reloads with the password kept in memory.
    let (key2_pem, cert2_pem) = fx.new_key("secret-once-2");
    let tmp = fx.path(".key.pem.tmp");
    encrypt(&key2_pem, &tmp);
    std::fs::rename(&tmp, &key).unwrap();
    fx.replace("cert.pem", &cert2_pem);
    assert!(matches!(id.reload().unwrap(), Reload::Key));
    signs(&id);
}

/// A file is read only where it would be the source used, and a file that cannot be read is an
/// error naming it, never showing what it holds.
#[test]
fn secret_files_keep_their_precedence() {
    let fx = Fx::new();
    let missing = fx.path("missing");
    let given = KeyOptions {
        pkcs8_password: Some(crate::secret::Secret::new("flag".into())),
        pkcs8_password_file: Some(missing.clone()),
        tpm_key_password: Some(crate::secret::Secret::new("tpmflag".into())),
        tpm_key_password_file: Some(missing.clone()),
        private_key: Some(format!(
            "pkcs11:token=t;object=k?pin-value=1234&pin-source=file:{}",
            missing.display()
        )),
        ..KeyOptions::default()
    };
    let read = given.with_secret_files_read().unwrap();
    assert_eq!(read.pkcs8_password.unwrap().expose(), "flag");
    assert_eq!(read.tpm_key_password.unwrap().expose(), "tpmflag");
    assert!(
        read.pkcs11_pin.is_none(),
        "pin-value comes first: nothing read"
    );

    let pin = fx.path("pin");
    std::fs::write(&pin, "8642\r\nsecond line\n").unwrap();
    let ctx = fx.path("ctx");
    std::fs::write(&ctx, "97531").unwrap();
    let parent = fx.path("parent");
    std::fs::write(&parent, "hier").unwrap();
    let files = KeyOptions {
        certificate: Some(format!(
            "pkcs11:token=t;object=c?pin-source=file:{}",
            pin.display()
        )),
        pkcs11_context_pin_file: Some(ctx),
        tpm_parent_password_file: Some(parent),
        ..KeyOptions::default()
    };
    let read = files.with_secret_files_read().unwrap();
    assert_eq!(read.pkcs11_pin.unwrap().expose(), "8642");
    assert_eq!(read.pkcs11_context_pin.unwrap().expose(), "97531");
    assert_eq!(read.tpm_parent_password.unwrap().expose(), "hier");
    assert!(read.pkcs11_context_pin_file.is_none() && read.tpm_parent_password_file.is_none());

    let bad = KeyOptions {
        tpm_key_password_file: Some(missing.clone()),
        ..KeyOptions::default()
    };
    let e = bad.with_secret_files_read().unwrap_err().to_string();
    assert!(
        e.contains("missing") && e.contains("TPM key password"),
        "{e}"
    );
}

/// A signer that only reports a public key (what `check_matches` reads).
struct Reporting(PublicKey, &'static str);

impl Signer for Reporting {
    fn public_key(&self) -> &PublicKey {
        &self.0
    }
    fn sign(&self, _: &crate::sigv4x509::Digest) -> Result<Vec<u8>, rolesanywhere_core::SignError> {
        unreachable!("check_matches never signs")
    }
    fn describe(&self) -> String {
        self.1.into()
    }
}

#[test]
fn an_ml_dsa_certificate_with_a_tpm_key_says_tpms_do_not_do_ml_dsa() {
    let cert_key =
        PublicKey::ml_dsa(crate::keys::MlDsaSet::MlDsa65, &[3; 1952]).expect("ML-DSA-65 key");
    let tpm = Reporting(
        PublicKey::ec(crate::keys::Curve::P256, &[4; 65]).unwrap(),
        "TPM key handle:0x81000001",
    );
    let e = check_matches(&tpm, &cert_key, "cert.pem (CN=pq)").unwrap_err();
    assert!(matches!(e, Error::MlDsaKeyElsewhere { .. }), "{e:?}");
    let text = e.to_string();
    for needle in [
        "cert.pem (CN=pq)",
        "ML-DSA-65",
        "handle:0x81000001",
        "EC P-256",
        "TPMs do not do ML-DSA yet",
        "--private-key",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    assert!(e.is_configuration());
    // A token key of another kind is the plain mismatch: tokens can hold ML-DSA keys.
    let token = Reporting(
        PublicKey::ec(crate::keys::Curve::P256, &[4; 65]).unwrap(),
        "pkcs11:token=ra;object=k;id=%01;type=private",
    );
    let e = check_matches(&token, &cert_key, "cert.pem").unwrap_err();
    assert!(matches!(e, Error::CertificateKeyMismatch { .. }), "{e:?}");
    assert!(!e.to_string().contains("TPMs do not do ML-DSA"), "{e}");
    // Another ML-DSA key is the plain mismatch.
    let other = Reporting(
        PublicKey::ml_dsa(crate::keys::MlDsaSet::MlDsa65, &[4; 1952]).unwrap(),
        "other.key",
    );
    assert!(matches!(
        check_matches(&other, &cert_key, "cert.pem").unwrap_err(),
        Error::CertificateKeyMismatch { .. }
    ));
}
