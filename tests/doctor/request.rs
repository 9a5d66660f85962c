//! doctor: tests of the request check(s).

#[allow(unused_imports)]
use crate::common::*;
