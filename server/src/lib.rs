//! The `vouch` server and command-line tool: the HTTP API (warp), storage
//! (sqlx on SQLite or PostgreSQL), platform records in, and the offline
//! commands. The evaluation and signing core is the `vouch-engine` crate.

//!
//! Dependencies point one way: `cli` → `http` → `service` → `store`, with
//! `auth`, `keys`, `pdf`, `plugins`, `zones` and `metrics` used from above.
//! | module | holds |
//! |---|---|
//! | [`cli`] | one file per command group (serve, import, keys, offline) |
//! | [`http`] | the listener, the route table, handlers, `ApiError` (the only place statuses are chosen) |
//! | [`service`] | one function per use case; [`service::generate`] is the generation pipeline |
//! | [`store`] | every SQL statement, the write and read transaction types |
//! | [`auth`] | passwords, the credential cache, the login throttle, roles, CSRF |

pub mod auth;
pub mod cli;
pub mod demo;
pub mod files;
pub mod http;
pub mod import;
pub mod keys;
pub mod metrics;
pub mod pdf;
pub mod plugins;
pub mod service;
pub mod store;
pub mod tsa;
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

/// The cores this process may use (at least one): the size of the pools and
/// bounds that scale with the machine.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
