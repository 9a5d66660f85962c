//! The agent's configuration file (TOML): profiles, socket, metrics; validated like the flags.
