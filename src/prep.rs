//! The Redis side of a run: legacy hash layout (SPEC section 2) plus the
//! one-round-trip "timestamp + invalidate + read back" transaction.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Value;

use crate::cluster;
use crate::divergence;
use crate::dump::{self, RunDir};
use crate::errors::CoreResult;
use crate::exec::{self, run, Applied};
use crate::paths;
use crate::preflight::{self, Preflight};
use crate::replication::Shortfall;
use crate::rules::{self, KeyPlan, Rules, RunVars};
use crate::stats;
use crate::value;

/// Hash field of the "loaded" flag.
pub const LOADED: &str = "attrs:loaded";

/// One hash snapshot, as HGETALL returned it.
pub type Snapshot = Arc<Vec<(String, String)>>;

/// A change to the run's hash, applied atomically with its cache deletions.
#[derive(Debug, Default, Clone)]
pub struct Mutation {
    pub sets: Vec<(String, String)>,
    pub dels: Vec<String>,
    /// Cache keys to delete in the rules' cache DB.
    pub cache_keys: Vec<String>,
    pub cache_db: i64,
    /// The event to PUBLISH inside the transaction.
    pub event: Option<Event>,
}

/// An invalidation event: `payload` (a JSON object) is published on `channel`
/// with the checklist of the hash after the write appended by Redis itself
/// (see [`crate::event`]); `checks` is the compiled checks spec ("" for none).
#[derive(Debug, Clone)]
pub struct Event {
    pub channel: String,
    pub payload: String,
    pub checks: String,
}

/// What a mutation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hash: Snapshot,
    /// The cache keys that existed and were deleted.
    pub deleted: Vec<String>,
    /// True when the run's hash had been lost and was rebuilt from the dump.
    pub recovered: bool,
    /// Set when fewer replicas than `min_replicas` acknowledged the write.
    pub shortfall: Option<Shortfall>,
}

impl Outcome {
    /// The outcome, or `ReplicationError` when too few replicas acknowledged it.
    pub fn replicated(self) -> CoreResult<Outcome> {
        match self.shortfall {
            Some(s) => Err(s.into_error()),
            None => Ok(self),
        }
    }
}

/// A run's prep state: the core behind Python's `RedisPrep`.
#[derive(Debug)]
pub struct Prep {
    pub wd: String,
    pub run_id: String,
    /// Absolute normalised folder: the `{wd}` placeholder value.
    pub abs_wd: String,
    last: Mutex<Option<Snapshot>>,
}

/// Seconds since the epoch, like `int(time.time())`.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.to_lowercase() == "true")
}

impl Prep {
    /// Build without touching Redis or the disk.
    pub fn new(wd: &str) -> Prep {
        Prep {
            wd: wd.to_string(),
            run_id: paths::run_id_of(wd),
            abs_wd: paths::abs_wd(wd),
            last: Mutex::new(None),
        }
    }

