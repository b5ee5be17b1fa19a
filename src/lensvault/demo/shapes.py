"""Deterministic synthetic detection dataset: coloured shapes on textured backgrounds.

The quickstart needs a small but *real* vision dataset (decodable images, COCO boxes,
day/night slices, a known set of wrong labels) that can be produced offline in a
second. Same seed -> byte-identical files, so snapshots of it hash the same everywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

CATEGORIES: list[dict[str, Any]] = [
    {"id": 1, "name": "circle", "supercategory": "shape"},
    {"id": 2, "name": "square", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
]
CIRCLE, SQUARE, TRIANGLE = 1, 2, 3

# Wrong labels follow an annotator's typical confusions instead of being uniform:
# a consistent mistake is what a model actually learns, so it is what hurts AP.
CONFUSION: dict[int, int] = {CIRCLE: SQUARE, SQUARE: TRIANGLE, TRIANGLE: SQUARE}

NIGHT_FRACTION = 0.3
WRONG_RANK_SCALE = 0.2
SUPERSAMPLE = 4  # shapes are drawn at 4x and box-filtered down: anti-aliased edges
PNG_COMPRESS_LEVEL = 6  # fixed explicitly so the bytes do not depend on Pillow defaults


@dataclass(frozen=True)
class _Shape:
    category_id: int
    bbox: list[float]  # COCO xywh
    area: float


def generate_shapes(
    dest: Path,
    *,
    n_images: int = 120,
    seed: int = 42,
    mislabel_fraction: float = 0.12,
    size: tuple[int, int] = (128, 96),
) -> dict[str, Any]:
    """Write ``dest/images/*.png``, ``dest/annotations/instances.json`` (with wrong labels)
    and ``dest/corrections/instances.json`` (the right labels); return a summary."""
    if n_images < 1:
        raise ValueError("n_images must be >= 1")
    if not 0.0 <= mislabel_fraction <= 1.0:
        raise ValueError("mislabel_fraction must be within [0, 1]")
    width, height = size
    dest = Path(dest)
    images_dir = dest / "images"
    images_dir.mkdir(parents=True, exist_ok=True)

    night_ids = _pick_night_images(n_images, seed)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    areas: list[float] = []
    for index in range(n_images):
        # One generator per image: image i does not change when n_images changes.
        rng = np.random.default_rng([seed, index])
        night = index in night_ids
        pixels, shapes = _render_image(rng, width, height, night)
        file_name = f"img_{index:04d}.png"
        Image.fromarray(pixels, mode="RGB").save(
            images_dir / file_name, format="PNG", compress_level=PNG_COMPRESS_LEVEL
        )
        image_id = index + 1
        images.append(
            {
                "id": image_id,
                "file_name": file_name,
                "width": width,
                "height": height,
                "time_of_day": "night" if night else "day",
            }
        )
        for shape in shapes:
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": shape.category_id,
                    "bbox": shape.bbox,
                    "area": shape.area,
                    "iscrowd": 0,
                }
            )
            areas.append(shape.area)

    wrong_ids = _pick_wrong_annotations(areas, mislabel_fraction, seed)
    noisy = [
        {**ann, "category_id": CONFUSION[ann["category_id"]]} if ann["id"] in wrong_ids else ann
        for ann in annotations
    ]
    annotations_path = dest / "annotations" / "instances.json"
    corrections_path = dest / "corrections" / "instances.json"
    _write_json(annotations_path, _coco(images, noisy, seed))
    _write_json(corrections_path, _coco(images, annotations, seed))
    return {
        "images": n_images,
        "boxes": len(annotations),
        "wrong_labels": len(wrong_ids),
        "wrong_annotation_ids": sorted(wrong_ids),
        "night_images": len(night_ids),
        "day_images": n_images - len(night_ids),
        "seed": seed,
        "size": [width, height],
        "paths": {
            "root": str(dest),
            "images": str(images_dir),
            "annotations": str(annotations_path),
            "corrections": str(corrections_path),
        },
    }


def _pick_night_images(n_images: int, seed: int) -> set[int]:
    rng = np.random.default_rng([seed, 0x4E49])  # separate stream from the images
    count = round(NIGHT_FRACTION * n_images)
    return {int(i) for i in rng.permutation(n_images)[:count]}


def _pick_wrong_annotations(areas: list[float], fraction: float, seed: int) -> set[int]:
    """Annotation ids (1-based) to mislabel: almost all among the smallest objects."""
    count = round(fraction * len(areas))
    if count == 0:
        return set()
    rng = np.random.default_rng([seed, 0x57524F])
    # Sharply biased by size rank, so the mistakes are consistent ("tiny objects get
    # the wrong name") rather than scattered noise that a classifier averages away.
    rank = np.argsort(np.argsort(np.asarray(areas), kind="stable"), kind="stable")
    weights = np.exp(-rank / (WRONG_RANK_SCALE * count))
    chosen = rng.choice(len(areas), size=count, replace=False, p=weights / weights.sum())
    return {int(i) + 1 for i in chosen}


def _coco(images: list[dict], annotations: list[dict], seed: int) -> dict[str, Any]:
    return {
        "info": {"description": "LensVault synthetic shapes (quickstart demo)", "seed": seed},
        "categories": CATEGORIES,
        "images": images,
        "annotations": annotations,
    }


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _render_image(
    rng: np.random.Generator, width: int, height: int, night: bool
) -> tuple[np.ndarray, list[_Shape]]:
    canvas = _background(rng, width, height, night)
    bg_colour = canvas.reshape(-1, 3).mean(axis=0)
    shapes: list[_Shape] = []
    placed: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 5))):
        category_id = int(rng.integers(1, 4))
        radius = float(rng.uniform(8.0, 18.0))
        angle = float(rng.uniform(0.0, 2.0 * np.pi))
        centre = _place(rng, radius, placed, width, height)
        if centre is None:
            continue
        alpha = _shape_alpha(category_id, centre, radius, angle, width, height)
        inside = alpha >= 0.5
        if not inside.any():
            continue
        colour = _shape_colour(rng, bg_colour, night)
        shading = 1.0 + 0.06 * _ramp(rng, width, height)[..., None]
        canvas = canvas * (1.0 - alpha[..., None]) + alpha[..., None] * colour * shading
        ys, xs = np.nonzero(inside)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = [float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)]
        shapes.append(_Shape(category_id, bbox, float(inside.sum())))
        placed.append((centre[0], centre[1], radius))
    noise_sigma = 0.035 if night else 0.015
    canvas = canvas + rng.normal(0.0, noise_sigma, size=canvas.shape)
    pixels = np.clip(np.rint(canvas * 255.0), 0, 255).astype(np.uint8)
    return pixels, shapes


def _background(rng: np.random.Generator, width: int, height: int, night: bool) -> np.ndarray:
    """Base colour + a gradient + low-frequency blotches + faint stripes."""
    low, high = (0.10, 0.22) if night else (0.40, 0.90)
    amplitude = 0.015 if night else 0.07
    base = rng.uniform(low, high, size=3)
    tint = rng.uniform(-1.0, 1.0, size=3)
    blotches = _blotches(rng, width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    period = float(rng.uniform(6.0, 16.0))
    theta = float(rng.uniform(0.0, np.pi))
    stripes = np.sin((xx * np.cos(theta) + yy * np.sin(theta)) * 2.0 * np.pi / period)
    texture = (
        amplitude * _ramp(rng, width, height)[..., None] * tint
        + amplitude * blotches[..., None]
        + 0.3 * amplitude * stripes[..., None]
    )
    return base + texture


def _ramp(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A linear gradient in [-1, 1] along a random direction."""
    theta = float(rng.uniform(0.0, 2.0 * np.pi))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    proj = (xx - width / 2) * np.cos(theta) + (yy - height / 2) * np.sin(theta)
    return proj / (np.abs(proj).max() + 1e-9)


def _blotches(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    coarse = rng.uniform(-1.0, 1.0, size=(4, 5)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float64)


def _place(
    rng: np.random.Generator,
    radius: float,
    placed: list[tuple[float, float, float]],
    width: int,
    height: int,
) -> tuple[float, float] | None:
    # Shapes never touch, so one connected blob is always one object.
    margin = radius + 2.0
    for _ in range(60):
        cx = float(rng.uniform(margin, width - margin))
        cy = float(rng.uniform(margin, height - margin))
        if all(np.hypot(cx - x, cy - y) > r + radius + 4.0 for x, y, r in placed):
            return cx, cy
    return None


def _shape_alpha(
    category_id: int,
    centre: tuple[float, float],
    radius: float,
    angle: float,
    width: int,
    height: int,
) -> np.ndarray:
    s = SUPERSAMPLE
    mask = Image.new("L", (width * s, height * s), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy, r = centre[0] * s, centre[1] * s, radius * s
    if category_id == CIRCLE:
        r *= 0.85  # a circle at full radius would dwarf a square of the same radius
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    else:
        corners = 4 if category_id == SQUARE else 3
        points = [
            (cx + r * np.cos(angle + 2 * np.pi * k / corners),
             cy + r * np.sin(angle + 2 * np.pi * k / corners))
            for k in range(corners)
        ]
        draw.polygon(points, fill=255)
    small = mask.resize((width, height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float64) / 255.0


def _shape_colour(rng: np.random.Generator, bg_colour: np.ndarray, night: bool) -> np.ndarray:
    """Day: any colour far from the background. Night: a dim colour close to it."""
    if night:
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        return np.clip(bg_colour + rng.uniform(0.10, 0.20) * direction, 0.0, 1.0)
    for _ in range(100):
        colour = rng.uniform(0.0, 1.0, size=3)
        if np.linalg.norm(colour - bg_colour) > 0.4:
            return colour
    return 1.0 - bg_colour
