"""How long gc leaves young objects and leftovers alone: a write in flight (a snapshot being
ingested, on this machine or another sharing the store) has only objects younger than that."""

from __future__ import annotations

__all__ = ["DEFAULT_GRACE_SECONDS", "SAFE_GRACE_SECONDS"]

DEFAULT_GRACE_SECONDS = 3600.0  # gc's default; the rerun hint names --grace only when it differs
# Below this gc needs ``force``: pins and temp files of writers on another host sharing the
# store (whose liveness cannot be checked from here) are protected only by the grace period,
# and 10 minutes is longer than any single commit takes.
SAFE_GRACE_SECONDS = 600
