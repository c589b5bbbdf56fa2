//! Reading a scenario file: YAML shape first ([`super::raw`]), then the
//! checks serde cannot express, each reported with file, line and column.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::{Segment, locate};
use super::raw::{
    RawAck, RawAckMode, RawConfirms, RawConnectionLayout, RawConsumer, RawGates, RawNamedOffset, RawOffset,
    RawProducer, RawProtocol, RawReconnect, RawRoutingKey, RawScenario, RawSize, RawStreamPort, RawTopologyRef,
};
use super::{
    AckMode, ConnectionLayout, ConsumerGroup, Gates, MessageProperties, Origin, ProducerGroup, Protocol, Reject,
    Scenario, SizeSpec, StreamOffset, TopologySource,
};
use crate::bench::message::HEADER_LEN;

/// Default in-flight window of publisher confirms.
pub const DEFAULT_MAX_IN_FLIGHT: u32 = 256;
/// Default drain when the file names none.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(5);
/// Default message size when the file names none.
pub const DEFAULT_SIZE: usize = 128;
/// How long an actor tries the nodes after its connection dropped, unless the file says otherwise.
pub const DEFAULT_GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// The stream protocol's port when the file and the command line name none (RabbitMQ's default).
pub const DEFAULT_STREAM_PORT: u16 = 5552;

const STREAM_PORT_REFUSAL: &str = "stream_port must be a port (1 to 65535) or a list of them, one per broker URL";
/// Largest body warren publishes, so a typo cannot exhaust memory.
pub const MAX_SIZE: u64 = 128 * 1024 * 1024;

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid scenario; `position` is `None` only when the
    /// YAML parser gave none.
    #[error("{}{}: {message}", path.display(), position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line and column, from 1.
        position: Option<(usize, usize)>,
        /// What is wrong, naming the field.
        message: String,
    },
}

impl ScenarioError {
    /// An error at the node `path` of `origin`'s document.
    pub fn at(origin: &Origin, path: &[Segment], message: impl Into<String>) -> ScenarioError {
        let position = locate(&origin.text, path).map(|p| (p.line, p.column));
        ScenarioError::Invalid { path: origin.path.clone(), position, message: message.into() }
    }
}

/// Reads and validates a scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
    load_str(path, &text)
}

/// Validates scenario text; `path` names it in errors and anchors a relative topology path.
pub fn load_str(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let origin = Origin { path: path.to_owned(), text: text.to_owned() };
    let raw: RawScenario = serde_yaml::from_str(text).map_err(|error| shape_error(&origin, &error))?;
    let document: serde_json::Value = serde_yaml::from_str(text).unwrap_or(serde_json::Value::Null);
    Checker { origin: &origin }.scenario(raw, document)
}

/// True when YAML text looks like a scenario rather than a topology: it has
/// `producers` or `consumers` at the top level. `warren validate` uses it.
pub fn looks_like_scenario(text: &str) -> bool {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(serde_yaml::Value::Mapping(map)) => ["producers", "consumers", "duration"]
            .iter()
            .any(|key| map.contains_key(serde_yaml::Value::String((*key).to_owned()))),
        _ => false,
    }
}

fn shape_error(origin: &Origin, error: &serde_yaml::Error) -> ScenarioError {
    let position = error.location().map(|l| (l.line(), l.column()));
    let mut message = error.to_string();
    // serde_yaml appends the position in prose; the error shows it as file:line:column instead.
    if let Some(index) = message.rfind(" at line ") {
        message.truncate(index);
    }
    if let Some(suggestion) = suggest_field(&message) {
        message.push_str(&suggestion);
    }
    if message.contains("did not match any variant of untagged enum RawStreamPort") {
        // An untagged enum's error has lost its position: point at the field itself.
        return ScenarioError::at(origin, &["stream_port".into()], STREAM_PORT_REFUSAL);
    }
    if message.contains("did not match any variant of untagged enum RawSize") {
        message = message.replace(
            "data did not match any variant of untagged enum RawSize",
            "size must be a number of bytes, {min, max}, or a list of {size, weight}",
        );
    }
    ScenarioError::Invalid { path: origin.path.clone(), position, message }
}

