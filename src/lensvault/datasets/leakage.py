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


# Images hashed per round of the thread pool: its futures (and their answers) are held for a
# round, not for every image of the version.
HASH_BATCH = 1024


def check_leakage(images: pa.Table, open_image: Callable[[str], BinaryIO], *, parent_images: pa.Table | None = None,
                  near_threshold: int = 6, cache: dict[str, str] | None = None,
                  workers: int | None = None) -> LeakageReport:
    """Find duplicate and near-duplicate images across splits.

    ``images`` has ``path``, ``sha256`` and ``split`` columns; ``open_image(sha256)`` returns
    the bytes (e.g. ``vault.store.open``). ``cache`` maps sha256 → hex pHash: read for
    hashes already known, and filled with new ones, so a later version re-hashes only
    its new images. ``near_threshold`` is in bits of 64 (0 turns near-duplicates off).

    What is held per image is columns (Arrow strings, numpy numbers: ~120 bytes an image with
    short paths), not a Python object each; what is found (groups, pairs, moves) is listed.
    """
    import numpy as np
    import pyarrow as pa

    if not 0 <= near_threshold < _BITS:
        raise ValueError(f"near_threshold must be between 0 and {_BITS - 1} bits, got {near_threshold}")
    n = images.num_rows
    paths = images.column("path").combine_chunks()
    splits = images.column("split").combine_chunks() if "split" in images.column_names else pa.nulls(n, pa.string())
    # Each distinct content once (in order of first appearance), and each row's content as its number.
    encoded = images.column("sha256").combine_chunks().dictionary_encode(null_encoding="encode")
    uniq = encoded.dictionary
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    del encoded
    by_code = np.argsort(codes, kind="stable")  # the rows of each content together, in row order
    bounds = np.searchsorted(codes[by_code], np.arange(len(uniq) + 1))

    def rows_of(code: int) -> list[int]:
        return by_code[bounds[code]:bounds[code + 1]].tolist()  # type: ignore[no-any-return]

    shared = np.flatnonzero(np.diff(bounds) > 1)
    exact = tuple(sorted((ExactGroup({"sha256": uniq[int(c)].as_py(), "paths": [paths[r].as_py() for r in rows],
                                      "splits": [splits[r].as_py() for r in rows]})
                          for c in shared.tolist() for rows in [rows_of(c)]), key=lambda g: g["sha256"] or ""))

    near: list[NearDuplicate] = []
    unreadable: list[Unreadable] = []
    if near_threshold > 0:
        values, ok, unreadable = _hash_all(uniq, open_image, cache, workers, lambda c: paths[int(by_code[bounds[c]])].as_py())
        hashed = np.flatnonzero(ok)
        for i, j, dist in _close_pairs(values[hashed], near_threshold):
            for ra in rows_of(int(hashed[i])):
                for rb in rows_of(int(hashed[j])):
                    (path_a, a), (path_b, b) = sorted(((paths[ra].as_py(), ra), (paths[rb].as_py(), rb)))
                    near.append(NearDuplicate(path_a, path_b, splits[a].as_py(), splits[b].as_py(), dist))
        near.sort(key=lambda nd: (nd.distance, nd.a, nd.b))

    moves = _split_moves(paths, images.column("sha256").combine_chunks(), splits, parent_images) \
        if parent_images is not None else []
    return LeakageReport(exact, tuple(near), tuple(moves), tuple(unreadable), n, near_threshold)