    /// Template values for this run.
    pub fn vars(&self) -> RunVars<'_> {
        RunVars {
            wd: &self.abs_wd,
            run_id: &self.run_id,
        }
    }

    /// The Redis key of this run's hash: the run id (standalone, legacy) or
    /// `prep:{<run_id>}` (cluster layout).
    pub fn hash_key(&self) -> std::borrow::Cow<'_, str> {
        if cluster::enabled() {
            std::borrow::Cow::Owned(cluster::prep_key(&self.run_id))
        } else {
            std::borrow::Cow::Borrowed(&self.run_id)
        }
    }

    /// What `task` invalidates for this run, with keys as they are in Redis
    /// (prefixed with the run's hash tag on the cluster layout).
    pub fn plan(&self, rules: &Rules, task: &str) -> Vec<KeyPlan> {
        self.localise(rules.plan(task, &self.vars()))
    }

    /// Every controller's plan for this run (see [`Prep::plan`]).
    pub fn all_plans(&self, rules: &Rules) -> Vec<KeyPlan> {
        self.localise(rules.all_plans(&self.vars()))
    }

    /// One controller's plan for this run (see [`Prep::plan`]).
    pub fn controller_plan(&self, rules: &Rules, controller: &str) -> Option<KeyPlan> {
        rules
            .controller_plan(controller, &self.vars())
            .map(|p| self.localise(vec![p]).remove(0))
    }

    fn localise(&self, mut plans: Vec<KeyPlan>) -> Vec<KeyPlan> {
        if cluster::enabled() {
            for p in &mut plans {
                for k in &mut p.keys {
                    *k = cluster::cache_key(&self.run_id, k);
                }
                for k in &mut p.patterns {
                    *k = cluster::cache_key(&crate::rules::template::glob_escape(&self.run_id), k);
                }
            }
        }
        plans
    }

    /// `<wd>/redisprep.dump`, as `os.path.join` builds it.
    pub fn dump_filepath(&self) -> String {
        paths::join(&self.wd, dump::DUMP_NAME)
    }

    /// The constructor's side effect: without a dump file, set `attrs:loaded`.
    pub fn init(&self) -> CoreResult<()> {
        if !std::path::Path::new(&self.dump_filepath()).exists() {
            self.set_fields(&[(LOADED.to_string(), "true".to_string())])?;
        }
        Ok(())
    }

    /// `getInstance`: construct (with the legacy side effect), then `lazy_load`.
    pub fn get_instance(wd: &str) -> CoreResult<Prep> {
        let prep = Prep::new(wd);
        if std::path::Path::new(&prep.dump_filepath()).exists() {
            prep.lazy_load()?;
        } else {
            // legacy: set loaded (+ dump); lazy_load then finds it true
            prep.set_fields(&[(LOADED.to_string(), "true".to_string())])?;
        }
        Ok(prep)
    }

    /// Legacy `lazy_load`: if not loaded, load the dump (if any) into the hash.
    pub fn lazy_load(&self) -> CoreResult<()> {
        if is_true(self.hget(LOADED)?.as_deref()) {
            return Ok(());
        }
        let path = PathBuf::from(self.dump_filepath());
        let Some(pairs) = dump::read_dump_settled(&path)? else {
            return Ok(());
        };
        // one HSET (atomic on its own): the dump's fields in order, then `attrs:loaded`
        match exec::load_fields(&self.hash_key(), &pairs)? {
            Some(shortfall) => Err(shortfall.into_error()),
            None => Ok(()),
        }
    }

    /// HGET one field.
    pub fn hget(&self, field: &str) -> CoreResult<Option<String>> {
        let key = self.hash_key();
        let v = run(|c| redis::cmd("HGET").arg(&*key).arg(field).query::<Value>(c))?;
        value::opt_string(&v)
    }

    /// HMGET several fields in one round trip.
    pub fn hmget(&self, fields: &[String]) -> CoreResult<Vec<Option<String>>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.hash_key();
        let v = run(|c| redis::cmd("HMGET").arg(&*key).arg(fields).query::<Value>(c))?;
        value::opt_strings(&v)
    }

    /// HGETALL, in Redis order.
    pub fn hgetall(&self) -> CoreResult<Vec<(String, String)>> {
        let key = self.hash_key();
        let v = run(|c| redis::cmd("HGETALL").arg(&*key).query::<Value>(c))?;
        value::pairs(&v)
    }

    /// HSET fields (+ dump). No invalidation: legacy `__setitem__` and setters.
    pub fn set_fields(&self, sets: &[(String, String)]) -> CoreResult<Outcome> {
        self.mutate(Mutation {
            sets: sets.to_vec(),
            ..Mutation::default()
        })
    }

    /// HDEL fields (+ dump).
    pub fn del_fields(&self, dels: &[String]) -> CoreResult<Outcome> {
        self.mutate(Mutation {
            dels: dels.to_vec(),
            ..Mutation::default()
        })
    }

    /// The last hash snapshot this instance read in a transaction.
    pub fn last_snapshot(&self) -> Option<Snapshot> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Apply a mutation in one MULTI/EXEC round trip, then write the dump.
    ///
    /// The run folder's lock is held from before the transaction until the
    /// dump is renamed into place, so the file always ends at the state of the
    /// last transaction. If the hash had been lost (no `attrs:loaded`) while a
    /// dump exists, the dump is merged back under the change first, so a
    /// partial hash never overwrites the dump.
    ///
    /// With `min_replicas` set, a write that too few replicas acknowledged is
    /// still dumped, then reported as `CoreError::Replication`.
    pub fn mutate(&self, m: Mutation) -> CoreResult<Outcome> {
        self.write(m)?.replicated()
    }

    /// [`Prep::mutate`], with a replication shortfall left in the outcome.
    fn write(&self, m: Mutation) -> CoreResult<Outcome> {
        let run_dir = RunDir::open_locked(&self.wd)?;
        let Applied {
            had_loaded,
            deleted,
            mut hash,
            mut shortfall,
        } = exec::apply(&self.hash_key(), &m)?;
        let mut recovered = false;
        if let Some(dir) = &run_dir {
            if !had_loaded {
                if let Some((merged, short)) = self.recover(&m, &hash)? {
                    hash = merged;
                    recovered = true;
                    shortfall = shortfall.or(short);
                }
            } else {
                divergence::check(&self.run_id, dir, &hash, &m);
            }
        }
        if !deleted.is_empty() {
            stats::KEYS_DELETED.add(deleted.len() as u64);
        }
        let hash = Arc::new(hash);
        if let Some(dir) = &run_dir {
            let id = dir.write_dump(
                hash.iter()
                    .filter(|(k, _)| !k.starts_with("locked:"))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
                exec::write_options()?.fsync,
            )?;
            stats::DUMPS_WRITTEN.incr();
            if let Some(id) = id {
                divergence::remember(dir.dump_path(), id, hash.clone());
            }
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.clone());
        if shortfall.is_some() {
            stats::REPLICATION_ERRORS.incr();
        }
        Ok(Outcome {
            hash,
            deleted,
            recovered,
            shortfall,
        })
    }

    /// The hash lost `attrs:loaded` (e.g. Redis restarted empty): put back every
    /// dump field that the hash lacks and this mutation did not delete.
    fn recover(
        &self,
        m: &Mutation,
        hash: &[(String, String)],
    ) -> CoreResult<Option<exec::Restored>> {
        let path = PathBuf::from(self.dump_filepath());
        let dumped = match dump::read_dump_settled(&path) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => {
                log::warn!(
                    "redisprep: run {:?} lost its Redis hash and its dump cannot be read: {e}",
                    self.run_id
                );
                return Err(e);
            }
        };
        let present: HashSet<&str> = hash.iter().map(|(k, _)| k.as_str()).collect();
        let deleted: HashSet<&str> = m.dels.iter().map(String::as_str).collect();
        let missing: Vec<&(String, String)> = dumped
            .iter()
            .filter(|(k, _)| !present.contains(k.as_str()) && !deleted.contains(k.as_str()))
            .collect();
        stats::RECOVERIES.incr();
        log::warn!(
            "redisprep: run {:?} had lost its Redis hash; restored {} field(s) from {}",
            self.run_id,
            missing.len(),
            path.display()
        );
        exec::restore_missing(&self.hash_key(), &missing).map(Some)
    }

    /// Legacy `dump()`: HGETALL, drop `locked:*`, write if the folder exists.
    pub fn dump(&self) -> CoreResult<()> {
        let run_dir = RunDir::open_locked(&self.wd)?;
        let hash = self.hgetall()?;
        if let Some(dir) = run_dir {
            dir.write_dump(
                hash.iter()
                    .filter(|(k, _)| !k.starts_with("locked:"))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
                exec::write_options()?.fsync,
            )?;
            stats::DUMPS_WRITTEN.incr();
        }
        Ok(())
    }

    /// Exact keys (as stored in Redis) and SCAN patterns `task` invalidates for this run.
    fn task_keys(&self, r: &Rules, task: &str) -> (Vec<String>, Vec<String>) {
        let mut keys = r.keys_for(task, &self.vars());
        if cluster::enabled() {
            for k in &mut keys {
                *k = cluster::cache_key(&self.run_id, k);
            }
        }
        let has_patterns = r.task(task).is_some_and(|t| {
            t.closure
                .iter()
                .any(|c| !r.controllers[c.controller].patterns.is_empty())
        });
        let patterns = if has_patterns {
            self.plan(r, task)
                .into_iter()
                .flat_map(|p| p.patterns)
                .collect()
        } else {
            Vec::new()
        };
        (keys, patterns)
    }

    fn event(
        &self,
        rules: &Rules,
        task: &str,
        keys: &[String],
        ts: i64,
    ) -> CoreResult<Option<Event>> {
        let opts = exec::write_options()?;
        if !opts.events {
            return Ok(None);
        }
        let payload = serde_json::json!({
            "run_id": self.run_id,
            "wd": self.abs_wd,
            "task": task,
            "keys": keys,
            "timestamp": ts,
        });
        Ok(Some(Event {
            channel: opts.events_channel,
            payload: payload.to_string(),
            checks: rules.checks_spec.clone(),
        }))
    }

    /// `timestamp(task)`: record `int(time.time())` and, unless `invalidate` is
    /// false, delete the caches the rules name, all in one round trip.
    pub fn timestamp(&self, task: &str, invalidate: bool, now: Option<i64>) -> CoreResult<Outcome> {
        let ts = now.unwrap_or_else(now_secs);
        let mut active = if invalidate { rules::active() } else { None };
        if let Some(r) = &active {
            if let Err(e) = exec::check_cache_db(r.db) {
                log::warn!("redisprep: invalidation skipped (timestamps are still recorded). {e}");
                active = None;
            }
        }
        let (keys, patterns, db) = match &active {
            Some(r) => {
                let (k, p) = self.task_keys(r, task);
                (k, p, r.db)
            }
            None => (Vec::new(), Vec::new(), 13),
        };
        let event = if let (Some(r), false) = (&active, keys.is_empty()) {
            self.event(r, task, &keys, ts)?
        } else {
            None
        };
        let mut out = self.write(Mutation {
            sets: vec![(format!("timestamps:{task}"), ts.to_string())],
            cache_keys: keys,
            cache_db: db,
            event,
            ..Mutation::default()
        })?;
        stats::TIMESTAMPS.incr();
        if !patterns.is_empty() {
            let (more, short) = exec::scan_delete(db, &patterns)?;
            stats::KEYS_DELETED.add(more.len() as u64);
            out.deleted.extend(more);
            out.shortfall = out.shortfall.or(short);
        }
        if active.is_some() {
            stats::INVALIDATIONS.incr();
            log::debug!(
                "redisprep: invalidated run={:?} task={task:?} keys_deleted={}",
                self.run_id,
                out.deleted.len()
            );
        }
        out.replicated()
    }

    /// Delete the caches of the given plans (exact keys in one round trip,
    /// patterns with SCAN). Returns the keys that existed.
    pub fn delete_plans(&self, plans: &[KeyPlan], db: i64) -> CoreResult<Vec<String>> {
        let mut keys: Vec<String> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for p in plans {
            for k in &p.keys {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            patterns.extend(p.patterns.iter().cloned());
        }
        let (mut deleted, mut shortfall) = exec::delete_keys(db, &keys)?;
        if !patterns.is_empty() {
            let (more, short) = exec::scan_delete(db, &patterns)?;
            deleted.extend(more);
            shortfall = shortfall.or(short);
        }
        stats::KEYS_DELETED.add(deleted.len() as u64);
        match shortfall {
            Some(s) => {
                stats::REPLICATION_ERRORS.incr();
                Err(s.into_error())
            }
            None => Ok(deleted),
        }
    }

    /// `invalidate_caches_for_task`: the caches of `task` for this run, no timestamp.
    pub fn invalidate_task(&self, rules: &Rules, task: &str) -> CoreResult<Vec<String>> {
        let deleted = self.delete_plans(&self.plan(rules, task), rules.db)?;
        stats::INVALIDATIONS.incr();
        log::debug!(
            "redisprep: invalidated run={:?} task={task:?} keys_deleted={}",
            self.run_id,
            deleted.len()
        );
        Ok(deleted)
    }

    /// The checklist from one HGETALL.
    pub fn preflight(&self, rules: &Rules, explain: bool) -> CoreResult<Preflight> {
        let hash = self.hgetall()?;
        Ok(preflight::evaluate(rules, &hash, explain))
    }
}
