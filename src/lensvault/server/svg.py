"""Inline SVG for the pages: images with their annotations drawn over them, bar and line
charts, and the lineage graph. Plain strings built with escaping, no JavaScript needed."""

from __future__ import annotations

from html import escape

from lensvault.server.formatting import short_number, text_width

__all__ = ["CHANGE_COLOURS", "bars", "class_colour", "diff_overlay", "grouped_bars", "image_overlay", "lineage_graph",
           "lines", "skeleton_edges"]

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


def _mask(image: dict, a: dict, cls: str, href: str, label: str) -> str:
    """A mask: its picture (``server.masks``: the mask in one colour, clear elsewhere) over the photo."""
    return (f'<image class="{cls}" data-class="{escape(str(a.get("class", "")))}" data-index="{a.get("index", "")}" '
            f'href="{escape(href)}" x="0" y="0" width="{int(image["width"])}" height="{int(image["height"])}" '
            f'preserveAspectRatio="none"><title>{escape(label)}</title></image>')


def skeleton_edges(skeleton: list, n: int) -> list[tuple[int, int]]:
    """The skeleton's edges as 0-based point indices. COCO numbers keypoints from 1; some tools
    (Datumaro's samples) write 0-based pairs: a 0 anywhere says so, else COCO's rule holds."""
    pairs = [(int(e[0]), int(e[1])) for e in skeleton or [] if isinstance(e, (list, tuple)) and len(e) == 2]
    base = 0 if any(0 in p for p in pairs) else 1
    return [(i - base, j - base) for i, j in pairs if 0 <= i - base < n and 0 <= j - base < n]


def _keypoints(image: dict, a: dict, colour: str) -> str:
    """Keypoints (x, y, visibility triples) as dots, the skeleton's bones as lines between the
    labelled ones; a point labelled but not visible (v = 1) is drawn hollow, an unlabelled one
    (v = 0) not at all."""
    kp = a.get("keypoints") or []
    pts = [(kp[i], kp[i + 1], kp[i + 2]) for i in range(0, len(kp) - 2, 3)]
    r = max(int(image["width"]), int(image["height"])) / 90
    out = [f'<g class="keypoints" data-class="{escape(str(a.get("class", "")))}" data-index="{a.get("index", "")}">']
    for i, j in skeleton_edges(a.get("skeleton") or [], len(pts)):
        (x1, y1, v1), (x2, y2, v2) = pts[i], pts[j]
        if v1 > 0 and v2 > 0:
            out.append(f'<line class="bone" x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" '
                       f'stroke="{colour}" stroke-width="{_num(r / 2)}"/>')
    for k, (x, y, v) in enumerate(pts):
        if v > 0:
            fill = colour if v >= 2 else "none"
            out.append(f'<circle class="keypoint" data-point="{k}" data-v="{_num(v)}" cx="{_num(x)}" cy="{_num(y)}" '
                       f'r="{_num(r)}" fill="{fill}" stroke="{colour}" stroke-width="{_num(r / 3)}"/>')
    out.append("</g>")
    return "".join(out)


def _annotation(image: dict, a: dict, cls: str, colour: str, label: str, mask_href) -> str:
    """One annotation as drawn: its mask's picture (when the page can link one) or its polygon
    or box, and its keypoints with their skeleton."""
    if a.get("kind") in ("rle", "mask") and mask_href is not None:
        drawn = _mask(image, a, f"{cls} mask", mask_href(a["index"]), label)
    else:
        drawn = _shape(a, cls, colour, label)
    return drawn + (_keypoints(image, a, colour) if a.get("keypoints") else "")


def image_overlay(image: dict, src: str, width: int = 220, mask_src=None) -> str:
    """The image with every annotation drawn in its class's colour (``rect.box`` / ``polygon.box``
    / ``image.box.mask``, keypoints in ``g.keypoints``). ``mask_src(index, tint)``: the URL of a
    mask's picture (``server.masks``); without it a mask is drawn as its box."""
    out = [_frame(image, src, width)]
    href = (lambda i: mask_src(i, "class")) if mask_src is not None else None
    out.extend(_annotation(image, a, "box", class_colour(a["class_id"]), f'{a["class"]} #{a["index"]}', href)
               for a in image["annotations"])
    out.append("</svg>")
    return "".join(out)


