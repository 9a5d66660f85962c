//! Key files: PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 and PKCS#12, PEM or DER.
//!
//! Owns turning a key file's bytes into a [`FileSigner`] (and, for PKCS#12, the certificates it
//! carries), the password for encrypted files, and signing with the key in memory. It does not read
//! the file (the dispatcher in [`identity`](crate::signer::identity) does), never logs, and never puts
//! a password or key byte into an error or `Debug` output. One file per concern:
//!
//! - `detect`: PEM labels and DER sniffing; refuses legacy `Proc-Type: 4,ENCRYPTED` PEM.
//! - `asn1`: the small strict DER reader the structure walks use.
//! - `pkcs8`: `PrivateKeyInfo` and `EncryptedPrivateKeyInfo`.
//! - `pbe`: password-based decryption (PBES2, PKCS#12 PBE), KDF limits checked before deriving.
//! - `pkcs12`: PFX walk, MAC check, bags, certificate order.
//! - `sign`: the key types, size and curve policy, and prehash signing.
//! - `mldsa`: ML-DSA keys in PKCS#8 (seed-only and seed-and-expanded-key forms), signing μ.
//!
//! Passwords come, in this order, from `--pkcs8-password`, `--pkcs8-password-file`, the
//! `ROLESANYWHERE_PKCS8_PASSWORD` environment variable, and a prompt only when stdin is a terminal.
//! A wrong password is reported once; there is no retry.

mod detect;
mod mldsa;
mod pbe;
mod pkcs12;
mod pkcs8;
mod sign;

use crate::keys::PublicKey;
use crate::secret::{self, Secret, Source};
use crate::signer::{KeyOptions, Signer};
use crate::sigv4x509::Digest;
use std::cell::{Cell, OnceCell};
use std::path::{Path, PathBuf};

/// The environment variable holding the key file password.
pub const PASSWORD_ENV: &str = "ROLESANYWHERE_PKCS8_PASSWORD";

