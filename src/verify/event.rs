//! Recognises the provider's event in a webhook: its type, id, time and the object it is about,
//! from the headers and body each provider documents.

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
struct Input<'a> {
    headers: &'a [Header],
    json: Option<Value>,
    form: Option<Vec<(String, String)>>,
}

impl Input<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(&h.value).ok())
            .map(str::trim)
    }

    fn has(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The value at `pointer`, a JSON pointer without `~` escapes (none of the recognizers'
    /// keys has one). Walked here rather than with `Value::pointer`, which allocates two
    /// strings per step to unescape it.
    fn json(&self, pointer: &str) -> Option<&Value> {
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

    fn text(&self, pointer: &str) -> Option<String> {
        match self.json(pointer)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn form(&self, key: &str) -> Option<String> {
        self.form
            .as_ref()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
}

/// Recognises the event in a webhook, if its provider is one hooks knows.
pub fn recognize(headers: &[Header], body: &[u8]) -> Option<Recognized> {
    let input = Input {
        headers,
        json: parse_json(body),
        form: parse_form(headers, body),
    };
    RECOGNIZERS.iter().find_map(|recognize| recognize(&input))
}

type Recognizer = fn(&Input<'_>) -> Option<Recognized>;

/// In order: distinctive headers first, body shapes last.
const RECOGNIZERS: [Recognizer; 19] = [
    github,
    shopify,
    stripe,
    twitch,
    linear,
    gitlab,
    paddle,
    slack,
    twilio,
    zoom,
    square,
    sendgrid,
    typeform,
    calendly,
    hubspot,
    discord,
    intercom,
    standard_webhooks,
    mailgun,
];

/// The body as JSON, holding only the values the recognizers read (see `pruned`).
fn parse_json(body: &[u8]) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if body.len() > MAX_PARSED_BODY || !matches!(first, b'{' | b'[') {
        return None;
    }
    super::pruned::parse(body)
}

fn parse_form(headers: &[Header], body: &[u8]) -> Option<Vec<(String, String)>> {
    let is_form = headers.iter().any(|h| {
        h.name == "content-type"
            && h.value
                .to_ascii_lowercase()
                .starts_with(b"application/x-www-form-urlencoded")
    });
    (is_form && body.len() <= MAX_PARSED_BODY).then(|| {
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
}

/// Unix seconds of an RFC 3339 time.
fn rfc3339(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

fn seconds(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

fn dotted(first: &str, second: Option<String>) -> String {
    match second {
        Some(second) if !second.is_empty() => format!("{first}.{second}"),
        _ => first.to_owned(),
    }
}

fn github(i: &Input<'_>) -> Option<Recognized> {
    let event = i.header("x-github-event")?;
    Some(Recognized {
        provider: Provider::GitHub,
        event_type: Some(dotted(event, i.text("/action"))),
        event_id: i.header("x-github-delivery").map(str::to_owned),
        occurred_at: None,
        object_id: None,
    })
}

fn shopify(i: &Input<'_>) -> Option<Recognized> {
    let topic = i.header("x-shopify-topic").or(i.header("shopify-topic"))?;
    Some(Recognized {
        provider: Provider::Shopify,
        event_type: Some(topic.to_owned()),
        event_id: i
            .header("x-shopify-webhook-id")
            .or(i.header("x-shopify-event-id"))
            .map(str::to_owned),
        occurred_at: i.header("x-shopify-triggered-at").and_then(rfc3339),
        object_id: i.text("/admin_graphql_api_id").or(i.text("/id")),
    })
}

fn stripe(i: &Input<'_>) -> Option<Recognized> {
    let is_event = i.text("/object").as_deref() == Some("event");
    if !i.has("stripe-signature") && !is_event {
        return None;
    }
    Some(Recognized {
        provider: Provider::Stripe,
        event_type: i.text("/type"),
        event_id: i.text("/id"),
        occurred_at: i.json("/created").and_then(Value::as_i64),
        object_id: i.text("/data/object/id"),
    })
}

fn twitch(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("twitch-eventsub-subscription-type")?;
    Some(Recognized {
        provider: Provider::Twitch,
        event_type: Some(kind.to_owned()),
        event_id: i.header("twitch-eventsub-message-id").map(str::to_owned),
        occurred_at: i
            .header("twitch-eventsub-message-timestamp")
            .and_then(rfc3339),
        object_id: None,
    })
}

fn linear(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("linear-event")?;
    Some(Recognized {
        provider: Provider::Linear,
        event_type: Some(dotted(kind, i.text("/action"))),
        event_id: i.header("linear-delivery").map(str::to_owned),
        occurred_at: i
            .json("/webhookTimestamp")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/data/id"),
    })
}

fn gitlab(i: &Input<'_>) -> Option<Recognized> {
    let kind = i.header("x-gitlab-event")?;
    Some(Recognized {
        provider: Provider::GitLab,
        event_type: Some(i.text("/object_kind").unwrap_or_else(|| kind.to_owned())),
        event_id: i
            .header("x-gitlab-event-uuid")
            .or(i.header("idempotency-key"))
            .map(str::to_owned),
        occurred_at: None,
        object_id: None,
    })
}

fn paddle(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("paddle-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Paddle,
        event_type: i.text("/event_type"),
        event_id: i.text("/event_id").or(i.text("/notification_id")),
        occurred_at: i.text("/occurred_at").as_deref().and_then(rfc3339),
        object_id: i.text("/data/id"),
    })
}

fn slack(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-slack-signature") {
        return None;
    }
    let (event_type, event_id, occurred_at) = if let Some(kind) = i.text("/type") {
        let inner = i.text("/event/type");
        let event_type = match (kind.as_str(), inner) {
            ("event_callback", Some(inner)) => inner,
            _ => kind,
        };
        (
            Some(event_type),
            i.text("/event_id"),
            i.json("/event_time").and_then(Value::as_i64),
        )
    } else if let Some(command) = i.form("command") {
        (
            Some(format!("command {command}")),
            i.form("trigger_id"),
            None,
        )
    } else if let Some(payload) = i.form("payload") {
        let payload: Option<Value> = serde_json::from_str(&payload).ok();
        let kind = payload
            .as_ref()
            .and_then(|p| p.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (kind, None, None)
    } else {
        (None, None, None)
    };
    Some(Recognized {
        provider: Provider::Slack,
        event_type,
        event_id,
        occurred_at,
        object_id: None,
    })
}

fn twilio(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-twilio-signature") && i.form("AccountSid").is_none() {
        return None;
    }
    let status = |key: &str, kind: &str| i.form(key).map(|s| format!("{kind}.{s}"));
    let event_type = status("MessageStatus", "message")
        .or_else(|| status("SmsStatus", "message"))
        .or_else(|| status("CallStatus", "call"))
        .or_else(|| i.form("Body").map(|_| "message.incoming".to_owned()));
    Some(Recognized {
        provider: Provider::Twilio,
        event_type,
        event_id: i
            .form("MessageSid")
            .or_else(|| i.form("SmsSid"))
            .or_else(|| i.form("CallSid")),
        occurred_at: None,
        object_id: None,
    })
}

fn zoom(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-zm-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Zoom,
        event_type: i.text("/event"),
        event_id: i.header("x-zm-trackingid").map(str::to_owned),
        occurred_at: i
            .json("/event_ts")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/payload/object/id"),
    })
}

fn square(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-square-hmacsha256-signature") && !i.has("x-square-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Square,
        event_type: i.text("/type"),
        event_id: i.text("/event_id"),
        occurred_at: i.text("/created_at").as_deref().and_then(rfc3339),
        object_id: i.text("/data/id"),
    })
}

fn sendgrid(i: &Input<'_>) -> Option<Recognized> {
    let first = i.json("/0")?;
    first.get("sg_event_id")?;
    let count = i
        .json
        .as_ref()
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let kind = first
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("event");
    let event_type = if count > 1 {
        format!("{kind} (+{} more)", count - 1)
    } else {
        kind.to_owned()
    };
    Some(Recognized {
        provider: Provider::SendGrid,
        event_type: Some(event_type),
        event_id: first
            .get("sg_event_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        occurred_at: first.get("timestamp").and_then(Value::as_i64),
        object_id: first
            .get("sg_message_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn typeform(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("typeform-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Typeform,
        event_type: i.text("/event_type"),
        event_id: i.text("/event_id"),
        occurred_at: i
            .text("/form_response/submitted_at")
            .as_deref()
            .and_then(rfc3339),
        object_id: i.text("/form_response/token"),
    })
}

fn calendly(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("calendly-webhook-signature") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Calendly,
        event_type: i.text("/event"),
        event_id: None,
        occurred_at: i.text("/created_at").as_deref().and_then(rfc3339),
        object_id: i.text("/payload/uri"),
    })
}

fn hubspot(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-hubspot-signature") && !i.has("x-hubspot-signature-v3") {
        return None;
    }
    Some(Recognized {
        provider: Provider::HubSpot,
        event_type: i.text("/0/subscriptionType"),
        event_id: i.text("/0/eventId"),
        occurred_at: i
            .json("/0/occurredAt")
            .and_then(Value::as_i64)
            .map(|ms| ms / 1000),
        object_id: i.text("/0/objectId"),
    })
}

fn discord(i: &Input<'_>) -> Option<Recognized> {
    if !i.has("x-signature-ed25519") {
        return None;
    }
    let event_type = i.json("/type").and_then(Value::as_u64).map(|kind| {
        match kind {
            1 => "PING",
            2 => "APPLICATION_COMMAND",
            3 => "MESSAGE_COMPONENT",
            4 => "APPLICATION_COMMAND_AUTOCOMPLETE",
            5 => "MODAL_SUBMIT",
            _ => "interaction",
        }
        .to_owned()
    });
    Some(Recognized {
        provider: Provider::Discord,
        event_type,
        event_id: i.text("/id"),
        occurred_at: None,
        object_id: None,
    })
}

fn intercom(i: &Input<'_>) -> Option<Recognized> {
    if i.text("/type").as_deref() != Some("notification_event") {
        return None;
    }
    Some(Recognized {
        provider: Provider::Intercom,
        event_type: i.text("/topic"),
        event_id: i.text("/id"),
        occurred_at: i.json("/created_at").and_then(Value::as_i64),
        object_id: i.text("/data/item/id"),
    })
}

fn standard_webhooks(i: &Input<'_>) -> Option<Recognized> {
    let (id, timestamp) = match (i.header("webhook-id"), i.header("svix-id")) {
        (Some(id), _) => (id, i.header("webhook-timestamp")),
        (None, Some(id)) => (id, i.header("svix-timestamp")),
        (None, None) => return None,
    };
    Some(Recognized {
        provider: Provider::StandardWebhooks,
        event_type: i.text("/type"),
        event_id: Some(id.to_owned()),
        occurred_at: timestamp.and_then(seconds),
        object_id: i.text("/data/id"),
    })
}

fn mailgun(i: &Input<'_>) -> Option<Recognized> {
    i.json("/signature/token")?;
    Some(Recognized {
        provider: Provider::Mailgun,
        event_type: i.text("/event-data/event"),
        event_id: i.text("/event-data/id"),
        occurred_at: i
            .json("/event-data/timestamp")
            .and_then(Value::as_f64)
            .map(|t| t as i64),
        object_id: i.text("/event-data/message/headers/message-id"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
