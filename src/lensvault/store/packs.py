"""Packs: many small objects in one remote object, so that object storage sees few large requests.

Object storage charges and waits per request; a vision dataset is millions of 10–200 KB images.
A pack is the plain concatenation of objects' bytes, named by the sha256 of its bytes
(``packs/<sha256>.pack``); its index (``packs/<sha256>.idx``, the same name) lists, sorted by
oid, where each object sits. An index is written only after its pack is whole and deleted
before it, so an index never names a pack that is not there. Objects are content-addressed:
every object read from a pack is hashed against its oid by the reader, so a damaged pack or
index is found by whoever reads it.

This module is the format and the arithmetic (building, parsing, planning reads); the
requests are ``RemoteStore``'s (store/remote.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["INDEX_FORMAT", "PACK_BELOW", "PACK_TARGET", "PackIndex", "build_pack", "group_for_packs",
           "pack_name_of", "plan_reads"]

INDEX_FORMAT = "lensvault.pack-index/1"
# Objects below this size travel in packs; larger ones stay single objects (multipart above 32 MB).
PACK_BELOW = 4 * 1024 * 1024
# A pack is closed once it holds this many bytes: tens of MB (few requests, bounded memory: a
# pack is built and read whole in memory, a few at a time).
PACK_TARGET = 32 * 1024 * 1024
# Ranges of one pack closer than this are read in one request (the gap costs less than a request).
COALESCE = 1024 * 1024
_KEY = re.compile(r"^packs/([0-9a-f]{64})\.(pack|idx)$")


def pack_name_of(key: str) -> tuple[str, str] | None:
    """``packs/<hash>.pack`` -> (hash, "pack"); None for any other key (a leftover temp file …)."""
    m = _KEY.match(key)
    return (m.group(1), m.group(2)) if m else None


@dataclass
class PackIndex:
    pack: str  # sha256 of the pack's bytes
    size: int  # the pack's size in bytes
    entries: dict[str, tuple[int, int]] = field(default_factory=dict)  # oid -> (offset, length)
    stored_at: float = 0.0  # when the index was written (the remote's last-modified; not in the bytes)

    @property
    def pack_key(self) -> str:
        return f"packs/{self.pack}.pack"

    @property
    def index_key(self) -> str:
        return f"packs/{self.pack}.idx"

    def to_bytes(self) -> bytes:
        doc = {"format": INDEX_FORMAT, "pack": self.pack, "size": self.size,
               "objects": [[oid, off, n] for oid, (off, n) in sorted(self.entries.items())]}
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, pack: str) -> PackIndex:
        """Parse an index; ValueError if it is not the index of ``pack`` or does not fit in it."""
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or doc.get("pack") != pack:
            raise ValueError("not the index of this pack")
        size = int(doc["size"])
        entries: dict[str, tuple[int, int]] = {}
        for oid, off, n in doc["objects"]:
            if not (isinstance(oid, str) and len(oid) == 64 and off >= 0 and n >= 0 and off + n <= size):
                raise ValueError(f"entry {oid!r} does not fit in the pack")
            entries[oid] = (int(off), int(n))
        return cls(pack, size, entries)


def build_pack(items: Iterable[tuple[str, bytes]]) -> tuple[bytearray, PackIndex]:
    """The pack of ``items`` (oid, bytes — already checked by the caller) and its index. Items may
    come from a generator: each is copied into the pack and let go (a pack's bytes in memory once)."""
    buf = bytearray()
    entries: dict[str, tuple[int, int]] = {}
    for oid, data in items:
        if oid in entries:
            continue
        entries[oid] = (len(buf), len(data))
        buf += data
    return buf, PackIndex(hashlib.sha256(buf).hexdigest(), len(buf), entries)


def group_for_packs(sized: list[tuple[str, int]], target: int = PACK_TARGET) -> list[list[str]]:
    """Objects (oid, size) into groups of about ``target`` bytes, in the given order."""
    groups: list[list[str]] = []
    current: list[str] = []
    total = 0
    for oid, size in sized:
        if current and total + size > target:
            groups.append(current)
            current, total = [], 0
        current.append(oid)
        total += size
    if current:
        groups.append(current)
    return groups


def plan_reads(index: PackIndex, oids: list[str], *, coalesce: int = COALESCE) -> list[tuple[int, int]]:
    """Byte ranges (start, end) of ``index``'s pack to GET so that every one of ``oids`` is read:
    ranges closer than ``coalesce`` merge into one request; when what would be read is most of the
    pack, the whole pack is one request (more bytes, never more requests)."""
    spans = sorted(index.entries[o] for o in oids)
    merged: list[list[int]] = []
    for off, n in spans:
        if merged and off - merged[-1][1] <= coalesce:
            merged[-1][1] = max(merged[-1][1], off + n)
        else:
            merged.append([off, off + n])
    if len(merged) > 1 and sum(e - s for s, e in merged) * 2 >= index.size:
        return [(0, index.size)]
    return [(s, e) for s, e in merged if e > s]
