//! Enrollment's use of the identity root: `--private-key` as a [`KeySource`] and opening only its
//! signer (at enrollment there is no certificate yet).
//!
//! The dispatch itself is [`crate::signer::identity`]'s; this is the enroll front's adapter from its
//! device flags to [`KeyOptions`](crate::signer::KeyOptions).

use super::{DeviceArgs, Error};
use crate::signer::{self, Signer};

pub use crate::signer::identity::KeySource;

/// The signing layer's options for the key `target` with the device options `dev` (no certificate).
pub fn key_options(target: &str, dev: &DeviceArgs) -> signer::KeyOptions {
    signer::KeyOptions {
        private_key: Some(target.to_string()),
        ..dev.key_options()
    }
}

/// Opens the signer for `target` with the device options `dev` (see [`signer::open_key`]).
pub fn open_signer(target: &str, dev: &DeviceArgs) -> Result<Box<dyn Signer>, Error> {
    Ok(signer::open_key(&key_options(target, dev))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_key_file_names_the_path() {
        let e = match open_signer("/nonexistent/k.pem", &DeviceArgs::default()) {
            Err(e) => e,
            Ok(_) => panic!("opened a missing file"),
        };
        assert!(e.to_string().contains("/nonexistent/k.pem"), "{e}");
    }
}
