#!/usr/bin/env python3
"""``lensvault serve`` under load: the first screen of a big version, concurrent mixed reads, and
the same run reads against ``mlflow server`` (SQLite) at the same data size.

    .venv/bin/python benchmarks/bench_server.py                     # 100,000 images, 1,000 runs, 50 clients, 30 s
    .venv/bin/python benchmarks/bench_server.py --workers 2 --mlflow /tmp/mlflowvenv/bin/python
    .venv/bin/python benchmarks/bench_server.py --load wrk          # the clients from wrk (apt-get install wrk)
    .venv/bin/python benchmarks/bench_server.py --images 20000 --runs 200 --models 20 --seconds 10   # quick

Builds (once per size, kept in WORKDIR) a vault: one COCO version of N small generated images
(three boxes each), a committed config, R runs with 3 metrics x S steps each — M of them through
``lensvault.start_run`` and registered as model versions (10 names, the newest of each promoted to
``production``), the others written straight into the catalog. With ``--mlflow PYTHON`` (a Python with mlflow installed) the same R runs and
metric points go into an MLflow SQLite store through ``MlflowClient.log_batch``.

Then it starts ``lensvault serve --public-read [--workers W]`` as a real process and measures

- the dataset version page (HTML, first screen: counts, charts, 48 images with their boxes):
  the first request after start and the median of 20 more (another filter each time);
- C concurrent clients (asyncio + httpx) for T seconds on mixed reads: version JSON, a random
  page of 48 images with boxes (JSON), the image page (HTML), a cached thumbnail, one run's
  metric points, the run list, a model's lineage, the last events. The clients run in their
  own process(es) (``--load-procs``), not in the server's; each kind is read once before the
  clock starts. Throughput, p50/p99 per kind, errors (any status but 200);
- the CPU time the server's processes used per request (on a machine shared with other jobs,
  latency is mostly the wait for a core; CPU per request is the server's own cost);
- with ``--mlflow``: the run list (100 newest, with their metrics) and one run's metric history,
  same clients and time, against ``mlflow server`` and against LensVault.

The load generator shares the machine's cores with the server: on a 2-core machine the
numbers are a floor. ``--load wrk`` sends the same mixed reads from wrk (C; Debian's package
``wrk``, which this script does not install: ``apt-get install -y wrk``) with
benchmarks/wrk_mixed.lua, 50 threads of one connection each (so the script can time every
request and report p50/p99 per kind), at a fraction of the Python clients' CPU; both report
the CPU the load generator used. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = ("loss", "mAP", "lr")
MODEL_NAMES = 10


def metric_values(run: int, step: int) -> dict[str, float]:
    """The points every run logs (the same in both tools)."""
    return {"loss": 1.0 / (1 + step) + run * 1e-5, "mAP": step / (step + 10) - run * 1e-6, "lr": 0.01 * 0.97 ** step}


# -- building the data ------------------------------------------------------------------------
def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _images(workdir: Path, n: int) -> Path:
    from PIL import Image

    src = workdir / f"data-{n}"
    if (src / "instances.json").exists():
        return src
    images, anns = [], []
    for i in range(n):
        name = f"images/{i // 1000:03d}/im{i:06d}.png"
        path = src / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            Image.new("RGB", (32, 24), (i % 251, (i // 251) % 251, (i // 63001) % 251)).save(path)
        images.append({"id": i + 1, "file_name": name, "width": 32, "height": 24})
        anns.extend({"id": 3 * i + k + 1, "image_id": i + 1, "category_id": 1 + (i + k) % 3,
                     "bbox": [2 + 8 * k, 2, 6, 6], "area": 36, "iscrowd": 0} for k in range(3))
    (src / "instances.tmp").write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "car"}, {"id": 2, "name": "person"}, {"id": 3, "name": "sign"}]}))
    (src / "instances.tmp").rename(src / "instances.json")
    return src


def build(workdir: Path, n: int, runs: int, models: int, steps: int) -> Path:
    """The vault, in steps that a killed build resumes: the version, the model runs (through
    ``start_run`` and ``register_model``), the other runs, the aliases."""
    import lensvault

    root = workdir / f"vault-{n}-{runs}-{models}-{steps}"
    if (root / "built.json").exists():
        return root
    src = _images(workdir, n)
    if not (root / ".lensvault").exists():
        root.mkdir(parents=True, exist_ok=True)
        _git("init", "-q", ".", cwd=root)
        (root / ".gitignore").write_text(".lensvault/\nruns/\nbuilt.json\n")
        (root / "config.yaml").write_text("lr: 0.01\nepochs: 50\nseed: 2024\n")
        lensvault.init(root).close()
    vault = lensvault.open(root)
    if not vault.datasets():
        vault.snapshot("bench", src, version="1.0.0", format="coco", annotations=src / "instances.json",
                       split="80/10/10", seed=1)
        _git("add", "-A", cwd=root)
        _git("commit", "-qm", "bench", cwd=root)
        vault.add_config(root / "config.yaml", "C-01")
    have = {m.ref for m in vault.models()}
    for k in range(models):
        model, version = f"det{k % MODEL_NAMES}", f"1.{k // MODEL_NAMES}.0"
        if f"{model}@{version}" in have:
            continue
        with lensvault.start_run(dataset="bench@1.0.0", config="C-01", model=model, version=version,
                                 seed=k, vault=vault) as run:
            for s in range(steps):
                lensvault.log_metrics(metric_values(k, s), step=s)
            (run.output_dir / "model.bin").write_bytes(k.to_bytes(4, "big") * 256)
        vault.register_model(model, run=run.run_id, weights=[run.output_dir / "model.bin"], version=version)
        print(f"  model {k + 1}/{models}", file=sys.stderr, flush=True)
    _plain_runs(vault, runs - len(vault.runs()), steps)
    for k in range(min(models, MODEL_NAMES)):
        latest = max((m for m in vault.models(f"det{k}")), key=lambda m: m.created_at)
        if "production" not in latest.aliases:
            vault.promote(latest.ref, "production", new=not any(m.aliases for m in vault.models(f"det{k}")),
                          reason="bench")
    vault.close()
    (root / "built.json").write_text(json.dumps({"runs": runs, "models": models}))
    return root


def _plain_runs(vault, count: int, steps: int) -> None:
    """Runs without a model, written straight into the catalog (as benchmarks/bench_tracking_vs_mlflow.py
    does): through ``start_run`` each costs seconds of preflight and environment capture on a
    100,000-file version, and the server reads them the same way."""
    if count <= 0:
        return
    from lensvault.catalog.catalog import utcnow
    from lensvault.catalog.runs_schema import runs
    from lensvault.runs.recorder import write_metric_points

    now = utcnow()
    rows = [{"run_id": f"2026-01-01T00-00-00Z-{i:06d}", "status": "succeeded", "kind": "standalone",
             "code_commit": "0" * 40, "clean": True, "dataset": "bench@1.0.0", "config_id": "C-01",
             "seeds": json.dumps({"train": i}), "started_at": f"2026-01-01T00:00:00.{i:06d}Z", "ended_at": now,
             "created_by": "bench"} for i in range(count)]
    with vault.catalog.begin() as conn:
        conn.execute(runs.insert(), rows)
    pts = [(r["run_id"], k, v, s, None, None, now) for i, r in enumerate(rows) for s in range(steps)
           for k, v in metric_values(1000 + i, s).items()]
    for i in range(0, len(pts), 50_000):
        write_metric_points(vault, pts[i:i + 50_000])


MLFLOW_BUILD = r"""
import json, sys, time
from pathlib import Path
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
db, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
exec(sys.argv[4])  # metric_values, as the LensVault side logs them
client = MlflowClient(f"sqlite:///{db}")
exp = client.create_experiment("bench")
ts = int(time.time() * 1000)
ids = []
for i in range(runs):
    r = client.create_run(exp, run_name=f"run-{i}")
    client.log_batch(r.info.run_id, params=[mlflow.entities.Param("config", "C-01")],
                     metrics=[Metric(k, v, ts + s, s) for s in range(steps) for k, v in metric_values(i, s).items()])
    client.set_terminated(r.info.run_id)
    ids.append(r.info.run_id)
