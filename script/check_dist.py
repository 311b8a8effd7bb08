"""Checks of what script/matrix built and ran.

    check_dist.py WHEEL SDIST      the wheel and the sdist carry what they must
    check_dist.py --summary XML... one line per matrix environment; fails on any
                                   failure, error or skip

The wheel: one cp39-abi3 manylinux wheel whose glibc fits this machine's, holding
the native module, its stub, py.typed, the pytest plugin (redisprep/testing/, its
pytest11 entry point), the rules and the schema as redisprep/rules/
(byte-identical to the top-level rules/, their source of truth), no tests, and the
metadata classifiers. The sdist: what a build from source needs (Cargo.toml +
Cargo.lock, build.rs, src/, pyproject.toml, the Python package with its stub and
py.typed, rules/ with the rules and the schema, and no second copy of them).
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ("cache_invalidation_rules.json", "cache_invalidation_rules.schema.json")
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13")  # the versions script/matrix + .venv test
WHEEL_RE = re.compile(
    r"redisprep-(?P<ver>[^-]+)-cp39-abi3-manylinux_(?P<maj>\d+)_(?P<min>\d+)_x86_64\.whl$"
)


def fail(msg: str) -> None:
    raise SystemExit(f"check_dist: {msg}")


def check_wheel(path: Path) -> None:
    m = WHEEL_RE.match(path.name)
    if m is None:
        fail(f"{path.name}: not a cp39-abi3 manylinux x86_64 wheel")
    libc = os.confstr("CS_GNU_LIBC_VERSION") or ""  # e.g. "glibc 2.36"
    have = tuple(int(x) for x in libc.split()[-1].split(".")[:2])
    need = (int(m["maj"]), int(m["min"]))
    if need > have:
        fail(f"{path.name} needs glibc {need}, this machine has {libc}")
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        want = [
            "redisprep/_redisprep.abi3.so",
            "redisprep/_redisprep.pyi",
            "redisprep/py.typed",
            "redisprep/__init__.py",
            "redisprep/testing/__init__.py",
            "redisprep/testing/plugin.py",  # the pytest plugin (pytest11 entry point)
            *(f"redisprep/rules/{r}" for r in RULES),
        ]
        missing = [n for n in want if n not in names]
        if missing:
            fail(f"wheel lacks {missing}")
        other_so = [n for n in names if n.endswith(".so") and n != want[0]]
        if other_so:
            fail(f"wheel holds other native modules: {other_so}")
        stray = [
            n for n in names if not n.startswith(("redisprep/", f"redisprep-{m['ver']}.dist-info/"))
        ]
        # (redisprep/testing/ is the pytest plugin, not tests)
        tests = [n for n in names if re.search(r"(^|/)(tests?/|conftest\.py$|test_[^/]*\.py$)", n)]
        if stray or tests:
            fail(f"wheel holds files it should not: {stray + tests}")
        for r in RULES:
            if z.read(f"redisprep/rules/{r}") != (ROOT / "rules" / r).read_bytes():
                fail(f"wheel's {r} differs from rules/{r}")
        meta = Parser().parsestr(z.read(f"redisprep-{m['ver']}.dist-info/METADATA").decode())
        entry_points = z.read(f"redisprep-{m['ver']}.dist-info/entry_points.txt").decode()
    if not re.search(r"\[pytest11\]\s*\nredisprep\s*=\s*redisprep\.testing\.plugin", entry_points):
        fail(f"wheel registers no pytest11 entry point redisprep.testing.plugin: {entry_points!r}")
    classifiers = meta.get_all("Classifier") or []
    versions = sorted(
        (c.rsplit(" :: ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)),
        key=lambda v: tuple(map(int, v.split("."))),
    )
    if tuple(versions) != PYTHONS:
        fail(f"Python classifiers {versions}, tested {list(PYTHONS)}")
    if "Operating System :: POSIX :: Linux" not in classifiers:
        fail("no 'Operating System :: POSIX :: Linux' classifier")
    if meta["Requires-Python"] != f">={PYTHONS[0]}":
        fail(f"Requires-Python {meta['Requires-Python']!r}, lowest tested {PYTHONS[0]}")
    size = path.stat().st_size
    print(f"    wheel {path.name}: {size / 1e6:.2f} MB, {len(names)} files, {libc} here: ok")


def check_sdist(path: Path) -> None:
    with tarfile.open(path) as t:
        top = path.name[: -len(".tar.gz")]
        names = {n[len(top) + 1 :] for n in t.getnames() if n.startswith(f"{top}/")}
    want = [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "pyproject.toml",
        "src/lib.rs",
        "python/redisprep/__init__.py",
        "python/redisprep/_redisprep.pyi",
        "python/redisprep/py.typed",
        "python/redisprep/testing/plugin.py",
        *(f"rules/{r}" for r in RULES),
    ]
    missing = [n for n in want if n not in names]
    if missing:
        fail(f"sdist lacks {missing}")
    copies = sorted(n for n in names if n.endswith(RULES) and not n.startswith("rules/"))
    if copies:
        fail(f"sdist holds a second copy of the rules: {copies}")
    junk = [n for n in names if n.startswith(("target/", ".venv/")) or n.endswith(".so")]
    if junk:
        fail(f"sdist holds build output: {junk[:5]}")
    size = path.stat().st_size
    print(f"    sdist {path.name}: {size / 1e6:.2f} MB, {len(names)} files: ok")


def summary(xmls: list[Path]) -> None:
    bad = False
    print("==> matrix summary")
    for x in xmls:
        suite = ET.parse(x).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
        flag = "ok" if passed == n["tests"] else "FAIL"
        bad |= flag != "ok"
        print(
            f"    {x.stem:8} {passed:4} passed, {n['skipped']} skipped, "
            f"{n['failures'] + n['errors']} failed  {flag}"
        )
    if bad:
        fail("an environment failed or skipped tests")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--summary"]:
        summary([Path(a) for a in argv[1:]])
    elif len(argv) == 2:
        check_wheel(Path(argv[0]))
        check_sdist(Path(argv[1]))
    else:
        fail(__doc__ or "usage")


if __name__ == "__main__":
    main(sys.argv[1:])
