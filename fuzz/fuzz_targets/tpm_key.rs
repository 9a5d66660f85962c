//! `TSS2 PRIVATE KEY` DER (the `TPMKey` structure) straight into the decoder, then the TPM backend's
//! checks of the public area and policy (everything before the first TPM command).
//!
//! Properties: no panic; a key that decodes encodes back to the same key (`fuzzing::tpm_key_der`
//! asserts it).
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use rolesanywhere_agent::fuzzing;
use rolesanywhere_fuzz::error_text;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzzing::tpm_key_der(data) {
        error_text(&*e);
    }
});

// DER-aware mutation (rolesanywhere_fuzz::der_mutate) half the time, libFuzzer's own otherwise.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rolesanywhere_fuzz::der_mutate(data, size, max_size, seed)
});
