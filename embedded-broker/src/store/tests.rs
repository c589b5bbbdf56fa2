//! The store alone: the power-cut property (every confirmed message survives any cut, compactions
//! included), torn tails, damage reports, reclaimed and compacted segments.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::record::{FLAG_PERSISTENT, FLAG_RECOVER, RecordRef};
use super::sim::SimStorage;
use super::storage::Storage as _;
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
    Publish {
        persistent: bool,
        len: usize,
    },
    Deliver,
    /// Acknowledges one of the delivered messages (any of them: consumers ack out of order, and a
    /// message left unacknowledged pins its segment).
    Ack(prop::sample::Index),
    Flush,
    Confirm,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0usize..700).prop_map(|(persistent, len)| Op::Publish { persistent, len }),
        2 => Just(Op::Deliver),
        2 => any::<prop::sample::Index>().prop_map(Op::Ack),
        1 => Just(Op::Flush),
        2 => Just(Op::Confirm),
        1 => Just(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// A power cut at any point: every confirmed persistent message that was not acknowledged is
    /// recovered, in order, byte for byte, and nothing recovered was never published; segments
    /// compacted on the way included.
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
                Op::Ack(i) => if !delivered.is_empty() {
                    let s = delivered.remove(i.index(delivered.len()));
                    q.mark(0, s, Mark::Gone, published[&s].0);
                    acked.push(s);
                }
                Op::Flush => q.flush().expect("flush"),
                Op::Compact => q.compact(),
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
    assert!(segment_files(&fs) <= 1, "only the segment being written may stay: {:?}", fs.files());
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

#[test]
fn a_full_disk_keeps_new_records_buffered_until_space_returns() {
    let fs = SimStorage::new();
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    append(&mut q, 0, true, 100, false);
    q.flush().expect("flush");
    let used: u64 = fs.files().iter().map(|(_, len)| len).sum();
    fs.set_capacity(Some(used));
    // Many segments' worth: every append is taken although no new segment can be written.
    for seq in 1..100 {
        append(&mut q, seq, true, 100, false);
    }
    assert!(q.flush().is_err(), "the disk is full");
    assert_eq!(fs.files().iter().map(|(_, len)| len).sum::<u64>(), used, "nothing more was written");
    fs.set_capacity(None);
    q.flush().expect("space returned");
    let back = reopened(&fs, store, q, 2048);
    assert_eq!(back, (0..100).collect::<Vec<_>>(), "every record, in order");
}

#[test]
fn a_disk_that_refuses_everything_from_the_start_keeps_records_buffered_and_readable() {
    let fs = SimStorage::new();
    let store = open(&fs, 2048);
    let mut q = queue(&store);
    // Not even the queue's directory can be made.
    fs.crash_after(Some(0));
    for seq in 0..40 {
        append(&mut q, seq, true, 100, seq >= 10);
    }
    assert!(q.flush().is_err(), "the disk refuses");
    assert!(fs.files().is_empty(), "nothing was created: {:?}", fs.files());
    // The tail is read back from the buffer it waits in, not lost.
    let tail: Vec<u64> = std::iter::from_fn(|| q.load(0)).map(|l| l.record.seq).collect();
    assert_eq!(tail, (10..40).collect::<Vec<_>>(), "the tail, in order, while the disk refuses");
    fs.crash_after(None);
    q.flush().expect("the disk takes writes again");
    let back = reopened(&fs, store, q, 2048);
    assert_eq!(back, (0..40).collect::<Vec<_>>(), "every record, in order, after a restart");
}

#[test]
fn acknowledgements_wait_for_a_mark_file_the_disk_will_not_create_and_stay_acknowledged() {
    let fs = SimStorage::new();
    let store = open(&fs, 4096);
    let mut q = queue(&store);
    for seq in 0..20 {
        append(&mut q, seq, true, 100, false);
    }
    q.flush().expect("flush");
    fs.crash_after(Some(0));
    for seq in 0..10 {
        q.mark(0, seq, Mark::Gone, true);
    }
    assert!(q.flush().is_err(), "the mark file cannot be created");
    fs.crash_after(None);
    q.flush().expect("the disk takes writes again");
    let back = reopened(&fs, store, q, 4096);
    assert_eq!(back, (10..20).collect::<Vec<_>>(), "acknowledged messages do not come back");
}

#[test]
fn a_drained_queue_gives_back_the_segment_it_was_writing_at_the_next_sweep() {
    let fs = SimStorage::new();
    let store = open(&fs, 8192);
    let mut q = queue(&store);
    for seq in 0..30 {
        append(&mut q, seq, true, 100, false);
    }
    q.flush().expect("flush");
    assert_eq!(segment_files(&fs), 1, "one segment, still being written");
    for seq in 0..30 {
        q.mark(0, seq, Mark::Gone, true);
    }
    q.flush().expect("flush");
    q.compact();
    assert_eq!(segment_files(&fs), 0, "nothing alive: the segment goes: {:?}", fs.files());
    // The queue goes on in a new segment, and a restart finds what followed only.
    for seq in 30..40 {
        append(&mut q, seq, true, 100, false);
    }
    q.flush().expect("flush");
    let back = reopened(&fs, store, q, 8192);
    assert_eq!(back, (30..40).collect::<Vec<_>>());
}

#[test]
fn a_consumers_few_unacknowledged_messages_do_not_pin_the_segment_being_written() {
    let fs = SimStorage::new();
    let store = open(&fs, 8192);
    let mut q = queue(&store);
    for seq in 0..40 {
        append(&mut q, seq, true, 100, false);
    }
    // Acknowledged but for the last three, still with the consumer.
    for seq in 0..37 {
        q.mark(0, seq, Mark::Gone, true);
    }
    q.flush().expect("flush");
    let before: u64 = fs.files().iter().map(|(_, len)| len).sum();
    q.compact();
    let after: u64 = fs.files().iter().map(|(_, len)| len).sum();
    assert!(after * 4 < before, "the segment is rewritten with the three kept: {before} -> {after} bytes");
    let back = reopened(&fs, store, q, 8192);
    assert_eq!(back, vec![37, 38, 39], "the unacknowledged three are back after a restart");
}

#[test]
fn a_small_drained_segment_is_kept_for_the_next_messages() {
    let fs = SimStorage::new();
    let store = open(&fs, 1 << 20);
    let mut q = queue(&store);
    for seq in 0..3 {
        append(&mut q, seq, true, 100, false);
        q.mark(0, seq, Mark::Gone, true);
    }
    q.flush().expect("flush");
    q.compact();
    assert_eq!(segment_files(&fs), 1, "a queue that keeps up does not make a file per sweep");
}

/// Syncs, closes the store and opens it again on the same files: the sequence numbers the queue
/// gives back, in order.
fn reopened(fs: &Arc<SimStorage>, store: MessageStore, q: QueueStore, segment_size: u64) -> Vec<u64> {
    store.sync_now();
    drop(q);
    drop(store);
    let store = open(fs, segment_size);
    let mut q = queue(&store);
    drain(&mut q).into_iter().map(|b| b.0).collect()
}

fn segment_files(fs: &SimStorage) -> usize {
    fs.files().into_iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "seg")).count()
}

