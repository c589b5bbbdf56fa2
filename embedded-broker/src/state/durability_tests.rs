//! The disk stays consistent with the queues: random sequences of publishes (some with a TTL),
//! gets, acks (in any order), rejects (dead-lettered), requeues, `x-max-length` drops, TTL expiry
//! (dead-lettered), purges, queue deletes, sweeps (which compact sparse segments) and restarts run
//! against queues with a message store (on the simulated file system, with a tiny in-memory head
//! so the disk tail is used) and against a plain model; after every restart the queues hold what
//! the model says, in its order, with its redelivered flags.

use std::path::Path;
use std::sync::Arc;

use amq_protocol::protocol::basic::AMQPProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;
use proptest::prelude::*;

use super::message::Message;
use super::queue::{Queue, QueuedMessage};
use super::{QueueDecl, State, clock_ms, encode_properties};
use crate::store::MessageStore;
use crate::store::sim::SimStorage;

const MAIN: &str = "main";
const DLQ: &str = "dlq";
const MAX_LENGTH: usize = 6;
/// The TTL of messages published with one: long enough never to pass while a case runs, so only
/// [`Op::Expire`] (a sweep with the clock moved past it) expires them.
const TTL_MS: u64 = 3_600_000;

#[derive(Debug, Clone)]
enum Op {
    Publish {
        persistent: bool,
        ttl: bool,
    },
    Get,
    GetNoAck,
    Ack(prop::sample::Index),
    Reject {
        requeue: bool,
    },
    Purge,
    /// The clock moves past every TTL: the sweep dead-letters expired messages at the head.
    Expire,
    /// The queue is deleted (`main` or the dead-letter queue) and declared again.
    Delete {
        dlq: bool,
    },
    Sweep,
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), prop::bool::weighted(0.3)).prop_map(|(persistent, ttl)| Op::Publish { persistent, ttl }),
        3 => Just(Op::Get),
        1 => Just(Op::GetNoAck),
        2 => any::<prop::sample::Index>().prop_map(Op::Ack),
        2 => any::<bool>().prop_map(|requeue| Op::Reject { requeue }),
        1 => Just(Op::Purge),
        1 => Just(Op::Expire),
        1 => any::<bool>().prop_map(|dlq| Op::Delete { dlq }),
        1 => Just(Op::Sweep),
        1 => Just(Op::Restart),
    ]
}

/// A message as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct M {
    id: u64,
    persistent: bool,
    /// Published with a TTL (a dead-lettered copy has none: dead-lettering removes `expiration`).
    ttl: bool,
    /// Delivered at least once (before a requeue or a restart).
    delivered: bool,
    /// Its place in the queue's order.
    order: u64,
}

#[derive(Debug, Default)]
struct Model {
    main: Vec<M>,
    dlq: Vec<M>,
    unacked: Vec<M>,
    next_order: u64,
}

impl Model {
    fn dead_letter(&mut self, m: M) {
        let order = self.next_order;
        self.next_order += 1;
        self.dlq.push(M { delivered: false, ttl: false, order, ..m });
    }

    fn trim(&mut self) {
        while self.main.len() > MAX_LENGTH {
            let head = self.main.remove(0);
            self.dead_letter(head);
        }
    }

    /// Expired messages leave from the head only, as in RabbitMQ: one without a TTL stops it.
    fn expire(&mut self) {
        while self.main.first().is_some_and(|m| m.ttl) {
            let head = self.main.remove(0);
            self.dead_letter(head);
        }
    }

    fn requeue(&mut self, m: M) {
        let at = self.main.partition_point(|x| x.order < m.order);
        self.main.insert(at, M { delivered: true, ..m });
    }
}

fn declare(state: &State, name: &str) {
    let mut arguments = FieldTable::default();
    if name == MAIN {
        arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(MAX_LENGTH as i64));
        arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        arguments.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(DLQ.into()));
    }
    let decl = QueueDecl { name: name.into(), durable: true, auto_delete: false, exclusive_owner: None, arguments };
    state.declare_queue("/", decl).expect("declare");
}

fn open(fs: &Arc<SimStorage>) -> State {
    let store = MessageStore::open(Arc::new(Arc::clone(fs)), Path::new("/data/messages"), 4096).expect("store");
    let state = State::new(1 << 30);
    state.set_head_messages(2);
    state.attach_store(Arc::new(store), 0);
    // As the definitions import would at start.
    declare(&state, MAIN);
    declare(&state, DLQ);
    state
}

fn queue(state: &State, name: &str) -> Arc<Queue> {
    state.queue("/", name).expect("queue")
}

fn message(id: u64, persistent: bool, ttl: bool) -> Arc<Message> {
    let mut props = AMQPProperties::default().with_delivery_mode(if persistent { 2 } else { 1 });
    if ttl {
        props = props.with_expiration(TTL_MS.to_string().into());
    }
    Arc::new(Message {
        exchange: "".into(),
        routing_key: MAIN.into(),
        properties: encode_properties(&props),
        body: Bytes::from(id.to_string()),
        priority: 0,
        expiration_ms: ttl.then_some(TTL_MS),
        persistent,
    })
}

