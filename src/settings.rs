//! One settings type for both layouts, resolved once by one resolver that
//! reads the environment (wepppy's resolution order, written out at
//! [`Settings::resolve`]), from
//! the [`Options`] a caller gave.

use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use crate::env::{env, env_bool, env_parse, seconds};
use crate::errors::{redact, CoreError, CoreResult};
use crate::layout::Layout;
use crate::password::{self, PasswordSource};
use crate::replication::Replication;

pub use crate::options::{Kind, OptionValue, Options, OPTIONS};

/// The settings both layouts share, with the same semantics and errors.
#[derive(Clone, Debug)]
pub struct Common {
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub fsync: bool,
    pub events: bool,
    pub events_channel: String,
    /// Replicated acknowledgement of writes (`WAIT`); off by default.
    pub replication: Replication,
    /// Which settings the address and the password came from.
    pub sources: Sources,
}

/// Where the resolved settings came from (names of settings, never values).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `configure(url)`, `REDISPREP_CLUSTER_URL`, `REDIS_URL`, `RQ_REDIS_URL`,
    /// `SESSION_REDIS_URL`, `REDIS_HOST/REDIS_PORT` or `default`.
    pub address: &'static str,
    /// The setting the password came from; `None`: no password.
    pub password: Option<PasswordSource>,
    /// The secrets file the password was read from.
    pub password_file: Option<String>,
}

impl Sources {
    fn with_password(&mut self, p: Option<password::Password>) -> Option<String> {
        let p = p?;
        self.password = Some(p.source);
        self.password_file = p.file;
        Some(p.secret)
    }
}

/// Credentials for AUTH (an ACL user, or the default user with a password).
#[derive(Clone, Default)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Where the standalone layout connects.
#[derive(Clone, Debug)]
pub struct StandaloneTarget {
    /// redis-rs connection info, with the prep DB and credentials set.
    pub info: ConnectionInfo,
    /// `host:port` or the socket path: safe to print (no credentials).
    pub addr: String,
    /// The URL with any password replaced by `***` (for `repr` and logs).
    pub redacted_url: String,
    pub prep_db: i64,
    /// The CA bundle file for `rediss://` and its PEM bytes.
    pub tls_ca: Option<(String, Vec<u8>)>,
}

/// Where the cluster layout connects.
#[derive(Clone, Debug)]
pub struct ClusterTarget {
    /// `(host, port)` of each startup node.
    pub nodes: Vec<(String, u16)>,
    pub auth: Auth,
}

/// The layout in force and where it connects.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)] // built once per configure(), never copied in a loop
pub enum Target {
    Standalone(StandaloneTarget),
    Cluster(ClusterTarget),
}

/// Resolved settings, immutable once built.
#[derive(Clone, Debug)]
pub struct Settings {
    pub common: Common,
    pub target: Target,
}

const CLUSTER_SCHEME: &str = "redis+cluster://";

fn is_cluster(url: &str) -> bool {
    url.starts_with(CLUSTER_SCHEME)
}

/// `%XX` escapes in a URL's user info, as redis-rs decodes them.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `redis+cluster://[user:pw@]h:p,h:p[/...]` into nodes and credentials.
pub fn parse_cluster_url(url: &str) -> CoreResult<ClusterTarget> {
    let bad =
        |why: &str| CoreError::Config(format!("cannot parse the redis+cluster:// URL: {why}"));
    let rest = url
        .strip_prefix(CLUSTER_SCHEME)
        .ok_or_else(|| bad("not a redis+cluster:// URL"))?;
    let rest = rest.split(['/', '?']).next().unwrap_or("");
    let (userinfo, hosts) = match rest.rfind('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let mut auth = Auth::default();
    if let Some(ui) = userinfo {
        let (user, pw) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        auth.username = Some(percent_decode(user)).filter(|u| !u.is_empty());
        auth.password = pw.map(percent_decode).filter(|p| !p.is_empty());
    }
    let mut nodes = Vec::new();
    for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let (host, port) = h
            .rsplit_once(':')
            .ok_or_else(|| bad(&format!("node {h:?} has no port")))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("node {h:?} has a bad port")))?;
        if host.is_empty() {
            return Err(bad(&format!("node {h:?} has no host")));
        }
        nodes.push((host.to_string(), port));
    }
    if nodes.is_empty() {
        return Err(bad("no nodes"));
    }
    Ok(ClusterTarget { nodes, auth })
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

