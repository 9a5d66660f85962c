//! doctor: tests of the identity check(s).

#[allow(unused_imports)]
use crate::common::*;
use time::OffsetDateTime;
use time::macros::datetime;

/// `doctor` for NAME.pem / NAME.key with valid ARNs, plus `extra`.
pub(crate) fn doctor(env: &Env, name: &str, extra: &[&str]) -> Run {
    let cert = env.p(&format!("{name}.pem"));
    let key = env.p(&format!("{name}.key"));
    let mut args = vec![
        "doctor",
        "--certificate",
        &cert,
        "--private-key",
        &key,
        "--trust-anchor-arn",
        TRUST_ANCHOR,
        "--profile-arn",
        PROFILE,
        "--role-arn",
        ROLE,
    ];
    args.extend_from_slice(extra);
    let run = env.run(&args, &[]);
    // Shown with --nocapture, to review the report users get.
    eprintln!(
        "--- doctor (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    assert!(
        run.code == 0 || run.code == 1,
        "doctor must report, not crash: exit {}\n{}",
        run.code,
        run.stderr
    );
    run
}

/// The report's line of check `number`/`check` with `status` that contains every `needle`.
pub(crate) fn line<'a>(
    run: &'a Run,
    status: &str,
    number: u8,
    check: &str,
    needles: &[&str],
) -> &'a str {
    let prefix = format!("{status:<7} {number} {check:<14} ");
    run.stdout
        .lines()
        .find(|l| l.starts_with(&prefix) && needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| {
            panic!(
                "no {status} line of {check} with {needles:?} in:\n{}",
                run.stdout
            )
        })
}

/// Whether any line of `check` has `status`.
pub(crate) fn any(run: &Run, status: &str, number: u8, check: &str) -> bool {
    let prefix = format!("{status:<7} {number} {check:<14} ");
    run.stdout.lines().any(|l| l.starts_with(&prefix))
}

fn id<'a>(run: &'a Run, status: &str, needles: &[&str]) -> &'a str {
    line(run, status, 1, "identity", needles)
}

