"""Results: what an operation returns, serializing itself.

Every ``Vault`` method a command calls returns a result whose ``to_dict()`` is exactly what
the command prints with ``--json`` — and what an API route will return — built in one place,
the library. How a person reads it is a renderer's business (``lensvault.render``).

Most results are frozen dataclasses next to the code that computes them (``FolderStatus``,
``ModelVersion``, ``WhyReport``, …). Results that the API has always handed out as a plain
dict or list (``vault.get_run()["status"]``, ``for e in vault.events()``) stay a dict or a
list — these two bases add ``to_dict()`` and a type of their own, so callers that index
them keep working.

A result that can be too big to hold (every file of a version) also offers ``json_stream()``:
its ``to_dict()`` with the long list handed out a batch at a time, which ``--json`` writes out
as the batches come (the same document, byte for byte).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["DictResult", "JsonStream", "ListResult", "Result"]


class Result(Protocol):
    def to_dict(self) -> Any:
        """The JSON shape: what ``--json`` prints and an API route returns."""


@dataclass(frozen=True)
class JsonStream:
    """The JSON object ``{**head, key: [every item of every batch]}``, its list (the object's last
    key) a batch at a time: what a result too big to hold hands ``--json`` and the server."""

    head: dict[str, Any]
    key: str
    batches: Iterable[list[Any]]


class DictResult(dict):
    """A result that is a JSON object (``get_run``, ``compare_runs``, ``evaluate``, …)."""

    __slots__ = ()

    def to_dict(self) -> dict:
        return dict(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)})"


class ListResult(list):
    """A result that is a JSON list (``runs``, ``events``, ``models``, …); each item becomes
    its ``to_dict()`` (or stays what it is, when it is a dict already)."""

    __slots__ = ()

    def to_dict(self) -> list:
        return [self.item_dict(item) for item in self]

    @staticmethod
    def item_dict(item) -> Any:
        return item.to_dict() if hasattr(item, "to_dict") else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list.__repr__(self)})"
