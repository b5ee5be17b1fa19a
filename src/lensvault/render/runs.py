"""Human output of configs, the preflight gate, runs and evaluations."""

from __future__ import annotations

import json
import shlex
from collections import Counter

from lensvault.render._text import human_bytes, line, styled, table

__all__ = ["abandoned", "config_added", "config_diff", "config_list", "config_show", "evaluation", "evaluations",
           "preflight", "run", "run_comparison", "run_details", "run_list", "run_log"]

DIRTY = "DIRTY"
_STATUS_STYLE = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "crashed": "red", "abandoned": "yellow"}
_METRIC_COLUMNS = 6


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


# --------------------------------------------------------------------------- config


def config_added(rec, out, err) -> None:
    line(out, f"Registered {rec.config_id}: {rec.repo_path} sha256 {rec.sha256[:12]}"
              + (f" at commit {rec.commit[:12]}" if rec.commit else ""))
    if rec.commit is None:
        line(err, "  warning: the file is not committed as registered; the preflight will refuse this "
                  "config — commit it and register it under a new ID", style="yellow")


def config_list(recs, out) -> None:
    if not recs:
        line(out, "No configs registered. Register one with `lensvault config add PATH --id C-01`.")
        return
    t = table("id", "path", "commit", "sha256", "registered")
    for r in recs:
        t.add_row(r.config_id, r.repo_path, (r.commit or "uncommitted")[:12], r.sha256[:12], r.created_at[:19])
    out.print(t)


def config_show(rec, out) -> None:
    from lensvault.configs.values import flatten

    line(out, f"{rec.config_id}  {rec.repo_path} ({rec.format})")
    line(out, f"  commit:  {rec.commit or 'uncommitted'}\n  sha256:  {rec.sha256}\n"
              f"  registered: {rec.created_at} by {rec.created_by}")
    for k, v in flatten(rec.values).items():
        line(out, f"  {k} = {_fmt(v)}")


def config_diff(d, out) -> None:
    if not (d["added"] or d["removed"] or d["changed"]):
        line(out, f"{d['a']} and {d['b']} hold the same values.")
        return
    for k, v in d["removed"].items():
        line(out, f"- {k} = {_fmt(v)}", style="red")
    for k, v in d["added"].items():
        line(out, f"+ {k} = {_fmt(v)}", style="green")
    for k, (old, new) in d["changed"].items():
        line(out, f"~ {k}: {_fmt(old)} -> {_fmt(new)}", style="yellow")


# --------------------------------------------------------------------------- preflight, run


def preflight(report, out) -> None:
    """The checks that passed, and the verdict when all did (failures are raised as the error)."""
    for c in report.checks:
        if c.ok:
            line(out, styled(("  ✓ ", "green"), f"{c.check}: {c.what}"))
    if report.ok:
        line(out, styled("Preflight passed.", *(() if report.clean else ((f" (run would be {DIRTY})", "yellow"),))))


def run(result, out) -> None:
    style = {"succeeded": "green", "failed": "red", "interrupted": "yellow"}.get(result.status, "red")
    line(out, styled((f"Run {result.run_id} {result.status}", style),
                     f" (exit code {result.exit_code})" if result.exit_code not in (0, None) else "",
                     *(() if result.clean else (" ", (DIRTY, "yellow")))))
    if result.status == "abandoned":
        line(out, "  someone abandoned the run while it ran (runs abandon --force): its end, log and "
                  "outputs were not recorded")
    line(out, f"  outputs: {result.output_dir}\n  see: `lensvault runs show {result.run_id}`")


# --------------------------------------------------------------------------- runs


def run_list(rows, out) -> None:
    if not rows:
        line(out, "No runs yet. Start one with `lensvault run --dataset NAME@VER --config ID -- CMD`.")
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
    out.print(t)
    hidden = sorted(set(seen) - set(keys))
    total = getattr(rows, "total", len(rows))
    count = (f"{len(rows)} run(s)" if total <= len(rows) else
             f"the newest {len(rows)} of {total:,} runs … and {total - len(rows):,} more (--limit N or --all to see them)")
    if hidden:
        line(out, f"{count}; {len(hidden)} more metric(s) not shown as columns: {', '.join(hidden)} "
                  "(see `lensvault runs show RUN` or --json)")
    else:
        line(out, count)


