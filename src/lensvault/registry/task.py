"""What a registered model does: its task and the schema of its outputs, recorded in the bundle.

The task is given (``model register --task``), else the task the run was evaluated for (its latest
evaluation's), else read from the run's dataset version: image labels → classification; PNG class
masks → semantic-segmentation; keypoints → keypoints; else detection (polygons and RLE masks
included: COCO instances carry them for detectors too; an instance-segmentation model says so by
its evaluation or by ``--task``). The output schema follows from the task and the
label map (keypoint names per class for keypoints), so a consumer knows what to read:

    detection               boxes (x1, y1, x2, y2), labels, scores
    instance-segmentation   boxes, masks (one per instance, image-sized), labels, scores
    keypoints               boxes, keypoints (x, y, visibility per named point), labels, scores
    semantic-segmentation   mask (image-sized, one class id per pixel)
    classification          labels, scores (one per class)

A change of either between two versions of a model is MAJOR (lensvault.registry.rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["OUTPUTS", "evaluated_task", "infer_task", "output_schema"]

OUTPUTS: dict[str, list[str]] = {
    "detection": ["boxes", "labels", "scores"],
    "instance-segmentation": ["boxes", "masks", "labels", "scores"],
    "keypoints": ["boxes", "keypoints", "labels", "scores"],
    "semantic-segmentation": ["mask"],
    "classification": ["labels", "scores"],
}


def infer_task(vault: Vault, dataset_ref: str | None) -> str | None:
    """The task a run's dataset version is annotated for (None without annotations)."""
    if not dataset_ref:
        return None
    ds = vault.dataset(dataset_ref)
    if not ds.is_vision:
        return None
    annotations = ds.annotations()
    assert annotations is not None  # a vision version has its annotations table
    kinds = set(annotations.column("kind").to_pylist())
    if "label" in kinds:
        return "classification"
    if (ds.manifest().source or {}).get("format") == "masks":
        return "semantic-segmentation"
    if "keypoints" in kinds:
        return "keypoints"
    return "detection"


def evaluated_task(metrics: list[dict] | None) -> str | None:
    """The task of the run's latest evaluation (metric groups as the bundle records them)."""
    groups = [g for g in (metrics or []) if isinstance(g, dict) and (g.get("source") or {}).get("kind") == "evaluation"]
    return groups[-1].get("task", "detection") if groups else None


def output_schema(task: str, label_map: dict, keypoints: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the model outputs for ``task``: the fields, and for keypoints the point names per class
    (from the dataset's class map, by class id as text)."""
    from lensvault.evaluations.tasks import check_task

    check_task(task)
    schema: dict[str, Any] = {"task": task, "outputs": list(OUTPUTS[task]),
                              "classes": len(label_map.get("classes", []))}
    if task == "keypoints":
        schema["keypoints"] = {k: list(v.get("names", [])) for k, v in sorted((keypoints or {}).items())}
    if task == "semantic-segmentation":
        schema["ignore_index"] = 255
    return schema
