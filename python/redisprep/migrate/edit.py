"""Edit endpoint modules: remove chosen ``remove_timestamp()`` calls in place.

Edits are made on the original text by the line/column spans the parser
reports, so every byte outside a removed call is kept (indentation, quotes,
comments, line endings, encoding). A removed call leaves one comment line, as the
wepppy task document asks::

    # prep.remove_timestamp(TaskEnum.build_climate)  # Removed - automatic invalidation now

and becomes ``pass`` (plus that comment) where it was the only statement of its
block, so the module stays valid.
"""

from __future__ import annotations

import io
import os
import tempfile
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Optional

from .scan import MARKER, Finding, MigrationError, char_col, matches, scan, split_lines

__all__ = ["fix_source", "iter_python_files", "read_source", "write_source"]

_SKIP_DIRS = {"__pycache__", "node_modules", "venv", "site-packages"}


def fix_source(
    text: str,
    path: str = "<string>",
    only: Optional[Iterable[str]] = None,
    allow: Optional[Callable[[Finding], bool]] = None,
) -> tuple[str, list[Finding]]:
    """Remove the fixable, not-kept calls (of the ``only`` functions, if given, and
    for which ``allow`` says yes, if given: the migration passes its verdicts).

    Returns the new text and the findings that were removed. Text outside the
    removed statements is returned unchanged, byte for byte.
    """
    wanted = None if only is None else set(only)
    hits, _ = scan(text, path)
    chosen = [
        h
        for h in hits
        if h.finding.fixable
        and not h.finding.kept
        and (wanted is None or matches(h.finding, wanted))
        and (allow is None or allow(h.finding))
    ]
    if not chosen:
        return text, []
    lines = split_lines(text)
    removed_ids = {id(h.stmt) for h in chosen}
    needs_pass: set[int] = set()
    seen_blocks: set[int] = set()
    for h in chosen:
        assert h.block is not None
        if id(h.block) in seen_blocks:
            continue
        seen_blocks.add(id(h.block))
        if all(id(s) in removed_ids for s in h.block):
            needs_pass.add(id(h.stmt))  # the first removed statement of an emptied block
    # Edit bottom-up so earlier line numbers stay valid.
    for h in sorted(chosen, key=lambda h: (h.finding.line, h.call.col_offset), reverse=True):
        stmt = h.stmt
        assert stmt is not None
        first, last = stmt.lineno, stmt.end_lineno or stmt.lineno
        head, tail = lines[first - 1], lines[last - 1]
        col = char_col(head, stmt.col_offset)
        end_col = char_col(tail, stmt.end_col_offset or 0)
        prefix = head[:col]
        rest = tail[end_col:]
        body = rest.rstrip("\r\n")
        newline = rest[len(body) :]
        after = body.lstrip()
        if after.startswith(";"):
            after = after[1:].lstrip()
        if prefix.strip() == "" and (after == "" or after.startswith("#")):
            keep = "pass  " if id(stmt) in needs_pass else ""
            new = f"{prefix}{keep}# {h.finding.call}  {MARKER}{newline}"
        else:  # shares its line with other code (``if x: call``, ``a; call``)
            new = f"{prefix}pass{body}"
            if body.strip() == "":
                new = f"{prefix}pass  # {h.finding.call}  {MARKER}"
            new += newline
        lines[first - 1 : last] = [new]
    return "".join(lines), [h.finding for h in chosen]


def read_source(path: str) -> tuple[str, str]:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        encoding = tokenize.detect_encoding(io.BytesIO(raw).readline)[0]
        return raw.decode(encoding), encoding
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError) as e:
        raise MigrationError(f"{path}: cannot read: {e}") from None


def write_source(path: str, text: str, encoding: str) -> None:
    data = text.encode(encoding)
    folder = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(prefix=".redisprep-migrate-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def iter_python_files(paths: Sequence[str]) -> Iterator[str]:
    """The given files, and every ``*.py`` under the given folders (hidden and
    virtualenv folders skipped), in a stable order."""
    seen: set[str] = set()

    def once(path: str) -> bool:
        real = os.path.realpath(path)
        if real in seen:
            return False
        seen.add(real)
        return True

    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS)
                for name in sorted(files):
                    if name.endswith(".py") and once(os.path.join(root, name)):
                        yield os.path.join(root, name)
        elif os.path.exists(p):
            if once(p):
                yield p
        else:
            raise MigrationError(f"{p}: no such file or folder")
