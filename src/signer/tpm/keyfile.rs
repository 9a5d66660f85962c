//! `TSS2 PRIVATE KEY` files (draft-bottomley-tpm2-keys): the DER `TPMKey` structure inside the PEM
//! armour (read by the agent's one PEM reader, [`crate::pem`]; written by `der::pem`).
//!
//! Owns: decoding (lenient where real writers deviate from DER) and encoding (strict DER, for the
//! enrollment code that writes key files). Pure: no TPM access, no file I/O, no secrets (the private
//! blob is encrypted by the TPM's parent key and is not a secret in itself).
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!     type        OBJECT IDENTIFIER,               -- id-loadablekey 2.23.133.10.1.3
//!     emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!     policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!     secret      [2] EXPLICIT OCTET STRING OPTIONAL,   -- importable keys only
//!     authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,
//!     description [4] EXPLICIT UTF8String OPTIONAL,
//!     rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!     parent      INTEGER,                         -- a TPM handle
//!     pubkey      OCTET STRING,                    -- TPM2B_PUBLIC (with its 2-byte size)
//!     privkey     OCTET STRING }                   -- TPM2B_PRIVATE (with its 2-byte size)
//! TPMPolicy ::= SEQUENCE {
//!     commandCode   [0] EXPLICIT INTEGER,          -- TPM_CC of the policy command
//!     commandPolicy [1] EXPLICIT OCTET STRING }    -- the command's parameter area
//! ```

use crate::signer::asn1;
use der::Encode as _;
use der::asn1::{ObjectIdentifier, OctetStringRef, Utf8StringRef};

/// DER content of the OID 2.23.133.10.1.3 (id-loadablekey).
const OID_LOADABLE: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x03];
/// DER content of the OID 2.23.133.10.1.4 (id-importablekey).
const OID_IMPORTABLE: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x04];
/// DER content of the OID 2.23.133.10.1.5 (id-sealedkey).
const OID_SEALED: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x01, 0x05];
/// DER content of the pre-standard OID 2.23.133.10.2 that old tpm2-tss-engine releases wrote for
/// loadable keys; accepted on reading.
const OID_LOADABLE_OLD: &[u8] = &[0x67, 0x81, 0x05, 0x0a, 0x02];

const PEM_LABEL: &str = "TSS2 PRIVATE KEY";

/// Why a key file could not be understood. Messages say which part is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file has no `TSS2 PRIVATE KEY` PEM block.
    #[error("not a TSS2 PRIVATE KEY PEM block: {0}")]
    Pem(&'static str),
    /// The block's armour is truncated or its body is not base64.
    #[error(transparent)]
    Armour(#[from] crate::pem::Error),
    /// The DER structure does not parse.
    #[error("malformed TSS2 key structure: {0}")]
    Der(&'static str),
    /// A well-formed key of a kind this agent cannot use.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// One step of a key's authorisation policy, in the order it must be run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyCommand {
    /// The `TPM_CC` of the policy command (e.g. `0x17F` PolicyPCR, `0x16B` PolicyAuthValue).
    pub code: u32,
    /// The command's marshalled parameter area (without the policy session handle).
    pub params: Vec<u8>,
}

/// A decoded loadable TPM key file.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TpmKeyFile {
    /// The `emptyAuth` flag: true when the writer said the key needs no password. Absent means false.
    pub empty_auth: bool,
    /// Policy commands to satisfy before the key may be used; empty when the key has no policy.
    pub policy: Vec<PolicyCommand>,
    /// Free-text description.
    pub description: Option<String>,
    /// True when the parent is the RSA-2048 storage key template instead of ECC P-256.
    pub rsa_parent: bool,
    /// The parent: a persistent handle `0x81……` or a hierarchy (`0x40000001` owner, …).
    pub parent: u32,
    /// `TPM2B_PUBLIC`, including its 2-byte size prefix.
    pub public: Vec<u8>,
    /// `TPM2B_PRIVATE`, including its 2-byte size prefix.
    pub private: Vec<u8>,
}

impl std::fmt::Debug for TpmKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TpmKeyFile")
            .field("empty_auth", &self.empty_auth)
            .field("policy", &self.policy)
            .field("description", &self.description)
            .field("rsa_parent", &self.rsa_parent)
            .field("parent", &format_args!("{:#010x}", self.parent))
            .field("public_len", &self.public.len())
            .field("private_len", &self.private.len())
            .finish()
    }
}