/// Publishes `count` persistent messages of 100 bytes, confirmed; returns the store and queue.
fn confirmed_queue(fs: &Arc<SimStorage>, count: u64) -> (MessageStore, QueueStore) {
    let store = open(fs, 4096);
    let mut q = queue(&store);
    for seq in 0..count {
        append(&mut q, seq, true, 100, false);
    }
    q.flush().expect("flush");
    store.sync_now();
    (store, q)
}

fn first_segment(fs: &SimStorage) -> (std::path::PathBuf, u64) {
    fs.files().into_iter().find(|(p, _)| p.extension().is_some_and(|e| e == "seg")).expect("a segment")
}

fn segment_bytes(fs: &SimStorage) -> u64 {
    fs.files().into_iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "seg")).map(|(_, len)| len).sum()
}

#[test]
fn a_segment_pinned_by_a_few_unacknowledged_messages_is_compacted_to_them() {
    let fs = SimStorage::new();
    let (store, mut q) = confirmed_queue(&fs, 200);
    // Every message delivered; all but 5 and 7 (unacknowledged) and 150.. (still ready) acknowledged,
    // out of order.
    for seq in 0..150 {
        q.mark(0, seq, Mark::Delivered, true);
    }
    for seq in (0..150).rev().filter(|s| ![5, 7].contains(s)) {
        q.mark(0, seq, Mark::Gone, true);
    }
    q.flush().expect("flush");
    let (first, before) = first_segment(&fs);
    let total = segment_bytes(&fs);
    q.compact();
    let after = fs.files().into_iter().find(|(p, _)| *p == first).map_or(0, |(_, len)| len);
    assert!(before > 3000 && after < 400, "the pinned segment holds its 2 messages only: {before} -> {after} bytes");
    assert_eq!(segment_bytes(&fs), total - before + after, "the other segments are untouched");
    assert!(!fs.files().iter().any(|(p, _)| p.to_string_lossy().ends_with(".new")), "nothing left half-done");
    // Later marks go to the rewritten segment's mark file.
    q.mark(0, 7, Mark::Gone, true);
    q.flush().expect("flush");
    drop(q);
    drop(store);
    let store = open(&fs, 4096);
    let mut q = queue(&store);
    let back = drain(&mut q);
    let seqs: Vec<u64> = back.iter().map(|b| b.0).collect();
    assert_eq!(seqs, [5].into_iter().chain(150..200).collect::<Vec<_>>(), "the live messages, in order");
    for (seq, body_back, redelivered) in &back {
        assert_eq!(body_back, &body(*seq, 100), "message {seq} byte for byte");
        assert_eq!(*redelivered, *seq == 5, "only the delivered one is redelivered");
    }
}

