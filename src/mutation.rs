//! A write to a run's hash, what it did, and the snapshots it leaves: the
//! values the prep API, the backend and the divergence check share.

use std::sync::Arc;

use crate::errors::CoreResult;
use crate::replication::Shortfall;
use crate::rules::model::DEFAULT_CACHE_DB;

/// Hash field of the "loaded" flag.
pub const LOADED: &str = "attrs:loaded";

/// One hash snapshot, as HGETALL returned it.
pub type Snapshot = Arc<Vec<(String, String)>>;

/// A change to the run's hash, applied atomically with its cache deletions.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub sets: Vec<(String, String)>,
    pub dels: Vec<String>,
    /// Cache keys to delete in `cache_db`.
    pub cache_keys: Vec<String>,
    /// The rules' cache DB (standalone layout; the cluster has one keyspace).
    pub cache_db: i64,
    /// The event to PUBLISH inside the transaction.
    pub event: Option<Event>,
}

impl Default for Mutation {
    /// No change; the cache DB is [`DEFAULT_CACHE_DB`] until the rules name one.
    fn default() -> Self {
        Mutation {
            sets: Vec::new(),
            dels: Vec::new(),
            cache_keys: Vec::new(),
            cache_db: DEFAULT_CACHE_DB,
            event: None,
        }
    }
}

/// An invalidation event: `payload` (a JSON object) is published on `channel`
/// with the checklist of the hash after the write appended by Redis itself
/// (see [`crate::event`]); `checks` is the compiled checks spec ("" for none).
#[derive(Debug, Clone)]
pub struct Event {
    pub channel: String,
    pub payload: String,
    pub checks: String,
}

/// What a mutation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub hash: Snapshot,
    /// The cache keys that existed and were deleted.
    pub deleted: Vec<String>,
    /// True when the run's hash had been lost and was rebuilt from the dump.
    pub recovered: bool,
    /// Set when fewer replicas than `min_replicas` acknowledged the write.
    pub shortfall: Option<Shortfall>,
}

impl Outcome {
    /// The outcome, or `ReplicationError` when too few replicas acknowledged it.
    pub fn replicated(self) -> CoreResult<Outcome> {
        match self.shortfall {
            Some(s) => Err(s.into_error()),
            None => Ok(self),
        }
    }
}
