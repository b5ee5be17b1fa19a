"""Train/test leakage: the same picture, or nearly the same, in more than one split.

Exact duplicates share a sha256. Near duplicates (re-encoded, resized, lightly edited)
share most bits of a 64-bit perceptual hash (pHash); pairs within ``near_threshold`` bits
are found by multi-index hashing: split the hash into threshold+1 chunks, and any two
hashes that close agree exactly on at least one chunk (pigeonhole), so only images that
share a chunk value are compared instead of all n² pairs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pyarrow as pa

__all__ = ["HASH_METHOD", "LeakageReport", "NearDuplicate", "check_leakage", "perceptual_hash"]

# Recorded with cached hashes: a cache built with another method must not be mixed in.
HASH_METHOD = "phash64-draft128"
_BITS = 64


def perceptual_hash(fp: BinaryIO) -> int:
    """64-bit pHash of an image file; JPEGs are decoded at reduced size (``draft``) for speed."""
    import imagehash
    from PIL import Image

    with Image.open(fp) as im:
        # pHash works on a 32x32 grey image, so decoding full-size JPEGs wastes time;
        # draft keeps at least 128 px per side, enough for a stable hash.
        im.draft("L", (128, 128))
        return int(str(imagehash.phash(im)), 16)


class ExactGroup(TypedDict):
    """Content stored more than once: its sha256, and each copy's path and split."""

    sha256: str
    paths: list[str]
    splits: list[str | None]


# An image whose split differs from the parent's, matched by path or by content ("by").
SplitMove = TypedDict("SplitMove", {"path": str, "from": str | None, "to": str | None, "by": str})


class Unreadable(TypedDict):
    """An image that could not be hashed."""

    path: str
    sha256: str
    error: str


@dataclass(frozen=True)
class NearDuplicate:
    a: str
    b: str
    split_a: str | None
    split_b: str | None
    distance: int

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "split_a": self.split_a, "split_b": self.split_b,
                "distance": self.distance}


@dataclass(frozen=True)
class LeakageReport:
    exact: tuple[ExactGroup, ...]    # content stored more than once
    near: tuple[NearDuplicate, ...]  # pairs of different content within the threshold
    split_moves: tuple[SplitMove, ...]  # since the parent
    unreadable: tuple[Unreadable, ...]  # could not be hashed
    images: int
    near_threshold: int

    @property
    def cross_split_exact(self) -> tuple[ExactGroup, ...]:
        return tuple(g for g in self.exact if len(set(g["splits"])) > 1)

    @property
    def cross_split_near(self) -> tuple[NearDuplicate, ...]:
        return tuple(n for n in self.near if n.split_a != n.split_b)

    def leaks_between(self, first: str, second: str) -> bool:
        """True when an exact or near duplicate has one copy in each of the two splits."""
        want = {first.lower(), second.lower()}
        for g in self.exact:
            if want <= {(s or "").lower() for s in g["splits"]}:
                return True
        return any({(n.split_a or "").lower(), (n.split_b or "").lower()} == want for n in self.near)

    @property
    def has_train_test_leak(self) -> bool:
        return self.leaks_between("train", "test")

    def summary(self) -> str:
        parts = [f"{len(self.exact)} exact duplicate groups ({len(self.cross_split_exact)} across splits)",
                 f"{len(self.near)} near-duplicate pairs ({len(self.cross_split_near)} across splits)"]
        if self.split_moves:
            parts.append(f"{len(self.split_moves)} images changed split since the parent")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} images could not be read")
        if self.has_train_test_leak:
            verdict = "train/test leak found"
        elif self.unreadable:  # not a clean bill: what could not be read was not compared
            verdict = f"incomplete: no train/test leak among the {self.images - len(self.unreadable)} images read"
        else:
            verdict = "no train/test leak"
        return f"{verdict}: " + ", ".join(parts) + f" (of {self.images} images)."

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "near_threshold": self.near_threshold,
            "hash_method": HASH_METHOD,
            "has_train_test_leak": self.has_train_test_leak,
            "exact": [dict(g) for g in self.exact],
            "near": [n.to_dict() for n in self.near],
            "split_moves": [dict(m) for m in self.split_moves],
            "unreadable": [dict(u) for u in self.unreadable],
            "counts": {"exact_groups": len(self.exact), "exact_cross_split": len(self.cross_split_exact),
                       "near_pairs": len(self.near), "near_cross_split": len(self.cross_split_near),
                       "split_moves": len(self.split_moves), "unreadable": len(self.unreadable)},
            "summary": self.summary(),
        }


