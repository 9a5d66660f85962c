//! Backend tests against a real SoftHSM2 token, with keys made by `pkcs11-tool` and signatures
//! checked by `openssl`.
//!
//! SoftHSM reads `SOFTHSM2_CONF` once, at `C_Initialize`, and a module is initialised once per
//! process; so each test prepares its own token directory in the parent and runs its body in a child
//! process of this test binary (`--exact NAME`) whose environment points at that directory. Missing
//! SoftHSM or tools skip the test, or fail it when `HSM_TESTS_REQUIRED=1` or `CI` is set.

use super::*;
use crate::certs;
use crate::signer::KeyOptions;
use crate::signer::Signer;
use crate::sigv4x509::Digest;
use hsm_tests::softhsm::{MODULE as SOFTHSM, PIN, SoftHsm};
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "RA_PKCS11_TEST_DIR";

/// The workspace's one skip-or-fail rule: `HSM_TESTS_REQUIRED=1` or a non-empty `CI`.
fn required() -> bool {
    hsm_tests::required()
}

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Runs `setup` here and `body` in a child process with a private SoftHSM; `name` is the test's
/// function name. Returns without running anything when SoftHSM is missing (and not required).
fn isolated(name: &str, setup: impl FnOnce(&Fx), body: impl FnOnce(&Fx)) {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        body(&Fx::at(PathBuf::from(dir)));
        return;
    }
    let missing: Vec<&str> = [
        (!Path::new(SOFTHSM).is_file()).then_some(SOFTHSM),
        (!have("softhsm2-util")).then_some("softhsm2-util"),
        (!have("pkcs11-tool")).then_some("pkcs11-tool"),
        (!have("openssl")).then_some("openssl"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        assert!(!required(), "HSM_TESTS_REQUIRED: missing {missing:?}");
        eprintln!("SKIP {name}: missing {missing:?}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fx::at(tmp.path().to_path_buf());
    std::fs::create_dir_all(fx.dir.join("tokens")).unwrap();
    std::fs::write(
        fx.conf(),
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            fx.dir.join("tokens").display()
        ),
    )
    .unwrap();
    setup(&fx);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("signer::pkcs11::tests::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &fx.dir)
        .env("SOFTHSM2_CONF", fx.conf())
        .env_remove(PIN_ENV)
        .env_remove(CONTEXT_PIN_ENV)
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

/// A test's SoftHSM directory and the helpers that fill it with independent tools.
struct Fx {
    dir: PathBuf,
    hsm: SoftHsm,
}

/// The token tools (`init_token`, `pkcs11_tool`, `keygen`, `public_pem`, `run`) are the shared
/// fixture's.
impl std::ops::Deref for Fx {
    type Target = SoftHsm;
    fn deref(&self) -> &SoftHsm {
        &self.hsm
    }
}

impl Fx {
    fn at(dir: PathBuf) -> Fx {
        Fx {
            hsm: SoftHsm::at(dir.clone()),
            dir,
        }
    }

    fn ca(&self) -> Ca {
        let dir = self.dir.join("ca");
        if dir.join("ca.pem").is_file() {
            Ca::load(&dir).unwrap()
        } else {
            Ca::init(&dir, KeyType::EcP256, "pkcs11 test CA").unwrap()
        }
    }

    /// Issues a certificate for `public_pem` and returns its DER.
    fn issue(&self, public_pem: &str, cn: &str) -> Vec<u8> {
        let issued = self
            .ca()
            .issue(&IssueRequest::new(
                &format!("CN={cn}"),
                KeySource::PublicKeyPem(public_pem.to_string()),
            ))
            .unwrap();
        certs::parse_pem_bundle(issued.cert_pem.as_bytes(), cn).unwrap()[0]
            .der()
            .to_vec()
    }

    fn write_cert(&self, token: &str, der: &[u8], id: &str, label: &str) {
        let p = self.dir.join(format!("cert-{token}-{id}-{label}.der"));
        std::fs::write(&p, der).unwrap();
        self.write_cert_der(token, &p, id, label);
    }

    fn save(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// A PEM file of `der`.
    fn pem_file(&self, name: &str, der: &[u8]) -> String {
        let p = self.save(&format!("{name}.der"), der);
        let pem = self.run(
            "openssl",
            &["x509", "-inform", "DER", "-in", p.to_str().unwrap()],
        );
        self.save(&format!("{name}.pem"), pem.as_bytes())
            .display()
            .to_string()
    }

    /// Checks `sig` over `message` with openssl and the public key in `pub_file`.
    fn openssl_verifies(&self, pub_file: &str, message: &[u8], sig: &[u8], hash: &str) -> bool {
        let m = self.save("msg.bin", message);
        let s = self.save("sig.bin", sig);
        Command::new("openssl")
            .args([
                "dgst",
                hash,
                "-verify",
                self.dir.join(pub_file).to_str().unwrap(),
                "-signature",
                s.to_str().unwrap(),
                m.to_str().unwrap(),
            ])
            .output()
            .unwrap()
            .status
            .success()
    }
}

fn opts(certificate: Option<String>, private_key: Option<&str>) -> KeyOptions {
    KeyOptions {
        certificate,
        private_key: private_key.map(str::to_string),
        pkcs11_lib: Some(PathBuf::from(SOFTHSM)),
        ..KeyOptions::default()
    }
}

fn err_text(r: Result<Opened, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => {
            let mut m = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                m.push_str(&format!(": {s}"));
                src = s.source();
            }
            m
        }
    }
}

#[test]
fn certificate_uri_alone_finds_key_by_id_and_signs_p256_verifiably() {
    isolated(
        "certificate_uri_alone_finds_key_by_id_and_signs_p256_verifiably",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "ec-key", &[]);
            fx.save("ec.pub.pem", pem.as_bytes());
            let der = fx.issue(&pem, "ec-leaf");
            fx.write_cert("ra", &der, "01", "ec-key");
            // The CA certificate on the token too: a chain candidate, not the leaf.
            let ca_der = certs::parse_pem_bundle(fx.ca().cert_pem().as_bytes(), "ca").unwrap()[0]
                .der()
                .to_vec();
            fx.write_cert("ra", &ca_der, "99", "ca");
        },
        |fx| {
            let o = opts(
                Some(format!("pkcs11:token=ra;object=ec-key?pin-value={PIN}")),
                None,
            );
            let opened = open(&o, None).unwrap();
            assert_eq!(opened.leaf.subject(), "CN=ec-leaf");
            assert_eq!(opened.signer.public_key(), opened.leaf.public_key());
            assert_eq!(opened.token_certificates.len(), 1);
            assert_eq!(opened.token_certificates[0].subject(), "CN=pkcs11 test CA");
            assert_eq!(
                opened.signer.describe(),
                "pkcs11:token=ra;object=ec-key;id=%01;type=private"
            );
            let msg = b"the canonical request";
            let sig = opened.signer.sign(&Digest::sha256(msg)).unwrap();
            assert!(fx.openssl_verifies("ec.pub.pem", msg, &sig, "-sha256"));
            assert!(!fx.openssl_verifies("ec.pub.pem", b"another message", &sig, "-sha256"));
        },
    );
}

