//! Where the Redis password comes from, in wepppy's order: the URL's own,
//! else `configure(password_file=...)`, else `REDIS_PASSWORD`, else the
//! contents of the file `REDIS_PASSWORD_FILE` names (a Docker or Kubernetes
//! secret). The password itself never reaches a message: errors name the
//! setting and the path, never the file's contents.

use crate::env::env;
use crate::errors::{CoreError, CoreResult};
use crate::options::Options;

/// Which setting supplied the password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// The URL's own user info (`redis://:pw@host`).
    Url,
    /// `configure(password_file=...)`.
    PasswordFileOption,
    /// The `REDIS_PASSWORD` variable.
    RedisPassword,
    /// The file named by `REDIS_PASSWORD_FILE`.
    RedisPasswordFile,
}

impl PasswordSource {
    /// The setting's name, as people write it (`REDIS_PASSWORD_FILE`).
    pub fn label(self) -> &'static str {
        match self {
            PasswordSource::Url => "the URL",
            PasswordSource::PasswordFileOption => "password_file",
            PasswordSource::RedisPassword => "REDIS_PASSWORD",
            PasswordSource::RedisPasswordFile => "REDIS_PASSWORD_FILE",
        }
    }
}

/// A resolved password and where it came from (`file`: the secrets file read).
#[derive(Clone)]
pub struct Password {
    pub secret: String,
    pub source: PasswordSource,
    pub file: Option<String>,
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Password")
            .field("secret", &"***")
            .field("source", &self.source)
            .field("file", &self.file)
            .finish()
    }
}

/// The password in the secrets file `path` (which `setting` named), without
/// the trailing newline and surrounding whitespace secrets files carry. A
/// missing, unreadable, non-UTF-8 or empty file is a `Config` error naming
/// `setting` and `path` (never the contents).
pub fn read_password_file(setting: &str, path: &str) -> CoreResult<String> {
    let bad = |why: String| {
        CoreError::Config(format!(
            "{setting}: cannot use the Redis password file {path}: {why}"
        ))
    };
    let bytes = std::fs::read(path).map_err(|e| bad(io_reason(&e)))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("it is not UTF-8 text".into()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(bad("it is empty".into()));
    }
    Ok(secret.to_string())
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read it ({e})"),
    }
}

/// The password for a connection whose URL carried `from_url` (if any).
pub fn resolve(o: &Options, from_url: Option<String>) -> CoreResult<Option<Password>> {
    let found = |secret, source, file| {
        Ok(Some(Password {
            secret,
            source,
            file,
        }))
    };
    if let Some(secret) = from_url.filter(|p| !p.is_empty()) {
        return found(secret, PasswordSource::Url, None);
    }
    if let Some(path) = &o.password_file {
        let secret = read_password_file("password_file", path)?;
        return found(
            secret,
            PasswordSource::PasswordFileOption,
            Some(path.clone()),
        );
    }
    if let Some(secret) = env("REDIS_PASSWORD") {
        return found(secret, PasswordSource::RedisPassword, None);
    }
    if let Some(path) = env("REDIS_PASSWORD_FILE") {
        let secret = read_password_file("REDIS_PASSWORD_FILE", &path)?;
        return found(secret, PasswordSource::RedisPasswordFile, Some(path));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_is_trimmed_and_its_problems_name_the_path_not_the_contents() {
        let dir = std::env::temp_dir().join(format!("redisprep-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "  s3cret-value \n").unwrap();
        let path = file.to_string_lossy().into_owned();
        assert_eq!(read_password_file("X", &path).unwrap(), "s3cret-value");
        std::fs::write(&file, " \n\n").unwrap();
        let empty = read_password_file("REDIS_PASSWORD_FILE", &path)
            .unwrap_err()
            .to_string();
        assert!(
            empty.contains("REDIS_PASSWORD_FILE")
                && empty.contains(&path)
                && empty.contains("empty")
        );
        let missing = dir.join("nope").to_string_lossy().into_owned();
        let err = read_password_file("REDIS_PASSWORD_FILE", &missing)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&missing) && err.contains("no such file"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_urls_password_wins_and_debug_hides_the_secret() {
        let p = resolve(&Options::default(), Some("from-url".into()))
            .unwrap()
            .unwrap();
        assert_eq!(p.source, PasswordSource::Url);
        assert!(!format!("{p:?}").contains("from-url"));
    }
}
