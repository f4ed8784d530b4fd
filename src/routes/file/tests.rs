//! Reading `hooks.toml`: the issue's example, and each kind of problem with its line.

use super::*;

/// The example of issue 22 (and the README).
const EXAMPLE: &str = r#"[listen]
channel = "acme-dev"                      # optional, as --channel
default = "http://localhost:3000"         # where unmatched webhooks go; without it they get 404

[[route]]
name = "billing"
match = "path:/stripe* AND event:invoice.*"   # the --where language, request fields only
to = "http://localhost:4000/billing"
provider = "stripe"                       # optional: the scheme to check and re-sign with
secret_env = "STRIPE_WEBHOOK_SECRET"      # optional: the secret, by variable name

[[route]]
name = "stripe"
match = "path:/stripe*"
to = "http://localhost:3000"
strip_prefix = "/stripe"

[[route]]
name = "ci-mirror"
match = "header.x-github-event:push"
to = "http://localhost:5000/ci"
mode = "copy"                             # receives a copy; its answer is recorded, not returned
"#;

fn problems(text: &str) -> Vec<String> {
    parse(text)
        .problems
        .iter()
        .map(|p| format!("{}: {}", p.line, p.message))
        .collect()
}

#[test]
fn the_issues_example_reads_whole() {
    let parsed = parse(EXAMPLE);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    assert_eq!(parsed.channel.as_deref(), Some("acme-dev"));
    assert_eq!(
        parsed.default.map(|t| t.to_string()).as_deref(),
        Some("http://localhost:3000")
    );
    let routes: Vec<(&str, Option<usize>, Mode)> = parsed
        .routes
        .iter()
        .map(|r| (r.name.as_str(), r.line, r.mode))
        .collect();
    assert_eq!(
        routes,
        [
            ("billing", Some(5), Mode::Primary),
            ("stripe", Some(12), Mode::Primary),
            ("ci-mirror", Some(18), Mode::Copy),
        ]
    );
    let billing = &parsed.routes[0];
    assert_eq!(
        billing.query.expr().to_string(),
        "path:/stripe* AND event:invoice.*"
    );
    assert_eq!(billing.to.to_string(), "http://localhost:4000/billing");
    assert_eq!(billing.provider, Some(Provider::Stripe));
    assert_eq!(billing.secret_env.as_deref(), Some("STRIPE_WEBHOOK_SECRET"));
    assert_eq!(parsed.routes[1].strip_prefix.as_deref(), Some("/stripe"));
}

#[test]
fn every_problem_is_named_with_its_line() {
    let text = r#"[listen]
chanel = "x"

[[route]]
name = "a"
match = "path:/a* AND status:5xx"
to = "4000"
matc = "x"

[[route]]
name = "a"
match = "path:/b*("
to = "ftp://x"
mode = "mirror"
provider = "strype"
secret_env = "NOT-A-NAME"
strip_prefix = "stripe"

[[route]]
to = 4000

[other]
"#;
    assert_eq!(
        problems(text),
        [
            "2: unknown key \"chanel\" in [listen] (expected channel, default)",
            "6: match is not a valid expression\n  path:/a* AND status:5xx\n               ^ expected a field known before the app answers (not status, duration or route), found status:5xx",
            "8: unknown key \"matc\" in [[route]] (expected name, match, to, strip_prefix, provider, secret_env, mode)",
            "11: route name \"a\" is taken by the route on line 4",
            "12: match is not a valid expression\n  path:/b*(\n           ^ expected a term such as status:500, NOT or (, found the end of the expression",
            "13: to \"ftp://x\" is not a target: unsupported scheme \"ftp\"; use http or https",
            "14: mode \"mirror\" must be \"primary\" or \"copy\"",
            "15: unknown provider \"strype\"; expected one of: stripe, github, standard-webhooks, slack, shopify, twilio, discord, paddle, linear, zoom, square, mailgun, intercom, gitlab, sendgrid, twitch, typeform, calendly, hubspot, svix, clerk, resend",
            "16: secret_env \"NOT-A-NAME\" must be the name of an environment variable, e.g. STRIPE_WEBHOOK_SECRET (the file holds no secrets)",
            "17: strip_prefix \"stripe\" must be a path starting with '/', e.g. \"/stripe\"",
            "19: the route has no name",
            "19: the route has no match",
            "20: to must be a string, not integer",
            "22: unknown key \"other\" (expected [listen] or [[route]])",
        ]
    );
}

#[test]
fn not_toml_is_one_problem_at_its_line() {
    let found = problems("[[route]]\nname = \"a\"\nmatch = \n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("3: not valid TOML: "), "{found:?}");
}

#[test]
fn strip_prefix_is_normalised_and_slash_strips_nothing() {
    let route = |prefix: &str| {
        let text = format!(
            "[[route]]\nname = \"r\"\nmatch = \"path:*\"\nto = \"1\"\nstrip_prefix = \"{prefix}\"\n"
        );
        let parsed = parse(&text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        parsed.routes[0].strip_prefix.clone()
    };
    assert_eq!(route("/stripe/").as_deref(), Some("/stripe"));
    assert_eq!(route("/"), None);
}

#[test]
fn a_file_past_its_limits_is_refused() {
    let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    assert_eq!(
        problems(&big),
        [format!("1: the file is over {MAX_FILE_BYTES} bytes")]
    );
    let many = "[[route]]\nname = \"r\"\nmatch = \"path:*\"\nto = \"1\"\n".repeat(MAX_ROUTES + 1);
    let parsed = parse(&many);
    assert_eq!(parsed.routes.len(), 1, "only the first keeps the name");
    assert!(problems(&many)
        .iter()
        .any(|p| p.ends_with(&format!("more than {MAX_ROUTES} routes"))));
}
