"""Train the demo scene segmenter (nearest mean colour per class) and predict masks.

Runs under ``lensvault run``: LENSVAULT_DATA_DIR holds images/, masks/ (0 background, 1 road,
2 car) and splits.json (the version's splits); LENSVAULT_OUTPUT_DIR gets
model.npz and predictions/ (one index PNG per test image, named like the image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> int:
    data = Path(os.environ.get("LENSVAULT_DATA_DIR", "data"))
    out = Path(os.environ.get("LENSVAULT_OUTPUT_DIR", "outputs"))
    splits = json.loads((data / "splits.json").read_text())
    classes = 3
    sums, counts = np.zeros((classes, 3)), np.zeros(classes)
    for path in splits.get("train", []):
        image = np.asarray(Image.open(data / path).convert("RGB"), dtype=np.float64)
        mask = np.asarray(Image.open(data / "masks" / Path(path).name))
        for c in range(classes):
            sums[c] += image[mask == c].sum(axis=0)
            counts[c] += (mask == c).sum()
    means = sums / np.maximum(counts, 1)[:, None]
    np.savez(out / "model.npz", means=means)
    test = splits.get("test") or splits.get("val", [])
    for path in test:
        image = np.asarray(Image.open(data / path).convert("RGB"), dtype=np.float64)
        distance = ((image[:, :, None, :] - means[None, None]) ** 2).sum(axis=-1)
        predicted = distance.argmin(axis=-1).astype(np.uint8)
        target = out / "predictions" / Path(path).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(predicted, "L").save(target)
    print(f"trained on {len(splits.get('train', []))} images; class colours " +
          ", ".join(f"{c}: {m.round().astype(int).tolist()}" for c, m in enumerate(means)))
    print(f"predicted {len(test)} test masks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
