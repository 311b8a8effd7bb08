//! Reading settings from the environment: one set of parsers (and errors) for
//! every `REDISPREP_*` / `REDIS_*` variable, of both layouts and of the rules
//! engine.

use std::time::Duration;

use crate::errors::{CoreError, CoreResult};

/// The variable's value, `None` when unset or blank.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A boolean variable (`1/true/yes/on`, `0/false/no/off`); anything else is a `Config` error.
pub(crate) fn env_bool(name: &str) -> CoreResult<Option<bool>> {
    match env(name) {
        None => Ok(None),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(CoreError::Config(format!("{name}={v:?} is not a boolean"))),
        },
    }
}

/// A numeric variable; a value that does not parse is a `Config` error.
pub(crate) fn env_parse<T: std::str::FromStr>(name: &str) -> CoreResult<Option<T>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| CoreError::Config(format!("{name}={v:?} is not a valid number"))),
    }
}

/// A duration in seconds, in (0, 86400).
pub(crate) fn seconds(name: &str, v: f64) -> CoreResult<Duration> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(CoreError::Config(format!(
            "{name} must be a number of seconds in (0, 86400), got {v}"
        )))
    }
}

/// An interval in seconds, in [0, 86400): 0 is allowed (check every time).
pub(crate) fn env_interval(name: &str) -> CoreResult<Option<Duration>> {
    match env_parse::<f64>(name)? {
        None => Ok(None),
        Some(v) if v.is_finite() && (0.0..86_400.0).contains(&v) => {
            Ok(Some(Duration::from_secs_f64(v)))
        }
        Some(v) => Err(CoreError::Config(format!(
            "{name} must be a number of seconds in [0, 86400), got {v}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_checked_like_every_setting() {
        // a variable only this test sets
        let name = "REDISPREP_TEST_ENV_INTERVAL";
        std::env::set_var(name, "0");
        assert_eq!(env_interval(name).unwrap(), Some(Duration::ZERO));
        std::env::set_var(name, " 2.5 ");
        assert_eq!(
            env_interval(name).unwrap(),
            Some(Duration::from_millis(2500))
        );
        for bad in ["soon", "-1", "nan", "86400"] {
            std::env::set_var(name, bad);
            let e = env_interval(name).unwrap_err().to_string();
            assert!(e.contains(name), "{e}");
        }
        std::env::set_var(name, "  ");
        assert_eq!(env_interval(name).unwrap(), None);
        std::env::remove_var(name);
    }
}