def check_leakage(images: pa.Table, open_image: Callable[[str], BinaryIO], *, parent_images: pa.Table | None = None,
                  near_threshold: int = 6, cache: dict[str, str] | None = None,
                  workers: int | None = None) -> LeakageReport:
    """Find duplicate and near-duplicate images across splits.

    ``images`` has ``path``, ``sha256`` and ``split`` columns; ``open_image(sha256)`` returns
    the bytes (e.g. ``vault.store.open``). ``cache`` maps sha256 → hex pHash: read for
    hashes already known, and filled with new ones, so a later version re-hashes only
    its new images. ``near_threshold`` is in bits of 64 (0 turns near-duplicates off).
    """
    if not 0 <= near_threshold < _BITS:
        raise ValueError(f"near_threshold must be between 0 and {_BITS - 1} bits, got {near_threshold}")
    paths = images.column("path").to_pylist()
    shas = images.column("sha256").to_pylist()
    splits = images.column("split").to_pylist() if "split" in images.column_names else [None] * len(paths)

    by_sha: dict[str, list[int]] = {}
    for row, sha in enumerate(shas):
        by_sha.setdefault(sha, []).append(row)
    exact = tuple(
        ExactGroup({"sha256": sha, "paths": [paths[r] for r in rows], "splits": [splits[r] for r in rows]})
        for sha, rows in sorted(by_sha.items()) if len(rows) > 1)

    near: list[NearDuplicate] = []
    unreadable: list[Unreadable] = []
    if near_threshold > 0:
        hashes, unreadable = _hash_all(list(by_sha), open_image, cache, workers, {s: paths[r[0]] for s, r in by_sha.items()})
        hashed = sorted(hashes)
        for i, j, dist in _close_pairs([hashes[s] for s in hashed], near_threshold):
            for ra in by_sha[hashed[i]]:
                for rb in by_sha[hashed[j]]:
                    a, b = sorted((ra, rb), key=lambda r: paths[r])
                    near.append(NearDuplicate(paths[a], paths[b], splits[a], splits[b], dist))
        near.sort(key=lambda n: (n.distance, n.a, n.b))

    moves = _split_moves(paths, shas, splits, parent_images) if parent_images is not None else []
    return LeakageReport(exact, tuple(near), tuple(moves), tuple(unreadable), len(paths), near_threshold)


def _hash_all(shas: list[str], open_image: Callable[[str], BinaryIO], cache: dict[str, str] | None, workers: int | None,
              path_of: dict[str, str]) -> tuple[dict[str, int], list[Unreadable]]:
    from concurrent.futures import ThreadPoolExecutor

    hashes: dict[str, int] = {}
    todo: list[str] = []
    for sha in shas:
        known = cache.get(sha) if cache is not None else None
        if known is not None:
            hashes[sha] = int(known, 16)
        else:
            todo.append(sha)

    def one(sha: str) -> tuple[str, int | None, str | None]:
        try:
            with open_image(sha) as fp:
                return sha, perceptual_hash(fp), None
        except Exception as e:  # noqa: BLE001 - one bad image must not hide the leaks among the rest
            return sha, None, f"{type(e).__name__}: {e}"

    unreadable: list[Unreadable] = []
    # Decoding and resizing release the GIL, so threads use every core without pickling.
    with ThreadPoolExecutor(max_workers=workers or min(16, 2 * (os.cpu_count() or 1))) as pool:
        for sha, value, error in pool.map(one, todo):
            if error is not None or value is None:
                unreadable.append({"path": path_of[sha], "sha256": sha, "error": error or ""})
                continue
            hashes[sha] = value
            if cache is not None:
                cache[sha] = f"{value:016x}"
    return hashes, unreadable


def _popcount(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    counts: npt.NDArray[np.int64] = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).astype(np.int64)
    return counts


def _close_pairs(values: list[int], threshold: int) -> list[tuple[int, int, int]]:
    """(i, j, distance) with i < j for every pair within ``threshold`` bits."""
    from itertools import pairwise

    import numpy as np

    n = len(values)
    if n < 2:
        return []
    h = np.array(values, dtype=np.uint64)
    bounds = np.linspace(0, _BITS, threshold + 2).astype(int)
    found_i, found_j, found_d = [], [], []
    for lo, hi in pairwise(bounds):
        part = (h >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(part, kind="stable")
        sp, sh = part[order], h[order]
        # Members of one bucket are adjacent after sorting: compare each hash with the
        # one k places on, for growing k, while any bucket is still that large.
        for k in range(1, n):
            same = sp[k:] == sp[:-k]
            if not same.any():
                break
            d = _popcount(sh[k:][same] ^ sh[:-k][same])
            close = d <= threshold
            found_i.append(order[:-k][same][close])
            found_j.append(order[k:][same][close])
            found_d.append(d[close])
    if not found_i:
        return []
    i, j, d = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    lo_i, hi_i = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
    code, first = np.unique(lo_i * n + hi_i, return_index=True)  # a pair may share several chunks
    return [(int(c // n), int(c % n), int(x)) for c, x in zip(code, d[first])]


def _split_moves(paths: list[str], shas: list[str], splits: list[str | None], parent: pa.Table) -> list[SplitMove]:
    """Images whose split differs from the parent's, matched by path, else by content."""
    p_paths = parent.column("path").to_pylist()
    p_splits = parent.column("split").to_pylist() if "split" in parent.column_names else [None] * len(p_paths)
    p_shas = parent.column("sha256").to_pylist() if "sha256" in parent.column_names else [None] * len(p_paths)
    split_of_path = dict(zip(p_paths, p_splits))
    splits_of_sha: dict[str, set[str | None]] = {}
    for sha, split in zip(p_shas, p_splits):
        if sha is not None:
            splits_of_sha.setdefault(sha, set()).add(split)
    moves: list[SplitMove] = []
    for path, sha, split in zip(paths, shas, splits):
        if path in split_of_path:
            if split_of_path[path] != split:
                moves.append({"path": path, "from": split_of_path[path], "to": split, "by": "path"})
        elif sha in splits_of_sha and split not in splits_of_sha[sha]:
            # Renamed and moved: the same bytes were in another split under another name.
            (before, *_) = sorted(splits_of_sha[sha], key=lambda s: s or "")
            moves.append({"path": path, "from": before, "to": split, "by": "content"})
    return moves
