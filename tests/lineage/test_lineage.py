"""``lensvault lineage``: up, down, both; JSON, text, Mermaid and DOT; unknown refs."""

from __future__ import annotations

import re

import pytest


def _types(g: dict) -> dict[str, set]:
    out: dict[str, set] = {}
    for n in g["nodes"]:
        out.setdefault(n["type"], set()).add(n["label"] if n["type"] != "commit" else n["attrs"]["sha"])
    return out


def _edges(g: dict) -> set[tuple[str, str, str]]:
    return {(e["from"], e["type"], e["to"]) for e in g["edges"]}


def _check_graph(g: dict) -> None:
    """Every edge joins two nodes of the graph; node ids are unique and typed."""
    ids = [n["id"] for n in g["nodes"]]
    assert len(ids) == len(set(ids))
    assert g["root"] in ids
    for n in g["nodes"]:
        assert n["id"].split(":", 1)[0] in ("model", "run", "dataset", "config", "commit", "eval", "alias")
    for e in g["edges"]:
        assert e["from"] in ids and e["to"] in ids, e
    assert len(g["edges"]) == len(_edges(g))


# -- up -------------------------------------------------------------------------------------


def test_model_up_json_has_every_kind_of_input(story):
    g = story.lv_json("lineage", "detector@production")
    _check_graph(g)
    ids = story.ids
    assert g["root"] == "model:detector@1.2.0" and g["direction"] == "up"
    t = _types(g)
    assert t["run"] == {ids["run3"]}
    assert t["config"] == {"C-02"}
    assert t["dataset"] == {"demo@1.0.1", "demo@1.0.0"}
    assert t["commit"] == {ids["head"]}
    assert t["alias"] == {"detector@production"}
    assert len(t["evaluation"]) == 1
    e = _edges(g)
    run = f"run:{ids['run3']}"
    assert (run, "produced", "model:detector@1.2.0") in e
    assert (f"commit:{ids['head']}", "code", run) in e
    assert ("config:C-02", "config", run) in e
    assert ("dataset:demo@1.0.1", "data", run) in e
    assert ("dataset:demo@1.0.0", "derived", "dataset:demo@1.0.1") in e
    assert ("model:detector@1.2.0", "alias", "alias:detector@production") in e
    (ev,) = [n for n in g["nodes"] if n["type"] == "evaluation"]
    assert ("model:detector@1.2.0", "evaluated", ev["id"]) in e
    assert ev["attrs"]["dataset"] == "demo@1.0.1" and ev["attrs"]["split"] == "test"
    assert 0.0 <= ev["attrs"]["AP50"] <= 1.0
    # Attributes a reader needs without another lookup.
    nodes = {n["id"]: n for n in g["nodes"]}
    assert nodes[run]["attrs"]["clean"] is True and nodes[run]["attrs"]["status"] == "succeeded"
    assert nodes["dataset:demo@1.0.1"]["attrs"]["bump"] == "patch"
    assert "relabeled" in nodes["dataset:demo@1.0.1"]["attrs"]["changelog"]
    assert nodes["config:C-02"]["attrs"]["path"] == "configs/detector-hotfix.yaml"


def test_first_model_lineage_has_no_derived_edge_but_both_evaluations(story):
    g = story.vault.lineage("detector@1.0.0").to_dict()
    _check_graph(g)
    t = _types(g)
    assert t["dataset"] == {"demo@1.0.0"}
    assert not any(e["type"] == "derived" for e in g["edges"])
    # Evaluated on its own test split and, later, on the corrected labels.
    assert {n["attrs"]["dataset"] for n in g["nodes"] if n["type"] == "evaluation"} == {"demo@1.0.0", "demo@1.0.1"}
    assert "alias" not in t  # production moved on


def test_run_up_and_down(story):
    run2 = story.ids["run2"]
    up = story.lv_json("lineage", run2)
    assert up["direction"] == "up" and up["root"] == f"run:{run2}"
    assert _types(up)["config"] == {"C-01"} and _types(up)["dataset"] == {"demo@1.0.1", "demo@1.0.0"}
    assert "model" not in _types(up)
    down = story.lv_json("lineage", run2, "--down")
    _check_graph(down)
    assert (f"run:{run2}", "produced", "model:detector@1.1.0") in _edges(down)
    assert any(e["type"] == "evaluated" and e["from"] == "model:detector@1.1.0" for e in down["edges"])
    assert "config" not in _types(down) and "commit" not in _types(down)
    both = story.lv_json("lineage", run2, "--both")
    _check_graph(both)
    assert _edges(up) | _edges(down) == _edges(both)