/// One level of a structure, read element by element with the shared DER reader (`der` frames each
/// element); the tags and the lenient values are checked here.
struct Reader<'a>(asn1::Reader<'a>);

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader(asn1::Reader::new(b))
    }

    fn peek_tag(&self) -> Option<u8> {
        self.0.peek_tag()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads one tag-length-value with a definite, minimal length that fits the input.
    fn tlv(&mut self) -> Result<(u8, &'a [u8]), Error> {
        let t = self.0.next("element").map_err(|_| {
            Error::Der("truncated or malformed element (DER needs definite, minimal lengths)")
        })?;
        Ok((t.tag, t.value))
    }

    fn expect(&mut self, tag: u8, what: &'static str) -> Result<&'a [u8], Error> {
        match self.tlv()? {
            (t, v) if t == tag => Ok(v),
            _ => Err(Error::Der(what)),
        }
    }
}

/// A BOOLEAN, leniently: tpm2-openssl and tpm2_encodeobject write TRUE as `01` rather than DER's
/// `FF`, so any non-zero byte is true.
fn parse_bool(v: &[u8]) -> Result<bool, Error> {
    match v {
        [b] => Ok(*b != 0),
        _ => Err(Error::Der("BOOLEAN must be one byte")),
    }
}

/// An INTEGER that holds a 32-bit TPM value. Writers disagree on the sign byte: `0x81000001` appears
/// both as `00 81 00 00 01` (DER) and as `81 00 00 01` (a negative number to a strict reader); both
/// mean the handle.
fn parse_u32(v: &[u8]) -> Result<u32, Error> {
    let v = match v {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => v,
    };
    if v.is_empty() || v.len() > 4 {
        return Err(Error::Der("INTEGER does not fit a 32-bit TPM value"));
    }
    Ok(v.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b)))
}

fn parse_policy(v: &[u8]) -> Result<Vec<PolicyCommand>, Error> {
    let mut seq = Reader::new(v);
    let mut out = Vec::new();
    while !seq.is_empty() {
        let item = seq.expect(0x30, "policy entry must be a SEQUENCE")?;
        let mut r = Reader::new(item);
        let code = Reader::new(r.expect(0xa0, "policy entry lacks commandCode [0]")?)
            .expect(0x02, "commandCode must be an INTEGER")?;
        let params = Reader::new(r.expect(0xa1, "policy entry lacks commandPolicy [1]")?)
            .expect(0x04, "commandPolicy must be an OCTET STRING")?;
        if !r.is_empty() {
            return Err(Error::Der("trailing data in a policy entry"));
        }
        out.push(PolicyCommand {
            code: parse_u32(code)?,
            params: params.to_vec(),
        });
    }
    Ok(out)
}

/// Checks that a TPM2B field's 2-byte size prefix matches its length.
fn check_tpm2b(v: &[u8], what: &'static str) -> Result<(), Error> {
    match v {
        [hi, lo, rest @ ..] if usize::from(u16::from_be_bytes([*hi, *lo])) == rest.len() => Ok(()),
        _ => Err(Error::Der(what)),
    }
}

