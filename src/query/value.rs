//! The typed values of `--where` terms: globs, comparisons, status patterns, durations, sizes,
//! points in time, JSON pointers and body patterns, each with its parser and canonical text.

use std::cmp::Ordering;
use std::fmt;
use std::time::Duration;

use serde_json::Number;

/// Largest compiled body pattern, in bytes: expressions come from users (and MCP clients), and
/// a pattern such as `\w{1000}{1000}` would otherwise take gigabytes to compile.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A comparison operator; `Eq` is written as nothing (`status:500`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Equal (no sign, or `=`).
    Eq,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
}

impl Op {
    /// The operator at the start of `text`, and the rest.
    pub fn split(text: &str) -> (Op, &str) {
        for (sign, op) in [
            (">=", Op::Ge),
            ("<=", Op::Le),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("=", Op::Eq),
        ] {
            if let Some(rest) = text.strip_prefix(sign) {
                return (op, rest);
            }
        }
        (Op::Eq, text)
    }

    /// Whether `ordering` (of the subject against the value) satisfies this operator.
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Ge => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Le => ordering != Ordering::Greater,
        }
    }

    /// The sign as written; empty for `Eq`.
    pub fn sign(self) -> &'static str {
        match self {
            Op::Eq => "",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
        }
    }
}

/// A value compared with an operator: `>=400`, `<200ms`, `12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare<T> {
    /// How.
    pub op: Op,
    /// With what.
    pub value: T,
}

impl<T: PartialOrd> Compare<T> {
    /// Whether `subject` compares with the value as the operator says.
    pub fn holds(&self, subject: &T) -> bool {
        subject
            .partial_cmp(&self.value)
            .is_some_and(|ordering| self.op.holds(ordering))
    }
}

/// Parses `text` as an operator and a value read by `value`.
pub fn compare<T>(text: &str, value: impl Fn(&str) -> Option<T>) -> Option<Compare<T>> {
    let (op, rest) = Op::split(text);
    value(rest).map(|value| Compare { op, value })
}

/// A glob: `*` matches any run of characters (none included), everything else itself.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    /// The literal pieces between the stars, lowercased when case does not matter.
    pieces: Vec<Vec<u8>>,
    fold_case: bool,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.pattern == other.pattern && self.fold_case == other.fold_case
    }
}

impl Eq for Glob {}

impl Glob {
    /// A glob that tells upper from lower case.
    pub fn new(pattern: &str) -> Glob {
        Glob::with_case(pattern, false)
    }

    /// A glob that ignores ASCII case (methods, provider names).
    pub fn ignoring_case(pattern: &str) -> Glob {
        Glob::with_case(pattern, true)
    }

    fn with_case(pattern: &str, fold_case: bool) -> Glob {
        let pieces = pattern
            .split('*')
            .map(|piece| {
                if fold_case {
                    piece.to_ascii_lowercase().into_bytes()
                } else {
                    piece.as_bytes().to_vec()
                }
            })
            .collect();
        Glob {
            pattern: pattern.to_owned(),
            pieces,
            fold_case,
        }
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// Whether the pattern has no `*` (it then matches one text only).
    pub fn is_literal(&self) -> bool {
        self.pieces.len() == 1
    }

    /// The literal pieces between the stars, as written.
    pub fn literal_pieces(&self) -> impl Iterator<Item = &str> {
        self.pattern.split('*')
    }

    /// Whether the glob matches `text` whole.
    pub fn matches(&self, text: &[u8]) -> bool {
        if self.fold_case && text.iter().any(u8::is_ascii_uppercase) {
            return self.matches_exact(&text.to_ascii_lowercase());
        }
        self.matches_exact(text)
    }

    fn matches_exact(&self, text: &[u8]) -> bool {
        let (first, rest) = match self.pieces.split_first() {
            Some(split) => split,
            None => return text.is_empty(),
        };
        let Some(mut text) = text.strip_prefix(first.as_slice()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return text.is_empty();
        };
        // Leftmost matches of the middle pieces leave the most room for the others.
        for piece in middle {
            match memchr::memmem::find(text, piece) {
                Some(at) => text = &text[at + piece.len()..],
                None => return false,
            }
        }
        text.ends_with(last)
    }
}

/// Which statuses a `status:` term keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusPattern {
    /// A status compared: `500`, `>=400`.
    Compare(Compare<u16>),
    /// A class: `5` for `5xx`.
    Class(u16),
    /// The app did not answer: `error`.
    Error,
}

