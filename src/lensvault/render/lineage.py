"""Human output of lineage (a text tree, Mermaid or Graphviz DOT), ``why`` and ``reproduce``."""

from __future__ import annotations

import re

from lensvault.render._text import line, table

__all__ = ["graph", "reproduced", "to_dot", "to_mermaid", "to_text", "why"]

FORMATS = ("text", "mermaid", "dot")


def graph(g, out, *, fmt: str = "text") -> None:
    """A lineage graph (``Graph``) as ``fmt``: one of FORMATS."""
    draw = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot}[fmt]
    line(out, draw(g.to_dict()))

_ICON = {"model": "◆", "run": "▶", "dataset": "▤", "config": "⚙", "commit": "#", "evaluation": "✓", "alias": "@"}


def _describe(n: dict) -> str:
    a = n["attrs"]
    extra = []
    if n["type"] == "run":
        extra.append(a.get("status", ""))
        if a.get("clean") is False:
            extra.append("DIRTY")
    if n["type"] == "dataset" and a.get("changelog"):
        extra.append(a["changelog"])
    if n["type"] == "evaluation" and a.get("AP50") is not None:
        extra.append(f"AP50={a['AP50']:.3f}" + (f" AP={a['AP']:.3f}" if a.get("AP") is not None else ""))
    if n["type"] == "model" and a.get("dirty"):
        extra.append("DIRTY")
    tail = f"  ({'; '.join(x for x in extra if x)})" if any(extra) else ""
    return f"{_ICON.get(n['type'], '•')} {n['type']} {n['label']}{tail}"


_HANGING = ("evaluated", "alias", "reproduced_by")  # hang under their model whichever way we walk


def to_text(g: dict) -> str:
    """A tree from the root: upstream lists inputs under each node, downstream lists outputs.

    With ``--both`` the root is printed once, then an ``upstream:`` tree and a ``downstream:`` tree.
    """
    nodes = {n["id"]: n for n in g["nodes"]}
    more: dict[str, list[str]] = {}
    for o in g.get("omitted", ()):
        more.setdefault(o["node"], []).append(_more(o))
    if g["direction"] != "both":
        lines, seen = _tree(nodes, g["root"], g["edges"], up=g["direction"] == "up", more=more)
        # Not reachable from the root (should not happen): listed rather than lost.
        lines += [_describe(n) for n in g["nodes"] if n["id"] not in seen]
        return "\n".join(lines)
    # Upstream: the ancestors of the root (through input edges) and the edges between them.
    into: dict[str, list[dict]] = {}
    for e in g["edges"]:
        if e["type"] not in _HANGING:
            into.setdefault(e["to"], []).append(e)
    ancestors, todo = set(), [g["root"]]
    while todo:
        for e in into.get(todo.pop(), []):
            if e["from"] not in ancestors:
                ancestors.add(e["from"])
                todo.append(e["from"])
    up_edges = [e for e in g["edges"] if e["type"] not in _HANGING and e["from"] in ancestors]
    down_edges = [e for e in g["edges"] if e not in up_edges]
    up_lines, seen_up = _tree(nodes, g["root"], up_edges, up=True)
    down_lines, seen_down = _tree(nodes, g["root"], down_edges, up=False, more=more)
    lines = [up_lines[0], "upstream:" if len(up_lines) > 1 else "upstream: (nothing recorded)"]
    lines += ["  " + ln for ln in up_lines[1:]]
    lines.append("downstream:" if len(down_lines) > 1 else "downstream: (nothing depends on it)")
    lines += ["  " + ln for ln in down_lines[1:]]
    lines += [_describe(n) for n in g["nodes"] if n["id"] not in seen_up | seen_down]
    return "\n".join(lines)


def _more(o: dict) -> str:
    """The line that stands for what a limit left out below a node."""
    return (f"[{o['edge']}] … and {o['total'] - o['shown']:,} more {o['type']}(s) (the newest {o['shown']:,} "
            f"of {o['total']:,} shown; --limit N or --all to see them)")


def _tree(nodes: dict, root: str, edges: list[dict], *, up: bool,
          more: dict[str, list[str]] | None = None) -> tuple[list[str], set]:
    children: dict[str, list[tuple[str, str]]] = {}
    for e in edges:
        forward = not up or e["type"] in _HANGING
        parent, child = (e["from"], e["to"]) if forward else (e["to"], e["from"])
        children.setdefault(parent, []).append((child, e["type"]))
    lines = [_describe(nodes[root])]
    seen = {root}

    def walk(nid: str, prefix: str) -> None:
        kids = children.get(nid, [])
        tail = (more or {}).get(nid, [])
        for i, (kid, etype) in enumerate(kids):
            last = i == len(kids) - 1 and not tail
            lines.append(f"{prefix}{'└─' if last else '├─'} [{etype}] {_describe(nodes[kid])}")
            if kid not in seen:
                seen.add(kid)
                walk(kid, prefix + ("   " if last else "│  "))
        for i, text in enumerate(tail):
            lines.append(f"{prefix}{'└─' if i == len(tail) - 1 else '├─'} {text}")

    walk(root, "")
    return lines, seen


