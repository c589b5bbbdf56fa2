//! Frame decoding and encoding. Methods are decoded and encoded by `amq-protocol`; content
//! properties and bodies stay raw `Bytes` so a message is re-emitted without re-encoding. The three
//! delivery frames (deliver, content header, body) are written here directly because they are the
//! hot path; a test checks them byte for byte against `amq-protocol`'s `gen_frame`.

use amq_protocol::frame::{AMQPFrame, WriteContext, gen_frame};
use amq_protocol::protocol::{AMQPClass, parse_class};
use bytes::{Buf, Bytes, BytesMut};

/// The protocol header a 0-9-1 client sends first, and what the server answers to any other.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;

/// A decoded incoming frame.
#[derive(Debug)]
pub enum Frame {
    /// A method.
    Method(u16, AMQPClass),
    /// A content header: class id, body size, raw property flags and values.
    Header(u16, u16, u64, Bytes),
    /// A body fragment.
    Body(u16, Bytes),
    /// A heartbeat (channel is always 0 here; others are rejected in decoding).
    Heartbeat,
    /// `basic.qos` with a non-zero prefetch-size (channel, size): `amq-protocol` drops the field,
    /// so it is read here; RabbitMQ refuses it with 540 NOT_IMPLEMENTED.
    QosPrefetchSize(u16, u32),
}

/// Class and method ids of `basic.qos`, the start of its method payload.
const BASIC_QOS: [u8; 4] = [0, 60, 0, 10];

/// Why a frame could not be decoded; every case closes the connection with a reply code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Bad frame end, unknown frame type, oversized frame, heartbeat on a channel (501).
    #[error("FRAME_ERROR - {0}")]
    Malformed(String),
    /// A method payload that does not decode (502 SYNTAX_ERROR in RabbitMQ's words; we use 501
    /// for frames and 502 for method fields).
    #[error("SYNTAX_ERROR - {0}")]
    Syntax(String),
}

impl FrameError {
    /// The AMQP reply code.
    pub fn reply_code(&self) -> u16 {
        match self {
            FrameError::Malformed(_) => 501,
            FrameError::Syntax(_) => 502,
        }
    }
}

/// Decodes one frame from the front of `buf`. `Ok(None)` means more bytes are needed (Incomplete);
/// an error means the input is invalid and the connection must close. Frames larger than
/// `frame_max` are refused from their header alone, before their payload arrives.
pub fn decode(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 7 {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]);
    if !matches!(kind, FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT) {
        return Err(FrameError::Malformed(format!("unknown frame type {kind}")));
    }
    // frame_max counts the whole frame, header and end byte included.
    if frame_max != 0 && u64::from(size) + 8 > u64::from(frame_max) {
        return Err(FrameError::Malformed(format!(
            "frame size {} larger than negotiated maximum {frame_max}",
            u64::from(size) + 8
        )));
    }
    let total = 7 + size as usize + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(FrameError::Malformed(format!("bad frame end marker {:#04x}", buf[total - 1])));
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(7);
    frame.truncate(size as usize);
    let payload = frame;
    match kind {
        FRAME_METHOD => match parse_class(&payload[..]) {
            Ok((&[], class)) => match payload.get(..8) {
                Some(p) if p[..4] == BASIC_QOS && p[4..] != [0; 4] => {
                    Ok(Some(Frame::QosPrefetchSize(channel, u32::from_be_bytes([p[4], p[5], p[6], p[7]]))))
                }
                _ => Ok(Some(Frame::Method(channel, class))),
            },
            Ok(_) => Err(FrameError::Syntax("trailing bytes after method arguments".into())),
            Err(_) => Err(FrameError::Syntax(format!(
                "cannot decode method (class {}, method {})",
                payload.first().map_or(0, |_| u16::from_be_bytes([payload[0], *payload.get(1).unwrap_or(&0)])),
                if payload.len() >= 4 { u16::from_be_bytes([payload[2], payload[3]]) } else { 0 }
            ))),
        },
        FRAME_HEADER => {
            if payload.len() < 14 {
                return Err(FrameError::Malformed("content header too short".into()));
            }
            let class_id = u16::from_be_bytes([payload[0], payload[1]]);
            let mut size_bytes = [0u8; 8];
            size_bytes.copy_from_slice(&payload[4..12]);
            let body_size = u64::from_be_bytes(size_bytes);
            Ok(Some(Frame::Header(channel, class_id, body_size, payload.slice(12..))))
        }
        FRAME_BODY => Ok(Some(Frame::Body(channel, payload))),
        _ => {
            if channel != 0 {
                return Err(FrameError::Malformed(format!("heartbeat on channel {channel}")));
            }
            Ok(Some(Frame::Heartbeat))
        }
    }
}