fn id_of(m: &QueuedMessage) -> u64 {
    String::from_utf8_lossy(&m.message.body).parse().expect("an id")
}

/// Everything in a queue as (id, redelivered), taken out.
fn drain(state: &State, name: &str) -> Vec<(u64, bool)> {
    let q = queue(state, name);
    let mut out = Vec::new();
    let mut dead = Vec::new();
    while let Some((m, _)) = q.get(true, &mut dead) {
        out.push((id_of(&m), m.redelivered));
    }
    assert!(dead.is_empty());
    out
}

fn settle(state: &State) {
    for q in state.queues(None) {
        assert!(q.flush());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn the_disk_follows_every_queue_operation_across_restarts(ops in proptest::collection::vec(op(), 1..80)) {
        let fs = SimStorage::new();
        let mut state = open(&fs);
        let mut model = Model::default();
        let mut unacked: Vec<QueuedMessage> = Vec::new();
        let mut next_id = 0;
        for op in ops {
            let main = queue(&state, MAIN);
            let mut dead = Vec::new();
            match op {
                Op::Publish { persistent, ttl } => {
                    main.publish(message(next_id, persistent, ttl), &mut dead);
                    let order = model.next_order;
                    model.next_order += 1;
                    model.main.push(M { id: next_id, persistent, ttl, delivered: false, order });
                    model.trim();
                    next_id += 1;
                }
                Op::Get | Op::GetNoAck => {
                    let no_ack = matches!(op, Op::GetNoAck);
                    let got = main.get(no_ack, &mut dead).map(|(m, _)| m);
                    let expected = (!model.main.is_empty()).then(|| model.main.remove(0));
                    prop_assert_eq!(got.as_ref().map(id_of), expected.as_ref().map(|m| m.id));
                    prop_assert_eq!(got.as_ref().map(|m| m.redelivered), expected.as_ref().map(|m| m.delivered));
                    if let (Some(got), Some(m), false) = (got, expected, no_ack) {
                        unacked.push(got);
                        model.unacked.push(M { delivered: true, ..m });
                    }
                }
                Op::Ack(i) => if !unacked.is_empty() {
                    let i = i.index(unacked.len());
                    main.ack(vec![unacked.remove(i)]);
                    model.unacked.remove(i);
                }
                Op::Sweep => state.sweep(),
                Op::Reject { requeue } => if !unacked.is_empty() {
                    let entry = unacked.remove(0);
                    let m = model.unacked.remove(0);
                    if requeue {
                        main.requeue(vec![entry], &mut dead);
                        model.requeue(m);
                        model.trim();
                    } else {
                        main.reject(vec![entry], &mut dead);
                        model.dead_letter(m);
                    }
                }
                Op::Purge => {
                    main.purge();
                    model.main.clear();
                }
                Op::Expire => {
                    main.sweep(clock_ms() + 2 * TTL_MS, &mut dead, &mut false);
                    model.expire();
                }
                Op::Delete { dlq } => {
                    let name = if dlq { DLQ } else { MAIN };
                    state.delete_queue("/", name, false, false).expect("delete");
                    declare(&state, name);
                    if dlq {
                        model.dlq.clear();
                    } else {
                        // What a consumer held of the deleted queue is gone with it.
                        unacked.clear();
                        model.unacked.clear();
                        model.main.clear();
                    }
                }
                Op::Restart => {
                    // The consumer's channel closes: what it holds goes back first.
                    main.requeue(std::mem::take(&mut unacked), &mut dead);
                    for m in std::mem::take(&mut model.unacked) {
                        model.requeue(m);
                    }
                    model.trim();
                    state.dead_letter("/", std::mem::take(&mut dead));
                    settle(&state);
                    drop(main);
                    drop(state);
                    state = open(&fs);
                    model.main.retain(|m| m.persistent);
                    model.dlq.retain(|m| m.persistent);
                    let main = queue(&state, MAIN);
                    prop_assert_eq!(main.counts().ready, model.main.len(), "ready after restart");
                    prop_assert_eq!(queue(&state, DLQ).counts().ready, model.dlq.len(), "dead letters after restart");
                    continue;
                }
            }
            state.dead_letter("/", dead);
            settle(&state);
            prop_assert_eq!(queue(&state, MAIN).counts().ready, model.main.len());
        }
        // A last restart, then everything is read back and compared.
        let main = queue(&state, MAIN);
        let mut dead = Vec::new();
        main.requeue(std::mem::take(&mut unacked), &mut dead);
        for m in std::mem::take(&mut model.unacked) {
            model.requeue(m);
        }
        model.trim();
        state.dead_letter("/", dead);
        settle(&state);
        drop(main);
        drop(state);
        let state = open(&fs);
        model.main.retain(|m| m.persistent);
        model.dlq.retain(|m| m.persistent);
        let expected: Vec<(u64, bool)> = model.main.iter().map(|m| (m.id, m.delivered)).collect();
        prop_assert_eq!(drain(&state, MAIN), expected);
        let expected: Vec<(u64, bool)> = model.dlq.iter().map(|m| (m.id, false)).collect();
        prop_assert_eq!(drain(&state, DLQ), expected);
    }
}
