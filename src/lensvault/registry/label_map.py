"""Label map files: the classes a model predicts, in whatever form a training script left them."""

from __future__ import annotations

import json
from pathlib import Path

from lensvault.errors import InputError

__all__ = ["read_label_map"]


def read_label_map(path: Path) -> dict:
    """A label map file -> ``{"classes": [{"id", "name"}]}``.

    Accepted: our/COCO-like JSON ``{"classes": [{"id", "name"}]}`` or ``{"categories": [...]}``,
    a list of names (ids from 0), a mapping ``{id: name}``, YOLO's ``names:`` (list or
    mapping) in YAML/JSON/TOML, or a text file with one name per line.
    """
    from lensvault.bounded import MAX_DEPTH, too_deep
    from lensvault.configs.values import load_config

    path = Path(path)
    if not path.is_file():
        raise InputError(f"label map {path} is not a file", where=str(path))
    if path.suffix.lower() in (".txt", ".names", ""):
        try:
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except UnicodeDecodeError as e:
            raise InputError(f"label map {path.name} is not UTF-8 text", where=str(path), fix="save it as UTF-8") from e
        return _classes(list(enumerate(names)), path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise InputError(f"label map {path.name} is not valid JSON: {e}", where=str(path)) from e
        deep = too_deep(data)
        if deep is not None:
            raise InputError(f"label map {path.name} nests more than {MAX_DEPTH} levels deep", where=f"{path}: {deep}",
                             fix="write a list of names or {\"classes\": [{\"id\", \"name\"}]}")
    else:
        data = load_config(path)
    if isinstance(data, dict):
        for key in ("classes", "categories", "names", "labels"):
            if key in data:
                data = data[key]
                break
    if isinstance(data, list):
        if all(isinstance(x, dict) for x in data):
            try:
                return _classes([(x["id"], x["name"]) for x in data], path)
            except KeyError:
                raise InputError(f"label map {path.name}: every class needs an id and a name", where=str(path)) from None
        return _classes(list(enumerate(map(str, data))), path)
    if isinstance(data, dict):
        return _classes(list(data.items()), path)
    raise InputError(f"label map {path.name} holds no classes", where=str(path),
                     fix='write {"classes": [{"id": 0, "name": "person"}, ...]} or one name per line')


def _classes(pairs, path) -> dict:
    try:
        rows = sorted(((int(i), str(n)) for i, n in pairs), key=lambda r: r[0])
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"label map {path.name}: class ids must be integers", where=str(path)) from None
    if not rows:
        raise InputError(f"label map {path.name} holds no classes", where=str(path))
    if len({i for i, _ in rows}) != len(rows):
        raise InputError(f"label map {path.name}: a class id repeats", where=str(path))
    return {"classes": [{"id": i, "name": n} for i, n in rows]}
