"""A store on object storage (S3 and every S3-compatible server, GCS, Azure, a mounted folder):
the backend of remotes.

It implements ``ObjectStore`` through obstore (the Rust ``object_store`` crate: one API for
S3/GCS/Azure/local, its own retries with back-off, multipart for large bodies), plus what
only a remote needs: conditional ref writes (create-if-absent with ``If-None-Match: *``,
compare-and-swap with ``If-Match`` on the ref's ETag) and bulk transfers with many requests
in flight. Layout under the URL's prefix (docs/design.md, "Remotes")::

    lensvault-remote.json                    {"format": "lensvault.remote/1"}: marks a remote
    objects/ab/cdef…                         objects, record objects included; created only if absent
    journal/<YYYY-MM>/<stamp>-<kind>-<oid>   one empty entry per record, written after the record
    refs/datasets/<name>/<version>           record oid; created only if absent
    refs/models/<name>/<version>             record oid; created only if absent
    refs/configs/<id>                        record oid; created only if absent
    refs/aliases/<name>/<alias>              oid of the alias's latest move record; moved by CAS
    vaults/<vault-id>                        the vaults that use this store as theirs (rare)
    clock/<random>                           written and removed at once: the server's "now" (gc)

Credentials come from the environment of each cloud (``AWS_ACCESS_KEY_ID``…,
``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_…``), never from the vault's config.
Nothing here pins or locks: a remote is shared by machines whose liveness we cannot see;
``gc --remote`` (remotes/gc.py) relies on a grace period measured by the server's clock.

What status, verify and gc on a remote use (``list_objects``, ``hash_object``,
``delete_objects``, ``server_time``) is kept apart below, so that another object layout
(packs) can answer them without those modules changing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from lensvault.errors import LensVaultError, RemoteConflict, RemoteError, UsageError
from lensvault.store.base import ObjectStat, ObjectStore, OnDone

if TYPE_CHECKING:
    from lensvault.errors import ObjectMissing

__all__ = ["HEADER", "RemoteObject", "RemoteStore", "check_remote_ref", "open_remote_store", "remote_error"]

HEADER = "lensvault-remote.json"
FORMAT = "lensvault.remote/1"
SCHEMES = ("s3", "gs", "az", "abfs", "file")
# Bodies above this go up in parts and come down to a temp file; below, in memory.
LARGE = 32 * 1024 * 1024
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]{0,199}$")
_TOP = ("refs", "journal", "vaults", "ledgers")


def check_remote_ref(name: str) -> str:
    parts = name.split("/")
    if len(parts) < 2 or parts[0] not in _TOP or not all(_PART.match(p) for p in parts):
        raise UsageError(f"{name!r} is not a valid remote ref name", where=name,
                         fix="ref names are relative paths of letters, digits and ._+@=- under refs/ or journal/")
    return name


def open_remote_store(url: str, *, endpoint_url: str | None = None, region: str | None = None) -> RemoteStore:
    scheme = url.partition("://")[0]
    if scheme not in SCHEMES or "://" not in url:
        raise UsageError(f"{url!r} is not a remote URL", where=url,
                         fix="use s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH")
    return RemoteStore(url, endpoint_url=endpoint_url, region=region)


def remote_error(e: BaseException, url: str, what: str) -> LensVaultError:
    """An obstore/OS failure as a LensVault error that says what to do about it."""
    text = str(e)
    first = text.splitlines()[0] if text else type(e).__name__
    name = type(e).__name__
    if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
        return RemoteError(f"{what}: the bucket does not exist", where=url,
                           fix="create the bucket, or point the remote at one that exists (remove the remote and add it again)")
    if name in ("UnauthenticatedError", "PermissionDeniedError") or any(
            k in text for k in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403 Forbidden")):
        return RemoteError(f"{what}: the server refused our credentials ({first[:200]})", where=url,
                           fix="set the cloud's usual credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                               "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY …) and run it again")
    if any(k in text.lower() for k in ("connection refused", "error sending request", "dns error", "timed out",
                                       "tcp connect", "connect error", "operation timed out")):
        return RemoteError(f"{what}: the server cannot be reached ({first[:200]})", where=url,
                           fix="check the URL and --endpoint-url, the network, and that the server is running; "
                               "then run the command again (it sends only what is missing)")
    return RemoteError(f"{what} ({name}: {first[:300]})", where=url,
                       fix="run the command again (it resumes: only what is missing is sent); "
                           "if it keeps failing, check the server's logs")


class RemoteObject(NamedTuple):
    """One object as a listing shows it: its name, size and when the server last wrote it."""

    oid: str
    size: int
    last_modified: float  # seconds since the epoch, by the server's clock


class RemoteStore(ObjectStore):
    """Objects and refs under one object-storage URL."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 jobs: int = 32) -> None:
        self.url = url.rstrip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.jobs = jobs
        self._store: Any = None
        self._cas_lock = threading.Lock()
        self._local_root = self.url[len("file://"):] if self.url.startswith("file://") else None

    # -- the client ----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._store is None:
            from datetime import timedelta

            from obstore.store import from_url

            kw: dict[str, Any] = {}
            if self._local_root is not None:
                os.makedirs(self._local_root, exist_ok=True)
                kw["mkdir"] = True
            else:
                options: dict[str, Any] = {"connect_timeout": "10s", "timeout": "300s"}
                if self.endpoint_url:
                    kw["endpoint"] = self.endpoint_url
                    if self.endpoint_url.startswith("http://"):
                        options["allow_http"] = True
                if self.region:
                    kw["region"] = self.region
                if self.url.startswith("s3://"):
                    # x-amz-checksum-sha256 on every upload: a server that checks it refuses bytes
                    # damaged in transit (S3 does; the object's name is its sha256 anyway).
                    kw["checksum_algorithm"] = "sha256"
                kw["client_options"] = options
                kw["retry_config"] = {"max_retries": 4, "retry_timeout": timedelta(seconds=60),
                                      "backoff": {"init_backoff": timedelta(milliseconds=100),
                                                  "max_backoff": timedelta(seconds=5), "base": 2.0}}
            try:
                self._store = from_url(self.url, **kw)
            except Exception as e:
                raise remote_error(e, self.url, "the remote cannot be opened") from e
        return self._store

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return fn(self.client, *args, **kw)
        except FileNotFoundError as e:
            if "NoSuchBucket" in str(e):
                raise remote_error(e, self.url, what) from e
            raise
        except LensVaultError:
            raise
        except Exception as e:
            if type(e).__name__ in ("AlreadyExistsError", "PreconditionError"):
                raise
            raise remote_error(e, self.url, what) from e

    @staticmethod
    def key(oid: str) -> str:
        return f"objects/{oid[:2]}/{oid[2:]}"

    def location(self, oid: str) -> str:
        return f"{self.url}/{self.key(oid)}"

    def missing_error(self, oid: str) -> ObjectMissing:
        from lensvault.errors import ObjectMissing

        return ObjectMissing(
            f"object {oid[:12]}… is missing from the remote, though a ref there needs it", where=self.location(oid),
            fix="in a vault that has it intact, run `lensvault push --all --check-remote` (it replaces damaged "
                "and missing objects), then run this again", oid=oid)

    # -- set-up --------------------------------------------------------------------------------
    def create(self) -> None:
        """Mark the location as a LensVault remote (idempotent; the bucket itself must exist)."""
        import obstore

        body = json.dumps({"format": FORMAT}).encode() + b"\n"
        try:
            self._call("the remote cannot be written", obstore.put, HEADER, body, mode="create")
        except Exception as e:
            if type(e).__name__ != "AlreadyExistsError":
                raise

    def exists(self) -> bool:
        import obstore

        try:
            self._call("the remote cannot be read", obstore.head, HEADER)
            return True
        except FileNotFoundError:
            return False

    # -- reading -------------------------------------------------------------------------------
    def has(self, oid: str) -> bool:
        import obstore

        try:
            self._call("the remote cannot be read", obstore.head, self.key(oid))
            return True
        except FileNotFoundError:
            return False

    def listing(self) -> dict[str, tuple[int, float]]:
        """Every object on the remote: oid -> (size, stored_at), from LIST requests (1,000 a page)."""
        import obstore

        out: dict[str, tuple[int, float]] = {}
        try:
            for page in obstore.list(self.client, "objects/", chunk_size=1000):
                for meta in page:
                    parts = meta["path"].split("/")
                    if len(parts) == 3 and len(parts[1]) == 2:
                        out[parts[1] + parts[2]] = (int(meta["size"]), meta["last_modified"].timestamp())
        except Exception as e:
            raise remote_error(e, self.url, "the remote's objects cannot be listed") from e
        return out

    def missing(self, oids: list[str]) -> list[str]:
        have = self.listing()  # one LIST per 1,000 objects, never one HEAD per object
        return [o for o in oids if o not in have]

    def stat(self, oid: str) -> ObjectStat:
        import obstore

        try:
            meta = self._call("the remote cannot be read", obstore.head, self.key(oid))
        except FileNotFoundError:
            raise self.missing_error(oid) from None
        return ObjectStat(int(meta["size"]), meta["last_modified"].timestamp())

    def open(self, oid: str) -> BinaryIO:
        return io.BytesIO(self.get_raw(oid))

    def get_raw(self, oid: str) -> bytes:
        """The object's bytes as the server sent them (not hashed: callers check)."""
        import obstore

        try:
            return bytes(self._call("the remote cannot be read", obstore.get, self.key(oid)).bytes())
        except FileNotFoundError:
            raise self.missing_error(oid) from None

    def fetch_to(self, oid: str, path: str) -> int | None:
        """Stream object ``oid`` into the file ``path`` (bounded memory), hashing it on the way: its
        size, or None if the bytes do not hash to its name (then ``path`` is removed)."""
        import obstore

        try:
            result = self._call("the remote cannot be read", obstore.get, self.key(oid))
        except FileNotFoundError:
            raise self.missing_error(oid) from None
        h = hashlib.sha256()
        size = 0
        try:
            with open(path, "wb") as f:
                for chunk in result:
                    h.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
        except LensVaultError:
            raise
        except OSError as e:
            if type(e).__module__.startswith("obstore"):
                raise remote_error(e, self.url, f"object {oid[:12]}… could not be downloaded") from e
            from lensvault.store.linking import storage_error

            raise storage_error(e, path) from e
        except Exception as e:  # a dropped connection mid-body: see remote_error
            raise remote_error(e, self.url, f"object {oid[:12]}… could not be downloaded") from e
        if h.hexdigest() != oid:
            os.unlink(path)
            return None
        return size

    def iter_oids(self) -> Iterator[str]:
        yield from sorted(self.listing())

    def check(self, oid: str) -> str:
        from lensvault.errors import ObjectMissing

        try:
            data = self.get_raw(oid)
        except ObjectMissing:
            return "missing"
        return "ok" if hashlib.sha256(data).hexdigest() == oid else "corrupt"

    # -- writing -------------------------------------------------------------------------------
    def put_object(self, oid: str, body: bytes | str, *, replace: bool = False) -> bool:
        """Create object ``oid`` from bytes or a file path, only if absent (``If-None-Match: *``):
        True if this call created it, False if it was there (same name, same bytes). ``replace``:
        overwrite a damaged one (the caller hashed ``body``: it is the object's true bytes)."""
        import obstore

        mode = "overwrite" if replace else "create"
        try:
            if isinstance(body, str):
                with open(body, "rb") as f:
                    self._call(f"object {oid[:12]}… could not be uploaded", obstore.put, self.key(oid), f,
                               mode=mode, chunk_size=8 * 1024 * 1024, max_concurrency=4)
            else:
                self._call(f"object {oid[:12]}… could not be uploaded", obstore.put, self.key(oid), body,
                           mode=mode)
            return True
        except Exception as e:
            if type(e).__name__ == "AlreadyExistsError":
                return False
            raise

    def put_bytes(self, data: bytes) -> str:
        oid = hashlib.sha256(data).hexdigest()
        self.put_object(oid, data)
        return oid

    def put_files(self, items: Sequence[tuple[str, str]], *, on_done: OnDone | None = None) -> None:
        def one(item: tuple[str, str]) -> None:
            src, oid = item
            self.put_object(oid, src)

        self.run_many(one, list(items), on_done=on_done)

    def restore_bytes(self, oid: str, data: bytes) -> bool:
        import obstore

        if hashlib.sha256(data).hexdigest() != oid:
            return False
        self._call(f"object {oid[:12]}… could not be uploaded", obstore.put, self.key(oid), data)
        return True

    def delete(self, oid: str) -> None:
        import obstore

        try:
            self._call("the remote cannot be written", obstore.delete, self.key(oid))
        except FileNotFoundError:
            pass

    def run_many(self, fn: Callable[[Any], None], items: list[Any], *, on_done: OnDone | None = None) -> None:
        """``fn(item)`` for every item with ``self.jobs`` requests in flight; the first error stops the rest."""
        if not items:
            return
        stop = threading.Event()

        def guarded(item: Any) -> None:
            if stop.is_set():
                return
            try:
                fn(item)
            except BaseException:
                stop.set()
                raise
            if on_done:
                on_done(1)

        pool = ThreadPoolExecutor(max_workers=min(self.jobs, len(items)))
        first: BaseException | None = None
        try:
            futures = [pool.submit(guarded, it) for it in items]
            for fut in futures:
                try:
                    fut.result()
                except Exception as e:  # noqa: BLE001 - the first error is re-raised below, after the others stop
                    if first is None:
                        first = e
                        stop.set()
        except BaseException:
            # Ctrl-C: queued requests are dropped, running ones finish (their objects are whole or absent).
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        if first is not None:
            raise first

    # -- status, verify and gc on a remote ------------------------------------------------------
    def list_objects(self) -> Iterator[RemoteObject]:
        """Every object on the remote, from LIST requests (1,000 names a request)."""
        import obstore

        try:
            for page in obstore.list(self.client, "objects/", chunk_size=1000):
                for meta in page:
                    parts = meta["path"].split("/")
                    if len(parts) == 3 and len(parts[1]) == 2:
                        yield RemoteObject(parts[1] + parts[2], int(meta["size"]), meta["last_modified"].timestamp())
        except LensVaultError:
            raise
        except Exception as e:
            raise remote_error(e, self.url, "the remote's objects cannot be listed") from e

    def hash_object(self, oid: str) -> str | None:
        """The sha256 of object ``oid``'s bytes as the server sends them, streamed (bounded
        memory, whatever the size); None if the remote does not have it."""
        import obstore

        try:
            result = self._call("the remote cannot be read", obstore.get, self.key(oid))
        except FileNotFoundError:
            return None
        h = hashlib.sha256()
        try:
            # 1 MB chunks (obstore's default is 10 MB): --jobs of these in flight stay well under 300 MB.
            for chunk in result.stream(min_chunk_size=1 << 20):
                h.update(chunk)
        except Exception as e:  # a dropped connection mid-body
            raise remote_error(e, self.url, f"object {oid[:12]}… could not be read") from e
        return h.hexdigest()

    def delete_objects(self, oids: Sequence[str]) -> None:
        """Delete objects (an absent one is no error): bulk requests where the server has them
        (S3: 1,000 keys a request), else one request each, ``jobs`` in flight."""
        import obstore

        keys = [self.key(o) for o in oids]
        if self._local_root is None:
            for start in range(0, len(keys), 1000):
                try:
                    self._call("the remote cannot be written", obstore.delete, keys[start:start + 1000])
                except FileNotFoundError:
                    pass  # (S3 answers an absent key with success; the others per key, below)
            return
        self.run_many(self.delete, list(oids))  # a folder: a missing file is an error in a bulk delete

    def server_time(self) -> float:
        """Now, by the server's clock (seconds since the epoch): the last-modified time of a marker
        written for the purpose and removed. Object ages are measured against it, so a machine
        whose clock runs ahead cannot take a fresh object for an old one."""
        import uuid

        import obstore

        key = f"clock/{uuid.uuid4().hex}"
        self._call("the remote cannot be written", obstore.put, key, b"", mode="overwrite")
        try:
            meta = self._call("the remote cannot be read", obstore.head, key)
        finally:
            try:
                self._call("the remote cannot be written", obstore.delete, key)
            except FileNotFoundError:
                pass
        written: float = meta["last_modified"].timestamp()
        return written

    # -- gc: a remote is shared by machines whose liveness we cannot see --------------------------
    def pin(self, oids: Iterable[str], *, owner: str | None = None) -> None:
        return None

    def pinned(self, grace_seconds: float) -> set[str]:
        return set()

    def release_pins(self) -> None:
        return None

    def register_vault(self, vault_id: str, vault_path: str | os.PathLike[str]) -> None:
        self.put_ref(f"vaults/{vault_id}", os.fspath(vault_path).encode())

    def vaults(self) -> list[dict[str, str]]:
        out = []
        for name in self.list_refs("vaults"):
            data = self.get_ref(name) or b""
            out.append({"vault_id": name.rsplit("/", 1)[-1], "path": data.decode(errors="replace")})
        return out

    # -- refs ----------------------------------------------------------------------------------
    def put_ref(self, name: str, data: bytes, *, exclusive: bool = False) -> bool:
        import obstore

        check_remote_ref(name)
        try:
            self._call(f"ref {name} could not be written", obstore.put, name, data,
                       mode="create" if exclusive else "overwrite")
            return True
        except Exception as e:
            if type(e).__name__ == "AlreadyExistsError":
                return False
            raise

    def get_ref(self, name: str) -> bytes | None:
        found = self.get_ref_tagged(name)
        return found[0] if found else None

    def get_ref_tagged(self, name: str) -> tuple[bytes, str] | None:
        """A ref's bytes and its ETag (what a compare-and-swap names), or None."""
        import obstore

        check_remote_ref(name)
        try:
            result = self._call(f"ref {name} could not be read", obstore.get, name)
        except FileNotFoundError:
            return None
        return bytes(result.bytes()), str(result.meta.get("e_tag") or "")

    def swap_ref(self, name: str, data: bytes, expected: str | None) -> None:
        """Point ref ``name`` at ``data`` if it is still what we read: absent (``expected`` None,
        ``If-None-Match: *``) or of ETag ``expected`` (``If-Match``). RemoteConflict if another
        writer moved it first — exactly one of two racing writers wins."""
        import obstore

        check_remote_ref(name)
        lost = RemoteConflict(f"{name} was moved on the remote by someone else meanwhile", where=f"{self.url}/{name}",
                              fix="read the ref again, decide again, and retry")
        if expected is None:
            if not self.put_ref(name, data, exclusive=True):
                raise lost
            return
        if self._local_root is not None:
            self._swap_local(name, data, expected, lost)
            return
        try:
            self._call(f"ref {name} could not be written", obstore.put, name, data, mode={"e_tag": expected})
        except Exception as e:
            if type(e).__name__ in ("PreconditionError", "AlreadyExistsError"):
                raise lost from None
            raise

    def _swap_local(self, name: str, data: bytes, expected: str, lost: RemoteConflict) -> None:
        # A folder has no If-Match: an exclusive lock on a file beside the refs does the same
        # between processes of this machine (and between NFS clients that map flock to NFS locks).
        import fcntl

        import obstore

        assert self._local_root is not None
        lock_path = os.path.join(self._local_root, ".refs.lock")
        with self._cas_lock, open(lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                found = self.get_ref_tagged(name)
                if found is None or found[1] != expected:
                    raise lost
                self._call(f"ref {name} could not be written", obstore.put, name, data, mode="overwrite")
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def delete_ref(self, name: str) -> None:
        import obstore

        check_remote_ref(name)
        try:
            self._call(f"ref {name} could not be deleted", obstore.delete, name)
        except FileNotFoundError:
            pass

    def ref_age(self, name: str) -> float | None:
        """Seconds since the ref was last written, from the object's last-modified time."""
        import time

        import obstore

        check_remote_ref(name)
        try:
            meta = self._call(f"ref {name} could not be read", obstore.head, name)
        except FileNotFoundError:
            return None
        written: float = meta["last_modified"].timestamp()
        return max(0.0, time.time() - written)

    def ref_location(self, name: str) -> str:
        return f"{self.url}/{name}"

    def list_refs(self, prefix: str) -> list[str]:
        import obstore

        base = prefix.rstrip("/") + "/"
        out: list[str] = []
        try:
            for page in obstore.list(self.client, base, chunk_size=1000):
                out.extend(m["path"] for m in page if not m["path"].rsplit("/", 1)[-1].startswith("."))
        except FileNotFoundError:
            return []
        except Exception as e:
            raise remote_error(e, self.url, f"the remote's {prefix} cannot be listed") from e
        return sorted(out)
