"""The task list: the bundled ``TaskEnum`` (a copy of wepppy's: names, values,
order, labels, emojis) and the application's own enum installed with
:func:`set_task_enum`, which every task list of redisprep follows."""

from __future__ import annotations

import os
import threading
from enum import Enum
from typing import Optional

from .errors import ConfigError, InvalidKeyError

__all__ = ["TaskEnum", "set_task_enum", "task_emoji", "task_enum", "task_label"]


class TaskEnum(Enum):
    """Enumerate workflow tasks mirrored into Redis progress keys."""

    if_exists_rmtree = "rmtree"
    project_init = "project_init"
    set_outlet = "set_outlet"
    abstract_watershed = "abstract_watershed"
    build_channels = "build_channels"
    find_outlet = "find_outlet"
    build_subcatchments = "build_subcatchments"
    build_landuse = "build_landuse"
    build_treatments = "build_treatments"
    build_rangeland_cover = "build_rangeland_cover"
    build_soils = "build_soils"
    build_climate = "build_climate"
    fetch_rap_ts = "build_rap_ts"
    fetch_openet_ts = "build_openet_ts"
    fetch_polaris = "build_polaris"
    run_wepp_hillslopes = "run_wepp_hillslopes"
    run_wepp_watershed = "run_wepp_watershed"
    run_observed = "run_observed"
    run_debris = "run_debris"
    run_roads = "run_roads"
    run_watar = "run_watar"
    run_rhem = "run_rhem"
    fetch_dem = "fetch_dem"
    landuse_map = "landuse_map"
    init_sbs_map = "init_sbs_map"
    run_omni_scenarios = "run_omni_scenarios"
    run_omni_contrasts = "run_omni_contrasts"
    dss_export = "dss_export"
    run_features_export = "run_features_export"
    build_rusle = "build_rusle"
    set_readonly = "set_readonly"
    run_path_cost_effective = "run_path_ce"
    run_geneva = "run_geneva"

    def __str__(self) -> str:
        return str(self.value).replace("TaskEnum.", "")

    def label(self) -> str:
        """Return a human-friendly label for the task."""
        return _LABELS.get(self.name, str(self.value))

    def emoji(self) -> str:
        """Return an emoji glyph representing the task."""
        return _EMOJIS.get(self.name, str(self.value))

    def __getstate__(self) -> str:
        return str(self.value)


_LABELS: dict[str, str] = {
    "if_exists_rmtree": "Remove existing files",
    "project_init": "Initialize Project",
    "set_outlet": "Set Outlet",
    "abstract_watershed": "Abstract Watershed",
    "build_channels": "Build Channels",
    "find_outlet": "Find Outlet",
    "build_subcatchments": "Build Subcatchments",
    "build_landuse": "Build Landuse",
    "build_treatments": "Build Treatments",
    "build_rangeland_cover": "Build Rangeland Cover",
    "build_soils": "Build Soils",
    "build_climate": "Build Climate",
    "fetch_rap_ts": "Build RAP TS",
    "fetch_openet_ts": "Build OpenET TS",
    "fetch_polaris": "Build POLARIS Layers",
    "run_wepp_hillslopes": "Run WEPP Hillslopes",
    "run_wepp_watershed": "Run WEPP Watershed",
    "run_observed": "Run Observed",
    "run_debris": "Run Debris",
    "run_roads": "Run Roads",
    "run_watar": "Run WATAR",
    "run_rhem": "Run RHEM",
    "fetch_dem": "Fetch DEM",
    "landuse_map": "Landuse Map",
    "init_sbs_map": "Initialize SBS Map",
    "run_omni_scenarios": "Run OMNI Scenarios",
    "run_omni_contrasts": "Run OMNI Contrasts",
    "dss_export": "Export DSS",
    "run_features_export": "Export Features",
    "build_rusle": "Build RUSLE",
    "set_readonly": "Set Readonly",
    "run_path_cost_effective": "Run PATH Cost-Effective",
    "run_geneva": "Run Geneva",
}

