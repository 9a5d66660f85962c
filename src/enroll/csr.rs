//! PKCS#10 certificate requests (RFC 2986) signed by the device key, and public keys as PEM.
//!
//! x509-cert's `RequestBuilder` assembles the request. Its `finalize`/`assemble` split is what lets a
//! digest-only [`Signer`] sign: `finalize` returns the DER `CertificationRequestInfo`, only its SHA-256
//! [`Digest`] reaches the device, and `assemble` adds the algorithm and the signature. Before a request
//! leaves this module it is parsed back (x509-parser) and its signature verified with the key it
//! carries, so a device that signs with another key is caught here and not at the CA.
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
use crate::keys::{KeyKind, OID_EC, OID_RSA, PublicKey};
use crate::signer::Signer;
use crate::sigv4x509::Digest;
use der::asn1::{Any, BitString, ObjectIdentifier, UintRef};
use der::{Encode as _, pem::LineEnding};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder as _, RequestBuilder};
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectAltName};

const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

/// `SubjectPublicKeyInfo` of `key` (RSA with NULL parameters, EC with the named curve).
fn spki(key: &PublicKey) -> Result<SubjectPublicKeyInfoOwned, der::Error> {
    let (algorithm, bits) = match key {
        PublicKey::Rsa { modulus, exponent } => {
            let rsa = pkcs1::RsaPublicKey {
                modulus: UintRef::new(modulus)?,
                public_exponent: UintRef::new(exponent)?,
            };
            let algorithm = AlgorithmIdentifierOwned {
                oid: OID_RSA,
                parameters: Some(Any::null()),
            };
            (algorithm, rsa.to_der()?)
        }
        PublicKey::Ec { curve, point } => {
            let algorithm = AlgorithmIdentifierOwned {
                oid: OID_EC,
                parameters: Some(Any::encode_from(&curve.oid())?),
            };
            (algorithm, point.clone())
        }
        PublicKey::MlDsa { set, key } => {
            let algorithm = AlgorithmIdentifierOwned {
                oid: crate::keys::ml_dsa_oid(*set),
                parameters: None,
            };
            (algorithm, key.clone())
        }
    };
    Ok(SubjectPublicKeyInfoOwned {
        algorithm,
        subject_public_key: BitString::from_bytes(&bits)?,
    })
}

/// DER `SubjectPublicKeyInfo` of `key`.
pub fn spki_der(key: &PublicKey) -> Result<Vec<u8>, der::Error> {
    spki(key)?.to_der()
}

/// PEM with the given label, 64-column base64 lines, LF line ends.
pub fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, LineEnding::LF, der)
        .expect("the labels are constants of RFC 7468's grammar and in-memory data cannot overflow")
}

/// `PUBLIC KEY` PEM of `key` (what `keygen` prints).
pub fn public_key_pem(key: &PublicKey) -> String {
    let der = spki_der(key)
        .expect("a public key's SubjectPublicKeyInfo is far below DER's 4 GiB length limit");
    pem("PUBLIC KEY", &der)
}

/// The device key as x509-cert's builder sees it: a public key and a signature algorithm. It never
/// signs; the builder only asks it for these two while encoding.
struct DeviceKey {
    public: SpkiKey,
    algorithm: AlgorithmIdentifierOwned,
}

/// A `SubjectPublicKeyInfo` as the builder's `EncodePublicKey`.
#[derive(Clone)]
struct SpkiKey(SubjectPublicKeyInfoOwned);

impl spki::EncodePublicKey for SpkiKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

impl signature::Keypair for DeviceKey {
    type VerifyingKey = SpkiKey;

    fn verifying_key(&self) -> SpkiKey {
        self.public.clone()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for DeviceKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

/// The request's signature algorithm; `None` for ML-DSA, whose requests are not made here yet.
fn signature_algorithm(kind: KeyKind) -> Option<AlgorithmIdentifierOwned> {
    match kind {
        KeyKind::Ec(_) => Some(AlgorithmIdentifierOwned {
            oid: OID_ECDSA_SHA256,
            parameters: None,
        }),
        KeyKind::Rsa { .. } => Some(AlgorithmIdentifierOwned {
            oid: OID_RSA_SHA256,
            parameters: Some(Any::null()),
        }),
        KeyKind::MlDsa(_) => None,
    }
}

/// Builds the request and has `signer` sign SHA-256 of its `CertificationRequestInfo`; returns DER.
pub fn build(signer: &dyn Signer, subject: &Subject, sans: &[San]) -> Result<Vec<u8>, Error> {
    let key = signer.describe();
    let encode = |e: &dyn std::fmt::Display| {
        Error::Unexpected(format!(
            "cannot encode the certificate request for {key}: {e}"
        ))
    };
    let Some(algorithm) = signature_algorithm(signer.key_kind()) else {
        return Err(Error::Unexpected(format!(
            "cannot make a certificate request for {key}: requests signed with {} keys are not \
             supported yet; make the request with another tool (`openssl req -new -key KEY`)",
            signer.key_kind()
        )));
    };
    let device = DeviceKey {
        public: SpkiKey(spki(signer.public_key()).map_err(|e| encode(&e))?),
        algorithm,
    };
    let mut builder = RequestBuilder::new(subject.name().clone()).map_err(|e| encode(&e))?;
    if !sans.is_empty() {
        let names = sans
            .iter()
            .map(San::general_name)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| encode(&e))?;
        builder
            .add_extension(&SubjectAltName(names))
            .map_err(|e| encode(&e))?;
    }
    // Critical, as x509-cert marks keyUsage.
    builder
        .add_extension(&KeyUsage(KeyUsages::DigitalSignature.into()))
        .map_err(|e| encode(&e))?;
    let info = builder.finalize(&device).map_err(|e| encode(&e))?;
    let signature = signer.sign(&Digest::sha256(&info))?;
    let signature = BitString::from_bytes(&signature).map_err(|e| encode(&e))?;
    let der = builder
        .assemble(signature, &device)
        .and_then(|req| Ok(req.to_der()?))
        .map_err(|e| encode(&e))?;
    self_check(&der, &key)?;
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
            assert_eq!(spki_der(&k.public).unwrap(), k.public_der(), "{alg:?}");
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

    /// The request for a fixed RSA key (PKCS#1 v1.5 signatures are deterministic) is byte for byte the
    /// one the hand-written encoder produced before x509-cert's builder replaced it (issue 9).
    #[test]
    fn csr_of_a_fixed_rsa_key_is_byte_for_byte_stable_issue_9() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let path = dir.path().join("key.pem");
        std::fs::copy(root.join("keys/rsa2048.pkcs1.pem"), &path).unwrap();
        let public = PublicKey::from_spki_der(
            &std::fs::read(root.join("keys/rsa2048.pkcs1.pem.pub.der")).unwrap(),
        )
        .unwrap();
        let k = OpensslKey { path, public };
        let subject = parse_subject("CN=host1,OU=servers+O=Example,C=DE").unwrap();
        let sans: Vec<San> = ["dns:host1.example.com", "ip:2001:db8::7", "email:a@b.c"]
            .iter()
            .map(|s| parse_san(s).unwrap())
            .collect();
        let der = build(&k, &subject, &sans).unwrap();
        if std::env::var_os("WRITE_GOLDEN").is_some() {
            std::fs::write(root.join("keys/rsa2048.pkcs1.pem.csr.der"), &der).unwrap();
        }
        assert_eq!(
            der,
            std::fs::read(root.join("keys/rsa2048.pkcs1.pem.csr.der")).unwrap()
        );
    }
}
