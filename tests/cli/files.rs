//! Hostile input files (issue 14, items 7 to 10): FIFOs, devices, huge files, huge certificate
//! counts, and key files whose parameters would panic a crate or cost minutes of key derivation.
//!
//! Every run goes through [`run_within`]: a regression that blocks or turns slow fails the test after
//! a few seconds instead of hanging the suite.

use super::common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long a refusal may take; generous for a debug build on a loaded machine. The refusals these
/// tests expect take milliseconds.
const LIMIT: Duration = Duration::from_secs(5);

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

/// An env with a leaf (`leaf.pem`, `leaf.key`) and a FIFO `fifo` nobody writes to.
fn hostile_env() -> Env {
    let env = Env::new();
    env.leaf("leaf");
    mkfifo(&env.path("fifo"));
    env
}

/// `credential-process` with `leaf.pem`, `leaf.key` and the ARNs against `url`, with `replace`
/// swapping in other values for flags (by name) and `extra` appended.
fn agent(
    env: &Env,
    url: &str,
    replace: &[(&str, &str)],
    extra: &[&str],
    vars: &[(&str, &str)],
) -> Run {
    let mut args = env.credential_args(url, "leaf", &[]);
    for (flag, value) in replace {
        match args.iter().position(|a| a == flag) {
            Some(i) => args[i + 1] = value.to_string(),
            None => args.extend([flag.to_string(), value.to_string()]),
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_within(env.cmd(&args, vars), LIMIT)
}

/// The FIFO and a character device, with the word the message uses for each.
fn non_regular(env: &Env) -> [(String, &'static str); 2] {
    [
        (env.p("fifo"), "a FIFO (named pipe), not a regular file"),
        ("/dev/zero".into(), "a character device, not a regular file"),
    ]
}

#[test]
fn issue_14_certificate_key_and_intermediates_must_be_regular_files() {
    let env = hostile_env();
    let emu = env.emulator();
    for (path, found) in non_regular(&env) {
        for (flag, what) in [
            ("--certificate", "cannot read certificate file"),
            ("--private-key", "cannot read private key file"),
            ("--intermediates", "cannot read certificate file"),
        ] {
            let run = agent(&env, &emu.url(), &[(flag, &path)], &[], &[]);
            run.assert_failure(2, &[&format!("{what} {path}: it is {found}")]);
        }
    }
    assert!(emu.decisions().is_empty());
}

#[test]
fn issue_14_password_file_must_be_a_regular_file() {
    let env = hostile_env();
    openssl(&[
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-in",
        &env.p("leaf.key"),
        "-out",
        &env.p("enc.key"),
        "-passout",
        "pass:pw",
    ]);
    let emu = env.emulator();
    for (path, found) in non_regular(&env) {
        let run = agent(
            &env,
            &emu.url(),
            &[
                ("--private-key", &env.p("enc.key")),
                ("--pkcs8-password-file", &path),
            ],
            &[],
            &[],
        );
        run.assert_failure(
            2,
            &[&format!(
                "cannot read private key password from file {path}: it is {found}"
            )],
        );
    }
    assert!(emu.decisions().is_empty());
}

#[test]
fn issue_14_pkcs11_module_must_be_a_regular_file_before_dlopen() {
    let env = hostile_env();
    for (path, found) in non_regular(&env) {
        let lib = agent(
            &env,
            "http://127.0.0.1:9",
            &[
                ("--certificate", "pkcs11:token=t;object=k"),
                ("--private-key", "pkcs11:token=t;object=k"),
            ],
            &["--pkcs11-lib", &path],
            &[],
        );
        lib.assert_failure(
            2,
            &[&format!("cannot load PKCS#11 module {path}: it is {found}")],
        );
        let uri = format!("pkcs11:token=t;object=k?module-path={path}");
        let run = agent(
            &env,
            "http://127.0.0.1:9",
            &[("--certificate", &uri), ("--private-key", &uri)],
            &[],
            &[],
        );
        run.assert_failure(
            2,
            &[&format!("cannot load PKCS#11 module {path}: it is {found}")],
        );
    }
}

#[test]
fn issue_14_ca_bundle_must_be_a_regular_file() {
    let env = hostile_env();
    // Nothing listens there: the bundle is read (and refused) before any connection.
    let url = "https://127.0.0.1:9";
    for variable in ["AWS_CA_BUNDLE", "SSL_CERT_FILE"] {
        for (path, found) in non_regular(&env) {
            let run = agent(&env, url, &[], &[], &[(variable, &path)]);
            run.assert_failure(
                2,
                &[&format!(
                    "cannot load CA bundle {path} (from {variable}): it is {found}"
                )],
            );
        }
    }
}

/// A sparse file of `len` bytes: its size is what is refused, nothing has to be written.
fn sparse(env: &Env, name: &str, len: u64) -> String {
    std::fs::File::create(env.path(name))
        .unwrap()
        .set_len(len)
        .unwrap();
    env.p(name)
}

#[test]
fn issue_14_oversized_files_are_refused_by_size_naming_the_cap() {
    let env = hostile_env();
    let emu = env.emulator();
    let cert = sparse(&env, "huge.pem", 3 << 20);
    agent(&env, &emu.url(), &[("--certificate", &cert)], &[], &[]).assert_failure(
        2,
        &[&format!(
            "cannot read certificate file {cert}: it is 3145728 bytes, more than the 2097152 \
             bytes (2 MiB) accepted for a certificate file"
        )],
    );
    let key = sparse(&env, "huge.key", 2 << 20);
    agent(&env, &emu.url(), &[("--private-key", &key)], &[], &[]).assert_failure(
        2,
        &[&format!(
            "cannot read private key file {key}: it is 2097152 bytes, more than the 1048576 \
             bytes (1 MiB) accepted for a private key file"
        )],
    );
    let bundle = sparse(&env, "huge-ca.pem", 9 << 20);
    agent(
        &env,
        "https://127.0.0.1:9",
        &[],
        &[],
        &[("AWS_CA_BUNDLE", &bundle)],
    )
    .assert_failure(
        2,
        &[&format!(
            "cannot load CA bundle {bundle} (from AWS_CA_BUNDLE): it is 9437184 bytes, more than \
             the 8388608 bytes (8 MiB) accepted for a CA bundle"
        )],
    );
    assert!(emu.decisions().is_empty());
}

/// `copies` copies of the PEM file `name`, written to `out`.
fn repeat_pem(env: &Env, name: &str, copies: usize, out: &str) -> String {
    let pem = std::fs::read_to_string(env.path(name)).unwrap();
    std::fs::write(env.path(out), pem.repeat(copies)).unwrap();
    env.p(out)
}

#[test]
fn issue_14_forty_thousand_intermediates_are_refused_quickly() {
    let env = hostile_env();
    let emu = env.emulator();
    // 40,000 certificates (about 24 MB): refused by size before anything is parsed.
    let many = repeat_pem(&env, "ca.pem", 40_000, "many.pem");
    let run = agent(&env, &emu.url(), &[("--intermediates", &many)], &[], &[]);
    run.assert_failure(2, &["accepted for a certificate file"]);
    assert!(emu.decisions().is_empty());
}

#[test]
fn issue_14_more_than_a_hundred_certificates_are_refused_by_count() {
    let env = hostile_env();
    let emu = env.emulator();
    let bundle = repeat_pem(&env, "ca.pem", 101, "bundle.pem");
    agent(&env, &emu.url(), &[("--intermediates", &bundle)], &[], &[])
        .assert_failure(2, &[&format!("{bundle} holds more than 100 certificates")]);
    // The same for a full-chain --certificate file: the leaf and 100 more.
    let leaf = std::fs::read_to_string(env.path("leaf.pem")).unwrap();
    let ca = std::fs::read_to_string(env.path("ca.pem")).unwrap();
    std::fs::write(env.path("full.pem"), leaf + &ca.repeat(100)).unwrap();
    let full = env.p("full.pem");
    agent(&env, &emu.url(), &[("--certificate", &full)], &[], &[])
        .assert_failure(2, &[&format!("{full} holds more than 100 certificates")]);
    // A hundred is fine (the root is the trust anchor's and not sent).
    let hundred = repeat_pem(&env, "ca.pem", 100, "hundred.pem");
    agent(&env, &emu.url(), &[("--intermediates", &hundred)], &[], &[]).credentials();
}

#[test]
fn issue_14_a_ca_bundle_of_more_than_a_thousand_certificates_is_refused() {
    let env = hostile_env();
    let bundle = repeat_pem(&env, "ca.pem", 1001, "roots.pem");
    agent(
        &env,
        "https://127.0.0.1:9",
        &[],
        &[],
        &[("AWS_CA_BUNDLE", &bundle)],
    )
    .assert_failure(
        2,
        &[&format!(
            "cannot load CA bundle {bundle} (from AWS_CA_BUNDLE): the file holds more than 1000 \
             certificates"
        )],
    );
}

#[test]
fn issue_14_a_key_after_many_certificate_blocks_loads_in_linear_time() {
    let env = hostile_env();
    let key = std::fs::read_to_string(env.path("leaf.key")).unwrap();
    // Just under the 1 MiB cap: about 17,000 blocks before the key.
    let block = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    let blocks = ((1 << 20) - key.len() - 64) / block.len();
    std::fs::write(env.path("many.key"), block.repeat(blocks) + &key).unwrap();
    let run = run_within(
        env.cmd(
            &[
                "sign-string",
                "--private-key",
                &env.p("many.key"),
                "--certificate",
                &env.p("leaf.pem"),
            ],
            &[],
        ),
        LIMIT,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty());
    // 40,000 blocks (2.4 MB) is over the key file cap: refused before scanning.
    std::fs::write(env.path("more.key"), block.repeat(40_000) + &key).unwrap();
    let run = run_within(
        env.cmd(
            &[
                "sign-string",
                "--private-key",
                &env.p("more.key"),
                "--certificate",
                &env.p("leaf.pem"),
            ],
            &[],
        ),
        LIMIT,
    );
    run.assert_failure(2, &["accepted for a private key file"]);
}

/// A fixture of `testdata/keys/hostile/` (made by its `make.py` from keys openssl made).
fn hostile_key(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path_str(&root.join("testdata/keys/hostile").join(name))
}

/// `sign-string` with `key` and the fixtures' password file, under the watchdog.
fn sign_with(env: &Env, key: &str) -> Run {
    let password = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/password.txt");
    run_within(
        env.cmd(
            &[
                "sign-string",
                "--private-key",
                key,
                "--pkcs8-password-file",
                &path_str(&password),
            ],
            &[],
        ),
        LIMIT,
    )
}

#[test]
fn issue_14_key_parameters_that_panicked_a_crate_are_usage_errors() {
    let env = Env::new();
    for (name, want) in [
        (
            "pbes2-scrypt-n0.pem",
            "scrypt cost N is 0; it must be a power of two, at least 2",
        ),
        (
            "pbes2-des3-iv-4.pem",
            "the DES-EDE3-CBC IV has 4 bytes, not 8",
        ),
    ] {
        let key = hostile_key(name);
        let run = sign_with(&env, &key);
        run.assert_failure(
            2,
            &[&format!("cannot parse private key file {key}: {want}")],
        );
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
}

#[test]
fn issue_14_pkcs12_with_twelve_costly_bags_is_refused_before_deriving() {
    let env = Env::new();
    let key = hostile_key("p12-12-bags-10m.p12");
    sign_with(&env, &key).assert_failure(
        2,
        &[&format!(
            "private key file {key} needs 120000000 key-derivation iterations in all, above this \
             program's limit of 30000000 per file"
        )],
    );
}