/// Key file problems. Every message names the file; none contains a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read (missing, not a regular file, too large).
    #[error("cannot read private key file {path}", path = crate::text::path(path))]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::userfile::Error,
    },
    /// The file is not in any key format we know.
    #[error(
        "private key file {path} is not a key file this program reads ({reason}); expected PEM or \
         DER PKCS#1, SEC1, PKCS#8, encrypted PKCS#8 or PKCS#12",
        path = crate::text::path(path)
    )]
    Unrecognized {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The format was recognised but the contents are damaged or inconsistent.
    #[error("cannot parse private key file {path}: {what}", path = crate::text::path(path))]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
        /// The parser's error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A PEM block that is not a private key we read.
    #[error(
        "private key file {path} holds a PEM `{label}` block, not a supported private key; {hint}",
        path = crate::text::path(path)
    )]
    UnsupportedPem {
        /// The file.
        path: PathBuf,
        /// The PEM label.
        label: String,
        /// How to fix it.
        hint: String,
    },
    /// Legacy OpenSSL PEM encryption (`Proc-Type: 4,ENCRYPTED`, MD5-based key derivation).
    #[error(
        "private key file {path} uses legacy OpenSSL PEM encryption (Proc-Type: 4,ENCRYPTED), which is \
         not supported; convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out NEW.pem`",
        path = crate::text::path(path)
    )]
    LegacyEncryptedPem {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key (only certificates or parameters).
    #[error("private key file {path} holds no private key: {what}", path = crate::text::path(path))]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What it holds instead.
        what: String,
    },
    /// The file is encrypted and no password source produced one.
    #[error(
        "private key file {path} is encrypted and no password was given; use --pkcs8-password, \
         --pkcs8-password-file or the {PASSWORD_ENV} environment variable (or run on a terminal to be asked)",
        path = crate::text::path(path)
    )]
    PasswordMissing {
        /// The file.
        path: PathBuf,
    },
    /// A password source failed (unreadable password file, terminal error).
    #[error("cannot get the password for private key file {path}", path = crate::text::path(path))]
    Password {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: secret::Error,
    },
    /// Decryption or the PKCS#12 MAC failed.
    #[error("cannot decrypt private key file {path}: wrong password or corrupt file", path = crate::text::path(path))]
    WrongPassword {
        /// The file.
        path: PathBuf,
    },
    /// A key derivation parameter above our limits (checked before deriving anything).
    #[error(
        "private key file {path} asks for {parameter} {value}, above this program's limit of {limit}; \
         re-encrypt the key with default parameters (`openssl pkcs8 -topk8 -v2 aes-256-cbc`)",
        path = crate::text::path(path)
    )]
    KdfLimit {
        /// The file.
        path: PathBuf,
        /// The parameter (`PBKDF2 iteration count`, `scrypt cost N`, …).
        parameter: &'static str,
        /// Its value in the file.
        value: u64,
        /// Our limit.
        limit: u64,
    },
    /// The key derivations of the whole file cost more than this program's budget per file (checked
    /// before any derivation the count covers: the MAC and every item not itself inside encrypted
    /// content; an item found inside is charged before its own derivation).
    #[error(
        "private key file {path} needs {total} key-derivation iterations in all, above this \
         program's limit of {limit} per file; re-export it with default parameters (`openssl \
         pkcs12 -export`, or `openssl pkcs8 -topk8 -v2 aes-256-cbc` for a key file)"
    )]
    KdfBudget {
        /// The file.
        path: PathBuf,
        /// The iterations the file asks for so far (PBKDF2 and PKCS#12 KDF iterations per derived
        /// hash block; scrypt counts N·r·p).
        total: u64,
        /// Our budget.
        limit: u64,
    },
    /// An encryption, KDF or MAC algorithm we do not implement.
    #[error(
        "private key file {path} uses {algorithm}, which is not supported; convert it (\"Converting\" \
         in docs/backends/file.md): a PKCS#8 key with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in FILE \
         -out key.enc.pem`, a PKCS#12 file by extracting its key and certificates with `openssl \
         pkcs12 -in FILE -nocerts -out key.pem` and `openssl pkcs12 -in FILE -nokeys -out cert.pem`",
        path = crate::text::path(path)
    )]
    UnsupportedAlgorithm {
        /// The file.
        path: PathBuf,
        /// The algorithm.
        algorithm: String,
    },
    /// An RSA key outside 2048–4096 bits.
    #[error(
        "private key file {path} holds an RSA-{bits} key; keys must have 2048 to 4096 bits \
         (make one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`)",
        path = crate::text::path(path)
    )]
    RsaKeySize {
        /// The file.
        path: PathBuf,
        /// The modulus size.
        bits: usize,
    },
    /// A key type or curve Roles Anywhere does not accept.
    #[error(
        "private key file {path} holds {} {what} key, which is not supported \
         (supported: RSA 2048-4096, EC P-256, P-384, P-521, ML-DSA-44, ML-DSA-65, ML-DSA-87)",
        article(.what),
        path = crate::text::path(path)
    )]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// The key type.
        what: String,
    },
    /// The signing operation failed.
    #[error("cannot sign with private key {path}", path = crate::text::path(path))]
    Sign {
        /// The file.
        path: PathBuf,
        /// The library's failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A private key held in memory (zeroized on drop).
pub struct FileSigner {
    public: PublicKey,
    path: PathBuf,
    key: sign::PrivateKey,
}

impl std::fmt::Debug for FileSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSigner")
            .field("path", &self.path)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A loaded key file: the signer and, for PKCS#12, the certificates it carried (DER, leaf first).
pub struct FileKey {
    /// The key.
    pub signer: FileSigner,
    /// Certificates found in the file (PKCS#12 only), leaf first.
    pub certificates: Vec<Vec<u8>>,
}

/// Parses a key file's contents (`path` is for messages; passwords come from `opts`).
pub fn open(data: &[u8], path: &Path, opts: &KeyOptions) -> Result<FileKey, Error> {
    open_with(
        data,
        &Ctx::new(
            path,
            opts,
            PasswordPolicy {
                env: PASSWORD_ENV,
                prompt: true,
            },
        ),
    )
}

fn open_with(data: &[u8], ctx: &Ctx<'_>) -> Result<FileKey, Error> {
    use detect::Encoded;
    let (key, certificates) = match detect::detect(ctx, data)? {
        Encoded::Pkcs1(der) => (sign::PrivateKey::from_pkcs1(ctx, &der)?, Vec::new()),
        Encoded::Sec1(der) => (sign::PrivateKey::from_sec1(ctx, &der, None)?, Vec::new()),
        Encoded::Pkcs8(der) => (pkcs8::parse(ctx, &der)?, Vec::new()),
        Encoded::EncryptedPkcs8(der) => (pkcs8::decrypt(ctx, &der)?, Vec::new()),
        Encoded::Pkcs12(der) => {
            let opened = pkcs12::open(ctx, &der)?;
            (opened.key, opened.certificates)
        }
    };
    let public = ctx.public_key(&key)?;
    Ok(FileKey {
        signer: FileSigner {
            public,
            path: ctx.path.into(),
            key,
        },
        certificates,
    })
}

impl Signer for FileSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, digest: &Digest) -> Result<Vec<u8>, crate::signer::SignError> {
        self.key.sign(digest).map_err(|e| {
            crate::signer::Error::from(Error::Sign {
                path: self.path.clone(),
                source: Box::new(e),
            })
            .into()
        })
    }
    fn sign_ml_dsa_mu(
        &self,
        mu: &rolesanywhere_core::MlDsaMu,
    ) -> Result<Vec<u8>, crate::signer::SignError> {
        self.key.sign_ml_dsa_mu(mu).map_err(|e| {
            crate::signer::Error::from(Error::Sign {
                path: self.path.clone(),
                source: Box::new(e),
            })
            .into()
        })
    }
    fn describe(&self) -> String {
        crate::text::path(&self.path)
    }
}

