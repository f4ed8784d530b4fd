//! Generations: the capture store keeps its rows in tables `captures_<n>` of consecutive ids,
//! each up to an eighth of `--keep`, behind a view `captures` that joins them (`UNION ALL`),
//! so readers see one table. Retention drops the oldest generation whole.
//!
//! Why: SQLite deletes rows one at a time, and deleting the oldest rows of one big table
//! rebalances the B-tree at its left edge over and over, moving rows that are about to go too.
//! That cost about 2 µs per capture under load (a third of the writer's time, measured with the
//! capture bench against a store that never pruned). Dropping a table frees its pages without
//! looking at a row. Exact trimming (idle, or a `--keep` smaller than before) still deletes rows,
//! from the oldest generation only.
//!
//! Each table keeps its ids in SQLite's rowid, so the writer gives every capture its id
//! explicitly: one more than the largest so far, or the generation's `first_id` while it is
//! empty. The newest generation is never dropped and its newest row never deleted, so ids never
//! start again.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};

/// The generation table `n`.
pub(super) fn table(n: i64) -> String {
    format!("captures_{n}")
}

/// Creates the bookkeeping table and generation 1, whose first capture gets `first_id`; then
/// [`rebuild_view`].
pub(super) fn create(conn: &Connection, columns: &str, first_id: i64) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "CREATE TABLE generations (n INTEGER PRIMARY KEY, first_id INTEGER NOT NULL);
         CREATE TABLE {} ({columns});",
        table(1)
    ))?;
    conn.execute("INSERT INTO generations VALUES (1, ?1)", [first_id])?;
    Ok(())
}

