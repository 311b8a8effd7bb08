//! The key layout: how a run's prep hash and its caches are named in Redis,
//! for both layouts. The one owner of these names: the backend uses them,
//! and Python asks for them through the binding (`_redisprep.hash_key`, ...).
//!
//! - standalone (wepppy's layout): the hash key is the run id, a cache key is
//!   the rendered template, as is.
//! - cluster: every key of one run shares a hash tag, so one run lives in one
//!   slot. The hash is `prep:{<tag>}` and a cache `nodb:{<tag>}:<rendered>`,
//!   where `<tag>` is the run id with `{`/`}` replaced by `(`/`)` (`_` if
//!   empty); when the tag differs from the run id, `:<run_id>` is appended
//!   to the hash key so it stays unique.

use std::str::FromStr;

use crate::errors::CoreError;

/// Which key layout: wepppy's (standalone) or the cluster's hash-tagged one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Standalone,
    Cluster,
}

const PREP_PREFIX: &str = "prep:{";

impl Layout {
    /// The layout's name, as `connection_info()["layout"]` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Standalone => "standalone",
            Layout::Cluster => "cluster",
        }
    }

    /// The Redis key of a run's prep hash.
    pub fn hash_key(self, run_id: &str) -> String {
        match self {
            Layout::Standalone => run_id.to_string(),
            Layout::Cluster => {
                let t = tag(run_id);
                if t == run_id {
                    format!("{PREP_PREFIX}{t}}}")
                } else {
                    format!("{PREP_PREFIX}{t}}}:{run_id}")
                }
            }
        }
    }

    /// The Redis key of a run's cache whose rendered template is `rendered`.
    pub fn cache_key(self, run_id: &str, rendered: &str) -> String {
        match self {
            Layout::Standalone => rendered.to_string(),
            Layout::Cluster => format!("nodb:{{{}}}:{rendered}", tag(run_id)),
        }
    }

    /// The run id whose prep hash is `key` (the inverse of [`Layout::hash_key`]),
    /// or `None` when `key` is not a prep hash key of this layout.
    pub fn run_id_of_hash_key(self, key: &str) -> Option<String> {
        match self {
            Layout::Standalone => Some(key.to_string()),
            Layout::Cluster => {
                let inner = key.strip_prefix(PREP_PREFIX)?;
                let (tag, rest) = inner.split_once('}')?;
                match rest.strip_prefix(':') {
                    Some(run_id) => Some(run_id.to_string()),
                    None if rest.is_empty() => Some(tag.to_string()),
                    None => None,
                }
            }
        }
    }

    /// The SCAN `MATCH` pattern that finds every prep hash key of this layout
    /// (on the standalone layout any key may be a run's: `*`).
    pub fn hash_key_pattern(self) -> &'static str {
        match self {
            Layout::Standalone => "*",
            Layout::Cluster => "prep:{*",
        }
    }
}

impl FromStr for Layout {
    type Err = CoreError;

    fn from_str(s: &str) -> Result<Layout, CoreError> {
        match s {
            "standalone" => Ok(Layout::Standalone),
            "cluster" => Ok(Layout::Cluster),
            other => Err(CoreError::Config(format!(
                "unknown layout {other:?} (expected \"standalone\" or \"cluster\")"
            ))),
        }
    }
}

/// The hash tag of a run on the cluster layout: its id with braces replaced
/// (`_` if empty).
fn tag(run_id: &str) -> String {
    if run_id.is_empty() {
        return "_".to_string();
    }
    run_id.replace('{', "(").replace('}', ")")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "abc-def", "", "a{b}", "{", "}", "}{", "a:b", ":", "prep:{x}", "é中", "a}:b", "_",
    ];

    #[test]
    fn cluster_keys_share_the_run_tag() {
        let c = Layout::Cluster;
        assert_eq!(c.hash_key("abc-def"), "prep:{abc-def}");
        assert_eq!(
            c.cache_key("abc-def", "/r/abc-def/climate.nodb"),
            "nodb:{abc-def}:/r/abc-def/climate.nodb"
        );
        assert_eq!(c.hash_key("a{b}"), "prep:{a(b)}:a{b}");
        assert_eq!(c.hash_key(""), "prep:{_}:");
        assert_eq!(c.cache_key("", "x"), "nodb:{_}:x");
    }

    #[test]
    fn standalone_keys_are_legacy() {
        let s = Layout::Standalone;
        assert_eq!(s.hash_key("a{b}"), "a{b}");
        assert_eq!(s.cache_key("a", "/r/a/x.nodb"), "/r/a/x.nodb");
        assert_eq!(s.run_id_of_hash_key("x"), Some("x".to_string()));
    }

    #[test]
    fn the_run_id_round_trips_on_both_layouts() {
        for layout in [Layout::Standalone, Layout::Cluster] {
            for id in HOSTILE {
                let key = layout.hash_key(id);
                assert_eq!(
                    layout.run_id_of_hash_key(&key).as_deref(),
                    Some(*id),
                    "{key}"
                );
            }
        }
    }

    #[test]
    fn other_keys_are_not_cluster_hash_keys() {
        let c = Layout::Cluster;
        for key in ["nodb:{a}:x", "prep:{a", "prep:{a}x", "prep:a", "abc"] {
            assert_eq!(c.run_id_of_hash_key(key), None, "{key}");
        }
        for id in HOSTILE {
            assert!(glob_match(c.hash_key_pattern(), &c.hash_key(id)));
        }
    }

    #[test]
    fn layout_names_parse() {
        for layout in [Layout::Standalone, Layout::Cluster] {
            assert_eq!(layout.name().parse::<Layout>().ok(), Some(layout));
        }
        assert!(matches!(
            "Cluster".parse::<Layout>(),
            Err(CoreError::Config(_))
        ));
    }

    /// `prefix*` glob, enough for the patterns above.
    fn glob_match(pattern: &str, key: &str) -> bool {
        pattern
            .strip_suffix('*')
            .is_some_and(|p| key.starts_with(p))
    }
}
