"""Helpers every importer shares: located errors, parsing, image headers, class files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lensvault.annotations.model import Finding
from lensvault.bounded import MAX_DEPTH
from lensvault.errors import AnnotationError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

SPLIT_ALIASES = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".jfif", ".jpe", ".pgm", ".ppm"}
)


def normalize_split(name: str | None) -> str | None:
    """Roboflow says "valid", Ultralytics "val": one name so splits compare across formats."""
    if name is None:
        return None
    name = name.strip()
    return SPLIT_ALIASES.get(name.lower(), name) if name else None


def fail(what: str, file: str | os.PathLike[str], location: str = "", *, fix: str,
         code: str = "malformed") -> NoReturn:
    finding = Finding("error", code, what, str(file), location)
    where = f"{file}, {location}" if location else str(file)
    raise AnnotationError(what, where=where, fix=fix, findings=[finding.to_dict()])


def fail_all(what: str, where: str, findings: list[Finding], *, fix: str) -> NoReturn:
    """One error carrying several located findings (every bad image of an import)."""
    raise AnnotationError(what, where=where, fix=fix, findings=[f.to_dict() for f in findings])


def rel(path: Path, root: Path) -> str:
    """POSIX path of ``path`` relative to the dataset root (the model's image key)."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return Path(os.path.relpath(path, root)).as_posix()


def read_head(path: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of a regular file, b"" for anything else.

    Format sniffing reads no more than this: a 10 GB file costs the same as a small one,
    and a pipe named ``x.json`` (whose ``open`` would wait forever) is never opened.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            fail("not a regular file (a folder, pipe or device)", shown,
                 fix="point at the annotation file itself", code="unreadable-file")
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        fail(f"cannot read annotation file: {e.strerror}", shown, fix="check the path and permissions",
             code="unreadable-file")


def read_json(path: Path, shown: str | None = None) -> Any:
    """Parse an annotation JSON file; every failure is a located AnnotationError.

    ``shown`` is how the file is named in errors (its path relative to the dataset root).
    """
    import orjson

    shown = shown or str(path)
    data = _read_bytes(path, shown)
    if not data or data.isspace():  # isspace stops at the first other byte; strip() could copy 1 GB
        fail("the annotation file is empty", shown, fix="re-export or re-download it (a failed write?)",
             code="bad-json")
    try:
        try:
            # orjson parses a 27 MB COCO file in about half json's time. Anything it
            # refuses (UTF-16, NaN, huge integers, bad syntax) goes to json, which
            # accepts what it always did and locates the error by line and column.
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        fail_json(e, shown)


def fail_json(e: ValueError | RecursionError, shown: str, *, line_col: tuple[int, int] | None = None,
              byte: int | None = None) -> NoReturn:
    """The error for json's failure ``e`` to parse file ``shown``; ``line_col``/``byte``: where
    in the file, when ``e`` comes from parsing a piece of it (importers/coco_stream.py)."""
    if isinstance(e, json.JSONDecodeError):
        line, column = line_col or (e.lineno, e.colno)
        fail(f"invalid JSON: {e.msg}", shown, f"line {line} column {column}",
             fix="repair the JSON syntax at that position (a truncated download or a stray comma?)",
             code="bad-json")
    if isinstance(e, UnicodeDecodeError):
        fail(f"not UTF-8 text: {e.reason}", shown, f"byte {e.start if byte is None else byte}",
             fix="save the file as UTF-8", code="bad-json")
    if isinstance(e, RecursionError):
        # orjson stops at 1,024 levels and json at Python's recursion limit.
        fail("the JSON is nested too deeply to read (past about 1,000 levels)", shown,
             fix="no annotation format nests like this: check the file is what you meant", code="too-deep")
    # Python refuses to convert an integer of more than 4,300 digits
    fail("invalid JSON: a number has more than 4,300 digits", shown, fix="write numbers of a sensible size",
         code="bad-json")


def read_yaml(path: Path, shown: str | None = None) -> Any:
    """Parse a YAML annotation file (data.yaml) with the bounded loader: aliases that expand
    past a million values, and nesting past ``MAX_DEPTH``, are errors with line and column."""
    import yaml

    from lensvault.bounded import yaml_loader

    shown = shown or str(path)
    data = _read_bytes(path, shown)
    try:
        return yaml.load(data, Loader=yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        loc = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        fail(f"invalid YAML: {e.problem}", shown, loc, fix="repair the YAML syntax at that position",
             code="bad-yaml")
    except yaml.YAMLError as e:
        fail(f"invalid YAML: {e}", shown, fix="repair the YAML syntax", code="bad-yaml")
    except RecursionError:
        fail(f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)", shown, fix="flatten the structure",
             code="too-deep")


def read_xml(path: Path, shown: str | None = None) -> Element:
    """Parse an XML annotation file (regular files only, like every reader here)."""
    import xml.etree.ElementTree as ET

    shown = shown or str(path)
    data = _read_bytes(path, shown)
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        line, col = e.position
        fail(f"invalid XML: {e.msg if hasattr(e, 'msg') else e}", shown, f"line {line} column {col + 1}",
             fix="repair the XML at that position (unclosed tag or truncated file?)", code="bad-xml")


IGNORE_LABEL = "__ignore__"  # labelme's "not a class" label (id -1 in its labels.txt)


def read_class_list(path: Path, shown: str | None = None, *, labelme_ignore: bool = True) -> tuple[list[int], list[str]]:
    """(ids, names) from a ``--classes`` file: one name per line or a YAML/JSON list (ids 0..n-1
    in order), or a YAML/JSON mapping id → name (or a ``names:`` key as in data.yaml), whose ids
    are kept as given, gaps included (``{0: cat, 5: dog}``).

    With ``labelme_ignore``, labelme's ``__ignore__`` — first in its labels.txt, as id -1 — is
    not a class: it is left out, and the names after it are numbered from 0 as labelme numbers
    them (``__ignore__, _background_, dog`` gives ``_background_`` 0, ``dog`` 1).
    """
    shown = shown or str(path)
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        data = read_json(path, shown) if path.suffix.lower() == ".json" else read_yaml(path, shown)
        if isinstance(data, dict) and "names" in data:
            data = data["names"]
        # Names-only formats (VOC, labelme, masks) take the order; ids need not start at 0.
        items = class_items(data, shown, "names", contiguous=False)
    else:
        data = _read_bytes(path, shown)
        try:
            lines = data.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError as e:
            fail(f"class file is not UTF-8 text: {e.reason}", shown, f"byte {e.start}", fix="save the file as UTF-8",
                 code="bad-value")
        items = list(enumerate(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")))
    if labelme_ignore and any(name == IGNORE_LABEL for _, name in items):
        listed = isinstance(data, (list, bytes))
        items = [(i, name) for i, name in items if name != IGNORE_LABEL]
        if listed:  # positions, not ids: number what is left as labelme does
            items = list(enumerate(name for _, name in items))
    return [i for i, _ in items], [name for _, name in items]


def class_names(data: Any, file: str, location: str = "names", *, contiguous: bool = True) -> list[str]:
    """Names in id order from a list, or from an ``{id: name}`` mapping (whose ids must be
    0..n-1 with ``contiguous``, as YOLO's are). See :func:`class_items`."""
    return [name for _, name in class_items(data, file, location, contiguous=contiguous)]


def class_items(data: Any, file: str, location: str = "names", *, contiguous: bool = True) -> list[tuple[int, str]]:
    """(id, name) pairs in id order from a list (ids 0..n-1), or from an ``{id: name}`` mapping
    (whose ids must be 0..n-1 with ``contiguous``, as YOLO's are).

    A name is text (a number is taken as its text: YAML reads ``- 1`` as 1); a list, mapping,
    null or boolean where a name belongs is an error, not its ``str()``.
    """
    fix = "write `names: [cat, dog]` or `names: {0: cat, 1: dog}`"
    if isinstance(data, dict):
        keys = list(data)
        bad = next((k for k in keys if not (type(k) is int or (type(k) is str and _is_integer_text(k)))), None)
        if bad is not None:
            fail(f"class id {bad!r} is not an integer", file, f"{location}.{bad}" if location else str(bad), fix=fix,
                 code="bad-value")
        order = sorted(keys, key=int)
        big = next((k for k in order if not -2**31 <= int(k) < 2**31), None)
        if big is not None:
            fail(f"class id {str(big)[:30]} is out of range", file, f"{location}.{str(big)[:30]}" if location else "",
                 fix="class ids are 32-bit integers", code="bad-value")
        if contiguous and [int(k) for k in order] != list(range(len(order))):
            fail(f"class ids must be 0..{len(order) - 1} without gaps, got {[int(k) for k in order][:10]}", file,
                 location, fix="number classes from 0 without gaps")
        if len({int(k) for k in order}) != len(order):
            fail(f"class ids repeat: {[int(k) for k in order][:10]}", file, location, fix=fix, code="bad-value")
        items = [(int(k), f"{location}.{k}" if location else str(k), data[k]) for k in order]
    elif isinstance(data, list):
        items = [(i, f"{location}[{i}]", v) for i, v in enumerate(data)]
    else:
        fail(f"expected a list of class names, got {describe(data)}", file, location, fix=fix, code="bad-value")
    return [(i, class_name(name, file, where, fix=fix)) for i, where, name in items]


def _is_integer_text(text: str) -> bool:
    t = text.strip()
    return (t[1:] if t[:1] == "-" else t).isdecimal()


def class_name(value: Any, file: str, location: str, *, fix: str) -> str:
    """A class name is text; a number is taken as its text (YAML reads ``- 1`` as 1)."""
    if type(value) is str:
        return value
    if type(value) is int or (type(value) is float and value == value):
        return str(value)
    fail(f"a class name is {describe(value)}, not text", file, location, fix=fix, code="bad-value")


def describe(value: Any) -> str:
    """A value's JSON/YAML kind for messages: 'text "abc"', 'NaN', 'a list', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int) and value.bit_length() > 64:
        return "an integer of more than 64 bits"
    if isinstance(value, (int, float)):
        text = repr(value)
        return f"the number {text if len(text) <= 24 else text[:20] + '…'}"
    if isinstance(value, str):
        return f"text {value[:40]!r}" + ("…" if len(value) > 40 else "")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class DirIndex:
    """Existence checks through one directory listing per folder.

    A COCO file names 20,000 images; listing each folder once is much cheaper than
    stat-ing several candidate paths per image.
    """

    def __init__(self) -> None:
        self._dirs: dict[str, frozenset[str]] = {}

    def exists(self, path: Path) -> bool:
        return self.exists_str(str(path))

    def exists_str(self, path: str) -> bool:
        parent, name = os.path.split(os.path.normpath(path))
        names = self._dirs.get(parent)
        if names is None:
            try:
                names = frozenset(os.listdir(parent))
            except OSError:
                names = frozenset()
            self._dirs[parent] = names
        return name in names


def find_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` in sorted order (stable across file systems)."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / name for name in filenames
                   if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."))
    out.sort()
    return out
