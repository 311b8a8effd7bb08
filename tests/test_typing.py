"""What a user's type checker sees: mypy --strict on small user scripts, against
the installed package (its stub, ``py.typed`` and TypedDicts). Correct code
passes; a misspelt name or key and a wrong value type fail."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import redisprep
from redisprep import _redisprep
from support.layouts import Layout

GOOD = """
from typing import Optional

import redisprep
from redisprep import _redisprep
import redisprep.rq
from redisprep import ConnectionInfo, ExplainEntry, Preflight, RedisPrep, Rules, Stats, TaskEnum

redisprep.configure("redis://localhost:6379/0", timeout=2.0)
info: ConnectionInfo = redisprep.connection_info()
layout: str = info["layout"]
prep_db: int = info["prep_db"]
url: Optional[str] = info.get("url")
nodes: list[str] = info.get("nodes", [])
if info["layout"] == "cluster":
    print(info["nodes"])

stats: Stats = redisprep.stats()
trips: int = stats["round_trips"] + stats["keys_deleted"]

prep = RedisPrep.getInstance("/runs/ab/abc-def")
prep.timestamp(TaskEnum.build_climate)
report: Preflight = prep.preflight(explain=True)
done: bool = report["checklist"]["climate"]
locked: dict[str, bool] = report["lock_statuses"]
last: Optional[int] = report["last_modified"]
why: list[str] = report.get("explain", {}).get("climate", [])
fresh: Optional[Preflight] = prep.last_preflight
after: Preflight = prep.timestamp_and_preflight("build_soils")

entries: list[ExplainEntry] = prep.explain(TaskEnum.build_landuse)
rules = Rules.load(redisprep.rules_path())
for e in rules.explain("build_climate", "/runs/ab/abc-def"):
    keys: list[str] = e["keys"]
    direct: bool = e["direct"]
    via: list[str] = e["via"]
    db: int = e["db"]
checked: Preflight = rules.evaluate_checks({"timestamps:build_channels": "1"})

callback = redisprep.rq.timestamp_on_success(TaskEnum.build_climate)
"""

# name -> (code, the mypy error code it must raise)
BAD = {
    "module_typo": ("redisprep.configur(timeout=1.0)", "attr-defined"),
    "import_typo": ("from redisprep import Preflght", "attr-defined"),
    "rq_typo": (
        "redisprep.rq.timestamp_on_succes(redisprep.TaskEnum.build_climate)",
        "attr-defined",
    ),
    "stats_key": ("redisprep.stats()['round_trip']", "typeddict-item"),
    "stats_type": ("s: str = redisprep.stats()['timestamps']", "assignment"),
    "preflight_key": (
        "redisprep.RedisPrep.getInstance('/r/x').preflight()['checklst']",
        "typeddict-item",
    ),
    "preflight_value": (
        "c: dict[str, int] = redisprep.RedisPrep.getInstance('/r/x').preflight()['checklist']",
        "assignment",
    ),
    "explain_key": ("redisprep.Rules.load().explain('build_climate')[0]['key']", "typeddict-item"),
    "connection_key": ("redisprep.connection_info()['passwrd']", "typeddict-item"),
    "connection_value": ("t: str = redisprep.connection_info()['timeout']", "assignment"),
}


def _mypy(tmp_path: Path, files: dict[str, str]) -> dict[str, list[str]]:
    """Run mypy --strict once on ``files`` (outside this repository, so none of its
    configuration applies); the errors per file, as ``"message [code]"``."""
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed (requirements-test.txt)")
    for name, code in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(code).lstrip())
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    p = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir", ".cache"]
        + [f"{name}.py" for name in files],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode in (0, 1), p.stdout + p.stderr  # 2: mypy itself failed
    errors: dict[str, list[str]] = {name: [] for name in files}
    for line in p.stdout.splitlines():
        m = re.match(r"(\w+)\.py:\d+: error: (.*)$", line)
        if m:
            errors[m[1]].append(m[2])
    return errors


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_user_code_type_checks_and_typos_do_not(tmp_path: Path) -> None:
    files = {"good": GOOD}
    files.update(
        {
            name: f"import redisprep\nimport redisprep.rq\n{code}\n"
            for name, (code, _) in BAD.items()
        }
    )
    errors = _mypy(tmp_path, files)
    assert errors.pop("good") == []
    for name, (code, want) in BAD.items():
        assert errors[name], f"{name}: mypy accepted {code!r}"
        assert any(e.endswith(f"[{want}]") for e in errors[name]), (name, errors[name])


def _keys(td: type) -> tuple[frozenset[str], frozenset[str]]:
    """A TypedDict's required keys, and all its keys."""
    required: frozenset[str] = td.__required_keys__  # type: ignore[attr-defined]
    optional: frozenset[str] = td.__optional_keys__  # type: ignore[attr-defined]
    return required, required | optional


def test_stats_typeddict_names_every_counter() -> None:
    required, known = _keys(redisprep.Stats)
    assert set(redisprep.stats()) == required == known
    assert all(isinstance(v, int) for v in redisprep.stats().values())


def test_connection_info_typeddict_covers_both_layouts(layout: Layout) -> None:
    info = redisprep.connection_info()
    assert info["layout"] == layout.name
    required, known = _keys(redisprep.ConnectionInfo)
    assert required <= set(info) <= known, (set(info) - known, required - set(info))


def test_preflight_and_explain_typeddicts_name_every_key(run_dir: Path) -> None:
    prep = redisprep.RedisPrep.getInstance(str(run_dir))
    required, known = _keys(redisprep.Preflight)
    assert set(prep.preflight()) == required
    assert set(prep.preflight(explain=True)) == known
    prep.timestamp(redisprep.TaskEnum.build_channels)
    assert set(prep.timestamp_and_preflight(redisprep.TaskEnum.build_climate)) == required
    assert prep.last_preflight is not None and set(prep.last_preflight) == required
    rules = redisprep.Rules.load()
    assert set(rules.evaluate_checks({}, explain=True)) == known

    required, known = _keys(redisprep.ExplainEntry)
    entries = [*prep.explain(redisprep.TaskEnum.build_climate), *rules.explain("build_climate")]
    assert entries and all(set(e) == required == known for e in entries)


def test_connection_params_typeddict_covers_both_layouts(layout: Layout, tmp_path: Path) -> None:
    required, known = _keys(redisprep.ConnectionParams)
    shapes = [_redisprep.connection_params()]
    if layout.name == "standalone":
        sock = tmp_path / "redis.sock"
        tls = "rediss://h:6380/0#insecure"
        shapes += [
            _redisprep.connection_params(f"unix://{sock}"),
            _redisprep.connection_params(tls),
        ]
    for params in shapes:
        assert params["layout"] == layout.name
        assert required <= set(params) <= known, (set(params) - known, required - set(params))


def test_explain_checks_typeddict_names_every_key() -> None:
    required, known = _keys(redisprep.CheckExplanation)
    assert set(redisprep.Rules.load().explain_checks({})) == required == known
