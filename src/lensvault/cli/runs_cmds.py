"""``lensvault config|preflight|run|runs|eval``: configs, the preflight gate, runs and evaluations."""

from __future__ import annotations

import json

import click

from lensvault.cli._common import console, echo_json, human_bytes, json_option, open_vault_from, link_option

DIRTY = "DIRTY"


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


# --------------------------------------------------------------------------- config


@click.group("config")
def config():
    """Register, list, show and diff config files (YAML, JSON, TOML) under IDs like C-23c."""


@config.command("add")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--id", "config_id", metavar="C-ID", help="The ID to register (default: the next C-NN).")
@json_option
@click.pass_context
def config_add(ctx, path, config_id, as_json):
    """Register the config file PATH under an ID (write-once)."""
    rec = open_vault_from(ctx).add_config(path, config_id)
    if as_json:
        echo_json(rec.to_dict())
        return
    click.echo(f"Registered {rec.config_id}: {rec.repo_path} sha256 {rec.sha256[:12]}"
               + (f" at commit {rec.commit[:12]}" if rec.commit else ""))
    if rec.commit is None:
        click.echo(click.style("  warning: the file is not committed as registered; the preflight will refuse this "
                               "config — commit it and register it under a new ID", fg="yellow"), err=True)


@config.command("list")
@json_option
@click.pass_context
def config_list(ctx, as_json):
    """List registered configs."""
    recs = open_vault_from(ctx).configs()
    if as_json:
        echo_json([r.to_dict() for r in recs])
        return
    if not recs:
        click.echo("No configs registered. Register one with `lensvault config add PATH --id C-01`.")
        return
    from lensvault.cli._common import table

    t = table("id", "path", "commit", "sha256", "registered")
    for r in recs:
        t.add_row(r.config_id, r.repo_path, (r.commit or "uncommitted")[:12], r.sha256[:12], r.created_at[:19])
    console().print(t)


@config.command("show")
@click.argument("config_id")
@json_option
@click.pass_context
def config_show(ctx, config_id, as_json):
    """Show a registered config: where it came from and its values."""
    rec = open_vault_from(ctx).get_config(config_id)
    if as_json:
        echo_json(rec.to_dict())
        return
    click.echo(f"{rec.config_id}  {rec.repo_path} ({rec.format})")
    click.echo(f"  commit:  {rec.commit or 'uncommitted'}\n  sha256:  {rec.sha256}\n"
               f"  registered: {rec.created_at} by {rec.created_by}")
    from lensvault.configs import flatten

    for k, v in flatten(rec.values).items():
        click.echo(f"  {k} = {_fmt(v)}")


@config.command("diff")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def config_diff(ctx, a, b, as_json):
    """Key-level differences between configs A and B (added, removed, changed)."""
    from lensvault.runs.configs import diff_registered

    vault = open_vault_from(ctx)
    d = diff_registered(vault.get_config(a), vault.get_config(b))
    if as_json:
        echo_json(d)
        return
    if not (d["added"] or d["removed"] or d["changed"]):
        click.echo(f"{a} and {b} hold the same values.")
        return
    for k, v in d["removed"].items():
        click.echo(click.style(f"- {k} = {_fmt(v)}", fg="red"))
    for k, v in d["added"].items():
        click.echo(click.style(f"+ {k} = {_fmt(v)}", fg="green"))
    for k, (old, new) in d["changed"].items():
        click.echo(click.style(f"~ {k}: {_fmt(old)} -> {_fmt(new)}", fg="yellow"))


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
    if as_json:
        echo_json(report.to_dict())
        if not report.ok:
            ctx.exit(7)
        return
    for c in report.checks:
        if c.ok:
            click.echo(click.style("  ✓ ", fg="green") + f"{c.check}: {c.what}")
    report.raise_for_failures()
    click.echo("Preflight passed." + ("" if report.clean else click.style(f" (run would be {DIRTY})", fg="yellow")))


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
    if as_json:
        echo_json(result.to_dict())
        ctx.exit(result.cli_exit_code)
    style = {"succeeded": "green", "failed": "red", "interrupted": "yellow"}.get(result.status, "red")
    tail = "" if result.clean else " " + click.style(DIRTY, fg="yellow")
    click.echo(click.style(f"Run {result.run_id} {result.status}", fg=style)
               + (f" (exit code {result.exit_code})" if result.exit_code not in (0, None) else "") + tail, err=True)
    if result.status == "abandoned":
        click.echo("  someone abandoned the run while it ran (runs abandon --force): its end, log and "
                   "outputs were not recorded", err=True)
    click.echo(f"  outputs: {result.output_dir}\n  see: `lensvault runs show {result.run_id}`", err=True)
    ctx.exit(result.cli_exit_code)


