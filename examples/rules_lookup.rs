//! Cost of the rules engine's hot-path lookups, measured in Rust:
//! `cargo run --release --example rules_lookup`.
//!
//! Prints nanoseconds per `controllers_for` (a hash lookup into the closure
//! computed at load time) and per `keys_for` (rendering the keys for a run).

use std::hint::black_box;
use std::time::Instant;

use redisprep::rules::{self, RunVars};

fn per_call_ns(iterations: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rules = rules::load(None)?;
    let tasks: Vec<String> = rules.tasks.iter().map(|t| t.name.clone()).collect();
    let vars = RunVars {
        wd: "/geodata/weppcloud_runs/ab/abc-def",
        run_id: "abc-def",
    };
    let n = 1_000_000u32;
    let mut i = 0usize;
    let lookup = per_call_ns(n, || {
        i = (i + 1) % tasks.len();
        black_box(rules.controllers_for(black_box(&tasks[i])));
    });
    let render = per_call_ns(n / 10, || {
        i = (i + 1) % tasks.len();
        black_box(rules.keys_for(black_box(&tasks[i]), &vars));
    });
    let worst = tasks
        .iter()
        .map(|t| (rules.controllers_for(t).len(), t))
        .max()
        .map(|(n, t)| format!("{t} ({n} controllers)"))
        .unwrap_or_default();
    println!(
        "rules: {} tasks, {} controllers",
        tasks.len(),
        rules.controllers.len()
    );
    println!("controllers_for: {lookup:.1} ns/call (averaged over every task)");
    println!("keys_for:        {render:.1} ns/call (render + dedupe; largest closure: {worst})");
    Ok(())
}
