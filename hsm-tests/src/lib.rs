//! Shared helpers for the hardware-simulator tests.
