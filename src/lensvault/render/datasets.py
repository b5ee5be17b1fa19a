"""Human output of the dataset commands and ``status``.

The rule: a person reads the facts the JSON has. Counts are always complete; a list longer
than ``SHOW`` prints its first items and then says how many more there are (and where the
rest is: ``--json``). Tables fold long names onto the next line instead of cutting them.
"""

from __future__ import annotations

from lensvault.render._text import count, human_bytes, line, print_table, print_table_stream, styled, table

__all__ = ["check", "checkout", "diff", "export", "findings", "fix", "listing", "log", "show", "snapshot",
           "split_names", "status"]

SHOW = 20  # items of one list shown before "… and N more"
STATUS_SHOW = 50  # paths of each kind `status` lists
_SPLIT_ORDER = ("train", "val", "valid", "validation", "test")


def more(out, n_total: int, n_shown: int, what: str, indent: str = "  ") -> None:
    if n_total > n_shown:
        line(out, f"{indent}… and {n_total - n_shown} more {what} (all of them: --json)")


def split_names(names) -> list[str]:
    rank = {s: i for i, s in enumerate(_SPLIT_ORDER)}
    return sorted(names, key=lambda s: (rank.get(s, len(rank)), s == "unassigned", s))


def _fmt_box(b) -> str:
    return "[" + ", ".join(f"{v:g}" for v in b) + "]" if b else "-"


def _when(iso: str) -> str:
    return iso[:19].replace("T", " ")


# --------------------------------------------------------------------------- writes


def snapshot(result, out, err) -> None:
    """``dataset snapshot``; what the write found damaged on the way goes to stderr (``err``)."""
    d = result.to_dict()
    line(out, f"Created {d['ref']}: {count(d['files'], 'file')}, {human_bytes(d['bytes'])}, snapshot {d['snapshot_id'][:12]}"
              + (f" (parent {d['parent']}" + (f", {d['bump']} bump)" if d["bump"] else ")") if d["parent"] else ""))
    if "images" in d:
        if d["source_description"]:
            line(out, f"  found: {d['source_description']}")
        line(out, f"  {count(d['images'], 'image')}, {count(d['annotations'], 'annotation')}, classes: {', '.join(d['classes'])}")
        splits = d["splits"]
        line(out, "  splits: " + (", ".join(f"{k} {splits[k]}" for k in split_names(splits)) or "none"))
        findings(out, d["findings"], d["ref"], total=d["findings_total"], by_code=d["findings_by_code"])
        if d["skipped_images"]:
            line(out, f"  skipped images: {len(d['skipped_images'])} (`lensvault dataset show {d['ref']}` lists them)")
    _changes(out, d["changelog"])
    if d["forced"]:
        changelog = d["changelog"]
        line(out, f"  forced: {changelog.get('forced') if changelog else 'version below the rule'}", style="yellow")
    line(out, f"  manifest: {d['manifest_path']}")
    _git_add(out, d["git_add"])
    for w in d["warnings"]:
        line(err, f"warning: {w['what']}", style="yellow")
        line(err, f"  fix: {w['fix']}")


def fix(result, out) -> None:
    d = result.to_dict()
    line(out, f"Created {d['ref']} from {d['parent']} ({d['bump']} bump), snapshot {d['snapshot_id'][:12]}")
    _changes(out, d["changelog"])
    line(out, f"  manifest: {d['manifest_path']}")
    _git_add(out, d["git_add"])


def _changes(out, changelog) -> None:
    if isinstance(changelog, dict) and changelog.get("summary"):
        line(out, f"  changes: {changelog['summary']}")


def _git_add(out, command: str | None) -> None:
    if command:
        line(out, f"  commit the manifest with your code: `{command}`")


def checkout(result, out) -> None:
    line(out, f"Checked out {result.ref} into {result.dest}: {count(result.files, 'file')}, {human_bytes(result.bytes)} "
              f"({result.link})")


def export(result, out) -> None:
    split = result["split"]
    line(out, f"Exported {result['ref']} ({count(result['images'], 'image')}{', split ' + split if split else ''}) "
              f"as {result['format']} into {result['dest']}")


