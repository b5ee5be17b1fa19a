"""Each command's JSON is built in one place: the result its one library call returns.

A command parses, calls one ``Vault`` method and hands the result to ``emit``, which prints
``result.to_dict()`` (or a renderer's human output). A later REST API returns the same
``to_dict()``; JSON assembled in a command body would be a second, drifting copy. Checked two
ways: every command's body, read as code; and every reading command's ``--json`` against the
same method called through the Python API.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap

import click
import pytest

from tests.cli.conftest import lv

# Names a command body may not call: the JSON printer, serializers, and direct output.
FORBIDDEN = {"echo_json", "dumps", "echo", "secho", "print"}
LITERALS = (ast.Dict, ast.List, ast.DictComp, ast.ListComp, ast.Set, ast.Tuple, ast.JoinedStr)


def _commands():
    from lensvault.cli.main import cli

    ctx = click.Context(cli)
    found = {}

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])
        else:
            found[" ".join(path)] = cmd

    walk(cli, [])
    return found


def _problems(fn) -> list[str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    body = tree.body[0]
    assigned = {t.id: node.value for node in ast.walk(body) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    problems, emits = [], []
    for node in ast.walk(body):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if name == "emit":
            emits.append(node)
        elif name in FORBIDDEN and not _narration(node, body):
            problems.append(f"calls {name}() at line {node.lineno}")
    if len(emits) != 1:
        problems.append(f"calls emit {len(emits)} times (once: the one result of its one library call)")
    for call in emits:
        result = call.args[0]
        if isinstance(result, ast.Name):
            result = assigned.get(result.id, result)
        built_here = isinstance(result, LITERALS) or (
            isinstance(result, ast.Call) and getattr(result.func, "id", "") in ("dict", "list", "tuple"))
        if built_here or not isinstance(result, ast.Call):
            problems.append(f"emits {ast.unparse(call.args[0])}, which the command built itself")
    return problems


def _narration(call, body) -> bool:
    """quickstart's narration: an echo inside the lambda it hands the story-teller."""
    return any(isinstance(n, ast.Lambda) and call in ast.walk(n) for n in ast.walk(body))


def test_no_command_builds_its_json():
    commands = _commands()
    assert len(commands) >= 38  # every leaf command of every group
    problems = {path: p for path, cmd in commands.items() if (p := _problems(cmd.callback))}
    assert problems == {}


def test_the_check_catches_json_built_in_a_command():
    def assembled(ctx, as_json):
        vault = open_vault_from(ctx)  # noqa: F821 (parsed, never run)
        emit({"runs": vault.runs()}, as_json, None)  # noqa: F821

    def printed(ctx, as_json):
        rows = open_vault_from(ctx).runs()  # noqa: F821
        if as_json:
            echo_json(list(rows))  # noqa: F821
        emit(rows, as_json, None)  # noqa: F821

    def built_then_emitted(ctx, as_json):
        d = dict(open_vault_from(ctx).get_run("x"))  # noqa: F821
        emit(d, as_json, None)  # noqa: F821

    assert _problems(assembled) and _problems(printed) and _problems(built_then_emitted)


# --------------------------------------------------------------------------- the same dict through the API


