"""Named remotes, kept in the vault's ``config.toml`` (``[remotes.NAME]``): where, never who.

Credentials come from each cloud's usual places (the environment, its profile files), so a
config file can be shared or committed without leaking a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lensvault.errors import AlreadyExists, NotFound, UsageError
from lensvault.results import ListResult

if TYPE_CHECKING:
    from lensvault.store.remote import RemoteStore
    from lensvault.vault import Vault

__all__ = ["Remote", "RemoteList", "add_remote", "open_remote", "remote_list", "remove_remote", "resolve_remote"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# s3:// (moto), az:// (Azurite) and file:// are tested against real servers; gs:// is not: no GCS
# emulator that installs from the package registries accepts object_store's uploads (docs/remotes.md).
UNTESTED = {
    "gs": ("gs:// remotes use the same client as s3:// and az://, but LensVault's tests have not run them "
           "against a GCS server (no installable GCS emulator accepts its uploads): before you rely on it, "
           "push one version to your bucket, then check it there with verify --remote --hash and a clone"),
}


@dataclass(frozen=True)
class Remote:
    name: str
    url: str
    endpoint_url: str | None = None
    region: str | None = None
    default: bool = False

    @property
    def note(self) -> str | None:
        """What a user of this kind of remote should know before trusting it (None: nothing)."""
        return UNTESTED.get(self.url.partition("://")[0])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "endpoint_url": self.endpoint_url, "region": self.region,
                "default": self.default, "note": self.note}

    def store(self, *, jobs: int = 32) -> RemoteStore:
        from lensvault.store.remote import RemoteStore, open_remote_store

        s = open_remote_store(self.url, endpoint_url=self.endpoint_url, region=self.region)
        assert isinstance(s, RemoteStore)
        s.jobs = jobs
        return s


class RemoteList(ListResult):
    """``remote list``: every remote, the default marked."""


def normalize_url(url: str) -> str:
    """s3://bucket[/prefix], gs://…, az://…, file:///absolute/path (a bare absolute path is a file:// URL)."""
    from lensvault.store.remote import SCHEMES

    text = url.strip()
    if text.startswith("/"):
        text = "file://" + text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in SCHEMES:
        raise UsageError(f"{url!r} is not a remote URL", where=url,
                         fix="use s3://BUCKET/PREFIX (add --endpoint-url for MinIO, Ceph, R2 …), gs://BUCKET/PREFIX, "
                             "az://CONTAINER/PREFIX or file:///ABSOLUTE/PATH")
    if scheme == "file":
        if not rest.startswith("/"):
            raise UsageError(f"{url!r} is not an absolute file:// URL", where=url,
                             fix="write it with three slashes: file:///mnt/share/lensvault")
    elif not rest.split("/", 1)[0]:
        raise UsageError(f"{url!r} names no bucket", where=url, fix=f"write it as {scheme}://BUCKET/PREFIX")
    return text.rstrip("/")


def _remotes(vault: Vault) -> dict[str, Remote]:
    return {name: Remote(name, r["url"], r.get("endpoint_url"), r.get("region"), bool(r.get("default")))
            for name, r in vault.config.remotes.items()}


def _write(vault: Vault, remotes: dict[str, Remote]) -> None:
    table = {r.name: {k: v for k, v in r.to_dict().items() if k not in ("name", "note") and v not in (None, False)}
             for r in remotes.values()}
    vault.config = replace(vault.config, remotes=table)
    vault.config.write(vault.dir / "config.toml")


def add_remote(vault: Vault, name: str, url: str, *, endpoint_url: str | None = None, region: str | None = None,
               default: bool = False, check: bool = True) -> Remote:
    """Name the remote at ``url``; ``check`` (the default): only if it can be used now
    (``RemoteStore.check_usable``: the bucket or folder exists, the server answers, our credentials
    are taken, a new location can be written to). ``check=False`` is for a machine that is offline
    or gets its credentials later (a container image built before it runs)."""
    if not _NAME.match(name):
        raise UsageError(f"{name!r} is not a valid remote name", where=name,
                         fix="use letters, digits, '.', '_' and '-' (e.g. origin, team-s3)")
    if endpoint_url is not None and not endpoint_url.startswith(("http://", "https://")):
        raise UsageError(f"{endpoint_url!r} is not an http(s) endpoint", where=endpoint_url,
                         fix="pass the server's address, e.g. --endpoint-url http://minio.local:9000")
    remotes = _remotes(vault)
    if name in remotes:
        raise AlreadyExists(f"a remote named {name!r} already exists ({remotes[name].url})", where=name,
                            fix=f"remove it first (`lensvault remote remove {name}`) or choose another name")
    url = normalize_url(url)
    default = default or not remotes  # the first remote is the default
    if default:
        remotes = {k: replace(r, default=False) for k, r in remotes.items()}
    remotes[name] = Remote(name, url, endpoint_url, region, default)
    if check:
        _check(remotes[name])
    _write(vault, remotes)
    return remotes[name]


def _check(remote: Remote) -> None:
    from lensvault.errors import LensVaultError

    try:
        remote.store(jobs=1).check_usable()
    except LensVaultError as e:
        e.fix = (f"{e.fix}; or, if this machine cannot reach it now (offline, credentials given later), "
                 f"add it unchecked with --no-check") if e.fix else "add it unchecked with --no-check"
        raise


def remove_remote(vault: Vault, name: str) -> Remote:
    remotes = _remotes(vault)
    if name not in remotes:
        raise _unknown(vault, name)
    gone = remotes.pop(name)
    if gone.default and len(remotes) == 1:
        only = next(iter(remotes))
        remotes[only] = replace(remotes[only], default=True)
    _write(vault, remotes)
    return gone


def remote_list(vault: Vault) -> RemoteList:
    return RemoteList(sorted(_remotes(vault).values(), key=lambda r: r.name))


def resolve_remote(vault: Vault, name: str | None) -> Remote:
    """The remote ``name``, or the default one."""
    remotes = _remotes(vault)
    if name is not None:
        if name not in remotes:
            raise _unknown(vault, name)
        return remotes[name]
    for r in remotes.values():
        if r.default:
            return r
    raise NotFound("this vault has no default remote", where=str(vault.dir / "config.toml"),
                   fix="add one with `lensvault remote add origin s3://BUCKET/PREFIX --default`, or pass --remote NAME")


def open_remote(vault: Vault, name: str | None, *, jobs: int = 32) -> tuple[Remote, RemoteStore]:
    import os

    remote = resolve_remote(vault, name)
    rs = remote.store(jobs=jobs)
    rs.cache_dir = os.path.join(vault.dir, "remote-packs")  # pack indexes, kept between commands
    return remote, rs


def _unknown(vault: Vault, name: str) -> NotFound:
    known = ", ".join(sorted(vault.config.remotes)) or "none"
    return NotFound(f"no remote named {name!r} (known: {known})", where=str(vault.dir / "config.toml"),
                    fix=f"add it with `lensvault remote add {name} URL`")
