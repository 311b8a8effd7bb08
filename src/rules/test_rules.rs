//! A small rules file the rules modules' tests share: three tasks, nested
//! groups, and checks of each form (`newer`, `all`/`any`/`not`, `equals`).

/// Tasks `a`, `b`, `x`; groups `inner` < `outer`, `solo`; four checks.
pub(crate) const SMALL: &str = r#"{"version": 1,
  "controllers": {"c": {"keys": ["{wd}/c.nodb"]}},
  "tasks": {"a": {"invalidates": ["c"]}, "b": {"invalidates": []}, "x": {"invalidates": []}},
  "groups": {"inner": {"max": ["a", "b"]}, "outer": {"first_present": ["@inner", "x"]}, "solo": {"max": ["x"]}},
  "checks": {
    "plain": {"newer": "a", "than_all": ["b", "@outer"]},
    "nested": {"all": [{"not": {"exists": "attrs:x"}}, {"any": [{"non_empty": "timestamps:x"}, {"equals": {"field": "f", "value": "v"}}]}]},
    "via_group": {"newer": "@outer", "than_any": ["x"]},
    "flag": {"equals": {"field": "attrs:has_sbs", "value": "true"}}
  }}"#;
