"""Stable train/val/test assignment by hashing (seed, group key).

An image's split depends only on the seed and its group key, never on which
other images exist, so adding images never moves existing ones. The group key
(from ``--group-by REGEX`` over the path: the first capture group, or the whole
match) keeps frames of one video, camera or store in one split.
"""

from __future__ import annotations

import hashlib
import re

from lensvault.errors import UsageError

__all__ = ["SplitSpec", "assign", "parse_ratios"]

NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "val", "test")}


def parse_ratios(text: str) -> dict[str, float]:
    """"70/20/10" → {"train": .7, "val": .2, "test": .1}; "train=80,test=20" also works."""
    try:
        if "=" in text:
            pairs = [p.split("=", 1) for p in re.split(r"[,/]", text) if p]
            parts = {k.strip(): float(v) for k, v in pairs}
        else:
            values = [float(p) for p in text.split("/")]
            if len(values) not in NAMES:
                raise ValueError
            parts = dict(zip(NAMES[len(values)], values))
    except ValueError:
        raise UsageError(
            f"{text!r} is not a split specification",
            where="--split",
            fix="write ratios like 70/20/10 (train/val/test) or train=80,test=20",
        ) from None
    total = sum(parts.values())
    if total <= 0 or any(v < 0 for v in parts.values()):
        raise UsageError(f"split ratios must be positive (got {text!r})", where="--split", fix="e.g. 70/20/10")
    return {k: v / total for k, v in parts.items()}


class SplitSpec:
    def __init__(self, ratios: dict[str, float], seed: int, group_by: str | None = None):
        self.ratios = ratios
        self.seed = int(seed)
        self.group_by = group_by
        try:
            self._rx = re.compile(group_by) if group_by else None
        except re.error as e:
            raise UsageError(f"--group-by is not a valid regular expression ({e})", where=group_by,
                             fix=r"e.g. --group-by '^(video_\d+)/'") from None

    def to_dict(self) -> dict:
        return {"method": "hash", "ratios": self.ratios, "seed": self.seed, "group_by": self.group_by}

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


def assign(paths: list[str], spec: SplitSpec) -> list[str]:
    return [spec.split_of(p) for p in paths]
