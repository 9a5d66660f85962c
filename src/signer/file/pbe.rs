//! Password-based decryption shared by encrypted PKCS#8 and PKCS#12.
//!
//! Owns: PBES2 (PBKDF2-HMAC-SHA1/224/256/384/512 or scrypt, with AES-CBC/GCM or 3DES) through the
//! `pkcs5` crate; the PKCS#12 PBE schemes (`pbeWithSHAAnd3-KeyTripleDES-CBC`, `…128BitRC2-CBC`,
//! `…40BitRC2-CBC`) and the RFC 7292 appendix B key derivation, written here; and the limits on KDF
//! parameters, checked BEFORE any derivation so a hostile file cannot hang us or exhaust memory.
//! Every derived key, IV and plaintext lives in a zeroizing buffer. It never retries: a failed
//! decryption is reported once as "wrong password or corrupt file".
//!
//! Residual: `pkcs5` 0.8.1 keeps its PBES2-derived AES key on the stack without zeroizing it.

use super::{Ctx, Error};
use crate::secret::Secret;
use crate::signer::asn1::{self, Tlv};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt as _, InnerIvInit as _, KeyIvInit as _};
use der::Decode as _;
use der::asn1::ObjectIdentifier;
use zeroize::Zeroizing;

/// Most PBKDF2 / PKCS#12 KDF / PKCS#12 MAC iterations accepted (RFC 8018 calls 10,000,000 suitable
/// for "especially critical keys"; openssl's default is 2048).
pub(super) const MAX_ITERATIONS: u64 = 10_000_000;
/// Largest scrypt cost `N` accepted (openssl's default is 2^14).
pub(super) const MAX_SCRYPT_N: u64 = 1 << 20;
/// Most scrypt memory accepted, computed as 128·N·r·p bytes.
pub(super) const MAX_SCRYPT_MEMORY: u64 = 256 << 20;

const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const SCRYPT: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.11591.4.11");
const PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const PBE_SHA1_RC2_128: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5");
const PBE_SHA1_RC2_40: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");

/// A password in the two encodings the schemes use: the UTF-8 bytes (PBES2) and the NUL-terminated
/// UTF-16BE `BMPString` of RFC 7292 appendix B.1 (PKCS#12 KDF).
#[derive(Clone)]
pub(super) struct Password {
    text: Secret,
    bmp: Zeroizing<Vec<u8>>,
}

impl Password {
    /// Both encodings of `text`.
    pub(super) fn new(text: Secret) -> Password {
        let mut bmp = Zeroizing::new(Vec::with_capacity(2 * text.expose().len() + 2));
        for unit in text.expose().encode_utf16() {
            bmp.extend_from_slice(&unit.to_be_bytes());
        }
        bmp.extend_from_slice(&[0, 0]);
        Password { text, bmp }
    }

    /// The same password with an empty `BMPString` instead of `00 00`: how some writers encode the
    /// empty password (openssl tries both when checking a MAC).
    pub(super) fn with_empty_bmp(&self) -> Option<Password> {
        self.text.is_empty().then(|| Password {
            text: self.text.clone(),
            bmp: Zeroizing::new(Vec::new()),
        })
    }

    fn utf8(&self) -> &[u8] {
        self.text.expose().as_bytes()
    }

    pub(super) fn bmp(&self) -> &[u8] {
        &self.bmp
    }
}

/// A parsed and checked encryption scheme, ready to decrypt once a password is known.
pub(super) enum Scheme {
    /// PBES2, decrypted by `pkcs5`.
    Pbes2(pkcs5::pbes2::Parameters),
    /// A PKCS#12 PBE scheme: SHA-1 KDF, then 3DES-CBC (`rc2_bits` None) or RC2-CBC.
    Pkcs12 {
        key_len: usize,
        rc2_bits: Option<usize>,
        salt: Vec<u8>,
        iterations: u64,
    },
}

