//! The standalone layout (wepppy's): the prep hash under the run id in the
//! prep DB, caches in the rules' DB, one write = one MULTI/EXEC transaction
//! (with `WAIT` right behind its EXEC when replicated acknowledgement is on).

use redis::{ConnectionLike, RedisResult, Value};

use crate::errors::{CoreError, CoreResult};
use crate::event;
use crate::mutation::{Mutation, LOADED};
use crate::replication::{Replication, Shortfall};
use crate::settings::{Common, StandaloneTarget};
use crate::value;

use super::conn::{self, Conn};
use super::pool::{self, Pool};
use super::{check, existed, Applied};

const MAX_IDLE: usize = 32;

/// A standalone server: its settings, client and idle connections.
pub struct Standalone {
    pub target: StandaloneTarget,
    pub common: Common,
    client: redis::Client,
    /// How many handshake replies redis-rs reads (0, 1 or 2), see [`conn::connect`].
    handshake_replies: u32,
    pool: Pool<Conn>,
}

impl Standalone {
    pub(crate) fn open(target: StandaloneTarget, common: Common) -> CoreResult<Standalone> {
        let rs = target.info.redis_settings();
        // Replies redis-rs waits for in its handshake: HELLO or AUTH, then SELECT.
        let handshake_replies =
            u32::from(rs.password().is_some() || rs.protocol().supports_resp3())
                + u32::from(target.prep_db != 0);
        let info = target.info.clone();
        let client = match &target.tls_ca {
            Some((_, pem)) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
            None => redis::Client::open(info),
        }
        .map_err(|e| CoreError::Config(crate::errors::redact(&e.to_string())))?;
        Ok(Standalone {
            target,
            common,
            client,
            handshake_replies,
            pool: Pool::new(MAX_IDLE),
        })
    }

    /// Run `f` on a pooled connection (see [`pool::with_conn`]).
    pub(crate) fn with_conn<T>(&self, f: impl FnMut(&mut Conn) -> RedisResult<T>) -> CoreResult<T> {
        let connect = || {
            conn::connect(
                &self.client,
                self.handshake_replies,
                &self.common,
                &self.target.addr,
            )
        };
        pool::with_conn(&self.pool, &self.common, &self.target.addr, connect, f)
    }

    /// Refuse a cache DB that is the prep DB: a rules file must never be able
    /// to delete prep hashes (or NoDb locks) there.
    pub(crate) fn check_cache_db(&self, db: i64) -> CoreResult<()> {
        if db == self.target.prep_db {
            return Err(CoreError::Config(format!(
                "the rules' cache db {db} is the prep DB: refusing to delete keys there"
            )));
        }
        Ok(())
    }

    /// The write `f`, then `WAIT` behind it on the same connection.
    pub(crate) fn write_then_wait(
        &self,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<Value>,
    ) -> CoreResult<(Value, Option<Shortfall>)> {
        let repl = self.common.replication;
        let (v, w) = self.with_conn(|c| {
            let v = f(c)?;
            let w = pool::wait_behind(&repl, |cmd| cmd.query::<Value>(c))?;
            Ok((v, w))
        })?;
        Ok((v, check(&repl, w)?))
    }

    /// MULTI; HEXISTS loaded; HSET; HDEL; SELECT cache; DEL...; SELECT prep;
    /// PUBLISH; HGETALL; EXEC (then WAIT, in the same write).
    pub(crate) fn apply(&self, key: &str, m: &Mutation) -> CoreResult<Applied> {
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
            p.cmd("SELECT").arg(self.target.prep_db);
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
        let repl = &self.common.replication;
        let (replies, wait) = self.with_conn(|c| transact(c, &p, repl))?;
        let had_loaded = value::int(value::nth(&replies, 0)?)? == 1;
        let mut idx = 1 + usize::from(!m.sets.is_empty()) + usize::from(!m.dels.is_empty());
        let mut deleted = Vec::new();
        if !m.cache_keys.is_empty() {
            let n = m.cache_keys.len();
            let dels = replies.get(idx + 1..idx + 1 + n).ok_or_else(|| {
                CoreError::Data("transaction reply is short of DEL replies".into())
            })?;
            deleted = existed(&m.cache_keys, dels)?;
            idx += n + 2;
        }
        if m.event.is_some() {
            idx += 1;
        }
        let hash = value::pairs(value::nth(&replies, idx)?)?;
        Ok(Applied {
            had_loaded,
            deleted,
            hash,
            shortfall: check(repl, wait)?,
        })
    }

    /// DEL each key in `db` in one transaction; returns each DEL's reply.
    pub(crate) fn delete_keys(
        &self,
        db: i64,
        keys: &[String],
    ) -> CoreResult<(Vec<Value>, Option<Shortfall>)> {
        let mut p = redis::pipe();
        p.atomic();
        p.cmd("SELECT").arg(db);
        for k in keys {
            p.cmd("DEL").arg(k);
        }
        p.cmd("SELECT").arg(self.target.prep_db);
        let repl = &self.common.replication;
        let (mut replies, wait) = self.with_conn(|c| transact(c, &p, repl))?;
        // drop the two SELECT replies
        replies.pop();
        if !replies.is_empty() {
            replies.remove(0);
        }
        Ok((replies, check(repl, wait)?))
    }

    /// SCAN `db` for each pattern (never KEYS): the distinct matches.
    pub(crate) fn scan(&self, db: i64, patterns: &[String]) -> CoreResult<Vec<String>> {
        let prep_db = self.target.prep_db;
        let mut found: Vec<String> = Vec::new();
        for pattern in patterns {
            let mut cursor: u64 = 0;
            loop {
                let reply: Value = self.with_conn(|c| {
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
        Ok(found)
    }
}

fn exec_failed(detail: &'static str) -> redis::RedisError {
    (redis::ErrorKind::UnexpectedReturnType, detail).into()
}

/// Send the atomic pipeline `p`; with replication on, `WAIT` goes right
/// behind its EXEC in the same write, so the whole request stays one round
/// trip. Returns EXEC's replies (no `ignore()`d commands in `p`) and WAIT's.
fn transact(
    c: &mut Conn,
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
