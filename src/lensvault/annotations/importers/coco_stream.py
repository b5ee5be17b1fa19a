"""Reading a big COCO file without holding all of it parsed, in one parse.

Parsed whole, a COCO file takes about 8 times its size in memory while parsing and 4.5 times
once parsed (a Python dict per box; docs/benchmarks.md "Big COCO files"), so a 1.5 GB file of
10M boxes needed 13 GB. From ``STREAM_FROM`` bytes on, the importer reads it in two steps:

1. ``_Scan``: one look at every byte, ``BLOCK`` bytes at a time with numpy, finds the brackets
   that are not inside strings (quotes and escapes counted as a JSON parser counts them) and
   so where each top-level value that is a list or an object starts and ends, and in a list
   where every ``CHUNK``-th element starts. No Python object is made per element.
2. ``Layout``: the pieces between those places are parsed by orjson (by json what orjson
   refuses, as the whole-file reader does): ``images`` and ``categories`` whole, the
   ``annotations`` a chunk of ``CHUNK`` at a time, each turned into columns and dropped before
   the next is parsed. The text between the top-level values (their keys and the plain values)
   is parsed by json; the other lists and objects are parsed to check them, and dropped.

Each byte is parsed once, and the members may come in any order (annotations before images:
pieces are read by position); a key given twice counts by its last value, as with the whole-file
reader. The checks and their messages are the whole-file path's: each chunk goes through the
same code with its position in the file (``annotations[n]`` counts from the file's first
annotation), and malformed JSON gets json's message at its line and column in the file. One
difference: a file with both malformed JSON and a wrong value may report the wrong value first,
when it is in a part used earlier (categories, then images, then annotations); the whole-file
reader reports the JSON first.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any, NoReturn

from lensvault.annotations._common import fail, fail_json

__all__ = ["BLOCK", "CHUNK", "STREAM_FROM", "Layout", "streams"]

# bytes. The stream costs no more time than the whole-file parse from 15 MB up (docs/benchmarks.md
# "Big COCO files") and saves memory (330 -> 188 MB at 30 MB); below, what it saves is small and
# the whole-file parse also reads UTF-16 and UTF-32 JSON.
STREAM_FROM = 16 << 20
CHUNK = 50_000  # annotations parsed at once
BLOCK = 1 << 20  # bytes scanned at once (numpy's temporaries stay in the cache)

_NOT_SPACE = re.compile(rb"[^ \t\n\r]")
_VALUE_STARTS = b'["-0123456789tfn'  # what a JSON text that is not an object may start with


def streams(path: Path) -> bool:
    """Whether ``path`` is big enough to be read a chunk at a time."""
    try:
        return path.stat().st_size >= STREAM_FROM
    except OSError:
        return False  # the whole-file reader reports it


@dataclass
class _Value:
    """A top-level value that is a list or an object, by the positions of its brackets."""

    open: int
    is_list: bool
    close: int = -1  # -1: the file breaks inside it
    cuts: list[int] = field(default_factory=list)  # where every CHUNK-th element of a list starts
    count: int = 0  # elements of a list that start with a bracket, so far
    key: str = ""  # set by Layout.check


@dataclass
class _Scan:
    """Step 1 (see the module docstring). ``broken``: the byte where the file is seen not to be
    JSON (an unmatched bracket, extra data, the end of the file inside the top-level object),
    with json's message for it; the pieces before it are parsed first, as json would."""

    values: list[_Value] = field(default_factory=list)
    top_open: int = -1  # the top-level "{"
    top_close: int = -1
    start: int = 0  # where the text starts (after a UTF-8 byte-order mark)
    size: int = 0
    is_object: bool = True
    broken: tuple[int, str] | None = None

    def run(self, f: BufferedReader, shown: str) -> None:
        import numpy as np

        self.size = size = os.fstat(f.fileno()).st_size
        head = f.read(4)
        if head.startswith(b"\xef\xbb\xbf"):
            self.start = 3
        elif head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in head:
            fail(f"not UTF-8 text: a COCO file of {STREAM_FROM >> 20} MB or more is read as UTF-8 (this one looks "
                 "like UTF-16 or UTF-32)", shown, "byte 0", fix="save the file as UTF-8", code="bad-json")
        pos = self.start
        depth = 0
        in_string = 0  # 1 when the block starts inside a string
        backslashes = 0  # the run of backslashes that ends the previous block
        while pos < size:
            f.seek(pos)
            block = f.read(min(BLOCK, size - pos))
            if not block:
                fail("the file changed while it was read", shown, fix="import it again once it is written",
                     code="unreadable-file")
            if self.top_open < 0 or self.top_close >= 0:  # before the top-level "{", or after its "}"
                m = _NOT_SPACE.search(block)
                if m is None:
                    pos += len(block)
                    continue
                here, byte = pos + m.start(), block[m.start()]
                if self.top_close >= 0:
                    self.broken = (here, "Extra data")
                    return
                if byte != ord("{"):
                    self.is_object = False
                    if byte not in _VALUE_STARTS:
                        self.broken = (here, "Expecting value")
                    return
            a = np.frombuffer(block, np.uint8)
            quotes = np.flatnonzero(a == 34)
            if len(quotes) and (backslashes or b"\\" in block):
                quotes = _unescaped(a, quotes, backslashes)
            backslashes = _trailing_backslashes(block, backslashes)
            folded = a | 0x20  # "[" and "]" as "{" and "}": one pass less
            at = np.flatnonzero((folded == 0x7B) | (folded == 0x7D))
            at = at[(np.searchsorted(quotes, at) & 1) == in_string]  # not inside a string
            in_string ^= len(quotes) & 1
            opens = (a[at] & 2) != 0  # "{" and "[" have bit 1 set, "}" and "]" not
            after = depth + np.cumsum(np.where(opens, 1, -1))  # the depth after each bracket
            if len(after):
                depth = int(after[-1])
            top = (opens & (after <= 2)) | (~opens & (after <= 1))
            elements = at[opens & (after == 3)]  # the starts of a top-level value's parts
            taken = 0
            for p, opening, d, upto in zip(at[top].tolist(), opens[top].tolist(), after[top].tolist(),
                                           np.searchsorted(elements, at[top]).tolist()):
                self._cut(elements[taken:upto] + pos)
                taken = upto
                here = pos + p
                if opening and d == 1:
                    self.top_open = here
                elif opening:
                    self.values.append(_Value(here, block[p] == ord("[")))
                elif d == 1:
                    if block[p] != (ord("]") if self.values[-1].is_list else ord("}")):
                        self.broken = (here, "Expecting ',' delimiter")
                        return
                    self.values[-1].close = here
                else:
                    if block[p] != ord("}"):
                        self.broken = (here, "Expecting ',' delimiter")
                        return
                    self.top_close = here
                    m = _NOT_SPACE.search(block, p + 1)
                    if m is not None:
                        self.broken = (pos + m.start(), "Extra data")
                        return
                    break
            else:
                self._cut(elements[taken:] + pos)
            pos += len(block)
        if self.top_open < 0:
            fail("the annotation file is empty", shown, fix="re-export or re-download it (a failed write?)",
                 code="bad-json")
        if self.top_close < 0:
            self.broken = (size, "Expecting ',' delimiter")

    def _cut(self, starts: Any) -> None:
        """Keep the start of every CHUNK-th element of the list being read."""
        if not len(starts) or not self.values or self.values[-1].close >= 0 or not self.values[-1].is_list:
            return
        v = self.values[-1]
        first = -v.count % CHUNK or (CHUNK if v.count == 0 else 0)  # not the first element's
        v.cuts += starts[first::CHUNK].tolist()
        v.count += len(starts)


