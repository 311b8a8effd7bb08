//! Redis Cluster layout (opt-in): every key of one run shares a hash tag, so
//! one run lives in one slot; the one-round-trip write is a Lua script that
//! declares every key it touches (the sync cluster client has no MULTI).
//!
//! Keys: prep hash `prep:{<tag>}` and caches `nodb:{<tag>}:<rendered template>`,
//! where `<tag>` is the run id (braces replaced, `_` if empty; then the full run id
//! is appended to the prep key so it stays unique).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterConnection};

use crate::errors::{CoreError, CoreResult};
use crate::replication::Replication;
use crate::stats;

/// Cluster settings (nodes, timeouts, write options).
pub struct ClusterSettings {
    client: ClusterClient,
    pub nodes: Vec<String>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub fsync: bool,
    pub events: bool,
    pub events_channel: String,
    /// Replicated acknowledgement of writes (`WAIT` on the slot's master).
    pub replication: Replication,
}

/// What Python's `configure(url="redis+cluster://...")` passes in.
#[derive(Debug, Clone, Default)]
pub struct ClusterOverrides {
    pub nodes: Vec<String>,
    pub password: Option<String>,
    pub connect_timeout: Option<f64>,
    pub timeout: Option<f64>,
    pub retries: Option<u32>,
    pub fsync: Option<bool>,
    pub events: Option<bool>,
    pub events_channel: Option<String>,
    pub min_replicas: Option<i64>,
    pub replica_timeout: Option<f64>,
}

struct State {
    pid: u32,
    enabled: Option<bool>,
    settings: Option<Arc<ClusterSettings>>,
    idle: Vec<ClusterConnection>,
}

static STATE: Mutex<State> = Mutex::new(State {
    pid: 0,
    enabled: None,
    settings: None,
    idle: Vec::new(),
});

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn check_pid(s: &mut State) {
    let pid = crate::pid::current();
    if s.pid != pid {
        for c in s.idle.drain(..) {
            // inherited across fork(): never touch the parent's sockets
            std::mem::forget(c);
        }
        s.pid = pid;
    }
}

/// Parse `redis+cluster://[:pw@]h:p,h:p` into node URLs and a password.
pub fn parse_cluster_url(url: &str) -> Option<(Vec<String>, Option<String>)> {
    let rest = url.strip_prefix("redis+cluster://")?;
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let (auth, hosts) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let password = auth
        .map(|a| a.rsplit(':').next().unwrap_or(a).to_string())
        .filter(|p| !p.is_empty());
    let nodes: Vec<String> = hosts
        .split(',')
        .filter(|h| !h.trim().is_empty())
        .map(|h| format!("redis://{}", h.trim()))
        .collect();
    if nodes.is_empty() {
        None
    } else {
        Some((nodes, password))
    }
}

fn env_url() -> Option<String> {
    ["REDISPREP_CLUSTER_URL", "REDIS_URL"]
        .iter()
        .filter_map(|n| std::env::var(n).ok())
        .find(|u| u.starts_with("redis+cluster://"))
}

/// True when the cluster layout is in force (configured, `REDISPREP_LAYOUT=cluster`,
/// or a `redis+cluster://` URL in the environment).
pub fn enabled() -> bool {
    let mut s = state();
    if let Some(e) = s.enabled {
        return e;
    }
    let layout = std::env::var("REDISPREP_LAYOUT").unwrap_or_default();
    let e = layout.eq_ignore_ascii_case("cluster") || env_url().is_some();
    s.enabled = Some(e);
    e
}

