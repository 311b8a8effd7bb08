"""RQ job functions of the demo, shaped like wepppy's ``rq/project_rq.py``: each
rewrites its controller's ``.nodb`` file and calls
``RedisPrep.getInstance(wd).timestamp(TaskEnum.X)`` at the very end, only when
everything before it succeeded. The timestamp is what invalidates the dependent
caches, so invalidation happens at completion, never at enqueue or start.

The jobs write the ``.nodb`` *file* and, by default, leave the DB-13 copy alone:
in wepppy a cached copy goes stale in exactly this way (a page that re-caches the
old file while the job runs, a best-effort write-through that failed, tools that
rewrite ``.nodb`` files), and only invalidation at completion makes readers see
the new file. :func:`set_write_through` switches the jobs to write through.

Tests steer a job through small control files in the run folder (no mocks):
:func:`hold` makes it wait (bounded by :data:`HOLD_LIMIT`) after its write and
before its timestamp, :func:`set_failure` makes it raise there,
:func:`set_legacy` makes it timestamp with ``invalidate=False`` (wepppy's old
behaviour). Run ids resolve with :func:`redisprep.resolve_wd` (in a worker:
``REDISPREP_RUNS_ROOT`` or a registered resolver), like wepppy's ``get_wd``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Union

from ..config import resolve_wd
from ..prep import RedisPrep
from ..rq import timestamps
from ..task import TaskEnum
from .nodb import NoDbController

__all__ = [
    "HOLD_LIMIT",
    "DemoJobError",
    "abstract_watershed_rq",
    "build_climate_decorated_rq",
    "build_climate_rq",
    "build_landuse_rq",
    "build_soils_rq",
    "hold",
    "reached",
    "rebuild_rq",
    "release",
    "rewrite_controller",
    "run_wepp_rq",
    "set_failure",
    "set_legacy",
    "set_write_through",
    "wait_reached",
]

HOLD_LIMIT = 30.0
_POLL = 0.02


class DemoJobError(RuntimeError):
    """Raised by a demo job told to fail (or held longer than :data:`HOLD_LIMIT`)."""


def _flag(wd: str, kind: str, job: str = "all") -> str:
    return os.path.join(wd, f".demo-{kind}-{job}")


def _set(path: str, on: bool) -> None:
    if on:
        with open(path, "w"):
            pass
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def hold(wd: str, job: str) -> None:
    """Make the next ``job`` (e.g. ``"build_climate"``) wait before its timestamp."""
    _set(_flag(wd, "reached", job), False)
    _set(_flag(wd, "hold", job), True)


def release(wd: str, job: str) -> None:
    """Let a held ``job`` go on."""
    _set(_flag(wd, "hold", job), False)


def reached(wd: str, job: str) -> bool:
    """Whether ``job`` has written its controller and reached its hold point."""
    return os.path.exists(_flag(wd, "reached", job))


def wait_reached(wd: str, job: str, timeout: float = 20.0) -> bool:
    """Wait (bounded) until ``job`` reaches its hold point."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reached(wd, job):
            return True
        time.sleep(_POLL)
    return False


def set_failure(wd: str, job: str, on: bool = True) -> None:
    """Make ``job`` raise :class:`DemoJobError` after its write, before its timestamp."""
    _set(_flag(wd, "fail", job), on)


def set_legacy(wd: str, on: bool = True) -> None:
    """Make every job of this run timestamp with ``invalidate=False`` (legacy wepppy)."""
    _set(_flag(wd, "legacy"), on)


def set_write_through(wd: str, on: bool = True) -> None:
    """Make the jobs of this run also write their new state into the DB-13 cache."""
    _set(_flag(wd, "write-through"), on)


def rewrite_controller(wd: str, name: str, job: str) -> dict[str, Any]:
    """The job's work: bump the controller's revision in its ``.nodb`` file."""
    ctrl = NoDbController(wd, name)
    state = ctrl.read_file()
    state["revision"] = int(state.get("revision", 0)) + 1
    state["built_by"] = job
    ctrl.dump(state, write_through=os.path.exists(_flag(wd, "write-through")))
    return state


