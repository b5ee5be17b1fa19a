"""A canonical sha256 of an Arrow table, independent of how it was written.

Parquet and IPC bytes depend on writer versions and chunking; this digest does
not. Rows are sorted by the given keys, then each column (in name order)
contributes its name, its type, its validity bitmap as bytes, and its values:
fixed-width values little-endian, strings as lengths + UTF-8 bytes, lists as
lengths + their flattened child (recursively). All vectorized: no per-row Python.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["table_digest"]

FORMAT = b"lensvault.table/1\x00"


def table_digest(table: pa.Table, sort_by: list[str]) -> str:
    h = hashlib.sha256(FORMAT)
    h.update(str(table.num_rows).encode() + b"\x00")
    if table.num_rows:
        table = table.sort_by([(k, "ascending") for k in sort_by])
    for name in sorted(table.column_names):
        col = table[name].combine_chunks()
        h.update(name.encode() + b"\x00" + str(col.type).encode() + b"\x00")
        _column(h, col)
    return h.hexdigest()


def _column(h: hashlib._Hash, col: Any) -> None:  # col: a pyarrow Array (untyped)
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.is_valid(col).to_numpy(zero_copy_only=False)
    h.update(np.packbits(valid).tobytes())
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t):
        filled = pc.fill_null(col, "") if col.null_count else col
        lengths = pc.binary_length(filled).to_numpy(zero_copy_only=False).astype("<i8")
        h.update(lengths.tobytes())
        filled = filled.cast(pa.large_binary()) if not pa.types.is_large_binary(t) else filled
        offsets = np.frombuffer(filled.buffers()[1], dtype=np.int64)[filled.offset : filled.offset + len(filled) + 1]
        if len(offsets):
            h.update(memoryview(filled.buffers()[2] or b"")[offsets[0] : offsets[-1]])
    elif pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False).astype("<i8")
        h.update(lengths.tobytes())
        _column(h, pc.list_flatten(col))
    elif pa.types.is_boolean(t):
        h.update(pc.fill_null(col, False).to_numpy(zero_copy_only=False).astype(np.uint8).tobytes())
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        arr = pc.fill_null(col, 0).to_numpy(zero_copy_only=False)
        h.update(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    else:
        raise TypeError(f"no canonical form for Arrow type {t}")
