"""The normalized model every importer produces and every exporter consumes.

Two Arrow tables (``images`` and ``annotations``) plus a class map. Tables are built
column-wise (``ImageColumns`` / ``AnnotationColumns``) because per-row dicts cost several
times more at 200,000 boxes than appending to a dozen Python lists.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import pyarrow as pa

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ANNOTATION_SCHEMA",
    "IMAGE_SCHEMA",
    "KINDS",
    "AnnotationColumns",
    "AnnotationRow",
    "AnnotationSet",
    "ClassMap",
    "ClassMapDict",
    "EmbeddedImage",
    "Finding",
    "FindingDict",
    "ImageColumns",
    "ImageRow",
    "KeypointSchema",
    "SkippedImage",
    "canonical_json",
]

KINDS = ("bbox", "polygon", "rle", "mask", "keypoints", "label")  # label: a whole-image class (classification)

IMAGE_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("orientation", pa.int8(), nullable=False),
        pa.field("split", pa.string()),
        pa.field("tags", pa.string(), nullable=False),
    ]
)

ANNOTATION_SCHEMA = pa.schema(
    [
        pa.field("image", pa.string(), nullable=False),
        pa.field("index", pa.int32(), nullable=False),
        pa.field("class_id", pa.int32(), nullable=False),
        pa.field("x", pa.float64(), nullable=False),
        pa.field("y", pa.float64(), nullable=False),
        pa.field("w", pa.float64(), nullable=False),
        pa.field("h", pa.float64(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("polygon", pa.list_(pa.list_(pa.float64()))),
        pa.field("rle", pa.string()),
        pa.field("keypoints", pa.list_(pa.float64())),
        pa.field("iscrowd", pa.bool_(), nullable=False),
        pa.field("difficult", pa.bool_(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
        pa.field("occluded", pa.bool_(), nullable=False),
        pa.field("attributes", pa.string(), nullable=False),
    ]
)


class ImageRow(TypedDict):
    """One row of ``IMAGE_SCHEMA`` as ``Table.to_pylist()`` gives it (a stored version's table
    has more columns, e.g. ``image_id`` and ``sha256``)."""

    path: str
    width: int
    height: int
    orientation: int
    split: str | None
    tags: str  # canonical JSON of an object
    image_id: NotRequired[int]  # (a stored version's, and an export's: lensvault.annotations.image_ids)


class AnnotationRow(TypedDict):
    """One row of ``ANNOTATION_SCHEMA`` as ``Table.to_pylist()`` gives it."""

    image: str
    index: int
    class_id: int
    x: float
    y: float
    w: float
    h: float
    kind: str
    polygon: list[list[float]] | None
    rle: str | None  # canonical JSON of a COCO RLE object
    keypoints: list[float] | None
    iscrowd: bool
    difficult: bool
    truncated: bool
    occluded: bool
    attributes: str  # canonical JSON of an object


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace: equal values give equal strings (and equal hashes).

    Standard JSON only: NaN and Infinity raise ValueError (importers check values read from
    files first and report them located: ``fields.check_json_value``).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


EMPTY_JSON = "{}"


class FindingDict(TypedDict):
    """``Finding.to_dict()``: how a finding is stored (import reports) and shown (``--json``)."""

    level: str
    code: str
    message: str
    file: str
    location: str


class KeypointSchema(TypedDict):
    """A keypoint class's point names and the edges between them (indices into ``names``)."""

    names: list[str]
    skeleton: list[list[int]]


class _ClassEntry(TypedDict):
    id: int
    name: str


class ClassMapDict(TypedDict):
    """``ClassMap.to_dict()``, as manifests store it (keypoint class ids as text: JSON keys)."""

    classes: list[_ClassEntry]
    keypoints: NotRequired[dict[str, KeypointSchema]]


class SkippedImage(TypedDict):
    """An image ``on_bad_image="skip"`` left out, and why (``bad_images`` codes)."""

    path: str
    code: str
    reason: str


