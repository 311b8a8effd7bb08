//! The divergence check's own cost on the hot path, for a wepppy-sized dump
//! (34 fields), on ext4 and tmpfs: when this process wrote the dump last (one
//! `lstat`, then a compare from memory) and when another process did (read +
//! parse + compare).
//!
//! `cargo run --release --example divergence_cost [ITERS]`

use std::sync::Arc;
use std::time::Instant;

use redisprep::divergence;
use redisprep::dump::RunDir;
use redisprep::mutation::Mutation;

fn median(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    (q(0.5), q(0.99))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let mut hash: Vec<(String, String)> = (0..32)
        .map(|i| {
            (
                format!("timestamps:task_{i}"),
                format!("{}", 1_700_000_000 + i),
            )
        })
        .collect();
    hash.insert(0, ("attrs:loaded".into(), "true".into()));
    hash.push(("rq:build_climate_rq".into(), "3f1c2a9e-job".into()));
    let hash = Arc::new(hash);
    let m = Mutation {
        sets: vec![("timestamps:task_0".into(), "1700000000".into())],
        ..Mutation::default()
    };
    let before = redisprep::stats::DIVERGENCES.get();
    for base in ["/var/tmp", "/dev/shm"] {
        let dir =
            std::path::Path::new(base).join(format!("redisprep-divcost-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let wd = dir.to_string_lossy().into_owned();
        let run = RunDir::open_locked(&wd)?.ok_or("no folder")?;
        let pairs = || hash.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let mut slow = Vec::with_capacity(iters);
        run.write_dump(pairs(), false)?; // not remembered: as if another process wrote it
        for _ in 0..iters {
            let t = Instant::now();
            divergence::check("bench", &run, &hash, &m);
            slow.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        let id = run.write_dump(pairs(), false)?.ok_or("no file id")?;
        divergence::remember(run.dump_path(), id, hash.clone());
        let mut fast = Vec::with_capacity(iters);
        for _ in 0..iters {
            let t = Instant::now();
            divergence::check("bench", &run, &hash, &m);
            fast.push(t.elapsed().as_nanos() as f64 / 1000.0);
        }
        let (f50, f99) = median(fast);
        let (s50, s99) = median(slow);
        println!(
            "{base}: divergence check, this process wrote the dump: median {f50:.2} us (p99 {f99:.2}); \
             another process did (read + parse): median {s50:.2} us (p99 {s99:.2})"
        );
        drop(run);
        std::fs::remove_dir_all(&dir)?;
    }
    assert_eq!(
        redisprep::stats::DIVERGENCES.get(),
        before,
        "no divergence expected"
    );
    Ok(())
}
