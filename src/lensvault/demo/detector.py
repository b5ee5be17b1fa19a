"""A tiny but real object detector for the quickstart, in pure numpy.

Proposals come from foreground segmentation (segment.py); a small MLP on hand-crafted
features (features.py) classifies each proposal as background or one of the classes.
The MLP learns from the training annotations, so wrong labels in them show up as a
lower AP — exactly what the demo needs to make label fixes visible.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lensvault.demo.features import FEATURE_NAMES, blob_features
from lensvault.demo.segment import background_residual, find_blobs, load_rgb, preprocess

ARCHITECTURE = "shapes-mlp"
FORMAT_VERSION = 1
DEFAULT_PARAMS: dict[str, Any] = {
    "model.architecture": ARCHITECTURE,
    "model.hidden": 32,
    # Frames darker than this get low-light enhancement before segmentation.
    "preprocess.brightness_threshold": 0.3,
    "segment.threshold": 0.12,
    "segment.min_area": 30,
    "train.epochs": 60,
    "train.lr": 0.01,
    "train.batch_size": 32,
    "train.weight_decay": 1e-4,
    "train.match_iou": 0.5,
    "predict.score_threshold": 0.05,
}

Detection = tuple[list[float], int, float]
EpochCallback = Callable[[int, float, float], None]


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with ``params`` (nested like the YAML config, or dotted keys)."""
    resolved = dict(DEFAULT_PARAMS)
    for key, value in _flatten(params or {}).items():
        if key in DEFAULT_PARAMS:
            resolved[key] = type(DEFAULT_PARAMS[key])(value)
    if resolved["model.architecture"] != ARCHITECTURE:
        raise ValueError(f"unsupported architecture {resolved['model.architecture']!r}")
    return resolved


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Model:
    """Feature normalisation + a one-hidden-layer MLP, with the settings it was trained with."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        params: dict[str, Any],
        categories: list[dict[str, Any]],
    ) -> None:
        self.weights = weights
        self.params = params
        self.categories = categories

    @property
    def labelmap(self) -> dict[int, str]:
        return {int(c["id"]): str(c["name"]) for c in self.categories}

    def predict(self, image_path: Path | str) -> list[Detection]:
        boxes, features = proposals(load_rgb(image_path), self.params)
        if not boxes:
            return []
        probs = self.predict_proba(features)
        threshold = self.params["predict.score_threshold"]
        detections: list[Detection] = []
        # One detection per blob (its best class): a blob is one object, and a second
        # guess would hide a wrong answer behind a low-scored right one.
        for box, row in zip(boxes, probs):
            column = int(np.argmax(row[1:])) + 1
            if row[column] >= threshold:
                category_id = int(self.categories[column - 1]["id"])
                detections.append((list(box), category_id, float(row[column])))
        return detections

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities; column 0 is background, column i the i-th category."""
        w = self.weights
        hidden = np.tanh(((features - w["feature_mean"]) / w["feature_std"]) @ w["w1"] + w["b1"])
        return _softmax(hidden @ w["w2"] + w["b2"])

    def save(self, path: Path | str) -> None:
        """Write an .npz whose bytes depend only on the weights and metadata."""
        meta = {
            "format_version": FORMAT_VERSION,
            "architecture": ARCHITECTURE,
            "params": self.params,
            "categories": self.categories,
            "feature_names": list(FEATURE_NAMES),
        }
        arrays = dict(self.weights)
        arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
        _write_npz(Path(path), arrays)

    @classmethod
    def load(cls, path: Path | str) -> Model:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        if meta.get("architecture") != ARCHITECTURE:
            raise ValueError(f"{path}: not a {ARCHITECTURE} model")
        return cls(arrays, meta["params"], meta["categories"])


def proposals(image: np.ndarray, params: Mapping[str, Any]) -> tuple[list[tuple], np.ndarray]:
    """Candidate boxes of one RGB image and their feature rows."""
    image = preprocess(image, params["preprocess.brightness_threshold"])
    residual = background_residual(image, params["segment.threshold"])
    blobs = find_blobs(residual, params["segment.threshold"], params["segment.min_area"])
    rows = [blob_features(blob, image, residual) for blob in blobs]
    features = np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)))
    return [blob.bbox for blob in blobs], features


