//! SoftHSM-backed tests of the backend (filled below).
