"""Segmentation PNG masks: a class per pixel value or colour, and optional instance masks.

Layouts: ``images/`` + ``masks/`` with ``dataset_meta.json`` (datumaro) or ``labelmap.txt``
(``name:r,g,b::`` lines); VOC's ``JPEGImages/`` + ``SegmentationClass/`` with the VOC
palette; labelme's ``labelme2voc`` output (``SegmentationClassPNG/``, ``class_names.txt``).
Masks are RGB (colour → class through the map), palette or greyscale PNGs (index = class
id; a palette image with a colour map is read through its palette). Index 255 and the VOC
border colour (224,224,192, unless the map names it) are "ignore".

The background class — ``--background-label NAME``, else ``background_label`` in
dataset_meta.json, else a class named ``background``/``_background_``/``__background__`` (VOC
and labelme put it at index 0) — is not an object: its pixels give no annotation, though the
class keeps its id. The version records which class it is (``Imported.masks``), so evaluation
and export paint uncovered pixels with it.

Ignore pixels (the ignore index, 255 unless ``--ignore-index`` or dataset_meta's ``ignore_index``
say otherwise, and the VOC border colour) are not scored. With a background class they must not
read as background: each image's ignore region becomes one crowd ``mask`` annotation of the
background class with attribute ``{"ignore": true}`` (COCO's way to say "do not score here";
semantic evaluation paints crowd regions ignored, the masks export paints them the ignore index).

Class masks: every other class present becomes one ``mask`` annotation (pycocotools RLE)
with its box. Instance masks (``SegmentationObject/`` or ``SegmentationObjectPNG/``, index =
instance number, 0 background, 255 ignore) make one ``mask`` annotation per instance, its
class the class mask's most frequent class under it (attribute ``instance``); class pixels
no instance covers still become a class-region annotation, so nothing is lost.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lensvault.annotations._common import fail, find_images, normalize_split, read_class_list, read_json, rel
from lensvault.annotations.bad_images import current, image_info
from lensvault.annotations.confine import reachable
from lensvault.annotations.importers._base import Imported, plural
from lensvault.annotations.model import AnnotationColumns, ClassMap, Finding, ImageColumns, canonical_json

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    # Per-pixel values of one mask, height x width (x 3 for an RGB mask as read).
    _Pixels = npt.NDArray[Any]
    _Ids = npt.NDArray[np.int64]

_RGB = tuple[int, int, int]

_IGNORE_INDEX = 255
_VOC_BORDER = (224, 224, 192)
VOC_NAMES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
             "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
             "train", "tvmonitor")
BACKGROUND_NAMES = frozenset({"background", "_background_", "__background__"})
_CLASS_DIRS = ("masks", "SegmentationClassPNG", "SegmentationClass", "annotations", "labels")
_OBJECT_DIRS = ("SegmentationObjectPNG", "SegmentationObject")
_IMAGE_DIRS = ("images", "JPEGImages", "imgs")
_CLASS_FILES = ("dataset_meta.json", "labelmap.txt", "class_names.txt")
# Class-map files are a few KB; a bigger one is not one (and is not read whole).
_MAX_MAP_BYTES = 16 * 1024 * 1024


def voc_palette(n: int = 256) -> list[_RGB]:
    """The VOC devkit's bit-interleaved colour map (labelme's label colormap too)."""
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


@dataclass(frozen=True)
class MaskLayout:
    class_dir: Path | None
    object_dir: Path | None


def _png_dir(root: Path, names: Iterable[str]) -> Path | None:
    for name in names:
        if (root / name).is_dir() and any((root / name).rglob("*.png")):
            return root / name
    return None


def mask_dir(root: Path) -> Path | None:
    return _png_dir(root, _CLASS_DIRS)


def find_masks(root: Path) -> MaskLayout | None:
    """The mask folders of ``root``, if it is a mask dataset (a mask folder and a class map,
    or VOC's own folder names)."""
    class_dir, object_dir = mask_dir(root), _png_dir(root, _OBJECT_DIRS)
    if class_dir is None and object_dir is None:
        return None
    named = any((root / n).is_file() for n in _CLASS_FILES)
    voc_named = (class_dir is not None and class_dir.name.startswith("SegmentationClass")) or object_dir is not None
    if not (named or voc_named):
        return None
    return MaskLayout(class_dir, object_dir)


@dataclass
class _ClassMapSource:
    names: list[str]
    colours: list[tuple[int, int, int]] | None  # None: pixel values are class ids
    source: str
    background: frozenset[int]  # class ids
    index_is_id: bool = False  # palette PNGs hold class ids (labelme), whatever their palette
    ids: list[int] | None = None  # class ids of ``names`` (None: 0..n-1); pixel values are ids
    ignore_index: int = _IGNORE_INDEX  # dataset_meta.json's "ignore_index", else 255

    @property
    def class_ids(self) -> list[int]:
        return list(range(len(self.names))) if self.ids is None else self.ids

    def name_of(self, class_id: int) -> str:
        return self.names[self.class_ids.index(class_id)]


def load(root: Path, *, annotations: Path | None = None, classes: Path | None = None,
         ignore_index: int | None = None, background: str | None = None) -> Imported:
    """``ignore_index``: the pixel value not to score (default dataset_meta's ``ignore_index``,
    else 255); ``background``: the background class's name (see the module docstring)."""
    layout = find_masks(root)
    class_dir = annotations if annotations is not None and annotations.is_dir() else (
        layout.class_dir if layout else mask_dir(root))
    object_dir = layout.object_dir if layout and annotations is None else None
    if class_dir is None and object_dir is None:
        fail("no mask folder found", root,
             fix="expected masks/, SegmentationClass/ or SegmentationClassPNG/; pass --annotations")
    images_root = next((root / d for d in _IMAGE_DIRS if (root / d).is_dir()), root)
    cmap = _class_map(root, classes)
    ignore = cmap.ignore_index if ignore_index is None else ignore_index
    if not 0 <= ignore <= 65535:
        fail(f"ignore index {ignore} is not a pixel value", root, "--ignore-index", fix="give a value 0..65535")
    if ignore in cmap.class_ids:
        fail(f"ignore index {ignore} is the id of class {cmap.name_of(ignore)!r}", root, "--ignore-index",
             fix="give an ignore index no class uses")
    if background is not None:
        if background not in cmap.names:
            fail(f"background class {background!r} is not in the class map ({cmap.source})", root,
                 "--background-label", fix=f"name one of: {', '.join(cmap.names)}")
        cmap.background = frozenset({cmap.class_ids[cmap.names.index(background)]})
    colour_to_id = {c: i for i, c in enumerate(cmap.colours)} if cmap.colours else None
    if colour_to_id is not None and _VOC_BORDER not in colour_to_id:
        colour_to_id[_VOC_BORDER] = -1

    mask_dirs = [d for d in (class_dir, object_dir) if d is not None]
    image_list = [p for p in find_images(images_root) if not any(d in p.parents for d in mask_dirs)]
    class_masks = sorted(class_dir.rglob("*.png")) if class_dir else []
    object_masks = sorted(object_dir.rglob("*.png")) if object_dir else []
    pairs = _pair(image_list, class_masks, images_root, class_dir) if class_dir else [(i, None) for i in image_list]
    objects = dict(_pair(image_list, object_masks, images_root, object_dir)) if object_dir else {}
    split_of = _split_files(root / "ImageSets" / "Segmentation")

    images = ImageColumns()
    anns = AnnotationColumns()
    findings: list[Finding] = []
    image_files: dict[str, str] = {}
    n_instances = n_ignore = 0
    for image, mask in pairs:
        key = rel(image, root)
        width, height, orientation = image_info(image, key)
        sub = image.relative_to(images_root).parts
        # A split list names images by stem (VOC), or by path without suffix where stems repeat.
        split = (split_of.get(str(PurePosixPath(key).with_suffix(""))) or split_of.get(image.stem)
                 or (normalize_split(sub[0]) if len(sub) > 1 and normalize_split(sub[0]) in {"train", "val", "test"}
                     else None))
        images.add(key, width, height, orientation=orientation, split=split)
        obj = objects.get(image)
        declared_by = mask or obj
        image_files[key] = rel(declared_by, root) if declared_by else key
        if not _decodable(key, width, height) or (mask is None and obj is None):
            continue  # a bad image is reported with the others; its masks are not decoded
        codes = _class_codes(mask, rel(mask, root), width, height, colour_to_id, cmap, ignore) if mask else None
        n_instances += _add_regions(root, key, mask, codes, obj, width, height, cmap, anns, findings)
        if codes is not None and cmap.background and (codes < 0).any():
            assert mask is not None
            _add_mask(anns, key, min(cmap.background), codes < 0, width, height,
                      (anns.file_id(rel(mask, root)), "ignore pixels"), {"ignore": True}, crowd=True)
            n_ignore += 1

    classmap = ClassMap(tuple(cmap.class_ids), tuple(cmap.names))
    where = ", ".join(f"{rel(d, root)}/" for d in mask_dirs)
    description = (f"segmentation masks: {where} ({plural(len(class_masks) + len(object_masks), 'mask')}), "
                   f"{plural(len(images), 'image')}, {plural(len(cmap.names), 'class').replace('classs', 'classes')} "
                   f"from {cmap.source}"
                   + (f", background {', '.join(repr(cmap.name_of(i)) for i in sorted(cmap.background))}"
                      if cmap.background else "")
                   + f", {plural(len(anns) - n_instances - n_ignore, 'class region')}"
                   + (f", {plural(n_instances, 'instance')}" if object_dir else "")
                   + (f", ignore pixels (value {ignore}) in {plural(n_ignore, 'image')}" if n_ignore else ""))
    bg = min(cmap.background) if cmap.background else None
    return Imported(images, anns, classmap, description, findings, image_files, ids_from_names=classes is None,
                    masks={"background_class": bg, "ignore_index": ignore})


def _decodable(key: str, width: int, height: int) -> bool:
    bad = current()
    return width > 0 and height > 0 and (bad is None or key not in bad.found)


# -- the class map ----------------------------------------------------------------------------


def _class_map(root: Path, classes: Path | None) -> _ClassMapSource:
    """Names in id order, their colours (None: masks hold ids), where they came from, background ids."""
    if classes is not None:
        ids, names = read_class_list(classes)  # ids as given (`{0: background, 5: cat}`: pixel value 5 is cat)
        return _ClassMapSource(names, None, str(classes), _background_by_name(names, ids), ids=ids)
    meta = root / "dataset_meta.json"
    if meta.is_file():
        return _dataset_meta(meta)
    labelmap = root / "labelmap.txt"
    if labelmap.is_file():
        names, colours = [], []
        for n, line in enumerate(_lines(labelmap, "labelmap.txt", root), 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            rgb = rest.split(":")[0]
            colours.append(_colour(rgb.split(","), "labelmap.txt", f"line {n}", "write name:r,g,b::"))
            names.append(name.strip())
        return _ClassMapSource(names, colours, "labelmap.txt", _background_by_name(names))
    class_names = root / "class_names.txt"
    if class_names.is_file():
        # labelme2voc: one name per line, the line number is the pixel value; _background_ is 0.
        names = [line.strip() for line in _lines(class_names, "class_names.txt", root) if line.strip()]
        return _ClassMapSource(names, voc_palette(len(names)), "class_names.txt", _background_by_name(names),
                               index_is_id=True)
    names = list(VOC_NAMES)
    return _ClassMapSource(names, voc_palette(len(names)), "the Pascal VOC palette", _background_by_name(names))


def _background_by_name(names: list[str], ids: list[int] | None = None) -> frozenset[int]:
    ids = list(range(len(names))) if ids is None else ids
    return frozenset(i for i, n in zip(ids, names) if n.strip().lower() in BACKGROUND_NAMES)


def _lines(path: Path, shown: str, root: Path) -> list[str]:
    _bounded(path, shown, root)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        fail(f"not UTF-8 text: {e.reason}", shown, f"byte {e.start}", fix="save the file as UTF-8")
    except OSError as e:
        fail(f"cannot read the file: {e.strerror}", shown, fix="check the path and permissions", code="unreadable-file")


def _bounded(path: Path, shown: str, root: Path) -> None:
    """A class map is read whole: refuse one that is huge, or a symlink out of its dataset."""
    real = os.path.realpath(path)
    if not reachable(real, os.path.realpath(root)):
        fail(f"the file is a symlink to {real}, outside the dataset folder", shown,
             fix="copy the file into the dataset folder, or remove the link", code="outside-root")
    try:
        size = os.path.getsize(path)
    except OSError as e:
        fail(f"cannot read the file: {e.strerror}", shown, fix="check the path and permissions", code="unreadable-file")
    if size > _MAX_MAP_BYTES:
        fail(f"the file is {size:,} bytes, too large for a class map", shown,
             fix="a class map lists one entry per class; check the file", code="malformed")


def _colour(values: Sequence[Any], shown: str, where: str, fix: str) -> _RGB:
    try:
        rgb = tuple(int(v) for v in values)
    except (TypeError, ValueError):
        fail(f"colour {values!r} is not r,g,b", shown, where, fix=fix)
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) or any(isinstance(v, bool) for v in values):
        fail(f"colour {list(values)!r} is not three values from 0 to 255", shown, where, fix=fix)
    return rgb


def _dataset_meta(meta: Path) -> _ClassMapSource:
    shown = "dataset_meta.json"
    _bounded(meta, shown, meta.parent)
    data = read_json(meta, shown)
    if not isinstance(data, dict):
        fail("dataset_meta.json is not a JSON object", shown, fix='write {"label_map": {"0": "background", ...}}')
    label_map = data.get("label_map") or {}
    if not isinstance(label_map, dict):
        fail("label_map is not an object of id → name", shown, "label_map", fix='write {"0": "background", ...}')
    ids = []
    for k, v in label_map.items():
        try:
            ids.append(int(k))
        except ValueError:
            fail(f"label_map key {k!r} is not an integer id", shown, "label_map",
                 fix="write {\"0\": \"background\", ...}")
        if not isinstance(v, str) or not v.strip():
            fail(f"label_map name of id {k} is {v!r}, not a name", shown, f"label_map {k}",
                 fix="give every id a non-empty string name")
    by_id = {int(k): v for k, v in label_map.items()}
    ids.sort()
    if ids != list(range(len(ids))):
        fail(f"label_map ids must be 0..{len(ids) - 1}, got {ids[:20]}", shown, "label_map",
             fix="number classes from 0 without gaps")
    names = [by_id[i] for i in ids]
    background = _background_by_name(names)
    if data.get("background_label") is not None:
        raw = data["background_label"]
        try:
            bg = int(raw)
        except (TypeError, ValueError):
            bg = -1
        if isinstance(raw, bool) or bg not in by_id:
            fail(f"background_label {raw!r} is not one of the label_map ids", shown, "background_label",
                 fix="name the id of the background class, e.g. \"0\"")
        background = frozenset({bg})
    ignore = data.get("ignore_index", _IGNORE_INDEX)
    if type(ignore) is not int or not 0 <= ignore <= 65535:
        fail(f"ignore_index {ignore!r} is not a pixel value", shown, "ignore_index", fix="write a whole number 0..65535")
    colours = data.get("segmentation_colors")
    if colours is None:
        return _ClassMapSource(names, None, shown, background, ignore_index=ignore)
    if not isinstance(colours, list) or len(colours) != len(names):
        fail(f"segmentation_colors must be a list of one [r, g, b] per label ({len(names)})", shown,
             "segmentation_colors", fix="give one [r, g, b] colour per label")
    fix = "write each colour as [r, g, b] with values from 0 to 255"
    parsed = [_colour(c if isinstance(c, list) else [c], shown, f"segmentation_colors {i}", fix)
              for i, c in enumerate(colours)]
    return _ClassMapSource(names, parsed, shown, background, ignore_index=ignore)


# -- pairing ------------------------------------------------------------------------------------


def _pair(images: list[Path], masks: list[Path], images_root: Path, masks_root: Path
          ) -> list[tuple[Path, Path | None]]:
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
    prefix = os.path.commonprefix(names)  # noqa: RUF071 - of file stems, character by character on purpose
    # Keep the distinguishing part: never swallow a whole name, cut at a separator.
    for sep in ("_", "-", "."):
        if sep in prefix:
            return prefix[: prefix.rindex(sep) + 1]
    return "" if len(names) < 2 else prefix


def _split_files(folder: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    known = ("train", "val", "test", "trainval")  # VOC's; trainval last: it repeats train and val
    others = sorted(p.stem for p in folder.glob("*.txt") if p.stem not in known) if folder.is_dir() else []
    for name in (*known, *others):
        path = folder / f"{name}.txt"
        if path.is_file():
            for line in _lines(path, rel(path, folder.parent.parent), folder.parent.parent):
                if line.split():
                    out.setdefault(line.split()[0], name)
    return out


# -- reading masks ---------------------------------------------------------------------------


def _read_png(mask: Path, shown: str, width: int, height: int) -> tuple[_Pixels, str, list[int] | None]:
    """(array, mode, palette) of a mask, refused before decoding if its size is not the image's."""
    import numpy as np
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # The size is checked against the image's before anything is decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(mask)
        with im:
            if im.size != (width, height):
                fail(f"mask is {im.size[0]}x{im.size[1]} but its image is {width}x{height}", shown,
                     fix="masks must have the same size as their images")
            mode = im.mode
            palette = im.getpalette() if mode == "P" else None
            arr = np.array(im.convert("RGB") if mode not in {"P", "L", "RGB", "I", "I;16"} else im)
    except Image.DecompressionBombError as e:
        fail(f"the mask is too large to decode safely (possible decompression bomb): {e}", shown,
             fix="masks must have the same size as their images; re-export the mask")
    except Exception as e:  # hostile bytes reach plugin code that raises anything
        from lensvault.errors import LensVaultError

        if isinstance(e, LensVaultError):
            raise
        fail(f"unreadable mask: {e}", shown, fix="re-export the mask as PNG")
    return arr, mode, palette


def _class_codes(mask: Path, shown: str, width: int, height: int, colour_to_id: dict[_RGB, int] | None,
                 cmap: _ClassMapSource, ignore: int = _IGNORE_INDEX) -> _Ids:
    """Per-pixel class ids (-1 = ignore) of a class mask."""
    import numpy as np

    arr, mode, palette = _read_png(mask, shown, width, height)
    if arr.ndim == 3:
        arr = arr[..., :3].astype(np.uint32)
        codes = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
        if colour_to_id is None:
            fail("an RGB mask needs a colour map", shown,
                 fix="add dataset_meta.json with segmentation_colors or labelmap.txt (name:r,g,b::)")
        lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colour_to_id.items()}
        coloured = True
    elif mode == "P" and colour_to_id is not None and palette and not cmap.index_is_id:
        # Read a palette image through its palette, so a custom palette is honoured.
        codes = arr.astype(np.int64)
        pal = np.asarray(palette + [0] * (768 - len(palette)), dtype=np.uint32).reshape(-1, 3)
        packed = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
        lookup = {(r << 16) | (g << 8) | b: i for (r, g, b), i in colour_to_id.items()}
        if ignore < len(packed):
            lookup[int(packed[ignore])] = -1
        codes = packed[codes]
        coloured = True
    else:
        codes = arr.astype(np.int64)
        lookup = {i: i for i in cmap.class_ids}
        lookup[ignore] = -1
        coloured = False
    values = np.unique(codes)
    unknown = [int(v) for v in values if int(v) not in lookup]
    if unknown:
        shown_vals = [f"({v >> 16},{(v >> 8) & 255},{v & 255})" if coloured else str(v) for v in unknown[:5]]
        fail(f"mask has {len(unknown)} value(s) not in the class map: {', '.join(shown_vals)}", shown,
             f"pixel values {', '.join(shown_vals)}",
             fix=f"add those colours/ids to {cmap.source}, or repaint the pixels with a known class or {ignore} (ignore)")
    out = np.full(codes.shape, -1, dtype=np.int64)
    for v in values:
        out[codes == v] = lookup[int(v)]
    return out


def _instance_ids(mask: Path, shown: str, width: int, height: int) -> _Ids:
    """Per-pixel instance numbers (0 none, 255 ignore) of an instance mask: palette/grey
    values, or RGB colours of the VOC palette."""
    import numpy as np

    arr, _, _ = _read_png(mask, shown, width, height)
    if arr.ndim == 2:
        return arr.astype(np.int64)
    arr = arr[..., :3].astype(np.uint32)
    codes = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
    palette = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(voc_palette(256))}
    palette[(224 << 16) | (224 << 8) | 192] = _IGNORE_INDEX
    out = np.zeros(codes.shape, dtype=np.int64)
    for v in np.unique(codes):
        if int(v) not in palette:
            fail(f"instance mask colour ({v >> 16},{(v >> 8) & 255},{v & 255}) is not a VOC palette colour", shown,
                 "pixel values", fix="save instance masks as palette or greyscale PNGs (value = instance number)")
        out[codes == v] = palette[int(v)]
    return out


