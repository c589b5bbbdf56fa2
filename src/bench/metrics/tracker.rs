//! Which sequence numbers of which producer a consumer has seen: the basis
//! of loss, duplicate and reordering counts.
//!
//! One bit per sequence number and producer. Consumers of one queue each
//! keep their own tracker; the runner ORs them per queue at the end, so a
//! message consumed by any consumer of the queue counts as arrived.

/// A set of sequence numbers, one bit each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet(Vec<u64>);

impl SeqSet {
    /// Adds `seq`; true when it was in already.
    #[inline]
    pub fn insert(&mut self, seq: u32) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1 + word / 2, 0);
        }
        let mask = 1u64 << bit;
        let was = self.0[word] & mask != 0;
        self.0[word] |= mask;
        was
    }

    /// Whether `seq` is in.
    #[inline]
    pub fn contains(&self, seq: u32) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Adds every member of `other`.
    pub fn union(&mut self, other: &SeqSet) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= *b;
        }
    }

    /// How many there are.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

/// Sequence numbers seen from one producer.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    first: SeqSet,
    again: SeqSet,
}

impl Seen {
    /// Notes a delivery; true when this was a first delivery of a message
    /// already delivered once without the redelivered flag (a duplicate).
    #[inline]
    pub fn note(&mut self, seq: u32, redelivered: bool) -> bool {
        if redelivered {
            self.again.insert(seq);
            false
        } else {
            self.first.insert(seq)
        }
    }

    /// True when `seq` arrived before, flagged redelivered or not.
    #[inline]
    pub fn has(&self, seq: u32) -> bool {
        self.first.contains(seq) || self.again.contains(seq)
    }

    /// Adds another consumer's view of the same producer and queue.
    pub fn merge(&mut self, other: &Seen) {
        self.first.union(&other.first);
        self.again.union(&other.again);
    }

    /// How many sequence numbers in `range` for which `keep` holds arrived at all.
    pub fn arrived(&self, range: std::ops::Range<u32>, keep: impl Fn(u32) -> bool) -> u64 {
        range.filter(|seq| self.has(*seq) && keep(*seq)).count() as u64
    }

    /// The sequence numbers in `range` for which `keep` holds that never arrived.
    pub fn missing(&self, range: std::ops::Range<u32>, keep: impl Fn(u32) -> bool) -> impl Iterator<Item = u32> {
        range.filter(move |seq| !self.has(*seq) && keep(*seq))
    }

    /// How many distinct sequence numbers arrived as first deliveries.
    pub fn distinct_first(&self) -> u64 {
        self.first.len()
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

    /// Notes one delivery and says what it was to this consumer.
    #[inline]
    pub fn note(&mut self, producer: u32, seq: u32, redelivered: bool) -> Noted {
        let index = producer as usize;
        let Some(seen) = self.producers.get_mut(index) else {
            self.foreign += 1;
            return Noted::Foreign;
        };
        let new = !seen.has(seq);
        let duplicate = seen.note(seq, redelivered);
        if duplicate {
            self.duplicated += 1;
        }
        if !redelivered {
            self.first_deliveries[index] += 1;
            if self.last[index].is_some_and(|last| seq < last) {
                self.reordered += 1;
            }
            self.last[index] = Some(seq);
        }
        match (new, redelivered) {
            (true, false) => Noted::First,
            (true, true) => Noted::FirstRedelivered,
            (false, _) => Noted::Again,
        }
    }
}

/// What one delivery was to the consumer that noted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// Its first arrival here, without the redelivered flag.
    First,
    /// Its first arrival here, flagged redelivered: the broker had sent it
    /// before, to a connection that was lost or to another consumer.
    FirstRedelivered,
    /// It had arrived here before (a redelivery, or a duplicate).
    Again,
    /// Not warren's, or from a producer this run does not have.
    Foreign,
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
        assert_eq!(t.note(5, 0, false), Noted::Foreign);
        assert_eq!(t.foreign, 1);
    }

    #[test]
    fn a_redelivery_counts_as_an_arrival_only_when_the_message_never_came_before() {
        let mut t = Tracker::new(1);
        assert_eq!(t.note(0, 7, false), Noted::First);
        assert_eq!(t.note(0, 7, true), Noted::Again, "redelivered after a lost ack");
        // Sent to a connection that dropped before the consumer read it, then redelivered.
        assert_eq!(t.note(0, 8, true), Noted::FirstRedelivered);
        assert_eq!(t.note(0, 8, false), Noted::Again);
        assert_eq!(t.duplicated, 0, "a first delivery after a redelivery is not a duplicate");
        let mut set = SeqSet::default();
        assert!(!set.insert(3) && set.insert(3) && set.contains(3) && !set.contains(300));
        assert_eq!(set.len(), 1);
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
        assert_eq!(a.missing(0..8, |_| true).collect::<Vec<_>>(), vec![5, 6, 7]);
    }
}
