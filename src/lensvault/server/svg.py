"""Inline SVG for the pages: images with their annotations drawn over them, bar and line
charts, and the lineage graph. Plain strings built with escaping, no JavaScript needed."""

from __future__ import annotations

from html import escape

__all__ = ["CHANGE_COLOURS", "bars", "class_colour", "diff_overlay", "grouped_bars", "image_overlay", "lineage_graph",
           "lines"]

PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#fabed4", "#469990", "#dcbeff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075")
# The diff page's legend: one colour per kind of change, distinct from each other and from grey.
CHANGE_COLOURS = {"unchanged": "#9e9e9e", "added": "#00c853", "removed": "#ff1744", "moved": "#ff9100",
                  "relabeled": "#d500f9", "attributes_changed": "#2979ff"}


def class_colour(class_id: int) -> str:
    return PALETTE[class_id % len(PALETTE)]


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _frame(image: dict, src: str, width: int, extra_class: str = "") -> str:
    w, h = max(1, int(image["width"])), max(1, int(image["height"]))
    height = round(width * h / w)
    stroke = _num(max(w, h) / 110)
    return (f'<svg class="overlay {extra_class}" viewBox="0 0 {w} {h}" width="{width}" height="{height}" '
            f'style="--stroke:{stroke}" data-image="{escape(image["path"])}" role="img">'
            f'<image href="{escape(src)}" x="0" y="0" width="{w}" height="{h}" preserveAspectRatio="none"/>')


def _shape(a: dict, cls: str, colour: str, label: str, *, dashed: bool = False) -> str:
    x, y, w, h = a["bbox"] if "bbox" in a else a["box"]
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    title = f"<title>{escape(label)}</title>"
    attrs = (f'class="{cls}" data-class="{escape(str(a.get("class", "")))}" data-index="{a.get("index", "")}" '
             f'stroke="{colour}" fill="{colour}" fill-opacity="0.08"{dash}')
    poly = a.get("polygon")
    if poly:
        pts = " ".join(" ".join(f"{_num(p[i])},{_num(p[i + 1])}" for i in range(0, len(p) - 1, 2)) for p in poly)
        return f'<polygon {attrs} points="{pts}">{title}</polygon>'
    return f'<rect {attrs} x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}">{title}</rect>'


def image_overlay(image: dict, src: str, width: int = 220) -> str:
    """The image with every annotation drawn in its class's colour (``rect.box`` / ``polygon.box``)."""
    out = [_frame(image, src, width)]
    out.extend(_shape(a, "box", class_colour(a["class_id"]), f'{a["class"]} #{a["index"]}')
               for a in image["annotations"])
    out.append("</svg>")
    return "".join(out)


def diff_overlay(image: dict, src: str, marks: list[dict], *, side: str, width: int = 360) -> str:
    """One side of a changed image: boxes nothing touched in grey, changed ones in their change's
    colour. ``marks``: {bbox, change, label, index} on this side (``side``: before or after)."""
    out = [_frame(image, src, width, f"diff-{side}")]
    marked = {m["index"] for m in marks if m.get("index") is not None}
    out.extend(_shape(a, "box box-unchanged", CHANGE_COLOURS["unchanged"], f'{a["class"]} (unchanged)')
               for a in image["annotations"] if a["index"] not in marked)
    iw = int(image["width"])
    size = max(iw, int(image["height"])) / 22
    for m in marks:
        out.append(_shape({"bbox": m["bbox"], "class": m["label"], "index": m.get("index")},
                          f"box box-{m['change']}" + (" ghost" if m.get("ghost") else ""),
                          CHANGE_COLOURS[m["change"]], m["label"], dashed=bool(m.get("ghost"))))
        if not m.get("ghost"):  # the change named on the picture, not only in a tooltip
            x, y = m["bbox"][0], m["bbox"][1]
            # Right-aligned on the right half, so the label stays on the picture.
            anchor = ' text-anchor="end"' if x > iw * 0.5 else ""
            x = x + m["bbox"][2] if anchor else x
            out.append(f'<text class="mark" x="{_num(x)}" y="{_num(max(size, y - size / 3))}"{anchor} '
                       f'font-size="{_num(size)}" fill="{CHANGE_COLOURS[m["change"]]}" stroke="#000" '
                       f'stroke-width="{_num(size / 14)}" paint-order="stroke">{escape(m["short"])}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(items: list[tuple[str, float]], *, width: int = 420, colour_of=None, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), longest = full width."""
    if not items:
        return '<p class="muted">nothing to chart</p>'
    top = max(v for _, v in items) or 1
    row, label_w = 22, 140
    h = row * len(items) + 4
    out = [f'<svg class="bars" viewBox="0 0 {width} {h}" width="{width}" height="{h}">']
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(1.0, (width - label_w - 60) * value / top)
        colour = colour_of(i, label) if colour_of else "#4363d8"
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(str(label))}</text>'
                   f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{_num(w)}" height="{row - 6}" fill="{colour}">'
                   f'<title>{escape(str(label))}: {value}{unit}</title></rect>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{value:g}{unit}</text>')
    out.append("</svg>")
    return "".join(out)


