//! `warren-definitions`: what the `warren` CLI and the `warren-broker`
//! broker both need to speak RabbitMQ's definitions, written once.
//!
//! - [`Definitions`] (`document.rs`, with [`Tags`] in `tags.rs`): the
//!   document of `GET`/`POST /api/definitions` and `rabbitmqctl
//!   export_definitions`, in RabbitMQ's shape. Reading is lenient where
//!   RabbitMQ versions differ; the readers decide what a missing field means
//!   for them.
//! - [`password`]: RabbitMQ's salted password hashes (hash, verify, detect the
//!   algorithm).
//! - [`arguments`]: JSON values to AMQP field values and back, as RabbitMQ's
//!   management API converts them.
//! - [`properties_key`]: the name RabbitMQ's management API gives a binding,
//!   with Erlang's `phash2` of its arguments (`phash2.rs`).
//!
//! The crate knows neither the CLI's topology model nor the broker's state:
//! each side converts the document to its own types.

pub mod arguments;
mod document;
pub mod password;
mod phash2;
pub mod properties_key;
mod tags;

pub use document::{
    BindingDef, Definitions, ExchangeDef, ParameterDef, PermissionDef, PolicyBody, PolicyDef, QueueDef,
    TopicPermissionDef, UserDef, VhostDef, VhostMetadata, parse_priority,
};
pub use tags::Tags;
