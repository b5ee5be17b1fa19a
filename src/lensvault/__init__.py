"""LensVault: versioned vision datasets, reproducible runs and a model registry.

Importing this package stays light: the heavy parts (SQLAlchemy, pyarrow, Pillow)
load on first use, so ``lensvault --help`` and ``import lensvault`` are fast.
"""

from __future__ import annotations

from lensvault.errors import (
    AlreadyExists,
    AnnotationError,
    CatalogDamaged,
    CatalogError,
    CatalogMissing,
    InputError,
    IntegrityError,
    InvalidRef,
    LensVaultError,
    NotFound,
    ObjectMissing,
    ObjectsVanished,
    PreflightFailed,
    RemoteConflict,
    RemoteError,
    StorageError,
    UsageError,
    VersionRuleError,
)

__version__ = "0.1.0"

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
    "Vault",
    "VersionRuleError",
    "__version__",
    "clone",
    "init",
    "log_artifact",
    "log_metrics",
    "log_params",
    "open",
    "start_run",
]

_LAZY = {
    "Vault": ("lensvault.vault", "Vault"),
    "open": ("lensvault.vault", "open_vault"),
    "init": ("lensvault.vault", "init_vault"),
    "clone": ("lensvault.vault", "clone_vault"),
    "log_artifact": ("lensvault.tracking", "log_artifact"),
    "log_metrics": ("lensvault.tracking", "log_metrics"),
    "log_params": ("lensvault.tracking", "log_params"),
    "start_run": ("lensvault.tracking", "start_run"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lensvault' has no attribute {name!r}")