impl Scheme {
    /// Parses the `AlgorithmIdentifier` SEQUENCE `algorithm` and checks its KDF parameters against
    /// the limits; derives nothing.
    pub(super) fn parse(ctx: &Ctx<'_>, algorithm: Tlv<'_>) -> Result<Scheme, Error> {
        let mut r = algorithm.reader();
        let oid = r
            .expect(asn1::OID, "encryption algorithm")
            .map_err(|e| ctx.malformed_msg(e.0))?;
        if oid.is_oid(&PBES2) {
            return pbes2(ctx, algorithm);
        }
        let (key_len, rc2_bits) = if oid.is_oid(&PBE_SHA1_3DES) {
            (24, None)
        } else if oid.is_oid(&PBE_SHA1_RC2_128) {
            (16, Some(128))
        } else if oid.is_oid(&PBE_SHA1_RC2_40) {
            (5, Some(40))
        } else {
            return Err(ctx
                .unsupported_algorithm(&format!("encryption {}", scheme_name(&oid.oid_string()))));
        };
        // pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
        let (salt, iterations) = (|| {
            let params = r.expect(asn1::SEQUENCE, "PKCS#12 PBE parameters")?;
            let mut p = params.reader();
            let salt = p.expect(asn1::OCTET_STRING, "PBE salt")?.value;
            let iterations = p.next("PBE iterations")?.as_u64("PBE iterations")?;
            Ok((salt, iterations))
        })()
        .map_err(|e: asn1::Asn1Error| ctx.malformed_msg(e.0))?;
        check_iterations(ctx, "PKCS#12 PBE iteration count", iterations)?;
        Ok(Scheme::Pkcs12 {
            key_len,
            rc2_bits,
            salt: salt.to_vec(),
            iterations,
        })
    }

    /// Decrypts `data` with `password`. Any failure of padding is "wrong password or corrupt file".
    pub(super) fn decrypt(
        &self,
        ctx: &Ctx<'_>,
        data: &[u8],
        password: &Password,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let mut buf = Zeroizing::new(data.to_vec());
        let plain_len = match self {
            Scheme::Pbes2(params) => params
                .decrypt_in_place(password.utf8(), &mut buf)
                .map_err(|e| match e {
                    pkcs5::Error::DecryptFailed => ctx.wrong_password(),
                    pkcs5::Error::UnsupportedAlgorithm { oid } => ctx.unsupported_algorithm(
                        &format!("PBES2 with {}", scheme_name(&oid.to_string())),
                    ),
                    other => ctx.malformed("PBES2 decryption parameters are invalid", other),
                })?
                .len(),
            Scheme::Pkcs12 {
                key_len,
                rc2_bits,
                salt,
                iterations,
            } => {
                let bmp = password.bmp();
                let key = pkcs12_kdf(Hash::Sha1, bmp, salt, 1, *iterations, *key_len);
                let iv = pkcs12_kdf(Hash::Sha1, bmp, salt, 2, *iterations, 8);
                match rc2_bits {
                    None => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                        .map_err(|_| ctx.malformed_msg("bad 3DES key or IV length"))?
                        .decrypt_padded::<Pkcs7>(&mut buf)
                        .map(<[u8]>::len),
                    Some(bits) => {
                        let cipher = rc2::Rc2::new_with_eff_key_len(&key, *bits);
                        cbc::Decryptor::<rc2::Rc2>::inner_iv_slice_init(cipher, &iv)
                            .map_err(|_| ctx.malformed_msg("bad RC2 IV length"))?
                            .decrypt_padded::<Pkcs7>(&mut buf)
                            .map(<[u8]>::len)
                    }
                }
                .map_err(|_| ctx.wrong_password())?
            }
        };
        buf.truncate(plain_len);
        Ok(buf)
    }
}

fn pbes2(ctx: &Ctx<'_>, algorithm: Tlv<'_>) -> Result<Scheme, Error> {
    let scheme = match pkcs5::EncryptionScheme::from_der(algorithm.raw) {
        Ok(pkcs5::EncryptionScheme::Pbes2(p)) => p,
        Ok(_) => return Err(ctx.malformed_msg("PBES2 parameters do not parse")),
        Err(e) => return Err(explain_pbes2(ctx, algorithm, e)),
    };
    match &scheme.kdf {
        pkcs5::pbes2::Kdf::Pbkdf2(p) => {
            check_iterations(ctx, "PBKDF2 iteration count", u64::from(p.iteration_count))?
        }
        pkcs5::pbes2::Kdf::Scrypt(p) => check_scrypt(
            ctx,
            p.cost_parameter,
            u64::from(p.block_size),
            u64::from(p.parallelization),
        )?,
        other => {
            return Err(ctx.unsupported_algorithm(&format!("PBES2 key derivation {}", other.oid())));
        }
    }
    Ok(Scheme::Pbes2(scheme))
}