# --------------------------------------------------------------------------- runs


@click.group("runs")
def runs():
    """List, show, compare and abandon recorded runs."""


_STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "crashed": "red", "abandoned": "yellow"}
_METRIC_COLUMNS = 6


@runs.command("list")
@click.option("--dataset", metavar="NAME@X.Y.Z", help="Only runs on this dataset version.")
@click.option("--status", type=click.Choice(["running", "succeeded", "failed", "interrupted", "crashed", "abandoned"]))
@click.option("--limit", type=int, help="At most this many (newest first).")
@json_option
@click.pass_context
def runs_list(ctx, dataset, status, limit, as_json):
    """Runs, newest first, with their latest metrics."""
    from collections import Counter

    from lensvault.cli._common import table

    rows = open_vault_from(ctx).runs(dataset=dataset, status=status, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No runs yet. Start one with `lensvault run --dataset NAME@VER --config ID -- CMD`.")
        return
    # The metrics most runs have get a column; the others are named below the table.
    seen = Counter(k for r in rows for k in r["metrics"])
    keys = sorted(sorted(seen), key=lambda k: -seen[k])[:_METRIC_COLUMNS]
    t = table("run", "status", "model", "code", "dataset", "config", *sorted(keys))
    for r in rows:
        code = (r["code_commit"] or "-")[:9] + ("" if r["clean"] else f" [yellow]{DIRTY}[/]")
        st = _STATUS_STYLE.get(r["status"], "white")
        t.add_row(r["run_id"], f"[{st}]{r['status']}[/]", r["model"] or "-", code, r["dataset"] or "-",
                  r["config"] or "-", *[_fmt(r["metrics"].get(k)) for k in sorted(keys)])
    console().print(t)
    hidden = sorted(set(seen) - set(keys))
    if hidden:
        click.echo(f"{len(rows)} run(s); {len(hidden)} more metric(s) not shown as columns: {', '.join(hidden)} "
                   "(see `lensvault runs show RUN` or --json)")
    else:
        click.echo(f"{len(rows)} run(s)")


@runs.command("show")
@click.argument("run_id")
@click.option("--points", is_flag=True, help="With --json: every metric point, not just the latest values.")
@json_option
@click.pass_context
def runs_show(ctx, run_id, points, as_json):
    """Everything recorded about RUN (an id, a unique prefix, or `latest`)."""
    r = open_vault_from(ctx).get_run(run_id, points=points)
    if as_json:
        echo_json(r)
        return
    dirty = "" if r["clean"] else "  " + click.style(f"{DIRTY} (uncommitted changes were allowed)", fg="yellow")
    click.echo(f"run_id={r['run_id']}  status={r['status']}" + (f"  exit={r['exit_code']}" if r["exit_code"] is not None else ""))
    if r.get("end_reason"):
        click.echo(f"  {r['status']}: {r['end_reason']}")
    if r["status"] == "running" and r.get("owner"):
        click.echo(f"  owner: pid {r['owner']['pid']} on {r['owner']['host']}")
    click.echo(f"code={r['code_commit'] or '-'}" + (" (clean commit)" if r["clean"] else "") + dirty)
    seeds = r["seeds"]
    click.echo(f"data={r['dataset']}" + (f" (split seed {seeds.get('split')})" if seeds.get("split") is not None else ""))
    click.echo(f"config={r['config']}" + (f" (seed={seeds.get('train')})" if seeds.get("train") is not None else ""))
    if r["model"]:
        # A run that did not succeed gave its model version back.
        click.echo(f"model={r['model']} ({'reserved' if r['status'] in ('running', 'succeeded') else 'released'})")
    if r["command"]:
        import shlex

        click.echo(f"command: {shlex.join(r['command'])}")
    click.echo(f"started={r['started_at']}  ended={r['ended_at'] or '-'}  by={r['created_by']}  kind={r['kind']}"
               + (f"  reproduces={r['reproduces']}" if r.get("reproduces") else ""))
    if r["params"]:
        click.echo("params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items()))
    click.echo(f"metrics logged by the run ({r['metric_points']} points): "
               + (", ".join(f"{k}={_fmt(v)}" for k, v in r["metrics"].items()) or "-"))
    for cls, ms in r["metrics_per_class"].items():
        click.echo(f"  class {cls}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in ms.items()))
    for sl, ms in r["metrics_per_slice"].items():
        click.echo(f"  slice {sl}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in ms.items()))
    click.echo("artifacts:" + ("" if r["artifacts"] else " -"))
    for a in r["artifacts"]:
        click.echo(f"  {a['path']} ({human_bytes(a['size'])}, sha256:{a['sha256'][:16]}…)")
    for e in r["evaluations"]:
        ov = e["overall"] or {}
        click.echo(f"eval {e['eval_id']}: {e['dataset']} split={e['split']} AP={_fmt(ov.get('AP'))} AP50={_fmt(ov.get('AP50'))}")
    env = r["environment"]
    if env:
        py = env.get("python", {}).get("version")
        osn = env.get("os", {})
        gpus = env.get("gpus") or []
        click.echo(f"environment: Python {py}, {osn.get('system', '')} {osn.get('release', '')}, "
                   f"{env.get('cpu', {}).get('count', '?')} CPUs, {len(gpus)} GPU(s), {len(env.get('packages', {}))} packages")
    if r["log_oid"]:
        click.echo(f"log: {r['log_oid'][:16]}… (`lensvault runs log {r['run_id']}`)")


@runs.command("log")
@click.argument("run_id")
@json_option
@click.pass_context
def runs_log(ctx, run_id, as_json):
    """Print the recorded output of RUN (an id, a unique prefix, or `latest`)."""
    from lensvault.runs.records import run_log

    found, data = run_log(open_vault_from(ctx), run_id)
    text = data.decode("utf-8", "replace")
    if as_json:
        echo_json({"run_id": found, "log": text})
        return
    click.echo(text, nl=False)


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
    from lensvault.runs.crashes import abandon_run

    ended = abandon_run(open_vault_from(ctx), run_id, reason=reason, force=force)
    if as_json:
        echo_json(ended.to_dict())
        return
    click.echo(f"Run {ended.run_id} {ended.status}: {ended.reason}")
    click.echo(f"  model version released: {ended.released}" if ended.released else "  no model version was reserved")
    if ended.log_oid:
        click.echo(f"  its output so far is kept: lensvault runs log {ended.run_id}")


@runs.command("compare")
@click.argument("a")
@click.argument("b")
@json_option
@click.pass_context
def runs_compare(ctx, a, b, as_json):
    """Config keys, data version, code commit, environment and metrics of runs A and B, side by side."""
    d = open_vault_from(ctx).compare_runs(a, b)
    if as_json:
        echo_json(d)
        return
    from lensvault.cli._common import table

    t = table("", "A", "B", title=f"{d['a']}  vs  {d['b']}")

    def rows(section, items):
        t.add_row(f"[bold]{section}[/]", "", "")
        for it in items:
            mark = "[bold yellow]" if it["differs"] else ""
            end = "[/]" if it["differs"] else ""
            a_v, b_v = it["a"], it["b"]
            if it["key"] == "clean":
                a_v, b_v = ("clean" if a_v else DIRTY), ("clean" if b_v else DIRTY)
            t.add_row(f"{mark}{'* ' if it['differs'] else '  '}{it['key']}{end}", f"{mark}{_fmt(a_v)}{end}",
                      f"{mark}{_fmt(b_v)}{end}")

    rows("run", d["run"])
    rows("config", d["config"])
    rows("metrics logged by the runs", d["metrics"])
    for cls, items in d["metrics_per_class"].items():
        rows(f"class {cls}", items)
    if d["params"]:
        rows("params", d["params"])
    env = d["environment"]
    t.add_row("[bold]environment[/]", "", "")
    if env.get("same"):
        t.add_row("  (same)", "", "")
    else:
        for part in ("python", "os", "cpu", "memory"):
            for k, (x, y) in (env.get(part) or {}).items():
                t.add_row(f"[bold yellow]* {part}.{k}[/]", _fmt(x), _fmt(y))
        pk = env.get("packages") or {}
        for k, (x, y) in (pk.get("changed") or {}).items():
            t.add_row(f"[bold yellow]* package {k}[/]", _fmt(x), _fmt(y))
        for k, v in (pk.get("added") or {}).items():
            t.add_row(f"[bold yellow]* package {k}[/]", "-", _fmt(v))
        for k, v in (pk.get("removed") or {}).items():
            t.add_row(f"[bold yellow]* package {k}[/]", _fmt(v), "-")
        if env.get("gpus"):
            t.add_row("[bold yellow]* gpus[/]", _fmt(env["gpus"][0]), _fmt(env["gpus"][1]))
    console().print(t)
    click.echo("(* = differs)")


# --------------------------------------------------------------------------- eval


@click.command("eval")
@click.option("--run", "run_id", metavar="RUN", help="The run whose predictions these are.")
@click.option("--model", metavar="NAME@VER", help="The registered model whose predictions these are.")
@click.option("--dataset", required=True, metavar="NAME@X.Y.Z", help="The dataset version holding the ground truth.")
@click.option("--split", default="test", show_default=True, help="The split to evaluate on ('all' for every image).")
@click.option("--predictions", required=True, type=click.Path(dir_okay=False), help="COCO results JSON.")
@json_option
@click.pass_context
def eval_cmd(ctx, run_id, model, dataset, split, predictions, as_json):
    """Compute COCO metrics (AP, AP50, AP75, per class, per slice) and record them.

    Without --run or --model the evaluation is ad hoc: recorded, attached to no run.
    """
    res = open_vault_from(ctx).evaluate(dataset=dataset, predictions=predictions,
                                        split=None if split == "all" else split, run=run_id, model=model)
    if as_json:
        echo_json(res)
        return
    ov = res["overall"]
    of = ", ".join(x for x in ((f"run {res['run_id']}" if res["run_id"] else ""),
                                (f"model {res['model']}" if res["model"] else "")) if x) or "ad hoc, not attached to a run"
    click.echo(f"Evaluation {res['eval_id']}: {res['dataset']} split={res['split'] or 'all'} ({of})")
    click.echo(f"  AP={_fmt(ov['AP'])}  AP50={_fmt(ov['AP50'])}  AP75={_fmt(ov['AP75'])}")
    for cls, m in res["per_class"].items():
        click.echo(f"  class {cls}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    for sl, m in res["per_slice"].items():
        click.echo(f"  slice {sl}: AP={_fmt(m['AP'])} AP50={_fmt(m['AP50'])} ({m['images']} images)")


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
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No evaluations recorded. Record one with "
                   "`lensvault eval --dataset NAME@VER --split test --predictions preds.json`.")
        return
    from lensvault.cli._common import table

    t = table("evaluation", "dataset", "split", "AP", "AP50", "of", right=("AP", "AP50"))  # folds, never cuts
    for r in rows:
        ov = r.get("overall") or {}
        of = r["model"] or (f"run {r['run_id']}" if r["run_id"] else "ad hoc")
        t.add_row(r["eval_id"], r["dataset"], r["split"] or "all", _fmt(ov.get("AP")), _fmt(ov.get("AP50")), of)
    console().print(t)
