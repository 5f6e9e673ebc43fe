//! Benchmarks that measure thyme-studio against named peers in the same run
//! (`thyme-studio bench ...`); the figures go into the README's performance section.

pub mod agent;
pub mod annotate;
pub mod audit;
pub mod canvas;
pub mod exchange;
pub mod images;
pub mod model;
pub mod paging;
pub mod sandbox;
pub mod team_tls;
pub mod traces;
