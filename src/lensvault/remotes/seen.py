"""Which alias moves of a remote this vault has seen (``.lensvault/remote-aliases.json``).

An alias on a remote moves by compare-and-swap; a push may move it only from a state this
vault knew when it decided: a move of its own that its latest move came after, or a remote
move it pulled before its latest move. This file keeps the second kind: remote URL and
alias → {record oid: when it was pulled}. Machine-local, like the stat cache; losing it only
means pulling the alias again before a push.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["mark_seen", "seen_at"]


def _path(vault: Vault) -> str:
    return os.path.join(vault.dir, "remote-aliases.json")


def _load(vault: Vault) -> dict[str, dict[str, str]]:
    try:
        with open(_path(vault), encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def seen_at(vault: Vault, url: str, name: str, alias: str, oid: str) -> str | None:
    """When this vault pulled remote alias move ``oid`` (UTC, as records write times), or None."""
    return _load(vault).get(f"{url}#{name}/{alias}", {}).get(oid)


def mark_seen(vault: Vault, url: str, name: str, alias: str, oid: str) -> None:
    from lensvault.catalog.catalog import utcnow

    data = _load(vault)
    data.setdefault(f"{url}#{name}/{alias}", {})[oid] = utcnow()
    tmp = f"{_path(vault)}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, _path(vault))
