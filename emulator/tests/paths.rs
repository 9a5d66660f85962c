//! RFC 5280 path validation (issue 14, item 5): chains built with openssl from extension files,
//! each checked with `openssl verify` as the independent judge, then sent to the emulator. A chain
//! openssl refuses must be refused with 403 AccessDeniedException naming the reason; the good
//! chains must still get 201.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rolesanywhere_emulator::ca::{Ca, KeyType};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;

/// A root CA from the emulator's own CA code, served as the trust anchor, and openssl for
/// everything below it.
struct Pki {
    tmp: tempfile::TempDir,
    server: Running,
    serial: std::cell::Cell<u64>,
}

/// A certificate and its key, as files.
#[derive(Clone)]
struct Issued {
    cert: PathBuf,
    key: PathBuf,
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed")
}

fn must(args: &[&str]) {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let tmp = tempfile::tempdir().expect("tempdir");
        Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Path Root").expect("root CA");
        let config =
            Config::from_toml_str(&config_toml(tmp.path(), "", ""), tmp.path()).expect("config");
        let server = server::spawn(
            config,
            ServeOptions {
                listen: "127.0.0.1:0".parse().expect("addr"),
                tls: Tls::None,
            },
        )
        .expect("spawn");
        Pki {
            tmp,
            server,
            serial: std::cell::Cell::new(1000),
        }
    }

    fn root(&self) -> Issued {
        Issued {
            cert: self.tmp.path().join("root/ca.pem"),
            key: self.tmp.path().join("root/ca.key"),
        }
    }

    /// A new P-256 key and a certificate for `subject` signed by `issuer` with the extensions
    /// `ext` (openssl extension-file lines; more sections may follow after a `[section]` line).
    fn issue(&self, name: &str, subject: &str, issuer: &Issued, ext: &str) -> Issued {
        let dir = self.tmp.path();
        let key = dir.join(format!("{name}.key"));
        let csr = dir.join(format!("{name}.csr"));
        let cert = dir.join(format!("{name}.pem"));
        let extfile = dir.join(format!("{name}.ext"));
        std::fs::write(&extfile, format!("[ext]\n{ext}\n")).expect("extfile");
        must(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            s(&key),
        ]);
        must(&[
            "req",
            "-new",
            "-key",
            s(&key),
            "-subj",
            subject,
            "-out",
            s(&csr),
        ]);
        self.serial.set(self.serial.get() + 1);
        let serial = self.serial.get().to_string();
        must(&[
            "x509",
            "-req",
            "-sha256",
            "-in",
            s(&csr),
            "-CA",
            s(&issuer.cert),
            "-CAkey",
            s(&issuer.key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            s(&extfile),
            "-extensions",
            "ext",
            "-out",
            s(&cert),
        ]);
        Issued { cert, key }
    }

    /// What `openssl verify` says of `leaf` with `intermediates` (issuer order) under the root.
    fn openssl_verify(&self, leaf: &Issued, intermediates: &[&Issued]) -> (bool, String) {
        let untrusted = self.tmp.path().join("untrusted.pem");
        let chain: String = intermediates
            .iter()
            .map(|i| std::fs::read_to_string(&i.cert).expect("cert"))
            .collect();
        std::fs::write(&untrusted, chain).expect("untrusted");
        let root = self.root();
        let mut args = vec!["verify", "-CAfile", s(&root.cert)];
        if !intermediates.is_empty() {
            args.extend(["-untrusted", s(&untrusted)]);
        }
        args.push(s(&leaf.cert));
        let out = openssl(&args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Sends a signed CreateSession for `leaf` with `intermediates` (issuer order).
    fn call(&self, leaf: &Issued, intermediates: &[&Issued]) -> Response {
        let pem = std::fs::read_to_string(&leaf.cert).expect("leaf");
        let serial = openssl(&["x509", "-in", s(&leaf.cert), "-noout", "-serial"]);
        let hex = String::from_utf8_lossy(&serial.stdout)
            .trim()
            .trim_start_matches("serial=")
            .to_string();
        let id = Identity {
            cert_pem: pem,
            chain_pem: (!intermediates.is_empty()).then(|| {
                intermediates
                    .iter()
                    .map(|i| std::fs::read_to_string(&i.cert).expect("cert"))
                    .collect()
            }),
            key_pem: std::fs::read_to_string(&leaf.key).expect("key"),
            serial_decimal: u128::from_str_radix(&hex, 16).expect("serial").to_string(),
        };
        let host = self
            .server
            .url()
            .rsplit('/')
            .next()
            .expect("host")
            .to_string();
        let signed = sign(&id, &Call::new(&host, "{}"));
        send(&self.server.url(), None, &signed, Duration::from_secs(10)).expect("send")
    }

    /// Both judges accept.
    fn assert_accepted(&self, what: &str, leaf: &Issued, intermediates: &[&Issued]) {
        let (ok, text) = self.openssl_verify(leaf, intermediates);
        assert!(ok, "{what}: openssl refuses the good chain: {text}");
        let r = self.call(leaf, intermediates);
        assert_eq!(r.status, 201, "{what}: {}", r.body);
    }

    /// Both judges refuse; the emulator with 403 AccessDeniedException and `needle` in its message.
    fn assert_refused(&self, what: &str, leaf: &Issued, intermediates: &[&Issued], needle: &str) {
        let (ok, text) = self.openssl_verify(leaf, intermediates);
        assert!(!ok, "{what}: openssl accepts the bad chain: {text}");
        let r = self.call(leaf, intermediates);
        assert_eq!(r.status, 403, "{what}: {}", r.body);
        assert_eq!(
            r.header("x-amzn-errortype"),
            Some("AccessDeniedException"),
            "{what}"
        );
        let msg = r.json()["message"].as_str().expect("message").to_string();
        assert!(
            msg.starts_with("Untrusted signing certificate") && msg.contains(needle),
            "{what}: message {msg:?} lacks {needle:?}"
        );
    }
}

const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid";
const LEAF: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid";

#[test]
fn ca_below_a_path_length_of_zero_is_refused_issue_14_item_5() {
    let pki = Pki::new();
    let i1 = pki.issue(
        "i1",
        "/CN=I1 pathlen 0",
        &pki.root(),
        &CA.replace("CA:TRUE", "CA:TRUE,pathlen:0"),
    );
    let leaf = pki.issue("leaf", "/CN=direct", &i1, LEAF);
    pki.assert_accepted("a leaf right below pathlen:0", &leaf, &[&i1]);
    let i2 = pki.issue("i2", "/CN=I2 below pathlen 0", &i1, CA);
    let leaf = pki.issue("leaf2", "/CN=too deep", &i2, LEAF);
    pki.assert_refused(
        "a CA below pathlen:0",
        &leaf,
        &[&i2, &i1],
        "path length constraint",
    );
}

#[test]
fn path_length_of_the_anchor_counts_too_issue_14_item_5() {
    // pathlen:1 on I1 allows one CA below it, not two.
    let pki = Pki::new();
    let i1 = pki.issue(
        "i1",
        "/CN=I1 pathlen 1",
        &pki.root(),
        &CA.replace("CA:TRUE", "CA:TRUE,pathlen:1"),
    );
    let i2 = pki.issue("i2", "/CN=I2", &i1, CA);
    let leaf = pki.issue("leaf", "/CN=ok", &i2, LEAF);
    pki.assert_accepted("one CA below pathlen:1", &leaf, &[&i2, &i1]);
    let i3 = pki.issue("i3", "/CN=I3", &i2, CA);
    let leaf = pki.issue("leaf3", "/CN=too deep", &i3, LEAF);
    pki.assert_refused(
        "two CAs below pathlen:1",
        &leaf,
        &[&i3, &i2, &i1],
        "path length constraint",
    );
}

#[test]
fn issuer_without_key_cert_sign_or_ca_is_refused_issue_14_item_5() {
    let pki = Pki::new();
    let no_sign = pki.issue(
        "i1",
        "/CN=I1 no keyCertSign",
        &pki.root(),
        &CA.replace("keyCertSign,cRLSign", "digitalSignature,cRLSign"),
    );
    let leaf = pki.issue("leaf", "/CN=leaf", &no_sign, LEAF);
    pki.assert_refused(
        "an intermediate without keyCertSign",
        &leaf,
        &[&no_sign],
        "keyCertSign",
    );
    let not_ca = pki.issue(
        "i2",
        "/CN=I2 not a CA",
        &pki.root(),
        &CA.replace("CA:TRUE", "CA:FALSE"),
    );
    let leaf = pki.issue("leaf2", "/CN=leaf", &not_ca, LEAF);
    pki.assert_refused(
        "an intermediate with CA:FALSE",
        &leaf,
        &[&not_ca],
        "is not a CA",
    );
}

#[test]
fn name_constraints_of_every_form_are_enforced_issue_14_item_5() {
    let pki = Pki::new();
    let nc = |name: &str, constraint: &str, more: &str| {
        pki.issue(
            name,
            &format!("/O=Good/CN={name}"),
            &pki.root(),
            &format!("{CA}\nnameConstraints=critical,{constraint}\n{more}"),
        )
    };
    let leaf_with = |name: &str, ca: &Issued, subject: &str, san: &str| {
        let san = if san.is_empty() {
            String::new()
        } else {
            format!("\nsubjectAltName={san}")
        };
        pki.issue(name, subject, ca, &format!("{LEAF}{san}"))
    };

    let dns = nc("dns", "permitted;DNS:good.example", "");
    let ok = leaf_with("dns-ok", &dns, "/CN=ok", "DNS:host.good.example");
    pki.assert_accepted("DNS name inside the permitted subtree", &ok, &[&dns]);
    let bad = leaf_with("dns-bad", &dns, "/CN=bad", "DNS:evil.example");
    pki.assert_refused(
        "DNS name outside the permitted subtree",
        &bad,
        &[&dns],
        "DNS name \"evil.example\" is outside the permitted subtrees",
    );

    let email = nc("email", "excluded;email:.bad.example", "");
    let ok = leaf_with("email-ok", &email, "/CN=ok", "email:me@good.example");
    pki.assert_accepted("email outside the excluded subtree", &ok, &[&email]);
    let bad = leaf_with("email-bad", &email, "/CN=bad", "email:me@mail.bad.example");
    pki.assert_refused(
        "email inside the excluded subtree",
        &bad,
        &[&email],
        "excluded subtree",
    );

    let ip = nc("ip", "permitted;IP:10.0.0.0/255.0.0.0", "");
    let ok = leaf_with("ip-ok", &ip, "/CN=ok", "IP:10.1.2.3");
    pki.assert_accepted("IP address inside the permitted range", &ok, &[&ip]);
    let bad = leaf_with("ip-bad", &ip, "/CN=bad", "IP:192.168.1.1");
    pki.assert_refused(
        "IP address outside the permitted range",
        &bad,
        &[&ip],
        "IP address 192.168.1.1",
    );

    let dir = nc("dir", "permitted;dirName:dir_sect", "[dir_sect]\nO=Good");
    let ok = leaf_with("dir-ok", &dir, "/O=Good/CN=ok", "");
    pki.assert_accepted("subject inside the permitted directory", &ok, &[&dir]);
    let bad = leaf_with("dir-bad", &dir, "/O=Evil/CN=bad", "");
    pki.assert_refused(
        "subject outside the permitted directory",
        &bad,
        &[&dir],
        "directory name",
    );
}

#[test]
fn unknown_critical_extension_anywhere_in_the_path_is_refused_issue_14_item_5() {
    let pki = Pki::new();
    let unknown = "1.3.6.1.4.1.55555.1=critical,ASN1:UTF8String:must be understood";
    let good = pki.issue("i-good", "/CN=I plain", &pki.root(), CA);
    let leaf = pki.issue("leaf-plain", "/CN=plain", &good, LEAF);
    pki.assert_accepted("no unknown extension", &leaf, &[&good]);
    let leaf = pki.issue(
        "leaf-crit",
        "/CN=critical",
        &good,
        &format!("{LEAF}\n{unknown}"),
    );
    pki.assert_refused(
        "leaf with an unknown critical extension",
        &leaf,
        &[&good],
        "critical extension 1.3.6.1.4.1.55555.1",
    );
    let bad_ca = pki.issue(
        "i-crit",
        "/CN=I critical",
        &pki.root(),
        &format!("{CA}\n{unknown}"),
    );
    let leaf = pki.issue("leaf-under", "/CN=under", &bad_ca, LEAF);
    pki.assert_refused(
        "intermediate with an unknown critical extension",
        &leaf,
        &[&bad_ca],
        "critical extension 1.3.6.1.4.1.55555.1",
    );
    // The same extension marked non-critical may be ignored, as RFC 5280 allows.
    let leaf = pki.issue(
        "leaf-noncrit",
        "/CN=noncritical",
        &good,
        &format!("{LEAF}\n{}", unknown.replace("critical,", "")),
    );
    pki.assert_accepted("a non-critical unknown extension", &leaf, &[&good]);
}
