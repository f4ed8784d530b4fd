//! Tests of the messages and the frame codec: round trips, pinned bytes, defaults, errors.

use bytes::{BufMut, Bytes, BytesMut};

use super::*;

#[test]
fn request_round_trips_with_binary_header_and_body() {
    let message = RelayMessage::Request(Request {
        id: RequestId(7),
        received_at_ms: 1,
        method: "POST".into(),
        target: "/a/b?x=1".into(),
        headers: vec![
            Header {
                name: "x-dup".into(),
                value: Bytes::from_static(b"one"),
            },
            Header {
                name: "x-bin".into(),
                value: Bytes::from_static(b"\xff\xfe latin"),
            },
        ],
        body_len: None,
        redelivered: false,
    });
    let body = b"\x00\x01\xffbody".as_slice();
    let frame = encode(&message, body);
    let (decoded, payload): (RelayMessage, Bytes) = decode(frame).unwrap();
    assert_eq!(decoded, message);
    assert_eq!(payload.as_ref(), body);
}

#[test]
fn every_message_round_trips() {
    let headers = vec![Header {
        name: "content-type".into(),
        value: Bytes::from_static(b"text/plain"),
    }];
    let client = [
        ClientMessage::Hello(ClientHello {
            version: PROTOCOL_VERSION,
            channel: Some("abc".into()),
            respond: Respond::Status(202),
            timeout_ms: Some(5),
            offline: Some(Offline::Reject),
            token: Some(Token("t".into())),
            stream_bodies: true,
        }),
        ClientMessage::Response(Response {
            id: RequestId(3),
            status: 418,
            headers: headers.clone(),
        }),
        ClientMessage::Ack(Ack { id: RequestId(4) }),
        ClientMessage::Failed(Failed {
            id: RequestId(5),
            reason: "connection refused".into(),
        }),
    ];
    for message in client {
        let (decoded, _) = decode::<ClientMessage>(encode(&message, b"")).unwrap();
        assert_eq!(decoded, message);
    }
    let relay = [
        RelayMessage::Hello(RelayHello {
            version: PROTOCOL_VERSION,
            channel: "abc".into(),
            url: "http://relay/abc".into(),
            respond: Respond::App,
            timeout_ms: 30_000,
            epoch: (1 << 53) - 1,
            max_body: Some(1 << 20),
        }),
        RelayMessage::Request(Request {
            id: RequestId(6),
            received_at_ms: 2,
            method: "PUT".into(),
            target: "/big".into(),
            headers: headers.clone(),
            body_len: Some(10 << 20),
            redelivered: true,
        }),
        RelayMessage::Body(Body { id: RequestId(6) }),
        RelayMessage::Abort(Abort {
            id: RequestId(6),
            reason: "the sender closed the connection".into(),
        }),
        RelayMessage::Error(Error {
            message: "no".into(),
        }),
    ];
    for message in relay {
        let (decoded, _) = decode::<RelayMessage>(encode(&message, b"")).unwrap();
        assert_eq!(decoded, message);
    }
}

