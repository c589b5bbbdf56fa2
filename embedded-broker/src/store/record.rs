//! The bytes on disk: segment headers, message records and mark entries, each with a CRC-32
//! checksum so a torn or damaged write is told from a good one.
//!
//! ```text
//! segment file  = magic "WRNSEG01" , record*
//! record        = len u32 , crc32(body) u32 , body            (len = bytes of body)
//! body          = kind u8 (1) , flags u8 , priority u8 , seq u64 , expires u64 ,
//!                 exchange_len u8 , exchange , routing_key_len u8 , routing_key ,
//!                 properties_len u32 , properties , message body (the rest)
//! mark file     = entry*
//! entry         = seq u64 , kind u8 , 0 0 0 , crc32(first 12 bytes) u32      (16 bytes)
//! ```
//!
//! Integers are little-endian. `expires` is wall-clock milliseconds since the Unix epoch (0:
//! never), so a TTL keeps running across a restart. `properties` are the publisher's content-header
//! bytes, kept byte for byte.

use bytes::Bytes;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: &[u8; 8] = b"WRNSEG01";

/// Bytes before a record's body.
pub const RECORD_HEADER: usize = 8;

/// Bytes of one mark entry.
pub const MARK_LEN: usize = 16;

const KIND_MESSAGE: u8 = 1;
/// The record is recovered after a restart: a persistent message in a durable queue.
pub const FLAG_RECOVER: u8 = 1;
/// delivery_mode 2.
pub const FLAG_PERSISTENT: u8 = 2;

/// What a mark entry says about the record with its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Gone for good (acknowledged, dropped, expired, dead-lettered, purged).
    Gone,
    /// Delivered to a consumer that has not acknowledged it (yet).
    Delivered,
}

impl Mark {
    fn code(self) -> u8 {
        match self {
            Mark::Gone => b'G',
            Mark::Delivered => b'D',
        }
    }
}

/// A message record's fields, borrowed for writing.
#[derive(Debug, Clone, Copy)]
pub struct RecordRef<'a> {
    /// Queue-wide publish sequence.
    pub seq: u64,
    /// [`FLAG_RECOVER`], [`FLAG_PERSISTENT`].
    pub flags: u8,
    /// Priority property.
    pub priority: u8,
    /// Wall-clock expiry (ms since the epoch), 0 for none.
    pub expires: u64,
    /// Exchange published to.
    pub exchange: &'a str,
    /// Routing key.
    pub routing_key: &'a str,
    /// Raw content-header properties.
    pub properties: &'a [u8],
    /// Body.
    pub body: &'a [u8],
}

/// A decoded message record; byte fields share the buffer it was read into.
#[derive(Debug, Clone)]
pub struct Record {
    /// Queue-wide publish sequence.
    pub seq: u64,
    /// [`FLAG_RECOVER`], [`FLAG_PERSISTENT`].
    pub flags: u8,
    /// Priority property.
    pub priority: u8,
    /// Wall-clock expiry (ms since the epoch), 0 for none.
    pub expires: u64,
    /// Exchange published to.
    pub exchange: Bytes,
    /// Routing key.
    pub routing_key: Bytes,
    /// Raw content-header properties.
    pub properties: Bytes,
    /// Body.
    pub body: Bytes,
}

impl Record {
    /// Recovered after a restart.
    pub fn recover(&self) -> bool {
        self.flags & FLAG_RECOVER != 0
    }
}

/// Bytes a record takes on disk.
pub fn record_len(r: &RecordRef<'_>) -> usize {
    RECORD_HEADER
        + 3
        + 16
        + 2
        + r.exchange.len().min(255)
        + r.routing_key.len().min(255)
        + 4
        + r.properties.len()
        + r.body.len()
}

