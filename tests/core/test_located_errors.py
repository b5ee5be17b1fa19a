"""The tracebacks issue 11 named, and their kin: each a located error (what, where, fix).

Damaged small files LensVault reads back (a checkout's marker, the store's vault records),
destinations that are links or sit on a full or read-only disk (checkout, export, model
pull), a store mounted read-only under gc, and the folder that records checkout staging
folders being unwritable. Real mounts (tmpfs, read-only bind mounts) where the machine
allows them; real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from _lvtest import lv, settle, write_files

NOT_A_MARKER = ["", "[]", '"x"', "null", "{", "1", "{}", '{"ref": 3}', '{"ref": ["a"]}']


@pytest.fixture
def two(sqlite_vault, tmp_path):
    """A vault with a plain version and a vision one (COCO, two tiny PNGs)."""
    from PIL import Image

    sqlite_vault.snapshot("plain", write_files(tmp_path / "plain", {"a.txt": "alpha", "b/c.txt": "gamma"}),
                          version="1.0.0")
    coco = tmp_path / "coco"
    (coco / "images").mkdir(parents=True)
    images, anns = [], []
    for i in range(2):
        Image.new("RGB", (8, 8), (i, 9, 9)).save(coco / "images" / f"i{i}.png")
        images.append({"id": i + 1, "file_name": f"i{i}.png", "width": 8, "height": 8})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 3, 3], "area": 9, "iscrowd": 0})
    write_files(coco, {"annotations/instances.json": json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]})})
    settle()
    sqlite_vault.snapshot("vis", coco, version="1.0.0", format="coco")
    return sqlite_vault


@pytest.fixture
def read_only():
    """Make a folder read-only for real (a read-only bind mount: root ignores permission bits)."""
    mounted: list[Path] = []

    def make(path: Path) -> None:
        for args in (["--bind", str(path), str(path)], ["-o", "remount,ro,bind", str(path)]):
            r = subprocess.run(["mount", *args], capture_output=True, text=True)
            if r.returncode != 0:
                if mounted and mounted[-1] == path:
                    subprocess.run(["umount", str(path)], capture_output=True)
                pytest.skip(f"cannot bind-mount read-only here ({r.stderr.strip() or r.returncode})")
            if args[0] == "--bind":
                mounted.append(path)

    yield make
    for p in reversed(mounted):
        subprocess.run(["umount", str(p)], capture_output=True)


def _located(r, code: int, *where: str) -> None:
    out = r.stdout + r.stderr
    assert r.returncode == code, out
    assert "Traceback" not in out and "fix:" in r.stderr, out
    for w in where:
        assert w in r.stderr, (w, r.stderr)


@pytest.mark.parametrize("content", NOT_A_MARKER)
def test_a_damaged_checkout_marker_is_a_located_error(two, tmp_path, content):
    co = tmp_path / "co"
    assert lv("--vault", two.root, "dataset", "checkout", "plain@1.0.0", co).returncode == 0
    marker = co / ".lensvault-checkout.json"
    marker.write_text(content)
    r = lv("--vault", two.root, "status", co)
    _located(r, 6, str(marker), "lensvault status NAME@VERSION")
    # The fix it names works.
    assert lv("--vault", two.root, "status", "plain@1.0.0", co).returncode == 0


def _links(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "real").mkdir()
    out = {"to an empty folder": tmp_path / "to-folder", "dangling": tmp_path / "dangling", "a loop": tmp_path / "loop"}
    out["to an empty folder"].symlink_to(tmp_path / "real")
    out["dangling"].symlink_to(tmp_path / "nowhere")
    out["a loop"].symlink_to(out["a loop"])
    return out


COMMANDS = {
    "checkout": ("dataset", "checkout", "plain@1.0.0", "{dest}"),
    "export": ("dataset", "export", "vis@1.0.0", "{dest}", "--format", "coco"),
}  # model pull: tests/registry/test_pull_cli.py


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("link", ["to an empty folder", "dangling", "a loop"])
def test_a_destination_that_is_a_symlink_is_refused(two, tmp_path, command, link):
    dest = _links(tmp_path)[link]
    r = lv("--vault", two.root, *(a.format(dest=dest) for a in COMMANDS[command]))
    _located(r, 6, "symbolic link", str(dest))
    assert os.listdir(tmp_path / "real") == [] and not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_an_export_onto_a_full_disk_is_a_storage_error_and_leaves_nothing(two, small_tmpfs, fmt):
    disk = small_tmpfs("1m")
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for block in (65536, 512, 1):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError:
                pass
    r = lv("--vault", two.root, "dataset", "export", "vis@1.0.0", disk / "out", "--format", fmt, "--link", "copy")
    _located(r, 9, "the disk is full", str(disk / "out"))
    assert os.listdir(disk) == ["filler"]


def test_gc_on_a_store_mounted_read_only_plans_and_then_says_why_it_cannot_delete(two, read_only):
    """A pin of a writer that is gone cannot be removed from a read-only store: it still counts."""
    store = Path(two.store.root)
    orphan = two.store.put_bytes(b"an orphan nothing needs")
    (store / "pins" / "ffffffff.1.1-dead.pin").write_text(orphan)  # another host: kept within the grace
    os.utime(store / "pins" / "ffffffff.1.1-dead.pin", (1, 1))  # … and long past it: a dead writer's
    unpinned = two.store.put_bytes(b"another orphan")
    two.store.release_pins()
    read_only(store)
    r = lv("--vault", two.root, "gc", "--grace", "0", "--force", "--json")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    plan = json.loads(r.stdout)["plan"]
    assert plan["objects"] == 1  # the pin could not be cleared, so its object is still protected
    r = lv("--vault", two.root, "gc", "--grace", "0", "--force", "--yes")
    _located(r, 9, "read-only", str(store))
    assert two.store.has(orphan) and two.store.has(unpinned) and two.verify().ok


def test_a_checkout_whose_staging_record_cannot_be_written_leaves_nothing(two, tmp_path, read_only):
    staging = two.dir / "staging"
    staging.mkdir(exist_ok=True)
    read_only(staging)
    r = lv("--vault", two.root, "dataset", "checkout", "plain@1.0.0", tmp_path / "out" / "co")
    _located(r, 9, "read-only", str(staging))
    assert os.listdir(tmp_path / "out") == []


def test_gc_refuses_while_another_vaults_record_in_the_shared_store_is_unreadable(two, tmp_path):
    """Its needs unknown, gc would delete that vault's objects: it stops and names the file."""
    import lensvault

    other = lensvault.init(tmp_path / "other", store=str(two.store.root))
    kept = other.snapshot("theirs", write_files(tmp_path / "theirs", {"t.txt": "theirs"}), version="1.0.0")
    oids = kept.object_ids()
    other.close()
    record = Path(two.store.root) / "vaults" / f"{other.config.vault_id}.json"
    for content in ("", "[]", "null", "{}", '{"vault_id": "x"}'):
        record.write_text(content)
        r = lv("--vault", two.root, "gc", "--grace", "0", "--force", "--yes")
        _located(r, 9, str(record), "cannot be read")
        assert all(two.store.has(o) for o in oids)
    # This vault's own record damaged: it is this vault (named by its file), and gc goes on.
    record.write_text(json.dumps({"vault_id": other.config.vault_id, "path": str(tmp_path / "other")}))
    (Path(two.store.root) / "vaults" / f"{two.config.vault_id}.json").write_text("")
    r = lv("--vault", two.root, "gc", "--grace", "0", "--force", "--yes")
    assert r.returncode == 0 and all(two.store.has(o) for o in oids), r.stderr


