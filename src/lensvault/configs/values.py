"""Training/eval config files: load, flatten, diff, hash and find the seed.

A config is a plain nested mapping once loaded; the format (YAML/JSON/TOML) only matters
at the edge. Its identity is the sha256 of :func:`canonical_bytes`, so the same settings
written in two formats or key orders are the same config.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lensvault.bounded import MAX_DEPTH, too_deep
from lensvault.errors import InputError, NotFound, UsageError

__all__ = [
    "CONFIG_ID_RE",
    "canonical_bytes",
    "diff_configs",
    "find_seed",
    "find_seeds",
    "flatten",
    "load_config",
    "next_config_id",
    "unflatten",
    "validate_config_id",
]

CONFIG_ID_RE = re.compile(r"^C-[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
_NUMBERED_ID_RE = re.compile(r"^C-([0-9]+)$")

_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}

# Leaf names that hold a random seed, and parents preferred when several do (the training
# seed is the one that decides the run; a data-split seed is secondary).
_SEED_NAMES = ("seed", "random_seed", "rng_seed", "manual_seed", "global_seed")
_SEED_PARENTS = ("", "training", "train", "trainer", "experiment", "solver", "optim", "model", "data", "dataset")


# --------------------------------------------------------------------------- loading


def load_config(path: str | os.PathLike[str]) -> dict:
    """Parse a YAML, JSON or TOML file (chosen by suffix) into a dict.

    Malformed content raises :class:`InputError` located at ``file:line:column``.
    An empty YAML file is an empty config.
    """
    p = Path(path)
    kind = _SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise InputError(
            f"unsupported config format {p.suffix or '(no suffix)'!r}",
            where=str(p),
            fix="use a .yaml, .yml, .json or .toml file",
        )
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound("config file does not exist", where=str(p), fix="check the path") from exc
    except IsADirectoryError as exc:
        raise InputError("config path is a directory", where=str(p), fix="give the config file itself") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
        raise InputError(
            "config is UTF-16 text, not UTF-8" if utf16 else f"config is not UTF-8 text (bad byte at offset {exc.start})",
            where=str(p),
            fix="save the file as UTF-8",
        ) from exc
    if kind == "json" and not text.strip():
        raise InputError("config file is empty", where=str(p), fix="write a JSON object, e.g. {\"seed\": 42}")
    data = {"yaml": _parse_yaml, "json": _parse_json, "toml": _parse_toml}[kind](text, p)
    if data is None and kind == "yaml":
        return {}
    if not isinstance(data, dict):
        raise InputError(
            f"config must be a mapping at the top level, got {type(data).__name__}",
            where=str(p),
            fix="put the settings under keys, e.g. `model: {architecture: yolov8n}`",
        )
    deep = too_deep(data)
    if deep is not None:
        # Flattening, hashing and diffing walk the config recursively.
        raise InputError(
            f"config nests more than {MAX_DEPTH} levels deep",
            where=f"{p}: {deep}",
            fix="flatten the structure; no real setting needs that depth",
        )
    return data


def _located(p: Path, line: int | None, column: int | None) -> str:
    if line is None:
        return str(p)
    return f"{p}:{line}" + (f":{column}" if column else "")


@functools.cache
def _strict_yaml_loader() -> type:
    """The bounded SafeLoader (no alias bombs, no runaway nesting) that also refuses
    duplicate keys (PyYAML keeps the last one without a word)."""
    import yaml

    from lensvault.bounded import yaml_loader

    class StrictSafeLoader(yaml_loader()):  # type: ignore[misc]  # the base is chosen at run time (C or Python)
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a merged key is the point of merging
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable key: the base constructor reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictSafeLoader


def _parse_yaml(text: str, p: Path) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_strict_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise InputError(
            f"malformed YAML: {exc.problem or exc.context}",
            where=_located(p, line, column),
            fix="fix the YAML syntax at that line (check indentation and quoting)",
            line=line,
            column=column,
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"malformed YAML: {exc}", where=str(p), fix="fix the YAML syntax") from exc
    except RecursionError as exc:  # the loader stops at MAX_DEPTH first; this is a last resort
        raise InputError(f"YAML nests more than {MAX_DEPTH} levels deep", where=str(p),
                         fix="flatten the structure") from exc


def _parse_json(text: str, p: Path) -> Any:
    def refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                # json.loads would keep the last value silently; the hook gets no position.
                raise InputError(
                    f"malformed JSON: duplicate key {key!r}",
                    where=str(p),
                    fix=f"keep only one {key!r} in that object",
                )
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=refuse_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"malformed JSON: {exc.msg}",
            where=_located(p, exc.lineno, exc.colno),
            fix="fix the JSON syntax at that line (trailing commas and single quotes are not JSON)",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    except RecursionError as exc:
        raise InputError(f"JSON nests more than {MAX_DEPTH} levels deep", where=str(p),
                         fix="flatten the structure") from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise InputError(f"malformed JSON: {exc}", where=str(p), fix="write numbers of a sensible size") from exc


_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _parse_toml(text: str, p: Path) -> Any:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # Python 3.11's TOMLDecodeError has no lineno attribute; the position is in the message.
        message = str(exc)
        m = _TOML_POS_RE.search(message)
        line, column = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        raise InputError(
            f"malformed TOML: {_TOML_POS_RE.sub('', message).strip()}",
            where=_located(p, line, column),
            fix="fix the TOML syntax at that line",
            line=line,
            column=column,
        ) from exc
    except RecursionError as exc:
        raise InputError(f"TOML nests more than {MAX_DEPTH} levels deep", where=str(p),
                         fix="flatten the structure") from exc
    except ValueError as exc:  # tomllib lets int()'s 4,300-digit limit escape
        raise InputError(f"malformed TOML: {exc}", where=str(p), fix="write numbers of a sensible size") from exc


# --------------------------------------------------------------------------- flatten / diff


def flatten(d: Mapping, *, sep: str = ".") -> dict[str, Any]:
    """Nested mappings to one level with dotted keys: ``{"model": {"lr": 1}} -> {"model.lr": 1}``.

    Lists stay whole values (an augmentation pipeline is one setting, not N). Empty mappings
    are kept as ``{}`` leaves so that flattening loses nothing. Non-string keys (YAML ``0:``)
    become their ``str``. Two paths that flatten to the same key (``{"a.b": 1, "a": {"b": 2}}``)
    raise :class:`InputError` instead of silently dropping one.
    """
    out: dict[str, Any] = {}
    _flatten_into(out, d, "", sep)
    return out


def _flatten_into(out: dict[str, Any], d: Mapping, prefix: str, sep: str) -> None:
    for key, value in d.items():
        name = f"{prefix}{_key_name(key)}"
        if isinstance(value, Mapping) and value:
            _flatten_into(out, value, name + sep, sep)
            continue
        if name in out:
            raise InputError(
                f"config key {name!r} is defined twice once nested keys are joined with {sep!r}",
                where=name,
                fix=f"rename the key that contains {sep!r}",
            )
        out[name] = {} if isinstance(value, Mapping) else value


def unflatten(flat: Mapping[str, Any], *, sep: str = ".") -> dict:
    """Inverse of :func:`flatten` for configs whose keys contain no ``sep``."""
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(sep)
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"config key {key!r} is both a value and a section", where=key)
        node[leaf] = value
    return out


def diff_configs(a: Mapping, b: Mapping) -> dict[str, dict]:
    """What changed from config ``a`` to config ``b``, by dotted key.

    Returns ``{"added": {k: new}, "removed": {k: old}, "changed": {k: (old, new)}}``, each
    sorted by key. Values compare by their canonical JSON, so ``1`` vs ``1.0`` vs ``true``
    are changes (a framework may treat them differently) while NaN equals NaN.
    """
    fa, fb = flatten(a), flatten(b)
    added = {k: fb[k] for k in sorted(fb.keys() - fa.keys())}
    removed = {k: fa[k] for k in sorted(fa.keys() - fb.keys())}
    changed = {
        k: (fa[k], fb[k])
        for k in sorted(fa.keys() & fb.keys())
        if canonical_bytes(fa[k]) != canonical_bytes(fb[k])
    }
    return {"added": added, "removed": removed, "changed": changed}


# --------------------------------------------------------------------------- canonical form


def canonical_bytes(d: Any) -> bytes:
    """Deterministic UTF-8 JSON (sorted keys, no whitespace) for hashing a config.

    Dates and times (YAML and TOML have them) become ISO strings; non-string keys become
    their ``str``; NaN/Infinity are written as JSON's non-standard literals so they still
    hash stably.
    """
    return json.dumps(
        _jsonable(d, "$"), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
    ).encode("utf-8")


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = _key_name(key)
            if name in out:
                raise InputError(
                    f"config has two keys that both read as {name!r}",
                    where=f"{where}.{name}",
                    fix="keep only one of them (e.g. `1:` and `'1':`)",
                )
            out[name] = _jsonable(item, f"{where}.{name}")
        return out
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, (_dt.date, _dt.time)):  # datetime is a date
        return value.isoformat()
    raise InputError(
        f"config value of type {type(value).__name__} cannot be stored",
        where=where,
        fix="use strings, numbers, booleans, lists and mappings",
    )


def _key_name(key: Any) -> str:
    """How a non-string key (YAML allows ``0:``, ``on:``, ``2024-01-01:``) is spelled once it is text."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    return str(key)


