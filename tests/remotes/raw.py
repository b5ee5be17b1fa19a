"""Reach a remote's objects behind LensVault's back, the way damage, another client or time does:
boto3 against the S3 server, Azure's own SDK against Azurite, plain file operations on a file://
folder. Keys are relative to the remote's URL (``objects/ab/cdef…``, ``packs/…``)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from .conftest import azure_client, s3_client


def _split(url: str) -> tuple[str, str]:
    """(bucket or container, prefix) of an s3:// or az:// URL."""
    bucket, _, prefix = url.partition("://")[2].partition("/")
    return bucket, prefix.rstrip("/")


def _file(url: str, key: str) -> Path:
    return Path(url[len("file://"):]) / key


def _container(url: str, endpoint: str):
    return azure_client(endpoint).get_container_client(_split(url)[0])


def _okey(oid: str) -> str:
    return f"objects/{oid[:2]}/{oid[2:]}"


def put_key(url: str, endpoint: str | None, key: str, data: bytes) -> None:
    if endpoint is None:
        p = _file(url, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
        return
    bucket, prefix = _split(url)
    if url.startswith("az://"):
        _container(url, endpoint).upload_blob(f"{prefix}/{key}", data, overwrite=True)
        return
    s3_client(endpoint).put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def get_key(url: str, endpoint: str | None, key: str) -> bytes:
    if endpoint is None:
        return _file(url, key).read_bytes()
    bucket, prefix = _split(url)
    if url.startswith("az://"):
        return bytes(_container(url, endpoint).download_blob(f"{prefix}/{key}").readall())
    return s3_client(endpoint).get_object(Bucket=bucket, Key=f"{prefix}/{key}")["Body"].read()


def delete_key(url: str, endpoint: str | None, key: str) -> None:
    if endpoint is None:
        _file(url, key).unlink()
        return
    bucket, prefix = _split(url)
    if url.startswith("az://"):
        _container(url, endpoint).delete_blob(f"{prefix}/{key}")
        return
    s3_client(endpoint).delete_object(Bucket=bucket, Key=f"{prefix}/{key}")


def keys(url: str, endpoint: str | None, under: str) -> list[str]:
    """Every key under ``under`` (e.g. ``packs/``), relative to the remote's URL."""
    if endpoint is None:
        root = Path(url[len("file://"):])
        base = root / under
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()) if base.exists() else []
    bucket, prefix = _split(url)
    if url.startswith("az://"):
        names = _container(url, endpoint).list_blobs(name_starts_with=f"{prefix}/{under}")
        return sorted(b.name[len(prefix) + 1:] for b in names)
    out, token = [], None
    while True:
        kw = {"Bucket": bucket, "Prefix": f"{prefix}/{under}"}
        if token:
            kw["ContinuationToken"] = token
        page = s3_client(endpoint).list_objects_v2(**kw)
        out += [o["Key"][len(prefix) + 1:] for o in page.get("Contents", [])]
        token = page.get("NextContinuationToken")
        if not token:
            return sorted(out)


def put(url: str, endpoint: str | None, oid: str, data: bytes) -> None:
    """Write ``data`` as object ``oid`` (damage when it does not hash to ``oid``)."""
    put_key(url, endpoint, _okey(oid), data)


def orphan(url: str, endpoint: str | None, data: bytes) -> str:
    """An object nothing names, as an interrupted push leaves one."""
    oid = hashlib.sha256(data).hexdigest()
    put(url, endpoint, oid, data)
    return oid


def get(url: str, endpoint: str | None, oid: str) -> bytes:
    return get_key(url, endpoint, _okey(oid))


def delete(url: str, endpoint: str | None, oid: str) -> None:
    delete_key(url, endpoint, _okey(oid))


def oids(url: str, endpoint: str | None) -> set[str]:
    return {"".join(k.split("/")[-2:]) for k in keys(url, endpoint, "objects/")}


def make_old(url: str, oid: str, seconds: float) -> None:
    """Set a file:// object's last-modified time ``seconds`` back (what the listing reports)."""
    t = time.time() - seconds
    os.utime(_file(url, _okey(oid)), (t, t))


def flip_byte(url: str, endpoint: str | None, oid: str) -> None:
    """Damage that keeps the size: one bit flipped."""
    data = bytearray(get(url, endpoint, oid))
    data[len(data) // 2] ^= 1
    put(url, endpoint, oid, bytes(data))


def journal_oids(url: str, endpoint: str | None) -> set[str]:
    """The record oids the remote's journal entries name (the last 64 characters of each name)."""
    return {k[-64:] for k in keys(url, endpoint, "journal/")}


def dataset_refs(url: str, endpoint: str | None) -> set[str]:
    """NAME@VERSION of every dataset ref on the remote."""
    return {"{}@{}".format(*k.split("/")[-2:]) for k in keys(url, endpoint, "refs/datasets/")}


def make_all_old(url: str, seconds: float) -> None:
    for oid in oids(url, None):
        make_old(url, oid, seconds)
