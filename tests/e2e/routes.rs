//! Issue 22: routing webhooks to several local apps from a checked-in `hooks.toml`. The real
//! relay, three recording apps and the real `hooks listen` (found from a subfolder, as cargo
//! finds `Cargo.toml`): events by type to two apps, a prefix stripped, a copy route, the
//! default, a `404` that names the routes, captures that record their route, replay following
//! it, a reload while listening, `--route`, and `hooks routes check` and `explain`.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use hooks::verify::{self, Provider, Secret, VerifyInput};
use relay_server::Config;
use serde_json::Value;

use crate::support::send::hooks_at;
use crate::support::store::{data_dir, run};
use crate::support::*;

const SECRET: &str = "whsec_routes_test_secret";

/// An app that answers `status` with `body`, so the sender's answer tells which app gave it.
async fn app(status: u16, body: &'static str) -> App {
    App::start(move |_| Answer {
        status,
        ..Answer::ok(body)
    })
    .await
}

/// A Stripe event of `kind`, and its headers, signed with [`SECRET`] now.
fn stripe_event(kind: &str) -> (Vec<HeaderPair>, Vec<u8>) {
    stripe_event_at(kind, SystemTime::now())
}

/// A Stripe event of `kind`, and its headers, signed with [`SECRET`] at `at`.
fn stripe_event_at(kind: &str, at: SystemTime) -> (Vec<HeaderPair>, Vec<u8>) {
    let body = format!(
        r#"{{"id":"evt_{kind}","object":"event","type":"{kind}","data":{{"object":{{}}}}}}"#
    )
    .into_bytes();
    let input = VerifyInput {
        method: "POST",
        url: "https://example.test/",
        headers: &[],
        body: &body,
    };
    let signed = verify::sign(Provider::Stripe, &Secret::new(SECRET), &input, at)
        .expect("stripe signs with any secret");
    let mut pairs: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    pairs.extend(signed.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    (headers(&pairs), body)
}

/// `POST url` with `headers` and `body`: the sender's status and body.
async fn post(url: &str, headers: &[HeaderPair], body: &[u8]) -> (u16, String) {
    let reply = Sender::default()
        .send("POST", url, headers, full(Bytes::copy_from_slice(body)))
        .await;
    (reply.status, reply.text())
}

/// Writes `text` to `path` whole, at once (a rename), as an editor saving the file does: the
/// reloader never reads half of it.
fn save(path: &Path, text: &str) {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".saving");
    std::fs::write(&temporary, text).expect("write the new version");
    std::fs::rename(&temporary, path).expect("replace the file");
}

/// A project folder with `hooks.toml` holding `text`, and a subfolder to run hooks in.
fn project(text: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let folder = tempfile::tempdir().expect("project folder");
    let file = folder.path().join("hooks.toml");
    save(&file, text);
    let sub = folder.path().join("app/src");
    std::fs::create_dir_all(&sub).expect("a subfolder");
    (folder, file, sub)
}

