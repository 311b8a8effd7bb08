"""The differential harness of ``tests/test_dropin.py``: one run on the legacy
reference (``support.legacy_ref``) and on redisprep, side by side, and the calls,
readers and data the drop-in tests drive them with.

- :class:`Pair` holds the same run (same run id, separate keyspaces and folders)
  on both; :meth:`Pair.step` calls a function on each side and checks the hash
  (``HGETALL``, in order) and the ``redisprep.dump`` bytes are identical;
  :meth:`Pair.timestamp` stamps ours, then legacy with the value ours stored.
- :data:`READERS` are the legacy class's readers, :data:`SCRIPT` a scripted
  sequence calling every mutator with every key form, :data:`OPS` the hypothesis
  strategy of random operations (applied with :func:`apply_op`), and
  :data:`TASK_TABLE` wepppy's TaskEnum verbatim; :data:`BAD_KEYS` and :data:`KEYED`
  for the refused keys, :func:`write_rich_state` for the dump round trips.
"""

from __future__ import annotations

import os
import time
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import redis
from hypothesis import strategies as st

from redisprep import RedisPrep, TaskEnum

from .layouts import Layout
from .legacy_ref import LegacyRedisPrep

__all__ = [
    "BAD_KEYS",
    "KEYED",
    "LEGACY_DB",
    "ODD",
    "OPS",
    "READERS",
    "READ_KEYS",
    "SCRIPT",
    "TASK_TABLE",
    "AppTaskEnum",
    "Pair",
    "Side",
    "WeppTaskEnum",
    "apply_op",
    "outcome",
    "outcome_of",
    "raw_write",
    "write_rich_state",
]

#: The legacy reference's DB on the session server (never shares a key with ours).
LEGACY_DB = 1


class WeppTaskEnum(Enum):
    """Stands in for wepppy's own TaskEnum: another Enum whose str() is the value."""

    build_climate = "build_climate"
    fetch_rap_ts = "build_rap_ts"
    run_wepp_watershed = "run_wepp_watershed"
    run_geneva = "run_geneva"  # a wepppy member since April 2026
    run_sediment_budget = "run_sediment_budget"  # invented: a member no copy of ours has

    def __str__(self) -> str:
        return self.value


class _ValueStr(Enum):
    """An Enum whose str() is its value, like wepppy's TaskEnum."""

    def __str__(self) -> str:
        return str(self.value)


def _app_members() -> list[tuple[str, str]]:
    ours = [(m.name, m.value) for m in TaskEnum if m.name != "run_geneva"]
    at = [name for name, _ in ours].index("run_roads") + 1
    ours.insert(at, ("run_geneva", "run_geneva"))  # elsewhere than in ours: order is the app's
    return [*ours, ("run_sediment_budget", "run_sediment_budget")]


#: An application's own TaskEnum, installed with ``redisprep.set_task_enum``: every
#: member of ours, ``run_geneva`` at another place, and a member ours lacks.
AppTaskEnum: type[Enum] = _ValueStr("TaskEnum", _app_members())  # type: ignore[call-overload]


#: Text that exercises json.dump's escaping: quotes, backslash, controls, NUL,
#: DEL, non-ASCII, a character outside the BMP (surrogate pair), U+2028.
ODD = 'é"\\\n\t\r\x00\x01\x1f\x7f\u00ff\u2028ü😀 /{x}'


# -- the pair: one run on legacy and on ours --------------------------------


class Side:
    """One implementation's view of the run: the prep, a raw client and the hash key."""

    def __init__(self, name: str, prep: Any, raw: Any, key: str, folder: Path) -> None:
        self.name = name
        self.prep = prep
        self.raw = raw
        self.key = key
        self.folder = folder

    def hash_items(self) -> list[tuple[str, str]]:
        return list(self.raw.hgetall(self.key).items())

    def dump_bytes(self) -> Optional[bytes]:
        path = self.folder / "redisprep.dump"
        return path.read_bytes() if path.exists() else None


