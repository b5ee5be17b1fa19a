"""Masks and keypoints drawn over the images, like boxes and polygons: in the image grid, on the
image page and in the diff overlays (a real Chromium counts the shapes against the annotations),
and the mask pictures the server makes for them (once, with Pillow; right pixels, right colour)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from tests.server.test_browser import browser  # noqa: F401 (the Chromium fixture)

SAMPLES = Path(__file__).parents[1] / "data" / "format-samples"
W, H = 64, 48
# COCO numbers keypoints from 1 in its skeleton: head-hand, hand-foot, foot-knee, head-knee.
SKELETON = [[1, 2], [2, 3], [3, 4], [1, 4]]
# A camera's file name: long, and no place a browser may break it on its own.
LONG = "scene_000123_camera_front_left_2026_11_30_03_20_38_exposure_auto_gain_12_frame_000045.png"
POINTS = [10, 10, 2, 30, 20, 1, 0, 0, 0, 50, 40, 2]  # the third point is not labelled (v = 0)


def _mask(rows: slice, cols: slice):
    import numpy as np

    a = np.zeros((H, W), np.uint8)
    a[rows, cols] = 1
    return a


def _compressed(bits) -> dict:
    import numpy as np
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(bits))
    return {"size": [H, W], "counts": rle["counts"].decode()}


def _uncompressed(bits) -> dict:
    """Column-major run lengths, starting with a run of zeros (COCO's uncompressed RLE)."""
    flat = bits.flatten(order="F").tolist()
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """seg@1.0.0 (COCO: keypoints with a skeleton, a compressed and an uncompressed RLE mask, a
    polygon, a box), seg@1.0.1 (the first mask relabeled), sem@1.0.0 (bitmap masks of Datumaro's
    semantic segmentation sample) and a live server reading them."""
    from PIL import Image

    import lensvault
    from tests.server.conftest import Server

    root = tmp_path_factory.mktemp("drawn")
    src = root / "src"
    src.mkdir()
    for name, colour in (("a.png", (30, 60, 90)), ("b.png", (90, 60, 30)), (LONG, (60, 90, 30))):
        Image.new("RGB", (W, H), colour).save(src / name)
    first, second = _mask(slice(5, 15), slice(35, 55)), _mask(slice(30, 44), slice(4, 20))
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "keypoints": POINTS, "num_keypoints": 3, "bbox": [10, 10, 40, 30]},
        {"id": 2, "image_id": 1, "category_id": 2, "segmentation": _compressed(first), "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 3, "bbox": [2, 30, 12, 10]},
        {"id": 4, "image_id": 2, "category_id": 2, "segmentation": [[5, 5, 25, 5, 25, 20, 5, 20]]},
        {"id": 5, "image_id": 2, "category_id": 3, "segmentation": _uncompressed(second), "iscrowd": 1},
    ]
    anns.append({"id": 6, "image_id": 3, "category_id": 3, "bbox": [40, 2, 22, 12]})  # at the top right corner
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H},
                       {"id": 2, "file_name": "b.png", "width": W, "height": H},
                       {"id": 3, "file_name": LONG, "width": W, "height": H}],
            "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": ["head", "hand", "foot", "knee"],
                            "skeleton": SKELETON},
                           {"id": 2, "name": "blob"}, {"id": 3, "name": "thing"}]}
    (src / "instances.json").write_text(json.dumps(coco))
    coco["annotations"][1] = {**anns[1], "category_id": 3}
    coco["annotations"][5] = {**anns[5], "bbox": [41, 2, 22, 12]}  # moved 1 px: its label must stay on the picture
    (root / "fixed").mkdir()
    (root / "fixed" / "instances.json").write_text(json.dumps(coco))
    sem = root / "sem"
    shutil.copytree(SAMPLES / "common_semantic_segmentation_dataset" / "dataset", sem)
    vault = lensvault.init(root / "vault")
    try:
        vault.snapshot("seg", src, version="1.0.0", format="coco", annotations=src / "instances.json")
        vault.fix("seg@1.0.0", root / "fixed" / "instances.json")
        vault.snapshot("sem", sem, version="1.0.0", format="masks")
        relabeled = vault.compare_datasets("seg@1.0.0", "seg@1.0.1").annotations.annotations.relabeled
        assert len(relabeled) == 1
        assert len(vault.compare_datasets("seg@1.0.0", "seg@1.0.1").annotations.annotations.moved) == 1
    finally:
        vault.close()
    server = Server(root / "vault", "--public-read")
    yield {"url": server.url, "root": root / "vault", "areas": {"a.png": int(first.sum()), "b.png": int(second.sum())}}
    log = server.stop()
    assert "Traceback" not in log, log