/// `(path, route, copy)` of each value, sorted.
fn routes_of(lines: &[Value], path: &str) -> Vec<(String, Value, bool)> {
    let mut all: Vec<(String, Value, bool)> = lines
        .iter()
        .map(|l| {
            let copy = l["copy"].as_bool().unwrap_or(false);
            (
                l[path].as_str().unwrap_or("").to_owned(),
                l["route"].clone(),
                copy,
            )
        })
        .collect();
    all.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_events_go_by_type_to_two_apps_with_a_prefix_stripped_a_copy_and_the_default() {
    let relay = start_relay(Config::default()).await;
    let (billing, main, ci) = (
        app(201, "billing").await,
        app(200, "main").await,
        app(202, "ci").await,
    );
    let text = format!(
        r#"[listen]
channel = "acme-dev"
default = "http://127.0.0.1:{main}"

[[route]]
name = "billing"
match = "path:/stripe* AND event:invoice.*"
to = "http://127.0.0.1:{billing}/billing"
provider = "stripe"
secret_env = "STRIPE_WEBHOOK_SECRET"

[[route]]
name = "stripe"
match = "path:/stripe*"
to = "http://127.0.0.1:{main}"
strip_prefix = "/stripe"

[[route]]
name = "ci-mirror"
match = "header.x-github-event:push"
to = "http://127.0.0.1:{ci}/ci"
mode = "copy"
"#,
        main = main.port(),
        billing = billing.port(),
        ci = ci.port(),
    );
    let (_folder, file, sub) = project(&text);
    let data = data_dir();
    let env = [("STRIPE_WEBHOOK_SECRET", SECRET)];
    let mut listen = spawn_listen_at(data.path(), &sub, &["--relay", &relay.url], &env).await;
    let default = format!("http://127.0.0.1:{}", main.port());
    assert_eq!(listen.channel, "acme-dev");
    assert_eq!(
        listen.ready["forward_to"],
        format!("3 routes, else {default}")
    );
    let said = format!(
        "Routes from {}: 3 routes (billing, stripe, ci-mirror copy), else {default}\n",
        file.display()
    );
    assert!(listen.wait_for_stderr(&said, 1).await.starts_with(&said));

    // An invoice event goes to billing, whole path under its target; its answer to the sender.
    let (headers, body) = stripe_event("invoice.paid");
    let invoice = post(&format!("{}/stripe/hook", listen.url), &headers, &body).await;
    assert_eq!(invoice, (201, "billing".to_owned()));
    assert_eq!(billing.wait_for(1).await[0].target, "/billing/stripe/hook");
    // Another Stripe event goes to the main app, the prefix stripped.
    let (headers, body) = stripe_event("customer.created");
    let customer = post(&format!("{}/stripe/hook?x=1", listen.url), &headers, &body).await;
    assert_eq!(customer, (200, "main".to_owned()));
    assert_eq!(main.wait_for(1).await[0].target, "/hook?x=1");
    // A push no primary route takes: the default answers the sender, and the copy route gets
    // it too, under its own target.
    let push_headers = crate::support::headers(&[("x-github-event", "push")]);
    let push = post(
        &format!("{}/github?ref=main", listen.url),
        &push_headers,
        b"{}",
    )
    .await;
    assert_eq!(
        push,
        (200, "main".to_owned()),
        "the primary's answer, not the copy's"
    );
    assert_eq!(main.wait_for(2).await[1].target, "/github?ref=main");
    let copied = ci.wait_for(1).await.remove(0);
    assert_eq!(
        (copied.target.as_str(), &copied.body[..]),
        ("/ci/github?ref=main", &b"{}"[..])
    );

    // Four captures: one per primary or default, one for the copy; each records its route.
    let lines = listen.next_requests(4).await;
    assert_eq!(
        routes_of(&lines, "path"),
        [
            ("/github?ref=main".to_owned(), Value::Null, false),
            ("/github?ref=main".to_owned(), "ci-mirror".into(), true),
            ("/stripe/hook".to_owned(), "billing".into(), false),
            ("/stripe/hook?x=1".to_owned(), "stripe".into(), false),
        ]
    );
    let line = |route: &str| lines.iter().find(|l| l["route"] == route).cloned();
    let billed = line("billing").expect("billing's line");
    // Billing's own provider and secret_env check its signature; the stripe route has none.
    assert_eq!(billed["signature"]["verdict"], "valid", "{billed}");
    assert_eq!(
        line("stripe").expect("stripe's line")["signature"]["verdict"],
        "unchecked"
    );
    assert_eq!(line("ci-mirror").expect("the copy's line")["status"], 202);

    let rows = run(&["list", "--json"], data.path())
        .await
        .success()
        .json_lines();
    assert_eq!(routes_of(&rows, "path"), routes_of(&lines, "path"));
    let copies = run(&["list", "--json", "--where", "route:ci-*"], data.path())
        .await
        .success()
        .json_lines();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        (copies[0]["status"].as_u64(), copies[0]["copy"].as_bool()),
        (Some(202), Some(true))
    );
    let id = billed["id"].as_u64().expect("an id").to_string();
    let shown = run(&["show", &id, "--json"], data.path()).await.success();
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    assert_eq!(
        (&shown["route"], &shown["target"]),
        (
            &Value::from("billing"),
            &Value::from(format!("http://127.0.0.1:{}/billing", billing.port()))
        )
    );
    // From the project's folder, explain finds the file as listen did.
    let args = ["routes", "explain", "--where", "route:ci-mirror"];
    let explained = hooks_at(&args, data.path(), Some(&sub), &[]).await;
    assert_eq!(explained.code, Some(0), "{}", explained.stderr);
    let first = explained
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        first.ends_with(&format!(
            "POST /github?ref=main  → default: {default}/github?ref=main  (the copy for ci-mirror)"
        )),
        "{}",
        explained.stdout
    );
    assert!(
        explained.stdout.contains(&format!(
            "    ci-mirror  copy, gets it: http://127.0.0.1:{}/ci/github?ref=main\n",
            ci.port()
        )),
        "{}",
        explained.stdout
    );
    let table = run(&["list", "--where", "route:*"], data.path())
        .await
        .success();
    assert!(
        table.text().starts_with("ID  METHOD  PATH"),
        "{}",
        table.text()
    );
    assert!(table.text().contains("ROUTE"), "{}", table.text());
    assert!(table.text().contains("  ci-mirror  "), "{}", table.text());
    listen.kill().await;
}

