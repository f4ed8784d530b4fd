//! Generations: the capture store keeps its rows in generations of consecutive ids, each up to
//! an eighth of `--keep`, and retention empties the oldest generation whole.
//!
//! Why: SQLite deletes rows one at a time, and deleting the oldest rows of one big table
//! rebalances the B-tree at its left edge over and over, moving rows that are about to go too.
//! That cost about 2 µs per capture under load (a third of the writer's time, measured with the
//! capture bench against a store that never pruned). Emptying a table with `DELETE FROM t` (no
//! `WHERE`: SQLite's truncate optimization) frees its pages without looking at a row. Exact
//! trimming (idle, or a `--keep` smaller than before) still deletes rows, from the oldest
//! generation only.
//!
//! A generation lives in one of [`SLOTS`] tables, `captures_0` … `captures_9`, made once with
//! the store, as is the view `captures` over all of them (`UNION ALL`), which readers query as
//! one table. The schema never changes afterwards: a new table or view per generation made
//! every connection parse the whole schema again and re-prepare its statements (6 % of the
//! writer's time). The table `generations` says which slot holds which generation.
//!
//! Each table keeps its ids in SQLite's rowid, so the writer gives every capture its id
//! explicitly: one more than the largest so far, or the generation's `first_id` while it is
//! empty. The newest generation is never emptied and its newest row never deleted, so ids never
//! start again.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension};

/// Tables that hold generations. Under `--keep`, at most nine generations are live after
/// retention (eight full eighths cannot be fewer than `keep`, so the oldest of nine can go),
/// and a tenth may start before retention runs again.
pub(super) const SLOTS: i64 = 10;

/// Past `--keep N`, captures are deleted once the writer is idle, or, under
/// sustained load, a generation of N/PRUNE_SLACK at a time (so at most 12.5 % more are kept for
/// a moment): dropping a table costs far less per row than deleting rows, and deleting between
/// bursts costs the burst nothing. Each new generation changes the schema, which every
/// connection then parses again, view and all: eighths rather than sixteenths halve both how
/// often and how much (see the `generations` module). Small limits are exact (`--keep 3` keeps
/// 3).
pub(super) const PRUNE_SLACK: u64 = 8;

/// The table of slot `slot`.
pub(super) fn table(slot: i64) -> String {
    format!("captures_{slot}")
}

/// Creates the slot tables, the view over them, and the bookkeeping table with generation 1 in
/// slot 0, whose first capture gets `first_id`.
pub(super) fn create(conn: &Connection, columns: &str, first_id: i64) -> rusqlite::Result<()> {
    let mut sql = String::from(
        "CREATE TABLE generations (
             n INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, slot INTEGER NOT NULL);",
    );
    let mut arms = Vec::new();
    for slot in 0..SLOTS {
        sql.push_str(&format!("CREATE TABLE {} ({columns});", table(slot)));
        arms.push(format!("SELECT * FROM {}", table(slot)));
    }
    sql.push_str(&format!(
        "CREATE VIEW captures AS {};",
        arms.join(" UNION ALL ")
    ));
    conn.execute_batch(&sql)?;
    conn.execute("INSERT INTO generations VALUES (1, ?1, 0)", [first_id])?;
    Ok(())
}

