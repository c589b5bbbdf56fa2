//! Connecting the actors: a connection (a [`Link`]) and a channel each,
//! consumers subscribed and producers in confirm mode, with a `frame_max`
//! sized for the scenario's messages. `protocol: stream` groups get a
//! stream-protocol connection each instead, on a thread of its own
//! ([`StreamLink`]).

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, WriteContext, gen_frame};
use anyhow::Context;
use lapin::Channel;

use crate::bench::actors::Schedule;
use crate::bench::actors::consumer::{ConsumerPlan, Subscription};
use crate::bench::actors::producer::ProducerPlan;
use crate::bench::host;
use crate::bench::link::{CONNECT_TIMEOUT, Link, Nodes};
use crate::bench::scenario::{ConnectionLayout, ConsumerGroup, ProducerGroup, Protocol, Scenario, StreamOffset};
use crate::bench::stream_link::{StreamConsumer, StreamEndpoint, StreamLink, StreamLinkError, StreamProducer};

/// Every actor's connection and channel, opened before the run's clock starts.
pub(super) struct Connected {
    pub(super) links: Vec<Link>,
    /// The node each link went to, by index in `links`.
    pub(super) nodes_of_links: Vec<usize>,
    pub(super) channels: Vec<Channel>,
    /// Each with the index of its link in `links`.
    pub(super) consumers: Vec<(Channel, lapin::Consumer, ConsumerPlan, usize)>,
    pub(super) producers: Vec<(Channel, ProducerPlan, usize)>,
    /// `protocol: stream` consumers, each subscribed on its own link.
    pub(super) stream_consumers: Vec<(StreamConsumer, ConsumerPlan, StreamLink)>,
    /// `protocol: stream` producers, each declared on its own link.
    pub(super) stream_producers: Vec<(StreamProducer, ProducerPlan, StreamLink)>,
    /// Where `protocol: stream` actors connect (again), when the scenario has any.
    pub(super) stream_endpoint: Option<StreamEndpoint>,
    /// The next producer's id: ids follow the file's order over both protocols.
    next_producer_id: u32,
}

impl Connected {
    /// Every producer's plan, whatever its protocol.
    pub(super) fn producer_plans(&self) -> impl Iterator<Item = &ProducerPlan> {
        self.producers.iter().map(|(_, plan, _)| plan).chain(self.stream_producers.iter().map(|(_, plan, _)| plan))
    }
}

/// The `frame_max` warren's connections ask for, unless the URL names one.
///
/// lapin keeps two ring buffers of 32 frames per connection, sized by the
/// negotiated `frame_max`: 8 MiB per connection at RabbitMQ's default of
/// 128 KiB, gigabytes for a few hundred simulated clients. The smallest
/// power of two that still carries the scenario's largest body and its
/// content header in one frame each (4 KiB at least, 128 KiB at most) puts the
/// same bytes on the wire with buffers a fraction of that size.
fn frame_max_for(scenario: &Scenario, amqp_url: &str) -> Option<usize> {
    let named = url::Url::parse(amqp_url).ok()?.query_pairs().any(|(key, _)| key == "frame_max");
    if named {
        return None;
    }
    let largest = scenario
        .producers
        .iter()
        .map(|group| group.size.max().max(content_header_len(&ProducerPlan::properties(group))))
        .max()
        .unwrap_or(0);
    // A frame adds 8 bytes around its payload.
    Some((largest + 8).next_power_of_two().clamp(4096, 131_072))
}

/// Payload bytes of a content header carrying `properties`.
fn content_header_len(properties: &lapin::BasicProperties) -> usize {
    let header = AMQPContentHeader { class_id: 60, body_size: 0, properties: properties.clone() };
    match gen_frame(&AMQPFrame::Header(1, header))(WriteContext::from(Vec::new())) {
        Ok(written) => written.write.len(),
        // Cannot be encoded at all: lapin will say so on publish; ask for the largest frames meanwhile.
        Err(_) => 131_072,
    }
}

/// `amqp_url` with `frame_max` added to its query.
fn with_frame_max(amqp_url: &str, frame_max: usize) -> String {
    match url::Url::parse(amqp_url) {
        Ok(mut url) => {
            url.query_pairs_mut().append_pair("frame_max", &frame_max.to_string());
            url.to_string()
        }
        Err(_) => amqp_url.to_owned(),
    }
}

/// The nodes actors connect to, each URL with the `frame_max` the scenario's messages need.
pub(super) fn nodes(scenario: &Scenario, amqp_urls: &[String]) -> Nodes {
    Nodes::new(amqp_urls, |url| match frame_max_for(scenario, url) {
        Some(frame_max) => with_frame_max(url, frame_max),
        None => url.to_owned(),
    })
}

/// Where `protocol: stream` groups connect, when the scenario has any: checked before the
/// run touches the broker, and again when the actors connect.
pub fn stream_endpoint(scenario: &Scenario, amqp_urls: &[String]) -> Result<Option<StreamEndpoint>, StreamLinkError> {
    let mut protocols =
        scenario.producers.iter().map(|g| g.protocol).chain(scenario.consumers.iter().map(|g| g.protocol));
    if protocols.any(|p| p == Protocol::Stream) {
        StreamEndpoint::of_nodes(amqp_urls, &scenario.stream_ports).map(Some)
    } else {
        Ok(None)
    }
}

