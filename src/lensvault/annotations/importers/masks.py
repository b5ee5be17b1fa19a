"""Semantic segmentation PNG masks: one mask per image, a class per pixel value or colour.

Layouts: ``images/`` + ``masks/`` with ``dataset_meta.json`` (datumaro) or ``labelmap.txt``
(``name:r,g,b::`` lines); or VOC's ``JPEGImages/`` + ``SegmentationClass/`` with the VOC
palette. Masks are RGB (colour → class through the map), palette or greyscale PNGs (index =
class id; a palette image with a colour map is read through its palette). Index 255 and the
VOC border colour (224,224,192, unless the map names it) are "ignore". Every class present
in a mask becomes one ``mask`` annotation: RLE via pycocotools, with its bbox.
"""

from __future__ import annotations

from pathlib import Path

from lensvault.annotations._common import (fail, find_images, image_info, normalize_split, read_class_names,
                                           read_json, rel)
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns, canonical_json

_IGNORE_INDEX = 255
_VOC_BORDER = (224, 224, 192)
VOC_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor")
_MASK_DIRS = ("masks", "SegmentationClass", "annotations", "labels")
_IMAGE_DIRS = ("images", "JPEGImages", "imgs")


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The VOC devkit's bit-interleaved colour map."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def mask_dir(root: Path) -> Path | None:
    for name in _MASK_DIRS:
        if (root / name).is_dir() and any((root / name).rglob("*.png")):
            return root / name
    return None


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None) -> Imported:
    masks_root = annotations if annotations is not None and annotations.is_dir() else mask_dir(root)
    if masks_root is None:
        fail("no mask folder found", root, fix="expected masks/ or SegmentationClass/; pass --annotations")
    images_root = next((root / d for d in _IMAGE_DIRS if (root / d).is_dir()), root)
    names, colours, meta_file = _class_map(root, classes)
    colour_to_id = {c: i for i, c in enumerate(colours)} if colours else None
    if colour_to_id is not None and _VOC_BORDER not in colour_to_id:
        colour_to_id[_VOC_BORDER] = -1

    image_list = [p for p in find_images(images_root) if masks_root not in p.parents]
    mask_list = sorted(masks_root.rglob("*.png"))
    pairs = _pair(image_list, mask_list, images_root, masks_root)
    split_of = _split_files(root / "ImageSets" / "Segmentation")

    images = ImageColumns()
    anns = AnnotationColumns()
    findings: list[Finding] = []
    image_files: dict[str, str] = {}
    for image, mask in pairs:
        key = rel(image, root)
        width, height, orientation = image_info(image, key)
        sub = image.relative_to(images_root).parts
        split = split_of.get(image.stem) or (normalize_split(sub[0]) if len(sub) > 1 and
                                             normalize_split(sub[0]) in {"train", "val", "test"} else None)
        images.add(key, width, height, orientation=orientation, split=split)
        image_files[key] = rel(mask, root) if mask else key
        if mask is None:
            continue
        shown = rel(mask, root)
        _add_mask(mask, shown, key, width, height, colour_to_id, len(names), anns, meta_file)

    classmap = ClassMap.from_names(names)
    description = (f"segmentation masks: {rel(masks_root, root)}/ ({plural(len(mask_list), 'mask')}), "
                   f"{plural(len(images), 'image')}, {plural(len(names), 'class').replace('classs', 'classes')} "
                   f"from {meta_file}, {plural(len(anns), 'class region')}")
    return Imported(images, anns, classmap, description, findings, image_files, ids_from_names=classes is None)


