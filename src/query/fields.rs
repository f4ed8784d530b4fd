//! The fields of `--where`, in one table: their names, what their values look like, how a
//! value is read into a [`Term`], what a term costs to evaluate, and whether it is known
//! before the app answered.

use super::value::{
    self, BodyPattern, Compare, Glob, JsonNumber, JsonTest, Op, Pointer, StatusPattern, TimePoint,
    Verdict,
};
use super::Term;

/// What evaluating a term costs, cheapest first; the matcher tries cheap terms first so that
/// bodies are read only when nothing cheaper decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cost {
    /// A column of the capture row or a field of the exchange.
    Row,
    /// The request's headers, or its query string.
    Headers,
    /// The request body, parsed as JSON (once per exchange).
    Json,
    /// The request body, searched with a regular expression.
    Body,
}

/// One field of the language.
#[derive(Debug)]
pub struct FieldSpec {
    /// Its name, before `:` (or `.` for fields with a key).
    pub name: &'static str,
    /// For `header.NAME`, `query.KEY`, `json.POINTER`: what the key is, as help shows it.
    pub key: Option<&'static str>,
    /// Whether the term is written `field~value` (only `body`) rather than `field:value`.
    pub tilde: bool,
    /// Whether the field is known only once the app answered (`status`, `duration`), or once
    /// routing chose (`route`): such fields cannot decide routing.
    pub after_routing: bool,
    /// What evaluating it costs.
    pub cost: Cost,
    /// What a value looks like, for "expected …" in errors.
    pub syntax: &'static str,
    /// Reads the value (the key, if any, first); `Err` is what was expected instead.
    parse: fn(key: &str, value: &str, quoted: bool) -> Result<Term, Bad>,
}

/// What is wrong with a term: its key or its value; the text is what was expected there
/// (empty: what the field's `syntax` says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bad {
    /// The key after `field.`.
    Key(String),
    /// The value after `:` or `~`.
    Value(String),
}

impl FieldSpec {
    /// The field as help and errors show it: `status`, `header.NAME`, `body~REGEX`.
    pub fn label(&self) -> String {
        match (self.key, self.tilde) {
            (Some(key), _) => format!("{}.{key}", self.name),
            (None, true) => format!("{}~REGEX", self.name),
            (None, false) => self.name.to_owned(),
        }
    }

    /// Reads a term of this field; `Err` says what was expected of the key or the value.
    pub fn parse(&self, key: &str, value: &str, quoted: bool) -> Result<Term, Bad> {
        (self.parse)(key, value, quoted).map_err(|bad| match bad {
            Bad::Value(text) if text.is_empty() => Bad::Value(self.syntax.to_owned()),
            other => other,
        })
    }
}

/// Every field, in the order help and errors list them.
pub static FIELDS: &[FieldSpec] = &[
    field(
        "id",
        Cost::Row,
        "a capture id such as 12, or >=100",
        |_, v, _| compare(v, |t| t.parse::<i64>().ok().filter(|id| *id > 0)).map(Term::Id),
    ),
    field(
        "method",
        Cost::Row,
        "a method such as POST (a glob)",
        |_, v, _| Ok(Term::Method(Glob::ignoring_case(v))),
    ),
    field(
        "path",
        Cost::Row,
        "a path glob such as /webhooks/*",
        |_, v, _| Ok(Term::Path(Glob::new(v))),
    ),
    FieldSpec {
        after_routing: true,
        ..field("status", Cost::Row, StatusPattern::SYNTAX, |_, v, _| {
            v.parse()
                .map(Term::Status)
                .map_err(|_| Bad::Value(String::new()))
        })
    },
    FieldSpec {
        after_routing: true,
        ..field(
            "duration",
            Cost::Row,
            "a comparison with a duration such as >1s or <=200ms",
            |_, v, _| {
                let (op, _) = Op::split(v);
                if op == Op::Eq {
                    return Err(Bad::Value(String::new()));
                }
                compare(v, value::parse_duration).map(Term::Duration)
            },
        )
    },
    field("size", Cost::Row, value::SIZE_SYNTAX, |_, v, _| {
        compare(v, value::parse_size).map(Term::Size)
    }),
    field(
        "provider",
        Cost::Row,
        "a provider such as stripe (a glob)",
        |_, v, _| Ok(Term::Provider(Glob::ignoring_case(v))),
    ),
    field(
        "event",
        Cost::Row,
        "an event type glob such as invoice.*",
        |_, v, _| Ok(Term::Event(Glob::new(v))),
    ),
    field(
        "verdict",
        Cost::Row,
        "valid, invalid, expired, unsigned or unchecked",
        |_, v, _| Verdict::parse(v).map(Term::Verdict).ok_or_default(),
    ),
    field("replay", Cost::Row, "true or false", |_, v, _| match v {
        "true" => Ok(Term::Replay(true)),
        "false" => Ok(Term::Replay(false)),
        _ => Err(Bad::Value(String::new())),
    }),
    field("sent", Cost::Row, "true or false", |_, v, _| match v {
        "true" => Ok(Term::Sent(true)),
        "false" => Ok(Term::Sent(false)),
        _ => Err(Bad::Value(String::new())),
    }),
    field("since", Cost::Row, TimePoint::SYNTAX, |_, v, _| {
        TimePoint::parse(v).map(Term::Since).ok_or_default()
    }),
    field("before", Cost::Row, TimePoint::SYNTAX, |_, v, _| {
        TimePoint::parse(v).map(Term::Before).ok_or_default()
    }),
    FieldSpec {
        key: Some("NAME"),
        ..field(
            "header",
            Cost::Headers,
            "a header value glob, or * for any",
            |k, v, _| header_term(k, v),
        )
    },
    FieldSpec {
        key: Some("KEY"),
        ..field(
            "query",
            Cost::Headers,
            "a query parameter value glob, or * for any",
            |k, v, _| {
                Ok(Term::Query {
                    key: k.to_owned(),
                    value: Glob::new(v),
                })
            },
        )
    },
    FieldSpec {
        key: Some("POINTER"),
        ..field(
            "json",
            Cost::Json,
            "a value such as cus_42 (a glob), 2000, or a comparison such as >1000",
            json_term,
        )
    },
    FieldSpec {
        tilde: true,
        ..field("body", Cost::Body, "a regular expression", |_, v, _| {
            BodyPattern::new(v).map(Term::Body).map_err(Bad::Value)
        })
    },
    FieldSpec {
        after_routing: true,
        ..field("route", Cost::Row, "a route name (a glob)", |_, v, _| {
            Ok(Term::Route(Glob::new(v)))
        })
    },
];

