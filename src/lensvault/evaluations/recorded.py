"""Evaluate detections against a dataset version's split and record the result.

Predictions are a JSON list of COCO results (or ``{"annotations": [...]}``). Each names its
image by ``image_id`` (the version's image ids, lensvault.annotations.image_ids: the same in
``dataset export --format coco``, the ``annotations/instances.json`` that ``lensvault run``
hands the script and ``VisionDataset``) or by ``file_name`` (the image's path in the version; a
bare file name works when it is unique), and its class by ``category_id`` or ``category_name``.
Anything that does not resolve is an error naming the first offenders: a silent drop would
inflate or deflate AP.

An evaluation is attached to a run, to a registered model, or to neither (ad-hoc scoring of a
predictions file); whichever it is, it records where its numbers come from: its id, the
dataset version and the split (lensvault.runs.metric_sources).
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import InputError, NotFound, UsageError

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["evaluate", "list_evaluations"]

_SHOW = 5


def _load_predictions(path: Path) -> tuple[list, str]:
    """The predictions, checked, and the sha256 of the file's bytes (which are not kept: at
    100,000 detections they are 15 MB held through the whole evaluation; ``_bytes_scored``
    reads them again for the store and checks they are the ones scored)."""
    import hashlib

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise NotFound("predictions file not found", where=str(path), fix="give a COCO results JSON file") from e
    try:
        import orjson

        data = orjson.loads(raw)  # ~3x json's speed on 100,000 detections
    except orjson.JSONDecodeError:
        data = None  # json reads NaN and Infinity (reported, located, below) and says what is wrong
    try:
        data = json.loads(raw) if data is None else data
    except ValueError as e:
        raise InputError(f"predictions are not valid JSON: {e}", where=str(path),
                         fix="write a JSON list of {image_id, category_id, bbox, score}") from e
    except RecursionError as e:
        raise InputError("predictions are nested too deeply to be detections", where=str(path),
                         fix="write a JSON list of {image_id, category_id, bbox, score}") from e
    prefix = ""
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):
        data, prefix = data["annotations"], "annotations"
    if not isinstance(data, list):
        raise InputError("predictions must be a JSON list of detections", where=str(path),
                         fix="write a JSON list of {image_id, category_id, bbox, score}")
    _check_prediction_fields(data, f"{path}, {prefix}")
    return data, hashlib.sha256(raw).hexdigest()


def _bytes_scored(path: Path, digest: str) -> bytes:
    """The predictions file's bytes, refused if they are not the ones scored (it changed meanwhile)."""
    import hashlib

    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise InputError("the predictions file went away while it was being scored", where=str(path),
                         fix="keep the file in place until the evaluation ends, then evaluate again") from e
    if hashlib.sha256(raw).hexdigest() != digest:
        raise InputError("the predictions file changed while it was being scored", where=str(path),
                         fix="wait for whatever writes the file to finish, then evaluate again")
    return raw


def _check_prediction_fields(preds: list, where: str) -> None:
    """Each field that is present has its type; bbox and score are finite numbers. Located
    (``preds.json, [17].bbox[2]``): json reads NaN and Infinity, and a list where an id
    belongs would otherwise fail as a traceback while resolving."""
    import math

    if _plain_results(preds):
        return  # the common file: every field checked at once, nothing to locate

    def bad(kind, value) -> bool:
        if kind == "id":
            return type(value) not in (int, str)
        if kind == "text":
            return type(value) is not str
        return type(value) not in (int, float) or not math.isfinite(value)

    problems = []
    for n, p in enumerate(preds):
        if not isinstance(p, dict):
            continue  # reported with the others by _resolve_predictions
        for key, kind in (("image_id", "id"), ("file_name", "text"), ("category_id", "id"),
                          ("category_name", "text"), ("score", "number")):
            if key in p and bad(kind, p[key]):
                problems.append((f"[{n}].{key}", p[key]))
        if "bbox" in p:
            box = p["bbox"]
            if type(box) is not list or len(box) != 4:
                problems.append((f"[{n}].bbox", box))
            else:
                problems += [(f"[{n}].bbox[{i}]", v) for i, v in enumerate(box) if bad("number", v)]
    if problems:
        pos, value = problems[0]
        kinds: dict[type, str] = {list: "a list", dict: "an object"}
        shown = kinds.get(type(value)) or json.dumps(value)[:60]
        raise InputError(f"{len(problems)} prediction field(s) have the wrong type or are not finite; "
                         f"the first, {pos}, is {shown}", where=f"{where}{pos}",
                         fix="ids are integers (or file names / category names text), bbox is four finite "
                             "numbers [x, y, width, height], score a finite number")


