//! Invalidation for a run: which cache keys a task names (planned from the
//! rules, localised by the backend), the event payload, `timestamp(task)`
//! (record + delete + publish in one round trip), and the explicit deletes.

use crate::backend::{self, Backend};
use crate::errors::CoreResult;
use crate::mutation::{Event, Mutation, Outcome};
use crate::prep::{now_secs, Prep};
use crate::rules::{self, KeyPlan, Rules};
use crate::stats;

impl Prep {
    /// What `task` invalidates for this run, with keys as they are in Redis
    /// (prefixed with the run's hash tag on the cluster layout).
    pub fn plan(&self, rules: &Rules, task: &str) -> CoreResult<Vec<KeyPlan>> {
        let b = backend::current()?;
        Ok(b.localise(&self.run_id, rules.plan(task, &self.vars())))
    }

    /// Exact keys (as stored in Redis) and SCAN patterns `task` invalidates for this run.
    fn task_keys(&self, b: &Backend, r: &Rules, task: &str) -> (Vec<String>, Vec<String>) {
        let mut keys = r.keys_for(task, &self.vars());
        b.localise_keys(&self.run_id, &mut keys);
        let has_patterns = r.task(task).is_some_and(|t| {
            t.closure
                .iter()
                .any(|c| !r.controllers[c.controller].patterns.is_empty())
        });
        let patterns = if has_patterns {
            b.localise(&self.run_id, r.plan(task, &self.vars()))
                .into_iter()
                .flat_map(|p| p.patterns)
                .collect()
        } else {
            Vec::new()
        };
        (keys, patterns)
    }

    fn event(
        &self,
        b: &Backend,
        rules: &Rules,
        task: &str,
        keys: &[String],
        ts: i64,
    ) -> Option<Event> {
        let c = b.common();
        if !c.events {
            return None;
        }
        let payload = serde_json::json!({
            "run_id": self.run_id,
            "wd": self.abs_wd,
            "task": task,
            "keys": keys,
            "timestamp": ts,
        });
        Some(Event {
            channel: c.events_channel.clone(),
            payload: payload.to_string(),
            checks: rules.checks_spec.clone(),
        })
    }

    /// `timestamp(task)`: record `int(time.time())` and, unless `invalidate` is
    /// false, delete the caches the rules name, all in one round trip.
    pub fn timestamp(&self, task: &str, invalidate: bool, now: Option<i64>) -> CoreResult<Outcome> {
        let b = backend::current()?;
        let ts = now.unwrap_or_else(now_secs);
        let mut active = if invalidate { rules::active() } else { None };
        if let Some(r) = &active {
            if let Err(e) = b.check_cache_db(r.db) {
                log::warn!("redisprep: invalidation skipped (timestamps are still recorded). {e}");
                active = None;
            }
        }
        let (keys, patterns, db) = match &active {
            Some(r) => {
                let (k, p) = self.task_keys(&b, r, task);
                (k, p, r.db)
            }
            None => (Vec::new(), Vec::new(), 13),
        };
        let event = match (&active, keys.is_empty()) {
            (Some(r), false) => self.event(&b, r, task, &keys, ts),
            _ => None,
        };
        let mut out = self.write(
            &b,
            Mutation {
                sets: vec![(format!("timestamps:{task}"), ts.to_string())],
                cache_keys: keys,
                cache_db: db,
                event,
                ..Mutation::default()
            },
        )?;
        stats::TIMESTAMPS.incr();
        if !patterns.is_empty() {
            let (more, short) = b.scan_delete(db, &patterns)?;
            stats::KEYS_DELETED.add(more.len() as u64);
            out.deleted.extend(more);
            out.shortfall = out.shortfall.or(short);
        }
        if active.is_some() {
            stats::INVALIDATIONS.incr();
            log::debug!(
                "redisprep: invalidated run={:?} task={task:?} keys_deleted={}",
                self.run_id,
                out.deleted.len()
            );
        }
        out.replicated()
    }

    /// Delete the caches of the given plans (as the rules render them; the
    /// backend localises them): exact keys in one round trip, patterns with
    /// SCAN. Returns the keys that existed.
    fn delete_plans(&self, plans: Vec<KeyPlan>, db: i64) -> CoreResult<Vec<String>> {
        let b = backend::current()?;
        let mut keys: Vec<String> = Vec::new();
        let mut patterns: Vec<String> = Vec::new();
        for p in b.localise(&self.run_id, plans) {
            for k in p.keys {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            patterns.extend(p.patterns);
        }
        let (mut deleted, mut shortfall) = b.delete_keys(db, &keys)?;
        if !patterns.is_empty() {
            let (more, short) = b.scan_delete(db, &patterns)?;
            deleted.extend(more);
            shortfall = shortfall.or(short);
        }
        stats::KEYS_DELETED.add(deleted.len() as u64);
        match shortfall {
            Some(s) => {
                stats::REPLICATION_ERRORS.incr();
                Err(s.into_error())
            }
            None => Ok(deleted),
        }
    }

    /// `invalidate_caches_for_task`: the caches of `task` for this run, no timestamp.
    pub fn invalidate_task(&self, rules: &Rules, task: &str) -> CoreResult<Vec<String>> {
        let deleted = self.delete_plans(rules.plan(task, &self.vars()), rules.db)?;
        stats::INVALIDATIONS.incr();
        log::debug!(
            "redisprep: invalidated run={:?} task={task:?} keys_deleted={}",
            self.run_id,
            deleted.len()
        );
        Ok(deleted)
    }

    /// `refresh_controller_cache`: one controller's caches for this run;
    /// `None` when the rules have no such controller.
    pub fn refresh_controller(
        &self,
        rules: &Rules,
        controller: &str,
    ) -> CoreResult<Option<Vec<String>>> {
        match rules.controller_plan(controller, &self.vars()) {
            Some(plan) => self.delete_plans(vec![plan], rules.db).map(Some),
            None => Ok(None),
        }
    }

    /// `clear_all_caches`: every controller's caches for this run.
    pub fn clear_all(&self, rules: &Rules) -> CoreResult<Vec<String>> {
        self.delete_plans(rules.all_plans(&self.vars()), rules.db)
    }
}
