//! The command line: one file per subcommand (clap derive), each an `XCommand` with
//! `run(self) -> Result<(), Failure>`, and one error type that says whose fault a failure is.
//!
//! Exit codes: 0 ok, 1 a user error (a one-line message naming the file or the argument),
//! 2 an internal error (the database, the disk, a model computation failed under us).

pub mod args;
pub mod assist;
pub mod bench;
pub mod cache;
pub mod curate;
pub mod demo;
pub mod export;
pub mod import;
pub mod import_data;
pub mod inspect;
pub mod model;
pub mod new;
pub mod open;
pub mod output;
pub mod review;
pub mod run;
pub mod sandbox;
pub mod sandbox_launch;
pub mod stats;
pub mod team;
pub mod trace;
pub mod trace_audit;

use std::process::ExitCode;

use clap::Parser;
use thyme_studio::exchange::ExchangeError;
use thyme_studio::model::ModelError;
use thyme_studio::store::StoreError;
use thyme_studio::team::server::TeamError;

#[derive(Parser)]
#[command(
    name = "thyme-studio",
    version,
    about = "Annotate small objects on huge images, inspect and run code-as-tool vision agents",
    long_about = "With no subcommand, opens the app on the built-in demo project (created on first run)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Open a project in the app.
    Open(open::OpenCommand),
    /// Open the app's Inspect workspace on an agent trace or log.
    Inspect(inspect::InspectCommand),
    /// Run the agent loop on an image and a question, printing each step, writing the trace.
    Run(Box<run::RunCommand>),
    /// On-device models: describe a model folder, check that it loads and writes, write a
    /// tiny random-weight one.
    Model {
        #[command(subcommand)]
        which: model::ModelCommand,
    },
    /// Team mode on a PostgreSQL server: members, batches, sync, review, quality report, soak.
    Team {
        #[command(subcommand)]
        which: team::TeamCommand,
    },
    /// Agent traces: convert logs to our format, show a run, list its flags, search.
    Trace {
        #[command(subcommand)]
        which: trace::TraceCommand,
        /// Where the log's images are, when not beside it (paths the log gives relative to
        /// its folder, or just file names, are looked for here).
        #[arg(long, global = true)]
        images: Option<std::path::PathBuf>,
    },
    /// Create a new, empty project file.
    New(new::NewCommand),
    /// Add images (files or folders, searched recursively) to a project.
    Import(import::ImportCommand),
    /// Write the project's annotations in a format trainers and evaluators read.
    Export(Box<export::ExportCommand>),
    /// Read existing annotations (COCO, canonical JSONL, Thyme RL or SFT JSONL) into a project.
    ImportData(import_data::ImportDataCommand),
    /// The Python sandbox: set up its runtime, check it, run code in it.
    Sandbox {
        #[command(subcommand)]
        which: sandbox::SandboxCommand,
    },
    /// Internal: apply the sandbox confinement, then become the worker.
    #[command(hide = true)]
    SandboxLaunch(sandbox_launch::SandboxLaunchCommand),
    /// Verdicts: list them, or accept, reject or withdraw one on an image, box or question.
    Review(review::ReviewCommand),
    /// Count images, boxes and questions of a project.
    Stats(stats::StatsCommand),
    /// Measure against named peers (see the README's performance section).
    Bench {
        #[command(subcommand)]
        which: bench::BenchCommand,
    },
    /// The difficulty check of QA items (tries with and without tools), its rates and flags.
    Curate {
        #[command(subcommand)]
        which: curate::CurateCommand,
    },
    /// Assisted boxing: snap a rough box to the object inside it.
    Assist {
        #[command(subcommand)]
        which: assist::AssistCommand,
    },
    /// Write the demo project into a folder.
    Demo(demo::DemoCommand),
    /// The tile cache: its size and budget, clearing it.
    Cache {
        #[command(subcommand)]
        which: cache::CacheCommand,
    },
}

impl Cli {
    /// Run the command (the app when none is given) and say how the process should exit.
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            None => thyme_studio::app::run(None).map_err(Failure::Internal),
            Some(cmd) => cmd.run(),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(Failure::User(e)) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
            Err(Failure::Internal(e)) => {
                eprintln!("internal error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}

impl Cmd {
    fn run(self) -> Result<(), Failure> {
        match self {
            Cmd::Open(c) => c.run(),
            Cmd::Inspect(c) => c.run(),
            Cmd::Run(c) => c.run(),
            Cmd::Model { which } => which.run(),
            Cmd::Team { which } => which.run(),
            Cmd::Trace { which, images } => which.run(images.as_deref()),
            Cmd::New(c) => c.run(),
            Cmd::Import(c) => c.run(),
            Cmd::Export(c) => c.run(),
            Cmd::ImportData(c) => c.run(),
            Cmd::Sandbox { which } => which.run(),
            Cmd::SandboxLaunch(c) => c.run(),
            Cmd::Review(c) => c.run().map_err(Failure::from),
            Cmd::Stats(c) => c.run(),
            Cmd::Bench { which } => which.run(),
            Cmd::Demo(c) => c.run(),
            Cmd::Cache { which } => which.run(),
            Cmd::Curate { which } => which.run(),
            Cmd::Assist { which } => which.run(),
        }
    }
}

/// A failure, sorted by whose it is.
#[derive(Debug)]
pub enum Failure {
    /// Something the person can fix: a path, an argument, a file's content.
    User(anyhow::Error),
    /// Something broke under us.
    Internal(anyhow::Error),
}

impl Failure {
    /// A user error with this message.
    pub fn user(message: impl std::fmt::Display) -> Self {
        Failure::User(anyhow::anyhow!("{message}"))
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        anyhow::Error::from(e).into()
    }
}

impl From<ExchangeError> for Failure {
    fn from(e: ExchangeError) -> Self {
        anyhow::Error::from(e).into()
    }
}

/// Sorted by what the error chain holds: database and disk faults and failed model
/// computations are internal; everything else (bad paths, arguments, file contents, refused
/// edits, an unreachable server) is the user's to fix.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        let internal = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<StoreError>(),
                Some(StoreError::Sqlite(_) | StoreError::Io { .. })
            ) || matches!(
                c.downcast_ref::<TeamError>(),
                Some(TeamError::Store(
                    StoreError::Sqlite(_) | StoreError::Io { .. }
                ))
            ) || matches!(c.downcast_ref::<ModelError>(), Some(ModelError::Candle(_)))
                || c.downcast_ref::<rusqlite::Error>().is_some()
                || c.downcast_ref::<candle_core::Error>().is_some()
        });
        if internal {
            Failure::Internal(e)
        } else {
            Failure::User(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_faults_are_internal_and_bad_input_is_the_users() {
        let db = StoreError::Sqlite(rusqlite::Error::InvalidQuery);
        assert!(matches!(Failure::from(db), Failure::Internal(_)));
        let wrapped = anyhow::Error::from(TeamError::Store(StoreError::Sqlite(
            rusqlite::Error::InvalidQuery,
        )))
        .context("syncing");
        assert!(matches!(Failure::from(wrapped), Failure::Internal(_)));
        let candle = ModelError::Candle(candle_core::Error::Msg("shape".into()));
        assert!(matches!(
            Failure::from(anyhow::Error::from(candle)),
            Failure::Internal(_)
        ));
        let missing = StoreError::NotFound {
            path: "x.thyme".into(),
        };
        assert!(matches!(Failure::from(missing), Failure::User(_)));
        let refused = anyhow::Error::from(TeamError::NotMember("zoe".into()));
        assert!(matches!(Failure::from(refused), Failure::User(_)));
    }
}
