//! The agent: Thyme's loop of model text, code run in the sandbox, and results spliced back.
//! Owns prompt profiles (what the model is told), policies (what writes the model's text) and
//! the step machine that drives a run and records it as a trace. No egui here.

pub mod batch;
pub mod fork;
pub mod http;
pub mod local;
pub mod machine;
pub mod no_tool;
pub mod policy;
pub mod profile;
pub mod retry;
pub mod script;

pub use batch::{BadLine, BatchResult, BatchRunner, BatchSummary, BatchTask, read_tasks};
pub use fork::{Fork, ForkFrom};
pub use http::{Http, HttpSettings};
pub use local::Local;
pub use machine::{Agent, Decoding, Event, Mode, Sampled, Settings, State, Task, no_tool_request};
pub use no_tool::run_without_tools;
pub use policy::{Manual, Origin, Policy, PolicyError, Replay, Request, Segment};
pub use profile::{ProfileError, PromptProfile};
pub use retry::{Backoff, Retrying};
