"""Train the demo shape detector on a COCO dataset folder and evaluate it.

Written to run under ``lensvault run`` (which sets the environment below), but it also
runs on its own: every input can be given as a flag, and flags win over the environment.

  LENSVAULT_DATA_DIR   / --data      folder with annotations/instances.json and the images
  LENSVAULT_CONFIG     / --config    YAML or JSON: seed, model.*, preprocess.*, train.*
  LENSVAULT_SEED       / --seed      training seed (wins over the config's seed)
  LENSVAULT_OUTPUT_DIR / --output    gets model.npz, labelmap.json, predictions.json,
                                     predictions_val.json and metrics.json
  --eval-annotations FILE            score against other labels (e.g. corrected ones)

Splits come from the dataset (``splits`` in the COCO file, or a splits.json next to the
annotations); without them, a hash split 70/20/10 by LENSVAULT_SPLIT_SEED (else the seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from lensvault.demo.detector import Model, resolve_params, train
from lensvault.demo.scoring import ap50, predict_results
from lensvault.demo.splits import split_names

DEFAULT_SEED = 42


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    data_dir = Path(args.data or os.environ.get("LENSVAULT_DATA_DIR") or "data")
    config_path = args.config or os.environ.get("LENSVAULT_CONFIG")
    output_dir = Path(args.output or os.environ.get("LENSVAULT_OUTPUT_DIR") or "outputs")
    config = _load_config(Path(config_path)) if config_path else {}
    seed = int(args.seed if args.seed is not None else os.environ.get("LENSVAULT_SEED") or config.get("seed", DEFAULT_SEED))
    params = resolve_params(config)

    coco = json.loads((data_dir / "annotations" / "instances.json").read_text(encoding="utf-8"))
    split_seed = int(os.environ.get("LENSVAULT_SPLIT_SEED") or seed)
    splits = _split_ids(coco, data_dir, split_seed)
    images_dir = _images_dir(data_dir, coco)
    print(f"data {data_dir}: {len(coco['images'])} images, {len(coco['annotations'])} boxes; "
          + ", ".join(f"{name} {len(ids)}" for name, ids in splits.items()))
    print(f"seed {seed}; params " + json.dumps(params, sort_keys=True))
    tracking = _tracking()
    if "log_params" in tracking:
        tracking["log_params"]({**params, "seed": seed})

    started = time.monotonic()
    epochs = params["train.epochs"]
    history: list[tuple[float, float]] = []

    def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
        history.append((loss, accuracy))
        if epoch == 1 or epoch % 10 == 0 or epoch == epochs:  # every epoch is logged; a few are printed
            print(f"epoch {epoch:3d}/{epochs}  loss {loss:.4f}  accuracy {accuracy:.3f}", flush=True)
        if "log_metrics" in tracking:
            tracking["log_metrics"]({"train_loss": loss, "train_accuracy": accuracy}, step=epoch)

    model = train(images_dir, coco, splits["train"], params, seed, on_epoch=on_epoch)
    print(f"trained in {time.monotonic() - started:.1f}s")

    eval_coco = coco
    if args.eval_annotations:
        eval_coco = json.loads(Path(args.eval_annotations).read_text(encoding="utf-8"))
    eval_split = "test" if splits.get("test") else "val"
    outputs = _write_outputs(model, images_dir, eval_coco, splits, eval_split, output_dir, history)
    for path in outputs:
        if "log_artifact" in tracking:
            tracking["log_artifact"](path)
    metrics = json.loads((output_dir / "metrics.json").read_text(encoding="utf-8"))
    print(f"AP50 on {eval_split}: {metrics['ap50']:.3f}  "
          + "  ".join(f"{name} {value['ap50']:.3f}" for name, value in metrics["per_slice"].items()))
    return 0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="dataset folder (default: $LENSVAULT_DATA_DIR)")
    parser.add_argument("--config", help="YAML/JSON config (default: $LENSVAULT_CONFIG)")
    parser.add_argument("--seed", type=int, help="training seed (default: $LENSVAULT_SEED, then config)")
    parser.add_argument("--output", help="output folder (default: $LENSVAULT_OUTPUT_DIR)")
    parser.add_argument("--eval-annotations", help="COCO file to evaluate against instead")
    return parser.parse_args(argv)


def _load_config(path: Path) -> dict[str, Any]:
    # YAML is a superset of JSON, so one loader reads both.
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _split_ids(coco: dict[str, Any], data_dir: Path, seed: int) -> dict[str, list[int]]:
    names = coco.get("splits")
    for candidate in (data_dir / "splits.json", data_dir / "annotations" / "splits.json"):
        if names is None and candidate.is_file():
            names = json.loads(candidate.read_text(encoding="utf-8"))
    if names is None:
        names = split_names([image["file_name"] for image in coco["images"]], seed)
    by_name = {image["file_name"]: int(image["id"]) for image in coco["images"]}
    return {split: sorted(by_name[name] for name in names.get(split, []) if name in by_name)
            for split in ("train", "val", "test")}


def _images_dir(data_dir: Path, coco: dict[str, Any]) -> Path:
    """COCO file names are relative to the dataset folder (LensVault) or to images/ (plain COCO)."""
    first = coco["images"][0]["file_name"] if coco["images"] else ""
    for candidate in (data_dir, data_dir / "images"):
        if (candidate / first).is_file():
            return candidate
    raise SystemExit(f"cannot find image {first!r} under {data_dir} or {data_dir / 'images'}")


def _tracking() -> dict[str, Any]:
    """LensVault's tracking functions when this LensVault has them; the script works without."""
    try:
        import lensvault
    except ImportError:
        return {}
    found = {}
    for name in ("log_params", "log_metrics", "log_artifact"):
        try:
            function = getattr(lensvault, name, None)
        except (ImportError, AttributeError):
            function = None
        if callable(function):
            found[name] = function
    return found


