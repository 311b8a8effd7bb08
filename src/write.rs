//! A write to a run: one round trip on the backend, then the dump, under the
//! run folder's lock; and recovery, when the run's hash had been lost while
//! its dump survived (e.g. Redis restarted empty).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::{Applied, Backend, Restored};
use crate::divergence;
use crate::dump::{self, RunDir};
use crate::errors::CoreResult;
use crate::mutation::{Mutation, Outcome};
use crate::prep::Prep;
use crate::stats;

impl Prep {
    /// Apply `m` on `b`, then write the dump; a replication shortfall is left
    /// in the outcome.
    ///
    /// The run folder's lock is held from before the transaction until the
    /// dump is renamed into place, so the file always ends at the state of the
    /// last transaction. If the hash had been lost (no `attrs:loaded`) while a
    /// dump exists, the dump is merged back under the change first, so a
    /// partial hash never overwrites the dump.
    pub(crate) fn write(&self, b: &Backend, m: Mutation) -> CoreResult<Outcome> {
        let run_dir = RunDir::open_locked(&self.wd)?;
        let key = b.hash_key(&self.run_id);
        let Applied {
            had_loaded,
            deleted,
            mut hash,
            mut shortfall,
        } = b.apply(&key, &m)?;
        let mut recovered = false;
        if let Some(dir) = &run_dir {
            if !had_loaded {
                if let Some((merged, short)) = self.recover(b, &key, &m, &hash)? {
                    hash = merged;
                    recovered = true;
                    shortfall = shortfall.or(short);
                }
            } else {
                divergence::check(&self.run_id, dir, &hash, &m);
            }
        }
        let hash = Arc::new(hash);
        if let Some(dir) = &run_dir {
            if let Some(id) = dir.write_hash(&hash, b.common().fsync)? {
                divergence::remember(dir.dump_path(), id, hash.clone());
            }
        }
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(hash.clone());
        Ok(Outcome {
            hash,
            deleted,
            recovered,
            shortfall,
        })
    }

    /// The hash lost `attrs:loaded`: put back every dump field that the hash
    /// lacks and this mutation did not delete.
    fn recover(
        &self,
        b: &Backend,
        key: &str,
        m: &Mutation,
        hash: &[(String, String)],
    ) -> CoreResult<Option<Restored>> {
        let path = PathBuf::from(self.dump_filepath());
        let dumped = match dump::read_dump_settled(&path) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(None),
            Err(e) => {
                log::warn!(
                    "redisprep: run {:?} lost its Redis hash and its dump cannot be read: {e}",
                    self.run_id
                );
                return Err(e);
            }
        };
        let present: HashSet<&str> = hash.iter().map(|(k, _)| k.as_str()).collect();
        let deleted: HashSet<&str> = m.dels.iter().map(String::as_str).collect();
        let missing: Vec<&(String, String)> = dumped
            .iter()
            .filter(|(k, _)| !present.contains(k.as_str()) && !deleted.contains(k.as_str()))
            .collect();
        stats::RECOVERIES.incr();
        log::warn!(
            "redisprep: run {:?} had lost its Redis hash; restored {} field(s) from {}",
            self.run_id,
            missing.len(),
            path.display()
        );
        b.restore_missing(key, &missing).map(Some)
    }
}
