//! Certificates: PEM bundles (`--certificate`, `--intermediates`, CA bundles) and DER, every
//! accessor the agent prints, and chain ordering with the parsed certificates as candidates.
//!
//! Input starting with `0x30` is a concatenation of DER certificates; anything else is a PEM bundle.
//! The first certificate is the leaf, the rest are chain candidates.
//! Properties: no panic; `build_chain` returns at most `MAX_CHAIN` certificates, each issued by the
//! one before it (the first by the leaf's issuer), none twice, neither the leaf nor a self-signed one.
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};
use rolesanywhere_agent::certs::{self, Certificate};
use rolesanywhere_fuzz::{error_text, split_der};

fuzz_target!(|data: &[u8]| {
    let parsed: Vec<Certificate> = if data.first() == Some(&0x30) {
        split_der(data)
            .into_iter()
            .filter_map(|der| match Certificate::from_der(der.to_vec()) {
                Ok(c) => Some(c),
                Err(e) => {
                    error_text(&e);
                    None
                }
            })
            .collect()
    } else {
        match certs::parse_pem_bundle(data, "fuzz.pem") {
            Ok(c) => c,
            Err(e) => {
                error_text(&e);
                return;
            }
        }
    };
    for c in &parsed {
        let _ = (
            c.der_base64(),
            c.serial_decimal(),
            c.serial_hex(),
            c.subject(),
            c.issuer(),
            c.not_before(),
            c.not_after(),
            c.version(),
            c.is_ca(),
            c.key_usage_digital_signature(),
            c.signature_algorithm_name(),
            c.has_weak_signature_hash(),
            c.public_key().kind(),
            format!("{c:?}"),
        );
    }
    let Some((leaf, candidates)) = parsed.split_first() else {
        return;
    };
    match certs::build_chain(leaf, candidates.to_vec()) {
        Ok(chain) => {
            assert!(chain.len() <= certs::MAX_CHAIN);
            let mut child = leaf;
            for (i, c) in chain.iter().enumerate() {
                assert!(
                    child.is_issued_by(c),
                    "chain[{i}] did not issue the one below it"
                );
                assert!(
                    c != leaf && !c.is_self_signed(),
                    "chain[{i}] is the leaf or a root"
                );
                assert!(!chain[..i].contains(c), "chain[{i}] repeats");
                child = c;
            }
        }
        Err(e) => {
            error_text(&e);
        }
    }
});

// DER-aware mutation (rolesanywhere_fuzz::der_mutate) half the time, libFuzzer's own otherwise.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    rolesanywhere_fuzz::der_mutate(data, size, max_size, seed)
});
