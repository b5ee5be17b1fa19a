"""Leakage checks on real BCCD images stored in a real object store."""

from __future__ import annotations

import io
import random

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensvault.datasets.leakage import HASH_METHOD, _close_pairs, check_leakage, perceptual_hash
from lensvault.store import LocalObjectStore

from .conftest import BCCD


@pytest.fixture
def store(tmp_path):
    s = LocalObjectStore(tmp_path / "objects")
    s.create()
    return s


def jpeg_bytes(name: str, *, quality: int | None = None, scale: float | None = None) -> bytes:
    data = (BCCD / "JPEGImages" / name).read_bytes()
    if quality is None and scale is None:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if scale:
            im = im.resize((int(im.width * scale), int(im.height * scale)))
        out = io.BytesIO()
        im.save(out, "JPEG", quality=quality or 90)
        return out.getvalue()


def images_table(store, rows) -> pa.Table:
    """rows: (path, split, bytes) → images table with sha256, the object stored."""
    return pa.table({"path": [r[0] for r in rows], "split": [r[1] for r in rows],
                     "sha256": [store.put_bytes(r[2]) for r in rows]})


@pytest.fixture
def leaky(store):
    rows = [(f"img/{n}.jpg", split, jpeg_bytes(f"BloodImage_{n}.jpg")) for n, split in
            [("00001", "train"), ("00003", "train"), ("00004", "train"), ("00007", "test"), ("00011", "test"),
             ("00005", "val")]]
    rows += [
        ("img/copy_of_00001.jpg", "test", jpeg_bytes("BloodImage_00001.jpg")),           # exact, across
        ("img/00003_q35.jpg", "test", jpeg_bytes("BloodImage_00003.jpg", quality=35)),   # re-encoded
        ("img/00004_half.jpg", "val", jpeg_bytes("BloodImage_00004.jpg", scale=0.5)),    # resized
        ("img/00005_again.jpg", "val", jpeg_bytes("BloodImage_00005.jpg")),              # exact, same split
    ]
    return images_table(store, rows)


def test_finds_exact_and_near_duplicates_across_and_within_splits(leaky, store):
    report = check_leakage(leaky, store.open)
    assert [(g["paths"], g["splits"]) for g in sorted(report.exact, key=lambda g: g["paths"])] == [
        (["img/00001.jpg", "img/copy_of_00001.jpg"], ["train", "test"]),
        (["img/00005.jpg", "img/00005_again.jpg"], ["val", "val"])]
    assert [g["paths"][0] for g in report.cross_split_exact] == ["img/00001.jpg"]
    near = {(n.a, n.b): n for n in report.near}
    assert set(near) == {("img/00003.jpg", "img/00003_q35.jpg"), ("img/00004.jpg", "img/00004_half.jpg")}
    assert near[("img/00003.jpg", "img/00003_q35.jpg")].split_b == "test"
    assert all(n.distance <= 6 for n in report.near)
    assert report.has_train_test_leak and report.leaks_between("TRAIN", "val")
    assert not report.leaks_between("val", "test")
    data = report.to_dict()
    assert data["counts"] == {"exact_groups": 2, "exact_cross_split": 1, "near_pairs": 2, "near_cross_split": 2,
                              "split_moves": 0, "unreadable": 0}
    assert data["hash_method"] == HASH_METHOD and data["summary"].startswith("train/test leak found")


def test_near_duplicate_alone_is_a_train_test_leak(store):
    table = images_table(store, [("a.jpg", "train", jpeg_bytes("BloodImage_00003.jpg")),
                                 ("b.jpg", "test", jpeg_bytes("BloodImage_00003.jpg", quality=35)),
                                 ("c.jpg", "test", jpeg_bytes("BloodImage_00007.jpg"))])
    report = check_leakage(table, store.open)
    assert report.exact == () and len(report.near) == 1 and report.has_train_test_leak
    assert not check_leakage(table, store.open, near_threshold=0).has_train_test_leak


def test_clean_splits_have_no_leak(store):
    table = images_table(store, [(f"{n}.jpg", s, jpeg_bytes(f"BloodImage_{n}.jpg"))
                                 for n, s in [("00001", "train"), ("00003", "train"), ("00007", "test")]])
    report = check_leakage(table, store.open)
    assert (report.exact, report.near, report.has_train_test_leak) == ((), (), False)
    assert report.summary() == ("no train/test leak: 0 exact duplicate groups (0 across splits), "
                                "0 near-duplicate pairs (0 across splits) (of 3 images).")