impl TpmKeyFile {
    /// Decodes the DER `TPMKey` structure.
    pub(crate) fn from_der(der: &[u8]) -> Result<TpmKeyFile, Error> {
        let mut outer = Reader::new(der);
        let body = outer.expect(0x30, "outer SEQUENCE expected")?;
        if !outer.is_empty() {
            return Err(Error::Der("trailing data after the key"));
        }
        let mut r = Reader::new(body);
        let oid = r.expect(0x06, "key type OID expected")?;
        if oid == OID_IMPORTABLE {
            return Err(Error::Unsupported(
                "importable TPM keys are not supported: import the key with tpm2_import and \
                 write a loadable key file",
            ));
        }
        if oid == OID_SEALED {
            return Err(Error::Unsupported("this is sealed data, not a signing key"));
        }
        if oid != OID_LOADABLE && oid != OID_LOADABLE_OLD {
            return Err(Error::Unsupported("unknown TPM key type OID"));
        }
        let mut key = TpmKeyFile {
            empty_auth: false,
            policy: Vec::new(),
            description: None,
            rsa_parent: false,
            parent: 0,
            public: Vec::new(),
            private: Vec::new(),
        };
        // Optional explicit fields, in tag order.
        let mut last_tag = None;
        while let Some(tag) = r.peek_tag().filter(|t| t & 0xe0 == 0xa0) {
            if last_tag.is_some_and(|l| l >= tag) {
                return Err(Error::Der("optional fields out of order or repeated"));
            }
            last_tag = Some(tag);
            let inner = r.tlv()?.1;
            let mut ir = Reader::new(inner);
            match tag {
                0xa0 => {
                    key.empty_auth = parse_bool(ir.expect(0x01, "emptyAuth must be a BOOLEAN")?)?
                }
                0xa1 => key.policy = parse_policy(ir.expect(0x30, "policy must be a SEQUENCE")?)?,
                0xa2 => {
                    return Err(Error::Unsupported(
                        "key file carries an import secret: importable keys are not supported",
                    ));
                }
                0xa3 => {
                    return Err(Error::Unsupported(
                        "signed (authPolicy) key policies are not supported",
                    ));
                }
                0xa4 => {
                    let s = ir.expect(0x0c, "description must be a UTF8String")?;
                    key.description = Some(
                        std::str::from_utf8(s)
                            .map_err(|_| Error::Der("description is not UTF-8"))?
                            .to_string(),
                    );
                }
                0xa5 => {
                    key.rsa_parent = parse_bool(ir.expect(0x01, "rsaParent must be a BOOLEAN")?)?
                }
                // Later drafts may add fields; unknown optional ones are ignored as the draft asks.
                _ => continue,
            }
            if !ir.is_empty() {
                return Err(Error::Der("trailing data in an optional field"));
            }
        }
        key.parent = parse_u32(r.expect(0x02, "parent INTEGER expected")?)?;
        let public = r.expect(0x04, "pubkey OCTET STRING expected")?;
        let private = r.expect(0x04, "privkey OCTET STRING expected")?;
        if !r.is_empty() {
            return Err(Error::Der("trailing data after privkey"));
        }
        check_tpm2b(
            public,
            "pubkey is not a TPM2B_PUBLIC (size prefix mismatch)",
        )?;
        check_tpm2b(
            private,
            "privkey is not a TPM2B_PRIVATE (size prefix mismatch)",
        )?;
        key.public = public.to_vec();
        key.private = private.to_vec();
        Ok(key)
    }

    /// Decodes the first `TSS2 PRIVATE KEY` block of a PEM file, read as laxly as the reference helper
    /// reads it ([`crate::pem`]: any line width, CRLF, text and other blocks around it).
    pub(crate) fn from_pem(data: &[u8]) -> Result<TpmKeyFile, Error> {
        for block in crate::pem::blocks(data) {
            match block {
                Ok(block) if block.label() == PEM_LABEL => {
                    return Self::from_der(&block.decode()?);
                }
                Err(e) if e.label() == PEM_LABEL => return Err(e.into()),
                _ => {}
            }
        }
        Err(Error::Pem("BEGIN TSS2 PRIVATE KEY line missing"))
    }

    /// Encodes as strict DER (BOOLEAN TRUE as `FF`; `emptyAuth` written only when true, as the draft
    /// recommends; `rsaParent` only when true).
    #[allow(dead_code, reason = "the enrollment code (issue 5) writes key files")]
    pub(crate) fn to_der(&self) -> Vec<u8> {
        let policy = self
            .policy
            .iter()
            .map(|p| {
                Ok(TpmPolicyDer {
                    command_code: p.code,
                    command_policy: OctetStringRef::new(&p.params)?,
                })
            })
            .collect::<Result<Vec<_>, der::Error>>();
        let encoded = policy.and_then(|policy| {
            TpmKeyDer {
                key_type: ObjectIdentifier::from_bytes(OID_LOADABLE)?,
                empty_auth: self.empty_auth.then_some(true),
                policy: (!policy.is_empty()).then_some(policy),
                description: self
                    .description
                    .as_deref()
                    .map(Utf8StringRef::new)
                    .transpose()?,
                rsa_parent: self.rsa_parent.then_some(true),
                parent: self.parent,
                pubkey: OctetStringRef::new(&self.public)?,
                privkey: OctetStringRef::new(&self.private)?,
            }
            .to_der()
        });
        encoded.expect(
            "TPM blobs and policies are a few KiB (files are read under a size cap), far below \
             DER's 4 GiB length limit",
        )
    }

