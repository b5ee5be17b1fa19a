"""A version without splits can be trained on: recorded membership — or its absence, the whole
version — is what pins the data. The split seed is required only for splits LensVault assigned
by hashing; splits from the source's folders or split files pass as before."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

BCCD = Path(__file__).resolve().parents[1] / "data" / "bccd" / "BCCD"

WHOLE_SCRIPT = '''\
import json, os
data = os.environ["LENSVAULT_DATA_DIR"]
coco = json.load(open(os.path.join(data, "annotations", "instances.json")))
splits = json.load(open(os.path.join(data, "splits.json")))
print("images", len(coco["images"]), "splits", sorted(splits), "split seed", os.environ.get("LENSVAULT_SPLIT_SEED"))
out = os.environ["LENSVAULT_OUTPUT_DIR"]
open(os.path.join(out, "model.npz"), "wb").write(b"w")
'''


def checks(report) -> dict:
    return {c.check: c for c in report.checks}


def test_versions_without_splits_pass_the_preflight(project):
    v, root = project.vault, project.root
    whole = v.snapshot("shapes", root / "raw", format="coco", split="none", bump="auto")
    (root / "plain").mkdir()
    (root / "plain" / "a.txt").write_text("a")
    v.snapshot("plain", root / "plain", version="1.0.0")
    unsplit = v.snapshot("unsplit", root / "raw", format="coco", version="1.0.0")  # the source has no splits
    assert unsplit.manifest().splits["method"] == "none"
    for ref in (whole.ref, "plain@1.0.0", "unsplit@1.0.0"):
        r = v.preflight(dataset=ref, config="C-01", allow_dirty=True)
        c = checks(r)["split_seed"]
        assert c.ok and "no splits" in c.what and "whole version" in c.what, (ref, c)
        assert r.seeds["split"] is None and r.ok, (ref, r.failures)


def test_splits_from_the_source_pass_the_preflight(project):
    src = project.root / "bccd"
    shutil.copytree(BCCD, src)
    ds = project.vault.snapshot("bccd", src, format="voc", version="1.0.0")
    assert ds.manifest().splits["method"] == "source"
    r = project.vault.preflight(dataset="bccd@1.0.0", config="C-01", allow_dirty=True)
    assert r.ok and checks(r)["split_seed"].ok and "source's own" in checks(r)["split_seed"].what


def test_a_run_on_a_version_without_splits(sqlite_project):
    p = sqlite_project
    p.vault.snapshot("shapes", p.root / "raw", format="coco", split="none", version="1.1.0")
    (p.root / "whole.py").write_text(WHOLE_SCRIPT)
    p.commit_all("whole")
    r = p.lensvault("run", "--dataset", "shapes@1.1.0", "--config", "C-01", "--", sys.executable, "whole.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "images 12 splits ['unassigned'] split seed None" in r.stdout
    run_id = next(x for x in r.stderr.splitlines() if x.startswith("Run ")).split()[1]
    s = json.loads(p.lensvault("runs", "show", run_id, "--json").stdout)
    assert s["status"] == "succeeded" and s["dataset"] == "shapes@1.1.0"
    assert s["seeds"]["train"] == 2024 and s["seeds"].get("split") is None
