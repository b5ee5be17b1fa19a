"""Reach a remote's objects behind LensVault's back, the way damage, another client or time does:
boto3 against the S3 server, plain file operations on a file:// folder."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from .conftest import s3_client


def _split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url[len("s3://"):].partition("/")
    return bucket, prefix.rstrip("/")


def _path(url: str, oid: str) -> Path:
    return Path(url[len("file://"):]) / "objects" / oid[:2] / oid[2:]


def put(url: str, endpoint: str | None, oid: str, data: bytes) -> None:
    """Write ``data`` as object ``oid`` (damage when it does not hash to ``oid``)."""
    if endpoint is None:
        p = _path(url, oid)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, p)
        return
    bucket, prefix = _split(url)
    s3_client(endpoint).put_object(Bucket=bucket, Key=f"{prefix}/objects/{oid[:2]}/{oid[2:]}", Body=data)


def orphan(url: str, endpoint: str | None, data: bytes) -> str:
    """An object nothing names, as an interrupted push leaves one."""
    oid = hashlib.sha256(data).hexdigest()
    put(url, endpoint, oid, data)
    return oid


def get(url: str, endpoint: str | None, oid: str) -> bytes:
    if endpoint is None:
        return _path(url, oid).read_bytes()
    bucket, prefix = _split(url)
    return s3_client(endpoint).get_object(Bucket=bucket, Key=f"{prefix}/objects/{oid[:2]}/{oid[2:]}")["Body"].read()


def delete(url: str, endpoint: str | None, oid: str) -> None:
    if endpoint is None:
        _path(url, oid).unlink()
        return
    bucket, prefix = _split(url)
    s3_client(endpoint).delete_object(Bucket=bucket, Key=f"{prefix}/objects/{oid[:2]}/{oid[2:]}")


def oids(url: str, endpoint: str | None) -> set[str]:
    if endpoint is None:
        base = Path(url[len("file://"):]) / "objects"
        return {p.parent.name + p.name for p in base.glob("*/*") if p.is_file()} if base.exists() else set()
    bucket, prefix = _split(url)
    out, token = set(), None
    while True:
        kw = {"Bucket": bucket, "Prefix": f"{prefix}/objects/"}
        if token:
            kw["ContinuationToken"] = token
        page = s3_client(endpoint).list_objects_v2(**kw)
        out |= {"".join(o["Key"].split("/")[-2:]) for o in page.get("Contents", [])}
        token = page.get("NextContinuationToken")
        if not token:
            return out


def make_old(url: str, oid: str, seconds: float) -> None:
    """Set a file:// object's last-modified time ``seconds`` back (what the listing reports)."""
    t = time.time() - seconds
    os.utime(_path(url, oid), (t, t))


def flip_byte(url: str, endpoint: str | None, oid: str) -> None:
    """Damage that keeps the size: one bit flipped."""
    data = bytearray(get(url, endpoint, oid))
    data[len(data) // 2] ^= 1
    put(url, endpoint, oid, bytes(data))


def journal_oids(url: str, endpoint: str | None) -> set[str]:
    """The record oids the remote's journal entries name (the last 64 characters of each name)."""
    if endpoint is None:
        base = Path(url[len("file://"):]) / "journal"
        return {p.name[-64:] for p in base.rglob("*") if p.is_file()} if base.exists() else set()
    bucket, prefix = _split(url)
    page = s3_client(endpoint).list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/journal/")
    assert not page.get("NextContinuationToken")
    return {o["Key"][-64:] for o in page.get("Contents", [])}


def dataset_refs(url: str, endpoint: str | None) -> set[str]:
    """NAME@VERSION of every dataset ref on the remote."""
    if endpoint is None:
        base = Path(url[len("file://"):]) / "refs" / "datasets"
        return {f"{p.parent.name}@{p.name}" for p in base.glob("*/*") if p.is_file()} if base.exists() else set()
    bucket, prefix = _split(url)
    page = s3_client(endpoint).list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/refs/datasets/")
    return {"{}@{}".format(*o["Key"].split("/")[-2:]) for o in page.get("Contents", [])}


def make_all_old(url: str, seconds: float) -> None:
    for oid in oids(url, None):
        make_old(url, oid, seconds)
