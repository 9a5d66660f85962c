//! End-to-end tests of `rolesanywhere-agent doctor`: each check's passing and failing case,
//! asserting the finding's line and the exit code.

#[path = "../common/mod.rs"]
mod common;

mod chain;
mod identity;
mod policy;
mod request;
