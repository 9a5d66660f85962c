//! Hostile arguments and hostile token contents against the agent binary (issue 14, items 3 and 12),
//! with a real SoftHSM2 token so that `pkcs11:` arguments reach the token paths (module, token
//! lookup, login, object search) and not only the URI parser.
//!
//! - Every command (credential-process, sign-string, read-certificate-data, enroll keygen, csr and
//!   install-cert) gets a matrix of arguments that carry a PIN in a `pin-value` spelled or placed
//!   wrongly, in each of `--certificate`, `--private-key`, `--intermediates` and `--pkcs11-lib` (and
//!   as a stray positional argument), with `--debug` where the command has it. The PIN is split in
//!   two distinctive halves; neither half may appear on stdout or stderr, and nothing may panic.
//! - A token label, an object label and a certificate subject with escape sequences and a newline
//!   followed by a forged `rolesanywhere-agent: hint:` line: stderr must carry no raw control byte and
//!   no forged line.

use hsm_tests::emu::Emu;
use hsm_tests::softhsm::{MODULE, PIN as SETUP_PIN, SoftHsm};
use hsm_tests::{Run, run_agent};

/// The token PIN, in two halves that appear in nothing the agent prints (no ARN, path or label).
const PIN_A: &str = "Zq7Kx";
const PIN_B: &str = "Wm9Pv";

fn pin() -> String {
    format!("{PIN_A}{PIN_B}")
}

/// Arguments that carry the PIN after a `pin-value` the URI grammar does not accept as it stands,
/// or that are not URIs at all (RFC 3986 allows any case in the scheme).
fn hostile_values() -> Vec<String> {
    let (a, b) = (PIN_A, PIN_B);
    [
        format!("pkcs11:token=ra;object=none?pin-value={a}{b}"),
        format!("PKCS11:token=ra;object=none?pin-value={a}{b}"),
        format!("Pkcs11:token=ra?pin-value={a}{b}"),
        format!(" pkcs11:token=ra?pin-value={a}{b}"),
        format!("\tpkcs11:token=ra?pin-value={a}{b}"),
        format!("pkcs11:token=ra&pin-value={a}{b}"),
        format!("pkcs11:token=ra;pin-value={a}{b}"),
        format!("pkcs11:token=ra?pin%2Dvalue={a}{b}"),
        format!("pkcs11:token=ra?pin%2dvalue={a}{b}"),
        format!("pkcs11:token=ra?PIN-VALUE={a}{b}"),
        format!("pkcs11:token=ra?p%69n-value={a}{b}"),
        format!("pkcs11:token=ra??pin-value={a}{b}"),
        format!("pkcs11:token=ra?x-pin-value={a}{b}"),
        format!("pkcs11:token=ra?pin-value={a}&{b}"),
        format!("pkcs11:token=ra?pin-value={a};{b}"),
        format!("pkcs11:token=ra?pin-value={a}#{b}"),
        format!("pkcs11:token=ra?pin-value={a}%zz{b}"),
        format!("pkcs11:token=ra?pin-value={a}%26{b}"),
        format!("pkcs11:token=ra?pin-value={a}\x1b{b}"),
        format!("pkcs11:token=ra?pin-value={a}{b}&pin-value={a}"),
        format!("pkcs11:token=ra?pin-value={a}{b}&pin-source=file:/nonexistent"),
        format!("pkcs11:token=nosuch?pin-value={a}{b}"),
        format!("pkcs11:token=ra;type=bogus?pin-value={a}{b}"),
        format!("pkcs11:token=ra;object=k?pin-value={a}{b}&module-path="),
        format!("/nonexistent/pin-value={a}{b}.pem"),
        format!("handle:pin-value={a}{b}"),
    ]
    .into()
}

/// A token `ra` (PIN [`pin`]) with an EC key and its certificate (`object=k`, id 01), plus the same
/// certificate and a key file's pair as files, and an emulator.
struct Setup {
    hsm: SoftHsm,
    emu: Emu,
    cert: String,
    key: String,
    file_cert: String,
}