/// The generations, oldest first: `(n, first_id)`.
fn list(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT n, first_id FROM generations ORDER BY n")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Points the view `captures` at every generation, oldest first.
pub(super) fn rebuild_view(conn: &Connection) -> rusqlite::Result<()> {
    let arms: Vec<String> = list(conn)?
        .into_iter()
        .map(|(n, _)| format!("SELECT * FROM {}", table(n)))
        .collect();
    conn.execute_batch(&format!(
        "DROP VIEW IF EXISTS captures; CREATE VIEW captures AS {};",
        arms.join(" UNION ALL ")
    ))
}

/// The newest generation, and the id its next capture gets.
pub(super) fn newest(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let (n, first_id): (i64, i64) = conn
        .prepare_cached("SELECT n, first_id FROM generations ORDER BY n DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let largest: Option<i64> = conn
        .prepare_cached(&format!("SELECT MAX(id) FROM {}", table(n)))?
        .query_row([], |r| r.get(0))?;
    Ok((n, largest.map_or(first_id, |id| id + 1).max(first_id)))
}

/// Rows per generation, as far as one writer knows: counted when it first sees a generation,
/// then its own inserts and deletes added. Other processes' inserts (replays) are not counted,
/// so they outlive `--keep` a little.
#[derive(Debug, Default)]
pub(super) struct Sizes {
    rows: BTreeMap<i64, u64>,
    /// A generation was added or dropped and the view does not show it yet.
    stale_view: bool,
}

impl Sizes {
    /// Counts the rows of every generation.
    pub fn load(conn: &Connection) -> rusqlite::Result<Sizes> {
        let mut sizes = Sizes::default();
        sizes.sync(conn)?;
        Ok(sizes)
    }

    /// Takes in generations another process made or dropped.
    fn sync(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let now: Vec<i64> = list(conn)?.into_iter().map(|(n, _)| n).collect();
        self.rows.retain(|n, _| now.contains(n));
        for n in now {
            if let std::collections::btree_map::Entry::Vacant(entry) = self.rows.entry(n) {
                let count: i64 =
                    conn.query_row(&format!("SELECT COUNT(*) FROM {}", table(n)), [], |r| {
                        r.get(0)
                    })?;
                entry.insert(count.max(0) as u64);
            }
        }
        Ok(())
    }

    /// The newest generation known.
    pub fn newest(&self) -> Option<i64> {
        self.rows.keys().next_back().copied()
    }

    /// Captures in every generation.
    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Notes `count` captures inserted into generation `n`.
    pub fn inserted(&mut self, n: i64, count: u64) {
        *self.rows.entry(n).or_default() += count;
    }

    /// Whether generation `n` holds its share of `--keep keep`.
    pub fn full(&self, n: i64, keep: u64) -> bool {
        self.rows
            .get(&n)
            .is_some_and(|&rows| rows >= generation_size(keep))
    }

    /// Starts the generation after the newest, whose first capture gets `next_id`; returns it.
    /// The view shows it after [`Sizes::finish`].
    pub fn rotate(&mut self, conn: &Connection, next_id: i64) -> rusqlite::Result<i64> {
        let next = self.newest().map_or(1, |n| n + 1);
        conn.execute_batch(&format!(
            "CREATE TABLE {} ({});",
            table(next),
            super::COLUMNS
        ))?;
        conn.execute("INSERT INTO generations VALUES (?1, ?2)", [next, next_id])?;
        self.rows.insert(next, 0);
        self.stale_view = true;
        Ok(next)
    }

    /// Points the view at the generations, if they changed.
    pub fn finish(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.stale_view {
            rebuild_view(conn)?;
            self.stale_view = false;
        }
        Ok(())
    }

    /// Whether [`Sizes::retain`] has work: the oldest generation can go whole, or (`exact`)
    /// there are more than `keep`.
    pub fn due(&self, keep: u64, exact: bool) -> bool {
        let total = self.total();
        let oldest_goes = self.rows.len() > 1
            && self
                .rows
                .values()
                .next()
                .is_some_and(|&r| total - r >= keep);
        oldest_goes || (exact && total > keep)
    }

    /// Keeps the newest `keep` captures: drops the oldest generations whole while that still
    /// leaves `keep`, and, if `exact`, deletes the oldest rows past `keep` (row by row: for
    /// quiet moments and small limits). Otherwise up to a generation more stays, until the
    /// oldest can go whole. Returns how many captures went.
    pub fn retain(&mut self, conn: &Connection, keep: u64, exact: bool) -> rusqlite::Result<u64> {
        self.sync(conn)?;
        let mut gone = 0;
        while self.rows.len() > 1 {
            let (&oldest, &rows) = self.rows.iter().next().expect("more than one generation");
            if self.total() - rows < keep {
                break;
            }
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {};", table(oldest)))?;
            conn.execute("DELETE FROM generations WHERE n = ?1", [oldest])?;
            self.rows.remove(&oldest);
            gone += rows;
            self.stale_view = true;
        }
        self.finish(conn)?;
        let excess = self.total().saturating_sub(keep);
        if exact && excess > 0 {
            gone += self.trim_oldest(conn, excess)?;
        }
        Ok(gone)
    }

    /// Deletes the `count` oldest captures of the oldest generation (at most all but one of a
    /// lone generation, whose newest row keeps the largest id).
    fn trim_oldest(&mut self, conn: &Connection, count: u64) -> rusqlite::Result<u64> {
        let Some((&n, &rows)) = self.rows.iter().next() else {
            return Ok(0);
        };
        let count = if self.rows.len() == 1 {
            count.min(rows.saturating_sub(1))
        } else {
            count.min(rows)
        };
        let first_kept: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM {} ORDER BY id LIMIT 1 OFFSET ?1",
                table(n)
            ))?
            .query_row([i64::try_from(count).unwrap_or(i64::MAX)], |r| r.get(0))
            .optional()?;
        let deleted = match first_kept {
            Some(first_kept) => conn
                .prepare_cached(&format!("DELETE FROM {} WHERE id < ?1", table(n)))?
                .execute([first_kept])? as u64,
            // Fewer rows than counted (another process trimmed): all but the newest.
            None => 0,
        };
        if let Some(rows) = self.rows.get_mut(&n) {
            *rows = rows.saturating_sub(deleted);
        }
        Ok(deleted)
    }

    /// Deletes captures received before `cutoff_ms`, except the newest capture of all, and drops
    /// the generations left empty (but the newest). Returns how many went.
    pub fn expire(&mut self, conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
        self.sync(conn)?;
        let Some(&newest) = self.rows.keys().next_back() else {
            return Ok(0);
        };
        let (_, next_id) = self::newest(conn)?;
        let mut gone = 0;
        let mut changed = false;
        for (&n, rows) in self.rows.iter_mut() {
            let deleted = conn
                .prepare_cached(&format!(
                    "DELETE FROM {} WHERE received_at < ?1 AND id < ?2",
                    table(n)
                ))?
                .execute([cutoff_ms, next_id - 1])? as u64;
            *rows = rows.saturating_sub(deleted);
            gone += deleted;
        }
        let empty: Vec<i64> = self
            .rows
            .iter()
            .filter(|&(&n, &rows)| rows == 0 && n != newest)
            .map(|(&n, _)| n)
            .collect();
        for n in empty {
            conn.execute_batch(&format!("DROP TABLE IF EXISTS {};", table(n)))?;
            conn.execute("DELETE FROM generations WHERE n = ?1", [n])?;
            self.rows.remove(&n);
            changed = true;
        }
        if changed {
            rebuild_view(conn)?;
        }
        Ok(gone)
    }
}

/// Captures per generation for `--keep keep`: an eighth, so at most about 9 tables and the store
/// holds at most 12.5 % more than `keep` while busy.
fn generation_size(keep: u64) -> u64 {
    (keep / super::writer::PRUNE_SLACK).max(1)
}