# -- down -----------------------------------------------------------------------------------


def test_dataset_down_answers_which_production_models_used_it(story):
    g = story.lv_json("lineage", "demo@1.0.1")  # datasets default to --down
    _check_graph(g)
    assert g["direction"] == "down" and g["root"] == "dataset:demo@1.0.1"
    e = _edges(g)
    runs = {story.ids["run2"], story.ids["run3"]}
    for r in runs:
        assert ("dataset:demo@1.0.1", "data", f"run:{r}") in e
    assert story.ids["run1"] not in _types(g)["run"]  # trained on 1.0.0
    assert (f"run:{story.ids['run2']}", "produced", "model:detector@1.1.0") in e
    assert (f"run:{story.ids['run3']}", "produced", "model:detector@1.2.0") in e
    assert "model:detector@1.0.0" not in {n["id"] for n in g["nodes"]}
    # Every evaluation on 1.0.1, including the old model judged on the corrected labels.
    assert len([x for x in e if x[1] == "evaluated_on"]) == 3

    # "Which production models were trained on demo@1.0.1?" — straight from the JSON.
    produced = {x[2]: x[0] for x in e if x[1] == "produced"}
    prod = [x[0] for x in e if x[1] == "alias" and x[2].endswith("@production")]
    assert prod == ["model:detector@1.2.0"]
    assert produced[prod[0]] in {f"run:{r}" for r in runs}


def test_dataset_down_lists_derived_versions(story):
    g = story.vault.lineage("demo@1.0.0", direction="down").to_dict()
    _check_graph(g)
    e = _edges(g)
    assert ("dataset:demo@1.0.0", "derived", "dataset:demo@1.0.1") in e
    assert (f"run:{story.ids['run1']}", "produced", "model:detector@1.0.0") in e
    assert ("dataset:demo@1.0.0", "evaluated_on") in {(a, t) for a, t, _ in e}


def test_dataset_up_is_its_version_chain(story):
    g = story.vault.lineage("demo@1.0.1", direction="up").to_dict()
    assert _edges(g) == {("dataset:demo@1.0.0", "derived", "dataset:demo@1.0.1")}


def test_config_down(story):
    g = story.lv_json("lineage", "C-01")
    _check_graph(g)
    assert g["direction"] == "down" and g["root"] == "config:C-01"
    e = _edges(g)
    assert {x[2] for x in e if x[0] == "config:C-01" and x[1] == "config"} >= {
        f"run:{story.ids['run1']}", f"run:{story.ids['run2']}"}
    assert f"run:{story.ids['run3']}" not in {n["id"] for n in g["nodes"]}
    models = {n["label"] for n in g["nodes"] if n["type"] == "model"}
    assert models == {"detector@1.0.0", "detector@1.1.0"}
    # An evaluation of a model is attached to the model, not a second time to its run.
    by_target: dict[str, int] = {}
    for _a, t, b in e:
        if t == "evaluated":
            by_target[b] = by_target.get(b, 0) + 1
    assert set(by_target.values()) == {1}, by_target


def test_model_down(story):
    g = story.vault.lineage("detector@1.2.0", direction="down").to_dict()
    _check_graph(g)
    assert ("model:detector@1.2.0", "alias", "alias:detector@production") in _edges(g)
    kinds = {n["type"] for n in g["nodes"] if n["type"] != "run" or n["attrs"]["run_kind"] != "reproduce"}
    assert kinds == {"model", "evaluation", "alias"}


# -- renderings -----------------------------------------------------------------------------


