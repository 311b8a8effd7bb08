//! `redisprep.dump`: reading it back, and writing it atomically under a
//! per-run lock so concurrent writers can never leave an older state in the file.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::errors::{CoreError, CoreResult};
use crate::pyjson;

/// File name of the dump inside a run folder.
pub const DUMP_NAME: &str = "redisprep.dump";
/// Dumps larger than this are refused on load, before reading them: a wepppy
/// dump is a few KB (tens of fields), so anything this large is corrupt or
/// hostile, and loading it would block Redis with one giant HSET.
pub const MAX_DUMP_BYTES: u64 = 16 * 1024 * 1024;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Identity of a dump file as written: device, inode, size and mtime. A later
/// write that finds the same identity knows the file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// An open run folder, holding an exclusive `flock` on it while alive.
///
/// The lock serialises "Redis transaction + dump write" per run across threads
/// and processes, so the file always ends at the state of the last transaction.
pub struct RunDir {
    dir: File,
    path: PathBuf,
}

impl RunDir {
    /// Open and lock `wd`. `Ok(None)` when the folder does not exist (legacy
    /// then skips the dump); other failures to open still let the caller try
    /// to write (and report that error) like legacy's `open()` would.
    pub fn open_locked(wd: &str) -> CoreResult<Option<RunDir>> {
        let path = PathBuf::from(if wd.is_empty() { "." } else { wd });
        // O_DIRECTORY: the kernel checks "is a folder" as part of the open
        // (no extra fstat on the hot path).
        let dir = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotADirectory => {
                // Exists but is not a folder: legacy's `open(<wd>/redisprep.dump, 'w')`
                // fails too (NotADirectoryError); never skip the dump silently here.
                // A missing folder under a file component is skipped like legacy.
                return match std::fs::symlink_metadata(&path) {
                    Ok(_) => Err(CoreError::dump_io("open run folder", path, e)),
                    Err(_) => Ok(None),
                };
            }
            Err(e) => return Err(CoreError::dump_io("open run folder", path, e)),
        };
        // SAFETY: `dir` owns a valid open descriptor for the duration of the call.
        let rc = unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // File systems without flock support (some network mounts): carry on unlocked.
            if !matches!(
                err.raw_os_error(),
                Some(libc::ENOLCK) | Some(libc::EOPNOTSUPP)
            ) {
                return Err(CoreError::dump_io("lock run folder", path, err));
            }
        }
        Ok(Some(RunDir { dir, path }))
    }

    /// The dump's path in this folder.
    pub fn dump_path(&self) -> PathBuf {
        self.path.join(DUMP_NAME)
    }

    /// The current dump's bytes, cheaply (open, one read, close): `None` when
    /// there is none, it cannot be read, or it is larger than 1 MiB. For the
    /// divergence check only, which skips what it cannot read.
    pub fn peek_dump(&self) -> Option<Vec<u8>> {
        const LIMIT: u64 = 1024 * 1024;
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dump_path())
            .ok()?;
        let mut buf = vec![0u8; 8192];
        let n = file.read(&mut buf).ok()?;
        if n < buf.len() {
            buf.truncate(n);
            return Some(buf);
        }
        // a larger file (or a device that never ends): read on, bounded
        file.take(LIMIT).read_to_end(&mut buf).ok()?;
        (buf.len() as u64 <= LIMIT).then_some(buf)
    }

    /// The identity of the dump now in the folder (one `lstat`), `None` if there is none.
    pub fn dump_id(&self) -> Option<FileId> {
        std::fs::symlink_metadata(self.dump_path())
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|m| FileId::of(&m))
    }

    /// The dump of a hash as HGETALL returned it: every field but `locked:*`
    /// (legacy `dump()`), counted in `dumps_written`.
    pub fn write_hash(&self, hash: &[(String, String)], fsync: bool) -> CoreResult<Option<FileId>> {
        let id = self.write_dump(
            hash.iter()
                .filter(|(k, _)| !k.starts_with("locked:"))
                .map(|(k, v)| (k.as_str(), v.as_str())),
            fsync,
        )?;
        crate::stats::DUMPS_WRITTEN.incr();
        Ok(id)
    }

    /// Write `pairs` as the dump: temp file in the same folder, then rename.
    /// Returns the new file's identity (`None` if it could not be read).
    pub fn write_dump<'a, I>(&self, pairs: I, fsync: bool) -> CoreResult<Option<FileId>>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let text = pyjson::dumps_pairs(pairs);
        let id = write_atomic(&self.path, DUMP_NAME, text.as_bytes(), fsync)?;
        if fsync {
            self.dir
                .sync_all()
                .map_err(|e| CoreError::dump_io("sync run folder", &self.path, e))?;
        }
        Ok(id)
    }
}