/// The live generations, oldest first: `(n, slot)`.
fn list(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT n, slot FROM generations ORDER BY n")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The live generations, oldest first: `(first_id, slot)`. A generation's captures have ids
/// from its `first_id` up to the next one's, except in the first generation of a store
/// upgraded from version 2, which also holds the captures before its `first_id`.
pub(super) fn ranges(conn: &Connection) -> rusqlite::Result<Vec<(i64, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT first_id, slot FROM generations ORDER BY n")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// The slot that holds capture `id`, by `ranges`.
pub(super) fn slot_of(ranges: &[(i64, i64)], id: i64) -> Option<i64> {
    let before = ranges.partition_point(|&(first_id, _)| first_id <= id);
    ranges.get(before.saturating_sub(1)).map(|&(_, slot)| slot)
}

/// Where the next capture goes: the newest generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    /// The generation.
    pub n: i64,
    /// Its slot.
    pub slot: i64,
    /// The id the next capture gets.
    pub next_id: i64,
}

/// The newest generation, and the id its next capture gets.
pub(super) fn newest(conn: &Connection) -> rusqlite::Result<Place> {
    let (n, first_id, slot): (i64, i64, i64) = conn
        .prepare_cached("SELECT n, first_id, slot FROM generations ORDER BY n DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let largest: Option<i64> = conn
        .prepare_cached(&format!("SELECT MAX(id) FROM {}", table(slot)))?
        .query_row([], |r| r.get(0))?;
    Ok(Place {
        n,
        slot,
        next_id: largest.map_or(first_id, |id| id + 1).max(first_id),
    })
}

/// One live generation, as a writer knows it.
#[derive(Debug, Clone, Copy)]
struct Generation {
    slot: i64,
    rows: u64,
}

/// The live generations and their rows, as far as one writer knows: counted when it first sees
/// a generation, then its own inserts and deletes added. Other processes' inserts (replays) are
/// not counted, so they outlive `--keep` a little.
#[derive(Debug, Default)]
pub(super) struct Sizes {
    live: BTreeMap<i64, Generation>,
}

impl Sizes {
    /// Counts the rows of every generation.
    pub fn load(conn: &Connection) -> rusqlite::Result<Sizes> {
        let mut sizes = Sizes::default();
        sizes.sync(conn)?;
        Ok(sizes)
    }

    /// Takes in generations another process made or emptied.
    fn sync(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let now = list(conn)?;
        self.live
            .retain(|n, generation| now.contains(&(*n, generation.slot)));
        for (n, slot) in now {
            if let std::collections::btree_map::Entry::Vacant(entry) = self.live.entry(n) {
                let count: i64 =
                    conn.query_row(&format!("SELECT COUNT(*) FROM {}", table(slot)), [], |r| {
                        r.get(0)
                    })?;
                entry.insert(Generation {
                    slot,
                    rows: count.max(0) as u64,
                });
            }
        }
        Ok(())
    }

    /// Captures in every generation.
    pub fn total(&self) -> u64 {
        self.live.values().map(|g| g.rows).sum()
    }

    /// Notes `count` captures inserted into generation `n`.
    pub fn inserted(&mut self, n: i64, count: u64) {
        if let Some(generation) = self.live.get_mut(&n) {
            generation.rows += count;
        }
    }

    /// Whether generation `n` holds its share of `--keep keep`.
    pub fn full(&self, n: i64, keep: u64) -> bool {
        self.live
            .get(&n)
            .is_some_and(|g| g.rows >= generation_size(keep))
    }

    /// Starts the generation after the newest in a free slot, once the oldest generations that
    /// may go (see [`Sizes::retain`]) have gone; its first capture gets `next_id`. `None` when
    /// no slot is free (generations of an earlier, smaller `--keep` still hold them): the
    /// newest then grows past its share until one is.
    pub fn rotate(
        &mut self,
        conn: &Connection,
        keep: u64,
        next_id: i64,
    ) -> rusqlite::Result<Option<Place>> {
        self.sync(conn)?;
        self.empty_oldest(conn, keep)?;
        let used: Vec<i64> = self.live.values().map(|g| g.slot).collect();
        let Some(slot) = (0..SLOTS).find(|slot| !used.contains(slot)) else {
            return Ok(None);
        };
        let n = self.live.keys().next_back().map_or(1, |n| n + 1);
        conn.execute(
            "INSERT INTO generations VALUES (?1, ?2, ?3)",
            [n, next_id, slot],
        )?;
        self.live.insert(n, Generation { slot, rows: 0 });
        Ok(Some(Place { n, slot, next_id }))
    }

    /// Whether [`Sizes::retain`] has work: the oldest generation can go whole, or (`exact`)
    /// there are more than `keep`.
    pub fn due(&self, keep: u64, exact: bool) -> bool {
        let total = self.total();
        let oldest_goes = self.live.len() > 1
            && self
                .live
                .values()
                .next()
                .is_some_and(|g| total - g.rows >= keep);
        oldest_goes || (exact && total > keep)
    }

    /// Keeps the newest `keep` captures: empties the oldest generations whole while that still
    /// leaves `keep`, and, if `exact`, deletes the oldest rows past `keep` (row by row: for
    /// quiet moments and small limits). Otherwise up to a generation more stays, until the
    /// oldest can go whole. Returns how many captures went.
    pub fn retain(&mut self, conn: &Connection, keep: u64, exact: bool) -> rusqlite::Result<u64> {
        self.sync(conn)?;
        let mut gone = self.empty_oldest(conn, keep)?;
        let excess = self.total().saturating_sub(keep);
        if exact && excess > 0 {
            gone += self.trim_oldest(conn, excess)?;
        }
        Ok(gone)
    }

    /// Empties the oldest generations while the others hold at least `keep`; never the newest.
    fn empty_oldest(&mut self, conn: &Connection, keep: u64) -> rusqlite::Result<u64> {
        let mut gone = 0;
        while self.live.len() > 1 {
            let (&n, &generation) = self.live.iter().next().expect("more than one generation");
            if self.total() - generation.rows < keep {
                break;
            }
            self.empty(conn, n, generation.slot)?;
            gone += generation.rows;
        }
        Ok(gone)
    }

    /// Empties generation `n` and frees its slot.
    fn empty(&mut self, conn: &Connection, n: i64, slot: i64) -> rusqlite::Result<()> {
        // No WHERE: the truncate optimization, pages freed without reading their rows one by one.
        conn.prepare_cached(&format!("DELETE FROM {}", table(slot)))?
            .execute([])?;
        conn.prepare_cached("DELETE FROM generations WHERE n = ?1")?
            .execute([n])?;
        self.live.remove(&n);
        Ok(())
    }

    /// Deletes the `count` oldest captures of the oldest generation (at most all but one of a
    /// lone generation, whose newest row keeps the largest id).
    fn trim_oldest(&mut self, conn: &Connection, count: u64) -> rusqlite::Result<u64> {
        let lone = self.live.len() == 1;
        let Some(generation) = self.live.values_mut().next() else {
            return Ok(0);
        };
        let count = if lone {
            count.min(generation.rows.saturating_sub(1))
        } else {
            count.min(generation.rows)
        };
        let first_kept: Option<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM {} ORDER BY id LIMIT 1 OFFSET ?1",
                table(generation.slot)
            ))?
            .query_row([i64::try_from(count).unwrap_or(i64::MAX)], |r| r.get(0))
            .optional()?;
        let deleted = match first_kept {
            Some(first_kept) => conn
                .prepare_cached(&format!(
                    "DELETE FROM {} WHERE id < ?1",
                    table(generation.slot)
                ))?
                .execute([first_kept])? as u64,
            // Fewer rows than counted (another process trimmed): leave it to the next look.
            None => 0,
        };
        generation.rows = generation.rows.saturating_sub(deleted);
        Ok(deleted)
    }

    /// Deletes captures received before `cutoff_ms`, except the newest capture of all, and
    /// empties the generations left with nothing (but the newest). Returns how many went.
    pub fn expire(&mut self, conn: &Connection, cutoff_ms: i64) -> rusqlite::Result<u64> {
        self.sync(conn)?;
        let Some(&newest_n) = self.live.keys().next_back() else {
            return Ok(0);
        };
        let newest_id = newest(conn)?.next_id - 1;
        let mut gone = 0;
        for generation in self.live.values_mut() {
            let deleted = conn
                .prepare_cached(&format!(
                    "DELETE FROM {} WHERE received_at < ?1 AND id < ?2",
                    table(generation.slot)
                ))?
                .execute([cutoff_ms, newest_id])? as u64;
            generation.rows = generation.rows.saturating_sub(deleted);
            gone += deleted;
        }
        let empty: Vec<(i64, i64)> = self
            .live
            .iter()
            .filter(|&(&n, g)| g.rows == 0 && n != newest_n)
            .map(|(&n, g)| (n, g.slot))
            .collect();
        for (n, slot) in empty {
            self.empty(conn, n, slot)?;
        }
        Ok(gone)
    }
}

/// Captures per generation for `--keep keep`: an eighth, rounded up, so eight full generations
/// hold at least `keep` and the store holds at most 12.5 % more than `keep` while busy.
fn generation_size(keep: u64) -> u64 {
    keep.div_ceil(PRUNE_SLACK).max(1)
}