#[test]
fn p384_and_rsa_token_keys_sign_with_file_certificates() {
    isolated(
        "p384_and_rsa_token_keys_sign_with_file_certificates",
        |fx| {
            fx.init_token("ra");
            for (kt, id, label) in [("EC:secp384r1", "02", "p384"), ("rsa:2048", "03", "rsa")] {
                let pem = fx.keygen("ra", kt, id, label, &[]);
                fx.save(&format!("{label}.pub.pem"), pem.as_bytes());
                let der = fx.issue(&pem, label);
                fx.pem_file(label, &der);
            }
        },
        |fx| {
            for (label, hash) in [("p384", "-sha384"), ("rsa", "-sha256"), ("rsa", "-sha512")] {
                let cert_path = fx.dir.join(format!("{label}.pem"));
                let leaf = certs::load_pem_file(&cert_path).unwrap().remove(0);
                let o = opts(
                    Some(cert_path.display().to_string()),
                    Some(&format!("pkcs11:token=ra;object={label}?pin-value={PIN}")),
                );
                let opened = open(&o, Some(&leaf)).unwrap();
                assert_eq!(opened.signer.public_key(), leaf.public_key());
                let alg = match hash {
                    "-sha384" => crate::sigv4x509::HashAlg::Sha384,
                    "-sha512" => crate::sigv4x509::HashAlg::Sha512,
                    _ => crate::sigv4x509::HashAlg::Sha256,
                };
                let msg = b"string to sign";
                let sig = opened.signer.sign(&Digest::compute(alg, msg)).unwrap();
                assert!(
                    fx.openssl_verifies(&format!("{label}.pub.pem"), msg, &sig, hash),
                    "{label} {hash}"
                );
            }
        },
    );
}

