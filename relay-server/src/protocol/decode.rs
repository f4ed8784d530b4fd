//! The decoders written by hand: the two message enums, read tag first, and a header's value.
//!
//! serde's derive for internally tagged enums buffers the whole object (headers included) before
//! it looks at the tag, and decoding runs for every webhook. The encoder writes the tag first, so
//! these decoders read it first and hand the rest of the object straight to the variant's struct
//! (its derived `Deserialize`), without a copy of its fields here.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::{de, Deserialize};

use super::messages::{ClientMessage, Header, RelayMessage};

/// Reads the `"type"` field, which must come first; returns its value.
fn message_tag<'de, A: de::MapAccess<'de>>(map: &mut A) -> Result<String, A::Error> {
    match map.next_key::<String>()? {
        Some(key) if key == "type" => map.next_value(),
        Some(_) => Err(de::Error::custom(
            "a message's \"type\" must be its first field",
        )),
        None => Err(de::Error::missing_field("type")),
    }
}

/// Deserializes the rest of a message's object as `T`, the struct of its variant.
fn fields<'de, A: de::MapAccess<'de>, T: Deserialize<'de>>(map: A) -> Result<T, A::Error> {
    T::deserialize(de::value::MapAccessDeserializer::new(map))
}

/// A message enum decoded tag first: each names its variants, and picks one by its tag.
trait TagFirst: Sized {
    /// What the decoder expected, for its errors: "a message from the CLI".
    const EXPECTING: &'static str;
    /// The tags of its variants, for its errors.
    const VARIANTS: &'static [&'static str];
    /// The variant `tag` names, its fields read from the rest of `map`; `None` for an unknown
    /// tag.
    fn variant<'de, A: de::MapAccess<'de>>(tag: &str, map: A) -> Result<Option<Self>, A::Error>;
}

/// Decodes any [`TagFirst`] enum.
struct TagFirstVisitor<M>(PhantomData<M>);

impl<'de, M: TagFirst> de::Visitor<'de> for TagFirstVisitor<M> {
    type Value = M;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(M::EXPECTING)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<M, A::Error> {
        let tag = message_tag(&mut map)?;
        M::variant(&tag, map)?.ok_or_else(|| de::Error::unknown_variant(&tag, M::VARIANTS))
    }
}

impl TagFirst for ClientMessage {
    const EXPECTING: &'static str = "a message from the CLI";
    const VARIANTS: &'static [&'static str] = &["hello", "response", "ack", "failed"];
    fn variant<'de, A: de::MapAccess<'de>>(tag: &str, map: A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "hello" => ClientMessage::Hello(fields(map)?),
            "response" => ClientMessage::Response(fields(map)?),
            "ack" => ClientMessage::Ack(fields(map)?),
            "failed" => ClientMessage::Failed(fields(map)?),
            _ => return Ok(None),
        }))
    }
}

impl TagFirst for RelayMessage {
    const EXPECTING: &'static str = "a message from the relay";
    const VARIANTS: &'static [&'static str] = &["hello", "request", "body", "abort", "error"];
    fn variant<'de, A: de::MapAccess<'de>>(tag: &str, map: A) -> Result<Option<Self>, A::Error> {
        Ok(Some(match tag {
            "hello" => RelayMessage::Hello(fields(map)?),
            "request" => RelayMessage::Request(fields(map)?),
            "body" => RelayMessage::Body(fields(map)?),
            "abort" => RelayMessage::Abort(fields(map)?),
            "error" => RelayMessage::Error(fields(map)?),
            _ => return Ok(None),
        }))
    }
}

impl<'de> Deserialize<'de> for ClientMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TagFirstVisitor(PhantomData))
    }
}

impl<'de> Deserialize<'de> for RelayMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TagFirstVisitor(PhantomData))
    }
}

// Written by hand rather than with `#[serde(untagged)]` for the value: untagged buffers every
// value before trying each shape, and headers are decoded for every webhook.
impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> de::Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header: [name, value]")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Header, A::Error> {
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let HeaderValue(value) = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                Ok(Header { name, value })
            }
        }
        d.deserialize_tuple(2, HeaderVisitor)
    }
}

/// A header value on the wire: a string, or an array of byte values.
struct HeaderValue(Bytes);

impl<'de> Deserialize<'de> for HeaderValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> de::Visitor<'de> for ValueVisitor {
            type Value = HeaderValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a header value: a string or an array of bytes")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<HeaderValue, E> {
                Ok(HeaderValue(Bytes::copy_from_slice(text.as_bytes())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<HeaderValue, E> {
                Ok(HeaderValue(Bytes::from(text)))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<HeaderValue, A::Error> {
                let mut raw = Vec::new();
                while let Some(byte) = seq.next_element::<u8>()? {
                    raw.push(byte);
                }
                Ok(HeaderValue(Bytes::from(raw)))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}
