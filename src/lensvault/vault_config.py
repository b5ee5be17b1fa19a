"""``.lensvault/config.toml``: where a vault keeps its store and catalog."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lensvault.errors import CatalogError

__all__ = ["VaultConfig"]


@dataclass(frozen=True)
class VaultConfig:
    vault_id: str
    created_at: str
    store_url: str
    catalog_url: str
    # The identity of the catalog this vault writes to (several vaults may share one on
    # PostgreSQL). It names the catalog's ledger in the store, and it is what lets a vault
    # tell "my catalog is gone" from "this is a different catalog". None: a vault made
    # before catalogs had ids; it is filled in the first time the catalog is opened.
    catalog_id: str | None = None
    # Named remotes (lensvault.remotes.config): NAME -> {"url", "endpoint_url", "region", "default"}.
    # Where the bytes are, never credentials: those come from each cloud's usual places.
    remotes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        catalog = {"url": self.catalog_url}
        if self.catalog_id:
            catalog["id"] = self.catalog_id
        out: dict[str, Any] = {
            "vault": {"id": self.vault_id, "created_at": self.created_at},
            "store": {"url": self.store_url},
            "catalog": catalog,
        }
        if self.remotes:
            out["remotes"] = {k: {f: v for f, v in r.items() if v is not None} for k, r in sorted(self.remotes.items())}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> VaultConfig:
        return cls(
            vault_id=d["vault"]["id"],
            created_at=d["vault"]["created_at"],
            store_url=d["store"]["url"],
            catalog_url=d["catalog"]["url"],
            catalog_id=d["catalog"].get("id"),
            remotes=dict(d.get("remotes", {})),
        )

    @classmethod
    def read(cls, path: Path) -> VaultConfig:
        try:
            return cls.from_dict(tomllib.loads(path.read_text(encoding="utf-8")))
        except (tomllib.TOMLDecodeError, KeyError, OSError) as e:
            raise CatalogError(
                f"the vault configuration cannot be read ({e})",
                where=str(path),
                fix="repair the file (keys: vault.id, vault.created_at, store.url, catalog.url)",
            ) from e

    def write(self, path: Path) -> None:
        import tomli_w

        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # two writers never share a temp file
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(tomli_w.dumps(self.to_dict()))
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