#[test]
fn key_with_other_label_and_id_is_found_by_public_key() {
    isolated(
        "key_with_other_label_and_id_is_found_by_public_key",
        |fx| {
            fx.init_token("ra");
            // A decoy key first, so "the first key" would be wrong.
            fx.keygen("ra", "EC:prime256v1", "0a", "decoy", &[]);
            let pem = fx.keygen("ra", "EC:prime256v1", "0b", "the-key", &[]);
            let der = fx.issue(&pem, "leaf");
            fx.write_cert("ra", &der, "c0", "the-cert");
        },
        |_| {
            let o = opts(
                Some(format!("pkcs11:token=ra;object=the-cert?pin-value={PIN}")),
                None,
            );
            let opened = open(&o, None).unwrap();
            assert_eq!(opened.signer.public_key(), opened.leaf.public_key());
            assert!(opened.signer.describe().contains("object=the-key"));
        },
    );
}

#[test]
fn key_with_other_label_is_found_by_cka_id() {
    isolated(
        "key_with_other_label_is_found_by_cka_id",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "rsa:2048", "42", "key-label", &[]);
            let der = fx.issue(&pem, "leaf");
            fx.write_cert("ra", &der, "42", "cert-label");
        },
        |_| {
            let o = opts(
                Some(format!("pkcs11:token=ra;id=%42;type=cert?pin-value={PIN}")),
                None,
            );
            let opened = open(&o, None).unwrap();
            assert!(opened.signer.describe().contains("object=key-label;id=%42"));
        },
    );
}

#[test]
fn wrong_pin_fails_naming_ckr_pin_incorrect() {
    isolated(
        "wrong_pin_fails_naming_ckr_pin_incorrect",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "k", &[]);
            fx.write_cert("ra", &fx.issue(&pem, "leaf"), "01", "k");
        },
        |_| {
            let o = opts(Some("pkcs11:token=ra;object=k?pin-value=9999".into()), None);
            let m = err_text(open(&o, None));
            assert!(
                m.contains("cannot log in to token \"ra\": C_Login: CKR_PIN_INCORRECT"),
                "{m}"
            );
            assert!(!m.contains("9999"), "{m}");
        },
    );
}

#[test]
fn missing_pin_without_terminal_names_the_sources() {
    isolated(
        "missing_pin_without_terminal_names_the_sources",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "k", &[]);
            fx.write_cert("ra", &fx.issue(&pem, "leaf"), "01", "k");
        },
        |_| {
            let m = err_text(open(
                &opts(Some("pkcs11:token=ra;object=k".into()), None),
                None,
            ));
            assert!(m.contains("user PIN of PKCS#11 token \"ra\""), "{m}");
            assert!(m.contains(PIN_ENV) && m.contains("pin-source"), "{m}");
        },
    );
}

#[test]
fn pin_source_file_logs_in() {
    isolated(
        "pin_source_file_logs_in",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "k", &[]);
            fx.write_cert("ra", &fx.issue(&pem, "leaf"), "01", "k");
            fx.save("pin.txt", format!("{PIN}\n").as_bytes());
        },
        |fx| {
            let uri = format!(
                "pkcs11:token=ra;object=k?pin-source=file:{}",
                fx.dir.join("pin.txt").display()
            );
            assert!(open(&opts(Some(uri), None), None).is_ok());
        },
    );
}

