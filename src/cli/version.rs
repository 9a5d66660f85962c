//! What `version` and `--version` print: the package version first (as `aws_signing_helper version`
//! prints its own), then the git revision the binary was built from (`build.rs`) and the signing
//! backends compiled in, so a bug report names the exact build.

use std::sync::OnceLock;

/// The signing backends in this build: key files and PKCS#11 always, the TPM with the `tpm` feature.
pub const BACKENDS: &[&str] = &[
    "file",
    "pkcs11",
    #[cfg(feature = "tpm")]
    "tpm",
];

/// The revision `build.rs` found: 12 hex digits with `-dirty` when the tree differed from the commit,
/// `RA_BUILD_REVISION` as given, or `unknown`.
pub const REVISION: &str = env!("RA_REVISION");

/// `0.1.0 (revision 1f8de9d1a2b3; backends: file, pkcs11, tpm)`.
pub fn text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (revision {REVISION}; backends: {})",
            env!("CARGO_PKG_VERSION"),
            BACKENDS.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_text_starts_with_the_version_and_lists_the_backends() {
        let text = text();
        assert!(
            text.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (revision ")),
            "{text}"
        );
        assert_eq!(
            text.ends_with("backends: file, pkcs11, tpm)"),
            cfg!(feature = "tpm"),
            "{text}"
        );
        assert!(text.contains("backends: file, pkcs11"), "{text}");
    }

    #[test]
    fn revision_is_a_short_hash_or_unknown() {
        if option_env!("RA_BUILD_REVISION").is_some() {
            return; // a packager's override is taken as given (build.rs checks its characters)
        }
        let hash = REVISION.strip_suffix("-dirty").unwrap_or(REVISION);
        assert!(
            REVISION == "unknown"
                || (hash.len() == 12 && hash.bytes().all(|b| b.is_ascii_hexdigit())),
            "{REVISION}"
        );
    }
}
