//! The agent binary against a private swtpm and the emulator: keys made by tpm2-openssl and
//! tpm2-tools, certificates issued by the emulator's CA, signatures checked by openssl.
//!
//! Each test starts its own swtpm and emulator. Missing tools skip (locally) or fail (CI).

use hsm_tests::emu::Emu;
use hsm_tests::swtpm::{Behaviour, CONTROL_OK, HostileTpm, Swtpm};
use hsm_tests::{Run, run_agent, run_agent_within, skip};
use std::path::Path;
use std::time::{Duration, Instant};

fn setup() -> Option<(Swtpm, Emu)> {
    match Swtpm::start() {
        Ok(t) => Some((t, Emu::start())),
        Err(e) => {
            let _ = skip(&e.0);
            None
        }
    }
}

/// Issues a certificate for the public key PEM at `pub_pem` and writes it as `name`.
fn cert_for(t: &Swtpm, emu: &Emu, pub_pem: &Path, name: &str) -> String {
    let pem = std::fs::read_to_string(pub_pem).unwrap();
    let cert = emu.issue_for_public_key(&pem, "tpm-test");
    std::fs::write(t.path(name), cert).unwrap();
    t.path(name).to_string_lossy().into_owned()
}

/// A tpm2-openssl key `name` (see [`Swtpm::openssl_key`]) and its certificate `cert.pem`: both
/// paths.
fn key_and_cert(t: &Swtpm, emu: &Emu, name: &str, alg: &str, opts: &[&str]) -> (String, String) {
    let key = t.openssl_key(name, alg, opts);
    let cert = cert_for(t, emu, &t.path(&format!("{name}.pub.pem")), "cert.pem");
    (path_str(&key), cert)
}

fn credential_process(
    emu: &Emu,
    cert: &str,
    key: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Run {
    let mut args = vec![
        "credential-process",
        "--certificate",
        cert,
        "--private-key",
        key,
    ];
    args.extend(extra);
    let emu_args = emu.args();
    args.extend(emu_args.iter().map(String::as_str));
    run_agent(&args, env)
}

/// Asserts a successful credential-process run with the reference's JSON shape on stdout.
fn assert_credentials(r: &Run) {
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON on stdout");
    assert_eq!(v["Version"], 1, "{}", r.stdout);
    for k in [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ] {
        assert!(
            v[k].as_str().is_some_and(|s| !s.is_empty()),
            "{k} missing: {}",
            r.stdout
        );
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// tpm2-openssl key of `alg`/`opts`, its certificate; runs credential-process with `--tpm-tcti`.
fn openssl_key_round_trip(alg: &str, opts: &[&str], name: &str) {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, name, alg, opts);
    let tcti = t.tcti();
    let start = Instant::now();
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    let took = start.elapsed();
    assert_credentials(&r);
    assert_eq!(emu.requests(), 1);
    eprintln!(
        "credential-process with a {name} TPM key on swtpm: {took:?} wall time (whole process)"
    );
}

#[test]
fn credential_process_with_tpm2_openssl_ec_p256_key() {
    openssl_key_round_trip("EC", &["group:P-256"], "p256.tss2.pem");
}

/// Issue 4: the parent is created once and the key loaded once. Without a persistent SRK one fetch is
/// ReadPublic(0x81000001), CreatePrimary, Load, FlushContext(parent), Sign, FlushContext(key).
#[test]
fn one_credential_fetch_costs_at_most_six_tpm_commands() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, "count.tss2.pem", "EC", &["group:P-256"]);
    let tcti = t.tcti();
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti, "--debug"], &[]);
    assert_credentials(&r);
    let count: u64 = r
        .stderr
        .lines()
        .find_map(|l| l.split("TPM commands sent by this process: ").nth(1))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no TPM command count under --debug: {}", r.stderr));
    assert!(
        (1..=6).contains(&count),
        "{count} TPM commands for one fetch"
    );
}

#[test]
fn credential_process_with_tpm2_openssl_ec_p384_key() {
    openssl_key_round_trip("EC", &["group:P-384"], "p384.tss2.pem");
}

#[test]
fn credential_process_with_tpm2_openssl_rsa_2048_key() {
    openssl_key_round_trip("RSA", &["bits:2048"], "rsa.tss2.pem");
}

