"""Configs, runs, metrics, artifacts, reservations, evaluations.

Written out as this step creates them (see m0001_core). ``runs`` has had its owner columns
since m0006 was written; m0006 adds them to catalogs this step made before that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.catalog.triggers import frozen_when_finished, write_once

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection

TABLES = ("configs", "runs", "run_params", "run_metrics", "run_artifacts", "model_reservations", "evaluations")
WRITE_ONCE = ("configs", "run_params", "run_metrics", "run_artifacts", "evaluations")


def _tables() -> tuple[sa.Table, ...]:
    import sqlalchemy as sa

    md = sa.MetaData()
    configs = sa.Table(
        "configs", md,
        sa.Column("config_id", sa.String(64), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("canonical_sha256", sa.String(64), nullable=False),
        sa.Column("repo_path", sa.String(1000), nullable=False),
        sa.Column("commit", sa.String(64)),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    runs = sa.Table(
        "runs", md,
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False, server_default="run"),
        sa.Column("code_commit", sa.String(64)),
        sa.Column("clean", sa.Boolean, nullable=False),
        sa.Column("repo_root", sa.String(1000)),
        sa.Column("dataset", sa.String(200)),
        sa.Column("dataset_snapshot", sa.String(64)),
        sa.Column("config_id", sa.String(64)),
        sa.Column("seeds", sa.Text),
        sa.Column("command", sa.Text),
        sa.Column("cwd", sa.String(1000)),
        sa.Column("model_name", sa.String(100)),
        sa.Column("model_version", sa.String(100)),
        sa.Column("environment_oid", sa.String(64)),
        sa.Column("log_oid", sa.String(64)),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("ended_at", sa.String(32)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("reproduces", sa.String(200)),
        sa.Column("notes", sa.Text),
        sa.Column("owner_host", sa.String(255)),
        sa.Column("owner_pid", sa.Integer),
        sa.Column("owner_started", sa.String(100)),
        sa.Column("end_reason", sa.Text),
        sa.Index("ix_runs_dataset", "dataset"),
        sa.Index("ix_runs_started", "started_at"),
    )
    run_params = sa.Table(
        "run_params", md,
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    run_metrics = sa.Table(
        "run_metrics", md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("step", sa.BigInteger),
        sa.Column("class_name", sa.String(200)),
        sa.Column("slice", sa.String(300)),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Index("ix_run_metrics_run_key", "run_id", "key"),
    )
    run_artifacts = sa.Table(
        "run_artifacts", md,
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("path", sa.String(1000), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    model_reservations = sa.Table(
        "model_reservations", md,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(100), primary_key=True),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    evaluations = sa.Table(
        "evaluations", md,
        sa.Column("eval_id", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(64)),
        sa.Column("model_name", sa.String(100)),
        sa.Column("model_version", sa.String(100)),
        sa.Column("dataset", sa.String(200), nullable=False),
        sa.Column("dataset_snapshot", sa.String(64), nullable=False),
        sa.Column("split", sa.String(64)),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("predictions_oid", sa.String(64)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Index("ix_evaluations_dataset", "dataset"),
    )
    return configs, runs, run_params, run_metrics, run_artifacts, model_reservations, evaluations


def upgrade(conn: Connection) -> None:
    for table in _tables():
        table.create(conn, checkfirst=True)
    for name in WRITE_ONCE:
        write_once(conn, name)
    frozen_when_finished(conn, "runs", status_column="status", open_states=("reserved", "running"))
