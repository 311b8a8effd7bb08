//! The fields of a run's prep hash, as wepppy names them: `timestamps:<task>`,
//! `attrs:<name>` (`'true'`/`'false'`), `rq:<name>`, `archive:job_id`. The
//! one place that spells them (the binding asks here).

/// `timestamps:<task>`: when `task` last completed (Unix seconds).
pub fn timestamp(task: &str) -> String {
    format!("timestamps:{task}")
}

/// `attrs:<name>`: a boolean attribute.
pub fn attr(name: &str) -> String {
    format!("attrs:{name}")
}

/// `rq:<name>`: an RQ job id.
pub fn rq(name: &str) -> String {
    format!("rq:{name}")
}

/// The name of an `rq:<name>` field, `None` for other fields.
pub fn rq_name(field: &str) -> Option<&str> {
    field.strip_prefix("rq:")
}

/// The archive job's id.
pub const ARCHIVE_JOB_ID: &str = "archive:job_id";

/// Legacy's reading of a boolean attribute: `value.lower() == 'true'`
/// (absent is false).
pub fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.to_lowercase() == "true")
}

/// Legacy's writing of one: `str(bool(value)).lower()`.
pub fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_wepppys() {
        assert_eq!(timestamp("build_climate"), "timestamps:build_climate");
        assert_eq!(attr("has_sbs"), "attrs:has_sbs");
        assert_eq!(rq_name(&rq("x")), Some("x"));
        assert_eq!(rq_name("attrs:x"), None);
        assert!(is_true(Some("TRUE")) && !is_true(Some("yes")) && !is_true(None));
        assert_eq!((bool_text(true), bool_text(false)), ("true", "false"));
    }
}
