//! The message body warren publishes and reads back.
//!
//! The first twelve bytes follow RabbitMQ PerfTest's layout, so other tools
//! can read warren's messages: a big-endian `u32` sequence number, then a
//! big-endian `u64` timestamp. warren adds a big-endian `u32` producer id, so
//! loss, duplicates and reordering are tracked per producer. The rest of the
//! body is padding up to the configured size.
//!
//! The timestamp is the *actual* send time in nanoseconds since the run
//! epoch (one monotonic clock shared by every actor of the process). The
//! *intended* send time is not carried: a consumer derives it from the
//! producer's schedule (`start + seq / rate`), which it knows because
//! producers and consumers share the process.

/// Bytes every message body starts with; smaller sizes are refused by validation.
pub const HEADER_LEN: usize = 16;

/// What a consumer reads from a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Sequence number within its producer, from 0.
    pub seq: u32,
    /// Actual send time, nanoseconds since the run epoch.
    pub sent_ns: u64,
    /// The producer instance that sent it.
    pub producer: u32,
}

impl Stamp {
    /// Writes the header into the first [`HEADER_LEN`] bytes of `body`.
    ///
    /// `body` must be at least [`HEADER_LEN`] long; validation guarantees it.
    pub fn write(self, body: &mut [u8]) {
        body[0..4].copy_from_slice(&self.seq.to_be_bytes());
        body[4..12].copy_from_slice(&self.sent_ns.to_be_bytes());
        body[12..16].copy_from_slice(&self.producer.to_be_bytes());
    }

    /// Reads the header; `None` for a body too short to be one of warren's.
    pub fn read(body: &[u8]) -> Option<Stamp> {
        let header: &[u8; HEADER_LEN] = body.get(..HEADER_LEN)?.try_into().ok()?;
        let (seq, rest) = header.split_at(4);
        let (sent, producer) = rest.split_at(8);
        Some(Stamp {
            seq: u32::from_be_bytes(seq.try_into().ok()?),
            sent_ns: u64::from_be_bytes(sent.try_into().ok()?),
            producer: u32::from_be_bytes(producer.try_into().ok()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_perftest_layout() {
        let mut body = [0u8; 20];
        Stamp { seq: 0x0102_0304, sent_ns: 0x1112_1314_1516_1718, producer: 7 }.write(&mut body);
        assert_eq!(&body[..4], &[1, 2, 3, 4], "sequence number first, big-endian");
        assert_eq!(&body[4..12], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18], "then the timestamp");
        assert_eq!(&body[12..16], &[0, 0, 0, 7], "then the producer id");
        assert_eq!(Stamp::read(&body), Some(Stamp { seq: 0x0102_0304, sent_ns: 0x1112_1314_1516_1718, producer: 7 }));
    }

    #[test]
    fn short_body_is_not_a_stamp() {
        assert_eq!(Stamp::read(&[0u8; 15]), None);
    }
}
