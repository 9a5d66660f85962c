//! Which key format a file holds: PEM (by its label) or DER (by its structure).
//!
//! Owns the PEM scanner and the DER sniffing. It decodes base64 into zeroizing buffers and hands the
//! DER on; it does not parse keys or decrypt anything. The legacy OpenSSL `Proc-Type: 4,ENCRYPTED`
//! PEM encryption (MD5-based key derivation) is refused here with a conversion hint.

use super::{Ctx, Error};
use crate::signer::asn1::{self, Reader};
use base64::Engine as _;
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

/// One PEM block: its label, whether it had RFC 1421 headers marking encryption, and its DER.
struct Block {
    label: String,
    encrypted: bool,
    der: Zeroizing<Vec<u8>>,
}

/// One pass over the lines, in time linear in the file's size: skipped blocks are stepped over without
/// decoding or buffering anything, and only the key block is decoded.
fn pem(ctx: &Ctx<'_>, data: &[u8]) -> Result<Encoded, Error> {
    let mut lines = data.split(|&b| b == b'\n').map(<[u8]>::trim_ascii_end);
    let mut seen: Vec<&str> = Vec::new();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix(b"-----BEGIN ")
            .and_then(|l| l.strip_suffix(b"-----"))
        else {
            continue;
        };
        let label = String::from_utf8_lossy(label).into_owned();
        if let Some(skipped) = SKIPPED_LABELS.iter().find(|l| **l == label) {
            skip_block(ctx, &label, &mut lines)?;
            if !seen.contains(skipped) {
                seen.push(skipped);
            }
            continue;
        }
        let block = read_block(ctx, &label, &mut lines, data.len())?;
        if block.encrypted {
            return Err(Error::LegacyEncryptedPem {
                path: ctx.path.into(),
            });
        }
        return match block.label.as_str() {
            "RSA PRIVATE KEY" => Ok(Encoded::Pkcs1(block.der)),
            "EC PRIVATE KEY" => Ok(Encoded::Sec1(block.der)),
            "PRIVATE KEY" => Ok(Encoded::Pkcs8(block.der)),
            "ENCRYPTED PRIVATE KEY" => Ok(Encoded::EncryptedPkcs8(block.der)),
            // Not a standard label, but some tools wrap a PFX in PEM.
            "PKCS12" => Ok(Encoded::Pkcs12(block.der)),
            other => Err(Error::UnsupportedPem {
                path: ctx.path.into(),
                label: other.into(),
                hint: pem_hint(other).into(),
            }),
        };
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

/// Steps over the body of a block whose BEGIN line has been consumed, up to its END line. The body is
/// not decoded: these blocks are not ours to check (`--certificate` reads the certificates).
fn skip_block<'a>(
    ctx: &Ctx<'_>,
    label: &str,
    lines: &mut impl Iterator<Item = &'a [u8]>,
) -> Result<(), Error> {
    let end = format!("-----END {label}-----");
    for line in lines {
        if line == end.as_bytes() {
            return Ok(());
        }
        if line.starts_with(b"-----") {
            return Err(ctx.unrecognized(&format!("PEM block {label} has no END line")));
        }
    }
    Err(ctx.unrecognized(&format!("PEM block {label} is truncated (no END line)")))
}

/// Reads the body of a block whose BEGIN line has been consumed, up to its END line. Called once per
/// file (for the key block), so sizing its buffer by the whole file costs linear time.
fn read_block<'a>(
    ctx: &Ctx<'_>,
    label: &str,
    lines: &mut impl Iterator<Item = &'a [u8]>,
    capacity: usize,
) -> Result<Block, Error> {
    let end = format!("-----END {label}-----");
    // Sized up front: a growing Vec would leave unzeroized copies of key material behind.
    let mut b64 = Zeroizing::new(Vec::with_capacity(capacity));
    let mut encrypted = false;
    let mut in_headers = true;
    for line in lines {
        if line == end.as_bytes() {
            let der = base64::engine::general_purpose::STANDARD
                .decode(&*b64)
                .map(Zeroizing::new)
                .map_err(|e| ctx.malformed(format!("bad base64 in PEM block {label}"), e))?;
            if der.is_empty() {
                return Err(ctx.unrecognized(&format!("PEM block {label} is empty")));
            }
            return Ok(Block {
                label: label.into(),
                encrypted,
                der,
            });
        }
        if line.starts_with(b"-----") {
            return Err(ctx.unrecognized(&format!("PEM block {label} has no END line")));
        }
        // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED", "DEK-Info: …") precede the base64 body.
        if in_headers && line.contains(&b':') {
            if line.starts_with(b"Proc-Type:") && find(line, b"ENCRYPTED").is_some() {
                encrypted = true;
            }
            continue;
        }
        in_headers = false;
        b64.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
    }
    Err(ctx.unrecognized(&format!("PEM block {label} is truncated (no END line)")))
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
