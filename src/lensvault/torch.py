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
        if images is None or dataset.annotations() is None:
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
        self._index_boxes(dataset.annotations())
        # Images not in this vault's store come from the default remote now, all at once (many
        # requests in flight, a bar on a terminal), not one by one as a DataLoader asks.
        from lensvault.progress import terminal
        from lensvault.remotes.autofetch import ensure_local

        ensure_local(vault, self._shas, what=self.ref + (f" (split {split})" if split else ""), pull_ref=self.ref,
                     fetch=fetch, progress=progress if progress is not None else terminal())

    def _select(self, images, split, usage_error) -> None:
        paths = images.column("path").to_pylist()
        splits = images.column("split").to_pylist() if "split" in images.column_names else [None] * len(paths)
        rows = [i for i, s in enumerate(splits) if split is None or s == split]
        if split is not None and not rows:
            have = sorted({s for s in splits if s is not None})
            raise usage_error(f"{self.ref} has no images in split {split!r}", where=self.ref,
                              fix=f"use one of: {', '.join(have)}" if have else "the version has no splits")
        from lensvault.annotations.image_ids import image_ids

        ids = image_ids(images)
        shas = images.column("sha256").to_pylist()
        widths, heights = images.column("width").to_pylist(), images.column("height").to_pylist()
        tags = images.column("tags").to_pylist() if "tags" in images.column_names else ["{}"] * len(paths)
        self._ids = [ids[r] for r in rows]
        self._paths = [paths[r] for r in rows]
        self._shas = [shas[r] for r in rows]
        self._splits = [splits[r] for r in rows]
        self._sizes = [(widths[r], heights[r]) for r in rows]
        self._tags = [tags[r] for r in rows]

    def _index_boxes(self, annotations) -> None:
        """Boxes sorted by (image, index) as numpy columns, and each image's slice of them."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        wanted = pa.array(self._paths, pa.string())
        ann = annotations.filter(pc.is_in(annotations.column("image"), value_set=wanted))
        ann = ann.sort_by([("image", "ascending"), ("index", "ascending")])
        ann, self._image_labels, self._only_labels = _split_image_labels(ann)
        self._x = ann.column("x").to_numpy()
        self._y = ann.column("y").to_numpy()
        self._w = ann.column("w").to_numpy()
        self._h = ann.column("h").to_numpy()
        self._labels = ann.column("class_id").to_numpy().astype(np.int64)
        self._crowd = ann.column("iscrowd").to_numpy(zero_copy_only=False)
        image_of = ann.column("image").to_pylist()
        self._span: dict[str, tuple[int, int]] = {}
        start = 0
        for k in range(1, len(image_of) + 1):
            if k == len(image_of) or image_of[k] != image_of[start]:
                self._span[image_of[start]] = (start, k)
                start = k

    def __len__(self) -> int:
        return len(self._paths)

    def __repr__(self) -> str:
        where = f", split={self.split!r}" if self.split else ""
        return f"<VisionDataset {self.ref}{where}: {len(self)} images, {len(self.class_names)} classes>"

    @property
    def paths(self) -> list[str]:
        return list(self._paths)

    def load_image(self, i: int):
        """The i-th image as a decoded RGB PIL image (bytes read from the store by sha256, and hashed:
        an image whose bytes are not its sha256's is an IntegrityError, never a silently wrong sample)."""
        import hashlib
        import io

        from PIL import Image

        oid = self._shas[i]
        with self.store.open(oid) as fp:
            data = fp.read()
        if hashlib.sha256(data).hexdigest() != oid:
            from lensvault.errors import IntegrityError

            raise IntegrityError(
                f"image {self._paths[i]} of {self.ref} is corrupt in the store (object {oid[:12]}…)",
                where=self.store.location(oid),
                fix="run `lensvault verify --repair` (add --from DIR for a folder that holds the original images)",
                corrupt=[oid],
            )
        with Image.open(io.BytesIO(data)) as im:
            return im.convert("RGB")  # convert() decodes

    def target(self, i: int) -> dict:
        import numpy as np

        path = self._paths[i]
        lo, hi = self._span.get(path, (0, 0))
        x, y, w, h = self._x[lo:hi], self._y[lo:hi], self._w[lo:hi], self._h[lo:hi]
        boxes = np.stack([x, y, x + w, y + h], axis=1) if hi > lo else np.zeros((0, 4))
        labels, crowd = self._labels[lo:hi], self._crowd[lo:hi]
        torch = _torch()
        target: dict[str, Any] = {
            "image_id": self._ids[i],
            "path": path,
            "sha256": self._shas[i],
            "split": self._splits[i],
            "size": self._sizes[i],
            "tags": json.loads(self._tags[i] or "{}"),
        }
        if self._image_labels is not None:
            # Image-level labels (classification): ``labels`` of a labels-only version, else beside the boxes.
            own = self._image_labels.get(path, [])
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


def _split_image_labels(ann):
    """(the rows that are not image labels, image path → label class ids or None when the
    version has no image labels, whether the version has nothing but image labels)."""
    import pyarrow.compute as pc

    is_label = pc.equal(ann.column("kind"), "label")
    if not pc.any(is_label).as_py():
        return ann, None, False
    labels: dict[str, list[int]] = {}
    for row in ann.filter(is_label).select(["image", "class_id"]).to_pylist():
        labels.setdefault(row["image"], []).append(row["class_id"])
    rest = ann.filter(pc.invert(is_label))
    return rest, labels, rest.num_rows == 0
