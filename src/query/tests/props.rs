//! Property tests of the language: any tree prints to text that reads back as the same tree;
//! any text either reads (and then round-trips) or fails at a position inside it.

use std::time::Duration;

use proptest::prelude::*;
use serde_json::Number;

use super::super::value::{
    self, BodyPattern, Compare, Glob, JsonNumber, JsonTest, Op, Pointer, StatusPattern, TimePoint,
    Verdict,
};
use super::super::{Expr, Query, Span, Term};

/// Text with every character the lexer treats specially.
const TEXT: &str = "[a-z*\"\\\\ ():~./<>=\t\u{1}é0-9]{0,6}";

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Eq),
        Just(Op::Gt),
        Just(Op::Ge),
        Just(Op::Lt),
        Just(Op::Le)
    ]
}

fn ordering_op() -> impl Strategy<Value = Op> {
    prop_oneof![Just(Op::Gt), Just(Op::Ge), Just(Op::Lt), Just(Op::Le)]
}

fn status() -> impl Strategy<Value = StatusPattern> {
    prop_oneof![
        (op(), 100u16..=999).prop_map(|(op, value)| StatusPattern::Compare(Compare { op, value })),
        (1u16..=5).prop_map(StatusPattern::Class),
        Just(StatusPattern::Error),
    ]
}

fn time() -> impl Strategy<Value = TimePoint> {
    prop_oneof![
        (0u64..1 << 40).prop_map(|us| TimePoint::Ago(Duration::from_micros(us))),
        (0i64..253_402_300_799, 0i32..1_000_000_000)
            .prop_map(|(s, ns)| { TimePoint::At(jiff::Timestamp::new(s, ns).expect("in range")) }),
    ]
}

fn pointer() -> impl Strategy<Value = Pointer> {
    prop::collection::vec("[a-z~/. :\"0-9]{0,3}", 0..4).prop_map(|tokens| {
        let text: String = tokens
            .iter()
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect();
        Pointer::parse(&text).expect("escaped tokens")
    })
}

fn json_test() -> impl Strategy<Value = JsonTest> {
    let number = prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
    ];
    prop_oneof![
        TEXT.prop_map(|text| JsonTest::Equals {
            glob: Glob::new(&text),
            number: value::parse_number(&text),
        }),
        "-?[0-9]{1,5}(\\.[0-9]{1,3})?".prop_map(|text| JsonTest::Equals {
            glob: Glob::new(&text),
            number: value::parse_number(&text),
        }),
        (ordering_op(), number).prop_map(|(op, n)| JsonTest::Compare(Compare {
            op,
            value: JsonNumber(n),
        })),
    ]
}

fn regex() -> impl Strategy<Value = BodyPattern> {
    prop::sample::select(vec![
        r"cus_\d+",
        "\"paid\":true",
        "a b",
        r"\(x\)",
        "",
        r"\\",
        "é",
    ])
    .prop_map(|source| BodyPattern::new(source).expect("valid"))
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        (op(), 1i64..i64::MAX).prop_map(|(op, value)| Term::Id(Compare { op, value })),
        TEXT.prop_map(|t| Term::Method(Glob::ignoring_case(&t))),
        TEXT.prop_map(|t| Term::Path(Glob::new(&t))),
        status().prop_map(Term::Status),
        (ordering_op(), 0u64..1 << 40).prop_map(|(op, us)| Term::Duration(Compare {
            op,
            value: Duration::from_micros(us)
        })),
        (op(), any::<u64>()).prop_map(|(op, value)| Term::Size(Compare { op, value })),
        TEXT.prop_map(|t| Term::Provider(Glob::ignoring_case(&t))),
        TEXT.prop_map(|t| Term::Event(Glob::new(&t))),
        prop::sample::select(Verdict::ALL.to_vec()).prop_map(Term::Verdict),
        any::<bool>().prop_map(Term::Replay),
        any::<bool>().prop_map(Term::Sent),
        time().prop_map(Term::Since),
        time().prop_map(Term::Before),
        TEXT.prop_map(|t| Term::Route(Glob::new(&t))),
        ("[a-z0-9-]{1,8}", TEXT).prop_map(|(name, v)| Term::Header {
            name,
            value: Glob::new(&v)
        }),
        (TEXT, TEXT).prop_map(|(key, v)| Term::Query {
            key,
            value: Glob::new(&v)
        }),
        (pointer(), json_test()).prop_map(|(pointer, test)| Term::Json { pointer, test }),
        regex().prop_map(Term::Body),
    ]
}

/// Trees whose `AND`s and `OR`s have two or more children (what the parser makes).
fn expr() -> impl Strategy<Value = Expr> {
    let leaf = term().prop_map(|t| Expr::Term(t, Span::default()));
    leaf.prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner, 2..4).prop_map(Expr::Or),
        ]
    })
}

/// Pieces that, strung together, make expressions good and bad.
fn fragments() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "status",
        "method",
        "json.",
        "header.",
        "query.",
        "body",
        "since",
        "id",
        "size",
        "event",
        ":",
        "~",
        ".",
        "/a",
        "/",
        "5xx",
        ">=",
        "<",
        "1s",
        "200ms",
        "x",
        "*",
        "2024-05-01T00:00:00Z",
        "AND",
        "OR",
        "NOT",
        "and",
        " ",
        "  ",
        "\t",
        "(",
        ")",
        "\"",
        "\\",
        "\\u{41}",
        "\\n",
        "é",
        "\u{1b}",
        "1",
        "0",
        "-",
        "true",
        "valid",
    ]);
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printed_trees_read_back_the_same(tree in expr()) {
        let text = tree.to_string();
        let read = Query::parse(&text);
        prop_assert!(read.is_ok(), "{}\n{}", text, read.unwrap_err());
        let read = read.unwrap();
        prop_assert_eq!(read.expr(), &tree, "{}", text);
    }

    #[test]
    fn every_text_reads_or_fails_inside_it(text in fragments()) {
        match Query::parse(&text) {
            Ok(query) => {
                // What reads, prints canonically and reads back the same.
                let printed = query.to_string();
                let again = Query::parse(&printed);
                prop_assert!(again.is_ok(), "{:?} printed as {:?}", text, printed);
                let again = again.unwrap();
                prop_assert_eq!(again.expr(), query.expr());
            }
            Err(e) => {
                prop_assert!(e.position <= text.len(), "{:?}: {:?}", text, e);
                prop_assert!(text.is_char_boundary(e.position));
                prop_assert_eq!(&e.source, &text);
                let shown = e.to_string();
                prop_assert!(!shown.contains('\x1b'), "{}", shown);
                prop_assert_eq!(shown.lines().count(), 2, "{}", shown);
            }
        }
    }

    #[test]
    fn any_bytes_never_panic(text in "\\PC{0,40}") {
        if let Err(e) = Query::parse(&text) {
            prop_assert!(e.position <= text.len());
        }
    }
}
