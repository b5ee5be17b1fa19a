"""Deterministic train/val/test membership, used when a dataset ships no splits.json.

Same rule as LensVault's own ``--split 70/20/10 --seed N`` (a hash of seed and path), so
a script run outside the vault sees the split it would see inside it, and an image's
split never depends on which other images exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DEFAULT_RATIOS: dict[str, float] = {"train": 0.7, "val": 0.2, "test": 0.1}


def split_of(path: str, seed: int, ratios: dict[str, float] = DEFAULT_RATIOS) -> str:
    digest = hashlib.sha256(f"{int(seed)}\x00{path}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(ratios.values())
    cumulative = 0.0
    for name, share in ratios.items():
        cumulative += share / total
        if position < cumulative:
            return name
    return list(ratios)[-1]


def split_names(
    paths: Iterable[str], seed: int, ratios: dict[str, float] = DEFAULT_RATIOS
) -> dict[str, list[str]]:
    """``{"train": [...], "val": [...], "test": [...]}`` with sorted paths."""
    membership: dict[str, list[str]] = {name: [] for name in ratios}
    for path in sorted(paths):
        membership[split_of(path, seed, ratios)].append(path)
    return membership
