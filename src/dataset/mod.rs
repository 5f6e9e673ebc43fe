//! The annotation domain: images, regions (boxes), questions, categories and review verdicts.
//!
//! Owns the plain data types that the store persists and every workspace shows, and (in
//! [`rules`]) the rules that decide whether a piece of data is acceptable. Nothing here does
//! I/O except [`ImageId::of_file`], which hashes a file's bytes.

pub mod category;
pub mod image;
pub mod question;
pub mod region;
pub mod review;
pub mod rules;

pub use category::Category;
pub use image::{ImageId, ImageRecord, ImageStatus};
pub use question::{Answer, Question, QuestionId};
pub use region::{Region, RegionId};
pub use review::{REJECT_REASONS, Review, ReviewTarget, Verdict};
pub use rules::{RuleError, RuleWarning};
