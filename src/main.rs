//! The `thyme-studio` command: the GUI when given nothing, a subcommand for every headless job
//! (one file each under `src/cli/`).
//!
//! Exit codes: 0 ok, 1 a user error (one-line message naming the file), 2 an internal error.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // Printing into a closed pipe (`thyme-studio trace show ... | head`) ends the process
    // quietly, as other command-line tools do, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    cli::Cli::parse().run()
}
