//! The layout executors: how a write reaches Redis on the standalone layout
//! (one MULTI/EXEC transaction) and on the cluster layout (one Lua script on
//! the run's slot), each followed by `WAIT` when replicated acknowledgement
//! is on (see [`crate::replication`]). Layout-specific write logic lives here.

use std::sync::OnceLock;

use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionLike, RedisResult, Value};

use crate::cluster;
use crate::conn;
use crate::errors::{CoreError, CoreResult};
use crate::event;
use crate::prep::{Mutation, LOADED};
use crate::replication::{Replication, Shortfall};
use crate::stats;
use crate::value;

/// What one write transaction returned: had `attrs:loaded`, keys deleted,
/// the hash after the write, and whether too few replicas acknowledged it.
pub(crate) struct Applied {
    pub had_loaded: bool,
    pub deleted: Vec<String>,
    pub hash: Vec<(String, String)>,
    pub shortfall: Option<Shortfall>,
}

/// Options a write takes from the layout in force.
pub(crate) struct WriteOptions {
    pub fsync: bool,
    pub events: bool,
    pub events_channel: String,
}

/// The write options of the layout in force.
pub(crate) fn write_options() -> CoreResult<WriteOptions> {
    if cluster::enabled() {
        let s = cluster::settings()?;
        Ok(WriteOptions {
            fsync: s.fsync,
            events: s.events,
            events_channel: s.events_channel.clone(),
        })
    } else {
        let s = conn::settings()?;
        Ok(WriteOptions {
            fsync: s.fsync,
            events: s.events,
            events_channel: s.events_channel.clone(),
        })
    }
}

/// Run `f` (a read) on a pooled connection of the layout in force.
pub(crate) fn run<T>(
    mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<T>,
) -> CoreResult<T> {
    if cluster::enabled() {
        cluster::with_conn(|c| f(c))
    } else {
        conn::with_conn(|c| f(c))
    }
}

/// Refuse a cache DB that is the prep DB: a rules file must never be able to
/// delete prep hashes (or NoDb locks) there. The cluster layout has one
/// keyspace where cache keys carry their own prefix, so it is not concerned.
pub(crate) fn check_cache_db(db: i64) -> CoreResult<()> {
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

fn script(src: &'static str, cell: &'static OnceLock<redis::Script>) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(src))
}

static MUTATE_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
static HSETNX_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
static DEL_SCRIPT: OnceLock<redis::Script> = OnceLock::new();

/// The master that serves `key`'s slot: where the script just ran, on the
/// same per-node connection.
fn master_of(key: &str) -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
        key.as_bytes(),
        SlotAddr::Master,
    )))
}

fn check(repl: &Replication, wait: Option<Value>) -> CoreResult<Option<Shortfall>> {
    match wait {
        Some(w) => repl.check(&w),
        None => Ok(None),
    }
}

/// Run the write `f` and, when replication is on, `WAIT` behind it on the
/// same connection (a second round trip). The cluster layout sends `WAIT` to
/// the master of `key`'s slot. Used for the cluster's scripts and for the
/// rare standalone writes outside a transaction (lazy load, recovery).
pub(crate) fn write_then_wait(
    key: &str,
    mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<Value>,
) -> CoreResult<(Value, Option<Shortfall>)> {
    let (repl, (v, w)) = if cluster::enabled() {
        let repl = cluster::settings()?.replication;
        let route = master_of(key);
        let out = cluster::with_conn(|c| {
            let v = f(c)?;
            let w = match repl.wait_cmd() {
                Some(cmd) => {
                    stats::ROUND_TRIPS.incr();
                    Some(c.route_command(&cmd, route.clone())?)
                }
                None => None,
            };
            Ok((v, w))
        })?;
        (repl, out)
    } else {
        let repl = conn::settings()?.replication;
        let out = conn::with_conn(|c| {
            let v = f(c)?;
            let w = match repl.wait_cmd() {
                Some(cmd) => {
                    stats::ROUND_TRIPS.incr();
                    Some(cmd.query::<Value>(c)?)
                }
                None => None,
            };
            Ok((v, w))
        })?;
        (repl, out)
    };
    Ok((v, check(&repl, w)?))
}

fn exec_failed(detail: &'static str) -> redis::RedisError {
    (redis::ErrorKind::UnexpectedReturnType, detail).into()
}

/// Send the atomic pipeline `p`; with replication on, `WAIT` goes right
/// behind its EXEC in the same write, so the whole request stays one round
/// trip. Returns EXEC's replies (no `ignore()`d commands in `p`) and WAIT's.
fn transact(
    c: &mut conn::Conn,
    p: &redis::Pipeline,
    repl: &Replication,
) -> RedisResult<(Vec<Value>, Option<Value>)> {
    let Some(wait) = repl.wait_cmd() else {
        return Ok((p.query::<Vec<Value>>(c)?, None));
    };
    let mut packed = p.get_packed_pipeline();
    packed.extend_from_slice(&wait.get_packed_command());
    // skip MULTI's OK and one QUEUED per command; keep EXEC's and WAIT's replies
    let mut replies = c.req_packed_commands(&packed, p.len() + 1, 2)?;
    let wait_reply = replies.pop();
    match replies.pop() {
        Some(Value::Array(items)) => {
            if let Some(e) = items.iter().find_map(|v| match v {
                Value::ServerError(e) => Some(e.clone()),
                _ => None,
            }) {
                return Err(e.into());
            }
            Ok((items, wait_reply))
        }
        Some(Value::ServerError(e)) => Err(e.into()),
        _ => Err(exec_failed("the transaction was not executed")),
    }
}