def _safe(nid: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", nid)


def to_mermaid(g: dict) -> str:
    out = ["graph LR"]
    for n in g["nodes"]:
        label = f"{n['type']}: {n['label']}".replace('"', "'")
        out.append(f'  {_safe(n["id"])}["{label}"]')
    out.extend(f"  {_safe(e['from'])} -->|{e['type']}| {_safe(e['to'])}" for e in g["edges"])
    for i, o in enumerate(g.get("omitted", ())):
        out.append(f'  more_{i}["… and {o["total"] - o["shown"]:,} more {o["type"]}(s)"]')
        out.append(f"  {_safe(o['node'])} -.->|{o['edge']}| more_{i}")
    return "\n".join(out)


def to_dot(g: dict) -> str:
    shapes = {"model": "box3d", "run": "ellipse", "dataset": "folder", "config": "note", "commit": "cds",
              "evaluation": "box", "alias": "tag"}
    out = ["digraph lineage {", "  rankdir=LR;"]
    for n in g["nodes"]:
        label = f"{n['type']}\\n{n['label']}".replace('"', "'")
        out.append(f'  "{n["id"]}" [label="{label}", shape={shapes.get(n["type"], "ellipse")}];')
    out.extend(f'  "{e["from"]}" -> "{e["to"]}" [label="{e["type"]}"];' for e in g["edges"])
    for i, o in enumerate(g.get("omitted", ())):
        out.append(f'  "more:{i}" [label="… and {o["total"] - o["shown"]:,} more {o["type"]}(s)", shape=plaintext];')
        out.append(f'  "{o["node"]}" -> "more:{i}" [label="{o["edge"]}", style=dashed];')
    out.append("}")
    return "\n".join(out)


# --------------------------------------------------------------------------- why


def _num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def why(rep, out) -> None:
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
        t.add_row(label, _num(d["a"]), _num(d["b"]), f"[{style}]{delta:+.4f}[/{style}]" if delta is not None and style else _num(delta))

    for k in ("AP", "AP50", "AP75", "mIoU", "pixel_accuracy", "accuracy", "macro_F1"):  # every task's headline
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
    _why_code(rep.code, out)
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
    out.print("environment: " + ("changed" if env.get("changed") else env.get("note", "same")))
    pk = env.get("packages") or {}
    for k, v in (pk.get("changed") or {}).items():
        out.print(f"   {k}: {v[0]} → {v[1]}", markup=False)
    for k, v in (pk.get("added") or {}).items():
        out.print(f"   + {k} {v}", markup=False)
    for k, v in (pk.get("removed") or {}).items():
        out.print(f"   - {k} {v}", markup=False)
    if rep.rollback_command:
        out.print(f"\n[red]{rep.b['ref']} holds '{rep.protected_alias}' and regressed.[/red] Roll back with:\n  {rep.rollback_command}")


def _why_code(c: dict, out) -> None:
    out.print(f"\ncode: {_num(c.get('a'))[:10]} → {_num(c.get('b'))[:10]}" + ("" if c.get("changed") else " (same commit)"))
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


# --------------------------------------------------------------------------- reproduce

_MATCH_LABELS = {"metric": "run metrics within ±{tol}", "evaluation": "evaluation metrics within ±{tol}",
                 "artifact": "artifacts byte-identical", "bundle": "registered weights byte-identical"}


def reproduced(rep, out) -> None:
    line(out, f"\nreproduce {rep.target} (original run {rep.original_run}"
              + (f", rebuilt as {rep.new_run})" if rep.new_run else ")"))
    for r in rep.reasons:
        line(out, f"  ✗ {r}", style="red")
    for d in rep.differences:
        delta = f" (Δ {d['delta']:+.4f} > {rep.tolerance})" if d.get("delta") is not None else ""
        line(out, f"  ✗ {d['kind']} {d['name']}: expected {d['expected']}, got {d['got']}{delta}", style="red")
    by_kind: dict[str, list] = {}
    for m in rep.matches:
        by_kind.setdefault(m["kind"], []).append(m)
    for kind, items in by_kind.items():
        worst = max((abs(m["delta"]) for m in items if m.get("delta") is not None), default=None)
        names = ", ".join(m["name"] for m in items[:6]) + (f" … and {len(items) - 6} more" if len(items) > 6 else "")
        line(out, f"  ✓ {len(items)} {_MATCH_LABELS.get(kind, kind).format(tol=rep.tolerance)}"
                  + (f" (largest Δ {worst:.4g})" if worst is not None else "") + f": {names}")
    line(out, rep.verdict, style=f"{'green' if rep.passed else 'red'} bold")
