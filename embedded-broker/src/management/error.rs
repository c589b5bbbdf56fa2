//! Errors of the management API, answered as RabbitMQ answers them: a JSON body
//! `{"error": …, "reason": …}` with the status code RabbitMQ uses for the same
//! mistake, so clients that parse RabbitMQ's errors parse ours.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::definitions::import::ImportError;
use crate::definitions::policy::PolicyError;
use crate::state::StateError;

/// Why a management API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, an unknown user, a wrong password, or `guest` from a non-loopback address.
    #[error("Login failed")]
    LoginFailed,
    /// The user may log in but lacks a tag the endpoint needs.
    #[error("Not {required} user")]
    MissingTag {
        /// The tag the endpoint needs (`administrator`, `management`).
        required: &'static str,
    },
    /// The object may not be changed through the API (`amq.*` names, the default exchange).
    #[error("Access refused.")]
    AccessRefused,
    /// The path names an object (or virtual host) that does not exist.
    #[error("Not Found")]
    ObjectNotFound,
    /// A request refers to a virtual host that does not exist.
    #[error("vhost_not_found")]
    VhostNotFound,
    /// Permissions name a user or virtual host that does not exist.
    #[error("vhost_or_user_not_found")]
    VhostOrUserNotFound,
    /// The body is not JSON.
    #[error("not_json")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but does not have the shape the endpoint wants.
    #[error("{0}")]
    BadBody(#[source] serde_json::Error),
    /// Required keys are missing from the body.
    #[error("[{}]", .keys.iter().map(|k| format!("{{key_missing,{k}}}")).collect::<Vec<_>>().join(","))]
    KeysMissing {
        /// The missing keys, in the order RabbitMQ lists them.
        keys: Vec<&'static str>,
    },
    /// A message published through the API could not be routed at all (unknown or internal
    /// exchange); RabbitMQ reports the channel error with its code.
    #[error("{} {}", .0.reply_code(), .0)]
    Unroutable(#[source] crate::state::RouteError),
    /// A message property or payload the API cannot turn into an AMQP message.
    #[error("{problem}")]
    BadMessage {
        /// What is wrong.
        problem: String,
    },
    /// `page`/`page_size` outside 1.. and 1..=500.
    #[error("Invalid pagination parameters: page number {page}, page size {size}")]
    InvalidPagination {
        /// The page asked for, as given.
        page: String,
        /// The page size asked for, as given (`undefined` when absent).
        size: String,
    },
    /// A page past the last one.
    #[error("Page out of range, page: {page} page size: {size}, len: {len}")]
    PageOutOfRange {
        /// The page asked for.
        page: u64,
        /// The page size.
        size: u64,
        /// How many items matched.
        len: usize,
    },
    /// An exchange type the broker does not implement.
    #[error("unknown exchange type '{0}'")]
    UnknownExchangeType(String),
    /// The broker state refused the change (inequivalent redeclaration, invalid argument,
    /// `if-empty`/`if-unused`, a missing binding end, …); its text is RabbitMQ's.
    #[error("{}", strip_amqp_code(&.0.to_string()))]
    State(#[source] StateError),
    /// A policy whose pattern or definition the broker rejects.
    #[error("Validation failed\n\n{problem}\n")]
    PolicyInvalid {
        /// What is wrong, in RabbitMQ's words.
        problem: String,
    },
    /// A password hash that is not base64, or a hashing algorithm the broker does not know.
    #[error("{problem}")]
    PasswordHash {
        /// What is wrong.
        problem: String,
    },
}

impl ApiError {
    /// The status code RabbitMQ answers this mistake with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::LoginFailed | ApiError::MissingTag { .. } | ApiError::AccessRefused => StatusCode::UNAUTHORIZED,
            ApiError::ObjectNotFound | ApiError::VhostNotFound => StatusCode::NOT_FOUND,
            ApiError::State(e) => match e {
                StateError::NotFound { .. } | StateError::VhostNotFound { .. } | StateError::UserNotFound { .. } => {
                    StatusCode::NOT_FOUND
                }
                _ => StatusCode::BAD_REQUEST,
            },
            ApiError::VhostOrUserNotFound
            | ApiError::NotJson(_)
            | ApiError::BadBody(_)
            | ApiError::KeysMissing { .. }
            | ApiError::Unroutable(_)
            | ApiError::BadMessage { .. }
            | ApiError::InvalidPagination { .. }
            | ApiError::PageOutOfRange { .. }
            | ApiError::UnknownExchangeType(_)
            | ApiError::PolicyInvalid { .. }
            | ApiError::PasswordHash { .. } => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error` field: RabbitMQ's short code for the kind of failure (spelling included).
    fn code(&self) -> &'static str {
        match self {
            ApiError::LoginFailed => "not_authorized",
            ApiError::MissingTag { .. } | ApiError::AccessRefused => "not_authorised",
            ApiError::ObjectNotFound => "Object Not Found",
            ApiError::VhostNotFound => "not_found",
            ApiError::InvalidPagination { .. } => "invalid_pagination_parameters",
            ApiError::PageOutOfRange { .. } => "page_out_of_range",
            ApiError::State(e) if e.http_status() == 404 => "not_found",
            _ => "bad_request",
        }
    }
}

impl ApiError {
    /// Maps a state refusal the way RabbitMQ's API reports it: access refusals are 401
    /// "Access refused.", a missing vhost is `vhost_not_found`, the rest keep their text.
    pub fn from_state(error: StateError) -> ApiError {
        match error {
            StateError::AccessRefused { .. } => ApiError::AccessRefused,
            StateError::VhostNotFound { .. } => ApiError::VhostNotFound,
            other => ApiError::State(other),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(error: StateError) -> ApiError {
        ApiError::from_state(error)
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> ApiError {
        match error {
            PolicyError::KeysMissing { keys } => ApiError::KeysMissing { keys },
            PolicyError::Invalid { problem } => ApiError::PolicyInvalid { problem },
            PolicyError::State(error) => ApiError::from_state(error),
        }
    }
}

impl From<ImportError> for ApiError {
    /// The answers RabbitMQ gives `POST /api/definitions` for the same mistakes.
    fn from(error: ImportError) -> ApiError {
        let bad_body = |error: &ImportError| ApiError::BadBody(serde::de::Error::custom(error.to_string()));
        match error {
            ImportError::VhostNotFound { .. } => ApiError::VhostNotFound,
            ImportError::VhostOrUserNotFound { .. } => ApiError::VhostOrUserNotFound,
            ImportError::Policy { error, .. } => (*error).into(),
            ImportError::UnknownExchangeType { kind } => ApiError::UnknownExchangeType(kind),
            ImportError::State(error) => ApiError::from_state(error),
            ImportError::UnknownAlgorithm { .. } | ImportError::BadHash { .. } => {
                ApiError::PasswordHash { problem: error.to_string() }
            }
            // RabbitMQ's own words for it, as its import answers.
            ImportError::PasswordAndHash { .. } => {
                ApiError::PasswordHash { problem: "both_password_and_password_hash_are_provided".into() }
            }
            ImportError::NoVhost { .. }
            | ImportError::UnsupportedParameter { .. }
            | ImportError::OperatorPolicyValue { .. }
            | ImportError::DestinationType { .. } => bad_body(&error),
        }
    }
}

/// RabbitMQ's API reasons drop the AMQP code name (`PRECONDITION_FAILED - `) the channel error carries.
fn strip_amqp_code(text: &str) -> &str {
    match text.split_once(" - ") {
        Some((code, rest)) if code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => rest,
        _ => text,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let reason = match &self {
            ApiError::NotJson(_) => "not_json".to_owned(),
            other => other.to_string(),
        };
        let body = json!({ "error": self.code(), "reason": reason });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if matches!(self, ApiError::LoginFailed) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"RabbitMQ Management\""));
        }
        response
    }
}
