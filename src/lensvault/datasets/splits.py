"""Train/val/test membership of a new version: by a hash rule, kept from the parent, or the source's.

The hash rule: an image's split depends only on the seed and its group key, so
adding images never moves existing ones. The group key (from ``--group-by REGEX``
over the path: the first capture group, or the whole match) keeps frames of one
video, camera or store in one split.

Which membership a new version gets (``plan_splits``):

* ``--split 70/20/10 --seed N``: the rule. When it is the parent's own rule, the
  parent's images keep their splits (as without ``--split``).
* no ``--split``, parent split by a rule: every image the parent had keeps its
  split; new images get the parent's rule. A label fix is then never a split move.
* no ``--split`` otherwise: the source's own splits (folders, split files), if any.
* ``--split none``: no splits, on purpose.

Byte-identical images share one split whenever LensVault assigns it: a new copy
takes the split of a copy that already has one (kept from the parent), else of the
first copy by path. ``dataset check`` therefore never finds an exact train/test
duplicate that the splitter made. Kept membership is never changed, even where the
parent already had such a duplicate (moving it would be a split move; check reports it).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lensvault.errors import UsageError

__all__ = ["NONE", "SplitPlan", "SplitRequest", "SplitSpec", "assign", "parse_ratios", "plan_splits"]

NONE = "none"
ORDER = ("train", "val", "test")
NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}
ALIASES = {"validation": "val", "valid": "val", "training": "train", "testing": "test"}
_FORMS = "70/20/10 (train/val/test), 80/20 (train/test), 0.7/0.2/0.1, train=80,test=20, or none"


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"--split {text!r}: {why}", where="--split", fix=f"write it as {_FORMS}")


def parse_ratios(text: str) -> dict[str, float]:
    """"70/20/10" → {"train": .7, "val": .2, "test": .1}.

    Two or three parts: positional (``80/20`` is train/test, ``70/20/10``
    train/val/test) or named (``train=80,val=10,test=10``; ``/`` separates too),
    named parts in the order train, val, test. Every part is above zero and the
    parts sum to 100 (percentages) or to 1 (fractions).
    """
    raw = text.strip()
    parts = [p.strip() for p in re.split(r"[,/]", raw)]
    if not raw or any(not p for p in parts):
        raise _bad(text, "an empty part")
    named = ["=" in p for p in parts]
    if any(named) and not all(named):
        raise _bad(text, "mixes named (train=80) and positional (80) parts")
    if len(parts) not in NAMES:
        raise _bad(text, f"{len(parts)} part{'s' if len(parts) != 1 else ''}; a split has two or three")
    if all(named):
        names = []
        for p in parts:
            key = p.split("=", 1)[0].strip().lower()
            key = ALIASES.get(key, key)
            if key not in ORDER:
                raise _bad(text, f"unknown split name {p.split('=', 1)[0].strip()!r} (use train, val, test)")
            names.append(key)
        if len(set(names)) != len(names):
            raise _bad(text, "a split name is given twice")
        if names != sorted(names, key=ORDER.index):
            raise _bad(text, f"the parts must be in the order train, val, test (got {', '.join(names)})")
        values_text = [p.split("=", 1)[1].strip() for p in parts]
    else:
        names = list(NAMES[len(parts)])
        values_text = parts
    try:
        values = [float(v) for v in values_text]
    except ValueError:
        raise _bad(text, "every part must be a number") from None
    if any(not math.isfinite(v) or v <= 0 for v in values):
        raise _bad(text, "every part must be above zero (leave a split out instead of giving it 0)")
    total = sum(values)
    if not (math.isclose(total, 100, abs_tol=1e-6) or math.isclose(total, 1, abs_tol=1e-9)):
        raise _bad(text, f"the parts sum to {total:g}; they must sum to 100 (percentages) or 1 (fractions)")
    return {n: v / total for n, v in zip(names, values)}


class SplitSpec:
    """A hash rule: ratios, seed and the optional group-by pattern."""

    def __init__(self, ratios: dict[str, float], seed: int, group_by: str | None = None):
        self.ratios = ratios
        self.seed = int(seed)
        self.group_by = group_by
        try:
            self._rx = re.compile(group_by) if group_by else None
        except re.error as e:
            raise UsageError(f"--group-by is not a valid regular expression ({e})", where=group_by,
                             fix=r"e.g. --group-by '^(video_\d+)/'") from None

    def to_dict(self) -> dict[str, Any]:
        return {"method": "hash", "ratios": self.ratios, "seed": self.seed, "group_by": self.group_by}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SplitSpec:
        # Manifests are written with sorted keys, so the ratios come back as test, train, val;
        # the rule walks them in train, val, test order (the order --split gives them).
        names = sorted(d["ratios"], key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
        return cls({n: d["ratios"][n] for n in names}, d["seed"], d.get("group_by"))

    def same_rule(self, other: SplitSpec) -> bool:
        return (self.seed == other.seed and self.group_by == other.group_by
                and list(self.ratios) == list(other.ratios)
                and all(math.isclose(self.ratios[k], other.ratios[k], abs_tol=1e-12) for k in self.ratios))

    def group_key(self, path: str) -> str:
        if self._rx is None:
            return path
        m = self._rx.search(path)
        if not m:
            return path
        return m.group(1) if m.groups() else m.group(0)

    def split_of(self, path: str) -> str:
        digest = hashlib.sha256(f"{self.seed}\x00{self.group_key(path)}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        acc = 0.0
        names = list(self.ratios)
        for name in names:
            acc += self.ratios[name]
            if u < acc:
                return name
        return names[-1]


def assign(paths: list[str], spec: SplitSpec, *, shas: list[str | None] | None = None,
           kept: Mapping[str, str | None] | None = None) -> list[str]:
    """The split of each path: ``kept[path]`` if given (and not None), else the rule's — except that a copy of
    content that already has a split (``shas`` equal) takes that split (see the module doc)."""
    kept = kept or {}
    shas = shas if shas is not None else [None] * len(paths)
    out: list[str | None] = [kept.get(p) for p in paths]
    order = sorted(range(len(paths)), key=paths.__getitem__)
    split_of_content: dict[str, str] = {}
    for i in order:  # kept images claim their content first
        if (kept_split := out[i]) is not None and (sha := shas[i]) is not None:
            split_of_content.setdefault(sha, kept_split)
    for i in order:
        if out[i] is not None:
            continue
        sha = shas[i]
        split = split_of_content.get(sha) if sha is not None else None
        if split is None:
            split = spec.split_of(paths[i])
            if sha is not None:
                split_of_content[sha] = split
        out[i] = split
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class SplitRequest:
    """What ``--split``/``--seed``/``--group-by`` asked for, checked before any work is done."""

    split: str | None = None  # "70/20/10", "none", or None: keep the parent's rule or take the source's
    seed: int | None = None
    group_by: str | None = None

    def rule(self) -> SplitSpec | str | None:
        """A ``SplitSpec``, ``NONE``, or None (no --split); raises a ``UsageError`` for bad options."""
        if self.split is None:
            if self.seed is not None or self.group_by is not None:
                raise UsageError("--seed and --group-by describe a --split", where="--seed/--group-by",
                                 fix="add --split 70/20/10 (or leave --seed and --group-by out to keep "
                                     "the parent's split)")
            return None
        if self.split.strip().lower() == NONE:
            if self.seed is not None or self.group_by is not None:
                raise UsageError("--split none assigns no splits, so it takes no --seed or --group-by",
                                 where="--split", fix="leave --seed and --group-by out")
            return NONE
        ratios = parse_ratios(self.split)
        if self.seed is None:
            raise UsageError("a split needs a seed so that it can be reproduced", where="--split",
                             fix="add --seed N (e.g. --seed 42)")
        return SplitSpec(ratios, self.seed, self.group_by)


@dataclass(frozen=True)
class SplitPlan:
    splits: Sequence[str | None]  # one per image, in the images table's order
    info: dict[str, Any]  # the manifest's ``splits`` section (without counts)


def plan_splits(paths: list[str], shas: list[str | None], source_splits: list[str | None],
                rule: SplitSpec | str | None, parent_rule: dict[str, Any] | None,
                parent_membership: Callable[[], dict[str, str | None]]) -> SplitPlan:
    """Decide the new version's membership (see the module doc).

    ``rule`` is ``SplitRequest.rule()``; ``parent_rule`` the parent's manifest ``splits``
    section (None without a parent); ``parent_membership()`` its path → split.
    """
    parent_spec = None
    if parent_rule and parent_rule.get("method") == "hash" and parent_rule.get("seed") is not None:
        parent_spec = SplitSpec.from_dict(parent_rule)
    # "seed": None keeps these sections as earlier versions wrote them: equal content, equal snapshot id.
    if rule == NONE:
        return SplitPlan([None] * len(paths), {"method": "none", "seed": None})
    if isinstance(rule, SplitSpec):
        kept = parent_membership() if parent_spec is not None and rule.same_rule(parent_spec) else None
        return SplitPlan(assign(paths, rule, shas=shas, kept=kept), rule.to_dict())
    if parent_spec is not None:
        kept = {p: s for p, s in parent_membership().items() if s is not None}
        return SplitPlan(assign(paths, parent_spec, shas=shas, kept=kept), parent_spec.to_dict())
    if any(s is not None for s in source_splits):
        return SplitPlan(list(source_splits), {"method": "source", "seed": None})
    return SplitPlan(list(source_splits), {"method": "none", "seed": None})
