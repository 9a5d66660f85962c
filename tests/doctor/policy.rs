//! doctor: tests of the policy check(s).

#[allow(unused_imports)]
use crate::common::*;
