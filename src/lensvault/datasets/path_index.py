"""The row of a path in a column of paths, without a Python object per path.

A dict of a million paths costs ~100 MB (a str and an entry each); this keeps the paths as the
Arrow column they came in and, per path, its 64-bit hash and row sorted by hash (16 bytes). A
lookup is a binary search in numpy and one comparison of the path (a hash shared by two paths
is found and told apart). Looking up a batch of paths costs one hash per path and no hash
table built per batch (``pc.index_in`` builds one of the whole value set at every call).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PathIndex"]

_CHUNK = 8_192  # paths made Python strings at a time (to be hashed)


def _hashes(values: Any) -> npt.NDArray[np.int64]:
    import numpy as np

    parts = [np.fromiter((hash(v) for v in values.slice(lo, _CHUNK).to_pylist()), dtype=np.int64, count=-1)
             for lo in range(0, len(values), _CHUNK)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class PathIndex:
    """``keys``: an Arrow string array (no nulls); the first row holding a path is the one found."""

    def __init__(self, keys: Any) -> None:
        import numpy as np

        self.keys = keys.combine_chunks() if hasattr(keys, "combine_chunks") else keys
        hashes = _hashes(self.keys)
        self._rows = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._rows]

    def __len__(self) -> int:
        return len(self.keys)

    def row(self, path: str) -> int | None:
        import numpy as np

        h = hash(path)
        at = int(np.searchsorted(self._hashes, h))
        while at < len(self._hashes) and self._hashes[at] == h:
            row = int(self._rows[at])
            if self.keys[row].as_py() == path:
                return row
            at += 1
        return None

    def rows(self, values: Any) -> npt.NDArray[np.int64]:
        """The row of each of ``values`` (an Arrow string array), -1 where it is not a key (or null)."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        values = values.combine_chunks() if hasattr(values, "combine_chunks") else values
        out = np.full(len(values), -1, dtype=np.int64)
        if not len(values) or not len(self._hashes):
            return out
        h = _hashes(pc.fill_null(values, ""))
        at = np.minimum(np.searchsorted(self._hashes, h), len(self._hashes) - 1)
        hit = self._hashes[at] == h
        rows = self._rows[at]
        same = pc.fill_null(pc.equal(self.keys.take(pa.array(np.where(hit, rows, 0))), values), False)
        ok = hit & same.to_numpy(zero_copy_only=False)
        out[ok] = rows[ok]
        for i in np.flatnonzero(hit & ~ok).tolist():  # a hash two paths share: told apart one by one
            if values[i].is_valid:
                out[i] = -1 if (r := self.row(values[i].as_py())) is None else r
        return out
