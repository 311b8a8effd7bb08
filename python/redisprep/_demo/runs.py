"""Run folders of the demo: run-id validation, ``runid -> wd`` and a sample run
with the initial ``.nodb`` files a fresh wepppy project would have."""

from __future__ import annotations

import os
import re
from typing import Optional

from ..errors import ResolverError
from ..prep import RedisPrep
from .nodb import NoDbController

__all__ = [
    "CONTROLLERS",
    "ApiError",
    "check_config",
    "create_sample_run",
    "run_config",
    "run_context",
    "run_wd",
    "warm_caches",
]

# Controllers a sample run starts with: the ones the demo jobs touch, their
# downstream dependants in the default rules, and a few that nothing here touches.
CONTROLLERS = (
    "ron",
    "topaz",
    "watershed",
    "landuse",
    "soils",
    "climate",
    "wepp",
    "wepppost",
    "rap_ts",
    "openet_ts",
    "treatments",
    "rangeland_cover",
    "rhem",
    "roads",
    "rusle",
    "observed",
    "unitizer",
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def run_wd(runs_root: str, runid: str) -> str:
    """``<runs_root>/<runid>`` for a well-formed run id (no ``/``, not ``.``/``..``)."""
    if not isinstance(runid, str) or not _NAME.match(runid) or runid in (".", ".."):
        raise ResolverError(f"invalid run id {runid!r}")
    return os.path.join(os.path.abspath(runs_root), runid)


def run_config(wd: str) -> Optional[str]:
    """The config name a run was created with (``ron.nodb``), or ``None``."""
    try:
        state = NoDbController(wd, "ron").read_file()
    except (OSError, ValueError):
        return None
    config = state.get("config")
    return config if isinstance(config, str) else None


def check_config(wd: str, config: str) -> Optional[str]:
    """``None`` when ``config`` is the run's config, else the reason it is not."""
    if not _NAME.match(config):
        return f"invalid config name {config!r}"
    actual = run_config(wd)
    if actual != config:
        return f"run has config {actual!r}, not {config!r}"
    return None


def create_sample_run(
    runs_root: str, runid: str, config: str = "dev_unit", controllers: tuple[str, ...] = CONTROLLERS
) -> str:
    """Create ``<runs_root>/<runid>`` with one ``.nodb`` per controller (revision 0)
    and its ``redisprep.dump``; returns the folder. Caches are not filled: see
    :func:`warm_caches`."""
    wd = run_wd(runs_root, runid)
    os.makedirs(wd, exist_ok=True)
    for name in controllers:
        state: dict[str, object] = {"controller": name, "runid": runid, "revision": 0}
        if name == "ron":
            state["config"] = config
        NoDbController(wd, name).dump(state, write_through=False)
    RedisPrep.getInstance(wd)
    return wd


def warm_caches(wd: str, controllers: tuple[str, ...] = CONTROLLERS) -> dict[str, str]:
    """Read every controller once (read-through fills DB 13, like a UI page load);
    returns ``{name: cache key}``."""
    keys = {}
    for name in controllers:
        ctrl = NoDbController(wd, name)
        ctrl.load()
        keys[name] = ctrl.path
    return keys


class ApiError(Exception):
    """A request the demo refuses: its HTTP status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def run_context(runid: str, config: str) -> str:
    """``runid -> wd`` with wepppy-like validation; raises :class:`ApiError`."""
    import flask

    try:
        wd = run_wd(flask.current_app.config["REDISPREP_DEMO_RUNS_ROOT"], runid)
    except ResolverError as e:
        raise ApiError(400, str(e)) from None
    if not os.path.isdir(wd):
        raise ApiError(404, f"run {runid!r} does not exist")
    problem = check_config(wd, config)
    if problem is not None:
        raise ApiError(400, problem)
    return wd
