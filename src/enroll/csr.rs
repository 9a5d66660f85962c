//! PKCS#10 certificate requests (RFC 2986) signed by the device key, and public keys as PEM.
//!
//! The encoder is ours and small: it writes exactly one shape of request. Only a SHA-256 [`Digest`] of
//! the `CertificationRequestInfo` reaches the device, through the [`Signer`] trait. Before a request
//! leaves this module it is parsed back and its signature verified with the key it carries, so a device
//! that signs with another key is caught here and not at the CA.
//!
//! ```text
//! CertificationRequest ::= SEQUENCE {
//!   certificationRequestInfo  SEQUENCE {
//!     version       INTEGER 0,
//!     subject       Name,
//!     subjectPKInfo SubjectPublicKeyInfo,
//!     attributes    [0] IMPLICIT SET OF Attribute }   -- one: extensionRequest (1.2.840.113549.1.9.14)
//!   signatureAlgorithm  AlgorithmIdentifier,          -- ecdsa-with-SHA256 | sha256WithRSAEncryption
//!   signature           BIT STRING }
//! extensionRequest value: Extensions ::= SEQUENCE OF Extension
//!   subjectAltName (2.5.29.17)            GeneralNames, when --san is given
//!   keyUsage (2.5.29.15), critical        digitalSignature
//! ```

use super::names::{San, Subject, parse_san, parse_subject};
use super::{Error, args::CsrArgs, files, target};
use crate::keys::CurveOid as _;
use crate::keys::{KeyKind, OID_EC, OID_RSA, PublicKey, der_tlv, der_uint};
use crate::signer::Signer;
use crate::sigv4x509::Digest;
use base64::Engine as _;
use der::asn1::ObjectIdentifier;

const OID_EXTENSION_REQUEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

const DER_NULL: [u8; 2] = [0x05, 0x00];

fn oid(o: &ObjectIdentifier) -> Vec<u8> {
    der_tlv(0x06, o.as_bytes())
}

/// BIT STRING with no unused bits.
fn bit_string(bytes: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(bytes.len() + 1);
    content.push(0);
    content.extend_from_slice(bytes);
    der_tlv(0x03, &content)
}

/// DER `SubjectPublicKeyInfo` of `key` (RSA with NULL parameters, EC with the named curve).
pub fn spki_der(key: &PublicKey) -> Vec<u8> {
    let (alg, bits) = match key {
        PublicKey::Rsa { modulus, exponent } => {
            let mut alg = oid(&OID_RSA);
            alg.extend_from_slice(&DER_NULL);
            let mut rsa = der_uint(modulus);
            rsa.extend(der_uint(exponent));
            (alg, der_tlv(0x30, &rsa))
        }
        PublicKey::Ec { curve, point } => {
            let mut alg = oid(&OID_EC);
            alg.extend(oid(&curve.oid()));
            (alg, point.clone())
        }
    };
    let mut body = der_tlv(0x30, &alg);
    body.extend(bit_string(&bits));
    der_tlv(0x30, &body)
}

/// PEM with the given label, 64-column base64 lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// `PUBLIC KEY` PEM of `key` (what `keygen` prints).
pub fn public_key_pem(key: &PublicKey) -> String {
    pem("PUBLIC KEY", &spki_der(key))
}

/// The extensions the request asks for: subjectAltName (if any) and a critical keyUsage.
fn extensions(sans: &[San]) -> Vec<u8> {
    let mut exts = Vec::new();
    if !sans.is_empty() {
        let names: Vec<u8> = sans.iter().flat_map(San::der).collect();
        let mut ext = oid(&OID_SUBJECT_ALT_NAME);
        ext.extend(der_tlv(0x04, &der_tlv(0x30, &names)));
        exts.extend(der_tlv(0x30, &ext));
    }
    // KeyUsage BIT STRING: digitalSignature is bit 0; 7 unused bits in the one content byte.
    let mut ext = oid(&OID_KEY_USAGE);
    ext.extend([0x01, 0x01, 0xff]);
    ext.extend(der_tlv(0x04, &[0x03, 0x02, 0x07, 0x80]));
    exts.extend(der_tlv(0x30, &ext));
    der_tlv(0x30, &exts)
}

