"""The Vault: one project's store, catalog and stat cache, and the public API over them.

    vault = lensvault.open()            # found by walking up from the cwd
    v = vault.snapshot("retail", "data/raw", version="1.0.0")
    vault.dataset("retail@1.0.0").checkout("/tmp/retail")
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from lensvault.errors import AlreadyExists, NotFound
from lensvault.grace import DEFAULT_GRACE_SECONDS
from lensvault.progress import NO_PROGRESS
from lensvault.store.base import LinkMode
from lensvault.vault_config import VaultConfig

if TYPE_CHECKING:
    from lensvault.catalog import Catalog
    from lensvault.datasets.handle import Dataset
    from lensvault.state import FileState
    from lensvault.store.base import ObjectStore
    from lensvault.store.verified import VerifiedObjects

__all__ = ["Vault", "VaultInfo", "clone_vault", "find_vault_root", "init_vault", "open_vault"]

VAULT_DIR = ".lensvault"


def find_vault_root(start: Path | None = None) -> Path:
    """``start`` if given, else LENSVAULT_DIR, else the nearest folder up from the cwd with a vault."""
    if start is None:
        env = os.environ.get("LENSVAULT_DIR")
        if env:
            start = Path(env)
    if start is not None:
        start = Path(start).absolute()
        if start.name == VAULT_DIR:
            start = start.parent
        if (start / VAULT_DIR / "config.toml").is_file():
            return start
        raise NotFound(
            f"no LensVault vault at {start}",
            where=str(start),
            fix=f"run `lensvault init {start}` or point --vault / LENSVAULT_DIR at an existing vault",
        )
    here = Path.cwd().absolute()
    for d in (here, *here.parents):
        if (d / VAULT_DIR / "config.toml").is_file():
            return d
    raise NotFound(
        "not inside a LensVault vault",
        where=str(here),
        fix="run `lensvault init` here, cd into a vault, or pass --vault / set LENSVAULT_DIR",
    )


def init_vault(path: str | os.PathLike = ".", *, store: str | None = None, catalog: str | None = None,
               actor: str | None = None) -> Vault:
    """Create a vault in ``path``. In a git work tree, ``.lensvault/`` is added to the
    ``.gitignore`` beside it unless already ignored (``vault.gitignore_added`` names the
    file written, else None): the store and catalog never belong in git. ``actor`` as
    for :func:`open_vault`."""
    from lensvault import gitinfo
    from lensvault.catalog import Catalog
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.engine import normalize_url

    root = Path(path).absolute()
    vdir = root / VAULT_DIR
    if (vdir / "config.toml").exists():
        raise AlreadyExists(f"a vault already exists at {root}", where=str(vdir), fix="use it, or choose another folder")
    store_url = store or f"{VAULT_DIR}/objects"
    catalog_url = catalog or f"sqlite:///{VAULT_DIR}/catalog.db"
    # What this init makes is removed again if it fails (an unreachable catalog, say): a failed
    # command leaves nothing behind. What existed before (a shared store) is left as it was.
    made = [p for p in (vdir, _local_store_path(root, store_url)) if p is not None and not p.exists()]
    try:
        vdir.mkdir(parents=True, exist_ok=True)
        config = VaultConfig(vault_id=uuid.uuid4().hex, created_at=utcnow(), store_url=store_url,
                             catalog_url=catalog_url)
        vault = Vault(root, config, actor=actor)
        vault.store.create()
        # The one place (with `catalog rebuild`) where a catalog is created; a catalog that
        # already exists (a team's PostgreSQL database) is joined, and its id adopted.
        new = Catalog(normalize_url(catalog_url, base=root), create=True)
        try:
            new.migrate()
            catalog_id = new.open_existing()
        finally:
            new.close()
        config = replace(config, catalog_id=catalog_id)
        vault.config = config
        # The config file is written last: a failed init leaves nothing that looks like a vault.
        config.write(vdir / "config.toml")
    except BaseException:
        import shutil

        for p in made:
            shutil.rmtree(p, ignore_errors=True)
        raise
    vault.store.register_vault(config.vault_id, root)
    (root / "data" / "manifests").mkdir(parents=True, exist_ok=True)
    vault.gitignore_added = gitinfo.ignore_in_repo(vdir)
    with vault.catalog.begin() as conn:
        vault.catalog.append_event(conn, "vault.init", "vault", config.vault_id,
                                   after={"path": str(root), "store": store_url, "catalog": vault.catalog.url.split("@")[-1]})
    return vault


def _local_store_path(root: Path, store_url: str) -> Path | None:
    """The folder of a store given as a local path (relative to the vault's folder), else None."""
    if "://" in store_url:
        return None
    p = Path(store_url).expanduser()
    return p if p.is_absolute() else root / p


def open_vault(path: str | os.PathLike | None = None, *, actor: str | None = None) -> Vault:
    """The vault at ``path`` (default: found from the cwd). Its writes are recorded as done
    by ``actor``; by default LENSVAULT_USER, else git's user.email (or user.name), else the
    OS user (lensvault.identity), looked up once, when the vault first needs it."""
    root = find_vault_root(Path(path) if path is not None else None)
    config = VaultConfig.read(root / VAULT_DIR / "config.toml")
    # The catalog (and SQLAlchemy) is opened, and migrated, on first use: commands
    # that can answer from the manifests and the stat cache never pay for it.
    return Vault(root, config, actor=actor)


def clone_vault(url: str, dest: str | os.PathLike, *, name: str = "origin", endpoint_url: str | None = None,
                region: str | None = None, jobs: int = 32, actor: str | None = None, progress=NO_PROGRESS):
    """A new vault in ``dest`` from the remote at ``url`` (lensvault.remotes.fetch.clone): its objects
    hash-checked, its catalog rebuilt from the remote's records, ``url`` its default remote ``name``."""
    from lensvault.remotes.fetch import clone

    return clone(url, dest, make_vault=lambda root, config: Vault(root, config, actor=actor), vault_dir=VAULT_DIR,
                 name=name, endpoint_url=endpoint_url, region=region, jobs=jobs, progress=progress)


@dataclass(frozen=True)
class VaultInfo:
    """``init``: where the vault's parts are (``gitignore_added``: the .gitignore init wrote, if any)."""

    root: str
    store: str
    catalog: str
    vault_id: str
    manifests: str
    gitignore_added: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Vault:
    def __init__(self, root: Path, config: VaultConfig, *, actor: str | None = None):
        from lensvault.identity import check_actor

        self._actor = None if actor is None else check_actor(actor)
        self.root = Path(root)
        self.dir = self.root / VAULT_DIR
        self.config = config
        self.manifests_dir = self.root / "data" / "manifests"
        self.gitignore_added: Path | None = None  # set by init_vault

    def __repr__(self) -> str:
        return f"<Vault {self.root}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def info(self) -> VaultInfo:
        return VaultInfo(root=str(self.root), store=self.store.url, catalog=self.catalog.url.split("@")[-1],
                         vault_id=self.config.vault_id, manifests=str(self.manifests_dir),
                         gitignore_added=str(self.gitignore_added) if self.gitignore_added else None)

    def close(self) -> None:
        if "catalog" in self.__dict__:
            self.catalog.close()
        if "state" in self.__dict__:
            self.state.close()

    # -- parts, opened on first use ----------------------------------------------
    @cached_property
    def actor(self) -> str:
        """Who this vault's writes are recorded as (events, created_by, alias moves, runs)."""
        from lensvault.identity import default_actor

        return self._actor or default_actor(self.root)

    @cached_property
    def store(self) -> ObjectStore:
        from lensvault.store import open_store

        return open_store(self.config.store_url, base=self.root)

    @cached_property
    def catalog(self) -> Catalog:
        """The catalog, checked on open: a missing, empty, damaged or foreign catalog is an
        error with its fix (``catalog rebuild``), never silently a new, empty one."""
        from lensvault.catalog import Catalog
        from lensvault.catalog.engine import normalize_url
        from lensvault.errors import CatalogMissing

        # The actor is looked up when the catalog first writes an event (reads need none).
        catalog = Catalog(normalize_url(self.config.catalog_url, base=self.root), actor=lambda: self.actor)
        try:
            catalog.catalog_id = catalog.open_existing(self.config.catalog_id)
        except CatalogMissing as e:
            catalog.close()
            from lensvault.store_facts import evidence

            e.what += evidence(self)
            raise
        except BaseException:
            catalog.close()
            raise
        if self.config.catalog_id is None:
            # A vault made before catalogs had ids: remember the id the catalog now has.
            self.config = replace(self.config, catalog_id=catalog.catalog_id)
            self.config.write(self.dir / "config.toml")
        from functools import partial

        from lensvault.ledger import record_events

        catalog.before_commit = partial(record_events, self)
        return catalog

    def rebuild_catalog(self, *, force: bool = False, progress=NO_PROGRESS):
        """Recreate the catalog from the store's ledger and the manifests (see lensvault.rebuild)."""
        from lensvault.rebuild import rebuild_catalog

        return rebuild_catalog(self, force=force, progress=progress)

    @cached_property
    def state(self) -> FileState:
        from lensvault.state import FileState

        return FileState(self.dir / "cache")

    @cached_property
    def verified(self) -> VerifiedObjects:
        """Which store objects were hashed since they last changed (store/verified.py; machine-local)."""
        from lensvault.store.verified import VerifiedObjects

        return VerifiedObjects(self.dir / "cache" / "verified")

    # -- datasets ------------------------------------------------------------------------
    def snapshot(self, name: str, src, *, version: str | None = None, bump: str | None = None, notes: str = "",
                 link: LinkMode | str = LinkMode.AUTO, parent: str | None = None, format: str | None = None,
                 annotations=None, classes=None, strict: bool = False, split: str | None = None,
                 seed: int | None = None, group_by: str | None = None, force: bool = False,
                 on_bad_image: str | None = None, label_key: str | None = None, ignore_index: int | None = None,
                 background: str | None = None, progress=NO_PROGRESS):
        """Snapshot a folder as NAME@VERSION (or the version ``bump`` derives).

        With ``format`` (auto, coco, yolo, voc, labelme, masks) the annotations are
        imported too, and the version is checked against what changed. ``on_bad_image``
        (warn, fail, skip) says what to do with images decoders read only partly or not at all.
        ``label_key`` names the field holding image labels (a COCO image field; labelme ``flags``);
        ``ignore_index`` and ``background`` (a class name): the masks format's ignore value and background.

        Returns the new version's ``Dataset`` handle (a ``SnapshotResult``).
        """
        from lensvault.datasets.results import SnapshotResult

        if format is None and split is None and on_bad_image is None and label_key is None \
                and ignore_index is None and background is None:
            from lensvault.datasets.snapshot import snapshot_folder

            return SnapshotResult.of(snapshot_folder(self, name, Path(src), version=version, bump=bump, notes=notes,
                                                     link=link, parent=parent, force=force, progress=progress))
        from lensvault.datasets.vision import VisionInput, snapshot_vision

        spec = VisionInput(format=format or "auto", annotations=annotations, classes=classes, strict=strict,
                           split=split, seed=seed, group_by=group_by, on_bad_image=on_bad_image,
                           label_key=label_key, ignore_index=ignore_index, background=background)
        return SnapshotResult.of(snapshot_vision(self, name, Path(src), spec, version=version, bump=bump,
                                                 notes=notes, link=link, parent=parent, force=force, progress=progress))

    def fix(self, ref: str, corrected, *, format: str = "auto", version: str | None = None, notes: str = "",
            progress=NO_PROGRESS):
        """Apply corrected annotations to REF: the next PATCH version, with its changelog
        (its ``Dataset`` handle, a ``FixResult``)."""
        from lensvault.datasets.fix import fix_annotations
        from lensvault.datasets.results import FixResult

        return FixResult.of(fix_annotations(self, ref, Path(corrected), format=format, version=version, notes=notes,
                                            progress=progress))

    def export(self, ref: str, dest, *, format: str, split: str | None = None, link: LinkMode | str = LinkMode.AUTO,
               fetch: bool = True, progress=NO_PROGRESS):
        """Write REF's images and labels to ``dest`` in a training format; objects not here come
        from the default remote first, unless ``fetch`` is False."""
        from lensvault.datasets.export import export_version, require_annotations
        from lensvault.datasets.results import ExportResult

        ds = self.dataset(ref)
        require_annotations(ds)  # (a version without them is refused before any object is fetched)
        self._fetch_files(ds, fetch=fetch, progress=progress)
        return ExportResult(export_version(ds, Path(dest), format=format, split=split, link=LinkMode(link)))

    def check(self, ref: str, *, fetch: bool = True, progress=NO_PROGRESS):
        """Duplicates, near-duplicates and split leakage of a vision dataset version (its images
        come from the default remote first if they are not here, unless ``fetch`` is False)."""
        from lensvault.datasets.check import check_version, require_images

        ds = self.dataset(ref)
        require_images(ds)  # (a version without them is refused before any object is fetched)
        self._fetch_files(ds, fetch=fetch, progress=progress)
        return check_version(ds, progress=progress)

    def _fetch_files(self, ds: Dataset, *, fetch: bool, progress) -> None:
        """The objects of ``ds``'s files, from the default remote if they are only there (a
        fetched version): reading them is what export and check do. The files table is read a
        row group at a time: what is held is the objects missing here, not a row per file."""
        from lensvault.remotes.autofetch import ensure_local_batches

        ensure_local_batches(self, (b.column(0).to_pylist() for b in ds.file_batches(["sha256"])), what=ds.ref,
                             fetch=fetch, progress=progress)

    def keep_versions(self, size: int = 16) -> None:
        """Keep the handles of the last ``size`` exact versions (``name@X.Y.Z``) ``dataset()`` gave,
        with the tables they have read: a long-lived process (``lensvault serve``) asks about the
        same versions again and again, and a written version never changes."""
        import threading
        from collections import OrderedDict

        self._kept: tuple[OrderedDict[str, Dataset], int, threading.Lock] = (OrderedDict(), size, threading.Lock())

    def dataset(self, ref: str) -> Dataset:
        """A dataset version (``name@X.Y.Z``, or ``name`` / ``name@latest``) as a ``Dataset`` handle."""
        kept = self.__dict__.get("_kept")
        if kept is None:
            return self._dataset(ref)
        import re

        handles, size, lock = kept
        if not re.fullmatch(r"[^@]+@\d+\.\d+\.\d+", ref):
            return self._dataset(ref)
        with lock:
            if ref in handles:
                handles.move_to_end(ref)
                return handles[ref]
        ds = self._dataset(ref)
        with lock:
            handles[ref] = ds
            while len(handles) > size:
                handles.popitem(last=False)
        return ds

    def _dataset(self, ref: str):
        from lensvault.datasets.handle import Dataset
        from lensvault.datasets.listing import repo_manifest
        from lensvault.datasets.versions import DatasetVersion, resolve

        # An exact version whose manifest file is in the repository (and whose bytes
        # are a stored manifest object) needs no catalog: no SQLAlchemy import.
        found = repo_manifest(self, ref)
        if found is not None:
            oid, manifest = found
            return Dataset(self, DatasetVersion.from_manifest(manifest, oid), manifest)
        with self.catalog.query() as conn:
            return Dataset(self, resolve(conn, ref))

    def dataset_details(self, ref: str, *, files: bool = False, restore_manifest: bool = False):
        """What ``dataset show`` says about REF (with ``files``: every file, read a batch at a time
        as the result is written out); ``restore_manifest`` first rewrites its manifest file in
        the repository from the store."""
        from lensvault.datasets.results import DatasetDetails

        ds = self.dataset(ref)
        if restore_manifest:
            ds.restore_manifest()
        return DatasetDetails(ds.to_dict(), ds.file_dicts if files else None)

    def dataset_files(self, ref: str, *, after: int = 0, limit: int = 100):
        """A page of REF's files: ``limit`` of ``dataset show --files``'s ``file_list`` from
        ``after`` (a ``FilePage``; its ``next`` is the next page's ``after``)."""
        from lensvault.datasets.results import FilePage

        ds = self.dataset(ref)
        return FilePage(ds.ref, ds.record.files, after, limit, ds.file_page(after, limit))

    def datasets(self) -> list[dict]:
        from lensvault.datasets.results import DatasetList
        from lensvault.datasets.versions import list_datasets

        with self.catalog.query() as conn:
            return DatasetList(list_datasets(conn))

    def versions(self, name: str) -> list:
        from lensvault.datasets.versions import list_versions

        with self.catalog.query() as conn:
            found = list_versions(conn, name)
        if not found:
            raise NotFound(f"no dataset named {name!r}", where=name, fix="see `lensvault dataset list`")
        return found

    def dataset_log(self, name: str):
        """Every version of dataset NAME, newest first (``dataset log``)."""
        from lensvault.datasets.results import DatasetLog

        return DatasetLog(reversed(self.versions(name)))

    def diff(self, a: str, b: str):
        """The file-level diff of two versions (``compare_datasets`` adds the annotation diff)."""
        return self.dataset(a).diff(b)

    def compare_datasets(self, a: str, b: str):
        """``dataset diff``: files, and for two annotated versions images, boxes, classes and splits."""
        from lensvault.datasets.results import DatasetComparison

        da, db = self.dataset(a), self.dataset(b)
        files = da.diff(db)
        return DatasetComparison(files, da.diff_annotations(db) if da.is_vision and db.is_vision else None)

    def images(self, ref: str, *, split: str | None = None, class_name: str | None = None, tag: str | None = None,
               after: int = 0, limit: int = 48):
        """A page of REF's images with their annotations (keyset-paged by image id: ``after``)."""
        from lensvault.datasets.image_pages import image_page

        return image_page(self.dataset(ref), split=split, class_name=class_name, tag=tag, after=after, limit=limit)

    def image(self, ref: str, image_id: int):
        """One image of REF with every annotation and its attributes."""
        from lensvault.datasets.image_pages import image_details

        return image_details(self.dataset(ref), image_id)

    def images_at(self, ref: str, paths):
        """REF's images at ``paths`` with their annotations (an ``ImageSet``)."""
        from lensvault.datasets.image_pages import images_at

        return images_at(self.dataset(ref), list(paths))

    def checkout(self, ref: str, dest, *, link: LinkMode | str = LinkMode.AUTO, paths=(), fetch: bool = True,
                 progress=NO_PROGRESS):
        """Write REF's files (or only those ``paths`` select: a file, a folder ``DIR/``, a glob) into
        ``dest``. Objects not here come from the default remote once the checkout meets one (it then
        starts over), unless ``fetch`` is False."""
        from lensvault.datasets.checkout import checkout_version
        from lensvault.datasets.listing import manifest_for
        from lensvault.remotes.autofetch import ensure_local

        ref, manifest = manifest_for(self, ref)

        def bring(missing: list[str]) -> int:
            return ensure_local(self, missing, what=ref, fetch=fetch, progress=progress)

        return checkout_version(self, ref, manifest, Path(dest), link=LinkMode(link), progress=progress,
                                patterns=list(paths), fetch=bring)

    def status(self, ref: str | None = None, folder=None, *, progress=NO_PROGRESS):
        from lensvault.datasets.status import folder_status

        return folder_status(self, ref, Path(folder) if folder is not None else Path.cwd(), progress=progress)

    # -- integrity -------------------------------------------------------------------------
    def vaults_sharing_store(self) -> list[str]:
        """The folders of the other vaults registered with this vault's store (gone ones too):
        gc keeps what they need, and repair takes good bytes from what they recorded. A record
        that cannot be read names no folder and is left out (gc refuses to run beside one)."""
        return [info["path"] for info in self.store.vaults()
                if info.get("vault_id") != self.config.vault_id and info.get("path")]

    def open_other(self, path) -> Vault:
        """Another vault (one sharing the store, or a ``verify --repair --from`` source), opened
        here, as the same actor, so that the modules below the Vault never import it."""
        return open_vault(path, actor=self.actor)

    def verify(self, ref: str | None = None, *, repair: bool = False, sources=(), progress=NO_PROGRESS,
               use_catalog: bool = True):
        """Re-hash the objects of REF (default: the whole store); without a usable catalog (or
        ``use_catalog=False``), the store alone. With ``repair``, missing and corrupt objects get
        good bytes back from ``sources`` (folders, vaults or stores) or from the folders the
        versions were snapshotted from (see lensvault.repair)."""
        from lensvault.integrity import verify

        return verify(self, ref, repair=repair, sources=[Path(s) for s in sources], progress=progress,
                      use_catalog=use_catalog)

    def gc(self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, force: bool = False):
        """A plan of unreachable objects and of what killed writers left (temp files, staging
        folders); nothing is deleted until ``plan.execute()``. A grace period under
        ``grace.SAFE_GRACE_SECONDS`` needs ``force`` (see there)."""
        from lensvault.integrity import plan_gc

        return plan_gc(self, grace_seconds=grace_seconds, force=force)

    def collect_garbage(self, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, force: bool = False, delete: bool = False):
        """``gc``: the plan, executed when ``delete`` (a ``GcResult``)."""
        from lensvault.integrity import collect_garbage

        return collect_garbage(self, grace_seconds=grace_seconds, force=force, delete=delete)

    # -- registry ----------------------------------------------------------------------------
    def register_model(self, name: str, *, run: str, weights, labelmap=None, preprocess=None, postprocess=None,
                       thresholds=None, version: str | None = None, bump: str | None = None, caveats=(),
                       force: bool = False, allow_dirty: bool = False, task: str | None = None):
        """Bundle a run's weights with label map, settings, metrics and release notes as NAME@X.Y.Z
        (``task``: registry.task; None reads it from the run's dataset version)."""
        from lensvault.registry.register import RegisterRequest, register_model

        if isinstance(weights, (str, os.PathLike)):
            weights = [weights]
        req = RegisterRequest(
            name=name, run_id=run, weights=tuple(Path(w) for w in weights),
            labelmap=Path(labelmap) if labelmap else None, preprocess=Path(preprocess) if preprocess else None,
            postprocess=Path(postprocess) if postprocess else None, thresholds=thresholds or (),
            version=version, bump=bump, caveats=tuple(caveats), force=force, allow_dirty=allow_dirty, task=task,
        )
        return register_model(self, req)

    def model(self, ref: str):
        """A model version: ``detector@1.2.0``, ``detector@production`` or ``detector`` (latest)."""
        from lensvault.registry.query import get_model

        return get_model(self, ref)

    def models(self, name: str | None = None) -> list:
        from lensvault.registry.query import list_models
        from lensvault.registry.results import ModelList

        return ModelList(list_models(self, name))

    def promote(self, ref: str, alias: str, *, reason: str | None = None, new: bool = False):
        """Point ``alias`` at REF's version; an alias the model never had needs ``new=True``."""
        from lensvault.registry.aliases import promote

        return promote(self, ref, alias, reason=reason, new=new)

    def rollback(self, name: str, alias: str, *, reason: str | None = None):
        from lensvault.registry.aliases import rollback

        return rollback(self, name, alias, reason=reason)

    def model_history(self, name: str, alias: str | None = None) -> list:
        from lensvault.registry.aliases import history
        from lensvault.registry.results import AliasHistory

        return AliasHistory(history(self, name, alias), name=name, alias=alias)

    def pull_model(self, ref: str, dest, *, link: LinkMode | str = LinkMode.COPY, fetch: bool = True,
                   progress=NO_PROGRESS):
        """Model REF's bundle into ``dest``; its files not here come from the default remote first
        (unless ``fetch`` is False)."""
        from lensvault.registry.pull import pull_model
        from lensvault.remotes.autofetch import ensure_local

        model = self.model(ref)
        ensure_local(self, [f["sha256"] for f in model.files] + [model.bundle_oid], what=model.ref, fetch=fetch,
                     progress=progress)
        return pull_model(self, model, Path(dest), link=LinkMode(link))

    # -- runs ------------------------------------------------------------------------------
    # Configs, the preflight gate, runs and evaluations: lensvault.runs (docs/runs.md).
    def add_config(self, path, config_id: str | None = None, *, uncommitted: bool = False):
        """Register a committed YAML/JSON/TOML file under an ID such as C-23c (write-once);
        ``uncommitted=True`` registers a file git does not hold as it is (runs refuse it)."""
        from lensvault.configs.registered import add_config

        return add_config(self, path, config_id, uncommitted=uncommitted)

    # ``self.config`` is the vault's own settings (VaultConfig), hence ``get_config``.
    def get_config(self, config_id: str):
        from lensvault.configs.registered import get_config

        with self.catalog.query() as conn:
            return get_config(conn, config_id)

    def configs(self) -> list:
        from lensvault.configs.registered import list_configs
        from lensvault.runs.results import ConfigList

        with self.catalog.query() as conn:
            return ConfigList(list_configs(conn))

    def diff_configs(self, a: str, b: str):
        """Key-level differences between configs A and B (``config diff``)."""
        from lensvault.configs.registered import diff_registered
        from lensvault.runs.results import ConfigDiff

        return ConfigDiff(diff_registered(self.get_config(a), self.get_config(b)))

    def preflight(self, *, dataset: str | None, config: str | None, model: str | None = None,
                  version: str | None = None, seed: int | None = None, allow_dirty: bool = False):
        """Every check a run must pass, as a report; nothing is reserved."""
        from lensvault.runs.preflight import preflight

        return preflight(self, dataset=dataset, config=config, model=model, version=version, seed=seed,
                         allow_dirty=allow_dirty)

    def run(self, command: list[str], *, dataset: str, config: str, **kw):
        """Preflight, then run ``command`` as a recorded run (see lensvault.runs.launcher.run_command)."""
        from lensvault.runs.launcher import run_command

        return run_command(self, command, dataset=dataset, config=config, **kw)

    def runs(self, *, dataset: str | None = None, status: str | None = None, limit: int | None = None) -> list[dict]:
        from lensvault.runs.read import list_runs
        from lensvault.runs.results import RunList

        rows, total = list_runs(self, dataset=dataset, status=status, limit=limit)
        return RunList(rows, total=total)

    def get_run(self, run_id: str, *, points: bool = False) -> dict:
        from lensvault.runs.read import get_run
        from lensvault.runs.results import RunDetails

        return RunDetails(get_run(self, run_id, points=points))

    def run_log(self, run_id: str):
        """The output run RUN_ID (an id, a unique prefix, or ``latest``) recorded."""
        from lensvault.runs.read import run_log
        from lensvault.runs.results import RunLog

        return RunLog(*run_log(self, run_id))

    def abandon_run(self, run_id: str, *, reason: str | None = None, force: bool = False):
        """End a run stuck as running: ``abandoned``, its model version released (an ``EndedRun``)."""
        from lensvault.runs.crashes import abandon_run

        return abandon_run(self, run_id, reason=reason, force=force)

    def compare_runs(self, a: str, b: str) -> dict:
        from lensvault.runs.compare import compare_runs
        from lensvault.runs.results import RunComparison

        return RunComparison(compare_runs(self, a, b))

    def evaluate(self, *, dataset: str, predictions, split: str | None = "test", run: str | None = None,
                 model: str | None = None, task: str = "detection", **options) -> dict:
        """Score ``predictions`` on a dataset version's split and record it (for a run, a model, or
        neither: ad-hoc); the result names its source (eval id, dataset@version, split). ``task``:
        lensvault.evaluations.tasks.TASKS; ``options``: ignore_index, top_k, oks_sigmas, multi_label,
        threshold."""
        from lensvault.evaluations.recorded import evaluate
        from lensvault.runs.results import Evaluation

        return Evaluation(evaluate(self, dataset=dataset, predictions=predictions, split=split, run=run, model=model,
                                   task=task, **options))

    def evaluations(self, *, run: str | None = None, model: str | None = None, dataset: str | None = None,
                    ad_hoc: bool = False) -> list[dict]:
        """Recorded evaluations, oldest first, each with its ``source``."""
        from lensvault.evaluations.recorded import list_evaluations
        from lensvault.runs.results import EvaluationList

        return EvaluationList(list_evaluations(self, run=run, model=model, dataset=dataset, ad_hoc=ad_hoc))
    # -- end runs ----------------------------------------------------------------------------

    # -- API tokens (lensvault serve) --------------------------------------------------------
    def create_token(self, name: str, *, role: str, user: str | None = None):
        """A token for ``lensvault serve`` acting as ``user`` (default NAME); its secret is shown once."""
        from lensvault.auth.tokens import create_token

        return create_token(self, name, role=role, user=user)

    def tokens(self):
        from lensvault.auth.tokens import list_tokens

        return list_tokens(self)

    def revoke_token(self, name: str):
        from lensvault.auth.tokens import revoke_token

        return revoke_token(self, name)

    def authenticate(self, token: str):
        """The ``Principal`` (user, role) a token names, or None if it is not a valid, live token."""
        from lensvault.auth.tokens import authenticate

        return authenticate(self, token)

    def start_session(self, token: str):
        """A browser session for a valid token (``Session``: the cookie value), or None."""
        from lensvault.auth.sessions import start_session

        return start_session(self, token)

    def session_principal(self, value: str):
        """The ``Principal`` of a live session cookie, or None (unknown, expired, logged out, token revoked)."""
        from lensvault.auth.sessions import session_principal

        return session_principal(self, value)

    def end_session(self, value: str) -> None:
        from lensvault.auth.sessions import end_session

        end_session(self, value)

    # -- events ----------------------------------------------------------------------------
    def events(self, *, subject: str | None = None, action: str | None = None, since: str | None = None,
               until: str | None = None, limit: int | None = None) -> list[dict]:
        from lensvault.events import list_events

        return list_events(self, subject=subject, action=action, since=since, until=until, limit=limit)

    # -- lineage -----------------------------------------------------------------------------
    def lineage(self, ref: str, *, direction: str = "auto", limit: int | None = None):
        """The lineage graph of a model version/alias, run id, dataset version or config id;
        ``limit``: at most this many runs (and evaluations) below one dataset version or config,
        newest first, the rest counted in ``omitted``."""
        from lensvault.lineage.graph import lineage

        return lineage(self, ref, direction=direction, limit=limit)

    def why(self, a: str, b: str, *, allow_different_data: bool = False):
        """What changed between two model versions (or runs), most likely cause of the metric change first.

        Metrics are compared only from evaluations on the same dataset version and split (or what
        both runs logged, trained on the same data); ``allow_different_data`` compares others, labelled.
        """
        from lensvault.lineage.why import why

        return why(self, a, b, allow_different_data=allow_different_data)

    def reproduce(self, ref: str, *, tolerance: float = 0.01, stream=None, fetch: bool = True, progress=NO_PROGRESS):
        """Rebuild a run or model version from its recorded commit, data, config and seeds; compare.
        The data and records it reads that are not here come from the default remote first (unless
        ``fetch`` is False)."""
        from lensvault.remotes.autofetch import ensure_local
        from lensvault.runs.reproduce import inputs, reproduce

        for what, oids in inputs(self, ref).items():
            ensure_local(self, oids, what=what, pull_ref=ref, fetch=fetch, progress=progress)
        return reproduce(self, ref, tolerance=tolerance, stream=stream)

    # -- remotes (lensvault.remotes) ---------------------------------------------------------
    def add_remote(self, name: str, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                   default: bool = False, check: bool = True):
        """Name a remote; ``check``: only if the bucket (or folder) exists and can be used now."""
        from lensvault.remotes.config import add_remote

        return add_remote(self, name, url, endpoint_url=endpoint_url, region=region, default=default, check=check)

    def remove_remote(self, name: str):
        from lensvault.remotes.config import remove_remote

        return remove_remote(self, name)

    def remotes(self):
        from lensvault.remotes.config import remote_list

        return remote_list(self)

    def push(self, refs=(), *, all: bool = False, remote: str | None = None, jobs: int = 32,
             check_remote: bool = False, progress=NO_PROGRESS):
        """Upload what ``refs`` need (or everything) to a remote: objects, records, then refs."""
        from lensvault.remotes.push import push

        return push(self, list(refs), everything=all, remote=remote, jobs=jobs, check_remote=check_remote,
                    progress=progress)

    def fetch(self, *, remote: str | None = None, jobs: int = 32, progress=NO_PROGRESS):
        """Every record of a remote into this vault (its catalog lists them), their data left there
        until a checkout, ``model pull``, ``reproduce`` or ``pull`` needs it (lensvault.remotes.records_fetch)."""
        from lensvault.remotes.records_fetch import fetch

        return fetch(self, remote=remote, jobs=jobs, progress=progress)

    def pull(self, ref: str, *, remote: str | None = None, jobs: int = 32, progress=NO_PROGRESS):
        """Bring ``ref`` (and what it needs) from a remote into this vault, hash-checked."""
        from lensvault.remotes.fetch import pull

        return pull(self, ref, remote=remote, jobs=jobs, progress=progress)

    def remote_status(self, remote: str | None = None, *, jobs: int = 32):
        """What this vault has that the remote lacks (not pushed) and the other way round (not pulled)."""
        from lensvault.remotes.status import remote_status

        return remote_status(self, remote, jobs=jobs)

    def verify_remote(self, remote: str | None = None, *, hash: bool = False, jobs: int = 32, progress=NO_PROGRESS):
        """Every object the remote's refs and records need is there (by a listing); ``hash``:
        and every object on it hashes to its name (each downloaded, streamed)."""
        from lensvault.remotes.verify import verify_remote

        return verify_remote(self, remote, hash=hash, jobs=jobs, progress=progress)

    def collect_remote_garbage(self, remote: str, *, grace_seconds: float = DEFAULT_GRACE_SECONDS,
                               force: bool = False, delete: bool = False, jobs: int = 32, progress=NO_PROGRESS):
        """``gc --remote``: the plan of objects nothing on the remote names (older than the grace
        period, by the server's clock), deleted when ``delete`` (a ``RemoteGcResult``)."""
        from lensvault.remotes.gc import collect_remote_garbage

        return collect_remote_garbage(self, remote, grace_seconds=grace_seconds, force=force, delete=delete,
                                      jobs=jobs, progress=progress)