/// Atomically replace `dir/name` with `bytes` (temp file + rename); returns
/// the new file's identity (`fstat` of the temp file, which the rename keeps).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    fsync: bool,
) -> CoreResult<Option<FileId>> {
    let target = dir.join(name);
    let mut attempt = 0;
    let (tmp_path, mut file) = loop {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", crate::pid::current()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
            Err(e) => return Err(CoreError::dump_io("write (create temp file)", target, e)),
        }
    };
    let result = file
        .write_all(bytes)
        .and_then(|()| if fsync { file.sync_all() } else { Ok(()) })
        .map_err(|e| CoreError::dump_io("write (temp file)", &target, e))
        .and_then(|()| {
            let id = file.metadata().ok().map(|m| FileId::of(&m));
            drop(file);
            std::fs::rename(&tmp_path, &target)
                .map(|()| id)
                .map_err(|e| CoreError::dump_io("write (rename temp file)", &target, e))
        });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp_path);
    }
    result
}

/// Read a dump into ordered `(field, value)` pairs. `Ok(None)` if there is no file.
///
/// Accepts what legacy's `json.load` + `hset` accepts in practice: a JSON
/// object whose values are strings or integers (stored as decimal text).
pub fn read_dump(path: &Path) -> CoreResult<Option<Vec<(String, String)>>> {
    match read_bytes(path)? {
        None => Ok(None),
        Some(bytes) => parse_at(path, &bytes).map(Some),
    }
}

fn parse_at(path: &Path, bytes: &[u8]) -> CoreResult<Vec<(String, String)>> {
    parse_dump(bytes).map_err(|detail| CoreError::DumpFormat {
        path: path.into(),
        detail,
    })
}