/// DER of the `CertificationRequestInfo` (the part that is signed).
pub fn request_info(subject: &Subject, key: &PublicKey, sans: &[San]) -> Vec<u8> {
    let mut attr = oid(&OID_EXTENSION_REQUEST);
    attr.extend(der_tlv(0x31, &extensions(sans)));
    let attributes = der_tlv(0xa0, &der_tlv(0x30, &attr));

    let mut body = der_uint(&[0]);
    body.extend_from_slice(subject.der());
    body.extend(spki_der(key));
    body.extend(attributes);
    der_tlv(0x30, &body)
}

fn signature_algorithm(kind: KeyKind) -> Vec<u8> {
    match kind {
        KeyKind::Ec(_) => der_tlv(0x30, &oid(&OID_ECDSA_SHA256)),
        KeyKind::Rsa { .. } => {
            let mut alg = oid(&OID_RSA_SHA256);
            alg.extend_from_slice(&DER_NULL);
            der_tlv(0x30, &alg)
        }
    }
}

/// Builds the request and has `signer` sign SHA-256 of its `CertificationRequestInfo`; returns DER.
pub fn build(signer: &dyn Signer, subject: &Subject, sans: &[San]) -> Result<Vec<u8>, Error> {
    let info = request_info(subject, signer.public_key(), sans);
    let signature = signer.sign(&Digest::sha256(&info))?;
    let mut body = info;
    body.extend(signature_algorithm(signer.key_kind()));
    body.extend(bit_string(&signature));
    let der = der_tlv(0x30, &body);
    self_check(&der, &signer.describe())?;
    Ok(der)
}

/// Parses `der` back and verifies its signature with the public key inside.
fn self_check(der: &[u8], key: &str) -> Result<(), Error> {
    use x509_parser::prelude::FromDer;
    let fail = |reason: String| Error::CsrSelfCheck {
        key: key.to_string(),
        reason,
    };
    let (rest, req) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| fail(format!("does not parse: {e}")))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes".into()));
    }
    req.verify_signature()
        .map_err(|e| fail(format!("signature: {e}")))
}

