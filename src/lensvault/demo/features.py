"""Hand-crafted, rotation-invariant features of a candidate blob.

Shape cues (fill ratio, compactness, radial and edge-orientation harmonics: triangles
ring at k=3, squares at k=4, circles at neither) plus colour/contrast cues that tell
objects from background texture.
"""

from __future__ import annotations

import numpy as np

from lensvault.demo.segment import Blob, box_blur, dilate, erode

FEATURE_NAMES: tuple[str, ...] = (
    "fill_ratio",
    "log_aspect",
    "log_area",
    "compactness",
    "radial_cv",
    "radial_min_max",
    "radial_k3",
    "radial_k4",
    "edge_k3",
    "edge_k4",
    "edge_k2",
    "contrast_inside",
    "contrast_ring",
    "colour_r",
    "colour_g",
    "colour_b",
    "colour_std",
)


def blob_features(blob: Blob, image: np.ndarray, residual: np.ndarray) -> np.ndarray:
    mask = blob.mask
    _x, _y, w, h = blob.bbox
    area = float(mask.sum())
    boundary = mask & ~erode(mask)
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    by, bx = np.nonzero(boundary)
    radius = np.hypot(by - cy, bx - cx)
    phi = np.arctan2(by - cy, bx - cx)
    rel = radius / (radius.mean() + 1e-9) - 1.0

    ring = dilate(dilate(mask)) & ~mask
    inside_colour = image[mask]
    features = [
        area / (w * h),
        np.log(w / h),
        np.log(area),
        len(by) ** 2 / (4 * np.pi * area),
        radius.std() / (radius.mean() + 1e-9),
        radius.min() / (radius.max() + 1e-9),
        _harmonic(phi, rel, 3) / (np.abs(rel).mean() + 0.05),
        _harmonic(phi, rel, 4) / (np.abs(rel).mean() + 0.05),
        *_edge_harmonics(mask, blob.bbox, (3, 4, 2)),
        float(residual[mask].mean()),
        float(residual[ring].mean()) if ring.any() else 0.0,
        *inside_colour.mean(axis=0),
        float(inside_colour.std(axis=0).mean()),
    ]
    return np.asarray(features, dtype=np.float64)


def _harmonic(angle: np.ndarray, weight: np.ndarray, k: int) -> float:
    return float(np.abs((weight * np.exp(1j * k * angle)).mean()))


def _edge_harmonics(mask: np.ndarray, bbox: tuple[float, ...], ks: tuple[int, ...]) -> list[float]:
    """Edge-direction harmonics of the smoothed mask (a rotation-invariant HOG-lite)."""
    x, y, w, h = (int(v) for v in bbox)
    pad = 2
    crop = np.pad(mask[y : y + h, x : x + w].astype(np.float64), pad)
    smooth = box_blur(crop, radius=1)
    gy, gx = np.gradient(smooth)
    magnitude = np.hypot(gx, gy)
    angle = np.arctan2(gy, gx)
    total = magnitude.sum() + 1e-9
    return [float(np.abs((magnitude * np.exp(1j * k * angle)).sum()) / total) for k in ks]
