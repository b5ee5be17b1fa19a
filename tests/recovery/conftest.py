"""A real project for catalog-recovery tests, built once per catalog backend and copied per test.

The project has what a catalog indexes: two datasets (a vision one with a label-fix version, a
plain one with two versions), two configs, three real `lensvault run`s of a tiny script in a
git repository (one failed, which gives its reserved model version back) and a standalone run
killed with SIGKILL (ended as crashed), evaluations of a run,
of a model and ad hoc, two model versions, and alias moves (promote, promote, rollback, promote).

Each test gets its own copy (the folder, and for PostgreSQL a database cloned from the
original), so it may damage the catalog as it likes.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

GIT_ENV = {"GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}
BIN = str(Path(sys.executable).parent)
LV = [sys.executable, "-m", "lensvault.cli.main"]

TRAIN = '''\
import json, os
import lensvault
lensvault.log_params({"lr": 0.01, "model": {"depth": 3}})
for step in range(4):
    lensvault.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
lensvault.log_metrics({"AP50": 0.61}, class_name="circle")
lensvault.log_metrics({"AP50": 0.42}, slice="time_of_day=night")
out = os.environ["LENSVAULT_OUTPUT_DIR"]
with open(os.path.join(out, "model.npz"), "wb") as f:
    f.write(os.environ["LENSVAULT_DATASET"].encode() * 40)
lensvault.log_artifact(os.path.join(out, "model.npz"))
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"AP50": 0.7, "per_class": {"square": {"AP50": 0.5}}}, f)
'''

FAIL = "import sys\nprint('giving up')\nsys.exit(3)\n"

# Every listing a user reads the catalog through (each with --json).
LISTINGS = [
    ("dataset", "list"), ("dataset", "log", "shapes"), ("dataset", "log", "plain"),
    ("dataset", "show", "shapes@1.0.1"), ("config", "list"), ("config", "show", "C-01"),
    ("runs", "list"), ("runs", "show", "{run1}"), ("runs", "show", "{failed}"), ("runs", "show", "{run2}"),
    ("runs", "show", "{crashed}"),
    ("runs", "compare", "{run1}", "{run2}"), ("model", "list"), ("model", "show", "detector@production"),
    ("model", "show", "detector@staging"), ("model", "history", "detector"), ("lineage", "detector@production"),
    ("lineage", "shapes@1.0.0", "--down"), ("why", "detector@1.0.0", "detector@1.1.0"), ("evals",), ("evals", "--ad-hoc"), ("events",),
    ("token", "list"),
]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LENSVAULT_") or k == "LENSVAULT_TEST_PG_URL"}
    env.update(GIT_ENV)
    env["PATH"] = os.pathsep.join([BIN, env.get("PATH", "")])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=_env(), check=True, capture_output=True, text=True).stdout


@dataclass
class Project:
    root: Path
    catalog_url: str | None
    ids: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)  # the tokens made (shown once; the catalog has their hashes)

    @property
    def catalog_file(self) -> Path:
        return self.root / ".lensvault" / "catalog.db"

    def open(self):
        import lensvault

        return lensvault.open(self.root)

    def lv(self, *args, env=None, timeout=180) -> subprocess.CompletedProcess:
        """The real CLI in a subprocess, as a user types it."""
        return subprocess.run([*LV, "--vault", str(self.root), *map(str, args)], cwd=self.root,
                              env=_env(**(env or {})), capture_output=True, text=True, timeout=timeout)

    def cli_json(self, *args):
        """``lensvault ARGS --json`` in this process (the same click command; no interpreter start)."""
        from click.testing import CliRunner

        from lensvault.cli.main import cli

        args = [a.format(**self.ids) for a in args]
        res = CliRunner().invoke(cli, ["--vault", str(self.root), *args, "--json"], catch_exceptions=False)
        assert res.exit_code == 0, (args, res.output)
        return json.loads(res.output)

    def listings(self) -> dict:
        return {" ".join(cmd): self.cli_json(*cmd) for cmd in LISTINGS}

    def journal(self) -> list[str]:
        import tomllib

        cid = tomllib.loads((self.root / ".lensvault" / "config.toml").read_text())["catalog"]["id"]
        d = self.root / ".lensvault" / "objects" / "ledgers" / cid / "journal"
        return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())

    def manifests(self) -> dict:
        d = self.root / "data" / "manifests"
        return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.json"))}


def _build(root: Path, catalog_url: str | None) -> Project:
    import lensvault
    from lensvault.demo.shapes import generate_shapes
    from lensvault.runs.datadir import coco_ground_truth

    root.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=root)
    generate_shapes(root / "raw", n_images=12, seed=3)
    (root / "labels-fixed").mkdir()
    shutil.move(str(root / "raw" / "corrections" / "instances.json"), root / "labels-fixed" / "instances.json")
    (root / "raw" / "corrections").rmdir()
    plain = root / "plain-src"
    plain.mkdir()
    for i in range(5):
        (plain / f"f{i}.txt").write_text(f"file {i}\n")
    (root / ".gitignore").write_text("/raw/\n/plain-src/\n/labels-fixed/\n/.lensvault/\n/runs/\n/preds/\n__pycache__/\n")
    (root / "configs").mkdir()
    (root / "configs" / "base.yaml").write_text("lr: 0.01\nepochs: 2\nseed: 2024\nmodel:\n  depth: 3\n")
    (root / "configs" / "hot.yaml").write_text("lr: 0.02\nepochs: 2\nseed: 2024\nmodel:\n  depth: 3\n")
    (root / "train.py").write_text(TRAIN)
    (root / "fail.py").write_text(FAIL)
    p = Project(root, catalog_url)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "code", cwd=root)

    vault = lensvault.init(root, catalog=catalog_url)
    try:
        vault.snapshot("shapes", root / "raw", version="1.0.0", format="coco", split="70/20/10", seed=42,
                       notes="first labelled batch")
        vault.snapshot("plain", plain, version="1.0.0")
        (plain / "f5.txt").write_text("file 5\n")
        vault.snapshot("plain", plain, version="1.1.0", notes="one more")
        vault.add_config(root / "configs" / "base.yaml", "C-01")
        vault.add_config(root / "configs" / "hot.yaml", "C-02")
        git("add", "-A", cwd=root)
        git("commit", "-qm", "data and configs", cwd=root)

        outputs = {}

        def run(command, **kw):
            sink = io.BytesIO()
            res = vault.run([sys.executable, *command[1:]], cwd=root, stream=sink, **kw)
            outputs[res.run_id] = sink.getvalue().decode(errors="replace")
            return res

        preds = root / "preds"
        preds.mkdir()

        def predictions(ref: str) -> Path:
            gt = coco_ground_truth(vault.dataset(ref), "test")
            out = preds / f"{ref}.json"
            out.write_text(json.dumps([{"image_id": a["image_id"], "category_id": a["category_id"],
                                        "bbox": a["bbox"], "score": 0.9} for a in gt["annotations"]]))
            return out

        r1 = run(["python", "train.py"], dataset="shapes@1.0.0", config="C-01", model="detector", version="1.0.0")
        assert r1.status == "succeeded", outputs[r1.run_id]
        failed = run(["python", "fail.py"], dataset="shapes@1.0.0", config="C-01", model="detector", version="9.0.0")
        assert failed.status == "failed"
        vault.evaluate(run=r1.run_id, dataset="shapes@1.0.0", split="test", predictions=predictions("shapes@1.0.0"))
        vault.register_model("detector", run=r1.run_id, weights=root / "runs" / r1.run_id / "model.npz",
                             version="1.0.0", thresholds=["score=0.5"])
        vault.promote("detector@1.0.0", "production", reason="first model", new=True)
        vault.fix("shapes@1.0.0", root / "labels-fixed" / "instances.json", notes="label fixes")
        git("add", "-A", cwd=root)
        git("commit", "-qm", "label fixes", cwd=root)
        r2 = run(["python", "train.py"], dataset="shapes@1.0.1", config="C-02")
        assert r2.status == "succeeded", outputs[r2.run_id]
        vault.evaluate(model="detector@1.0.0", dataset="shapes@1.0.1", split="test",
                       predictions=predictions("shapes@1.0.1"))
        vault.evaluate(run=r2.run_id, dataset="shapes@1.0.1", split="test", predictions=predictions("shapes@1.0.1"))
        vault.evaluate(dataset="shapes@1.0.1", split="test", predictions=predictions("shapes@1.0.1"))  # ad hoc
        vault.register_model("detector", run=r2.run_id, weights=root / "runs" / r2.run_id / "model.npz",
                             bump="auto", thresholds=["score=0.5"], caveats=["daytime only"])
        crashed = _crashed_run(root)  # killed with SIGKILL; the next runs command ends it as crashed
        assert {r["run_id"]: r["status"] for r in vault.runs()}[crashed] == "crashed"
        vault.promote("detector@1.1.0", "production", reason="better data")
        vault.rollback("detector", "production", reason="night regression")
        vault.promote("detector@1.1.0", "staging", new=True)
        # API tokens of `lensvault serve`: one in use, one revoked (rebuild must keep both states).
        live = vault.create_token("ci", role="write", user="ci@example.com").token
        gone = vault.create_token("old-laptop", role="admin").token
        vault.revoke_token("old-laptop")
        p.ids.update(run1=r1.run_id, run2=r2.run_id, failed=failed.run_id, crashed=crashed)
        p.secrets.update(live=live, revoked=gone)
    finally:
        vault.close()
    return p


CRASH = """\
import os, lensvault
run = lensvault.start_run(dataset="shapes@1.0.1", config="C-01", model="detector", version="5.0.0")
lensvault.log_metrics({"loss": 0.9}, step=0)
run.flush()
print(run.run_id, flush=True)
os.kill(os.getpid(), 9)
"""


def _crashed_run(root: Path) -> str:
    r = subprocess.run([sys.executable, "-c", CRASH], cwd=root, env=_env(LENSVAULT_DIR=str(root)),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr
    return r.stdout.split()[0]


def _pg_admin() -> str | None:
    return os.environ.get("LENSVAULT_TEST_PG_URL")


def _pg_exec(sql: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(_pg_admin(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _db_url(name: str) -> str:
    return _pg_admin().rsplit("/", 1)[0] + "/" + name


BACKENDS = ["sqlite", "postgresql"]


def pytest_configure(config):
    config.addinivalue_line("markers", "by_backend: the test pairs each catalog backend with its own cases")


def pytest_generate_tests(metafunc):
    """Every test runs on both backends, unless it pairs backends with cases itself
    (``@by_backend``)."""
    if "built" in metafunc.fixturenames and metafunc.definition.get_closest_marker("by_backend") is None:
        metafunc.parametrize("built", BACKENDS, indirect=True, scope="session")


def by_backend(argname: str, cases: dict[str, list]):
    """Parametrize ``argname`` with each backend's own cases (no skipped pairs)."""
    pairs = [(backend, case) for backend in BACKENDS for case in cases.get(backend, [])]

    def mark(fn):
        fn = pytest.mark.parametrize(f"built,{argname}", pairs, indirect=["built"], scope="session")(fn)
        return pytest.mark.by_backend(fn)

    return mark


