//! The `rolesanywhere-emulator` binary: CA subcommands checked with openssl, `init`, and `serve`'s
//! first stdout line and exit codes.

use std::io::BufRead as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use rolesanywhere_emulator::config::Config;

fn emulator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rolesanywhere-emulator"))
        .args(args)
        .env_clear()
        .output()
        .expect("run rolesanywhere-emulator")
}

fn ok(args: &[&str]) -> Output {
    let out = emulator(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// `ca issue --dir <dir> --new-key <kind> --key-out <key> --subject <subject> <extra> --out <out>`.
fn issue_new_key<'a>(
    dir: &'a Path,
    kind: &'a str,
    key: &'a Path,
    subject: &'a str,
    extra: &[&'a str],
    out: &'a Path,
) -> Vec<&'a str> {
    let mut args = vec![
        "ca",
        "issue",
        "--dir",
        p(dir),
        "--new-key",
        kind,
        "--key-out",
        p(key),
        "--subject",
        subject,
    ];
    args.extend(extra);
    args.extend(["--out", p(out)]);
    args
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn assert_openssl_verifies(ca: &Path, untrusted: Option<&Path>, cert: &Path) {
    let mut args = vec!["verify", "-CAfile", p(ca)];
    if let Some(u) = untrusted {
        args.extend(["-untrusted", p(u)]);
    }
    args.push(p(cert));
    let out = openssl(&args);
    assert!(
        out.status.success(),
        "openssl verify {}: {}{}",
        cert.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(cert: &Path) -> String {
    String::from_utf8_lossy(&openssl(&["x509", "-in", p(cert), "-noout", "-text"]).stdout)
        .to_string()
}

#[test]
fn ca_init_writes_a_self_signed_ca_with_a_private_key_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for kind in ["ec-p256", "ec-p384", "rsa-2048"] {
        let dir = tmp.path().join(kind);
        ok(&[
            "ca",
            "init",
            "--dir",
            p(&dir),
            "--key-type",
            kind,
            "--cn",
            "My Test CA",
        ]);
        assert_openssl_verifies(&dir.join("ca.pem"), None, &dir.join("ca.pem"));
        let t = text(&dir.join("ca.pem"));
        assert!(
            t.contains("CA:TRUE")
                && t.contains("Certificate Sign")
                && t.contains("CN = My Test CA"),
            "{t}"
        );
        assert_eq!(mode(&dir.join("ca.key")), 0o600, "{kind}");
        let out = openssl(&["pkey", "-in", p(&dir.join("ca.key")), "-noout"]);
        assert!(
            out.status.success(),
            "{kind}: ca.key is not a key openssl reads"
        );
    }
    let again = emulator(&["ca", "init", "--dir", p(&tmp.path().join("ec-p256"))]);
    assert_eq!(
        again.status.code(),
        Some(2),
        "an existing CA is a usage error"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a CA"));
}

#[test]
fn ca_issue_new_keys_of_every_type_through_an_intermediate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let inter = tmp.path().join("inter");
    ok(&["ca", "init", "--dir", p(&root)]);
    ok(&[
        "ca",
        "intermediate",
        "--dir",
        p(&root),
        "--out-dir",
        p(&inter),
    ]);
    assert_openssl_verifies(&root.join("ca.pem"), None, &inter.join("ca.pem"));
    for kind in ["ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072"] {
        let cert = tmp.path().join(format!("{kind}.pem"));
        let key = tmp.path().join(format!("{kind}.key"));
        ok(&issue_new_key(
            &inter,
            kind,
            &key,
            "CN=leaf,O=Example",
            &["--san", "dns:leaf.example"],
            &cert,
        ));
        assert_openssl_verifies(&root.join("ca.pem"), Some(&inter.join("chain.pem")), &cert);
        assert_eq!(mode(&key), 0o600, "{kind}");
        let from_key = openssl(&["pkey", "-in", p(&key), "-pubout"]).stdout;
        let from_cert = openssl(&["x509", "-in", p(&cert), "-noout", "-pubkey"]).stdout;
        assert!(!from_key.is_empty());
        assert_eq!(
            from_key, from_cert,
            "{kind}: key does not match certificate"
        );
        let t = text(&cert);
        assert!(
            t.contains("Digital Signature")
                && t.contains("CA:FALSE")
                && t.contains("DNS:leaf.example"),
            "{t}"
        );
    }
}

#[test]
fn issued_serials_are_positive_sixteen_bytes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root)]);
    let mut seen = Vec::new();
    for i in 0..4 {
        let cert = tmp.path().join(format!("{i}.pem"));
        let key = tmp.path().join(format!("{i}.key"));
        ok(&issue_new_key(&root, "ec-p256", &key, "CN=s", &[], &cert));
        let out = String::from_utf8_lossy(
            &openssl(&["x509", "-in", p(&cert), "-noout", "-serial"]).stdout,
        )
        .to_string();
        let hex = out.trim().trim_start_matches("serial=").to_string();
        assert_eq!(hex.len(), 32, "{hex}");
        assert!(
            u8::from_str_radix(&hex[..2], 16).expect("hex") < 0x80,
            "{hex} is negative"
        );
        assert!(!seen.contains(&hex));
        seen.push(hex);
    }
}

