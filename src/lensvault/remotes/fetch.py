"""``lensvault pull`` and ``lensvault clone``: records and objects from a remote into a vault.

Every byte that comes in is hashed before it enters the local store: records and small
objects in memory, large ones while they stream to a file in the store's temp folder
(``staging``: where ``gc`` finds what a killed download left). A remote object that does
not hash to its name is named in the error (with its pack and byte range if it was packed)
and never stored. Packed objects come a pack at a time: the whole pack, or the ranges that
hold what is wanted, whichever is fewer requests for not many more bytes.

``clone`` makes a new vault whose catalog is rebuilt from the remote's records exactly as
``catalog rebuild`` rebuilds a lost one (the records are copied into the new vault's own
ledger first). ``pull REF`` adds what REF needs to an existing vault: the records'
rows go into the catalog through the same replay, in one transaction with their ledger
entries. Pull does not move this vault's aliases (its own promotions are its own); ``clone``
brings the remote's aliases as they are.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import AlreadyExists, IntegrityError, NotFound, RemoteConflict
from lensvault.progress import NO_PROGRESS
from lensvault.remotes.closure import LedgerRecord, select
from lensvault.remotes.ledgers import manifest_meta_objects, record_objects, remote_ledger
from lensvault.remotes.results import CloneResult, PullResult

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["clone", "download", "name_clash", "new_records", "pull", "staging"]


def _require_remote(rs) -> None:
    if rs.remote_format() is None:  # refuses a format this version cannot read
        raise NotFound("this location is not a LensVault remote (nothing was pushed there yet, or the bucket "
                       "does not exist)", where=rs.url,
                       fix="check the URL (and --endpoint-url), or push to it first with `lensvault push --all`")


# Objects are staged (hash-checked) in batches and then stored with one durability barrier per
# batch (``put_files``), not two fsyncs per object: 3,000 small images are 6,000 fsyncs otherwise.
BATCH = 512


@contextmanager
def staging(store) -> Iterator[str]:
    """A folder for downloads to land in (hashed) before they are stored: inside the store's own
    temp folder, named after this process (store/owner.py), so that what a kill -9 leaves is where
    ``gc`` looks for leftovers of writers that are gone (store/leftovers.py) — never in the
    system's temp folder, where nothing would ever remove it. Removed on the way out otherwise.
    (A store without files, in memory, stages in the system's temp folder.)"""
    import tempfile

    from lensvault.store.owner import current

    files = store.local()
    if files is None:
        with tempfile.TemporaryDirectory(prefix=".lensvault-fetch-") as d:
            yield d
        return
    path = os.path.join(files.tmp, f"{current()}-fetch-{uuid.uuid4().hex[:12]}")
    try:
        os.makedirs(path)
    except OSError as e:
        from lensvault.store.linking import storage_error

        raise storage_error(e, path) from e
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def download(store, rs, oids: list[str], progress, label: str) -> tuple[int, int]:
    """Fetch the objects ``store`` lacks, each hashed before it is stored; (objects, bytes) fetched.
    Objects in packs come pack by pack (whole, or the ranges that hold them: store/packs.py), the
    others one GET each."""
    todo = store.missing(sorted(set(oids)))
    if not todo:
        return 0, 0
    fetched, total = 0, 0
    lock = threading.Lock()
    with progress.task(label, len(todo)) as advance, staging(store) as stage:

        def store_pack(index, got: list[tuple[str, memoryview]]) -> None:
            nonlocal fetched, total
            sub = os.path.join(stage, index.pack)
            os.mkdir(sub)
            try:
                for oid, data in got:
                    if hashlib.sha256(data).hexdigest() == oid:
                        with open(os.path.join(sub, oid), "wb") as f:
                            f.write(data)
                    elif not _single_copy(rs, oid, os.path.join(sub, oid)):
                        raise _corrupt(rs, oid)
                with lock:  # one durability barrier a pack
                    store.put_files([(os.path.join(sub, oid), oid) for oid, _ in got])
                    fetched += len(got)
                    total += sum(len(d) for _, d in got)
            finally:
                shutil.rmtree(sub, ignore_errors=True)

        loose = rs.read_packed(todo, store_pack, on_done=advance)
        for start in range(0, len(loose), BATCH):
            batch = loose[start:start + BATCH]
            sizes: dict[str, int] = {}

            def one(oid: str, sizes: dict[str, int] = sizes) -> None:
                size = rs.fetch_to(oid, os.path.join(stage, oid))
                if size is None:
                    raise _corrupt(rs, oid)
                sizes[oid] = size

            try:
                rs.run_many(one, batch, on_done=advance)
                store.put_files([(os.path.join(stage, oid), oid) for oid in batch])
            finally:
                for oid in batch:
                    try:
                        os.unlink(os.path.join(stage, oid))
                    except FileNotFoundError:
                        pass
            fetched += len(sizes)
            total += sum(sizes.values())
    return fetched, total


def _single_copy(rs, oid: str, path: str) -> bool:
    """A packed copy was damaged: whether a single copy (``push --check-remote`` sends one) is intact."""
    from lensvault.errors import ObjectMissing

    try:
        return rs.fetch_single_to(oid, path) is not None
    except ObjectMissing:
        return False


def _corrupt(rs, oid: str) -> IntegrityError:
    return IntegrityError(f"object {oid[:12]}… on the remote is corrupt: its bytes do not hash to its name; "
                          "it was not stored", where=rs.location(oid),
                          fix="in a vault that has it intact, run `lensvault push --all --check-remote` (it replaces "
                              "damaged and missing objects), then run this again", oid=oid, corrupt=[oid])


def _objects_of(vault: Vault, rs, chosen: list[LedgerRecord], raw: dict[str, bytes], progress) -> tuple[list[str], int, int]:
    """Every object the chosen records need (versions' metadata objects are fetched first, to list
    their files), and how many objects and bytes that first fetch brought."""
    from lensvault.datasets.manifest import Manifest
    from lensvault.remotes.ledgers import version_objects

    store = vault.store
    for rec in chosen:
        if not store.has(rec.oid):
            store.restore_bytes(rec.oid, raw[rec.oid])
    versions = [r for r in chosen if r.kind == "dataset.version"]
    meta: set[str] = set()
    n, size = 0, 0
    for rec in versions:
        moid = rec.data["row"]["manifest_oid"]
        got = download(store, rs, [moid], NO_PROGRESS, "")
        n, size = n + got[0], size + got[1]
        meta |= manifest_meta_objects(Manifest.from_bytes(store.read_bytes(moid)), moid)
    got = download(store, rs, sorted(meta), progress, "Fetching dataset tables")
    n, size = n + got[0], size + got[1]
    out: set[str] = set()
    for rec in chosen:
        out |= record_objects(rec)
        if rec.kind == "dataset.version":
            out |= version_objects(vault, rec)
    return sorted(out), n, size


def _write_manifest_files(vault: Vault, chosen: list[LedgerRecord]) -> None:
    from lensvault.datasets.manifest import write_manifest_file

    for rec in chosen:
        if rec.kind != "dataset.version":
            continue
        row = rec.data["row"]
        path = Path(vault.manifests_dir) / row["name"] / f"{row['version']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_manifest_file(path, vault.store.read_bytes(row["manifest_oid"]))
        except AlreadyExists:
            pass  # another file there: the catalog's record decides; `verify` names the difference


# -- clone -------------------------------------------------------------------------------------


def clone(url: str, dest, *, make_vault, vault_dir: str = ".lensvault", name: str = "origin",
          endpoint_url: str | None = None, region: str | None = None, jobs: int = 32,
          progress=NO_PROGRESS) -> CloneResult:
    """A new vault in ``dest`` (an empty folder, or a checkout of the project's git repository).
    ``make_vault(root, config)``: the vault object (``lensvault.vault.clone_vault`` passes ``Vault``)."""
    from lensvault import gitinfo
    from lensvault.catalog.catalog import utcnow
    from lensvault.ledger import ledger_prefix
    from lensvault.rebuild import rebuild_catalog
    from lensvault.remotes.config import Remote, normalize_url
    from lensvault.vault_config import VaultConfig

    url = normalize_url(url)
    root = Path(dest).absolute()
    vdir = root / vault_dir
    if vdir.exists():
        raise AlreadyExists(f"{root} already has a vault (or a .lensvault folder)", where=str(vdir),
                            fix="clone into another folder (to bring a version into this vault, pull it)")
    spec = Remote(name, url, endpoint_url, region, True)
    rs = spec.store(jobs=jobs)
    _require_remote(rs)
    ledger, raw = remote_ledger(rs, progress=progress)
    made_root = not root.exists()
    try:
        vdir.mkdir(parents=True)
        rs.cache_dir = str(vdir / "remote-packs")  # as open_remote sets it for the vault's later commands
        rs.cache_known_indexes()
        cid = uuid.uuid4().hex
        config = VaultConfig(vault_id=uuid.uuid4().hex, created_at=utcnow(), store_url=f"{vault_dir}/objects",
                             catalog_url=f"sqlite:///{vault_dir}/catalog.db", catalog_id=cid,
                             remotes={name: {k: v for k, v in spec.to_dict().items() if k != "name" and v}})
        vault = make_vault(root, config)
        vault.store.create()
        result = CloneResult(str(root), name, url, records=len(ledger.records))
        oids, n, size = _objects_of(vault, rs, ledger.records, raw, progress)
        got = download(vault.store, rs, oids, progress, "Fetching objects")
        result.objects_fetched, result.bytes_fetched = n + got[0], size + got[1]
        prefix = ledger_prefix(cid) + "/"
        for rec in ledger.records:
            vault.store.put_ref(prefix + rec.journal, b"", exclusive=True)
        for ref, oid in ledger.refs.items():
            vault.store.put_ref(prefix + ref, oid.encode(), exclusive=True)
        vault.store.release_pins()
        (root / "data" / "manifests").mkdir(parents=True, exist_ok=True)
        _write_manifest_files(vault, ledger.records)
        config.write(vdir / "config.toml")
        vault.store.register_vault(config.vault_id, root)
        report = rebuild_catalog(vault, progress=progress)
        result.restored, result.unproven = report.restored, report.unproven
        gitinfo.ignore_in_repo(vdir)
        vault.close()
        return result
    except BaseException:
        # A failed clone leaves nothing that looks like a vault.
        shutil.rmtree(root if made_root else vdir, ignore_errors=True)
        raise


# -- pull --------------------------------------------------------------------------------------


def pull(vault: Vault, ref: str, *, remote: str | None = None, jobs: int = 32, progress=NO_PROGRESS) -> PullResult:
    from lensvault.remotes.config import open_remote
    from lensvault.remotes.ledgers import local_ledger
    from lensvault.remotes.promised import forget

    spec, rs = open_remote(vault, remote, jobs=jobs)
    _require_remote(rs)
    theirs, raw = remote_ledger(rs, progress=progress)
    chosen = select(theirs, [ref], everything=False, where=f"the remote {spec.name} ({rs.url})")
    result = PullResult(spec.name, rs.url, [ref])
    new = new_records(vault, chosen, local_ledger(vault), result.same_content)
    oids, n, size = _objects_of(vault, rs, chosen, raw, progress)
    got = download(vault.store, rs, oids, progress, "Fetching objects")
    result.objects_fetched, result.bytes_fetched = n + got[0], size + got[1]
    result.objects_present = len(oids) - result.objects_fetched
    result.records = len(new)
    if new:
        _write_manifest_files(vault, new)
        result.added = _replay(vault, new, ref, spec.name)
    vault.store.release_pins()
    forget(vault, [rec.oid for rec in chosen])  # fetched earlier without objects: now they are here
    _adopt_alias(vault, rs, theirs, ref, spec.name, result)
    return result


def _adopt_alias(vault: Vault, rs, theirs, ref: str, remote: str, result: PullResult) -> None:
    """``pull NAME@ALIAS``: point this vault's alias where the remote's is (a move of this vault,
    with the reason saying so), and remember the remote's move as seen, so that a later push may
    move it by compare-and-swap once this vault decided again."""
    from lensvault.registry.aliases import promote
    from lensvault.remotes.seen import mark_seen

    name, at, alias = ref.partition("@")
    there = theirs.refs.get(f"refs/aliases/{name}/{alias}") if at else None
    move = theirs.by_oid().get(there) if there else None
    if move is None:
        return
    version = move.data["move"]["to_version"]
    try:
        current = vault.model(f"{name}@{alias}").version
    except NotFound:
        current = None
    if current != version:
        promote(vault, f"{name}@{version}", alias, reason=f"pulled from remote {remote}", new=current is None)
        result.aliases_moved.append(f"{name}@{alias}")
    mark_seen(vault, rs.url, name, alias, move.oid)


def _same_version(vault: Vault, rec: LedgerRecord, mine: str) -> bool:
    from lensvault.ledger import read_record

    if rec.kind != "dataset.version":
        return False
    row = read_record(vault.store, mine)["data"]["row"]
    return bool(row["snapshot_id"] == rec.data["row"]["snapshot_id"])


def _replay(vault: Vault, new: list[LedgerRecord], ref: str, remote: str, *, action: str = "remote.pull"
            ) -> dict[str, int]:
    """The new records' rows into the catalog, and their entries into this vault's ledger, in one transaction."""
    import lensvault.catalog.repos  # noqa: F401 - _Replay reaches the repositories through the package
    from lensvault.ledger import ledger_prefix
    from lensvault.rebuild import RebuildReport, _Replay

    catalog = vault.catalog
    store = vault.store
    cid = catalog.catalog_id
    assert cid is not None  # an open catalog has its id (a catalog that lost it is refused on opening)
    prefix = ledger_prefix(cid) + "/"
    report = RebuildReport(catalog="", catalog_id=cid, previous="whole")
    with catalog.begin() as conn:
        txn = catalog.transaction(conn)
        assert txn is not None  # inside begin()
        r = _Replay(conn, report)
        r.run_ids |= {rid for rec in new if rec.kind == "run.start" for rid in rec.run_ids()}
        r.run_ids |= _known_runs(vault, new)
        for rec in new:
            handler = getattr(r, "on_" + rec.kind.replace(".", "_"), None)
            if handler is None:
                continue
            handler(rec.data, rec)
            name = prefix + rec.journal
            if store.put_ref(name, b"", exclusive=True):
                txn.on_undo(lambda n=name: store.delete_ref(n))  # type: ignore[misc]  # a default binds the loop's name
            key = rec.ref()
            if key is not None:
                rname = prefix + key
                if store.put_ref(rname, rec.oid.encode(), exclusive=True):
                    txn.on_undo(lambda n=rname: store.delete_ref(n))  # type: ignore[misc]  # a default binds the loop's name
        r.runs.add_latest_metrics(list(r.latest.values()))
        # Their events too (who made them, when), under ids of this catalog: a record is taken in
        # once (its journal entry is here from now on), so an event never comes twice.
        for rec in new:
            for ev in (rec.doc or {}).get("events", []):
                r.event_log.add({k: ev.get(k) for k in ("at", "actor", "action", "subject_kind", "subject",
                                                        "before", "after")})
        catalog.append_event(conn, action, "remote", remote,
                             after={"ref": ref, "records": [rec.oid for rec in new],
                                    "restored": dict(sorted(report.restored.items()))})
    return dict(sorted(report.restored.items()))


def _known_runs(vault: Vault, new: list[LedgerRecord]) -> set[str]:
    """Runs the new records name that this vault already has (their later records come now)."""
    out: set[str] = set()
    for rec in new:
        for rid in rec.run_ids():
            try:
                vault.get_run(rid)
                out.add(rid)
            except NotFound:
                pass
    return out


def new_records(vault: Vault, chosen: list[LedgerRecord], ours, same_content: list[str], *,
                conflicts: list[RemoteConflict] | None = None) -> list[LedgerRecord]:
    """The chosen records this vault lacks (not alias moves: its aliases are its own; event
    batches, history of the vaults that pushed them, are taken in);
    a write-once ref here that names other content is refused, the same snapshot is noted.
    ``conflicts``: each such clash is added there instead of raised (``fetch`` goes on with the rest)."""
    have = {r.oid for r in ours.records}
    new: list[LedgerRecord] = []
    for rec in chosen:
        if rec.oid in have or rec.kind == "alias.move":
            continue
        key = rec.ref()
        mine = ours.refs.get(key) if key else None
        if key is not None and mine is not None and mine != rec.oid:
            if _same_version(vault, rec, mine):
                same_content.append(key)
                continue
            clash = name_clash(vault, rec, key, mine)
            if conflicts is None:
                raise clash
            conflicts.append(clash)
            continue
        new.append(rec)
    return new


def name_clash(vault: Vault, rec: LedgerRecord, key: str, mine: str) -> RemoteConflict:
    """The remote's record ``rec`` is other content than this vault's ``mine`` under the write-once name ``key``."""
    from lensvault.ledger import read_record

    label = "{}@{}".format(*key.split("/")[2:4]) if key.count("/") == 3 else key.rsplit("/", 1)[-1]
    details: dict[str, str] = {"ref": label, "here": mine, "remote": rec.oid}
    what = f"{label} here is other content than on the remote (record {mine[:12]}… here, {rec.oid[:12]}… there)"
    if rec.kind == "dataset.version":
        ours = read_record(vault.store, mine)["data"]["row"]["snapshot_id"]
        theirs = rec.data["row"]["snapshot_id"]
        details.update(here_snapshot=ours, remote_snapshot=theirs)
        what = f"{label} here is other content than on the remote: snapshot {ours[:12]}… here, {theirs[:12]}… there"
    return RemoteConflict(what, where=key,
                          fix=f"a version is written once: this vault keeps its own {label}, and the remote's (and "
                              "what needs it) cannot come under that name; to work with the remote's, clone the "
                              "remote into a new folder", **details)
