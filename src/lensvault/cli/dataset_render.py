"""Human output of `dataset show`, `diff`, `check` and validation findings.

The rule: a person reads the facts the JSON has. Counts are always complete; a list longer
than ``SHOW`` prints its first items and then says how many more there are (and where the
rest is: ``--json``). Tables fold long names onto the next line instead of cutting them.
"""

from __future__ import annotations

import click

from lensvault.cli._common import human_bytes, print_table, table

SHOW = 20  # items of one list shown before "… and N more"
_SPLIT_ORDER = ("train", "val", "valid", "validation", "test")


def more(n_total: int, n_shown: int, what: str, indent: str = "  ") -> None:
    if n_total > n_shown:
        click.echo(f"{indent}… and {n_total - n_shown} more {what} (all of them: --json)")


def split_names(names) -> list[str]:
    rank = {s: i for i, s in enumerate(_SPLIT_ORDER)}
    return sorted(names, key=lambda s: (rank.get(s, len(rank)), s == "unassigned", s))


def _fmt_box(b) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]" if b else "-"


# --------------------------------------------------------------------------- findings


def findings_facts(source: dict, counts: dict) -> dict:
    """The findings a manifest keeps, how many there are in all and per code (versions written
    before the counts per code were recorded count the ones they kept)."""
    items = source.get("findings") or []
    return {"findings": items, "findings_total": source.get("findings_total", counts.get("findings", len(items))),
            "findings_by_code": source.get("findings_by_code") or _by_code(items)}


def _by_code(items: list[dict]) -> dict[str, int]:
    by_code: dict[str, int] = {}
    for f in items:
        by_code[f["code"]] = by_code.get(f["code"], 0) + 1
    return dict(sorted(by_code.items()))


def findings(items: list[dict], ref: str, *, total: int | None = None, by_code: dict | None = None,
             indent: str = "  ") -> None:
    """Validation findings: counts by code (``by_code``: of all of them, as the manifest records),
    then the first SHOW with file and place."""
    total = len(items) if total is None else total
    if not total:
        return
    by_code = by_code or _by_code(items)
    click.echo(click.style(f"{indent}{total} validation finding(s): "
                           + ", ".join(f"{c} {n}" for c, n in sorted(by_code.items())), fg="yellow"))
    for f in items[:SHOW]:
        loc = ", ".join(x for x in (f.get("file"), f.get("location")) if x)
        click.echo(f"{indent}  - {f['code']}: {f['message']}" + (f" ({loc})" if loc else ""))
    if total > min(len(items), SHOW):
        kept = f" ({len(items)} kept in the manifest)" if len(items) < total else ""
        click.echo(f"{indent}  … and {total - min(len(items), SHOW)} more{kept}: "
                   f"`lensvault dataset show {ref} --json` (source.findings)")


# --------------------------------------------------------------------------- show


def show(info: dict) -> None:
    click.echo(click.style(info["ref"], bold=True) + f"  snapshot {info['snapshot_id']}")
    counts = info.get("counts") or {}
    click.echo(f"  files: {info['files']}  size: {human_bytes(info['bytes'])}  "
               "media: " + (", ".join(f"{k} {v}" for k, v in info["media_types"].items()) or "-"))
    click.echo(f"  parent: {info['parent'] or '-'}" + (f"  bump: {info['bump']}" if info.get("bump") else "")
               + ("  (forced)" if info.get("forced") else "")
               + f"  created: {info['created_at'][:19].replace('T', ' ')} by {info['created_by']}")
    if info["notes"]:
        click.echo(f"  notes: {info['notes']}")
    changelog = info.get("changelog")
    if isinstance(changelog, dict) and changelog.get("summary"):
        click.echo(f"  changes: {changelog['summary']}")
    if "images" in info:
        _vision(info, counts)
    click.echo(f"  manifest: {info['manifest_path']}")


