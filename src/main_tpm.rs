//! `rolesanywhere-agent-tpm`: `rolesanywhere-agent` with the TPM backend, which links libtss2.
//!
//! `rolesanywhere-agent` runs it in its own place for a command that needs a TPM key
//! (`cli::companion`), with the same arguments; it can also be run directly. Having the backend, it
//! never hands a command on.

use rolesanywhere_agent::signer::backends::Backends;

fn main() {
    quiet_tss2_logging();
    let backends = Backends {
        tpm: Some(&rolesanywhere_agent::signer::tpm::BACKEND),
    };
    let code = rolesanywhere_agent::cli::run(std::env::args_os().collect(), backends);
    std::process::exit(code);
}

/// libtss2's ESYS layer prints `WARNING:esys:` lines on stderr for every TPM error response, which
/// buries our own message (which already names the TPM_RC). Silence it unless the user asked for
/// TSS2 logging themselves.
fn quiet_tss2_logging() {
    if std::env::var_os("TSS2_LOG").is_none() {
        // SAFETY: called first thing in `main`, before any thread exists, so no other thread can be
        // reading the environment concurrently.
        unsafe { std::env::set_var("TSS2_LOG", "all+none") };
    }
}
