//! A private swtpm per test on free loopback TCP ports, killed (only it) on drop.
//!
//! Placeholder: filled by the TPM work (issue 4).
