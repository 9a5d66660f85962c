//! TPM enrollment: key creation under the SRK or a persistent parent.

use super::target::Target;
use super::{Error, KeygenArgs};
use crate::keys::PublicKey;

/// Creates a key in the TPM for `target` (a new key file or a persistent handle).
pub fn generate(target: &Target, args: &KeygenArgs) -> Result<PublicKey, Error> {
    let _ = (target, args);
    Err(crate::signer::tpm::Error::Todo.into())
}