def grouped_bars(rows: list[tuple[str, list[float | None]]], names: list[str], *, width: int = 520) -> str:
    """One group of horizontal bars per row label (a class, a slice), one bar per series (a run)."""
    values = [v for _, vs in rows for v in vs if isinstance(v, (int, float))]
    if not values:
        return '<p class="muted">nothing to chart</p>'
    top = max(values) or 1
    bar, label_w = 12, 140
    group = bar * len(names) + 8
    h = group * len(rows) + 18 * len(names) + 8
    out = [f'<svg class="grouped-bars" viewBox="0 0 {width} {h}" width="{width}" height="{h}">']
    for i, (label, vs) in enumerate(rows):
        y0 = i * group + 4
        out.append(f'<text x="{label_w - 6}" y="{y0 + group / 2 + 2:.0f}" text-anchor="end">{escape(str(label))}</text>')
        for k, v in enumerate(vs):
            if not isinstance(v, (int, float)):
                continue
            w = max(1.0, (width - label_w - 60) * v / top)
            out.append(f'<rect class="bar" data-series="{escape(names[k])}" x="{label_w}" y="{y0 + k * bar}" '
                       f'width="{_num(w)}" height="{bar - 2}" fill="{PALETTE[k % len(PALETTE)]}">'
                       f'<title>{escape(names[k])}: {v:.4g}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y0 + k * bar + bar - 3}" font-size="10">{v:.3g}</text>')
    for k, name in enumerate(names):
        y = group * len(rows) + 14 + 18 * k
        out.append(f'<rect x="{label_w}" y="{y - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   f'<text x="{label_w + 16}" y="{y}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def lines(series: dict[str, list[tuple[float, float]]], *, title: str = "", width: int = 520, height: int = 240) -> str:
    """One polyline per series over shared axes (step → value), with a legend."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f'<p class="muted">no points for {escape(title)}</p>'
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    left, right, top, bottom = 56, 10, 24, 28
    plot_height = height
    height = plot_height + 16 * len(series)  # the legend goes under the plot

    def sx(x):
        return left + (width - left - right) * (x - x0) / (x1 - x0)

    def sy(y):
        return plot_height - bottom - (plot_height - top - bottom) * (y - y0) / (y1 - y0)

    out = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'data-metric="{escape(title)}"><text x="{left}" y="14" class="title">{escape(title)}</text>'),
           (f'<line x1="{left}" y1="{plot_height - bottom}" x2="{width - right}" y2="{plot_height - bottom}" '
            f'class="axis"/>'),
           f'<line x1="{left}" y1="{top}" x2="{left}" y2="{plot_height - bottom}" class="axis"/>',
           f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{y1:.3g}</text>',
           f'<text x="{left - 4}" y="{plot_height - bottom}" text-anchor="end">{y0:.3g}</text>',
           f'<text x="{left}" y="{plot_height - 8}">{x0:g}</text>',
           f'<text x="{width - right}" y="{plot_height - 8}" text-anchor="end">step {x1:g}</text>']
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline class="series" data-series="{escape(name)}" points="{path}" fill="none" '
                   f'stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></polyline>')
        out.append(f'<rect x="{left}" y="{plot_height + 16 * i}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + 16}" y="{plot_height + 16 * i + 10}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


_NODE_COLOURS = {"model": "#4363d8", "run": "#f58231", "dataset": "#3cb44b", "config": "#911eb4",
                 "evaluation": "#469990", "alias": "#e6194b"}


def lineage_graph(graph: dict, link_of) -> str:
    """The lineage graph in layers (a node one step further from the sources sits one column
    right), each node a link (``link_of(node)`` → URL or None)."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    preds: dict[str, set[str]] = {nid: set() for nid in nodes}
    for e in graph["edges"]:
        if e["from"] in nodes and e["to"] in nodes:
            preds[e["to"]].add(e["from"])
    layer: dict[str, int] = {}

    def depth(nid: str, seen=()) -> int:
        if nid not in layer:
            layer[nid] = 0 if not preds[nid] or nid in seen else 1 + max(
                depth(p, (*seen, nid)) for p in preds[nid])
        return layer[nid]

    for nid in nodes:
        depth(nid)
    columns: dict[int, list[str]] = {}
    for nid in sorted(nodes, key=lambda n: (layer[n], nodes[n]["type"], nodes[n]["label"])):
        columns.setdefault(layer[nid], []).append(nid)
    bw, bh, gx, gy = 190, 40, 70, 18
    pos = {nid: (20 + c * (bw + gx), 20 + r * (bh + gy)) for c, ids in columns.items() for r, nid in enumerate(ids)}
    width = 40 + (max(columns) + 1) * (bw + gx) if columns else 200
    height = 40 + max((len(v) for v in columns.values()), default=1) * (bh + gy)
    out = [f'<svg class="lineage" viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
           ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#777"/></marker></defs>')]
    for e in graph["edges"]:
        if e["from"] in pos and e["to"] in pos:
            (x1, y1), (x2, y2) = pos[e["from"]], pos[e["to"]]
            out.append(f'<path class="edge" d="M {x1 + bw} {y1 + bh / 2} C {x1 + bw + gx / 2} {y1 + bh / 2}, '
                       f'{x2 - gx / 2} {y2 + bh / 2}, {x2} {y2 + bh / 2}" fill="none" stroke="#999" '
                       f'marker-end="url(#arrow)"><title>{escape(e["type"])}</title></path>')
    for nid, (x, y) in pos.items():
        n = nodes[nid]
        colour = _NODE_COLOURS.get(n["type"], "#555")
        root = " root" if nid == graph.get("root") else ""
        label = n["label"] if len(n["label"]) <= 26 else n["label"][:25] + "…"
        box = (f'<g class="node{root}" data-id="{escape(nid)}" data-type="{escape(n["type"])}">'
               f'<rect x="{x}" y="{y}" width="{bw}" height="{bh}" rx="6" fill="#fff" stroke="{colour}" stroke-width="2"/>'
               f'<text x="{x + 8}" y="{y + 15}" class="kind" fill="{colour}">{escape(n["type"])}</text>'
               f'<text x="{x + 8}" y="{y + 32}">{escape(label)}</text><title>{escape(n["label"])}</title></g>')
        url = link_of(n)
        out.append(f'<a href="{escape(url)}">{box}</a>' if url else box)
    out.append("</svg>")
    return "".join(out)
