"""Type checks for values read from annotation files.

Every value that becomes part of the model is checked where it is read, and a bad one is an
error at its position (``annotations[17].bbox[2]``) — not a traceback from pyarrow three
layers down, and not a silent conversion (``float("nan")``, ``int(3.7)``, ``bool("0")``).
"""

from __future__ import annotations

import math
from typing import Any

from lensvault.annotations._common import describe, fail
from lensvault.bounded import MAX_DEPTH, too_deep

__all__ = ["INT32_MAX", "check_depth", "check_json_value", "finite_numbers", "identifier", "integer",
           "is_finite_numbers"]

INT32_MAX = 2**31 - 1  # the model's id and size columns are int32
_NUMBER = frozenset({int, float})


def is_finite_numbers(values: list[Any]) -> bool:
    """Every item is an int or float (not a boolean, not text) and finite. C-speed: the
    common case of a clean polygon costs about a microsecond."""
    try:
        return set(map(type, values)) <= _NUMBER and all(map(math.isfinite, values))
    except OverflowError:  # an integer beyond the float range
        return False


def _finite(value: Any) -> bool:
    try:
        return type(value) in _NUMBER and math.isfinite(value)
    except OverflowError:
        return False


def finite_numbers(values: Any, file: str, location: str, *, what: str, fix: str,
                   code: str = "bad-value") -> list[float]:
    """``values`` (a list of finite numbers) as floats; else an error at the first bad item."""
    if type(values) is not list:
        fail(f"{what} is {describe(values)}, not a list of numbers", file, location, fix=fix, code=code)
    if not is_finite_numbers(values):
        for i, v in enumerate(values):
            if not _finite(v):
                nested = isinstance(v, (list, dict))
                fail(f"{what} holds {describe(v)}, not a {'number' if nested else 'finite number'}", file,
                     f"{location}[{i}]", fix=fix, code=code)
    if all(type(v) is float for v in values):
        return values
    return [float(v) for v in values]  # 10**30 is a fine coordinate but no int64


def integer(value: Any, file: str, location: str, *, what: str, fix: str, lo: int = -INT32_MAX - 1,
            hi: int = INT32_MAX, code: str = "bad-value") -> int:
    """An integer in ``lo..hi``; ``3.0`` counts (some tools write every number as a float),
    ``3.7``, ``"3"``, ``true`` and NaN do not."""
    if type(value) is int:
        number = value
    elif type(value) is float and value.is_integer():
        number = int(value)
    else:
        fail(f"{what} is {describe(value)}, not an integer", file, location, fix=fix, code=code)
    if not lo <= number <= hi:
        fail(f"{what} {number if number.bit_length() <= 64 else '(more than 64 bits)'} is outside {lo}..{hi}",
             file, location, fix=fix, code=code)
    return number


def identifier(value: Any, file: str, location: str, *, what: str, fix: str) -> int | str:
    """An id that other entries refer to: an integer or text (``1.0`` is the integer 1)."""
    if type(value) is int or type(value) is str:
        return value
    if type(value) is float and value.is_integer():
        return int(value)
    fail(f"{what} is {describe(value)}, not an integer or text", file, location, fix=fix, code="bad-value")


def check_depth(value: Any, file: str, location: str) -> None:
    """Free-form values we keep (attributes, tags) are walked recursively later."""
    deep = too_deep(value)
    if deep is not None:
        fail(f"value nested more than {MAX_DEPTH} levels deep", file, f"{location}.{deep}",
             fix="flatten the attribute; no annotation needs that depth", code="too-deep")


def check_json_value(value: Any, file: str, location: str) -> None:
    """A free-form value we keep (attributes, tags) must be storable as standard JSON: nested at
    most ``MAX_DEPTH`` levels, and without NaN or Infinity, which JSON cannot hold (Python
    writes them as ``NaN``, which other readers refuse, and NaN != NaN would make two equal
    versions differ). The first one is an error at its position, e.g. ``images[3].score``."""
    check_depth(value, file, location)
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if type(item) is float:
            if not math.isfinite(item):
                fail(f"the value at {path.lstrip('.') or 'this field'} is {describe(item)}, which JSON cannot hold",
                     file, f"{location}{path}", code="bad-value",
                     fix="write null for a missing value, or a finite number")
        elif isinstance(item, dict):
            stack.extend((v, f"{path}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
