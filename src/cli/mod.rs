//! The command-line front: raw clap arguments, validated settings, commands and exit codes.
//!
//! STUB: filled by the core work (issue 2).

/// Runs the program with `args`; returns the process exit code (0, 1 operational, 2 usage).
pub fn run(args: Vec<std::ffi::OsString>) -> i32 {
    let _ = args;
    2
}
