"""The web UI in a real headless Chromium (Debian's, driven by Playwright; never a downloaded
browser): log in, a version's boxes against its annotations, the moved box of a diff, runs
compared, promote and roll back, and what a read-only token sees. Screenshots of each page go
to the test's temp folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.server.conftest import bearer

CHROMIUM = os.environ.get("LENSVAULT_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM} in CI: `make test` installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium as root)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                              args=FLAGS)
        yield b
        b.close()


def _login(browser, server: str, token: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/")
    return page


def _shot(page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)


def test_version_page_draws_every_annotation(browser, server, tokens, client, tmp_path):
    page = _login(browser, server, tokens.reader)
    assert page.locator("#who").inner_text().startswith("viewer@example.com")
    _shot(page, tmp_path, "home")
    assert page.locator("#datasets a", has_text="shapes").count() >= 1
    assert page.locator("#models .pill.alias", has_text="production").count() == 1

    page.goto(f"{server}/datasets/shapes/1.0.1")
    _shot(page, tmp_path, "version")
    api = client.get(f"{server}/api/v1/datasets/shapes/versions/1.0.1/images", params={"limit": 48},
                     headers=bearer(tokens.reader)).json()
    cards = page.locator("#image-grid .card")
    assert cards.count() == len(api["items"])
    for item in api["items"]:
        card = page.locator(f'#image-grid .card[data-image-id="{item["image_id"]}"]')
        drawn = card.locator("svg .box")
        assert drawn.count() == len(item["annotations"]), item["path"]
        classes = sorted(drawn.nth(i).get_attribute("data-class") for i in range(drawn.count()))
        assert classes == sorted(a["class"] for a in item["annotations"])
    first = api["items"][0]["annotations"][0]
    rect = page.locator(f'#image-grid .card[data-image-id="{api["items"][0]["image_id"]}"] rect.box').first
    assert [float(rect.get_attribute(k)) for k in ("x", "y", "width", "height")] == pytest.approx(first["bbox"], abs=0.01)
    # Thumbnails load (served by the API, under the same session cookie).
    assert page.evaluate("() => [...document.querySelectorAll('#image-grid svg image')].length") == len(api["items"])

    page.select_option("select[name=class_name]", "circle")
    page.click(".filters button")
    page.wait_for_url("**class_name=circle**")
    _shot(page, tmp_path, "version-circles")
    for i in range(page.locator("#image-grid .card").count()):
        assert page.locator("#image-grid .card").nth(i).locator('svg .box[data-class="circle"]').count() >= 1


def test_diff_page_shows_the_moved_box(browser, server, tokens, moved, client, tmp_path):
    page = _login(browser, server, tokens.reader)
    page.goto(f"{server}/datasets/shapes/diff/1.0.1/1.0.2")
    _shot(page, tmp_path, "diff")
    assert page.locator("#count-moved").inner_text() == "1"
    section = page.locator(f'section.changed-image[data-path="{moved["image"]}"]')
    assert section.count() == 1
    after = section.locator("svg.diff-after rect.box-moved:not(.ghost)")
    was = section.locator("svg.diff-after rect.box-moved.ghost")
    before = section.locator("svg.diff-before rect.box-moved")
    assert (after.count(), was.count(), before.count()) == (1, 1, 1)
    assert float(after.get_attribute("x")) == pytest.approx(moved["bbox"][0])
    assert float(before.get_attribute("x")) == pytest.approx(moved["bbox"][0] - 3)
    assert float(was.get_attribute("x")) == float(before.get_attribute("x"))
    # The moved box has its own colour, unlike the boxes nothing touched.
    assert after.get_attribute("stroke") != section.locator("rect.box-unchanged").first.get_attribute("stroke")
    # The label fix of 1.0.0 → 1.0.1 shows relabeled boxes the same way.
    page.goto(f"{server}/datasets/shapes/diff/1.0.0/1.0.1")
    changes = client.get(f"{server}/api/v1/datasets/shapes/diff/1.0.0/1.0.1",
                         headers=bearer(tokens.reader)).json()["annotations"]
    assert page.locator("#count-relabeled").inner_text() == str(changes["counts"]["relabeled"])
    shown = {page.locator("section.changed-image").nth(i).get_attribute("data-path")
             for i in range(page.locator("section.changed-image").count())}
    expected = sum(1 for c in changes["relabeled"] if c["image"] in shown)
    assert expected > 0
    assert page.locator("svg.diff-after rect.box-relabeled").count() == expected
    assert page.locator("svg.diff-before rect.box-relabeled").count() == expected
    _shot(page, tmp_path, "diff-relabeled")


def test_runs_compare_draws_curves(browser, server, tokens, runs, client, tmp_path):
    page = _login(browser, server, tokens.reader)
    page.goto(f"{server}/runs")
    for run_id in runs:
        page.check(f'input[name=run][value="{run_id}"]')
    page.click("#compare-form button[type=submit]")
    page.wait_for_url("**/runs/compare?**")
    _shot(page, tmp_path, "runs-compare")
    assert page.locator("#compared-runs tr").count() == 1 + len(runs)
    curves = page.locator("#curves svg.chart")
    assert curves.count() >= 1
    assert curves.first.locator("polyline.series").count() == len(runs)
    assert page.locator("table.config-diff tr.differs").count() >= 1  # C-01 and C-02 differ in model.depth
    # Per-class bars: one bar per run and class for each per-class metric the runs logged.
    details = [client.get(f"{server}/api/v1/runs/{r}", headers=bearer(tokens.reader)).json() for r in runs]
    per_class = {(cls, key): [d["metrics_per_class"].get(cls, {}).get(key) for d in details]
                 for d in details for cls, metrics in d["metrics_per_class"].items() for key in metrics}
    drawn = page.locator("#breakdowns svg.grouped-bars rect.bar")
    expected = sum(1 for values in per_class.values() for v in values if v is not None)
    per_slice = sum(1 for d in details for metrics in d["metrics_per_slice"].values() for _ in metrics)
    assert drawn.count() == expected + per_slice


def test_a_writer_promotes_and_rolls_back(browser, server, tokens, client, tmp_path):
    def production():
        return client.get(f"{server}/api/v1/models/det@production", headers=bearer(tokens.reader)).json()["version"]

    before = production()
    target = "1.0.0" if before != "1.0.0" else "1.1.0"
    page = _login(browser, server, tokens.writer)
    page.goto(f"{server}/models/det")
    _shot(page, tmp_path, "model-writer")
    page.click(f'button.promote-button[data-alias="production"][data-version="{target}"]')
    page.wait_for_url(f"{server}/models/det")
    assert page.locator('a.alias-target[data-alias="production"]').inner_text() == target
    assert production() == target
    assert "writer@example.com" in page.locator("#history li").first.inner_text()
    page.fill('form.rollback input[name=reason]', "browser test")
    page.click('button.rollback-button[data-alias="production"]')
    page.wait_for_url(f"{server}/models/det")
    _shot(page, tmp_path, "model-rolled-back")
    assert page.locator('a.alias-target[data-alias="production"]').inner_text() == before
    assert production() == before
    top = page.locator("#history li").first.inner_text()
    assert "rollback" in top and "writer@example.com" in top and "browser test" in top


def test_a_reader_sees_no_promote_button_and_gets_403(browser, server, tokens, tmp_path):
    page = _login(browser, server, tokens.reader)
    page.goto(f"{server}/models/det")
    _shot(page, tmp_path, "model-reader")
    assert page.locator("button.promote-button").count() == 0
    assert page.locator("button.rollback-button").count() == 0
    assert page.locator("#read-only").is_visible()
    status = page.evaluate("""async ([url, token]) => (await fetch(url, {method: 'POST',
        headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'},
        body: JSON.stringify({version: '1.0.0'})})).status""",
                           [f"{server}/api/v1/models/det/aliases/production/promote", tokens.reader])
    assert status == 403
    # The form posted by hand (what a forged page would do) is refused too.
    response = page.request.post(f"{server}/models/det/promote", form={"version": "1.0.0", "alias": "production"})
    assert response.status == 403


def test_lineage_graph_links_every_node(browser, server, tokens, tmp_path):
    page = _login(browser, server, tokens.reader)
    page.goto(f"{server}/lineage/det@production")
    _shot(page, tmp_path, "lineage")
    nodes = page.locator("svg.lineage g.node")
    assert nodes.count() >= 4
    types = {nodes.nth(i).get_attribute("data-type") for i in range(nodes.count())}
    assert {"model", "run", "dataset", "config"} <= types
    page.locator('svg.lineage a:has(g.node[data-type="dataset"])').first.click()
    page.wait_for_url("**/datasets/shapes/**")
    assert page.locator("#image-grid .card").count() > 0