def _expected(a: dict) -> tuple[int, int]:
    """(points drawn, bones drawn) of an annotation: labelled points; bones between two labelled ones."""
    kp = a.get("keypoints") or []
    v = kp[2::3]
    bones = sum(1 for i, j in a.get("skeleton") or [] if v[i - 1] > 0 and v[j - 1] > 0)  # COCO's 1-based pairs
    return sum(1 for x in v if x > 0), bones


def _check_drawing(svg, image: dict) -> None:
    anns = image["annotations"]
    assert svg.locator(".box").count() == len(anns), image["path"]
    masks = [a for a in anns if a["kind"] in ("rle", "mask")]
    drawn = svg.locator("image.box.mask")
    assert drawn.count() == len(masks), image["path"]
    assert sorted(drawn.nth(i).get_attribute("data-index") for i in range(drawn.count())) == \
        sorted(str(a["index"]) for a in masks)
    points = sum(_expected(a)[0] for a in anns)
    bones = sum(_expected(a)[1] for a in anns)
    assert (svg.locator("g.keypoints circle.keypoint").count(), svg.locator("g.keypoints line.bone").count()) == \
        (points, bones), image["path"]


def _mask_png(client, url: str):
    from PIL import Image

    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", (url, r.text[:300])
    return Image.open(io.BytesIO(r.content)).convert("RGBA")


def test_grid_and_image_page_draw_masks_and_keypoints(browser, drawn, client, tmp_path):  # noqa: F811
    from lensvault.server.svg import class_colour

    server = drawn["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    for ref in ("seg/1.0.0", "sem/1.0.0"):
        name, version = ref.split("/")
        api = client.get(f"{server}/api/v1/datasets/{name}/versions/{version}/images", params={"limit": 48}).json()
        page.goto(f"{server}/datasets/{ref}")
        page.screenshot(path=str(tmp_path / f"grid-{name}.png"), full_page=True)
        assert page.locator("#image-grid .card").count() == len(api["items"])
        for item in api["items"]:
            _check_drawing(page.locator(f'#image-grid .card[data-image-id="{item["image_id"]}"] svg'), item)
            # Every mask's picture is served: the image's size, the mask's pixels in its class's colour.
            for a in (a for a in item["annotations"] if a["kind"] in ("rle", "mask")):
                href = page.locator(f'#image-grid .card[data-image-id="{item["image_id"]}"] '
                                    f'image.mask[data-index="{a["index"]}"]').get_attribute("href")
                png = _mask_png(client, server + href)
                assert png.size == (item["width"], item["height"])
                alpha = png.getchannel("A")
                covered = sum(alpha.histogram()[1:])
                if name == "seg":
                    assert covered == drawn["areas"][item["path"]]
                else:
                    assert covered > 0
                bbox = alpha.getbbox()
                assert bbox is not None and [bbox[0], bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]] == \
                    pytest.approx(a["bbox"], abs=1)
                colour = "#{:02x}{:02x}{:02x}".format(*png.getpixel((bbox[0], bbox[1]))[:3])
                assert colour == class_colour(a["class_id"])

    seg = client.get(f"{server}/api/v1/datasets/seg/versions/1.0.0/images", params={"limit": 48}).json()["items"]
    person = next(i for i in seg if i["path"] == "a.png")
    page.goto(f"{server}/datasets/seg/1.0.0/images/{person['image_id']}")
    page.screenshot(path=str(tmp_path / "image-page.png"), full_page=True)
    svg = page.locator("svg.overlay")
    _check_drawing(svg, person)
    circles = svg.locator("circle.keypoint")
    shown = [(float(circles.nth(i).get_attribute("cx")), float(circles.nth(i).get_attribute("cy")))
             for i in range(circles.count())]
    assert shown == [(10, 10), (30, 20), (50, 40)]
    # Labelled but not visible (v = 1): hollow; visible: filled in the class's colour.
    assert [circles.nth(i).get_attribute("fill") for i in range(3)] == [class_colour(1), "none", class_colour(1)]


