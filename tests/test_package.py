"""Package surface: exports, typing markers, version."""

from __future__ import annotations

import importlib.resources

import redisprep


def test_exports_are_importable() -> None:
    for name in redisprep.__all__:
        assert hasattr(redisprep, name), name


def test_py_typed_and_stub_ship() -> None:
    files = importlib.resources.files("redisprep")
    assert files.joinpath("py.typed").is_file()
    assert files.joinpath("_redisprep.pyi").is_file()


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
    for name in ("RedisConnectionError", "RulesError", "DumpError", "InvalidKeyError"):
        assert issubclass(getattr(redisprep, name), redisprep.RedisPrepError)
