//! A private SoftHSM2 per test: its own configuration and token directory in a temp dir.
//!
//! Owns: making tokens and keys with the independent tools (`softhsm2-util`, `pkcs11-tool`,
//! `openssl`), the environment the agent needs to see them (`SOFTHSM2_CONF`), and OpenSC's
//! `pkcs11-spy.so` for counting PKCS#11 calls. Never touches the system token directory: every
//! command gets `SOFTHSM2_CONF` explicitly, and the process environment is left alone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The SoftHSM2 module (Debian path).
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every test token.
pub const PIN: &str = "1234";
/// The SO PIN of every test token.
pub const SO_PIN: &str = "5678";

/// OpenSC's logging PKCS#11 module, if installed.
pub fn spy_module() -> Option<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("{multiarch}/pkcs11/pkcs11-spy.so"),
        format!("{multiarch}/pkcs11-spy.so"),
        "/usr/lib64/pkcs11/pkcs11-spy.so".to_string(),
        "/usr/lib/pkcs11/pkcs11-spy.so".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// The p11-kit proxy module, if installed.
pub fn p11_kit_proxy() -> Option<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("{multiarch}/p11-kit-proxy.so"),
        "/usr/lib64/p11-kit-proxy.so".to_string(),
        "/usr/lib/p11-kit-proxy.so".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Number of calls to `function` (e.g. `C_Login`) in a pkcs11-spy log.
pub fn count_calls(log: &Path, function: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Each call starts a line "N: C_Name"; match the whole name so C_Sign does not count C_SignInit.
    text.lines()
        .filter(|l| {
            l.split_once(": ")
                .is_some_and(|(n, f)| n.trim().parse::<u64>().is_ok() && f.trim() == function)
        })
        .count()
}

/// A private SoftHSM2 configuration and token directory, deleted on drop.
pub struct SoftHsm {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl SoftHsm {
    /// A fresh, empty SoftHSM, or `None` (after [`crate::skip`]) when SoftHSM2, pkcs11-tool or
    /// openssl is missing. Panics when they are missing and [`crate::required`].
    pub fn new() -> Option<SoftHsm> {
        let missing: Vec<&str> = [
            (!Path::new(MODULE).is_file()).then_some(MODULE),
            (!crate::have("softhsm2-util")).then_some("softhsm2-util"),
            (!crate::have("pkcs11-tool")).then_some("pkcs11-tool"),
            (!crate::have("openssl")).then_some("openssl"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !missing.is_empty() {
            let _ = crate::skip(&format!("SoftHSM2 tests need {}", missing.join(", ")));
            return None;
        }
        let dir = tempfile::tempdir().expect("cannot create a temp dir");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens).expect("cannot create the token dir");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
                 slots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("cannot write softhsm2.conf");
        Some(SoftHsm {
            dir: dir.path().to_path_buf(),
            _tmp: Some(dir),
        })
    }

    /// The SoftHSM set up in `dir` by someone else (e.g. the parent of a child-process test), with
    /// its own `softhsm2.conf`; left in place on drop.
    pub fn at(dir: PathBuf) -> SoftHsm {
        SoftHsm { dir, _tmp: None }
    }

    /// The temp dir (a place for certificates, PIN files, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The `SOFTHSM2_CONF` to give every process that should see these tokens.
    pub fn conf(&self) -> PathBuf {
        self.dir.join("softhsm2.conf")
    }

    /// `SOFTHSM2_CONF=…` for [`crate::run_agent`].
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SOFTHSM2_CONF".into(), self.conf().display().to_string())]
    }

    /// Runs `program` against these tokens; panics with its output when it fails.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", self.conf())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `softhsm2-util --init-token --free --label LABEL` with [`PIN`] and [`SO_PIN`].
    pub fn init_token(&self, label: &str) {
        self.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
        );
    }