print(json.dumps({"experiment_id": exp, "run_ids": ids}))
"""


def build_mlflow(workdir: Path, python: str, runs: int, steps: int) -> tuple[Path, dict]:
    import inspect

    folder = workdir / f"mlflow-{runs}-{steps}"
    done = folder / "built.json"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "mlflow.db").unlink(missing_ok=True)
        out = subprocess.run([python, "-c", MLFLOW_BUILD, str(folder / "mlflow.db"), str(runs), str(steps),
                              inspect.getsource(metric_values)], check=True, capture_output=True, text=True)
        done.write_text(out.stdout.strip().splitlines()[-1])
    return folder, json.loads(done.read_text())


# -- servers ----------------------------------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    import httpx

    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        if proc.poll() is not None:
            raise RuntimeError(f"the server at {url} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not answer in {seconds} s")


def serve(root: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "lensvault.cli.main", "--vault", str(root), "serve", "--port", str(port),
           "--public-read"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_up(f"{url}/api/v1/whoami", proc)
    return proc, url


def serve_mlflow(python: str, folder: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    mlflow = str(Path(python).parent / "mlflow")
    proc = subprocess.Popen([mlflow, "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                             "--default-artifact-root", str(folder / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    _wait_up(f"{url}/health", proc)
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- measuring --------------------------------------------------------------------------------
def first_screen(url: str) -> dict:
    import httpx

    with httpx.Client(timeout=120) as c:
        t = time.perf_counter()
        r = c.get(f"{url}/datasets/bench/1.0.0")
        cold = time.perf_counter() - t
        assert r.status_code == 200 and r.text.count('class="box"') >= 48 * 3, r.status_code
        warm = []
        for k in range(20):
            t = time.perf_counter()
            r = c.get(f"{url}/datasets/bench/1.0.0", params={"split": "train", "after": 1000 * k + 1})
            warm.append(time.perf_counter() - t)
            assert r.status_code == 200
    return {"cold_ms": round(cold * 1000, 1), "warm_median_ms": round(statistics.median(warm) * 1000, 1),
            "warm_max_ms": round(max(warm) * 1000, 1)}


def lensvault_kinds(url: str, n: int, only_runs: bool = False) -> dict[str, list[dict]]:
    """Per kind of read, the requests a client picks from at random."""
    import httpx

    rnd = random.Random(1)
    with httpx.Client(timeout=120) as c:
        run_ids = [r["run_id"] for r in c.get(f"{url}/api/v1/runs").json()]
        models = [m["ref"] for m in c.get(f"{url}/api/v1/models").json()]
        if only_runs:
            return _run_kinds(url, run_ids)
        page = c.get(f"{url}/api/v1/datasets/bench/versions/1.0.0/images", params={"limit": 20}).json()
        shas = [i["sha256"] for i in page["items"]]
        for s in shas:  # made once, then served from the cache
            c.get(f"{url}/api/v1/objects/{s}/thumbnail", params={"size": 128})
    version = f"{url}/api/v1/datasets/bench/versions/1.0.0"

    def gets(urls):
        return [{"method": "GET", "url": u} for u in urls]

    return {
        "version_json": gets([version]),
        "image_grid_json": gets([f"{version}/images?limit=48&after={rnd.randrange(n)}" for _ in range(2000)]),
        "image_page_html": gets([f"{url}/datasets/bench/1.0.0/images/{1 + rnd.randrange(n)}" for _ in range(2000)]),
        "thumbnail_cached": gets([f"{url}/api/v1/objects/{s}/thumbnail?size=128" for s in shas]),
        "run_metrics_json": gets([f"{url}/api/v1/runs/{r}/metrics" for r in run_ids]),
        "run_list_json": gets([f"{url}/api/v1/runs?limit=100"]),
        "lineage_json": gets([f"{url}/api/v1/lineage/{m}" for m in models]),
        "events_json": gets([f"{url}/api/v1/events?limit=20"]),
    }


def _run_kinds(url: str, run_ids: list[str]) -> dict[str, list[dict]]:
    return {"run_list": [{"method": "GET", "url": f"{url}/api/v1/runs?limit=100"}],
            "metric_history": [{"method": "GET", "url": f"{url}/api/v1/runs/{r}/metrics"} for r in run_ids]}


def mlflow_kinds(url: str, info: dict) -> dict[str, list[dict]]:
    api = f"{url}/api/2.0/mlflow"
    return {"run_list": [{"method": "POST", "url": f"{api}/runs/search",
                          "json": {"experiment_ids": [info["experiment_id"]], "max_results": 100}}],
            "metric_history": [{"method": "GET", "url": f"{api}/metrics/get-history?run_id={r}&metric_key={k}"}
                               for r in info["run_ids"] for k in METRICS]}


async def _load(kinds: dict[str, list[dict]], clients: int, seconds: float) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as c:
        for reqs in kinds.values():  # each kind once before the clock starts
            await c.request(reqs[0]["method"], reqs[0]["url"], json=reqs[0].get("json"))
        times: dict[str, list[float]] = {k: [] for k in kinds}
        errors: dict[str, int] = dict.fromkeys(kinds, 0)
        seen: dict[str, int] = {}  # what the errors were: a status, or the client's exception
        names = list(kinds)
        began = time.monotonic()
        stop_at = began + seconds

        async def client() -> None:
            while time.monotonic() < stop_at:
                kind = random.choice(names)
                req = random.choice(kinds[kind])
                t = time.perf_counter()
                try:
                    r = await c.request(req["method"], req["url"], json=req.get("json"))
                    status = str(r.status_code)
                except httpx.HTTPError as e:
                    status = type(e).__name__
                times[kind].append(time.perf_counter() - t)
                if status != "200":
                    errors[kind] += 1
                    seen[status] = seen.get(status, 0) + 1

        await asyncio.gather(*(client() for _ in range(clients)))
        # Requests still in flight at the deadline are waited for and counted: over this time.
        elapsed = time.monotonic() - began
    return {"times": times, "errors": errors, "elapsed": elapsed, "error_kinds": seen}


def children_cpu() -> float:
    """CPU seconds used so far by this process's waited-for children (the load generators; the
    server is waited for only when it stops)."""
    import resource

    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def load_client_main(spec_path: str) -> None:
    """One load-generating process: reads its spec, prints raw latencies as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    print(json.dumps(asyncio.run(_load(spec["kinds"], spec["clients"], spec["seconds"]))))


