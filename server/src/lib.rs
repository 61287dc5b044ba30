//! The `vouch` server and command-line tool: the HTTP API (warp), storage
//! (sqlx on SQLite or PostgreSQL), platform records in, and the offline
//! commands. The evaluation and signing core is the `vouch-engine` crate.

pub mod app;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod db;
pub mod demo;
pub mod files;
pub mod http;
pub mod import;
pub mod keys;
pub mod metrics;
pub mod offline;
pub mod pdf;
pub mod plugins;
pub mod routes;
pub mod serve;
pub mod snapshot;
pub mod ui;
pub mod zones;

/// The OpenAPI 3.1 document of the HTTP API, served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// A failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// A negative answer (exit 1).
    pub fn negative(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 1,
            error: error.into(),
        }
    }
    /// Unreadable or malformed input (exit 3).
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: 3,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::input(e)
    }
}