# --------------------------------------------------------------------------- seeds


def find_seeds(d: Mapping) -> dict[str, int]:
    """Every integer seed in the config by dotted key (``seed``, ``training.seed``, ``data.random_seed``...)."""
    seeds: dict[str, int] = {}
    for key, value in flatten(d).items():
        leaf = key.rsplit(".", 1)[-1].lower()
        if leaf not in _SEED_NAMES:
            continue
        number = _as_seed(value)
        if number is not None:
            seeds[key] = number
    return seeds


def find_seed(d: Mapping) -> int | None:
    """The seed that decides a run: top-level first, then under training-like sections.

    ``seed: null`` means "pick one at random" in most frameworks, so it is not a seed.
    """
    seeds = find_seeds(d)
    if not seeds:
        return None

    def rank(key: str) -> tuple:
        parent, _, leaf = key.rpartition(".")
        parent_rank = _SEED_PARENTS.index(parent.lower()) if parent.lower() in _SEED_PARENTS else len(_SEED_PARENTS)
        return (parent_rank, key.count("."), _SEED_NAMES.index(leaf.lower()), key)

    return seeds[min(seeds, key=rank)]


def _as_seed(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    # A "seed" of thousands of digits is no seed (and int() refuses more than 4,300 digits).
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,100}", value.strip()):
        return int(value)
    return None


