//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`; hidden, not a stable API).
//!
//! Each function runs one of the program's parsers the way the program calls it, on bytes from the
//! fuzzer, and hands back what the program could print. It exists so that those parsers can stay
//! `pub(crate)`: the program itself never calls anything here. No file, network or device I/O.

use crate::certs::Certificate;
use crate::secret::Secret;
use crate::signer::KeyOptions;
use std::error::Error as StdError;
use std::path::Path;

/// The password offered for encrypted key files (the one `testdata/keys/make.sh` uses, so the
/// fixtures in the seed corpus decrypt and the fuzzer reaches the structures inside).
pub const KEY_PASSWORD: &str = "correct-horse-battery";

/// A boxed error, so the targets can print any module's error chain the same way.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Loads a key file as `--private-key FILE` does after reading it: a `TSS2 PRIVATE KEY` goes to the
/// TPM backend's file checks (everything before the first TPM command), anything else to the
/// key-file backend with [`KEY_PASSWORD`]. A loaded key also has its bundled certificates parsed and
/// signs the `sign-string` test message, as `credential-process` would sign a request.
pub fn key_file(data: &[u8]) -> Result<(), BoxError> {
    let path = Path::new("fuzz.key");
    if crate::signer::identity::is_tss2_pem(data) {
        #[cfg(feature = "tpm")]
        crate::signer::tpm::check_key_file(data, path)?;
        return Ok(());
    }
    let opts = KeyOptions {
        pkcs8_password: Some(Secret::new(KEY_PASSWORD.to_string())),
        ..Default::default()
    };
    let key = crate::signer::file::open(data, path, &opts)?;
    for der in key.certificates {
        Certificate::from_der(der)?;
    }
    crate::sigv4x509::sign_test_string(&key.signer, crate::sigv4x509::HashAlg::Sha256)?;
    Ok(())
}

/// Decodes a DER `TPMKey` and, when that works, checks that encoding gives the same key back (the
/// enrollment code writes what this reads) and runs the TPM backend's file checks on it as PEM.
#[cfg(feature = "tpm")]
pub fn tpm_key_der(der: &[u8]) -> Result<(), BoxError> {
    use crate::signer::tpm::TpmKeyFile;
    use base64::Engine as _;
    let kf = TpmKeyFile::from_der(der)?;
    let again = TpmKeyFile::from_der(&kf.to_der())?;
    assert!(
        again == kf,
        "TPMKey encode/decode round trip changed the key"
    );
    let pem = format!(
        "-----BEGIN TSS2 PRIVATE KEY-----\n{}\n-----END TSS2 PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der)
    );
    crate::signer::tpm::check_key_file(pem.as_bytes(), Path::new("fuzz.tss2"))?;
    Ok(())
}

/// What a parsed `pkcs11:` URI shows: its `Display`, its `Debug`, the `Display` of its token part,
/// and the PIN it carries (the one thing that must not appear in the others).
pub struct ParsedPkcs11Uri {
    /// `Display`.
    pub display: String,
    /// `Debug`.
    pub debug: String,
    /// `Display` of the URI without object attributes (how token errors name the token).
    pub token_display: String,
    /// `pin-value`, if any.
    pub pin_value: Option<Secret>,
}

/// Parses a `pkcs11:` URI as `--certificate` / `--private-key` do.
pub fn pkcs11_uri(raw: &str) -> Result<ParsedPkcs11Uri, crate::signer::pkcs11::Error> {
    let uri = crate::signer::pkcs11::uri::Pkcs11Uri::parse(raw)?;
    Ok(ParsedPkcs11Uri {
        display: uri.to_string(),
        debug: format!("{uri:?}"),
        token_display: uri.token_part().to_string(),
        pin_value: uri.pin_value().cloned(),
    })
}

/// Parses a CreateSession success body (status 200/201) as the client does.
pub fn create_session_success(
    body: &[u8],
) -> Result<crate::session::Credentials, crate::session::Error> {
    crate::session::response::parse_credentials(body)
}

/// The error the client reports for a non-success answer with this status, optional
/// `X-Amzn-ErrorType` header (skipped when not a valid header value) and body.
pub fn create_session_refusal(
    status: u16,
    error_type: Option<&[u8]>,
    body: &[u8],
) -> crate::session::Error {
    let mut headers = crate::session::http::Headers::default();
    if let Some(v) = error_type {
        headers.push("x-amzn-errortype", v);
    }
    crate::session::response::service_error(
        "https://rolesanywhere.eu-west-1.amazonaws.com/sessions".into(),
        status,
        &headers,
        body,
        1,
    )
}
