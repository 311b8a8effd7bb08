//! Invalidation for a run: which cache keys a task names (planned from the
//! rules, localised by the backend), the event payload, `timestamp(task)`
//! (record + delete + publish in one round trip), and the explicit deletes.

use crate::backend::{self, Backend};
use crate::errors::CoreResult;
use crate::fields;
use crate::mutation::{Event, Mutation, Outcome};
use crate::preflight::{self, Preflight};
use crate::prep::{now_secs, Prep};
use crate::rules::model::DEFAULT_CACHE_DB;
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
    /// false, delete the caches the rules in force name, all in one round trip.
    pub fn timestamp(&self, task: &str, invalidate: bool, now: Option<i64>) -> CoreResult<Outcome> {
        let rules = if invalidate { rules::active() } else { None };
        self.timestamp_with(rules.as_deref(), task, now)
    }

    /// `timestamp(task)`, then the checklist of the hash the write read, both
    /// with one snapshot of the rules (taken before the write: a reload in
    /// between is never seen, and nothing can fail after the write).
    pub fn timestamp_and_preflight(&self, task: &str) -> CoreResult<Preflight> {
        let rules = rules::require_active()?;
        let out = self.timestamp_with(Some(&rules), task, None)?;
        Ok(preflight::evaluate(&rules, &out.hash, false))
    }

    /// `timestamp(task)` with `rules` (none: record the timestamp only).
    fn timestamp_with(
        &self,
        rules: Option<&Rules>,
        task: &str,
        now: Option<i64>,
    ) -> CoreResult<Outcome> {
        let b = backend::current()?;
        let ts = now.unwrap_or_else(now_secs);
        let rules = rules.filter(|r| match b.check_cache_db(r.db) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("redisprep: invalidation skipped (timestamps are still recorded). {e}");
                false
            }
        });
        let (keys, patterns) = match rules {
            Some(r) => self.task_keys(&b, r, task),
            None => (Vec::new(), Vec::new()),
        };
        let event = match rules {
            Some(r) if !keys.is_empty() => self.event(&b, r, task, &keys, ts),
            _ => None,
        };
        let db = rules.map_or(DEFAULT_CACHE_DB, |r| r.db);
        let mut out = self.write(
            &b,
            Mutation {
                sets: vec![(fields::timestamp(task), ts.to_string())],
                cache_keys: keys,
                cache_db: db,
                event,
                ..Mutation::default()
            },
        )?;
        stats::TIMESTAMPS.incr();
        if !patterns.is_empty() {
            let (more, short) = b.scan_delete(db, &patterns)?;
            out.deleted.extend(more);
            out.shortfall = out.shortfall.or(short);
        }
        if rules.is_some() {
            self.invalidated(task, out.deleted.len());
        }
        out.replicated()
    }

    /// Count and log one invalidation of `task` (with or without a timestamp).
    fn invalidated(&self, task: &str, deleted: usize) {
        stats::INVALIDATIONS.incr();
        log::debug!(
            "redisprep: invalidated run={:?} task={task:?} keys_deleted={deleted}",
            self.run_id
        );
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
        match shortfall {
            Some(s) => Err(s.into_error()),
            None => Ok(deleted),
        }
    }

    /// `invalidate_caches_for_task`: the caches of `task` for this run, no timestamp.
    pub fn invalidate_task(&self, rules: &Rules, task: &str) -> CoreResult<Vec<String>> {
        let deleted = self.delete_plans(rules.plan(task, &self.vars()), rules.db)?;
        self.invalidated(task, deleted.len());
        Ok(deleted)
    }

    /// `refresh_controller_cache`: one controller's caches for this run;
    /// `UnknownController` when the rules have no such controller.
    pub fn refresh_controller(&self, rules: &Rules, controller: &str) -> CoreResult<Vec<String>> {
        let plan = rules.controller_plan(controller, &self.vars())?;
        self.delete_plans(vec![plan], rules.db)
    }

    /// `clear_all_caches`: every controller's caches for this run.
    pub fn clear_all(&self, rules: &Rules) -> CoreResult<Vec<String>> {
        self.delete_plans(rules.all_plans(&self.vars()), rules.db)
    }
}