/// The dump's bytes, bounded, refused unless it is a regular file; `Ok(None)` if absent.
fn read_bytes(path: &Path) -> CoreResult<Option<Vec<u8>>> {
    // O_NONBLOCK: opening a FIFO planted as the dump must not wait for a writer.
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CoreError::dump_io("open", path, e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| CoreError::dump_io("stat", path, e))?;
    if !meta.is_file() {
        // a FIFO, a device (/dev/zero never ends), a socket...
        return Err(CoreError::DumpFormat {
            path: path.into(),
            detail: "not a regular file".to_string(),
        });
    }
    let len = meta.len();
    let too_big = |len: u64| CoreError::DumpFormat {
        path: path.into(),
        detail: format!("{len} bytes is larger than the {MAX_DUMP_BYTES} byte limit"),
    };
    if len > MAX_DUMP_BYTES {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // bounded even if the file grows after the stat
    file.take(MAX_DUMP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CoreError::dump_io("read", path, e))?;
    if bytes.len() as u64 > MAX_DUMP_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Sleeps between the reads of a dump that is empty or cut short (what a
/// legacy writer's in-place `open(path, 'w')` + `json.dump` shows a reader
/// mid-write): about 0.3 s in all before giving up.
const TORN_RETRY_MS: [u64; 6] = [2, 5, 10, 25, 50, 200];

/// True when `bytes` is empty or a JSON text cut short (a torn write).
fn looks_torn(bytes: &[u8]) -> bool {
    bytes.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Value>(bytes)
            .err()
            .is_some_and(|e| e.is_eof())
}

/// [`read_dump`] for a lazy load or a recovery: a dump that is empty or
/// truncated is read again, briefly and bounded, until it is complete. It
/// then loads whole, or the last error (`DumpFormat`, naming the file) is
/// returned; nothing is ever loaded from a partial file.
pub fn read_dump_settled(path: &Path) -> CoreResult<Option<Vec<(String, String)>>> {
    let mut waits = TORN_RETRY_MS.iter();
    loop {
        let Some(bytes) = read_bytes(path)? else {
            return Ok(None);
        };
        match parse_at(path, &bytes) {
            Err(e) if looks_torn(&bytes) => match waits.next() {
                Some(ms) => {
                    crate::stats::TORN_DUMP_RETRIES.incr();
                    std::thread::sleep(std::time::Duration::from_millis(*ms));
                }
                None => return Err(e),
            },
            other => return other.map(Some),
        }
    }
}

/// Parse dump bytes (see [`read_dump`]).
pub fn parse_dump(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("expected a JSON object of field -> value".to_string());
    };
    let mut pairs = Vec::with_capacity(map.len());
    for (k, v) in map {
        let text = match v {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            other => {
                return Err(format!(
                    "field {k:?} has a {} value; only strings and integers are allowed",
                    json_type_name(&other)
                ))
            }
        };
        pairs.push((k, text));
    }
    Ok(pairs)
}

fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "non-integer number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("redisprep-dump-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn write_then_read_round_trip() {
        let d = tmpdir("rt");
        let run = RunDir::open_locked(d.to_str().unwrap()).unwrap().unwrap();
        run.write_dump([("attrs:loaded", "true"), ("timestamps:x", "5")], false)
            .unwrap();
        let text = std::fs::read_to_string(d.join(DUMP_NAME)).unwrap();
        assert_eq!(text, r#"{"attrs:loaded": "true", "timestamps:x": "5"}"#);
        let back = read_dump(&d.join(DUMP_NAME)).unwrap().unwrap();
        assert_eq!(back[1], ("timestamps:x".to_string(), "5".to_string()));
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn non_regular_dump_is_refused_at_once() {
        let d = tmpdir("fifo");
        let fifo = d.join(DUMP_NAME);
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // would block in open() without O_NONBLOCK
        assert!(matches!(
            read_dump(&fifo),
            Err(CoreError::DumpFormat { .. })
        ));
        assert!(matches!(
            read_dump(Path::new("/dev/zero")),
            Err(CoreError::DumpFormat { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn torn_dumps_are_retried_then_refused() {
        assert!(looks_torn(b""));
        assert!(looks_torn(b"  \n"));
        assert!(looks_torn(br#"{"a": "1", "b"#));
        assert!(!looks_torn(br#"{"a": "1"} x"#));
        assert!(!looks_torn(b"[1]"));
        let d = tmpdir("torn");
        let path = d.join(DUMP_NAME);
        std::fs::write(&path, br#"{"a": "1", "b": "#).unwrap();
        let before = crate::stats::TORN_DUMP_RETRIES.get();
        assert!(matches!(
            read_dump_settled(&path),
            Err(CoreError::DumpFormat { .. })
        ));
        assert!(crate::stats::TORN_DUMP_RETRIES.get() - before >= TORN_RETRY_MS.len() as u64);
        // garbage is not a torn write: refused at once, no retry
        std::fs::write(&path, b"{} trailing").unwrap();
        let before = crate::stats::TORN_DUMP_RETRIES.get();
        assert!(read_dump_settled(&path).is_err());
        std::fs::write(&path, br#"{"a": "1"}"#).unwrap();
        assert_eq!(
            read_dump_settled(&path).unwrap().unwrap(),
            vec![("a".into(), "1".into())]
        );
        assert_eq!(crate::stats::TORN_DUMP_RETRIES.get(), before);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_folder_is_none() {
        assert!(RunDir::open_locked("/nonexistent/redisprep/x")
            .unwrap()
            .is_none());
    }

    #[test]
    fn parse_rejects_bad_shapes() {
        assert!(parse_dump(b"[1]").unwrap_err().contains("JSON object"));
        assert!(parse_dump(b"{\"a\": null}").unwrap_err().contains("null"));
        assert!(parse_dump(b"{\"a\": 1.5}")
            .unwrap_err()
            .contains("non-integer"));
        assert!(parse_dump(b"{\"a\"")
            .unwrap_err()
            .contains("not valid JSON"));
        assert_eq!(
            parse_dump(b"{\"a\": 7, \"b\": \"x\"}").unwrap(),
            vec![("a".into(), "7".into()), ("b".into(), "x".into())]
        );
    }

    #[test]
    fn duplicate_keys_keep_first_position_last_value_like_python() {
        let pairs = parse_dump(br#"{"a": "1", "b": "2", "a": "3"}"#).unwrap();
        assert_eq!(
            pairs,
            vec![("a".into(), "3".into()), ("b".into(), "2".into())]
        );
    }
}