# --------------------------------------------------------------------------- list, log


def listing(rows, out) -> None:
    if not rows:
        line(out, "No datasets yet. Create one with `lensvault dataset snapshot NAME SRC --version 1.0.0`.")
        return
    t = table("name", "latest", "versions", "files", "size", "updated", right=("versions", "files", "size"))
    for r in rows:
        t.add_row(r["name"], r["latest"], str(r["versions"]), str(r["files"]), human_bytes(r["bytes"]),
                  _when(r["updated_at"]))
    out.print(t)


def log(versions, out) -> None:
    for v in versions:
        line(out, styled((v.ref, "bold"), f"  snapshot {v.snapshot_id[:12]}  {count(v.files, 'file')}  {human_bytes(v.bytes)}"))
        line(out, f"  {_when(v.created_at)} by {v.created_by}" + (f"  parent {v.parent}" if v.parent else "")
                  + (f"  bump {v.bump}" if v.bump else "") + ("  (forced)" if v.forced else ""))
        if v.notes:
            line(out, f"  notes: {v.notes}")
        _changes(out, v.changelog)
        line(out, "")


# --------------------------------------------------------------------------- findings


def findings(out, items: list[dict], ref: str, *, total: int | None = None, by_code: dict | None = None,
             indent: str = "  ") -> None:
    """Validation findings: counts by code (``by_code``: of all of them, as the manifest records),
    then the first SHOW with file and place."""
    from lensvault.datasets.results import findings_by_code

    total = len(items) if total is None else total
    if not total:
        return
    by_code = by_code or findings_by_code(items)
    line(out, f"{indent}{total} validation finding(s): " + ", ".join(f"{c} {n}" for c, n in sorted(by_code.items())),
         style="yellow")
    for f in items[:SHOW]:
        loc = ", ".join(x for x in (f.get("file"), f.get("location")) if x)
        line(out, f"{indent}  - {f['code']}: {f['message']}" + (f" ({loc})" if loc else ""))
    if total > min(len(items), SHOW):
        kept = f" ({len(items)} kept in the manifest)" if len(items) < total else ""
        line(out, f"{indent}  … and {total - min(len(items), SHOW)} more{kept}: "
                  f"`lensvault dataset show {ref} --json` (source.findings)")


# --------------------------------------------------------------------------- show


def show(details, out) -> None:
    # The files are read first (a table that cannot be read: an error, nothing printed), then
    # printed a batch at a time, after the version's facts.
    files = None if details.file_rows is None else details.file_rows()
    info = details.info
    line(out, styled((info["ref"], "bold"), f"  snapshot {info['snapshot_id']}"))
    counts = info.get("counts") or {}
    line(out, f"  files: {info['files']}  size: {human_bytes(info['bytes'])}  "
              "media: " + (", ".join(f"{k} {v}" for k, v in info["media_types"].items()) or "-"))
    line(out, f"  parent: {info['parent'] or '-'}" + (f"  bump: {info['bump']}" if info.get("bump") else "")
              + ("  (forced)" if info.get("forced") else "")
              + f"  created: {_when(info['created_at'])} by {info['created_by']}")
    if info["notes"]:
        line(out, f"  notes: {info['notes']}")
    _changes(out, info.get("changelog"))
    if "images" in info:
        _vision(out, info, counts)
    line(out, f"  manifest: {info['manifest_path']}")
    if files is not None:
        _files(out, files, ids=details.is_vision)


def _files(out, batches, *, ids: bool) -> None:
    """Every file, a batch at a time as they are read (``ids``: with the image id every export,
    run file and evaluation uses)."""
    columns = ("path", "size", "sha256", "media type", "w×h", *(("image id",) if ids else ()))
    print_table_stream(out, columns, ([_file_cells(f, ids) for f in rows] for rows in batches),
                       right=("size", "image id"))


def _file_cells(f: dict, ids: bool) -> tuple[str, ...]:
    wh = f"{f['width']}×{f['height']}" if f["width"] else ""
    cells = (f["path"], human_bytes(f["size"]), f["sha256"][:12], f["media_type"], wh)
    return (*cells, "-" if f["image_id"] is None else str(f["image_id"])) if ids else cells