#[test]
fn a_request_sent_whole_does_not_mention_streaming() {
    // CLIs from before streaming read these frames too; they must not change.
    let request = |body_len| {
        RelayMessage::Request(Request {
            id: RequestId(1),
            received_at_ms: 1,
            method: "POST".into(),
            target: "/".into(),
            headers: Vec::new(),
            body_len,
            redelivered: false,
        })
    };
    let frame = encode(&request(None), b"");
    let meta = std::str::from_utf8(&frame[4..]).unwrap();
    assert!(!meta.contains("body_len"), "{meta}");
    assert!(!meta.contains("redelivered"), "{meta}");
    let frame = encode(&request(Some(5)), b"");
    assert!(std::str::from_utf8(&frame[4..])
        .unwrap()
        .contains(r#""body_len":5"#));
}

#[test]
fn a_redelivery_is_marked_in_its_frame_and_keeps_its_body() {
    let request = RelayMessage::Request(Request {
        id: RequestId(9),
        received_at_ms: 5,
        method: "POST".into(),
        target: "/x".into(),
        headers: vec![Header {
            name: "x-a".into(),
            value: Bytes::from_static(b"\xff"),
        }],
        body_len: None,
        redelivered: false,
    });
    let body = b"\x00body\xff";
    let marked = mark_redelivered(encode(&request, body));
    let (decoded, payload) = decode::<RelayMessage>(marked).unwrap();
    let mut unmarked = decoded;
    let RelayMessage::Request(Request { redelivered, .. }) = &mut unmarked else {
        panic!("{unmarked:?}");
    };
    assert!(*redelivered);
    *redelivered = false;
    assert_eq!(unmarked, request, "the rest is unchanged");
    assert_eq!(payload.as_ref(), body);
    // Anything else is left alone.
    let body_frame = encode(&RelayMessage::Body(Body { id: RequestId(9) }), b"piece");
    assert_eq!(mark_redelivered(body_frame.clone()), body_frame);
}

#[test]
fn a_hello_from_a_relay_without_epochs_reads_as_epoch_0() {
    let hello = r#"{"type":"hello","version":1,"channel":"c","url":"http://r/c"}"#;
    let (message, _) = decode::<RelayMessage>(frame(hello)).unwrap();
    let RelayMessage::Hello(RelayHello { epoch, .. }) = message else {
        panic!("{message:?}");
    };
    assert_eq!(epoch, 0);
}

#[test]
fn a_payload_in_pieces_encodes_like_a_whole_one() {
    let message = ClientMessage::Ack(Ack { id: RequestId(1) });
    let pieces = bytes::Buf::chain(&b"\x00\x01first "[..], &b"second\xff"[..]);
    assert_eq!(
        encode_buf(&message, pieces),
        encode(&message, b"\x00\x01first second\xff")
    );
}

/// The exact bytes of every message: the wire format is a contract with CLIs and relays of
/// other versions, so a change to how a message is declared must not change them.
#[test]
fn every_message_has_pinned_bytes() {
    let header = |name: &str, value: &'static [u8]| Header {
        name: name.into(),
        value: Bytes::from_static(value),
    };
    let pinned = |message: &dyn erased::Encode, meta: &str| {
        let frame = message.encode(b"\x00body");
        let mut expected = (meta.len() as u32).to_be_bytes().to_vec();
        expected.extend_from_slice(meta.as_bytes());
        expected.extend_from_slice(b"\x00body");
        assert_eq!(
            frame.as_ref(),
            expected.as_slice(),
            "{}",
            String::from_utf8_lossy(&frame)
        );
    };
    pinned(
        &ClientMessage::Hello(ClientHello {
            version: PROTOCOL_VERSION,
            channel: Some("abc".into()),
            respond: Respond::Status(202),
            timeout_ms: Some(5),
            offline: Some(Offline::Reject),
            token: Some(Token("t".into())),
            stream_bodies: true,
        }),
        r#"{"type":"hello","version":1,"channel":"abc","respond":{"status":202},"timeout_ms":5,"offline":"reject","token":"t","stream_bodies":true}"#,
    );
    pinned(
        &ClientMessage::Hello(ClientHello {
            version: PROTOCOL_VERSION,
            channel: None,
            respond: Respond::App,
            timeout_ms: None,
            offline: None,
            token: None,
            stream_bodies: false,
        }),
        r#"{"type":"hello","version":1,"channel":null,"respond":"app","timeout_ms":null,"offline":null,"token":null,"stream_bodies":false}"#,
    );
    pinned(
        &ClientMessage::Response(Response {
            id: RequestId(3),
            status: 418,
            headers: vec![
                header("content-type", b"text/plain"),
                header("x-bin", b"\xff\x00"),
            ],
        }),
        r#"{"type":"response","id":3,"status":418,"headers":[["content-type","text/plain"],["x-bin",[255,0]]]}"#,
    );
    pinned(
        &ClientMessage::Ack(Ack { id: RequestId(4) }),
        r#"{"type":"ack","id":4}"#,
    );
    pinned(
        &ClientMessage::Failed(Failed {
            id: RequestId(5),
            reason: "connection refused".into(),
        }),
        r#"{"type":"failed","id":5,"reason":"connection refused"}"#,
    );
    pinned(
        &RelayMessage::Hello(RelayHello {
            version: PROTOCOL_VERSION,
            channel: "abc".into(),
            url: "http://relay/abc".into(),
            respond: Respond::App,
            timeout_ms: 30_000,
            epoch: 7,
            max_body: Some(1 << 20),
        }),
        r#"{"type":"hello","version":1,"channel":"abc","url":"http://relay/abc","respond":"app","timeout_ms":30000,"epoch":7,"max_body":1048576}"#,
    );
    pinned(
        &RelayMessage::Hello(RelayHello {
            version: PROTOCOL_VERSION,
            channel: "abc".into(),
            url: "http://relay/abc".into(),
            respond: Respond::Status(202),
            timeout_ms: 0,
            epoch: 0,
            max_body: None,
        }),
        r#"{"type":"hello","version":1,"channel":"abc","url":"http://relay/abc","respond":{"status":202},"timeout_ms":0,"epoch":0}"#,
    );
    pinned(
        &RelayMessage::Request(Request {
            id: RequestId(6),
            received_at_ms: 2,
            method: "PUT".into(),
            target: "/big?x=1".into(),
            headers: vec![header("x-a", b"1"), header("x-a", b"2")],
            body_len: None,
            redelivered: false,
        }),
        r#"{"type":"request","id":6,"received_at_ms":2,"method":"PUT","target":"/big?x=1","headers":[["x-a","1"],["x-a","2"]]}"#,
    );
    pinned(
        &RelayMessage::Request(Request {
            id: RequestId(6),
            received_at_ms: 2,
            method: "POST".into(),
            target: "".into(),
            headers: Vec::new(),
            body_len: Some(10 << 20),
            redelivered: true,
        }),
        r#"{"type":"request","id":6,"received_at_ms":2,"method":"POST","target":"","headers":[],"body_len":10485760,"redelivered":true}"#,
    );
    pinned(
        &RelayMessage::Body(Body { id: RequestId(6) }),
        r#"{"type":"body","id":6}"#,
    );
    pinned(
        &RelayMessage::Abort(Abort {
            id: RequestId(6),
            reason: "gone".into(),
        }),
        r#"{"type":"abort","id":6,"reason":"gone"}"#,
    );
    pinned(
        &RelayMessage::Error(Error {
            message: "no \"such\" channel".into(),
        }),
        r#"{"type":"error","message":"no \"such\" channel"}"#,
    );
}

/// Either direction's message, for [`every_message_has_pinned_bytes`].
mod erased {
    pub trait Encode {
        fn encode(&self, payload: &[u8]) -> bytes::Bytes;
    }
    impl<M: serde::Serialize> Encode for M {
        fn encode(&self, payload: &[u8]) -> bytes::Bytes {
            super::encode(self, payload)
        }
    }
}

/// A frame carrying `meta` as its JSON and no body.
fn frame(meta: &str) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_u32(meta.len() as u32);
    frame.put_slice(meta.as_bytes());
    frame.freeze()
}

