//! The app driven through its accessibility tree, one module per workspace (the shell, Annotate,
//! Inspect, Run, team mode), sharing the helpers in `common`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod annotate;
mod assist;
#[path = "../support/chat.rs"]
mod chat;
mod common;
mod inspect;
mod run;
mod shell;
mod team;
