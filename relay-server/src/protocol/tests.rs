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
    // The flags after the kind, the id and the time: no body length follows.
    let frame = encode(&request(None), b"");
    assert_eq!(frame[21], 0);
    let frame_streamed = encode(&request(Some(5)), b"");
    assert_eq!(frame_streamed[21], 2);
    assert_eq!(&frame_streamed[22..30], &5u64.to_be_bytes());
    assert_eq!(frame_streamed.len(), frame.len() + 8);
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
    let hello = r#"{"type":"hello","version":2,"channel":"c","url":"http://r/c"}"#;
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
    let pinned = |message: &dyn erased::Encode, meta: &[u8]| {
        let frame = message.encode(b"\x00body");
        let mut expected = (meta.len() as u32).to_be_bytes().to_vec();
        expected.extend_from_slice(meta);
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
        br#"{"type":"hello","version":2,"channel":"abc","respond":{"status":202},"timeout_ms":5,"offline":"reject","token":"t","stream_bodies":true}"#,
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
        br#"{"type":"hello","version":2,"channel":null,"respond":"app","timeout_ms":null,"offline":null,"token":null,"stream_bodies":false}"#,
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
        &[
            &b"\x04\0\0\0\0\0\0\0\x03\x01\xa2\0\0\0\x02"[..],
            b"\0\0\0\x0ccontent-type\0\0\0\x0atext/plain",
            b"\0\0\0\x05x-bin\0\0\0\x02\xff\x00",
        ]
        .concat(),
    );
    pinned(
        &ClientMessage::Ack(Ack { id: RequestId(4) }),
        b"\x05\0\0\0\0\0\0\0\x04",
    );
    pinned(
        &ClientMessage::Failed(Failed {
            id: RequestId(5),
            reason: "connection refused".into(),
        }),
        b"\x06\0\0\0\0\0\0\0\x05\0\0\0\x12connection refused",
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
        br#"{"type":"hello","version":2,"channel":"abc","url":"http://relay/abc","respond":"app","timeout_ms":30000,"epoch":7,"max_body":1048576}"#,
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
        br#"{"type":"hello","version":2,"channel":"abc","url":"http://relay/abc","respond":{"status":202},"timeout_ms":0,"epoch":0}"#,
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
        &[
            &b"\x01\0\0\0\0\0\0\0\x06\0\0\0\0\0\0\0\x02\x00"[..],
            b"\0\0\0\x03PUT\0\0\0\x08/big?x=1\0\0\0\x02",
            b"\0\0\0\x03x-a\0\0\0\x011\0\0\0\x03x-a\0\0\0\x012",
        ]
        .concat(),
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
        &[
            &b"\x01\0\0\0\0\0\0\0\x06\0\0\0\0\0\0\0\x02\x03\0\0\0\0\0\xa0\0\0"[..],
            b"\0\0\0\x04POST\0\0\0\0\0\0\0\0",
        ]
        .concat(),
    );
    pinned(
        &RelayMessage::Body(Body { id: RequestId(6) }),
        b"\x02\0\0\0\0\0\0\0\x06",
    );
    pinned(
        &RelayMessage::Abort(Abort {
            id: RequestId(6),
            reason: "gone".into(),
        }),
        b"\x03\0\0\0\0\0\0\0\x06\0\0\0\x04gone",
    );
    pinned(
        &RelayMessage::Error(Error {
            message: "no \"such\" channel".into(),
        }),
        br#"{"type":"error","message":"no \"such\" channel"}"#,
    );
}

