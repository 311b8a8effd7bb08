"""The ``configure()`` options are declared once, in Rust
(``_redisprep.configure_options()``); the Python wrapper and the stub must
list exactly those, with the same types, and the native function must take
each of them by name."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import redisprep
from redisprep import ConfigError, _redisprep

STUB = Path(redisprep.__file__).with_name("_redisprep.pyi")
#: wrapper-only arguments (process configuration outside the connection)
PYTHON_ONLY = {"rules", "runs_root", "resolver"}


def _declared() -> list[tuple[str, str]]:
    return [(name, kind) for name, kind in _redisprep.configure_options()]


def _annotation_type(text: str) -> str:
    """``Optional[float]`` -> ``float``."""
    inner = text.removeprefix("Optional[").removesuffix("]")
    return inner


@pytest.mark.no_redis
def test_rust_declares_every_option_once() -> None:
    names = [n for n, _ in _declared()]
    assert names[0] == "url"
    assert len(names) == len(set(names))
    assert {k for _, k in _declared()} <= {"str", "int", "float", "bool"}


@pytest.mark.no_redis
def test_the_python_wrapper_lists_the_declared_options() -> None:
    sig = inspect.signature(redisprep.configure)
    got = [
        (p.name, _annotation_type(str(p.annotation)))
        for p in sig.parameters.values()
        if p.name not in PYTHON_ONLY
    ]
    assert got == _declared()


@pytest.mark.no_redis
def test_the_stub_lists_the_declared_options() -> None:
    tree = ast.parse(STUB.read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "configure")
    args = fn.args.args + fn.args.kwonlyargs
    got = [
        (a.arg, _annotation_type(ast.unparse(a.annotation)))
        for a in args
        if a.annotation is not None
    ]
    assert got == _declared()


def test_the_wrapper_passes_every_option_to_the_core(redis_info: Any, tmp_path: Path) -> None:
    given = {
        "prep_db": 2,
        "connect_timeout": 2.5,
        "timeout": 3.5,
        "retries": 1,
        "fsync": True,
        "events": True,
        "events_channel": "chan",
        "min_replicas": 0,
        "replica_timeout": 0.5,
    }
    assert set(given) | {"url", "tls_ca_file"} == {n for n, _ in _declared()}
    try:
        redisprep.configure(redis_info.url, **given)  # type: ignore[arg-type]
        info = redisprep.connection_info()
        assert {k: info[k] for k in given} == given
        missing = tmp_path / "no-such-ca.pem"
        with pytest.raises(ConfigError, match=r"no-such-ca\.pem"):
            redisprep.configure(redis_info.url, tls_ca_file=str(missing))
    finally:
        redisprep.configure(redis_info.url)


@pytest.mark.no_redis
def test_the_native_configure_refuses_unknown_and_mistyped_options() -> None:
    before = redisprep.connection_info()
    with pytest.raises(TypeError, match="unexpected keyword argument 'prepdb'"):
        _redisprep.configure(None, prepdb=1)
    with pytest.raises(TypeError):
        _redisprep.configure(None, fsync="yes")
    with pytest.raises(ConfigError, match="retries"):
        _redisprep.configure(None, retries=-1)
    assert redisprep.connection_info() == before
