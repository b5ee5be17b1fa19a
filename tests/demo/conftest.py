"""The quickstart's dataset (seed 42, 120 images), generated once per test session.

Splits follow the vault's rule over the paths a snapshot records ("images/..."), so
these tests measure the detector on exactly the test images the quickstart uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lensvault.demo.detector import Model, train
from lensvault.demo.shapes import generate_shapes
from lensvault.demo.splits import split_names

SEED = 42
HOTFIX = {"preprocess": {"brightness_threshold": 0.12}}


class DemoData:
    def __init__(self, root: Path, summary: dict[str, Any]) -> None:
        self.root = root
        self.summary = summary
        self.images = root / "images"
        self.noisy = json.loads((root / "annotations" / "instances.json").read_text())
        self.clean = json.loads((root / "corrections" / "instances.json").read_text())
        names = split_names([f"images/{i['file_name']}" for i in self.clean["images"]], SEED)
        by_path = {f"images/{i['file_name']}": i["id"] for i in self.clean["images"]}
        self.split = {name: [by_path[p] for p in paths] for name, paths in names.items()}
        self.night = {i["id"] for i in self.clean["images"] if i["time_of_day"] == "night"}
        self._models: dict[str, Model] = {}

    @property
    def held_out(self) -> list[int]:
        return self.split["val"] + self.split["test"]

    def model(self, name: str) -> Model:
        """Trained once per session: "mislabeled", "corrected" or "hotfix" (corrected data)."""
        if name not in self._models:
            coco = self.noisy if name == "mislabeled" else self.clean
            params = HOTFIX if name == "hotfix" else {}
            self._models[name] = train(self.images, coco, self.split["train"], params, SEED)
        return self._models[name]


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> DemoData:
    root = tmp_path_factory.mktemp("shapes")
    return DemoData(root, generate_shapes(root, n_images=120, seed=SEED))
