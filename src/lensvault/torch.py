"""A PyTorch-style map dataset over a vision dataset version, read straight from the store.

    from lensvault.torch import VisionDataset
    train = VisionDataset("bccd@1.1.0", split="train")
    image, target = train[0]      # PIL image, {"boxes", "labels", "image_id", "path", "tags", ...}

Importing this module does not import torch: it is only tried when a target is built,
so the class also works (with plain lists) where torch is not installed.

Boxes are in stored pixels (the importers do not apply EXIF rotation), so images are
returned as stored too: no ``exif_transpose``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["VisionDataset"]

_NO_TORCH = object()
_torch_module: Any = None
_BATCH = 65_536  # oids looked up in the store at a time
# What a target needs of the annotations table (polygons, masks and attributes are not read).
_BOX_COLUMNS = ["image", "index", "class_id", "x", "y", "w", "h", "kind", "iscrowd"]


def _has_annotations(dataset) -> bool:
    if hasattr(dataset, "is_vision"):  # (a Dataset: without reading the table)
        return bool(dataset.is_vision)
    return dataset.annotations() is not None


def _annotation_batches(dataset, columns):
    if hasattr(dataset, "annotation_batches"):
        return dataset.annotation_batches(columns)
    return dataset.annotations().select(columns).to_batches()


def _torch():
    """The torch module, or None; looked up once."""
    global _torch_module
    if _torch_module is None:
        try:
            import torch
        except ImportError:
            _torch_module = _NO_TORCH
        else:
            _torch_module = torch
    return None if _torch_module is _NO_TORCH else _torch_module


class VisionDataset:
    """``len(ds)`` images of one version (optionally one split); ``ds[i]`` → ``(image, target)``.

    ``target``: ``boxes`` (x1, y1, x2, y2 floats; an N×4 float32 tensor when torch is
    installed), ``labels`` (class ids of the version's class map; int64 tensor with torch; for a
    classification version, the image's labels — with boxes too, those are ``image_labels``),
    ``iscrowd``, ``image_id`` (the version's image id: the same as in COCO exports, the run's
    ``annotations/instances.json`` and ``eval``; see lensvault.annotations.image_ids),
    ``path``, ``sha256``, ``split``, ``size`` (width, height) and ``tags`` (dict).

    ``transform(image)`` transforms the image alone; ``transforms(image, target)`` both,
    for geometric augmentations that must move the boxes too.

    Images not in this vault's store (a version ``lensvault fetch`` brought) are fetched from the
    default remote when the dataset is made, hash-checked, with a bar on a terminal
    (``progress``: a lensvault.progress.Progress); ``fetch=False`` refuses the network instead.
    """

    def __init__(self, ref_or_dataset, split: str | None = None, *, vault: Vault | None = None,
                 transform: Callable | None = None, transforms: Callable | None = None, fetch: bool = True,
                 progress=None):
        from lensvault.errors import UsageError

        if isinstance(ref_or_dataset, str):
            if vault is None:
                import lensvault

                vault = lensvault.open()
            dataset = vault.dataset(ref_or_dataset)
        else:
            dataset = ref_or_dataset
            vault = vault if vault is not None else dataset.vault
        images = dataset.images()
        ref = getattr(dataset, "ref", str(ref_or_dataset))
        if images is None or not _has_annotations(dataset):
            raise UsageError(f"{ref} has no annotations", where=str(ref),
                             fix="snapshot the folder with --format to read it as a vision dataset")
        self.ref = str(ref)
        self.store = vault.store
        self.transform = transform
        self.transforms = transforms
        self.classes = dataset.class_map()
        assert self.classes is not None  # a version with annotations has its class map
        self.class_names = list(self.classes.names)
        self.split = split
        self._select(images, split, UsageError)
        self._index_boxes(_annotation_batches(dataset, _BOX_COLUMNS))
        # Images not in this vault's store come from the default remote now, all at once (many
        # requests in flight, a bar on a terminal), not one by one as a DataLoader asks.
        from lensvault.progress import terminal
        from lensvault.remotes.autofetch import ensure_local_batches

        shas = self._sha
        ensure_local_batches(vault, (shas.slice(k, _BATCH).to_pylist() for k in range(0, len(shas), _BATCH)),
                             what=self.ref + (f" (split {split})" if split else ""), pull_ref=self.ref, fetch=fetch,
                             progress=progress if progress is not None else terminal())
        import pyarrow as pa

        pa.default_memory_pool().release_unused()  # (what reading the tables took, back to the system)

    # What is held per image is columns, not a Python object each: the images' path, sha256,
    # split and tags (Arrow strings: their bytes + 4 each), id, width and height (numpy; 16
    # bytes), where its boxes start and end (16 bytes); per box x, y, w, h, class and crowd
    # (41 bytes): ~130 bytes an image beside its path, and no Python object per image.
    def _select(self, images, split, usage_error) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from lensvault.annotations.image_ids import with_image_ids

        images = with_image_ids(images)
        if split is not None:
            splits = images.column("split") if "split" in images.column_names else None
            keep = pc.fill_null(pc.equal(splits, split), False) if splits is not None else \
                pa.array([False] * images.num_rows)
            if not pc.any(keep).as_py():
                have = sorted(s for s in pc.unique(splits).to_pylist() if s is not None) if splits is not None else []
                raise usage_error(f"{self.ref} has no images in split {split!r}", where=self.ref,
                                  fix=f"use one of: {', '.join(have)}" if have else "the version has no splits")
            images = images.filter(keep)

        def column(name, default):
            if name in images.column_names:
                return images.column(name).combine_chunks()
            return pa.array([default] * images.num_rows, pa.string())

        self._path = column("path", None)
        self._sha = column("sha256", None)
        self._split = column("split", None)
        self._tag = column("tags", "{}")
        self._ids = images.column("image_id").to_numpy().astype(np.int64)
        self._width = images.column("width").to_numpy(zero_copy_only=False)
        self._height = images.column("height").to_numpy(zero_copy_only=False)

    def _index_boxes(self, batches) -> None:
        """Boxes sorted by (image, index) as numpy columns, and each image's slice of them; the
        annotations table is read a batch at a time, and only the numbers of this split's kept."""
        import numpy as np
        import pyarrow.compute as pc

        from lensvault.datasets.path_index import PathIndex

        paths = PathIndex(self._path)
        parts: dict[str, list] = {k: [] for k in ("row", "index", "class_id", "x", "y", "w", "h", "label", "iscrowd")}
        for batch in batches:
            # Each annotation's image as a row of the selected images (-1: another split's, or none).
            rows = paths.rows(batch.column("image"))
            kept = np.flatnonzero(rows >= 0)
            if not len(kept):
                continue
            parts["row"].append(rows[kept])
            parts["label"].append(pc.equal(batch.column("kind"), "label").to_numpy(zero_copy_only=False)[kept])
            for name in ("index", "class_id", "x", "y", "w", "h", "iscrowd"):
                parts[name].append(batch.column(name).to_numpy(zero_copy_only=False)[kept])
        del paths

        def column(name, dtype):
            return np.concatenate(parts.pop(name)) if parts[name] else np.zeros(0, dtype=dtype)

        rows, index = column("row", np.int64), column("index", np.int32)
        order = np.lexsort((index, rows))  # by (image, index), ties in table order
        del index
        rows = rows[order]
        is_label = column("label", bool)[order]
        class_id = column("class_id", np.int32)[order]
        everything = np.arange(len(self._path))
        self._has_labels = bool(is_label.any())
        if self._has_labels:
            # Image-level labels (classification): each image's label class ids, in annotation order.
            label_rows = rows[is_label]
            self._label_ids = class_id[is_label].astype(np.int64)
            self._label_start = np.searchsorted(label_rows, everything, side="left")
            self._label_end = np.searchsorted(label_rows, everything, side="right")
        boxes = order[~is_label]
        self._only_labels = self._has_labels and not len(boxes)
        self._x, self._y = column("x", np.float64)[boxes], column("y", np.float64)[boxes]
        self._w, self._h = column("w", np.float64)[boxes], column("h", np.float64)[boxes]
        self._labels = class_id[~is_label].astype(np.int64)
        self._crowd = column("iscrowd", bool)[boxes]
        self._start = np.searchsorted(rows[~is_label], everything, side="left")
        self._end = np.searchsorted(rows[~is_label], everything, side="right")

    def __len__(self) -> int:
        return len(self._path)

    def __repr__(self) -> str:
        where = f", split={self.split!r}" if self.split else ""
        return f"<VisionDataset {self.ref}{where}: {len(self)} images, {len(self.class_names)} classes>"

    @property
    def paths(self) -> list[str]:
        paths: list[str] = self._path.to_pylist()
        return paths

    def load_image(self, i: int):
        """The i-th image as a decoded RGB PIL image (bytes read from the store by sha256, and hashed:
        an image whose bytes are not its sha256's is an IntegrityError, never a silently wrong sample)."""
        import hashlib
        import io

        from PIL import Image

        oid = self._sha[i].as_py()
        with self.store.open(oid) as fp:
            data = fp.read()
        if hashlib.sha256(data).hexdigest() != oid:
            from lensvault.errors import IntegrityError

            raise IntegrityError(
                f"image {self._path[i].as_py()} of {self.ref} is corrupt in the store (object {oid[:12]}…)",
                where=self.store.location(oid),
                fix="run `lensvault verify --repair` (add --from DIR for a folder that holds the original images)",
                corrupt=[oid],
            )
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")  # convert() decodes

    def target(self, i: int) -> dict:
        import numpy as np

        path = self._path[i].as_py()
        lo, hi = int(self._start[i]), int(self._end[i])
        x, y, w, h = self._x[lo:hi], self._y[lo:hi], self._w[lo:hi], self._h[lo:hi]
        boxes = np.stack([x, y, x + w, y + h], axis=1) if hi > lo else np.zeros((0, 4))
        labels, crowd = self._labels[lo:hi], self._crowd[lo:hi]
        torch = _torch()
        target: dict[str, Any] = {
            "image_id": int(self._ids[i]),
            "path": path,
            "sha256": self._sha[i].as_py(),
            "split": self._split[i].as_py(),
            "size": (int(self._width[i]), int(self._height[i])),
            "tags": json.loads(self._tag[i].as_py() or "{}"),
        }
        if self._has_labels:
            # Image-level labels (classification): ``labels`` of a labels-only version, else beside the boxes.
            own = self._label_ids[self._label_start[i]:self._label_end[i]].tolist()
            if self._only_labels:
                labels = np.asarray(own, dtype=np.int64)
            else:
                target["image_labels"] = own if torch is None else torch.as_tensor(own, dtype=torch.int64)
        if torch is not None:
            target["boxes"] = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
            target["labels"] = torch.as_tensor(labels, dtype=torch.int64)
            target["iscrowd"] = torch.as_tensor(crowd.astype(np.int64))
        else:
            target["boxes"] = boxes.astype(float).tolist()
            target["labels"] = labels.tolist()
            target["iscrowd"] = crowd.astype(int).tolist()
        return target

    def __getitem__(self, i: int):
        if not isinstance(i, int):
            i = int(i)  # numpy / torch integer indices from samplers
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        image, target = self.load_image(i), self.target(i)
        if self.transform is not None:
            image = self.transform(image)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

