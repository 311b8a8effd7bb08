//! The divergence check: at every write, under the run's lock the write
//! already holds, the hash the transaction read back is compared with the
//! dump it is about to replace. A field the dump held that Redis has lost, or
//! a timestamp Redis holds older, other than the fields this write changes,
//! means Redis lost acknowledged state (a replica promoted before it had the
//! write, a restore from an old snapshot). It is logged and counted
//! (`stats()["divergences"]`), never re-applied: a field missing from Redis
//! but present in the dump is also what a deliberate delete looks like while
//! its writer has not yet rewritten the dump (legacy `remove_timestamp`, or
//! `prep.redis.hdel(...)` then `prep.dump()`, neither under the run's lock).
//!
//! Cost: the process remembers the hash behind each dump it wrote and the
//! file's identity (device, inode, size, mtime). When the dump is still that
//! file (one `lstat`), it is compared from memory; otherwise (another process
//! wrote it since) it is read and parsed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::dump::{FileId, RunDir};
use crate::mutation::{Mutation, Snapshot};
use crate::stats;

/// Dumps this process wrote, by path: their identity and the hash they hold.
static KNOWN: Mutex<Option<HashMap<PathBuf, (FileId, Snapshot)>>> = Mutex::new(None);
/// Bound on remembered dumps (cleared when full).
const KNOWN_MAX: usize = 4096;

/// Remember that the dump at `path` (identity `id`) holds `hash`. Never waits:
/// a busy map is skipped (so a `fork()` taken while another thread held it
/// cannot deadlock the child).
pub fn remember(path: PathBuf, id: FileId, hash: Snapshot) {
    if let Ok(mut known) = KNOWN.try_lock() {
        let map = known.get_or_insert_with(HashMap::new);
        if map.len() >= KNOWN_MAX {
            map.clear();
        }
        map.insert(path, (id, hash));
    }
}

fn recall(path: &PathBuf, id: FileId) -> Option<Snapshot> {
    let known = KNOWN.try_lock().ok()?;
    match known.as_ref()?.get(path) {
        Some((known_id, hash)) if *known_id == id => Some(hash.clone()),
        _ => None,
    }
}

/// How a dump and the fresh hash disagree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Divergence {
    /// Dump fields Redis no longer has: `(field, dumped value)`.
    pub lost: Vec<(String, String)>,
    /// Timestamps Redis holds older: `(field, dumped, in Redis)`.
    pub older: Vec<(String, String, String)>,
}

impl Divergence {
    fn is_empty(&self) -> bool {
        self.lost.is_empty() && self.older.is_empty()
    }

    fn fields(&self) -> usize {
        self.lost.len() + self.older.len()
    }
}

fn parse_ts(v: &str) -> Option<i64> {
    v.parse().ok()
}

/// Looks fields up in the fresh hash: Redis keeps a small hash in insertion
/// order, so a dump's fields are usually found in order by a forward walk;
/// anything else falls back to a map built once.
struct Lookup<'a> {
    hash: &'a [(String, String)],
    next: usize,
    map: Option<HashMap<&'a str, &'a str>>,
}

impl<'a> Lookup<'a> {
    fn get(&mut self, field: &str) -> Option<&'a str> {
        if self.map.is_none() {
            let hash = self.hash;
            for (i, (k, v)) in hash.iter().enumerate().skip(self.next).take(4) {
                if k == field {
                    self.next = i + 1;
                    return Some(v.as_str());
                }
            }
            self.map = Some(hash.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect());
        }
        self.map.as_ref()?.get(field).copied()
    }
}

/// Compare the dump being replaced with the hash after `m`.
pub fn compare(dumped: &[(String, String)], hash: &[(String, String)], m: &Mutation) -> Divergence {
    let mut now = Lookup {
        hash,
        next: 0,
        map: None,
    };
    let mut d = Divergence::default();
    for (field, old) in dumped {
        let changed_here = m.sets.iter().any(|(k, _)| k == field) || m.dels.contains(field);
        if changed_here || field.starts_with("locked:") {
            continue;
        }
        match now.get(field) {
            None => d.lost.push((field.clone(), old.clone())),
            Some(cur) if field.starts_with("timestamps:") => {
                if let (Some(a), Some(b)) = (parse_ts(old), parse_ts(cur)) {
                    if b < a {
                        d.older
                            .push((field.clone(), old.clone(), (*cur).to_string()));
                    }
                }
            }
            Some(_) => {}
        }
    }
    d
}

fn short(v: &str) -> String {
    if v.len() <= 40 {
        return format!("{v:?}");
    }
    let mut end = 40;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &v[..end])
}

/// Check the dump in `dir` against the fresh `hash`; warn and count when they
/// diverge. A dump that is missing or cannot be parsed (a legacy writer's torn
/// file) is skipped: the write replaces it anyway.
pub fn check(run_id: &str, dir: &RunDir, hash: &[(String, String)], m: &Mutation) {
    let Some(id) = dir.dump_id() else {
        return;
    };
    let d = match recall(&dir.dump_path(), id) {
        Some(prev) => compare(&prev, hash, m),
        None => {
            let Some(bytes) = dir.peek_dump() else {
                return;
            };
            let Ok(dumped) = crate::dump::parse_dump(&bytes) else {
                return;
            };
            compare(&dumped, hash, m)
        }
    };
    if d.is_empty() {
        return;
    }
    stats::DIVERGENCES.incr();
    stats::DIVERGENT_FIELDS.add(d.fields() as u64);
    let mut items: Vec<String> = d
        .lost
        .iter()
        .map(|(f, v)| format!("{f} (dump {}, gone from Redis)", short(v)))
        .chain(
            d.older
                .iter()
                .map(|(f, a, b)| format!("{f} (dump {}, Redis {})", short(a), short(b))),
        )
        .collect();
    let n = items.len();
    items.truncate(20);
    log::warn!(
        "redisprep: run {run_id:?}: Redis has lost state its dump held, {n} field(s): {}{}. \
         A failover to a replica that lacked acknowledged writes (or a restore) can do this; \
         the dump is now replaced by Redis's state. Use min_replicas to prevent it \
         (see docs/RELIABILITY.md).",
        items.join(", "),
        if n > items.len() { ", …" } else { "" }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn finds_lost_and_older_fields_only() {
        let dumped = p(&[
            ("attrs:loaded", "true"),
            ("timestamps:a", "20"),
            ("timestamps:b", "20"),
            ("timestamps:c", "20"),
            ("rq:x", "job-2"),
            ("rq:y", "job-1"),
            ("timestamps:e", "junk"),
        ]);
        let hash = p(&[
            ("attrs:loaded", "true"),
            ("timestamps:a", "10"),
            ("timestamps:c", "30"),
            ("rq:x", "job-1"),
            ("timestamps:e", "5"),
        ]);
        let d = compare(&dumped, &hash, &Mutation::default());
        assert_eq!(d.lost, p(&[("timestamps:b", "20"), ("rq:y", "job-1")]));
        assert_eq!(
            d.older,
            vec![("timestamps:a".into(), "20".into(), "10".into())]
        );
    }

    #[test]
    fn fields_this_write_changes_are_not_divergence() {
        let dumped = p(&[("timestamps:a", "20"), ("timestamps:b", "20")]);
        let hash = p(&[("timestamps:a", "10")]);
        let m = Mutation {
            sets: p(&[("timestamps:a", "10")]),
            dels: vec!["timestamps:b".into()],
            ..Mutation::default()
        };
        assert_eq!(compare(&dumped, &hash, &m), Divergence::default());
    }
}
