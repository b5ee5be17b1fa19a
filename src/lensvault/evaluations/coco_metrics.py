"""COCO-style metrics of boxes, masks (``iou_type="segm"``) and keypoints (``"keypoints"``, OKS):
overall, per class and per slice of tagged images.

The numbers come from COCOeval, unchanged, so they match what every paper and leaderboard
reports: faster-coco-eval's C++ COCOeval (identical to pycocotools' on the same inputs, all stats
and the precision array; the tests compare both) when it is installed, else pycocotools'. What this module adds: validation with located errors, no prints,
no mutation of the caller's data, per-class AP read from the ``precision`` array (the same
way detectron2 does) and per-slice metrics from a COCOeval restricted to the slice's images.
"""

from __future__ import annotations

import contextlib
import io
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lensvault.errors import InputError

__all__ = ["COCO_KEYPOINT_SIGMAS", "IOU_TYPES", "OVERALL_KEYS", "evaluate_detections"]

# Order of COCOeval.stats for iouType="bbox" and "segm".
OVERALL_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# ... and for "keypoints" (no small area range: COCO keypoints are people of medium size or more).
KEYPOINT_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
IOU_TYPES = ("bbox", "segm", "keypoints")
# pycocotools' Params.kpt_oks_sigmas for the 17 COCO person keypoints (its array / 10.0, written out:
# the per-keypoint sigma itself, as mmpose and xtcocotools give it).
COCO_KEYPOINT_SIGMAS = (.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087,
                        .089, .089)

_REQUIRED_GT_KEYS = ("images", "annotations", "categories")


def evaluate_detections(
    gt: Mapping[str, Any],
    predictions: Sequence[Mapping[str, Any]],
    *,
    image_tags: Mapping[Any, Mapping[str, Any]] | None = None,
    slice_keys: Iterable[str] | None = None,
    iou_type: str = "bbox",
    kpt_sigmas: Sequence[float] | None = None,
    backend: str = "auto",
    owned: bool = False,
) -> dict[str, Any]:
    """Evaluate COCO results (``image_id, category_id, bbox=[x,y,w,h], score``) against ``gt``.

    ``iou_type="segm"``: results carry ``segmentation`` (polygons or RLE, compressed or not, in the
    image's frame; a mask of another size is refused); ``"keypoints"``: results carry ``keypoints``
    (``x, y, v`` triples, as many as the category's points), scored by OKS with ``kpt_sigmas``
    (default: COCO's 17; another number of points needs its own). ``backend``: "auto"
    (faster-coco-eval if installed), "faster" or "pycocotools".

    ``image_tags`` maps image id -> ``{tag: value}``; every value of every key in
    ``slice_keys`` (default: all tag keys seen) becomes a slice ``"key=value"``. Tags for
    images that are not in ``gt`` are ignored, so tags of a whole dataset can be used to
    evaluate one split.

    Metrics that are undefined (no ground truth to measure against) are None, not -1/NaN.

    ``owned``: the caller hands over ``gt``'s annotations and ``predictions`` (COCO adds keys to
    them: ``id``, ``area``, ``ignore``) instead of their being copied — at 100,000 detections the
    copies were a tenth of the evaluation's time and memory.

    Boxes of zero width or height are not scored, on either side: COCO's IoU of such a box with
    anything is 0, so a zero-area ground-truth box could never be found (every detector would
    lose recall on it) and a zero-area prediction could never be right. They are left out of
    the ground truth and the predictions alike — a COCO export of a version, used as its own
    predictions, scores AP 1 — and counted (``counts.zero_area_ground_truth`` /
    ``counts.zero_area_predictions``). Crowd regions (``iscrowd``) are kept, as COCO keeps them:
    a detection on one is ignored, neither right nor wrong.
    """
    if iou_type not in IOU_TYPES:
        raise InputError(f"unknown iou type {iou_type!r}", where="iou_type", fix=f"use one of {', '.join(IOU_TYPES)}")
    _check_gt(gt)
    image_ids = [img["id"] for img in gt["images"]]
    category_ids = {cat["id"] for cat in gt["categories"]}
    _check_predictions(predictions, set(image_ids), category_ids, iou_type)
    sigmas = _sigmas(gt, predictions, kpt_sigmas) if iou_type == "keypoints" else None
    if iou_type == "segm":
        predictions = _masks_as_rle(predictions, {img["id"]: img for img in gt["images"]}, owned=owned)

    if iou_type == "bbox":
        scored_gt = [a for a in gt["annotations"] if _has_area(a["bbox"])]
        scored_predictions = _with_area(predictions)
    else:  # a mask or a pose is scored whatever its box
        scored_gt, scored_predictions = list(gt["annotations"]), list(predictions)
    cocoeval = _backend(backend)
    coco_gt, coco_dt = _load({**gt, "annotations": scored_gt}, scored_predictions, cocoeval.COCO, owned=owned,
                             segm=iou_type == "segm")
    if iou_type == "segm" and cocoeval.name == "faster-coco-eval":
        _attach_rle(coco_gt, coco_dt, cocoeval.mask)
    overall_eval = _run_cocoeval(coco_gt, coco_dt, image_ids=None, iou_type=iou_type, sigmas=sigmas,
                                 cocoeval=cocoeval)
    keys = KEYPOINT_KEYS if iou_type == "keypoints" else OVERALL_KEYS
    result: dict[str, Any] = {
        "overall": _overall(overall_eval, keys),
        "per_class": _per_class(overall_eval, gt["categories"], coco_gt),
        "per_slice": {},
        "counts": {
            "images": len(image_ids),
            "annotations": len(gt["annotations"]),
            "predictions": len(predictions),
            "categories": len(category_ids),
            "images_with_predictions": len({p["image_id"] for p in predictions}),
            "zero_area_ground_truth": len(gt["annotations"]) - len(scored_gt),
            "zero_area_predictions": len(predictions) - len(scored_predictions),
        },
        "iou_type": iou_type,
        "backend": cocoeval.name,
    }
    if sigmas is not None:
        result["kpt_oks_sigmas"] = [float(v) for v in sigmas]
    for name, ids in _slices(image_tags, slice_keys, image_ids).items():
        sliced = _run_cocoeval(coco_gt, coco_dt, image_ids=ids, iou_type=iou_type, sigmas=sigmas, cocoeval=cocoeval)
        stats = _overall(sliced, keys)
        result["per_slice"][name] = {
            "AP": stats["AP"],
            "AP50": stats["AP50"],
            "AP75": stats["AP75"],
            "images": len(ids),
            "annotations": len(coco_gt.getAnnIds(imgIds=ids)),
        }
    return result