fn setup() -> Option<Setup> {
    let hsm = SoftHsm::new()?;
    hsm.init_token("ra");
    let emu = Emu::start();
    let public = hsm.keygen("ra", "EC:prime256v1", "01", "k", &[]);
    let cert_pem = emu.issue_for_public_key(&public, "token key");
    hsm.write_cert("ra", &cert_pem, "01", "k");
    let cert = hsm.file("token.pem", cert_pem.as_bytes());
    // A key file and its certificate, so the other flags of a command are valid and each hostile
    // value meets its own error path.
    let key = hsm.dir().join("file.key").display().to_string();
    hsm.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    );
    let key_public = hsm.run("openssl", &["pkey", "-in", &key, "-pubout"]);
    let file_cert = hsm.file(
        "file.pem",
        emu.issue_for_public_key(&key_public, "file key").as_bytes(),
    );
    // The distinctive PIN from now on (the fixture's tools log in with the setup PIN).
    hsm.pkcs11_tool("ra", &["--change-pin", "--new-pin", &pin()]);
    Some(Setup {
        hsm,
        emu,
        cert,
        key,
        file_cert,
    })
}

/// A command line: the command, its valid flags (flag, value) and whether it has `--debug`.
struct Cmd {
    words: Vec<String>,
    flags: Vec<(&'static str, String)>,
    debug: bool,
}

fn commands(s: &Setup) -> Vec<Cmd> {
    let lib = || ("--pkcs11-lib", MODULE.to_string());
    let out = s.hsm.dir().join("out.csr").display().to_string();
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut cp = words(&["credential-process"]);
    cp.extend(s.emu.args());
    vec![
        Cmd {
            words: cp,
            flags: vec![
                ("--certificate", s.file_cert.clone()),
                ("--private-key", s.key.clone()),
                ("--intermediates", s.cert.clone()),
                lib(),
            ],
            debug: true,
        },
        Cmd {
            words: words(&["sign-string"]),
            flags: vec![
                ("--certificate", s.file_cert.clone()),
                ("--private-key", s.key.clone()),
                ("--intermediates", s.cert.clone()),
                lib(),
            ],
            debug: true,
        },
        Cmd {
            words: words(&["read-certificate-data"]),
            flags: vec![
                ("--certificate", s.cert.clone()),
                ("--private-key", s.key.clone()),
                ("--intermediates", s.cert.clone()),
                lib(),
            ],
            debug: true,
        },
        Cmd {
            words: words(&["enroll", "keygen"]),
            flags: vec![
                ("--private-key", "pkcs11:token=ra;object=new".into()),
                lib(),
            ],
            debug: false,
        },
        Cmd {
            words: words(&["enroll", "csr", "--subject", "CN=x", "--out", &out]),
            flags: vec![("--private-key", s.key.clone()), lib()],
            debug: false,
        },
        Cmd {
            words: words(&["enroll", "install-cert"]),
            flags: vec![
                ("--private-key", s.key.clone()),
                ("--certificate", s.file_cert.clone()),
                ("--intermediates", s.cert.clone()),
                lib(),
            ],
            debug: false,
        },
    ]
}

fn assert_no_pin(r: &Run, what: &str) {
    assert_ne!(r.code, 101, "{what}: panicked:\n{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{what}:\n{}", r.stderr);
    for half in [PIN_A, PIN_B] {
        assert!(
            !r.stdout.contains(half) && !r.stderr.contains(half),
            "{what}: PIN half {half} shown:\nstdout: {}\nstderr: {}",
            r.stdout,
            r.stderr
        );
    }
}

/// Issue 14 (3): no argument's `pin-value` is echoed by any command, on any error path or in
/// `--debug`, whichever flag carries it and however it is spelled or placed.
#[test]
fn issue_14_pin_value_is_never_echoed_by_any_command_or_flag() {
    let Some(s) = setup() else { return };
    let env = s.hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut runs = 0;
    for cmd in commands(&s) {
        // The flag under test, or `None` for a stray positional argument.
        let targets = cmd
            .flags
            .iter()
            .map(|(f, _)| Some(*f))
            .chain([None])
            .collect::<Vec<_>>();
        for target in targets {
            for (i, value) in hostile_values().iter().enumerate() {
                let mut args: Vec<String> = cmd.words.clone();
                for (flag, v) in &cmd.flags {
                    if Some(*flag) != target {
                        args.extend([flag.to_string(), v.clone()]);
                    }
                }
                if cmd.debug {
                    args.push("--debug".into());
                }
                // Both spellings of a flag's value: separate and `--flag=value`.
                match target {
                    Some(flag) if i % 2 == 0 => args.extend([flag.to_string(), value.clone()]),
                    Some(flag) => args.push(format!("{flag}={value}")),
                    None => args.push(value.clone()),
                }
                let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                let r = run_agent(&argv, &env);
                assert_no_pin(&r, &format!("{argv:?}"));
                runs += 1;
            }
        }
    }
    assert!(runs > 400, "{runs} runs");
}

/// Lines that a label or subject made to look like ours.
fn forged_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("rolesanywhere-agent: hint: forged") || l.starts_with("FORGED"))
        .collect()
}