/// A relay's queue keeps frames across an upgrade: those of version 1, whose every meta was
/// JSON, still decode.
#[test]
fn frames_of_the_json_layout_still_decode() {
    let request = r#"{"type":"request","id":6,"received_at_ms":2,"method":"PUT","target":"/big?x=1","headers":[["x-a","1"],["x-b",[255,0]]],"redelivered":true}"#;
    let (message, _) = decode::<RelayMessage>(frame(request)).unwrap();
    let RelayMessage::Request(request) = message else {
        panic!("{message:?}");
    };
    assert_eq!(request.target, "/big?x=1");
    assert_eq!(request.headers[1].value.as_ref(), b"\xff\x00");
    assert!(request.redelivered);
    let (message, _) = decode::<ClientMessage>(frame(r#"{"type":"ack","id":4}"#)).unwrap();
    assert_eq!(message, ClientMessage::Ack(Ack { id: RequestId(4) }));
    // Marked as redelivered, it is written again in the binary layout.
    let unmarked =
        r#"{"type":"request","id":6,"received_at_ms":2,"method":"PUT","target":"/","headers":[]}"#;
    let marked = mark_redelivered(frame(unmarked));
    assert_eq!(marked[4], 1, "a binary request");
    let (RelayMessage::Request(request), _) = decode::<RelayMessage>(marked).unwrap() else {
        panic!("not a request");
    };
    assert!(request.redelivered);
}

#[test]
fn malformed_binary_metas_are_errors() {
    let ack = |rest: &[u8]| {
        let mut meta = b"\x05\0\0\0\0\0\0\0\x04".to_vec();
        meta.extend_from_slice(rest);
        meta
    };
    let response = |count: u32, rest: &[u8]| {
        let mut meta = b"\x04\0\0\0\0\0\0\0\x03\0\xc8".to_vec();
        meta.extend_from_slice(&count.to_be_bytes());
        meta.extend_from_slice(rest);
        meta
    };
    for meta in [
        b"\x05\0\0\0".to_vec(),
        ack(b"\x00"),
        b"\x09\0\0\0\0\0\0\0\x04".to_vec(),
        b"\x01\0\0\0\0\0\0\0\x04".to_vec(),
        response(1, b"\0\0\0\x03x-a"),
        response(1, b"\0\0\0\x03x-a\0\0\0\x09ab"),
        response(1, b"\0\0\0\x02\xff\xfe\0\0\0\0"),
        response(MAX_HEADERS as u32 + 1, b""),
        response(u32::MAX, b""),
    ] {
        let frame = binary_frame(&meta);
        assert!(
            decode::<ClientMessage>(frame).is_err(),
            "{meta:?} should not decode"
        );
    }
    let error = decode::<ClientMessage>(binary_frame(&response(MAX_HEADERS as u32 + 1, b"")));
    assert!(
        matches!(error, Err(ProtocolError::TooManyHeaders(_))),
        "{error:?}"
    );
    // The relay's messages are not the CLI's, nor the other way round.
    let body = encode(&RelayMessage::Body(Body { id: RequestId(1) }), b"");
    assert!(decode::<ClientMessage>(body).is_err());
    let ack = encode(&ClientMessage::Ack(Ack { id: RequestId(1) }), b"");
    assert!(decode::<RelayMessage>(ack).is_err());
    // Unknown flags on a request.
    let mut request = encode(
        &RelayMessage::Request(Request {
            id: RequestId(1),
            received_at_ms: 1,
            method: "POST".into(),
            target: "/".into(),
            headers: Vec::new(),
            body_len: None,
            redelivered: false,
        }),
        b"",
    )
    .to_vec();
    request[21] = 0x80;
    assert!(decode::<RelayMessage>(Bytes::from(request)).is_err());
}

/// A frame carrying `meta` (binary) and no body.
fn binary_frame(meta: &[u8]) -> Bytes {
    let mut frame = BytesMut::new();
    frame.put_u32(meta.len() as u32);
    frame.put_slice(meta);
    frame.freeze()
}

/// Either direction's message, for [`every_message_has_pinned_bytes`].
mod erased {
    pub trait Encode {
        fn encode(&self, payload: &[u8]) -> bytes::Bytes;
    }
    impl<M: super::Encode> Encode for M {
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

/// A cluster's store gives a request its id once it has the frame: the id and the redelivered
/// flag are set, in a binary frame and in one of the JSON layout, and nothing else changes.
#[test]
fn a_request_gets_its_id_and_redelivered_flag_set_in_its_frame() {
    let request = |id, redelivered| {
        RelayMessage::Request(Request {
            id: RequestId(id),
            received_at_ms: 2,
            method: "POST".into(),
            target: "/x".into(),
            headers: vec![Header {
                name: "x-a".into(),
                value: Bytes::from_static(b"1"),
            }],
            body_len: None,
            redelivered,
        })
    };
    let unset = encode(&request(0, false), b"body");
    let set = with_id(&unset, RequestId(77), true).unwrap();
    assert_eq!(set, encode(&request(77, true), b"body"));
    let cleared = with_id(&set, RequestId(78), false).unwrap();
    assert_eq!(cleared, encode(&request(78, false), b"body"));
    let json = r#"{"type":"request","id":0,"received_at_ms":2,"method":"POST","target":"/x","headers":[["x-a","1"]]}"#;
    let mut old = frame(json).to_vec();
    old.extend_from_slice(b"body");
    let set = with_id(&Bytes::from(old), RequestId(77), true).unwrap();
    assert_eq!(set, encode(&request(77, true), b"body"));
    let ack = encode(&ClientMessage::Ack(Ack { id: RequestId(1) }), b"");
    assert_eq!(with_id(&ack, RequestId(2), false), None);
}