#[test]
fn ca_issue_certifies_openssl_csr_and_public_key_and_refuses_a_forged_csr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root), "--key-type", "ec-p384"]);
    let key = tmp.path().join("k.pem");
    let csr = tmp.path().join("req.csr");
    assert!(
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            p(&key)
        ])
        .status
        .success()
    );
    assert!(
        openssl(&[
            "req",
            "-new",
            "-key",
            p(&key),
            "-subj",
            "/CN=from-csr",
            "-out",
            p(&csr)
        ])
        .status
        .success()
    );
    let cert = tmp.path().join("csr.pem");
    ok(&[
        "ca",
        "issue",
        "--dir",
        p(&root),
        "--csr",
        p(&csr),
        "--subject",
        "CN=from-csr",
        "--out",
        p(&cert),
    ]);
    assert_openssl_verifies(&root.join("ca.pem"), None, &cert);
    let from_key = openssl(&["pkey", "-in", p(&key), "-pubout"]).stdout;
    assert_eq!(
        from_key,
        openssl(&["x509", "-in", p(&cert), "-noout", "-pubkey"]).stdout
    );

    let pubkey = tmp.path().join("pub.pem");
    std::fs::write(&pubkey, &from_key).expect("write pub");
    let cert2 = tmp.path().join("pub-cert.pem");
    ok(&[
        "ca",
        "issue",
        "--dir",
        p(&root),
        "--public-key",
        p(&pubkey),
        "--subject",
        "CN=from-pub",
        "--out",
        p(&cert2),
    ]);
    assert_openssl_verifies(&root.join("ca.pem"), None, &cert2);

    // Flip one bit in the CSR's signature (its last byte, in DER form).
    let der_csr = tmp.path().join("req.der");
    assert!(
        openssl(&[
            "req",
            "-in",
            p(&csr),
            "-outform",
            "DER",
            "-out",
            p(&der_csr)
        ])
        .status
        .success()
    );
    let mut bytes = std::fs::read(&der_csr).expect("csr der");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&der_csr, &bytes).expect("write forged");
    let out = emulator(&[
        "ca",
        "issue",
        "--dir",
        p(&root),
        "--csr",
        p(&der_csr),
        "--subject",
        "CN=x",
        "--out",
        p(&tmp.path().join("no.pem")),
    ]);
    assert_eq!(out.status.code(), Some(2), "a forged CSR is bad input");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CSR self-signature is invalid"), "{err}");
    assert!(!tmp.path().join("no.pem").exists());
}

