//! The floor for `bench/bench_prep.py`: what the bare minimum costs, measured in Rust.
//!
//! One call is one round trip of the same MULTI/EXEC transaction redisprep's
//! `timestamp()` sends (HEXISTS; HSET; SELECT cache DB; DEL per key; SELECT
//! prep DB; HGETALL; EXEC) on a plain `redis` crate connection, then one
//! atomic write (temp file + rename) of the same dump bytes
//! (`redisprep::pyjson::dumps_pairs`). No lock, no pool, no Python.
//!
//! ```text
//! cargo build --release --example floor
//! target/release/examples/floor --url redis://127.0.0.1:6379/0 --dir /dev/shm/run \
//!     --op timestamp --keys 3 --iters 1000 --warmup 100
//! ```
//!
//! `--op hget` measures one HGET round trip instead (the floor of `prep[task]`);
//! `--op core --rules FILE` measures redisprep's own `Prep::timestamp` called from
//! Rust (the crate without Python: pool, lock, rules, dump), to split the cost.
//! Keys to invalidate are `<dir>/c<i>.nodb` in DB 13, re-created (untimed)
//! before every call, like the Python variants of the benchmark do.
//! Prints one line of JSON: `{"op": ..., "keys": n, "samples_ns": [...]}`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use redis::{ConnectionLike, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    url: String,
    dir: String,
    op: String,
    keys: usize,
    iters: usize,
    warmup: usize,
    task: String,
    cache_db: i64,
    rules: Option<String>,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        url: String::new(),
        dir: String::new(),
        op: "timestamp".into(),
        keys: 0,
        iters: 1000,
        warmup: 100,
        task: "bench".into(),
        cache_db: 13,
        rules: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => a.url = val,
            "--dir" => a.dir = val,
            "--op" => a.op = val,
            "--keys" => a.keys = val.parse()?,
            "--iters" => a.iters = val.parse()?,
            "--warmup" => a.warmup = val.parse()?,
            "--task" => a.task = val,
            "--cache-db" => a.cache_db = val.parse()?,
            "--rules" => a.rules = Some(val),
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if a.url.is_empty() || a.dir.is_empty() {
        return Err("usage: floor --url URL --dir RUN_DIR [--op timestamp|hget] [--keys N] [--iters N] [--warmup N] [--task NAME]".into());
    }
    Ok(a)
}

/// Temp file in the same folder, write, close, rename: the atomic write alone.
fn write_atomic(dir: &Path, n: u64, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".redisprep.dump.floor.{n}.tmp"));
    let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, dir.join("redisprep.dump"))
}

/// Re-create the cache keys to invalidate (untimed).
fn refill_keys(con: &mut redis::Connection, keys: &[String]) -> Res<()> {
    if !keys.is_empty() {
        let mut p = redis::pipe();
        for k in keys {
            p.cmd("SET").arg(k).arg("cached").ignore();
        }
        p.exec(con)?;
    }
    Ok(())
}

fn pairs(v: &Value) -> Res<Vec<(String, String)>> {
    let text = |v: &Value| -> Res<String> {
        match v {
            Value::BulkString(b) => Ok(String::from_utf8(b.clone())?),
            Value::SimpleString(s) => Ok(s.clone()),
            other => Err(format!("unexpected value {other:?}").into()),
        }
    };
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|kv| Ok((text(&kv[0])?, text(&kv[1])?)))
            .collect(),
        Value::Map(items) => items
            .iter()
            .map(|(k, v)| Ok((text(k)?, text(v)?)))
            .collect(),
        other => Err(format!("unexpected HGETALL reply {other:?}").into()),
    }
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let dir = Path::new(&a.dir);
    let run_id = dir
        .file_name()
        .and_then(|s| s.to_str())
        .ok_or("--dir has no last component")?
        .to_string();
    let client = redis::Client::open(a.url.as_str())?;
    let mut con = client.get_connection()?;
    let prep_db = con.get_db();
    let mut refill = client.get_connection()?;
    redis::cmd("SELECT").arg(a.cache_db).exec(&mut refill)?;
    let keys: Vec<String> = (0..a.keys)
        .map(|i| format!("{}/c{i}.nodb", a.dir))
        .collect();
    let field = format!("timestamps:{}", a.task);
    let core = redisprep::prep::Prep::new(&a.dir);
    if a.op == "core" {
        redisprep::backend::configure(redisprep::settings::Options {
            url: Some(a.url.clone()),
            ..Default::default()
        })?;
        redisprep::rules::set_active_path(a.rules.clone());
    }
    let mut samples = Vec::with_capacity(a.iters);
    for i in 0..(a.warmup + a.iters) {
        let elapsed = match a.op.as_str() {
            "timestamp" => {
                refill_keys(&mut refill, &keys)?;
                let ts = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
                let start = Instant::now();
                let mut p = redis::pipe();
                p.atomic();
                p.cmd("HEXISTS").arg(&run_id).arg("attrs:loaded");
                p.cmd("HSET").arg(&run_id).arg(&field).arg(ts);
                if !keys.is_empty() {
                    p.cmd("SELECT").arg(a.cache_db);
                    for k in &keys {
                        p.cmd("DEL").arg(k);
                    }
                    p.cmd("SELECT").arg(prep_db);
                }
                p.cmd("HGETALL").arg(&run_id);
                let mut replies: Vec<Value> = p.query(&mut con)?;
                let hash = pairs(&replies.pop().ok_or("empty EXEC reply")?)?;
                let text = redisprep::pyjson::dumps_pairs(
                    hash.iter()
                        .filter(|(k, _)| !k.starts_with("locked:"))
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                write_atomic(dir, i as u64, text.as_bytes())?;
                start.elapsed()
            }
            "core" => {
                refill_keys(&mut refill, &keys)?;
                let start = Instant::now();
                let out = core.timestamp(&a.task, true, None)?;
                let elapsed = start.elapsed();
                if out.deleted.len() != keys.len() {
                    return Err(format!("deleted {:?}, expected {keys:?}", out.deleted).into());
                }
                elapsed
            }
            "hget" => {
                let start = Instant::now();
                let v: Option<String> = redis::cmd("HGET")
                    .arg(&run_id)
                    .arg(&field)
                    .query(&mut con)?;
                std::hint::black_box(v);
                start.elapsed()
            }
            other => return Err(format!("unknown --op {other}").into()),
        };
        if i >= a.warmup {
            samples.push(elapsed.as_nanos().to_string());
        }
    }
    println!(
        "{{\"op\": \"{}\", \"keys\": {}, \"samples_ns\": [{}]}}",
        a.op,
        a.keys,
        samples.join(", ")
    );
    Ok(())
}