/// Why `pkcs5` refused the parameters: an algorithm we do not support, or a malformed structure.
fn explain_pbes2(ctx: &Ctx<'_>, algorithm: Tlv<'_>, cause: der::Error) -> Error {
    // PBES2-params ::= SEQUENCE { keyDerivationFunc AlgorithmIdentifier, encryptionScheme … }
    let oids = (|| {
        let mut r = algorithm.reader();
        r.next("oid")?;
        let mut p = r.expect(asn1::SEQUENCE, "params")?.reader();
        let kdf = p
            .expect(asn1::SEQUENCE, "kdf")?
            .reader()
            .expect(asn1::OID, "kdf")?;
        let enc = p
            .expect(asn1::SEQUENCE, "enc")?
            .reader()
            .expect(asn1::OID, "enc")?;
        Ok::<_, asn1::Asn1Error>((kdf, enc))
    })();
    match oids {
        Ok((kdf, _)) if !kdf.is_oid(&PBKDF2) && !kdf.is_oid(&SCRYPT) => {
            ctx.unsupported_algorithm(&format!("PBES2 key derivation {}", kdf.oid_string()))
        }
        Ok((_, enc)) if !known_cipher(&enc) => {
            ctx.unsupported_algorithm(&format!("PBES2 with {}", scheme_name(&enc.oid_string())))
        }
        _ => ctx.malformed("PBES2 parameters do not parse", cause),
    }
}

fn known_cipher(enc: &Tlv<'_>) -> bool {
    [
        pkcs5::pbes2::AES_128_CBC_OID,
        pkcs5::pbes2::AES_192_CBC_OID,
        pkcs5::pbes2::AES_256_CBC_OID,
        pkcs5::pbes2::AES_128_GCM_OID,
        pkcs5::pbes2::AES_256_GCM_OID,
        pkcs5::pbes2::DES_EDE3_CBC_OID,
    ]
    .iter()
    .any(|o| enc.is_oid(o))
}

/// Names schemes people meet, so a refusal says what the file uses.
fn scheme_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.5.3" => "PBES1 pbeWithMD5AndDES-CBC",
        "1.2.840.113549.1.5.10" => "PBES1 pbeWithSHA1AndDES-CBC",
        "1.2.840.113549.1.5.6" => "PBES1 pbeWithMD5AndRC2-CBC",
        "1.2.840.113549.1.5.11" => "PBES1 pbeWithSHA1AndRC2-CBC",
        "1.2.840.113549.1.12.1.1" => "pbeWithSHAAnd128BitRC4",
        "1.2.840.113549.1.12.1.2" => "pbeWithSHAAnd40BitRC4",
        "1.2.840.113549.1.12.1.4" => "pbeWithSHAAnd2-KeyTripleDES-CBC",
        "1.3.14.3.2.7" => "DES-CBC",
        "1.2.840.113549.3.2" => "RC2-CBC",
        _ => return oid.into(),
    };
    name.into()
}

pub(super) fn check_iterations(
    ctx: &Ctx<'_>,
    parameter: &'static str,
    value: u64,
) -> Result<(), Error> {
    if value == 0 {
        return Err(ctx.malformed_msg(format!("{parameter} is 0")));
    }
    if value > MAX_ITERATIONS {
        return Err(ctx.kdf_limit(parameter, value, MAX_ITERATIONS));
    }
    Ok(())
}

