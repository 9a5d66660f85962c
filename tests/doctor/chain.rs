//! doctor: tests of the chain check(s).

#[allow(unused_imports)]
use crate::common::*;
use crate::identity::{any, doctor, leaf};
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use time::OffsetDateTime;

fn chain<'a>(run: &'a Run, status: &str, needles: &[&str]) -> &'a str {
    crate::identity::line(run, status, 2, "chain", needles)
}

/// An intermediate CA "Int CA" under the root (its certificate in int/ca.pem).
fn intermediate(env: &Env) -> Ca {
    env.ca.intermediate(&env.path("int"), "Int CA").unwrap()
}

/// An EC P-256 NAME.key / NAME.pem issued by `ca`.
fn leaf_from(env: &Env, ca: &Ca, name: &str) -> String {
    let public = env.openssl_key(
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    env.issue_with(ca, name, public, |r| {
        r.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
    })
}

/// A CA issued by the root with `edit` applied (its validity), loaded from DIR for issuing.
fn ca_with(env: &Env, dir: &str, cn: &str, edit: impl FnOnce(&mut IssueRequest)) -> Ca {
    let mut req = IssueRequest::new(&format!("CN={cn}"), KeySource::NewKey(KeyType::EcP256));
    req.is_ca = true;
    edit(&mut req);
    let issued = env.ca.issue(&req).unwrap();
    let d = env.path(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("ca.pem"), &issued.cert_pem).unwrap();
    rolesanywhere_emulator::ca::write_private(&d.join("ca.key"), &issued.key_pem.unwrap()).unwrap();
    Ca::load(&d).unwrap()
}

#[test]
fn a_chain_reaching_the_anchor_passes() {
    let env = Env::new();
    let int = intermediate(&env);
    leaf_from(&env, &int, "web");
    let run = doctor(
        &env,
        "web",
        &[
            "--intermediates",
            &env.p("int/ca.pem"),
            "--trust-anchor-pem",
            &env.p("ca.pem"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    chain(
        &run,
        "passed",
        &[
            "1 intermediate(s) in issuer order (at most 5), each link's signature verified",
            "'CN=web' <- 'CN=Int CA'",
        ],
    );
    chain(
        &run,
        "passed",
        &[
            "trust anchor",
            "the chain reaches certificate 'CN=Test Root CA'",
        ],
    );
    chain(
        &run,
        "passed",
        &[
            "trust anchor certificate 'CN=Test Root CA'",
            "CA:TRUE, keyCertSign",
        ],
    );
    chain(&run, "passed", &["certificate 'CN=Int CA'", "valid from"]);
    chain(&run, "skipped", &["revocation", "pass --crl FILE"]);
    assert!(!any(&run, "failed", 2, "chain"), "{}", run.stdout);
}

#[test]
fn a_chain_missing_its_intermediate_names_the_missing_link() {
    let env = Env::new();
    let int = intermediate(&env);
    leaf_from(&env, &int, "web");
    let run = doctor(&env, "web", &["--trust-anchor-pem", &env.p("ca.pem")]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(
        &run,
        "failed",
        &[
            "web.pem",
            "CN=web",
            "is issued by 'CN=Int CA', which is neither in --intermediates nor in \
             --trust-anchor-pem",
            "fix: add the certificate of 'CN=Int CA' to --intermediates",
        ],
    );
}

#[test]
fn without_trust_anchor_pem_the_anchor_is_skipped() {
    let env = Env::new();
    leaf(&env, "web");
    let run = doctor(&env, "web", &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    chain(
        &run,
        "skipped",
        &["trust anchor", "pass --trust-anchor-pem FILE"],
    );
    chain(&run, "passed", &["no intermediate issued", "CN=web"]);
}

#[test]
fn a_leaf_as_trust_anchor_fails() {
    let env = Env::new();
    leaf(&env, "web");
    let run = doctor(&env, "web", &["--trust-anchor-pem", &env.p("web.pem")]);
    assert_eq!(run.code, 1);
    chain(
        &run,
        "failed",
        &[
            "trust anchor certificate 'CN=web'",
            "is not a CA certificate (basicConstraints CA:TRUE missing)",
        ],
    );
}

#[test]
fn a_revoked_leaf_fails_with_the_date() {
    let env = Env::new();
    let serial = leaf(&env, "web");
    let crl = env
        .ca
        .revoke(&std::fs::read_to_string(env.path("web.pem")).unwrap())
        .unwrap();
    let crl = path_str(&crl);
    let today = OffsetDateTime::now_utc().date().to_string();
    let run = doctor(
        &env,
        "web",
        &["--trust-anchor-pem", &env.p("ca.pem"), "--crl", &crl],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(
        &run,
        "failed",
        &[
            &format!("(serial {serial}, CN=web)"),
            &format!("revoked on {today}T"),
            "crl.pem of 'CN=Test Root CA'",
            "fix: issue a new certificate",
        ],
    );

    // The same CRL in DER form.
    let der = env.p("crl.der");
    openssl(&["crl", "-in", &crl, "-outform", "DER", "-out", &der]);
    let run = doctor(
        &env,
        "web",
        &["--trust-anchor-pem", &env.p("ca.pem"), "--crl", &der],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(&run, "failed", &["CN=web", "revoked on", "crl.der"]);
}

#[test]
fn a_revoked_intermediate_fails() {
    let env = Env::new();
    let int = intermediate(&env);
    leaf_from(&env, &int, "web");
    let crl = env.ca.revoke(&int.cert_pem()).unwrap();
    let run = doctor(
        &env,
        "web",
        &[
            "--intermediates",
            &env.p("int/ca.pem"),
            "--trust-anchor-pem",
            &env.p("ca.pem"),
            "--crl",
            &path_str(&crl),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(&run, "failed", &["certificate 'CN=Int CA'", "revoked on"]);
}

#[test]
fn a_crl_not_listing_the_chain_passes() {
    let env = Env::new();
    let serial = leaf(&env, "web");
    leaf(&env, "other");
    let crl = env
        .ca
        .revoke(&std::fs::read_to_string(env.path("other.pem")).unwrap())
        .unwrap();
    let run = doctor(
        &env,
        "web",
        &[
            "--trust-anchor-pem",
            &env.p("ca.pem"),
            "--crl",
            &path_str(&crl),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    chain(
        &run,
        "passed",
        &[
            "CN=web",
            "not revoked",
            "of 'CN=Test Root CA'",
            "1 entry, signature verified",
            &format!("does not list serial {serial}"),
        ],
    );
}

#[test]
fn a_crl_from_outside_the_chain_warns() {
    let env = Env::new();
    leaf(&env, "web");
    let stranger = Ca::init(&env.path("stranger"), KeyType::EcP256, "Stranger CA").unwrap();
    let victim = stranger
        .issue(&IssueRequest::new(
            "CN=victim",
            KeySource::NewKey(KeyType::EcP256),
        ))
        .unwrap();
    let crl = stranger.revoke(&victim.cert_pem).unwrap();
    let run = doctor(
        &env,
        "web",
        &[
            "--trust-anchor-pem",
            &env.p("ca.pem"),
            "--crl",
            &path_str(&crl),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    chain(
        &run,
        "warning",
        &[
            "is issued by 'CN=Stranger CA', which is neither the trust anchor nor a CA of this \
             chain",
        ],
    );
}

#[test]
fn malformed_crls_and_anchors_are_findings_not_crashes() {
    let env = Env::new();
    leaf(&env, "web");
    let crl = env
        .ca
        .revoke(&std::fs::read_to_string(env.path("web.pem")).unwrap())
        .unwrap();
    let der = env.p("crl.der");
    openssl(&[
        "crl",
        "-in",
        &path_str(&crl),
        "-outform",
        "DER",
        "-out",
        &der,
    ]);
    let bytes = std::fs::read(&der).unwrap();
    std::fs::write(env.path("truncated.der"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(env.path("garbage.crl"), b"\x30\x82\xff\xffgarbage").unwrap();
    std::fs::write(
        env.path("bad.pem"),
        "-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n",
    )
    .unwrap();
    std::fs::write(env.path("anchor.pem"), "not a certificate at all\n").unwrap();
    let run = doctor(
        &env,
        "web",
        &[
            "--trust-anchor-pem",
            &env.p("anchor.pem"),
            "--crl",
            &env.p("truncated.der"),
            "--crl",
            &env.p("garbage.crl"),
            "--crl",
            &env.p("bad.pem"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    chain(
        &run,
        "failed",
        &[
            "--trust-anchor-pem",
            "anchor.pem",
            "holds no CERTIFICATE PEM block",
        ],
    );
    chain(
        &run,
        "failed",
        &["CRL", "truncated.der", "cannot parse it as an X.509 CRL"],
    );
    chain(&run, "failed", &["CRL", "garbage.crl", "cannot parse"]);
    chain(&run, "failed", &["CRL", "bad.pem", "malformed PEM"]);
    chain(
        &run,
        "failed",
        &[
            "CRL",
            "",
            "fix: give --crl a CRL in PEM (-----BEGIN X509 CRL-----) or DER form",
        ],
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn chain_certificates_expiring_or_expired_are_reported() {
    let env = Env::new();
    let now = OffsetDateTime::now_utc();
    let soon = ca_with(&env, "soon", "Soon CA", |r| {
        r.not_after = now + time::Duration::days(10) + time::Duration::hours(1);
    });
    leaf_from(&env, &soon, "web");
    let anchor = ["--trust-anchor-pem", &env.p("ca.pem")];
    let run = doctor(
        &env,
        "web",
        &[&["--intermediates", &env.p("soon/ca.pem")][..], &anchor[..]].concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    chain(
        &run,
        "warning",
        &[
            "certificate 'CN=Soon CA'",
            "in 10 day(s) (under --warn-days 30)",
            "fix: renew this CA certificate",
        ],
    );

    let old = ca_with(&env, "old", "Old CA", |r| {
        r.not_before = now - time::Duration::days(20);
        r.not_after = now - time::Duration::days(1);
    });
    leaf_from(&env, &old, "web2");
    let run = doctor(
        &env,
        "web2",
        &[&["--intermediates", &env.p("old/ca.pem")][..], &anchor[..]].concat(),
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(&run, "failed", &["certificate 'CN=Old CA'", "expired on"]);
    // The link itself is fine: the chain still reaches the anchor.
    chain(
        &run,
        "passed",
        &["the chain reaches certificate 'CN=Test Root CA'"],
    );
}

#[test]
fn more_than_five_intermediates_fail() {
    let env = Env::new();
    let mut cas = vec![intermediate(&env)];
    for i in 1..=5 {
        let next = cas[i - 1]
            .intermediate(&env.path(&format!("int{i}")), &format!("Int {i}"))
            .unwrap();
        cas.push(next);
    }
    leaf_from(&env, &cas[5], "deep");
    // int5/chain.pem holds every intermediate, issuer order.
    let run = doctor(&env, "deep", &["--intermediates", &env.p("int5/chain.pem")]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(&run, "failed", &["chain above", "CN=deep", "more than 5"]);
}

/// A P-521 CA signing with ECDSA-SHA512 (which ring cannot verify): its certificate's signature
/// on the leaf and its CRL's signature are still verified (RustCrypto fallback), so the CRL is
/// used and the revoked leaf fails. Made by Python `cryptography`, an implementation we did not
/// write.
#[test]
fn a_p521_ca_and_its_sha512_crl_are_verified() {
    let env = Env::new();
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
out = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)
ca_key = ec.generate_private_key(ec.SECP521R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "P521 Root")])
ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
      .public_key(ca_key.public_key()).serial_number(1)
      .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
      .sign(ca_key, hashes.SHA512()))
key = ec.generate_private_key(ec.SECP256R1())
leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p521-leaf")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(77)
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA512()))
revoked = (x509.RevokedCertificateBuilder().serial_number(77).revocation_date(now - datetime.timedelta(hours=1)).build())
crl = (x509.CertificateRevocationListBuilder().issuer_name(ca_name)
       .last_update(now - datetime.timedelta(hours=1)).next_update(now + datetime.timedelta(days=7))
       .add_revoked_certificate(revoked).sign(ca_key, hashes.SHA512()))
pem = serialization.Encoding.PEM
open(out + "/p521-ca.pem", "wb").write(ca.public_bytes(pem))
open(out + "/p521.pem", "wb").write(leaf.public_bytes(pem))
open(out + "/p521.key", "wb").write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(out + "/p521-crl.pem", "wb").write(crl.public_bytes(pem))
"#;
    let made = std::process::Command::new("python3")
        .args(["-c", script, &path_str(&env.path(""))])
        .output()
        .expect("python3 runs (scripts/install-deps installs cryptography)");
    assert!(
        made.status.success(),
        "python3 cryptography: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let run = doctor(&env, "p521", &["--trust-anchor-pem", &env.p("p521-ca.pem")]);
    chain(&run, "passed", &["the chain reaches", "'CN=P521 Root'"]);
    let run = doctor(
        &env,
        "p521",
        &[
            "--trust-anchor-pem",
            &env.p("p521-ca.pem"),
            "--crl",
            &env.p("p521-crl.pem"),
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    chain(
        &run,
        "failed",
        &["CN=p521-leaf", "revoked on", "p521-crl.pem"],
    );
}