/// Appends a record to `out`.
pub fn encode(out: &mut Vec<u8>, r: &RecordRef<'_>) {
    let start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    out.extend_from_slice(&[KIND_MESSAGE, r.flags, r.priority]);
    out.extend_from_slice(&r.seq.to_le_bytes());
    out.extend_from_slice(&r.expires.to_le_bytes());
    // AMQP short strings: never longer than 255 bytes.
    let exchange = &r.exchange.as_bytes()[..r.exchange.len().min(255)];
    let key = &r.routing_key.as_bytes()[..r.routing_key.len().min(255)];
    out.push(exchange.len() as u8);
    out.extend_from_slice(exchange);
    out.push(key.len() as u8);
    out.extend_from_slice(key);
    out.extend_from_slice(&(r.properties.len() as u32).to_le_bytes());
    out.extend_from_slice(r.properties);
    out.extend_from_slice(r.body);
    let body_len = (out.len() - start - RECORD_HEADER) as u32;
    let crc = crc32fast::hash(&out[start + RECORD_HEADER..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What the bytes at some position hold.
#[derive(Debug)]
pub enum Decoded {
    /// A good record and the bytes it took.
    Record(Record, usize),
    /// The buffer ends inside a record that needs this many bytes in all.
    Incomplete(usize),
    /// Not a record: zeros, a torn write, or damage.
    Invalid(&'static str),
}

/// Decodes the record at the start of `buf` (a buffer read from the file; fields share it).
pub fn decode(buf: &Bytes) -> Decoded {
    if buf.len() < RECORD_HEADER {
        return Decoded::Incomplete(RECORD_HEADER);
    }
    let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len < 3 + 16 + 2 + 4 {
        return Decoded::Invalid(if len == 0 && crc == 0 { "zeros" } else { "a record too short to be one" });
    }
    let total = RECORD_HEADER + len;
    if buf.len() < total {
        return Decoded::Incomplete(total);
    }
    let body = &buf[RECORD_HEADER..total];
    if crc32fast::hash(body) != crc {
        return Decoded::Invalid("a checksum mismatch");
    }
    if body[0] != KIND_MESSAGE {
        return Decoded::Invalid("an unknown record kind");
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let (flags, priority, seq, expires) = (body[1], body[2], u64_at(3), u64_at(11));
    let mut at = 19;
    let field = |at: &mut usize, n: usize| -> Option<std::ops::Range<usize>> {
        let start = *at;
        let end = start.checked_add(n).filter(|&e| e <= body.len())?;
        *at = end;
        Some(RECORD_HEADER + start..RECORD_HEADER + end)
    };
    let parsed = (|| {
        let n = usize::from(*body.get(at)?);
        at += 1;
        let exchange = field(&mut at, n)?;
        let n = usize::from(*body.get(at)?);
        at += 1;
        let key = field(&mut at, n)?;
        let n = field(&mut at, 4)?;
        let n = u32::from_le_bytes([buf[n.start], buf[n.start + 1], buf[n.start + 2], buf[n.start + 3]]) as usize;
        let properties = field(&mut at, n)?;
        Some((exchange, key, properties, RECORD_HEADER + at..total))
    })();
    let Some((exchange, key, properties, rest)) = parsed else {
        return Decoded::Invalid("a record whose fields overrun it");
    };
    Decoded::Record(
        Record {
            seq,
            flags,
            priority,
            expires,
            exchange: buf.slice(exchange),
            routing_key: buf.slice(key),
            properties: buf.slice(properties),
            body: buf.slice(rest),
        },
        total,
    )
}

/// Appends a mark entry to `out`.
pub fn encode_mark(out: &mut Vec<u8>, seq: u64, mark: Mark) {
    let mut entry = [0u8; MARK_LEN];
    entry[..8].copy_from_slice(&seq.to_le_bytes());
    entry[8] = mark.code();
    let crc = crc32fast::hash(&entry[..12]);
    entry[12..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&entry);
}

/// Decodes one mark entry; `None` for a torn or damaged one.
pub fn decode_mark(entry: &[u8]) -> Option<(u64, Mark)> {
    if entry.len() < MARK_LEN {
        return None;
    }
    let crc = u32::from_le_bytes([entry[12], entry[13], entry[14], entry[15]]);
    if crc32fast::hash(&entry[..12]) != crc {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&entry[..8]);
    let mark = match entry[8] {
        b'G' => Mark::Gone,
        b'D' => Mark::Delivered,
        _ => return None,
    };
    Some((u64::from_le_bytes(seq), mark))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample<'a>(body: &'a [u8], properties: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            seq: 42,
            flags: FLAG_RECOVER | FLAG_PERSISTENT,
            priority: 3,
            expires: 1_700_000_000_000,
            exchange: "amq.topic",
            routing_key: "orders.created",
            properties,
            body,
        }
    }

    proptest! {
        #[test]
        fn records_round_trip_and_any_damage_is_detected(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            properties in proptest::collection::vec(any::<u8>(), 0..40),
            flip in any::<prop::sample::Index>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let r = sample(&body, &properties);
            let mut out = Vec::new();
            encode(&mut out, &r);
            prop_assert_eq!(out.len(), record_len(&r));
            let bytes = Bytes::from(out.clone());
            let Decoded::Record(back, used) = decode(&bytes) else { panic!("a good record decodes") };
            prop_assert_eq!(used, out.len());
            prop_assert_eq!((back.seq, back.flags, back.priority, back.expires), (42, r.flags, 3, r.expires));
            prop_assert_eq!(&back.exchange[..], b"amq.topic");
            prop_assert_eq!(&back.routing_key[..], b"orders.created");
            prop_assert_eq!(&back.properties[..], &properties[..]);
            prop_assert_eq!(&back.body[..], &body[..]);
            // One flipped bit anywhere is never taken for a good record.
            let mut damaged = out.clone();
            let i = flip.index(damaged.len());
            damaged[i] ^= 0x10;
            prop_assert!(!matches!(decode(&Bytes::from(damaged)), Decoded::Record(..)));
            // A cut anywhere asks for more bytes or is refused, never misread.
            let cut = cut.index(out.len());
            prop_assert!(!matches!(decode(&Bytes::from(out[..cut].to_vec())), Decoded::Record(..)));
        }
    }

    #[test]
    fn marks_round_trip_and_zeros_are_not_marks() {
        let mut out = Vec::new();
        encode_mark(&mut out, 7, Mark::Delivered);
        encode_mark(&mut out, u64::MAX, Mark::Gone);
        assert_eq!(decode_mark(&out[..MARK_LEN]), Some((7, Mark::Delivered)));
        assert_eq!(decode_mark(&out[MARK_LEN..]), Some((u64::MAX, Mark::Gone)));
        assert_eq!(decode_mark(&[0u8; MARK_LEN]), None);
        assert_eq!(decode_mark(&out[..MARK_LEN - 1]), None);
        assert!(matches!(decode(&Bytes::from(vec![0u8; 64])), Decoded::Invalid("zeros")));
    }
}
