//! The messages a producer published that the broker has not confirmed yet:
//! what it re-sends, with the same stamp, when its connection drops.
//!
//! Sequence numbers go out in order, so the account is a window over them:
//! from the oldest unconfirmed one to the next to be sent, each slot holding
//! what a re-send needs until its confirm (or nack) clears it.

use std::collections::VecDeque;

/// One unconfirmed message: enough to send the same body again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    /// Its sequence number.
    pub seq: u32,
    /// The send time its stamp carries.
    pub sent_ns: u64,
    /// Its body's size.
    pub size: usize,
}

/// A producer's unconfirmed messages.
#[derive(Debug, Default)]
pub struct Unconfirmed {
    /// The sequence number of `slots[0]`.
    base: u32,
    /// `None` once confirmed.
    slots: VecDeque<Option<(u64, usize)>>,
    count: usize,
}

impl Unconfirmed {
    /// Notes message `seq`, just published (the next sequence number after the last noted).
    #[inline]
    pub fn sent(&mut self, seq: u32, sent_ns: u64, size: usize) {
        if self.slots.is_empty() {
            self.base = seq;
        }
        // Sequence numbers are handed out in order; a gap (none expected) just stays empty.
        let index = seq.saturating_sub(self.base) as usize;
        while self.slots.len() < index {
            self.slots.push_back(None);
        }
        if index == self.slots.len() {
            self.slots.push_back(Some((sent_ns, size)));
            self.count += 1;
        }
    }

    /// The broker answered for `seq` (ack or nack): nothing to re-send.
    #[inline]
    pub fn settled(&mut self, seq: u32) {
        let Some(index) = seq.checked_sub(self.base) else { return };
        if let Some(slot) = self.slots.get_mut(index as usize)
            && slot.take().is_some()
        {
            self.count -= 1;
        }
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// How many are unconfirmed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when every message was answered for.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The unconfirmed messages, oldest first.
    pub fn pending(&self) -> Vec<Sent> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                slot.map(|(sent_ns, size)| Sent { seq: self.base + index as u32, sent_ns, size })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_left_after_confirms_in_any_order_is_what_gets_sent_again() {
        let mut unconfirmed = Unconfirmed::default();
        for seq in 10..16 {
            unconfirmed.sent(seq, u64::from(seq) * 100, 64);
        }
        unconfirmed.settled(10);
        unconfirmed.settled(13);
        unconfirmed.settled(11);
        unconfirmed.settled(11); // a second answer changes nothing
        unconfirmed.settled(3); // nor one for a message long settled
        assert_eq!(unconfirmed.len(), 3);
        let pending: Vec<u32> = unconfirmed.pending().iter().map(|sent| sent.seq).collect();
        assert_eq!(pending, vec![12, 14, 15]);
        assert_eq!(unconfirmed.pending()[0], Sent { seq: 12, sent_ns: 1200, size: 64 });
        for seq in [12, 14, 15] {
            unconfirmed.settled(seq);
        }
        assert!(unconfirmed.is_empty() && unconfirmed.pending().is_empty());
        unconfirmed.sent(16, 1600, 8);
        assert_eq!(unconfirmed.pending(), vec![Sent { seq: 16, sent_ns: 1600, size: 8 }]);
    }
}