/// An EC P-256 key NAME.key and its certificate NAME.pem from the root CA, valid for a year
/// (clear of the default --warn-days), `edit` applied.
pub(crate) fn leaf_with(
    env: &Env,
    name: &str,
    edit: impl FnOnce(&mut rolesanywhere_emulator::ca::IssueRequest),
) -> String {
    let public = env.openssl_key(
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    env.issue_with(&env.ca, name, public, |r| {
        r.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
        edit(r)
    })
}

/// [`leaf_with`] unchanged.
pub(crate) fn leaf(env: &Env, name: &str) -> String {
    leaf_with(env, name, |_| {})
}

#[test]
fn a_good_identity_passes_every_line() {
    let env = Env::new();
    let serial = leaf(&env, "web-1");
    let run = doctor(&env, "web-1", &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let name = format!("(serial {serial}, CN=web-1)");
    let opens = id(
        &run,
        "passed",
        &["private key", "opens and matches certificate"],
    );
    assert!(opens.contains(&name), "{opens}");
    id(&run, "passed", &[&name, "is an X.509 v3 certificate"]);
    id(
        &run,
        "passed",
        &[&name, "is an end-entity certificate (not CA:TRUE)"],
    );
    id(&run, "passed", &[&name, "has keyUsage digitalSignature"]);
    id(
        &run,
        "passed",
        &[
            &name,
            "is signed with ecdsa-with-SHA256 (SHA-256 or stronger)",
        ],
    );
    id(&run, "passed", &[&name, "valid from", "until"]);
    assert!(!any(&run, "failed", 1, "identity"), "{}", run.stdout);
    assert!(!any(&run, "warning", 1, "identity"), "{}", run.stdout);
}

#[test]
fn an_expired_certificate_fails_with_its_dates() {
    let env = Env::new();
    leaf_with(&env, "old", |r| {
        r.not_before = datetime!(2019-01-01 00:00:00 UTC);
        r.not_after = datetime!(2020-01-02 03:04:05 UTC);
    });
    let run = doctor(&env, "old", &[]);
    assert_eq!(run.code, 1);
    let l = id(
        &run,
        "failed",
        &[
            "CN=old",
            "expired on 2020-01-02T03:04:05Z",
            "valid from 2019-01-01T00:00:00Z until 2020-01-02T03:04:05Z",
            "fix: issue a new leaf certificate",
        ],
    );
    assert!(l.contains("it is 20"), "{l}");
    // The key still opens: one failure, not a cascade.
    id(&run, "passed", &["opens and matches"]);
}

#[test]
fn a_certificate_not_yet_valid_fails() {
    let env = Env::new();
    leaf_with(&env, "early", |r| {
        r.not_before = datetime!(2040-01-01 00:00:00 UTC);
        r.not_after = datetime!(2041-01-01 00:00:00 UTC);
    });
    let run = doctor(&env, "early", &[]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &[
            "CN=early",
            "is not valid before 2040-01-01T00:00:00Z",
            "check this host's clock",
        ],
    );
}

#[test]
fn a_ca_certificate_as_leaf_fails() {
    let env = Env::new();
    leaf_with(&env, "ca-leaf", |r| r.is_ca = true);
    let run = doctor(&env, "ca-leaf", &[]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &[
            "CN=ca-leaf",
            "is a CA certificate (basicConstraints CA:TRUE)",
            "Roles Anywhere needs an end-entity certificate",
            "fix: sign with an end-entity certificate",
        ],
    );
    // The rest of the certificate is still judged on its own.
    id(
        &run,
        "passed",
        &["CN=ca-leaf", "has keyUsage digitalSignature"],
    );
}

#[test]
fn a_certificate_without_digital_signature_fails() {
    let env = Env::new();
    leaf_with(&env, "no-ds", |r| r.digital_signature = false);
    let run = doctor(&env, "no-ds", &[]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &[
            "CN=no-ds",
            "has a keyUsage without digitalSignature",
            "fix: issue a new leaf certificate for this key with digitalSignature",
        ],
    );
    id(
        &run,
        "passed",
        &["CN=no-ds", "is an end-entity certificate"],
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_fails_naming_both() {
    let env = Env::new();
    leaf(&env, "a");
    leaf(&env, "b");
    let cert = env.p("a.pem");
    let key = env.p("b.key");
    let run = env.run(
        &[
            "doctor",
            "--certificate",
            &cert,
            "--private-key",
            &key,
            "--trust-anchor-arn",
            TRUST_ANCHOR,
            "--profile-arn",
            PROFILE,
            "--role-arn",
            ROLE,
        ],
        &[],
    );
    eprintln!("{}", run.stdout);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let l = id(
        &run,
        "failed",
        &[
            "private key",
            "b.key",
            "opens but does not match certificate",
            "a.pem",
            "CN=a",
            "fix: give --private-key the key this certificate was issued for",
        ],
    );
    // Both keys by fingerprint (16 hex digits each).
    let fingerprints = l
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 16)
        .count();
    assert!(fingerprints >= 2, "{l}");
    assert!(l.contains("whose key is"), "{l}");
    assert!(!run.stdout.contains("opens and matches"), "{}", run.stdout);
    // The certificate is still checked.
    id(&run, "passed", &["CN=a", "is an end-entity certificate"]);
}

/// An encrypted PKCS#8 key NAME.key (password `right-horse-battery`) with its certificate.
fn encrypted_leaf(env: &Env, name: &str) {
    leaf_with(env, name, |_| {});
    let plain = env.p(&format!("{name}.key"));
    let enc = env.p(&format!("{name}.enc.key"));
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &plain,
        "-out",
        &enc,
        "-passout",
        "pass:right-horse-battery",
    ]);
    std::fs::rename(&enc, &plain).unwrap();
}

#[test]
fn a_wrong_password_file_fails_without_showing_the_password() {
    let env = Env::new();
    encrypted_leaf(&env, "enc");
    std::fs::write(env.path("wrong.txt"), "wrong-staple-secret\n").unwrap();
    let run = doctor(&env, "enc", &["--pkcs8-password-file", &env.p("wrong.txt")]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &[
            "private key",
            "enc.key",
            "cannot decrypt private key file",
            "wrong password",
            "fix: give the key file's password",
        ],
    );
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains("wrong-staple-secret"), "{out}");
        assert!(!out.contains("right-horse-battery"), "{out}");
    }
    // The certificate is read even though the key did not open.
    id(&run, "passed", &["CN=enc", "is an end-entity certificate"]);
    id(&run, "passed", &["CN=enc", "valid from"]);

    // The right one opens it: the failure was the password, not the file.
    std::fs::write(env.path("right.txt"), "right-horse-battery\n").unwrap();
    let run = doctor(&env, "enc", &["--pkcs8-password-file", &env.p("right.txt")]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    id(&run, "passed", &["opens and matches"]);
}

#[test]
fn a_missing_password_file_fails_naming_it() {
    let env = Env::new();
    encrypted_leaf(&env, "enc");
    let missing = env.p("no-such-password.txt");
    let run = doctor(&env, "enc", &["--pkcs8-password-file", &missing]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &[
            "private key",
            "no-such-password.txt",
            "fix: give the key file's password",
        ],
    );
    // No password at all, and no terminal to ask on: refused, never waited for.
    let run = doctor(&env, "enc", &[]);
    assert_eq!(run.code, 1);
    id(
        &run,
        "failed",
        &["private key", "is encrypted and no password was given"],
    );
}