#[test]
fn messages_decode_with_defaults_unknown_fields_and_byte_array_values() {
    let hello = r#"{"type":"hello","version":1,"channel":null,"future":[1,2]}"#;
    let (message, _) = decode::<ClientMessage>(frame(hello)).unwrap();
    assert_eq!(
        message,
        ClientMessage::Hello(ClientHello {
            version: 1,
            channel: None,
            respond: Respond::App,
            timeout_ms: None,
            offline: None,
            token: None,
            stream_bodies: false,
        })
    );
    let response = r#"{"type":"response","id":9,"status":200,"headers":[["x-a",[255,0,104]]]}"#;
    let (message, _) = decode::<ClientMessage>(frame(response)).unwrap();
    let ClientMessage::Response(Response { headers, .. }) = message else {
        panic!("{message:?}");
    };
    assert_eq!(headers[0].value.as_ref(), b"\xff\x00h");
}

#[test]
fn malformed_messages_are_errors() {
    for meta in [
        r#"{"id":9,"type":"ack"}"#,
        r#"{"type":"nonsense","id":9}"#,
        r#"{"type":"ack"}"#,
        r#"{}"#,
        r#"{"type":"response","id":9,"status":200,"headers":[["x-a"]]}"#,
        r#"{"type":"response","id":9,"status":200,"headers":[["x-a","b","c"]]}"#,
        r#"{"type":"response","id":9,"status":200,"headers":[["x-a",[256]]]}"#,
        r#"{"type":"response","id":9,"status":200,"headers":[["x-a",{}]]}"#,
        r#"["ack",9]"#,
    ] {
        assert!(
            decode::<ClientMessage>(frame(meta)).is_err(),
            "{meta} should not decode"
        );
    }
    let error = decode::<ClientMessage>(frame(r#"{"id":9,"type":"ack"}"#)).unwrap_err();
    assert!(error.to_string().contains("first field"), "{error}");
}

#[test]
fn truncated_and_oversized_frames_are_errors() {
    assert!(matches!(
        decode::<ClientMessage>(Bytes::from_static(b"\x00\x00")),
        Err(ProtocolError::Truncated(2))
    ));
    assert!(matches!(
        decode::<ClientMessage>(Bytes::from_static(b"\x00\x00\x00\x09{}")),
        Err(ProtocolError::Truncated(6))
    ));
    assert!(matches!(
        decode::<ClientMessage>(Bytes::from_static(b"\xff\xff\xff\xff")),
        Err(ProtocolError::MetaTooLong(_))
    ));
    assert!(matches!(
        decode::<ClientMessage>(Bytes::from_static(b"\x00\x00\x00\x02{}")),
        Err(ProtocolError::BadMeta(_))
    ));
}

#[test]
fn tokens_never_show_in_debug_output() {
    let hello = ClientMessage::Hello(ClientHello {
        version: PROTOCOL_VERSION,
        channel: None,
        respond: Respond::App,
        timeout_ms: None,
        offline: None,
        token: Some(Token("s3cret-token".into())),
        stream_bodies: false,
    });
    let debug = format!("{hello:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
}

#[test]
fn channel_names_are_validated() {
    assert!(validate_channel("my-app_1").is_ok());
    assert!(validate_channel("").is_err());
    assert!(validate_channel("_hooks").is_err());
    assert!(validate_channel("a/b").is_err());
    assert!(validate_channel(&"a".repeat(65)).is_err());
}
