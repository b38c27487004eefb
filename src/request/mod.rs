//! What the client asked for: the Accept header and the output format it allows.

pub mod accept;
mod args;
pub mod client;
pub mod config;
pub mod hints;
pub mod imgproxy;
pub mod negotiate;
pub mod options;
pub mod steps;