    /// Encodes as a PEM `TSS2 PRIVATE KEY` block (64-column base64, trailing newline).
    #[allow(dead_code, reason = "the enrollment code (issue 5) writes key files")]
    pub(crate) fn to_pem(&self) -> String {
        der::pem::encode_string(PEM_LABEL, der::pem::LineEnding::LF, &self.to_der())
            .expect("the label is a constant of RFC 7468's grammar; the DER is a few KiB")
    }
}

/// `TPMKey` as the encoder writes it: strict DER by `der`'s derive. (The decoder walks the structure
/// by hand: it must accept the deviations of real writers, which a derived decoder refuses.)
#[derive(der::Sequence)]
struct TpmKeyDer<'a> {
    key_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    empty_auth: Option<bool>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    policy: Option<Vec<TpmPolicyDer<'a>>>,
    #[asn1(context_specific = "4", tag_mode = "EXPLICIT", optional = "true")]
    description: Option<Utf8StringRef<'a>>,
    #[asn1(context_specific = "5", tag_mode = "EXPLICIT", optional = "true")]
    rsa_parent: Option<bool>,
    parent: u32,
    pubkey: &'a OctetStringRef,
    privkey: &'a OctetStringRef,
}

/// `TPMPolicy`.
#[derive(der::Sequence)]
struct TpmPolicyDer<'a> {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    command_code: u32,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    command_policy: &'a OctetStringRef,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{der_tlv, der_uint};

    fn der_u32(v: u32) -> Vec<u8> {
        der_uint(&v.to_be_bytes())
    }

    /// A key file as tpm2-openssl 1.1 writes it (EC P-256 under the owner hierarchy): emptyAuth as
    /// `01 01 01`, parent `02 04 40 00 00 01`.
    const OPENSSL_KEY: &str = "-----BEGIN TSS2 PRIVATE KEY-----
