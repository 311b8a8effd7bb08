//! The one error type of the core. The binding layer maps it to Python
//! exceptions in exactly one place (`py::errors`).

use std::path::PathBuf;

/// One validation problem in a rules file, with the JSON path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleIssue {
    /// Dotted JSON path, e.g. `tasks.build_climate.invalidates[2]`.
    pub path: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for RuleIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every failure the core can report.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Redis could not be reached (connect, handshake, or the socket broke).
    #[error("cannot reach Redis at {addr}: {detail}")]
    Connection { addr: String, detail: String },
    /// Redis did not answer within the configured timeout.
    #[error("Redis at {addr} timed out: {detail}")]
    Timeout { addr: String, detail: String },
    /// Redis answered with an error.
    #[error("Redis command failed: {0}")]
    Command(String),
    /// Reading or writing `redisprep.dump` failed at the OS level.
    #[error("{op} {path}: {source}")]
    DumpIo {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `redisprep.dump` exists but is not a JSON object of strings.
    #[error("invalid dump file {path}: {detail}")]
    DumpFormat { path: PathBuf, detail: String },
    /// A rules file failed to load or validate; every problem is listed.
    #[error("{}", format_rule_issues(.source_name, .issues))]
    Rules {
        source_name: String,
        issues: Vec<RuleIssue>,
    },
    /// A key, controller or task argument was not acceptable.
    #[error("{0}")]
    InvalidKey(String),
    /// A controller name the rules in force do not define.
    #[error("unknown controller {name:?} (not in {rules})")]
    UnknownController { name: String, rules: String },
    /// A configuration value was not acceptable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A value read from Redis was not of the expected shape.
    #[error("unexpected value in Redis: {0}")]
    Data(String),
    /// Fewer replicas than `min_replicas` acknowledged a write within
    /// `replica_timeout`: it is applied on the primary (and in the dump) but
    /// a failover before it replicates would lose it.
    #[error(
        "write acknowledged by {acked} of {wanted} required replica(s) within \
         {timeout_secs:.3} s: it is applied on the primary (and in the run's dump) \
         but not yet safe from a failover"
    )]
    Replication {
        acked: i64,
        wanted: u32,
        timeout_secs: f64,
    },
}

fn format_rule_issues(source: &str, issues: &[RuleIssue]) -> String {
    let mut out = format!(
        "{source}: {} error{}",
        issues.len(),
        if issues.len() == 1 { "" } else { "s" }
    );
    for issue in issues {
        out.push_str("\n  ");
        out.push_str(&issue.to_string());
    }
    out
}

/// Result alias of the core.
pub type CoreResult<T> = Result<T, CoreError>;

impl CoreError {
    /// Wrap an I/O error on the dump file.
    pub fn dump_io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::DumpIo {
            op,
            path: path.into(),
            source,
        }
    }

    /// Build the error from a redis-rs error, naming the server (never the password).
    pub fn from_redis(addr: &str, err: &redis::RedisError) -> Self {
        let detail = redact(&err.to_string());
        if err.is_timeout() {
            CoreError::Timeout {
                addr: addr.to_string(),
                detail,
            }
        } else if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_unrecoverable_error()
        {
            CoreError::Connection {
                addr: addr.to_string(),
                detail,
            }
        } else {
            CoreError::Command(detail)
        }
    }

    /// True for failures that leave the connection unusable.
    pub fn is_connection_level(&self) -> bool {
        matches!(
            self,
            CoreError::Connection { .. } | CoreError::Timeout { .. }
        )
    }
}

/// Strip anything that looks like URL credentials (`user:pass@`) from a message.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        if let Some(at) = authority.rfind('@') {
            out.push_str("***@");
            out.push_str(&authority[at + 1..]);
        } else {
            out.push_str(authority);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_credentials() {
        assert_eq!(
            redact("failed redis://user:s3cret@host:6379/0 now"),
            "failed redis://***@host:6379/0 now"
        );
        assert_eq!(redact("no url here"), "no url here");
        assert_eq!(redact("rediss://h:1"), "rediss://h:1");
    }

    #[test]
    fn rules_error_lists_every_issue() {
        let err = CoreError::Rules {
            source_name: "r.json".into(),
            issues: vec![
                RuleIssue {
                    path: "tasks.a".into(),
                    message: "bad".into(),
                },
                RuleIssue {
                    path: String::new(),
                    message: "worse".into(),
                },
            ],
        };
        assert_eq!(err.to_string(), "r.json: 2 errors\n  tasks.a: bad\n  worse");
    }
}