def train(
    images_dir: Path | str,
    coco: Mapping[str, Any],
    train_image_ids: Iterable[int],
    params: Mapping[str, Any] | None,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> Model:
    """Fit the proposal classifier on the annotated images ``train_image_ids``."""
    resolved = resolve_params(params)
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    features, targets = _training_set(Path(images_dir), coco, set(train_image_ids), resolved, categories)
    if len(features) == 0:
        raise ValueError("no proposals found on the training images")
    weights = _fit_mlp(features, targets, len(categories) + 1, resolved, seed, on_epoch)
    return Model(weights, resolved, categories)


def _training_set(
    images_dir: Path,
    coco: Mapping[str, Any],
    image_ids: set[int],
    params: Mapping[str, Any],
    categories: list[dict[str, Any]],
) -> tuple[np.ndarray, np.ndarray]:
    column = {int(c["id"]): i for i, c in enumerate(categories, start=1)}
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(int(ann["image_id"]), []).append(ann)
    rows: list[np.ndarray] = []
    targets: list[int] = []
    for info in sorted(coco["images"], key=lambda i: i["id"]):
        if info["id"] not in image_ids:
            continue
        boxes, features = proposals(load_rgb(images_dir / info["file_name"]), params)
        truth = by_image.get(int(info["id"]), [])
        for box, row in zip(boxes, features):
            match = _best_match(box, truth, params["train.match_iou"])
            rows.append(row)
            targets.append(column[int(match["category_id"])] if match else 0)
    features = np.stack(rows) if rows else np.zeros((0, len(FEATURE_NAMES)))
    return features, np.asarray(targets, dtype=np.int64)


def _best_match(box: tuple, truth: list[dict], min_iou: float) -> dict | None:
    best, best_iou = None, min_iou
    for ann in truth:
        overlap = iou(box, ann["bbox"])
        if overlap >= best_iou:
            best, best_iou = ann, overlap
    return best


def iou(a: Iterable[float], b: Iterable[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _fit_mlp(
    features: np.ndarray,
    targets: np.ndarray,
    n_classes: int,
    params: Mapping[str, Any],
    seed: int,
    on_epoch: EpochCallback | None,
) -> dict[str, np.ndarray]:
    """Mini-batch Adam on softmax cross-entropy; every random draw comes from ``seed``."""
    rng = np.random.default_rng(seed)
    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    x = (features - mean) / std
    onehot = np.eye(n_classes)[targets]
    hidden = params["model.hidden"]
    weights = {
        "w1": rng.normal(0.0, 1.0 / np.sqrt(x.shape[1]), size=(x.shape[1], hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0.0, 1.0 / np.sqrt(hidden), size=(hidden, n_classes)),
        "b2": np.zeros(n_classes),
    }
    adam = _Adam(weights, params["train.lr"])
    batch_size = params["train.batch_size"]
    decay = params["train.weight_decay"]
    for epoch in range(1, params["train.epochs"] + 1):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            batch = order[start : start + batch_size]
            adam.step(_gradients(weights, x[batch], onehot[batch], decay))
        if on_epoch is not None:
            probs = _forward(weights, x)[1]
            loss = float(-np.log(probs[np.arange(len(x)), targets] + 1e-12).mean())
            accuracy = float((probs.argmax(axis=1) == targets).mean())
            on_epoch(epoch, loss, accuracy)
    weights["feature_mean"] = mean
    weights["feature_std"] = std
    return weights


def _forward(weights: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.tanh(x @ weights["w1"] + weights["b1"])
    return hidden, _softmax(hidden @ weights["w2"] + weights["b2"])


def _gradients(
    weights: dict[str, np.ndarray], x: np.ndarray, onehot: np.ndarray, decay: float
) -> dict[str, np.ndarray]:
    hidden, probs = _forward(weights, x)
    d_logits = (probs - onehot) / len(x)
    d_hidden = (d_logits @ weights["w2"].T) * (1.0 - hidden**2)
    return {
        "w2": hidden.T @ d_logits + decay * weights["w2"],
        "b2": d_logits.sum(axis=0),
        "w1": x.T @ d_hidden + decay * weights["w1"],
        "b1": d_hidden.sum(axis=0),
    }


class _Adam:
    def __init__(self, weights: dict[str, np.ndarray], lr: float) -> None:
        self.weights, self.lr, self.t = weights, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in weights.items()}
        self.v = {k: np.zeros_like(v) for k, v in weights.items()}

    def step(self, grads: dict[str, np.ndarray], b1: float = 0.9, b2: float = 0.999) -> None:
        self.t += 1
        for key, grad in grads.items():
            self.m[key] = b1 * self.m[key] + (1 - b1) * grad
            self.v[key] = b2 * self.v[key] + (1 - b2) * grad**2
            m_hat = self.m[key] / (1 - b1**self.t)
            v_hat = self.v[key] / (1 - b2**self.t)
            self.weights[key] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # np.savez stamps each member with the current time; fixed ZipInfo dates and
    # sorted names make the file a pure function of its contents.
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue())
