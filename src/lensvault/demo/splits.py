"""Deterministic train/val/test membership by seed, used when a dataset has no splits.json."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RATIOS = (0.7, 0.2, 0.1)


def split_names(
    file_names: Sequence[str], seed: int, ratios: tuple[float, float, float] = DEFAULT_RATIOS
) -> dict[str, list[str]]:
    """Shuffle the sorted names with ``seed`` and cut them 70/20/10 (by default).

    Sorting first makes the split independent of the order annotations list images in.
    """
    names = sorted(file_names)
    order = np.random.default_rng(seed).permutation(len(names))
    n_train = int(round(ratios[0] * len(names)))
    n_val = int(round(ratios[1] * len(names)))
    shuffled = [names[i] for i in order]
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }
