//! Which sequence numbers of which producer a consumer has seen: the basis
//! of loss, duplicate and reordering counts.
//!
//! One bit per sequence number and producer. Consumers of one queue each
//! keep their own tracker; the runner ORs them per queue at the end, so a
//! message consumed by any consumer of the queue counts as arrived.

/// Sequence numbers seen from one producer.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    first: Vec<u64>,
    again: Vec<u64>,
}

fn set(bits: &mut Vec<u64>, seq: u32) -> bool {
    let (word, bit) = ((seq / 64) as usize, seq % 64);
    if word >= bits.len() {
        bits.resize(word + 1 + word / 2, 0);
    }
    let mask = 1u64 << bit;
    let was = bits[word] & mask != 0;
    bits[word] |= mask;
    was
}

fn or_into(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a |= *b;
    }
}

fn count_in(bits: &[u64], range: std::ops::Range<u32>, mut keep: impl FnMut(u32) -> bool) -> u64 {
    let mut count = 0;
    for seq in range {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if bits.get(word).is_some_and(|w| w & (1 << bit) != 0) && keep(seq) {
            count += 1;
        }
    }
    count
}

impl Seen {
    /// Notes a delivery; true when this was a first delivery of a message
    /// already delivered once without the redelivered flag (a duplicate).
    #[inline]
    pub fn note(&mut self, seq: u32, redelivered: bool) -> bool {
        if redelivered {
            set(&mut self.again, seq);
            false
        } else {
            set(&mut self.first, seq)
        }
    }

    /// Adds another consumer's view of the same producer and queue.
    pub fn merge(&mut self, other: &Seen) {
        or_into(&mut self.first, &other.first);
        or_into(&mut self.again, &other.again);
    }

    /// How many sequence numbers in `range` for which `keep` holds arrived at all.
    pub fn arrived(&self, range: std::ops::Range<u32>, keep: impl Fn(u32) -> bool) -> u64 {
        let mut any = self.first.clone();
        or_into(&mut any, &self.again);
        count_in(&any, range, keep)
    }

    /// How many distinct sequence numbers arrived as first deliveries.
    pub fn distinct_first(&self) -> u64 {
        self.first.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// One consumer's record of every producer.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    /// Indexed by producer id.
    pub producers: Vec<Seen>,
    /// Deliveries without the redelivered flag, per producer.
    pub first_deliveries: Vec<u64>,
    /// First deliveries of a message this consumer had already had.
    pub duplicated: u64,
    /// Deliveries with a sequence number lower than the last one seen from the same producer.
    pub reordered: u64,
    /// Bodies that are not warren's, or name a producer this run does not have.
    pub foreign: u64,
    last: Vec<Option<u32>>,
}

impl Tracker {
    /// A tracker for `producers` producers.
    pub fn new(producers: usize) -> Tracker {
        Tracker {
            producers: vec![Seen::default(); producers],
            first_deliveries: vec![0; producers],
            duplicated: 0,
            reordered: 0,
            foreign: 0,
            last: vec![None; producers],
        }
    }

    /// Notes one delivery; false when the producer id is unknown.
    #[inline]
    pub fn note(&mut self, producer: u32, seq: u32, redelivered: bool) -> bool {
        let index = producer as usize;
        let Some(seen) = self.producers.get_mut(index) else {
            self.foreign += 1;
            return false;
        };
        if seen.note(seq, redelivered) {
            self.duplicated += 1;
        }
        if !redelivered {
            self.first_deliveries[index] += 1;
            if self.last[index].is_some_and(|last| seq < last) {
                self.reordered += 1;
            }
            self.last[index] = Some(seq);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_need_two_first_deliveries() {
        let mut t = Tracker::new(2);
        t.note(0, 1, false);
        t.note(0, 1, true);
        assert_eq!(t.duplicated, 0, "a redelivery is not a duplicate");
        t.note(0, 1, false);
        assert_eq!(t.duplicated, 1);
        t.note(0, 0, false);
        assert_eq!(t.reordered, 1);
        assert!(!t.note(5, 0, false));
        assert_eq!(t.foreign, 1);
    }

    #[test]
    fn merged_views_count_each_arrival_once() {
        let (mut a, mut b) = (Seen::default(), Seen::default());
        for seq in [0, 2, 4, 200] {
            a.note(seq, false);
        }
        for seq in [1, 2, 3] {
            b.note(seq, false);
        }
        a.merge(&b);
        assert_eq!(a.arrived(0..300, |_| true), 6);
        assert_eq!(a.arrived(0..300, |seq| seq % 2 == 0), 4);
        assert_eq!(a.arrived(0..4, |_| true), 4);
    }
}