#[test]
fn a_crash_at_any_step_of_a_compaction_loses_nothing_and_brings_nothing_back() {
    // Count the changes a compaction makes, then crash after each number of them in turn.
    let steps = {
        let fs = SimStorage::new();
        let (_store, mut q) = pinned(&fs);
        fs.crash_after(Some(usize::MAX));
        q.compact();
        usize::MAX - lock_left(&fs)
    };
    assert!(steps >= 5, "a compaction writes, syncs and renames: {steps} changes");
    for crash_at in 0..=steps {
        let fs = SimStorage::new();
        let (store, mut q) = pinned(&fs);
        fs.crash_after(Some(crash_at));
        q.compact();
        drop(q);
        drop(store);
        fs.power_cut(|_, _| (0, false));
        let store = open(&fs, 4096);
        let mut q = queue(&store);
        let back = drain(&mut q);
        let seqs: Vec<u64> = back.iter().map(|b| b.0).collect();
        assert_eq!(
            seqs,
            [3, 9].into_iter().chain(150..200).collect::<Vec<_>>(),
            "crash after {crash_at} of {steps} changes"
        );
        assert!(back.iter().all(|(s, b, r)| b == &body(*s, 100) && *r == (*s == 3)), "crash after {crash_at}");
    }
}

/// 200 confirmed messages; 0..150 delivered and acknowledged except 3 and 9 (3 delivered again
/// later, 9 not), every mark synced, so only a compaction can change what a restart finds.
fn pinned(fs: &Arc<SimStorage>) -> (MessageStore, QueueStore) {
    let (store, mut q) = confirmed_queue(fs, 200);
    for seq in (0..150).filter(|s| *s != 9) {
        q.mark(0, seq, Mark::Delivered, true);
    }
    for seq in (0..150).filter(|s| ![3, 9].contains(s)) {
        q.mark(0, seq, Mark::Gone, true);
    }
    q.flush().expect("flush");
    for (path, _) in fs.files() {
        let file = fs.open(&path, false).expect("open");
        file.sync_data().expect("sync");
        fs.sync_dir(path.parent().expect("a directory")).expect("sync dir");
    }
    (store, q)
}

/// The changes [`SimStorage::crash_after`] still allows.
fn lock_left(fs: &SimStorage) -> usize {
    fs.changes_left().unwrap_or(usize::MAX)
}