fn check_scrypt(ctx: &Ctx<'_>, n: u64, r: u64, p: u64) -> Result<(), Error> {
    // pkcs5 takes log2(N) assuming a power of two, and panics on N = 0.
    if n < 2 || !n.is_power_of_two() {
        return Err(ctx.malformed_msg(format!("scrypt cost N {n} is not a power of two above 1")));
    }
    if n > MAX_SCRYPT_N {
        return Err(ctx.kdf_limit("scrypt cost N", n, MAX_SCRYPT_N));
    }
    let memory = 128u64.saturating_mul(n).saturating_mul(r).saturating_mul(p);
    if memory > MAX_SCRYPT_MEMORY {
        return Err(ctx.kdf_limit("scrypt memory 128·N·r·p (bytes)", memory, MAX_SCRYPT_MEMORY));
    }
    Ok(())
}

/// Hash functions of the PKCS#12 KDF and MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The hash named by an `AlgorithmIdentifier`'s OID.
    pub(super) fn from_oid(oid: &Tlv<'_>) -> Option<Hash> {
        const OIDS: [(&str, Hash); 5] = [
            ("1.3.14.3.2.26", Hash::Sha1),
            ("2.16.840.1.101.3.4.2.4", Hash::Sha224),
            ("2.16.840.1.101.3.4.2.1", Hash::Sha256),
            ("2.16.840.1.101.3.4.2.2", Hash::Sha384),
            ("2.16.840.1.101.3.4.2.3", Hash::Sha512),
        ];
        let s = oid.oid_string();
        OIDS.iter().find(|(o, _)| *o == s).map(|&(_, h)| h)
    }

    /// Output length `u` in bytes.
    pub(super) fn output_len(self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha224 => 28,
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// Input block length `v` in bytes.
    fn block_len(self) -> usize {
        match self {
            Hash::Sha1 | Hash::Sha224 | Hash::Sha256 => 64,
            Hash::Sha384 | Hash::Sha512 => 128,
        }
    }

    fn digest(self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            Zeroizing::new(h.finalize().to_vec())
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(parts),
            Hash::Sha224 => run::<sha2::Sha224>(parts),
            Hash::Sha256 => run::<sha2::Sha256>(parts),
            Hash::Sha384 => run::<sha2::Sha384>(parts),
            Hash::Sha512 => run::<sha2::Sha512>(parts),
        }
    }

    /// True if `tag` is HMAC-`self`(`key`, `data`), compared in constant time.
    pub(super) fn hmac_verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn run<D: hmac::EagerHash>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            use hmac::{KeyInit as _, Mac as _};
            match hmac::Hmac::<D>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            Hash::Sha1 => run::<sha1::Sha1>(key, data, tag),
            Hash::Sha224 => run::<sha2::Sha224>(key, data, tag),
            Hash::Sha256 => run::<sha2::Sha256>(key, data, tag),
            Hash::Sha384 => run::<sha2::Sha384>(key, data, tag),
            Hash::Sha512 => run::<sha2::Sha512>(key, data, tag),
        }
    }
}