def _unescaped(a: Any, quotes: Any, backslashes: int) -> Any:
    """The quotes of a block that start or end a string: one after an odd run of backslashes
    is escaped (``backslashes``: the run that ended the previous block)."""
    import numpy as np

    suspects = np.flatnonzero(a[np.maximum(quotes - 1, 0)] == 92)  # a quote right after a backslash
    escaped = np.zeros(len(quotes), bool)
    if len(suspects):
        slashes = np.flatnonzero(a == 92)
        # where the run of backslashes each one belongs to starts
        starts = np.maximum.accumulate(np.where(np.diff(slashes, prepend=-2) != 1, slashes, 0))
        ends = quotes[suspects]  # each suspect's run ends just before it
        run = ends - starts[np.searchsorted(slashes, ends - 1)]
        run[starts[np.searchsorted(slashes, ends - 1)] == 0] += backslashes  # a run from the block's start
        escaped[suspects] = (run % 2) == 1
    if quotes[0] == 0 and backslashes % 2:
        escaped[0] = True
    return quotes[~escaped]


def _without_gc(parse: Callable[[bytearray], Any], buf: bytearray) -> Any:
    """``parse(buf)`` with the cyclic garbage collector paused: a chunk is ~150,000 new dicts
    and lists, whose making set off collections that walk every object alive — at 1M images the
    import's image maps too (0.1 s a chunk at 1M boxes, 0.2–0.5 s at 10M). What orjson makes
    has no cycles, so nothing is left for the collector to find."""
    import gc

    if not gc.isenabled():
        return parse(buf)
    gc.disable()
    try:
        return parse(buf)
    finally:
        gc.enable()


