"""The legacy side of the benchmark, importable without redisprep: the bench
rules (30 controllers, tasks bench_0/3/30) and legacy + naive invalidation (the
pure-Python reference, then one DEL per rendered cache key).

RQ jobs of ``bench/sec_rq.py`` import this in a fresh work horse, so a legacy
job pays for redis-py and this module only, as wepppy's legacy jobs would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from support.legacy_ref import LegacyRedisPrep  # noqa: E402

KEY_COUNTS = (0, 3, 30)
CACHE_DB = 13


def rules_doc() -> dict[str, Any]:
    """30 controllers c0..c29 ({wd}/c<i>.nodb); tasks bench_0/3/30 invalidate 0/3/30 of them."""
    return {
        "version": 1,
        "db": CACHE_DB,
        "controllers": {f"c{i}": {"keys": [f"{{wd}}/c{i}.nodb"]} for i in range(30)},
        "tasks": {f"bench_{n}": {"invalidates": [f"c{i}" for i in range(n)]} for n in KEY_COUNTS},
    }


RULES = rules_doc()


def rendered_keys(task: str, wd: str) -> list[str]:
    """What a straightforward Python port renders for `task` (the same keys redisprep deletes)."""
    abs_wd = os.path.abspath(wd)
    run_id = os.path.basename(abs_wd)
    out = []
    for c in RULES["tasks"][task]["invalidates"]:
        for t in RULES["controllers"][c]["keys"]:
            out.append(t.replace("{wd}", abs_wd).replace("{run_id}", run_id))
    return out


class NaiveLegacyPrep(LegacyRedisPrep):
    """legacy + naive invalidation: timestamp, then one DEL per rendered key on DB 13."""

    def __init__(self, wd: str, client: Any, cache: Any) -> None:
        super().__init__(wd, client)
        self.cache = cache

    def timestamp(self, key: Any, now: Optional[int] = None) -> None:
        super().timestamp(key, now)
        for k in rendered_keys(str(key), self.wd):
            self.cache.delete(k)
