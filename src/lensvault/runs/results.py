"""What the config, run and evaluation operations of ``Vault`` return; ``to_dict()`` is each
command's ``--json``. Those the API has always returned as dicts or lists still are ones.

Renderers: ``lensvault.render.runs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lensvault.results import DictResult, ListResult

__all__ = ["ConfigDiff", "ConfigList", "Evaluation", "EvaluationList", "RunComparison", "RunDetails", "RunList",
           "RunLog"]


class ConfigList(ListResult):
    """``config list``: ``ConfigRecord``s, oldest first."""


class ConfigDiff(DictResult):
    """``config diff``: {a, b, added: {key: value}, removed: {key: value}, changed: {key: [old, new]}}."""


class RunList(ListResult):
    """``runs list``: runs newest first, each a dict with its latest metrics; ``total`` is how many
    runs matched (more than the list holds when a limit cut it)."""

    __slots__ = ("total",)

    def __init__(self, rows=(), *, total: int | None = None):
        super().__init__(rows)
        self.total = len(self) if total is None else total


class RunDetails(DictResult):
    """``runs show``: everything recorded about one run."""


class RunComparison(DictResult):
    """``runs compare``: two runs side by side (run fields, config keys, metrics, environment)."""


@dataclass(frozen=True)
class RunLog:
    """``runs log``: the output a run recorded."""

    run_id: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "log": self.text}


class Evaluation(DictResult):
    """``eval``: one recorded evaluation, its metrics and its source."""


class EvaluationList(ListResult):
    """``evals``: recorded evaluations, oldest first."""
