//! Event templates: what `hooks send` renders into a request. One format for the built-in
//! templates and a project's own (`.hooks/events/<provider>/<event>.toml` or `.json`): the same
//! fields in either syntax.
//!
//! ```toml
//! description = "An invoice was paid"
//! headers = ["User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)",
//!            "Content-Type: application/json; charset=utf-8"]
//! body = '''
//! {"id": "{{event_id:evt_}}", "object": "event", "created": {{now}}, …}
//! '''
//! ```

use std::path::PathBuf;
use std::time::SystemTime;

use serde::Deserialize;

use super::render::{self, PlaceholderError, Values};
use crate::verify::Provider;

/// A template file's fields, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    description: String,
    scheme: Option<String>,
    method: Option<String>,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    retry_headers: Vec<String>,
    body: Option<BodySource>,
    form: Option<Vec<(String, String)>>,
}

/// `body` as written: text, or (in either syntax) a JSON value written out as pretty JSON.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BodySource {
    Text(String),
    Json(serde_json::Value),
}

/// Where a template comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built into hooks.
    BuiltIn,
    /// A project's file.
    Project(PathBuf),
}

/// A template's body, before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// Text with placeholders (JSON, usually).
    Text(String),
    /// Form fields, values with placeholders, sent `application/x-www-form-urlencoded`.
    Form(Vec<(String, String)>),
}

/// One event template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The provider folder it is under, e.g. `stripe`, `clerk`, or a project's own name.
    pub provider: String,
    /// The event, e.g. `invoice.paid`, `orders/create`.
    pub event: String,
    /// One line saying what happened.
    pub description: String,
    /// The signature scheme: the template's `scheme`, else the provider's own.
    pub scheme: Option<Provider>,
    /// The HTTP method (`POST` unless the template says otherwise).
    pub method: String,
    /// Headers in order, values with placeholders.
    pub headers: Vec<(String, String)>,
    /// Headers a retry adds (`--duplicate`), e.g. Slack's `X-Slack-Retry-Num`.
    pub retry_headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
    /// Where it comes from.
    pub source: Source,
}

/// Which syntax a template file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// `.toml`
    Toml,
    /// `.json`
    Json,
}

impl Syntax {
    /// The syntax of a file named `name`, if it is a template file.
    pub fn of(name: &str) -> Option<(Syntax, &str)> {
        if let Some(stem) = name.strip_suffix(".toml") {
            return Some((Syntax::Toml, stem));
        }
        name.strip_suffix(".json").map(|stem| (Syntax::Json, stem))
    }
}

impl Template {
    /// Parses a template for `provider`/`event` and checks its headers and placeholders.
    pub fn parse(
        provider: &str,
        event: &str,
        text: &str,
        syntax: Syntax,
        source: Source,
    ) -> Result<Template, String> {
        let file: File = match syntax {
            Syntax::Toml => toml::from_str(text).map_err(|e| e.to_string())?,
            Syntax::Json => serde_json::from_str(text).map_err(|e| e.to_string())?,
        };
        let scheme_name = file.scheme.as_deref().unwrap_or(provider);
        let scheme = match scheme_name.parse::<Provider>() {
            Ok(scheme) => Some(scheme),
            Err(_) if file.scheme.is_none() => None,
            Err(e) => return Err(format!("scheme: {e}")),
        };
        let body = match (file.body, file.form) {
            (Some(_), Some(_)) => return Err("give body or form, not both".into()),
            (Some(BodySource::Text(text)), None) => Body::Text(text),
            (Some(BodySource::Json(value)), None) => {
                Body::Text(serde_json::to_string_pretty(&value).map_err(|e| format!("body: {e}"))?)
            }
            (None, Some(fields)) => Body::Form(fields),
            (None, None) => Body::Empty,
        };
        let template = Template {
            provider: provider.to_owned(),
            event: event.to_owned(),
            description: file.description.trim().to_owned(),
            scheme,
            method: file.method.unwrap_or_else(|| "POST".to_owned()),
            headers: header_list(&file.headers, "headers")?,
            retry_headers: header_list(&file.retry_headers, "retry_headers")?,
            body,
            source,
        };
        template.check()?;
        Ok(template)
    }

    /// Renders every placeholder once, to find mistakes before anything is sent.
    fn check(&self) -> Result<(), String> {
        http::Method::from_bytes(self.method.as_bytes())
            .map_err(|_| format!("method {:?} is not an HTTP method", self.method))?;
        let headers = self.headers.iter().chain(&self.retry_headers);
        for (name, value) in headers {
            render::check(value).map_err(|e| format!("header {name}: {e}"))?;
        }
        match &self.body {
            Body::Empty => {}
            Body::Text(text) => render::check(text).map_err(|e| format!("body: {e}"))?,
            Body::Form(fields) => {
                for (name, value) in fields {
                    render::check(value).map_err(|e| format!("form field {name}: {e}"))?;
                }
            }
        }
        Ok(())
    }

    /// Whether the body is a form.
    pub fn is_form(&self) -> bool {
        matches!(self.body, Body::Form(_))
    }

