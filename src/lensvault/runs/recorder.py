"""What a run records while it runs: params (write-once), metric points (buffered), artifacts
(stored files), and at its end the files of its output folder and its ``metrics.json``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lensvault import ledger
from lensvault.errors import InputError, NotFound, UsageError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["RunRecorder", "metrics_file_points", "record_artifacts", "record_metrics_file", "record_output_dir",
           "write_metric_points"]


class RunRecorder:
    """Buffered writes of one run's params, metrics and artifacts.

    Metric points are kept in memory and written in batches (one executemany per flush),
    every ``flush_every`` points or ``flush_seconds`` seconds, and on :meth:`close`. A flush
    is one short write transaction, so several runs logging at once queue briefly on the
    catalog's write lock instead of losing points.
    """

    def __init__(self, vault: Vault, run_id: str, *, output_dir: Path | None = None, flush_every: int = 20_000,
                 flush_seconds: float = 5.0):
        import time

        self.vault = vault
        self.run_id = run_id
        self.output_dir = output_dir
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self._points: list[tuple] = []
        self._clock = time.monotonic
        self._last_flush = self._clock()

    # -- params
    def log_params(self, params: dict) -> None:
        from lensvault.catalog.repos.runs import RunRepo
        from lensvault.configs.values import flatten

        flat = flatten(params) if isinstance(params, dict) else None
        if flat is None:
            raise UsageError("log_params takes a dict", where=type(params).__name__)
        rows = [{"run_id": self.run_id, "key": str(k), "value": json.dumps(v, sort_keys=True, default=str)}
                for k, v in flat.items()]
        if not rows:
            return
        with self.vault.catalog.begin() as conn:
            runs = RunRepo(conn)
            have = {r.key: r.value for r in runs.params(self.run_id)}
            clashes = [r["key"] for r in rows if r["key"] in have and have[r["key"]] != r["value"]]
            if clashes:
                raise UsageError(f"params are write-once: {', '.join(clashes)} already logged with another value",
                                 where=self.run_id, fix="log a changed value under a new key")
            new = [r for r in rows if r["key"] not in have]
            if new:
                runs.add_params(new)
                ledger.record(self.vault, conn, "run.params", {"run_id": self.run_id, "params": new})

    # -- metrics
    def log_metrics(self, metrics: dict, step: int | None = None, *, class_name: str | None = None,
                    slice: str | None = None, at: str | None = None) -> None:
        if at is None:
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rid, pts = self.run_id, self._points
        for key, value in metrics.items():
            if value is None:
                v = None
            else:
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    raise InputError(f"metric {key!r} is not a number: {value!r}", where=str(key),
                                     fix="log numbers; put text in params") from None
                if not math.isfinite(v):
                    v = None
            pts.append((rid, str(key), v, step, class_name, slice, at))
        if len(pts) >= self.flush_every or self._clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        pts, self._points = self._points, []
        self._last_flush = self._clock()
        if not pts:
            return
        write_metric_points(self.vault, pts)

    # -- artifacts
    def log_artifact(self, path, name: str | None = None) -> dict:
        p = Path(path).absolute()
        if not p.is_file():
            raise NotFound("artifact file not found", where=str(path), fix="log a file that exists")
        if name is None:
            name = p.name
            if self.output_dir is not None:
                try:
                    name = p.relative_to(Path(self.output_dir).absolute()).as_posix()
                except ValueError:
                    pass
        return record_artifacts(self.vault, self.run_id, [(name, p)])[0]

    def close(self) -> None:
        self.flush()


def write_metric_points(vault: Vault, pts: list[tuple]) -> None:
    """Insert points (run_id, key, value, step, class_name, slice, at) and update the latest values."""
    from lensvault.catalog.repos.runs import RunRepo

    with vault.catalog.begin() as conn:
        ledger.record(vault, conn, "run.metrics", {"points": [list(p) for p in pts]})
        RunRepo(conn).add_metric_points(pts)


def record_artifacts(vault: Vault, run_id: str, items: list[tuple[str, Path]], *, skip_existing: bool = False) -> list[dict]:
    """Store files as the run's artifacts: (name relative to the output dir, path) → rows."""
    from lensvault.catalog.repos.runs import RunRepo
    from lensvault.hashing import hash_file

    hashed = []
    for name, p in items:
        h = hash_file(p)
        hashed.append((name, p, h.oid, h.size))
    if not hashed:
        return []
    # Copies, not links: the run's output folder stays the user's to change or delete.
    vault.store.put_files([(str(p), oid) for _, p, oid, _ in hashed])
    rows: list[dict[str, Any]] = [{"run_id": run_id, "path": name, "sha256": oid, "size": size}
                                  for name, _, oid, size in hashed]
    with vault.store.committing([r["sha256"] for r in rows]), vault.catalog.begin() as conn:
        runs = RunRepo(conn)
        have = {a.path: a.sha256 for a in runs.artifacts(run_id)}
        new = []
        for r in rows:
            if r["path"] in have:
                if skip_existing or have[r["path"]] == r["sha256"]:
                    continue
                raise UsageError(f"artifact {r['path']} was already logged with other content", where=r["path"],
                                 fix="artifacts are write-once: log the new file under another name")
            new.append(r)
        if new:
            runs.add_artifacts(new)
            vault.catalog.add_object_refs(conn, "run", run_id, [r["sha256"] for r in new])
            ledger.record(vault, conn, "run.artifacts", {"run_id": run_id, "artifacts": new},
                          objects=[r["sha256"] for r in new])
    return rows