#[test]
fn tcti_from_tpm2tools_tcti_environment() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, "k.tss2.pem", "EC", &["group:P-256"]);
    let tcti = t.tcti();
    let r = credential_process(&emu, &cert, &key, &[], &[("TPM2TOOLS_TCTI", &tcti)]);
    assert_credentials(&r);
    // TPM_DEVICE alone (the reference's variable) is a device path, not a simulator: the flag and
    // TPM2TOOLS_TCTI come first, so a bogus TPM_DEVICE changes nothing here.
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &[],
        &[
            ("TPM2TOOLS_TCTI", &tcti),
            ("TPM_DEVICE", "/nonexistent/tpm"),
        ],
    );
    assert_credentials(&r);
}

#[test]
fn password_key_from_flag_file_and_environment() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(
        &t,
        &emu,
        "pw.tss2.pem",
        "EC",
        &["group:P-256", "user-auth:s3cret pw"],
    );
    let tcti = t.tcti();
    std::fs::write(t.path("pw.txt"), "s3cret pw\n").unwrap();
    let pw_file = path_str(&t.path("pw.txt"));

    let r = credential_process(
        &emu,
        &cert,
        &key,
        &["--tpm-tcti", &tcti, "--tpm-key-password", "s3cret pw"],
        &[],
    );
    assert_credentials(&r);
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &["--tpm-tcti", &tcti, "--tpm-key-password-file", &pw_file],
        &[],
    );
    assert_credentials(&r);
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &["--tpm-tcti", &tcti],
        &[("ROLESANYWHERE_TPM_KEY_PASSWORD", "s3cret pw")],
    );
    assert_credentials(&r);
    assert_eq!(emu.requests(), 3);

    // No password and no terminal: a clear error, no TPM authorisation attempted, nothing sent.
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    assert_ne!(r.code, 0);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(r.stderr.contains("TPM key password"), "{}", r.stderr);
    assert_eq!(emu.requests(), 3);
}

/// The TPM's DA failure counter (TPM2_PT_LOCKOUT_COUNTER).
fn lockout_counter(t: &Swtpm) -> u64 {
    let out = String::from_utf8(t.tool(&["tpm2_getcap", "properties-variable"])).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("TPM2_PT_LOCKOUT_COUNTER:"))
        .expect("lockout counter in tpm2_getcap output");
    let v = line.split(':').nth(1).unwrap().trim();
    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn wrong_password_fails_once_naming_the_tpm_rc_with_empty_stdout() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(
        &t,
        &emu,
        "pw.tss2.pem",
        "EC",
        &["group:P-256", "user-auth:right"],
    );
    let tcti = t.tcti();
    // The fixture disables DA (recovery time 0); turn it on so failed authorisations are counted.
    t.tool(&[
        "tpm2_dictionarylockout",
        "-s",
        "-n",
        "1000",
        "-t",
        "600",
        "-l",
        "0",
    ]);
    assert_eq!(lockout_counter(&t), 0);
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &["--tpm-tcti", &tcti],
        &[("ROLESANYWHERE_TPM_KEY_PASSWORD", "Xyzzy-42")],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert!(
        r.stderr.contains("TPM_RC_AUTH_FAIL") && r.stderr.contains("0x98e"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("not retried"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("Xyzzy-42"),
        "password leaked: {}",
        r.stderr
    );
    // Exactly one failed authorisation reached the TPM, and no request the emulator.
    assert_eq!(lockout_counter(&t), 1);
    assert_eq!(emu.requests(), 0);
}

#[test]
fn persistent_handle_key() {
    let Some((t, emu)) = setup() else { return };
    let pub_pem = t.tools_key(None, None, None);
    t.evict("key.ctx", "0x81000103");
    let cert = cert_for(&t, &emu, &pub_pem, "cert.pem");
    let tcti = t.tcti();
    let r = credential_process(
        &emu,
        &cert,
        "handle:0x81000103",
        &["--tpm-tcti", &tcti],
        &[],
    );
    assert_credentials(&r);
}

#[test]
fn key_under_persistent_parent() {
    let Some((t, emu)) = setup() else { return };
    t.persistent_primary(&["-G", "ecc256:null:aes128cfb"], "parent.ctx", "0x81000105");
    let (key, cert) = key_and_cert(
        &t,
        &emu,
        "pp.tss2.pem",
        "EC",
        &["group:P-256", "parent:0x81000105"],
    );
    let tcti = t.tcti();
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    assert_credentials(&r);
}

#[test]
fn key_under_password_protected_persistent_parent() {
    let Some((t, emu)) = setup() else { return };
    let pub_pem = t.encoded_tools_key("parent-pw");
    let cert = cert_for(&t, &emu, &pub_pem, "cert.pem");
    std::fs::write(t.path("ppw.txt"), "parent-pw\n").unwrap();
    let ppw = path_str(&t.path("ppw.txt"));
    let key = path_str(&t.path("enc.tss2.pem"));
    let tcti = t.tcti();
    // tpm2_encodeobject 5.4 marks a key without password as needing one: --no-tpm-key-password.
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &[
            "--tpm-tcti",
            &tcti,
            "--no-tpm-key-password",
            "--tpm-parent-password-file",
            &ppw,
        ],
        &[],
    );
    assert_credentials(&r);
    let r = credential_process(
        &emu,
        &cert,
        &key,
        &["--tpm-tcti", &tcti, "--no-tpm-key-password"],
        &[("ROLESANYWHERE_TPM_PARENT_PASSWORD", "parent-pw")],
    );
    assert_credentials(&r);
}

