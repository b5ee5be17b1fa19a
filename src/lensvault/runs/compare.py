"""Two runs side by side: config keys, data version, code commit, environment and metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import NotFound

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["compare_runs"]


def compare_runs(vault: Vault, a: str, b: str) -> dict:
    """Config keys, data version, code commit, environment and metrics of two runs, side by side."""
    from lensvault.configs.registered import get_config
    from lensvault.configs.values import flatten
    from lensvault.environment import diff_environments
    from lensvault.runs.read import get_run

    ra, rb = get_run(vault, a), get_run(vault, b)
    cfg = {}
    with vault.catalog.query() as conn:
        for side, r in (("a", ra), ("b", rb)):
            try:
                cfg[side] = flatten(get_config(conn, r["config"]).values) if r["config"] else {}
            except NotFound:
                cfg[side] = {}
    fa, fb = cfg["a"], cfg["b"]
    config_rows = [{"key": k, "a": fa.get(k), "b": fb.get(k), "differs": fa.get(k) != fb.get(k) or (k in fa) != (k in fb)}
                   for k in sorted(fa.keys() | fb.keys())]

    def side_by_side(x: dict, y: dict) -> list[dict]:
        return [{"key": k, "a": x.get(k), "b": y.get(k), "differs": x.get(k) != y.get(k)} for k in sorted(x.keys() | y.keys())]

    per_class = {}
    for cls in sorted(ra["metrics_per_class"].keys() | rb["metrics_per_class"].keys()):
        per_class[cls] = side_by_side(ra["metrics_per_class"].get(cls, {}), rb["metrics_per_class"].get(cls, {}))
    fields = ("dataset", "dataset_snapshot", "config", "code_commit", "clean", "seeds", "status", "command", "model")
    return {
        "a": ra["run_id"], "b": rb["run_id"],
        "run": [{"key": f, "a": ra[f], "b": rb[f], "differs": ra[f] != rb[f]} for f in fields],
        "config": config_rows,
        "environment": diff_environments(ra["environment"] or {}, rb["environment"] or {}),
        "metrics": side_by_side(ra["metrics"], rb["metrics"]),
        "metrics_per_class": per_class,
        "params": side_by_side(ra["params"], rb["params"]),
    }