def test_diff_overlays_tint_the_changed_mask(browser, drawn, client, tmp_path):  # noqa: F811
    from lensvault.server.svg import CHANGE_COLOURS

    server = drawn["url"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/datasets/seg/diff/1.0.0/1.0.1")
    page.screenshot(path=str(tmp_path / "diff-masks.png"), full_page=True)
    assert page.locator("#count-relabeled").inner_text() == "1" and page.locator("#count-moved").inner_text() == "1"
    section = page.locator('section.changed-image[data-path="a.png"]')
    for side in ("before", "after"):
        changed = section.locator(f"svg.diff-{side} image.mask-relabeled")
        assert changed.count() == 1
        png = _mask_png(client, server + changed.get_attribute("href"))
        box = png.getchannel("A").getbbox()
        assert "#{:02x}{:02x}{:02x}".format(*png.getpixel((box[0], box[1]))[:3]) == CHANGE_COLOURS["relabeled"]
        # What did not change is drawn too, in grey: the keypoints and the box.
        keypoints = section.locator(f"svg.diff-{side} g.keypoints")
        assert keypoints.count() == 1
        assert {keypoints.locator("circle").nth(i).get_attribute("stroke") for i in range(3)} == \
            {CHANGE_COLOURS["unchanged"]}
        assert section.locator(f"svg.diff-{side} rect.box-unchanged").count() == 2  # the person's box, the thing


def test_mask_pictures_are_made_once_and_refused_clearly(drawn, client):
    server, root = drawn["url"], drawn["root"]
    items = client.get(f"{server}/api/v1/datasets/seg/versions/1.0.0/images", params={"limit": 48}).json()["items"]
    a = next(i for i in items if i["path"] == "a.png")
    mask = next(x for x in a["annotations"] if x["kind"] == "rle")
    url = f"{server}/api/v1/datasets/seg/versions/1.0.0/images/{a['image_id']}/masks/{mask['index']}"
    first = client.get(url)
    assert first.status_code == 200 and "immutable" in first.headers["cache-control"]
    made = list((root / ".lensvault" / "cache" / "masks").rglob("*.png"))
    stamps = {p: p.stat().st_mtime_ns for p in made}
    assert client.get(url).content == first.content
    assert {p: p.stat().st_mtime_ns for p in made} == stamps  # read from the cache, not made again
    assert client.get(f"{server}/api/v1/datasets/seg/versions/latest/images/{a['image_id']}/masks/"
                      f"{mask['index']}").headers["cache-control"] == "no-cache"
    box = next(x for x in a["annotations"] if x["kind"] == "bbox")
    for path, status in ((f"/images/{a['image_id']}/masks/{box['index']}", 404),  # a box has no mask
                         (f"/images/{a['image_id']}/masks/99", 404), ("/images/999999/masks/0", 404),
                         (f"/images/{a['image_id']}/masks/{mask['index']}?tint=%3Cscript%3E", 422),
                         (f"/images/{a['image_id']}/masks/x", 422)):
        r = client.get(f"{server}/api/v1/datasets/seg/versions/1.0.0{path}")
        assert r.status_code == status, (path, r.text)
        assert r.json()["what"] and "Traceback" not in r.text


def test_diff_labels_and_captions_stay_on_their_pictures(browser, drawn, tmp_path):  # noqa: F811
    """Each change's name is drawn inside its picture (even a long one on a small picture, even a
    box at the right edge), and a long file name wraps inside its card."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{drawn['url']}/datasets/seg/diff/1.0.0/1.0.1")
    page.screenshot(path=str(tmp_path / "diff-labels.png"), full_page=True)
    marks = page.locator("svg.overlay text.mark")
    assert marks.count() == 4  # relabeled and moved, before and after
    for i in range(marks.count()):
        box = marks.nth(i).evaluate("t => { const b = t.getBBox(), v = t.ownerSVGElement.viewBox.baseVal;"
                                    " return [b.x, b.y, b.x + b.width, b.y + b.height, v.width, v.height]; }")
        x0, y0, x1, y1, w, h = box
        assert x0 >= -0.5 and y0 >= -0.5 and x1 <= w + 0.5 and y1 <= h + 0.5, (marks.nth(i).text_content(), box)
    section = page.locator(f'section.changed-image[data-path="{LONG}"]')
    outer, title = section.bounding_box(), section.locator("h3").bounding_box()
    assert title["x"] + title["width"] <= outer["x"] + outer["width"] + 0.5, (title, outer)