/// Writes a TSS2 key file with a PolicyPCR entry using `openssl asn1parse -genconf` (an encoder
/// independent of ours).
fn pcr_policy_key_file(t: &Swtpm, pcr_digest_hex: &str) -> String {
    let hex = |name: &str| hex_of(&std::fs::read(t.path(name)).unwrap());
    let params = format!("0020{pcr_digest_hex}00000001000b03000001");
    let conf = format!(
        "asn1=SEQUENCE:tpmkey\n\
         [tpmkey]\n\
         type=OID:2.23.133.10.1.3\n\
         emptyAuth=EXP:0,BOOLEAN:TRUE\n\
         policy=EXP:1,SEQUENCE:policies\n\
         parent=INTEGER:0x81000102\n\
         pubkey=FORMAT:HEX,OCTETSTRING:{}\n\
         privkey=FORMAT:HEX,OCTETSTRING:{}\n\
         [policies]\n\
         p1=SEQUENCE:pcrpolicy\n\
         [pcrpolicy]\n\
         cc=EXP:0,INTEGER:0x17F\n\
         params=EXP:1,FORMAT:HEX,OCTETSTRING:{params}\n",
        hex("key.pub"),
        hex("key.priv")
    );
    std::fs::write(t.path("key.conf"), conf).unwrap();
    t.tool(&[
        "openssl",
        "asn1parse",
        "-genconf",
        "key.conf",
        "-out",
        "key.der",
        "-noout",
    ]);
    let der = std::fs::read(t.path("key.der")).unwrap();
    let out = t.run(&["openssl", "base64", "-in", "key.der"]);
    assert!(out.status.success());
    let pem = format!(
        "-----BEGIN TSS2 PRIVATE KEY-----\n{}-----END TSS2 PRIVATE KEY-----\n",
        String::from_utf8(out.stdout).unwrap()
    );
    assert!(!der.is_empty());
    std::fs::write(t.path("pcr.tss2.pem"), pem).unwrap();
    path_str(&t.path("pcr.tss2.pem"))
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn pcr_policy_key_works_then_fails_after_the_pcr_is_extended() {
    let Some((t, emu)) = setup() else { return };
    let pub_pem = t.pcr16_policy_key();
    // The policy's PCR digest: SHA-256 over PCR 16's current value, computed by openssl.
    t.tool(&["tpm2_pcrread", "sha256:16", "-o", "pcr16.bin"]);
    let d = t.tool(&["openssl", "dgst", "-sha256", "-binary", "pcr16.bin"]);
    let key = pcr_policy_key_file(&t, &hex_of(&d));
    let cert = cert_for(&t, &emu, &pub_pem, "cert.pem");
    let tcti = t.tcti();
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    assert_credentials(&r);

    t.tool(&["tpm2_pcrextend", &format!("16:sha256={}", "ab".repeat(32))]);
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("TPM2_PolicyPCR") && r.stderr.contains("PCR values differ"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.requests(), 1);
}

#[test]
fn tpm_key_not_matching_the_certificate_fails_before_any_request() {
    let Some((t, emu)) = setup() else { return };
    let key = t.openssl_key("a.tss2.pem", "EC", &["group:P-256"]);
    t.openssl_key("b.tss2.pem", "EC", &["group:P-256"]);
    let cert = cert_for(&t, &emu, &t.path("b.tss2.pem.pub.pem"), "cert-b.pem");
    let tcti = t.tcti();
    let r = credential_process(&emu, &cert, &path_str(&key), &["--tpm-tcti", &tcti], &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("does not match certificate"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.requests(), 0);
}

#[test]
fn unreachable_tpm_names_the_tcti() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, "k.tss2.pem", "EC", &["group:P-256"]);
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcti = format!("swtpm:host=127.0.0.1,port={port}");
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &tcti], &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains(&tcti) && r.stderr.contains("--tpm-tcti"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.requests(), 0);
}

