//! Box editing as pure operations: picking the box under the pointer, dragging handles,
//! moving, nudging, snapping and clamping. The Annotate workspace turns pointer and keyboard
//! input into these calls and the results into store commands; nothing here knows egui.
//! [`review`] turns a verdict on what is shown into its store command.

pub mod boxes;
pub mod crop;
pub mod review;

pub use boxes::{Handle, clamp_into, drag, hit_smallest, nudge};
