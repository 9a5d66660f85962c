//! PKCS#8: `PrivateKeyInfo` (RFC 5208 / 5958) and `EncryptedPrivateKeyInfo`.
//!
//! Owns unwrapping the algorithm envelope to the inner PKCS#1, SEC1 or ML-DSA key and the decryption of
//! encrypted PKCS#8 (through [`pbe`](super::pbe), which enforces the KDF limits). It does not read
//! files or prompt: the password comes from the caller's context, asked for at most once.

use super::pbe::{self, Password, Scheme};
use super::sign::PrivateKey;
use super::{Ctx, Error};
use crate::keys::{OID_EC, OID_RSA};
use der::Decode as _;
use der::asn1::ObjectIdentifier;

/// Algorithms people try to use, named so the refusal is clear.
const KNOWN_UNSUPPORTED: &[(&str, &str)] = &[
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.3.101.110", "X25519"),
    ("1.3.101.111", "X448"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.2.840.113549.1.1.10", "RSA-PSS-restricted"),
    ("1.2.156.10197.1.301", "SM2"),
];

/// A key from PKCS#8 `PrivateKeyInfo` DER.
pub(super) fn parse(ctx: &Ctx<'_>, der: &[u8]) -> Result<PrivateKey, Error> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|e| ctx.malformed("PKCS#8 PrivateKeyInfo does not parse", e))?;
    from_info(ctx, &info)
}

fn from_info(ctx: &Ctx<'_>, info: &pkcs8::PrivateKeyInfoRef<'_>) -> Result<PrivateKey, Error> {
    let oid = info.algorithm.oid;
    let inner = info.private_key.as_bytes();
    if oid == OID_RSA {
        PrivateKey::from_pkcs1(ctx, inner)
    } else if oid == OID_EC {
        let curve = match &info.algorithm.parameters {
            Some(p) => Some(p.decode_as::<ObjectIdentifier>().map_err(|_| {
                ctx.unsupported_key("EC with explicit curve parameters (use a named curve)")
            })?),
            None => None,
        };
        PrivateKey::from_sec1(ctx, inner, curve)
    } else if let Some(set) = crate::keys::ml_dsa_set(&oid) {
        if info.algorithm.parameters.is_some() {
            return Err(ctx.malformed_msg(format!(
                "the {} key's algorithm has parameters, which must be absent",
                set.name()
            )));
        }
        Ok(PrivateKey::MlDsa(super::mldsa::parse(ctx, set, inner)?))
    } else {
        let s = oid.to_string();
        let name = KNOWN_UNSUPPORTED
            .iter()
            .find(|(o, _)| *o == s)
            .map_or_else(|| format!("algorithm {s}"), |(_, n)| (*n).to_string());
        Err(ctx.unsupported_key(&name))
    }
}

/// A key from PKCS#8 `EncryptedPrivateKeyInfo` DER, with the password from the context.
pub(super) fn decrypt(ctx: &Ctx<'_>, der: &[u8]) -> Result<PrivateKey, Error> {
    let (algorithm, data) = pbe::encrypted_private_key_info(ctx, der)?;
    // Parse and check the scheme (KDF limits included) before asking for a password: a file we
    // would refuse anyway should not make the user type one.
    let scheme = Scheme::parse(ctx, algorithm)?;
    let password = ctx.password()?;
    decrypt_scheme(ctx, &scheme, data, password)
}

/// A key from PKCS#8 `EncryptedPrivateKeyInfo` DER with `password`.
pub(super) fn decrypt_with(
    ctx: &Ctx<'_>,
    der: &[u8],
    password: &Password,
) -> Result<PrivateKey, Error> {
    let (algorithm, data) = pbe::encrypted_private_key_info(ctx, der)?;
    decrypt_scheme(ctx, &Scheme::parse(ctx, algorithm)?, data, password)
}

fn decrypt_scheme(
    ctx: &Ctx<'_>,
    scheme: &Scheme,
    data: &[u8],
    password: &Password,
) -> Result<PrivateKey, Error> {
    let plain = scheme.decrypt(ctx, data, password)?;
    // CBC padding passes by chance for about one wrong password in 256; the plaintext is then noise
    // that does not parse as a PrivateKeyInfo, which is the same failure.
    let info = pkcs8::PrivateKeyInfoRef::from_der(&plain).map_err(|_| ctx.wrong_password())?;
    from_info(ctx, &info)
}