/// Where passwords may come from besides the options (tests turn the environment and prompt off).
struct PasswordPolicy {
    env: &'static str,
    prompt: bool,
}

/// What parsing needs: the file name for messages, the password (resolved at most once) and the
/// key-derivation work spent so far on this file.
struct Ctx<'a> {
    path: &'a Path,
    opts: &'a KeyOptions,
    policy: PasswordPolicy,
    password: OnceCell<pbe::Password>,
    kdf_spent: Cell<u64>,
}

impl<'a> Ctx<'a> {
    fn new(path: &'a Path, opts: &'a KeyOptions, policy: PasswordPolicy) -> Ctx<'a> {
        Ctx {
            path,
            opts,
            policy,
            password: OnceCell::new(),
            kdf_spent: Cell::new(0),
        }
    }

    /// Fails with [`Error::KdfBudget`] unless `planned` more iterations (see
    /// [`pbe::MAX_FILE_KDF_ITERATIONS`]) fit in what is left of the file's budget.
    fn check_kdf_budget(&self, planned: u64) -> Result<(), Error> {
        let total = self.kdf_spent.get().saturating_add(planned);
        if total > pbe::MAX_FILE_KDF_ITERATIONS {
            return Err(Error::KdfBudget {
                path: self.path.into(),
                total,
                limit: pbe::MAX_FILE_KDF_ITERATIONS,
            });
        }
        Ok(())
    }

    /// Charges a derivation of `cost` iterations to the file's budget, before it is made.
    fn charge_kdf(&self, cost: u64) -> Result<(), Error> {
        self.check_kdf_budget(cost)?;
        self.kdf_spent.set(self.kdf_spent.get() + cost);
        Ok(())
    }

    /// The password sources in priority order.
    fn password_sources(&self) -> Vec<Source> {
        let mut sources = Vec::new();
        if let Some(p) = &self.opts.pkcs8_password {
            sources.push(Source::Value(p.clone()));
        }
        if let Some(f) = &self.opts.pkcs8_password_file {
            sources.push(Source::File(f.clone()));
        }
        sources.push(Source::Env(self.policy.env.into()));
        if self.policy.prompt {
            sources.push(Source::Prompt(format!(
                "Password for {}: ",
                crate::text::path(self.path)
            )));
        }
        sources
    }

    /// The password, asked for (or read) the first time it is needed.
    fn password(&self) -> Result<&pbe::Password, Error> {
        if let Some(p) = self.password.get() {
            return Ok(p);
        }
        let secret: Secret = secret::resolve(
            &self.password_sources(),
            "private key password",
            "use --pkcs8-password-file",
        )
        .map_err(|e| match e {
            secret::Error::Missing { .. } => Error::PasswordMissing {
                path: self.path.into(),
            },
            source => Error::Password {
                path: self.path.into(),
                source,
            },
        })?;
        Ok(self.password.get_or_init(|| pbe::Password::new(secret)))
    }

    fn public_key(&self, key: &sign::PrivateKey) -> Result<PublicKey, Error> {
        key.public_key()
            .map_err(|e| self.malformed("the public key cannot be derived", e))
    }

    fn unrecognized(&self, reason: &str) -> Error {
        Error::Unrecognized {
            path: self.path.into(),
            reason: reason.into(),
        }
    }

    fn malformed(
        &self,
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Error {
        Error::Malformed {
            path: self.path.into(),
            what: what.into(),
            source: Some(Box::new(source)),
        }
    }

    fn malformed_msg(&self, what: impl Into<String>) -> Error {
        Error::Malformed {
            path: self.path.into(),
            what: what.into(),
            source: None,
        }
    }

    fn wrong_password(&self) -> Error {
        Error::WrongPassword {
            path: self.path.into(),
        }
    }

    fn kdf_limit(&self, parameter: &'static str, value: u64, limit: u64) -> Error {
        Error::KdfLimit {
            path: self.path.into(),
            parameter,
            value,
            limit,
        }
    }

    fn unsupported_algorithm(&self, algorithm: &str) -> Error {
        Error::UnsupportedAlgorithm {
            path: self.path.into(),
            algorithm: algorithm.into(),
        }
    }

    fn unsupported_key(&self, what: &str) -> Error {
        Error::UnsupportedKey {
            path: self.path.into(),
            what: what.into(),
        }
    }
}