/// Opens every actor's connection and channel: consumers first, subscribed
/// to their queues, then producers. `protocol: stream` groups connect to
/// the stream port of the first of `amqp_urls`' nodes that answers.
pub(super) async fn connect(scenario: &Scenario, nodes: &Nodes, amqp_urls: &[String]) -> anyhow::Result<Connected> {
    host::limits::allow_open_files();
    let mut connected = Connected {
        links: Vec::new(),
        nodes_of_links: Vec::new(),
        channels: Vec::new(),
        consumers: Vec::new(),
        producers: Vec::new(),
        stream_consumers: Vec::new(),
        stream_producers: Vec::new(),
        stream_endpoint: None,
        next_producer_id: 0,
    };
    let stream_endpoint = stream_endpoint(scenario, amqp_urls)?;
    for (index, group) in scenario.consumers.iter().enumerate() {
        for instance in 0..group.instances {
            match (&stream_endpoint, group.protocol) {
                (Some(endpoint), Protocol::Stream) => {
                    connected.open_stream_consumer(endpoint, index, group, instance).await?;
                }
                _ => connected.open_consumer(nodes, index, group, instance).await?,
            }
        }
    }
    for (index, group) in scenario.producers.iter().enumerate() {
        match (&stream_endpoint, group.protocol) {
            (Some(endpoint), Protocol::Stream) => {
                connected.open_stream_producers(endpoint, index, group, scenario.message_limit).await?;
            }
            _ => connected.open_producers(nodes, index, group, scenario.message_limit).await?,
        }
    }
    connected.stream_endpoint = stream_endpoint;
    Ok(connected)
}

/// The node an instance's connection goes to first: with the `spread`
/// layout the next node of the list in turn, else the first.
fn home_node(layout: ConnectionLayout, instance: u32, nodes: usize) -> usize {
    match layout {
        ConnectionLayout::Spread => instance as usize % nodes.max(1),
        ConnectionLayout::PerInstance | ConnectionLayout::Shared => 0,
    }
}

impl Connected {
    /// A link to the first node that answers from `home` on; its index in `links`.
    async fn open(&mut self, nodes: &Nodes, home: usize, name: String) -> anyhow::Result<usize> {
        let (link, node) = nodes.open_from(home, &name, CONNECT_TIMEOUT).await?;
        self.links.push(link);
        self.nodes_of_links.push(node);
        Ok(self.links.len() - 1)
    }

    /// Opens one consumer's connection and channel and subscribes it to its queue.
    async fn open_consumer(
        &mut self,
        nodes: &Nodes,
        index: usize,
        group: &ConsumerGroup,
        instance: u32,
    ) -> anyhow::Result<()> {
        let label = format!("consumer {}#{instance}", group.name);
        let home = home_node(group.layout, instance, nodes.len());
        let link = self.open(nodes, home, format!("warren bench {label}")).await?;
        let subscription = Subscription::of(group);
        let (channel, stream) = subscription
            .subscribe(&self.links[link].connection)
            .await
            .with_context(|| format!("{label}: subscribing to queue `{}`", group.queue))?;
        let plan = ConsumerPlan::of(index, group, instance, subscription, (home, self.nodes_of_links[link]));
        self.channels.push(channel.clone());
        self.consumers.push((channel, stream, plan, link));
        Ok(())
    }

    /// Opens a producer group's connections (one for the group when it shares
    /// one) and a channel per instance. Producer ids follow on from the
    /// groups before.
    async fn open_producers(
        &mut self,
        nodes: &Nodes,
        index: usize,
        group: &ProducerGroup,
        limit: Option<u64>,
    ) -> anyhow::Result<()> {
        let properties = ProducerPlan::properties(group);
        let shared = match group.layout {
            ConnectionLayout::Shared => {
                Some(self.open(nodes, 0, format!("warren bench producers {}", group.name)).await?)
            }
            ConnectionLayout::PerInstance | ConnectionLayout::Spread => None,
        };
        for instance in 0..group.instances {
            let label = format!("producer {}#{instance}", group.name);
            let home = home_node(group.layout, instance, nodes.len());
            let link = match shared {
                Some(link) => link,
                None => self.open(nodes, home, format!("warren bench {label}")).await?,
            };
            let mut plan = self.producer_plan(index, group, instance, limit);
            plan.properties = properties.clone();
            plan.blocked = self.links[link].blocked.clone();
            (plan.home, plan.node) = (home, self.nodes_of_links[link]);
            let channel = plan
                .open_channel(&self.links[link].connection)
                .await
                .with_context(|| format!("opening a channel for {label}"))?;
            self.channels.push(channel.clone());
            self.producers.push((channel, plan, link));
        }
        Ok(())
    }
}