def _trailing_backslashes(block: bytes, before: int) -> int:
    run = len(block) - len(block.rstrip(b"\\"))
    return run + before if run == len(block) else run


class Layout:
    """A big COCO file, scanned (step 1); its parts parsed when asked for (step 2).

    ``check`` first: it parses the keys, the plain values and every list or object the import
    does not take from ``chunks``/``value``, so malformed JSON is reported before any part is used.
    """

    def __init__(self, path: Path, shown: str) -> None:
        self.path, self.shown = path, shown
        self._scan = _Scan()
        with open(path, "rb") as f:
            self._scan.run(f, shown)
        self.is_object = self._scan.is_object
        self._values: dict[str, Any] = {}  # the last value of a kept key, unless a list
        self._lists: dict[str, _Value] = {}  # the last value of a kept key that is a list

    def check(self, keep: tuple[str, ...]) -> None:
        """Parse all but the lists of ``keep`` (their last values); raise the first JSON error."""
        scan = self._scan
        with open(self.path, "rb") as f:
            if scan.broken is not None:
                self._fail_broken(f, *scan.broken)
            if not scan.is_object:
                return
            last: dict[str, Any] = {}  # key -> its plain value, or its _Value
            for i, (start, value) in enumerate(self._gaps()):
                last.update(self._gap(f, i, start, value))
                if value is not None:
                    last[value.key] = value
            for value in scan.values:
                if value.is_list and value.key in keep and last[value.key] is value:
                    self._lists[value.key] = value
                    continue
                parsed = self._whole(f, value)
                if value.key in keep and last[value.key] is value:
                    last[value.key] = parsed
            self._values = {key: v for key, v in last.items() if key in keep and not isinstance(v, _Value)}

    def value(self, key: str) -> Any:
        """The last value of top-level ``key`` (None when there is none), parsed whole."""
        if key not in self._lists:
            return self._values.get(key)
        out: list[Any] = []
        for _, piece in self.chunks(key):
            out += piece
        return out

    def chunks(self, key: str) -> Iterator[tuple[int, Any]]:
        """``(position of its first element, elements)`` a chunk at a time; when ``key``'s value
        is missing, empty or not a list, one ``(0, that value)``."""
        value = self._lists.get(key)
        if value is None:
            yield 0, self._values.get(key)
            return
        offset = 0
        with open(self.path, "rb") as f:
            for piece in self._pieces(f, value):
                n = len(piece)
                yield offset, piece
                del piece  # else it is alive while the next one is parsed
                offset += n
        if offset == 0:
            yield 0, []

    def _gaps(self) -> Iterator[tuple[int, _Value | None]]:
        """Where each stretch of top-level text starts, and the list or object after it (None
        for the last stretch, up to the top-level "}")."""
        start = self._scan.top_open + 1
        for value in self._scan.values:
            yield start, value
            if value.close < 0:
                return
            start = value.close + 1
        yield start, None

    def _gap(self, f: BufferedReader, i: int, start: int, value: _Value | None, upto: int = -1) -> list[tuple[str, Any]]:
        """The keys and plain values of the ``i``-th stretch of top-level text, which ends at
        ``value`` (sets its key) or the top-level "}"; ``upto``: the file breaks there, so the
        stretch is parsed up to it (included) and fails as json fails."""
        if upto >= 0:
            end, suffix = upto, b""
        elif value is None:
            end, suffix = self._scan.top_close, b"}"
        else:  # an empty list or object stands in for the value: after it, its key is known
            end, suffix = value.open, b"[]}" if value.is_list else b"{}}"
        prefix = b"{" if i == 0 else b'{"":0'  # the "," before the stretch then follows a member
        pairs: list[tuple[str, Any]] = self._parse(f, start, end, prefix, suffix, pairs=True)
        if i:
            pairs = pairs[1:]
        if value is not None and upto < 0:
            value.key = pairs.pop()[0]
        return pairs

    def _whole(self, f: BufferedReader, value: _Value) -> Any:
        if value.is_list:
            out: list[Any] = []
            for piece in self._pieces(f, value):
                out += piece
            return out
        return self._parse(f, value.open, value.close + 1, b"", b"")

    def _pieces(self, f: BufferedReader, value: _Value, upto: int = -1) -> Iterator[list[Any]]:
        """The elements of a list a chunk at a time. ``upto``: the file breaks there, inside
        the list: the last piece ends with it and has no "]", so that it fails as json fails."""
        starts = [value.open + 1, *value.cuts]
        ends = [*value.cuts, value.close if upto < 0 else upto]
        for n, (start, end) in enumerate(zip(starts, ends)):
            last = n == len(starts) - 1
            piece = self._read(f, start, end, b"[", b"]" if upto < 0 or not last else b"")
            if not last:
                self._drop_comma(f, piece, start, end)
            elements = self._loads(f, piece, start, 1)
            del piece
            if elements:
                yield elements
            del elements  # else it is alive while the next piece is parsed

    def _drop_comma(self, f: BufferedReader, piece: bytearray, start: int, end: int) -> None:
        """A piece that stops before an element ends with the "," before that element: it becomes
        the piece's "]" (the added one a space), so that a value missing before it is an error
        at its place."""
        j = len(piece) - 2  # before the added "]"
        while j > 0 and piece[j] in b" \t\n\r":
            j -= 1
        if j > 0 and piece[j] == ord(","):
            piece[j], piece[-1] = ord("]"), 0x20
            return
        self._loads(f, piece, start, 1)  # an error before the cut is the one json reports first
        self._fail_at(f, end, "Expecting ',' delimiter")

    def _fail_broken(self, f: BufferedReader, at: int, what: str) -> NoReturn:
        """Parse the pieces up to byte ``at``, where the scan found the file broken, in file
        order: the first that fails gives json's message; if none does, ``what`` at ``at``."""
        scan = self._scan
        upto = min(at + 1, scan.size)
        if scan.is_object:
            for i, (start, value) in enumerate(self._gaps()):
                if value is None:
                    self._gap(f, i, start, None, -1 if what == "Extra data" else upto)
                    break
                self._gap(f, i, start, value)
                if value.close < 0:
                    for _ in self._pieces(f, value, upto):
                        pass
                    break
                self._whole(f, value)
        self._fail_at(f, at, what)

    def _read(self, f: BufferedReader, start: int, end: int, prefix: bytes, suffix: bytes) -> bytearray:
        n = max(end - start, 0)
        buf = bytearray(len(prefix) + n + len(suffix))
        buf[:len(prefix)] = prefix
        f.seek(start)
        if f.readinto(memoryview(buf)[len(prefix):len(prefix) + n]) != n:
            fail("the file changed while it was read", self.shown, fix="import it again once it is written",
                 code="unreadable-file")
        buf[len(prefix) + n:] = suffix
        return buf

    def _parse(self, f: BufferedReader, start: int, end: int, prefix: bytes, suffix: bytes, *,
               pairs: bool = False) -> Any:
        """The JSON of bytes ``start:end`` of the file between ``prefix`` and ``suffix``;
        ``pairs``: an object as its list of (key, value), keys given twice included."""
        buf = self._read(f, start, end, prefix, suffix)
        return self._loads(f, buf, start, len(prefix), pairs=pairs)

    def _loads(self, f: BufferedReader, buf: bytearray, start: int, skip: int, *, pairs: bool = False) -> Any:
        """Parse ``buf``, whose byte ``skip`` is byte ``start`` of the file: orjson, else json
        (NaN, integers past 64 bits: what the whole-file reader accepts); a failure is located
        in the file."""
        import orjson

        if not pairs:
            try:
                return _without_gc(orjson.loads, buf)
            except orjson.JSONDecodeError:
                pass
        try:
            return json.loads(buf, object_pairs_hook=list if pairs else None)
        except json.JSONDecodeError as e:
            self._fail_at(f, start - skip + len(e.doc[:e.pos].encode("utf-8", "surrogatepass")), e.msg, e)
        except UnicodeDecodeError as e:
            fail_json(e, self.shown, byte=start - skip + e.start)
        except (ValueError, RecursionError) as e:
            fail_json(e, self.shown)

    def _fail_at(self, f: BufferedReader, at: int, what: str, e: json.JSONDecodeError | None = None) -> NoReturn:
        """json's message ``what`` at byte ``at`` of the file, by line and column as json counts
        them (characters, from the start of the text)."""
        import numpy as np

        line, last_newline, pos = 1, self._scan.start - 1, self._scan.start
        f.seek(pos)
        while pos < at:
            block = f.read(min(BLOCK, at - pos))
            if not block:
                break
            n = block.count(b"\n")
            if n:
                line += n
                last_newline = pos + block.rindex(b"\n")
            pos += len(block)
        column, pos = 1, last_newline + 1
        f.seek(pos)
        while pos < at:
            block = f.read(min(BLOCK, at - pos))
            if not block:
                break
            column += int(np.count_nonzero((np.frombuffer(block, np.uint8) & 0xC0) != 0x80))
            pos += len(block)
        fail_json(json.JSONDecodeError(what, "", 0) if e is None else e, self.shown, line_col=(line, column))
