"""``.lensvault/config.toml``: where a vault keeps its store and catalog."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from lensvault.errors import CatalogError

__all__ = ["VaultConfig"]


@dataclass(frozen=True)
class VaultConfig:
    vault_id: str
    created_at: str
    store_url: str
    catalog_url: str

    def to_dict(self) -> dict:
        return {
            "vault": {"id": self.vault_id, "created_at": self.created_at},
            "store": {"url": self.store_url},
            "catalog": {"url": self.catalog_url},
        }

    @classmethod
    def from_dict(cls, d: dict) -> VaultConfig:
        return cls(
            vault_id=d["vault"]["id"],
            created_at=d["vault"]["created_at"],
            store_url=d["store"]["url"],
            catalog_url=d["catalog"]["url"],
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

        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(self.to_dict()), encoding="utf-8")
        tmp.replace(path)
