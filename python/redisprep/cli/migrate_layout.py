"""``redisprep migrate-layout --from URL --to URL [--runs GLOB] [--dry-run]``: copy
prep hashes between the standalone (wepppy) layout and the cluster layout. Caches
are dropped, not copied (controllers re-cache from their ``.nodb`` files on the
next read)."""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from .. import _redisprep
from .._client import from_params
from ._common import EXIT_OK, UsageError, argv_of, guarded, new_parser

__all__ = ["main"]


class _Side:
    def __init__(self, url: str) -> None:
        # the core resolves the URL (credentials, TLS, timeouts) as configure(url) would
        params = _redisprep.connection_params(url)
        self.layout = params["layout"]
        self.cluster = self.layout == "cluster"
        self.client: Any = from_params(params)

    def key_of(self, run_id: str) -> str:
        return _redisprep.hash_key(run_id, layout=self.layout)

    def runs(self, pattern: str) -> Iterator[tuple[str, str]]:
        """``(run_id, key)`` of every prep hash whose run id matches ``pattern``."""
        if self.cluster:
            match = _redisprep.hash_key_pattern(layout=self.layout)
            for key in self.client.scan_iter(match=match, count=1000, target_nodes="primaries"):
                run_id = _redisprep.run_id_of_hash_key(key, layout=self.layout)
                if run_id is not None and fnmatch.fnmatchcase(run_id, pattern):
                    yield run_id, key
            return
        for key in self.client.scan_iter(count=1000, _type="HASH"):
            if fnmatch.fnmatchcase(key, pattern) and self.client.hexists(key, "attrs:loaded"):
                yield key, key


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def _parser() -> argparse.ArgumentParser:
    ap = new_parser("migrate-layout", "Copy prep hashes between layouts; caches are dropped.")
    ap.add_argument(
        "--from", dest="src", required=True, help="source URL (redis:// or redis+cluster://)"
    )
    ap.add_argument("--to", dest="dst", required=True, help="destination URL")
    ap.add_argument("--runs", default="*", help="glob over run ids (default: all)")
    ap.add_argument("--dry-run", action="store_true", help="list what would be copied")
    return ap


def _connect(args: argparse.Namespace, sides: list[_Side]) -> list[tuple[str, str]]:
    """Open both sides (into ``sides``, for closing) and list the source's runs."""
    try:
        sides.append(_Side(args.src))
        sides.append(_Side(args.dst))
        return sorted(sides[0].runs(args.runs))
    except Exception as e:  # connection or URL problems: say so plainly
        raise UsageError(str(e)) from None


def _migrate(args: argparse.Namespace, sides: list[_Side]) -> int:
    runs = _connect(args, sides)
    src, dst = sides
    if args.dry_run:
        for run_id, key in runs:
            print(f"would copy {key!r} -> {dst.key_of(run_id)!r}")
        print(f"{len(runs)} run(s) would be copied (dry run)")
        return EXIT_OK
    copied = 0
    for i, (run_id, key) in enumerate(runs, 1):
        fields = {k: v for k, v in src.client.hgetall(key).items() if not k.startswith("locked:")}
        if fields:
            dst.client.hset(dst.key_of(run_id), mapping=fields)
            copied += 1
        _progress(i, len(runs))
    if runs:
        sys.stderr.write("\n")
    print(f"copied {copied} run(s); caches were not copied")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    sides: list[_Side] = []
    try:
        return _migrate(args, sides)
    finally:
        for side in sides:  # close the sockets (a long-lived caller must not leak them)
            side.client.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``migrate-layout``; returns the exit status."""
    args = _parser().parse_args(argv_of(argv))
    return guarded("migrate-layout", lambda: _run(args))
