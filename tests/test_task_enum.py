"""The application owns its task list (issue 27): ``set_task_enum`` and what
follows it (``timestamps_report``, ``remove_all_timestamp``, the status page),
side by side with the legacy reference iterating the same application enum;
``rules check --task-enum`` and ``preflight --task-enum`` reading the enum
statically or by import."""

from __future__ import annotations

import ast
import json
import os
import textwrap
import threading
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import (
    ConfigError,
    InvalidKeyError,
    RedisPrep,
    RedisPrepError,
    TaskEnum,
    set_task_enum,
    task_enum,
)
from redisprep import task as task_module
from redisprep._enum_ast import compare, enum_members, load_members
from support.cli import run_cli
from support.dropin import AppTaskEnum, Pair, WeppTaskEnum
from support.layouts import Layout
from support.legacy_ref import LegacyRedisPrep


@pytest.fixture(autouse=True)
def _bundled_after() -> Any:
    yield
    set_task_enum(None)


# -- set_task_enum ------------------------------------------------------------------


class NoStr(Enum):
    a = "a"  # str() is "NoStr.a", not the task value


class Empty(Enum):
    pass


@pytest.mark.parametrize("bad", [None.__class__, 3, "TaskEnum", TaskEnum.build_climate, dict])
def test_set_task_enum_refuses_what_is_not_an_enum_class(bad: Any) -> None:
    set_task_enum(AppTaskEnum)
    with pytest.raises(InvalidKeyError) as e:
        set_task_enum(bad)
    assert isinstance(e.value, TypeError) and isinstance(e.value, RedisPrepError)
    assert task_enum() is AppTaskEnum  # a failed call changes nothing


@pytest.mark.parametrize("bad", [NoStr, Empty])
def test_set_task_enum_refuses_enums_whose_str_is_not_the_task(bad: type[Enum]) -> None:
    with pytest.raises(ConfigError) as e:
        set_task_enum(bad)
    assert isinstance(e.value, ValueError)
    assert task_enum() is TaskEnum


def test_default_is_the_bundled_enum_and_none_restores_it() -> None:
    assert task_enum() is TaskEnum
    assert TaskEnum.run_geneva.value == "run_geneva" and TaskEnum.run_geneva.emoji() == "\U0001f408"
    assert list(TaskEnum)[-1] is TaskEnum.run_geneva
    set_task_enum(WeppTaskEnum)
    assert task_enum() is WeppTaskEnum
    set_task_enum(None)
    assert task_enum() is TaskEnum
    assert "set_task_enum" in redisprep.__all__ and "task_enum" in redisprep.__all__


def test_the_task_list_is_process_wide_and_survives_fork(run_dir: Path) -> None:
    set_task_enum(AppTaskEnum)
    prep = RedisPrep.getInstance(str(run_dir))
    prep["run_sediment_budget"] = 5
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.append(prep.timestamps_report()))
    t.start()
    t.join()
    assert "  run_sediment_budget: 5" in seen[0].splitlines()
    read, write = os.pipe()
    with task_module._lock:  # a fork while another thread holds the lock
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                report = RedisPrep.getInstance(str(run_dir)).timestamps_report()
                os.write(write, report.encode())
            finally:
                os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        child = f.read().decode()
    os.waitpid(pid, 0)
    assert child == prep.timestamps_report()
    assert child.splitlines()[1:] == [f"  {t}: {'5' if t.value == 'run_sediment_budget' else None}"
                                      for t in AppTaskEnum]  # fmt: skip


# -- side by side with legacy -------------------------------------------------------------


