"""``dataset diff A B --html``: the diff page as one self-contained file."""

from __future__ import annotations

import re

from tests.cli.conftest import lv


def test_the_html_report_draws_the_changes_with_embedded_images(world, moved, tmp_path):
    out = tmp_path / "diff.html"
    r = lv("dataset", "diff", "shapes@1.0.1", "shapes@1.0.2", "--html", out, cwd=world)
    assert r.returncode == 0, r.stderr
    assert f"HTML report: {out}" in r.stdout
    html = out.read_text()
    assert html.count('class="box box-moved"') == 2  # before and after; plus where it was, dashed:
    assert html.count('class="box box-moved ghost"') == 1
    assert f'data-path="{moved["image"]}"' in html
    images = re.findall(r'<image href="([^"]*)"', html)
    assert len(images) == 2 and all(src.startswith("data:image/jpeg;base64,") for src in images)
    assert 'href="/' not in html and 'src="/' not in html  # nothing to fetch from a server
    assert "log out" not in html and "1 box changed in 1 image (1 moved)" in html
    # Made to be shared: the mode of any new file of the user's (the test's umask), not mkstemp's 0600.
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_is_the_diff_with_or_without_a_report(world, moved, tmp_path):
    import json

    plain = lv("dataset", "diff", "shapes@1.0.0", "shapes@1.0.1", "--json", cwd=world)
    with_report = lv("dataset", "diff", "shapes@1.0.0", "shapes@1.0.1", "--json", "--html", tmp_path / "r.html",
                     cwd=world)
    assert json.loads(plain.stdout) == json.loads(with_report.stdout)
    assert (tmp_path / "r.html").read_text().count("box-relabeled") >= 1


def test_a_file_diff_report_and_a_refused_one(world, tmp_path):
    out = tmp_path / "files.html"
    assert lv("dataset", "diff", "files@1.0.0", "files@1.1.0", "--html", out, cwd=world).returncode == 0
    assert "renamed-020.txt" in out.read_text()
    missing = tmp_path / "none.html"
    r = lv("dataset", "diff", "files@1.0.0", "files@9.9.9", "--html", missing, cwd=world)
    assert r.returncode == 3 and not missing.exists() and list(tmp_path.glob(".none.html*")) == []
