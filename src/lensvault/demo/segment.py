"""Candidate objects for the demo detector: low-light enhancement + foreground blobs.

Pure numpy (no scipy): the quickstart must run on a bare laptop install.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

LUMA = np.array([0.299, 0.587, 0.114])
LOW_LIGHT_TARGET = 0.45  # mean brightness a low-light frame is lifted to


@dataclass(frozen=True)
class Blob:
    """One connected foreground region: its box (COCO xywh) and pixel mask (full image)."""

    bbox: tuple[float, float, float, float]
    mask: np.ndarray


def load_rgb(path: Path | str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def brightness(image: np.ndarray) -> float:
    return float((image @ LUMA).mean())


def preprocess(image: np.ndarray, brightness_threshold: float) -> np.ndarray:
    """Images darker than the threshold are treated as low-light: denoised and brightened.

    Night frames have dim, low-contrast objects under sensor noise; without this step
    their objects fall below the fixed foreground threshold.
    """
    level = brightness(image)
    if level >= brightness_threshold:
        return image
    gain = LOW_LIGHT_TARGET / max(level, 1e-3)
    return np.clip(box_blur(image, radius=1) * gain, 0.0, 1.0)


def box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    size = 2 * radius + 1
    pad = [(radius, radius), (radius, radius)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, pad, mode="edge")
    height, width = image.shape[:2]
    total = np.zeros_like(image)
    for dy in range(size):
        for dx in range(size):
            total += padded[dy : dy + height, dx : dx + width]
    return total / (size * size)


def background_residual(image: np.ndarray, threshold: float, iterations: int = 3) -> np.ndarray:
    """Per-pixel RMS colour distance to a smooth background estimated for this image.

    The background is a per-channel quadratic surface refit on the pixels it explains,
    so gradients and uneven lighting are absorbed while objects stand out.
    """
    height, width = image.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    x = (xx.ravel() - width / 2) / width
    y = (yy.ravel() - height / 2) / height
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
    pixels = image.reshape(-1, 3)
    inliers = np.ones(len(pixels), dtype=bool)
    for _ in range(iterations):
        # Normal equations: a 6x6 solve instead of an SVD of the whole image.
        weighted = design[inliers]
        coef = np.linalg.solve(weighted.T @ weighted, weighted.T @ pixels[inliers])
        distance = np.sqrt(((pixels - design @ coef) ** 2).mean(axis=1))
        keep = distance < threshold
        if keep.sum() < design.shape[1] * 10:
            break
        inliers = keep
    return distance.reshape(height, width)


def erode(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1, constant_values=False)
    out = mask.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        out &= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


def dilate(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1, constant_values=False)
    out = mask.copy()
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        out |= padded[dy : dy + mask.shape[0], dx : dx + mask.shape[1]]
    return out


def label_components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels (0 = background, 1..n), by max-label propagation.

    Each label is the flat index (+1) of a pixel of the same component, so labels can
    also jump through that pixel's label: far fewer passes than plain propagation.
    """
    height, width = mask.shape
    labels = np.where(mask, np.arange(1, height * width + 1).reshape(height, width), 0)
    while True:
        padded = np.pad(labels, 1)
        spread = np.maximum.reduce(
            [
                labels,
                padded[:-2, 1:-1],
                padded[2:, 1:-1],
                padded[1:-1, :-2],
                padded[1:-1, 2:],
            ]
        )
        spread = np.where(mask, spread, 0)
        flat = spread.ravel()
        jumped = np.where(mask, np.maximum(spread, flat[np.maximum(spread, 1) - 1].reshape(mask.shape)), 0)
        if np.array_equal(jumped, labels):
            break
        labels = jumped
    _, compact = np.unique(labels, return_inverse=True)
    # np.unique puts 0 first whenever background exists, so it stays 0.
    compact = compact.reshape(mask.shape)
    return compact if not mask.all() else compact + 1


def find_blobs(residual: np.ndarray, threshold: float, min_area: int) -> list[Blob]:
    foreground = dilate(erode(residual > threshold))  # opening: drops noise speckles
    labels = label_components(foreground)
    blobs: list[Blob] = []
    for index in range(1, int(labels.max()) + 1):
        mask = labels == index
        area = int(mask.sum())
        if area < min_area:
            continue
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        bbox = (float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1))
        blobs.append(Blob(bbox=bbox, mask=mask))
    return blobs