impl Common {
    fn resolve(o: &Options) -> CoreResult<Common> {
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
        Ok(Common {
            connect_timeout,
            timeout,
            retries: o
                .retries
                .or(env_parse("REDISPREP_RETRIES")?)
                .unwrap_or(2)
                .min(10),
            fsync: o.fsync.or(env_bool("REDISPREP_FSYNC")?).unwrap_or(false),
            events: o.events.or(env_bool("REDISPREP_EVENTS")?).unwrap_or(false),
            events_channel: o
                .events_channel
                .clone()
                .or_else(|| env("REDISPREP_EVENTS_CHANNEL"))
                .unwrap_or_else(|| "redisprep:invalidations".to_string()),
            replication: Replication::resolve(o.min_replicas, o.replica_timeout)?,
            sources: Sources::default(),
        })
    }

    /// What a reply may take: the timeout, plus `WAIT`'s when replication is on.
    pub fn reply_budget(&self) -> Duration {
        self.timeout + self.replication.budget()
    }
}

fn standalone(
    o: &Options,
    url: Option<&str>,
    prep_db: i64,
    sources: &mut Sources,
) -> CoreResult<StandaloneTarget> {
    let parsed = match url {
        Some(u) => match parse_url(u) {
            Some(info) => Some(info),
            None if o.url.is_some() => {
                return Err(CoreError::Config(format!(
                    "cannot parse Redis URL {}",
                    redact(u)
                )))
            }
            None => None,
        },
        None => None,
    };
    let parsed_url = parsed.is_some();
    let info = match parsed {
        Some(info) => info,
        None => {
            sources.address = if env("REDIS_HOST").or_else(|| env("REDIS_PORT")).is_some() {
                "REDIS_HOST/REDIS_PORT"
            } else {
                "default"
            };
            let host = env("REDIS_HOST").unwrap_or_else(|| "localhost".to_string());
            let port: u16 = env_parse("REDIS_PORT")?.unwrap_or(6379);
            ConnectionAddr::Tcp(host, port)
                .into_connection_info()
                .map_err(|e| CoreError::Config(e.to_string()))?
        }
    };
    let mut rs = info.redis_settings().clone();
    let found = password::resolve(o, rs.password().map(str::to_string))?;
    if let Some(pw) = sources.with_password(found) {
        rs = rs.set_password(pw);
    }
    rs = rs.set_db(prep_db).set_skip_set_lib_name();
    let info = info.set_redis_settings(rs);
    let addr = addr_text(info.addr());
    let redacted_url = match (url, parsed_url) {
        (Some(u), true) => redact(u),
        _ => format!("redis://{addr}"),
    };
    let tls_ca = match o.tls_ca_file.clone().or_else(|| env("REDISPREP_TLS_CA")) {
        Some(ca) => {
            let pem = std::fs::read(&ca)
                .map_err(|e| CoreError::Config(format!("cannot read TLS CA file {ca}: {e}")))?;
            Some((ca, pem))
        }
        None => None,
    };
    Ok(StandaloneTarget {
        info,
        addr,
        redacted_url,
        prep_db,
        tls_ca,
    })
}

fn cluster(o: &Options, url: &str, sources: &mut Sources) -> CoreResult<ClusterTarget> {
    // Redis Cluster has one keyspace (no DB to select) and the cluster client
    // here speaks plain TCP: refuse rather than silently ignore.
    if o.prep_db.is_some() || o.tls_ca_file.is_some() {
        return Err(CoreError::Config(
            "prep_db and tls_ca_file do not apply to the cluster layout (one keyspace; plain TCP)"
                .into(),
        ));
    }
    let mut target = parse_cluster_url(url)?;
    let found = password::resolve(o, target.auth.password.take())?;
    target.auth.password = sources.with_password(found);
    Ok(target)
}

