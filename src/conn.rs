//! Connection settings (wepppy's resolution order), and the process-wide,
//! thread-safe, fork-aware pool of synchronous Redis connections.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::{
    ConnectionAddr, ConnectionInfo, ConnectionLike, IntoConnectionInfo, RedisConnectionInfo,
    RedisResult, Value,
};

use crate::env::{env, env_bool, env_parse, seconds};
use crate::errors::{CoreError, CoreResult};
use crate::replication::Replication;
use crate::stats;

/// Settings a caller may override (Python `redisprep.configure(...)`); `None`
/// means "from the environment, else the default".
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub url: Option<String>,
    pub prep_db: Option<i64>,
    pub connect_timeout: Option<f64>,
    pub timeout: Option<f64>,
    pub retries: Option<u32>,
    pub fsync: Option<bool>,
    pub events: Option<bool>,
    pub events_channel: Option<String>,
    pub tls_ca_file: Option<String>,
    pub min_replicas: Option<i64>,
    pub replica_timeout: Option<f64>,
}

/// Resolved settings, immutable once built.
pub struct Settings {
    client: redis::Client,
    /// `host:port` or the socket path: safe to print (no credentials).
    pub addr: String,
    /// The URL with any password replaced by `***` (for `repr` and logs).
    pub redacted_url: String,
    pub prep_db: i64,
    pub connect_timeout: Duration,
    /// How many handshake replies redis-rs reads (0, 1 or 2), see [`Settings::connect`].
    handshake_replies: u32,
    pub timeout: Duration,
    pub retries: u32,
    pub fsync: bool,
    pub events: bool,
    pub events_channel: String,
    /// Replicated acknowledgement of writes (`WAIT`); off by default.
    pub replication: Replication,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.redacted_url)
            .field("prep_db", &self.prep_db)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn addr_text(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::Tcp(h, p) => format!("{h}:{p}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("{host}:{port} (TLS)"),
        ConnectionAddr::Unix(p) => format!("unix:{}", p.display()),
        _ => "redis".to_string(),
    }
}

/// Parse a URL the way wepppy uses it: `None` when it has no usable host.
fn parse_url(url: &str) -> Option<ConnectionInfo> {
    let info = url.into_connection_info().ok()?;
    match info.addr() {
        ConnectionAddr::Tcp(h, _) if h.is_empty() => None,
        ConnectionAddr::TcpTls { host, .. } if host.is_empty() => None,
        _ => Some(info),
    }
}