# Keys a COCO result may carry that need no resolving (names do: file_name, category_name).
_PLAIN_KEYS = frozenset({"image_id", "category_id", "score", "bbox", "segmentation", "keypoints", "area", "id",
                         "iscrowd"})


def _plain_results(preds: list) -> bool:
    """True when every prediction is an object of ``_PLAIN_KEYS`` with integer ids, a finite
    score and (where present) a bbox of four finite numbers — checked column by column, not
    prediction by prediction (100,000 detections: a loop per field was a second of the eval).
    False says nothing: the per-prediction checks then locate what is wrong, if anything."""
    from itertools import chain

    import numpy as np

    if not preds or set(map(type, preds)) != {dict}:
        return False
    if not set(chain.from_iterable(preds)) <= _PLAIN_KEYS:
        return False
    try:
        ids = [p["image_id"] for p in preds]
        cats = [p["category_id"] for p in preds]
        scores = [p["score"] for p in preds]
    except KeyError:
        return False
    if not (set(map(type, ids)) <= {int} and set(map(type, cats)) <= {int} and set(map(type, scores)) <= {int, float}):
        return False
    if not np.isfinite(np.asarray(scores, dtype=np.float64)).all():
        return False
    boxes = [p.get("bbox") for p in preds]
    present = [b for b in boxes if b is not None]
    if present:
        if set(map(type, present)) != {list} or set(map(len, present)) != {4}:
            return False
        if not set(map(type, chain.from_iterable(present))) <= {int, float}:
            return False
        if not np.isfinite(np.asarray(present, dtype=np.float64)).all():
            return False
    return True


def _resolve_predictions(preds: list, gt: dict, split_label: str, all_ids: dict[str, int]) -> list[dict]:
    in_split = {im["id"] for im in gt["images"]}
    cat_ids = {c["id"] for c in gt["categories"]}
    if _plain_results(preds) and {p["image_id"] for p in preds} <= in_split \
            and {p["category_id"] for p in preds} <= cat_ids:
        return preds  # nothing to resolve or refuse: ids of the split and the class map
    by_base: dict[str, list[int]] = {}
    for p, i in all_ids.items():
        by_base.setdefault(p.rsplit("/", 1)[-1], []).append(i)
    known_ids = set(all_ids.values())
    cat_by_name = {c["name"]: c["id"] for c in gt["categories"]}
    unknown_images, outside_split, unknown_classes, bad = [], [], [], []
    out = []
    for n, p in enumerate(preds):
        if not isinstance(p, dict):
            bad.append(f"#{n}: not an object")
            continue
        # A copy only where a name is resolved: at 100,000 detections a copy of each is ~30 MB.
        q = dict(p) if "file_name" in p or "category_name" in p else p
        if "image_id" in q:
            iid = q["image_id"]
            if iid not in known_ids:
                unknown_images.append(repr(iid))
                continue
        elif "file_name" in q:
            fn = str(q.pop("file_name"))
            iid = all_ids.get(fn)
            if iid is None:
                matches = by_base.get(fn.rsplit("/", 1)[-1], [])
                iid = matches[0] if len(matches) == 1 else None
            if iid is None:
                unknown_images.append(repr(fn))
                continue
            q["image_id"] = iid
        else:
            bad.append(f"#{n}: no image_id or file_name")
            continue
        if q["image_id"] not in in_split:
            outside_split.append(repr(p.get("image_id", p.get("file_name"))))
            continue
        if "category_id" not in q and "category_name" in q:
            name = q.pop("category_name")
            if name not in cat_by_name:
                unknown_classes.append(repr(name))
                continue
            q["category_id"] = cat_by_name[name]
        q.pop("category_name", None)
        if q.get("category_id") not in cat_ids:
            unknown_classes.append(repr(q.get("category_id")))
            continue
        out.append(q)
    problems = []
    if unknown_images:
        problems.append(f"{len(unknown_images)} prediction(s) name images the dataset does not have: "
                        + _first(sorted(set(unknown_images))))
    if outside_split:
        problems.append(f"{len(outside_split)} prediction(s) are for images outside split {split_label}: "
                        + _first(sorted(set(outside_split))))
    if unknown_classes:
        known = ", ".join(f"{c['id']}={c['name']}" for c in gt["categories"])
        problems.append(f"{len(unknown_classes)} prediction(s) name unknown classes: "
                        + _first(sorted(set(unknown_classes))) + f" (known: {known})")
    if bad:
        problems.append(f"{len(bad)} malformed prediction(s): " + _first(bad, "; "))
    if problems:
        raise InputError("; ".join(problems), where=split_label,
                         fix="predictions must use the image ids or file names and the class ids or names "
                             "of the dataset version (see `lensvault dataset export NAME@VER DIR --format coco`)")
    return out