def record_output_dir(vault: Vault, run_id: str, output_dir: Path) -> list[dict]:
    """Every file in the output folder becomes an artifact (those logged already are kept)."""
    files = sorted(p for p in Path(output_dir).rglob("*") if p.is_file() and not p.is_symlink())
    items = [(p.relative_to(output_dir).as_posix(), p) for p in files if p.name != ".gitignore"]
    return record_artifacts(vault, run_id, items, skip_existing=True)


def record_metrics_file(vault: Vault, run_id: str, path: Path) -> int:
    """A ``metrics.json`` the script wrote becomes the run's final metrics (step None); the
    number of points recorded. Keys the script already logged through
    ``lensvault.log_metrics`` are not logged twice."""
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos.runs import RunRepo

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    if not isinstance(data, dict):
        return 0
    with vault.catalog.read() as conn:
        logged = RunRepo(conn).metric_keys(run_id)
    pts = metrics_file_points(run_id, data, utcnow(), skip=logged)
    if pts:
        write_metric_points(vault, pts)
    return len(pts)


def metrics_file_points(run_id: str, data: dict, at: str, *, skip=frozenset()) -> list[tuple]:
    """The metric points a ``metrics.json`` holds: numbers at any depth, flattened to dotted
    keys, except ``per_class: {class: {metric: v}}`` and ``per_slice: {slice: {metric: v}}``,
    which keep their class or slice; not finite: None. Keys in ``skip`` ((key, class, slice))
    are left out."""
    pts = []

    def add(key, value, cls=None, sl=None):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (key, cls, sl) in skip:
            return
        pts.append((run_id, key, float(value) if math.isfinite(value) else None, None, cls, sl, at))

    def walk(d, prefix, cls=None, sl=None):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(v, key + ".", cls, sl)
            else:
                add(key, v, cls, sl)

    for k, v in data.items():
        if k in ("per_class", "per_slice") and isinstance(v, dict):
            for group, metrics in v.items():
                if isinstance(metrics, dict):
                    walk(metrics, "", cls=str(group) if k == "per_class" else None,
                         sl=str(group) if k == "per_slice" else None)
        elif isinstance(v, dict):
            walk(v, f"{k}.")
        else:
            add(k, v)
    return pts
