//! The parts of a JSON body that recognition reads ([`WANTED`]), parsed into a [`Value`] that
//! holds only them: every other value is skipped as it is read, without allocating. Parsing a
//! whole 1 KiB webhook into a tree (a map entry, a string, per key) was a fifth of the CLI's
//! per-webhook CPU time in `perf`; this keeps a handful of strings.

use std::fmt;
use std::sync::OnceLock;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::{Map, Number, Value};

/// The JSON pointers the recognizers in the providers' files read (a test checks that this
/// covers every one). A value at one of these is kept whole, whatever is under it.
pub(super) const WANTED: &[&str] = &[
    "/0",
    "/action",
    "/admin_graphql_api_id",
    "/created",
    "/created_at",
    "/data/id",
    "/data/item/id",
    "/data/object/id",
    "/event",
    "/event-data/event",
    "/event-data/id",
    "/event-data/message/headers/message-id",
    "/event-data/timestamp",
    "/event_id",
    "/event_time",
    "/event_ts",
    "/event_type",
    "/form_response/submitted_at",
    "/form_response/token",
    "/id",
    "/notification_id",
    "/object",
    "/object_kind",
    "/occurred_at",
    "/payload/object/id",
    "/payload/uri",
    "/signature/token",
    "/topic",
    "/type",
    "/webhookTimestamp",
];

/// Which keys to keep at one level of the document.
#[derive(Debug, Default)]
struct Trie {
    /// Keep the value here whole.
    whole: bool,
    children: Vec<(String, Trie)>,
}

impl Trie {
    fn insert(&mut self, pointer: &str) {
        let mut node = self;
        for token in pointer.split('/').skip(1) {
            let at = match node.children.iter().position(|(key, _)| key == token) {
                Some(at) => at,
                None => {
                    node.children.push((token.to_owned(), Trie::default()));
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at].1;
        }
        node.whole = true;
    }

    fn child(&self, key: &str) -> Option<&(String, Trie)> {
        self.children.iter().find(|(k, _)| k == key)
    }
}

fn wanted() -> &'static Trie {
    static TRIE: OnceLock<Trie> = OnceLock::new();
    TRIE.get_or_init(|| {
        let mut trie = Trie::default();
        for pointer in WANTED {
            trie.insert(pointer);
        }
        trie
    })
}

/// `body` as JSON, holding only what [`WANTED`] points at (arrays keep their length, with
/// `null` for the elements skipped); `None` when it is not JSON.
pub(super) fn parse(body: &[u8]) -> Option<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Pruned(wanted()).deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(value)
}

/// Deserializes the value under one trie node.
struct Pruned<'t>(&'t Trie);

