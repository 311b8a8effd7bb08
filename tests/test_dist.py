"""The built artifacts carry the rules: the wheel as ``redisprep/rules/`` (where
``redisprep.rules_path()`` looks), the sdist as the top-level ``rules/`` the core
``include_str!``s, both byte-identical to the repository's ``rules/`` (their single
source of truth) and neither with a second copy.

script/matrix sets ``REDISPREP_DIST_DIR`` to the wheel and sdist it built; otherwise
they are built here, once per session, with ``maturin`` into a temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ("cache_invalidation_rules.json", "cache_invalidation_rules.schema.json")

pytestmark = pytest.mark.slow


def _maturin() -> list[str]:
    for exe in (Path(sys.executable).with_name("maturin"), ROOT / ".venv/bin/maturin"):
        if exe.is_file():
            return [str(exe)]
    found = shutil.which("maturin")
    if found is None:
        pytest.fail("maturin is needed to build the wheel and the sdist (script/setup)")
    return [found]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    given = os.environ.get("REDISPREP_DIST_DIR")
    if given:
        out = Path(given)
    else:
        out = tmp_path_factory.mktemp("dist")
        maturin = _maturin()
        for args in (
            ["build", "--release", "--locked", "--auditwheel", "skip", "-q"],
            ["sdist"],
        ):
            p = subprocess.run(
                [*maturin, *args, "--out", str(out)],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=900,
            )
            assert p.returncode == 0, p.stdout + p.stderr
    wheels = sorted(out.glob("redisprep-*.whl"))
    sdists = sorted(out.glob("redisprep-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(out.iterdir())
    return wheels[0], sdists[0]


@pytest.mark.timeout(900)
def test_wheel_holds_the_rules_inside_the_package(dist: tuple[Path, Path]) -> None:
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        for r in RULES:
            assert f"redisprep/rules/{r}" in names, names
            assert z.read(f"redisprep/rules/{r}") == (ROOT / "rules" / r).read_bytes(), r
    stray = [n for n in names if n.endswith(RULES) and not n.startswith("redisprep/rules/")]
    assert stray == []


@pytest.mark.timeout(900)
def test_sdist_holds_the_top_level_rules_folder_once(dist: tuple[Path, Path]) -> None:
    _, sdist = dist
    top = sdist.name[: -len(".tar.gz")]
    with tarfile.open(sdist) as t:
        members = {m.name[len(top) + 1 :]: m for m in t.getmembers() if m.name.startswith(top)}
        for r in RULES:
            m = members.get(f"rules/{r}")
            assert m is not None and m.isfile(), sorted(members)
            f = t.extractfile(m)
            assert f is not None and f.read() == (ROOT / "rules" / r).read_bytes(), r
    assert "build.rs" in members  # stages rules/ for the wheel built from the sdist
    copies = [n for n in members if n.endswith(RULES) and not n.startswith("rules/")]
    assert copies == []


@pytest.mark.timeout(900)
def test_wheel_ships_the_pytest_plugin(dist: tuple[Path, Path]) -> None:
    """redisprep.testing is in the wheel, registered as a pytest11 entry point."""
    wheel, _ = dist
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        plugin = ROOT / "python" / "redisprep" / "testing"
        for path in sorted(plugin.glob("*.py")):
            name = f"redisprep/testing/{path.name}"
            assert name in names, names
            assert z.read(name) == path.read_bytes(), name
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = z.read(entry_points).decode()
    assert re.search(r"\[pytest11\]\s*\nredisprep\s*=\s*redisprep\.testing\.plugin\b", text), text
