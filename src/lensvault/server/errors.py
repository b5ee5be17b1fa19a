"""The one table from LensVault's errors to HTTP statuses (as cli/_errors.py maps them to exit codes)."""

from __future__ import annotations

from lensvault import errors as e

__all__ = ["HTTPProblem", "status_of"]

# First match wins: subclasses before their bases.
STATUS: tuple[tuple[type[e.LensVaultError], int], ...] = (
    (e.ObjectMissing, 404),
    (e.NotFound, 404),
    (e.UsageError, 422),
    (e.InputError, 422),
    (e.AlreadyExists, 409),
    (e.PreflightFailed, 409),
    (e.VersionRuleError, 409),
    (e.CatalogError, 503),
    (e.StorageError, 503),
    (e.IntegrityError, 500),
)


def status_of(err: e.LensVaultError) -> int:
    for cls, status in STATUS:
        if isinstance(err, cls):
            return status
    return 400


class HTTPProblem(e.LensVaultError):
    """An error the server itself raises (401, 403, 422 of a malformed path part), in the same
    what/where/fix shape as every other error it answers with."""

    def __init__(self, status: int, what: str, *, where: str | None = None, fix: str | None = None):
        super().__init__(what, where=where, fix=fix)
        self.status = status