    /// `pkcs11-tool` logged in to token `token`.
    pub fn pkcs11_tool(&self, token: &str, args: &[&str]) -> String {
        let mut all = vec![
            "--module",
            MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            PIN,
        ];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    /// Generates a signing key pair ON the token (`key_type` as pkcs11-tool spells it:
    /// `EC:prime256v1`, `EC:secp384r1`, `rsa:2048`; `extra` e.g. `--always-auth`) and returns
    /// pkcs11-tool's view of its public key as PEM.
    pub fn keygen(
        &self,
        token: &str,
        key_type: &str,
        id: &str,
        label: &str,
        extra: &[&str],
    ) -> String {
        let mut args = vec![
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
            "--usage-sign",
        ];
        args.extend_from_slice(extra);
        self.pkcs11_tool(token, &args);
        self.public_pem(token, id)
    }

    /// The public key object with CKA_ID `id` (hex) as PEM. EC keys are rebuilt from the listing's
    /// `CKA_EC_POINT`/`CKA_EC_PARAMS` (pkcs11-tool 0.23 cannot export P-384 keys); RSA keys are
    /// exported with `--read-object`.
    pub fn public_pem(&self, token: &str, id: &str) -> String {
        let listing = self.pkcs11_tool(token, &["--list-objects", "--type", "pubkey"]);
        let (mut point, mut params, mut found) = (String::new(), String::new(), None);
        for line in listing.lines().map(str::trim) {
            if line.contains("Object;") {
                point.clear();
                params.clear();
            } else if let Some(v) = line.strip_prefix("EC_POINT:") {
                point = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("EC_PARAMS:") {
                params = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("ID:")
                && v.trim() == id
                && !point.is_empty()
            {
                found = Some((point.clone(), params.clone()));
                break;
            }
        }
        let der = self.dir().join(format!("pub-{token}-{id}.der"));
        let der_s = der.display().to_string();
        match found {
            Some((point, params)) => {
                let prefix = match params.as_str() {
                    "06082a8648ce3d030107" => {
                        "3059301306072a8648ce3d020106082a8648ce3d030107034200"
                    }
                    "06052b81040022" => "3076301006072a8648ce3d020106052b81040022036200",
                    other => panic!("unexpected EC parameters {other}"),
                };
                // CKA_EC_POINT is `04 LEN point`: drop the OCTET STRING header.
                let hex = format!("{prefix}{}", &point[4..]);
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex from pkcs11-tool"))
                    .collect();
                std::fs::write(&der, bytes).expect("cannot write the public key");
            }
            None => {
                self.pkcs11_tool(
                    token,
                    &[
                        "--read-object",
                        "--type",
                        "pubkey",
                        "--id",
                        id,
                        "-o",
                        &der_s,
                    ],
                );
            }
        }
        self.run(
            "openssl",
            &["pkey", "-pubin", "-inform", "DER", "-in", &der_s],
        )
    }

    /// Writes a PEM certificate to the token as a certificate object with this id and label.
    pub fn write_cert(&self, token: &str, cert_pem: &str, id: &str, label: &str) {
        let pem = self.dir().join(format!("cert-{token}-{id}.pem"));
        let der = self.dir().join(format!("cert-{token}-{id}.der"));
        std::fs::write(&pem, cert_pem).expect("cannot write the certificate");
        self.run(
            "openssl",
            &[
                "x509",
                "-in",
                &pem.display().to_string(),
                "-outform",
                "DER",
                "-out",
                &der.display().to_string(),
            ],
        );
        self.write_cert_der(token, &der, id, label);
    }

    /// Writes the DER certificate in file `der` to the token as a certificate object with this id
    /// and label.
    pub fn write_cert_der(&self, token: &str, der: &Path, id: &str, label: &str) {
        self.pkcs11_tool(
            token,
            &[
                "--write-object",
                &der.display().to_string(),
                "--type",
                "cert",
                "--id",
                id,
                "--label",
                label,
            ],
        );
    }

    /// Writes `contents` to a file in the temp dir and returns its path as a string.
    pub fn file(&self, name: &str, contents: &[u8]) -> String {
        let p = self.dir().join(name);
        std::fs::write(&p, contents).expect("cannot write a test file");
        p.display().to_string()
    }

    /// Environment for running through pkcs11-spy: it loads SoftHSM and logs every call to `log`.
    pub fn spy_env(&self, log: &Path) -> Vec<(String, String)> {
        let mut env = self.env();
        env.push(("PKCS11SPY".into(), MODULE.into()));
        env.push(("PKCS11SPY_OUTPUT".into(), log.display().to_string()));
        env
    }
}
