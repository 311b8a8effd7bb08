"""End to end: Flask endpoint -> RQ -> forking worker -> timestamp() -> a
*different* process reading a controller. With invalidation the reader gets a
cache miss and the fresh file; with legacy behaviour (invalidate=False) the same
scenario serves the stale cached state."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from redisprep import RedisPrep, TaskEnum
from redisprep._demo import jobs
from redisprep._demo.nodb import NoDbController
from support.integration import Workers, cache_keys, post

READER = """
import json, sys
from redisprep._demo.nodb import NoDbController
out = []
for name in sys.argv[2:]:
    ctrl = NoDbController(sys.argv[1], name)
    state = ctrl.load()
    out.append({"name": name, "revision": state["revision"], "source": ctrl.last_source})
print(json.dumps(out))
"""


def read_elsewhere(wd: str, *controllers: str) -> dict[str, tuple[int, str]]:
    """Load controllers in a separate Python process (a web worker, not the RQ
    worker); ``{name: (revision, 'cache' | 'file')}``."""
    proc = subprocess.run(
        [sys.executable, "-c", READER, wd, *controllers],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {d["name"]: (d["revision"], d["source"]) for d in json.loads(proc.stdout)}


def test_reader_sees_fresh_state_after_completion(
    client: Any, run: str, workers: Workers, r13: Any
) -> None:
    # A page load in another process fills the caches with revision 0.
    assert read_elsewhere(run, "climate", "wepp") == {"climate": (0, "file"), "wepp": (0, "file")}
    job_id = post(client, "run-a", "build_climate")
    with workers.held(run, "build_climate"):
        # Running: the file is new, the cache still answers until completion.
        assert NoDbController(run, "climate").read_file()["revision"] == 1
        assert read_elsewhere(run, "climate") == {"climate": (0, "cache")}
    assert workers.job(job_id).get_status() == "finished"

    # Completed: the timestamp invalidated climate (and wepp, downstream): miss -> file.
    assert read_elsewhere(run, "climate", "wepp") == {"climate": (1, "file"), "wepp": (0, "file")}
    # The miss re-cached the fresh state for the next reader.
    assert read_elsewhere(run, "climate") == {"climate": (1, "cache")}
    assert json.loads(r13.get(NoDbController(run, "climate").path))["revision"] == 1


@pytest.mark.parametrize("endpoint", ["build_climate", "build_landuse"])
def test_legacy_invalidation_off_serves_stale_state(
    client: Any, run: str, workers: Workers, r13: Any, endpoint: str
) -> None:
    """Same scenario, worker timestamping with ``invalidate=False`` (wepppy before
    the migration): the job succeeds and is timestamped, yet readers keep getting
    the old state from the cache. ``build_landuse`` is the not-migrated endpoint:
    its ``remove_timestamp()`` at enqueue does not help either."""
    controller = endpoint.split("_", 1)[1]
    jobs.set_legacy(run)
    assert read_elsewhere(run, controller) == {controller: (0, "file")}
    cached_before = cache_keys(r13, run)

    job_id = post(client, "run-a", endpoint)
    workers.drain()

    assert workers.job(job_id).get_status() == "finished"
    assert RedisPrep.getInstance(run)[f"{endpoint}"] is not None
    assert NoDbController(run, controller).read_file()["revision"] == 1
    assert read_elsewhere(run, controller) == {controller: (0, "cache")}  # stale
    assert cache_keys(r13, run) == cached_before

    # Turning invalidation back on (the migrated worker) fixes the next run.
    jobs.set_legacy(run, False)
    post(client, "run-a", endpoint)
    workers.drain()
    assert read_elsewhere(run, controller) == {controller: (2, "file")}


def test_write_through_jobs_stay_correct(client: Any, run: str, workers: Workers) -> None:
    """When the job also writes through to the cache, invalidation at completion
    costs one miss and never serves anything older than the file."""
    jobs.set_write_through(run)
    read_elsewhere(run, "wepp", "wepppost")
    post(client, "run-a", "run_wepp")
    workers.drain()
    assert read_elsewhere(run, "wepp", "wepppost") == {"wepp": (1, "file"), "wepppost": (0, "file")}
    assert RedisPrep.getInstance(run)[TaskEnum.run_wepp_watershed] is not None
