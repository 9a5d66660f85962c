//! The emulator library.
