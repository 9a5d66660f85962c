//! The agent's system calls std does not wrap (peer credentials and groups).
