//! Process-wide counters, exposed as `redisprep.stats()`. Each is counted in
//! one place, named on it.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    /// Add one.
    pub fn incr(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// `timestamp()` calls that wrote (`Prep::timestamp_with`).
pub static TIMESTAMPS: Counter = Counter::new();
/// Invalidations with or without a timestamp (`Prep::invalidated`).
pub static INVALIDATIONS: Counter = Counter::new();
/// Cache keys that existed and were deleted (`backend::existed`, where every `DEL` reply is read).
pub static KEYS_DELETED: Counter = Counter::new();
/// Requests that failed after their retries (`backend::pool::with_conn`).
pub static FAILURES: Counter = Counter::new();
/// Round trips to Redis (`backend::pool`: each request, and each `WAIT` behind a write).
pub static ROUND_TRIPS: Counter = Counter::new();
/// New connections (`backend::pool::with_conn`).
pub static CONNECTS: Counter = Counter::new();
/// Dump files written (`dump`).
pub static DUMPS_WRITTEN: Counter = Counter::new();
/// Lost hashes rebuilt from the dump (`Prep::recover`).
pub static RECOVERIES: Counter = Counter::new();
/// Rules files reloaded after a change (`rules::try_load`).
pub static RULES_RELOADS: Counter = Counter::new();
/// Operations refused because fewer than `min_replicas` replicas acknowledged
/// their write in time (`Shortfall::into_error`).
pub static REPLICATION_ERRORS: Counter = Counter::new();
/// Writes whose dump held state that Redis had lost (see `divergence`).
pub static DIVERGENCES: Counter = Counter::new();
/// Fields those writes found lost or older in Redis.
pub static DIVERGENT_FIELDS: Counter = Counter::new();
/// Re-reads of a dump found empty or cut short (a legacy writer mid-write).
pub static TORN_DUMP_RETRIES: Counter = Counter::new();

/// Snapshot of every counter, by name.
pub fn snapshot() -> Vec<(&'static str, u64)> {
    vec![
        ("timestamps", TIMESTAMPS.get()),
        ("invalidations", INVALIDATIONS.get()),
        ("keys_deleted", KEYS_DELETED.get()),
        ("failures", FAILURES.get()),
        ("round_trips", ROUND_TRIPS.get()),
        ("connects", CONNECTS.get()),
        ("dumps_written", DUMPS_WRITTEN.get()),
        ("recoveries", RECOVERIES.get()),
        ("rules_reloads", RULES_RELOADS.get()),
        ("replication_errors", REPLICATION_ERRORS.get()),
        ("divergences", DIVERGENCES.get()),
        ("divergent_fields", DIVERGENT_FIELDS.get()),
        ("torn_dump_retries", TORN_DUMP_RETRIES.get()),
    ]
}
