"""Thumbnails and mask pictures live as long as the object they are made from: ``gc`` removes the
ones of objects it deletes or that are gone from the store, and keeps the rest."""

from __future__ import annotations

import io
import json

from tests.cli.conftest import lv


def _png(colour) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, "PNG")
    return out.getvalue()


def test_gc_removes_pictures_of_objects_no_longer_in_the_store(sqlite_vault, tmp_path):
    from starlette.testclient import TestClient

    from lensvault.image_cache import thumbnail_path
    from lensvault.server import create_app
    from tests.registry._helpers import make_coco

    vault = sqlite_vault
    images, ann = make_coco(tmp_path / "src", 3)
    coco = json.loads(ann.read_text())
    # One mask, so that a mask picture is made too (of the kept annotations table).
    coco["annotations"][0]["segmentation"] = {"size": [32, 32], "counts": [64, 8, 24, 8, 920]}
    ann.write_text(json.dumps(coco))
    vault.snapshot("tiny", images, version="1.0.0", format="coco", annotations=ann)
    kept = vault.images("tiny@1.0.0").to_dict()["items"][0]
    orphan = vault.store.put_bytes(_png((200, 10, 10)))  # stored, recorded by nothing: gc deletes it
    lost = vault.store.put_bytes(_png((10, 200, 10)))  # deleted below, as another vault's gc would
    vault.store.release_pins()  # as a finished writer does

    with TestClient(create_app(vault.root, public_read=True)) as c:
        for oid in (kept["sha256"], orphan, lost):
            for size in (128, 256):
                assert c.get(f"/api/v1/objects/{oid}/thumbnail", params={"size": size}).status_code == 200
        mask = next(a for a in vault.image("tiny@1.0.0", kept["image_id"]).to_dict()["annotations"] if a.get("rle"))
        assert c.get(f"/api/v1/datasets/tiny/versions/1.0.0/images/{kept['image_id']}/masks/{mask['index']}"
                     ).status_code == 200
    vault.store.delete(lost)
    masks = list((vault.dir / "cache" / "masks").rglob("*.png"))
    assert len(masks) == 1

    def thumbs(oid):
        return [thumbnail_path(vault.dir, oid, size) for size in (128, 256)]

    assert all(p.exists() for oid in (kept["sha256"], orphan, lost) for p in thumbs(oid))
    plan = vault.collect_garbage(grace_seconds=0, force=True)
    assert orphan in {oid for oid, _ in plan.plan.objects}
    assert sorted(x.path for x in plan.plan.cached) == sorted(str(p) for p in thumbs(orphan) + thumbs(lost))
    assert plan.to_dict()["plan"]["cached_pictures"] == 4
    printed = lv("gc", "--grace", "0", "--force", cwd=vault.root)
    assert printed.returncode == 0 and "4 cached thumbnails and mask pictures" in printed.stdout, printed.stdout

    done = vault.collect_garbage(grace_seconds=0, force=True, delete=True)
    assert done.executed["cached_pictures"] == 4
    assert not any(p.exists() for p in thumbs(orphan) + thumbs(lost))
    assert all(p.exists() for p in thumbs(kept["sha256"])) and all(p.exists() for p in masks)
    # Nothing left to do: a second gc plans no pictures.
    assert vault.collect_garbage(grace_seconds=0, force=True).plan.cached == []
    assert vault.events(action="gc").to_dict()[-1]["after"]["cached_pictures"] == 4


def test_a_picture_half_written_by_a_killed_server_is_collected(sqlite_vault):
    import os
    import time

    from lensvault.image_cache import thumbnail_path

    oid = sqlite_vault.store.put_bytes(_png((1, 2, 3)))
    tmp = thumbnail_path(sqlite_vault.dir, oid, 128).with_name(".tmp-abc123.jpg")
    tmp.parent.mkdir(parents=True)
    tmp.write_bytes(b"\xff\xd8 half a jpeg")
    young = sqlite_vault.collect_garbage(grace_seconds=3600).plan
    assert str(tmp) not in {x.path for x in young.cached}  # a server may be writing it right now
    old = time.time() - 7200
    os.utime(tmp, (old, old))
    plan = sqlite_vault.collect_garbage(grace_seconds=3600, delete=True)
    assert str(tmp) in {x.path for x in plan.plan.cached} and not tmp.exists()
