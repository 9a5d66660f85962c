//! `rolesanywhere-agent`: a drop-in replacement for `aws_signing_helper`.

fn main() {
    let code = rolesanywhere_agent::cli::run(std::env::args_os().collect());
    std::process::exit(code);
}
