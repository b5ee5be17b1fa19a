"""The tracking API for training code: ``log_params``, ``log_metrics``, ``log_artifact``, ``start_run``.

Inside ``lensvault run`` the functions attach to that run: the child finds it through
``LENSVAULT_RUN_ID`` and ``LENSVAULT_DIR`` (read when first called, never at import). In a
plain script, ``with lensvault.start_run(dataset=..., config=...) as run:`` passes the same
preflight and makes its run the active one. With no run at all the functions warn once and
record nothing, so a script written for LensVault still runs on its own.

A public entry point like ``lensvault.open``, so it sits beside ``vault.py``, above the
domain modules it uses (``runs.lifecycle``, ``runs.recorder``, ``runs.preflight``).

Metric points are buffered and written in batches (see ``RunRecorder``): every 20,000
points, every 5 seconds, at the end of ``start_run`` and when the process exits normally
(atexit, which also covers Ctrl-C). Points buffered when a process is killed with SIGKILL
are lost.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["ActiveRun", "active_run", "log_artifact", "log_metrics", "log_params", "start_run"]

_lock = threading.Lock()
_active: ActiveRun | None = None
_attached_env: ActiveRun | None = None
_warned = False


class ActiveRun:
    """A run that training code is logging to (from ``start_run`` or from ``lensvault run``)."""

    def __init__(self, vault: Vault, run_id: str, *, output_dir: Path | None, seed: int | None = None,
                 dataset: str | None = None, config_path: str | None = None, own_vault: bool = False):
        from lensvault.runs.recorder import RunRecorder

        self.vault = vault
        self.run_id = run_id
        self.output_dir = output_dir
        self.seed = seed
        self.dataset = dataset
        self.config_path = config_path
        self.recorder = RunRecorder(vault, run_id, output_dir=output_dir)
        self._own_vault = own_vault
        self.status: str | None = None

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id}>"

    def log_params(self, params: dict) -> None:
        with _lock:
            self.recorder.log_params(params)

    def log_metrics(self, metrics: dict, step: int | None = None, *, class_name: str | None = None,
                    slice: str | None = None) -> None:
        with _lock:
            self.recorder.log_metrics(metrics, step, class_name=class_name, slice=slice)

    def log_artifact(self, path, name: str | None = None) -> dict:
        with _lock:
            return self.recorder.log_artifact(path, name)

    def flush(self) -> None:
        with _lock:
            self.recorder.flush()

    # -- standalone runs (start_run) end here; `lensvault run` ends its own
    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        global _active
        status = "succeeded" if exc_type is None else (
            "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed")
        try:
            self.flush()
            if self.output_dir is not None and self.output_dir.is_dir():
                from lensvault.runs.recorder import record_metrics_file, record_output_dir

                record_output_dir(self.vault, self.run_id, self.output_dir)
                if (self.output_dir / "metrics.json").is_file():
                    record_metrics_file(self.vault, self.run_id, self.output_dir / "metrics.json")
        finally:
            from lensvault.runs.lifecycle import finish_run

            finish_run(self.vault, self.run_id, status, exit_code=None if exc_type is None else 1)
            self.status = status
            if _active is self:
                _active = None
            if self._own_vault:
                self.vault.close()


def start_run(*, dataset: str, config: str, model: str | None = None, version: str | None = None,
              seed: int | None = None, allow_dirty: bool = False, output_dir=None, vault: Vault | None = None) -> ActiveRun:
    """Pass the preflight, record a standalone run, and make it the active run.

    Use as a context manager; the run ends ``succeeded``, ``failed`` (an exception) or
    ``interrupted`` (Ctrl-C). ``run.output_dir`` (default ``runs/<run-id>/``) is recorded as
    artifacts at the end, like ``lensvault run`` does.
    """
    global _active
    from lensvault.runs import lifecycle
    from lensvault.runs.preflight import preflight
    from lensvault.vault import open_vault

    if _active is not None:
        from lensvault.errors import UsageError

        raise UsageError(f"run {_active.run_id} is still active", fix="end it before starting another")
    own = vault is None
    v = open_vault() if vault is None else vault
    out = Path(output_dir).absolute() if output_dir else None
    report = preflight(v, dataset=dataset, config=config, model=model, version=version, seed=seed,
                       allow_dirty=allow_dirty, output_dir=out)
    report.raise_for_failures()
    run_id = lifecycle.create_run(v, report, kind="standalone", command=None, cwd=os.getcwd())
    from lensvault.environment import capture_environment

    lifecycle.set_environment(v, run_id, capture_environment())
    out = out or v.root / "runs" / run_id
    out.mkdir(parents=True, exist_ok=True)
    config_path = None
    if report.repo_root:
        from lensvault.configs.registered import get_config

        with v.catalog.read() as conn:
            assert report.config_id is not None  # the preflight passed, so it named the config
            config_path = str(Path(report.repo_root) / get_config(conn, report.config_id).repo_path)
    _active = ActiveRun(v, run_id, output_dir=out, seed=report.seeds.get("train"), dataset=report.dataset,
                        config_path=config_path, own_vault=own)
    return _active


def active_run() -> ActiveRun | None:
    """The run logging goes to: ``start_run``'s, else the one ``lensvault run`` started us for."""
    global _attached_env
    if _active is not None:
        return _active
    if _attached_env is not None:
        return _attached_env
    run_id = os.environ.get("LENSVAULT_RUN_ID")
    if not run_id:
        return None
    from lensvault.vault import open_vault

    vault = open_vault(os.environ.get("LENSVAULT_DIR") or None)
    out = os.environ.get("LENSVAULT_OUTPUT_DIR")
    seed = os.environ.get("LENSVAULT_SEED")
    _attached_env = ActiveRun(vault, run_id, output_dir=Path(out) if out else None,
                              seed=int(seed) if seed else None, dataset=os.environ.get("LENSVAULT_DATASET"),
                              config_path=os.environ.get("LENSVAULT_CONFIG"))
    atexit.register(_flush_at_exit)
    return _attached_env


def _flush_at_exit() -> None:
    if _attached_env is not None:
        _attached_env.flush()


def _current():
    global _warned
    run = active_run()
    if run is None and not _warned:
        _warned = True
        warnings.warn("lensvault: no active run (not under `lensvault run`, no `start_run`); nothing is recorded",
                      RuntimeWarning, stacklevel=3)
    return run


def log_params(params: dict) -> None:
    """Record parameters (nested dicts become dotted keys); write-once per key."""
    run = _current()
    if run is not None:
        run.log_params(params)


def log_metrics(metrics: dict, step: int | None = None, *, class_name: str | None = None,
                slice: str | None = None) -> None:
    """Record metric values at ``step``; optionally for one class and/or one slice (``time_of_day=night``)."""
    run = _current()
    if run is not None:
        run.log_metrics(metrics, step, class_name=class_name, slice=slice)


def log_artifact(path, name: str | None = None) -> dict | None:
    """Store a file as an artifact of the run (sha256, size); named relative to the output folder."""
    run = _current()
    if run is not None:
        return run.log_artifact(path, name)
    return None