def diff_overlay(image: dict, src: str, marks: list[dict], *, side: str, width: int = 360, mask_src=None) -> str:
    """One side of a changed image: annotations nothing touched in grey, changed ones in their
    change's colour (masks tinted so, keypoints drawn so). ``marks``: {bbox, change, label, index}
    on this side (``side``: before or after)."""
    out = [_frame(image, src, width, f"diff-{side}")]
    marked = {m["index"] for m in marks if m.get("index") is not None}
    by_index = {a["index"]: a for a in image["annotations"]}
    grey = CHANGE_COLOURS["unchanged"]
    href = (lambda i: mask_src(i, "unchanged")) if mask_src is not None else None
    out.extend(_annotation(image, a, "box box-unchanged", grey, f'{a["class"]} (unchanged)', href)
               for a in image["annotations"] if a["index"] not in marked)
    iw = int(image["width"])
    size = max(iw, int(image["height"])) / 22
    for m in marks:
        colour = CHANGE_COLOURS[m["change"]]
        shown = by_index.get(m.get("index")) if not m.get("ghost") else None
        if shown is not None and shown.get("kind") in ("rle", "mask") and mask_src is not None:
            out.append(_mask(image, shown, f"mask mask-{m['change']}", mask_src(shown["index"], m["change"]),
                             m["label"]))
        out.append(_shape({"bbox": m["bbox"], "class": m["label"], "index": m.get("index")},
                          f"box box-{m['change']}" + (" ghost" if m.get("ghost") else ""),
                          colour, m["label"], dashed=bool(m.get("ghost"))))
        if shown is not None and shown.get("keypoints"):
            out.append(_keypoints(image, shown, colour))
        if not m.get("ghost"):  # the change named on the picture, not only in a tooltip
            out.append(_mark_label(m, iw, int(image["height"]), size, colour))
    out.append("</svg>")
    return "".join(out)


def _fit(text: str, room: float, font_px: float = 12) -> str:
    """``text``, cut with an ellipsis to fit ``room`` pixels (the whole text goes in a title)."""
    if text_width(text, font_px) <= room:
        return text
    keep = max(1, int(room / (0.62 * font_px)) - 1)
    return text[:keep] + "…"


def _text(attrs: str, shown: str, full: str | None = None) -> str:
    """A text element; when it shows less than ``full`` (cut, or rounded), the whole of it is
    the title of a group around it (a title inside the text would join its text content)."""
    drawn = f"<text {attrs}>{escape(shown)}</text>"
    return f"<g><title>{escape(full)}</title>{drawn}</g>" if full is not None and full != shown else drawn


def _label_room(labels, *, least: float = 40, most: float = 200) -> float:
    """The width the longest label needs (within bounds): the space left of the bars."""
    return min(most, max(least, 12 + max((text_width(str(x)) for x in labels), default=0)))


def _mark_label(m: dict, iw: int, ih: int, size: float, colour: str) -> str:
    """The change's name over its box, kept on the picture: smaller when the picture is narrow,
    moved left when it would run past the right edge, below the box's top when it is at the top."""
    text = m["short"]
    font = min(size, 0.95 * iw / (0.62 * max(1, len(text))))
    x = min(max(0.0, m["bbox"][0]), max(0.0, iw - text_width(text, font)))
    y = min(max(font, m["bbox"][1] - font / 3), ih - font / 4)
    # The size as a style: the pages' stylesheet sets every SVG text's font-size, which beats an attribute.
    return (f'<text class="mark" x="{_num(x)}" y="{_num(y)}" style="font-size:{_num(font)}px" fill="{colour}" '
            f'stroke="#000" stroke-width="{_num(font / 14)}" paint-order="stroke">{escape(text)}</text>')


def bars(items: list[tuple[str, float]], *, width: int = 420, colour_of=None, unit: str = "") -> str:
    """Horizontal bars, one per (label, value), longest = full width; labels and values sized
    so that none runs past the chart's edge."""
    if not items:
        return '<p class="muted">nothing to chart</p>'
    top = max(v for _, v in items) or 1
    row = 22
    label_w = _label_room([label for label, _ in items])
    value_w = 8 + max(text_width(f"{short_number(v)}{unit}") for _, v in items)
    h = row * len(items) + 4
    out = [f'<svg class="bars" viewBox="0 0 {width} {h}" width="{width}" height="{h}">']
    for i, (label, value) in enumerate(items):
        y = i * row + 2
        w = max(1.0, (width - label_w - value_w) * value / top)
        colour = colour_of(i, label) if colour_of else "#4363d8"
        out.append(_text(f'x="{_num(label_w - 6)}" y="{y + 15}" text-anchor="end"', _fit(str(label), label_w - 8),
                         str(label)) +
                   f'<rect class="bar" x="{_num(label_w)}" y="{y + 3}" width="{_num(w)}" height="{row - 6}" fill="{colour}">'
                   f'<title>{escape(str(label))}: {value}{unit}</title></rect>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{escape(short_number(value))}{unit}</text>')
    out.append("</svg>")
    return "".join(out)


