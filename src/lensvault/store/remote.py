"""A store on object storage (S3 and every S3-compatible server, GCS, Azure, a mounted folder):
the backend of remotes.

It implements ``ObjectStore`` through obstore (the Rust ``object_store`` crate: one API for
S3/GCS/Azure/local, its own retries with back-off, multipart for large bodies), plus what
only a remote needs: conditional ref writes (create-if-absent with ``If-None-Match: *``,
compare-and-swap with ``If-Match`` on the ref's ETag) and bulk transfers with many requests
in flight. Layout under the URL's prefix (docs/design.md, "Remotes")::

    lensvault-remote.json                    {"format": "lensvault.remote/2"}: marks a remote
    objects/ab/cdef…                         large objects (>= 4 MB), one each; created only if absent
    packs/<sha256>.pack                      small objects (and records) concatenated (store/packs.py)
    packs/<sha256>.idx                       its index: sorted oid -> offset, length; written after the pack
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
``gc --remote`` (remotes/gc.py) relies on a grace period measured by the server's clock
(``repack`` takes one).

Format 1 (no packs) is still read; a push to a format-1 remote turns its marker to format 2
before it writes its first pack. A marker of any other format is refused (a newer LensVault).

What status, verify and gc on a remote use (``list_objects``, ``hash_object``,
``delete_objects``, ``server_time``) answers for single and packed objects alike.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from lensvault.errors import LensVaultError, RemoteConflict, RemoteError, UsageError
from lensvault.store.base import ObjectStat, ObjectStore, OnDone
from lensvault.store.packs import PACK_BELOW, PACK_TARGET, PackIndex, build_pack, pack_name_of, plan_reads

if TYPE_CHECKING:
    from lensvault.errors import ObjectMissing

__all__ = ["HEADER", "RemoteObject", "RemoteStore", "check_remote_ref", "open_remote_store", "remote_error"]

HEADER = "lensvault-remote.json"
FORMAT = "lensvault.remote/2"
READABLE = ("lensvault.remote/1", FORMAT)  # 1: one object per file; 2: small objects in packs
# Packs read at once (each up to PACK_TARGET bytes in memory, once): bounds a pull's memory.
PACKS_IN_FLIGHT = 4
# A pack is read (and handed on) at most this many bytes at a time: 4 packs of 32 MB in flight
# held 128 MB of bodies, and a clone of 50,000 JPEGs peaked at 340-400 MB.
READ_BYTES = 8 * 1024 * 1024
# Packs built and sent at once: each is in memory twice (built, and the client's copy it sends).
PACKS_UP = 2
SCHEMES = ("s3", "gs", "az", "abfs", "file")
# Bodies above this go up in parts and come down to a temp file; below, in memory.
LARGE = 32 * 1024 * 1024
PART_BYTES = 8 * 1024 * 1024  # a large object's upload parts: 4 in flight, 32 MB of memory
_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+@=-]{0,199}$")
_TOP = ("refs", "journal", "vaults", "ledgers")
_VERSION_SEP = "\x00"  # between a ref's ETag and its version in the tag get_ref_tagged returns


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


# Where each cloud's client looks for credentials (the environment; profile files for AWS and GCS).
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (a service-account JSON file)",
    "az": "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_TOKEN)",
    "abfs": "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_TOKEN)",
}


def remote_error(e: BaseException, url: str, what: str) -> LensVaultError:
    """An obstore/OS failure as a LensVault error that says what to do about it."""
    text = str(e)
    first = text.splitlines()[0] if text else type(e).__name__
    name = type(e).__name__
    scheme = url.partition("://")[0]
    bucket = "container" if scheme in ("az", "abfs") else "bucket"
    if any(k in text for k in ("NoSuchBucket", "ContainerNotFound")) or "bucket does not exist" in text.lower():
        return RemoteError(f"{what}: the {bucket} does not exist", where=url,
                           fix=f"create the {bucket}, or point the remote at one that exists (remove the remote and add it again)")
    if "MissingAccount" in text or "Account must be specified" in text:
        return RemoteError(f"{what}: no Azure storage account is named", where=url,
                           fix="set AZURE_STORAGE_ACCOUNT_NAME (and AZURE_STORAGE_ACCOUNT_KEY, or a SAS token in "
                               "AZURE_STORAGE_SAS_TOKEN) in the environment and run it again")
    if name in ("UnauthenticatedError", "PermissionDeniedError") or any(
            k in text for k in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403 Forbidden",
                                "AuthorizationFailure", "AuthenticationFailed")):
        return RemoteError(f"{what}: the server refused our credentials ({first[:200]})", where=url,
                           fix=f"set {_CREDENTIALS.get(scheme, 'the cloud’s usual credentials')} in the environment "
                               "and run it again")
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
        # Where index objects are kept between commands (immutable: a cached index is the index);
        # set by the callers that know a vault (remotes/config.open_remote); None reads them each time.
        self.cache_dir: str | None = None
        # LENSVAULT_PACK_BELOW: objects from this size up travel singly (1: every non-empty one, the
        # layout of a format-1 remote, which tests of single objects use); LENSVAULT_PACK_BYTES:
        # smaller packs (tests make many packs out of few files with it).
        self.pack_below = int(os.environ.get("LENSVAULT_PACK_BELOW") or PACK_BELOW)
        self.pack_target = int(os.environ.get("LENSVAULT_PACK_BYTES") or PACK_TARGET)
        self._packs: dict[str, PackIndex] | None = None  # pack hash -> index, once listed
        self._packed: dict[str, PackIndex] = {}  # oid -> the index of a pack holding it
        self._packs_lock = threading.RLock()
        self._format: str | None = None

    # -- the client ----------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._store is None:
            from datetime import timedelta

            from obstore.store import from_url

            kw: dict[str, Any] = {}
            if self._local_root is not None:
                # The folder itself must exist, as a bucket must: creating it would turn a typo or an
                # unmounted share into a remote on this machine's own disk.
                self.require_folder()
            else:
                options: dict[str, Any] = {"connect_timeout": "10s", "timeout": "300s"}
                if self.endpoint_url:
                    # GCS names it base_url (the JSON and XML APIs' root); S3 and Azure, endpoint
                    # (Azure's path-style, as Azurite serves it: http://HOST:PORT/ACCOUNT).
                    kw["base_url" if self.url.startswith("gs://") else "endpoint"] = self.endpoint_url
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
            if any(k in str(e) for k in ("NoSuchBucket", "ContainerNotFound")):
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
        index = self._packed.get(oid)
        if index is not None:
            off, n = index.entries[oid]
            return f"{self.url}/{index.pack_key} (bytes {off}-{off + n - 1}, object {oid})"
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
            self._format = FORMAT
        except Exception as e:
            if type(e).__name__ != "AlreadyExistsError":
                raise

    def require_folder(self) -> None:
        """A file:// remote's folder exists and is a folder (the bucket of a folder remote)."""
        root = self._local_root
        if root is None or os.path.isdir(root):
            return
        what = "is not a folder" if os.path.exists(root) else "does not exist"
        raise RemoteError(f"the remote's folder {root} {what}", where=self.url,
                          fix=f"create it (mkdir -p {root}) or mount the share there, or correct the URL "
                              "(remove the remote and add it again)")

    def check_usable(self) -> None:
        """What ``remote add`` checks before it names a remote: the bucket (or folder) exists, the
        server answers and takes our credentials, a marker there is of a format we read, and a
        location that is not a remote yet can be written to (a test object, written and removed).
        A remote that exists but refuses our writes is kept: a machine that only pulls (CI, a
        deploy box) is often given read-only credentials on purpose."""
        self.require_folder()
        fmt = self.remote_format()
        try:
            self._probe_write()
        except LensVaultError as e:
            if fmt is not None:
                return
            raise RemoteError(f"the remote cannot be written to: {e.what}", where=self.url,
                              fix="use credentials (or a folder) this machine may write to, or another URL; "
                                  "nothing was pushed there yet, so there is nothing to pull from it either") from e

    def _probe_write(self) -> None:
        import uuid

        import obstore

        if self._local_root is not None:  # as the folder's owner sees it (obstore would create parents)
            probe = os.path.join(self._local_root, f".lensvault-probe-{uuid.uuid4().hex}")
            try:
                with open(probe, "xb"):
                    pass
                os.unlink(probe)
            except OSError as e:
                raise RemoteError(f"{e.strerror or e}", where=self.url) from e
            return
        key = f"clock/probe-{uuid.uuid4().hex}"
        self._call("the remote cannot be written", obstore.put, key, b"", mode="overwrite")
        try:
            self._call("the remote cannot be written", obstore.delete, key)
        except FileNotFoundError:
            pass

    def exists(self) -> bool:
        return self.remote_format() is not None

    def remote_format(self) -> str | None:
        """The format named by the remote's marker (one GET), or None if there is none; a format
        this version cannot read is refused."""
        import obstore

        try:
            data = bytes(self._call("the remote cannot be read", obstore.get, HEADER).bytes())
        except FileNotFoundError:
            return None
        try:
            fmt = json.loads(data).get("format")
        except (ValueError, AttributeError):
            fmt = None
        if fmt not in READABLE:
            raise RemoteError(f"this remote is of format {fmt!r}, which this LensVault cannot read "
                              f"(it reads {', '.join(READABLE)})", where=f"{self.url}/{HEADER}",
                              fix="upgrade LensVault (`pip install -U lensvault`) on this machine, then run it again")
        self._format = fmt
        return str(fmt)

    def open_for_push(self) -> None:
        """Check the marker (one GET) and create it on a new remote; a bad bucket or refused
        credentials fail here, before anything is sent."""
        if self.remote_format() is None:
            self.create()

    def _allow_packs(self) -> None:
        # A format-1 remote gets the format-2 marker before its first pack: a reader of the marker
        # knows packs may hold objects. (Called once per push, under the packs lock.)
        import obstore

        if self._format == "lensvault.remote/1":
            body = json.dumps({"format": FORMAT}).encode() + b"\n"
            self._call("the remote cannot be written", obstore.put, HEADER, body, mode="overwrite")
            self._format = FORMAT

    # -- reading -------------------------------------------------------------------------------
    def has(self, oid: str) -> bool:
        return oid in self.packed() or self._single_exists(oid)

    def _single_exists(self, oid: str) -> bool:
        """Whether ``objects/<oid>`` is there (one HEAD; a large object never travels in a pack)."""
        import obstore

        try:
            self._call("the remote cannot be read", obstore.head, self.key(oid))
            return True
        except FileNotFoundError:
            return False

    def listing(self) -> dict[str, tuple[int, float]]:
        """Every object on the remote, single or in a pack: oid -> (size, stored_at), from LIST
        requests (1,000 names a page) and the packs' indexes (read once, then cached)."""
        out = self.listing_single()
        for oid, index in self.packed(refresh=True).items():
            out.setdefault(oid, (index.entries[oid][1], index.stored_at))
        return out

    def listing_single(self) -> dict[str, tuple[int, float]]:
        """The single objects (``objects/…``, not those in packs): oid -> (size, stored_at)."""
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

        index = self.packed().get(oid)
        if index is not None:
            return ObjectStat(index.entries[oid][1], index.stored_at)
        try:
            meta = self._call("the remote cannot be read", obstore.head, self.key(oid))
        except FileNotFoundError:
            raise self.missing_error(oid) from None
        return ObjectStat(int(meta["size"]), meta["last_modified"].timestamp())

    def open(self, oid: str) -> BinaryIO:
        return io.BytesIO(self.get_raw(oid))

    def get_raw(self, oid: str) -> bytes:
        """The object's bytes as the server sent them (not hashed: callers check). An object in a
        pack is one ranged GET once the packs' indexes are known."""
        import obstore

        index = self.packed().get(oid)
        if index is not None:
            return self._read_packed_one(oid, index)
        try:
            return bytes(self._call("the remote cannot be read", obstore.get, self.key(oid)).bytes())
        except FileNotFoundError:
            index = self.packed(refresh=True).get(oid)  # packed by a push since we listed
            if index is not None:
                return self._read_packed_one(oid, index)
            raise self.missing_error(oid) from None

    def _read_packed_one(self, oid: str, index: PackIndex) -> bytes:
        import obstore

        off, n = index.entries[oid]
        if n == 0:
            return b""
        try:
            return bytes(self._call("the remote cannot be read", obstore.get_range, index.pack_key,
                                    start=off, end=off + n))
        except FileNotFoundError:
            again = self.packed(refresh=True).get(oid)  # repacked meanwhile: its new pack has it
            if again is None or again.pack == index.pack:
                raise self.missing_error(oid) from None
            return self._read_packed_one(oid, again)

    def fetch_to(self, oid: str, path: str) -> int | None:
        """Stream object ``oid`` into the file ``path`` (bounded memory), hashing it on the way: its
        size, or None if the bytes do not hash to its name (then ``path`` is removed)."""

        if oid in self.packed():
            data = self.get_raw(oid)
            if hashlib.sha256(data).hexdigest() != oid:
                return self.fetch_single_to(oid, path)  # a copy sent singly by `push --check-remote`
            with open(path, "wb") as f:
                f.write(data)
            return len(data)
        return self.fetch_single_to(oid, path)

    def fetch_single_to(self, oid: str, path: str) -> int | None:
        """``fetch_to`` of the single object ``objects/…`` (not of a packed copy)."""
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

    # -- packs ---------------------------------------------------------------------------------
    def packs(self, *, refresh: bool = False) -> dict[str, PackIndex]:
        """Every pack on the remote that has an index: pack hash -> index. One LIST of ``packs/``
        (1,000 names a page) and a GET of each index not in the cache; kept for this object's
        life unless ``refresh``. An index whose pack is not listed, or that does not parse, is
        skipped: its objects count as absent (a push sends them again)."""
        import obstore

        with self._packs_lock:
            if self._packs is not None and not refresh:
                return self._packs
            found: dict[str, dict[str, float]] = {}
            try:
                for page in obstore.list(self.client, "packs/", chunk_size=1000):
                    for meta in page:
                        named = pack_name_of(meta["path"])
                        if named:
                            found.setdefault(named[1], {})[named[0]] = meta["last_modified"].timestamp()
            except FileNotFoundError:
                pass
            except Exception as e:
                raise remote_error(e, self.url, "the remote's packs cannot be listed") from e
            pack_files = found.get("pack", {})
            wanted = sorted(h for h in found.get("idx", {}) if h in pack_files)
            old = self._packs or {}
            loaded: dict[str, PackIndex] = {}

            def load(h: str) -> None:
                index = old.get(h) or self._cached_index(h) or self._get_index(h)
                if index is not None:
                    index.stored_at = found["idx"][h]
                    loaded[h] = index

            self.run_many(load, wanted)
            self._packs = {h: loaded[h] for h in wanted if h in loaded}
            packed: dict[str, PackIndex] = {}
            for index in sorted(self._packs.values(), key=lambda i: i.stored_at):
                for oid in index.entries:
                    packed.setdefault(oid, index)  # the oldest pack holding it (repack keeps those longest)
            self._packed = packed
            return self._packs

    def packed(self, *, refresh: bool = False) -> dict[str, PackIndex]:
        """oid -> the index of a pack that holds it (listing the packs on first use)."""
        with self._packs_lock:
            if self._packs is None or refresh:
                self.packs(refresh=True)
            return self._packed

    def _cache_path(self, h: str) -> str | None:
        if self.cache_dir is None:
            return None
        place = hashlib.sha256(self.url.encode()).hexdigest()[:16]
        return os.path.join(self.cache_dir, place, f"{h}.idx")

    def _cached_index(self, h: str) -> PackIndex | None:
        path = self._cache_path(h)
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return PackIndex.from_bytes(f.read(), h)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _keep_index(self, index: PackIndex, data: bytes) -> None:
        path = self._cache_path(index.pack)
        if path is None:
            return
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache: the next command reads the index from the remote again

    def cache_known_indexes(self) -> None:
        """Keep the indexes read so far in ``cache_dir`` (set after they were read: a clone's new vault)."""
        with self._packs_lock:
            known = list((self._packs or {}).values())
        for index in known:
            path = self._cache_path(index.pack)
            if path is not None and not os.path.exists(path):
                self._keep_index(index, index.to_bytes())

    def _get_index(self, h: str) -> PackIndex | None:
        import obstore

        try:
            data = bytes(self._call("the remote's pack index cannot be read", obstore.get, f"packs/{h}.idx").bytes())
        except FileNotFoundError:
            return None  # deleted by a repack since the listing
        try:
            index = PackIndex.from_bytes(data, h)
        except (ValueError, KeyError, TypeError):
            return None
        self._keep_index(index, data)
        return index

    def put_pack(self, items: Iterable[tuple[str, bytes]]) -> PackIndex:
        """Write ``items`` (oid, bytes — hashed by the caller) as one pack, then its index, each
        created only if absent: the index exists only once its pack is whole. Returns the index."""
        import obstore

        body, index = build_pack(items)
        with self._packs_lock:
            self._allow_packs()
        for key, data in ((index.pack_key, body), (index.index_key, index.to_bytes())):
            try:
                self._call(f"pack {index.pack[:12]}… could not be uploaded", obstore.put, key, data,
                           mode="create", use_multipart=False)
            except Exception as e:
                if type(e).__name__ != "AlreadyExistsError":
                    raise
        index.stored_at = time.time()
        self._keep_index(index, index.to_bytes())
        with self._packs_lock:
            if self._packs is not None:
                self._packs[index.pack] = index
                for oid in index.entries:
                    self._packed.setdefault(oid, index)
        return index

    def read_packed(self, oids: Iterable[str], deliver: Callable[[PackIndex, list[tuple[str, memoryview]]], None],
                    *, on_done: OnDone | None = None, where: dict[str, PackIndex] | None = None) -> list[str]:
        """Read the packed ones of ``oids``, pack by pack (``PACKS_IN_FLIGHT`` at a time): a pack's
        wanted objects in as few ranged GETs as ``plan_reads`` allows (the whole pack when that is
        most of it). ``deliver(index, [(oid, bytes)…])`` gets each pack's objects unhashed, in a
        worker thread. ``where``: which pack to read each from (default: the listing's). Returns the
        oids that are in no pack."""


        packed = where if where is not None else self.packed()
        by_pack: dict[str, list[str]] = {}
        loose: list[str] = []
        for oid in oids:
            index = packed.get(oid)
            if index is None:
                loose.append(oid)
            else:
                by_pack.setdefault(index.pack, []).append(oid)

        def one(h: str) -> None:
            index = packed[by_pack[h][0]]
            wanted = by_pack[h]
            ranges = plan_reads(index, [o for o in wanted if index.entries[o][1] > 0])
            try:
                for piece, objects in _pieces(index, wanted, ranges, READ_BYTES):
                    deliver(index, self._read_piece(h, index, piece, objects))
            except FileNotFoundError:
                # Repacked since we listed: read those objects wherever they are now.
                fresh = self.packed(refresh=True)
                if any(fresh.get(o) is None or fresh[o].pack == h for o in wanted):
                    raise self.missing_error(next(o for o in wanted if fresh.get(o) is None or fresh[o].pack == h)) \
                        from None
                self.read_packed(wanted, deliver)
                if on_done:
                    on_done(len(wanted) - 1)
                return
            if on_done:
                on_done(len(wanted) - 1)

        self.run_many(one, sorted(by_pack), on_done=on_done, jobs=min(self.jobs, PACKS_IN_FLIGHT))
        return loose

    def _read_piece(self, h: str, index: PackIndex, ranges: list[tuple[int, int]], objects: list[str]
                    ) -> list[tuple[str, memoryview]]:
        """``objects`` of pack ``h``, read by the byte ``ranges`` that hold them (one request)."""
        import bisect

        import obstore

        bufs = self._call(f"pack {h[:12]}… could not be downloaded", obstore.get_ranges, index.pack_key,
                          starts=[r[0] for r in ranges], ends=[r[1] for r in ranges], coalesce=0) if ranges else []
        starts = [r[0] for r in ranges]
        out: list[tuple[str, memoryview]] = []
        for oid in objects:
            off, n = index.entries[oid]
            if n == 0:
                out.append((oid, memoryview(b"")))
                continue
            i = bisect.bisect_right(starts, off) - 1
            view = memoryview(bufs[i])
            out.append((oid, view[off - starts[i]:off - starts[i] + n]))
        return out

    def repack(self, keep: Callable[[str], bool], *, grace_seconds: float = 3600.0) -> dict[str, int]:
        """Rewrite the packs that hold objects ``keep`` rejects, so that only kept objects stay:
        for each such pack older than ``grace_seconds`` (by its index), its kept objects are read
        (each hashed: a damaged one stops the repack, nothing deleted), written into new packs
        with their indexes, and only then the old index and last the old pack are deleted. A
        reader holding the old index meets a missing pack, lists the packs again and reads the
        new one (``get_raw``, ``read_packed``). What it returns: packs_removed, packs_written,
        objects_dropped, objects_kept, bytes_freed."""
        import obstore

        from lensvault.errors import IntegrityError

        now = time.time()
        victims = [i for i in self.packs(refresh=True).values()
                   if now - i.stored_at >= grace_seconds and not all(keep(o) for o in i.entries)]
        stats = {"packs_removed": 0, "packs_written": 0, "objects_dropped": 0, "objects_kept": 0, "bytes_freed": 0}
        pending: list[tuple[str, bytes]] = []
        pending_size = 0
        for index in victims:
            kept: list[tuple[str, bytes]] = []

            def take(ix: PackIndex, got: list[tuple[str, memoryview]], kept: list[tuple[str, bytes]] = kept) -> None:
                for oid, view in got:
                    if hashlib.sha256(view).hexdigest() != oid:
                        raise IntegrityError(f"object {oid[:12]}… in pack {ix.pack[:12]}… is corrupt; "
                                             "the pack was not repacked", where=self.location(oid),
                                             fix="push the object again from a vault that has it intact "
                                                 "(`lensvault push --all --check-remote`), then repack", oid=oid)
                    kept.append((oid, bytes(view)))

            wanted = [o for o in index.entries if keep(o)]
            if wanted:  # from this pack, whichever other pack holds them too
                self.read_packed(wanted, take, where=dict.fromkeys(wanted, index))
            for oid, data in kept:
                pending.append((oid, data))
                pending_size += len(data)
                if pending_size >= self.pack_target:
                    self.put_pack(pending)
                    stats["packs_written"] += 1
                    pending, pending_size = [], 0
            stats["objects_kept"] += len(kept)
            stats["objects_dropped"] += len(index.entries) - len(kept)
            stats["bytes_freed"] += index.size - sum(len(d) for _, d in kept)
        if pending:
            self.put_pack(pending)
            stats["packs_written"] += 1
        for index in victims:  # last: every kept object is in a new pack with its index by now
            for key in (index.index_key, index.pack_key):
                try:
                    self._call(f"pack {index.pack[:12]}… could not be deleted", obstore.delete, key)
                except FileNotFoundError:
                    pass
            stats["packs_removed"] += 1
        self.packs(refresh=True)
        return stats

    # -- writing -------------------------------------------------------------------------------
    def put_object(self, oid: str, body: bytes | str, *, replace: bool = False) -> bool:
        """Create object ``oid`` from bytes or a file path, only if absent (``If-None-Match: *``):
        True if this call created it, False if it was there (same name, same bytes). ``replace``:
        overwrite a damaged one (the caller hashed ``body``: it is the object's true bytes)."""
        import obstore

        mode = "overwrite" if replace else "create"
        try:
            if isinstance(body, str):
                # A conditional put is one request with the whole body in memory (object storage
                # clients send If-None-Match only on a single PUT, not on a multipart upload), so a
                # 5 GB video would need 5 GB here. A large object is asked for first and, absent,
                # streamed in 8 MB parts: two pushers racing send the same bytes under the same
                # name (the name is their hash, checked on the way out), so the overwrite one of
                # them makes changes nothing — what write-once protects is intact.
                if not replace and self._single_exists(oid):
                    return False
                with open(body, "rb") as f:
                    self._call(f"object {oid[:12]}… could not be uploaded", obstore.put, self.key(oid), f,
                               mode="overwrite", use_multipart=True, chunk_size=PART_BYTES, max_concurrency=4)
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
        """Delete the single object ``oid``; an object in a pack goes only by ``repack``."""
        import obstore

        try:
            self._call("the remote cannot be written", obstore.delete, self.key(oid))
        except FileNotFoundError:
            pass

    def run_many(self, fn: Callable[[Any], None], items: list[Any], *, on_done: OnDone | None = None,
                 jobs: int | None = None) -> None:
        """``fn(item)`` for every item with ``jobs`` (``self.jobs``) requests in flight; the first error stops the rest."""
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

        pool = ThreadPoolExecutor(max_workers=max(1, min(jobs or self.jobs, len(items))))
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
        """Every object on the remote, single or in a pack, from LIST requests (1,000 names a
        request) and the packs' indexes. A packed object's age is its pack's (its index's
        last-modified time): a pack is written whole, so its objects are as old as it is."""
        for oid, (size, stored_at) in sorted(self.listing().items()):
            yield RemoteObject(oid, size, stored_at)

    def hash_object(self, oid: str) -> str | None:
        """The sha256 of object ``oid``'s bytes as the server sends them, streamed (bounded
        memory, whatever the size); None if the remote does not have it."""
        import obstore

        try:
            result = self._call("the remote cannot be read", obstore.get, self.key(oid))
        except FileNotFoundError:
            if oid not in self.packed():
                return None
            try:  # small by construction (packs hold objects under PACK_BELOW): one ranged GET
                return hashlib.sha256(self.get_raw(oid)).hexdigest()
            except LensVaultError as e:
                if type(e).__name__ == "ObjectMissing":
                    return None
                raise
        h = hashlib.sha256()
        try:
            # 1 MB chunks (obstore's default is 10 MB): --jobs of these in flight stay well under 300 MB.
            for chunk in result.stream(min_chunk_size=1 << 20):
                h.update(chunk)
        except Exception as e:  # a dropped connection mid-body
            raise remote_error(e, self.url, f"object {oid[:12]}… could not be read") from e
        return h.hexdigest()

    def delete_objects(self, oids: Sequence[str]) -> None:
        """Delete the single copies of objects (an absent one is no error): bulk requests where
        the server has them (S3: 1,000 keys a request), else one request each, ``jobs`` in
        flight. Copies inside packs go only by ``repack`` (remotes/gc.py calls both)."""
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
        # The tag is what a compare-and-swap names: the ETag, and where the server keeps one the
        # object's version too (GCS's generation: object_store's conditional update there needs it).
        meta = result.meta
        tag = str(meta.get("e_tag") or "")
        if meta.get("version"):
            tag += _VERSION_SEP + str(meta["version"])
        return bytes(result.bytes()), tag

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
            e_tag, _, version = expected.partition(_VERSION_SEP)
            mode: dict[str, str] = {"e_tag": e_tag}
            if version:
                mode["version"] = version
            self._call(f"ref {name} could not be written", obstore.put, name, data, mode=mode)
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