impl<'de> DeserializeSeed<'de> for Pruned<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        if self.0.whole {
            Value::deserialize(deserializer)
        } else {
            deserializer.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // The indices wanted here (only `0` today), parsed once rather than per element.
        let wanted: Vec<(usize, &Trie)> = self
            .0
            .children
            .iter()
            .filter_map(|(key, child)| Some((key.parse().ok()?, child)))
            .collect();
        let mut items = Vec::new();
        loop {
            let index = items.len();
            let kept = wanted.iter().find(|(at, _)| *at == index);
            let item = match kept {
                Some((_, child)) => seq.next_element_seed(Pruned(child))?,
                None => seq.next_element::<IgnoredAny>()?.map(|_| Value::Null),
            };
            match item {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.0))? {
            match key {
                Some((name, child)) => {
                    let value = map.next_value_seed(Pruned(child))?;
                    kept.insert(name.clone(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// Reads an object's key, and finds it among a trie node's children without copying it.
struct Key<'t>(&'t Trie);

impl<'de, 't> DeserializeSeed<'de> for Key<'t> {
    type Value = Option<&'t (String, Trie)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de, 't> Visitor<'de> for Key<'t> {
    type Value = Option<&'t (String, Trie)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.0.child(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pointer the recognizers read is one of [`WANTED`] or under one.
    #[test]
    fn wanted_covers_every_pointer_the_recognizers_read() {
        let sources = [
            include_str!("calendly.rs"),
            include_str!("discord.rs"),
            include_str!("github.rs"),
            include_str!("gitlab.rs"),
            include_str!("hubspot.rs"),
            include_str!("intercom.rs"),
            include_str!("linear.rs"),
            include_str!("mailgun.rs"),
            include_str!("paddle.rs"),
            include_str!("sendgrid.rs"),
            include_str!("shopify.rs"),
            include_str!("slack.rs"),
            include_str!("square.rs"),
            include_str!("standard_webhooks.rs"),
            include_str!("stripe.rs"),
            include_str!("twilio.rs"),
            include_str!("twitch.rs"),
            include_str!("typeform.rs"),
            include_str!("zoom.rs"),
        ];
        let mut read = Vec::new();
        for source in sources {
            let source = &source[..source.find("#[cfg(test)]").unwrap_or(source.len())];
            for call in ["i.text(\"", "i.json(\""] {
                for (at, _) in source.match_indices(call) {
                    let rest = &source[at + call.len()..];
                    read.push(&rest[..rest.find('"').expect("a closed string")]);
                }
            }
        }
        assert!(read.len() > 20, "found only {read:?}");
        // `Input::json` walks pointers without unescaping them.
        assert!(WANTED.iter().all(|p| !p.contains('~')));
        for pointer in read {
            let covered = WANTED
                .iter()
                .any(|wanted| pointer == *wanted || pointer.starts_with(&format!("{wanted}/")));
            assert!(
                covered,
                "{pointer} is read by a recognizer but not in WANTED"
            );
        }
    }

    /// At every wanted pointer, the pruned value is the fully parsed one, in bodies with the
    /// wanted keys among others, nested, escaped, repeated and in arrays.
    #[test]
    fn pruned_values_equal_the_full_parse_at_every_wanted_pointer() {
        let bodies: [&[u8]; 6] = [
            br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000,
                "data":{"object":{"id":"in_9","lines":[1,2,{"id":"x"}]},"id":7,"item":{"id":"it"}},
                "noise":{"id":"no","deep":[[{"type":"no"}]]},"livemode":false,"amount":12.5}"#,
            br#"[{"sg_event_id":"a","event":"open","eventId":3,"objectId":"o","occurredAt":1,
                "subscriptionType":"contact.creation"},{"sg_event_id":"b"},null,"x",5]"#,
            br#"{"event-data":{"event":"delivered","id":"m1","timestamp":1.5e9,
                "message":{"headers":{"message-id":"<a@b>","to":"c"}}},"signature":{"token":"t"}}"#,
            br#"{"ty\u0070e":"escaped key","type":"last wins","event":{"type":"inner","x":[]},
                "payload":{"object":{"id":123456789012345678},"uri":"https://x"},"topic":null}"#,
            br#"{"action":"opened","admin_graphql_api_id":"gid://1","object_kind":"push",
                "form_response":{"token":"tok","submitted_at":"2026-01-01T00:00:00Z","answers":[]},
                "event_id":"e","event_time":-5,"event_ts":"1.2","event_type":"t","notification_id":"n",
                "occurred_at":"2026","created_at":"then","webhookTimestamp":17}"#,
            br#"{}"#,
        ];
        for body in bodies {
            let full: Value = serde_json::from_slice(body).unwrap();
            let pruned = parse(body).unwrap();
            for pointer in WANTED {
                assert_eq!(
                    pruned.pointer(pointer),
                    full.pointer(pointer),
                    "{pointer} in {}",
                    String::from_utf8_lossy(body)
                );
            }
            if let Value::Array(items) = &full {
                assert_eq!(pruned.as_array().map(Vec::len), Some(items.len()));
            }
        }
    }

    /// What is not JSON, or is JSON followed by more, is not parsed (as `serde_json` would not).
    #[test]
    fn invalid_json_is_none() {
        for body in [
            &b"{"[..],
            b"{\"a\":1} x",
            b"{\"a\":}",
            b"[1,]",
            b"",
            b"\xff",
        ] {
            assert_eq!(parse(body), None, "{}", String::from_utf8_lossy(body));
        }
        assert_eq!(
            parse(b" {\"id\":\"x\"} \n"),
            Some(serde_json::json!({"id":"x"}))
        );
    }
}