impl StatusPattern {
    /// What a status pattern looks like, for error messages.
    pub const SYNTAX: &'static str = "a status such as 500, 5xx, >=400 or error";

    /// Whether `status` (`None`: the app did not answer) matches.
    pub fn matches(self, status: Option<u16>) -> bool {
        match (self, status) {
            (StatusPattern::Error, None) => true,
            (StatusPattern::Class(class), Some(status)) => status / 100 == class,
            (StatusPattern::Compare(compare), Some(status)) => compare.holds(&status),
            _ => false,
        }
    }
}

impl std::str::FromStr for StatusPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("expected {}, found {text:?}", StatusPattern::SYNTAX);
        if text == "error" {
            return Ok(StatusPattern::Error);
        }
        if let Some(class) = text.to_ascii_lowercase().strip_suffix("xx") {
            return match class.as_bytes() {
                [digit @ b'1'..=b'5'] => Ok(StatusPattern::Class(u16::from(digit - b'0'))),
                _ => Err(bad()),
            };
        }
        compare(text, |digits| {
            digits
                .parse::<u16>()
                .ok()
                .filter(|s| (100..=999).contains(s) && digits.len() == 3)
        })
        .map(StatusPattern::Compare)
        .ok_or_else(bad)
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPattern::Compare(c) => write!(f, "{}{}", c.op.sign(), c.value),
            StatusPattern::Class(class) => write!(f, "{class}xx"),
            StatusPattern::Error => f.write_str("error"),
        }
    }
}

/// A signature verdict, as `hooks listen` records it.
pub use crate::verify::Verdict;

/// A point in time for `since` and `before`: a span before now, or an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePoint {
    /// This long before the moment the expression is evaluated.
    Ago(Duration),
    /// This instant.
    At(jiff::Timestamp),
}

impl TimePoint {
    /// What a time looks like, for error messages.
    pub const SYNTAX: &'static str =
        "a duration ago such as 30m, 2h or 7d, or an RFC 3339 time such as 2024-05-01T12:00:00Z";

    /// The instant in ms since the Unix epoch, `now_ms` being now.
    pub fn millis(self, now_ms: i64) -> i64 {
        match self {
            TimePoint::Ago(span) => {
                now_ms.saturating_sub(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
            }
            TimePoint::At(at) => at.as_millisecond(),
        }
    }

    /// Reads `30m` or `2024-05-01T12:00:00Z`.
    pub fn parse(text: &str) -> Option<TimePoint> {
        if let Some(span) = parse_duration(text) {
            return Some(TimePoint::Ago(span));
        }
        text.parse::<jiff::Timestamp>().ok().map(TimePoint::At)
    }
}

impl fmt::Display for TimePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimePoint::Ago(span) => f.write_str(&duration_text(*span)),
            TimePoint::At(at) => write!(f, "{at}"),
        }
    }
}

/// Units of durations, largest first, in microseconds.
const DURATION_UNITS: [(&str, u128); 6] = [
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
];

/// What a duration looks like, for error messages.
pub const DURATION_SYNTAX: &str = "a duration such as 200ms, 1.5s, 30m, 2h or 7d";

/// Reads a duration: a number (decimals allowed) and a unit among `us`, `ms`, `s`, `m`, `h`,
/// `d`. Anything under a microsecond is dropped.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let (_, per) = DURATION_UNITS.iter().find(|(name, _)| *name == unit)?;
    let micros = scaled(number, *per)?;
    Some(Duration::from_micros(u64::try_from(micros).ok()?))
}

/// `number` (digits, at most one `.` with digits on both sides) times `per`, exactly, without
/// the fraction of a unit of `per` that is left over.
fn scaled(number: &str, per: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (number.contains('.') && !digits(fraction)) || whole.len() > 20 {
        return None;
    }
    let mut total = whole.parse::<u128>().ok()?.checked_mul(per)?;
    let mut scale = per;
    for digit in fraction.bytes().take(24) {
        scale /= 10;
        total = total.checked_add(u128::from(digit - b'0') * scale)?;
    }
    Some(total)
}

/// A duration in its canonical form: the largest unit that divides it (`90s`, `1500ms`).
pub fn duration_text(duration: Duration) -> String {
    let micros = duration.as_micros();
    let (unit, per) = DURATION_UNITS
        .iter()
        .find(|(_, per)| micros.is_multiple_of(*per))
        .copied()
        .unwrap_or(("us", 1));
    format!("{}{unit}", micros / per)
}

