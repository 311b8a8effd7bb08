"""Package surface: exports, typing markers, version."""

from __future__ import annotations

import importlib.resources

import pytest

import redisprep

pytestmark = pytest.mark.no_redis  # no server: pytest -m no_redis

RULES = "cache_invalidation_rules.json"


def test_exports_are_importable() -> None:
    for name in redisprep.__all__:
        assert hasattr(redisprep, name), name


def test_py_typed_and_stub_ship() -> None:
    files = importlib.resources.files("redisprep")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_redisprep.pyi").is_file()


def test_pytest_plugin_ships_and_is_registered() -> None:
    """The pytest plugin is a module of the installed package, and pytest finds it
    through the ``pytest11`` entry point (no conftest needed in a user's suite)."""
    import importlib.metadata

    files = importlib.resources.files("redisprep")
    for name in ("__init__.py", "plugin.py", "factories.py"):
        assert files.joinpath("testing", name).is_file(), name
    found = [
        ep.value
        for ep in importlib.metadata.distribution("redisprep").entry_points
        if ep.group == "pytest11" and ep.name == "redisprep"
    ]
    assert found == ["redisprep.testing.plugin"]


def test_packaged_rules_are_the_rules_folder() -> None:
    """The package's rules/ (staged from the top-level rules/ by build.rs: into the
    wheel, or into python/ by ``maturin develop``) is byte-identical to its source."""
    from pathlib import Path

    root = Path(__file__).parent.parent / "rules"
    packaged = importlib.resources.files("redisprep").joinpath("rules")
    for name in ("cache_invalidation_rules.json", "cache_invalidation_rules.schema.json"):
        assert packaged.joinpath(name).read_bytes() == (root / name).read_bytes(), name
    assert Path(redisprep.rules_path()).read_bytes() == (root / RULES).read_bytes()


def test_version_matches_cargo() -> None:
    from pathlib import Path

    cargo = (Path(__file__).parent.parent / "Cargo.toml").read_text()
    assert f'version = "{redisprep.__version__}"' in cargo


def test_error_hierarchy() -> None:
    assert issubclass(redisprep.RedisConnectionError, ConnectionError)
    assert issubclass(redisprep.RedisTimeoutError, TimeoutError)
    assert issubclass(redisprep.RulesError, ValueError)
    assert issubclass(redisprep.InvalidKeyError, TypeError)
    assert issubclass(redisprep.DumpError, OSError)
    assert issubclass(redisprep.UnknownControllerError, ValueError)
    assert not issubclass(redisprep.UnknownControllerError, TypeError)
    for name in (
        "RedisConnectionError",
        "RulesError",
        "DumpError",
        "InvalidKeyError",
        "UnknownControllerError",
    ):
        assert issubclass(getattr(redisprep, name), redisprep.RedisPrepError)


def test_the_public_surface_has_no_private_parts() -> None:
    """``dumps_pairs`` is private (the native module keeps it), and the public
    constructor takes only legacy's arguments."""
    import inspect

    assert "dumps_pairs" not in redisprep.__all__
    assert not hasattr(redisprep, "dumps_pairs")
    assert redisprep._redisprep.dumps_pairs([("a", "é")]) == '{"a": "\\u00e9"}'
    assert list(inspect.signature(redisprep.RedisPrep).parameters) == ["wd", "cfg_fn"]