impl Settings {
    /// Resolve: overrides, then `REDIS_URL`, `RQ_REDIS_URL`, then
    /// `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD` (SPEC section 8).
    pub fn resolve(o: &Overrides) -> CoreResult<Settings> {
        let prep_db = match o.prep_db {
            Some(v) => v,
            None => env_parse("REDISPREP_PREP_DB")?.unwrap_or(0),
        };
        if !(0..=15).contains(&prep_db) {
            return Err(CoreError::Config(format!(
                "prep DB must be 0..=15, got {prep_db}"
            )));
        }
        let password_env = env("REDIS_PASSWORD");
        let url = o
            .url
            .clone()
            .or_else(|| env("REDIS_URL"))
            .or_else(|| env("RQ_REDIS_URL"));
        let parsed = match &url {
            Some(u) => match parse_url(u) {
                Some(info) => Some(info),
                None if o.url.is_some() => {
                    return Err(CoreError::Config(format!(
                        "cannot parse Redis URL {}",
                        crate::errors::redact(u)
                    )))
                }
                None => None,
            },
            None => None,
        };
        let info = match parsed {
            Some(info) => info,
            None => {
                let host = env("REDIS_HOST").unwrap_or_else(|| "localhost".to_string());
                let port: u16 = env_parse("REDIS_PORT")?.unwrap_or(6379);
                ConnectionAddr::Tcp(host, port)
                    .into_connection_info()
                    .map_err(|e| CoreError::Config(e.to_string()))?
            }
        };
        let mut redis_settings: RedisConnectionInfo = info.redis_settings().clone();
        if redis_settings.password().is_none() {
            if let Some(pw) = &password_env {
                redis_settings = redis_settings.set_password(pw);
            }
        }
        redis_settings = redis_settings.set_db(prep_db).set_skip_set_lib_name();
        // Replies redis-rs waits for in its handshake: HELLO or AUTH, then SELECT.
        let handshake_replies = u32::from(
            redis_settings.password().is_some() || redis_settings.protocol().supports_resp3(),
        ) + u32::from(prep_db != 0);
        let info = info.set_redis_settings(redis_settings);
        let addr = addr_text(info.addr());
        let redacted_url = match &url {
            Some(u) => crate::errors::redact(u),
            None => format!("redis://{addr}"),
        };
        let tls_ca = o.tls_ca_file.clone().or_else(|| env("REDISPREP_TLS_CA"));
        let client = match tls_ca {
            Some(ca) => {
                let pem = std::fs::read(&ca)
                    .map_err(|e| CoreError::Config(format!("cannot read TLS CA file {ca}: {e}")))?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| CoreError::Config(crate::errors::redact(&e.to_string())))?;
        let connect_timeout = seconds(
            "connect_timeout",
            o.connect_timeout
                .or(env_parse("REDISPREP_CONNECT_TIMEOUT")?)
                .unwrap_or(5.0),
        )?;
        let timeout = seconds(
            "timeout",
            o.timeout
                .or(env_parse("REDISPREP_TIMEOUT")?)
                .unwrap_or(10.0),
        )?;
        let retries = o
            .retries
            .or(env_parse("REDISPREP_RETRIES")?)
            .unwrap_or(2)
            .min(10);
        let replication = Replication::resolve(o.min_replicas, o.replica_timeout)?;
        Ok(Settings {
            client,
            addr,
            redacted_url,
            prep_db,
            connect_timeout,
            handshake_replies,
            timeout,
            retries,
            fsync: o.fsync.or(env_bool("REDISPREP_FSYNC")?).unwrap_or(false),
            events: o.events.or(env_bool("REDISPREP_EVENTS")?).unwrap_or(false),
            events_channel: o
                .events_channel
                .clone()
                .or_else(|| env("REDISPREP_EVENTS_CHANNEL"))
                .unwrap_or_else(|| "redisprep:invalidations".to_string()),
            replication,
        })
    }

    /// Open a new connection; TCP connect *and* handshake (AUTH/HELLO/SELECT)
    /// together are bounded by `connect_timeout`.
    ///
    /// redis-rs gives each handshake reply the whole time left after the TCP
    /// connect, so against a server that accepts and never answers, AUTH +
    /// SELECT would take twice the limit. The limit handed to redis-rs is
    /// divided by the number of handshake replies to keep the sum within it.
    fn connect(&self) -> CoreResult<Conn> {
        stats::CONNECTS.incr();
        let per_step = self.connect_timeout / self.handshake_replies.max(1);
        let conn = self
            .client
            .get_connection_with_timeout(per_step)
            .map_err(|e| {
                explain_timeout(
                    CoreError::from_redis(&self.addr, &e),
                    "connect + handshake (AUTH/HELLO/SELECT) did not complete",
                    self.connect_timeout,
                )
            })?;
        // A write followed by `WAIT` may block for the replica timeout on top.
        let timeout = self.timeout + self.replication.budget();
        conn.set_read_timeout(Some(timeout))
            .and_then(|()| conn.set_write_timeout(Some(timeout)))
            .map_err(|e| CoreError::from_redis(&self.addr, &e))?;
        Ok(Conn {
            inner: conn,
            timeout,
        })
    }
}

/// Say which limit a timeout hit (the OS text alone is "Resource temporarily unavailable").
fn explain_timeout(err: CoreError, what: &str, limit: Duration) -> CoreError {
    match err {
        CoreError::Timeout { addr, detail } => CoreError::Timeout {
            addr,
            detail: format!("{what} within {:.3} s ({detail})", limit.as_secs_f64()),
        },
        other => other,
    }
}

/// A pooled connection. Every request is bounded by the configured timeout
/// *as a whole*: redis-rs's own pipeline reader keeps reading the remaining
/// replies after a timed-out one, each read waiting the full socket timeout
/// again (a 20-command transaction against a stalled server would block for
/// 20 x timeout). Here a pipeline shares one deadline and stops at the first
/// failed read; the caller then drops the connection, so a late reply can
/// never be read as the answer to a later command.
pub struct Conn {
    inner: redis::Connection,
    timeout: Duration,
}

fn deadline_passed() -> redis::RedisError {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no complete reply within the timeout",
    )
    .into()
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        let deadline = Instant::now() + self.timeout;
        self.inner.send_packed_command(cmd)?;
        let mut replies = Vec::with_capacity(count);
        // A command refused while queueing (e.g. NOPERM under an ACL): EXEC then aborts.
        let mut queue_error: Option<redis::ServerError> = None;
        let mut total = offset + count;
        let mut idx = 0;
        // The socket timeout currently set. Re-arming it costs a syscall per
        // reply, and replies usually come back-to-back from one buffered read:
        // re-arm only once the time already spent exceeds 1/32 of it, which
        // bounds the whole request by `timeout * 33/32`.
        let mut armed = self.timeout;
        while idx < total {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(deadline_passed());
            }
            if armed - left.min(armed) > armed / 32 {
                self.inner.set_read_timeout(Some(left))?;
                armed = left;
            }
            // Fail fast: the first failed read ends the request (the connection is dropped).
            match self.inner.recv_response()? {
                // RESP3 out-of-band data is not a reply: read one more.
                Value::Push { .. } => total += 1,
                Value::ServerError(e) if idx < offset => {
                    queue_error.get_or_insert(e);
                }
                v if idx >= offset => replies.push(v),
                _ => {}
            }
            idx += 1;
        }
        if armed != self.timeout {
            self.inner.set_read_timeout(Some(self.timeout))?;
        }
        match queue_error {
            Some(e) => Err(e.into()),
            None => Ok(replies),
        }
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.inner.check_connection()
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }
}

