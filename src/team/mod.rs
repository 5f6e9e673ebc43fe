//! Team mode: many annotators and reviewers on one project. This module owns the quality
//! measures a lead reads (agreement between annotators and against gold). The shared
//! PostgreSQL store, sync, assignment and review arrive with the rest of the team-mode work.

pub mod metrics;