# --------------------------------------------------------------------------- validation


def _check_gt(gt: Mapping[str, Any]) -> None:
    if not isinstance(gt, Mapping):
        raise InputError("ground truth must be a COCO dict", fix="pass the parsed COCO json (a dict)")
    missing = [key for key in _REQUIRED_GT_KEYS if key not in gt]
    if missing:
        raise InputError(
            f"ground truth lacks {', '.join(missing)}",
            where="gt",
            fix="pass a COCO ground-truth dict with images, annotations and categories",
        )
    for section in ("images", "categories"):
        for i, item in enumerate(gt[section]):
            if not isinstance(item, Mapping) or "id" not in item:
                raise InputError(
                    f"ground-truth {section} entry has no id", where=f"gt.{section}[{i}]", fix="give every entry an id"
                )
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, Mapping) or not {"image_id", "category_id", "bbox"} <= ann.keys():
            raise InputError(
                "ground-truth annotation lacks image_id, category_id or bbox",
                where=f"gt.annotations[{i}]",
                fix="every COCO annotation needs image_id, category_id and bbox [x, y, w, h]",
            )


def _prediction_problem(pred: Any, image_ids: set, category_ids: set, iou_type: str = "bbox") -> str | None:
    if not isinstance(pred, Mapping):
        return "is not an object"
    needed = {"bbox": "bbox", "segm": "segmentation", "keypoints": "keypoints"}[iou_type]
    missing = [k for k in ("image_id", "category_id", needed, "score") if k not in pred]
    if missing:
        return f"lacks {', '.join(missing)}"
    if not _member(pred["image_id"], image_ids):
        return f"references unknown image_id {pred['image_id']!r}"
    if not _member(pred["category_id"], category_ids):
        return f"references unknown category_id {pred['category_id']!r}"
    if "bbox" in pred or iou_type == "bbox":
        bbox = pred["bbox"]
        try:
            # Lists, tuples and numpy rows are all fine; strings are not boxes.
            values = bbox if type(bbox) is list else [] if isinstance(bbox, (str, bytes)) else list(bbox)
        except TypeError:
            values = []
        if len(values) != 4 or not all(_finite(v) for v in values):
            return f"has bbox {bbox!r}, not [x, y, width, height] numbers"
        if values[2] < 0 or values[3] < 0:
            return f"has a negative width or height in bbox {values!r}"
    if iou_type == "segm":
        problem = _segmentation_problem(pred["segmentation"])
        if problem:
            return problem
    if iou_type == "keypoints":
        kps = pred["keypoints"]
        if not isinstance(kps, Sequence) or isinstance(kps, (str, bytes)) or not kps or len(kps) % 3 \
                or not all(_finite(v) for v in kps):
            return f"has keypoints {str(kps)[:60]}, not x, y, v number triples"
    if not _finite(pred["score"]):
        return f"has score {pred['score']!r}, not a finite number"
    if not 0 <= pred["score"] <= 1:
        return f"has score {pred['score']!r}, outside [0, 1]"
    return None