#[test]
fn ca_issue_honours_validity_and_key_usage_flags() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root)]);
    let cert = tmp.path().join("c.pem");
    let key = tmp.path().join("c.key");
    ok(&issue_new_key(
        &root,
        "ec-p256",
        &key,
        "CN=dated",
        &[
            "--not-before",
            "2020-01-01T00:00:00Z",
            "--not-after",
            "2021-01-01T00:00:00Z",
            "--no-digital-signature",
        ],
        &cert,
    ));
    let dates =
        String::from_utf8_lossy(&openssl(&["x509", "-in", p(&cert), "-noout", "-dates"]).stdout)
            .to_string();
    assert!(
        dates.contains("notBefore=Jan  1 00:00:00 2020 GMT")
            && dates.contains("notAfter=Jan  1 00:00:00 2021 GMT"),
        "{dates}"
    );
    assert!(!text(&cert).contains("Digital Signature"));
    let out = emulator(&issue_new_key(
        &root,
        "ec-p256",
        &key,
        "CN=x",
        &[
            "--not-before",
            "yesterday",
            "--not-after",
            "2021-01-01T00:00:00Z",
        ],
        &cert,
    ));
    assert_eq!(
        out.status.code(),
        Some(2),
        "a bad --not-before is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--not-before"));
}

#[test]
fn ca_revoke_writes_a_cumulative_crl_openssl_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root), "--key-type", "rsa-2048"]);
    let mut certs = Vec::new();
    for i in 0..3 {
        let cert = tmp.path().join(format!("{i}.pem"));
        ok(&issue_new_key(
            &root,
            "ec-p256",
            &tmp.path().join(format!("{i}.key")),
            "CN=r",
            &[],
            &cert,
        ));
        certs.push(cert);
    }
    ok(&[
        "ca",
        "revoke",
        "--dir",
        p(&root),
        "--certificate",
        p(&certs[0]),
    ]);
    ok(&[
        "ca",
        "revoke",
        "--dir",
        p(&root),
        "--certificate",
        p(&certs[1]),
    ]);
    let crl = root.join("crl.pem");
    let out = openssl(&[
        "crl",
        "-in",
        p(&crl),
        "-CAfile",
        p(&root.join("ca.pem")),
        "-noout",
        "-verify",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verify OK")
            || String::from_utf8_lossy(&out.stdout).contains("verify OK")
    );
    let check = |cert: &Path| {
        openssl(&[
            "verify",
            "-crl_check",
            "-CRLfile",
            p(&crl),
            "-CAfile",
            p(&root.join("ca.pem")),
            p(cert),
        ])
    };
    for revoked in &certs[..2] {
        let out = check(revoked);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("revoked")
                || String::from_utf8_lossy(&out.stderr).contains("revoked")
        );
    }
    assert!(check(&certs[2]).status.success());

    let other = tmp.path().join("other");
    ok(&["ca", "init", "--dir", p(&other)]);
    let out = emulator(&[
        "ca",
        "revoke",
        "--dir",
        p(&other),
        "--certificate",
        p(&certs[2]),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "revoking with the wrong CA is a usage error"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("was not issued by this CA"));
}

#[test]
fn init_prints_three_arns_and_admin_credentials_and_writes_a_loadable_config() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    let out = ok(&["init", "--dir", p(&dir)]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(lines[0].starts_with(
        "TRUST_ANCHOR_ARN=arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/"
    ));
    assert!(
        lines[1].starts_with("PROFILE_ARN=arn:aws:rolesanywhere:us-east-1:123456789012:profile/")
    );
    assert!(lines[2].starts_with("ROLE_ARN=arn:aws:iam::123456789012:role/"));
    let key_id = lines[3]
        .strip_prefix("AWS_ACCESS_KEY_ID=")
        .expect("key id line");
    let secret = lines[4]
        .strip_prefix("AWS_SECRET_ACCESS_KEY=")
        .expect("secret line");
    assert!(key_id.starts_with("AKIA") && key_id.len() == 20, "{key_id}");
    assert_eq!(secret.len(), 40);
    let config = Config::from_file(&dir.join("config.toml")).expect("config loads");
    let admin = config
        .admin
        .as_ref()
        .expect("admin credentials in the config");
    assert_eq!(admin.access_key_id, key_id);
    assert_eq!(admin.secret_access_key.as_str(), secret);
    // The config holds the secret, so it is private; its Debug form does not show it.
    assert_eq!(mode(&dir.join("config.toml")), 0o600);
    assert!(!format!("{config:?}").contains(secret));
    assert_eq!(
        config.trust_anchors[0].arn,
        lines[0]["TRUST_ANCHOR_ARN=".len()..]
    );
    assert_eq!(
        config.profiles[0].role_arns[0],
        lines[2]["ROLE_ARN=".len()..]
    );
    assert_openssl_verifies(&dir.join("ca/ca.pem"), None, &dir.join("client.pem"));
    assert_eq!(mode(&dir.join("client.key")), 0o600);
}