def test_cache_skips_rehashing_and_is_filled(leaky, store):
    opened = []

    def counting_open(sha):
        opened.append(sha)
        return store.open(sha)

    cache: dict[str, str] = {}
    first = check_leakage(leaky, counting_open, cache=cache)
    assert len(opened) == len(cache) == len(set(leaky.column("sha256").to_pylist())) == 8
    assert all(len(v) == 16 for v in cache.values())
    opened.clear()
    second = check_leakage(leaky, counting_open, cache=cache)
    assert opened == [] and second.to_dict() == first.to_dict()


def test_unreadable_objects_are_reported_and_the_rest_still_checked(store):
    table = images_table(store, [("broken.jpg", "train", b"not an image at all"),
                                 ("a.jpg", "train", jpeg_bytes("BloodImage_00003.jpg")),
                                 ("b.jpg", "test", jpeg_bytes("BloodImage_00003.jpg", quality=35))])
    report = check_leakage(table, store.open)
    assert [u["path"] for u in report.unreadable] == ["broken.jpg"]
    assert "UnidentifiedImageError" in report.unreadable[0]["error"]
    assert report.has_train_test_leak


def test_split_moves_since_parent_by_path_and_by_content(store):
    b1, b3, b7 = (jpeg_bytes(f"BloodImage_{n}.jpg") for n in ("00001", "00003", "00007"))
    parent = images_table(store, [("a.jpg", "train", b1), ("b.jpg", "test", b3), ("c.jpg", "test", b7)])
    current = images_table(store, [("a.jpg", "test", b1), ("renamed.jpg", "train", b3), ("c.jpg", "test", b7)])
    report = check_leakage(current, store.open, parent_images=parent, near_threshold=0)
    assert list(report.split_moves) == [{"path": "a.jpg", "from": "train", "to": "test", "by": "path"},
                                        {"path": "renamed.jpg", "from": "test", "to": "train", "by": "content"}]


def test_bccd_has_one_real_near_duplicate_pair_across_val_and_train(bccd, bccd_root):
    path_of = dict(zip(bccd.images.column("sha256").to_pylist(), bccd.images.column("path").to_pylist()))
    report = check_leakage(bccd.images, lambda sha: open(bccd_root / path_of[sha], "rb"))  # noqa: SIM115 - closed by its reader
    assert [(n.a, n.b, n.split_a, n.split_b) for n in report.near] == [
        ("JPEGImages/BloodImage_00037.jpg", "JPEGImages/BloodImage_00038.jpg", "val", "train")]
    assert report.exact == () and not report.has_train_test_leak


def test_threshold_is_validated(leaky, store):
    with pytest.raises(ValueError, match="near_threshold"):
        check_leakage(leaky, store.open, near_threshold=64)


def test_perceptual_hash_is_stable_under_reencoding():
    a = perceptual_hash(io.BytesIO(jpeg_bytes("BloodImage_00010.jpg")))
    b = perceptual_hash(io.BytesIO(jpeg_bytes("BloodImage_00010.jpg", quality=50)))
    c = perceptual_hash(io.BytesIO(jpeg_bytes("BloodImage_00200.jpg")))
    assert (a ^ b).bit_count() <= 6 < (a ^ c).bit_count()


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 120), threshold=st.integers(0, 12),
       planted=st.integers(0, 30))
def test_bucketed_search_equals_brute_force(seed, n, threshold, planted):
    rng = random.Random(seed)
    values = [rng.getrandbits(64) for _ in range(n)]
    for _ in range(planted if n else 0):  # near copies: flip a few bits of an existing hash
        v = rng.choice(values)
        for _ in range(rng.randint(0, threshold + 2)):
            v ^= 1 << rng.randrange(64)
        values.append(v)
    brute = [(i, j, (values[i] ^ values[j]).bit_count()) for i in range(len(values))
             for j in range(i + 1, len(values)) if (values[i] ^ values[j]).bit_count() <= threshold]
    assert _close_pairs(values, threshold) == brute