def _segmentation_problem(seg: Any) -> str | None:
    if isinstance(seg, Mapping):
        size, counts = seg.get("size"), seg.get("counts")
        if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            return f"has an RLE size {size!r}, not [height, width]"
        if not isinstance(counts, (str, list)):
            return "has an RLE without counts (a string, or a list of run lengths)"
        return None
    if isinstance(seg, Sequence) and not isinstance(seg, (str, bytes)) and seg:
        for ring in seg:
            if not isinstance(ring, Sequence) or isinstance(ring, (str, bytes)) or len(ring) < 6 or len(ring) % 2 \
                    or not all(_finite(v) for v in ring):
                return f"has a polygon {str(ring)[:60]}, not [x1, y1, x2, y2, x3, y3, ...] numbers"
        return None
    return f"has segmentation {str(seg)[:60]}, neither polygons nor an RLE object"


def _has_area(bbox) -> bool:
    """Width and height both above zero (types were checked: ground truth by _check_gt's caller,
    predictions by _check_predictions)."""
    try:
        return float(bbox[2]) > 0 and float(bbox[3]) > 0
    except (TypeError, ValueError, IndexError):
        return True  # not ours to judge here: pycocotools reports it as it always did


def _with_area(predictions: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The predictions whose box has width and height above zero (``_has_area``), a column at a time."""
    import numpy as np

    try:
        boxes = np.asarray([p["bbox"] for p in predictions], dtype=np.float64).reshape(len(predictions), 4)
    except (TypeError, ValueError):
        return [p for p in predictions if _has_area(p["bbox"])]
    keep = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if keep.all():
        return list(predictions)
    return [p for p, k in zip(predictions, keep.tolist()) if k]


def _member(value: Any, ids: set) -> bool:
    try:
        return not isinstance(value, bool) and value in ids
    except TypeError:  # unhashable, e.g. a list where an id belongs
        return False


def _finite(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:  # the common case, without the ABC check (100,000 detections)
        return math.isfinite(value)
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _all_plain(predictions: Sequence[Mapping[str, Any]], image_ids: set, category_ids: set, iou_type: str) -> bool:
    """The checks of ``_prediction_problem`` for the common case, a column at a time: every
    prediction a dict with int ids of the ground truth, a score in [0, 1] and (for boxes) a bbox
    of four finite numbers, width and height >= 0. False says nothing: the loop then finds the
    first offender. Masks and poses are still checked one by one (their shapes vary)."""
    from itertools import chain

    import numpy as np

    if iou_type == "keypoints" or not predictions or set(map(type, predictions)) != {dict}:
        return False
    try:
        ids = [p["image_id"] for p in predictions]
        cats = [p["category_id"] for p in predictions]
        scores = [p["score"] for p in predictions]
        boxes = [p["bbox"] for p in predictions] if iou_type == "bbox" or "bbox" in predictions[0] else None
        segs = [p["segmentation"] for p in predictions] if iou_type == "segm" else None
    except KeyError:
        return False
    if not (set(map(type, ids)) <= {int} and set(map(type, cats)) <= {int} and set(ids) <= image_ids
            and set(cats) <= category_ids and set(map(type, scores)) <= {int, float}):
        return False
    sc = np.asarray(scores, dtype=np.float64)
    if not (np.isfinite(sc).all() and ((sc >= 0) & (sc <= 1)).all()):
        return False
    if boxes is not None:
        if not (set(map(type, boxes)) == {list} and set(map(len, boxes)) == {4}
                and set(map(type, chain.from_iterable(boxes))) <= {int, float}):
            return False
        bx = np.asarray(boxes, dtype=np.float64)
        if not (np.isfinite(bx).all() and (bx[:, 2:] >= 0).all()):
            return False
    if segs is not None:  # polygons only (RLE objects are checked one by one)
        if set(map(type, segs)) != {list} or not all(segs):
            return False
        rings = list(chain.from_iterable(segs))
        if set(map(type, rings)) != {list}:
            return False
        lengths = np.fromiter(map(len, rings), dtype=np.int64, count=len(rings))
        if not ((lengths >= 6) & (lengths % 2 == 0)).all():
            return False
        if not set(map(type, chain.from_iterable(rings))) <= {int, float}:
            return False
        values = np.fromiter(chain.from_iterable(rings), dtype=np.float64, count=int(lengths.sum()))
        if not np.isfinite(values).all():
            return False
    return True


def _check_predictions(predictions: Sequence[Mapping[str, Any]], image_ids: set, category_ids: set,
                       iou_type: str = "bbox") -> None:
    if isinstance(predictions, Mapping) or not isinstance(predictions, Sequence):
        raise InputError(
            "predictions must be a list of COCO result objects",
            where="predictions",
            fix="pass [{'image_id':..., 'category_id':..., 'bbox': [x, y, w, h], 'score':...}, ...]",
        )
    if _all_plain(predictions, image_ids, category_ids, iou_type):
        return
    first: tuple[int, str] | None = None
    bad = 0
    for i, pred in enumerate(predictions):
        problem = _prediction_problem(pred, image_ids, category_ids, iou_type)
        if problem is not None:
            bad += 1
            if first is None:
                first = (i, problem)
    if first is not None:
        index, problem = first
        raise InputError(
            f"{bad} of {len(predictions)} predictions are invalid; the first, predictions[{index}], {problem}",
            where=f"predictions[{index}]",
            fix="predictions must use the image and category ids of the ground truth being evaluated "
            "(check that the model's label map and the dataset version match), scores in [0, 1]",
            bad=bad,
            first_index=index,
        )


# --------------------------------------------------------------------------- pycocotools


@contextlib.contextmanager
def _quiet():
    # pycocotools prints progress on every call; a library must not write to the user's stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


class _Backend:
    def __init__(self, name: str, coco: Any, cocoeval: Any, mask: Any, given_rle: Any = None) -> None:
        self.name, self.COCO, self.COCOeval, self.mask = name, coco, cocoeval, mask
        self.given_rle = given_rle  # the COCOeval for masks already in RLE (faster-coco-eval: _attach_rle)


def _backend(which: str = "auto") -> _Backend:
    if which not in ("auto", "faster", "pycocotools"):
        raise InputError(f"unknown COCO backend {which!r}", where="backend", fix="use auto, faster or pycocotools")
    if which in ("auto", "faster"):
        try:
            from faster_coco_eval import COCO, COCOeval_faster
            from faster_coco_eval.core import mask
        except ImportError:
            if which == "faster":
                raise
        else:
            return _Backend("faster-coco-eval", COCO, COCOeval_faster, mask, _given_rle_cocoeval(COCOeval_faster))
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    return _Backend("pycocotools", PyCOCO, COCOeval, mask_utils)


def _given_rle_cocoeval(base: type) -> type:
    class COCOevalGivenRle(base):
        """faster-coco-eval's COCOeval for annotations whose ``rle`` (what its mask IoU reads) is
        already set, by ``_attach_rle``: its ``_prepare`` would decode every mask and encode it
        again into a second copy of it (140,000 at the benchmark's size: a second of the time and
        tens of MB). Everything else is its own: ``compute_rle`` is off only while it prepares."""

        def _prepare(self) -> None:
            p = self.params
            if not getattr(p, "compute_rle", False) or getattr(p, "compute_boundary", False):
                return super()._prepare()
            p.compute_rle = False
            try:
                return super()._prepare()
            finally:
                p.compute_rle = True

        def computeIoU(self, imgId: Any, catId: Any) -> Any:
            """Its own computeIoU for one image and class, without its per-call detours (both
            annotation lists fetched through the all-images API, an argsort through NumPy): the
            same detections in the same order (a stable sort by descending score, as its mergesort),
            the same C IoU. 27,000 calls at the benchmark's size."""
            p = self.params
            if not p.useCats or not getattr(p, "compute_rle", False) or getattr(p, "compute_boundary", False):
                return super().computeIoU(imgId, catId)
            gt = self.gt_dataset.get(imgId, catId)
            dt = self.dt_dataset.get(imgId, catId) if gt else None
            if not gt or not dt:
                return []
            dt = sorted(dt, key=_descending_score)[:p.maxDets[-1]]
            return self._mask_iou([d["rle"] for d in dt], [g["rle"] for g in gt],
                                  [int(g.get("iscrowd", 0)) for g in gt])

    from faster_coco_eval.core import mask

    COCOevalGivenRle._mask_iou = staticmethod(mask.iou)
    return COCOevalGivenRle


def _descending_score(ann: Mapping[str, Any]) -> float:
    return -ann["score"]


def _attach_rle(coco_gt: Any, coco_dt: Any, mask_api: Any) -> None:
    """Every annotation's ``rle`` for faster-coco-eval's mask IoU: its ``segmentation`` itself (the
    same object, not a copy) when that is already COCO's compressed RLE in its image's frame —
    what faster-coco-eval would make of it, decoded and encoded again — else what
    faster-coco-eval's own ``calculateRleForAllAnnotations`` makes of it (a polygon, say)."""
    for coco in (coco_gt, coco_dt):
        frames = {i: [im.get("height"), im.get("width")] for i, im in coco.imgs.items()}
        rest: list[dict[str, Any]] = []
        for ann in coco.anns.values():
            seg = ann.get("segmentation")
            if type(seg) is dict and type(seg.get("counts")) in (str, bytes) \
                    and seg.get("size") == frames.get(ann["image_id"]):
                ann["rle"] = seg
            else:
                rest.append(ann)
        if rest:
            sizes = {ann["image_id"]: tuple(frames[ann["image_id"]]) for ann in rest}
            mask_api.calculateRleForAllAnnotations(rest, sizes, True, False, 0.02, 1)


def _masks_as_rle(predictions: Sequence[Mapping[str, Any]], images: Mapping[Any, Mapping[str, Any]], *,
                  owned: bool = False) -> list:
    """Polygons and uncompressed RLE become compressed RLE in the image's frame (COCOeval turns
    them into the same masks itself; loadRes can only measure the area of an RLE). An RLE of
    another size than its image is refused, every offender counted. ``owned``: the polygons are
    replaced in the caller's dicts (100,000 of them held twice were 60 MB); single-ring polygons
    are rasterized many per call, the rings of one frame together (one ring's RLE is what merging
    it alone gives)."""
    from pycocotools import mask as mask_utils

    out: list[dict[str, Any]] = []
    wrong = []
    frames = {i: (int(im.get("height") or 0), int(im.get("width") or 0)) for i, im in images.items()}
    # Per frame: the positions of its single-ring polygons and the rings (numbers, checked:
    # pycocotools reads them as doubles).
    rings: dict[tuple[int, int], tuple[list[int], list[list[float]]]] = {}
    for n, p in enumerate(predictions):
        frame = frames[p["image_id"]]
        seg = p["segmentation"]
        q: dict[str, Any] = p if owned and isinstance(p, dict) else dict(p)
        out.append(q)
        if type(seg) is list and len(seg) == 1:  # the common case first: no ABC check per prediction
            at = rings.get(frame)
            if at is None:
                at = rings[frame] = ([], [])
            at[0].append(n)
            at[1].append(seg[0])
            continue
        h, w = frame
        if isinstance(seg, Mapping):
            if list(seg["size"]) != [h, w]:
                wrong.append((n, f"{seg['size'][1]}x{seg['size'][0]}", f"{w}x{h}"))
                continue
            rle = mask_utils.frPyObjects(dict(seg), h, w) if isinstance(seg["counts"], list) else dict(seg)
        elif len(seg) == 1:
            rings.setdefault(frame, ([], []))[0].append(n)
            rings[frame][1].append(seg[0])
            continue
        else:
            rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, r)) for r in seg], h, w))
        if isinstance(rle["counts"], bytes):
            rle["counts"] = rle["counts"].decode("ascii")
        q["segmentation"] = rle
    parts = [(h, w, at[1][start:start + 4096]) for (h, w), at in rings.items()
             for start in range(0, len(at[1]), 4096)]
    counts = iter(_rasterized(parts))
    for (h, w), (positions, _) in rings.items():  # the order of parts: frame by frame, in order
        for n, c in zip(positions, counts):
            out[n]["segmentation"] = {"size": [h, w], "counts": c.decode("ascii")}
    if wrong:
        n, got, want = wrong[0]
        raise InputError(
            f"{len(wrong)} of {len(predictions)} predicted masks are not the size of their image; the first, "
            f"predictions[{n}], is {got}, its image {want}",
            where=f"predictions[{n}].segmentation.size",
            fix="predict masks at the image's stored size ([height, width] of the version's image)",
            bad=len(wrong), first_index=n)
    return out