#[test]
fn always_authenticate_key_needs_and_uses_context_pin() {
    isolated(
        "always_authenticate_key_needs_and_uses_context_pin",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "aa", &["--always-auth"]);
            fx.save("aa.pub.pem", pem.as_bytes());
            fx.write_cert("ra", &fx.issue(&pem, "leaf"), "01", "aa");
            fx.save("ctx.txt", PIN.as_bytes());
        },
        |fx| {
            let cert = Some(format!("pkcs11:token=ra;object=aa?pin-value={PIN}"));
            let m = err_text(open(&opts(cert.clone(), None), None));
            assert!(m.contains("CKA_ALWAYS_AUTHENTICATE"), "{m}");
            assert!(
                m.contains("--reuse-pin") && m.contains(CONTEXT_PIN_ENV),
                "{m}"
            );

            let msg = b"message";
            let mut reuse = opts(cert.clone(), None);
            reuse.reuse_pin = true;
            let s = open(&reuse, None).unwrap().signer;
            // Twice: each signature needs its own context login.
            for _ in 0..2 {
                let sig = s.sign(&Digest::sha256(msg)).unwrap();
                assert!(fx.openssl_verifies("aa.pub.pem", msg, &sig, "-sha256"));
            }

            let mut file = opts(cert, None);
            file.pkcs11_context_pin_file = Some(fx.dir.join("ctx.txt"));
            let s = open(&file, None).unwrap().signer;
            let sig = s.sign(&Digest::sha256(msg)).unwrap();
            assert!(fx.openssl_verifies("aa.pub.pem", msg, &sig, "-sha256"));
        },
    );
}

#[test]
fn wrong_context_pin_fails_at_sign_naming_ckr() {
    isolated(
        "wrong_context_pin_fails_at_sign_naming_ckr",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "aa", &["--always-auth"]);
            fx.write_cert("ra", &fx.issue(&pem, "leaf"), "01", "aa");
            fx.save("ctx.txt", b"0000");
        },
        |fx| {
            let mut o = opts(
                Some(format!("pkcs11:token=ra;object=aa?pin-value={PIN}")),
                None,
            );
            o.pkcs11_context_pin_file = Some(fx.dir.join("ctx.txt"));
            let s = open(&o, None).unwrap().signer;
            let e = s.sign(&Digest::sha256(b"m")).unwrap_err().to_string();
            assert!(e.contains("C_Login: CKR_PIN_INCORRECT"), "{e}");
        },
    );
}

#[test]
fn same_label_on_two_tokens_is_ambiguous_until_token_is_named() {
    isolated(
        "same_label_on_two_tokens_is_ambiguous_until_token_is_named",
        |fx| {
            for t in ["alpha", "beta"] {
                fx.init_token(t);
                let pem = fx.keygen(t, "EC:prime256v1", "01", "k", &[]);
                fx.write_cert(t, &fx.issue(&pem, t), "01", "k");
            }
        },
        |_| {
            let m = err_text(open(
                &opts(Some(format!("pkcs11:object=k?pin-value={PIN}")), None),
                None,
            ));
            assert!(m.contains("matches several certificates"), "{m}");
            assert!(
                m.contains("pkcs11:token=alpha;object=k;id=%01;type=cert")
                    && m.contains("pkcs11:token=beta;object=k;id=%01;type=cert"),
                "{m}"
            );
            let o = opts(
                Some(format!("pkcs11:token=beta;object=k?pin-value={PIN}")),
                None,
            );
            assert_eq!(open(&o, None).unwrap().leaf.subject(), "CN=beta");
        },
    );
}

#[test]
fn attestation_certificate_with_the_same_id_is_set_aside() {
    isolated(
        "attestation_certificate_with_the_same_id_is_set_aside",
        |fx| {
            fx.init_token("piv");
            let pem = fx.keygen("piv", "EC:prime256v1", "01", "PIV AUTH key", &[]);
            fx.write_cert(
                "piv",
                &fx.issue(&pem, "attested"),
                "01",
                "X.509 Certificate for PIV Attestation 9a",
            );
            fx.write_cert(
                "piv",
                &fx.issue(&pem, "user"),
                "01",
                "X.509 Certificate for PIV Authentication",
            );
        },
        |_| {
            let o = opts(
                Some(format!("pkcs11:id=%01;type=cert?pin-value={PIN}")),
                None,
            );
            let opened = open(&o, None).unwrap();
            assert_eq!(opened.leaf.subject(), "CN=user");
            assert!(opened.token_certificates.is_empty());
        },
    );
}

