//! The agent's client side: one request over the socket, for `credential-process --from-agent` and `agent status`.

use crate::cli::Failure;
use crate::cli::args::AgentStatusArgs;
use std::io::Write;

/// `agent status`: asks the agent on the socket for its report and prints it.
pub fn status_command(_args: &AgentStatusArgs, _out: &mut dyn Write) -> Result<(), Failure> {
    Err(Failure::operational(anyhow::anyhow!(
        "agent status is not built yet"
    )))
}
