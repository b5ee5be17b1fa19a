"""Version rules: required bump from a diff, next version, explicit version checks."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from lensvault.annotations.model import ClassMap
from lensvault.datasets.annotation_diff import diff_vision
from lensvault.datasets.bump import (
    BUMP_ORDER,
    bump_rank,
    bump_reasons,
    check_explicit_version,
    next_version,
    required_bump,
)
from lensvault.errors import InvalidRef, VersionRuleError

from .conftest import edit_rows, version


def test_bump_order_ranks_none_below_patch_below_minor_below_major():
    assert BUMP_ORDER == ("patch", "minor", "major")
    assert [bump_rank(k) for k in (None, *BUMP_ORDER)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="unknown bump kind 'huge'"):
        bump_rank("huge")


@pytest.mark.parametrize("prev, kind, expected", [
    (None, "patch", "1.0.0"), (None, None, "1.0.0"), ("1.0.0", "patch", "1.0.1"),
    ("1.1.1", "minor", "1.2.0"), ("1.4.2", "major", "2.0.0"), ("0.9.9", "minor", "0.10.0"),
])
def test_next_version(prev, kind, expected):
    assert next_version(prev, kind) == expected


def test_next_version_needs_a_change_and_a_known_kind():
    with pytest.raises(VersionRuleError, match=r"nothing changed since 1\.0\.0"):
        next_version("1.0.0", None)
    with pytest.raises(ValueError, match="unknown bump kind 'mega'"):
        next_version("1.0.0", "mega")
    with pytest.raises(InvalidRef):
        next_version("one", "patch")


def test_under_stated_bump_is_refused_with_what_where_and_fix(bccd):
    classes = ClassMap((1, 2), ("RBC", "WBC"))
    ann = bccd.annotations.filter(pc.not_equal(bccd.annotations["class_id"], 0))
    d = diff_vision(bccd, version(bccd, annotations=ann, classes=classes))
    required = required_bump(d)
    assert required == "major"
    with pytest.raises(VersionRuleError) as err:
        check_explicit_version("1.0.0", "1.0.1", required, force=False, name="bccd", reasons=bump_reasons(d))
    e = err.value
    assert e.what == ("bccd@1.0.1 is a PATCH bump but the change removes class 'Platelets' (id 0), "
                      "which needs MAJOR (2.0.0)")
    assert e.where == "bccd@1.0.1"
    assert e.fix == "use --version 2.0.0 or --bump auto, or --force to record an under-stated bump"
    assert e.exit_code == 8 and e.to_dict()["suggested"] == "2.0.0"


def test_force_turns_the_refusal_into_a_recorded_warning():
    warning = check_explicit_version("1.0.0", "1.1.0", "major", force=True, name="retail",
                                     reasons=["removes class 'cart'"])
    assert warning == ("retail@1.1.0 is a MINOR bump but the change removes class 'cart', which needs "
                       "MAJOR (2.0.0); recorded anyway with --force")


@pytest.mark.parametrize("prev, new, required", [
    ("1.0.0", "1.0.1", "patch"), ("1.0.0", "1.1.0", "patch"), ("1.0.0", "2.0.0", "minor"),
    ("1.0.0", "2.0.0", "major"), ("1.2.3", "1.3.0", "minor"), (None, "1.0.0", None), (None, "0.1.0", "major"),
    ("1.0.0", "1.0.1", None), ("1.0.0", "2.0.0-rc.1", "major"),
])
def test_sufficient_bumps_pass(prev, new, required):
    assert check_explicit_version(prev, new, required, force=False) is None


@pytest.mark.parametrize("new", ["1.0.0", "0.9.0", "1.0.0-rc.1"])
def test_a_version_not_after_the_previous_is_refused_even_with_force(new):
    for force in (False, True):
        with pytest.raises(VersionRuleError, match=r"is not greater than the latest version 1\.0\.0") as err:
            check_explicit_version("1.0.0", new, "patch", force=force, name="retail")
        assert "1.0.1" in err.value.fix


def test_required_bump_takes_the_most_severe_change(bccd):
    ann = edit_rows(bccd.annotations, "x", [0], lambda x: x + 3)
    classes = ClassMap((0, 1, 2, 3), ("Platelets", "RBC", "WBC", "Sickle"))
    d = diff_vision(bccd, version(bccd, annotations=ann, classes=classes))
    assert bump_reasons(d) == [("minor", "adds class 'Sickle' (id 3)"), ("patch", "moves 1 box")]
    assert required_bump(d) == d.suggested_bump == "minor"
    assert required_bump(diff_vision(bccd, bccd)) is None