@pytest.fixture(scope="session")
def built(request, tmp_path_factory):
    """The original project (never damaged), per backend."""
    if request.param == "sqlite":
        yield _build(tmp_path_factory.mktemp("recovery") / "repo", None)
        return
    if not _pg_admin():
        if os.environ.get("CI"):
            pytest.fail("LENSVAULT_TEST_PG_URL is not set in CI: run the suite through `make test`")
        pytest.skip("no PostgreSQL server (run through `make test` to get one)")
    name = f"lv_rec_{uuid.uuid4().hex[:10]}"
    _pg_exec(f"CREATE DATABASE {name}")
    try:
        yield _build(tmp_path_factory.mktemp("recovery-pg") / "repo", _db_url(name))
    finally:
        _pg_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def project(built, tmp_path):
    """A private copy of the built project: the folder, and a clone of its PostgreSQL database."""
    root = tmp_path / "repo"
    shutil.copytree(built.root, root, symlinks=True)
    p = Project(root, built.catalog_url, dict(built.ids), dict(built.secrets))
    if built.catalog_url is None:
        yield p
        return
    name = f"lv_rec_{uuid.uuid4().hex[:10]}"
    _pg_exec(f"CREATE DATABASE {name} TEMPLATE {built.catalog_url.rsplit('/', 1)[1]}")
    cfg = root / ".lensvault" / "config.toml"
    cfg.write_text(cfg.read_text().replace(built.catalog_url, _db_url(name)))
    p.catalog_url = _db_url(name)
    try:
        yield p
    finally:
        _pg_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_exec():
    return _pg_exec
