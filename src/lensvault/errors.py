"""One exception tree for everything LensVault raises on purpose.

    LensVaultError                      what / where / fix, plus exit_code
    ├── UsageError                      bad arguments or references (exit 2)
    │   └── InvalidRef                  "retail@1.x" is not NAME@X.Y.Z
    ├── NotFound (KeyError)             a vault, version, object, config, run ... (exit 3)
    │   └── ObjectMissing               the catalog names an object the store lacks
    ├── AlreadyExists                   write-once: the name is taken (exit 4)
    │   └── RemoteConflict              a remote holds other content under the name, or an alias moved there
    ├── IntegrityError                  bytes whose hash is not their name (exit 5)
    ├── InputError (ValueError)         user data we refuse: paths escaping, unreadable files,
    │   │                               malformed annotations (exit 6)
    │   └── AnnotationError             located finding(s) in an annotation file
    ├── PreflightFailed                 a run may not start; carries every failure (exit 7)
    ├── VersionRuleError                a version lower than the change requires (exit 8)
    ├── StorageError (OSError)          disk full, permissions, interrupted I/O (exit 9)
    │   ├── ObjectsVanished             objects a write relies on left the store before its commit
    │   └── RemoteError                 a remote cannot be reached, refuses us, or lacks its bucket
    └── CatalogError                    the metadata database cannot be used (exit 10)
        ├── CatalogMissing              missing or empty where a catalog must be: rebuild it
        └── CatalogDamaged              corrupt, truncated or missing tables: rebuild --force

Every error carries three fields the CLI renders the same way: ``what`` went wrong,
``where`` (a path, ref, line) and ``fix`` (what the user should do). Translating to
messages and exit codes happens once, in ``lensvault.cli._errors``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AlreadyExists",
    "AnnotationError",
    "CatalogDamaged",
    "CatalogError",
    "CatalogMissing",
    "InputError",
    "IntegrityError",
    "InvalidRef",
    "LensVaultError",
    "NotFound",
    "ObjectMissing",
    "ObjectsVanished",
    "PreflightFailed",
    "RemoteConflict",
    "RemoteError",
    "StorageError",
    "UsageError",
    "VersionRuleError",
]


class LensVaultError(Exception):
    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None, **details: Any) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.details = details
        super().__init__(what)

    def __str__(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"(at {self.where})")
        if self.fix:
            parts.append(f"— {self.fix}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "fix": self.fix,
            **{k: v for k, v in self.details.items() if _jsonable(v)},
        }


def _jsonable(value: object) -> bool:
    return isinstance(value, (str, int, float, bool, list, dict, type(None)))


class UsageError(LensVaultError):
    exit_code = 2


class InvalidRef(UsageError):
    pass


class NotFound(LensVaultError, KeyError):
    exit_code = 3

    # KeyError.__str__ would quote the message; keep ours.
    __str__ = LensVaultError.__str__


class ObjectMissing(NotFound):
    pass


class AlreadyExists(LensVaultError):
    exit_code = 4


class RemoteConflict(AlreadyExists):
    """A remote already holds different content under a write-once name, or an alias moved there first."""


class IntegrityError(LensVaultError):
    exit_code = 5


class InputError(LensVaultError, ValueError):
    exit_code = 6


class AnnotationError(InputError):
    """One or more located findings in annotation input (``details['findings']``)."""


class PreflightFailed(LensVaultError):
    exit_code = 7

    def __init__(self, what: str, *, failures: list[dict[str, Any]], **kw: Any) -> None:
        super().__init__(what, failures=failures, **kw)
        self.failures = failures


class VersionRuleError(LensVaultError):
    exit_code = 8


class StorageError(LensVaultError, OSError):
    exit_code = 9

    __str__ = LensVaultError.__str__


class ObjectsVanished(StorageError):
    """Checked under the gc lock at commit: the write is refused (and may simply be retried)."""


class CatalogError(LensVaultError):
    exit_code = 10


class CatalogMissing(CatalogError):
    """The catalog is missing or empty while the vault says it has one (``catalog rebuild`` restores it)."""


class CatalogDamaged(CatalogError):
    """The catalog exists but cannot be trusted: not a database, truncated, tables gone."""


class RemoteError(StorageError):
    """A remote could not be used: unreachable, credentials refused, bucket missing, a request failed."""
