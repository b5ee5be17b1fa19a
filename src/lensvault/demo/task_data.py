"""Generated data for the segmentation and classification demos (no network, a second or two).

* ``generate_scenes``: street scenes for semantic segmentation — sky, road and cars — as RGB
  images with index masks (``masks/NAME.png``: 0 background, 1 road, 2 car) and a
  ``dataset_meta.json`` naming the classes; one mask has a car painted as road (the label to fix).
* ``generate_swatches``: colour swatches for classification in the ImageFolder layout
  (``train/CLASS/…``, ``val/CLASS/…``); one validation image is filed under the wrong class.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["SCENE_CLASSES", "SWATCH_CLASSES", "generate_scenes", "generate_swatches"]

SCENE_CLASSES = ("background", "road", "car")
SWATCH_CLASSES = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 70, 200)}


def generate_scenes(root: Path, fixed: Path, *, n_images: int = 24, seed: int = 7,
                    size: tuple[int, int] = (64, 48)) -> dict:
    """Scenes in ``root/images`` and masks in ``root/masks``; returns what was made, with the
    mislabeled image (its corrected mask is written to the folder ``fixed``)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    wrong = None
    for n in range(n_images):
        mask = np.zeros((h, w), dtype=np.uint8)
        horizon = int(rng.integers(h // 3, h // 2))
        mask[horizon:, :] = 1
        for _ in range(int(rng.integers(1, 3))):
            cw, ch = int(rng.integers(10, 20)), int(rng.integers(6, 10))
            x, y = int(rng.integers(0, w - cw)), int(rng.integers(horizon, h - ch))
            mask[y:y + ch, x:x + cw] = 2
        night = n % 4 == 3
        palette = np.array([(150, 190, 230), (90, 90, 95), (200, 30, 40)], dtype=np.float64)
        if night:
            palette *= 0.45
        image = palette[mask] + rng.normal(0, 12, size=(h, w, 3))
        name = f"scene_{n:03d}"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(root / "images" / f"{name}.png")
        labelled = mask.copy()
        if n == 5:  # a labeller painted this image's cars as road
            wrong = name
            fixed.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask, "L").save(fixed / f"{name}.png")
            labelled[labelled == 2] = 1
        Image.fromarray(labelled, "L").save(root / "masks" / f"{name}.png")
    (root / "dataset_meta.json").write_text(json.dumps(
        {"label_map": {str(i): name for i, name in enumerate(SCENE_CLASSES)}, "background_label": "0"}, indent=2))
    return {"images": n_images, "classes": list(SCENE_CLASSES), "mislabeled": wrong}


def generate_swatches(root: Path, *, per_class: int = 12, seed: int = 11, size: int = 24) -> dict:
    """Swatches in ``root/{train,val}/CLASS/``; returns what was made, with the misfiled image."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = list(SWATCH_CLASSES)
    misfiled = None
    for c, (name, colour) in enumerate(SWATCH_CLASSES.items()):
        for n in range(per_class):
            split = "val" if n % 3 == 0 else "train"
            image = np.array(colour, dtype=np.float64) + rng.normal(0, 40, size=(size, size, 3)) + rng.normal(0, 45, size=3)
            filed = name
            if split == "val" and c == 0 and misfiled is None:
                filed = names[1]  # a red swatch filed under green
            folder = root / split / filed
            folder.mkdir(parents=True, exist_ok=True)
            file = folder / f"{name}_{n:02d}.png"
            Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), "RGB").save(file)
            if filed != name:
                misfiled = file.relative_to(root).as_posix()
    return {"images": per_class * len(names), "classes": names, "misfiled": misfiled, "true_class": names[0]}
