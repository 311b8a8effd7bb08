//! Opt-in replicated acknowledgement (`min_replicas`, `replica_timeout`): a
//! write returns only once `WAIT <n> <ms>`, sent behind it on the same
//! connection, says that `n` replicas have it. Off by default (0 replicas):
//! then no `WAIT` is sent and nothing else changes.

use std::time::Duration;

use redis::Value;

use crate::env::{env_parse, seconds};
use crate::errors::{CoreError, CoreResult};
use crate::value;

/// Default `replica_timeout` in seconds.
pub const DEFAULT_TIMEOUT: f64 = 1.0;

/// The replicated-acknowledgement settings of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replication {
    /// Replicas that must acknowledge each write; 0 = off.
    pub min_replicas: u32,
    /// How long `WAIT` may block.
    pub timeout: Duration,
}

impl Replication {
    /// From `configure()` values, else `REDISPREP_MIN_REPLICAS` /
    /// `REDISPREP_REPLICA_TIMEOUT`, else off / 1 s.
    pub fn resolve(min_replicas: Option<i64>, timeout: Option<f64>) -> CoreResult<Replication> {
        let n = match min_replicas {
            Some(n) => n,
            None => env_parse("REDISPREP_MIN_REPLICAS")?.unwrap_or(0),
        };
        let min_replicas = u32::try_from(n)
            .map_err(|_| CoreError::Config(format!("min_replicas must be 0 or more, got {n}")))?;
        let timeout = seconds(
            "replica_timeout",
            match timeout {
                Some(t) => t,
                None => env_parse("REDISPREP_REPLICA_TIMEOUT")?.unwrap_or(DEFAULT_TIMEOUT),
            },
        )?;
        Ok(Replication {
            min_replicas,
            timeout,
        })
    }

    /// True when writes wait for replicas.
    pub fn enabled(&self) -> bool {
        self.min_replicas > 0
    }

    /// What a write's reply may take on top of the reply timeout (`WAIT` blocks).
    pub fn budget(&self) -> Duration {
        if self.enabled() {
            self.timeout
        } else {
            Duration::ZERO
        }
    }

    /// `WAIT <min_replicas> <ms>`, or `None` when off. Never `WAIT n 0`
    /// (which would block forever): at least 1 ms.
    pub fn wait_cmd(&self) -> Option<redis::Cmd> {
        if !self.enabled() {
            return None;
        }
        let ms = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(self.min_replicas).arg(ms);
        Some(cmd)
    }

    /// Read `WAIT`'s reply: `Some(shortfall)` when fewer replicas acknowledged.
    pub fn check(&self, reply: &Value) -> CoreResult<Option<Shortfall>> {
        if let Value::ServerError(e) = reply {
            return Err(CoreError::Command(format!("WAIT failed: {e}")));
        }
        let acked = value::int(reply)?;
        Ok((acked < i64::from(self.min_replicas)).then_some(Shortfall {
            acked,
            wanted: self.min_replicas,
            timeout: self.timeout,
        }))
    }
}

/// A write applied on the primary that too few replicas acknowledged in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    pub acked: i64,
    pub wanted: u32,
    pub timeout: Duration,
}

impl Shortfall {
    /// The error a caller sees (`ReplicationError` in Python), counted in
    /// `replication_errors` (each failed operation reports it once).
    pub fn into_error(self) -> CoreError {
        crate::stats::REPLICATION_ERRORS.incr();
        CoreError::Replication {
            acked: self.acked,
            wanted: self.wanted,
            timeout_secs: self.timeout.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default_sends_nothing() {
        let r = Replication::resolve(Some(0), None).unwrap();
        assert!(!r.enabled());
        assert!(r.wait_cmd().is_none());
        assert_eq!(r.budget(), Duration::ZERO);
    }

    #[test]
    fn wait_never_blocks_forever() {
        let r = Replication::resolve(Some(2), Some(0.0001)).unwrap();
        let packed = r.wait_cmd().unwrap().get_packed_command();
        assert_eq!(packed, b"*3\r\n$4\r\nWAIT\r\n$1\r\n2\r\n$1\r\n1\r\n");
    }

    #[test]
    fn bad_values_are_config_errors() {
        assert!(matches!(
            Replication::resolve(Some(-1), None),
            Err(CoreError::Config(_))
        ));
        assert!(matches!(
            Replication::resolve(Some(1), Some(0.0)),
            Err(CoreError::Config(_))
        ));
    }

    #[test]
    fn shortfall_names_the_counts() {
        let r = Replication::resolve(Some(2), Some(0.5)).unwrap();
        assert!(r.check(&Value::Int(2)).unwrap().is_none());
        let e = r.check(&Value::Int(1)).unwrap().unwrap().into_error();
        let text = e.to_string();
        assert!(text.contains("1 of 2"), "{text}");
        assert!(text.contains("not yet safe"), "{text}");
    }
}