/// Appends a frame encoded by `amq-protocol`.
pub fn encode(out: &mut Vec<u8>, frame: &AMQPFrame) {
    let buf = std::mem::take(out);
    match gen_frame(frame)(WriteContext::from(buf)) {
        Ok(ctx) => *out = ctx.write,
        // Only an oversized short string can fail; every string we send is bounded by one we
        // received, so this is unreachable in practice. Keep the connection usable regardless.
        Err(e) => tracing::error!("cannot encode frame {frame}: {e}"),
    }
}

/// Appends a method frame.
pub fn method(out: &mut Vec<u8>, channel: u16, class: AMQPClass) {
    encode(out, &AMQPFrame::Method(channel, class));
}

fn short_str(out: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(255)];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// The fields of a `basic.deliver`.
pub struct Deliver<'a> {
    /// Channel.
    pub channel: u16,
    /// Consumer tag.
    pub consumer_tag: &'a str,
    /// Delivery tag.
    pub delivery_tag: u64,
    /// Redelivered flag.
    pub redelivered: bool,
    /// Exchange published to.
    pub exchange: &'a str,
    /// Routing key.
    pub routing_key: &'a str,
}

/// Writes `basic.deliver` followed by the content frames.
pub fn deliver(out: &mut Vec<u8>, d: &Deliver<'_>, properties: &[u8], body: &[u8], frame_max: u32) {
    out.push(FRAME_METHOD);
    out.extend_from_slice(&d.channel.to_be_bytes());
    let size_at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    short_str(out, d.consumer_tag);
    out.extend_from_slice(&d.delivery_tag.to_be_bytes());
    out.push(u8::from(d.redelivered));
    short_str(out, d.exchange);
    short_str(out, d.routing_key);
    let size = (out.len() - size_at - 4) as u32;
    out[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
    out.push(FRAME_END);
    content(out, d.channel, properties, body, frame_max);
}

/// Writes a content header (with raw properties) and the body split into frames of at most
/// `frame_max` bytes.
pub fn content(out: &mut Vec<u8>, channel: u16, properties: &[u8], body: &[u8], frame_max: u32) {
    out.push(FRAME_HEADER);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&((12 + properties.len()) as u32).to_be_bytes());
    out.extend_from_slice(&60u16.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    out.extend_from_slice(properties);
    out.push(FRAME_END);
    let chunk = if frame_max == 0 { body.len().max(1) } else { (frame_max as usize).saturating_sub(8).max(1) };
    for part in body.chunks(chunk) {
        out.push(FRAME_BODY);
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
        out.push(FRAME_END);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amq_protocol::frame::AMQPContentHeader;
    use amq_protocol::protocol::{BasicProperties, basic};
    use amq_protocol::types::FieldTable;

    fn props() -> BasicProperties {
        let mut headers = FieldTable::default();
        headers.insert("k".into(), amq_protocol::types::AMQPValue::LongString("v".into()));
        BasicProperties::default().with_content_type("text/plain".into()).with_priority(3).with_headers(headers)
    }

    #[test]
    fn hand_written_delivery_frames_match_gen_frame_byte_for_byte() {
        let body: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let frame_max = 4096;
        let raw_props = crate::state::encode_properties(&props());
        let mut ours = Vec::new();
        let d = Deliver {
            channel: 7,
            consumer_tag: "ctag",
            delivery_tag: 42,
            redelivered: true,
            exchange: "ex",
            routing_key: "rk",
        };
        deliver(&mut ours, &d, &raw_props, &body, frame_max);

        let mut theirs = Vec::new();
        method(
            &mut theirs,
            7,
            AMQPClass::Basic(basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: "ctag".into(),
                delivery_tag: 42,
                redelivered: true,
                exchange: "ex".into(),
                routing_key: "rk".into(),
            })),
        );
        encode(
            &mut theirs,
            &AMQPFrame::Header(
                7,
                AMQPContentHeader { class_id: 60, body_size: body.len() as u64, properties: props() },
            ),
        );
        for part in body.chunks(frame_max as usize - 8) {
            encode(&mut theirs, &AMQPFrame::Body(7, part.to_vec()));
        }
        assert_eq!(ours, theirs);
    }

    #[test]
    fn zero_byte_body_has_a_header_and_no_body_frame() {
        let mut ours = Vec::new();
        content(&mut ours, 1, &[0, 0], &[], 131072);
        let mut theirs = Vec::new();
        encode(
            &mut theirs,
            &AMQPFrame::Header(
                1,
                AMQPContentHeader { class_id: 60, body_size: 0, properties: BasicProperties::default() },
            ),
        );
        assert_eq!(ours, theirs);
    }

    #[test]
    fn decoder_tells_incomplete_from_invalid() {
        let mut full = Vec::new();
        method(&mut full, 1, AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 5, global: false })));
        for cut in 0..full.len() {
            let mut buf = BytesMut::from(&full[..cut]);
            assert!(matches!(decode(&mut buf, 131072), Ok(None)), "prefix of {cut} bytes is incomplete");
        }
        let mut buf = BytesMut::from(&full[..]);
        assert!(matches!(decode(&mut buf, 131072), Ok(Some(Frame::Method(1, _)))));
        assert!(buf.is_empty());

        let mut bad_end = full.clone();
        let last = bad_end.len() - 1;
        bad_end[last] = 0;
        assert_eq!(
            decode(&mut BytesMut::from(&bad_end[..]), 131072).map(|_| ()).expect_err("bad end").reply_code(),
            501
        );

        let huge = [1u8, 0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(decode(&mut BytesMut::from(&huge[..]), 131072).map(|_| ()).expect_err("too big").reply_code(), 501);

        let garbage = [0x47u8, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54];
        assert!(decode(&mut BytesMut::from(&garbage[..]), 131072).is_err());
    }

    #[test]
    fn a_qos_prefetch_size_dropped_by_amq_protocol_is_still_seen() {
        let mut frame = Vec::new();
        method(
            &mut frame,
            3,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos { prefetch_count: 5, global: false })),
        );
        frame[11..15].copy_from_slice(&70_000u32.to_be_bytes());
        assert!(matches!(decode(&mut BytesMut::from(&frame[..]), 131072), Ok(Some(Frame::QosPrefetchSize(3, 70_000)))));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use amq_protocol::protocol::basic;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_and_decoded_frames_consume_input(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut buf = BytesMut::from(&data[..]);
            loop {
                let before = buf.len();
                match decode(&mut buf, 4096) {
                    Ok(Some(_)) => prop_assert!(buf.len() < before),
                    Ok(None) | Err(_) => break,
                }
            }
        }

        #[test]
        fn encoded_publish_methods_decode_back(
            channel in 1u16..2047,
            exchange in "[a-z.]{0,40}",
            key in "[a-z.#*]{0,60}",
            mandatory in any::<bool>(),
        ) {
            let method = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: exchange.as_str().into(),
                routing_key: key.as_str().into(),
                mandatory,
                immediate: false,
            }));
            let mut out = Vec::new();
            super::method(&mut out, channel, method.clone());
            let mut buf = BytesMut::from(&out[..]);
            match decode(&mut buf, 131_072) {
                Ok(Some(Frame::Method(ch, decoded))) => {
                    prop_assert_eq!(ch, channel);
                    prop_assert_eq!(decoded, method);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
            prop_assert!(buf.is_empty());
        }
    }
}