impl Connected {
    /// A producer instance's plan, with the next producer id; its
    /// connection's fields (properties, blocked time, nodes) are the caller's to set.
    fn producer_plan(
        &mut self,
        index: usize,
        group: &ProducerGroup,
        instance: u32,
        limit: Option<u64>,
    ) -> ProducerPlan {
        let id = self.next_producer_id;
        self.next_producer_id = self.next_producer_id.saturating_add(1);
        ProducerPlan {
            id,
            group: index,
            group_name: group.name.clone(),
            instance,
            exchange: group.exchange.clone(),
            routing_keys: group.routing_keys.clone(),
            size: group.size.clone(),
            properties: lapin::BasicProperties::default(),
            mandatory: group.mandatory,
            confirms: group.confirms,
            schedule: Schedule { start_ns: 0, interval_ns: group.rate.map(|rate| 1e9 / rate) },
            limit,
            blocked: Default::default(),
            home: 0,
            node: 0,
        }
    }

    /// A `protocol: stream` consumer's link, subscribed to its stream.
    async fn open_stream_consumer(
        &mut self,
        endpoint: &StreamEndpoint,
        index: usize,
        group: &ConsumerGroup,
        instance: u32,
    ) -> anyhow::Result<()> {
        let label = format!("consumer {}#{instance}", group.name);
        let link = StreamLink::start(format!("warren bench {label}"))?;
        let offset = group.offset.unwrap_or(StreamOffset::Next);
        let consumer = link
            .consumer(endpoint, &group.queue, offset)
            .await
            .with_context(|| format!("{label}: subscribing to stream `{}` over the stream protocol", group.queue))?;
        let plan = ConsumerPlan::of(index, group, instance, Subscription::of(group), (0, 0));
        self.stream_consumers.push((consumer, plan, link));
        Ok(())
    }

    /// A `protocol: stream` producer group's links, a producer declared on each.
    async fn open_stream_producers(
        &mut self,
        endpoint: &StreamEndpoint,
        index: usize,
        group: &ProducerGroup,
        limit: Option<u64>,
    ) -> anyhow::Result<()> {
        for instance in 0..group.instances {
            let label = format!("producer {}#{instance}", group.name);
            let plan = self.producer_plan(index, group, instance, limit);
            let stream = plan.routing_keys.first().cloned().unwrap_or_default();
            let link = StreamLink::start(format!("warren bench {label}"))?;
            // The client batches what it is handed, up to the confirm window at a time.
            let batch = plan.confirms.map_or(1, |window| window as usize);
            let producer = link.producer(endpoint, &stream, batch).await.with_context(|| {
                format!("{label}: declaring a producer on stream `{stream}` over the stream protocol")
            })?;
            self.stream_producers.push((producer, plan, link));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenario::load::load_str;
    use std::path::Path;

    fn scenario(producer: &str) -> Scenario {
        let text = format!(
            "name: t\ntopology: {{ vhosts: {{ /: {{ queues: {{ q: {{}} }} }} }} }}\nduration: 1s\n\
             producers:\n  - {{ name: p, exchange: \"\", routing_key: q, {producer} }}\n"
        );
        load_str(Path::new("t.yaml"), &text).expect("a valid scenario")
    }

    #[test]
    fn spread_instances_take_the_nodes_in_turn_and_other_layouts_start_at_the_first() {
        let homes: Vec<usize> = (0..5).map(|i| home_node(ConnectionLayout::Spread, i, 3)).collect();
        assert_eq!(homes, vec![0, 1, 2, 0, 1]);
        assert_eq!(home_node(ConnectionLayout::PerInstance, 4, 3), 0);
        assert_eq!(home_node(ConnectionLayout::Shared, 4, 3), 0);
    }

    #[test]
    fn frame_max_is_the_smallest_power_of_two_that_carries_the_largest_body() {
        let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
        assert_eq!(frame_max_for(&scenario("message: { size: 16 }"), url), Some(4096));
        assert_eq!(frame_max_for(&scenario("message: { size: 4088 }"), url), Some(4096));
        assert_eq!(frame_max_for(&scenario("message: { size: 4089 }"), url), Some(8192));
        assert_eq!(frame_max_for(&scenario("message: { size: { min: 16, max: 20000 } }"), url), Some(32768));
        assert_eq!(frame_max_for(&scenario("message: { size: 1000000 }"), url), Some(131_072));
    }

    #[test]
    fn large_headers_raise_frame_max_and_a_frame_max_in_the_url_is_kept() {
        let header = "x".repeat(6000);
        let with_headers = scenario(&format!("message: {{ size: 16, headers: {{ big: {header} }} }}"));
        assert_eq!(frame_max_for(&with_headers, "amqp://127.0.0.1/%2f"), Some(8192));
        assert_eq!(frame_max_for(&with_headers, "amqp://127.0.0.1/%2f?frame_max=131072"), None);
        assert_eq!(
            with_frame_max("amqp://u:p@127.0.0.1:5672/%2f?heartbeat=10", 4096),
            "amqp://u:p@127.0.0.1:5672/%2f?heartbeat=10&frame_max=4096"
        );
    }
}
