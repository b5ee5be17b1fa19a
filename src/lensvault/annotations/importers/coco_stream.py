"""Reading a big COCO file without holding all of it parsed.

Parsed whole, a COCO file takes about 8 times its size in memory while parsing and 4.5 times
once parsed (a Python dict per box; docs/benchmarks.md "Big COCO files"), so a 1.5 GB file of
10M boxes needed 13 GB. From ``STREAM_FROM`` bytes on, the importer reads the file's
``images`` and ``categories`` whole (small beside the boxes) and its ``annotations`` a chunk of
``CHUNK`` at a time, each chunk turned into columns and dropped before the next is parsed.

The checks and their messages are the whole-file path's: each chunk goes through the same code
with its position in the file (``annotations[n]`` counts from the file's first annotation).
Malformed JSON is reported with the parser's position. One difference: a file with a key twice
at the top level has its values' contents read in turn where the whole-file reader keeps the
last one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lensvault.annotations._common import fail

__all__ = ["CHUNK", "STREAM_FROM", "annotation_chunks", "head", "streams"]

STREAM_FROM = 64 << 20  # bytes; below it the whole-file parse is faster and its memory small
CHUNK = 50_000  # annotations parsed at once


def streams(path: Path) -> bool:
    """Whether ``path`` is big enough to be read a chunk at a time."""
    try:
        return path.stat().st_size >= STREAM_FROM
    except OSError:
        return False  # the whole-file reader reports it


def _bad_json(e: Exception, shown: str) -> None:
    fail(f"invalid JSON: {e}", shown, fix="repair the JSON syntax at that position (a truncated download or a stray "
                                        "comma?)", code="bad-json")


def _last(path: Path, prefix: str, shown: str) -> Any:
    """The value at ``prefix`` (the last one if the key appears twice), or None."""
    import ijson

    value = None
    try:
        with open(path, "rb") as f:
            for item in ijson.items(f, prefix, use_float=True):
                value = item
    except (ijson.JSONError, ValueError, UnicodeDecodeError) as e:
        _bad_json(e, shown)
    return value


def head(path: Path, shown: str) -> tuple[Any, Any]:
    """``(images, categories)`` of the file, each parsed whole; ``images`` None if there is no
    top-level ``images`` (the caller says it is not a COCO file)."""
    return _last(path, "images", shown), _last(path, "categories", shown)


def annotation_chunks(path: Path, shown: str) -> Iterator[tuple[int, Any]]:
    """``(position of its first annotation, annotations)`` a chunk at a time; when the file's
    ``annotations`` is missing, empty or not a list, one ``(0, that value)``."""
    import ijson

    offset, chunk = 0, []
    try:
        with open(path, "rb") as f:
            for a in ijson.items(f, "annotations.item", use_float=True):
                chunk.append(a)
                if len(chunk) == CHUNK:
                    yield offset, chunk
                    offset, chunk = offset + CHUNK, []
    except (ijson.JSONError, ValueError, UnicodeDecodeError) as e:
        _bad_json(e, shown)
    if chunk:
        yield offset, chunk
    elif offset == 0:  # nothing listed: say what is there as the whole-file path would
        yield 0, _last(path, "annotations", shown)