# From this many single-ring polygons on, half are rasterized in a forked child (below that the
# fork costs more than it saves). A module constant: the tests lower it to run the forked path.
PARALLEL_RINGS = 20_000


def _rasterized(parts: list[tuple[int, int, list[list[float]]]]) -> list[bytes]:
    """Each ring's compressed RLE ``counts`` (pycocotools' ``frPyObjects`` in its ``(height,
    width)`` frame), in order. Many rings are split in two, the second half rasterized in a
    forked child beside this process (``parallel.ForkedCall``: it inherits the rings, nothing is
    pickled on the way in; where fork or a second CPU is missing it runs here): frPyObjects holds
    the GIL, so a thread could not share the work, and rasterizing 100,000 predicted polygons was
    a quarter of a mask evaluation. The same C function on the same rings: the same bytes,
    whichever process ran it."""
    total = sum(len(rings) for _, _, rings in parts)
    if total < PARALLEL_RINGS:
        return _rasterize(parts)
    from lensvault.parallel import ForkedCall

    mine: list[tuple[int, int, list[list[float]]]] = []
    theirs: list[tuple[int, int, list[list[float]]]] = []
    left = total // 2
    for h, w, rings in parts:
        take = min(len(rings), left)
        left -= take
        if take:
            mine.append((h, w, rings[:take]))
        if take < len(rings):
            theirs.append((h, w, rings[take:]))
    with ForkedCall(_rasterize, theirs) as other:
        done = _rasterize(mine)
        return done + other.result()


