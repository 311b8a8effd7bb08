"""The ``redisprep.dump`` format with no server: the core's serialiser writes the
bytes CPython's ``json.dumps(dict(pairs))`` writes (what legacy ``dump()`` does),
for any text: escapes, surrogate pairs, control characters. Its input is a hash's
``HGETALL``, so the keys are distinct."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redisprep._redisprep import dumps_pairs

pytestmark = pytest.mark.no_redis  # no server: pytest -m no_redis

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=500, deadline=None)
@given(hash_=st.dictionaries(TEXT, TEXT, max_size=12))
def test_dumps_pairs_is_json_dumps_of_the_dict(hash_: dict[str, str]) -> None:
    assert dumps_pairs(list(hash_.items())) == json.dumps(hash_)


@pytest.mark.parametrize(
    "pairs",
    [
        [],
        [("timestamps:build_climate", "1700000000")],
        [("a", '"quoted" \\ back/slash'), ("b", "\n\t\x00\x1f\x7f")],
        [("é", "ünïcødé"), ("emoji", "🌧️ 𝄞")],
    ],
    ids=["empty", "timestamp", "escapes", "non-ascii"],
)
def test_known_cases(pairs: list[tuple[str, str]]) -> None:
    assert dumps_pairs(pairs) == json.dumps(dict(pairs))