def run_details(r, out) -> None:
    dirty = () if r["clean"] else ("  ", (f"{DIRTY} (uncommitted changes were allowed)", "yellow"))
    line(out, f"run_id={r['run_id']}  status={r['status']}" + (f"  exit={r['exit_code']}" if r["exit_code"] is not None else ""))
    if r.get("end_reason"):
        line(out, f"  {r['status']}: {r['end_reason']}")
    if r["status"] == "running" and r.get("owner"):
        line(out, f"  owner: pid {r['owner']['pid']} on {r['owner']['host']}")
    line(out, styled(f"code={r['code_commit'] or '-'}" + (" (clean commit)" if r["clean"] else ""), *dirty))
    seeds = r["seeds"]
    line(out, f"data={r['dataset']}" + (f" (split seed {seeds.get('split')})" if seeds.get("split") is not None else ""))
    line(out, f"config={r['config']}" + (f" (seed={seeds.get('train')})" if seeds.get("train") is not None else ""))
    if r["model"]:
        # A run that did not succeed gave its model version back.
        line(out, f"model={r['model']} ({'reserved' if r['status'] in ('running', 'succeeded') else 'released'})")
    if r["command"]:
        line(out, f"command: {shlex.join(r['command'])}")
    line(out, f"started={r['started_at']}  ended={r['ended_at'] or '-'}  by={r['created_by']}  kind={r['kind']}"
              + (f"  reproduces={r['reproduces']}" if r.get("reproduces") else ""))
    if r["params"]:
        line(out, "params: " + ", ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items()))
    line(out, f"metrics logged by the run ({r['metric_points']} points): "
              + (", ".join(f"{k}={_fmt(v)}" for k, v in r["metrics"].items()) or "-"))
    for cls, ms in r["metrics_per_class"].items():
        line(out, f"  class {cls}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in ms.items()))
    for sl, ms in r["metrics_per_slice"].items():
        line(out, f"  slice {sl}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in ms.items()))
    line(out, "artifacts:" + ("" if r["artifacts"] else " -"))
    for a in r["artifacts"]:
        line(out, f"  {a['path']} ({human_bytes(a['size'])}, sha256:{a['sha256'][:16]}…)")
    for e in r["evaluations"]:
        ov = e["overall"] or {}
        line(out, f"eval {e['eval_id']}: {e['dataset']} split={e['split']} AP={_fmt(ov.get('AP'))} AP50={_fmt(ov.get('AP50'))}")
    env = r["environment"]
    if env:
        py = env.get("python", {}).get("version")
        osn = env.get("os", {})
        gpus = env.get("gpus") or []
        line(out, f"environment: Python {py}, {osn.get('system', '')} {osn.get('release', '')}, "
                  f"{env.get('cpu', {}).get('count', '?')} CPUs, {len(gpus)} GPU(s), {len(env.get('packages', {}))} packages")
    if r["log_oid"]:
        line(out, f"log: {r['log_oid'][:16]}… (`lensvault runs log {r['run_id']}`)")


def run_log(log, out) -> None:
    """The recorded output, byte for byte as text (no line added at the end)."""
    f = out.file
    f.write(log.text)
    f.flush()


def abandoned(ended, out) -> None:
    line(out, f"Run {ended.run_id} {ended.status}: {ended.reason}")
    line(out, f"  model version released: {ended.released}" if ended.released else "  no model version was reserved")
    if ended.log_oid:
        line(out, f"  its output so far is kept: lensvault runs log {ended.run_id}")


def run_comparison(d, out) -> None:
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
    out.print(t)
    line(out, "(* = differs)")


# --------------------------------------------------------------------------- evaluations


def evaluation(res, out) -> None:
    ov = res["overall"]
    of = ", ".join(x for x in ((f"run {res['run_id']}" if res["run_id"] else ""),
                                (f"model {res['model']}" if res["model"] else "")) if x) or "ad hoc, not attached to a run"
    task = res.get("task", "detection")
    line(out, f"Evaluation {res['eval_id']}: {res['dataset']} split={res['split'] or 'all'} ({of})"
              + ("" if task == "detection" else f" task={task}")
              + (f" multi-label threshold={res['threshold']}" if res.get("multi_label") else ""))
    line(out, "  " + "  ".join(f"{k}={_fmt(v)}" for k, v in ov.items() if not k.startswith(("AR", "AP"))
                               or k in ("AP", "AP50", "AP75")))
    for cls, m in res["per_class"].items():
        line(out, f"  class {cls}: " + ", ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    for sl, m in res["per_slice"].items():
        shown = ("AP", "AP50") if "AP" in m else [k for k in m if k != "images"]
        line(out, f"  slice {sl}: " + " ".join(f"{k}={_fmt(m[k])}" for k in shown) + f" ({m['images']} images)")
    cm = res.get("confusion_matrix")
    if cm:  # classification and semantic segmentation: rows are the truth, columns the prediction
        line(out, "  confusion matrix (rows: truth, columns: predicted " + ", ".join(cm["classes"]) + "):")
        for name, row in zip(cm["classes"], cm["counts"]):
            line(out, f"    {name}: " + " ".join(str(v) for v in row))


def evaluations(rows, out) -> None:
    if not rows:
        line(out, "No evaluations recorded. Record one with "
                  "`lensvault eval --dataset NAME@VER --split test --predictions preds.json`.")
        return
    from lensvault.evaluations.tasks import headline_metrics

    tasks = {r.get("task", "detection") for r in rows}
    if tasks == {"detection"}:
        t = table("evaluation", "dataset", "split", "AP", "AP50", "of", right=("AP", "AP50"))  # folds, never cuts
    else:  # other tasks lead with their own numbers (mIoU, accuracy, ...), named in the row
        t = table("evaluation", "dataset", "split", "task", "headline", "of")
    for r in rows:
        ov = r.get("overall") or {}
        of = r["model"] or (f"run {r['run_id']}" if r["run_id"] else "ad hoc")
        if tasks == {"detection"}:
            t.add_row(r["eval_id"], r["dataset"], r["split"] or "all", _fmt(ov.get("AP")), _fmt(ov.get("AP50")), of)
        else:
            shown = " ".join(f"{k}={_fmt(v)}" for k, v in headline_metrics(r).items())
            t.add_row(r["eval_id"], r["dataset"], r["split"] or "all", r.get("task", "detection"), shown, of)
    out.print(t)