def _checkpoint(wd: str, job: str) -> None:
    """Hold point between the work and the timestamp; fails on demand."""
    _set(_flag(wd, "reached", job), True)
    deadline = time.monotonic() + HOLD_LIMIT
    while os.path.exists(_flag(wd, "hold", job)):
        if time.monotonic() > deadline:
            raise DemoJobError(f"{job}: held for more than {HOLD_LIMIT} s")
        time.sleep(_POLL)
    if os.path.exists(_flag(wd, "fail", job)):
        raise DemoJobError(f"{job}: failing on demand")


def _finish(wd: str, *tasks: Union[TaskEnum, str]) -> None:
    invalidate = not os.path.exists(_flag(wd, "legacy"))
    prep = RedisPrep.getInstance(wd)
    for task in tasks:
        prep.timestamp(task, invalidate=invalidate)


def _work(runid: str, controller: str, job: str) -> tuple[str, dict[str, Any]]:
    """A job's body up to its timestamp: resolve the run, rewrite ``controller``,
    then pass the hold/fail point of ``job``. Returns ``(wd, new state)``."""
    wd = resolve_wd(runid)
    state = rewrite_controller(wd, controller, job)
    _checkpoint(wd, job)
    return wd, state


def _job(runid: str, controller: str, job: str, *tasks: TaskEnum) -> dict[str, Any]:
    """A whole demo job: :func:`_work`, then timestamp ``tasks`` (at the very end)."""
    wd, state = _work(runid, controller, job)
    _finish(wd, *tasks)
    return state


def build_climate_rq(runid: str) -> dict[str, Any]:
    """Rebuild the climate controller, then ``timestamp(TaskEnum.build_climate)``."""
    return _job(runid, "climate", "build_climate", TaskEnum.build_climate)


def run_wepp_rq(runid: str) -> dict[str, Any]:
    """Run WEPP, then timestamp ``run_wepp_hillslopes`` and ``run_wepp_watershed``."""
    return _job(
        runid, "wepp", "run_wepp", TaskEnum.run_wepp_hillslopes, TaskEnum.run_wepp_watershed
    )


def abstract_watershed_rq(runid: str) -> dict[str, Any]:
    """Abstract the watershed, then ``timestamp(TaskEnum.abstract_watershed)``."""
    return _job(runid, "watershed", "abstract_watershed", TaskEnum.abstract_watershed)


def build_landuse_rq(runid: str) -> dict[str, Any]:
    """Rebuild landuse, then ``timestamp(TaskEnum.build_landuse)`` (not-migrated endpoint)."""
    return _job(runid, "landuse", "build_landuse", TaskEnum.build_landuse)


def build_soils_rq(runid: str) -> dict[str, Any]:
    """Rebuild soils, then timestamp... ``build_landuse``: a DELIBERATELY WRONG worker
    (a copy-paste slip, as wepppy's debris-flow job stamping ``run_watar``), so that
    ``python -m redisprep migrate`` on the demo shows an ``unsafe`` verdict
    (``timestamps-other-task``) next to the ``safe`` one. Its endpoint keeps its
    manual ``remove_timestamp(TaskEnum.build_soils)``."""
    return _job(runid, "soils", "build_soils", TaskEnum.build_landuse)


@timestamps(TaskEnum.build_climate)
def build_climate_decorated_rq(runid: str) -> dict[str, Any]:
    """``build_climate_rq`` written with :func:`redisprep.rq.timestamps`: no explicit call."""
    return _work(runid, "climate", "build_climate_decorated")[1]


def rebuild_rq(runid: str, name: str) -> str:
    """A job with no timestamp of its own (for ``on_success`` callbacks): rewrites
    controller ``name`` and returns the run folder."""
    return _work(runid, name, f"rebuild_{name}")[0]