def _vision(out, info: dict, counts: dict) -> None:
    source = info.get("source") or {}
    if source.get("description"):
        line(out, f"  source: {source['description']}")
    annotated = counts.get("annotated_images")
    line(out, f"  images: {info['images']}" + (f" ({annotated} annotated)" if annotated is not None else "")
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
    line(out, "  splits: " + (", ".join(f"{s} {splits[s]}" for s in order) or "none")
              + (f"  ({', '.join(how)})" if how else ""))
    per_class = info["per_class"]
    ids = dict(zip(info["classes"], info.get("class_ids") or []))
    line(out, f"  classes: {len(info['classes'])}")
    cols = [s for s in order if any(s in c for c in per_class.values())]
    t = table("id", "class", *cols, "total", right=("id", *cols, "total"))
    for name in [*info["classes"], *[n for n in per_class if n not in ids]]:
        c = per_class.get(name, {})
        t.add_row(str(ids.get(name, "?")), name, *[str(c.get(s, 0)) for s in cols], str(c.get("total", 0)))
    print_table(out, t, indent=4)
    findings(out, source.get("findings") or [], info["ref"], total=counts.get("findings"),
             by_code=source.get("findings_by_code"))
    skipped = source.get("skipped_images") or []
    if skipped:
        line(out, f"  skipped images: {len(skipped)} (--on-bad-image skip; their files are kept, not as images)")
        for x in skipped[:SHOW]:
            line(out, f"    {x['path']}: {x['reason']}")
        more(out, len(skipped), SHOW, "skipped image(s)", indent="    ")
    embedded = source.get("embedded_images") or []
    if embedded:
        line(out, f"  images stored from inside labelme files (imageData): {len(embedded)}")
        for p in embedded[:SHOW]:
            line(out, f"    {p}")
        more(out, len(embedded), SHOW, "embedded image(s)", indent="    ")


# --------------------------------------------------------------------------- status


def status(st, out) -> None:
    if st.clean:
        line(out, f"{st.folder} matches {st.ref} ({count(st.unchanged, 'file')})")
    else:
        line(out, f"{st.folder} differs from {st.ref}:")
        for label, items, mark in (("added", st.added, "+"), ("removed", st.removed, "-"),
                                   ("modified", st.modified, "~")):
            for p in items[:STATUS_SHOW]:
                line(out, f"  {mark} {p}")
            if len(items) > STATUS_SHOW:
                line(out, f"  … and {len(items) - STATUS_SHOW} more {label} (all of them: --json)")
        line(out, f"{len(st.added)} added, {len(st.removed)} removed, {len(st.modified)} modified, "
                  f"{st.unchanged} unchanged")
    for d in st.damaged:  # files edited in place through a hardlink: the store's object changed too
        line(out, f"DAMAGED  {d['what']}")
        line(out, f"         fix: {d['fix']}")


# --------------------------------------------------------------------------- diff


def diff(comparison, out, report=None) -> None:
    _file_diff(out, comparison.files)
    if comparison.annotations is not None:
        _annotation_diff(out, comparison.annotations)  # its summary ends with the suggested bump
    if report is not None:
        more = f" (the first {report.images} of {report.total} changed images)" if report.total > report.images else ""
        line(out, f"HTML report: {report.path}{more}")


def _file_diff(out, d) -> None:
    for label, items, mark, colour in (("added", d.added, "+", "green"), ("removed", d.removed, "-", "red"),
                                       ("modified", d.modified, "~", "yellow")):
        for p in items[:SHOW * 5]:
            line(out, f"{mark} {p}", style=colour)
        more(out, len(items), SHOW * 5, f"{label} file(s)", indent="")
    for src, dst in d.renamed[:SHOW * 5]:
        line(out, f"→ {src} -> {dst}", style="cyan")
    more(out, len(d.renamed), SHOW * 5, "renamed file(s)", indent="")
    line(out, d.summary() + f"; size {human_bytes(d.bytes['a'])} → {human_bytes(d.bytes['b'])}")


def _annotation_diff(out, ad) -> None:
    line(out, "")
    line(out, ad.summary())
    _box_changes(out, ad)
    _images(out, ad.images)
    _classes(out, ad)
    _split_moves(out, ad)


def _noun_plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("x") else "s")


