//! Writing a session's WebSocket: long messages in fragments, and many messages per flush.
//! Both sides' writers go through here.

use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::protocol::limits::FRAGMENT_LEN;

/// Most frames written with one flush.
pub const WRITE_BATCH: usize = 64;

/// The sending half of a session's WebSocket, as both sides hold it.
pub trait MessageSink: futures_util::Sink<WsMessage, Error = WsError> + Unpin {}

impl<S: futures_util::Sink<WsMessage, Error = WsError> + Unpin> MessageSink for S {}

/// Feeds `message` into `sink` (without flushing), as frames of at most [`FRAGMENT_LEN`]
/// payload bytes when it is a longer binary message. The slices share `message`'s memory.
pub async fn feed(sink: &mut impl MessageSink, message: WsMessage) -> Result<(), WsError> {
    use futures_util::SinkExt as _;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    match message {
        WsMessage::Binary(data) if data.len() > FRAGMENT_LEN => {
            for (start, end) in fragments(data.len()) {
                let opcode = if start == 0 {
                    Data::Binary
                } else {
                    Data::Continue
                };
                let frame = Frame::message(
                    data.slice(start..end),
                    OpCode::Data(opcode),
                    end == data.len(),
                );
                sink.feed(WsMessage::Frame(frame)).await?;
            }
            Ok(())
        }
        message => sink.feed(message).await,
    }
}

/// The byte ranges of the frames a message of `len` bytes is sent in: [`FRAGMENT_LEN`] each,
/// the last one shorter, and one (empty) range for an empty message.
fn fragments(len: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..len.div_ceil(FRAGMENT_LEN).max(1))
        .map(move |i| (i * FRAGMENT_LEN, ((i + 1) * FRAGMENT_LEN).min(len)))
}

/// Writes `first` and whatever else `next` has ready at once (up to [`WRITE_BATCH`] messages
/// in all), then flushes once: under load many frames share one system call, and an idle
/// session still writes at once.
pub async fn write_batch(
    sink: &mut impl MessageSink,
    first: WsMessage,
    mut next: impl FnMut() -> Option<WsMessage>,
) -> Result<(), WsError> {
    use futures_util::SinkExt as _;
    feed(sink, first).await?;
    for _ in 1..WRITE_BATCH {
        match next() {
            Some(message) => feed(sink, message).await?,
            None => break,
        }
    }
    sink.flush().await
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn fragments_cover_a_message_exactly_once() {
        for len in [
            0,
            1,
            FRAGMENT_LEN - 1,
            FRAGMENT_LEN,
            FRAGMENT_LEN + 1,
            3 * FRAGMENT_LEN + 7,
        ] {
            let ranges: Vec<_> = fragments(len).collect();
            assert_eq!(ranges.first().map(|r| r.0), Some(0), "len {len}");
            assert_eq!(ranges.last().map(|r| r.1), Some(len), "len {len}");
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].1, pair[1].0, "len {len}: gap or overlap");
            }
            assert!(ranges
                .iter()
                .all(|(a, b)| b - a <= FRAGMENT_LEN && (b > a || len == 0)));
            assert_eq!(ranges.len(), len.div_ceil(FRAGMENT_LEN).max(1), "len {len}");
        }
    }

    /// Sends `data` from a WebSocket of `role` with [`write_batch`] (or as one frame, when
    /// `whole`) to a peer that takes frames of at most [`FRAGMENT_LEN`], and returns what the
    /// peer read.
    async fn send_through(
        role: tokio_tungstenite::tungstenite::protocol::Role,
        data: Bytes,
        whole: bool,
    ) -> Result<Bytes, tokio_tungstenite::tungstenite::Error> {
        use futures_util::{SinkExt as _, StreamExt as _};
        use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::WebSocketStream;
        let (a, b) = tokio::io::duplex(16 * 1024);
        let peer_role = match role {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        };
        let strict = WebSocketConfig::default()
            .max_frame_size(Some(FRAGMENT_LEN))
            .max_message_size(Some(64 << 20));
        let mut sender = WebSocketStream::from_raw_socket(a, role, None).await;
        let mut peer = WebSocketStream::from_raw_socket(b, peer_role, Some(strict)).await;
        let send = tokio::spawn(async move {
            let message = Message::Binary(data);
            if whole {
                sender.send(message).await
            } else {
                write_batch(&mut sender, message, || None).await
            }
        });
        let received = match peer.next().await {
            Some(Ok(Message::Binary(got))) => Ok(got),
            Some(Ok(other)) => panic!("expected a binary message, got {other:?}"),
            Some(Err(e)) => Err(e),
            None => panic!("the peer saw the stream end"),
        };
        // Dropping the peer ends a sender still blocked on a refused frame.
        drop(peer);
        let sent = send.await.expect("the sender panicked");
        // A refused frame may also fail the sender's write; the peer's verdict is what counts.
        if received.is_ok() {
            sent?;
        }
        received
    }

    #[tokio::test]
    async fn long_messages_go_out_in_fragments_that_the_peer_joins() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let data: Bytes = (0..3 * FRAGMENT_LEN + 7)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        // Both directions: the relay (server) sends requests; the CLI (client) masks its frames.
        for role in [Role::Server, Role::Client] {
            let got = send_through(role, data.clone(), false).await.unwrap();
            assert_eq!(got, data, "{role:?}");
            // The peer's frame limit is real: the same message in one frame is refused.
            assert!(
                send_through(role, data.clone(), true).await.is_err(),
                "{role:?}"
            );
        }
        // Short messages are unchanged.
        let short = Bytes::from_static(b"\x00\x00\x00\x02{}");
        assert_eq!(
            send_through(Role::Client, short.clone(), false)
                .await
                .unwrap(),
            short
        );
    }
}
