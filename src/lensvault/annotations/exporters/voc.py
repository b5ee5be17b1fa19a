"""Pascal VOC export: ``Annotations/<name>.xml``, ``JPEGImages/<name>``,
``ImageSets/Main/<split>.txt`` and ``labelmap.txt`` (datumaro's format) so class order —
and therefore ids — survive the round trip. Every annotation is written as its box;
coordinates are 1-based (``xmin = x + 1``), the inverse of the importer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, TextIO
from xml.sax.saxutils import escape

from lensvault.annotations.exporters._files import FlatNames, Link, Selection, attrs, num, place
from lensvault.annotations.model import AnnotationRow, AnnotationSet


def export(aset: AnnotationSet, image_files: Mapping[str, Any], dest: Path, *, split: str | None,
           link: Link | None) -> Path:
    import contextlib

    from lensvault.annotations.importers.masks import voc_palette

    sel = Selection(aset, split)
    names = dict(zip(aset.classes.ids, aset.classes.names))
    flat = FlatNames(sel.column("path"))
    (dest / "Annotations").mkdir(parents=True, exist_ok=True)
    (dest / "JPEGImages").mkdir(parents=True, exist_ok=True)
    main = dest / "ImageSets" / "Main"
    with contextlib.ExitStack() as files:
        members: dict[str, TextIO] = {}  # split → its list, written as the images come
        for chunk in sel.chunks():
            for im, rows in chunk:
                filename = flat(im["path"])
                stem = PurePosixPath(filename).stem
                place(im["path"], dest / "JPEGImages" / filename, image_files, link)
                objects = "".join(_object(a, names) for a in rows)
                xml = (f"<annotation>\n  <folder>JPEGImages</folder>\n  <filename>{escape(filename)}</filename>\n"
                       f"  <size>\n    <width>{im['width']}</width>\n    <height>{im['height']}</height>\n"
                       f"    <depth>3</depth>\n  </size>\n  <segmented>0</segmented>\n{objects}</annotation>\n")
                (dest / "Annotations" / f"{stem}.xml").write_text(xml, encoding="utf-8")
                if im["split"]:
                    if im["split"] not in members:
                        main.mkdir(parents=True, exist_ok=True)
                        members[im["split"]] = files.enter_context(
                            open(main / f"{im['split']}.txt", "w", encoding="utf-8", newline=""))
                    members[im["split"]].write(f"{stem}\n")
    palette = voc_palette(max(len(aset.classes.names), 1))
    lines = ["# label:color_rgb:parts:actions"]
    lines += [f"{n}:{','.join(map(str, palette[i]))}::" for i, n in enumerate(aset.classes.names)]
    (dest / "labelmap.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest


def _object(a: AnnotationRow, names: dict[int, str]) -> str:
    extra = attrs(a["attributes"])
    name = names.get(a["class_id"], f"class_{a['class_id']}")
    pose = extra.get("pose", "Unspecified")
    x0, y0 = a["x"] + 1, a["y"] + 1
    x1, y1 = x0 + a["w"], y0 + a["h"]
    return (f"  <object>\n    <name>{escape(name)}</name>\n    <pose>{escape(str(pose))}</pose>\n"
            f"    <truncated>{int(a['truncated'])}</truncated>\n    <difficult>{int(a['difficult'])}</difficult>\n"
            f"    <occluded>{int(a['occluded'])}</occluded>\n"
            f"    <bndbox>\n      <xmin>{num(x0)}</xmin>\n      <ymin>{num(y0)}</ymin>\n"
            f"      <xmax>{num(x1)}</xmax>\n      <ymax>{num(y1)}</ymax>\n    </bndbox>\n  </object>\n")