#[test]
fn listed_certificate_uris_each_select_one_certificate() {
    isolated(
        "listed_certificate_uris_each_select_one_certificate",
        |fx| {
            fx.init_token("ra");
            let a = fx.keygen("ra", "EC:prime256v1", "01", "a", &[]);
            fx.write_cert("ra", &fx.issue(&a, "a"), "01", "a");
            let b = fx.keygen("ra", "rsa:2048", "02", "b c", &[]);
            fx.write_cert("ra", &fx.issue(&b, "b"), "02", "b c");
        },
        |_| {
            let all = list_certificates(&opts(Some("pkcs11:token=ra".into()), None)).unwrap();
            let uris: Vec<&str> = all.iter().map(|(u, _)| u.as_str()).collect();
            assert_eq!(
                uris,
                [
                    "pkcs11:token=ra;object=a;id=%01;type=cert",
                    "pkcs11:token=ra;object=b%20c;id=%02;type=cert"
                ]
            );
            for (uri, cert) in &all {
                let one = list_certificates(&opts(Some(uri.clone()), None)).unwrap();
                assert_eq!(one.len(), 1);
                assert_eq!(one[0].1.der(), cert.der());
            }
            let e = list_certificates(&opts(Some("pkcs11:token=ra;object=zz".into()), None))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                e.contains("no certificate matches pkcs11:token=ra;object=zz"),
                "{e}"
            );
        },
    );
}