def compute_metrics(vault: Vault, *, dataset: str, split: str | None, predictions, slice_keys=None,
                    task: str = "detection", **options) -> dict:
    """Metrics of a predictions file (a folder for semantic segmentation) on a dataset version's
    split, without recording them."""
    return _compute(vault, dataset=dataset, split=split, predictions=predictions, slice_keys=slice_keys,
                    task=task, **options)[1]


def _compute(vault: Vault, *, dataset: str, split: str | None, predictions, slice_keys=None, task: str = "detection",
             ignore_index: int = 255, top_k: int = 5, oks_sigmas=None, multi_label: bool = False,
             threshold: float = 0.5):
    from lensvault.evaluations.coco_metrics import evaluate_detections
    from lensvault.evaluations.tasks import IOU_TYPE, check_task, compute_task, image_index, task_ground_truth

    check_task(task)
    if multi_label and task != "classification":
        raise UsageError(f"--multi-label is for classification, not {task}", where="--multi-label",
                         fix="pass --task classification --multi-label, or leave --multi-label out")
    ds = vault.dataset(dataset)
    if not ds.is_vision:
        raise UsageError(f"{ds.ref} has no annotations to evaluate against", where=ds.ref,
                         fix="evaluate on a version snapshotted with --format")
    all_ids, splits = image_index(ds)
    if split is not None and split not in splits:
        raise UsageError(f"{ds.ref} has no split {split!r}", where="--split",
                         fix=f"known splits: {', '.join(sorted(splits)) or 'none'}")
    # Every task reads the annotations as `dataset export --format coco` writes them: in the same
    # order, with COCO's area (a polygon's or mask's own, which sets the area ranges of APs/APm/APl).
    # Boxes are scored without the masks; the COCO tasks without a masks import's ignore regions.
    gt = task_ground_truth(ds, split, shapes=task != "detection", ignore_regions=task not in IOU_TYPE,
                           rle_masks=task == "instance-segmentation")
    if task not in IOU_TYPE:
        if not Path(predictions).exists():
            raise NotFound("predictions not found", where=str(predictions),
                           fix="give a folder of PNG masks (semantic segmentation) or a CSV/JSON file (classification)")
        result, raw = compute_task(ds, gt, all_ids, task, Path(predictions), slice_keys=slice_keys,
                                   ignore_index=ignore_index, top_k=top_k, multi_label=multi_label,
                                   threshold=threshold)
        return ds, {"task": task, **result}, raw
    preds, digest = _load_predictions(Path(predictions))
    resolved = _resolve_predictions(preds, gt, f"{ds.ref}:{split or 'all'}", all_ids)
    del preds
    ds.release_tables()  # the ground truth is read: its Arrow tables are not needed while COCOeval runs
    tags = {im["id"]: im.get("tags", {}) for im in gt["images"]}
    for a in gt["annotations"]:  # what COCO does not read (the ground truth is ours: no copies)
        a.pop("kind", None)
        a.pop("rle", None)
        a.pop("polygon", None)
    coco_gt = {"images": gt["images"], "categories": gt["categories"], "annotations": gt["annotations"]}
    del gt
    result = evaluate_detections(coco_gt, resolved, image_tags=tags, slice_keys=slice_keys,
                                 iou_type=IOU_TYPE[task], kpt_sigmas=oks_sigmas, owned=True)
    return ds, {"task": task, **result}, (Path(predictions), digest)