class Pair:
    """The same run (same run id, separate Redis keyspaces and folders) on both."""

    def __init__(
        self, layout: Layout, legacy_client: redis.Redis[str], tmp_path: Path, run_id: str
    ) -> None:
        self.layout = layout
        self.run_id = run_id
        self.legacy_client = legacy_client
        self.legacy_dir = tmp_path / "legacy" / run_id
        self.ours_dir = tmp_path / "ours" / run_id
        for d in (self.legacy_dir, self.ours_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.legacy: Optional[Side] = None
        self.ours: Optional[Side] = None

    def open(self, construct_only: bool = False) -> None:
        """``getInstance`` on both (or only the constructor)."""
        if construct_only:
            lp: Any = LegacyRedisPrep(str(self.legacy_dir), self.legacy_client)
            op: Any = RedisPrep(str(self.ours_dir))
        else:
            lp = LegacyRedisPrep.getInstance(str(self.legacy_dir), self.legacy_client)
            op = RedisPrep.getInstance(str(self.ours_dir))
        self.legacy = Side("legacy", lp, self.legacy_client, self.run_id, self.legacy_dir)
        self.ours = Side(
            "ours", op, self.layout.client(0), self.layout.hash_key(self.run_id), self.ours_dir
        )

    @property
    def sides(self) -> tuple[Side, Side]:
        assert self.legacy is not None and self.ours is not None
        return self.legacy, self.ours

    def check_state(self, what: str = "") -> None:
        legacy, ours = self.sides
        assert ours.hash_items() == legacy.hash_items(), what
        assert ours.dump_bytes() == legacy.dump_bytes(), what

    def check_readers(self, keys: list[Any]) -> None:
        legacy, ours = self.sides
        for read in READERS:
            assert outcome(read, ours.prep, keys) == outcome(read, legacy.prep, keys), read

    def step(self, fn: Callable[[Side], Any], what: str = "") -> None:
        legacy, ours = self.sides
        got_l, got_o = outcome_of(lambda: fn(legacy)), outcome_of(lambda: fn(ours))
        assert got_o == got_l, what
        self.check_state(what)

    def timestamp(self, key: Any) -> int:
        """``timestamp(key)`` on ours, then the same value on legacy (see module doc)."""
        legacy, ours = self.sides
        before = int(time.time())
        ours.prep.timestamp(key)
        after = int(time.time())
        value = ours.prep[key]
        assert isinstance(value, int) and before <= value <= after
        legacy.prep.timestamp(key, now=value)
        self.check_state(f"timestamp({key!r})")
        return value


def outcome_of(fn: Callable[[], Any]) -> tuple[str, Any]:
    """A call's result, or the ValueError it raised (``int('abc')`` on a stored value)."""
    try:
        return ("ok", fn())
    except ValueError as e:
        return ("raised", type(e).__name__)


def outcome(read: Callable[[Any, list[Any]], Any], prep: Any, keys: list[Any]) -> tuple[str, Any]:
    return outcome_of(lambda: read(prep, keys))


#: Every reader of the legacy class; each must give the same answer on both.
def _items(p: Any, keys: list[Any]) -> list[tuple[str, Any]]:
    return [outcome_of(partial(p.__getitem__, k)) for k in keys]


READERS: list[Callable[[Any, list[Any]], Any]] = [
    _items,
    lambda p, keys: [p.get_rq_job_id(k) for k in keys],
    lambda p, keys: list(p.get_rq_job_ids().items()),
    lambda p, keys: p.get_archive_job_id(),
    lambda p, keys: (p.sbs_required, p.has_sbs, p._get_bool_config("custom")),
    lambda p, keys: p._get_bool_config("loaded"),
    lambda p, keys: p.timestamps_report(),
    lambda p, keys: (p.wd.replace("/ours/", "/x/").replace("/legacy/", "/x/"), p.run_id),
    lambda p, keys: os.path.basename(p.dump_filepath),
]

READ_KEYS: list[Any] = [
    TaskEnum.build_climate,
    WeppTaskEnum.fetch_rap_ts,
    "build_landuse",
    "run_geneva",
    ODD,
    "build_climate_rq",
    "custom",
    "missing",
]


def raw_write(field: str, value: str) -> Callable[[Side], Any]:
    """What wepppy code does past the class: HSET on the hash, then ``prep.dump()``."""

    def fn(s: Side) -> None:
        s.raw.hset(s.key, field, value)
        s.prep.dump()

    return fn


#: A scripted sequence calling every mutator of the legacy class with every key form.
SCRIPT: list[tuple[str, Callable[[Side], Any]]] = [
    ("setitem TaskEnum int", lambda s: s.prep.__setitem__(TaskEnum.build_climate, 1700000000)),
    ("setitem str str", lambda s: s.prep.__setitem__("build_landuse", "1700000001")),
    ("setitem foreign enum", lambda s: s.prep.__setitem__(WeppTaskEnum.fetch_rap_ts, 17)),
    ("setitem unknown task", lambda s: s.prep.__setitem__(WeppTaskEnum.run_geneva, 1)),
    ("setitem odd key and value", lambda s: s.prep.__setitem__(ODD, ODD)),
    ("setitem float", lambda s: s.prep.__setitem__("floaty", 1.5)),
    ("setitem bytes", lambda s: s.prep.__setitem__("bytes", "é".encode())),
    ("setitem big int", lambda s: s.prep.__setitem__("big", 10**30)),
    ("setitem overwrite", lambda s: s.prep.__setitem__(TaskEnum.build_climate, -5)),
    ("sbs_required=True", lambda s: setattr(s.prep, "sbs_required", True)),
    ("has_sbs=1", lambda s: setattr(s.prep, "has_sbs", 1)),
    ("has_sbs=0", lambda s: setattr(s.prep, "has_sbs", 0)),
    ("sbs_required=''", lambda s: setattr(s.prep, "sbs_required", "")),
    ("bool custom list", lambda s: s.prep._set_bool_config("custom", [0])),
    ("bool custom None", lambda s: s.prep._set_bool_config("custom", None)),
    ("rq str key", lambda s: s.prep.set_rq_job_id("build_climate_rq", ODD)),
    ("rq TaskEnum key", lambda s: s.prep.set_rq_job_id(TaskEnum.run_wepp_watershed, "j-2")),
    ("rq foreign key", lambda s: s.prep.set_rq_job_id(WeppTaskEnum.build_climate, "j-3")),
    ("rq overwrite", lambda s: s.prep.set_rq_job_id("build_climate_rq", "j-4")),
    ("archive set", lambda s: s.prep.set_archive_job_id("arch-1")),
    ("archive clear", lambda s: s.prep.clear_archive_job_id()),
    ("archive clear absent", lambda s: s.prep.clear_archive_job_id()),
    ("archive set again", lambda s: s.prep.set_archive_job_id(ODD)),
    ("raw extra field + dump", raw_write("postfire_debris_flow:revision", "3")),
    ("raw locked field + dump", raw_write("locked:climate.nodb", "true")),
    ("raw odd timestamp", raw_write("timestamps:build_soils", " 7 ")),
    ("raw mixed-case bool", raw_write("attrs:custom", "TRUE")),
    ("remove TaskEnum", lambda s: s.prep.remove_timestamp(TaskEnum.build_climate)),
    ("remove absent", lambda s: s.prep.remove_timestamp("missing")),
    ("remove foreign", lambda s: s.prep.remove_timestamp(WeppTaskEnum.fetch_rap_ts)),
    ("setitem after remove", lambda s: s.prep.__setitem__(TaskEnum.build_climate, 3)),
    ("setitem invented task", lambda s: s.prep.__setitem__(WeppTaskEnum.run_sediment_budget, 2)),
    ("remove_all_timestamp", lambda s: s.prep.remove_all_timestamp()),
    ("remove_all again", lambda s: s.prep.remove_all_timestamp()),
    ("dump()", lambda s: s.prep.dump()),
    ("loaded=False", lambda s: s.prep._set_bool_config("loaded", False)),
    ("lazy_load reloads", lambda s: s.prep.lazy_load()),
]


#: Keys every keyed method refuses with ``InvalidKeyError``, and those methods.
BAD_KEYS: list[Any] = [None, 7, 1.5, True, b"build_climate", object(), ("build_climate",)]

KEYED: dict[str, Callable[[Any, Any], Any]] = {
    "timestamp": lambda p, k: p.timestamp(k),
    "__setitem__": lambda p, k: p.__setitem__(k, 1),
    "__getitem__": lambda p, k: p[k],
    "remove_timestamp": lambda p, k: p.remove_timestamp(k),
    "set_rq_job_id": lambda p, k: p.set_rq_job_id(k, "j"),
    "get_rq_job_id": lambda p, k: p.get_rq_job_id(k),
    "_get_bool_config": lambda p, k: p._get_bool_config(k),
    "_set_bool_config": lambda p, k: p._set_bool_config(k, True),
}


def write_rich_state(side: Side) -> None:
    """A hash with every kind of field (and a ``locked:`` one), written through ``side``."""
    for _, fn in SCRIPT[:24]:  # everything up to the raw writes (no locked field yet)
        fn(side)
    side.raw.hset(side.key, "locked:wepp.nodb", "true")
    if side.name == "legacy":
        side.prep.timestamp(TaskEnum.run_wepp_watershed, now=1700000123)
    else:
        side.prep.timestamp(TaskEnum.run_wepp_watershed)


#: wepppy's TaskEnum, copied verbatim: member, value, label, emoji.
TASK_TABLE = """
if_exists_rmtree | rmtree | Remove existing files | 🗑️
project_init | project_init | Initialize Project | 🚀
set_outlet | set_outlet | Set Outlet | 📍
abstract_watershed | abstract_watershed | Abstract Watershed | 💎
build_channels | build_channels | Build Channels | 🌊
find_outlet | find_outlet | Find Outlet | 📍
build_subcatchments | build_subcatchments | Build Subcatchments | 🧩
build_landuse | build_landuse | Build Landuse | 🌲
build_treatments | build_treatments | Build Treatments | 💊
build_rangeland_cover | build_rangeland_cover | Build Rangeland Cover | 🦎
build_soils | build_soils | Build Soils | 🪱
build_climate | build_climate | Build Climate | ☁️
fetch_rap_ts | build_rap_ts | Build RAP TS | 🐮
fetch_openet_ts | build_openet_ts | Build OpenET TS | 🛰️
fetch_polaris | build_polaris | Build POLARIS Layers | 🧱
run_wepp_hillslopes | run_wepp_hillslopes | Run WEPP Hillslopes | 💧
run_wepp_watershed | run_wepp_watershed | Run WEPP Watershed | ⛰️
run_observed | run_observed | Run Observed | 📊
run_debris | run_debris | Run Debris | 🪨
run_roads | run_roads | Run Roads | 🚗
run_watar | run_watar | Run WATAR | 🌋
run_rhem | run_rhem | Run RHEM | 🌵
fetch_dem | fetch_dem | Fetch DEM | 🌍
landuse_map | landuse_map | Landuse Map | 🗺️
init_sbs_map | init_sbs_map | Initialize SBS Map | 🔥
run_omni_scenarios | run_omni_scenarios | Run OMNI Scenarios | 🪓
run_omni_contrasts | run_omni_contrasts | Run OMNI Contrasts | ⚖️
dss_export | dss_export | Export DSS | 📤
run_features_export | run_features_export | Export Features | 📦
build_rusle | build_rusle | Build RUSLE | 🔱
set_readonly | set_readonly | Set Readonly | 🔒
run_path_cost_effective | run_path_ce | Run PATH Cost-Effective | 🧮
run_geneva | run_geneva | Run Geneva | 🐈
"""


# -- randomized operation sequences -------------------------------------------

_KEYS = st.one_of(
    st.sampled_from(list(TaskEnum)),
    st.sampled_from(list(WeppTaskEnum)),
    st.sampled_from(["build_climate", "run_geneva", "run_sediment_budget", ODD, "a"]),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
)
_VALUES = st.one_of(
    st.integers(-(10**12), 10**12),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=8),
    st.sampled_from([ODD, " 7 ", "1_0", "", "1.5"]),
)
#: One random operation: ``(kind, *args)``, applied with :func:`apply_op`.
OPS = st.one_of(
    st.tuples(st.just("set"), _KEYS, _VALUES),
    st.tuples(st.just("timestamp"), _KEYS),
    st.tuples(st.just("remove"), _KEYS),
    st.tuples(st.just("remove_all")),
    st.tuples(st.just("bool"), st.sampled_from(["sbs_required", "has_sbs", "x"]), st.booleans()),
    st.tuples(st.just("rq"), _KEYS, _VALUES),
    st.tuples(st.just("archive"), _VALUES),
    st.tuples(st.just("clear_archive")),
    st.tuples(st.just("raw"), st.sampled_from(["locked:a", "other", "attrs:x"]), _VALUES),
    st.tuples(st.just("lost")),  # Redis lost the hash: getInstance reloads the dump
    st.tuples(st.just("dump")),
)


def apply_op(pair: Pair, op: tuple[Any, ...]) -> None:
    """Apply one operation of :data:`OPS` to both sides (and check the state)."""
    kind = op[0]
    if kind == "timestamp":
        pair.timestamp(op[1])
        return
    if kind == "lost":
        for side in pair.sides:
            side.raw.delete(side.key)
        pair.open()
        pair.check_state("reloaded after loss")
        return
    fns: dict[str, Callable[[Side], Any]] = {
        "set": lambda s: s.prep.__setitem__(op[1], op[2]),
        "remove": lambda s: s.prep.remove_timestamp(op[1]),
        "remove_all": lambda s: s.prep.remove_all_timestamp(),
        "bool": lambda s: s.prep._set_bool_config(op[1], op[2]),
        "rq": lambda s: s.prep.set_rq_job_id(op[1], op[2]),
        "archive": lambda s: s.prep.set_archive_job_id(op[1]),
        "clear_archive": lambda s: s.prep.clear_archive_job_id(),
        "raw": lambda s: raw_write(op[1], str(op[2]))(s),
        "dump": lambda s: s.prep.dump(),
    }
    pair.step(fns[kind], repr(op))
