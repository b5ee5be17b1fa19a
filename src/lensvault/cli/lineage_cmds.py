"""``lensvault lineage`` (and later ``why``, ``reproduce``)."""

from __future__ import annotations

import click

from lensvault.cli._common import echo_json, open_vault_from


@click.command("lineage")
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", help="What produced REF (default for models and runs).")
@click.option("--down", "direction", flag_value="down", help="What depends on REF (default for datasets and configs).")
@click.option("--both", "direction", flag_value="both", help="Both directions.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "mermaid", "dot"]), default="text", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.pass_context
def lineage_cmd(ctx, ref, direction, fmt, as_json):
    """Lineage of a model version or alias, run, dataset version or config.

    \b
    lensvault lineage detector@production          # run → commit, config, dataset → parents; evaluations
    lensvault lineage retail@1.1.0 --down          # runs, models, evaluations, aliases that depend on it
    """
    from lensvault.lineage import render

    vault = open_vault_from(ctx)
    g = vault.lineage(ref, direction=direction or "auto").to_dict()
    fmt = "json" if as_json else fmt
    if fmt == "json":
        echo_json(g)
    elif fmt == "mermaid":
        click.echo(render.to_mermaid(g))
    elif fmt == "dot":
        click.echo(render.to_dot(g))
    else:
        click.echo(render.to_text(g))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


@click.command("why")
@click.argument("a")
@click.argument("b")
@click.option("--allow-different-data", is_flag=True,
              help="Compare metrics even if A and B were not evaluated on the same dataset version and split.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
def why_cmd(ctx, a, b, allow_different_data, as_json):
    """Explain what changed from A to B (model versions, aliases or run ids), likeliest cause first.

    Metrics come from evaluations of both on the same dataset version and split (named in the
    output); without such a pair the command refuses unless --allow-different-data.

    \b
    lensvault why detector@1.1.0 detector@production
    """
    vault = open_vault_from(ctx)
    rep = vault.why(a, b, allow_different_data=allow_different_data)
    if as_json:
        echo_json(rep.to_dict())
        return
    from lensvault.cli._common import console, table

    out = console()
    out.print(f"[bold]why {rep.a['ref']} → {rep.b['ref']}[/bold]")
    for note in rep.notes:
        out.print(f"[yellow]note:[/yellow] {note}")
    m = rep.metrics
    for side, ref in (("a_source", rep.a["ref"]), ("b_source", rep.b["ref"])):
        if m.get(side):
            out.print(f"metrics of {ref}: {m[side]['label']}", markup=False)
    t = table("metric", rep.a["ref"], rep.b["ref"], "Δ", title=f"metrics ({m['source']})",
              right=(rep.a["ref"], rep.b["ref"], "Δ"))

    def row(label, d):
        delta = d["delta"]
        style = "red" if delta is not None and delta < -0.005 else ("green" if delta is not None and delta > 0.005 else "")
        t.add_row(label, _fmt(d["a"]), _fmt(d["b"]), f"[{style}]{delta:+.4f}[/{style}]" if delta is not None and style else _fmt(delta))

    for k in ("AP", "AP50", "AP75"):
        if k in m["overall"]:
            row(k, m["overall"][k])
    for part, label in (("per_class", "class"), ("per_slice", "slice")):
        for name, d in m.get(part, {}).items():
            key = "AP50" if "AP50" in d else next(iter(d), None)
            if key:
                row(f"{key} ({label} {name})", d[key])
    out.print(t)
    out.print("\n[bold]what changed, likeliest cause first[/bold]")
    for i, e in enumerate(rep.explanations, 1):
        out.print(f" {i}. [bold]{e['factor']}[/bold] (score {e['score']:.2f})")
        for r in e["reasons"]:
            out.print(f"      - {r}", markup=False)
    c = rep.code
    out.print(f"\ncode: {_fmt(c.get('a'))[:10]} → {_fmt(c.get('b'))[:10]}" + ("" if c.get("changed") else " (same commit)"))
    commits = c.get("commits") or []
    for cm in commits[:10]:
        out.print(f"   {cm['sha'][:10]} {cm['subject']}", markup=False)
    if len(commits) > 10:
        out.print(f"   … and {len(commits) - 10} more commit(s)")
    files = c.get("files") or []
    for f in files[:10]:
        counts = f"+{f['additions']} -{f['deletions']}" if f.get("additions") is not None else "binary"
        out.print(f"   {f['status']:<9} {f['path']} ({counts})", markup=False)
    if len(files) > 10:
        out.print(f"   … and {len(files) - 10} more file(s)")
    if c.get("note"):
        out.print(f"   ({c['note']})", markup=False)
    if c.get("error"):
        out.print(f"   ({c['error']})", markup=False)
    d = rep.data
    out.print(f"data: {d.get('a')} → {d.get('b')}" + (f": {d['summary']}" if d.get("summary") else
                                                      (f" ({d['error']})" if d.get("error") else
                                                       ("" if d.get("changed") else " (same)"))), markup=False)
    cf = rep.config
    out.print(f"config: {cf.get('a')} → {cf.get('b')}" + ("" if cf.get("changed") else " (same values)"))
    for k, v in cf.get("changed_keys", {}).items():
        out.print(f"   {k}: {v['a']!r} → {v['b']!r}", markup=False)
    for k, v in cf.get("added", {}).items():
        out.print(f"   + {k}: {v!r}", markup=False)
    for k, v in cf.get("removed", {}).items():
        out.print(f"   - {k}: {v!r}", markup=False)
    env = rep.environment
    out.print("environment: " + ("changed" if env.get("changed") else ("same" if "note" not in env else env["note"])))
    pk = env.get("packages") or {}
    for k, v in (pk.get("changed") or {}).items():
        out.print(f"   {k}: {v[0]} → {v[1]}", markup=False)
    for k, v in (pk.get("added") or {}).items():
        out.print(f"   + {k} {v}", markup=False)
    for k, v in (pk.get("removed") or {}).items():
        out.print(f"   - {k} {v}", markup=False)
    if rep.rollback_command:
        out.print(f"\n[red]{rep.b['ref']} holds '{rep.protected_alias}' and regressed.[/red] Roll back with:\n  {rep.rollback_command}")


@click.command("reproduce")
@click.argument("ref")
@click.option("--tolerance", default=0.01, show_default=True, type=float, help="Largest absolute metric difference accepted.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (the rebuilt run's log goes to stderr).")
@click.pass_context
def reproduce_cmd(ctx, ref, tolerance, as_json):
    """Rebuild REF (NAME@VER, NAME@ALIAS or a run id) in a clean worktree and verify it. Exit 1 on FAIL.

    \b
    lensvault reproduce detector@production --tolerance 0.01
    """
    import sys

    vault = open_vault_from(ctx)
    stream = sys.stderr.buffer if as_json else None
    rep = vault.reproduce(ref, tolerance=tolerance, stream=stream)
    if as_json:
        echo_json(rep.to_dict())
    else:
        click.echo(f"\nreproduce {rep.target} (original run {rep.original_run}"
                   + (f", rebuilt as {rep.new_run})" if rep.new_run else ")"))
        for r in rep.reasons:
            click.echo(click.style(f"  ✗ {r}", fg="red"))
        for d in rep.differences:
            delta = f" (Δ {d['delta']:+.4f} > {rep.tolerance})" if d.get("delta") is not None else ""
            click.echo(click.style(f"  ✗ {d['kind']} {d['name']}: expected {d['expected']}, got {d['got']}{delta}", fg="red"))
        by_kind: dict[str, list] = {}
        for m in rep.matches:
            by_kind.setdefault(m["kind"], []).append(m)
        labels = {"metric": "run metrics within ±{tol}", "evaluation": "evaluation metrics within ±{tol}",
                  "artifact": "artifacts byte-identical", "bundle": "registered weights byte-identical"}
        for kind, items in by_kind.items():
            worst = max((abs(m["delta"]) for m in items if m.get("delta") is not None), default=None)
            names = ", ".join(m["name"] for m in items[:6]) + (f" … and {len(items) - 6} more" if len(items) > 6 else "")
            click.echo(f"  ✓ {len(items)} {labels.get(kind, kind).format(tol=rep.tolerance)}"
                       + (f" (largest Δ {worst:.4g})" if worst is not None else "") + f": {names}")
        click.echo(click.style(rep.verdict, fg="green" if rep.passed else "red", bold=True))
    ctx.exit(0 if rep.passed else 1)