def evaluate(vault: Vault, *, dataset: str, predictions, split: str | None = "test", run: str | None = None,
             model: str | None = None, slice_keys=None, task: str = "detection", ignore_index: int = 255,
             top_k: int = 5, oks_sigmas=None, multi_label: bool = False, threshold: float = 0.5) -> dict:
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.repos.evaluations import EvaluationRepo
    from lensvault.evaluations.tasks import headline_metrics
    from lensvault.runs.metric_sources import EVALUATION, MetricSource
    from lensvault.runs.resolve import resolve_run_id

    if run is not None and model is not None:
        raise UsageError("an evaluation belongs to a run or to a model, not to both", where="--run/--model",
                         fix="pass one of --run ID and --model NAME@VER (or neither, for ad-hoc scoring)")
    run_id = model_name = model_version = None
    with vault.catalog.read() as conn:
        if run is not None:
            run_id = resolve_run_id(conn, run)
        elif model is not None:
            from lensvault.catalog.model_refs import resolve_model

            found = resolve_model(conn, model)
            model_name, model_version, run_id = found.name, found.version, found.run_id
    ds, result, raw = _compute(vault, dataset=dataset, split=split, predictions=predictions, slice_keys=slice_keys,
                               task=task, ignore_index=ignore_index, top_k=top_k, oks_sigmas=oks_sigmas,
                               multi_label=multi_label, threshold=threshold)
    oid = vault.store.put_bytes(raw if isinstance(raw, bytes) else _bytes_scored(*raw))
    eval_id = "eval-" + datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ") + "-" + secrets.token_hex(2)
    row = {"eval_id": eval_id, "run_id": run_id, "model_name": model_name, "model_version": model_version,
           "dataset": ds.ref, "dataset_snapshot": ds.snapshot_id, "split": split,
           "metrics": json.dumps(result, sort_keys=True), "predictions_oid": oid, "created_at": utcnow(),
           "created_by": vault.actor}
    model_ref = f"{model_name}@{model_version}" if model_name else None
    source = MetricSource(EVALUATION, eval_id=eval_id, dataset=ds.ref, split=split, run_id=run_id, model=model_ref)
    from lensvault import interrupts

    with vault.store.committing([oid]), interrupts.commit(eval_id), vault.catalog.begin() as conn:
        EvaluationRepo(conn).add(row)
        vault.catalog.add_object_refs(conn, "evaluation", eval_id, [oid])
        vault.catalog.append_event(conn, "evaluation.add", "evaluation", eval_id, after={
            "run_id": run_id, "model": model_ref, "ad_hoc": run_id is None and model_ref is None,
            "dataset": ds.ref, "split": split, "task": task, **headline_metrics(result)})
        from lensvault import ledger  # the store's record of it (catalog rebuild); run_id may be None

        ledger.record(vault, conn, "evaluation", {"row": row}, objects=[oid])
    return {"eval_id": eval_id, "run_id": run_id, "model": model_ref, "ad_hoc": run_id is None and model_ref is None,
            "dataset": ds.ref, "dataset_snapshot": ds.snapshot_id, "split": split, "source": source.to_dict(),
            **result}


def list_evaluations(vault: Vault, *, run: str | None = None, model: str | None = None, dataset: str | None = None,
                     ad_hoc: bool = False) -> list[dict]:
    """Recorded evaluations, oldest first, each with its ``source``; filtered by the run, model
    version or dataset version they belong to, or (``ad_hoc``) only those attached to neither."""
    from lensvault.catalog.repos.evaluations import EvaluationRepo
    from lensvault.runs.metric_sources import evaluation_group

    dataset_ref = vault.dataset(dataset).ref if dataset else None
    run_id = model_key = None
    with vault.catalog.query() as conn:
        if run:
            from lensvault.runs.resolve import resolve_run_id

            run_id = resolve_run_id(conn, run)
        if model:
            from lensvault.catalog.model_refs import resolve_model

            row = resolve_model(conn, model)
            model_key = (row.name, row.version, row.run_id)
        rows = EvaluationRepo(conn).find(dataset=dataset_ref, run_id=run_id, model=model_key, ad_hoc=ad_hoc)
    out = []
    for r in rows:
        group = evaluation_group(r)
        out.append({"eval_id": r.eval_id, "run_id": r.run_id, "model": group["source"]["model"],
                    "ad_hoc": r.run_id is None and r.model_name is None, "dataset": r.dataset, "split": r.split,
                    "created_at": r.created_at, "created_by": r.created_by, "source": group["source"],
                    **json.loads(r.metrics)})
    return out


def _first(values: list[str], sep: str = ", ") -> str:
    """The first few values, then how many more there are (an error never drops them silently)."""
    return sep.join(values[:_SHOW]) + (f" … and {len(values) - _SHOW} more" if len(values) > _SHOW else "")
