//! Pure path helpers: run id derivation and Python-compatible normalisation.

/// `os.path.split(wd.rstrip('/'))[1]`: the legacy run id.
pub fn run_id_of(wd: &str) -> String {
    let trimmed = wd.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(pos) => trimmed[pos + 1..].to_string(),
        None => trimmed.to_string(),
    }
}

/// `os.path.join(wd, name)` for a plain file name.
pub fn join(wd: &str, name: &str) -> String {
    if wd.is_empty() || wd.ends_with('/') {
        format!("{wd}{name}")
    } else {
        format!("{wd}/{name}")
    }
}

/// `posixpath.normpath`: lexical normalisation, no file-system access.
pub fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let initial_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial_slashes == 0 && parts.is_empty()) || parts.last() == Some(&"..")
        {
            parts.push(comp);
        } else if !parts.is_empty() {
            parts.pop();
        }
    }
    let mut out = "/".repeat(initial_slashes);
    out.push_str(&parts.join("/"));
    if out.is_empty() {
        ".".to_string()
    } else {
        out
    }
}

/// `os.path.abspath(wd)` without a trailing slash: the `{wd}` placeholder value.
pub fn abs_wd(wd: &str) -> String {
    if wd.starts_with('/') {
        normpath(wd)
    } else {
        let cwd = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "/".to_string());
        normpath(&join(&cwd, wd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_matches_legacy_split() {
        assert_eq!(run_id_of("/wc1/runs/ab/abc-def"), "abc-def");
        assert_eq!(run_id_of("/wc1/runs/ab/abc-def///"), "abc-def");
        assert_eq!(run_id_of("relative"), "relative");
        assert_eq!(run_id_of("."), ".");
        assert_eq!(run_id_of("/"), "");
        assert_eq!(run_id_of(""), "");
        assert_eq!(run_id_of("/a b/ü*?[x]"), "ü*?[x]");
    }

    #[test]
    fn normpath_matches_posixpath() {
        assert_eq!(normpath("/runs/abc/"), "/runs/abc");
        assert_eq!(normpath("/runs//abc/./x/.."), "/runs/abc");
        assert_eq!(normpath("//runs"), "//runs");
        assert_eq!(normpath("///runs"), "/runs");
        assert_eq!(normpath("/.."), "/");
        assert_eq!(normpath("../a"), "../a");
        assert_eq!(normpath(""), ".");
    }

    #[test]
    fn join_like_os_path_join() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/a/", "b"), "/a/b");
        assert_eq!(join("", "b"), "b");
    }
}