@dataclass(frozen=True)
class Finding:
    """One located problem in the input. ``level`` is "warning" or "error"."""

    level: str
    code: str
    message: str
    file: str
    location: str = ""

    def to_dict(self) -> FindingDict:
        return {
            "level": self.level,
            "code": self.code,
            "message": self.message,
            "file": self.file,
            "location": self.location,
        }

    @classmethod
    def from_dict(cls, data: FindingDict) -> Finding:
        return cls(
            level=data["level"],
            code=data["code"],
            message=data["message"],
            file=data["file"],
            location=data.get("location", ""),
        )

    def __str__(self) -> str:
        where = f"{self.file}, {self.location}" if self.location else self.file
        return f"{self.level}: {self.code}: {self.message} (at {where})"


@dataclass(frozen=True)
class ClassMap:
    """Stable class ids and their names, in id order as the source gave them.

    ``keypoints`` maps a class id to ``{"names": [...], "skeleton": [[a, b], ...]}``.
    """

    ids: tuple[int, ...]
    names: tuple[str, ...]
    keypoints: dict[int, KeypointSchema] = field(default_factory=dict, compare=True, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        if len(self.ids) != len(self.names):
            raise ValueError("ClassMap needs one name per id")
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"ClassMap ids repeat: {self.ids}")

    @classmethod
    def from_names(cls, names: Iterable[str], start: int = 0) -> ClassMap:
        given = tuple(names)
        return cls(tuple(range(start, start + len(given))), given)

    def name_of(self, class_id: int) -> str:
        try:
            return self.names[self.ids.index(int(class_id))]
        except ValueError:
            raise KeyError(class_id) from None

    def id_of(self, name: str) -> int:
        try:
            return self.ids[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, class_id: object) -> bool:
        return class_id in self.ids

    def to_dict(self) -> ClassMapDict:
        out: ClassMapDict = {
            "classes": [{"id": i, "name": n} for i, n in zip(self.ids, self.names)]
        }
        if self.keypoints:
            out["keypoints"] = {str(k): self.keypoints[k] for k in sorted(self.keypoints)}
        return out

    @classmethod
    def from_dict(cls, data: ClassMapDict) -> ClassMap:
        rows = data["classes"]
        kp = {int(k): v for k, v in data.get("keypoints", {}).items()}
        return cls(tuple(r["id"] for r in rows), tuple(r["name"] for r in rows), kp)


@dataclass(frozen=True)
class EmbeddedImage:
    """An image that exists only inside an annotation file (labelme's base64 ``imageData``).

    A snapshot stores its decoded bytes as a file of the version at the image's key (see
    docs/formats.md); ``importers.labelme.embedded_bytes`` decodes them again from ``source``
    and checks ``sha256``, so the import never holds every embedded image in memory. (A plain
    value: this module is the bottom of the annotation layer and imports no importer.)
    """

    source: str  # absolute path of the annotation file
    sha256: str
    size: int


@dataclass
class AnnotationSet:
    """A whole dataset's annotations in normalized form (see docs/formats.md)."""

    images: pa.Table
    annotations: pa.Table
    classes: ClassMap
    findings: list[Finding] = field(default_factory=list)
    source_format: str = ""
    description: str = ""
    ids_from_names: bool = False  # the importer numbered the classes (see importers._base.Imported)
    # Images left out by ``on_bad_image="skip"``: {"path", "code", "reason"}.
    skipped: list[SkippedImage] = field(default_factory=list)
    # Images stored inside annotation files, by image path (see ``EmbeddedImage``).
    embedded: dict[str, EmbeddedImage] = field(default_factory=dict)
    # The image field image labels were read from (``--label-key``), and the COCO export writes
    # them to (``annotations.label_keys``); None: not read from a field ("labels" on export).
    label_key: str | None = None
    # Segmentation masks: the background class id (None: none) and the ignore index they were
    # read with (importers.masks); semantic evaluation and the masks export use them.
    masks: dict[str, int | None] | None = None

    @property
    def splits(self) -> dict[str, list[str]]:
        """Split name → image paths (images without a split are left out)."""
        out: dict[str, list[str]] = {}
        for path, split in zip(
            self.images.column("path").to_pylist(), self.images.column("split").to_pylist()
        ):
            if split is not None:
                out.setdefault(split, []).append(path)
        return out

    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]