    /// The request this template describes, with `values` and times from `at`.
    pub fn render(&self, values: &mut Values, at: SystemTime) -> Result<Rendered, String> {
        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, value) in &self.headers {
            let value = render::render(value, values, at).map_err(|e| describe(name, &e))?;
            headers.push((name.clone(), value));
        }
        let body = match &self.body {
            Body::Empty => Vec::new(),
            Body::Text(text) => render::render(text, values, at)
                .map_err(|e| describe("body", &e))?
                .into_bytes(),
            Body::Form(fields) => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                for (name, value) in fields {
                    let value =
                        render::render(value, values, at).map_err(|e| describe(name, &e))?;
                    form.append_pair(name, &value);
                }
                form.finish().into_bytes()
            }
        };
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            && !body.is_empty()
        {
            let kind = if self.is_form() {
                "application/x-www-form-urlencoded"
            } else {
                "application/json"
            };
            headers.push(("Content-Type".to_owned(), kind.to_owned()));
        }
        Ok(Rendered {
            method: self.method.clone(),
            headers,
            body,
        })
    }

    /// The retry headers, rendered.
    pub fn render_retry_headers(
        &self,
        values: &mut Values,
        at: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        self.retry_headers
            .iter()
            .map(|(name, value)| {
                render::render(value, values, at)
                    .map(|value| (name.clone(), value))
                    .map_err(|e| describe(name, &e))
            })
            .collect()
    }
}

fn describe(what: &str, e: &PlaceholderError) -> String {
    format!("{what}: {e}")
}

/// `["Name: value", …]` as pairs, each name a valid header name.
fn header_list(lines: &[String], field: &str) -> Result<Vec<(String, String)>, String> {
    lines
        .iter()
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| format!("{field}: {line:?} is not 'Name: value'"))?;
            let name = name.trim();
            http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("{field}: {name:?} is not a header name"))?;
            Ok((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

/// A rendered request, before changes and signing: bytes from here on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The method.
    pub method: String,
    /// Headers in order, names as the template spells them.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Rendered {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name`: replaces the first of that name where it is (dropping later ones),
    /// or adds it at the end.
    pub fn set_header(&mut self, name: &str, value: String) {
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(first) => {
                self.headers[first].1 = value;
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    index += 1;
                    index - 1 == first || !n.eq_ignore_ascii_case(name)
                });
            }
            None => self.headers.push((name.to_owned(), value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn parse(text: &str, syntax: Syntax) -> Result<Template, String> {
        Template::parse("acme", "thing.done", text, syntax, Source::BuiltIn)
    }

    #[test]
    fn toml_and_json_are_one_format() {
        let toml = r#"
            description = "A thing was done"
            scheme = "github"
            headers = ["X-Acme-Event: thing.done", "X-Acme-Delivery: {{event_uuid}}"]
            body = '{"at": {{now}}}'
        "#;
        let json = r#"{"description": "A thing was done", "scheme": "github",
            "headers": ["X-Acme-Event: thing.done", "X-Acme-Delivery: {{event_uuid}}"],
            "body": "{\"at\": {{now}}}"}"#;
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for syntax in [Syntax::Toml, Syntax::Json] {
            let text = if syntax == Syntax::Toml { toml } else { json };
            let template = parse(text, syntax).unwrap();
            assert_eq!(template.scheme, Some(Provider::GitHub));
            let rendered = template.render(&mut Values::fresh(), at).unwrap();
            assert_eq!(rendered.body, br#"{"at": 1700000000}"#);
            assert_eq!(rendered.headers[0].1, "thing.done");
            assert_eq!(rendered.headers[1].1.len(), 36);
            assert_eq!(rendered.header("content-type"), Some("application/json"));
        }
    }

    #[test]
    fn a_json_body_value_and_a_form_render() {
        let json = r#"{"description": "d", "body": {"id": "{{id:ev_}}", "n": 1}}"#;
        let template = parse(json, Syntax::Json).unwrap();
        assert_eq!(template.scheme, None, "acme is no provider hooks knows");
        let body = template
            .render(&mut Values::fresh(), UNIX_EPOCH)
            .unwrap()
            .body;
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(value["id"].as_str().unwrap().starts_with("ev_"));
        assert!(body.starts_with(b"{\n  \"id\""), "pretty, in order");

        let form = "description = 'd'\nform = [['Body', 'hi there & {{now}}'], ['To', '+1']]";
        let rendered = parse(form, Syntax::Toml)
            .unwrap()
            .render(&mut Values::fresh(), UNIX_EPOCH)
            .unwrap();
        assert_eq!(rendered.body, b"Body=hi+there+%26+0&To=%2B1");
        assert_eq!(
            rendered.header("Content-Type"),
            Some("application/x-www-form-urlencoded")
        );
    }

    #[test]
    fn mistakes_are_refused_when_loading() {
        let err = |text: &str| parse(text, Syntax::Toml).unwrap_err();
        assert!(err("body = 'x'").contains("missing field `description`"));
        assert!(err("description = 'd'\nbody = '{{nope}}'").starts_with("body: placeholder"));
        assert!(err("description = 'd'\nheaders = ['nocolon']").contains("is not 'Name: value'"));
        assert!(err("description = 'd'\nscheme = 'stripey'").starts_with("scheme: unknown"));
        assert!(err("description = 'd'\nbody = 'x'\nform = []").contains("not both"));
        assert!(err("description = 'd'\nbogus = 1").contains("unknown field"));
    }

    #[test]
    fn set_header_replaces_in_place() {
        let mut r = Rendered {
            method: "POST".into(),
            headers: vec![
                ("A".into(), "1".into()),
                ("b".into(), "2".into()),
                ("a".into(), "3".into()),
            ],
            body: Vec::new(),
        };
        r.set_header("a", "x".into());
        r.set_header("C", "y".into());
        assert_eq!(
            r.headers,
            [
                ("A".to_owned(), "x".to_owned()),
                ("b".to_owned(), "2".to_owned()),
                ("C".to_owned(), "y".to_owned())
            ]
        );
    }
}
