"""What push, pull and clone return: the facts ``--json`` prints and the renderer shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["CloneResult", "FetchResult", "PullResult", "PushResult"]


@dataclass
class PushResult:
    remote: str
    url: str
    objects_sent: int = 0
    objects_present: int = 0  # needed by the new records, and already on the remote (by its refs or a listing)
    bytes_sent: int = 0
    records_sent: int = 0
    records_present: int = 0  # chosen records whose journal entry is on the remote: complete there, not re-read
    packs_sent: int = 0  # pack objects written (small objects and records travel in packs)
    listed: bool = False  # whether the remote's objects were listed (the fallback)
    objects_replaced: int = 0  # --check-remote: objects there with the wrong size, sent again
    refs_created: list[str] = field(default_factory=list)
    refs_present: list[str] = field(default_factory=list)
    same_content: list[str] = field(default_factory=list)  # another vault pushed the same snapshot first
    aliases_moved: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PullResult:
    remote: str
    url: str
    refs: list[str]
    records: int = 0  # records new to this vault
    objects_fetched: int = 0
    objects_present: int = 0
    bytes_fetched: int = 0
    added: dict[str, int] = field(default_factory=dict)  # kind -> rows added to the catalog
    same_content: list[str] = field(default_factory=list)
    aliases_moved: list[str] = field(default_factory=list)  # NAME@ALIAS moved here to where the remote's points

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FetchResult:
    remote: str
    url: str
    records: int = 0  # records new to this vault
    added: dict[str, int] = field(default_factory=dict)  # kind -> rows added to the catalog
    objects_fetched: int = 0  # records, manifests, tables, configs, environments, bundle manifests
    bytes_fetched: int = 0
    objects_on_remote: int = 0  # data objects the new records need, left on the remote
    same_content: list[str] = field(default_factory=list)
    aliases_created: list[str] = field(default_factory=list)  # NAME@ALIAS only the remote had
    aliases_differ: list[dict[str, str]] = field(default_factory=list)  # {"alias", "here", "remote"}
    # names made here and there with other content: each a RemoteConflict's to_dict (what, where,
    # fix, ref, here, remote, [here_snapshot, remote_snapshot], left_out: what needs it, not fetched)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.conflicts

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass
class CloneResult:
    root: str
    remote: str
    url: str
    records: int = 0
    objects_fetched: int = 0
    bytes_fetched: int = 0
    restored: dict[str, int] = field(default_factory=dict)
    unproven: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
