//! Facts about the server for `python -m redisprep doctor`, read with the
//! settings in force and changing nothing: PING times, `INFO`, `CONFIG GET`,
//! `SELECT` of the prep and cache DBs (the prep DB is selected again at the
//! end of the same pipeline), an empty `MULTI`/`EXEC`, `EVALSHA` of a script
//! that does not exist (`NOSCRIPT` means the command is allowed), and on the
//! cluster `CLUSTER INFO`. The judgement (pass, warn, fail) is the caller's.

use std::time::Instant;

use redis::{ConnectionLike, RedisResult};
use serde_json::{json, Map, Value};

use crate::errors::{CoreError, CoreResult};

use super::Backend;

/// The facts, by name; each step is `{"ok": reply}` or `{"error": message}`.
pub type Probe = Map<String, Value>;

/// The SHA1 of no script: `EVALSHA` of it answers `NOSCRIPT` when allowed.
const NO_SCRIPT: &str = "ffffffffffffffffffffffffffffffffffffffff";
/// A key for the cluster's `EVALSHA` routing (never written).
const PROBE_KEY: &str = "redisprep:doctor";
/// The `CONFIG GET` parameters the doctor reads.
const CONFIG: [&str; 5] = [
    "appendonly",
    "appendfsync",
    "save",
    "notify-keyspace-events",
    "min-replicas-to-write",
];

fn outcome(r: CoreResult<Value>) -> Value {
    match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

fn text(c: &mut dyn ConnectionLike, args: &[&str]) -> RedisResult<String> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// A text reply; on the cluster a command sent to every node answers one
/// text per node: the first node's is taken (they describe the same build).
fn first_text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) | redis::Value::VerbatimString { text: s, .. } => {
            Some(s.clone())
        }
        redis::Value::Map(pairs) => pairs.iter().find_map(|(_, v)| first_text(v)),
        redis::Value::Array(items) => items.iter().find_map(first_text),
        _ => None,
    }
}

impl Backend {
    fn run_text(&self, args: &[&str]) -> CoreResult<Value> {
        let reply = self.run(|c| {
            let mut cmd = redis::cmd(args[0]);
            for a in &args[1..] {
                cmd.arg(*a);
            }
            cmd.query::<redis::Value>(c)
        })?;
        first_text(&reply)
            .map(Value::from)
            .ok_or_else(|| CoreError::Data(format!("unexpected reply to {}", args.join(" "))))
    }

    /// The facts; `Err` only when the server cannot be reached or refuses
    /// the connection (the first PING).
    pub fn probe(&self, cache_db: Option<i64>) -> CoreResult<Probe> {
        let mut out = Probe::new();
        let first = Instant::now();
        self.run(|c| text(c, &["PING"]))?;
        out.insert("connect_ms".into(), json!(ms(first)));
        let mut pings = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            self.run(|c| text(c, &["PING"]))?;
            pings.push(ms(t));
        }
        out.insert("ping_ms".into(), json!(pings));
        for section in ["server", "persistence", "replication"] {
            let r = self.run_text(&["INFO", section]);
            out.insert(format!("info_{section}"), outcome(r));
        }
        let mut config = Map::new();
        for name in CONFIG {
            let r = self.run(|c| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg(name)
                    .query::<Vec<String>>(c)
            });
            let r = r.map(|pair| Value::from(pair.get(1).cloned().unwrap_or_default()));
            config.insert(name.into(), outcome(r));
        }
        out.insert("config".into(), Value::Object(config));
        let evalsha = self.run(|c| {
            redis::cmd("EVALSHA")
                .arg(NO_SCRIPT)
                .arg(1)
                .arg(PROBE_KEY)
                .query::<redis::Value>(c)
        });
        out.insert("evalsha".into(), outcome(noscript_is_ok(evalsha)));
        match self {
            Backend::Standalone(s) => {
                let prep_db = s.target.prep_db;
                let mut dbs = Map::new();
                for db in [Some(prep_db), cache_db].into_iter().flatten() {
                    dbs.insert(db.to_string(), outcome(self.select(db, prep_db)));
                }
                out.insert("dbs".into(), Value::Object(dbs));
                let multi = self.run(|c| {
                    let mut p = redis::pipe();
                    p.cmd("MULTI").cmd("EXEC");
                    p.query::<redis::Value>(c)
                });
                out.insert("multi_exec".into(), outcome(multi.map(|_| json!("OK"))));
            }
            Backend::Cluster(_) => {
                out.insert(
                    "cluster_info".into(),
                    outcome(self.run_text(&["CLUSTER", "INFO"])),
                );
            }
        }
        Ok(out)
    }

    /// `SELECT db` then `DBSIZE` there, then back to the prep DB.
    fn select(&self, db: i64, prep_db: i64) -> CoreResult<Value> {
        let size: i64 = self.run(|c| {
            let mut p = redis::pipe();
            p.cmd("SELECT").arg(db).ignore();
            p.cmd("DBSIZE");
            p.cmd("SELECT").arg(prep_db).ignore();
            p.query::<(i64,)>(c).map(|(n,)| n)
        })?;
        Ok(json!({ "keys": size }))
    }
}

/// `NOSCRIPT` from an `EVALSHA` of no script: the command is allowed.
fn noscript_is_ok(r: CoreResult<redis::Value>) -> CoreResult<Value> {
    match r {
        Ok(_) => Ok(json!("OK")),
        Err(CoreError::Command(m)) if m.to_ascii_lowercase().contains("noscript") => {
            Ok(json!("allowed"))
        }
        Err(e) => Err(e),
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