/// ` (did you mean `rate`?)` for serde's "unknown field `rat`, expected one of …".
fn suggest_field(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected =
        rest.split_once("expected one of ").map(|(_, e)| e).or_else(|| rest.split_once("expected ").map(|(_, e)| e))?;
    let candidates: Vec<&str> = expected.split(", ").map(|c| c.trim_matches('`')).collect();
    let suggestion = crate::topology::load::diagnostic::did_you_mean(unknown, candidates.iter().copied());
    (!suggestion.is_empty()).then_some(suggestion)
}

struct Checker<'a> {
    origin: &'a Origin,
}

fn path(segments: &[Segment]) -> Vec<Segment> {
    segments.to_vec()
}

impl Checker<'_> {
    fn error(&self, at: &[Segment], message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.origin, at, message)
    }

    fn duration(&self, at: &[Segment], text: &str) -> Result<Duration, ScenarioError> {
        humantime::parse_duration(text).map_err(|error| {
            let field = match at.last() {
                Some(Segment::Key(key)) => key.as_str(),
                _ => "duration",
            };
            // humantime's own wording ("expected number at 0") helps nobody reading a scenario.
            let _ = error;
            self.error(at, format!("{field}: `{text}` is not a duration like `30s`, `500ms` or `2m`"))
        })
    }

    fn scenario(&self, raw: RawScenario, document: serde_json::Value) -> Result<Scenario, ScenarioError> {
        if raw.name.trim().is_empty() {
            return Err(self.error(&["name".into()], "name: must not be empty"));
        }
        let topology = match raw.topology {
            RawTopologyRef::Path(relative) => {
                let base = self.origin.path.parent().unwrap_or(Path::new("."));
                TopologySource::File(base.join(relative))
            }
            RawTopologyRef::Inline(mapping) => TopologySource::Inline(mapping),
        };
        let duration = self.duration(&["duration".into()], &raw.duration)?;
        if duration.is_zero() {
            return Err(self.error(&["duration".into()], "duration: must be longer than 0s"));
        }
        let warmup = match &raw.warmup {
            Some(text) => self.duration(&["warmup".into()], text)?,
            None => Duration::ZERO,
        };
        let drain = match &raw.drain {
            Some(text) => self.duration(&["drain".into()], text)?,
            None => DEFAULT_DRAIN,
        };
        if raw.messages == Some(0) {
            return Err(self.error(&["messages".into()], "messages: must be at least 1 when given"));
        }
        if raw.producers.is_empty() && raw.consumers.is_empty() {
            return Err(self.error(&[], "a scenario needs at least one producer or consumer group"));
        }
        let producers = raw
            .producers
            .iter()
            .enumerate()
            .map(|(index, group)| self.producer(index, group))
            .collect::<Result<Vec<_>, _>>()?;
        let consumers = raw
            .consumers
            .iter()
            .enumerate()
            .map(|(index, group)| self.consumer(index, group))
            .collect::<Result<Vec<_>, _>>()?;
        self.unique_names(producers.iter().map(|g| g.name.as_str()), "producers")?;
        self.unique_names(consumers.iter().map(|g| g.name.as_str()), "consumers")?;
        let gates = self.gates(raw.gates.unwrap_or_default())?;
        let reconnect = self.reconnect(raw.reconnect.as_ref())?;
        Ok(Scenario {
            name: raw.name,
            description: raw.description,
            topology,
            broker: raw.broker,
            duration,
            warmup,
            drain,
            message_limit: raw.messages,
            producers,
            consumers,
            gates,
            reconnect,
            stream_ports: self.stream_ports(raw.stream_port)?,
            document,
            origin: self.origin.clone(),
        })
    }

    /// `stream_port`: one port or one per node, none of them 0; 5552 when absent.
    fn stream_ports(&self, raw: Option<RawStreamPort>) -> Result<Vec<u16>, ScenarioError> {
        let ports = match raw {
            None => vec![DEFAULT_STREAM_PORT],
            Some(RawStreamPort::One(port)) => vec![port],
            Some(RawStreamPort::Each(ports)) => ports,
        };
        if ports.is_empty() || ports.contains(&0) {
            return Err(self.error(&["stream_port".into()], STREAM_PORT_REFUSAL));
        }
        Ok(ports)
    }

    /// How long an actor tries to reconnect; `None` when the file turns reconnection off.
    fn reconnect(&self, raw: Option<&RawReconnect>) -> Result<Option<Duration>, ScenarioError> {
        match raw {
            None | Some(RawReconnect::Enabled(true)) => Ok(Some(DEFAULT_GIVE_UP_AFTER)),
            Some(RawReconnect::Enabled(false)) => Ok(None),
            Some(RawReconnect::Settings { give_up_after: None }) => Ok(Some(DEFAULT_GIVE_UP_AFTER)),
            Some(RawReconnect::Settings { give_up_after: Some(text) }) => {
                let at = path(&["reconnect".into(), "give_up_after".into()]);
                let limit = self.duration(&at, text)?;
                if limit.is_zero() {
                    return Err(
                        self.error(&at, "reconnect.give_up_after: must be longer than 0s (or `reconnect: false`)")
                    );
                }
                Ok(Some(limit))
            }
        }
    }

    fn unique_names<'n>(&self, names: impl Iterator<Item = &'n str>, list: &str) -> Result<(), ScenarioError> {
        let mut seen = std::collections::BTreeSet::new();
        for (index, name) in names.enumerate() {
            if !seen.insert(name) {
                return Err(self.error(
                    &[list.into(), index.into(), "name".into()],
                    format!("{list}[{index}].name: `{name}` is already the name of another group"),
                ));
            }
        }
        Ok(())
    }

    fn producer(&self, index: usize, raw: &RawProducer) -> Result<ProducerGroup, ScenarioError> {
        let at = |field: &str| path(&["producers".into(), index.into(), field.into()]);
        let label = format!("producers[{index}]");
        let instances = raw.instances.unwrap_or(1);
        if instances == 0 {
            return Err(self.error(&at("instances"), format!("{label}.instances: must be at least 1")));
        }
        let routing_keys = self.routing_keys(&at("routing_key"), &label, raw.routing_key.as_ref())?;
        if let Some(rate) = raw.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(
                self.error(&at("rate"), format!("{label}.rate: must be a positive number of messages per second"))
            );
        }
        let message = raw.message.clone().unwrap_or_default();
        let message_at = |field: &str| path(&["producers".into(), index.into(), "message".into(), field.into()]);
        let size = self.message_size(&message_at("size"), &label, message.size.as_ref())?;
        let expiration_ms = match &message.expiration {
            Some(text) => {
                Some(u64::try_from(self.duration(&message_at("expiration"), text)?.as_millis()).unwrap_or(u64::MAX))
            }
            None => None,
        };
        let confirms = self.confirms(&at("confirms"), &label, raw.confirms.as_ref())?;
        Ok(ProducerGroup {
            name: raw.name.clone(),
            instances,
            exchange: raw.exchange.clone(),
            routing_keys,
            rate: raw.rate,
            size,
            persistent: message.persistent,
            properties: MessageProperties {
                headers: message.headers.clone(),
                content_type: message.content_type.clone(),
                priority: message.priority,
                expiration_ms,
                kind: message.kind.clone(),
                app_id: message.app_id.clone(),
            },
            mandatory: raw.mandatory,
            confirms,
            layout: match raw.connection {
                None | Some(RawConnectionLayout::PerInstance) => ConnectionLayout::PerInstance,
                Some(RawConnectionLayout::Shared) => ConnectionLayout::Shared,
                Some(RawConnectionLayout::Spread) => ConnectionLayout::Spread,
            },
            protocol: protocol(raw.protocol),
        })
    }

    /// A producer's routing keys, used in turn: one key, a brace pattern that
    /// expands to several, or a list.
    fn routing_keys(
        &self,
        at: &[Segment],
        label: &str,
        raw: Option<&RawRoutingKey>,
    ) -> Result<Vec<String>, ScenarioError> {
        let routing_keys = match raw {
            None => vec![String::new()],
            Some(RawRoutingKey::One(pattern)) => {
                expand_braces(pattern).map_err(|why| self.error(at, format!("{label}.routing_key: {why}")))?
            }
            Some(RawRoutingKey::Many(keys)) if keys.is_empty() => {
                return Err(self.error(at, format!("{label}.routing_key: the list is empty")));
            }
            Some(RawRoutingKey::Many(keys)) => keys.clone(),
        };
        if let Some(long) = routing_keys.iter().find(|key| key.len() > 255) {
            return Err(self.error(at, format!("{label}.routing_key: `{long}` is longer than 255 bytes")));
        }
        Ok(routing_keys)
    }

    /// A producer's body sizes: one size, a range, or weighted choices.
    fn message_size(&self, at: &[Segment], label: &str, raw: Option<&RawSize>) -> Result<SizeSpec, ScenarioError> {
        Ok(match raw {
            None => SizeSpec::Fixed(DEFAULT_SIZE),
            Some(RawSize::Fixed(size)) => SizeSpec::Fixed(self.size(at, label, *size)?),
            Some(RawSize::Range { min, max }) => {
                let (min, max) = (self.size(at, label, *min)?, self.size(at, label, *max)?);
                if min > max {
                    return Err(self.error(at, format!("{label}.message.size: min {min} is larger than max {max}")));
                }
                SizeSpec::Range { min, max }
            }
            Some(RawSize::Choices(choices)) => {
                if choices.is_empty() {
                    return Err(self.error(at, format!("{label}.message.size: the list of choices is empty")));
                }
                let mut sizes = Vec::with_capacity(choices.len());
                for (i, choice) in choices.iter().enumerate() {
                    let choice_at = [at.to_vec(), vec![i.into()]].concat();
                    let weight = choice.weight.unwrap_or(1);
                    if weight == 0 {
                        return Err(
                            self.error(&choice_at, format!("{label}.message.size[{i}].weight: must be at least 1"))
                        );
                    }
                    sizes.push((self.size(&choice_at, label, choice.size)?, weight));
                }
                SizeSpec::Choices(sizes)
            }
        })
    }

    /// A producer's window of publisher confirms, `None` when confirms are off.
    fn confirms(&self, at: &[Segment], label: &str, raw: Option<&RawConfirms>) -> Result<Option<u32>, ScenarioError> {
        match raw {
            None | Some(RawConfirms::Enabled(true)) => Ok(Some(DEFAULT_MAX_IN_FLIGHT)),
            Some(RawConfirms::Enabled(false)) => Ok(None),
            Some(RawConfirms::Settings { max_in_flight }) => {
                let window = max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
                if window == 0 {
                    let at = [at.to_vec(), vec!["max_in_flight".into()]].concat();
                    return Err(self.error(&at, format!("{label}.confirms.max_in_flight: must be at least 1")));
                }
                Ok(Some(window))
            }
        }
    }

    fn size(&self, at: &[Segment], label: &str, size: u64) -> Result<usize, ScenarioError> {
        if size < HEADER_LEN as u64 {
            return Err(self.error(
                at,
                format!(
                    "{label}.message.size: {size} bytes is smaller than the {HEADER_LEN}-byte header \
                     (sequence number, timestamp, producer id) every message carries"
                ),
            ));
        }
        if size > MAX_SIZE {
            return Err(self.error(at, format!("{label}.message.size: {size} bytes is larger than {MAX_SIZE}")));
        }
        usize::try_from(size).map_err(|_| self.error(at, format!("{label}.message.size: {size} is too large")))
    }

    fn consumer(&self, index: usize, raw: &RawConsumer) -> Result<ConsumerGroup, ScenarioError> {
        let at = |field: &str| path(&["consumers".into(), index.into(), field.into()]);
        let label = format!("consumers[{index}]");
        let instances = raw.instances.unwrap_or(1);
        if instances == 0 {
            return Err(self.error(&at("instances"), format!("{label}.instances: must be at least 1")));
        }
        if raw.queue.is_empty() {
            return Err(self.error(&at("queue"), format!("{label}.queue: must name a queue")));
        }
        let ack = match &raw.ack {
            None | Some(RawAck::Mode(RawAckMode::Manual)) => AckMode::Manual,
            Some(RawAck::Mode(RawAckMode::Auto)) => AckMode::Auto,
            Some(RawAck::Multiple { multiple_every: 0 }) => {
                return Err(self.error(&at("ack"), format!("{label}.ack.multiple_every: must be at least 1")));
            }
            Some(RawAck::Multiple { multiple_every }) => AckMode::MultipleEvery(*multiple_every),
        };
        let prefetch = raw.prefetch.unwrap_or(0);
        if let AckMode::MultipleEvery(every) = ack
            && prefetch > 0
            && every > u32::from(prefetch)
        {
            // The broker stops delivering at `prefetch` unacked messages, so the ack would never come.
            return Err(self.error(
                &at("ack"),
                format!(
                    "{label}.ack.multiple_every: {every} is more than the prefetch of {prefetch}; \
                     the consumer would wait forever for a message the broker holds back"
                ),
            ));
        }
        let reject = match &raw.reject {
            None => None,
            Some(reject) => {
                if !(0.0..=1.0).contains(&reject.fraction) {
                    return Err(self.error(&at("reject"), format!("{label}.reject.fraction: must be between 0 and 1")));
                }
                if ack == AckMode::Auto {
                    return Err(self.error(
                        &at("reject"),
                        format!("{label}.reject: needs `ack: manual` or `multiple_every`; with `ack: auto` nothing can be rejected"),
                    ));
                }
                Some(Reject { fraction: reject.fraction, requeue: reject.requeue })
            }
        };
        let work = match &raw.work {
            Some(text) => self.duration(&at("work"), text)?,
            None => Duration::ZERO,
        };
        let layout = match raw.connection {
            None | Some(RawConnectionLayout::PerInstance) => ConnectionLayout::PerInstance,
            Some(RawConnectionLayout::Spread) => ConnectionLayout::Spread,
            Some(RawConnectionLayout::Shared) => {
                return Err(self.error(
                    &at("connection"),
                    format!("{label}.connection: `shared` is for producers; a consumer has a connection of its own (`per_instance` or `spread`)"),
                ));
            }
        };
        let offset = raw.offset.as_ref().map(|offset| match offset {
            RawOffset::Named(RawNamedOffset::First) => StreamOffset::First,
            RawOffset::Named(RawNamedOffset::Last) => StreamOffset::Last,
            RawOffset::Named(RawNamedOffset::Next) => StreamOffset::Next,
            RawOffset::At(offset) => StreamOffset::At(*offset),
        });
        Ok(ConsumerGroup {
            name: raw.name.clone(),
            instances,
            queue: raw.queue.clone(),
            prefetch,
            global_prefetch: raw.global_prefetch,
            ack,
            reject,
            work,
            exclusive: raw.exclusive,
            layout,
            offset,
            stream: false,
            protocol: protocol(raw.protocol),
        })
    }

    fn gates(&self, raw: RawGates) -> Result<Gates, ScenarioError> {
        let at = |field: &str| path(&["gates".into(), field.into()]);
        let latency = |field: &str, value: &Option<String>| -> Result<Option<Duration>, ScenarioError> {
            value.as_deref().map(|text| self.duration(&at(field), text)).transpose()
        };
        if let Some(min) = raw.throughput_min
            && !(min.is_finite() && min >= 0.0)
        {
            return Err(
                self.error(&at("throughput_min"), "gates.throughput_min: must be a number of messages per second")
            );
        }
        Ok(Gates {
            throughput_min: raw.throughput_min,
            latency_p50_max: latency("latency_p50_max", &raw.latency_p50_max)?,
            latency_p99_max: latency("latency_p99_max", &raw.latency_p99_max)?,
            latency_p999_max: latency("latency_p999_max", &raw.latency_p999_max)?,
            max_lost: raw.max_lost.unwrap_or(0),
            max_confirmed_lost: raw.max_confirmed_lost.unwrap_or(0),
            max_duplicated: raw.max_duplicated,
            max_returned: raw.max_returned,
            max_errors: raw.max_errors,
        })
    }
}

