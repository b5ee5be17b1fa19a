"""A run's files on this machine: its scratch folder and its log, kept as an object.

Below ``launcher`` (which writes them while the run runs) and ``crashes`` (which keeps a
dead run's partial log as its log and removes its scratch folder): crash detection runs
from the preflight, which the launcher calls, so ``crashes`` may not import the launcher.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["run_work_dir", "store_log"]


def run_work_dir(vault: Vault, run_id: str) -> Path:
    """The run's scratch folder: its data folder and the log being written."""
    return vault.dir / "tmp" / f"run-{run_id}"


def store_log(vault: Vault, log_path: Path) -> str | None:
    from lensvault.hashing import hash_file

    if not log_path.is_file():
        return None
    oid = hash_file(log_path).oid
    vault.store.put_files([(str(log_path), oid)])
    return oid