#[test]
fn key_that_does_not_match_the_certificate_is_refused_before_use() {
    isolated(
        "key_that_does_not_match_the_certificate_is_refused_before_use",
        |fx| {
            fx.init_token("ra");
            fx.keygen("ra", "EC:prime256v1", "01", "one", &[]);
            let other = fx.keygen("ra", "EC:prime256v1", "02", "two", &[]);
            fx.pem_file("two", &fx.issue(&other, "two"));
        },
        |fx| {
            let o = opts(
                Some(fx.dir.join("two.pem").display().to_string()),
                Some(&format!("pkcs11:token=ra;object=one?pin-value={PIN}")),
            );
            let e = match crate::signer::open(&o) {
                Ok(_) => panic!("mismatch accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("does not match certificate"), "{e}");
            assert!(
                e.contains("pkcs11:token=ra;object=one;id=%01;type=private"),
                "{e}"
            );
        },
    );
}

#[test]
fn unknown_token_lists_present_tokens() {
    isolated(
        "unknown_token_lists_present_tokens",
        |fx| {
            fx.init_token("present");
            fx.init_token("odd; \u{1b}[31m");
        },
        |_| {
            let m = err_text(open(&opts(Some("pkcs11:token=absent".into()), None), None));
            assert!(
                m.contains("no PKCS#11 token matches pkcs11:token=absent"),
                "{m}"
            );
            // Labels are shown percent-encoded: a terminal never sees the escape sequence.
            assert!(m.contains("the module shows: pkcs11:token="), "{m}");
            assert!(m.contains("pkcs11:token=present"), "{m}");
            assert!(m.contains("pkcs11:token=odd%3B%20%1B%5B31m"), "{m}");
            assert!(!m.contains('\u{1b}'), "{m:?}");
            assert!(m.contains("--list-token-slots"), "{m}");
        },
    );
}

#[test]
fn open_key_without_certificate_needs_a_uri_selecting_one_key() {
    isolated(
        "open_key_without_certificate_needs_a_uri_selecting_one_key",
        |fx| {
            fx.init_token("ra");
            let pem = fx.keygen("ra", "EC:prime256v1", "01", "same", &[]);
            fx.save("one.pub.pem", pem.as_bytes());
            fx.keygen("ra", "rsa:2048", "02", "same", &[]);
        },
        |fx| {
            let both = format!("pkcs11:token=ra;object=same?pin-value={PIN}");
            let e = open_key(&opts(None, Some(&both)))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("matches several private keys"), "{e}");
            assert!(e.contains("id=%01") && e.contains("id=%02"), "{e}");
            let one = format!("pkcs11:token=ra;id=%01?pin-value={PIN}");
            let s = open_key(&opts(None, Some(&one))).unwrap();
            let sig = s.sign(&Digest::sha256(b"m")).unwrap();
            assert!(fx.openssl_verifies("one.pub.pem", b"m", &sig, "-sha256"));
        },
    );
}

/// SoftHSM 2.6.1's real mechanism list (from the module, not a copy): it has ECDSA and RSA but no
/// ML-DSA, so the ML-DSA selection refuses, naming what the token does offer, and key generation
/// is not offered either.
#[test]
fn softhsm_mechanism_list_has_no_ml_dsa_and_the_selection_says_so() {
    isolated(
        "softhsm_mechanism_list_has_no_ml_dsa_and_the_selection_says_so",
        |fx| fx.init_token("ra"),
        |_| {
            let module = module::load(Some(Path::new(SOFTHSM)), &[]).unwrap();
            let token = find::select_token(&module, &uri::Pkcs11Uri::default()).unwrap();
            let listed = module.lib.mechanism_list(token.slot).unwrap();
            assert!(listed.contains(&cryptoki_sys::CKM_ECDSA), "{listed:x?}");
            assert!(listed.contains(&cryptoki_sys::CKM_RSA_PKCS), "{listed:x?}");
            let offered = mldsa::offered(&module.lib, token.slot);
            assert_eq!(offered.len(), listed.len());
            // Flags come from C_GetMechanismInfo: ECDSA signs, SHA-256 (a digest) does not.
            assert!(
                offered.contains(&(
                    cryptoki_sys::CKM_ECDSA,
                    Some(
                        module
                            .lib
                            .mechanism_flags(token.slot, cryptoki_sys::CKM_ECDSA)
                            .unwrap()
                            .unwrap()
                    )
                ))
            );
            let e = mldsa::select(&offered).unwrap_err();
            for needle in [
                "offers no ML-DSA signing mechanism (CKM_ML_DSA or CKM_ML_DSA_EXTERNAL_MU",
                "SoftHSM 2.6.1 has none",
                "CKM_ECDSA",
                "CKM_RSA_PKCS",
            ] {
                assert!(e.contains(needle), "{needle:?} not in {e}");
            }
            assert!(
                !e.contains("CKM_SHA256,") && !e.contains("0x250"),
                "digests are not signing mechanisms: {e}"
            );
            assert!(!mldsa::can_generate(&offered));
        },
    );
}

/// An ML-DSA certificate with a token key of another kind is the plain mismatch (tokens can hold
/// ML-DSA keys), refused before any signature, naming both sides.
#[test]
fn ml_dsa_certificate_with_a_token_ec_key_is_a_plain_mismatch() {
    isolated(
        "ml_dsa_certificate_with_a_token_ec_key_is_a_plain_mismatch",
        |fx| {
            fx.init_token("ra");
            fx.keygen("ra", "EC:prime256v1", "01", "ec", &[]);
            let issued = fx
                .ca()
                .issue(&IssueRequest::new(
                    "CN=pq",
                    KeySource::NewKey(KeyType::MlDsa65),
                ))
                .unwrap();
            fx.save("pq.pem", issued.cert_pem.as_bytes());
        },
        |fx| {
            let o = opts(
                Some(fx.dir.join("pq.pem").display().to_string()),
                Some(&format!("pkcs11:token=ra;object=ec?pin-value={PIN}")),
            );
            let e = match crate::signer::open(&o) {
                Ok(_) => panic!("mismatch accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains("does not match certificate"), "{e}");
            assert!(
                e.contains("pkcs11:token=ra;object=ec;id=%01;type=private"),
                "{e}"
            );
            assert!(!e.contains("TPMs do not do ML-DSA"), "{e}");
        },
    );
}