def _rasterize(parts: list[tuple[int, int, list[list[float]]]]) -> list[bytes]:
    from pycocotools import mask as mask_utils

    return [rle["counts"] for h, w, rings in parts for rle in mask_utils.frPyObjects(rings, h, w)]


def _sigmas(gt: Mapping[str, Any], predictions: Sequence[Mapping[str, Any]],
            given: Sequence[float] | None) -> list[float]:
    """OKS sigmas: as given, else COCO's when the points are COCO's 17; refused when their number
    is not the number of points of every category and prediction."""
    counts = {len(c["keypoints"]) for c in gt["categories"] if c.get("keypoints")}
    counts |= {len(a["keypoints"]) // 3 for a in gt["annotations"] if a.get("keypoints")}
    counts |= {len(p["keypoints"]) // 3 for p in predictions}
    sigmas = list(given) if given is not None else None
    if sigmas is None:
        if counts and counts != {len(COCO_KEYPOINT_SIGMAS)}:
            raise InputError(
                f"keypoints have {', '.join(map(str, sorted(counts)))} points, COCO's default sigmas are for 17",
                where="keypoints", fix="give one OKS sigma per keypoint (--oks-sigmas 0.026,0.025,...)")
        return list(COCO_KEYPOINT_SIGMAS)
    if not sigmas or not all(_finite(v) and v > 0 for v in sigmas):
        raise InputError(f"OKS sigmas must be positive numbers, got {sigmas!r}", where="--oks-sigmas",
                         fix="give one positive sigma per keypoint")
    wrong = sorted(c for c in counts if c != len(sigmas))
    if wrong:
        raise InputError(f"{len(sigmas)} OKS sigmas given, but keypoints have {', '.join(map(str, wrong))} points",
                         where="--oks-sigmas", fix="give one sigma per keypoint of the dataset's keypoint classes")
    return sigmas


def _segm_results(coco_gt: Any, coco_class: Any, results: list[dict[str, Any]]) -> Any:
    """What ``loadRes`` makes of mask results (its branch for results without a bbox), with its
    per-result ``area`` calls made for many at once (pycocotools' C, as loadRes': faster-coco-eval's
    ``area`` takes five times as long), and without the ``bbox`` it adds from each mask: mask AP
    never reads a result's box (COCOeval compares masks, ranges by ``area``), and at 100,000 masks
    those calls were 7 s of the evaluation."""
    import copy

    import numpy as np
    from pycocotools import mask as mask_utils

    segs = [r["segmentation"] for r in results]
    # pycocotools' area() counts its inputs in a uint8: at most 255 per call.
    areas = np.concatenate([mask_utils.area(segs[s:s + 255]) for s in range(0, len(segs), 255)]) \
        if segs else np.zeros(0)
    del segs
    for i, (r, area) in enumerate(zip(results, areas.tolist())):
        r["area"] = float(area)
        r["id"] = i + 1
        r["iscrowd"] = 0
    res = coco_class()
    res.dataset["info"] = copy.deepcopy(coco_gt.dataset.get("info", {}))
    res.dataset["images"] = list(coco_gt.dataset["images"])
    res.dataset["categories"] = copy.deepcopy(coco_gt.dataset["categories"])
    res.dataset["annotations"] = results
    res.createIndex()
    return res


def _load(gt: Mapping[str, Any], predictions: Sequence[Mapping[str, Any]], coco_class: Any = None, *,
          owned: bool = False, segm: bool = False):
    if coco_class is None:
        from pycocotools.coco import COCO

        coco_class = COCO

    # COCOeval adds keys ("ignore") to GT annotations and loadRes adds id/area/segmentation to
    # results: give them copies so the caller's dicts stay as they were (unless they are ``owned``).
    annotations = []
    for n, ann in enumerate(gt["annotations"], start=1):
        copy = ann if owned else dict(ann)
        copy.setdefault("id", n)  # evaluateImg keys matches by id
        copy.setdefault("iscrowd", 0)
        if "area" not in copy:  # exported datasets often omit it; COCO's own is box area
            copy["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        annotations.append(copy)
    with _quiet():
        coco_gt = coco_class()
        coco_gt.dataset = {
            "images": list(gt["images"]),
            "annotations": annotations,
            "categories": list(gt["categories"]),
        }
        coco_gt.createIndex()
        if predictions and owned and segm and "segmentation" in predictions[0] \
                and "bbox" not in predictions[0] and "caption" not in predictions[0]:
            coco_dt = _segm_results(coco_gt, coco_class, [dict(p) if not isinstance(p, dict) else p
                                                          for p in predictions])
        elif predictions and owned:
            coco_dt = coco_gt.loadRes(list(predictions))  # resolved, checked and ours: used as they are
        elif predictions:
            # Only the keys COCO reads, as given (loadRes picks its branch by the first result's keys,
            # as for anyone running COCOeval on the same file), numbers as floats.
            results = []
            for p in predictions:
                r: dict[str, Any] = {"image_id": p["image_id"], "category_id": p["category_id"],
                                     "score": float(p["score"])}
                if "bbox" in p:
                    r["bbox"] = [float(v) for v in p["bbox"]]
                if "segmentation" in p:
                    r["segmentation"] = p["segmentation"]
                if "keypoints" in p:
                    r["keypoints"] = [float(v) for v in p["keypoints"]]
                results.append(r)
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list (it inspects results[0]); no detections is a
            # legitimate result that scores zero wherever there is ground truth.
            coco_dt = coco_class()
            coco_dt.dataset = {"images": list(gt["images"]), "annotations": [], "categories": list(gt["categories"])}
            coco_dt.createIndex()
    return coco_gt, coco_dt


def _run_cocoeval(coco_gt, coco_dt, *, image_ids: list | None, iou_type: str = "bbox",
                  sigmas: Sequence[float] | None = None, cocoeval: _Backend | None = None):
    import numpy as np

    from lensvault.evaluations.class_halves import class_halves, evaluate_in_halves

    cocoeval = cocoeval or _backend("pycocotools")
    with _quiet():
        if cocoeval.name == "faster-coco-eval":
            given = iou_type == "segm" and cocoeval.given_rle is not None and all(
                "rle" in a for coco in (coco_gt, coco_dt) for a in coco.anns.values())
            # One thread for the mask IoUs: faster-coco-eval's pool (8 threads) runs a call that
            # holds the GIL, so on 2 cores it only adds its queueing (~0.5 s at 100,000 masks).
            evaluator = (cocoeval.given_rle if given else cocoeval.COCOeval)(
                coco_gt, coco_dt, iouType=iou_type, print_function=_silent,
                kpt_oks_sigmas=None if sigmas is None else list(sigmas), rle_iou_max_workers=1)
        else:
            evaluator = cocoeval.COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        if image_ids is not None:
            evaluator.params.imgIds = sorted(image_ids)
        # Many annotations: half of the classes evaluated in a forked child (class_halves: the same
        # arrays, class by class). faster-coco-eval only: pycocotools is the reference, kept as it is.
        halves = class_halves(coco_gt, coco_dt, evaluator.params.catIds, image_ids) \
            if cocoeval.name == "faster-coco-eval" and evaluator.params.useCats else None
        if halves is None:
            evaluator.evaluate()
            evaluator.accumulate()
        else:
            evaluate_in_halves(evaluator, *halves)
        evaluator.summarize()
    return evaluator


def _silent(*_args: Any, **_kwargs: Any) -> None:
    return None


def _metric(value: float) -> float | None:
    # COCOeval writes -1 where a metric is undefined (no GT in that area range, say).
    value = float(value)
    return None if value < 0 or math.isnan(value) else value


def _overall(evaluator, keys: Sequence[str] = OVERALL_KEYS) -> dict[str, float | None]:
    return {key: _metric(evaluator.stats[i]) for i, key in enumerate(keys)}


def _per_class(evaluator, categories: Sequence[Mapping[str, Any]], coco_gt) -> dict[str, dict]:
    import numpy as np

    # precision: [IoU thresholds, recall thresholds, categories, area ranges, max dets];
    # area range 0 is "all", max dets -1 is 100 — the setting of the headline AP.
    precision = evaluator.eval["precision"]
    iou_thrs = evaluator.params.iouThrs
    iou50 = int(np.argmin(np.abs(iou_thrs - 0.5)))
    iou75 = int(np.argmin(np.abs(iou_thrs - 0.75)))
    by_id = {cat["id"]: cat for cat in categories}
    names = [str(by_id[cid].get("name", cid)) for cid in evaluator.params.catIds]
    per_class: dict[str, dict] = {}
    # What getAnnIds(catIds=[id]) counts, in one pass (it walks every annotation per class).
    per_category = Counter(a["category_id"] for a in coco_gt.dataset["annotations"])
    for k, cat_id in enumerate(evaluator.params.catIds):
        name = names[k]
        if names.count(name) > 1:
            name = f"{name}#{cat_id}"  # two categories with one name must not overwrite each other
        per_class[name] = {
            "AP": _mean_valid(precision[:, :, k, 0, -1]),
            "AP50": _mean_valid(precision[iou50, :, k, 0, -1]),
            "AP75": _mean_valid(precision[iou75, :, k, 0, -1]),
            "annotations": per_category[cat_id],
        }
    return per_class


def _mean_valid(values) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


# --------------------------------------------------------------------------- slices


def _slices(
    image_tags: Mapping[Any, Mapping[str, Any]] | None, slice_keys: Iterable[str] | None, image_ids: list
) -> dict[str, list]:
    if not image_tags:
        return {}
    known = set(image_ids)
    # JSON object keys are strings: accept "17" for image 17 when the dataset uses ints.
    by_text = {str(i): i for i in image_ids}
    tags: dict[Any, Mapping[str, Any]] = {}
    for raw_id, image_tag in image_tags.items():
        image_id = raw_id if raw_id in known else by_text.get(str(raw_id))
        if image_id is not None:
            tags[image_id] = image_tag
    keys = sorted({k for t in tags.values() for k in t}) if slice_keys is None else list(slice_keys)
    members: dict[str, list] = {}
    for key in keys:
        values: dict[str, list] = {}
        for image_id in image_ids:
            tag = tags.get(image_id)
            if tag is not None and key in tag:
                values.setdefault(str(tag[key]), []).append(image_id)
        for value in sorted(values):
            members[f"{key}={value}"] = values[value]
    return members