def _vision(info: dict, counts: dict) -> None:
    source = info.get("source") or {}
    if source.get("description"):
        click.echo(f"  source: {source['description']}")
    annotated = counts.get("annotated_images")
    click.echo(f"  images: {info['images']}" + (f" ({annotated} annotated)" if annotated is not None else "")
               + f"  annotations: {info['annotations']}" + (f" ({', '.join(info['kinds'])})" if info["kinds"] else ""))
    splits = info["splits"]
    spec = info.get("split_spec") or {}
    how = []
    if spec.get("method"):
        how.append({"hash": "assigned by hash", "source": "from the source"}.get(spec["method"], spec["method"]))
    if spec.get("seed") is not None:
        how.append(f"seed {spec['seed']}")
    if spec.get("ratios"):
        ratios = spec["ratios"]
        how.append(", ".join(f"{s} {ratios[s] * 100:g}%" for s in split_names(ratios)))
    if spec.get("group_by"):
        how.append(f"grouped by {spec['group_by']}")
    order = split_names(splits)
    click.echo("  splits: " + (", ".join(f"{s} {splits[s]}" for s in order) or "none")
               + (f"  ({', '.join(how)})" if how else ""))
    per_class = info["per_class"]
    ids = dict(zip(info["classes"], info.get("class_ids") or []))
    click.echo(f"  classes: {len(info['classes'])}")
    cols = [s for s in order if any(s in c for c in per_class.values())]
    t = table("id", "class", *cols, "total", right=("id", *cols, "total"))
    for name in [*info["classes"], *[n for n in per_class if n not in ids]]:
        c = per_class.get(name, {})
        t.add_row(str(ids.get(name, "?")), name, *[str(c.get(s, 0)) for s in cols], str(c.get("total", 0)))
    print_table(t, indent=4)
    findings(source.get("findings") or [], info["ref"], total=counts.get("findings"),
             by_code=source.get("findings_by_code"))
    skipped = source.get("skipped_images") or []
    if skipped:
        click.echo(f"  skipped images: {len(skipped)} (--on-bad-image skip; their files are kept, not as images)")
        for x in skipped[:SHOW]:
            click.echo(f"    {x['path']}: {x['reason']}")
        more(len(skipped), SHOW, "skipped image(s)", indent="    ")
    embedded = source.get("embedded_images") or []
    if embedded:
        click.echo(f"  images stored from inside labelme files (imageData): {len(embedded)}")
        for p in embedded[:SHOW]:
            click.echo(f"    {p}")
        more(len(embedded), SHOW, "embedded image(s)", indent="    ")


# --------------------------------------------------------------------------- diff


def file_diff(d) -> None:
    for label, items, mark, colour in (("added", d.added, "+", "green"), ("removed", d.removed, "-", "red"),
                                       ("modified", d.modified, "~", "yellow")):
        for p in items[:SHOW * 5]:
            click.echo(click.style(f"{mark} {p}", fg=colour))
        more(len(items), SHOW * 5, f"{label} file(s)", indent="")
    for src, dst in d.renamed[:SHOW * 5]:
        click.echo(click.style(f"→ {src} -> {dst}", fg="cyan"))
    more(len(d.renamed), SHOW * 5, "renamed file(s)", indent="")
    click.echo(d.summary() + f"; size {human_bytes(d.bytes['a'])} → {human_bytes(d.bytes['b'])}")


def annotation_diff(ad) -> None:
    click.echo("")
    click.echo(ad.summary())
    _box_changes(ad)
    _images(ad.images)
    _classes(ad)
    _split_moves(ad)


def _describe_change(c) -> str:
    if c.change == "added":
        return f"+ added      {c.new_class} {_fmt_box(c.new_bbox)}"
    if c.change == "removed":
        return f"- removed    {c.old_class} {_fmt_box(c.old_bbox)}"
    iou = f" (IoU {c.iou:.2f})" if c.iou is not None else ""
    if c.change == "moved":
        return f"~ moved      {c.new_class} {_fmt_box(c.old_bbox)} → {_fmt_box(c.new_bbox)}{iou}"
    if c.change == "relabeled":
        return f"~ relabeled  {c.old_class} → {c.new_class} {_fmt_box(c.new_bbox)}{iou}"
    what = ", ".join(f"{k} {v[0]!r} → {v[1]!r}" for k, v in c.attributes.items()) or ", ".join(c.changed)
    return f"~ changed    {c.new_class} {_fmt_box(c.new_bbox)}: {what}"


def _box_changes(ad) -> None:
    ann = ad.annotations
    if not ann.changed_boxes:
        return
    by_image: dict[str, list] = {}
    for cat in ann.CATEGORIES:
        for c in getattr(ann, cat):
            by_image.setdefault(c.image, []).append(c)
    counts = ", ".join(f"{len(getattr(ann, c))} {c.replace('_', ' ')}" for c in ann.CATEGORIES if getattr(ann, c))
    click.echo(f"\nboxes: {ann.changed_boxes} changed in {len(by_image)} image(s) ({counts}); "
               f"{ann.unchanged} unchanged")
    for image in sorted(by_image)[:SHOW]:
        changes = sorted(by_image[image], key=lambda c: (c.new_index if c.new_index is not None else -1,
                                                         c.old_index if c.old_index is not None else -1))
        click.echo(f"  {image}")
        for c in changes[:SHOW]:
            click.echo(f"    {_describe_change(c)}")
        more(len(changes), SHOW, "box change(s) in this image", indent="    ")
    more(len(by_image), SHOW, "image(s) with box changes")


