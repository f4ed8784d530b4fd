//! How a capture's header lists are stored: packed bytes since schema version 3, or the JSON
//! text (`[["name","value"],…]`) that earlier versions wrote; both read back the same.
//!
//! Packed: for each header, its name's length (u16, big-endian), the name, its value's length
//! (u32, big-endian), the value. Writing JSON cost the writer thread about 7 % of its time
//! (escaping every value), and packing is a copy.

use bytes::Bytes;
use relay_server::protocol::Header;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

/// A header list as stored.
pub(super) enum Stored {
    /// Packed bytes (a BLOB).
    Packed(Vec<u8>),
    /// JSON text, from a store written before version 3.
    Json(String),
}

impl FromSql for Stored {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(bytes) => Ok(Stored::Packed(bytes.to_vec())),
            ValueRef::Text(text) => std::str::from_utf8(text)
                .map(|text| Stored::Json(text.to_owned()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

/// `headers`, packed.
pub(super) fn pack(headers: &[Header]) -> Vec<u8> {
    let size = headers
        .iter()
        .map(|h| 6 + h.name.len() + h.value.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for header in headers {
        // The protocol bounds names and values far below these (MAX_META_LEN).
        let name_len = u16::try_from(header.name.len()).expect("a header name under 64 KiB");
        let value_len = u32::try_from(header.value.len()).expect("a header value under 4 GiB");
        out.extend_from_slice(&name_len.to_be_bytes());
        out.extend_from_slice(header.name.as_bytes());
        out.extend_from_slice(&value_len.to_be_bytes());
        out.extend_from_slice(&header.value);
    }
    out
}

/// The header list `stored` holds; `Err` says what is wrong with it.
pub(super) fn unpack(stored: Stored) -> Result<Vec<Header>, String> {
    let packed = match stored {
        Stored::Json(json) => return serde_json::from_str(&json).map_err(|e| e.to_string()),
        Stored::Packed(packed) => Bytes::from(packed),
    };
    let mut headers = Vec::new();
    let mut at = 0;
    while at < packed.len() {
        let name_len = usize::from(u16::from_be_bytes(
            take(&packed, &mut at, 2)?.try_into().expect("2 bytes"),
        ));
        let name = std::str::from_utf8(take(&packed, &mut at, name_len)?)
            .map_err(|_| format!("a header name at byte {at} is not UTF-8"))?
            .to_owned();
        let value_len = u32::from_be_bytes(take(&packed, &mut at, 4)?.try_into().expect("4 bytes"));
        let start = at;
        take(&packed, &mut at, value_len as usize)?;
        headers.push(Header {
            name,
            value: packed.slice(start..at),
        });
    }
    Ok(headers)
}

/// The `len` bytes of `packed` at `at`, moving `at` past them.
fn take<'a>(packed: &'a [u8], at: &mut usize, len: usize) -> Result<&'a [u8], String> {
    let end = at
        .checked_add(len)
        .filter(|&end| end <= packed.len())
        .ok_or_else(|| format!("the header list ends early, at byte {}", packed.len()))?;
    let slice = &packed[*at..end];
    *at = end;
    Ok(slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &[u8]) -> Header {
        Header {
            name: name.into(),
            value: Bytes::copy_from_slice(value),
        }
    }

    #[test]
    fn packed_lists_round_trip_and_damage_is_an_error() {
        let list = vec![
            header("x-dup", b"1"),
            header("x-bin", b"\xff\x00\x7f"),
            header("x-empty", b""),
            header("x-dup", b"2"),
        ];
        let packed = pack(&list);
        assert_eq!(unpack(Stored::Packed(packed.clone())), Ok(list.clone()));
        assert_eq!(unpack(Stored::Packed(Vec::new())), Ok(Vec::new()));
        for cut in 1..packed.len() {
            let result = unpack(Stored::Packed(packed[..cut].to_vec()));
            // Cut between two headers, the rest is a shorter list; anywhere else, an error.
            if let Ok(shorter) = result {
                assert!(list.starts_with(&shorter), "cut at {cut}");
            }
        }
        assert!(unpack(Stored::Packed(packed[..packed.len() - 1].to_vec())).is_err());
    }

    #[test]
    fn json_lists_of_earlier_versions_still_read() {
        let json = r#"[["x-dup","1"],["x-bin",[255,0,127]]]"#;
        assert_eq!(
            unpack(Stored::Json(json.into())),
            Ok(vec![
                header("x-dup", b"1"),
                header("x-bin", b"\xff\x00\x7f")
            ])
        );
        assert!(unpack(Stored::Json("[1,".into())).is_err());
    }
}
