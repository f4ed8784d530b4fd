//! Two header lists compared as ordered lists of (name, value): a longest common subsequence
//! keeps order and repeats, and a removal and an addition of the same name next to each other
//! become one change.

use relay_server::protocol::Header;
use serde::Serialize;

/// Largest table the common subsequence is computed with (entries); past it, the middle of
/// two very long lists is reported as removed and added.
const MAX_TABLE: usize = 1 << 20;

/// One difference between two header lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HeaderChange {
    /// Only in the second.
    Added {
        /// Name, lowercase.
        name: String,
        /// Value (bytes that are not UTF-8 replaced).
        value: String,
    },
    /// Only in the first.
    Removed {
        /// Name, lowercase.
        name: String,
        /// Value.
        value: String,
    },
    /// The same header with another value.
    Changed {
        /// Name, lowercase.
        name: String,
        /// Value in the first.
        a: String,
        /// Value in the second.
        b: String,
    },
}

/// One step of the edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep,
    Remove(usize),
    Add(usize),
}

type Pair<'a> = (String, &'a [u8]);

/// How `b` differs from `a`, headers named in `ignore` (any case) left out.
pub(super) fn diff(a: &[Header], b: &[Header], ignore: &[String]) -> Vec<HeaderChange> {
    let (a, b) = (pairs(a, ignore), pairs(b, ignore));
    changes(&a, &b, &script(&a, &b))
}

/// The headers of `list` not named in `ignore`, names lowercase.
fn pairs<'a>(list: &'a [Header], ignore: &[String]) -> Vec<Pair<'a>> {
    list.iter()
        .filter(|h| !ignore.iter().any(|n| n.eq_ignore_ascii_case(&h.name)))
        .map(|h| (h.name.to_ascii_lowercase(), &h.value[..]))
        .collect()
}

/// The edit script from `a` to `b`.
fn script(a: &[Pair<'_>], b: &[Pair<'_>]) -> Vec<Step> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut steps = vec![Step::Keep; prefix];
    let middle = if (mid_a.len() + 1) * (mid_b.len() + 1) <= MAX_TABLE {
        common_subsequence(mid_a, mid_b)
    } else {
        let removed = (0..mid_a.len()).map(Step::Remove);
        removed.chain((0..mid_b.len()).map(Step::Add)).collect()
    };
    steps.extend(middle.into_iter().map(|step| match step {
        Step::Remove(i) => Step::Remove(i + prefix),
        Step::Add(j) => Step::Add(j + prefix),
        Step::Keep => Step::Keep,
    }));
    steps.extend(std::iter::repeat_n(Step::Keep, suffix));
    steps
}

fn common_subsequence(a: &[Pair<'_>], b: &[Pair<'_>]) -> Vec<Step> {
    let width = b.len() + 1;
    // lengths[i * width + j]: the longest common subsequence of a[i..] and b[j..].
    let mut lengths = vec![0u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lengths[i * width + j] = if a[i] == b[j] {
                lengths[(i + 1) * width + j + 1] + 1
            } else {
                lengths[(i + 1) * width + j].max(lengths[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut steps = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            steps.push(Step::Keep);
            (i, j) = (i + 1, j + 1);
        } else if j < b.len()
            && (i == a.len() || lengths[i * width + j + 1] >= lengths[(i + 1) * width + j])
        {
            steps.push(Step::Add(j));
            j += 1;
        } else {
            steps.push(Step::Remove(i));
            i += 1;
        }
    }
    // Removals before additions within each run of changes reads better: the old line first.
    for run in steps.split_mut(|s| *s == Step::Keep) {
        run.sort_by_key(|s| matches!(s, Step::Add(_)));
    }
    steps
}

/// The changes `steps` make, each removal paired with the first addition of the same name in
/// its run.
fn changes(a: &[Pair<'_>], b: &[Pair<'_>], steps: &[Step]) -> Vec<HeaderChange> {
    let text = |value: &[u8]| String::from_utf8_lossy(value).into_owned();
    let mut out = Vec::new();
    for run in steps.split(|s| *s == Step::Keep) {
        let mut paired = vec![false; run.len()];
        for (k, step) in run.iter().enumerate() {
            match *step {
                Step::Remove(i) => {
                    let partner = run.iter().enumerate().position(|(m, s)| {
                        !paired[m] && matches!(*s, Step::Add(j) if b[j].0 == a[i].0)
                    });
                    match partner.map(|m| (m, run[m])) {
                        Some((m, Step::Add(j))) => {
                            paired[m] = true;
                            out.push(HeaderChange::Changed {
                                name: a[i].0.clone(),
                                a: text(a[i].1),
                                b: text(b[j].1),
                            });
                        }
                        _ => out.push(HeaderChange::Removed {
                            name: a[i].0.clone(),
                            value: text(a[i].1),
                        }),
                    }
                }
                Step::Add(j) if !paired[k] => out.push(HeaderChange::Added {
                    name: b[j].0.clone(),
                    value: text(b[j].1),
                }),
                _ => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn list(pairs: &[(&str, &str)]) -> Vec<Header> {
        pairs
            .iter()
            .map(|(n, v)| Header {
                name: (*n).into(),
                value: Bytes::copy_from_slice(v.as_bytes()),
            })
            .collect()
    }

    fn changed(name: &str, a: &str, b: &str) -> HeaderChange {
        HeaderChange::Changed {
            name: name.into(),
            a: a.into(),
            b: b.into(),
        }
    }

    #[test]
    fn order_and_repeats_count() {
        let a = list(&[("x-dup", "1"), ("x-dup", "2"), ("a", "x")]);
        let swapped = list(&[("x-dup", "2"), ("x-dup", "1"), ("a", "x")]);
        assert_eq!(
            diff(&a, &swapped, &[]),
            [
                HeaderChange::Added {
                    name: "x-dup".into(),
                    value: "2".into()
                },
                HeaderChange::Removed {
                    name: "x-dup".into(),
                    value: "2".into()
                },
            ]
        );
        let repeated = list(&[("x-dup", "1"), ("x-dup", "2"), ("x-dup", "2"), ("a", "x")]);
        assert_eq!(
            diff(&a, &repeated, &[]),
            [HeaderChange::Added {
                name: "x-dup".into(),
                value: "2".into()
            }]
        );
        assert!(diff(&a, &a, &[]).is_empty());
    }

    #[test]
    fn a_new_value_is_one_change_and_ignored_names_are_left_out() {
        let a = list(&[("date", "Mon"), ("content-type", "a"), ("x-old", "1")]);
        let b = list(&[("Date", "Tue"), ("content-type", "b"), ("x-new", "2")]);
        assert_eq!(
            diff(&a, &b, &["DATE".into()]),
            [
                changed("content-type", "a", "b"),
                HeaderChange::Removed {
                    name: "x-old".into(),
                    value: "1".into()
                },
                HeaderChange::Added {
                    name: "x-new".into(),
                    value: "2".into()
                },
            ]
        );
    }

    #[test]
    fn very_long_lists_fall_back_to_removed_and_added() {
        let a: Vec<Header> = (0..1500)
            .flat_map(|i| list(&[("x", &i.to_string())]))
            .collect();
        let b: Vec<Header> = (0..1500)
            .flat_map(|i| list(&[("y", &i.to_string())]))
            .collect();
        let changes = diff(&a, &b, &[]);
        assert_eq!(changes.len(), 3000);
    }
}
