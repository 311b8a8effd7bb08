"""A small wepppy-shaped application used by the demo and the integration tests:
NoDb controllers with a DB-13 cache (:mod:`.nodb`), run folders (:mod:`.runs`),
RQ jobs (:mod:`.jobs`), a Flask ``rq_api`` blueprint (:mod:`.app`,
``create_app``), a forking RQ worker entry point (:mod:`.worker`) and the
launcher of ``python -m redisprep demo`` (:mod:`.launch`; the command line is
:mod:`redisprep.cli.demo`).

Not part of the public API. Flask and RQ are imported only by the modules that
need them.
"""

from __future__ import annotations

from .nodb import CACHE_DB, TTL, NoDbController, cache_client
from .runs import CONTROLLERS, create_sample_run, run_wd, warm_caches

__all__ = [
    "CACHE_DB",
    "CONTROLLERS",
    "TTL",
    "NoDbController",
    "cache_client",
    "create_sample_run",
    "run_wd",
    "warm_caches",
]