/// The PKCS#12 key derivation (RFC 7292 appendix B.2): `id` 1 = key, 2 = IV, 3 = MAC key.
///
/// ```text
/// D = id repeated v times;  S = salt repeated to a multiple of v;  P = password likewise;  I = S ‖ P
/// for each output block: A = H^iterations(D ‖ I);  B = A repeated to v bytes;
///                        each v-byte block Ij of I := (Ij + B + 1) mod 2^(8v)
/// output = A1 ‖ A2 ‖ … truncated to n bytes
/// ```
///
/// The caller has checked `iterations` against [`MAX_ITERATIONS`].
pub(super) fn pkcs12_kdf(
    hash: Hash,
    password: &[u8],
    salt: &[u8],
    id: u8,
    iterations: u64,
    n: usize,
) -> Zeroizing<Vec<u8>> {
    let (u, v) = (hash.output_len(), hash.block_len());
    let repeat = |src: &[u8]| -> Zeroizing<Vec<u8>> {
        let len = v * src.len().div_ceil(v);
        Zeroizing::new(src.iter().copied().cycle().take(len).collect())
    };
    let d = vec![id; v];
    let (s, p) = (repeat(salt), repeat(password));
    // Sized up front: a growing Vec would leave unzeroized copies of the password behind.
    let mut i = Zeroizing::new(Vec::with_capacity(s.len() + p.len()));
    i.extend_from_slice(&s);
    i.extend_from_slice(&p);
    let mut out = Zeroizing::new(Vec::with_capacity(n + u));
    while out.len() < n {
        let mut a = hash.digest(&[&d, &i]);
        for _ in 1..iterations {
            a = hash.digest(&[&a]);
        }
        out.extend_from_slice(&a);
        if out.len() >= n {
            break;
        }
        let b: Zeroizing<Vec<u8>> = Zeroizing::new(a.iter().copied().cycle().take(v).collect());
        for block in i.chunks_mut(v) {
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().zip(b.iter()).rev() {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

/// Reads the `SEQUENCE { algorithm, OCTET STRING }` shape shared by `EncryptedPrivateKeyInfo`.
pub(super) fn encrypted_private_key_info<'a>(
    ctx: &Ctx<'_>,
    der: &'a [u8],
) -> Result<(Tlv<'a>, &'a [u8]), Error> {
    (|| {
        let outer = asn1::single(der, asn1::SEQUENCE, "EncryptedPrivateKeyInfo")?;
        let mut r = outer.reader();
        let alg = r.expect(asn1::SEQUENCE, "encryptionAlgorithm")?;
        let data = r.expect(asn1::OCTET_STRING, "encryptedData")?.value;
        r.finish("EncryptedPrivateKeyInfo")?;
        Ok((alg, data))
    })()
    .map_err(|e: asn1::Asn1Error| ctx.malformed_msg(e.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    /// Vectors from openssl's independent implementation, which takes the password bytes as given
    /// (here the BMPString `Password` makes):
    /// `openssl kdf -keylen 24 -kdfopt digest:SHA1 -kdfopt hexpass:00610000 -kdfopt salt:salt
    /// -kdfopt iter:2 -kdfopt id:1 PKCS12KDF`, and likewise with SHA256, id 3, 2048 iterations.
    #[test]
    fn pkcs12_kdf_matches_openssl() {
        let a = Password::new(Secret::new("a".into()));
        assert_eq!(
            hex::encode(pkcs12_kdf(Hash::Sha1, a.bmp(), b"salt", 1, 2, 24)),
            "961b85cb03bbcc379dba1384efcc18e455b4b1a67f1d49a5"
        );
        let p = Password::new(Secret::new("correct-horse".into()));
        assert_eq!(
            hex::encode(pkcs12_kdf(
                Hash::Sha256,
                p.bmp(),
                &[1, 2, 3, 4, 5, 6, 7, 8],
                3,
                2048,
                24
            )),
            "91d42aca4e0f52b352e88b438854d2ccc75f760394b09820"
        );
    }

    #[test]
    fn pkcs12_kdf_with_empty_inputs_is_iterated_hash_of_diversifier() {
        let got = pkcs12_kdf(Hash::Sha256, b"", b"", 3, 3, 32);
        let d = [3u8; 64];
        let a1 = sha2::Sha256::digest(d);
        let a2 = sha2::Sha256::digest(a1);
        let a3 = sha2::Sha256::digest(a2);
        assert_eq!(&got[..], &a3[..]);
    }

    #[test]
    fn pkcs12_kdf_longer_output_continues_with_modified_input() {
        let long = pkcs12_kdf(Hash::Sha1, b"\0a\0\0", b"salt", 1, 2, 24);
        let short = pkcs12_kdf(Hash::Sha1, b"\0a\0\0", b"salt", 1, 2, 20);
        assert_eq!(&long[..20], &short[..]);
        assert_eq!(long.len(), 24);
        // A different id gives unrelated output.
        assert_ne!(
            &pkcs12_kdf(Hash::Sha1, b"\0a\0\0", b"salt", 2, 2, 20)[..],
            &short[..]
        );
    }

    #[test]
    fn bmp_password_is_utf16be_with_terminator() {
        let p = Password::new(Secret::new("aé".into()));
        assert_eq!(p.bmp(), &[0x00, 0x61, 0x00, 0xe9, 0x00, 0x00]);
        assert!(p.with_empty_bmp().is_none());
        let e = Password::new(Secret::new(String::new()));
        assert_eq!(e.bmp(), &[0, 0]);
        assert_eq!(e.with_empty_bmp().map(|p| p.bmp().len()), Some(0));
    }
}
