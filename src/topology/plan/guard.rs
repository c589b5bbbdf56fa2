//! Data-loss guards: a plan that would replace or delete a queue holding
//! messages or consumers (or a vhost holding such queues) is refused unless
//! the user accepts the loss with `--allow-data-loss`.
//!
//! The management API's counts lag by up to its statistics interval (5 s by
//! default), so a queue that just received messages can look empty there.
//! When an AMQP URL is known, every queue the plan would drop is also asked
//! directly with a passive `queue.declare`, whose counts are current.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

use super::{Action, Plan, Subject};
use crate::management::{Management, ManagementError, QueueStats, QueueStatsMap};
use crate::topology::model::Topology;

/// Queue arguments a policy key can set instead, so the queue need not be replaced.
const POLICY_KEYS: &[(&str, &str)] = &[
    ("x-message-ttl", "message-ttl"),
    ("x-expires", "expires"),
    ("x-max-length", "max-length"),
    ("x-max-length-bytes", "max-length-bytes"),
    ("x-overflow", "overflow"),
    ("x-dead-letter-exchange", "dead-letter-exchange"),
    ("x-dead-letter-routing-key", "dead-letter-routing-key"),
    ("x-dead-letter-strategy", "dead-letter-strategy"),
    ("x-delivery-limit", "delivery-limit"),
    ("x-queue-mode", "queue-mode"),
    ("x-queue-version", "queue-version"),
    ("x-queue-leader-locator", "queue-leader-locator"),
    ("x-max-age", "max-age"),
    ("x-stream-max-segment-size-bytes", "stream-max-segment-size-bytes"),
];

/// Queues (vhost, name) the plan would drop: replaced or deleted queues, and
/// every queue of a deleted vhost (as `current` holds them).
pub fn endangered_queues(plan: &Plan, current: &Topology) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for change in &plan.changes {
        match (&change.action, &change.subject) {
            (Action::Replace | Action::Delete, Subject::Queue { vhost, name, .. }) => {
                out.push((vhost.clone(), name.clone()))
            }
            (Action::Delete, Subject::Vhost { name, .. }) => {
                if let Some(v) = current.vhosts.get(name) {
                    out.extend(v.queues.keys().map(|q| (name.clone(), q.clone())));
                }
            }
            _ => {}
        }
    }
    out
}

/// The guards' verdict on `plan`: one line per change that would lose data,
/// empty when none would. Counts come from the management API for the
/// vhosts concerned, refined over AMQP through the first of `amqp_urls`
/// that answers (none: the management API's counts alone).
pub async fn check(
    management: &Management,
    amqp_urls: &[String],
    plan: &Plan,
    current: &Topology,
) -> Result<Vec<String>, ManagementError> {
    let endangered = endangered_queues(plan, current);
    if endangered.is_empty() {
        return Ok(Vec::new());
    }
    let vhosts: BTreeSet<String> = endangered.iter().map(|(v, _)| v.clone()).collect();
    let mut stats = crate::topology::current::queue_stats(management, &vhosts).await?;
    if !amqp_urls.is_empty() {
        refresh_counts(amqp_urls, &endangered, &mut stats).await;
    }
    Ok(refusals(plan, &stats))
}

/// Takes the larger of the management API's and the broker's own counts for
/// `queues`, asking over AMQP through the first of `amqp_urls` that answers
/// (its vhost path is replaced per vhost). A queue that cannot be asked keeps
/// the management API's counts.
pub async fn refresh_counts(amqp_urls: &[String], queues: &[(String, String)], stats: &mut QueueStatsMap) {
    let mut by_vhost: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (vhost, name) in queues {
        by_vhost.entry(vhost).or_default().push(name);
    }
    for (vhost, names) in by_vhost {
        let Some(connection) = connect_to_vhost(amqp_urls, vhost).await else {
            tracing::warn!("cannot open an AMQP connection to vhost {vhost:?}; using the management API's counts");
            continue;
        };
        for name in names {
            // A failed passive declare closes the channel: one channel per queue.
            let Ok(channel) = connection.create_channel().await else { break };
            let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
            if let Ok(queue) = channel.queue_declare(name.into(), options, FieldTable::default()).await {
                let entry = stats.entry((vhost.to_owned(), name.to_owned())).or_default();
                entry.messages = entry.messages.max(u64::from(queue.message_count()));
                entry.consumers = entry.consumers.max(u64::from(queue.consumer_count()));
                let _ = channel.close(200, "OK".into()).await;
            }
        }
        let _ = connection.close(200, "OK".into()).await;
    }
}

/// A connection to `vhost` through the first node of `amqp_urls` that answers.
async fn connect_to_vhost(amqp_urls: &[String], vhost: &str) -> Option<Connection> {
    for amqp_url in amqp_urls {
        let Ok(mut url) = url::Url::parse(amqp_url) else { continue };
        url.set_path(&format!("/{}", percent_encoding::utf8_percent_encode(vhost, percent_encoding::NON_ALPHANUMERIC)));
        if let Ok(connection) = Connection::connect(url.as_str(), ConnectionProperties::default()).await {
            return Some(connection);
        }
    }
    None
}

