//! Client-visible AMQP behaviour, checked with lapin against the embedded broker and, when it
//! answers, against RabbitMQ with the same assertions.

mod access;
mod basics;
mod cancel;
mod celery;
mod connection;
mod consumers;
mod durability;
mod embedded_only;
mod exchanges;
mod garbage;
mod kombu;
mod pika;
mod python;
mod queues;
mod raw;
mod requeue;
mod util;
