//! The management API through `rabbitmq_http_client`, the client `warren
//! apply` uses, against the embedded broker; error shapes are compared with
//! the machine's RabbitMQ where it answers. `ui` drives the web page in
//! headless Chromium.

mod access;
mod bindings;
mod counts;
mod definitions;
mod errors;
mod exchanges_queues;
mod health;
mod hostile;
mod live;
mod messages;
mod persistence;
mod policies;
mod rabbitmqadmin;
mod ui;
mod util;
