//! The Redis side of a run: legacy hash layout (SPEC section 2) plus the
//! one-round-trip "timestamp + invalidate + read back" transaction.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redis::{ConnectionLike, Value};

use crate::cluster;
use crate::conn;
use crate::dump::{self, RunDir};
use crate::errors::{CoreError, CoreResult};
use crate::event;
use crate::paths;
use crate::preflight::{self, Preflight};
use crate::rules::{self, KeyPlan, Rules, RunVars};
use crate::stats;
use crate::value;

/// Hash field of the "loaded" flag.
pub const LOADED: &str = "attrs:loaded";

/// What one write transaction returned: had `attrs:loaded`, keys deleted, the hash.
type Applied = (bool, Vec<String>, Vec<(String, String)>);

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

/// Run `f` on a pooled connection of the layout in force.
fn run<T>(mut f: impl FnMut(&mut dyn ConnectionLike) -> redis::RedisResult<T>) -> CoreResult<T> {
    if cluster::enabled() {
        cluster::with_conn(|c| f(c))
    } else {
        conn::with_conn(|c| f(c))
    }
}

/// `(fsync, events, events_channel)` of the layout in force.
fn write_options() -> CoreResult<(bool, bool, String)> {
    if cluster::enabled() {
        let s = cluster::settings()?;
        Ok((s.fsync, s.events, s.events_channel.clone()))
    } else {
        let s = conn::settings()?;
        Ok((s.fsync, s.events, s.events_channel.clone()))
    }
}

/// Refuse a cache DB that is the prep DB: a rules file must never be able to
/// delete prep hashes (or NoDb locks) there. The cluster layout has one
/// keyspace where cache keys carry their own prefix, so it is not concerned.
fn check_cache_db(db: i64) -> CoreResult<()> {
    if cluster::enabled() {
        return Ok(());
    }
    let prep_db = conn::settings()?.prep_db;
    if db == prep_db {
        return Err(CoreError::Config(format!(
            "the rules' cache db {db} is the prep DB: refusing to delete keys there"
        )));
    }
    Ok(())
}

fn script(
    src: &'static str,
    cell: &'static std::sync::OnceLock<redis::Script>,
) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(src))
}