fn build(o: &ClusterOverrides) -> CoreResult<ClusterSettings> {
    let (nodes, pw) = if o.nodes.is_empty() {
        let url = env_url().ok_or_else(|| {
            CoreError::Config(
                "cluster layout needs nodes: set REDIS_URL=redis+cluster://host:port,host:port"
                    .into(),
            )
        })?;
        parse_cluster_url(&url)
            .ok_or_else(|| CoreError::Config("cannot parse the redis+cluster:// URL".into()))?
    } else {
        (o.nodes.clone(), None)
    };
    let password = o.password.clone().or(pw).or_else(|| {
        std::env::var("REDIS_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
    });
    // the same limits as the standalone layout: a bad value is a ConfigError, not clamped
    let connect_timeout = crate::env::seconds("connect_timeout", o.connect_timeout.unwrap_or(5.0))?;
    let timeout = crate::env::seconds("timeout", o.timeout.unwrap_or(10.0))?;
    let replication = Replication::resolve(o.min_replicas, o.replica_timeout)?;
    let mut b = ClusterClient::builder(nodes.clone())
        .connection_timeout(connect_timeout)
        // a write followed by `WAIT` may block for the replica timeout on top
        .response_timeout(timeout + replication.budget())
        .retries(o.retries.unwrap_or(16));
    if let Some(p) = password {
        b = b.password(p);
    }
    let client = b
        .build()
        .map_err(|e| CoreError::Config(crate::errors::redact(&e.to_string())))?;
    let flag = |name: &str| {
        std::env::var(name)
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
            .unwrap_or(false)
    };
    Ok(ClusterSettings {
        client,
        nodes,
        connect_timeout,
        timeout,
        fsync: o.fsync.unwrap_or_else(|| flag("REDISPREP_FSYNC")),
        events: o.events.unwrap_or_else(|| flag("REDISPREP_EVENTS")),
        events_channel: o.events_channel.clone().unwrap_or_else(|| {
            std::env::var("REDISPREP_EVENTS_CHANNEL")
                .unwrap_or_else(|_| "redisprep:invalidations".into())
        }),
        replication,
    })
}

/// Switch this process to the cluster layout with these settings.
pub fn configure(o: ClusterOverrides) -> CoreResult<()> {
    let settings = Arc::new(build(&o)?);
    let mut s = state();
    check_pid(&mut s);
    s.idle.clear();
    s.settings = Some(settings);
    s.enabled = Some(true);
    Ok(())
}

/// Back to the standalone layout (or re-read the environment with `None`).
pub fn disable(reset_to_env: bool) {
    let mut s = state();
    check_pid(&mut s);
    s.idle.clear();
    s.settings = None;
    s.enabled = if reset_to_env { None } else { Some(false) };
}

/// The cluster settings in force.
pub fn settings() -> CoreResult<Arc<ClusterSettings>> {
    let mut s = state();
    if let Some(st) = &s.settings {
        return Ok(st.clone());
    }
    let st = Arc::new(build(&ClusterOverrides::default())?);
    s.settings = Some(st.clone());
    Ok(st)
}

fn addr(st: &ClusterSettings) -> String {
    st.nodes
        .iter()
        .map(|n| n.trim_start_matches("redis://"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Run `f` on a pooled cluster connection (MOVED/ASK and topology refresh are
/// handled by the redis crate). A connection that saw an error is dropped.
pub fn with_conn<T>(
    mut f: impl FnMut(&mut ClusterConnection) -> redis::RedisResult<T>,
) -> CoreResult<T> {
    let st = settings()?;
    let conn = {
        let mut s = state();
        check_pid(&mut s);
        s.idle.pop()
    };
    let mut conn = match conn {
        Some(c) => c,
        None => {
            stats::CONNECTS.incr();
            st.client
                .get_connection()
                .map_err(|e| CoreError::from_redis(&addr(&st), &e))?
        }
    };
    stats::ROUND_TRIPS.incr();
    match f(&mut conn) {
        Ok(v) => {
            let mut s = state();
            check_pid(&mut s);
            if s.idle.len() < 16 && s.settings.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, &st)) {
                s.idle.push(conn);
            }
            Ok(v)
        }
        Err(e) => {
            stats::FAILURES.incr();
            Err(CoreError::from_redis(&addr(&st), &e))
        }
    }
}

/// The hash tag of a run: its id with braces replaced (`_` if empty).
pub fn tag(run_id: &str) -> String {
    if run_id.is_empty() {
        return "_".to_string();
    }
    run_id.replace('{', "(").replace('}', ")")
}

/// The prep hash key of a run on the cluster layout.
pub fn prep_key(run_id: &str) -> String {
    let t = tag(run_id);
    if t == run_id {
        format!("prep:{{{t}}}")
    } else {
        format!("prep:{{{t}}}:{run_id}")
    }
}

/// A cache key of a run on the cluster layout.
pub fn cache_key(run_id: &str, rendered: &str) -> String {
    format!("nodb:{{{}}}:{rendered}", tag(run_id))
}

/// The write script: KEYS[1] = prep hash, KEYS[2..] = cache keys.
/// ARGV: nsets, field, value, ..., ndels, field, ..., channel, payload.
/// Returns {had_loaded, {DEL results...}, HGETALL}.
pub const MUTATE_LUA: &str = concat!(
    crate::checklist_lua!(),
    r#"
local h = KEYS[1]
local had = redis.call('HEXISTS', h, 'attrs:loaded')
local i = 1
local nsets = tonumber(ARGV[i]); i = i + 1
if nsets > 0 then
  local args = {}
  for j = 1, nsets * 2 do args[j] = ARGV[i]; i = i + 1 end
  redis.call('HSET', h, unpack(args))
end
local ndels = tonumber(ARGV[i]); i = i + 1
if ndels > 0 then
  local args = {}
  for j = 1, ndels do args[j] = ARGV[i]; i = i + 1 end
  redis.call('HDEL', h, unpack(args))
end
local dels = {}
for k = 2, #KEYS do dels[k - 1] = redis.call('DEL', KEYS[k]) end
local channel = ARGV[i]; local payload = ARGV[i + 1]; local checks = ARGV[i + 2]
if channel ~= nil and channel ~= '' then
  redis.call('PUBLISH', channel, checklist_event(h, payload, checks))
end
return {had, dels, redis.call('HGETALL', h)}
"#
);

/// Put back missing fields: KEYS[1] = hash; ARGV = field, value, ...; returns HGETALL.
pub const HSETNX_LUA: &str = r#"
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HGETALL', KEYS[1])
"#;

/// Delete keys (all in one slot): returns the DEL results.
pub const DEL_LUA: &str = r#"
local out = {}
for k = 1, #KEYS do out[k] = redis.call('DEL', KEYS[k]) end
return out
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_run_tag() {
        assert_eq!(prep_key("abc-def"), "prep:{abc-def}");
        assert_eq!(
            cache_key("abc-def", "/r/abc-def/climate.nodb"),
            "nodb:{abc-def}:/r/abc-def/climate.nodb"
        );
        assert_eq!(prep_key("a{b}"), "prep:{a(b)}:a{b}");
        assert_eq!(prep_key(""), "prep:{_}:");
    }

    #[test]
    fn parses_cluster_urls() {
        let (nodes, pw) = parse_cluster_url("redis+cluster://:s3@h1:7000,h2:7001/0").unwrap();
        assert_eq!(nodes, ["redis://h1:7000", "redis://h2:7001"]);
        assert_eq!(pw.as_deref(), Some("s3"));
        assert!(parse_cluster_url("redis://h:1").is_none());
    }
}
