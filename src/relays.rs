//! Several relay URLs (`--relay URL1,URL2,…`, or `relay` in the config file): the nodes of a
//! relay cluster, tried in order on every (re)connect, so a team without a load balancer still
//! survives the loss of a node. Every node serves every channel, and a channel's session moves to
//! whichever node the CLI reaches.

use std::future::Future;

/// The URLs of a `--relay` value, in order: split on commas, trimmed, without a trailing `/`,
/// empty ones dropped.
pub fn parse(list: &str) -> Vec<String> {
    list.split(',')
        .map(|url| url.trim().trim_end_matches('/'))
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Tries `connect` on each of `urls` in order and returns the first that succeeds, with its
/// index; when none does, every failure, in order.
pub async fn first<'a, T, E, F, Fut>(
    urls: &'a [String],
    mut connect: F,
) -> Result<(usize, T), Vec<E>>
where
    F: FnMut(&'a str) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut failures = Vec::with_capacity(urls.len());
    for (index, url) in urls.iter().enumerate() {
        match connect(url).await {
            Ok(attached) => return Ok((index, attached)),
            Err(e) => failures.push(e),
        }
    }
    Err(failures)
}

/// `ws_url` naming `channel` in its query (`?channel=NAME`), when the channel is known: the relay
/// reads the channel from the hello and ignores it, but a load balancer in front of a cluster
/// can hash on it, as it hashes webhooks on their first path segment, so that a channel's
/// session and its webhooks meet on one node.
/// The name is the relay's (from its hello) once attached: one that is not a valid channel name
/// (a hostile relay's) is left out, so the URL stays well-formed.
pub fn with_channel(ws_url: &str, channel: Option<&str>) -> String {
    match channel.filter(|name| relay_server::protocol::validate_channel(name).is_ok()) {
        // Channel names are letters, digits, '_' and '-': nothing to escape.
        Some(channel) => format!("{ws_url}?channel={channel}"),
        None => ws_url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_on_commas_and_drop_blanks_and_trailing_slashes() {
        assert_eq!(
            parse(" https://a.example/ ,https://b.example,, "),
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(parse("https://one"), ["https://one"]);
        assert!(parse(" , ").is_empty());
    }

    #[test]
    fn a_known_channel_rides_in_the_query_for_load_balancers() {
        let url = "wss://r.example/_hooks/v1/connect";
        assert_eq!(
            with_channel(url, Some("my-app")),
            "wss://r.example/_hooks/v1/connect?channel=my-app"
        );
        assert_eq!(with_channel(url, None), url);
        assert_eq!(
            with_channel(url, Some("ch\u{1b}]52;c;x /?#")),
            url,
            "not a channel name"
        );
    }

    #[tokio::test]
    async fn the_first_that_answers_wins_in_order_and_all_failures_come_back() {
        let urls = parse("a,b,c");
        let mut tried = Vec::new();
        let got = first(&urls, |url| {
            tried.push(url.to_owned());
            let result = if url == "b" {
                Ok(url.to_owned())
            } else {
                Err(url.to_owned())
            };
            async move { result }
        })
        .await;
        assert_eq!(got, Ok((1, "b".to_owned())));
        assert_eq!(tried, ["a", "b"], "c is not tried once b answered");
        let none = first(&urls, |url| {
            let url = url.to_owned();
            async move { Err::<(), _>(url) }
        })
        .await;
        assert_eq!(none, Err(vec!["a".into(), "b".into(), "c".into()]));
    }
}