/// One line per change the guards refuse, naming the queue and its counts;
/// empty when the plan loses no messages.
pub fn refusals(plan: &Plan, stats: &QueueStatsMap) -> Vec<String> {
    let mut out = Vec::new();
    for change in &plan.changes {
        match (&change.action, &change.subject) {
            (Action::Replace | Action::Delete, Subject::Queue { vhost, name, .. }) => {
                let s = stats.get(&(vhost.clone(), name.clone())).copied().unwrap_or_default();
                if s.messages == 0 && s.consumers == 0 {
                    continue;
                }
                let verb = if change.action == Action::Replace { "replacing" } else { "deleting" };
                let mut line = format!("queue {name:?} in vhost {vhost:?} {}: {verb} it would lose them", holding(s));
                if change.action == Action::Replace {
                    let hints: Vec<String> = change
                        .changed
                        .iter()
                        .filter_map(|key| POLICY_KEYS.iter().find(|(arg, _)| arg == key))
                        .map(|(arg, policy_key)| format!("{arg} (policy key {policy_key})"))
                        .collect();
                    if !hints.is_empty() && hints.len() == change.changed.len() {
                        line.push_str(&format!("; a policy can set {} without replacing the queue", hints.join(", ")));
                    } else if !hints.is_empty() {
                        line.push_str(&format!("; a policy can set {} in place", hints.join(", ")));
                    }
                }
                out.push(line);
            }
            (Action::Delete, Subject::Vhost { name, .. }) => {
                let held: Vec<(&String, QueueStats)> = stats
                    .iter()
                    .filter(|((v, _), s)| v == name && (s.messages > 0 || s.consumers > 0))
                    .map(|((_, q), s)| (q, *s))
                    .collect();
                if !held.is_empty() {
                    let messages: u64 = held.iter().map(|(_, s)| s.messages).sum();
                    let names: Vec<String> = held.iter().map(|(q, _)| format!("{q:?}")).collect();
                    out.push(format!(
                        "vhost {name:?} holds {messages} message(s) in queue(s) {}: deleting it would lose them",
                        names.join(", ")
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

fn holding(s: QueueStats) -> String {
    let messages = if s.messages == 1 { "1 message".to_owned() } else { format!("{} messages", s.messages) };
    match s.consumers {
        0 => format!("holds {messages}"),
        1 => format!("holds {messages} and has 1 consumer"),
        n => format!("holds {messages} and has {n} consumers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::model::Queue;
    use crate::topology::plan::Change;

    fn replace_queue(changed: &[&str]) -> Plan {
        Plan::new(vec![Change {
            action: Action::Replace,
            subject: Subject::Queue { vhost: "/".into(), name: "q1".into(), desired: Some(Queue::default()) },
            reason: String::new(),
            changed: changed.iter().map(|s| (*s).to_owned()).collect(),
        }])
    }

    fn stats(messages: u64, consumers: u64) -> QueueStatsMap {
        QueueStatsMap::from([(("/".to_owned(), "q1".to_owned()), QueueStats { messages, consumers })])
    }

    #[test]
    fn replacing_a_queue_with_messages_is_refused_with_its_count_and_a_policy_hint() {
        let refused = refusals(&replace_queue(&["x-message-ttl"]), &stats(3, 0));
        assert_eq!(
            refused,
            ["queue \"q1\" in vhost \"/\" holds 3 messages: replacing it would lose them; a policy can set \
                 x-message-ttl (policy key message-ttl) without replacing the queue"]
        );
    }

    #[test]
    fn consumers_alone_are_enough_to_refuse_and_non_policy_changes_get_no_hint() {
        let refused = refusals(&replace_queue(&["durable"]), &stats(0, 2));
        assert_eq!(
            refused,
            ["queue \"q1\" in vhost \"/\" holds 0 messages and has 2 consumers: replacing it would lose them"]
        );
    }

    #[test]
    fn an_empty_idle_queue_may_be_replaced() {
        assert!(refusals(&replace_queue(&["x-message-ttl"]), &stats(0, 0)).is_empty());
        assert!(refusals(&replace_queue(&["x-message-ttl"]), &QueueStatsMap::new()).is_empty());
    }
}

/// An apply refused by a data-loss guard; `warren` exits 4 with it.
#[derive(Debug)]
pub struct DataLossRefused {
    /// One line per refused change, naming the entity and why.
    pub reasons: Vec<String>,
}

impl fmt::Display for DataLossRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refusing to apply: the plan would lose data (re-run with --allow-data-loss to accept)")?;
        for reason in &self.reasons {
            write!(f, "\n  {reason}")?;
        }
        Ok(())
    }
}

impl std::error::Error for DataLossRefused {}