fn protocol(raw: Option<RawProtocol>) -> Protocol {
    match raw {
        None | Some(RawProtocol::Amqp) => Protocol::Amqp,
        Some(RawProtocol::Stream) => Protocol::Stream,
    }
}

/// Expands `{a,b}` alternatives: `order.{created,paid}` gives `order.created`, `order.paid`.
pub fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(format!("`{pattern}` has a `}}` without a `{{`"));
        }
        return Ok(vec![pattern.to_owned()]);
    };
    let close =
        pattern[open..].find('}').map(|i| open + i).ok_or_else(|| format!("`{pattern}` has a `{{` without a `}}`"))?;
    let inner = &pattern[open + 1..close];
    if inner.contains('{') {
        return Err(format!("`{pattern}` nests braces, which is not supported"));
    }
    let mut keys = Vec::new();
    for rest in expand_braces(&pattern[close + 1..])? {
        for choice in inner.split(',') {
            keys.push(format!("{}{choice}{rest}", &pattern[..open]));
        }
    }
    if keys.len() > 10_000 {
        return Err(format!("`{pattern}` expands to more than 10000 keys"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_expand_in_order() {
        assert_eq!(
            expand_braces("order.{created,paid,shipped}").ok(),
            Some(vec!["order.created".to_owned(), "order.paid".to_owned(), "order.shipped".to_owned()])
        );
        assert_eq!(expand_braces("plain").ok(), Some(vec!["plain".to_owned()]));
        assert!(expand_braces("a.{b").is_err());
        assert!(expand_braces("a.b}").is_err());
    }

    #[test]
    fn size_below_header_is_refused_with_its_position() {
        let text = "name: x\ntopology: t.yaml\nduration: 1s\nproducers:\n  - name: p\n    exchange: e\n    message: { size: 8 }\n";
        let error = load_str(Path::new("s.yaml"), text).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "s.yaml:7:22: producers[0].message.size: 8 bytes is smaller than the 16-byte header \
                 (sequence number, timestamp, producer id) every message carries"
            )
        );
    }

    #[test]
    fn stream_port_is_one_port_or_one_per_node() {
        const GROUP: &str = "name: x\ntopology: t.yaml\nduration: 1s\nconsumers: [{ name: c, queue: q }]\n";
        let with = |value: &str| {
            load_str(Path::new("s.yaml"), &format!("{GROUP}stream_port: {value}\n"))
                .map(|s| s.stream_ports)
                .map_err(|e| e.to_string())
        };
        assert_eq!(with("5561"), Ok(vec![5561]));
        assert_eq!(with("[5561, 5562, 5563]"), Ok(vec![5561, 5562, 5563]));
        for bad in ["0", "[]", "[5561, 0]", "70000", "five"] {
            let error = with(bad).expect_err(bad);
            assert!(error.starts_with("s.yaml:5:") && error.ends_with(STREAM_PORT_REFUSAL), "{bad}: {error}");
        }
        let default = load_str(Path::new("s.yaml"), GROUP).map(|s| s.stream_ports);
        assert_eq!(default.map_err(|e| e.to_string()), Ok(vec![DEFAULT_STREAM_PORT]));
    }
}