fn first_stdout_line(args: &[&str]) -> (String, std::process::Child) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rolesanywhere-emulator"))
        .args(args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read first line");
    (line, child)
}

#[test]
fn serve_prints_its_url_first_and_writes_the_tls_ca() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    ok(&["init", "--dir", p(&dir)]);
    let config = dir.join("config.toml");

    let (line, mut child) = first_stdout_line(&["serve", "--config", p(&config), "--http"]);
    child.kill().expect("kill the server we started");
    let _ = child.wait();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    let port: u16 = line
        .trim()
        .rsplit(':')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("port");
    assert_ne!(port, 0);

    let ca_out = tmp.path().join("tls-ca.pem");
    let (line, mut child) =
        first_stdout_line(&["serve", "--config", p(&config), "--tls-ca-out", p(&ca_out)]);
    child.kill().expect("kill the server we started");
    let _ = child.wait();
    assert!(
        line.starts_with("listening on https://127.0.0.1:"),
        "{line:?}"
    );
    let t = text(&ca_out);
    assert!(t.contains("CA:TRUE"), "{t}");
}

#[test]
fn serve_with_a_bad_config_exits_2_naming_the_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "region = \"us-east-1\"\n[[profiles]]\narn = \"arn:aws:rolesanywhere:us-east-1:1:profile/x\"\nrole_arns = []\nduration_seconds = 5\n").expect("write");
    let out = emulator(&["serve", "--config", p(&config), "--http"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("profiles[0].duration_seconds") && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
#[ignore = "slow in debug builds (RSA-4096 prime generation); run with --ignored"]
fn ca_issue_new_rsa_4096_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root), "--key-type", "rsa-2048"]);
    let cert = tmp.path().join("c.pem");
    let key = tmp.path().join("c.key");
    ok(&issue_new_key(
        &root,
        "rsa-4096",
        &key,
        "CN=big",
        &[],
        &cert,
    ));
    assert_openssl_verifies(&root.join("ca.pem"), None, &cert);
    assert!(text(&cert).contains("Public-Key: (4096 bit)"));
    let check = openssl(&["pkey", "-in", p(&key), "-check", "-noout"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// Runs the emulator under `/bin/sh -c 'umask 000; exec …'` so that only explicit modes matter.
fn emulator_with_umask(umask: &str, args: &[&str]) -> Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_rolesanywhere-emulator"))
        .args(args)
        .env_clear()
        .output()
        .expect("run rolesanywhere-emulator")
}

#[test]
fn key_out_replaces_a_world_readable_file_with_a_0600_key_issue_14_item_15() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root)]);
    let key = tmp.path().join("client.key");
    std::fs::write(&key, "old public content\n").expect("write");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cert = tmp.path().join("client.pem");
    // umask 000: the file's mode must come from the code, not from the environment.
    let out = emulator_with_umask(
        "000",
        &issue_new_key(&root, "ec-p256", &key, "CN=c", &[], &cert),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&key), 0o600, "the new key is readable by others");
    let check = openssl(&["pkey", "-in", p(&key), "-noout"]);
    assert!(check.status.success(), "the key file holds no key");
    assert_eq!(mode(&cert), 0o644);
}