/// A plain `name:value` field.
const fn field(
    name: &'static str,
    cost: Cost,
    syntax: &'static str,
    parse: fn(&str, &str, bool) -> Result<Term, Bad>,
) -> FieldSpec {
    FieldSpec {
        name,
        key: None,
        tilde: false,
        after_routing: false,
        cost,
        syntax,
        parse,
    }
}

/// The field named `name` (any ASCII case).
pub fn lookup(name: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

/// The field spec of `term`.
pub fn of(term: &Term) -> &'static FieldSpec {
    let name = match term {
        Term::Id(_) => "id",
        Term::Method(_) => "method",
        Term::Path(_) => "path",
        Term::Status(_) => "status",
        Term::Duration(_) => "duration",
        Term::Size(_) => "size",
        Term::Provider(_) => "provider",
        Term::Event(_) => "event",
        Term::Verdict(_) => "verdict",
        Term::Replay(_) => "replay",
        Term::Sent(_) => "sent",
        Term::Since(_) => "since",
        Term::Before(_) => "before",
        Term::Route(_) => "route",
        Term::Header { .. } => "header",
        Term::Query { .. } => "query",
        Term::Json { .. } => "json",
        Term::Body(_) => "body",
    };
    lookup(name).expect("every term's field is in the table")
}

/// Every field as help shows it: `id, method, …, header.NAME, …, body~REGEX, route`.
pub fn known() -> String {
    let labels: Vec<String> = FIELDS.iter().map(FieldSpec::label).collect();
    labels.join(", ")
}

/// `None` is a bad value, of the kind the field's `syntax` describes.
trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, Bad>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, Bad> {
        self.ok_or_else(|| Bad::Value(String::new()))
    }
}

fn compare<T>(text: &str, value: impl Fn(&str) -> Option<T>) -> Result<Compare<T>, Bad> {
    value::compare(text, value).ok_or_default()
}

fn header_term(name: &str, value: &str) -> Result<Term, Bad> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(Bad::Key("a header name such as content-type".to_owned()));
    }
    Ok(Term::Header {
        name: name.to_ascii_lowercase(),
        value: Glob::new(value),
    })
}

/// `json.POINTER:VALUE`: a bare value starting with `<` or `>` is a comparison of numbers; a
/// quoted one is always a value, so `">x"` finds the string `>x`.
fn json_term(key: &str, value: &str, quoted: bool) -> Result<Term, Bad> {
    let pointer = Pointer::parse(key).ok_or_else(|| Bad::Key(Pointer::SYNTAX.to_owned()))?;
    let test = match Op::split(value) {
        (op @ (Op::Gt | Op::Ge | Op::Lt | Op::Le), rest) if !quoted => {
            let number = value::parse_number(rest).ok_or_else(|| {
                Bad::Value("a number after the comparison, such as >1000".to_owned())
            })?;
            JsonTest::Compare(Compare {
                op,
                value: JsonNumber(number),
            })
        }
        _ => JsonTest::Equals {
            glob: Glob::new(value),
            number: value::parse_number(value),
        },
    };
    Ok(Term::Json { pointer, test })
}
