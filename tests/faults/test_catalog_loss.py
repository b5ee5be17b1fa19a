"""The catalog lost at a seeded random point of a realistic history, rebuilt, and the history goes on.

tests/recovery/ damages the catalog of one finished project in every known way and compares
every listing after `catalog rebuild`. Here the moment varies: a seed picks how far the
history got (snapshots, a config, a run, an evaluation, a registered model, alias moves, a
label fix, a second run and model, a rollback) and how the catalog is lost (deleted,
emptied, truncated, overwritten, tables dropped, on SQLite; the database dropped, the schema
emptied, a table dropped or the identity truncated, on PostgreSQL). Then:

- every command refuses the lost catalog (exit 10, the fix named), it is never an empty one;
- `catalog rebuild` (with `--force` for a damaged one) restores exactly what was listed:
  datasets, versions, configs, runs, evaluations, models, aliases and their history, events;
- the rest of the history then runs on the rebuilt catalog (new ids and versions follow the
  restored ones: no id handed out twice, no sequence behind its table), and a second loss at
  the end is rebuilt to the same listings too; `verify` is clean throughout.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sys
import uuid
from pathlib import Path

import pytest

import lensvault
from tests.recovery.compare import assert_same, without_rebuild_events
from tests.recovery.conftest import TRAIN, _env, _pg_exec, git
from tests.recovery.damage import PG_DAMAGE, SQLITE_DAMAGE, damage

pytestmark = pytest.mark.faults

TRIALS = 4  # per backend (each loses its catalog twice: at the seed's point, and at the end)

LISTINGS = [("dataset", "list"), ("dataset", "log", "shapes"), ("dataset", "log", "plain"), ("config", "list"),
            ("runs", "list"), ("model", "list"), ("model", "history", "det"), ("evals",), ("events",)]


class History:
    """A project whose history is played step by step, in this process, on a real vault."""

    def __init__(self, root: Path, catalog_url: str | None):
        self.root, self.catalog_url = root, catalog_url
        self.runs: list[str] = []
        self.vault = None

    @property
    def catalog_file(self) -> Path:  # (what tests/recovery/damage.py damages on SQLite)
        return self.root / ".lensvault" / "catalog.db"

    def setup(self) -> None:
        from lensvault.demo.shapes import generate_shapes

        root = self.root
        root.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=root)
        generate_shapes(root / "raw", n_images=12, seed=3)
        (root / "labels-fixed").mkdir()
        shutil.move(str(root / "raw" / "corrections" / "instances.json"), root / "labels-fixed" / "instances.json")
        (root / "raw" / "corrections").rmdir()
        (root / "plain-src").mkdir()
        for i in range(5):
            (root / "plain-src" / f"f{i}.txt").write_text(f"file {i}\n")
        (root / ".gitignore").write_text("/raw/\n/plain-src/\n/labels-fixed/\n/.lensvault/\n/runs/\n/preds/\n")
        (root / "configs").mkdir()
        (root / "configs" / "base.yaml").write_text("lr: 0.01\nepochs: 2\nseed: 2024\nmodel:\n  depth: 3\n")
        (root / "train.py").write_text(TRAIN)
        git("add", "-A", cwd=root)
        git("commit", "-qm", "code", cwd=root)
        self.vault = lensvault.init(root, catalog=self.catalog_url)

    def reopen(self) -> None:
        if self.vault is not None:
            self.vault.close()
        self.vault = lensvault.open(self.root)

    def commit(self, msg: str) -> None:
        git("add", "-A", cwd=self.root)
        git("commit", "-qm", msg, "--allow-empty", cwd=self.root)

    # -- the steps, in order
    def snapshots(self):
        self.vault.snapshot("shapes", self.root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42)
        self.vault.snapshot("plain", self.root / "plain-src", version="1.0.0")
        self.commit("data")

    def config(self):
        self.vault.add_config(self.root / "configs" / "base.yaml", "C-01")
        self.commit("config")

    def run(self, dataset="shapes@1.0.0", version="1.0.0"):
        res = self.vault.run([sys.executable, "train.py"], dataset=dataset, config="C-01", model="det",
                             version=version, cwd=self.root, stream=io.BytesIO())
        assert res.status == "succeeded", res
        self.runs.append(res.run_id)

    def evaluate(self, dataset="shapes@1.0.0"):
        from lensvault.runs.datadir import coco_ground_truth

        gt = coco_ground_truth(self.vault.dataset(dataset), "test")
        preds = self.root / "preds" / f"{dataset}.json"
        preds.parent.mkdir(exist_ok=True)
        preds.write_text(json.dumps([{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                                      "score": 0.9} for a in gt["annotations"]]))
        self.vault.evaluate(run=self.runs[-1], dataset=dataset, split="test", predictions=preds)

    def register(self, version="1.0.0"):
        run = self.runs[-1]
        self.vault.register_model("det", run=run, weights=self.root / "runs" / run / "model.npz", version=version)

    def promote(self):
        self.vault.promote("det@1.0.0", "production", reason="first", new=True)

    def fix(self):
        self.vault.fix("shapes@1.0.0", self.root / "labels-fixed" / "instances.json")
        (self.root / "plain-src" / "f5.txt").write_text("file 5\n")
        self.vault.snapshot("plain", self.root / "plain-src", bump="auto")
        self.commit("fix")

    def second_model(self):
        self.run("shapes@1.0.1", "1.1.0")
        self.evaluate("shapes@1.0.1")
        self.register("1.1.0")
        self.vault.promote("det@1.1.0", "production", reason="better data")
        self.vault.rollback("det", "production", reason="regression")

    STEPS = ("snapshots", "config", "run", "evaluate", "register", "promote", "fix", "second_model")

    def listings(self) -> dict:
        from click.testing import CliRunner

        from lensvault.cli.main import cli

        out = {}
        for cmd in LISTINGS:
            res = CliRunner().invoke(cli, ["--vault", str(self.root), *cmd, "--json"])
            # (a model with no versions yet is "not found": the same answer before and after)
            out[" ".join(cmd)] = json.loads(res.output) if res.exit_code == 0 else type(res.exception).__name__
        return out


def _lv(root: Path, *args):
    import subprocess

    return subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(root), *map(str, args)],
                          cwd=root, env=_env(), capture_output=True, text=True, timeout=300)


def _lose_and_rebuild(h: History, how: str) -> None:
    """Lose the catalog ``how``, check it is refused, rebuild it, check the listings came back."""
    before = h.listings()
    h.vault.close()
    state = damage(h, how, _pg_exec)
    r = _lv(h.root, "dataset", "list")
    assert r.returncode == 10 and "catalog rebuild" in r.stderr and "Traceback" not in r.stderr, r.stderr
    if how == "database_dropped":
        _pg_exec(f"CREATE DATABASE {h.catalog_url.rsplit('/', 1)[1]}")  # the error's fix, first step
    r = _lv(h.root, "catalog", "rebuild", "--json", *(["--force"] if state == "damaged" else []))
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["unproven"] == []
    h.reopen()
    assert_same(without_rebuild_events(h.listings()), without_rebuild_events(before))
    assert h.vault.verify().ok


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "sqlite":
        return None
    if not os.environ.get("LENSVAULT_TEST_PG_URL"):
        if os.environ.get("CI"):
            pytest.fail("LENSVAULT_TEST_PG_URL is not set in CI: run the suite through `make test`")
        pytest.skip("no PostgreSQL server (run through `make test` to get one)")
    return "postgresql"


def test_catalog_lost_at_random_points_then_rebuilt_and_the_history_goes_on(backend, tmp_path):
    trials = int(os.environ.get("LENSVAULT_FAULT_TRIALS", TRIALS))
    base = int(os.environ.get("LENSVAULT_FAULT_SEED", 1500))
    kinds = SQLITE_DAMAGE if backend is None else PG_DAMAGE
    counts = {"trials": 0, "catalogs lost": 0}
    for i in range(trials):
        rng = random.Random(base + i)
        cut = rng.randrange(1, len(History.STEPS))  # at least one step before, one after
        how, how_at_end = rng.choice(kinds), rng.choice(kinds)
        url = None
        if backend == "postgresql":
            name = f"lv_loss_{uuid.uuid4().hex[:10]}"
            _pg_exec(f"CREATE DATABASE {name}")
            url = os.environ["LENSVAULT_TEST_PG_URL"].rsplit("/", 1)[0] + "/" + name
        h = History(tmp_path / f"trial-{i}", url)
        try:
            h.setup()
            for step in History.STEPS[:cut]:
                getattr(h, step)()
            _lose_and_rebuild(h, how)
            for step in History.STEPS[cut:]:  # the history goes on, on the rebuilt catalog
                getattr(h, step)()
            final = h.listings()
            assert [m["version"] for m in final["model list"]] == ["1.0.0", "1.1.0"]
            assert len(final["runs list"]) == 2 and len(final["evals"]) == 2
            assert h.vault.model("det@production").version == "1.0.0"  # after the rollback
            _lose_and_rebuild(h, how_at_end)
        except AssertionError as e:
            raise AssertionError(f"seed {base + i}: lost ({how}) after {History.STEPS[:cut]}, then ({how_at_end}) "
                                 f"at the end: {e}") from e
        finally:
            if h.vault is not None:
                h.vault.close()
            if url is not None:
                _pg_exec(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")
        counts["trials"] += 1
        counts["catalogs lost"] += 2
        shutil.rmtree(h.root)  # (a trial that held is not kept)
    print(f"faults: catalog loss ({backend or 'sqlite'}): {counts['trials']} trials, "
          f"{counts['catalogs lost']} catalogs lost and rebuilt, 0 losses")