#[test]
fn key_out_through_a_symlink_is_refused_issue_14_item_15() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root)]);
    let target = tmp.path().join("shared.txt");
    std::fs::write(&target, "public\n").expect("write");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let link = tmp.path().join("client.key");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let cert = tmp.path().join("client.pem");
    let out = emulator(&issue_new_key(&root, "ec-p256", &link, "CN=c", &[], &cert));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("symbolic link") && err.contains("client.key"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&target).expect("target"),
        "public\n"
    );
    assert!(!cert.exists(), "a certificate without its key was written");
}

#[test]
fn ca_keys_are_never_written_through_links_issue_14_item_15() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside.key");
    // `ca init` and `ca intermediate` into a directory whose ca.key is a dangling link.
    let linked = |dir: &Path| {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::os::unix::fs::symlink(&outside, dir.join("ca.key")).expect("symlink");
    };
    let root = tmp.path().join("root");
    linked(&root);
    let out = emulator(&["ca", "init", "--dir", p(&root)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!outside.exists(), "ca init wrote a key through a link");

    let good = tmp.path().join("good");
    ok(&["ca", "init", "--dir", p(&good)]);
    let inter = tmp.path().join("inter");
    linked(&inter);
    let out = emulator(&[
        "ca",
        "intermediate",
        "--dir",
        p(&good),
        "--out-dir",
        p(&inter),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !outside.exists(),
        "ca intermediate wrote a key through a link"
    );

    // init: the client key.
    let demo = tmp.path().join("demo");
    std::fs::create_dir_all(&demo).expect("mkdir");
    std::os::unix::fs::symlink(&outside, demo.join("client.key")).expect("symlink");
    let out = emulator(&["init", "--dir", p(&demo)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !outside.exists(),
        "init wrote the client key through a link"
    );
    assert!(out.stdout.is_empty(), "ARNs printed for a refused init");
    assert!(
        !demo.join("ca").exists(),
        "init created a CA before refusing"
    );
}

#[test]
fn every_written_key_is_0600_and_every_public_file_0644_issue_14_item_15() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let demo = tmp.path().join("demo");
    std::fs::create_dir_all(&demo).expect("mkdir");
    std::fs::write(demo.join("client.key"), "old\n").expect("write");
    std::fs::set_permissions(
        demo.join("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let out = emulator_with_umask("000", &["init", "--dir", p(&demo)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inter = tmp.path().join("inter");
    let out = emulator_with_umask(
        "077",
        &[
            "ca",
            "intermediate",
            "--dir",
            p(&demo.join("ca")),
            "--out-dir",
            p(&inter),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        demo.join("client.key"),
        demo.join("ca/ca.key"),
        inter.join("ca.key"),
        demo.join("config.toml"),
    ] {
        assert_eq!(mode(&key), 0o600, "{}", key.display());
    }
    for public in [
        demo.join("client.pem"),
        demo.join("ca/ca.pem"),
        demo.join("ca/issued.txt"),
        inter.join("ca.pem"),
        inter.join("chain.pem"),
    ] {
        assert_eq!(mode(&public), 0o644, "{}", public.display());
    }
}

#[test]
fn init_on_an_existing_ca_exits_2_issue_14_item_17() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let demo = tmp.path().join("demo");
    ok(&["init", "--dir", p(&demo)]);
    let before = std::fs::read(demo.join("ca/ca.key")).expect("ca.key");
    let out = emulator(&["init", "--dir", p(&demo)]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a CA"));
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read(demo.join("ca/ca.key")).expect("ca.key"),
        before
    );
}

#[test]
fn usage_mistakes_exit_2_and_system_failures_exit_1_issue_14_item_17() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    ok(&["ca", "init", "--dir", p(&root)]);
    let out_pem = tmp.path().join("c.pem");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "ca".into(),
                "issue".into(),
                "--dir".into(),
                p(&tmp.path().join("no-ca")).into(),
                "--new-key".into(),
                "ec-p256".into(),
                "--key-out".into(),
                p(&tmp.path().join("k")).into(),
                "--subject".into(),
                "CN=x".into(),
                "--out".into(),
                p(&out_pem).into(),
            ],
            "cannot read",
        ),
        (
            vec![
                "ca".into(),
                "issue".into(),
                "--dir".into(),
                p(&root).into(),
                "--new-key".into(),
                "ec-p256".into(),
                "--key-out".into(),
                p(&tmp.path().join("k")).into(),
                "--subject".into(),
                "XX=x".into(),
                "--out".into(),
                p(&out_pem).into(),
            ],
            "not supported",
        ),
        (
            vec![
                "ca".into(),
                "issue".into(),
                "--dir".into(),
                p(&root).into(),
                "--csr".into(),
                p(&tmp.path().join("missing.csr")).into(),
                "--subject".into(),
                "CN=x".into(),
                "--out".into(),
                p(&out_pem).into(),
            ],
            "missing.csr",
        ),
        (
            vec![
                "ca".into(),
                "init".into(),
                "--dir".into(),
                p(&tmp.path().join("p521")).into(),
                "--key-type".into(),
                "ec-p521".into(),
            ],
            "ec-p521",
        ),
        (
            vec![
                "serve".into(),
                "--config".into(),
                p(&tmp.path().join("missing.toml")).into(),
                "--http".into(),
            ],
            "missing.toml",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = emulator(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // TLS files that are not usable are a configuration mistake too.
    std::fs::write(tmp.path().join("config.toml"), "region = \"us-east-1\"\n").expect("config");
    let out = emulator(&[
        "serve",
        "--config",
        p(&tmp.path().join("config.toml")),
        "--tls-cert",
        p(&tmp.path().join("nope.pem")),
        "--tls-key",
        p(&tmp.path().join("nope.key")),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A directory that cannot be created is the system's refusal, not a usage mistake.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let out = emulator(&["ca", "init", "--dir", p(&file.join("sub"))]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET /_emulator/stats` of a server started with `flags` (plain HTTP): its JSON.
fn stats_of_serve(config: &Path, flags: &[&str]) -> serde_json::Value {
    use std::io::{Read as _, Write as _};
    let mut args = vec!["serve", "--config", p(config), "--http"];
    args.extend_from_slice(flags);
    let (line, mut child) = first_stdout_line(&args);
    let host = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_string();
    let mut s = std::net::TcpStream::connect(&host).expect("connect");
    write!(
        s,
        "GET /_emulator/stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    child.kill().expect("kill the server we started");
    let _ = child.wait();
    serde_json::from_str(out.split_once("\r\n\r\n").expect("body").1).expect("stats JSON")
}

#[test]
fn serve_throttle_flags_override_the_config_and_are_checked() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo");
    ok(&["init", "--dir", p(&dir)]);
    let config = dir.join("config.toml");
    let v = stats_of_serve(&config, &[]);
    assert_eq!(
        v["throttle"],
        serde_json::json!({"enabled": true, "create_session_per_second": 10, "total_per_second": null})
    );
    assert_eq!(v["throttled"], 0);
    let v = stats_of_serve(
        &config,
        &[
            "--throttle-per-second",
            "3",
            "--throttle-total-per-second",
            "7",
        ],
    );
    assert_eq!(
        v["throttle"],
        serde_json::json!({"enabled": true, "create_session_per_second": 3, "total_per_second": 7})
    );
    let v = stats_of_serve(&config, &["--no-throttle"]);
    assert_eq!(v["throttle"]["enabled"], false);

    let out = emulator(&[
        "serve",
        "--config",
        p(&config),
        "--http",
        "--throttle-per-second",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--throttle-per-second: 0 is outside 1..1000000"),
        "{err}"
    );
    let out = emulator(&[
        "serve",
        "--config",
        p(&config),
        "--http",
        "--no-throttle",
        "--throttle-per-second",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(2));
}