def _hash_all(shas: pa.Array, open_image: Callable[[str], BinaryIO], cache: dict[str, str] | None, workers: int | None,
              path_of: Callable[[int], str]) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_], list[Unreadable]]:
    """The pHash of each of ``shas`` (a numpy array in their order) and which were read."""
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    values = np.zeros(len(shas), dtype=np.uint64)
    ok = np.zeros(len(shas), dtype=bool)

    def one(sha: str) -> tuple[int | None, str | None]:
        try:
            with open_image(sha) as fp:
                return perceptual_hash(fp), None
        except Exception as e:  # noqa: BLE001 - one bad image must not hide the leaks among the rest
            return None, f"{type(e).__name__}: {e}"

    unreadable: list[Unreadable] = []
    # Decoding and resizing release the GIL, so threads use every core without pickling.
    with ThreadPoolExecutor(max_workers=workers or min(16, 2 * (os.cpu_count() or 1))) as pool:
        for lo in range(0, len(shas), HASH_BATCH):
            todo: list[tuple[int, str]] = []
            for k, sha in enumerate(shas.slice(lo, HASH_BATCH).to_pylist(), start=lo):
                known = cache.get(sha) if cache is not None else None
                if known is not None:
                    values[k], ok[k] = int(known, 16), True
                else:
                    todo.append((k, sha))
            for (k, sha), (value, error) in zip(todo, pool.map(one, [sha for _, sha in todo])):
                if error is not None or value is None:
                    unreadable.append({"path": path_of(k), "sha256": sha, "error": error or ""})
                    continue
                values[k], ok[k] = value, True
                if cache is not None:
                    cache[sha] = f"{value:016x}"
    return values, ok, unreadable


def _popcount(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    import numpy as np

    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    counts: npt.NDArray[np.int64] = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1).astype(np.int64)
    return counts


def _close_pairs(values: list[int] | npt.NDArray[np.uint64], threshold: int) -> list[tuple[int, int, int]]:
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


def _split_moves(paths: pa.Array, shas: pa.Array, splits: pa.Array, parent: pa.Table) -> list[SplitMove]:
    """Images whose split differs from the parent's, matched by path, else by content."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n, pn = len(paths), parent.num_rows
    p_splits = parent.column("split").combine_chunks() if "split" in parent.column_names else pa.nulls(pn, pa.string())
    p_shas = parent.column("sha256").combine_chunks() if "sha256" in parent.column_names else pa.nulls(pn, pa.string())
    # By path: the parent's row of each image's path (null: a path the parent lacks).
    at = pc.index_in(paths, value_set=parent.column("path").combine_chunks())
    found = pc.is_valid(at).to_numpy(zero_copy_only=False)
    before = pc.take(p_splits, at)
    same = pc.or_kleene(pc.equal(before, splits), pc.and_(pc.is_null(before), pc.is_null(splits)))
    by_path = found & ~pc.fill_null(same, False).to_numpy(zero_copy_only=False)
    # By content, for a path the parent lacks: its bytes were in the parent, in no row of this split.
    # A (sha256, split) pair as one string ("\x01": no split; "\x02" + name: a split).
    def pairs(sha: pa.Array, split: pa.Array) -> pa.Array:
        tag = pc.if_else(pc.is_null(split), "\x01", pc.binary_join_element_wise("\x02", pc.fill_null(split, ""), ""))
        return pc.binary_join_element_wise(sha, tag, "\x00")

    had = pc.is_in(shas, value_set=pc.drop_null(p_shas)).to_numpy(zero_copy_only=False)
    candidate = ~found & had
    by_content = np.zeros(n, dtype=bool)
    if candidate.any():
        rows = np.flatnonzero(candidate)
        mine = pairs(shas.take(pa.array(rows)), splits.take(pa.array(rows)))
        by_content[rows] = ~pc.is_in(mine, value_set=pairs(p_shas, p_splits)).to_numpy(zero_copy_only=False)
    moved = np.flatnonzero(by_path | by_content)
    # The parent's splits of the contents that moved (only those are held as Python).
    wanted = pc.is_in(p_shas, value_set=shas.take(pa.array(np.flatnonzero(by_content)))) if by_content.any() else None
    splits_of_sha: dict[str, set[str | None]] = {}
    if wanted is not None:
        for sha, split in zip(p_shas.filter(wanted).to_pylist(), p_splits.filter(wanted).to_pylist()):
            splits_of_sha.setdefault(sha, set()).add(split)
    moves: list[SplitMove] = []
    for r in moved.tolist():
        path, split = paths[r].as_py(), splits[r].as_py()
        if by_path[r]:
            moves.append({"path": path, "from": before[r].as_py(), "to": split, "by": "path"})
        else:
            # Renamed and moved: the same bytes were in another split under another name.
            (was, *_) = sorted(splits_of_sha[shas[r].as_py()], key=lambda s: s or "")
            moves.append({"path": path, "from": was, "to": split, "by": "content"})
    return moves
