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


_HANGING = ("evaluated", "alias", "reproduced_by")  # hang under their model whichever way we walk


def to_text(g: dict) -> str:
    """A tree from the root: upstream lists inputs under each node, downstream lists outputs.

    With ``--both`` the root is printed once, then an ``upstream:`` tree and a ``downstream:`` tree.
    """
    nodes = {n["id"]: n for n in g["nodes"]}
    if g["direction"] != "both":
        lines, seen = _tree(nodes, g["root"], g["edges"], up=g["direction"] == "up")
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
    down_lines, seen_down = _tree(nodes, g["root"], down_edges, up=False)
    lines = [up_lines[0], "upstream:" if len(up_lines) > 1 else "upstream: (nothing recorded)"]
    lines += ["  " + ln for ln in up_lines[1:]]
    lines.append("downstream:" if len(down_lines) > 1 else "downstream: (nothing depends on it)")
    lines += ["  " + ln for ln in down_lines[1:]]
    lines += [_describe(n) for n in g["nodes"] if n["id"] not in seen_up | seen_down]
    return "\n".join(lines)


def _tree(nodes: dict, root: str, edges: list[dict], *, up: bool) -> tuple[list[str], set]:
    children: dict[str, list[tuple[str, str]]] = {}
    for e in edges:
        forward = not up or e["type"] in _HANGING
        parent, child = (e["from"], e["to"]) if forward else (e["to"], e["from"])
        children.setdefault(parent, []).append((child, e["type"]))
    lines = [_describe(nodes[root])]
    seen = {root}

    def walk(nid: str, prefix: str) -> None:
        kids = children.get(nid, [])
        for i, (kid, etype) in enumerate(kids):
            last = i == len(kids) - 1
            lines.append(f"{prefix}{'└─' if last else '├─'} [{etype}] {_describe(nodes[kid])}")
            if kid not in seen:
                seen.add(kid)
                walk(kid, prefix + ("   " if last else "│  "))

    walk(root, "")
    return lines, seen


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
