//! A private SoftHSM2 per test: its own configuration and token directory in a temp dir.
//!
//! Placeholder: filled by the PKCS#11 work (issue 3).
