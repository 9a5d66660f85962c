//! Process hardening for a process holding secrets: no core dumps, no ptrace by other users, locked memory.
