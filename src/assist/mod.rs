//! Assisted boxing: a rough box or a click becomes a tight box. Owns the weight-free snap
//! (`snap`: the object's edges found against its background, at native resolution), the
//! weight-free click (`click`), Segment Anything (`sam`), box
//! proposals from the VLM on tiles of the image (`find`), and the reading of a window of
//! original pixels (`window`); `assistant` holds one session of them for the app and the CLI.
//! No egui here.

pub mod assistant;
pub mod click;
pub mod find;
pub mod quality;
pub mod sam;
pub mod sam_decoder;
pub mod snap;
pub mod window;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum AssistError {
    #[error("{0}")]
    Image(#[from] crate::imagery::ImageError),
    #[error("the box {0} is not on the image ({1})")]
    Outside(String, String),
    #[error("the window of {0} pixels is over the budget of {1}")]
    TooLarge(u64, u64),
    #[error("nothing stands out from the background inside the box")]
    NothingFound,
    #[error("nothing found: SAM's mask is empty there")]
    EmptyMask,
    #[error("a tile could not be written for the model: {0}")]
    Scratch(String),
    #[error("{0}")]
    Model(String),
}
