"""What the registry operations of ``Vault`` return besides ``ModelVersion``, ``AliasMove`` and
``PullResult``; ``to_dict()`` is each command's ``--json``. Renderers: ``lensvault.render.registry``."""

from __future__ import annotations

from lensvault.results import ListResult

__all__ = ["AliasHistory", "ModelList"]


class ModelList(ListResult):
    """``model list``: ``ModelVersion``s; each serializes as its one-line summary."""

    @staticmethod
    def item_dict(item) -> dict:
        return item.summary()


class AliasHistory(ListResult):
    """``model history``: every ``AliasMove`` of model ``name`` (or of one ``alias``), oldest first."""

    def __init__(self, moves=(), *, name: str, alias: str | None = None):
        super().__init__(moves)
        self.name, self.alias = name, alias