def _class_map(root: Path, classes: Path | None) -> tuple[list[str], list[tuple[int, int, int]] | None, str]:
    """Names in id order, their colours (None: masks hold ids) and where they came from."""
    if classes is not None:
        return read_class_names(classes), None, str(classes)
    meta = root / "dataset_meta.json"
    if meta.is_file():
        data = read_json(meta)
        label_map = data.get("label_map") or {}
        try:
            ids = sorted(int(k) for k in label_map)
        except ValueError:
            fail("label_map keys must be integer ids", "dataset_meta.json", fix="write {\"0\": \"background\", ...}")
        if ids != list(range(len(ids))):
            fail(f"label_map ids must be 0..{len(ids) - 1}, got {ids}", "dataset_meta.json",
                 fix="number classes from 0 without gaps")
        names = [str(label_map[str(i)]) for i in ids]
        colours = data.get("segmentation_colors")
        if colours is not None:
            if len(colours) != len(names):
                fail(f"{len(colours)} segmentation_colors for {len(names)} labels", "dataset_meta.json",
                     fix="give one [r, g, b] colour per label")
            return names, [tuple(int(v) for v in c) for c in colours], "dataset_meta.json"
        return names, None, "dataset_meta.json"
    labelmap = root / "labelmap.txt"
    if labelmap.is_file():
        names, colours = [], []
        for n, line in enumerate(labelmap.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            rgb = rest.split(":")[0]
            try:
                colour = tuple(int(v) for v in rgb.split(","))
            except ValueError:
                fail(f"colour {rgb!r} is not r,g,b", "labelmap.txt", f"line {n}", fix="write name:r,g,b::")
            names.append(name.strip())
            colours.append(colour)
        return names, colours, "labelmap.txt"
    return list(VOC_NAMES), voc_palette(len(VOC_NAMES)), "the Pascal VOC palette"


def _pair(images: list[Path], masks: list[Path], images_root: Path, masks_root: Path):
    """Match by relative path without suffix; datumaro's non-standard layout prefixes names
    (``image_0001.png`` ↔ ``gt_0001.png``), so fall back to names minus a shared prefix."""
    def key(p: Path, base: Path) -> str:
        return p.relative_to(base).with_suffix("").as_posix()

    by_key = {key(m, masks_root): m for m in masks}
    pairs = [(i, by_key.get(key(i, images_root))) for i in images]
    if images and masks and not any(m for _, m in pairs):
        ip, mp = _common_prefix([i.stem for i in images]), _common_prefix([m.stem for m in masks])
        by_stem = {m.stem[len(mp):]: m for m in masks}
        pairs = [(i, by_stem.get(i.stem[len(ip):])) for i in images]
    return pairs


def _common_prefix(names: list[str]) -> str:
    import os

    prefix = os.path.commonprefix(names)
    # Keep the distinguishing part: never swallow a whole name, cut at a separator.
    for sep in ("_", "-", "."):
        if sep in prefix:
            return prefix[: prefix.rindex(sep) + 1]
    return "" if len(names) < 2 else prefix


def _split_files(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("train", "val", "test", "trainval"):
        path = folder / f"{name}.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.split():
                    out.setdefault(line.split()[0], name)
    return out


def _add_mask(mask: Path, shown: str, key: str, width: int, height: int, colour_to_id, n_classes: int,
              anns: AnnotationColumns, meta_file: str) -> None:
    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_utils

    try:
        with Image.open(mask) as im:
            mode = im.mode
            palette = im.getpalette() if mode == "P" else None
            arr = np.array(im.convert("RGB") if mode not in {"P", "L", "RGB", "I", "I;16"} else im)
    except (OSError, ValueError) as e:
        fail(f"unreadable mask: {e}", shown, fix="re-export the mask as PNG")
    if arr.shape[:2] != (height, width):
        fail(f"mask is {arr.shape[1]}x{arr.shape[0]} but its image is {width}x{height}", shown,
             fix="masks must have the same size as their images")
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.uint32)
        codes = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
        if colour_to_id is None:
            fail("an RGB mask needs a colour map", shown,
                 fix="add dataset_meta.json with segmentation_colors or labelmap.txt (name:r,g,b::)")
        lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colour_to_id.items()}
    else:
        codes = arr.astype(np.int64)
        if mode == "P" and colour_to_id is not None and palette:
            # Read a palette image through its palette, so a custom palette is honoured.
            pal = np.asarray(palette + [0] * (768 - len(palette)), dtype=np.uint32).reshape(-1, 3)
            packed = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
            lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colour_to_id.items()}
            lookup[int(packed[_IGNORE_INDEX])] = -1
            codes = packed[codes]
        else:
            lookup = {i: i for i in range(n_classes)}
            lookup[_IGNORE_INDEX] = -1
    values = np.unique(codes)
    unknown = [int(v) for v in values if int(v) not in lookup]
    if unknown:
        shown_vals = [f"({v >> 16},{(v >> 8) & 255},{v & 255})" if arr.ndim == 3 or mode == "P" and colour_to_id
                      else str(v) for v in unknown[:5]]
        fail(f"mask has {len(unknown)} value(s) not in the class map: {', '.join(shown_vals)}", shown,
             f"pixel values {', '.join(shown_vals)}",
             fix=f"add those colours/ids to {meta_file}, or repaint the pixels with a known class or 255 (ignore)")
    fid = anns.file_id(shown)
    for v in values:
        cid = lookup[int(v)]
        if cid < 0:
            continue
        binary = np.asfortranarray((codes == v).astype(np.uint8))
        rle = mask_utils.encode(binary)
        x, y, w, h = (float(b) for b in mask_utils.toBbox(rle))
        anns.add(key, cid, x, y, w, h, kind="mask",
                 rle=canonical_json({"counts": rle["counts"].decode("ascii"), "size": [height, width]}),
                 origin=(fid, f"class {cid}"))
