"""OidSet (lensvault/oid_set.py): the object ids verify and gc hold, 32 bytes each. Checked
against a plain Python set on the same ids, from every side it is built and asked."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pytest

from lensvault.oid_set import OidSet


def _ids(n: int, seed: int) -> list[str]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).hexdigest() for i in range(n)]


def test_it_is_the_set_of_its_ids_however_it_is_built():
    a, b = _ids(3000, 1), _ids(2000, 2) + _ids(500, 1)  # overlapping
    arrow = pa.chunked_array([pa.array(a[:1000]), pa.array(a[1000:] + a[:10])])  # duplicates, two chunks
    sliced = pa.array(["x" * 64, *b, "y"])[1:-1]  # a slice: the buffers start before it
    s = OidSet.from_arrow(arrow) | OidSet.from_arrow(sliced)
    expected = sorted(set(a) | set(b))
    assert list(s) == expected and len(s) == len(expected)
    assert [x for chunk in s.chunks(700) for x in chunk] == expected
    assert list(OidSet.of(reversed(expected))) == expected
    probe = random.Random(0).sample(expected, 50) + _ids(50, 3) + ["", "abc", "Z" * 64]
    assert s.contains(probe) == [p in set(expected) for p in probe]
    assert [p in s for p in probe] == [p in set(expected) for p in probe]
    assert list(s - OidSet.of(b)) == sorted(set(a) - set(b))
    assert list(OidSet() | s) == expected and list(s | OidSet()) == expected and len(OidSet()) == 0
    parts = [OidSet.of(a[i:i + 700]) for i in range(0, len(a), 700)] + [OidSet(), OidSet.of(b)]
    assert list(OidSet.union(parts)) == expected
    assert list(OidSet.union([s])) == expected and len(OidSet.union([])) == 0


@pytest.mark.parametrize("bad", [pa.array(["ab" * 32, None]), pa.array(["ab" * 32, "abc"])])
def test_a_column_that_is_not_digests_is_refused(bad):
    with pytest.raises(ValueError, match="object id"):
        OidSet.from_arrow(bad)
    with pytest.raises(ValueError, match="64 hex"):
        OidSet.of(["abc"])


def test_digests_with_zero_bytes_anywhere_keep_their_order_and_identity():
    """Raw digests are fixed-width bytes: one ending (or starting, or holding) zero bytes is a
    value like any other (numpy drops trailing NULs when it hands one out as ``bytes``)."""
    edge = ["00" * 32, "00" * 31 + "01", "00" * 5 + "ab" + "00" * 26, "00" * 5 + "ab" + "00" * 25 + "01",
            "ab" + "00" * 31, "ab" + "00" * 30 + "ff", "ff" * 32]
    s = OidSet.of(_ids(300, 4) + edge)
    assert list(s) == sorted(set(_ids(300, 4) + edge))
    assert s.contains(edge) == [True] * len(edge)
    assert s.contains(["00" * 31 + "02", "AB" + "00" * 31, "g" * 64, "é" * 64]) == [False] * 4
    with pytest.raises(ValueError, match="64 hex"):
        OidSet.from_arrow(pa.array(["G" * 64]))