/// Units of sizes, largest first.
const SIZE_UNITS: [(&str, u128); 7] = [
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
    ("B", 1),
];

/// What a size looks like, for error messages.
pub const SIZE_SYNTAX: &str = "a size such as 0, 512B, 10KB or 1MiB";

/// Reads a size: a number (decimals allowed) and a unit among `B`, `KB`, `KiB`, `MB`, `MiB`,
/// `GB`, `GiB` (any case; a bare number is bytes). A fraction of a byte is dropped.
pub fn parse_size(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let per = if unit.is_empty() {
        1
    } else {
        SIZE_UNITS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(unit))?
            .1
    };
    u64::try_from(scaled(number, per)?).ok()
}

/// A size in its canonical form: the largest binary unit that divides it, else bytes.
pub fn size_text(bytes: u64) -> String {
    for (unit, per) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if bytes >= per && bytes.is_multiple_of(per) {
            return format!("{}{unit}", bytes / per);
        }
    }
    format!("{bytes}B")
}

/// A JSON number as written in an expression: only JSON's own syntax (`-1.5e3`, not `inf`,
/// `+1` or `01`), read exactly (integers as integers, others correctly rounded).
pub fn parse_number(text: &str) -> Option<Number> {
    if !is_json_number(text.as_bytes()) {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(n.into());
    }
    // Rust's parser rounds correctly; serde_json's (without `float_roundtrip`) may not, and
    // then a printed expression would not read back the same.
    Number::from_f64(text.parse::<f64>().ok()?)
}

/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
fn is_json_number(text: &[u8]) -> bool {
    let digits = |s: &[u8]| s.iter().take_while(|b| b.is_ascii_digit()).count();
    let mut rest = text.strip_prefix(b"-").unwrap_or(text);
    let whole = digits(rest);
    if whole == 0 || (whole > 1 && rest[0] == b'0') {
        return false;
    }
    rest = &rest[whole..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
}

/// Compares two JSON numbers: as integers when both are, else as floating point.
pub fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    let int = |n: &Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    if let (Some(a), Some(b)) = (int(a), int(b)) {
        return Some(a.cmp(&b));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// What a `json.POINTER` term tests at the pointer.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTest {
    /// A string matching the glob; a number equal to `number` (when the value is one); `true`,
    /// `false` or `null` written as such; `*` matches anything present.
    Equals {
        /// The value as written.
        glob: Glob,
        /// The value as a number, when it is one.
        number: Option<Number>,
    },
    /// A number compared: `>1000`, `<=0.5`.
    Compare(Compare<JsonNumber>),
}

/// A JSON number that compares as [`compare_numbers`] does.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonNumber(pub Number);

impl PartialOrd for JsonNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        compare_numbers(&self.0, &other.0)
    }
}

/// A JSON Pointer (RFC 6901): `""` for the whole document, else `/`-separated tokens with `~1`
/// for `/` and `~0` for `~`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    tokens: Vec<String>,
}

impl Pointer {
    /// What a pointer looks like, for error messages.
    pub const SYNTAX: &'static str = "a JSON pointer such as /data/object/id";

