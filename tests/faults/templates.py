"""Scenarios whose trials start from a project built once and copied (cheaper than building it
20 times): stored objects are linked into the copy, everything else is copied."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from faults_harness import Scenario


class FromTemplate(Scenario):
    """A project built once (``build``) and copied for every trial (``copy``)."""

    def __init__(self) -> None:
        self.template: Path | None = None

    def build(self, root: Path) -> None:
        raise NotImplementedError

    def copy(self, root: Path) -> Path:
        if self.template is None:
            self.template = root.parent / f"template-{self.name}"
            self.build(self.template)
        shutil.copytree(self.template, root / "repo", symlinks=True, copy_function=link_objects)
        return root / "repo"


def link_objects(src: str, dst: str) -> None:
    """Stored objects are linked (read-only, replaced by rename, never written in place: the
    trial cannot change the template's); everything else, the catalog first, is copied."""
    parts = Path(src).parts
    if len(parts) > 3 and parts[-4:-2] == (".lensvault", "objects") and len(parts[-2]) == 2:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)
