//! Connection handshake: start / start-ok (PLAIN, AMQPLAIN), tune / tune-ok, open.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, connection as conn};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::codec::Frame;
use super::{Connection, Fail, Phase};
use crate::COMPATIBLE_RABBITMQ_VERSION;
use crate::state::args;
use crate::state::connections::OpenConnection;

/// The capabilities RabbitMQ announces; clients switch features on from this table.
const CAPABILITIES: [&str; 9] = [
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
];

pub(super) fn send_start(c: &mut Connection) {
    let mut caps = FieldTable::default();
    for cap in CAPABILITIES {
        // direct_reply_to is not implemented; announcing it would mislead clients.
        caps.insert(cap.into(), AMQPValue::Boolean(cap != "direct_reply_to"));
    }
    let mut props = FieldTable::default();
    props.insert("capabilities".into(), AMQPValue::FieldTable(caps));
    props.insert("cluster_name".into(), AMQPValue::LongString("warren@localhost".into()));
    // Clients branch on product and version, as on the management API's rabbitmq_version: kombu
    // (so celery) sets `global` on basic.qos only for RabbitMQ 3.3 to 3.x, and without it a
    // worker's prefetch increments for ETA tasks never reach its running consumer, so held ETA
    // tasks starve every other task. What answers is named in `information` and `platform`.
    props.insert("product".into(), AMQPValue::LongString("RabbitMQ".into()));
    props.insert("version".into(), AMQPValue::LongString(COMPATIBLE_RABBITMQ_VERSION.into()));
    props.insert("platform".into(), AMQPValue::LongString("Rust".into()));
    let information = concat!("warren-broker ", env!("CARGO_PKG_VERSION"), ", an embedded AMQP 0-9-1 broker");
    props.insert("information".into(), AMQPValue::LongString(information.into()));
    c.send(
        0,
        AMQPClass::Connection(conn::AMQPMethod::Start(conn::Start {
            version_major: 0,
            version_minor: 9,
            server_properties: props,
            mechanisms: "PLAIN AMQPLAIN".into(),
            locales: "en_US".into(),
        })),
    );
}

pub(super) fn handle(c: &mut Connection, frame: Frame) -> Result<(), Fail> {
    let Frame::Method(0, AMQPClass::Connection(m)) = frame else {
        // Anything else during the handshake is a protocol violation; RabbitMQ just closes.
        c.phase = Phase::Done;
        return Ok(());
    };
    match (c.phase, m) {
        (Phase::StartOk, conn::AMQPMethod::StartOk(ok)) => start_ok(c, ok),
        (Phase::TuneOk, conn::AMQPMethod::TuneOk(ok)) => tune_ok(c, ok),
        (Phase::Open, conn::AMQPMethod::Open(open)) => open_vhost(c, open),
        (_, conn::AMQPMethod::Close(_)) => {
            c.send(0, AMQPClass::Connection(conn::AMQPMethod::CloseOk(conn::CloseOk {})));
            c.phase = Phase::Done;
            Ok(())
        }
        _ => {
            c.phase = Phase::Done;
            Ok(())
        }
    }
}

fn client_capability(props: &FieldTable, name: &str) -> bool {
    match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => t.inner().get(name).and_then(args::as_bool).unwrap_or(false),
        _ => false,
    }
}

