//! The agent's Unix socket: bind with private modes, systemd activation, peer credentials, accept loop.
