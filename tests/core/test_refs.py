"""Refs and semantic versions: parsing, round trips, and semver.org §11 ordering (property-based)."""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensvault.errors import InvalidRef
from lensvault.refs import Ref, SemVer, validate_name

num = st.integers(min_value=0, max_value=10**6)
numeric_id = st.integers(min_value=0, max_value=10**4).map(str)
ALNUM = "0123456789abcxyzABCXYZ-"
alnum_id = st.builds(lambda d, c, r: d + c + r, st.text("0123456789", max_size=2),
                     st.sampled_from("abzAZ-"), st.text(ALNUM, max_size=4))
pre_ids = st.lists(st.one_of(numeric_id, alnum_id), min_size=0, max_size=4)
# Build metadata (+...) is refused by SemVer.parse: it would make two equal-ranking
# versions. Generated versions therefore carry none.
build = st.just([])


@st.composite
def semvers(draw):
    return SemVer(draw(num), draw(num), draw(num), ".".join(draw(pre_ids)), ".".join(draw(build)))


def reference_cmp(a: SemVer, b: SemVer) -> int:
    """semver.org §11, written independently of the implementation."""
    for x, y in ((a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)):
        if x != y:
            return -1 if x < y else 1
    if a.prerelease == b.prerelease:
        return 0
    if not a.prerelease:
        return 1
    if not b.prerelease:
        return -1
    pa, pb = a.prerelease.split("."), b.prerelease.split(".")
    for x, y in zip(pa, pb):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return -1 if int(x) < int(y) else 1
        if xn != yn:
            return -1 if xn else 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


@settings(max_examples=200)
@given(semvers())
def test_semver_round_trips_through_text(v):
    text = str(v)
    assert SemVer.is_valid(text)
    back = SemVer.parse(text)
    assert back == v and (back.prerelease, back.build) == (v.prerelease, v.build)
    assert SemVer.parse("v" + text) == v


@settings(max_examples=200)
@given(semvers(), semvers())
def test_semver_order_matches_semver_org(a, b):
    c = reference_cmp(a, b)
    assert (a < b) == (c < 0)
    assert (a > b) == (c > 0)
    assert (a == b) == (c == 0)
    if a == b:
        assert hash(a) == hash(b)


@settings(max_examples=100)
@given(st.lists(semvers(), min_size=2, max_size=12))
def test_sorting_versions_agrees_with_the_reference(vs):
    ours = [str(v) for v in sorted(vs)]
    ref = [str(v) for v in sorted(vs, key=functools.cmp_to_key(reference_cmp))]
    # Equal-precedence versions (differing in build only) may come in either order.
    assert [SemVer.parse(x) for x in ours] == [SemVer.parse(x) for x in ref]


def test_semver_org_example_order():
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"]
    parsed = [SemVer.parse(x) for x in chain]
    assert sorted(reversed(parsed)) == parsed  # noqa: C414 - the input order is what is tested


@given(semvers(), st.sampled_from(["major", "minor", "patch"]))
def test_bump_gives_a_newer_version_of_that_kind(v, kind):
    newer = v.bump(kind)
    assert newer > v
    assert not newer.prerelease
    if not v.prerelease:
        assert v.bump_kind_to(newer) == kind
    assert newer.bump_kind_to(v) is None


@pytest.mark.parametrize("text", ["1", "1.0", "1.0.0.0", "01.0.0", "1.02.0", "1.0.0-", "1.0.0-01", "1.0.0+",
                                  "1.0.0-a..b", "a.b.c", "", " ", "1.0.0 beta", "-1.0.0"])
def test_invalid_semvers_are_refused_with_a_fix(text):
    assert not SemVer.is_valid(text)
    with pytest.raises(InvalidRef) as ei:
        SemVer.parse(text)
    assert ei.value.fix and "MAJOR.MINOR.PATCH" in ei.value.fix
    assert ei.value.exit_code == 2


names = st.builds(lambda a, b: a + b, st.sampled_from("a0z9"), st.text("abcz019._-", max_size=30))


def test_build_metadata_is_refused_with_a_fix():
    with pytest.raises(InvalidRef) as ei:
        SemVer.parse("1.0.0+build.5")
    assert ei.value.fix


@given(names, semvers())
def test_ref_round_trip(name, v):
    r = Ref.parse(f"{name}@{v}")
    assert r.name == name and r.version == v and r.alias is None
    assert Ref.parse(str(r)) == r
    assert r.to_dict() == {"name": name, "version": str(v), "alias": None}
    assert Ref.parse(f"{name}@{v}", require_version=True).version == v


@given(names, st.builds(lambda a, b: a + b, st.sampled_from("abz"), st.text("az09_-", max_size=20)))
def test_ref_aliases(name, alias):
    r = Ref.parse(f"{name}@{alias}")
    assert (r.name, r.version, r.alias) == (name, None, alias)
    with pytest.raises(InvalidRef):
        Ref.parse(f"{name}@{alias}", require_version=True)


@given(st.text(max_size=40))
def test_name_validation_accepts_exactly_the_documented_names(text):
    ok = re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,99}", text) is not None
    if ok:
        assert validate_name(text) == text
    else:
        with pytest.raises(InvalidRef):
            validate_name(text)


@pytest.mark.parametrize("text", ["Retail@1.0.0", "retail@1.x", "retail@", "@1.0.0", "retail@1.0.0@2", "re tail",
                                  "retail@Prod", "a" * 101])
def test_bad_refs_are_usage_errors(text):
    with pytest.raises(InvalidRef) as ei:
        Ref.parse(text)
    assert ei.value.fix


def test_plain_name_means_latest_and_require_version_refuses_it():
    assert Ref.parse("retail") == Ref("retail")
    with pytest.raises(InvalidRef) as ei:
        Ref.parse("retail", require_version=True)
    assert "retail@X.Y.Z" in ei.value.fix
