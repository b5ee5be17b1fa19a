"""Fixtures for registry tests: a vault with two dataset versions and a training config."""

from __future__ import annotations

import pytest

from ._helpers import insert_config, snapshot


@pytest.fixture
def rvault(vault, tmp_path):
    """retail@1.0.0 (6 images) and retail@1.1.0 (9 images, same classes) plus config C-01."""
    snapshot(vault, tmp_path / "data", "1.0.0", 6)
    snapshot(vault, tmp_path / "data", "1.1.0", 9)
    insert_config(vault, "C-01", {"model": {"architecture": "yolov8n"}, "train": {"lr": 0.01, "epochs": 50, "seed": 2024}})
    return vault
