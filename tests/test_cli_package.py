"""The command-line package as a user meets it: one dispatcher, every command's
``--help``, and the one exit convention (0 ok, 1 the thing checked is not OK,
2 bad input with ``redisprep <command>: error: ...``), each in a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

import redisprep
from redisprep import Rules
from redisprep.cli import COMMANDS
from support.cli import run_cli
from support.redis_server import free_port

PACKAGE = Path(redisprep.__file__).resolve().parent


def _error_line(proc: subprocess.CompletedProcess[str], command: str) -> str:
    """The one ``redisprep <command>: error: `` line of stderr, without its prefix."""
    prefix = f"redisprep {command}: error: "
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, proc.stderr
    return lines[0][len(prefix) :]


# -------------------------------------------------------------- the dispatcher


def test_help_lists_every_command_once_with_one_line() -> None:
    p = run_cli("--help")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    listing = out[out.index("commands:") + 1 : out.index("commands:") + 1 + len(COMMANDS)]
    assert [line.split()[0] for line in listing] == [c.name for c in COMMANDS]
    for line, command in zip(listing, COMMANDS):
        assert line.split(None, 1)[1] == command.summary
    assert {c.name for c in COMMANDS} >= {
        "rules",
        "preflight",
        "migrate",
        "audit",
        "migrate-layout",
        "demo",
    }
    # the line after the listing is not another command
    assert out[out.index("commands:") + 1 + len(COMMANDS)] == ""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["nope"], "unknown command 'nope' (choose from rules, "),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_dispatcher_bad_input_exits_2(argv: list[str], message: str) -> None:
    p = run_cli(*argv)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith("usage: redisprep ")
    assert f"redisprep: error: {message}" in p.stderr


def test_options_after_the_command_belong_to_the_command() -> None:
    """The first word picks the command and the rest is its own: ``--version``
    after ``migrate`` is migrate's (unknown) option, not the dispatcher's."""
    assert run_cli("--version").returncode == 0
    p = run_cli("migrate", "--version")
    assert p.returncode == 2
    assert _error_line(p, "migrate") == "unrecognized arguments: --version"


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_help(command: str) -> None:
    p = run_cli(command, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: redisprep {command} ")
    assert p.stderr == ""


@pytest.mark.parametrize("sub", ["check", "explain", "graph"])
def test_rules_subcommands_have_help(sub: str) -> None:
    p = run_cli("rules", sub, "--help")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith(f"usage: redisprep rules {sub} ")


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_rejects_an_unknown_option_with_exit_2(command: str) -> None:
    required = {  # what each command needs before it looks at the options
        "rules": ["check"],
        "preflight": ["."],
        "migrate-layout": ["--from", "redis://a", "--to", "redis://b"],
    }
    argv = required.get(command, [])
    p = run_cli(command, *argv, "--no-such-option")
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith(f"usage: redisprep {command}")
    assert _error_line(p, command) == "unrecognized arguments: --no-such-option"


# ------------------------------------------------- bad input found by a command


def test_rules_bad_input(tmp_path: Path) -> None:
    p = run_cli("rules", "graph", "--format", "png")  # a subcommand's parser: same prefix
    assert p.returncode == 2
    assert p.stderr.startswith("usage: redisprep rules graph ")
    assert _error_line(p, "rules").startswith("argument --format: invalid choice: 'png'")
    p = run_cli("rules", "check", str(tmp_path / "nope.json"))
    assert p.returncode == 2
    assert _error_line(p, "rules") == f"{tmp_path / 'nope.json'}: no such rules file"
    p = run_cli("rules", "explain", "build_climat")
    assert p.returncode == 2
    assert _error_line(p, "rules").startswith("unknown task 'build_climat'")


def test_preflight_bad_input(run_dir: Path, r0: redis.Redis[str]) -> None:
    (run_dir / "redisprep.dump").write_text("[1, 2]", encoding="utf-8")
    p = run_cli("preflight", str(run_dir))
    assert p.returncode == 2
    assert _error_line(p, "preflight") == f"{run_dir / 'redisprep.dump'}: not a JSON object"
    url = f"redis://127.0.0.1:{free_port()}/0"
    p = run_cli("preflight", str(run_dir), env={"REDIS_URL": url})
    assert p.returncode == 2
    assert "127.0.0.1" in _error_line(p, "preflight")
    assert r0.dbsize() == 0


def test_audit_bad_input(tmp_path: Path) -> None:
    p = run_cli("audit", "--runs", "*")
    assert p.returncode == 2
    assert _error_line(p, "audit") == "--runs needs --runs-root"
    url = f"redis://127.0.0.1:{free_port()}/0"
    p = run_cli("audit", str(tmp_path), "--redis-url", url, "--no-progress")
    assert p.returncode == 2
    assert "127.0.0.1" in _error_line(p, "audit")


def test_migrate_layout_bad_input(redis_info: Any) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    p = run_cli("migrate-layout", "--from", url, "--to", redis_info.url)
    assert p.returncode == 2
    assert "127.0.0.1" in _error_line(p, "migrate-layout")
    p = run_cli("migrate-layout", "--from", "http://nope", "--to", redis_info.url)
    assert p.returncode == 2
    assert _error_line(p, "migrate-layout")


def test_migrate_bad_input(tmp_path: Path) -> None:
    p = run_cli("migrate", "--format", "xml", cwd=tmp_path)
    assert p.returncode == 2
    assert _error_line(p, "migrate").startswith("argument --format: invalid choice: 'xml'")


def test_demo_without_flask_is_bad_input(tmp_path: Path) -> None:
    """An installation without Flask: the demo names the extras to install (the
    ``redisprep[flask,rq]`` extras exist in pyproject.toml)."""
    code = (
        "import sys; sys.modules['flask'] = None\n"  # import flask -> ImportError
        "from redisprep.cli import main\n"
        f"raise SystemExit(main(['demo', '--once', '--runs-root', {str(tmp_path)!r}]))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert _error_line(p, "demo") == (
        "the demo needs flask, which is not installed: pip install 'redisprep[flask,rq]'"
    )
    assert list(tmp_path.iterdir()) == []  # nothing started
    extras = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    assert "\nflask = [" in extras and "\nrq = [" in extras


def test_demo_bad_option_value() -> None:
    p = run_cli("demo", "--port", "eighty")
    assert p.returncode == 2
    assert _error_line(p, "demo").startswith("argument --port: invalid int value")


# ------------------------------------------------- exit 1: checked, not OK


def test_exit_1_means_the_thing_checked_is_not_ok(tmp_path: Path, r13: redis.Redis[str]) -> None:
    broken = tmp_path / "rules.json"
    broken.write_text('{"version": 7, "controllers": {}, "tasks": {}}', encoding="utf-8")
    assert run_cli("rules", "check", str(broken)).returncode == 1

    (tmp_path / "api.py").write_text(
        "def api_build_climate(runid):\n"
        "    prep = RedisPrep.getInstance(wd)\n"
        "    prep.remove_timestamp(TaskEnum.build_climate)\n",
        encoding="utf-8",
    )
    assert run_cli("migrate", "api.py", cwd=tmp_path).returncode == 0
    assert run_cli("migrate", "api.py", "--check", cwd=tmp_path).returncode == 1

    wd = tmp_path / "runs" / "r1"
    wd.mkdir(parents=True)
    (wd / "climate.nodb").write_text('{"on": "disk"}', encoding="utf-8")
    r13.set(f"{wd}/climate.nodb", '{"in": "cache"}')
    p = run_cli("audit", str(wd), "--no-progress")
    assert p.returncode == 1, p.stderr
    assert "1 stale or orphan entry" in p.stdout
    r13.set(f"{wd}/climate.nodb", '{"on": "disk"}')
    assert run_cli("audit", str(wd), "--no-progress").returncode == 0


# ------------------------------------------------- one --format json convention


def test_format_json_and_the_json_alias(run_dir: Path) -> None:
    for argv in (["rules", "explain", "build_climate"], ["preflight", str(run_dir)]):
        p_format = run_cli(*argv, "--format", "json")
        p_alias = run_cli(*argv, "--json")
        assert p_format.returncode == p_alias.returncode == 0, p_format.stderr
        assert json.loads(p_format.stdout) == json.loads(p_alias.stdout)
        text = run_cli(*argv, "--format", "text")
        assert text.returncode == 0
        assert text.stdout == run_cli(*argv).stdout  # text is the default
        with pytest.raises(ValueError):
            json.loads(text.stdout)


def test_rules_graph_json_is_the_engines_graph() -> None:
    p = run_cli("rules", "graph", "--format", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    rules = Rules.load()
    assert doc["rules"] == rules.source and doc["db"] == rules.db
    assert list(doc["tasks"]) == list(rules.tasks)
    for task, entry in doc["tasks"].items():
        explained = rules.explain(task)
        assert entry["closure"] == [e["controller"] for e in explained]
        assert entry["invalidates"] == [e["controller"] for e in explained if e["direct"]]
        assert entry["cascades"] == rules.cascades_of(task)
        assert sorted(entry["closure"]) == sorted(rules.controllers_for(task))


# ------------------------------------------------------ the package's top level


def test_top_level_holds_the_public_api_and_private_modules_only() -> None:
    public = {"__init__", "__main__", "prep", "config", "errors", "task", "rq", "audit", "testing"}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert {m for m in modules if not m.startswith("_")} <= public
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"cli", "migrate", "testing", "_demo"}
    commands = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__"}
    assert {c.module for c in COMMANDS} == {m for m in commands if not m.startswith("_")}