_EMOJIS: dict[str, str] = {
    "if_exists_rmtree": "\U0001f5d1\ufe0f",
    "project_init": "\U0001f680",
    "set_outlet": "\U0001f4cd",
    "abstract_watershed": "\U0001f48e",
    "build_channels": "\U0001f30a",
    "find_outlet": "\U0001f4cd",
    "build_subcatchments": "\U0001f9e9",
    "build_landuse": "\U0001f332",
    "build_treatments": "\U0001f48a",
    "build_rangeland_cover": "\U0001f98e",
    "build_soils": "\U0001fab1",
    "build_climate": "\u2601\ufe0f",
    "fetch_rap_ts": "\U0001f42e",
    "fetch_openet_ts": "\U0001f6f0\ufe0f",
    "fetch_polaris": "\U0001f9f1",
    "run_wepp_hillslopes": "\U0001f4a7",
    "run_wepp_watershed": "\u26f0\ufe0f",
    "run_observed": "\U0001f4ca",
    "run_debris": "\U0001faa8",
    "run_roads": "\U0001f697",
    "run_watar": "\U0001f30b",
    "run_rhem": "\U0001f335",
    "fetch_dem": "\U0001f30d",
    "landuse_map": "\U0001f5fa\ufe0f",
    "init_sbs_map": "\U0001f525",
    "run_omni_scenarios": "\U0001fa93",
    "run_omni_contrasts": "\u2696\ufe0f",
    "dss_export": "\U0001f4e4",
    "run_features_export": "\U0001f4e6",
    "build_rusle": "\U0001f531",
    "set_readonly": "\U0001f512",
    "run_path_cost_effective": "\U0001f9ee",
    "run_geneva": "\U0001f408",
}
_BY_VALUE: dict[str, TaskEnum] = {str(m): m for m in TaskEnum}

# -- the application's task list ---------------------------------------------------

_lock = threading.Lock()
_app_enum: Optional[type[Enum]] = None


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a fork while another thread held it must not deadlock


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock_in_child)


def _validate(enum_cls: object) -> type[Enum]:
    if not (isinstance(enum_cls, type) and issubclass(enum_cls, Enum)):
        raise InvalidKeyError(f"set_task_enum() takes an Enum class, not {enum_cls!r}")
    members = list(enum_cls)
    if not members:
        raise ConfigError(f"{enum_cls.__name__} has no members")
    for m in members:
        text = str(m)
        if not text or text != str(m.value):
            raise ConfigError(
                f"{enum_cls.__name__}.{m.name}: str() gives {text!r}, not the task value "
                f"{str(m.value)!r} (define __str__ to return self.value, as wepppy's TaskEnum does)"
            )
    return enum_cls


def set_task_enum(enum_cls: Optional[type[Enum]]) -> None:
    """Make the application's own task ``Enum`` (wepppy: ``wepppy.nodb.redis_prep.TaskEnum``)
    redisprep's task list, for this process and the processes it forks.

    ``timestamps_report()`` lists its members in its order, ``remove_all_timestamp()``
    clears theirs, and the status page and the command line list them. Each member's
    ``str()`` must be its value (the ``timestamps:<task>`` field). ``None`` restores
    the bundled :class:`TaskEnum`. Raises ``InvalidKeyError`` (a ``TypeError``) for
    anything but an ``Enum`` class, ``ConfigError`` (a ``ValueError``) for an empty
    enum or a member whose ``str()`` is not its value; the previous list stays.
    """
    checked = None if enum_cls is None else _validate(enum_cls)
    global _app_enum
    with _lock:
        _app_enum = checked


def task_enum() -> type[Enum]:
    """The task list in force: the enum given to :func:`set_task_enum`, else :class:`TaskEnum`."""
    with _lock:
        app = _app_enum
    return TaskEnum if app is None else app


def task_label(task: Enum) -> str:
    """``task.label()`` when the member has one, else the bundled label of its value,
    else the value."""
    label = getattr(task, "label", None)
    if callable(label):
        return str(label())
    bundled = _BY_VALUE.get(str(task))
    return bundled.label() if bundled is not None else str(task)


def task_emoji(task: Enum) -> str:
    """``task.emoji()`` when the member has one, else the bundled emoji of its value,
    else ``""``."""
    emoji = getattr(task, "emoji", None)
    if callable(emoji):
        return str(emoji())
    bundled = _BY_VALUE.get(str(task))
    return bundled.emoji() if bundled is not None else ""