/// Extracts (user, password) from a SASL response.
fn credentials(mechanism: &str, response: &LongString) -> Option<(String, Vec<u8>)> {
    let raw = response.as_bytes();
    match mechanism {
        "PLAIN" => {
            let mut parts = raw.split(|b| *b == 0);
            let _authzid = parts.next()?;
            let user = parts.next()?;
            let password = parts.next()?;
            Some((String::from_utf8(user.to_vec()).ok()?, password.to_vec()))
        }
        "AMQPLAIN" => {
            // AMQPLAIN is a field table without its length prefix.
            let mut framed = (raw.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(raw);
            let (_, table) = amq_protocol::types::parsing::parse_field_table(&framed[..]).ok()?;
            let user = table.inner().get("LOGIN").and_then(args::as_str)?;
            let password = match table.inner().get("PASSWORD")? {
                AMQPValue::LongString(s) => s.as_bytes().to_vec(),
                AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
                _ => return None,
            };
            Some((user, password))
        }
        _ => None,
    }
}

fn start_ok(c: &mut Connection, ok: conn::StartOk) -> Result<(), Fail> {
    c.caps.authentication_failure_close = client_capability(&ok.client_properties, "authentication_failure_close");
    c.caps.connection_blocked = client_capability(&ok.client_properties, "connection.blocked");
    c.caps.consumer_cancel_notify = client_capability(&ok.client_properties, "consumer_cancel_notify");
    let mechanism = ok.mechanism.as_str().to_owned();
    c.client_properties = ok.client_properties.clone();
    c.auth_mechanism = mechanism.clone();
    let refused = |c: &mut Connection, text: String| -> Result<(), Fail> {
        tracing::info!(peer = %c.peer, "login refused: {text}");
        if c.caps.authentication_failure_close {
            Err(Fail::connection(403, text))
        } else {
            // Without the capability RabbitMQ closes the socket without a reason.
            c.phase = Phase::Done;
            Ok(())
        }
    };
    if mechanism != "PLAIN" && mechanism != "AMQPLAIN" {
        // RabbitMQ raises COMMAND_INVALID ("unknown authentication mechanism") here, a handshake
        // error: logged, and the socket closed without a connection.close whatever the client's
        // capabilities (after a 3 s pause there, which is not copied).
        tracing::info!(peer = %c.peer, "login refused: unknown authentication mechanism '{mechanism}'");
        c.phase = Phase::Done;
        return Ok(());
    }
    let generic = format!(
        "ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}. For details see the broker logfile."
    );
    let Some((user, password)) = credentials(&mechanism, &ok.response) else {
        return refused(c, generic);
    };
    let Some(account) = c.state.authenticate(&user, &password) else {
        return refused(c, generic);
    };
    // RabbitMQ looks at the address the connection arrived on (its socket's own name), and tells
    // the client only the generic refusal; the reason goes to the log.
    if !c.local.is_some_and(|local| c.state.may_log_in_from(&user, local.ip())) {
        tracing::info!(peer = %c.peer, "login refused: user '{user}' can only connect via localhost");
        return refused(c, generic);
    }
    c.user = Some(account);
    c.send(
        0,
        AMQPClass::Connection(conn::AMQPMethod::Tune(conn::Tune {
            channel_max: c.limits.channel_max,
            frame_max: c.limits.frame_max,
            heartbeat: c.limits.heartbeat,
        })),
    );
    c.phase = Phase::TuneOk;
    Ok(())
}

fn tune_ok(c: &mut Connection, ok: conn::TuneOk) -> Result<(), Fail> {
    let server_frame_max = c.limits.frame_max;
    if ok.frame_max != 0 && ok.frame_max < 4096 {
        return Err(Fail::connection(530, format!("NOT_ALLOWED - frame_max={} < 4096 min size", ok.frame_max)));
    }
    if ok.frame_max > server_frame_max || (ok.frame_max == 0 && server_frame_max != 0) {
        return Err(Fail::connection(
            530,
            format!("NOT_ALLOWED - frame_max={} > {server_frame_max} max size", ok.frame_max),
        ));
    }
    c.frame_max = ok.frame_max;
    c.channel_max = if ok.channel_max == 0 { c.limits.channel_max } else { ok.channel_max.min(c.limits.channel_max) };
    c.heartbeat = ok.heartbeat;
    c.phase = Phase::Open;
    Ok(())
}

fn open_vhost(c: &mut Connection, open: conn::Open) -> Result<(), Fail> {
    let vhost = open.virtual_host.as_str().to_owned();
    let user = c.user.as_ref().map(|u| u.name.clone()).unwrap_or_default();
    if c.state.vhost(&vhost).is_none() {
        return Err(Fail::connection(530, format!("NOT_ALLOWED - vhost {vhost} not found")));
    }
    if c.state.can_access_vhost(&user, &vhost).is_err() {
        return Err(Fail::connection(
            530,
            format!("NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}'"),
        ));
    }
    let local = c.local.unwrap_or(c.peer);
    let connected_at =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    c.state.connection_opened(
        c.id,
        OpenConnection {
            name: format!("{} -> {}", address(c.peer), address(local)),
            user,
            vhost: vhost.clone(),
            peer: c.peer,
            local,
            connected_at,
            client_properties: std::mem::take(&mut c.client_properties),
            auth_mechanism: std::mem::take(&mut c.auth_mechanism),
            frame_max: c.frame_max,
            channel_max: c.channel_max,
            heartbeat: c.heartbeat,
            outbox: Arc::clone(&c.outbox),
            probe: Arc::clone(&c.probe),
        },
    );
    c.vhost = vhost;
    c.send(0, AMQPClass::Connection(conn::AMQPMethod::OpenOk(conn::OpenOk {})));
    c.phase = Phase::Running;
    Ok(())
}

/// An address as RabbitMQ writes it in connection names: `127.0.0.1:5672`, `::1:5672`.
fn address(addr: std::net::SocketAddr) -> String {
    format!("{}:{}", addr.ip().to_canonical(), addr.port())
}
