//! The backend: one value for the layout in force (standalone or cluster),
//! built once from [`Settings`]. Every operation takes it once at its start
//! ([`current`]: one lock, one `Arc` clone) and uses it throughout, so a
//! `configure()` from another thread never switches the layout mid-call.
//!
//! The backend applies the key layout in force ([`Layout`] names the keys),
//! executes a write, the cache deletes and SCANs, and holds the write
//! options. No other core module matches on the layout in force.

mod cluster;
mod conn;
mod info;
mod lua;
mod pool;
mod probe;
mod standalone;

use std::sync::{Arc, Mutex};

use redis::{ConnectionLike, RedisResult, Value};

use crate::errors::{CoreError, CoreResult};
use crate::layout::Layout;
use crate::mutation::{Mutation, LOADED};
use crate::replication::{Replication, Shortfall};
use crate::rules::template::glob_escape;
use crate::rules::KeyPlan;
use crate::settings::{Common, Options, Settings, Target};
use crate::stats;
use crate::value;

pub use cluster::Cluster;
pub use info::{Info, Params};
pub use probe::Probe;
pub use standalone::Standalone;

use lua::{script, HSETNX_LUA, HSETNX_SCRIPT};

/// The layout in force, with its settings, client and connection pool.
pub enum Backend {
    Standalone(Standalone),
    Cluster(Cluster),
}

/// What one write transaction returned: had `attrs:loaded`, keys deleted,
/// the hash after the write, and whether too few replicas acknowledged it.
pub(crate) struct Applied {
    pub had_loaded: bool,
    pub deleted: Vec<String>,
    pub hash: Vec<(String, String)>,
    pub shortfall: Option<Shortfall>,
}

/// The hash after a recovery, and whether too few replicas acknowledged it.
pub(crate) type Restored = (Vec<(String, String)>, Option<Shortfall>);

fn check(repl: &Replication, wait: Option<Value>) -> CoreResult<Option<Shortfall>> {
    match wait {
        Some(w) => repl.check(&w),
        None => Ok(None),
    }
}

/// The keys whose `DEL` reply says they existed (in `keys` order), counted
/// in `keys_deleted`: every cache delete of every layout ends here.
pub(crate) fn existed(keys: &[String], replies: &[Value]) -> CoreResult<Vec<String>> {
    let mut out = Vec::new();
    for (k, r) in keys.iter().zip(replies) {
        if value::int(r)? > 0 {
            out.push(k.clone());
        }
    }
    stats::KEYS_DELETED.add(out.len() as u64);
    Ok(out)
}

impl Backend {
    /// Build the backend `settings` describe (no connection is made yet).
    pub fn open(settings: Settings) -> CoreResult<Backend> {
        let Settings { common, target } = settings;
        Ok(match target {
            Target::Standalone(t) => Backend::Standalone(Standalone::open(t, common)?),
            Target::Cluster(t) => Backend::Cluster(Cluster::open(t, common)?),
        })
    }

    /// The settings both layouts share (timeouts, retries, fsync, events, replication).
    pub fn common(&self) -> &Common {
        match self {
            Backend::Standalone(s) => &s.common,
            Backend::Cluster(c) => &c.common,
        }
    }

    /// The key layout of this backend.
    pub fn layout(&self) -> Layout {
        match self {
            Backend::Standalone(_) => Layout::Standalone,
            Backend::Cluster(_) => Layout::Cluster,
        }
    }

    /// The Redis key of a run's hash (see [`Layout::hash_key`]).
    pub fn hash_key(&self, run_id: &str) -> String {
        self.layout().hash_key(run_id)
    }

    /// Cache keys as they are in Redis (see [`Layout::cache_key`]).
    pub fn localise_keys(&self, run_id: &str, keys: &mut [String]) {
        let layout = self.layout();
        if layout != Layout::Standalone {
            for k in keys {
                *k = layout.cache_key(run_id, k);
            }
        }
    }

    /// [`Backend::localise_keys`] for plans (keys and SCAN patterns, whose
    /// run id is glob-escaped).
    pub fn localise(&self, run_id: &str, mut plans: Vec<KeyPlan>) -> Vec<KeyPlan> {
        let layout = self.layout();
        if layout != Layout::Standalone {
            let escaped = glob_escape(run_id);
            for p in &mut plans {
                self.localise_keys(run_id, &mut p.keys);
                for k in &mut p.patterns {
                    *k = layout.cache_key(&escaped, k);
                }
            }
        }
        plans
    }

    /// Refuse a cache DB that is the prep DB (standalone). The cluster has one
    /// keyspace where cache keys carry their own prefix, so it is not concerned.
    pub fn check_cache_db(&self, db: i64) -> CoreResult<()> {
        match self {
            Backend::Standalone(s) => s.check_cache_db(db),
            Backend::Cluster(_) => Ok(()),
        }
    }