#[test]
fn sign_string_signature_verifies_with_openssl() {
    let Some((t, emu)) = setup() else { return };
    let key = t.openssl_key("ss.tss2.pem", "EC", &["group:P-256"]);
    let pub_pem = t.path("ss.tss2.pem.pub.pem");
    let cert = cert_for(&t, &emu, &pub_pem, "cert.pem");
    let tcti = t.tcti();
    let sign = |with_certificate: bool| {
        let mut args = vec!["sign-string", "--format", "bin"];
        if with_certificate {
            args.extend(["--certificate", &cert]);
        }
        let key = path_str(&key);
        args.extend(["--private-key", &key, "--tpm-tcti", &tcti]);
        let out = std::process::Command::new(hsm_tests::agent_bin())
            .args(&args)
            .env("TSS2_LOG", "all+none")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // The test message: fixed text ‖ "1" ‖ SHA-256("IAM RA" ‖ uncompressed EC point), point from openssl.
    let der = t.tool(&[
        "openssl",
        "pkey",
        "-pubin",
        "-in",
        "ss.tss2.pem.pub.pem",
        "-outform",
        "DER",
    ]);
    let point = &der[der.len() - 65..];
    let mut ra = b"IAM RA".to_vec();
    ra.extend_from_slice(point);
    std::fs::write(t.path("ra.bin"), &ra).unwrap();
    let h = t.tool(&["openssl", "dgst", "-sha256", "-binary", "ra.bin"]);
    let mut msg = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    msg.extend_from_slice(&h);
    std::fs::write(t.path("ss.msg"), &msg).unwrap();
    // With the certificate (the pair is checked first) and with the key alone.
    for with_certificate in [true, false] {
        std::fs::write(t.path("ss.sig"), sign(with_certificate)).unwrap();
        let v = t.run(&[
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            "ss.tss2.pem.pub.pem",
            "-signature",
            "ss.sig",
            "ss.msg",
        ]);
        assert!(
            v.status.success(),
            "with_certificate={with_certificate}: {}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
}

/// Writes `sign-string`'s test message for the EC public key in `pub_pem` (a file in the TPM's dir,
/// `field_len`-byte coordinates) to `msg`: fixed text ‖ "1" ‖ SHA-256("IAM RA" ‖ uncompressed point),
/// the point taken from openssl's DER.
fn write_sign_string_message(t: &Swtpm, pub_pem: &str, field_len: usize, msg: &str) {
    let der = t.tool(&[
        "openssl", "pkey", "-pubin", "-in", pub_pem, "-outform", "DER",
    ]);
    let point = &der[der.len() - (1 + 2 * field_len)..];
    assert_eq!(point[0], 0x04, "uncompressed point expected");
    let mut ra = b"IAM RA".to_vec();
    ra.extend_from_slice(point);
    std::fs::write(t.path("ra.bin"), &ra).unwrap();
    let h = t.tool(&["openssl", "dgst", "-sha256", "-binary", "ra.bin"]);
    let mut m = b"AWS Roles Anywhere Credential Helper Signing Test1".to_vec();
    m.extend_from_slice(&h);
    std::fs::write(t.path(msg), &m).unwrap();
}

/// `sign-string --format bin --digest DIGEST` with the key file `key` (stdout is binary).
fn sign_string_digest(t: &Swtpm, key: &Path, digest: &str) -> std::process::Output {
    std::process::Command::new(hsm_tests::agent_bin())
        .args(["sign-string", "--format", "bin", "--digest", digest])
        .arg("--private-key")
        .arg(key)
        .args(["--tpm-tcti", &t.tcti()])
        .env_clear()
        .env("TSS2_LOG", "all+none")
        .output()
        .expect("cannot run the agent")
}

/// Issue 8 (5): a key without a fixed scheme (tpm2-openssl's) signs sign-string's SHA-384 and
/// SHA-512 digests (TPM2_Sign with ECDSA and that hash); openssl verifies them.
#[test]
fn sign_string_sha384_and_sha512_with_a_null_scheme_ec_key_verify_with_openssl() {
    let Some((t, _emu)) = setup() else { return };
    for (group, field_len) in [("P-256", 32), ("P-384", 48)] {
        let name = format!("{group}.tss2.pem");
        let key = t.openssl_key(&name, "EC", &[&format!("group:{group}")]);
        let pub_pem = format!("{name}.pub.pem");
        write_sign_string_message(&t, &pub_pem, field_len, "m.bin");
        for digest in ["SHA384", "SHA512"] {
            let out = sign_string_digest(&t, &key, digest);
            assert!(
                out.status.success(),
                "{group} {digest}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(t.path("m.sig"), &out.stdout).unwrap();
            let dgst = format!("-{}", digest.to_ascii_lowercase());
            let v = t.run(&[
                "openssl",
                "dgst",
                &dgst,
                "-verify",
                &pub_pem,
                "-signature",
                "m.sig",
                "m.bin",
            ]);
            assert!(
                v.status.success(),
                "{group} {digest}: {}",
                String::from_utf8_lossy(&v.stderr)
            );
        }
    }
}

/// Issue 8 (5): a key whose own scheme fixes ECDSA with SHA-256 (as `enroll keygen` makes them)
/// cannot sign a SHA-384 digest: the error names the key's scheme and the fix instead of a bare
/// TPM_RC_SCHEME, before anything reaches the TPM's TPM2_Sign.
#[test]
fn sign_string_digest_the_keys_scheme_forbids_names_the_scheme_and_the_fix() {
    let Some((t, _emu)) = setup() else { return };
    let key = t.path("fixed.tss2.pem");
    let (key_s, tcti) = (path_str(&key), t.tcti());
    let r = run_agent(
        &[
            "enroll",
            "keygen",
            "--private-key",
            &key_s,
            "--tpm-tcti",
            &tcti,
            "--tpm-timeout",
            "60",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(sign_string_digest(&t, &key, "SHA256").status.success());
    for (digest, name) in [("SHA384", "SHA-384"), ("SHA512", "SHA-512")] {
        let r: Run = sign_string_digest(&t, &key, digest).into();
        eprintln!("--- stderr (exit {}):\n{}", r.code, r.stderr);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        for needle in [
            key_s.as_str(),
            "ECDSA with SHA-256",
            name,
            "--digest SHA256",
            "scheme NULL",
        ] {
            assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
        }
        assert!(!r.stderr.contains("TPM_RC_SCHEME"), "{}", r.stderr);
    }
}

/// A tpm2-openssl EC P-256 key file under the owner hierarchy (public test data; no TPM is needed
/// to read it, only to load it).
const FIXTURE_KEY: &str = "-----BEGIN TSS2 PRIVATE KEY-----
MIHwBgZngQUKAQOgAwEBAQIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAIN6q
ge7dCM3asQZtqXhmRTj9C66oGtPe1BNI0dAu7I+4ACDxZCXkDpLnJz0tBNlOA3z+
6FNsRGZsXB+srhKlbCZHBgSBgAB+ACAbpCV0qrWE4yl060QHtG9+7ddKE/MPDhZS
XGPkmiAojgAQP3U6kpMHxhPfUVyqhEutppoI7JTzur56t1B6duGk/ertAa/sagYP
97P1hIeVPFBCV+MJwAS0iIZrS4hKcftpruYBcZRW3JczWuuP46oZf2Iw0w9no5Xp
n+X3
-----END TSS2 PRIVATE KEY-----
";

/// `sign-string` with `key` through `tcti`, `--tpm-timeout 1`; the agent must exit within 20 s.
fn sign_string_via(tcti: &str, key: &str) -> (Run, Duration) {
    run_agent_within(
        &[
            "sign-string",
            "--private-key",
            key,
            "--tpm-tcti",
            tcti,
            "--tpm-timeout",
            "1",
        ],
        &[],
        Duration::from_secs(20),
    )
}

/// Issue 14 (16): a TPM endpoint that accepts the connection and never answers a command made
/// every TPM command hang forever. With `--tpm-timeout 1` the command fails after about a second,
/// exit 1, naming the command, the TCTI and the flag; both for a key file and a persistent handle.
#[test]
fn issue14_tpm_that_never_answers_fails_after_the_tpm_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.tss2.pem");
    std::fs::write(&key_file, FIXTURE_KEY).unwrap();
    let hostile = HostileTpm::start(Behaviour::Silent, CONTROL_OK);
    let tcti = hostile.tcti();
    for key in [path_str(&key_file), "handle:0x81000001".to_string()] {
        let (r, took) = sign_string_via(&tcti, &key);
        eprintln!("{key}: exit {} after {took:?}: {}", r.code, r.stderr);
        assert_eq!(r.code, 1, "{key}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        for needle in ["TPM2_ReadPublic", tcti.as_str(), "1 s", "--tpm-timeout"] {
            assert!(r.stderr.contains(needle), "{key}: {needle}: {}", r.stderr);
        }
        assert!(took < Duration::from_secs(10), "{key}: took {took:?}");
    }
    // The deadline is checked like the other numeric flags: 0 is a usage error.
    let r = run_agent(
        &[
            "sign-string",
            "--private-key",
            "handle:0x81000001",
            "--tpm-timeout",
            "0",
        ],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--tpm-timeout"), "{}", r.stderr);
}

/// Issue 14 (16): the swtpm TCTI talks to the control port while it opens; a control port that
/// never answers hung the agent before any TPM command. The open has the same deadline.
#[test]
fn issue14_tpm_control_port_that_never_answers_fails_the_open_after_the_tpm_timeout() {
    let hostile = HostileTpm::start(Behaviour::Silent, Behaviour::Silent);
    let tcti = hostile.tcti();
    let (r, took) = sign_string_via(&tcti, "handle:0x81000001");
    eprintln!("exit {} after {took:?}: {}", r.code, r.stderr);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    for needle in ["cannot open the TPM", tcti.as_str(), "1 s", "--tpm-timeout"] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Issue 14 (16): a real TPM behind a proxy that swallows TPM2_Sign: the key opens and loads, then
/// the signature never comes. credential-process fails after the deadline (exit 1, nothing on
/// stdout, no request sent) and does not hang again flushing the key on its way out.
#[test]
fn issue14_sign_that_never_answers_fails_after_the_tpm_timeout_without_a_request() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, "k.tss2.pem", "EC", &["group:P-256"]);
    let proxy = HostileTpm::start(
        Behaviour::Proxy {
            port: t.port(),
            stall: Some(0x15d),
        },
        CONTROL_OK,
    );
    let tcti = proxy.tcti();
    let mut args = vec![
        "credential-process",
        "--certificate",
        &cert,
        "--private-key",
        &key,
        "--tpm-tcti",
        &tcti,
        "--tpm-timeout",
        "1",
    ];
    let emu_args = emu.args();
    args.extend(emu_args.iter().map(String::as_str));
    let (r, took) = run_agent_within(&args, &[], Duration::from_secs(30));
    eprintln!("exit {} after {took:?}: {}", r.code, r.stderr);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    for needle in ["TPM2_Sign", &key, tcti.as_str(), "--tpm-timeout"] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(emu.requests(), 0);
    // Straight to the TPM, the same key works: the failure was the endpoint's alone.
    let r = credential_process(&emu, &cert, &key, &["--tpm-tcti", &t.tcti()], &[]);
    assert_credentials(&r);
}

/// Issue 14 (16): an endpoint that answers garbage (or a bare header, or hangs up) gave a bare
/// "ESYS error 0x70007" for a key file: the first failure was taken for an absent SRK and the next
/// command hit ESYS's bad-sequence state. Now the first failure is reported, in words: the TPM's
/// answer was malformed or the connection broke, naming the command and the TCTI; exit 1.
#[test]
fn issue14_malformed_tpm_answers_are_named_not_bare_tss_codes() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("k.tss2.pem");
    std::fs::write(&key_file, FIXTURE_KEY).unwrap();
    // A success header that announces 255 bytes and brings none; a header without a body; garbage.
    const SHORT: &[u8] = &[0x80, 0x01, 0, 0, 0, 0xff, 0, 0, 0, 0];
    const HEADER_ONLY: &[u8] = &[0x80, 0x01, 0, 0, 0, 0x0a, 0, 0, 0, 0];
    const GARBAGE: &[u8] = &[
        0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
    ];
    for (name, behaviour) in [
        ("garbage", Behaviour::Answer(GARBAGE)),
        ("header only", Behaviour::Answer(HEADER_ONLY)),
        ("short", Behaviour::Answer(SHORT)),
        ("hang-up", Behaviour::Close),
    ] {
        let hostile = HostileTpm::start(behaviour, CONTROL_OK);
        let tcti = hostile.tcti();
        for key in [path_str(&key_file), "handle:0x81000001".to_string()] {
            let (r, _) = sign_string_via(&tcti, &key);
            eprintln!("{name}, {key}: exit {}: {}", r.code, r.stderr);
            assert_eq!(r.code, 1, "{name}, {key}: {}", r.stderr);
            assert!(r.stdout.is_empty(), "{}", r.stdout);
            for needle in [
                "TPM2_ReadPublic",
                tcti.as_str(),
                "malformed or the connection broke",
            ] {
                assert!(
                    r.stderr.contains(needle),
                    "{name}, {key}: {needle}: {}",
                    r.stderr
                );
            }
            assert!(!r.stderr.contains("0x70007"), "{name}, {key}: {}", r.stderr);
        }
    }
}

/// Issue 14 (17): `handle:` naming a persistent handle with no object is a configuration mistake:
/// exit 2 (was 1), nothing on stdout, the handle and the way to list the real ones named.
#[test]
fn issue14_missing_persistent_handle_exits_2_naming_the_handle_and_the_fix() {
    let Some((t, emu)) = setup() else { return };
    // Any certificate will do: the handle fails before the pair is compared.
    let (_, cert) = key_and_cert(&t, &emu, "k.tss2.pem", "EC", &["group:P-256"]);
    let tcti = t.tcti();
    let r = credential_process(
        &emu,
        &cert,
        "handle:0x81000199",
        &["--tpm-tcti", &tcti],
        &[],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    for needle in ["0x81000199", "tpm2_getcap handles-persistent", &tcti] {
        assert!(r.stderr.contains(needle), "{needle}: {}", r.stderr);
    }
    assert_eq!(emu.requests(), 0);
}

/// Writes a `TSS2 PRIVATE KEY` file `name` (emptyAuth TRUE) from a TPM2B_PUBLIC and a
/// TPM2B_PRIVATE under `parent`, encoded by `openssl asn1parse -genconf`.
fn encode_key_file(t: &Swtpm, public: &[u8], private: &[u8], parent: &str, name: &str) -> String {
    let conf = format!(
        "asn1=SEQUENCE:tpmkey\n\
         [tpmkey]\n\
         type=OID:2.23.133.10.1.3\n\
         emptyAuth=EXP:0,BOOLEAN:TRUE\n\
         parent=INTEGER:{parent}\n\
         pubkey=FORMAT:HEX,OCTETSTRING:{}\n\
         privkey=FORMAT:HEX,OCTETSTRING:{}\n",
        hex_of(public),
        hex_of(private)
    );
    std::fs::write(t.path("enc.conf"), conf).unwrap();
    t.tool(&[
        "openssl",
        "asn1parse",
        "-genconf",
        "enc.conf",
        "-out",
        "enc.der",
        "-noout",
    ]);
    let out = t.run(&["openssl", "base64", "-in", "enc.der"]);
    assert!(out.status.success());
    let pem = format!(
        "-----BEGIN TSS2 PRIVATE KEY-----\n{}-----END TSS2 PRIVATE KEY-----\n",
        String::from_utf8(out.stdout).unwrap()
    );
    std::fs::write(t.path(name), pem).unwrap();
    path_str(&t.path(name))
}

/// Issue 14 (17): a TSS2 key file whose blobs were altered (so TPM2_Load refuses it with
/// TPM_RC_INTEGRITY and the like) or cut short is a configuration mistake: exit 2 (was 1), nothing
/// on stdout, the file and the fix named. The untouched file works, so the TPM is fine.
#[test]
fn issue14_tampered_key_file_exits_2_naming_the_file_and_the_fix() {
    let Some((t, emu)) = setup() else { return };
    let pub_pem = t.tools_key(None, None, None);
    let cert = cert_for(&t, &emu, &pub_pem, "cert.pem");
    let tcti = t.tcti();
    let public = std::fs::read(t.path("key.pub")).unwrap();
    let private = std::fs::read(t.path("key.priv")).unwrap();
    let good = encode_key_file(&t, &public, &private, "0x81000102", "good.tss2.pem");
    let r = credential_process(&emu, &cert, &good, &["--tpm-tcti", &tcti], &[]);
    assert_credentials(&r);

    let flip = |v: &[u8], i: usize| {
        let mut v = v.to_vec();
        v[i] ^= 0x5a;
        v
    };
    let mut truncated = private[..private.len() - 8].to_vec();
    let n = u16::try_from(truncated.len() - 2).unwrap().to_be_bytes();
    truncated[..2].copy_from_slice(&n);
    let cases = [
        (
            "private-last",
            public.clone(),
            flip(&private, private.len() - 1),
        ),
        ("private-hmac", public.clone(), flip(&private, 6)),
        ("private-short", public.clone(), truncated),
        (
            "public-unique",
            flip(&public, public.len() - 1),
            private.clone(),
        ),
    ];
    for (name, public, private) in cases {
        let file = encode_key_file(
            &t,
            &public,
            &private,
            "0x81000102",
            &format!("{name}.tss2.pem"),
        );
        let r = credential_process(&emu, &cert, &file, &["--tpm-tcti", &tcti], &[]);
        eprintln!("{name}: exit {}: {}", r.code, r.stderr);
        assert_eq!(r.code, 2, "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        for needle in [file.as_str(), "TPM2_Load", "damaged", "another TPM"] {
            assert!(r.stderr.contains(needle), "{name}: {needle}: {}", r.stderr);
        }
    }
    assert_eq!(emu.requests(), 1);
}

/// Issue 14: a TPM password file that is a FIFO (nobody writing) or a device is refused at once,
/// naming it, for the key and the parent password alike.
#[test]
fn issue_14_tpm_password_files_must_be_regular_files() {
    let Some((t, emu)) = setup() else { return };
    let (key, cert) = key_and_cert(&t, &emu, "p256.tss2.pem", "EC", &["group:P-256"]);
    let tcti = t.tcti();
    let fifo = t.path("pw-fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let fifo = path_str(&fifo);
    for flag in ["--tpm-key-password-file", "--tpm-parent-password-file"] {
        for (path, found) in [
            (fifo.as_str(), "a FIFO (named pipe), not a regular file"),
            ("/dev/zero", "a character device, not a regular file"),
        ] {
            let mut cmd = std::process::Command::new(hsm_tests::agent_bin());
            cmd.args([
                "credential-process",
                "--certificate",
                &cert,
                "--private-key",
            ])
            .args([key.as_str(), "--tpm-tcti", &tcti, flag, path])
            .args(emu.args())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TSS2_LOG", "all+none");
            let out = hsm_tests::output_within(&mut cmd, std::time::Duration::from_secs(10));
            let r = Run::from(out);
            assert_eq!(r.code, 2, "{flag} {path}: {}", r.stderr);
            assert!(r.stdout.is_empty(), "{}", r.stdout);
            let want = format!("from file {path}: it is {found}");
            assert!(r.stderr.contains(&want), "{want}\n{}", r.stderr);
        }
    }
    assert_eq!(emu.requests(), 0);
}
