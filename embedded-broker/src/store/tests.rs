//! The store alone: the power-cut property (every confirmed message survives any cut), torn tails,
//! damage reports and reclaimed segments.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::record::{FLAG_PERSISTENT, FLAG_RECOVER, RecordRef};
use super::sim::SimStorage;
use super::{Mark, MessageStore, QueueStore};

fn open(fs: &Arc<SimStorage>, segment_size: u64) -> MessageStore {
    MessageStore::open(Arc::new(Arc::clone(fs)), Path::new("/data/messages"), segment_size).expect("open")
}

fn queue(store: &MessageStore) -> QueueStore {
    store.queue("/", "q", true, 1, || "{}".into()).expect("queue")
}

fn body(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

fn append(q: &mut QueueStore, seq: u64, persistent: bool, len: usize, tail: bool) {
    let body = body(seq, len);
    let props = [0x10u8, 0, 2];
    let flags = if persistent { FLAG_RECOVER | FLAG_PERSISTENT } else { 0 };
    let r = RecordRef {
        seq,
        flags,
        priority: 0,
        expires: 0,
        exchange: "x",
        routing_key: "k",
        properties: &props,
        body: &body,
    };
    q.append(0, &r, tail).expect("append");
}

fn drain(q: &mut QueueStore) -> Vec<(u64, Vec<u8>, bool)> {
    let mut out = Vec::new();
    while let Some(l) = q.load(0) {
        assert_eq!(&l.record.properties[..], &[0x10, 0, 2], "properties come back byte for byte");
        out.push((l.record.seq, l.record.body.to_vec(), l.redelivered));
    }
    out
}

#[derive(Debug, Clone)]
enum Op {
    Publish { persistent: bool, len: usize },
    Deliver,
    Ack,
    Flush,
    Confirm,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..700).prop_map(|(persistent, len)| Op::Publish { persistent, len }),
        1 => Just(Op::Deliver),
        2 => Just(Op::Ack),
        1 => Just(Op::Flush),
        2 => Just(Op::Confirm),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A power cut at any point: every confirmed persistent message that was not acknowledged is
    /// recovered, in order, byte for byte, and nothing recovered was never published.
    #[test]
    fn every_confirmed_message_survives_a_power_cut(
        ops in proptest::collection::vec(op(), 1..120),
        cut_seed in any::<u64>(),
    ) {
        let fs = SimStorage::new();
        let store = open(&fs, 4096);
        let mut q = queue(&store);
        // seq -> (persistent, len); the queue's order is seq order.
        let mut published: BTreeMap<u64, (bool, usize)> = BTreeMap::new();
        let mut ready: Vec<u64> = Vec::new();
        let mut delivered: Vec<u64> = Vec::new();
        let mut acked: Vec<u64> = Vec::new();
        let mut confirmed: Vec<u64> = Vec::new();
        let mut unconfirmed: Vec<u64> = Vec::new();
        let mut seq = 0;
        for op in ops {
            match op {
                Op::Publish { persistent, len } => {
                    append(&mut q, seq, persistent, len, false);
                    published.insert(seq, (persistent, len));
                    ready.push(seq);
                    if persistent { unconfirmed.push(seq); }
                    seq += 1;
                }
                Op::Deliver => if !ready.is_empty() {
                    let s = ready.remove(0);
                    q.mark(0, s, Mark::Delivered, published[&s].0);
                    delivered.push(s);
                }
                Op::Ack => if !delivered.is_empty() {
                    let s = delivered.remove(0);
                    q.mark(0, s, Mark::Gone, published[&s].0);
                    acked.push(s);
                }
                Op::Flush => q.flush().expect("flush"),
                Op::Confirm => {
                    q.flush().expect("flush");
                    store.sync_now();
                    confirmed.append(&mut unconfirmed);
                }
            }
        }
        drop(q);
        drop(store);
        let mut rng = cut_seed;
        fs.power_cut(|_, lost| {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 33) as usize % (lost + 1), rng & 1 == 1)
        });
        let store = open(&fs, 4096);
        let mut q = queue(&store);
        let back = drain(&mut q);
        let seqs: Vec<u64> = back.iter().map(|(s, _, _)| *s).collect();
        prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
        for (s, b, _) in &back {
            let (persistent, len) = published.get(s).copied().expect("recovered messages were published");
            prop_assert!(persistent, "transient messages never come back");
            prop_assert_eq!(b, &body(*s, len));
        }
        for s in confirmed.iter().filter(|s| !acked.contains(s)) {
            prop_assert!(seqs.contains(s), "confirmed message {} lost; got {:?}", s, seqs);
        }
        prop_assert!(q.next_seq() >= seqs.last().map_or(0, |s| s + 1));
    }
}

#[test]
fn a_restart_without_a_cut_loses_nothing_and_keeps_delivered_flags() {
    let fs = SimStorage::new();
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    for seq in 0..100 {
        append(&mut q, seq, seq % 3 != 0, 100, seq >= 50);
    }
    for seq in [1, 2] {
        q.mark(0, seq, Mark::Delivered, true);
    }
    q.mark(0, 1, Mark::Gone, true);
    q.flush().expect("flush");
    drop(q);
    drop(store);
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    let back = drain(&mut q);
    let expected: Vec<u64> = (0..100).filter(|s| s % 3 != 0 && *s != 1).collect();
    assert_eq!(back.iter().map(|b| b.0).collect::<Vec<_>>(), expected);
    assert!(back.iter().all(|(s, _, redelivered)| *redelivered == (*s == 2)));
    // Everything loaded and then acknowledged: every segment file goes.
    for (s, _, _) in &back {
        q.mark(0, *s, Mark::Gone, true);
    }
    q.flush().expect("flush");
    let segments = fs.files().into_iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "seg")).count();
    assert!(segments <= 1, "only the segment being written may stay: {:?}", fs.files());
}

#[test]
fn damage_inside_a_segment_is_reported_and_the_rest_recovered() {
    let fs = SimStorage::new();
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    for seq in 0..60 {
        append(&mut q, seq, true, 100, false);
    }
    q.flush().expect("flush");
    store.sync_now();
    drop(q);
    drop(store);
    let first = fs.files().into_iter().find(|(p, _)| p.extension().is_some_and(|e| e == "seg")).expect("a segment").0;
    assert!(fs.corrupt(&first, 200, b"\xff\xff"), "damage the first segment");
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    let back: Vec<u64> = drain(&mut q).into_iter().map(|b| b.0).collect();
    assert_eq!(back[0], 0, "the record before the damage survives");
    let second = back[1];
    assert!(second > 1, "what follows the damage in its segment is skipped: {back:?}");
    assert_eq!(back[1..], (second..60).collect::<Vec<_>>()[..], "later segments are read in full");
}
