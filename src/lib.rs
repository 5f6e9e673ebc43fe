//! thyme-studio: a workbench for "thinking with images" vision agents.
//!
//! Core modules, none of which imports egui:
//! - [`geometry`]: image coordinates, rectangles, sizes.
//! - [`dataset`]: images, boxes, questions, categories, review verdicts and their rules.
//! - [`store`]: the project file (SQLite) and the team server's tables (PostgreSQL), every edit
//!   a journaled command.
//! - [`imagery`]: decoding under a pixel budget, tile pyramids, thumbnails, the model's view.
//! - [`import`]: adding image files to a project.
//! - [`annotate`]: box editing and review as pure operations.
//! - [`exchange`]: exports for trainers and evaluators, and imports of existing annotations.
//! - [`agent`]: Thyme's loop of model text and sandboxed code, its prompts and policies.
//! - [`sandbox`]: model-written Python in a confined CPython worker.
//! - [`model`]: the on-device Qwen2.5-VL on candle.
//! - [`trace`]: agent traces, readers of other agents' logs, lints, crop provenance.
//! - [`team`]: team mode (members, batches, review, sync, quality report).
//! - [`demo`]: the built-in demo project.
//! - [`bench`]: measurements against named peers.
//! - [`paths`], [`rng`], [`base64`]: where files go, a seeded generator, data URLs.
//!
//! [`app`] (the workspaces, windows, the project session and the app's commands) and [`ui`]
//! (widgets: canvas, lists, forms) are a thin egui layer over them; every job also has a
//! headless subcommand, one file each under `src/cli/`.

pub mod agent;
pub mod annotate;
pub mod app;
pub mod assist;
pub mod base64;
pub mod bench;
pub mod curate;
pub mod dataset;
pub mod demo;
pub mod exchange;
pub mod geometry;
pub mod imagery;
pub mod import;
pub mod model;
pub mod paths;
pub mod rng;
pub mod sandbox;
pub mod store;
pub mod team;
pub mod trace;
pub mod ui;