static MUTATE_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static HSETNX_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();
static DEL_SCRIPT: std::sync::OnceLock<redis::Script> = std::sync::OnceLock::new();

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
        let Some(pairs) = dump::read_dump(&path)? else {
            return Ok(());
        };
        // one HSET (atomic on its own): the dump's fields in order, then `attrs:loaded`
        let key = self.hash_key();
        run(|c| {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&*key);
            for (k, v) in &pairs {
                cmd.arg(k).arg(v);
            }
            cmd.arg(LOADED).arg("true");
            cmd.query::<Value>(c)
        })?;
        Ok(())
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
    pub fn mutate(&self, m: Mutation) -> CoreResult<Outcome> {
        let run_dir = RunDir::open_locked(&self.wd)?;
        let (had_loaded, deleted, hash) = if cluster::enabled() {
            self.exec_cluster(&m)?
        } else {
            self.exec_standalone(&m)?
        };
        let mut hash = hash;
        let mut recovered = false;
        if !had_loaded && run_dir.is_some() {
            if let Some(merged) = self.recover(&m, &hash)? {
                hash = merged;
                recovered = true;
            }
        }
        if !deleted.is_empty() {
            stats::KEYS_DELETED.add(deleted.len() as u64);
        }
        if let Some(dir) = &run_dir {
            dir.write_dump(
                hash.iter()
                    .filter(|(k, _)| !k.starts_with("locked:"))
                    .map(|(k, v)| (k.as_str(), v.as_str())),
                write_options()?.0,
            )?;
            stats::DUMPS_WRITTEN.incr();
        }
        let hash = Arc::new(hash);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.clone());
        Ok(Outcome {
            hash,
            deleted,
            recovered,
        })
    }

    /// MULTI; HEXISTS loaded; HSET; HDEL; SELECT cache; DEL...; SELECT prep; PUBLISH; HGETALL; EXEC.
    fn exec_standalone(&self, m: &Mutation) -> CoreResult<Applied> {
        let prep_db = conn::settings()?.prep_db;
        let replies: Vec<Value> = conn::with_conn(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("HEXISTS").arg(&self.run_id).arg(LOADED);
            if !m.sets.is_empty() {
                let cmd = p.cmd("HSET").arg(&self.run_id);
                for (k, v) in &m.sets {
                    cmd.arg(k).arg(v);
                }
            }
            if !m.dels.is_empty() {
                p.cmd("HDEL").arg(&self.run_id).arg(&m.dels);
            }
            if !m.cache_keys.is_empty() {
                p.cmd("SELECT").arg(m.cache_db);
                for k in &m.cache_keys {
                    p.cmd("DEL").arg(k);
                }
                p.cmd("SELECT").arg(prep_db);
            }
            if let Some(ev) = &m.event {
                p.cmd("EVAL")
                    .arg(event::PUBLISH_LUA)
                    .arg(1)
                    .arg(&self.run_id)
                    .arg(&ev.channel)
                    .arg(&ev.payload)
                    .arg(&ev.checks);
            }
            p.cmd("HGETALL").arg(&self.run_id);
            p.query::<Vec<Value>>(c)
        })?;
        let had_loaded = value::int(value::nth(&replies, 0)?)? == 1;
        let mut idx = 1 + usize::from(!m.sets.is_empty()) + usize::from(!m.dels.is_empty());
        let mut deleted = Vec::new();
        if !m.cache_keys.is_empty() {
            idx += 1;
            for k in &m.cache_keys {
                if value::int(value::nth(&replies, idx)?)? > 0 {
                    deleted.push(k.clone());
                }
                idx += 1;
            }
            idx += 1;
        }
        if m.event.is_some() {
            idx += 1;
        }
        let hash = value::pairs(value::nth(&replies, idx)?)?;
        Ok((had_loaded, deleted, hash))
    }

    /// The same write as one Lua script declaring every key (one slot).
    fn exec_cluster(&self, m: &Mutation) -> CoreResult<Applied> {
        let key = self.hash_key();
        let reply: Value = run(|c| {
            let mut inv = script(cluster::MUTATE_LUA, &MUTATE_SCRIPT).key(&*key);
            for k in &m.cache_keys {
                inv.key(k);
            }
            inv.arg(m.sets.len());
            for (f, v) in &m.sets {
                inv.arg(f).arg(v);
            }
            inv.arg(m.dels.len());
            for f in &m.dels {
                inv.arg(f);
            }
            match &m.event {
                Some(ev) => inv.arg(&ev.channel).arg(&ev.payload).arg(&ev.checks),
                None => inv.arg("").arg("").arg(""),
            };
            inv.invoke::<Value>(c)
        })?;
        let Value::Array(parts) = reply else {
            return Err(CoreError::Data("unexpected script reply".into()));
        };
        let had_loaded = value::int(value::nth(&parts, 0)?)? == 1;
        let mut deleted = Vec::new();
        if let Value::Array(dels) = value::nth(&parts, 1)? {
            for (k, r) in m.cache_keys.iter().zip(dels) {
                if value::int(r)? > 0 {
                    deleted.push(k.clone());
                }
            }
        }
        let hash = value::pairs(value::nth(&parts, 2)?)?;
        Ok((had_loaded, deleted, hash))
    }

    /// The hash lost `attrs:loaded` (e.g. Redis restarted empty): put back every
    /// dump field that the hash lacks and this mutation did not delete.
    fn recover(
        &self,
        m: &Mutation,
        hash: &[(String, String)],
    ) -> CoreResult<Option<Vec<(String, String)>>> {
        let path = PathBuf::from(self.dump_filepath());
        let dumped = match dump::read_dump(&path) {
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
        let key = self.hash_key();
        let v: Value = run(|c| {
            let mut inv = script(cluster::HSETNX_LUA, &HSETNX_SCRIPT).key(&*key);
            for (k, v) in &missing {
                inv.arg(k).arg(v);
            }
            inv.arg(LOADED).arg("true");
            inv.invoke::<Value>(c)
        })?;
        value::pairs(&v).map(Some)
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
                write_options()?.0,
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
        let (_, events, channel) = write_options()?;
        if !events {
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
            channel,
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
            if let Err(e) = check_cache_db(r.db) {
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
        let mut out = self.mutate(Mutation {
            sets: vec![(format!("timestamps:{task}"), ts.to_string())],
            cache_keys: keys,
            cache_db: db,
            event,
            ..Mutation::default()
        })?;
        stats::TIMESTAMPS.incr();
        if !patterns.is_empty() {
            let more = scan_delete(db, &patterns)?;
            stats::KEYS_DELETED.add(more.len() as u64);
            out.deleted.extend(more);
        }
        if active.is_some() {
            stats::INVALIDATIONS.incr();
            log::debug!(
                "redisprep: invalidated run={:?} task={task:?} keys_deleted={}",
                self.run_id,
                out.deleted.len()
            );
        }
        Ok(out)
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
        let mut deleted = delete_keys(db, &keys)?;
        if !patterns.is_empty() {
            deleted.extend(scan_delete(db, &patterns)?);
        }
        stats::KEYS_DELETED.add(deleted.len() as u64);
        Ok(deleted)
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

/// DEL each key in `db` in one transaction; returns the keys that existed.
pub fn delete_keys(db: i64, keys: &[String]) -> CoreResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    check_cache_db(db)?;
    if cluster::enabled() {
        // one run's keys share a hash tag: one slot, one script
        let reply: Value = run(|c| {
            let mut inv = script(cluster::DEL_LUA, &DEL_SCRIPT).prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            inv.invoke::<Value>(c)
        })?;
        let Value::Array(results) = reply else {
            return Err(CoreError::Data("unexpected script reply".into()));
        };
        let mut out = Vec::new();
        for (k, r) in keys.iter().zip(results.iter()) {
            if value::int(r)? > 0 {
                out.push(k.clone());
            }
        }
        return Ok(out);
    }
    let prep_db = conn::settings()?.prep_db;
    let replies: Vec<Value> = conn::with_conn(|c| {
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("SELECT").arg(db).ignore();
        for k in keys {
            p.cmd("DEL").arg(k);
        }
        p.cmd("SELECT").arg(prep_db).ignore();
        p.query::<Vec<Value>>(c)
    })?;
    let mut out = Vec::new();
    for (k, r) in keys.iter().zip(replies.iter()) {
        if value::int(r)? > 0 {
            out.push(k.clone());
        }
    }
    Ok(out)
}

/// SCAN `db` for each pattern (never KEYS) and delete the matches.
pub fn scan_delete(db: i64, patterns: &[String]) -> CoreResult<Vec<String>> {
    if cluster::enabled() {
        return Err(CoreError::Config(
            "pattern templates are not supported on the cluster layout (use exact keys)".into(),
        ));
    }
    check_cache_db(db)?;
    let prep_db = conn::settings()?.prep_db;
    let mut found: Vec<String> = Vec::new();
    for pattern in patterns {
        let mut cursor: u64 = 0;
        loop {
            let reply: Value = conn::with_conn(|c| {
                let mut p = redis::pipe();
                p.cmd("SELECT").arg(db).ignore();
                p.cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000);
                p.cmd("SELECT").arg(prep_db).ignore();
                p.query::<Vec<Value>>(c)
                    .map(|mut v| v.pop().unwrap_or(Value::Nil))
            })?;
            let Value::Array(parts) = reply else {
                return Err(CoreError::Data("unexpected SCAN reply".to_string()));
            };
            let next = parts
                .first()
                .and_then(|v| value::opt_string(v).ok().flatten())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| CoreError::Data("unexpected SCAN cursor".to_string()))?;
            if let Some(Value::Array(keys)) = parts.get(1) {
                for k in keys {
                    if let Some(k) = value::opt_string(k)? {
                        if !found.contains(&k) {
                            found.push(k);
                        }
                    }
                }
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    delete_keys(db, &found)
}