def _add_regions(root: Path, key: str, mask: Path | None, codes: _Ids | None, obj: Path | None, width: int, height: int,
                 cmap: _ClassMapSource, anns: AnnotationColumns, findings: list[Finding]) -> int:
    """Add instance and class-region annotations of one image; returns the number of instances."""
    import numpy as np

    covered = np.zeros((height, width), dtype=bool)
    n_instances = 0
    if obj is not None:
        shown = rel(obj, root)
        if codes is None:
            fail("instance mask without a class mask for the same image", shown,
                 fix="add the image's class mask (SegmentationClass/) so each instance has a class")
        instances = _instance_ids(obj, shown, width, height)
        fid = anns.file_id(shown)
        for v in np.unique(instances):
            v = int(v)
            if v in (0, _IGNORE_INDEX):
                continue
            region = instances == v
            classes = codes[region]
            classes = classes[(classes >= 0) & ~np.isin(classes, list(cmap.background))]
            if classes.size == 0:
                findings.append(Finding("warning", "instance-without-class",
                                        f"instance {v} covers only background or ignored pixels of the class mask; "
                                        "it is not imported", shown, f"instance {v}"))
                continue
            cid = int(np.bincount(classes).argmax())
            covered |= region
            _add_mask(anns, key, cid, region, width, height, (fid, f"instance {v}"), {"instance": v})
            n_instances += 1
    if codes is not None:
        assert mask is not None, "class codes are read from the class mask"
        shown = rel(mask, root)
        fid = anns.file_id(shown)
        for cid in np.unique(codes[~covered]):
            cid = int(cid)
            if cid < 0 or cid in cmap.background:
                continue
            _add_mask(anns, key, cid, (codes == cid) & ~covered, width, height, (fid, f"class {cid}"), None)
    return n_instances


def _add_mask(anns: AnnotationColumns, key: str, cid: int, region: npt.NDArray[np.bool_], width: int, height: int,
              origin: tuple[int, str], attrs: dict[str, Any] | None, crowd: bool = False) -> None:
    import numpy as np
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(region.astype(np.uint8)))
    x, y, w, h = (float(b) for b in mask_utils.toBbox(rle))
    anns.add(key, cid, x, y, w, h, kind="mask",
             rle=canonical_json({"counts": rle["counts"].decode("ascii"), "size": [height, width]}),
             attributes=canonical_json(attrs) if attrs else "{}", iscrowd=crowd, origin=origin)