def _images(im) -> None:
    lists = (("added", [p for p in im.added]), ("removed", list(im.removed)), ("re-encoded", list(im.reencoded)),
             ("resized", [f"{r['path']} {r['old'][0]}×{r['old'][1]} → {r['new'][0]}×{r['new'][1]}"
                          for r in im.resized]),
             ("re-oriented", list(im.reoriented)), ("re-tagged", list(im.retagged)))
    if not any(items for _, items in lists):
        click.echo(f"\nimages: {im.count_a} → {im.count_b}, none added, removed or changed")
        return
    click.echo(f"\nimages: {im.count_a} → {im.count_b}")
    for label, items in lists:
        if not items:
            continue
        by_split = {"added": im.added_by_split, "removed": im.removed_by_split}.get(label) or {}
        split_text = f" ({', '.join(f'{s} {n}' for s, n in by_split.items())})" if by_split else ""
        click.echo(f"  {label}: {len(items)}{split_text}")
        for p in items[:SHOW]:
            click.echo(f"    {p}")
        more(len(items), SHOW, f"{label} image(s)", indent="    ")


def _classes(ad) -> None:
    c = ad.classes
    if c.changed:
        click.echo("\nclass map changed:")
        for x in c.added:
            click.echo(f"  + {x['name']} (id {x['id']})")
        for x in c.removed:
            click.echo(f"  - {x['name']} (id {x['id']})")
        for x in c.renamed:
            click.echo(f"  ~ id {x['id']}: {x['old']} → {x['new']}")
        for x in c.reindexed:
            click.echo(f"  ~ {x['name']}: id {x['old_id']} → {x['new_id']}")
    else:
        click.echo("\nclass map unchanged")
    if ad.per_class:
        t = table("class", ad.a, ad.b, "Δ", right=(ad.a, ad.b, "Δ"))
        for name, e in ad.per_class.items():
            t.add_row(name, str(e["a"]), str(e["b"]), f"{e['delta']:+d}" if e["delta"] else "0")
        print_table(t, indent=2)


def _split_moves(ad) -> None:
    if not ad.split_moves:
        return
    counts = ", ".join(f"{k} {n}" for k, n in ad.split_move_counts.items())
    click.echo(f"\nsplit moves: {len(ad.split_moves)} ({counts})")
    for m in ad.split_moves[:SHOW]:
        click.echo(f"  {m.path}: {m.from_split or '(none)'} → {m.to_split or '(none)'}")
    more(len(ad.split_moves), SHOW, "split move(s)")


# --------------------------------------------------------------------------- check


def check(report) -> None:
    click.echo(report.summary())
    exact = report.exact
    if exact:
        click.echo(f"\nexact duplicates: {len(exact)} group(s) of identical bytes "
                   f"({len(report.cross_split_exact)} across splits)")
        for g in exact[:SHOW]:
            cross = len(set(g["splits"])) > 1
            click.echo(("  ! " if cross else "    ") + f"sha256 {g['sha256'][:12]}:")
            for p, s in zip(g["paths"][:SHOW], g["splits"][:SHOW]):
                click.echo(f"      {p} ({s or 'no split'})")
            more(len(g["paths"]), SHOW, "copies", indent="      ")
        more(len(exact), SHOW, "duplicate group(s)")
    if report.near:
        click.echo(f"\nnear duplicates: {len(report.near)} pair(s) within {report.near_threshold} bits "
                   f"({len(report.cross_split_near)} across splits)")
        for n in report.near[:SHOW]:
            cross = n.split_a != n.split_b
            click.echo(("  ! " if cross else "    ") + f"{n.a} ({n.split_a or 'no split'}) ~ {n.b} "
                       f"({n.split_b or 'no split'}), {n.distance} bit(s) apart")
        more(len(report.near), SHOW, "near-duplicate pair(s)")
    if report.split_moves:
        click.echo(f"\nsplit moves since the parent: {len(report.split_moves)}")
        for m in report.split_moves[:SHOW]:
            click.echo(f"  {m['path']}: {m['from'] or '(none)'} → {m['to'] or '(none)'}"
                       + (" (same bytes, another name)" if m.get("by") == "content" else ""))
        more(len(report.split_moves), SHOW, "split move(s)")
    if report.unreadable:
        click.echo(f"\nunreadable images: {len(report.unreadable)}")
        for u in report.unreadable[:SHOW]:
            click.echo(f"  {u['path']}: {u['error']}")
        more(len(report.unreadable), SHOW, "unreadable image(s)")
    if exact or report.near:
        click.echo("\n(! = the copies are in different splits)")
