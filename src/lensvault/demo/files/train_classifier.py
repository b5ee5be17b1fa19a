"""Train the demo swatch classifier (nearest mean colour) and predict the validation images.

Runs under ``lensvault run``: LENSVAULT_DATA_DIR holds train/CLASS/… and val/CLASS/… and, once
labels were fixed, labels.csv (path,label,split), which wins over the folder names;
LENSVAULT_OUTPUT_DIR gets model.npz and predictions.csv (image and a score per class).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    data = Path(os.environ.get("LENSVAULT_DATA_DIR", "data"))
    out = Path(os.environ.get("LENSVAULT_OUTPUT_DIR", "outputs"))
    labels = {p.relative_to(data).as_posix(): p.relative_to(data).parts[1] for p in sorted(data.rglob("*.png"))
              if p.relative_to(data).parts[0] in ("train", "val")}
    if (data / "labels.csv").is_file():
        with open(data / "labels.csv", newline="") as f:
            labels.update({row["path"]: row["label"] for row in csv.DictReader(f)})
    classes = sorted(set(labels.values()))
    colour = {p: np.asarray(Image.open(data / p).convert("RGB"), dtype=np.float64).mean(axis=(0, 1)) for p in labels}
    train = [p for p in labels if p.startswith("train/")]
    means = np.array([np.mean([colour[p] for p in train if labels[p] == c], axis=0) for c in classes])
    np.savez(out / "model.npz", means=means)
    with open(out / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", *classes])
        for p in (p for p in labels if p.startswith("val/")):
            logits = -((means - colour[p]) ** 2).sum(axis=1) / 2000.0
            scores = np.exp(logits - logits.max())
            scores /= scores.sum()
            writer.writerow([p, *(f"{s:.6f}" for s in scores)])
    print(f"trained on {len(train)} images of {', '.join(classes)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
