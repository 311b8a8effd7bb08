"""Every relative link in the README, the CHANGELOG and docs/*.md points at a file
of the repository (and, with ``#anchor``, at one of its headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.no_redis  # no server: pytest -m no_redis

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    return FENCE.sub("", text)


def _links(text: str) -> list[str]:
    prose = CODE.sub("", _prose(text))
    return LINK.findall(prose) + REF.findall(prose)


def _anchors(text: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens,
    repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for title in HEADING.findall(_prose(text)):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in filter(_relative, _links(doc.read_text(encoding="utf-8"))):
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        if not dest.exists() or ROOT not in (dest, *dest.parents):
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md":
            if anchor not in _anchors(dest.read_text(encoding="utf-8")):
                broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert broken == []


def test_the_readme_links_the_rules_file_in_the_rules_folder() -> None:
    links = _links((ROOT / "README.md").read_text(encoding="utf-8"))
    assert "rules/cache_invalidation_rules.json" in links
    assert (ROOT / "rules").is_dir()
    for name in ("cache_invalidation_rules.json", "cache_invalidation_rules.schema.json"):
        assert (ROOT / "rules" / name).is_file(), name


def test_the_checker_finds_broken_links() -> None:
    text = "see [a](nope.md), [b](#nowhere), `[c](in-code.md)`, [d](https://x.example/y)\n# Top\n"
    targets = list(filter(_relative, _links(text)))
    assert targets == ["nope.md", "#nowhere"]
    assert _anchors("# Failover: replica (`x.py`)\n## A\n## A\n") == {
        "failover-replica-xpy",
        "a",
        "a-1",
    }
