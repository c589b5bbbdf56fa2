//! Feeds arbitrary bytes to the frame and method decoder: it must return a frame, ask for more
//! bytes, or report an error — never panic, and never consume bytes it did not decode.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_broker::connection::codec::decode;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    for frame_max in [4096u32, 131_072] {
        let mut b = buf.clone();
        loop {
            let before = b.len();
            match decode(&mut b, frame_max) {
                Ok(Some(_)) => assert!(b.len() < before, "a decoded frame consumes bytes"),
                Ok(None) | Err(_) => break,
            }
        }
    }
    buf.clear();
});
