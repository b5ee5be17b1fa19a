"""Reading the latest version of the most recently changed datasets before anyone asks.

The first request for a version reads its tables from the store and derives its counts and
image index (lensvault.datasets.snapshot_cache): seconds on a 100,000-image version. A server
does that once, in the background, when it starts, so that the first person to open the
version's page gets it at the speed of every later one. A request that arrives meanwhile waits
for the same work instead of doing it again. Failures are left for the request to report.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["WARM_DATASETS", "start_warmup"]

WARM_DATASETS = 4
log = logging.getLogger("lensvault.server")


def _warm(vault: Vault) -> None:
    for d in sorted(vault.datasets(), key=lambda d: d["updated_at"] or "", reverse=True)[:WARM_DATASETS]:
        if not d.get("latest"):
            continue
        ref = f"{d['name']}@{d['latest']}"
        try:
            if vault.dataset(ref).is_vision:
                vault.dataset_details(ref)
                vault.images(ref, limit=1)
        except Exception:  # the request that needs it reports it, with its fix
            log.debug("warm-up of %s failed", ref, exc_info=True)


def start_warmup(vault: Vault) -> threading.Thread:
    """Import what every dataset page needs now (before the server answers: a request would wait
    on the import lock anyway), then read the versions in a background thread."""
    import numpy  # noqa: F401
    import pyarrow.compute  # noqa: F401

    import lensvault.annotations.model  # noqa: F401  (the class map; imports pyarrow's types)

    def run() -> None:
        try:
            _warm(vault)
        except Exception:
            log.debug("warm-up failed", exc_info=True)

    thread = threading.Thread(target=run, name="lensvault-warmup", daemon=True)
    thread.start()
    return thread