# A writer killed between writing a temp file and renaming it: the temp file carries the writer's
# name, so gc removes it at once (the writer is gone), with the default grace period.
KILLED_WRITER = """
import os, signal, sys
import lensvault
vault = lensvault.open(sys.argv[1])
what = sys.argv[2]
def die(*a, **k):
    os.kill(os.getpid(), signal.SIGKILL)
if what == "ledger ref":
    os.replace = os.link = die
    vault.store.put_ref("ledgers/" + vault.config.catalog_id + "/refs/configs/C-99", b"x" * 64)
elif what == "manifest":
    from lensvault.datasets.manifest import write_manifest_file
    os.link = die
    write_manifest_file(vault.manifests_dir / "plain" / "9.0.0.json", b"{}")
elif what == "vault record":
    os.replace = die
    vault.store.register_vault("f" * 32, vault.root)
"""


@pytest.mark.parametrize("what,kind", [("ledger ref", "ledger temp file"), ("manifest", "manifest temp file"),
                                       ("vault record", "vault record temp file")])
def test_temp_files_of_a_killed_writer_go_at_the_next_gc(two, what, kind):
    import sys

    r = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(two.root), what], capture_output=True, text=True)
    assert r.returncode == -9, r.stderr
    plan = two.gc()  # the default grace period (an hour): the owner's death decides, not the age
    assert [x.kind for x in plan.leftovers] == [kind], [x.to_dict() for x in plan.leftovers]
    left = Path(plan.leftovers[0].path)
    assert left.name.startswith(".") and left.exists()
    plan.execute()
    assert not left.exists() and two.gc().leftovers == [] and two.verify().ok
