//! `agent`: one long-running process holds the hardware identities of several named profiles and
//! hands their cached credentials to local callers over a Unix socket (`credential-process
//! --from-agent NAME`), modelled on ssh-agent and gpg-agent: the key stays open in one process, the
//! PIN is given once, callers are identified by the kernel (`SO_PEERCRED`).
//!
//! - [`paths`]: default configuration file and socket.
//! - [`config`]: the TOML file, validated exactly as the flags are.
//! - [`registry`]: the profiles, one refresher each (plus optional IMDS/container listeners).
//! - [`protocol`], [`server`], [`client`]: the socket's wire format and its two ends.
//! - [`metrics`]: the opt-in Prometheus endpoint. [`harden`]: no core dumps, no ptrace, locked memory.

pub mod client;
pub mod config;
pub mod harden;
pub mod metrics;
pub mod paths;
pub mod protocol;
pub mod registry;
pub mod server;
mod sys;

use crate::cli::Failure;
use crate::cli::args::{AgentArgs, AgentCommand};
use std::io::Write;

/// `agent`: runs the daemon, or the client subcommand given.
pub fn main(args: AgentArgs, out: &mut dyn Write) -> Result<(), Failure> {
    match args.command {
        Some(AgentCommand::Status(s)) => client::status_command(&s, out),
        None => Err(Failure::operational(anyhow::anyhow!(
            "the agent is not built yet"
        ))),
    }
}
