//! Which key format a file holds: PEM (by its label) or DER (by its structure).
//!
//! Owns the choice of the key block (by label, through the agent's one PEM reader, [`crate::pem`])
//! and the DER sniffing. It hands the DER on in zeroizing buffers; it does not parse keys or decrypt
//! anything. The legacy OpenSSL `Proc-Type: 4,ENCRYPTED`
//! PEM encryption (MD5-based key derivation) is refused here with a conversion hint.

use super::{Ctx, Error};
use crate::signer::asn1::{self, Reader};
use zeroize::Zeroizing;

/// A key file's contents, as DER, by format.
pub(super) enum Encoded {
    /// PKCS#1 `RSAPrivateKey`.
    Pkcs1(Zeroizing<Vec<u8>>),
    /// SEC1 `ECPrivateKey`.
    Sec1(Zeroizing<Vec<u8>>),
    /// PKCS#8 `PrivateKeyInfo` (or `OneAsymmetricKey`).
    Pkcs8(Zeroizing<Vec<u8>>),
    /// PKCS#8 `EncryptedPrivateKeyInfo`.
    EncryptedPkcs8(Zeroizing<Vec<u8>>),
    /// PKCS#12 `PFX`.
    Pkcs12(Zeroizing<Vec<u8>>),
}

/// PEM blocks that may sit beside a key and are skipped (`openssl ecparam -genkey` writes the curve
/// before the key; combined PEM files carry the certificate).
const SKIPPED_LABELS: &[&str] = &[
    "EC PARAMETERS",
    "CERTIFICATE",
    "TRUSTED CERTIFICATE",
    "X509 CRL",
];

/// Finds the private key in `data` (PEM or DER).
pub(super) fn detect(ctx: &Ctx<'_>, data: &[u8]) -> Result<Encoded, Error> {
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ctx.unrecognized("the file is empty"));
    }
    if find(data, b"-----BEGIN ").is_some() {
        return pem(ctx, data);
    }
    if data.first() == Some(&asn1::SEQUENCE) {
        return sniff_der(ctx, Zeroizing::new(data.to_vec()));
    }
    Err(ctx.unrecognized("neither a PEM block nor DER"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Finds the key block. Skipped blocks are stepped over without decoding anything and only the key
/// block is decoded, so the scan is linear in the file's size ([`crate::pem`]).
fn pem(ctx: &Ctx<'_>, data: &[u8]) -> Result<Encoded, Error> {
    let mut seen: Vec<&str> = Vec::new();
    for block in crate::pem::blocks(data) {
        // A damaged block beside the key (a certificate cut short) is not ours to check.
        let label = match &block {
            Ok(block) => block.label(),
            Err(e) => e.label(),
        };
        if let Some(skipped) = SKIPPED_LABELS.iter().find(|l| **l == label) {
            if !seen.contains(skipped) {
                seen.push(skipped);
            }
            continue;
        }
        let block = block.map_err(|e| pem_error(ctx, &e))?;
        let label = block.label();
        // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED", "DEK-Info: …") mark OpenSSL's legacy encryption.
        if block
            .headers()
            .any(|h| h.starts_with(b"Proc-Type:") && find(h, b"ENCRYPTED").is_some())
        {
            return Err(Error::LegacyEncryptedPem {
                path: ctx.path.into(),
            });
        }
        let make: fn(Zeroizing<Vec<u8>>) -> Encoded = match label {
            "RSA PRIVATE KEY" => Encoded::Pkcs1,
            "EC PRIVATE KEY" => Encoded::Sec1,
            "PRIVATE KEY" => Encoded::Pkcs8,
            "ENCRYPTED PRIVATE KEY" => Encoded::EncryptedPkcs8,
            // Not a standard label, but some tools wrap a PFX in PEM.
            "PKCS12" => Encoded::Pkcs12,
            other => {
                return Err(Error::UnsupportedPem {
                    path: ctx.path.into(),
                    label: other.into(),
                    hint: pem_hint(other).into(),
                });
            }
        };
        return Ok(make(block.decode().map_err(|e| pem_error(ctx, &e))?));
    }
    Err(Error::NoKey {
        path: ctx.path.into(),
        what: if seen.is_empty() {
            "no complete PEM block".into()
        } else {
            format!("only PEM blocks labelled {}", seen.join(", "))
        },
    })
}

/// Bad base64 is a damaged key file; broken armour is not a key file at all.
fn pem_error(ctx: &Ctx<'_>, e: &crate::pem::Error) -> Error {
    match e {
        crate::pem::Error::Base64 { .. } => ctx.malformed_msg(e.to_string()),
        _ => ctx.unrecognized(&e.to_string()),
    }
}

fn pem_hint(label: &str) -> &'static str {
    match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => "this is a public key; give the private key file",
        "OPENSSH PRIVATE KEY" => {
            "convert it with `ssh-keygen -p -m PKCS8 -f FILE` (edits FILE in place)"
        }
        "TSS2 PRIVATE KEY" => "TPM key files must start with this block to be sent to the TPM",
        "DSA PRIVATE KEY" => "DSA keys are not supported; use an RSA or EC key",
        _ => {
            "expected RSA PRIVATE KEY, EC PRIVATE KEY, PRIVATE KEY or ENCRYPTED PRIVATE KEY \
             (convert with `openssl pkcs8 -topk8`)"
        }
    }
}

/// Tells the DER formats apart by their first fields:
///
/// ```text
/// PKCS#1   SEQUENCE { INTEGER 0, INTEGER n, … }
/// SEC1     SEQUENCE { INTEGER 1, OCTET STRING d, … }
/// PKCS#8   SEQUENCE { INTEGER 0|1, SEQUENCE algorithm, OCTET STRING key, … }
/// PKCS#8 encrypted  SEQUENCE { SEQUENCE algorithm, OCTET STRING data }
/// PKCS#12  SEQUENCE { INTEGER 3, SEQUENCE authSafe, SEQUENCE macData OPTIONAL }
/// ```
fn sniff_der(ctx: &Ctx<'_>, der: Zeroizing<Vec<u8>>) -> Result<Encoded, Error> {
    let make: fn(Zeroizing<Vec<u8>>) -> Encoded = {
        let outer = Reader::new(&der)
            .next("outer SEQUENCE")
            .and_then(|t| t.expect(asn1::SEQUENCE, "outer SEQUENCE"))
            .map_err(|e| ctx.unrecognized(&format!("not a DER key ({e})")))?;
        let mut r = outer.reader();
        let first = r.next("first field").map_err(|e| ctx.unrecognized(&e.0))?;
        let second = r.peek_tag();
        match (first.tag, second) {
            (asn1::SEQUENCE, _) => Encoded::EncryptedPkcs8,
            (asn1::INTEGER, Some(asn1::INTEGER)) => Encoded::Pkcs1,
            (asn1::INTEGER, Some(asn1::OCTET_STRING)) => Encoded::Sec1,
            (asn1::INTEGER, Some(asn1::SEQUENCE)) if first.value == [3] => Encoded::Pkcs12,
            (asn1::INTEGER, Some(asn1::SEQUENCE)) => Encoded::Pkcs8,
            _ => {
                return Err(ctx.unrecognized(
                    "a DER SEQUENCE that is not a PKCS#1, SEC1, PKCS#8 or PKCS#12 structure",
                ));
            }
        }
    };
    Ok(make(der))
}