def _api_calls(world, first, second):
    """command → (CLI arguments, the same question through the API)."""
    return {
        "dataset list": (["dataset", "list"], lambda v: v.datasets()),
        "dataset log": (["dataset", "log", "shapes"], lambda v: v.dataset_log("shapes")),
        "dataset show": (["dataset", "show", "shapes@1.0.1", "--files"],
                         lambda v: v.dataset_details("shapes@1.0.1", files=True)),
        "dataset diff": (["dataset", "diff", "shapes@1.0.0", "shapes@1.0.1"],
                         lambda v: v.compare_datasets("shapes@1.0.0", "shapes@1.0.1")),
        "dataset check": (["dataset", "check", "shapes@1.0.1"], lambda v: v.check("shapes@1.0.1")),
        "status": (["status", "files@1.0.0", world / "files"], lambda v: v.status("files@1.0.0", world / "files")),
        "verify": (["verify"], lambda v: v.verify()),
        "gc": (["gc"], lambda v: v.collect_garbage()),
        "events": (["events"], lambda v: v.events()),
        "config list": (["config", "list"], lambda v: v.configs()),
        "config show": (["config", "show", "C-02"], lambda v: v.get_config("C-02")),
        "config diff": (["config", "diff", "C-01", "C-02"], lambda v: v.diff_configs("C-01", "C-02")),
        "preflight": (["preflight", "--dataset", "shapes@1.0.1", "--config", "C-01"],
                      lambda v: v.preflight(dataset="shapes@1.0.1", config="C-01")),
        "runs list": (["runs", "list"], lambda v: v.runs()),
        "runs show": (["runs", "show", first, "--points"], lambda v: v.get_run(first, points=True)),
        "runs log": (["runs", "log", first], lambda v: v.run_log(first)),
        "runs compare": (["runs", "compare", first, second], lambda v: v.compare_runs(first, second)),
        "evals": (["evals"], lambda v: v.evaluations()),
        "model list": (["model", "list"], lambda v: v.models()),
        "model show": (["model", "show", "det@production"], lambda v: v.model("det@production")),
        "model history": (["model", "history", "det"], lambda v: v.model_history("det")),
        "lineage": (["lineage", "det@production"], lambda v: v.lineage("det@production")),
        "why": (["why", first, second, "--allow-different-data"],
                lambda v: v.why(first, second, allow_different_data=True)),
    }


def test_reading_commands_print_what_the_api_returns(world, runs, monkeypatch):
    """… and ``to_dict()`` is JSON as it is (no ``default=str``): what a route can return unchanged."""
    import lensvault

    first, second = runs
    monkeypatch.chdir(world)  # the CLI runs there too (the git repository the preflight reads)
    calls = _api_calls(world, first, second)
    with lensvault.open(world) as vault:
        for command, (args, api) in calls.items():
            r = lv(*args, "--json", cwd=world)
            assert r.returncode in (0, 1), f"{command}: {r.stderr}"
            expected = json.loads(json.dumps(api(vault).to_dict()))
            assert json.loads(r.stdout) == expected, command


@pytest.mark.parametrize("twin", ["snapshot", "fix"])
def test_writing_commands_print_what_the_api_returns(world, twin, monkeypatch):
    """The same write through the CLI and through the API, on twin names: the same JSON."""
    import lensvault

    monkeypatch.chdir(world)  # the `git add` hint is written for the folder it is printed in

    if twin == "snapshot":
        def cli(name):
            return ["dataset", "snapshot", name, "raw", "--format", "coco", "--split", "70/20/10", "--seed", "7",
                    "--version", "1.0.0"]

        def api(v, name):
            return v.snapshot(name, world / "raw", format="coco", split="70/20/10", seed=7, version="1.0.0")
        names = ("seam-cli", "seam-api")
    else:
        for name in ("seam-fix-cli", "seam-fix-api"):
            assert lv("dataset", "snapshot", name, "raw", "--format", "coco", "--version", "1.0.0",
                      cwd=world).returncode == 0

        def cli(name):
            return ["dataset", "fix", f"{name}@1.0.0", "--annotations", "fixed/instances.json"]

        def api(v, name):
            return v.fix(f"{name}@1.0.0", world / "fixed" / "instances.json")
        names = ("seam-fix-cli", "seam-fix-api")
    r = lv(*cli(names[0]), "--json", cwd=world)
    assert r.returncode == 0, r.stderr
    with lensvault.open(world) as vault:
        made = json.loads(json.dumps(api(vault, names[1]).to_dict()))
    printed = json.loads(r.stdout.replace(names[0], names[1]))
    for key in ("snapshot_id",):  # the same content: the same snapshot
        assert printed[key] == made[key]
    assert printed == made