def _write_outputs(
    model: Model,
    images_dir: Path,
    coco: dict[str, Any],
    splits: dict[str, list[int]],
    eval_split: str,
    output_dir: Path,
    history: list[tuple[float, float]],
) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / "model.npz"
    model.save(model_path)
    labelmap_path = output_dir / "labelmap.json"
    labelmap = {str(k): v for k, v in sorted(model.labelmap.items())}
    _write_json(labelmap_path, labelmap)

    results = {split: predict_results(model, images_dir, coco, splits[split]) for split in ("val", "test")}
    predictions_path = output_dir / "predictions.json"
    _write_json(predictions_path, results[eval_split])
    val_path = output_dir / "predictions_val.json"
    _write_json(val_path, results["val"])

    ids = splits[eval_split]
    scored = ap50(coco, results[eval_split], ids)
    metrics: dict[str, Any] = {
        "ap50": scored["ap50"],
        "val_ap50": ap50(coco, results["val"], splits["val"])["ap50"],
        "eval_split": eval_split,
        "eval_images": len(ids),
        "train_images": len(splits["train"]),
        "per_class": {name: {"ap50": value} for name, value in scored["per_class"].items()},
        "per_slice": _per_slice(coco, results[eval_split], ids),
    }
    if history:
        metrics["train_loss"], metrics["train_accuracy"] = history[-1]
    metrics_path = output_dir / "metrics.json"
    _write_json(metrics_path, metrics)
    return [model_path, labelmap_path, predictions_path, val_path, metrics_path]


def _per_slice(coco: dict[str, Any], results: list[dict], ids: list[int]) -> dict[str, dict[str, float]]:
    wanted = set(ids)
    groups: dict[str, list[int]] = {}
    for image in coco["images"]:
        if image["id"] in wanted and "time_of_day" in image:
            groups.setdefault(f"time_of_day={image['time_of_day']}", []).append(int(image["id"]))
    return {name: {"ap50": ap50(coco, results, members)["ap50"], "images": len(members)}
            for name, members in sorted(groups.items())}


def _write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
