"""Hostile config and label-map files: alias bombs, recursive aliases, runaway nesting,
values PyYAML/json/tomllib let escape as tracebacks — each a located InputError."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lensvault.configs.values import canonical_bytes, find_seed, flatten, load_config
from lensvault.errors import InputError

BOMB = "".join(
    [f'a: &a [{", ".join(["lol"] * 9)}]\n']
    + [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefg", "bcdefgh")]
    + [f"i: [{', '.join(['*h'] * 9)}]\n"]
)

BOUNDED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from lensvault.configs.values import canonical_bytes, flatten, load_config
from lensvault.errors import InputError
try:
    values = load_config(sys.argv[1])
    canonical_bytes(values), flatten(values)
    print("loaded")
except InputError as e:
    print(e.where, "|", e.what)
"""


def test_a_billion_laughs_config_is_refused_quickly(tmp_path):
    """A 349-byte file whose aliases expand to 387 million strings (> 3.5 GB once hashed).
    In a subprocess with a 1 GB address-space limit: a regression fails, it does not take
    the machine down."""
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 400
    r = subprocess.run([sys.executable, "-c", BOUNDED, str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    where, what = r.stdout.strip().split(" | ")
    assert where.startswith(f"{path}:") and "aliases expand" in what and "1,000,000" in what


def test_aliases_and_merge_keys_within_the_limit_still_work(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &base {lr: 0.01, seed: 7, aug: &aug [flip, crop]}\n"
                    "exp: {<<: *base, lr: 0.1, more: *aug}\n")
    values = load_config(path)
    assert values["exp"] == {"lr": 0.1, "seed": 7, "aug": ["flip", "crop"], "more": ["flip", "crop"]}
    assert find_seed(values) == 7


@pytest.mark.parametrize("text, what, where", [
    ("a: &a [*a]\n", "refers to the collection that contains it", ":1:4"),
    ("a: &a {b: *a}\n", "refers to the collection that contains it", ":1:4"),
    ("a: " + "[" * 150 + "]" * 150 + "\n", "nested more than 100 levels", ":1:103"),
    ("a: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested more than 100 levels", ":1:103"),
    ("a: 2024-13-45\n", "cannot read this value", ":1:4"),
    ("seed: " + "1" * 5000 + "\n", "cannot read this value", ":1:7"),
])
def test_yaml_refusals_are_located(tmp_path, text, what, where):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert what in info.value.what and info.value.where == f"{path}{where}", (info.value.what, info.value.where)


@pytest.mark.parametrize("suffix, deep", [
    (".json", '{"a": ' + "[" * 150 + "]" * 150 + "}"),
    (".json", '{"a": ' + "[" * 5000 + "]" * 5000 + "}"),
    (".toml", "a = " + "[" * 150 + "]" * 150 + "\n"),
    (".toml", "a = " + "[" * 5000 + "]" * 5000 + "\n"),
    (".yaml", "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 150)) + "  " * 150 + "v: 1\n"),
])
def test_runaway_nesting_is_refused_in_every_format(tmp_path, suffix, deep):
    """Flattening, hashing and diffing a config recurse: past ~1,000 levels that was a
    RecursionError traceback (json and tomllib hit it while parsing)."""
    path = tmp_path / f"c{suffix}"
    path.write_text(deep)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert "more than 100 levels" in info.value.what and str(path) in info.value.where


@pytest.mark.parametrize("suffix", [".json", ".toml", ".yaml"])
def test_fifty_levels_are_fine(tmp_path, suffix):
    nested: dict = {"v": 1}
    for i in range(49):
        nested = {f"k{i}": nested}
    text = {".json": json.dumps(nested), ".yaml": json.dumps(nested),
            ".toml": "[" + ".".join(f"k{i}" for i in reversed(range(49))) + "]\nv = 1\n"}[suffix]
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    values = load_config(path)
    assert len(flatten(values)) == 1 and canonical_bytes(values)


@pytest.mark.parametrize("suffix, text, what", [
    (".json", '{"seed": ' + "1" * 5000 + "}", "malformed JSON"),
    (".toml", "seed = " + "1" * 5000 + "\n", "malformed TOML"),
    (".json", "", "config file is empty"),
    (".json", "  \n", "config file is empty"),
    (".json", "null", "must be a mapping"),
    (".json", "[1, 2]", "must be a mapping"),
    (".yaml", "- a\n", "must be a mapping"),
    (".yaml", "just text\n", "must be a mapping"),
    (".yaml", "0\n", "must be a mapping"),
])
def test_empty_non_mapping_and_oversized_values(tmp_path, suffix, text, what):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_config(path)
    assert what in info.value.what and str(path) in info.value.where


def test_utf16_configs_say_so(tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes('{"seed": 1}'.encode("utf-16"))
    with pytest.raises(InputError, match="UTF-16"):
        load_config(path)


def test_label_maps_are_bounded_too(tmp_path):
    from lensvault.registry.label_map import read_label_map

    bomb = tmp_path / "labels.yaml"
    bomb.write_text(BOMB.replace("i:", "names:"))
    with pytest.raises(InputError, match="aliases expand"):
        read_label_map(bomb)
    deep = tmp_path / "labels.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(InputError, match="not valid JSON"):
        read_label_map(deep)
    deep.write_text('{"names": ' + "[" * 150 + '"a"' + "]" * 150 + "}")
    with pytest.raises(InputError, match="more than 100 levels"):
        read_label_map(deep)
    huge = tmp_path / "labels2.json"
    huge.write_text('{"classes": [{"id": 1e999, "name": "a"}]}')
    with pytest.raises(InputError, match="class ids must be integers"):
        read_label_map(huge)


def test_config_add_cli_refuses_a_bomb_with_exit_code_6(tmp_path):
    import lensvault

    lensvault.init(tmp_path / "v").close()
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    r = subprocess.run([sys.executable, "-m", "lensvault.cli.main", "--vault", str(tmp_path / "v"), "config", "add",
                        str(path), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 6 and "Traceback" not in r.stderr
    err = json.loads(r.stdout)
    assert err["error"] == "InputError" and err["where"].startswith(f"{path}:") and "aliases expand" in err["what"]


# ---------------------------------------------------------------- fuzz

from datetime import timedelta  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                     st.text(max_size=12), st.sampled_from(["2024-13-45", "1" * 5000, "seed", "<<", "~", "..",
                                                            "/etc/passwd", "Infinity"]))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(["seed", "a.b"])),
                                                 inner, max_size=4)), max_leaves=15)
_DEEP = st.sampled_from([60, 99, 100, 101, 150, 2000, 20000])
_SNIPPETS = st.one_of(
    st.just(BOMB), st.sampled_from(["a: &a [*a]\n", "a: &a {b: *a}\n", "a: !!python/object:os.system [ls]\n",
                                    "a: !!binary '@@'\n", "? [1, 2]\n: x\n", "a: 1\na: 2\n", "<<: 5\n", "---\na: 1\n---\nb: 2\n",
                                    "a: *nope\n", "\t- x\n", "a: [1\n", '{"a": NaN}', '{"a": 1, "a": 2}', "[a]\nb = 1\n[a]\n",
                                    "a = 1979-05-27T07:32:00Z\n", "\ufeffa: 1\n", "a: 0x_\n"]),
    _DEEP.map(lambda n: "a: " + "[" * n + "]" * n + "\n"),
    _DEEP.map(lambda n: '{"a": ' + "[" * n + "]" * n + "}"),
    _DEEP.map(lambda n: "a = " + "[" * n + "]" * n + "\n"),
    st.sampled_from([60, 99, 100, 101, 150]).map(  # block style: text grows with the square of the depth
        lambda n: "".join("  " * i + f"k{i}:\n" for i in range(n)) + "  " * n + "v: 1\n"),
    st.text(max_size=60),
)


@st.composite
def _config_files(draw) -> tuple[str, str]:
    import tomli_w
    import yaml

    suffix = draw(st.sampled_from([".yaml", ".json", ".toml"]))
    if draw(st.booleans()):
        return suffix, draw(_SNIPPETS)
    value = draw(st.dictionaries(st.text(max_size=8), _VALUES, max_size=5))
    try:
        text = {".yaml": lambda: yaml.safe_dump(value, allow_unicode=True),
                ".json": lambda: json.dumps(value), ".toml": lambda: tomli_w.dumps(value)}[suffix]()
    except (TypeError, ValueError, yaml.YAMLError):
        text = json.dumps(value) if suffix == ".json" else "a: 1\n"
    return suffix, text


@settings(max_examples=250, deadline=timedelta(seconds=20), derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=_config_files())
def test_config_loader_fuzz(tmp_path, case):
    """A located InputError or a config that flattens, hashes, diffs and yields its seed."""
    from lensvault.configs.values import diff_configs
    from lensvault.errors import LensVaultError

    suffix, text = case
    path = tmp_path / f"c{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        values = load_config(path)
        canonical_bytes(values)
        flatten(values)
        find_seed(values)
        diff_configs(values, values)
    except LensVaultError as e:
        assert e.where and e.what, e


def test_a_seed_of_thousands_of_digits_is_no_seed():
    """Found by the fuzzer: int() refuses more than 4,300 digits (a ValueError traceback)."""
    assert find_seed({"seed": "1" * 5000}) is None
    assert find_seed({"seed": "-" + "7" * 100}) == -int("7" * 100)
