//! The agent side of Thyme's contract that does not need a model: prompt profiles (what the
//! model is told and how a question is put to it). The step machine and the policies join
//! this module with the agent-loop work.

pub mod profile;

pub use profile::{ProfileError, PromptProfile};
