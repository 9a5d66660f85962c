//! The CreateSession client: endpoint, HTTP (reqwest + rustls/ring), retries, and error hints.
//!
//! STUB: filled by the core work (issue 2).
