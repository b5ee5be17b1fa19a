"""A person reads the facts the JSON has.

For every command with --json, the names and counts in its JSON appear in its human output,
on a wide (200 columns) and a narrow (60 columns) terminal, where tables fold long names onto
the next line rather than cutting them. Commands that write are run twice on twin inputs
(one in each mode) and compared with the twin's name swapped in. Long lists print their first
items and then "… and N more".
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import lv, shell_env

WIDTHS = (200, 60)


def appears(fact: str, text: str) -> bool:
    """``fact`` is in ``text``, whole or folded by a table: chunks of one width, one per line,
    starting at the same column."""
    if fact in text or " ".join(fact.split()) in " ".join(text.split()):  # whole, or prose wrapped at spaces
        return True
    lines = text.splitlines()
    for width in range(1, len(fact)):
        chunks = [fact[i:i + width] for i in range(0, len(fact), width)]
        for i, line in enumerate(lines):
            col = line.find(chunks[0])
            while col != -1:
                if all(i + k < len(lines) and lines[i + k][col:col + len(c)] == c for k, c in enumerate(chunks)):
                    return True
                col = line.find(chunks[0], col + 1)
    return False


def check_facts(human: str, facts: list, what: str) -> None:
    missing = [f for f in facts if not appears(str(f), human)]
    assert not missing, f"{what}: the JSON says {missing} but the human output does not:\n{human}"


def human_and_json(cwd: Path, *args, codes=(0,)) -> tuple[dict[int, str], object]:
    outs = {}
    for w in WIDTHS:
        r = lv(*args, cwd=cwd, columns=w)
        assert r.returncode in codes, r.stderr
        outs[w] = r.stdout + r.stderr
    r = lv(*args, "--json", cwd=cwd)
    assert r.returncode in codes, r.stderr
    return outs, json.loads(r.stdout)


def assert_same_facts(cwd, args, facts, codes=(0,)):
    outs, data = human_and_json(cwd, *args, codes=codes)
    for w, text in outs.items():
        check_facts(text, facts(data), f"{' '.join(map(str, args))} at {w} columns")
    return data


# --------------------------------------------------------------------------- datasets


def test_dataset_reading_commands(world):
    assert_same_facts(world, ["dataset", "list"], lambda d: [x for r in d for x in (r["name"], r["latest"], r["versions"], r["files"])])
    assert_same_facts(world, ["dataset", "log", "shapes"], lambda d: [
        x for v in d for x in (v["ref"], v["snapshot_id"][:12], v["files"], v["created_by"], v["parent"] or v["ref"],
                               v["bump"] or v["ref"], (v["changelog"] or {}).get("summary", v["ref"]))])

    def show_facts(d):
        facts = [d["ref"], d["snapshot_id"], d["files"], d["created_by"], d["manifest_path"], d["images"], d["annotations"],
                 *d["classes"], *[str(i) for i in d["class_ids"]], *d["kinds"], d["source"]["description"],
                 d["counts"]["annotated_images"], d["split_spec"]["seed"], d["changelog"]["summary"], d["parent"], d["bump"]]
        facts += [f"{s} {n}" for s, n in d["splits"].items()]
        facts += list(d["media_types"]) + [f"{k} {v}" for k, v in d["media_types"].items()]
        for name, c in d["per_class"].items():
            facts += [name, *[str(n) for n in c.values()]]
        return facts

    assert_same_facts(world, ["dataset", "show", "shapes@1.0.1"], show_facts)
    assert_same_facts(world, ["dataset", "show", "files@1.1.0", "--files"],
                      lambda d: [d["ref"], d["files"], *[f["path"] for f in d["file_list"]]])


def test_snapshot_json_has_what_the_human_output_says(tmp_path):
    """What the import found, how many findings in all, and the images it left out: in both."""
    import lensvault
    from tests.conftest import DATA

    src = tmp_path / "voc"
    for sub in ("Annotations", "JPEGImages"):
        (src / sub).mkdir(parents=True)
    for p in sorted((DATA / "bccd" / "BCCD" / "Annotations").iterdir())[:4]:
        shutil.copy(p, src / "Annotations" / p.name)
        shutil.copy(DATA / "bccd" / "BCCD" / "JPEGImages" / f"{p.stem}.jpg", src / "JPEGImages" / f"{p.stem}.jpg")
    cut = min((src / "JPEGImages").iterdir())
    cut.write_bytes(cut.read_bytes()[:-40])  # decoders read it only partly
    lensvault.init(tmp_path / "v").close()

    def snap(name, *extra):
        r = lv("dataset", "snapshot", name, src, "--format", "voc", "--on-bad-image", "skip", "--version", "1.0.0",
               *extra, cwd=tmp_path / "v")
        assert r.returncode == 0, r.stderr
        return r.stdout

    human, d = snap("twin-a"), json.loads(snap("twin-b", "--json"))
    assert d["source_description"] and d["findings_total"] == len(d["findings"]) > 0
    assert [x["path"] for x in d["skipped_images"]] == [f"JPEGImages/{cut.name}"]
    check_facts(human, [f"found: {d['source_description']}", f"{d['findings_total']} validation finding(s)",
                        f"skipped images: {len(d['skipped_images'])}"], "dataset snapshot")
    shown = json.loads(lv("dataset", "show", "twin-b@1.0.0", "--json", cwd=tmp_path / "v").stdout)
    assert (d["source_description"], d["findings_total"], d["skipped_images"]) == (
        shown["source"]["description"], shown["counts"]["findings"], shown["source"]["skipped_images"])


def test_dataset_diff_lists_what_changed(world):
    def file_facts(d):
        return [d["a"], d["b"], len(d["added"]), len(d["removed"]), len(d["modified"]), d["unchanged"],
                *d["added"], *d["removed"], *d["modified"], *[x for r in d["renamed"] for x in (r["from"], r["to"])]]

    assert_same_facts(world, ["dataset", "diff", "files@1.0.0", "files@1.1.0"], file_facts)

    def vision_facts(d):
        ann = d["annotations"]
        facts = [d["a"], d["b"], d["summary"], *[str(n) for n in ann["counts"].values() if n]]
        for cat in ("added", "removed", "moved", "relabeled", "attributes_changed"):
            for c in ann[cat]:
                facts += [c["image"], *(x for x in (c["old_class"], c["new_class"]) if x)]
        for name, e in d["per_class"].items():
            facts += [name, str(e["a"]), str(e["b"])]
        facts += [m["path"] for m in d["split_moves"]["items"]]
        return facts

    data = assert_same_facts(world, ["dataset", "diff", "shapes@1.0.0", "shapes@1.0.1"], vision_facts)
    assert data["annotations"]["counts"]["relabeled"] > 0


def test_dataset_check_names_the_pairs(world, tmp_path):
    from PIL import Image

    import lensvault

    # Duplicates across splits: the same bytes under several names, and a resized copy.
    src = tmp_path / "dups"
    (src / "train").mkdir(parents=True)
    (src / "test").mkdir()
    base = Image.new("RGB", (64, 64))
    for x in range(64):
        for y in range(64):
            base.putpixel((x, y), ((x * 4) % 256, (y * 4) % 256, ((x + y) * 2) % 256))
    for i in range(25):
        base.save(src / "train" / f"copy-{i:02d}.png")
    base.save(src / "test" / "same-as-train.png")
    base.resize((60, 60)).save(src / "test" / "resized.png")
    lensvault.init(tmp_path / "v").close()
    from tests.registry._helpers import make_coco

    images, ann = make_coco(tmp_path / "coco", 2)
    coco = json.loads(ann.read_text())
    coco["images"] = []
    coco["annotations"] = []
    for i, p in enumerate(sorted(src.rglob("*.png"))):
        shutil.copy(p, images / f"{p.parent.name}-{p.name}")
        coco["images"].append({"id": i + 1, "file_name": f"{p.parent.name}-{p.name}", "width": 64, "height": 64})
        coco["annotations"].append({"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1, 1, 5, 5],
                                    "area": 25, "iscrowd": 0})
    for f in images.glob("im*.png"):
        f.unlink()
    ann.write_text(json.dumps(coco))
    r = lv("dataset", "snapshot", "dups", images, "--format", "coco", "--annotations", ann, "--split", "50/50",
           "--seed", "1", "--version", "1.0.0", cwd=tmp_path / "v")
    assert r.returncode == 0, r.stderr

    def facts(d):
        out = [d["images"], d["counts"]["exact_groups"], d["counts"]["near_pairs"]]
        for g in d["exact"][:20]:
            out += [g["sha256"][:12], *g["paths"][:20]]
        for n in d["near"][:20]:
            out += [n["a"], n["b"]]
        return out

    data = assert_same_facts(tmp_path / "v", ["dataset", "check", "dups@1.0.0"], facts, codes=(0, 1))
    human = lv("dataset", "check", "dups@1.0.0", cwd=tmp_path / "v").stdout
    biggest = max(len(g["paths"]) for g in data["exact"])
    assert biggest == 26 and "… and 6 more copies" in human  # 26 copies: 20 shown, the rest counted


def test_long_lists_say_how_many_more(world):
    human = lv("dataset", "diff", "files@1.0.0", "files@1.1.0", cwd=world).stdout
    assert "new/added-24.txt" in human  # 25 added: all shown (up to 100)
    text = lv("status", "files@1.0.0", world / "files", cwd=world).stdout
    assert "26 added" in text.splitlines()[-1]


# --------------------------------------------------------------------------- writes, on twins


def test_write_commands_on_twins(world, tmp_path):
    def twin(args_human, args_json, swap: dict[str, str], facts, codes=(0,)):
        rh = lv(*args_human, cwd=world)
        assert rh.returncode in codes, rh.stderr
        rj = lv(*args_json, "--json", cwd=world)
        assert rj.returncode in codes, rj.stderr
        args_human = [str(a) for a in args_human]
        text = json.dumps(json.loads(rj.stdout))
        for a, b in swap.items():
            text = text.replace(a, b)
        check_facts(rh.stdout + rh.stderr, facts(json.loads(text)), " ".join(args_human))

    twin(["dataset", "snapshot", "twin-a", "raw", "--format", "coco", "--split", "70/20/10", "--seed", "7",
          "--version", "1.0.0"],
         ["dataset", "snapshot", "twin-b", "raw", "--format", "coco", "--split", "70/20/10", "--seed", "7",
          "--version", "1.0.0"], {"twin-b": "twin-a"},
         lambda d: [d["ref"], d["files"], d["snapshot_id"][:12], d["manifest_path"], d["images"], d["annotations"],
                    *d["classes"], *[f"{s} {n}" for s, n in d["splits"].items()], d["git_add"]])
    twin(["dataset", "fix", "twin-a@1.0.0", "--annotations", "fixed/instances.json"],
         ["dataset", "fix", "twin-b@1.0.0", "--annotations", "fixed/instances.json"], {"twin-b": "twin-a"},
         lambda d: [d["ref"], d["parent"], d["bump"], d["snapshot_id"][:12], d["changelog"]["summary"],
                    d["manifest_path"], d["git_add"]])
    twin(["dataset", "checkout", "files@1.1.0", tmp_path / "co-a"], ["dataset", "checkout", "files@1.1.0", tmp_path / "co-b"],
         {"co-b": "co-a"}, lambda d: [d["ref"], d["dest"], d["files"], d["link"]])
    twin(["dataset", "export", "shapes@1.0.1", tmp_path / "ex-a", "--format", "yolo", "--split", "train"],
         ["dataset", "export", "shapes@1.0.1", tmp_path / "ex-b", "--format", "yolo", "--split", "train"],
         {"ex-b": "ex-a"}, lambda d: [d["ref"], d["dest"], d["images"], d["format"], d["split"]])
    (world / "configs" / "twin-a.yaml").write_text("seed: 1\n")
    (world / "configs" / "twin-b.yaml").write_text("seed: 1\n")
    twin(["config", "add", "configs/twin-a.yaml", "--id", "C-90", "--uncommitted"],
         ["config", "add", "configs/twin-b.yaml", "--id", "C-91", "--uncommitted"],
         {"C-91": "C-90", "twin-b": "twin-a"}, lambda d: [d["config_id"], d["repo_path"], d["sha256"][:12]])
    sa, sb = tmp_path / "init-a", tmp_path / "init-b"
    rh = lv("init", sa, cwd=tmp_path)
    d = json.loads(lv("init", sb, "--json", cwd=tmp_path).stdout)
    check_facts(rh.stdout, [d["root"].replace("init-b", "init-a"), d["store"].replace("init-b", "init-a"),
                            d["catalog"].replace("init-b", "init-a"),
                            d["manifests"].replace("init-b", "init-a")], "init")
    assert d["vault_id"] and "vault id:" in rh.stdout


def test_run_and_registry_writes(world, runs, tmp_path):
    first, second = runs
    r = lv("run", "--dataset", "shapes@1.0.1", "--config", "C-01", "--", sys.executable, "train.py", cwd=world,
           env={"STEPS": "2", "EXIT_WITH": "3"})
    rj = lv("run", "--dataset", "shapes@1.0.1", "--config", "C-01", "--json", "--", sys.executable, "train.py", cwd=world,
            env={"STEPS": "2", "EXIT_WITH": "3"})
    assert r.returncode == rj.returncode == 3
    d = json.loads(rj.stdout)
    assert "images 16" in rj.stderr and "images 16" not in rj.stdout  # the script's output streams to stderr
    human_id = r.stderr.split("Run ")[1].split()[0]
    check_facts(r.stderr, [d["status"], f"exit code {d['exit_code']}", d["output_dir"].replace(d["run_id"], human_id)],
                "run")

    def reg(name, json_mode):
        return lv("model", "register", name, "--run", second, "--weights", f"runs/{second}/model.npz", "--version",
                  "1.0.0", "--threshold", "score=0.5", "--caveat", "night images are few",
                  *(["--json"] if json_mode else []), cwd=world)

    rh, rj = reg("reg-a", False), reg("reg-b", True)
    d = json.loads(rj.stdout.replace("reg-b", "reg-a"))
    check_facts(rh.stdout, [d["ref"], d["run_id"], d["dataset"], d["config_id"],
                            *[f["name"] for f in d["files"]], *[f"{k}={v}" for k, v in d["thresholds"].items()],
                            *d["caveats"]], "model register")
    for name in ("reg-a", "reg-b"):
        assert lv("model", "register", name, "--run", first, "--weights", f"runs/{first}/model.npz", "--version",
                  "2.0.0", "--force", cwd=world).returncode == 0
    ph = lv("model", "promote", "reg-a@1.0.0", "stable", "--new", "--reason", "ship it", cwd=world)
    d = json.loads(lv("model", "promote", "reg-b@1.0.0", "stable", "--new", "--reason", "ship it", "--json",
                      cwd=world).stdout.replace("reg-b", "reg-a"))
    check_facts(ph.stdout, [d["name"], d["alias"], d["to"], d["why"]], "model promote")
    for name in ("reg-a", "reg-b"):
        assert lv("model", "promote", f"{name}@2.0.0", "stable", cwd=world).returncode == 0
    rb = lv("model", "rollback", "reg-a", "stable", "--reason", "regressed", cwd=world)
    d = json.loads(lv("model", "rollback", "reg-b", "stable", "--reason", "regressed", "--json",
                      cwd=world).stdout.replace("reg-b", "reg-a"))
    check_facts(rb.stdout, [d["from"], d["to"], d["why"], ", ".join(d["held"])], "model rollback")
    pa, pb = tmp_path / "pull-a", tmp_path / "pull-b"
    ph = lv("model", "pull", "det@production", pa, cwd=world)
    d = json.loads(lv("model", "pull", "det@production", pb, "--json", cwd=world).stdout.replace("pull-b", "pull-a"))
    check_facts(ph.stdout, [d["ref"], d["dest"], d["bundle_oid"],
                            *[x for f in d["files"] for x in (f["name"], f["role"], f["sha256"])]], "model pull")
    assert "{'" not in ph.stdout  # each file as a person reads it, not a Python dict


def test_abandon_on_twins(world):
    import lensvault
    from lensvault.catalog.runs_schema import runs as runs_table
    from tests.runs.test_crashed_runs import _running_run

    vault = lensvault.open(world)
    try:
        a, b = _running_run(vault, "8.0.0"), _running_run(vault, "8.0.1")
        with vault.catalog.begin() as conn:
            conn.execute(runs_table.update().where(runs_table.c.run_id.in_([a, b])).values(owner_host="elsewhere"))
    finally:
        vault.close()
    rh = lv("runs", "abandon", a, "--force", "--reason", "gone", cwd=world)
    d = json.loads(lv("runs", "abandon", b, "--force", "--reason", "gone", "--json", cwd=world).stdout.replace(b, a).replace("8.0.1", "8.0.0"))
    check_facts(rh.stdout, [d["run_id"], d["status"], d["reason"], d["released"]], "runs abandon")


# --------------------------------------------------------------------------- runs, models, lineage


def test_runs_and_models_reading_commands(world, runs):
    first, second = runs
    assert_same_facts(world, ["runs", "list"], lambda d: [x for r in d for x in (
        r["run_id"], r["status"], r["dataset"], r["config"], (r["code_commit"] or "-")[:9], r["model"] or "-")])
    assert_same_facts(world, ["runs", "show", first], lambda d: [
        d["run_id"], d["status"], d["code_commit"], d["dataset"], d["config"], d["model"], d["created_by"], d["kind"],
        d["metric_points"], *d["metrics"], *d["params"], *d["metrics_per_class"], *[a["path"] for a in d["artifacts"]],
        d["seeds"]["train"], d["seeds"]["split"]])
    assert_same_facts(world, ["runs", "log", first], lambda d: [line for line in d["log"].splitlines() if line])
    assert_same_facts(world, ["runs", "compare", first, second], lambda d: [
        d["a"], d["b"], *[r["key"] for r in d["run"]], *[r["key"] for r in d["config"]], *[r["key"] for r in d["metrics"]]])
    assert_same_facts(world, ["model", "list"], lambda d: [x for m in d for x in (
        m["ref"], m["run_id"], m["dataset"], m["config_id"], *m["aliases"])])
    assert_same_facts(world, ["model", "history", "det"], lambda d: [x for m in d for x in (
        m["alias"], m["action"], m["to"], m["who"], m["why"] or m["to"])])
    assert_same_facts(world, ["lineage", "det@production"], lambda d: [n["label"] for n in d["nodes"]])
    preds = world / "out" / "preds.json"
    preds.parent.mkdir(exist_ok=True)
    gt = json.loads((world / "raw" / "annotations" / "instances.json").read_text())
    name_of = {i["id"]: i["file_name"] for i in gt["images"]}
    preds.write_text(json.dumps([{"file_name": name_of[a["image_id"]], "category_id": a["category_id"],
                                  "bbox": a["bbox"], "score": 1.0} for a in gt["annotations"]]))
    assert lv("eval", "--run", first, "--dataset", "shapes@1.0.0", "--split", "all", "--predictions", preds,
              cwd=world).returncode == 0
    assert_same_facts(world, ["evals"], lambda d: [x for e in d for x in (e["eval_id"], e["dataset"], e["split"] or "all")])
    assert_same_facts(world, ["config", "list"], lambda d: [x for c in d for x in (c["config_id"], c["repo_path"])])
    assert_same_facts(world, ["config", "show", "C-02"], lambda d: [d["config_id"], d["repo_path"], d["commit"], d["sha256"],
                                                                    "model.depth = 5", "lr = 0.0100"])
    assert_same_facts(world, ["config", "diff", "C-01", "C-02"], lambda d: [*d["changed"]])
    assert_same_facts(world, ["preflight", "--dataset", "shapes@1.0.1", "--config", "C-01"],
                      lambda d: [c["what"] for c in d["checks"]])
    assert_same_facts(world, ["why", first, second, "--allow-different-data"], lambda d: [
        d["a"]["ref"], d["b"]["ref"], *[e["factor"] for e in d["explanations"]],
        *[r for e in d["explanations"] for r in e["reasons"]]])


def test_vault_commands(world, runs):
    assert_same_facts(world, ["verify"], lambda d: [d["checked"], "OK"])
    assert_same_facts(world, ["gc", "--grace", "0", "--force"],
                      lambda d: [d["plan"]["objects"], d["plan"]["kept"], *d["plan"]["vaults"]])
    assert_same_facts(world, ["events", "--limit", "15"], lambda d: [x for e in d for x in (e["action"], e["subject"], e["actor"])])
    co = world / "out" / "co"
    assert lv("dataset", "checkout", "files@1.0.0", co, "--link", "copy", cwd=world).returncode == 0
    (co / "part-0" / "file-with-a-long-name-001.txt").write_text("edited\n")
    (co / "extra.txt").write_text("new\n")
    assert_same_facts(world, ["status", "files@1.0.0", co], lambda d: [
        d["ref"], *d["added"], *d["removed"], *d["modified"], d["unchanged"]], codes=(1,))


def test_every_command_takes_json():
    import click

    from lensvault.cli.main import cli

    ctx = click.Context(cli)
    missing = []

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])
        elif not any("--json" in p.opts for p in cmd.params):
            missing.append(" ".join(path))

    walk(cli, [])
    assert missing == []


def test_appears_matches_folded_cells():
    text = "a  shapes@1.  x\n   0.0        y\n"
    assert appears("shapes@1.0.0", text) and not appears("shapes@1.0.1", text)


def test_output_that_is_not_a_terminal_is_not_wrapped_at_80_columns(world):
    # A log or a pipe (the quickstart's transcript, `make demo > log`) has no width: lines must
    # not be split mid-sentence or mid-name as they were at rich's default of 80 columns.
    env = {k: v for k, v in shell_env().items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "events", "--limit", "5"], cwd=world, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(len(line) > 80 for line in lines), out.stdout  # the table takes the room it needs
    assert all("dataset.versio" not in line or "dataset.version." in line for line in lines), out.stdout