impl Settings {
    /// Resolve: overrides, then `REDISPREP_CLUSTER_URL` (a `redis+cluster://`
    /// URL), `REDIS_URL`, `RQ_REDIS_URL`, `SESSION_REDIS_URL`, then
    /// `REDIS_HOST`/`REDIS_PORT`; the password as [`password::resolve`] says.
    /// A `redis+cluster://` URL selects the cluster layout; so does
    /// `REDISPREP_LAYOUT=cluster` (which then needs such a URL).
    pub fn resolve(o: &Options) -> CoreResult<Settings> {
        let mut common = Common::resolve(o)?;
        let prep_db = match o.prep_db {
            Some(v) => v,
            None => env_parse("REDISPREP_PREP_DB")?.unwrap_or(0),
        };
        if !(0..=15).contains(&prep_db) {
            return Err(CoreError::Config(format!(
                "prep DB must be 0..=15, got {prep_db}"
            )));
        }
        let (url, source) = url_setting(o);
        let sources = &mut common.sources;
        sources.address = source;
        let target =
            match url.as_deref() {
                Some(u) if is_cluster(u) => Target::Cluster(cluster(o, u, sources)?),
                _ if o.url.is_none() && layout_is_cluster()? => return Err(CoreError::Config(
                    "cluster layout needs nodes: set REDIS_URL=redis+cluster://host:port,host:port"
                        .into(),
                )),
                u => Target::Standalone(standalone(o, u, prep_db, sources)?),
            };
        Ok(Settings { common, target })
    }
}

/// The URL in force and the setting it came from (`None`: host and port).
fn url_setting(o: &Options) -> (Option<String>, &'static str) {
    if let Some(u) = &o.url {
        return (Some(u.clone()), "configure(url)");
    }
    if let Some(u) = env("REDISPREP_CLUSTER_URL").filter(|u| is_cluster(u)) {
        return (Some(u), "REDISPREP_CLUSTER_URL");
    }
    for name in ["REDIS_URL", "RQ_REDIS_URL", "SESSION_REDIS_URL"] {
        if let Some(u) = env(name) {
            return (Some(u), name);
        }
    }
    (None, "default")
}

/// `REDISPREP_LAYOUT` (`standalone` or `cluster`, any case) asks for the cluster.
fn layout_is_cluster() -> CoreResult<bool> {
    match env("REDISPREP_LAYOUT") {
        None => Ok(false),
        Some(v) => v
            .trim()
            .to_ascii_lowercase()
            .parse::<Layout>()
            .map(|l| l == Layout::Cluster)
            .map_err(|_| {
                CoreError::Config(format!(
                    "REDISPREP_LAYOUT={v:?} is not a layout (standalone or cluster)"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_urls() {
        let t = parse_cluster_url("redis+cluster://:s3@h1:7000,h2:7001/0").unwrap();
        assert_eq!(t.nodes, [("h1".into(), 7000), ("h2".into(), 7001)]);
        assert_eq!(t.auth.password.as_deref(), Some("s3"));
        assert_eq!(t.auth.username, None);
        let t = parse_cluster_url("redis+cluster://alice:p%40ss@h1:7000").unwrap();
        assert_eq!(t.auth.username.as_deref(), Some("alice"));
        assert_eq!(t.auth.password.as_deref(), Some("p@ss"));
        assert!(parse_cluster_url("redis://h:1").is_err());
        assert!(parse_cluster_url("redis+cluster://").is_err());
        assert!(parse_cluster_url("redis+cluster://h1").is_err());
        assert!(parse_cluster_url("redis+cluster://h1:x").is_err());
    }
}
