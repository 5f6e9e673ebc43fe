//! Subcommands written one file each (clap derive): a `XCommand` struct with `run`. The rest
//! of the command line still lives in `main.rs`, `model_cli.rs` and `team_cli.rs`.

pub mod review;
