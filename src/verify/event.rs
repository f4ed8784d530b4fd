//! What recognising a provider's event in a webhook works with: the request as the recognizers
//! read it ([`Input`]: headers, and the body parsed once as JSON or a form) and what they find
//! ([`Recognized`]: the event's type, id, time and the object it is about). Each provider's file
//! has its recognizer; `verify::recognize` tries them in turn.

use relay_server::protocol::Header;
use serde_json::Value;

use super::Provider;

/// Bodies larger than this are not parsed for recognition (the event type of a 20 MB payload is
/// not worth the time).
const MAX_PARSED_BODY: usize = 4 * 1024 * 1024;

/// A provider event recognised in a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recognized {
    /// The provider.
    pub provider: Provider,
    /// The event type, e.g. `invoice.paid`, `pull_request.opened`.
    pub event_type: Option<String>,
    /// The provider's id of this event (the same on every redelivery).
    pub event_id: Option<String>,
    /// When the event happened, in Unix seconds, where the provider says.
    pub occurred_at: Option<i64>,
    /// The object the event is about (e.g. a Stripe subscription), for ordering checks.
    pub object_id: Option<String>,
}

/// What recognition looks at.
pub(super) struct Input<'a> {
    pub headers: &'a [Header],
    /// The body as JSON, holding only what the recognizers read (see `pruned`).
    pub json: Option<Value>,
    /// The body as a form, when it is one.
    pub form: Option<Vec<(String, String)>>,
}

impl<'a> Input<'a> {
    /// The request with `headers` and `body`, its body parsed once for every recognizer.
    pub fn new(headers: &'a [Header], body: &[u8]) -> Input<'a> {
        Input {
            headers,
            json: parse_json(body),
            form: parse_form(headers, body),
        }
    }

    /// The first header called `name` (any case), as trimmed text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(&h.value).ok())
            .map(str::trim)
    }

    /// Whether there is a header called `name` (any case).
    pub fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The value at `pointer`, a JSON pointer without `~` escapes (none of the recognizers'
    /// keys has one). Walked here rather than with `Value::pointer`, which allocates two
    /// strings per step to unescape it.
    pub fn json(&self, pointer: &str) -> Option<&Value> {
        let mut at = self.json.as_ref()?;
        for token in pointer.split('/').skip(1) {
            at = match at {
                Value::Object(map) => map.get(token)?,
                Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }

    /// The string or number at `pointer`, as text.
    pub fn text(&self, pointer: &str) -> Option<String> {
        match self.json(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The form field `key`.
    pub fn form(&self, key: &str) -> Option<String> {
        self.form
            .as_ref()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// The body as JSON, holding only the values the recognizers read (see `pruned`).
fn parse_json(body: &[u8]) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if body.len() > MAX_PARSED_BODY || !matches!(first, b'{' | b'[') {
        return None;
    }
    super::pruned::parse(body)
}

fn parse_form(headers: &[Header], body: &[u8]) -> Option<Vec<(String, String)>> {
    const FORM: &[u8] = b"application/x-www-form-urlencoded";
    let is_form = headers.iter().any(|h| {
        h.name == "content-type"
            && h.value
                .get(..FORM.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(FORM))
    });
    (is_form && body.len() <= MAX_PARSED_BODY).then(|| {
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
}

/// Unix seconds of an RFC 3339 time.
pub(super) fn rfc3339(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Unix seconds written as a number.
pub(super) fn seconds(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// `first.second`, or `first` when there is no second.
pub(super) fn dotted(first: &str, second: Option<String>) -> String {
    match second {
        Some(second) if !second.is_empty() => format!("{first}.{second}"),
        _ => first.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::recognize;
    use bytes::Bytes;

    fn headers(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect()
    }

    /// `Input::json` finds what `Value::pointer` finds, for every pointer recognition reads.
    #[test]
    fn json_lookup_agrees_with_value_pointer() {
        let body = serde_json::json!([
            {"id": "a", "0": {"eventId": 1}, "eventId": [2], "objectId": null},
            {"data": {"id": 3}},
        ]);
        let object = serde_json::json!({
            "data": {"object": {"id": "in_1"}, "item": {"id": 2}, "id": [1]},
            "event-data": {"message": {"headers": {"message-id": "<m>"}}},
            "0": "not an index here", "type": {"nested": true}
        });
        for json in [body, object] {
            let input = Input {
                headers: &[],
                json: Some(json.clone()),
                form: None,
            };
            for pointer in super::super::pruned::WANTED
                .iter()
                .chain(&["/0/0/eventId", "/1/data/id"])
            {
                assert_eq!(
                    input.json(pointer),
                    json.pointer(pointer),
                    "{pointer} in {json}"
                );
            }
        }
    }

    #[test]
    fn stripe_event_from_body() {
        let body = br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":1700000000,"data":{"object":{"id":"in_9"}}}"#;
        let got = recognize(&headers(&[("stripe-signature", "t=1,v1=x")]), body).unwrap();
        assert_eq!(got.provider, Provider::Stripe);
        assert_eq!(got.event_type.as_deref(), Some("invoice.paid"));
        assert_eq!(got.event_id.as_deref(), Some("evt_1"));
        assert_eq!(got.occurred_at, Some(1_700_000_000));
        assert_eq!(got.object_id.as_deref(), Some("in_9"));
    }

    #[test]
    fn github_event_joins_header_and_action() {
        let got = recognize(
            &headers(&[
                ("x-github-event", "pull_request"),
                ("x-github-delivery", "d-1"),
            ]),
            br#"{"action":"opened"}"#,
        )
        .unwrap();
        assert_eq!(got.event_type.as_deref(), Some("pull_request.opened"));
        assert_eq!(got.event_id.as_deref(), Some("d-1"));
    }

    #[test]
    fn twilio_form_post() {
        let got = recognize(
            &headers(&[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", "abc="),
            ]),
            b"AccountSid=AC1&MessageSid=SM1&MessageStatus=delivered",
        )
        .unwrap();
        assert_eq!(got.provider, Provider::Twilio);
        assert_eq!(got.event_type.as_deref(), Some("message.delivered"));
        assert_eq!(got.event_id.as_deref(), Some("SM1"));
    }

    #[test]
    fn standard_webhooks_and_unknown() {
        let got = recognize(
            &headers(&[("svix-id", "msg_1"), ("svix-timestamp", "1700000000")]),
            br#"{"type":"user.created","data":{"id":"u1"}}"#,
        )
        .unwrap();
        assert_eq!(got.provider, Provider::StandardWebhooks);
        assert_eq!(got.event_type.as_deref(), Some("user.created"));
        assert_eq!(got.occurred_at, Some(1_700_000_000));
        assert_eq!(recognize(&headers(&[]), b"{\"type\":\"x\"}"), None);
        assert_eq!(recognize(&headers(&[]), b"\xff\x00"), None);
    }
}
