"""Lineage graphs as text (a tree), Mermaid or Graphviz DOT."""

from __future__ import annotations

import re

__all__ = ["to_dot", "to_mermaid", "to_text"]

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


def to_text(g: dict) -> str:
    """A tree from the root: upstream lists inputs under each node, downstream lists outputs."""
    nodes = {n["id"]: n for n in g["nodes"]}
    up = g["direction"] == "up"
    children: dict[str, list[tuple[str, str]]] = {}
    for e in g["edges"]:
        # Evaluations and aliases hang under their model whichever way we walk.
        forward = not up or e["type"] in ("evaluated", "alias", "reproduced_by")
        parent, child = (e["from"], e["to"]) if forward else (e["to"], e["from"])
        children.setdefault(parent, []).append((child, e["type"]))
    lines = [_describe(nodes[g["root"]])]
    seen = {g["root"]}

    def walk(nid: str, prefix: str) -> None:
        kids = children.get(nid, [])
        for i, (kid, etype) in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└─' if last else '├─'} [{etype}] {_describe(nodes[kid])}")
            if kid not in seen:
                seen.add(kid)
                walk(kid, prefix + ("   " if last else "│  "))

    walk(g["root"], "")
    others = [n for n in g["nodes"] if n["id"] not in seen]
    for n in others:  # reached from the other direction with --both
        lines.append(_describe(n))
    return "\n".join(lines)


def _safe(nid: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", nid)


def to_mermaid(g: dict) -> str:
    out = ["graph LR"]
    for n in g["nodes"]:
        label = f"{n['type']}: {n['label']}".replace('"', "'")
        out.append(f'  {_safe(n["id"])}["{label}"]')
    for e in g["edges"]:
        out.append(f"  {_safe(e['from'])} -->|{e['type']}| {_safe(e['to'])}")
    return "\n".join(out)


def to_dot(g: dict) -> str:
    shapes = {"model": "box3d", "run": "ellipse", "dataset": "folder", "config": "note", "commit": "cds",
              "evaluation": "box", "alias": "tag"}
    out = ["digraph lineage {", "  rankdir=LR;"]
    for n in g["nodes"]:
        label = f"{n['type']}\\n{n['label']}".replace('"', "'")
        out.append(f'  "{n["id"]}" [label="{label}", shape={shapes.get(n["type"], "ellipse")}];')
    for e in g["edges"]:
        out.append(f'  "{e["from"]}" -> "{e["to"]}" [label="{e["type"]}"];')
    out.append("}")
    return "\n".join(out)
