"""Cache coherence audit: compare each controller's cache entry with its ``.nodb`` file.

For every run and every controller in the rules, the cache entry (DB 13 on the
standalone layout, ``nodb:{<run_id>}:<path>`` on the cluster layout) is one of:

- ``stale``: in the cache, but its value differs from the file's bytes;
- ``orphan``: in the cache, but the file is gone;
- ``fresh``: in the cache, byte-identical to the file;
- ``absent``: not in the cache.

Reads are batched (per run one ``MGET`` and a ``TTL`` per key, many runs per
pipelined round trip); keys are rendered from the rules by the Rust engine, so
the audit looks at exactly the keys invalidation deletes. It never uses
``KEYS``; ``patterns`` templates are SCANned with their run-pinned, glob-escaped
patterns (standalone only: the cluster layout does not support them).
:func:`fix` deletes stale and orphan entries, atomically per run, and only if
their value is still the one the audit read. The command line is in
:mod:`redisprep.cli.audit` (``python -m redisprep audit``).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from . import _client, _redisprep, rules_path
from ._redisprep import Rules
from .errors import ConfigError

__all__ = [
    "STATES",
    "Auditor",
    "Entry",
    "FixResult",
    "RunAudit",
    "Skipped",
    "run_target",
]

STATES = ("stale", "orphan", "fresh", "absent")

# The synthetic task that invalidates every controller: explain() on it renders
# every controller's templates for a run with the engine's own renderer.
_ALL = "__redisprep_audit_every_controller__"

# Delete each key only while its value is the one the audit read (SHA-1 of it in
# ARGV): one script per run, so a run's fix is atomic and a concurrent
# write-through (a fresh value) is never deleted.
_FIX_LUA = """
local deleted = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v and redis.sha1hex(v) == ARGV[i] then
    redis.call('DEL', key)
    deleted[#deleted + 1] = key
  end
end
return deleted
"""


@dataclass
class Entry:
    """One controller cache entry of one run."""

    run_id: str
    wd: str
    controller: str
    key: str  # as stored (on the cluster: inside the layout's key, see _redisprep.cache_key)
    file: str
    state: str  # one of STATES
    ttl: Optional[int] = None  # seconds; -1 no expiry; None when absent
    cache_bytes: Optional[int] = None
    file_bytes: Optional[int] = None
    differing_bytes: Optional[int] = None  # stale: length of the differing span
    first_difference: Optional[int] = None  # stale: offset of the first differing byte
    digest: str = field(default="", repr=False)  # SHA-1 of the cached value (for fix)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "digest"}
        return d


@dataclass
class RunAudit:
    """Every entry of one run."""

    run_id: str
    wd: str
    entries: list[Entry]

    def bad(self) -> list[Entry]:
        return [e for e in self.entries if e.state in ("stale", "orphan")]


@dataclass
class Skipped:
    """A template the audit cannot check, and why (reported once per audit)."""

    controller: str
    template: str
    reason: str


@dataclass
class FixResult:
    run_id: str
    deleted: list[str]
    left: list[str]  # changed since the audit read them (or their file did): not deleted


def _bulk(arg: str) -> bytes:
    """One RESP bulk string."""
    raw = arg.encode("utf-8", "surrogateescape")
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


_TTL = b"*2\r\n" + _bulk("TTL")
_MGET = _bulk("MGET")

# Placeholder values: the engine renders each template once with them, and each
# run's keys are these renders with the run's values put in (literally, as the
# engine does). Patterns are rendered per run by the engine (they glob-escape).
_WD = "/__redisprep_audit_wd__/__redisprep_audit_run__"
_RUN = "__redisprep_audit_run__"


def run_target(wd: str) -> tuple[str, str]:
    """``(absolute wd, run_id)``, as redisprep names a run folder."""
    abs_wd = os.path.abspath(wd)
    return abs_wd, os.path.basename(abs_wd.rstrip("/")) or abs_wd


def _rules_text(rules: Rules) -> str:
    path = rules.source
    if path.startswith("builtin:"):
        path = rules_path()
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the rules file {path}: {e}") from None


def _every_controller_rules(rules: Rules) -> Rules:
    """``rules`` plus one task invalidating every controller (for rendering)."""
    doc = json.loads(_rules_text(rules))
    tasks = doc.setdefault("tasks", {})
    if _ALL in tasks:
        raise ConfigError(f"{rules.source}: the task name {_ALL!r} is reserved for the audit")
    tasks[_ALL] = {"invalidates": list(rules.controllers)}
    return Rules.from_json(json.dumps(doc), rules.source)


def _diff(a: bytes, b: bytes) -> tuple[int, int]:
    """``(offset of the first differing byte, length of the differing span)``."""
    n = min(len(a), len(b))
    lo, hi = 0, n  # longest common prefix, by bisection on C-speed slice compares
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    prefix = lo
    lo, hi = 0, n - prefix
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return prefix, max(len(a), len(b)) - prefix - lo


def _read(path: str) -> Optional[bytes]:
    """The file's bytes; ``None`` when it is gone. (``os.open``/``os.read``: a
    third of the cost of ``open()``, which an audit pays once per cached entry.)"""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        want = os.fstat(fd).st_size + 1  # +1: a short read is the end of the file
        chunks = [os.read(fd, want)]
        while len(chunks[-1]) == want:  # it grew while being read: read the rest
            want = 1 << 16
            chunks.append(os.read(fd, want))
        return b"".join(chunks)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror or e}") from None
    finally:
        os.close(fd)


def classify(entry: Entry, value: Optional[bytes], ttl: Optional[int]) -> Entry:
    """Set ``entry``'s state from its cached ``value`` and the file now on disk."""
    if value is None:
        entry.state = "absent"
        return entry
    entry.ttl = ttl if ttl is not None and ttl != -2 else None
    entry.cache_bytes = len(value)
    data = _read(entry.file)
    if data is None:
        entry.state = "orphan"
    else:
        entry.file_bytes = len(data)
        if data == value:
            entry.state = "fresh"
            return entry
        entry.state = "stale"
        entry.first_difference, entry.differing_bytes = _diff(value, data)
    entry.digest = hashlib.sha1(value).hexdigest()  # what --fix may delete
    return entry


