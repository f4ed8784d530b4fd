//! Schema version 6: the columns `route` (the name of the route that took a request, `NULL`
//! without one) and `copy` (`1` for a copy route's copy, whose answer nobody waited for).
//!
//! Every generation table gets both, the captures already there having no route and being no
//! copies; the view over them (`SELECT *` from each) picks them up, as with `sent`.

use rusqlite::Connection;

use super::generations;

/// Adds `route` and `copy` to every generation table; part of the caller's upgrade transaction.
pub(super) fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let mut sql = String::new();
    for slot in 0..generations::SLOTS {
        let table = generations::table(slot);
        sql.push_str(&format!(
            "ALTER TABLE {table} ADD COLUMN route TEXT;
             ALTER TABLE {table} ADD COLUMN copy INTEGER NOT NULL DEFAULT 0;"
        ));
    }
    conn.execute_batch(&sql)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{downgrade, record, save, writer_at, EPOCH};
    use super::super::*;
    use crate::query::Query;

    /// A version 5 store keeps its captures, without a route, and records routed ones, which
    /// `route:` finds.
    #[tokio::test]
    async fn a_version_5_store_gains_the_route_and_copy_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let first = {
            let writer = writer_at(&path, Retention::default());
            save(&writer, record(Some(6), "/old", Some(200))).await
        };
        downgrade(&path, &["route", "copy"], 5);
        let writer = writer_at(&path, Retention::default());
        let mut routed = record(Some(7), "/stripe/x", Some(200));
        routed.route = Some("billing".into());
        let second = save(&writer, routed).await;
        let mut copy = record(Some(7), "/stripe/x", Some(500));
        copy.route = Some("ci-mirror".into());
        copy.copy = true;
        let third = save(&writer, copy).await;

        let store = Store::open(&path).unwrap();
        let old = store.get(first).unwrap();
        assert_eq!((old.route, old.copy), (None, false));
        let new = store.get(second).unwrap();
        assert_eq!((new.route.as_deref(), new.copy), (Some("billing"), false));
        assert!(store.get(third).unwrap().copy);
        let ids = |text: &str| {
            let rows = store.list(Some(&Query::parse(text).unwrap()), 10).unwrap();
            rows.iter()
                .map(|r| (r.id, r.route.clone(), r.copy))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids("route:bill*"),
            [(second, Some("billing".into()), false)]
        );
        assert_eq!(
            ids("route:ci-mirror"),
            [(third, Some("ci-mirror".into()), true)]
        );
        assert_eq!(ids("NOT route:*"), [(first, None, false)]);
        // A copy is not the delivery: a later run does not take it for one it captured.
        drop(writer);
        let writer = writer_at(&path, Retention::default());
        assert_eq!(
            writer.captured_before("http://relay/ch", EPOCH, 7),
            Some(second)
        );
    }
}