def session_cpu(sid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of session ``sid`` (a server
    and its workers): with other jobs on the machine, latency measures the queue for a core, and
    CPU per request measures the server."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session, ...
            total += int(fields[11]) + int(fields[12])
    return total / tick


def load(kinds: dict[str, list[dict]], clients: int, seconds: float, procs: int, server_sid: int,
         generator: str = "httpx") -> dict:
    """C clients, from wrk or from asyncio + httpx clients split over ``procs`` processes other
    than this one and the server's."""
    if generator == "wrk":
        return load_wrk(kinds, clients, seconds, server_sid)
    children = []
    cpu_before, load_cpu_before = session_cpu(server_sid), children_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        for p in range(procs):
            spec = Path(tmp) / f"spec{p}.json"
            share = clients // procs + (p < clients % procs)
            spec.write_text(json.dumps({"kinds": kinds, "clients": share, "seconds": seconds}))
            children.append(subprocess.Popen([sys.executable, __file__, "--load-client", str(spec)],
                                             stdout=subprocess.PIPE, text=True))
        outs = [json.loads(ch.communicate()[0]) for ch in children]
    server_cpu = session_cpu(server_sid) - cpu_before
    load_cpu = children_cpu() - load_cpu_before
    times = {k: sorted(t for o in outs for t in o["times"][k]) for k in kinds}
    errors = {k: sum(o["errors"][k] for o in outs) for k in kinds}
    total = sum(len(v) for v in times.values())
    elapsed = max(o["elapsed"] for o in outs)
    out = {"generator": "httpx", "clients": clients, "load_processes": procs, "seconds": round(elapsed, 1), "requests": total,
           "errors": sum(errors.values()), "throughput_rps": round(total / elapsed, 1),
           "error_kinds": {k: sum(o["error_kinds"].get(k, 0) for o in outs) for o in outs for k in o["error_kinds"]},
           "server_cpu_s": round(server_cpu, 1),
           "server_cpu_ms_per_request": round(server_cpu * 1000 / max(total, 1), 2),
           "load_generator_cpu_s": round(load_cpu, 1), "loadavg": os.getloadavg()}
    for k, v in times.items():
        out[k] = {"n": len(v), "rps": round(len(v) / elapsed, 1), "errors": errors[k],
                  "p50_ms": round(v[len(v) // 2] * 1000, 1) if v else None,
                  "p99_ms": round(v[min(len(v) - 1, int(len(v) * 0.99))] * 1000, 1) if v else None}
    return out


WRK_SCRIPT = Path(__file__).with_name("wrk_mixed.lua")
WRK_INSTALL = "apt-get install -y wrk   # Debian/Ubuntu, as root (or with sudo)"


def wrk_path() -> str:
    """wrk, installed by whoever runs the benchmark (this script installs nothing)."""
    import shutil

    found = shutil.which("wrk")
    if found is None:
        sys.exit(f"--load wrk needs wrk on PATH; install it with: {WRK_INSTALL} (or use --load httpx)")
    return found


def load_wrk(kinds: dict[str, list[dict]], clients: int, seconds: float, server_sid: int) -> dict:
    """The same mixed reads from wrk (C, one epoll loop per thread): the load generator costs a
    fraction of the CPU of Python clients, so more of the shared cores are left to the server.
    One connection per thread, so the Lua script can time each request per kind."""
    from urllib.parse import urlsplit

    import httpx

    base = "{0.scheme}://{0.netloc}".format(urlsplit(next(iter(kinds.values()))[0]["url"]))
    with httpx.Client(timeout=120) as c:  # each kind once before the clock starts
        for reqs in kinds.values():
            c.request(reqs[0]["method"], reqs[0]["url"], json=reqs[0].get("json"))
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "requests.tsv"
        lines = []
        for kind, reqs in kinds.items():
            for r in reqs:
                parts = urlsplit(r["url"])
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                lines.append("\t".join([kind, r["method"], path, json.dumps(r["json"]) if r.get("json") else ""]))
        tsv.write_text("\n".join(lines) + "\n")
        cpu_before, load_cpu_before = session_cpu(server_sid), children_cpu()
        done = subprocess.run([wrk_path(), "-t", str(clients), "-c", str(clients), "-d", f"{seconds:g}s",
                               "--timeout", "120s", "-s", str(WRK_SCRIPT), base, "--", str(tsv)],
                              capture_output=True, text=True)
        server_cpu = session_cpu(server_sid) - cpu_before
        load_cpu = children_cpu() - load_cpu_before
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("LENSVAULT_WRK ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    got = json.loads(line.split(" ", 1)[1])
    elapsed = got["duration_s"]
    total = sum(k["n"] for k in got["kinds"].values())
    socket_errors = sum(got["socket_errors"].values())
    errors = sum(k["errors"] for k in got["kinds"].values()) + socket_errors
    out = {"generator": "wrk", "clients": clients, "seconds": round(elapsed, 1), "requests": total,
           "errors": errors, "throughput_rps": round(total / elapsed, 1),
           "error_kinds": {**{k: v for k, v in got["socket_errors"].items() if v},
                           **({"non_2xx_3xx": got["non_2xx_3xx"]} if got["non_2xx_3xx"] else {})},
           "server_cpu_s": round(server_cpu, 1),
           "server_cpu_ms_per_request": round(server_cpu * 1000 / max(total, 1), 2),
           "load_generator_cpu_s": round(load_cpu, 1), "loadavg": os.getloadavg()}
    for kind in kinds:
        k = got["kinds"].get(kind, {"n": 0, "errors": 0, "p50_ms": None, "p99_ms": None})
        out[kind] = {"n": k["n"], "rps": round(k["n"] / elapsed, 1), "errors": k["errors"],
                     "p50_ms": k["p50_ms"], "p99_ms": k["p99_ms"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--models", type=int, default=100)
    ap.add_argument("--steps", type=int, default=50, help="metric steps per run (3 metrics each)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--workers", type=int, default=1, help="server processes (lensvault serve --workers)")
    ap.add_argument("--load", choices=("httpx", "wrk"), default="httpx",
                    help="the load generator: asyncio + httpx clients in Python, or wrk (needs wrk on PATH: "
                         + WRK_INSTALL + ")")
    ap.add_argument("--load-procs", type=int, default=1, help="processes the httpx clients are spread over")
    ap.add_argument("--mlflow", metavar="PYTHON", help="a Python with mlflow installed: also measure mlflow server")
    ap.add_argument("--skip-mixed", action="store_true", help="only the side by side with mlflow")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lensvault-bench-server"))
    ap.add_argument("--load-client", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_client:
        return load_client_main(args.load_client)
    if args.load == "wrk":
        wrk_path()  # before a long build, not after
    t = time.perf_counter()
    root = build(args.workdir, args.images, args.runs, args.models, args.steps)
    result: dict = {"images": args.images, "runs": args.runs, "models": args.models, "load": args.load,
                    "metric_points": args.runs * args.steps * len(METRICS), "workers": args.workers,
                    "build_s": round(time.perf_counter() - t, 1), "cpus": os.cpu_count(),
                    "loadavg_before": os.getloadavg()}
    proc, url = serve(root, args.workers)
    try:
        result["first_screen"] = first_screen(url)
        if not args.skip_mixed:
            result["mixed"] = load(lensvault_kinds(url, args.images), args.clients, args.seconds, args.load_procs,
                                   proc.pid, args.load)
        if args.mlflow:
            result["runs_lensvault"] = load(lensvault_kinds(url, args.images, only_runs=True), args.clients,
                                            args.seconds, args.load_procs, proc.pid, args.load)
    finally:
        stop(proc)
    if args.mlflow:
        folder, info = build_mlflow(args.workdir, args.mlflow, args.runs, args.steps)
        mproc, murl = serve_mlflow(args.mlflow, folder, args.workers)
        try:
            result["runs_mlflow"] = load(mlflow_kinds(murl, info), args.clients, args.seconds, args.load_procs,
                                         mproc.pid, args.load)
        finally:
            stop(mproc)
        lv_runs, ml_runs = result["runs_lensvault"], result["runs_mlflow"]
        result["lensvault_over_mlflow_throughput"] = round(lv_runs["throughput_rps"] / max(ml_runs["throughput_rps"], 0.1), 2)
        # Requests per CPU-second of each server: what the throughput would be on the same idle cores.
        result["lensvault_over_mlflow_per_cpu"] = round(ml_runs["server_cpu_ms_per_request"]
                                                        / max(lv_runs["server_cpu_ms_per_request"], 0.01), 2)
    result["loadavg_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
