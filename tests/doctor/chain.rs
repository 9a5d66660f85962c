//! doctor: tests of the chain check(s).

#[allow(unused_imports)]
use crate::common::*;