/// "a" or "an" before a key type, by how it is said: a vowel ("an Ed25519"), or an initialism whose
/// first letter is said with a vowel sound ("an EC …", "an RSA-PSS …", "an SM2", "an X25519"), else
/// "a" ("a DSA").
fn article(word: &str) -> &'static str {
    let mut chars = word.chars();
    let first = chars.next().unwrap_or(' ');
    let initialism = first.is_ascii_uppercase()
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
    if "AEIOUaeiou".contains(first) || (initialism && "FHLMNRSX".contains(first)) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests;

/// Helpers shared by the backend's test modules.
#[cfg(test)]
mod tests_support {
    use super::{Ctx, Error, FileKey, PasswordPolicy, open_with};
    use crate::signer::KeyOptions;
    use std::path::Path;

    /// Loads DER key bytes as if from `key.der`, without environment or prompt.
    pub(super) fn load_der(data: &[u8]) -> Result<FileKey, Error> {
        let opts = KeyOptions::default();
        let ctx = Ctx::new(
            Path::new("key.der"),
            &opts,
            PasswordPolicy {
                env: "ROLESANYWHERE_TEST_UNSET_PASSWORD",
                prompt: false,
            },
        );
        open_with(data, &ctx)
    }

    /// A DER TLV (definite length).
    pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        rolesanywhere_core::encoding::der_tlv(tag, content)
    }
}
