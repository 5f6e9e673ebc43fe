//! thyme-studio: a workbench for "thinking with images" vision agents.
//!
//! The core modules ([`geometry`], [`dataset`], [`store`], [`imagery`], [`import`], [`demo`])
//! know nothing of the UI; [`app`] and [`ui`] are a thin egui layer over them, and every job
//! also has a headless CLI subcommand (see `main.rs`).

pub mod agent;
pub mod annotate;
pub mod app;
pub mod base64;
pub mod bench;
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
