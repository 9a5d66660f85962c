//! doctor: tests of the identity check(s).

#[allow(unused_imports)]
use crate::common::*;