struct Pool {
    pid: u32,
    settings: Option<Arc<Settings>>,
    overrides: Overrides,
    idle: Vec<Conn>,
}

const MAX_IDLE: usize = 32;

static POOL: Mutex<Pool> = Mutex::new(Pool {
    pid: 0,
    settings: None,
    overrides: Overrides {
        url: None,
        prep_db: None,
        connect_timeout: None,
        timeout: None,
        retries: None,
        fsync: None,
        events: None,
        events_channel: None,
        tls_ca_file: None,
        min_replicas: None,
        replica_timeout: None,
    },
    idle: Vec::new(),
});

static CONFIG_LOCK: RwLock<()> = RwLock::new(());

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Forget (never close or write to) connections inherited across `fork()`.
fn check_pid(p: &mut Pool) {
    let pid = crate::pid::current();
    if p.pid != pid {
        for conn in p.idle.drain(..) {
            // The socket is shared with the parent: leak it rather than touch it.
            std::mem::forget(conn);
        }
        p.pid = pid;
    }
}

/// Replace the configuration; idle connections are closed and new calls use it.
pub fn configure(o: Overrides) -> CoreResult<Arc<Settings>> {
    let _w = CONFIG_LOCK.write().unwrap_or_else(|e| e.into_inner());
    let settings = Arc::new(Settings::resolve(&o)?);
    let mut p = pool();
    check_pid(&mut p);
    p.idle.clear();
    p.overrides = o;
    p.settings = Some(settings.clone());
    Ok(settings)
}

/// The settings in force (resolved from the environment on first use).
pub fn settings() -> CoreResult<Arc<Settings>> {
    let mut p = pool();
    if let Some(s) = &p.settings {
        return Ok(s.clone());
    }
    let s = Arc::new(Settings::resolve(&p.overrides)?);
    p.settings = Some(s.clone());
    Ok(s)
}

/// Drop every idle connection (and forget cached settings so the environment is re-read).
pub fn reset() {
    let mut p = pool();
    check_pid(&mut p);
    p.idle.clear();
    p.settings = None;
}

fn checkout(s: &Arc<Settings>) -> CoreResult<(Conn, bool)> {
    {
        let mut p = pool();
        check_pid(&mut p);
        if let Some(conn) = p.idle.pop() {
            return Ok((conn, false));
        }
    }
    s.connect().map(|c| (c, true))
}

fn checkin(s: &Arc<Settings>, conn: Conn) {
    let mut p = pool();
    check_pid(&mut p);
    let same = p.settings.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, s));
    if same && p.idle.len() < MAX_IDLE && conn.is_open() {
        p.idle.push(conn);
    }
}

/// Run `f` on a pooled connection. A connection that saw any error is dropped,
/// never reused (a late reply can not reach the next command). A broken pooled
/// socket (e.g. Redis restarted) is retried on a fresh connection, with bounded
/// retries; timeouts are never retried. `f` must be idempotent.
pub fn with_conn<T>(mut f: impl FnMut(&mut Conn) -> redis::RedisResult<T>) -> CoreResult<T> {
    let _r = CONFIG_LOCK.read().unwrap_or_else(|e| e.into_inner());
    let s = settings()?;
    let mut attempt = 0u32;
    loop {
        let (mut conn, fresh) = match checkout(&s) {
            Ok(c) => c,
            Err(e) => {
                if attempt < s.retries && !matches!(e, CoreError::Timeout { .. }) {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(50u64 << attempt.min(5)));
                    continue;
                }
                stats::FAILURES.incr();
                return Err(e);
            }
        };
        stats::ROUND_TRIPS.incr();
        match f(&mut conn) {
            Ok(v) => {
                checkin(&s, conn);
                return Ok(v);
            }
            Err(e) => {
                drop(conn);
                let err = explain_timeout(
                    CoreError::from_redis(&s.addr, &e),
                    "no complete reply",
                    s.timeout + s.replication.budget(),
                );
                if err.is_connection_level() {
                    // The server likely went away: its other idle sockets are dead too.
                    pool().idle.clear();
                }
                let retryable =
                    !fresh && matches!(err, CoreError::Connection { .. }) && attempt < s.retries;
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