def _pieces(index: PackIndex, wanted: list[str], ranges: list[tuple[int, int]], limit: int
            ) -> list[tuple[list[tuple[int, int]], list[str]]]:
    """``ranges`` (as ``plan_reads`` planned them) cut into pieces of about ``limit`` bytes at most,
    each with the wanted objects it holds whole: [(ranges of one request, objects)]. A range is cut
    only between wanted objects (an object larger than ``limit`` is a piece of its own) and ends at
    its last wanted object (a whole-pack read does not fetch the pack's unwanted tail)."""
    spans = sorted((index.entries[o][0], index.entries[o][1], o) for o in wanted)
    empty = [o for _, n, o in spans if n == 0]
    spans = [s for s in spans if s[1] > 0]
    pieces: list[tuple[list[tuple[int, int]], list[str]]] = []
    cur_ranges: list[tuple[int, int]] = []
    cur_objects: list[str] = []
    cur_bytes = 0
    k = 0
    for start, end in ranges:
        piece_start, last_end = start, None
        while k < len(spans) and spans[k][0] < end:
            off, n, oid = spans[k]
            if cur_objects and cur_bytes + (off + n - piece_start) > limit:
                if last_end is not None:
                    cur_ranges.append((piece_start, last_end))
                pieces.append((cur_ranges, cur_objects))
                cur_ranges, cur_objects, cur_bytes, piece_start = [], [], 0, off
            cur_objects.append(oid)
            last_end = off + n
            k += 1
        if last_end is not None:
            cur_ranges.append((piece_start, last_end))
            cur_bytes += last_end - piece_start
    if cur_objects:
        pieces.append((cur_ranges, cur_objects))
    if empty:
        if pieces:
            pieces[0][1].extend(empty)
        else:
            pieces.append(([], empty))
    return pieces