/// Apply `m` to the run's hash `key` on the layout in force.
pub(crate) fn apply(key: &str, m: &Mutation) -> CoreResult<Applied> {
    if cluster::enabled() {
        apply_cluster(key, m)
    } else {
        apply_standalone(key, m)
    }
}

/// MULTI; HEXISTS loaded; HSET; HDEL; SELECT cache; DEL...; SELECT prep;
/// PUBLISH; HGETALL; EXEC (then WAIT, in the same write).
fn apply_standalone(key: &str, m: &Mutation) -> CoreResult<Applied> {
    let s = conn::settings()?;
    let prep_db = s.prep_db;
    let mut p = redis::pipe();
    p.atomic();
    p.cmd("HEXISTS").arg(key).arg(LOADED);
    if !m.sets.is_empty() {
        let cmd = p.cmd("HSET").arg(key);
        for (k, v) in &m.sets {
            cmd.arg(k).arg(v);
        }
    }
    if !m.dels.is_empty() {
        p.cmd("HDEL").arg(key).arg(&m.dels);
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
            .arg(key)
            .arg(&ev.channel)
            .arg(&ev.payload)
            .arg(&ev.checks);
    }
    p.cmd("HGETALL").arg(key);
    let (replies, wait) = conn::with_conn(|c| transact(c, &p, &s.replication))?;
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
    Ok(Applied {
        had_loaded,
        deleted,
        hash,
        shortfall: check(&s.replication, wait)?,
    })
}

/// The same write as one Lua script declaring every key (one slot).
fn apply_cluster(key: &str, m: &Mutation) -> CoreResult<Applied> {
    let (reply, shortfall) = write_then_wait(key, |c| {
        let mut inv = script(cluster::MUTATE_LUA, &MUTATE_SCRIPT).key(key);
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
    Ok(Applied {
        had_loaded,
        deleted,
        hash,
        shortfall,
    })
}

/// The hash after a recovery, and whether too few replicas acknowledged it.
pub(crate) type Restored = (Vec<(String, String)>, Option<Shortfall>);

/// Put back `missing` fields with HSETNX (never over a value someone wrote
/// since) and set `attrs:loaded`; returns the hash after it.
pub(crate) fn restore_missing(key: &str, missing: &[&(String, String)]) -> CoreResult<Restored> {
    let (v, shortfall) = write_then_wait(key, |c| {
        let mut inv = script(cluster::HSETNX_LUA, &HSETNX_SCRIPT).key(key);
        for (k, v) in missing {
            inv.arg(k).arg(v);
        }
        inv.arg(LOADED).arg("true");
        inv.invoke::<Value>(c)
    })?;
    Ok((value::pairs(&v)?, shortfall))
}

/// One HSET (atomic on its own) of `pairs`, then `attrs:loaded`: the lazy load.
pub(crate) fn load_fields(key: &str, pairs: &[(String, String)]) -> CoreResult<Option<Shortfall>> {
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key);
    for (k, v) in pairs {
        cmd.arg(k).arg(v);
    }
    cmd.arg(LOADED).arg("true");
    Ok(write_then_wait(key, |c| cmd.query::<Value>(c))?.1)
}

/// DEL each key in `db` in one transaction; returns the keys that existed.
/// On the cluster all keys are one run's (one hash tag, one slot): one script.
pub(crate) fn delete_keys(
    db: i64,
    keys: &[String],
) -> CoreResult<(Vec<String>, Option<Shortfall>)> {
    if keys.is_empty() {
        return Ok((Vec::new(), None));
    }
    check_cache_db(db)?;
    let (results, shortfall) = if cluster::enabled() {
        let (reply, shortfall) = write_then_wait(&keys[0], |c| {
            let mut inv = script(cluster::DEL_LUA, &DEL_SCRIPT).prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            inv.invoke::<Value>(c)
        })?;
        let Value::Array(results) = reply else {
            return Err(CoreError::Data("unexpected script reply".into()));
        };
        (results, shortfall)
    } else {
        let s = conn::settings()?;
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("SELECT").arg(db);
        for k in keys {
            p.cmd("DEL").arg(k);
        }
        p.cmd("SELECT").arg(s.prep_db);
        let (mut replies, wait) = conn::with_conn(|c| transact(c, &p, &s.replication))?;
        // drop the two SELECT replies
        replies.pop();
        if !replies.is_empty() {
            replies.remove(0);
        }
        (replies, check(&s.replication, wait)?)
    };
    let mut out = Vec::new();
    for (k, r) in keys.iter().zip(results.iter()) {
        if value::int(r)? > 0 {
            out.push(k.clone());
        }
    }
    Ok((out, shortfall))
}

/// SCAN `db` for each pattern (never KEYS) and delete the matches.
pub(crate) fn scan_delete(
    db: i64,
    patterns: &[String],
) -> CoreResult<(Vec<String>, Option<Shortfall>)> {
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
