"""``lensvault config|preflight|run|runs|eval``: configs, the preflight gate, runs and evaluations."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, link_option, open_vault_from
from lensvault.render import runs as render

# --------------------------------------------------------------------------- config


@click.group("config")
def config():
    """Register, list, show and diff config files (YAML, JSON, TOML) under ids like C-01."""


@config.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--id", "config_id", metavar="C-ID", help="The ID to register (default: the next C-NN).")
@click.option("--uncommitted", is_flag=True,
              help="Register a file git does not hold as it is (a run's preflight refuses it).")
@json_option
@click.pass_context
def config_add(ctx, path, config_id, uncommitted, as_json):
    """Register the committed config file PATH under an ID (write-once)."""
    emit(open_vault_from(ctx).add_config(path, config_id, uncommitted=uncommitted), as_json, render.config_added,
         err=True)


@config.command("list")
@json_option
@click.pass_context
def config_list(ctx, as_json):
    """List registered configs."""
    emit(open_vault_from(ctx).configs(), as_json, render.config_list)


@config.command("show")
@click.argument("config_id")
@json_option
@click.pass_context
def config_show(ctx, config_id, as_json):
    """Show a registered config: where it came from and its values."""
    emit(open_vault_from(ctx).get_config(config_id), as_json, render.config_show)


@config.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def config_diff(ctx, a, b, as_json):
    """Key-level differences between configs A and B (added, removed, changed)."""
    emit(open_vault_from(ctx).diff_configs(a, b), as_json, render.config_diff)


# --------------------------------------------------------------------------- preflight / run

_run_options = [
    click.option("--dataset", "dataset", metavar="NAME@X.Y.Z", help="The dataset version to train on."),
    click.option("--config", "config_id", metavar="C-ID", help="The registered config to use."),
    click.option("--model", metavar="NAME", help="The model the run produces (with --version)."),
    click.option("--version", "model_version", metavar="X.Y.Z", help="The model version to reserve (with --model)."),
    click.option("--seed", type=int, help="The training seed, when the config holds none (overrides it)."),
    click.option("--allow-dirty", is_flag=True, help="Run on uncommitted code; the run is marked dirty."),
]


def _with_run_options(f):
    for opt in reversed(_run_options):
        f = opt(f)
    return f


@click.command("preflight")
@_with_run_options
@json_option
@click.pass_context
def preflight_cmd(ctx, dataset, config_id, model, model_version, seed, allow_dirty, as_json):
    """Check that a run may start; list every failure with its fix (exit 7 if any)."""
    report = open_vault_from(ctx).preflight(dataset=dataset, config=config_id, model=model, version=model_version,
                                            seed=seed, allow_dirty=allow_dirty)
    emit(report, as_json, render.preflight)
    if as_json and not report.ok:
        ctx.exit(7)
    report.raise_for_failures()  # the failures, each with its fix, as the error (exit 7)


@click.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_with_run_options
@click.option("--output", type=click.Path(file_okay=False), help="Output folder (default: runs/<run-id>/).")
@link_option
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary on stdout at the end (the command's output then goes to stderr).")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
@click.pass_context
def run_cmd(ctx, dataset, config_id, model, model_version, seed, allow_dirty, output, link, as_json, command):
    """Run COMMAND (after `--`) as a recorded run, once the preflight passes.

    \b
    The command gets LENSVAULT_RUN_ID, LENSVAULT_DIR, LENSVAULT_DATA_DIR, LENSVAULT_CONFIG,
    LENSVAULT_SEED and LENSVAULT_OUTPUT_DIR. Its output is shown and recorded; every file it
    writes to the output folder becomes an artifact. Exit code: the command's (130 if interrupted).
    With --json its output streams to stderr, so stdout holds only the JSON summary.
    """
    import sys

    command = list(command)
    if command and command[0] == "--":
        command = command[1:]
    vault = open_vault_from(ctx)
    result = vault.run(command, dataset=dataset, config=config_id, model=model, version=model_version, seed=seed,
                       allow_dirty=allow_dirty, output_dir=output, link=link,
                       stream=sys.stderr.buffer if as_json else None)
    emit(result, as_json, render.run, stderr=True)  # stdout is the command's (or the JSON)
    ctx.exit(result.cli_exit_code)


# --------------------------------------------------------------------------- runs


TABLE_ROWS = 50  # the newest runs a table shows unless told otherwise


@click.group("runs")
def runs():
    """List, show, compare and abandon recorded runs."""


@runs.command("list")
@click.option("--dataset", metavar="NAME@X.Y.Z", help="Only runs on this dataset version.")
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "interrupted", "crashed", "abandoned"]))
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help=f"At most this many, newest first (default: {TABLE_ROWS} in the table, every run with --json).")
@click.option("--all", "everything", is_flag=True, help="Every run in the table too.")
@json_option
@click.pass_context
def runs_list(ctx, dataset, status, limit, everything, as_json):
    """Runs, newest first, with their latest metrics."""
    if limit is None and not (everything or as_json):
        limit = TABLE_ROWS  # a table of 100,000 runs is read by nobody; the renderer says how many more
    emit(open_vault_from(ctx).runs(dataset=dataset, status=status, limit=limit), as_json, render.run_list)


@runs.command("show")
@click.argument("run_id")
@click.option("--points", is_flag=True, help="With --json: every metric point, not just the latest values.")
@json_option
@click.pass_context
def runs_show(ctx, run_id, points, as_json):
    """Everything recorded about RUN (an id, a unique prefix, or `latest`)."""
    emit(open_vault_from(ctx).get_run(run_id, points=points), as_json, render.run_details)


@runs.command("log")
@click.argument("run_id")
@json_option
@click.pass_context
def runs_log(ctx, run_id, as_json):
    """Print the recorded output of RUN (an id, a unique prefix, or `latest`)."""
    emit(open_vault_from(ctx).run_log(run_id), as_json, render.run_log)


@runs.command("abandon")
@click.argument("run_id")
@click.option("--reason", help="Why (recorded with the run and in the event log).")
@click.option("--force", is_flag=True, help="Also when its owner process is alive, or cannot be checked from here.")
@json_option
@click.pass_context
def runs_abandon(ctx, run_id, reason, force, as_json):
    """End a run that is stuck as running: mark it abandoned and release its model version.

    A run whose owner died on this host is marked crashed by any `runs` command on its own;
    abandon is for the rest (an owner on another host, or one you want to give up on).
    """
    emit(open_vault_from(ctx).abandon_run(run_id, reason=reason, force=force), as_json, render.abandoned)


@runs.command("compare")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def runs_compare(ctx, a, b, as_json):
    """Config keys, data version, code commit, environment and metrics of runs A and B, side by side."""
    emit(open_vault_from(ctx).compare_runs(a, b), as_json, render.run_comparison)


# --------------------------------------------------------------------------- eval


@click.command("eval")
@click.option("--run", "run_id", metavar="RUN", help="The run whose predictions these are.")
@click.option("--model", metavar="NAME@VER", help="The registered model whose predictions these are.")
@click.option("--dataset", required=True, metavar="NAME@X.Y.Z", help="The dataset version holding the ground truth.")
@click.option("--split", default="test", show_default=True, help="The split to evaluate on ('all' for every image).")
@click.option("--predictions", required=True, type=click.Path(),
              help="COCO results JSON; a folder of PNG masks (semantic segmentation); CSV/JSON (classification).")
@click.option("--task", default="detection", show_default=True,
              type=click.Choice(["detection", "instance-segmentation", "keypoints", "semantic-segmentation",
                                 "classification"]), help="What the predictions are (see docs/runs.md).")
@click.option("--ignore-index", default=255, show_default=True, type=int,
              help="Semantic segmentation: the pixel value that is not scored.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1), help="Classification: top-k accuracy.")
@click.option("--oks-sigmas", metavar="S1,S2,...", help="Keypoints: one OKS sigma per point (default COCO's 17).")
@click.option("--multi-label", is_flag=True,
              help="Classification: each image has a set of labels (subset accuracy, Hamming loss, AP per class).")
@click.option("--threshold", default=0.5, show_default=True, type=float,
              help="Multi-label classification: a class is predicted when its score is at least this.")
@json_option
@click.pass_context
def eval_cmd(ctx, run_id, model, dataset, split, predictions, task, ignore_index, top_k, oks_sigmas, multi_label,
             threshold, as_json):
    """Compute a task's metrics (COCO AP; mIoU; accuracy, per class and per slice) and record them.

    Without --run or --model the evaluation is ad hoc: recorded, attached to no run.
    """
    sigmas = None
    if oks_sigmas:
        try:
            sigmas = [float(v) for v in oks_sigmas.split(",")]
        except ValueError:
            raise click.BadParameter(f"{oks_sigmas!r} is not a list of numbers", param_hint="--oks-sigmas") from None
    res = open_vault_from(ctx).evaluate(dataset=dataset, predictions=predictions,
                                        split=None if split == "all" else split, run=run_id, model=model,
                                        task=task, ignore_index=ignore_index, top_k=top_k, oks_sigmas=sigmas,
                                        multi_label=multi_label, threshold=threshold)
    emit(res, as_json, render.evaluation)


@click.command("evals")
@click.option("--run", "run_id", metavar="RUN", help="Only evaluations of this run.")
@click.option("--model", metavar="NAME@VER", help="Only evaluations of this model version (or of its run).")
@click.option("--dataset", metavar="NAME@X.Y.Z", help="Only evaluations on this dataset version.")
@click.option("--ad-hoc", is_flag=True, help="Only evaluations attached to no run or model.")
@json_option
@click.pass_context
def evals_cmd(ctx, run_id, model, dataset, ad_hoc, as_json):
    """List recorded evaluations, oldest first: id, data (dataset@version, split), AP, what they belong to."""
    rows = open_vault_from(ctx).evaluations(run=run_id, model=model, dataset=dataset, ad_hoc=ad_hoc)
    emit(rows, as_json, render.evaluations)
