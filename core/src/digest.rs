//! The digest handed to signing backends: the only way a backend ever sees data to sign.
//!
//! Its only constructors hash the message themselves, and there is none that takes digest bytes, so a
//! backend can never be handed a raw message, nor bytes that merely claim to be a hash (and hardware
//! never signs anything but a digest). See ADR 0001.

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// A hash algorithm a [`Digest`] was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    /// SHA-256 (every CreateSession signature, for every key type and curve).
    Sha256,
    /// SHA-384 (only `sign-string --digest SHA384`).
    Sha384,
    /// SHA-512 (only `sign-string --digest SHA512`).
    Sha512,
}

impl HashAlg {
    /// Length of the digest in bytes.
    // A hash algorithm is never "empty"; `len` is the established name for a digest size.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
            HashAlg::Sha512 => 64,
        }
    }

    /// Name as used on the command line and in `supportedAlgorithms` (`SHA256`, …).
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha256 => "SHA256",
            HashAlg::Sha384 => "SHA384",
            HashAlg::Sha512 => "SHA512",
        }
    }
}

/// A message digest, only ever made by hashing the message itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Digest {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Digest {
    /// Hashes `message` with `alg`. The core calls it for what it signs; outside the core, only code
    /// that signs a structure it built itself (a CSR) and backend tests do.
    pub fn compute(alg: HashAlg, message: &[u8]) -> Self {
        let bytes = match alg {
            HashAlg::Sha256 => Sha256::digest(message).to_vec(),
            HashAlg::Sha384 => Sha384::digest(message).to_vec(),
            HashAlg::Sha512 => Sha512::digest(message).to_vec(),
        };
        Digest { alg, bytes }
    }

    /// SHA-256 of `message`.
    pub fn sha256(message: &[u8]) -> Self {
        Self::compute(HashAlg::Sha256, message)
    }

    /// The algorithm the digest was made with.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// The digest bytes (32, 48 or 64 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({:?}, {})", self.alg, hex::encode(&self.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lengths_match_algorithm() {
        for alg in [HashAlg::Sha256, HashAlg::Sha384, HashAlg::Sha512] {
            assert_eq!(Digest::compute(alg, b"abc").as_bytes().len(), alg.len());
        }
        assert_eq!(
            hex::encode(Digest::sha256(b"abc").as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