    /// Run `f` (a read) on a pooled connection.
    pub(crate) fn run<T>(
        &self,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
    ) -> CoreResult<T> {
        match self {
            Backend::Standalone(s) => s.with_conn(|c| f(c)),
            Backend::Cluster(c) => c.with_conn(|conn| f(conn)),
        }
    }

    /// Run the write `f` and, when replication is on, `WAIT` behind it on the
    /// same connection (on the cluster: on the master of `key`'s slot).
    fn write_then_wait(
        &self,
        key: &str,
        f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<Value>,
    ) -> CoreResult<(Value, Option<Shortfall>)> {
        match self {
            Backend::Standalone(s) => s.write_then_wait(f),
            Backend::Cluster(c) => c.write_then_wait(key, f),
        }
    }

    /// Apply `m` to the run's hash `key` in one round trip.
    pub(crate) fn apply(&self, key: &str, m: &Mutation) -> CoreResult<Applied> {
        match self {
            Backend::Standalone(s) => s.apply(key, m),
            Backend::Cluster(c) => c.apply(key, m),
        }
    }

    /// Put back `missing` fields with HSETNX (never over a value someone wrote
    /// since) and set `attrs:loaded`; returns the hash after it.
    pub(crate) fn restore_missing(
        &self,
        key: &str,
        missing: &[&(String, String)],
    ) -> CoreResult<Restored> {
        let (v, shortfall) = self.write_then_wait(key, |c| {
            let mut inv = script(HSETNX_LUA, &HSETNX_SCRIPT).key(key);
            for (k, v) in missing {
                inv.arg(k).arg(v);
            }
            inv.arg(LOADED).arg("true");
            inv.invoke::<Value>(c)
        })?;
        Ok((value::pairs(&v)?, shortfall))
    }

    /// One HSET (atomic on its own) of `pairs`, then `attrs:loaded`: the lazy load.
    pub(crate) fn load_fields(
        &self,
        key: &str,
        pairs: &[(String, String)],
    ) -> CoreResult<Option<Shortfall>> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (k, v) in pairs {
            cmd.arg(k).arg(v);
        }
        cmd.arg(LOADED).arg("true");
        Ok(self.write_then_wait(key, |c| cmd.query::<Value>(c))?.1)
    }

    /// DEL each key in `db` in one round trip; returns the keys that existed.
    pub(crate) fn delete_keys(
        &self,
        db: i64,
        keys: &[String],
    ) -> CoreResult<(Vec<String>, Option<Shortfall>)> {
        if keys.is_empty() {
            return Ok((Vec::new(), None));
        }
        self.check_cache_db(db)?;
        let (results, shortfall) = match self {
            Backend::Standalone(s) => s.delete_keys(db, keys)?,
            Backend::Cluster(c) => c.delete_keys(keys)?,
        };
        Ok((existed(keys, &results)?, shortfall))
    }

    /// SCAN `db` for each pattern (never KEYS) and delete the matches.
    pub(crate) fn scan_delete(
        &self,
        db: i64,
        patterns: &[String],
    ) -> CoreResult<(Vec<String>, Option<Shortfall>)> {
        match self {
            Backend::Standalone(s) => {
                s.check_cache_db(db)?;
                let found = s.scan(db, patterns)?;
                self.delete_keys(db, &found)
            }
            Backend::Cluster(_) => Err(CoreError::Config(
                "pattern templates are not supported on the cluster layout (use exact keys)".into(),
            )),
        }
    }
}

struct State {
    options: Option<Options>,
    current: Option<Arc<Backend>>,
}

static STATE: Mutex<State> = Mutex::new(State {
    options: None,
    current: None,
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The backend in force (resolved from the configured options and the
/// environment on first use).
pub fn current() -> CoreResult<Arc<Backend>> {
    let mut s = state();
    if let Some(b) = &s.current {
        return Ok(b.clone());
    }
    let options = s.options.clone().unwrap_or_default();
    let b = Arc::new(Backend::open(Settings::resolve(&options)?)?);
    s.current = Some(b.clone());
    Ok(b)
}

/// Replace the configuration. A refused one changes nothing; otherwise idle
/// connections are closed (with the old backend) and new calls use the new one.
pub fn configure(o: Options) -> CoreResult<Arc<Backend>> {
    let b = Arc::new(Backend::open(Settings::resolve(&o)?)?);
    let mut s = state();
    s.options = Some(o);
    s.current = Some(b.clone());
    Ok(b)
}

/// Drop the backend (and its idle connections): the next call re-reads the
/// environment, keeping the options given to [`configure`].
pub fn reset() {
    let old = state().current.take();
    drop(old);
}

/// The redis-py parameters for `o` (resolved like `configure(**o)`, with the
/// environment, but nothing is switched): e.g. `migrate-layout --from URL`.
pub fn params_for(o: &Options) -> CoreResult<Params> {
    Ok(info::params(&Settings::resolve(o)?))
}
