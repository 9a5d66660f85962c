//! `rolesanywhere-agent`: a drop-in replacement for `aws_signing_helper`.
//!
//! Carries no TPM backend, so that no libtss2 or libcrypto is loaded at its start: a command that
//! needs a TPM key is run by `rolesanywhere-agent-tpm` (src/main_tpm.rs) in its place
//! (`cli::companion`; ADR 0002, "libtss2 only for a TPM key").

use rolesanywhere_agent::signer::backends::Backends;

fn main() {
    let code = rolesanywhere_agent::cli::run(std::env::args_os().collect(), Backends::NONE);
    std::process::exit(code);
}
