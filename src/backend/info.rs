//! What the backend tells the outside: `connection_info()` (printable, no
//! credentials) and the connection parameters a redis-py client is built
//! from (`prep.redis`, `migrate-layout`, the audit), so Python never parses
//! URLs or the environment itself.

use redis::ConnectionAddr;
use serde_json::{json, Map, Value};

use crate::settings::{Auth, ClusterTarget, Common, Settings, StandaloneTarget, Target};

use super::Backend;

/// `connection_info()`: the settings in force, with no credentials.
pub type Info = Map<String, Value>;

/// Connection parameters for a redis-py client (with credentials).
pub type Params = Map<String, Value>;

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn common_info(c: &Common) -> Value {
    json!({
        "connect_timeout": c.connect_timeout.as_secs_f64(),
        "timeout": c.timeout.as_secs_f64(),
        "retries": c.retries,
        "fsync": c.fsync,
        "events": c.events,
        "events_channel": c.events_channel,
        "min_replicas": c.replication.min_replicas,
        "replica_timeout": c.replication.timeout.as_secs_f64(),
        "source": c.sources.address,
        "password": c.sources.password.map(|p| format!("set (from {})", p.label())),
        "password_file": c.sources.password_file,
    })
}

fn auth(a: &Auth) -> Value {
    json!({ "username": a.username, "password": a.password })
}

impl Backend {
    /// The settings in force, with the password redacted.
    pub fn info(&self) -> Info {
        let mut out = match self {
            Backend::Standalone(s) => object(json!({
                "layout": "standalone",
                "url": s.target.redacted_url,
                "address": s.target.addr,
                "prep_db": s.target.prep_db,
            })),
            Backend::Cluster(c) => object(json!({
                "layout": "cluster",
                "nodes": c.target.nodes.iter().map(|(h, p)| format!("redis://{h}:{p}")).collect::<Vec<_>>(),
                "address": c.addr,
                "prep_db": 0,
            })),
        };
        out.extend(object(common_info(self.common())));
        out
    }
}

fn standalone_params(t: &StandaloneTarget) -> Params {
    let rs = t.info.redis_settings();
    let mut m = object(json!({
        "layout": "standalone",
        "db": t.prep_db,
        "username": rs.username(),
        "password": rs.password(),
    }));
    let addr = match t.info.addr() {
        ConnectionAddr::Tcp(host, port) => json!({"host": host, "port": port, "ssl": false}),
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => json!({
            "host": host,
            "port": port,
            "ssl": true,
            "ssl_cert_reqs": if *insecure { "none" } else { "required" },
            "ssl_ca_certs": t.tls_ca.as_ref().map(|(path, _)| path),
        }),
        ConnectionAddr::Unix(path) => json!({"path": path.to_string_lossy()}),
        _ => json!({}),
    };
    m.extend(object(addr));
    m
}

fn cluster_params(t: &ClusterTarget) -> Params {
    let mut m = object(json!({
        "layout": "cluster",
        "nodes": t.nodes,
    }));
    m.extend(object(auth(&t.auth)));
    m
}

fn with_timeouts(mut m: Params, c: &Common) -> Params {
    m.insert(
        "connect_timeout".into(),
        json!(c.connect_timeout.as_secs_f64()),
    );
    m.insert("timeout".into(), json!(c.timeout.as_secs_f64()));
    m
}

impl Backend {
    /// The parameters of a redis-py client on this backend (its prep DB).
    pub fn params(&self) -> Params {
        match self {
            Backend::Standalone(s) => with_timeouts(standalone_params(&s.target), &s.common),
            Backend::Cluster(c) => with_timeouts(cluster_params(&c.target), &c.common),
        }
    }
}

/// The parameters of a redis-py client for `settings` (on its prep DB).
pub fn params(settings: &Settings) -> Params {
    let m = match &settings.target {
        Target::Standalone(t) => standalone_params(t),
        Target::Cluster(t) => cluster_params(t),
    };
    with_timeouts(m, &settings.common)
}
