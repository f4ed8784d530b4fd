//! Fuzz target: the relay ⇄ CLI frame decoder. Any bytes, as either side's message, must decode
//! to a message or an error; never a panic. A decoded message must survive a re-encode.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use relay_server::protocol::{self, ClientMessage, RelayMessage};

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    if let Ok((message, body)) = protocol::decode::<ClientMessage>(frame.clone()) {
        let again = protocol::encode(&message, &body);
        let (decoded, payload) = protocol::decode::<ClientMessage>(again).expect("re-encoded frames decode");
        assert_eq!(decoded, message);
        assert_eq!(payload, body);
        if let ClientMessage::Response(protocol::Response { headers, .. }) = &message {
            let _ = protocol::check_headers(headers);
        }
    }
    if let Ok((message, body)) = protocol::decode::<RelayMessage>(frame) {
        let again = protocol::encode(&message, &body);
        let (decoded, _) = protocol::decode::<RelayMessage>(again).expect("re-encoded frames decode");
        assert_eq!(decoded, message);
    }
});
