//! Redis Cluster layout (opt-in): every key of one run shares a hash tag, so
//! one run lives in one slot; the one-round-trip write is a Lua script that
//! declares every key it touches (the sync cluster client has no MULTI).
//!
//! The keys are named by [`crate::layout::Layout::Cluster`].

use redis::cluster::{ClusterClient, ClusterConnection};
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ConnectionLike, RedisResult, Value};

use crate::errors::{CoreError, CoreResult};
use crate::mutation::Mutation;
use crate::replication::Shortfall;
use crate::settings::{ClusterTarget, Common};
use crate::value;

use super::lua::{script, DEL_LUA, DEL_SCRIPT, MUTATE_LUA, MUTATE_SCRIPT};
use super::pool::{self, explain_timeout, Pool};
use super::{check, existed, Applied};

const MAX_IDLE: usize = 16;
/// How often the cluster client follows MOVED/ASK, TRYAGAIN or a topology
/// change within one request (a failover takes a few of these).
const REDIRECTS: u32 = 16;

/// A cluster: its settings, client and idle connections.
pub struct Cluster {
    pub target: ClusterTarget,
    pub common: Common,
    /// `h1:p1,h2:p2`: safe to print (no credentials).
    pub addr: String,
    client: ClusterClient,
    pool: Pool<ClusterConnection>,
}

impl Cluster {
    pub(crate) fn open(target: ClusterTarget, common: Common) -> CoreResult<Cluster> {
        let urls: Vec<String> = target
            .nodes
            .iter()
            .map(|(h, p)| format!("redis://{h}:{p}"))
            .collect();
        let mut b = ClusterClient::builder(urls)
            .connection_timeout(common.connect_timeout)
            // a write followed by `WAIT` may block for the replica timeout on top
            .response_timeout(common.reply_budget())
            .retries(REDIRECTS);
        if let Some(u) = &target.auth.username {
            b = b.username(u);
        }
        if let Some(p) = &target.auth.password {
            b = b.password(p);
        }
        let client = b
            .build()
            .map_err(|e| CoreError::Config(crate::errors::redact(&e.to_string())))?;
        let addr = target
            .nodes
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",");
        Ok(Cluster {
            target,
            common,
            addr,
            client,
            pool: Pool::new(MAX_IDLE),
        })
    }

    /// Run `f` on a pooled cluster connection (MOVED/ASK and topology refresh
    /// are handled by the redis crate; see [`pool::with_conn`] for the rest).
    pub(crate) fn with_conn<T>(
        &self,
        f: impl FnMut(&mut ClusterConnection) -> RedisResult<T>,
    ) -> CoreResult<T> {
        let connect = || {
            self.client
                .get_connection()
                .map_err(|e| connect_error(&self.addr, &e, &self.common))
        };
        pool::with_conn(&self.pool, &self.common, &self.addr, connect, f)
    }

    /// The write `f`, then `WAIT` on the master of `key`'s slot (where the
    /// script just ran, on the same per-node connection).
    pub(crate) fn write_then_wait(
        &self,
        key: &str,
        mut f: impl FnMut(&mut dyn ConnectionLike) -> RedisResult<Value>,
    ) -> CoreResult<(Value, Option<Shortfall>)> {
        let repl = self.common.replication;
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
            key.as_bytes(),
            SlotAddr::Master,
        )));
        let (v, w) = self.with_conn(|c| {
            let v = f(c)?;
            let w = pool::wait_behind(&repl, |cmd| c.route_command(cmd, route.clone()))?;
            Ok((v, w))
        })?;
        Ok((v, check(&repl, w)?))
    }

    /// The write as one Lua script declaring every key (one slot).
    pub(crate) fn apply(&self, key: &str, m: &Mutation) -> CoreResult<Applied> {
        let (reply, shortfall) = self.write_then_wait(key, |c| {
            let mut inv = script(MUTATE_LUA, &MUTATE_SCRIPT).key(key);
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
        let deleted = match value::nth(&parts, 1)? {
            Value::Array(dels) => existed(&m.cache_keys, dels)?,
            _ => Vec::new(),
        };
        let hash = value::pairs(value::nth(&parts, 2)?)?;
        Ok(Applied {
            had_loaded,
            deleted,
            hash,
            shortfall,
        })
    }

    /// DEL the keys (one run's: one hash tag, one slot) in one script.
    pub(crate) fn delete_keys(
        &self,
        keys: &[String],
    ) -> CoreResult<(Vec<Value>, Option<Shortfall>)> {
        let Some(first) = keys.first() else {
            return Ok((Vec::new(), None));
        };
        let (reply, shortfall) = self.write_then_wait(first, |c| {
            let mut inv = script(DEL_LUA, &DEL_SCRIPT).prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            inv.invoke::<Value>(c)
        })?;
        let Value::Array(results) = reply else {
            return Err(CoreError::Data("unexpected script reply".into()));
        };
        Ok((results, shortfall))
    }
}

/// A failed cluster connect, classified like the standalone layout's: the
/// cluster client folds each node's error into one ("Failed to connect to
/// each cluster node ... (os error 11)"), losing the timeout kind, so a
/// socket that timed out is recognised by the OS error it reports.
fn connect_error(addr: &str, e: &redis::RedisError, common: &Common) -> CoreError {
    let err = match CoreError::from_redis(addr, e) {
        CoreError::Connection { addr, detail } if timed_out(&detail) => {
            CoreError::Timeout { addr, detail }
        }
        other => other,
    };
    explain_timeout(
        err,
        "connect + handshake (AUTH/HELLO) did not complete",
        common.connect_timeout,
    )
}

/// EAGAIN/EWOULDBLOCK (a socket timeout) or ETIMEDOUT in an error text.
fn timed_out(detail: &str) -> bool {
    detail.contains("(os error 11)")
        || detail.contains("(os error 110)")
        || detail.contains("timed out")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timed_out_node_is_a_timeout() {
        assert!(timed_out("Io: Failed to connect to each cluster node (h:1: Resource temporarily unavailable (os error 11))"));
        assert!(timed_out("connection timed out"));
        assert!(!timed_out("Connection refused (os error 111)"));
    }
}