def _describe_change(c, mixed: bool) -> str:
    from lensvault.datasets.annotation_diff.changes import KIND_NOUNS

    # Kinds are named on each line only when the changes mix them (else the header names the one).
    kind = f"{KIND_NOUNS.get(c.kind, c.kind)} " if mixed else ""
    if c.change == "added":
        return f"+ added      {kind}{c.new_class} {_fmt_box(c.new_bbox)}"
    if c.change == "removed":
        return f"- removed    {kind}{c.old_class} {_fmt_box(c.old_bbox)}"
    iou = f" (IoU {c.iou:.2f})" if c.iou is not None else ""
    if c.change == "moved":
        return f"~ moved      {kind}{c.new_class} {_fmt_box(c.old_bbox)} → {_fmt_box(c.new_bbox)}{iou}{_also(c)}"
    if c.change == "relabeled":
        if "bbox" in c.changed:
            return (f"~ relabeled  {kind}{c.old_class} → {c.new_class} and moved {_fmt_box(c.old_bbox)} → "
                    f"{_fmt_box(c.new_bbox)}{iou}{_also(c)}")
        return f"~ relabeled  {kind}{c.old_class} → {c.new_class} {_fmt_box(c.new_bbox)}{iou}{_also(c)}"
    what = ", ".join(f"{k} {v[0]!r} → {v[1]!r}" for k, v in c.attributes.items()) or ", ".join(c.changed)
    return f"~ changed    {kind}{c.new_class} {_fmt_box(c.new_bbox)}: {what}"


def _also(c) -> str:
    """What else changed in a moved or relabeled box (a box is one line, so nothing it went
    through may hide behind the category it was counted in)."""
    bits = [f"{k} {v[0]!r} → {v[1]!r}" for k, v in c.attributes.items()]
    bits += [f"{f} changed" for f in c.changed if f not in ("class", "bbox") and f not in c.attributes]
    return f"; also {', '.join(bits)}" if bits else ""


def _box_changes(out, ad) -> None:
    from lensvault.datasets.annotation_diff.changes import KIND_NOUNS

    ann = ad.annotations
    if not ann.changed_boxes:
        return
    unit = ann.unit  # box, mask, polygon, keypoints annotation, image label; annotation when mixed
    mixed = unit == "annotation"
    by_image: dict[str, list] = {}
    for cat in ann.CATEGORIES:
        for c in getattr(ann, cat):
            by_image.setdefault(c.image, []).append(c)
    counts = ", ".join(f"{len(getattr(ann, c))} {c.replace('_', ' ')}" for c in ann.CATEGORIES if getattr(ann, c))
    kinds = (" (" + ", ".join(f"{n} {KIND_NOUNS.get(k, k)}{'' if n == 1 else 's'}"
                              for k, n in ann.by_kind().items()) + ")") if mixed else ""
    line(out, f"\n{_noun_plural(unit)}: {ann.changed_boxes} changed in {len(by_image)} image(s) ({counts}){kinds}; "
              f"{ann.unchanged} unchanged")
    for image in sorted(by_image)[:SHOW]:
        changes = sorted(by_image[image], key=lambda c: (c.new_index if c.new_index is not None else -1,
                                                         c.old_index if c.old_index is not None else -1))
        line(out, f"  {image}")
        for c in changes[:SHOW]:
            line(out, f"    {_describe_change(c, mixed)}")
        more(out, len(changes), SHOW, f"{unit} change(s) in this image", indent="    ")
    more(out, len(by_image), SHOW, f"image(s) with {unit} changes")


