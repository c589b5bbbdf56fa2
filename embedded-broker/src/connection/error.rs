//! How a method fails: closing its channel or the whole connection, with RabbitMQ's reply code.

use crate::state::{RouteError, StateError};

/// Whether an error closes the channel or the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `channel.close`; the connection carries on.
    Channel,
    /// `connection.close`.
    Connection,
}

/// A failed method, turned into `channel.close` or `connection.close` by the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Fail {
    /// Channel or connection.
    pub level: Level,
    /// AMQP reply code.
    pub code: u16,
    /// Reply text, "NAME - detail" as RabbitMQ writes it.
    pub text: String,
}

impl Fail {
    /// A channel error.
    pub fn channel(code: u16, text: impl Into<String>) -> Self {
        Fail { level: Level::Channel, code, text: text.into() }
    }

    /// A connection error.
    pub fn connection(code: u16, text: impl Into<String>) -> Self {
        Fail { level: Level::Connection, code, text: text.into() }
    }

    /// 406 PRECONDITION_FAILED on the channel.
    pub fn precondition(detail: impl std::fmt::Display) -> Self {
        Fail::channel(406, format!("PRECONDITION_FAILED - {detail}"))
    }

    /// 404 NOT_FOUND on the channel.
    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Fail::channel(404, format!("NOT_FOUND - {detail}"))
    }

    /// 503 COMMAND_INVALID on the connection.
    pub fn command_invalid(detail: impl std::fmt::Display) -> Self {
        Fail::connection(503, format!("COMMAND_INVALID - {detail}"))
    }

    /// 540 NOT_IMPLEMENTED on the connection.
    pub fn not_implemented(detail: impl std::fmt::Display) -> Self {
        Fail::connection(540, format!("NOT_IMPLEMENTED - {detail}"))
    }

    /// 504 CHANNEL_ERROR on the connection.
    pub fn channel_error(detail: impl std::fmt::Display) -> Self {
        Fail::connection(504, format!("CHANNEL_ERROR - {detail}"))
    }
}

impl From<StateError> for Fail {
    fn from(e: StateError) -> Self {
        let code = e.reply_code();
        match code {
            530 => Fail::connection(530, format!("NOT_ALLOWED - {e}")),
            540 => Fail::connection(540, e.to_string()),
            _ => Fail::channel(code, e.to_string()),
        }
    }
}

impl From<RouteError> for Fail {
    fn from(e: RouteError) -> Self {
        Fail::channel(e.reply_code(), e.to_string())
    }
}