MIHwBgZngQUKAQOgAwEBAQIEQAAAAQRYAFYAIwALAAYAcgAAABAAEAADABAAIN6q
ge7dCM3asQZtqXhmRTj9C66oGtPe1BNI0dAu7I+4ACDxZCXkDpLnJz0tBNlOA3z+
6FNsRGZsXB+srhKlbCZHBgSBgAB+ACAbpCV0qrWE4yl060QHtG9+7ddKE/MPDhZS
XGPkmiAojgAQP3U6kpMHxhPfUVyqhEutppoI7JTzur56t1B6duGk/ertAa/sagYP
97P1hIeVPFBCV+MJwAS0iIZrS4hKcftpruYBcZRW3JczWuuP46oZf2Iw0w9no5Xp
n+X3
-----END TSS2 PRIVATE KEY-----
";

    #[test]
    fn decodes_tpm2_openssl_key_with_lenient_boolean() {
        let k = TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes()).unwrap();
        assert!(k.empty_auth);
        assert_eq!(k.parent, 0x4000_0001);
        assert!(!k.rsa_parent);
        assert!(k.policy.is_empty());
        assert_eq!(k.public.len(), 0x58);
        assert_eq!(&k.public[..4], &[0x00, 0x56, 0x00, 0x23]);
        assert_eq!(k.private.len(), 0x80);
    }

    #[test]
    fn encode_then_decode_keeps_every_field() {
        let k = TpmKeyFile {
            empty_auth: true,
            policy: vec![
                PolicyCommand {
                    code: 0x17f,
                    params: vec![0, 2, 0xaa, 0xbb, 0, 0, 0, 1, 0, 0x0b, 3, 1, 0, 0],
                },
                PolicyCommand {
                    code: 0x16b,
                    params: vec![],
                },
            ],
            description: Some("web01 Roles Anywhere key".into()),
            rsa_parent: true,
            parent: 0x8100_0001,
            public: vec![0, 3, 1, 2, 3],
            private: vec![0, 2, 9, 9],
        };
        let der = k.to_der();
        assert_eq!(TpmKeyFile::from_der(&der).unwrap(), k);
        assert_eq!(TpmKeyFile::from_pem(k.to_pem().as_bytes()).unwrap(), k);
    }

    #[test]
    fn encoder_writes_strict_der_true_and_unsigned_handles() {
        let k = TpmKeyFile {
            empty_auth: true,
            policy: vec![],
            description: None,
            rsa_parent: false,
            parent: 0x8100_0001,
            public: vec![0, 0],
            private: vec![0, 0],
        };
        let der = k.to_der();
        let needle_true = [0xa0, 0x03, 0x01, 0x01, 0xff];
        let needle_parent = [0x02, 0x05, 0x00, 0x81, 0x00, 0x00, 0x01];
        assert!(der.windows(5).any(|w| w == needle_true), "{der:02x?}");
        assert!(der.windows(7).any(|w| w == needle_parent), "{der:02x?}");
    }

    #[test]
    fn negative_looking_persistent_parent_is_read_as_the_handle() {
        assert_eq!(parse_u32(&[0x81, 0, 0, 1]).unwrap(), 0x8100_0001);
        assert_eq!(parse_u32(&[0, 0x81, 0, 0, 1]).unwrap(), 0x8100_0001);
        assert!(parse_u32(&[1, 0, 0, 0, 0]).is_err());
        assert!(parse_u32(&[]).is_err());
    }

    #[test]
    fn absent_empty_auth_means_a_password_is_needed() {
        let mut k = TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes()).unwrap();
        k.empty_auth = false;
        assert!(!TpmKeyFile::from_der(&k.to_der()).unwrap().empty_auth);
    }

    #[test]
    fn rejects_sealed_importable_and_signed_policy_keys() {
        let k = TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes()).unwrap();
        let der = k.to_der();
        for (last, want) in [(0x04u8, "importable"), (0x05, "sealed")] {
            let mut d = der.clone();
            let pos = d.windows(6).position(|w| w == OID_LOADABLE).unwrap();
            d[pos + 5] = last;
            let e = TpmKeyFile::from_der(&d).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        // An authPolicy [3] field right after the OID.
        let mut body = der_tlv(0x06, OID_LOADABLE);
        body.extend(der_tlv(0xa3, &der_tlv(0x30, &[])));
        body.extend(der_u32(0x4000_0001));
        body.extend(der_tlv(0x04, &[0, 0]));
        body.extend(der_tlv(0x04, &[0, 0]));
        let e = TpmKeyFile::from_der(&der_tlv(0x30, &body)).unwrap_err();
        assert!(e.to_string().contains("authPolicy"), "{e}");
    }

    #[test]
    fn garbage_and_truncation_fail_without_panic() {
        let der = TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes())
            .unwrap()
            .to_der();
        for n in 0..der.len() {
            assert!(
                TpmKeyFile::from_der(&der[..n]).is_err(),
                "prefix {n} accepted"
            );
        }
        for i in 0..der.len() {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = TpmKeyFile::from_der(&d);
        }
        assert_eq!(
            TpmKeyFile::from_pem(b"text\n-----BEGIN TSS2 PRIVATE KEY-----\n!!\n")
                .unwrap_err()
                .to_string(),
            "PEM block TSS2 PRIVATE KEY at line 2 is truncated (no END line)"
        );
        assert_eq!(
            TpmKeyFile::from_pem(
                b"-----BEGIN TSS2 PRIVATE KEY-----\nAAAA\n!!\n-----END TSS2 PRIVATE KEY-----"
            )
            .unwrap_err()
            .to_string(),
            "bad base64 in PEM block TSS2 PRIVATE KEY at line 3"
        );
        assert!(TpmKeyFile::from_pem(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn size_prefix_mismatch_is_reported() {
        let mut k = TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes()).unwrap();
        k.public.push(0);
        let e = TpmKeyFile::from_der(&k.to_der()).unwrap_err();
        assert!(e.to_string().contains("TPM2B_PUBLIC"), "{e}");
    }

    /// Go's encoding/pem (the reference helper) reads any line width and CRLF; so do we.
    #[test]
    fn pem_with_other_line_widths_and_crlf_is_read() {
        let body: String = OPENSSL_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let mut text = String::from("comment\r\n-----BEGIN TSS2 PRIVATE KEY-----\r\n");
        for chunk in body.as_bytes().chunks(76) {
            text.push_str(std::str::from_utf8(chunk).unwrap());
            text.push_str(" \r\n");
        }
        text.push_str("-----END TSS2 PRIVATE KEY-----\r\n");
        assert_eq!(
            TpmKeyFile::from_pem(text.as_bytes()).unwrap(),
            TpmKeyFile::from_pem(OPENSSL_KEY.as_bytes()).unwrap()
        );
    }
}