def grouped_bars(rows: list[tuple[str, list[float | None]]], names: list[str], *, width: int = 520) -> str:
    """One group of horizontal bars per row label (a class, a slice), one bar per series (a run)."""
    values = [v for _, vs in rows for v in vs if isinstance(v, (int, float))]
    if not values:
        return '<p class="muted">nothing to chart</p>'
    top = max(values) or 1
    bar = 12
    label_w = _label_room([label for label, _ in rows])
    value_w = 8 + max(text_width(short_number(v), 10) for v in values)
    group = bar * len(names) + 8
    h = group * len(rows) + 18 * len(names) + 8
    out = [f'<svg class="grouped-bars" viewBox="0 0 {width} {h}" width="{width}" height="{h}">']
    for i, (label, vs) in enumerate(rows):
        y0 = i * group + 4
        out.append(_text(f'x="{_num(label_w - 6)}" y="{y0 + group / 2 + 2:.0f}" text-anchor="end"',
                         _fit(str(label), label_w - 8), str(label)))
        for k, v in enumerate(vs):
            if not isinstance(v, (int, float)):
                continue
            w = max(1.0, (width - label_w - value_w) * v / top)
            out.append(f'<rect class="bar" data-series="{escape(names[k])}" x="{_num(label_w)}" y="{y0 + k * bar}" '
                       f'width="{_num(w)}" height="{bar - 2}" fill="{PALETTE[k % len(PALETTE)]}">'
                       f'<title>{escape(names[k])}: {v!r}</title></rect>'
                       f'<text x="{label_w + w + 4:.1f}" y="{y0 + k * bar + bar - 3}" font-size="10">'
                       f'{escape(short_number(v))}</text>')
    for k, name in enumerate(names):
        y = group * len(rows) + 14 + 18 * k
        out.append(f'<rect x="{_num(label_w)}" y="{y - 9}" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>'
                   + _text(f'x="{_num(label_w + 16)}" y="{y}"', _fit(name, width - label_w - 20), name))
    out.append("</svg>")
    return "".join(out)


def lines(series: dict[str, list[tuple[float, float]]], *, title: str = "", width: int = 520, height: int = 240) -> str:
    """One polyline per series over shared axes (step → value), with a legend. The left margin
    is as wide as the longest value label, so no axis label is cut off."""
    pts = [p for s in series.values() for p in s]
    if not pts:
        return f'<p class="muted">no points for {escape(title)}</p>'
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    top_label, bottom_label = short_number(y1), short_number(y0)
    left = max(40.0, 10 + max(text_width(top_label), text_width(bottom_label)))
    right, top, bottom = 10, 24, 28
    plot_height = height
    height = plot_height + 16 * len(series)  # the legend goes under the plot

    def sx(x):
        return left + (width - left - right) * (x - x0) / (x1 - x0)

    def sy(y):
        return plot_height - bottom - (plot_height - top - bottom) * (y - y0) / (y1 - y0)

    out = [(f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'data-metric="{escape(title)}">' + _text('x="4" y="14" class="title"', _fit(title, width - 8), title)),
           (f'<line x1="{_num(left)}" y1="{plot_height - bottom}" x2="{width - right}" y2="{plot_height - bottom}" '
            f'class="axis"/>'),
           f'<line x1="{_num(left)}" y1="{top}" x2="{_num(left)}" y2="{plot_height - bottom}" class="axis"/>',
           _text(f'x="{_num(left - 4)}" y="{top + 4}" text-anchor="end"', top_label, repr(y1)),
           _text(f'x="{_num(left - 4)}" y="{plot_height - bottom}" text-anchor="end"', bottom_label, repr(y0)),
           f'<text x="{_num(left)}" y="{plot_height - 8}">{x0:g}</text>',
           f'<text x="{width - right}" y="{plot_height - 8}" text-anchor="end">step {x1:g}</text>']
    for i, (name, s) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(s))
        out.append(f'<polyline class="series" data-series="{escape(name)}" points="{path}" fill="none" '
                   f'stroke="{colour}" stroke-width="2"><title>{escape(name)}</title></polyline>')
        out.append(f'<rect x="{_num(left)}" y="{plot_height + 16 * i}" width="10" height="10" fill="{colour}"/>'
                   + _text(f'x="{_num(left + 16)}" y="{plot_height + 16 * i + 10}"', _fit(name, width - left - 20),
                           name))
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
