//! A fork-aware pool of idle connections, and the one request loop both
//! layouts use: the same retries, timeouts, error mapping and counters.

use std::sync::Mutex;
use std::time::Duration;

use redis::{ConnectionLike, RedisResult, Value};

use crate::errors::{CoreError, CoreResult};
use crate::replication::Replication;
use crate::settings::Common;
use crate::stats;

struct Idle<C> {
    pid: u32,
    conns: Vec<C>,
}

/// Idle connections of one backend. A connection inherited across `fork()`
/// is forgotten (never closed, never written to): its socket is the parent's.
pub(crate) struct Pool<C> {
    idle: Mutex<Idle<C>>,
    max: usize,
}

impl<C> Pool<C> {
    pub(crate) fn new(max: usize) -> Pool<C> {
        Pool {
            idle: Mutex::new(Idle {
                pid: crate::pid::current(),
                conns: Vec::new(),
            }),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Idle<C>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let pid = crate::pid::current();
        if idle.pid != pid {
            for conn in idle.conns.drain(..) {
                std::mem::forget(conn);
            }
            idle.pid = pid;
        }
        idle
    }

    fn take(&self) -> Option<C> {
        self.lock().conns.pop()
    }

    fn put(&self, conn: C) {
        let mut idle = self.lock();
        if idle.conns.len() < self.max {
            idle.conns.push(conn);
        }
    }

    /// Close every idle connection (the server likely went away).
    pub(crate) fn clear(&self) {
        self.lock().conns.clear();
    }
}

impl<C> Drop for Pool<C> {
    fn drop(&mut self) {
        // through `lock()`: connections of another process are forgotten, not closed
        self.lock().conns.clear();
    }
}

/// Say which limit a timeout hit (the OS text alone is "Resource temporarily unavailable").
pub(crate) fn explain_timeout(err: CoreError, what: &str, limit: Duration) -> CoreError {
    match err {
        CoreError::Timeout { addr, detail } => CoreError::Timeout {
            addr,
            detail: format!("{what} within {:.3} s ({detail})", limit.as_secs_f64()),
        },
        other => other,
    }
}

/// Run `f` on a pooled connection (or a new one from `connect`). A connection
/// that saw any error is dropped, never reused (a late reply can not reach the
/// next command). A broken pooled socket (e.g. Redis restarted) is retried on
/// a fresh connection, at most `retries` times; a failed connect is retried
/// with backoff; timeouts are never retried. `f` must be idempotent.
pub(crate) fn with_conn<C: ConnectionLike, T>(
    pool: &Pool<C>,
    common: &Common,
    addr: &str,
    connect: impl Fn() -> CoreResult<C>,
    mut f: impl FnMut(&mut C) -> RedisResult<T>,
) -> CoreResult<T> {
    let mut attempt = 0u32;
    loop {
        let (mut conn, fresh) = match pool.take() {
            Some(c) => (c, false),
            None => {
                stats::CONNECTS.incr();
                match connect() {
                    Ok(c) => (c, true),
                    Err(e) => {
                        if attempt < common.retries && !matches!(e, CoreError::Timeout { .. }) {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(50u64 << attempt.min(5)));
                            continue;
                        }
                        stats::FAILURES.incr();
                        return Err(e);
                    }
                }
            }
        };
        stats::ROUND_TRIPS.incr();
        match f(&mut conn) {
            Ok(v) => {
                if conn.is_open() {
                    pool.put(conn);
                }
                return Ok(v);
            }
            Err(e) => {
                drop(conn);
                let err = explain_timeout(
                    CoreError::from_redis(addr, &e),
                    "no complete reply",
                    common.reply_budget(),
                );
                if err.is_connection_level() {
                    // The server likely went away: its other idle sockets are dead too.
                    pool.clear();
                }
                let retryable = !fresh
                    && matches!(err, CoreError::Connection { .. })
                    && attempt < common.retries;
                if retryable {
                    attempt += 1;
                    continue;
                }
                stats::FAILURES.incr();
                return Err(err);
            }
        }
    }
}

/// `WAIT` behind a write, on the same connection (`send` sends it), when
/// replication is on: one more round trip, counted here like those of
/// [`with_conn`].
pub(crate) fn wait_behind(
    repl: &Replication,
    send: impl FnOnce(&redis::Cmd) -> RedisResult<Value>,
) -> RedisResult<Option<Value>> {
    match repl.wait_cmd() {
        Some(cmd) => {
            stats::ROUND_TRIPS.incr();
            send(&cmd).map(Some)
        }
        None => Ok(None),
    }
}
