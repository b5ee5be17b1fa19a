"""Comparing what listing commands print (their --json output), before and after a rebuild."""

from __future__ import annotations


def assert_same(after: dict, before: dict) -> None:
    """Equal listings; on a difference, the command and the first differing paths."""
    diffs = []

    def walk(a, b, path):
        if type(a) is not type(b) or (not isinstance(a, (dict, list)) and a != b):
            diffs.append(f"{path}: {a!r} != {b!r}")
        elif isinstance(a, dict):
            for k in sorted(set(a) | set(b)):
                walk(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")
        elif isinstance(a, list):
            if len(a) != len(b):
                diffs.append(f"{path}: {len(a)} items != {len(b)} items")
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{path}[{i}]")

    walk(after, before, "")
    assert not diffs, "\n".join(diffs[:30])


def without_rebuild_events(listings: dict) -> dict:
    out = dict(listings)
    out["events"] = [e for e in listings["events"] if e["action"] != "catalog.rebuild"]
    return out