    /// Reads a pointer.
    pub fn parse(text: &str) -> Option<Pointer> {
        if text.is_empty() {
            return Some(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let mut tokens = Vec::new();
        for raw in text.strip_prefix('/')?.split('/') {
            tokens.push(unescape_token(raw)?);
        }
        Some(Pointer {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its reference tokens, unescaped.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }
}

fn unescape_token(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('~'),
            Some('1') => out.push('/'),
            _ => return None,
        }
    }
    Some(out)
}

/// A regular expression over body bytes, for `body~"regex"`.
#[derive(Debug, Clone)]
pub struct BodyPattern {
    source: String,
    regex: regex::bytes::Regex,
}

impl PartialEq for BodyPattern {
    fn eq(&self, other: &BodyPattern) -> bool {
        self.source == other.source
    }
}

impl BodyPattern {
    /// Compiles `source`: ASCII classes (`\w`, `\d`, case folding), `.` any byte but a
    /// newline, compiled size bounded by [`REGEX_SIZE_LIMIT`].
    pub fn new(source: &str) -> Result<BodyPattern, String> {
        let regex = regex::bytes::RegexBuilder::new(source)
            .unicode(false)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => {
                    "a regular expression that compiles to at most 1 MiB".to_owned()
                }
                regex::Error::Syntax(text) => {
                    let last = text.lines().last().unwrap_or_default();
                    format!(
                        "a regular expression ({})",
                        last.trim_start_matches("error: ")
                    )
                }
                _ => "a regular expression".to_owned(),
            })?;
        Ok(BodyPattern {
            source: source.to_owned(),
            regex,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether it matches anywhere in `body`.
    pub fn is_match(&self, body: &[u8]) -> bool {
        self.regex.is_match(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_and_nothing_else() {
        let cases = [
            ("invoice.*", "invoice.paid", true),
            ("invoice.*", "invoice.", true),
            ("invoice.*", "invoices.paid", false),
            ("*.paid", "invoice.paid", true),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("/hooks/*", "/hooks/stripe/x", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                Glob::new(pattern).matches(text.as_bytes()),
                expected,
                "{pattern} {text}"
            );
        }
        assert!(Glob::ignoring_case("post").matches(b"POST"));
        assert!(Glob::ignoring_case("Po*").matches(b"post"));
        assert!(!Glob::new("post").matches(b"POST"));
    }

    #[test]
    fn statuses_parse_and_match() {
        let p = |t: &str| t.parse::<StatusPattern>();
        assert!(p("500").unwrap().matches(Some(500)));
        assert!(!p("500").unwrap().matches(None));
        assert!(p("5xx").unwrap().matches(Some(503)));
        assert!(p("2XX").unwrap().matches(Some(204)));
        assert!(!p("5xx").unwrap().matches(Some(499)));
        assert!(p(">=400").unwrap().matches(Some(400)));
        assert!(!p(">=400").unwrap().matches(Some(399)));
        assert!(!p(">=400").unwrap().matches(None));
        assert!(p("<300").unwrap().matches(Some(201)));
        assert!(p("error").unwrap().matches(None));
        assert!(!p("error").unwrap().matches(Some(500)));
        for bad in [
            "", "6xx", "xx", "42", "abc", "1000", "+500", "05xx", ">=", "0500",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_and_sizes_read_exactly_and_print_canonically() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("3us"), Some(Duration::from_micros(3)));
        for bad in ["", "1", "s", "1.s", ".5s", "1x", "-1s", "1 s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(duration_text(Duration::from_secs(7200)), "2h");
        assert_eq!(duration_text(Duration::ZERO), "0d");
        assert_eq!(parse_size("1MiB"), Some(1 << 20));
        assert_eq!(parse_size("1.5kb"), Some(1500));
        assert_eq!(parse_size("0"), Some(0));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("1TB"), None);
        assert_eq!(size_text(1 << 20), "1MiB");
        assert_eq!(size_text(1500), "1500B");
    }

    #[test]
    fn numbers_compare_as_numbers() {
        let n = |t: &str| parse_number(t).unwrap();
        assert_eq!(
            compare_numbers(&n("2000"), &n("2000.0")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            compare_numbers(&n("2e3"), &n("2000")),
            Some(Ordering::Equal)
        );
        assert_eq!(compare_numbers(&n("-1"), &n("0.5")), Some(Ordering::Less));
        // Past 2^53 floats would call these equal.
        assert_eq!(
            compare_numbers(&n("9007199254740993"), &n("9007199254740992")),
            Some(Ordering::Greater)
        );
        for bad in [
            "inf", "NaN", "+1", "", "-", ".5", "1.", "01", "1e", "1x", "0x1",
        ] {
            assert!(parse_number(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn pointers_unescape_their_tokens() {
        let p = Pointer::parse("/a~1b/c~0d/0").unwrap();
        assert_eq!(p.tokens(), ["a/b", "c~d", "0"]);
        assert_eq!(Pointer::parse("").unwrap().tokens(), [] as [String; 0]);
        assert!(Pointer::parse("a").is_none());
        assert!(Pointer::parse("/a~2").is_none());
    }

    #[test]
    fn body_patterns_are_bounded() {
        assert!(BodyPattern::new(r"cus_\d+")
            .unwrap()
            .is_match(b"{\"c\":\"cus_42\"}"));
        assert!(BodyPattern::new(r"\xff").unwrap().is_match(b"a\xffb"));
        let huge = BodyPattern::new(r"\w{1000}{1000}").unwrap_err();
        assert_eq!(huge, "a regular expression that compiles to at most 1 MiB");
        assert!(BodyPattern::new("(")
            .unwrap_err()
            .starts_with("a regular expression ("));
    }
}
