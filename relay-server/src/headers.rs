//! Hop-by-hop headers: the headers of one HTTP connection, which the relay and the CLI never
//! pass on (RFC 9110 §7.6.1). Requests on their way to the CLI and responses on their way back
//! both go through [`end_to_end`].

use bytes::Bytes;

use crate::protocol::Header;

/// Headers that belong to one HTTP hop and are never passed on, in requests or in responses
/// (RFC 9110 §7.6.1), besides those a `Connection` header names. `upgrade` is one: the relay
/// upgrades only its own session endpoint.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The headers of `map` that are not hop-by-hop, in order (repeated names keep their order):
/// without [`HOP_BY_HOP`] and every name listed in `Connection`.
pub fn end_to_end(
    map: &http::HeaderMap,
) -> impl Iterator<Item = (&http::HeaderName, &http::HeaderValue)> {
    let named_by_connection: Vec<String> = map
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    map.iter().filter(move |(name, _)| {
        let name = name.as_str();
        !HOP_BY_HOP.contains(&name) && !named_by_connection.iter().any(|n| n == name)
    })
}

/// The headers of `map` to forward, as [`end_to_end`] keeps them.
pub fn forwardable_headers(map: &http::HeaderMap) -> Vec<Header> {
    end_to_end(map)
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_and_repeats_kept_in_order() {
        let mut map = http::HeaderMap::new();
        map.append("x-dup", "1".parse().unwrap());
        map.append("connection", "keep-alive, x-private".parse().unwrap());
        map.append("x-private", "p".parse().unwrap());
        map.append("transfer-encoding", "chunked".parse().unwrap());
        map.append("x-dup", "2".parse().unwrap());
        map.append("host", "example.com".parse().unwrap());
        let kept: Vec<(String, Bytes)> = forwardable_headers(&map)
            .into_iter()
            .map(|h| (h.name, h.value))
            .collect();
        assert_eq!(
            kept,
            vec![
                ("x-dup".to_owned(), Bytes::from_static(b"1")),
                ("x-dup".to_owned(), Bytes::from_static(b"2")),
                ("host".to_owned(), Bytes::from_static(b"example.com")),
            ]
        );
    }
}
