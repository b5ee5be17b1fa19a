"""Configs, runs, metrics, artifacts, reservations, evaluations."""

from __future__ import annotations

from lensvault.catalog import runs_schema as s
from lensvault.catalog.triggers import frozen_when_finished, write_once

TABLES = ("configs", "runs", "run_params", "run_metrics", "run_artifacts", "model_reservations", "evaluations")


def upgrade(conn) -> None:
    for table in (s.configs, s.runs, s.run_params, s.run_metrics, s.run_artifacts, s.model_reservations, s.evaluations):
        table.create(conn, checkfirst=True)
    for name in s.WRITE_ONCE:
        write_once(conn, name)
    frozen_when_finished(conn, "runs", status_column="status", open_states=("reserved", "running"))