class Auditor:
    """Audits runs against the cache on the layout redisprep is configured for."""

    def __init__(self, rules: Optional[Rules] = None, batch: int = 500) -> None:
        self.rules = rules if rules is not None else (_redisprep.active_rules() or Rules.load())
        self.db = self.rules.db
        info = _redisprep.connection_info()
        self.layout = info["layout"]
        self.cluster = self.layout == "cluster"
        if not self.cluster and self.db == int(info["prep_db"]):
            raise ConfigError(f"the rules' cache db {self.db} is the prep DB: refusing to audit it")
        self.batch = max(1, batch)
        self._render = _every_controller_rules(self.rules)
        self.skipped: list[Skipped] = []
        self._skipped_seen: set[tuple[str, str]] = set()
        # (controller, its key rendered for _WD, split at _WD and then at _RUN)
        self._templates: list[tuple[str, list[list[str]]]] = []
        self._patterns = False
        seen: set[str] = set()
        for plan in self._render.explain(_ALL, _WD):
            controller = str(plan["controller"])
            self._patterns = self._patterns or bool(plan["patterns"])
            for key in plan["keys"]:
                if not key.startswith("/"):
                    self._skip(
                        controller,
                        key.replace(_WD, "{wd}").replace(_RUN, "{run_id}"),
                        "the key does not name a file",
                    )
                elif key not in seen:
                    seen.add(key)
                    self._templates.append((controller, [p.split(_RUN) for p in key.split(_WD)]))
        self.client: Any = _client._build(decode_responses=False, db=self.db)
        self._fix_script: Any = None

    def close(self) -> None:
        self.client.close()

    # ---------------------------------------------------------------- keys

    def stored_key(self, run_id: str, rendered: str) -> str:
        """The key of a rendered template as this layout stores it."""
        return _redisprep.cache_key(run_id, rendered, layout=self.layout)

    def _skip(self, controller: str, template: str, reason: str) -> None:
        if (controller, template) not in self._skipped_seen:
            self._skipped_seen.add((controller, template))
            self.skipped.append(Skipped(controller, template, reason))

    def entries_of(self, wd: str, run_id: str) -> list[Entry]:
        """The run's exact-key entries (state not read yet), then its pattern matches."""
        out: list[Entry] = []
        for controller, pieces in self._templates:
            # wd.join(...) inserts the values literally: never re-scanned for placeholders
            rendered = wd.join([run_id.join(p) for p in pieces])
            key = self.stored_key(run_id, rendered)
            out.append(Entry(run_id, wd, controller, key, rendered, "absent"))
        if self._patterns:
            seen = {e.file for e in out}
            for plan in self._render.explain(_ALL, wd):
                controller = str(plan["controller"])
                for pattern in plan["patterns"]:
                    if self.cluster:
                        self._skip(
                            controller, pattern, "patterns are not used on the cluster layout"
                        )
                        continue
                    for raw in self.client.scan_iter(match=pattern, count=1000):
                        rendered = raw.decode("utf-8", "surrogateescape")
                        if rendered not in seen and rendered.startswith("/"):
                            seen.add(rendered)
                            out.append(Entry(run_id, wd, controller, rendered, rendered, "absent"))
        return out

    # --------------------------------------------------------------- audit

    def audit(self, wds: Iterable[str]) -> Iterator[RunAudit]:
        """One :class:`RunAudit` per run folder, reading ``batch`` runs per round trip."""
        pending: list[RunAudit] = []
        for wd in wds:
            abs_wd, run_id = run_target(wd)
            pending.append(RunAudit(run_id, abs_wd, self.entries_of(abs_wd, run_id)))
            if len(pending) >= self.batch:
                yield from self._read_batch(pending)
                pending = []
        if pending:
            yield from self._read_batch(pending)

    def _read_batch(self, runs: Sequence[RunAudit]) -> list[RunAudit]:
        """Per run one MGET and a TTL per key, every run of the batch in one pipeline."""
        commands: list[tuple[bytes, list[str]]] = []  # (RESP, the same as arguments)
        for run in runs:
            if run.entries:
                keys = [e.key for e in run.entries]
                bulks = [_bulk(k) for k in keys]
                commands.append(
                    (b"*%d\r\n" % (len(keys) + 1) + _MGET + b"".join(bulks), ["MGET", *keys])
                )
                commands.extend((_TTL + b, ["TTL", k]) for b, k in zip(bulks, keys))
        replies = iter(self._pipeline(commands))
        for run in runs:
            if not run.entries:
                continue
            values = next(replies)
            for e, value in zip(run.entries, values):
                ttl = next(replies)
                classify(e, value, int(ttl) if ttl is not None else None)
        return list(runs)

    def _pipeline(self, commands: list[tuple[bytes, list[str]]]) -> list[Any]:
        """The replies to ``commands``, sent in one pipelined write.

        The cluster goes through redis-py's cluster pipeline (it routes each
        command to its slot's node). Standalone sends the packed commands itself
        and reads the replies off one pooled connection: redis-py's own pipeline
        spends ~10 us per command in Python, which was most of an audit's time
        (bench/bench_audit.py).
        """
        if self.cluster:
            with warnings.catch_warnings():
                # redis-py 6.x's own pipeline() passes an argument it deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                pipe = self.client.pipeline(transaction=False)
            for _, args in commands:
                # (its .mget() is blocked in cluster pipelines; a run's keys share a slot)
                pipe.execute_command(*args)
            return list(pipe.execute())
        pool = self.client.connection_pool
        try:
            conn = pool.get_connection()
        except TypeError:  # redis-py < 5.3 wants a command name
            conn = pool.get_connection("MGET")
        try:
            conn.send_packed_command([b"".join(packed for packed, _ in commands)])
            return [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()  # unread replies must never reach the next user
            raise
        finally:
            pool.release(conn)

    # ----------------------------------------------------------------- fix

    def fix(self, run: RunAudit) -> FixResult:
        """Delete the run's stale and orphan entries in one atomic script, each
        only if its value is still the one read and its file still disagrees."""
        candidates: list[Entry] = []
        left: list[Entry] = []
        for e in run.bad():
            data = _read(e.file)
            still_bad = (
                data is None
                if e.state == "orphan"
                else data is not None and (hashlib.sha1(data).hexdigest() != e.digest)
            )
            (candidates if still_bad else left).append(e)
        if not candidates:
            return FixResult(run.run_id, [], [e.key for e in left])
        if self._fix_script is None:
            self._fix_script = self.client.register_script(_FIX_LUA)
        keys = [e.key for e in candidates]
        done = self._fix_script(keys=keys, args=[e.digest for e in candidates])
        deleted = {d.decode("utf-8", "surrogateescape") for d in done}  # a bytes client
        return FixResult(
            run.run_id,
            [k for k in keys if k in deleted],
            [e.key for e in left] + [k for k in keys if k not in deleted],
        )