def test_text_tree(story):
    r = story.lv("lineage", "detector@production")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines = out.splitlines()
    assert lines[0].startswith("◆ model detector@1.2.0")
    for needle in (f"[produced] ▶ run {story.ids['run3']}", "[code] # commit " + story.ids["head"][:10],
                   "[config] ⚙ config C-02", "[data] ▤ dataset demo@1.0.1", "[derived] ▤ dataset demo@1.0.0",
                   "[evaluated] ✓ evaluation", "[alias] @ alias detector@production", "AP50="):
        assert needle in out, (needle, out)
    # The parent dataset sits under the dataset it was derived into; inputs sit under the run.
    depth = {ln.split("]")[0].split("[")[-1]: len(ln) - len(ln.lstrip("│├└─ ")) for ln in lines[1:]}
    assert depth["derived"] > depth["data"] > depth["produced"]
    assert depth["evaluated"] == depth["produced"] == depth["alias"]


def test_text_tree_both_directions_keeps_structure(story):
    out = story.lv("lineage", story.ids["run2"], "--both").stdout
    assert "upstream" in out and "downstream" in out
    assert "[produced] ◆ model detector@1.1.0" in out
    assert "[config] ⚙ config C-01" in out and "[derived] ▤ dataset demo@1.0.0" in out


def test_mermaid_is_well_formed(story):
    r = story.lv("lineage", "demo@1.0.1", "--down", "--format", "mermaid")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "graph LR"
    node_re = re.compile(r'^  (n_[A-Za-z0-9_]+)\["[^"\]\[]+"\]$')
    edge_re = re.compile(r"^  (n_[A-Za-z0-9_]+) -->\|([a-z_]+)\| (n_[A-Za-z0-9_]+)$")
    nodes, edges = set(), []
    for ln in lines[1:]:
        if m := node_re.match(ln):
            nodes.add(m.group(1))
        elif m := edge_re.match(ln):
            edges.append(m.groups())
        else:
            pytest.fail(f"not a mermaid node or edge: {ln!r}")
    assert edges and all(a in nodes and b in nodes for a, _, b in edges)
    assert {t for _, t, _ in edges} >= {"data", "produced", "alias", "evaluated_on"}


def test_dot_is_well_formed(story):
    r = story.lv("lineage", "detector@production", "--format", "dot")
    assert r.returncode == 0, r.stderr
    text = r.stdout.strip()
    assert text.startswith("digraph lineage {") and text.endswith("}")
    assert text.count("{") == text.count("}") == 1
    body = text.splitlines()[1:-1]
    node_re = re.compile(r'^  "([^"]+)" \[label="([^"]*)", shape=([a-z0-9]+)\];$')
    edge_re = re.compile(r'^  "([^"]+)" -> "([^"]+)" \[label="([a-z_]+)"\];$')
    nodes, edges = set(), []
    for ln in body:
        if ln.strip() == "rankdir=LR;":
            continue
        if m := node_re.match(ln):
            nodes.add(m.group(1))
        elif m := edge_re.match(ln):
            edges.append(m.groups())
        else:
            pytest.fail(f"not a DOT statement: {ln!r}")
    assert "model:detector@1.2.0" in nodes
    assert all(a in nodes and b in nodes for a, b, _ in edges)
    assert len(edges) == len(story.vault.lineage("detector@production").edges)
    dot = __import__("shutil").which("dot")
    if dot:  # Graphviz itself, when installed, must accept it
        import subprocess

        p = subprocess.run([dot, "-Tsvg"], input=r.stdout, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr


def test_json_flag_is_format_json(story):
    a = story.lv_json("lineage", "detector@1.1.0")
    b = story.lv("lineage", "detector@1.1.0", "--format", "json")
    import json

    assert json.loads(b.stdout) == a


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["nope@1.0.0", "C-99", "2020-01-01T00-00-00Z-dead", "detector@9.9.9", "demo@7.0.0",
                                 "detector@staging"])
def test_unknown_ref_is_not_found_with_a_fix(story, ref):
    r = story.lv("lineage", ref)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert "fix:" in r.stderr
    assert r.stdout == ""


def test_unknown_ref_in_the_api_raises_notfound(story):
    from lensvault.errors import NotFound

    with pytest.raises(NotFound) as ei:
        story.vault.lineage("nope@1.0.0")
    assert ei.value.fix


def test_bad_direction_and_format_are_usage_errors(story):
    r = story.lv("lineage", "detector@1.0.0", "--format", "svg")
    assert r.returncode == 2 and "svg" in r.stderr
