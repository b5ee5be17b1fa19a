"""Tables of configs, runs (params, metrics, artifacts), reservations and evaluations.

The live definitions, which queries use (``catalog/repos/``); the migrations create them
from their own frozen copies (``catalog/migrations/``).
"""

from __future__ import annotations

import sqlalchemy as sa

from lensvault.catalog.schema import metadata

configs = sa.Table(
    "configs",
    metadata,
    sa.Column("config_id", sa.String(64), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False),  # of the file's bytes (an object in the store)
    sa.Column("canonical_sha256", sa.String(64), nullable=False),  # of the parsed values, format-independent
    sa.Column("repo_path", sa.String(1000), nullable=False),  # relative to the git root
    sa.Column("commit", sa.String(64)),  # the commit whose tree holds exactly these bytes
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # canonical JSON of the parsed values
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

# Status moves reserved/running → succeeded | failed | interrupted, once (or to crashed /
# abandoned when its owner process is gone); a finished run is frozen (a trigger refuses
# updates to it).
runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="run"),  # run | standalone | reproduce
    sa.Column("code_commit", sa.String(64)),
    sa.Column("clean", sa.Boolean, nullable=False),
    sa.Column("repo_root", sa.String(1000)),
    sa.Column("dataset", sa.String(200)),  # name@X.Y.Z
    sa.Column("dataset_snapshot", sa.String(64)),
    sa.Column("config_id", sa.String(64)),
    sa.Column("seeds", sa.Text),  # JSON {"train": 2024, "split": 42}
    sa.Column("command", sa.Text),  # JSON list
    sa.Column("cwd", sa.String(1000)),
    sa.Column("model_name", sa.String(100)),
    sa.Column("model_version", sa.String(100)),
    sa.Column("environment_oid", sa.String(64)),  # JSON object in the store
    sa.Column("log_oid", sa.String(64)),
    sa.Column("exit_code", sa.Integer),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("ended_at", sa.String(32)),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("reproduces", sa.String(200)),  # run id or model ref this run tries to reproduce
    sa.Column("notes", sa.Text),
    # The process that created the run and must finish it (m0006; lensvault/runs/owner.py).
    sa.Column("owner_host", sa.String(255)),
    sa.Column("owner_pid", sa.Integer),
    sa.Column("owner_started", sa.String(100)),
    sa.Column("end_reason", sa.Text),  # why a run ended without its owner: crashed, abandoned
    sa.Index("ix_runs_dataset", "dataset"),
    sa.Index("ix_runs_started", "started_at"),
    sa.Index("ix_runs_started_run", "started_at", "run_id"),  # m0010: newest first, a page at a time
    sa.Index("ix_runs_config", "config_id"),  # m0005
    sa.Index("ix_runs_reproduces", "reproduces"),  # m0005
    sa.Index("ix_runs_status", "status"),  # m0006
    sa.Index("ix_runs_dataset_started", "dataset", "started_at", "run_id"),  # m0011: lineage pages
    sa.Index("ix_runs_config_started", "config_id", "started_at", "run_id"),  # m0011
)

run_params = sa.Table(
    "run_params",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # JSON
)

run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), nullable=False),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("value", sa.Float, nullable=True),  # None = NaN / undefined
    sa.Column("step", sa.BigInteger),
    sa.Column("class_name", sa.String(200)),
    sa.Column("slice", sa.String(300)),
    sa.Column("at", sa.String(32), nullable=False),
    sa.Index("ix_run_metrics_run_key", "run_id", "key"),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("path", sa.String(1000), primary_key=True),  # relative to the run's output dir
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

# A passing preflight reserves NAME@X.Y.Z for its run; the registry honours it.
model_reservations = sa.Table(
    "model_reservations",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column("eval_id", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(64)),
    sa.Column("model_name", sa.String(100)),
    sa.Column("model_version", sa.String(100)),
    sa.Column("dataset", sa.String(200), nullable=False),
    sa.Column("dataset_snapshot", sa.String(64), nullable=False),
    sa.Column("split", sa.String(64)),
    sa.Column("metrics", sa.Text, nullable=False),  # JSON: overall, per_class, per_slice, counts
    sa.Column("predictions_oid", sa.String(64)),
    sa.Column("created_at", sa.String(32), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index("ix_evaluations_dataset", "dataset"),
    sa.Index("ix_evaluations_run", "run_id"),  # m0005
    sa.Index("ix_evaluations_model", "model_name", "model_version"),  # m0005
    sa.Index("ix_evaluations_dataset_created", "dataset", "created_at", "eval_id"),  # m0011
)

# The latest overall value of each metric of each run, kept as metrics are flushed, so
# listing 10,000 runs with their metrics reads 10,000 x keys rows instead of every point (m0004).
run_latest_metrics = sa.Table(
    "run_latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("step", sa.BigInteger),
    sa.Column("at", sa.String(32), nullable=False),
)