def _images(out, im) -> None:
    lists = (("added", list(im.added)), ("removed", list(im.removed)), ("re-encoded", list(im.reencoded)),
             ("resized", [f"{r['path']} {r['old'][0]}×{r['old'][1]} → {r['new'][0]}×{r['new'][1]}"
                          for r in im.resized]),
             ("re-oriented", list(im.reoriented)), ("re-tagged", list(im.retagged)))
    if not any(items for _, items in lists):
        line(out, f"\nimages: {im.count_a} → {im.count_b}, none added, removed or changed")
        return
    line(out, f"\nimages: {im.count_a} → {im.count_b}")
    for label, items in lists:
        if not items:
            continue
        by_split = {"added": im.added_by_split, "removed": im.removed_by_split}.get(label) or {}
        split_text = f" ({', '.join(f'{s} {n}' for s, n in by_split.items())})" if by_split else ""
        line(out, f"  {label}: {len(items)}{split_text}")
        for p in items[:SHOW]:
            line(out, f"    {p}")
        more(out, len(items), SHOW, f"{label} image(s)", indent="    ")


def _classes(out, ad) -> None:
    c = ad.classes
    if c.changed:
        line(out, "\nclass map changed:")
        for x in c.added:
            line(out, f"  + {x['name']} (id {x['id']})")
        for x in c.removed:
            line(out, f"  - {x['name']} (id {x['id']})")
        for x in c.renamed:
            line(out, f"  ~ id {x['id']}: {x['old']} → {x['new']}")
        for x in c.reindexed:
            line(out, f"  ~ {x['name']}: id {x['old_id']} → {x['new_id']}")
    else:
        line(out, "\nclass map unchanged")
    if ad.per_class:
        t = table("class", ad.a, ad.b, "Δ", right=(ad.a, ad.b, "Δ"))
        for name, e in ad.per_class.items():
            t.add_row(name, str(e["a"]), str(e["b"]), f"{e['delta']:+d}" if e["delta"] else "0")
        print_table(out, t, indent=2)


def _split_moves(out, ad) -> None:
    if not ad.split_moves:
        return
    counts = ", ".join(f"{k} {n}" for k, n in ad.split_move_counts.items())
    line(out, f"\nsplit moves: {len(ad.split_moves)} ({counts})")
    for m in ad.split_moves[:SHOW]:
        line(out, f"  {m.path}: {m.from_split or '(none)'} → {m.to_split or '(none)'}")
    more(out, len(ad.split_moves), SHOW, "split move(s)")


# --------------------------------------------------------------------------- check


def check(report, out) -> None:
    line(out, report.summary())
    exact = report.exact
    if exact:
        line(out, f"\nexact duplicates: {len(exact)} group(s) of identical bytes "
                  f"({len(report.cross_split_exact)} across splits)")
        for g in exact[:SHOW]:
            cross = len(set(g["splits"])) > 1
            line(out, ("  ! " if cross else "    ") + f"sha256 {g['sha256'][:12]}:")
            for p, s in zip(g["paths"][:SHOW], g["splits"][:SHOW]):
                line(out, f"      {p} ({s or 'no split'})")
            more(out, len(g["paths"]), SHOW, "copies", indent="      ")
        more(out, len(exact), SHOW, "duplicate group(s)")
    if report.near:
        line(out, f"\nnear duplicates: {len(report.near)} pair(s) within {report.near_threshold} bits "
                  f"({len(report.cross_split_near)} across splits)")
        for n in report.near[:SHOW]:
            cross = n.split_a != n.split_b
            line(out, ("  ! " if cross else "    ") + f"{n.a} ({n.split_a or 'no split'}) ~ {n.b} "
                      f"({n.split_b or 'no split'}), {n.distance} bit(s) apart")
        more(out, len(report.near), SHOW, "near-duplicate pair(s)")
    if report.split_moves:
        line(out, f"\nsplit moves since the parent: {len(report.split_moves)}")
        for m in report.split_moves[:SHOW]:
            line(out, f"  {m['path']}: {m['from'] or '(none)'} → {m['to'] or '(none)'}"
                      + (" (same bytes, another name)" if m.get("by") == "content" else ""))
        more(out, len(report.split_moves), SHOW, "split move(s)")
    if report.unreadable:
        line(out, f"\nunreadable images: {len(report.unreadable)}")
        for u in report.unreadable[:SHOW]:
            line(out, f"  {u['path']}: {u['error']}")
        more(out, len(report.unreadable), SHOW, "unreadable image(s)")
    if exact or report.near:
        line(out, "\n(! = the copies are in different splits)")
