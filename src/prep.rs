//! The Redis side of a run: the legacy hash API (one hash per run,
//! fields `timestamps:`, `attrs:`, `rq:`, `archive:`; docs/COMPATIBILITY.md). Writes go
//! through [`crate::write`]; invalidation through [`crate::invalidate`].
//! Every operation takes the backend once, at its start.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use redis::Value;

use crate::backend::{self, Backend};
use crate::dump::{self, RunDir};
use crate::errors::CoreResult;
use crate::fields;
use crate::mutation::{Mutation, Outcome, Snapshot, LOADED};
use crate::paths;
use crate::preflight::{self, Preflight};
use crate::rules::{Rules, RunVars};
use crate::value;

/// A run's prep state: the core behind Python's `RedisPrep`.
#[derive(Debug)]
pub struct Prep {
    pub wd: String,
    pub run_id: String,
    /// Absolute normalised folder: the `{wd}` placeholder value.
    pub abs_wd: String,
    pub(crate) last: Mutex<Option<Snapshot>>,
}

/// Seconds since the epoch, like `int(time.time())`.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
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

    /// The Redis key of this run's hash on the backend in force: the run id
    /// (standalone, legacy) or `prep:{<run_id>}` (cluster layout).
    pub fn hash_key(&self) -> CoreResult<String> {
        Ok(backend::current()?.hash_key(&self.run_id))
    }

    /// `<wd>/redisprep.dump`, as `os.path.join` builds it.
    pub fn dump_filepath(&self) -> String {
        paths::join(&self.wd, dump::DUMP_NAME)
    }

    fn has_dump(&self) -> bool {
        std::path::Path::new(&self.dump_filepath()).exists()
    }

    fn set_loaded(&self, b: &Backend) -> CoreResult<()> {
        let m = Mutation {
            sets: vec![(LOADED.to_string(), "true".to_string())],
            ..Mutation::default()
        };
        self.write(b, m)?.replicated().map(|_| ())
    }

    /// The constructor's side effect: without a dump file, set `attrs:loaded`.
    pub fn init(&self) -> CoreResult<()> {
        if !self.has_dump() {
            self.set_loaded(&*backend::current()?)?;
        }
        Ok(())
    }

    /// `getInstance`: the constructor's side effect, then `lazy_load`, in as
    /// few round trips as legacy allows (without a dump, `init` sets loaded
    /// and `lazy_load` would then find it true).
    pub fn open(&self) -> CoreResult<()> {
        let b = backend::current()?;
        if self.has_dump() {
            self.load(&b)
        } else {
            self.set_loaded(&b)
        }
    }

    /// Legacy `lazy_load`: if not loaded, load the dump (if any) into the hash.
    pub fn lazy_load(&self) -> CoreResult<()> {
        self.load(&*backend::current()?)
    }

    fn load(&self, b: &Backend) -> CoreResult<()> {
        let key = b.hash_key(&self.run_id);
        let v = b.run(|c| redis::cmd("HGET").arg(&*key).arg(LOADED).query::<Value>(c))?;
        if fields::is_true(value::opt_string(&v)?.as_deref()) {
            return Ok(());
        }
        let path = PathBuf::from(self.dump_filepath());
        let Some(pairs) = dump::read_dump_settled(&path)? else {
            return Ok(());
        };
        // one HSET (atomic on its own): the dump's fields in order, then `attrs:loaded`
        match b.load_fields(&key, &pairs)? {
            Some(shortfall) => Err(shortfall.into_error()),
            None => Ok(()),
        }
    }

    /// HGET one field.
    pub fn hget(&self, field: &str) -> CoreResult<Option<String>> {
        let b = backend::current()?;
        let key = b.hash_key(&self.run_id);
        let v = b.run(|c| redis::cmd("HGET").arg(&*key).arg(field).query::<Value>(c))?;
        value::opt_string(&v)
    }

    /// HMGET several fields in one round trip.
    pub fn hmget(&self, fields: &[String]) -> CoreResult<Vec<Option<String>>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        let b = backend::current()?;
        let key = b.hash_key(&self.run_id);
        let v = b.run(|c| redis::cmd("HMGET").arg(&*key).arg(fields).query::<Value>(c))?;
        value::opt_strings(&v)
    }

    /// HGETALL, in Redis order.
    pub fn hgetall(&self) -> CoreResult<Vec<(String, String)>> {
        self.hgetall_on(&*backend::current()?)
    }

    fn hgetall_on(&self, b: &Backend) -> CoreResult<Vec<(String, String)>> {
        let key = b.hash_key(&self.run_id);
        let v = b.run(|c| redis::cmd("HGETALL").arg(&*key).query::<Value>(c))?;
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

    /// Apply a mutation in one round trip, then write the dump (see [`Prep::write`]).
    ///
    /// With `min_replicas` set, a write that too few replicas acknowledged is
    /// still dumped, then reported as `CoreError::Replication`.
    pub fn mutate(&self, m: Mutation) -> CoreResult<Outcome> {
        self.write(&*backend::current()?, m)?.replicated()
    }

    /// The last hash snapshot this instance read in a transaction.
    pub fn last_snapshot(&self) -> Option<Snapshot> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The checklist of the hash this instance's last write read, with the
    /// rules in force; `None` before any write or without valid rules.
    pub fn last_preflight(&self) -> Option<Preflight> {
        let hash = self.last_snapshot()?;
        let rules = crate::rules::active()?;
        Some(preflight::evaluate(&rules, &hash, false))
    }

    /// Legacy `dump()`: HGETALL, drop `locked:*`, write if the folder exists.
    pub fn dump(&self) -> CoreResult<()> {
        let b = backend::current()?;
        let run_dir = RunDir::open_locked(&self.wd)?;
        let hash = self.hgetall_on(&b)?;
        if let Some(dir) = run_dir {
            dir.write_hash(&hash, b.common().fsync)?;
        }
        Ok(())
    }

    /// The checklist from one HGETALL.
    pub fn preflight(&self, rules: &Rules, explain: bool) -> CoreResult<Preflight> {
        let hash = self.hgetall()?;
        Ok(preflight::evaluate(rules, &hash, explain))
    }
}