class ImageColumns:
    """Column lists for the images table; ``add`` one image, then ``table()``."""

    def __init__(self) -> None:
        self.path: list[str] = []
        self.width: list[int] = []
        self.height: list[int] = []
        self.orientation: list[int] = []
        self.split: list[str | None] = []
        self.tags: list[str] = []

    def add(self, path: str, width: int, height: int, *, orientation: int = 1,
            split: str | None = None, tags: str | dict[str, Any] = EMPTY_JSON) -> None:
        self.path.append(path)
        self.width.append(int(width))
        self.height.append(int(height))
        self.orientation.append(int(orientation))
        self.split.append(split)
        self.tags.append(tags if isinstance(tags, str) else canonical_json(tags))

    def __len__(self) -> int:
        return len(self.path)

    def table(self) -> pa.Table:
        return pa.Table.from_arrays(
            [
                pa.array(self.path, pa.string()),
                pa.array(self.width, pa.int32()),
                pa.array(self.height, pa.int32()),
                pa.array(self.orientation, pa.int8()),
                pa.array(self.split, pa.string()),
                pa.array(self.tags, pa.string()),
            ],
            schema=IMAGE_SCHEMA,
        )


class AnnotationColumns:
    """The annotations table, built as it is read.

    Rows are added to Python lists (``add``, or the lists' own ``append``/``extend`` where an
    importer binds them for speed) and every ``FLUSH_ROWS`` rows — or when an importer calls
    ``flush`` after a chunk of its input — those lists become one Arrow record batch and are
    emptied in place: the whole table is never held as a Python object per value (a float is 32
    bytes in a list, 8 in Arrow; at 1M boxes that is the difference between 2x and 0.5x the
    COCO file). ``table()`` joins the batches without copying them.

    ``index`` (position within the image) is assigned here, in the order annotations are
    added, so importers only need to add them in source order. Alongside each row we keep
    where it came from (``origin_file`` index into ``files`` and ``origin_loc`` text) so
    validation can point at a file and line without storing that in the model.
    """

    FLUSH_ROWS = 65_536

    def __init__(self) -> None:
        self.image: list[str] = []
        self.index: list[int] = []
        self.class_id: list[int] = []
        self.x: list[float] = []
        self.y: list[float] = []
        self.w: list[float] = []
        self.h: list[float] = []
        self.kind: list[str] = []
        self.polygon: list[list[list[float]] | None] = []
        self.rle: list[str | None] = []
        self.keypoints: list[list[float] | None] = []
        self.iscrowd: list[bool] = []
        self.difficult: list[bool] = []
        self.truncated: list[bool] = []
        self.occluded: list[bool] = []
        self.attributes: list[str] = []
        # Per row, for findings (not part of the table): 4 bytes a row, and one shared "" where
        # the importer has no finer location.
        self.origin_file: array[int] = array("i")
        self.origin_loc: list[str] = []
        self.files: list[str] = []
        self._file_ids: dict[str, int] = {}
        self._next_index: dict[str, int] = {}
        self._batches: list[pa.RecordBatch] = []
        self._flushed = 0

    def file_id(self, file: str) -> int:
        fid = self._file_ids.get(file)
        if fid is None:
            fid = self._file_ids[file] = len(self.files)
            self.files.append(file)
        return fid

    def add(self, image: str, class_id: int, x: float, y: float, w: float, h: float, *,
            kind: str = "bbox", polygon: list[list[float]] | None = None, rle: str | None = None,
            keypoints: list[float] | None = None,
            iscrowd: bool = False, difficult: bool = False, truncated: bool = False,
            occluded: bool = False, attributes: str | dict[str, Any] = EMPTY_JSON,
            origin: tuple[int, str] = (-1, "")) -> None:
        n = self._next_index.get(image, 0)
        self._next_index[image] = n + 1
        self.image.append(image)
        self.index.append(n)
        self.class_id.append(int(class_id))
        self.x.append(float(x))
        self.y.append(float(y))
        self.w.append(float(w))
        self.h.append(float(h))
        self.kind.append(kind)
        self.polygon.append(polygon)
        self.rle.append(rle)
        self.keypoints.append(keypoints)
        self.iscrowd.append(bool(iscrowd))
        self.difficult.append(bool(difficult))
        self.truncated.append(bool(truncated))
        self.occluded.append(bool(occluded))
        self.attributes.append(attributes if isinstance(attributes, str) else canonical_json(attributes))
        self.origin_file.append(origin[0])
        self.origin_loc.append(origin[1])
        if len(self.image) >= self.FLUSH_ROWS:
            self.flush()

    def add_boxes(self, image: list[str], class_id: npt.NDArray[Any], boxes: npt.NDArray[np.float64],
                  iscrowd: list[bool], *, origin_file: int) -> None:
        """Plain boxes, a column each (``boxes``: n rows of x, y, w, h), straight into a batch:
        no Python float per value. Rows otherwise as ``add`` with its defaults."""
        import numpy as np

        self.flush()  # keep the rows in the order they were added
        n = len(image)
        next_index = self._next_index
        index = np.empty(n, dtype=np.int32)
        for row, key in enumerate(image):
            i = next_index.get(key, 0)
            next_index[key] = i + 1
            index[row] = i
        false = pa.repeat(False, n)
        self._batches.append(pa.RecordBatch.from_arrays(
            [pa.array(image, pa.string()), pa.array(index, pa.int32()),
             pa.array(class_id.astype(np.int32), pa.int32()),
             *(pa.array(np.ascontiguousarray(boxes[:, k], dtype=np.float64), pa.float64()) for k in range(4)),
             pa.array(["bbox"] * n, pa.string()), pa.nulls(n, ANNOTATION_SCHEMA.field("polygon").type),
             pa.nulls(n, pa.string()), pa.nulls(n, ANNOTATION_SCHEMA.field("keypoints").type),
             pa.array(iscrowd, pa.bool_()), false, false, false, pa.array([EMPTY_JSON] * n, pa.string())],
            schema=ANNOTATION_SCHEMA))
        self._flushed += n
        self.origin_file.extend(array("i", [origin_file]) * n)
        self.origin_loc.extend([""] * n)

    def flush(self) -> None:
        """Turn the rows added since the last flush into a record batch; empty the lists in
        place (an importer may hold their bound ``append``)."""
        n = len(self.image)
        if not n:
            return
        self._batches.append(pa.RecordBatch.from_arrays(
            [pa.array(self.image, pa.string()), pa.array(self.index, pa.int32()),
             pa.array(self.class_id, pa.int32()), pa.array(self.x, pa.float64()),
             pa.array(self.y, pa.float64()), pa.array(self.w, pa.float64()), pa.array(self.h, pa.float64()),
             pa.array(self.kind, pa.string()), pa.array(self.polygon, pa.list_(pa.list_(pa.float64()))),
             pa.array(self.rle, pa.string()), pa.array(self.keypoints, pa.list_(pa.float64())),
             pa.array(self.iscrowd, pa.bool_()), pa.array(self.difficult, pa.bool_()),
             pa.array(self.truncated, pa.bool_()), pa.array(self.occluded, pa.bool_()),
             pa.array(self.attributes, pa.string())],
            schema=ANNOTATION_SCHEMA))
        self._flushed += n
        for column in self._columns():
            del column[:]

    def _columns(self) -> tuple[list[Any], ...]:
        return (self.image, self.index, self.class_id, self.x, self.y, self.w, self.h, self.kind,
                self.polygon, self.rle, self.keypoints, self.iscrowd, self.difficult, self.truncated,
                self.occluded, self.attributes)

    def class_ids(self) -> set[int]:
        """Every class id used so far."""
        import pyarrow.compute as pc

        out = set(self.class_id)
        for batch in self._batches:
            out.update(pc.unique(batch.column(2)).to_pylist())
        return out

    def __len__(self) -> int:
        return self._flushed + len(self.image)

    def origin(self, row: int) -> tuple[str, str]:
        fid = self.origin_file[row]
        return (self.files[fid] if fid >= 0 else "", self.origin_loc[row])

    def table(self) -> pa.Table:
        """The rows so far as one table (the batches as its chunks: not copied)."""
        self.flush()
        return pa.Table.from_batches(self._batches, schema=ANNOTATION_SCHEMA)