/// Routes without a default: GitHub events to one app, Stripe's (prefix stripped) to another.
fn no_default(github: &App, stripe: &App) -> String {
    format!(
        r#"[[route]]
name = "github"
match = "header.x-github-event:*"
to = "127.0.0.1:{}"

[[route]]
name = "stripe"
match = "path:/stripe*"
to = "127.0.0.1:{}"
strip_prefix = "/stripe"
provider = "stripe"
secret_env = "STRIPE_WEBHOOK_SECRET"
"#,
        github.port(),
        stripe.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_without_a_default_an_unmatched_webhook_gets_404_naming_the_routes() {
    let relay = start_relay(Config::default()).await;
    let (github, stripe) = (app(200, "github").await, app(200, "stripe").await);
    let (_folder, file, _sub) = project(&no_default(&github, &stripe));
    let file_arg = file.to_str().expect("UTF-8 path");
    let data = data_dir();
    let args = ["--relay", &relay.url, "--project", file_arg];
    let mut listen = spawn_listen_in(data.path(), &args).await;
    let reason =
        "no route matches POST /nope (tried github, stripe) and there is no default target";
    let answer = post(&format!("{}/nope?x=1", listen.url), &[], b"{}").await;
    assert_eq!(answer, (404, format!("hooks: {reason}\n")));
    let line = listen.next_request().await;
    assert_eq!(
        (line["status"].as_u64(), &line["hint"]),
        (Some(404), &Value::from(reason))
    );
    assert!(line.get("route").is_none(), "{line}");
    let (headers, body) = stripe_event("invoice.paid");
    let routed = post(&format!("{}/stripe/x", listen.url), &headers, &body).await;
    assert_eq!(routed, (200, "stripe".to_owned()));
    assert_eq!(listen.next_request().await["route"], "stripe");

    // `explain`: which route each capture would take now, and why the others do not.
    let explained = run(
        &[
            "routes",
            "explain",
            "--where",
            "since:1h",
            "--project",
            file_arg,
        ],
        data.path(),
    )
    .await
    .success();
    let port = stripe.port();
    assert_eq!(
        explained.text(),
        format!(
            "#2  POST /stripe/x  → stripe: http://127.0.0.1:{port}/x\n\
             \x20   github  no: header.x-github-event:* (no x-github-event header)\n\
             \x20   stripe  takes it\n\
             #1  POST /nope?x=1  → 404: {reason}\n\
             \x20   github  no: header.x-github-event:* (no x-github-event header)\n\
             \x20   stripe  no: path:/stripe* (path is /nope)\n"
        )
    );
    let json = run(
        &["routes", "explain", "1", "--json", "--project", file_arg],
        data.path(),
    )
    .await
    .success()
    .json_lines();
    assert_eq!(json.len(), 1);
    assert_eq!(
        (&json[0]["route"], &json[0]["unrouted"]),
        (&Value::Null, &Value::from(reason))
    );
    assert_eq!(
        json[0]["routes"][1]["why_not"],
        "path:/stripe* (path is /nope)"
    );
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_replay_follows_the_recorded_route_and_resigns_with_its_secret() {
    let relay = start_relay(Config::default()).await;
    let (github, stripe, other) = (
        app(200, "github").await,
        app(200, "stripe").await,
        app(200, "other").await,
    );
    let (_folder, file, sub) = project(&no_default(&github, &stripe));
    let data = data_dir();
    let mut listen = spawn_listen_at(data.path(), &sub, &["--relay", &relay.url], &[]).await;
    // Signed an hour ago: past Stripe's replay window, so only a new signature passes.
    let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
    let (headers, body) = stripe_event_at("invoice.paid", hour_ago);
    let url = format!("{}/stripe/invoices?live=1", listen.url);
    assert_eq!(post(&url, &headers, &body).await.0, 200);
    assert_eq!(listen.next_request().await["route"], "stripe");
    listen.kill().await;

    // From the project's subfolder: to the route's target, its prefix stripped.
    let env = [("STRIPE_WEBHOOK_SECRET", SECRET)];
    let again = hooks_at(&["replay", "1", "--json"], data.path(), Some(&sub), &env).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let seen = stripe.wait_for(2).await;
    assert_eq!(seen[1].target, "/invoices?live=1");
    assert_eq!(seen[1].body, seen[0].body);
    let replay: Value = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(
        (&replay["route"], &replay["replay_of"]),
        (&Value::from("stripe"), &Value::from(1))
    );

    // --to wins, and the path goes as it came.
    let to = other.target();
    let moved = hooks_at(&["replay", "1", "--to", &to], data.path(), Some(&sub), &[]).await;
    assert_eq!(moved.code, Some(0), "{}", moved.stderr);
    assert_eq!(other.wait_for(1).await[0].target, "/stripe/invoices?live=1");

    // --resign without --secret: the route's provider and secret_env sign it afresh.
    let resigned = hooks_at(&["replay", "1", "--resign"], data.path(), Some(&sub), &env).await;
    assert_eq!(resigned.code, Some(0), "{}", resigned.stderr);
    let seen = stripe.wait_for(3).await.remove(2);
    let pairs: Vec<(&str, &[u8])> = seen
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), &v[..]))
        .collect();
    let input = VerifyInput {
        method: "POST",
        url: "https://example.test/",
        headers: &pairs,
        body: &seen.body,
    };
    let report = verify::check(
        &input,
        &[Secret::new(SECRET)],
        None,
        None,
        SystemTime::now(),
    )
    .expect("a secret was given");
    assert_eq!(report.verdict(), hooks::exchange::Verdict::Valid);
    // Without the variable there is no secret: a usage error before anything is sent.
    let refused = hooks_at(&["replay", "1", "--resign"], data.path(), Some(&sub), &[]).await;
    assert_eq!(refused.code, Some(2), "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        "hooks: error: --resign needs --secret, or STRIPE_WEBHOOK_SECRET (secret_env of route stripe) set\n"
    );
    assert_eq!(
        file.file_name().and_then(|n| n.to_str()),
        Some("hooks.toml")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_an_edited_hooks_toml_is_picked_up_while_listening_and_a_broken_edit_is_not() {
    let relay = start_relay(Config::default()).await;
    let (first, second) = (app(200, "first").await, app(200, "second").await);
    let route = |name: &str, app: &App| {
        format!(
            "[[route]]\nname = \"{name}\"\nmatch = \"path:/x*\"\nto = \"{}\"\n",
            app.target()
        )
    };
    let (_folder, file, _sub) = project(&route("a", &first));
    let file_arg = file.to_str().expect("UTF-8 path");
    let data = data_dir();
    let args = ["--relay", &relay.url, "--project", file_arg];
    let mut listen = spawn_listen_in(data.path(), &args).await;
    assert_eq!(
        post(&format!("{}/x/1", listen.url), &[], b"1").await.1,
        "first"
    );

    save(&file, &route("b", &second));
    let said = format!("Routes reloaded from {file_arg}: 1 route (b), else 404\n");
    listen.wait_for_stderr(&said, 1).await;
    assert_eq!(
        post(&format!("{}/x/2", listen.url), &[], b"2").await.1,
        "second"
    );
    assert_eq!(second.wait_for(1).await[0].target, "/x/2");

    // A broken edit keeps the routes in use, and says why.
    save(&file, "[[route]]\nname = \"c\"\ntoo = \"x\"\n");
    let expected = format!(
        "hooks: {file_arg} changed and is not usable; keeping the previous routes (1):\n\
         {file_arg}:1: route \"c\" has no match\n\
         {file_arg}:1: route \"c\" has no to\n\
         {file_arg}:3: unknown key \"too\" in [[route]] (expected name, match, to, strip_prefix, provider, secret_env, mode)\n"
    );
    let stderr = listen.wait_for_stderr(&expected, 1).await;
    assert!(stderr.ends_with(&expected), "{stderr}");
    assert_eq!(
        post(&format!("{}/x/3", listen.url), &[], b"3").await.1,
        "second"
    );
    let lines = listen.next_requests(3).await;
    let routes: Vec<&Value> = lines.iter().map(|l| &l["route"]).collect();
    assert_eq!(routes, ["a", "b", "b"]);
    listen.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_route_flags_route_a_session_without_a_file() {
    let (special, default) = (app(200, "special").await, app(200, "default").await);
    let route = format!("path:/special* AND method:POST=>{}/in", special.target());
    let mut listen = spawn_listen(&["--forward-to", &default.target(), "--route", &route]).await;
    let said = format!(
        "Routes from --route: 1 route (cli-1), else http://{}\n",
        default.target()
    );
    assert!(listen.wait_for_stderr(&said, 1).await.starts_with(&said));
    assert_eq!(
        post(&format!("{}/special/a", listen.url), &[], b"").await.1,
        "special"
    );
    assert_eq!(special.wait_for(1).await[0].target, "/in/special/a");
    assert_eq!(
        post(&format!("{}/other", listen.url), &[], b"").await.1,
        "default"
    );
    let lines = listen.next_requests(2).await;
    assert_eq!(
        (&lines[0]["route"], &lines[1]["route"]),
        (&Value::from("cli-1"), &Value::Null)
    );
    listen.kill().await;

    let bad = run_hooks(&[
        "listen",
        "--forward-to",
        "3000",
        "--route",
        "status:500=>4000",
    ])
    .await;
    assert_eq!(bad.code, Some(2), "{}", bad.stderr);
    assert!(
        bad.stderr.contains(
            "the match of --route is not valid\n  status:500\n  ^ expected a field known before the app answers (not status, duration or route), found status:500"
        ),
        "{}",
        bad.stderr
    );
    let empty = tempfile::tempdir().expect("a folder without hooks.toml");
    let data = data_dir();
    let nowhere = hooks_at(&["listen"], data.path(), Some(empty.path()), &[]).await;
    assert_eq!(nowhere.code, Some(2), "{}", nowhere.stderr);
    assert_eq!(
        nowhere.stderr,
        "hooks: error: nowhere to forward webhooks: pass --forward-to TARGET (or --route, or add routes to a hooks.toml)\n"
    );
}

/// A file with each kind of problem `hooks routes check` finds.
const BROKEN: &str = r#"[[route]]
name = "stripe"
match = "path:/stripe*"
to = "3000"
secret_env = "HOOKS_TEST_UNSET_SECRET"

[[route]]
name = "billing"
match = "path:/stripe/billing* AND event:invoice.*"
to = "4000"

[[route]]
name = "slow"
match = "path:/x* AND duration:>1s"
to = "5000"
tags = ["x"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_routes_check_names_every_problem_with_its_line() {
    let (_folder, file, sub) = project(BROKEN);
    let f = file.display();
    let data = data_dir();
    let checked = hooks_at(&["routes", "check"], data.path(), Some(&sub), &[]).await;
    assert_eq!(checked.code, Some(1), "{}", checked.stderr);
    assert_eq!(
        checked.stdout,
        format!(
            "{f}:1: route \"stripe\": secret_env HOOKS_TEST_UNSET_SECRET is not set, so its signatures cannot be checked\n\
             {f}:7: route \"billing\" can never match: route \"stripe\" (line 1) comes first and matches everything it matches\n\
             {f}:14: match is not a valid expression\n\
             \x20 path:/x* AND duration:>1s\n\
             \x20              ^ expected a field known before the app answers (not status, duration or route), found duration:>1s\n\
             {f}:16: unknown key \"tags\" in [[route]] (expected name, match, to, strip_prefix, provider, secret_env, mode)\n\
             {f}: 4 problems\n"
        )
    );
    // hooks listen refuses the file: its reading problems (not the warnings) are a usage error.
    let listen = hooks_at(&["listen"], data.path(), Some(&sub), &[]).await;
    assert_eq!(listen.code, Some(2), "{}", listen.stderr);
    assert!(
        listen.stderr.starts_with(&format!(
            "hooks: error: {f}:14: match is not a valid expression\n"
        )),
        "{}",
        listen.stderr
    );
    assert!(listen.stderr.ends_with(&format!("{f}:16: unknown key \"tags\" in [[route]] (expected name, match, to, strip_prefix, provider, secret_env, mode)\n")), "{}", listen.stderr);

    // A clean file, given by name; its secret set.
    let clean = sub.join("clean.toml");
    save(
        &clean,
        &BROKEN[..BROKEN
            .find("\n[[route]]\nname = \"billing\"")
            .expect("split")],
    );
    let env = [("HOOKS_TEST_UNSET_SECRET", "whsec_x")];
    let clean_arg = clean.to_str().expect("UTF-8 path");
    let fine = hooks_at(
        &["routes", "check", "--project", clean_arg],
        data.path(),
        None,
        &env,
    )
    .await;
    assert_eq!(fine.code, Some(0), "{}", fine.stdout);
    assert_eq!(fine.stdout, format!("{clean_arg}: 1 route, no problems\n"));
    let none = tempfile::tempdir().expect("a folder without hooks.toml");
    let missing = hooks_at(&["routes", "check"], data.path(), Some(none.path()), &[]).await;
    assert_eq!(missing.code, Some(2));
    assert_eq!(
        missing.stderr,
        "hooks: error: no hooks.toml in this folder or its parents (up to the git repository's root); pass --project FILE\n"
    );
}
