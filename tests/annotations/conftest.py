from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"  # tests/data (licensed samples)
SAMPLES = DATA / "format-samples"
BCCD = DATA / "bccd"


def write_image(path: Path, width: int = 20, height: int = 10, *, orientation: int | None = None) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (width, height), (10, 20, 30))
    kwargs = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    im.save(path, **kwargs)
    return path


@pytest.fixture
def copy_sample(tmp_path):
    """Copy a read-only sample into tmp_path so a test may modify it."""

    def _copy(rel: str) -> Path:
        dst = tmp_path / Path(rel).name
        shutil.copytree(SAMPLES / rel if not rel.startswith("/") else rel, dst)
        return dst

    return _copy


@pytest.fixture
def make_image():
    return write_image