# --------------------------------------------------------------------------- ids


def validate_config_id(s: str) -> str:
    """Return ``s`` if it is a config ID such as ``C-01`` or ``C-23c``; raise UsageError otherwise."""
    if not isinstance(s, str) or not CONFIG_ID_RE.fullmatch(s):
        raise UsageError(
            f"invalid config id {s!r}",
            where=str(s),
            fix="config ids start with 'C-' then a letter or digit, then up to 63 of [0-9A-Za-z._-], e.g. C-01 or C-23c",
        )
    return s


def next_config_id(existing: Iterable[str]) -> str:
    """The next numbered ID after the highest ``C-<digits>`` in ``existing``.

    Hand-picked IDs such as ``C-23c`` or ``C-baseline`` are left out of the numbering. The
    number is zero-padded to the widest numbered ID seen (at least two digits), so a list of
    IDs sorts the same as text and as numbers.
    """
    taken = set(existing)
    numbers = [(int(m.group(1)), len(m.group(1))) for m in map(_NUMBERED_ID_RE.fullmatch, taken) if m]
    highest = max((n for n, _ in numbers), default=0)
    width = max([2, *(w for _, w in numbers)])
    # Every numbered ID is <= highest, and hand-picked ones contain a non-digit: no collision.
    return f"C-{highest + 1:0{width}d}"