/// `enroll csr`: parses the subject and SANs, opens the key and writes the PEM request to `--out`.
pub fn run(args: &CsrArgs, out: &mut dyn std::io::Write) -> Result<(), Error> {
    let subject = parse_subject(&args.subject)?;
    let sans = args
        .san
        .iter()
        .map(|s| parse_san(s))
        .collect::<Result<Vec<_>, _>>()?;
    let signer = target::open_signer(&args.private_key, &args.device)?;
    let der = build(signer.as_ref(), &subject, &sans)?;
    let text = pem("CERTIFICATE REQUEST", &der);
    // `/dev/stdout` (and its /dev/fd, /proc names) is standard output, as `-` is: never a file to
    // replace, whatever stdout is connected to.
    if ["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]
        .iter()
        .any(|s| args.out.as_os_str() == *s)
    {
        out.write_all(text.as_bytes()).map_err(Error::Output)?;
    } else {
        files::write_atomic(&args.out, text.as_bytes(), 0o644, files::Replace::Allow)?;
        crate::cli::stderr_line(&format!(
            "rolesanywhere-agent: wrote certificate request to {}",
            crate::text::path(&args.out)
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::PublicKeyDer as _;
    use crate::signer::SignError as SignerError;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A key held by openssl: signs by running `openssl pkeyutl`, so the signature is independent of us.
    pub(crate) struct OpensslKey {
        path: PathBuf,
        public: PublicKey,
    }

    impl OpensslKey {
        pub(crate) fn generate(dir: &Path, algorithm: &[&str]) -> OpensslKey {
            let path = dir.join("key.pem");
            let st = Command::new("openssl")
                .args(["genpkey", "-out"])
                .arg(&path)
                .args(algorithm)
                .output()
                .unwrap();
            assert!(st.status.success(), "{st:?}");
            let pubder = Command::new("openssl")
                .args(["pkey", "-pubout", "-outform", "DER", "-in"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(pubder.status.success());
            OpensslKey {
                public: PublicKey::from_spki_der(&pubder.stdout).unwrap(),
                path,
            }
        }
        pub(crate) fn public_der(&self) -> Vec<u8> {
            Command::new("openssl")
                .args(["pkey", "-pubout", "-outform", "DER", "-in"])
                .arg(&self.path)
                .output()
                .unwrap()
                .stdout
        }
    }

    impl Signer for OpensslKey {
        fn public_key(&self) -> &PublicKey {
            &self.public
        }
        fn sign(&self, digest: &Digest) -> Result<Vec<u8>, SignerError> {
            let dir = self.path.parent().unwrap();
            let input = dir.join("digest.bin");
            std::fs::write(&input, digest.as_bytes()).unwrap();
            let o = Command::new("openssl")
                .args(["pkeyutl", "-sign", "-pkeyopt", "digest:sha256", "-inkey"])
                .arg(&self.path)
                .arg("-in")
                .arg(&input)
                .output()
                .unwrap();
            assert!(o.status.success(), "{o:?}");
            Ok(o.stdout)
        }
        fn describe(&self) -> String {
            self.path.display().to_string()
        }
    }

    /// A signer that signs with another key than the one it reports.
    struct Liar(OpensslKey, PublicKey);
    impl Signer for Liar {
        fn public_key(&self) -> &PublicKey {
            &self.1
        }
        fn sign(&self, digest: &Digest) -> Result<Vec<u8>, SignerError> {
            self.0.sign(digest)
        }
        fn describe(&self) -> String {
            "liar".into()
        }
    }

    pub(crate) const ALGORITHMS: &[&[&str]] = &[
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    ];

    fn openssl_req(dir: &Path, der: &[u8]) -> String {
        let f = dir.join("req.pem");
        std::fs::write(&f, pem("CERTIFICATE REQUEST", der)).unwrap();
        let o = Command::new("openssl")
            .args(["req", "-verify", "-noout", "-text", "-in"])
            .arg(&f)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "openssl req -verify failed: {text}");
        text
    }

    #[test]
    fn spki_matches_openssl_byte_for_byte() {
        for alg in ALGORITHMS {
            let dir = tempfile::tempdir().unwrap();
            let k = OpensslKey::generate(dir.path(), alg);
            assert_eq!(spki_der(&k.public), k.public_der(), "{alg:?}");
        }
    }

    #[test]
    fn csr_verifies_with_openssl_and_carries_subject_sans_and_key_usage() {
        for alg in ALGORITHMS {
            let dir = tempfile::tempdir().unwrap();
            let k = OpensslKey::generate(dir.path(), alg);
            let subject = parse_subject("CN=host1,OU=servers,O=Example").unwrap();
            let sans: Vec<San> = [
                "dns:host1.example.com",
                "uri:spiffe://example.com/host1",
                "ip:192.0.2.7",
                "ip:2001:db8::7",
                "email:ops@example.com",
            ]
            .iter()
            .map(|s| parse_san(s).unwrap())
            .collect();
            let der = build(&k, &subject, &sans).unwrap();
            let text = openssl_req(dir.path(), &der);
            assert!(
                text.contains("verify OK")
                    || text.contains("Certificate request self-signature verify OK"),
                "{text}"
            );
            assert!(
                text.contains("O=Example, OU=servers, CN=host1")
                    || text.contains("O = Example, OU = servers, CN = host1"),
                "{text}"
            );
            for want in [
                "DNS:host1.example.com",
                "URI:spiffe://example.com/host1",
                "IP Address:192.0.2.7",
                "IP Address:2001:DB8:0:0:0:0:0:7",
                "email:ops@example.com",
                "X509v3 Key Usage: critical",
                "Digital Signature",
            ] {
                assert!(text.contains(want), "{alg:?}: missing {want}: {text}");
            }
            let sig = if matches!(k.public.kind(), KeyKind::Ec(_)) {
                "ecdsa-with-SHA256"
            } else {
                "sha256WithRSAEncryption"
            };
            assert!(text.contains(sig), "{text}");
        }
    }

    #[test]
    fn csr_without_sans_has_only_key_usage() {
        let dir = tempfile::tempdir().unwrap();
        let k = OpensslKey::generate(dir.path(), ALGORITHMS[0]);
        let der = build(&k, &parse_subject("CN=a").unwrap(), &[]).unwrap();
        let text = openssl_req(dir.path(), &der);
        assert!(!text.contains("Subject Alternative Name"), "{text}");
        assert!(text.contains("Digital Signature"), "{text}");
    }

    #[test]
    fn csr_from_a_device_signing_with_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let k = OpensslKey::generate(dir.path(), ALGORITHMS[0]);
        let claimed = OpensslKey::generate(other.path(), ALGORITHMS[0]).public;
        let e = build(&Liar(k, claimed), &parse_subject("CN=a").unwrap(), &[]).unwrap_err();
        assert!(matches!(e, Error::CsrSelfCheck { .. }), "{e}");
    }

    #[test]
    fn csr_command_with_a_key_file_writes_pem_to_stdout_for_dash() {
        let dir = tempfile::tempdir().unwrap();
        let k = OpensslKey::generate(dir.path(), ALGORITHMS[2]);
        let args = CsrArgs {
            private_key: k.path.display().to_string(),
            subject: "CN=file-host".into(),
            san: vec!["email:ops@example.com".into()],
            out: "-".into(),
            device: Default::default(),
        };
        let mut out = Vec::new();
        run(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"),
            "{text}"
        );
        let f = dir.path().join("out.csr");
        std::fs::write(&f, &text).unwrap();
        let o = Command::new("openssl")
            .args(["req", "-verify", "-noout", "-subject", "-in"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(o.status.success(), "{o:?}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("CN = file-host"));
    }

    /// Issue 14, item 6: `--out /dev/stdout` goes to standard output like `-` (as root it used to
    /// replace the system's /dev/stdout link with a regular file).
    #[test]
    fn csr_out_dev_stdout_is_standard_output_issue_14() {
        let dir = tempfile::tempdir().unwrap();
        let k = OpensslKey::generate(dir.path(), ALGORITHMS[2]);
        for name in ["/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            let before = std::fs::symlink_metadata(name).map(|m| m.file_type());
            let args = CsrArgs {
                private_key: k.path.display().to_string(),
                subject: "CN=file-host".into(),
                san: Vec::new(),
                out: name.into(),
                device: Default::default(),
            };
            let mut out = Vec::new();
            run(&args, &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"),
                "{name}: {text}"
            );
            let after = std::fs::symlink_metadata(name).map(|m| m.file_type());
            assert_eq!(format!("{before:?}"), format!("{after:?}"), "{name}");
        }
    }

    #[test]
    fn csr_command_rejects_a_bad_san_before_touching_the_key() {
        let args = CsrArgs {
            private_key: "/nonexistent/key.pem".into(),
            subject: "CN=a".into(),
            san: vec!["x400:nope".into()],
            out: "-".into(),
            device: Default::default(),
        };
        let e = run(&args, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, Error::San { .. }), "{e}");
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let p = pem("X", &[0u8; 100]);
        let lines: Vec<&str> = p.lines().collect();
        assert_eq!(lines[0], "-----BEGIN X-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END X-----"));
    }
}
