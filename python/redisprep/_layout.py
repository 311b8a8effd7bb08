"""The cluster layout's prep hash keys (see docs/CLUSTER.md), for the Python code
that names them: :mod:`redisprep.audit` and ``redisprep migrate-layout``."""

from __future__ import annotations

from typing import Optional

__all__ = ["CLUSTER_PREP_SCAN", "cluster_prep_key", "run_id_of_cluster_key"]

CLUSTER_PREP_SCAN = "prep:{*"  # SCAN MATCH pattern of every cluster prep hash


def cluster_prep_key(run_id: str) -> str:
    """The prep hash key of ``run_id`` on the cluster layout (see docs/CLUSTER.md)."""
    tag = run_id.replace("{", "(").replace("}", ")") or "_"
    return f"prep:{{{tag}}}" if tag == run_id else f"prep:{{{tag}}}:{run_id}"


def run_id_of_cluster_key(key: str) -> Optional[str]:
    """Inverse of :func:`cluster_prep_key` (``None`` for other keys)."""
    if not key.startswith("prep:{"):
        return None
    close = key.find("}", 6)
    if close < 0:
        return None
    tag, rest = key[6:close], key[close + 1 :]
    if rest.startswith(":"):
        return rest[1:]
    return tag if rest == "" else None
