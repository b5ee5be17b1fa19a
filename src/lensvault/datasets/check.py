"""``dataset check``: exact and near duplicates, split leakage, split moves since the parent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import UsageError
from lensvault.progress import NO_PROGRESS

if TYPE_CHECKING:
    from lensvault.datasets.handle import Dataset
    from lensvault.datasets.leakage import LeakageReport
    from lensvault.progress import Progress

__all__ = ["check_version", "require_images"]


def require_images(dataset: Dataset) -> None:
    if not dataset.is_vision:
        raise UsageError(f"{dataset.ref} has no images table", where=dataset.ref,
                         fix="snapshot with --format to record images, annotations and splits")


def check_version(dataset: Dataset, *, progress: Progress = NO_PROGRESS) -> LeakageReport:
    from lensvault.datasets.leakage import check_leakage

    require_images(dataset)
    parent_images = None
    if dataset.parent:
        parent = dataset.vault.dataset(dataset.parent)
        if parent.is_vision:
            parent_images = parent.images()
    return check_leakage(dataset.images(), dataset.vault.store.open, parent_images=parent_images)
