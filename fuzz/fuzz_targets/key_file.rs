//! Key files as `--private-key FILE` reads them: format detection, PKCS#1, SEC1, PKCS#8, encrypted
//! PKCS#8 and PKCS#12 (password `fuzzing::KEY_PASSWORD`), `TSS2 PRIVATE KEY` up to the first TPM
//! command; a loaded key signs once.
//!
//! Properties: no panic; no error text (Display chain or Debug) contains the password.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use rolesanywhere_agent::fuzzing;
use rolesanywhere_fuzz::error_text;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzzing::key_file(data) {
        let text = error_text(&*e);
        assert!(
            !text.contains(fuzzing::KEY_PASSWORD),
            "the password reached an error: {text}"
        );
    }
});

// DER-aware mutation (rolesanywhere_fuzz::der_mutate) half the time, libFuzzer's own otherwise.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rolesanywhere_fuzz::der_mutate(data, size, max_size, seed)
});