fn assert_clean_terminal_text(r: &Run, what: &str) {
    assert_ne!(r.code, 101, "{what}: panicked:\n{}", r.stderr);
    let raw: Vec<char> = r
        .stderr
        .chars()
        .filter(|&c| c != '\n' && hostile_char(c))
        .collect();
    assert!(
        raw.is_empty(),
        "{what}: raw control characters {raw:?} in stderr:\n{}",
        r.stderr.escape_debug()
    );
    assert!(
        forged_lines(&r.stderr).is_empty(),
        "{what}: forged lines:\n{}",
        r.stderr
    );
}

/// Control characters (C0, DEL, C1) and bidi formatting characters.
fn hostile_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Issue 14 (12): a token label, object labels and a certificate subject with escape sequences,
/// bidi overrides and a newline that would start a forged line reach stderr escaped, in errors
/// and in `--debug`.
#[test]
fn issue_14_token_label_object_label_and_subject_are_escaped_on_stderr() {
    let Some(hsm) = SoftHsm::new() else { return };
    // 32 bytes, the longest label PKCS#11 has.
    let token = "\x1b[31m\nFORGED\u{202e}x\x07\u{9b}1m\n";
    hsm.init_token(token);
    let emu = Emu::start();
    let public = hsm.keygen(token, "EC:prime256v1", "01", "k\x1b[2J\nFORGED", &[]);
    let cert = emu.issue_for_public_key(
        &public,
        "x\x1b[31m\nrolesanywhere-agent: hint: forged \u{202e}",
    );
    // Two certificates with the same id: read-certificate-data lists both, credential-process finds
    // them ambiguous.
    hsm.write_cert(token, &cert, "01", "c\x1b]0;t\x07\nFORGED");
    hsm.write_cert(token, &cert, "02", "d\u{9b}31m\nFORGED");
    let env = hsm.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let with_pin = format!("?pin-value={SETUP_PIN}");
    let cert_file = hsm.file("c.pem", cert.as_bytes());
    let mut cases: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    // Listing: every certificate with its URI and subject in --debug.
    cases.push(s(&[
        "read-certificate-data",
        "--debug",
        "--pkcs11-lib",
        MODULE,
        "--certificate",
        "pkcs11:type=cert",
    ]));
    // Ambiguous certificate: both URIs (labels) in the error.
    let mut cp = s(&[
        "credential-process",
        "--debug",
        "--pkcs11-lib",
        MODULE,
        "--certificate",
        &format!("pkcs11:type=cert{with_pin}"),
    ]);
    cp.extend(emu.args());
    cases.push(cp);
    // A wrong PIN: the login error names the token.
    cases.push(s(&[
        "sign-string",
        "--debug",
        "--pkcs11-lib",
        MODULE,
        "--private-key",
        "pkcs11:object=k?pin-value=0000",
    ]));
    // No such key on the token: the hint names the token.
    cases.push(s(&[
        "enroll",
        "csr",
        "--pkcs11-lib",
        MODULE,
        "--private-key",
        &format!("pkcs11:object=none{with_pin}"),
        "--subject",
        "CN=x",
        "--out",
        "-",
    ]));
    // The certificate file against a key it does not belong to: the subject in the mismatch error.
    let other = hsm.dir().join("other.key").display().to_string();
    hsm.run(
        "openssl",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &other,
        ],
    );
    cases.push(s(&[
        "sign-string",
        "--private-key",
        &other,
        "--certificate",
        &cert_file,
        "--debug",
    ]));
    // The token key's certificate from a file: the subject in --debug.
    let mut cp = s(&[
        "credential-process",
        "--debug",
        "--pkcs11-lib",
        MODULE,
        "--certificate",
        &cert_file,
        "--private-key",
        &format!("pkcs11:object=k{with_pin}"),
    ]);
    cp.extend(emu.args());
    cases.push(cp);
    // install-cert stores the certificate and prints what it did with the labels.
    cases.push(s(&[
        "enroll",
        "install-cert",
        "--pkcs11-lib",
        MODULE,
        "--private-key",
        &format!("pkcs11:object=k{with_pin}"),
        "--certificate",
        &cert_file,
        "--replace",
    ]));
    for case in cases {
        let argv: Vec<&str> = case.iter().map(String::as_str).collect();
        let r = run_agent(&argv, &env);
        assert_clean_terminal_text(&r, &format!("{argv:?}"));
    }
}