#[test]
fn a_certificate_expiring_within_warn_days_warns_and_exits_0() {
    let env = Env::new();
    let now = OffsetDateTime::now_utc();
    leaf_with(&env, "soon", |r| {
        r.not_after = now + time::Duration::days(10) + time::Duration::hours(1);
    });
    let run = doctor(&env, "soon", &[]);
    assert_eq!(run.code, 0, "a warning is not a failure:\n{}", run.stdout);
    id(
        &run,
        "warning",
        &[
            "CN=soon",
            "expires on",
            "in 10 day(s) (under --warn-days 30)",
            "fix: renew it before",
        ],
    );
    let run = doctor(&env, "soon", &["--warn-days", "5"]);
    assert_eq!(run.code, 0);
    id(&run, "passed", &["CN=soon", "valid from"]);
    assert!(!any(&run, "warning", 1, "identity"), "{}", run.stdout);
}

#[test]
fn an_unreadable_certificate_is_a_finding_and_the_key_is_still_opened() {
    let env = Env::new();
    leaf(&env, "k");
    std::fs::write(env.path("garbage.pem"), b"\x00\x01not a certificate\xff").unwrap();
    let cert = env.p("garbage.pem");
    let key = env.p("k.key");
    let run = env.run(
        &["doctor", "--certificate", &cert, "--private-key", &key],
        &[],
    );
    eprintln!("{}{}", run.stdout, run.stderr);
    assert_eq!(run.code, 1, "{}", run.stderr);
    id(
        &run,
        "failed",
        &[
            "certificate",
            "garbage.pem",
            "holds no CERTIFICATE PEM block",
        ],
    );
    id(&run, "passed", &["private key", "k.key"]);
    line(&run, "skipped", 2, "chain", &["no leaf certificate"]);
}

#[test]
fn a_sha1_signature_fails() {
    let env = Env::new();
    leaf(&env, "weak");
    let key = env.p("weak.key");
    let cert = env.p("weak.pem");
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-sha1",
        "-key",
        &key,
        "-out",
        &cert,
        "-days",
        "365",
        "-subj",
        "/CN=weak",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-addext",
        "keyUsage=critical,digitalSignature",
    ]);
    let run = doctor(&env, "weak", &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    id(
        &run,
        "failed",
        &[
            "CN=weak",
            "is signed with ecdsa-with-SHA1, weaker than SHA-256",
            "fix: issue a new leaf certificate for this key, signed with SHA-256 or stronger",
        ],
    );
    id(&run, "passed", &["opens and matches"]);
}

/// A token key: the right PIN source opens it and the token's certificate is checked; a wrong
/// one fails once (one C_Login when OpenSC's spy module is there to count), the PIN never shown.
#[test]
fn a_token_key_with_right_and_wrong_pin_sources() {
    use hsm_tests::softhsm::{self, MODULE, PIN, SoftHsm};
    let Some(hsm) = SoftHsm::new() else { return };
    let env = Env::new();
    hsm.init_token("ra");
    let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
    let serial = env.issue_with(&env.ca, "tok", public, |r| {
        r.not_after = OffsetDateTime::now_utc() + time::Duration::days(365);
    });
    hsm.write_cert(
        "ra",
        &std::fs::read_to_string(env.path("tok.pem")).unwrap(),
        "01",
        "k",
    );
    std::fs::write(env.path("pin.txt"), PIN).unwrap();
    std::fs::write(env.path("wrong-pin.txt"), "98765").unwrap();
    let log = env.path("spy.log");
    let spy = softhsm::spy_module();
    let module = spy.as_deref().map_or(MODULE.to_string(), path_str);
    let vars = hsm.spy_env(&log);
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run_with = |pin_file: &str| {
        let uri = format!(
            "pkcs11:token=ra;object=k;type=cert?pin-source=file:{}",
            env.p(pin_file)
        );
        let run = env.run(
            &[
                "doctor",
                "--certificate",
                &uri,
                "--pkcs11-lib",
                &module,
                "--trust-anchor-arn",
                TRUST_ANCHOR,
                "--profile-arn",
                PROFILE,
                "--role-arn",
                ROLE,
            ],
            &vars,
        );
        eprintln!(
            "--- doctor (exit {}):\n{}{}",
            run.code, run.stdout, run.stderr
        );
        run
    };

    let run = run_with("pin.txt");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    id(
        &run,
        "passed",
        &[
            "private key",
            "opens and matches certificate pkcs11:token=ra",
        ],
    );
    id(
        &run,
        "passed",
        &[
            &format!("(serial {serial}, CN=tok)"),
            "is an end-entity certificate",
        ],
    );

    let _ = std::fs::remove_file(&log);
    let run = run_with("wrong-pin.txt");
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    id(
        &run,
        "failed",
        &[
            "private key of certificate pkcs11:token=ra",
            "CKR_PIN_INCORRECT",
            "fix: check the PIN source",
        ],
    );
    id(
        &run,
        "skipped",
        &["certificate pkcs11:token=ra", "not tried again"],
    );
    for out in [&run.stdout, &run.stderr] {
        assert!(!out.contains("98765"), "{out}");
    }
    if spy.is_some() {
        assert_eq!(
            softhsm::count_calls(&log, "C_Login"),
            1,
            "a wrong PIN is not retried"
        );
    }
}
