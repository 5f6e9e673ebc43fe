//! Team mode: many annotators and reviewers on one project held by a PostgreSQL server.
//!
//! Owns the server side of a team project (members, batches and leases, blind copies for
//! double annotation and honeypots, review states, pinned comments: `server`), the client side
//! that keeps each annotator's edits in a local journal and syncs them (`client`), where a
//! member's password is kept (`credentials`), a member's
//! headless session (a sync round, requests, the review queue: `session`), whole-image
//! states and their differences (`state`), the quality measures a lead reads (`metrics`,
//! `report`), and a throwaway local PostgreSQL for tests, trials and the soak (`cluster`).

pub mod client;
pub mod cluster;
pub mod credentials;
pub mod example;
pub mod metrics;
pub mod report;
pub mod review;
pub mod server;
pub mod session;
pub mod soak;
pub mod state;