def test_an_application_enum_side_by_side_with_legacy(
    layout: Layout, redis_info: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wepppy keeps its own TaskEnum (here with run_geneva elsewhere and a member
    ours lacks) and calls set_task_enum(TaskEnum): same hash, dump bytes, report and
    remove_all_timestamp as legacy code iterating that enum."""
    set_task_enum(AppTaskEnum)
    monkeypatch.setattr(LegacyRedisPrep, "task_enum", AppTaskEnum)
    pair = Pair(layout, redis_info.client(1), tmp_path, "geneva-run")
    pair.open()
    for task in ["build_climate", "run_geneva", "run_sediment_budget"]:
        pair.timestamp(AppTaskEnum[task])
    pair.step(lambda s: s.prep.__setitem__("not_a_task", 3), "a non-member")
    legacy, ours = pair.sides
    report = ours.prep.timestamps_report()
    assert report == legacy.prep.timestamps_report()
    assert [line.split(":")[0].strip() for line in report.splitlines()[1:]] == [
        str(t) for t in AppTaskEnum
    ]
    pair.step(lambda s: s.prep.remove_all_timestamp(), "remove_all_timestamp")
    fields = [k for k, _ in ours.hash_items()]
    assert "timestamps:not_a_task" in fields
    assert not any(k.startswith("timestamps:run_") for k in fields)


def test_the_status_page_lists_the_application_tasks(run_dir: Path, redis_info: Any) -> None:
    from redisprep._demo.status import collect_status

    set_task_enum(AppTaskEnum)
    prep = RedisPrep.getInstance(str(run_dir))
    prep["run_sediment_budget"] = 1_700_000_000
    prep.timestamp(AppTaskEnum["run_geneva"])
    views = {str(v.task): v for v in collect_status(str(run_dir), redis_info.url).tasks}
    assert list(views) == [str(t) for t in AppTaskEnum if str(t) in views]  # the app's order
    assert {"run_sediment_budget", "run_geneva"} <= set(views)
    assert (views["run_geneva"].emoji, views["run_geneva"].label) == ("\U0001f408", "Run Geneva")
    assert views["run_sediment_budget"].label == "run_sediment_budget"  # no label: the value
    set_task_enum(None)
    bundled = {str(v.task) for v in collect_status(str(run_dir), redis_info.url).tasks}
    assert "run_geneva" in bundled and "run_sediment_budget" not in bundled


# -- the enum read statically ------------------------------------------------------------


def wepppy_style_source(members: list[tuple[str, str]], extra: str = "") -> str:
    """A module shaped like wepppy/nodb/redis_prep.py: imports that do not exist here,
    the enum with __str__/label/emoji/__getstate__, and a RedisPrep class."""
    body = "\n".join(f"    {name} = {value!r}" for name, value in members)
    labels = "\n".join(f"            TaskEnum.{n}: {n.title()!r}," for n, _ in members)
    return (
        textwrap.dedent("""\
        from enum import Enum
        from wepppy.config.redis_settings import RedisDB, redis_client  # not installed here

        raise SystemExit("imported!")


        class TaskEnum(Enum):
            \"\"\"Enumerate workflow tasks mirrored into Redis progress keys.\"\"\"

        """)
        + body
        + "\n"
        + extra
        + textwrap.dedent("""
            def __str__(self) -> str:
                return self.value.replace('TaskEnum.', '')

            def label(self) -> str:
                return {
        """)
        + labels
        + textwrap.dedent("""
                }.get(self, self.value)

            def __getstate__(self) -> str:
                return self.value


        class RedisPrep:
            pass
        """)
    )


def test_enum_members_reads_wepppys_shape(tmp_path: Path) -> None:
    members = [(m.name, m.value) for m in TaskEnum]
    src = wepppy_style_source(members, "    _ignore_ = ['x']\n    n: str = 'annotated'\n")
    tree = ast.parse(src)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "TaskEnum")
    assert enum_members(cls) == [*members, ("n", "annotated")]
    tuple_cls = ast.parse("class T(Enum):\n    a = ('run_a', 'Run A', 'x')\n    b = 'b'\n").body[0]
    assert isinstance(tuple_cls, ast.ClassDef)
    assert enum_members(tuple_cls) == [("a", "run_a"), ("b", "b")]
    path = tmp_path / "redis_prep.py"
    path.write_text(src, encoding="utf-8")
    assert load_members(f"{path}:TaskEnum")[:2] == members[:2]  # nothing imported or run


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("TaskEnum", "expected path/to/file.py:Class"),
        ("{dir}/redis_prep.py:", "expected path/to/file.py:Class"),
        ("{dir}/missing.py:TaskEnum", "cannot read"),
        ("{dir}/redis_prep.py:Nope", "no top-level class Nope"),
        ("{dir}/computed.py:TaskEnum", "TaskEnum.a (line 3): the value is not a literal"),
        ("no_such_module_here:TaskEnum", "cannot import no_such_module_here"),
        ("redisprep.task:task_enum", "redisprep.task.task_enum is not an Enum class"),
        ("not a module:TaskEnum", "neither a .py file nor a module"),
    ],
)
def test_bad_specs_raise_config_error(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "redis_prep.py").write_text(wepppy_style_source([("a", "a")]), encoding="utf-8")
    computed = "from enum import Enum\nclass TaskEnum(Enum):\n    a = 'x'.upper()\n"
    (tmp_path / "computed.py").write_text(computed, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_members(spec.format(dir=tmp_path))
    assert message in str(e.value)


def test_load_members_imports_module_specs() -> None:
    assert load_members("redisprep:TaskEnum") == [(m.name, str(m)) for m in TaskEnum]
    assert compare(["a", "b", "c"], ["b", "z", "a"]) == (["c"], ["z"])


# -- rules check --task-enum / preflight --task-enum ---------------------------------------


def _rules_file(tmp_path: Path, tasks: dict[str, dict[str, Any]]) -> Path:
    doc = {
        "version": 1,
        "controllers": {"c": {"keys": ["{wd}/c.nodb"]}},
        "tasks": tasks,
        "checks": {"uses_stray": {"newer": "stray_task", "than_all": ["run_a"]}},
    }
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_rules_check_task_enum_lists_missing_members_and_stray_tasks(tmp_path: Path) -> None:
    enum_file = tmp_path / "redis_prep.py"
    enum_file.write_text(
        wepppy_style_source([("run_a", "run_a"), ("fetch_b", "build_b"), ("run_c", "run_c")]),
        encoding="utf-8",
    )
    tasks = {t: {"invalidates": ["c"]} for t in ["run_a", "build_b", "stray_task"]}
    tasks["old_task"] = {"invalidates": [], "legacy": True}
    rules = _rules_file(tmp_path, tasks)
    p = run_cli("rules", "check", str(rules), "--task-enum", f"{enum_file}:TaskEnum")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert (
        f"task enum {enum_file}:TaskEnum: 3 member(s), 1 with no rules entry, 1 rules" in p.stdout
    )
    lines = p.stderr.splitlines()
    assert any(ln.strip().startswith("run_c: no entry in") for ln in lines), p.stderr
    assert any(ln.strip().startswith("stray_task: in") for ln in lines), p.stderr
    assert "old_task" not in p.stderr and "build_b" not in p.stderr and "run_a:" not in p.stderr
    # covered exactly: exit 0; an unreadable spec: exit 2
    del tasks["stray_task"]
    tasks["run_c"] = {"invalidates": []}
    tasks["run_a"]["invalidates"] = ["c"]
    doc = json.loads(rules.read_text())
    doc["tasks"], doc["checks"] = tasks, {}
    rules.write_text(json.dumps(doc), encoding="utf-8")
    ok = run_cli("rules", "check", str(rules), "--task-enum", f"{enum_file}:TaskEnum")
    assert ok.returncode == 0, (ok.stdout, ok.stderr)
    bad = run_cli("rules", "check", str(rules), "--task-enum", f"{enum_file}:Missing")
    assert bad.returncode == 2 and "no top-level class Missing" in bad.stderr


def test_the_default_rules_cover_wepppys_enum(tmp_path: Path) -> None:
    """The bundled copy written as wepppy writes it: every member has an entry, and the
    only rules task that is not a member (run_wepp) is marked legacy."""
    enum_file = tmp_path / "redis_prep.py"
    enum_file.write_text(wepppy_style_source([(m.name, m.value) for m in TaskEnum]), "utf-8")
    for spec in (f"{enum_file}:TaskEnum", "redisprep.task:TaskEnum"):
        p = run_cli("rules", "check", "--task-enum", spec)
        assert p.returncode == 0, (spec, p.stdout, p.stderr)
        assert "0 with no rules entry, 0 rules task(s) not members" in p.stdout


def test_preflight_names_checks_reading_tasks_the_enum_lacks(
    tmp_path: Path, run_dir: Path, r0: redis.Redis[str]
) -> None:
    older = [(m.name, m.value) for m in TaskEnum if m.value not in ("run_geneva", "run_roads")]
    enum_file = tmp_path / "redis_prep.py"
    enum_file.write_text(wepppy_style_source(older), encoding="utf-8")
    RedisPrep.getInstance(str(run_dir))
    p = run_cli("preflight", str(run_dir), "--json", "--task-enum", f"{enum_file}:TaskEnum")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["unknown_tasks"] == {
        "roads": ["run_roads"],
        "geneva": ["run_geneva"],
    }
    text = run_cli("preflight", str(run_dir), "--task-enum", f"{enum_file}:TaskEnum")
    assert "warning: check geneva reads task(s) not in the task enum: run_geneva" in text.stderr
    default = run_cli("preflight", str(run_dir), "--json")
    assert json.loads(default.stdout)["unknown_tasks"] == {}
    assert "warning" not in default.stderr
