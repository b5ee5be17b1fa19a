"""Helpers every importer shares: located errors, parsing, image headers, class files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NoReturn

from lensvault.errors import AnnotationError
from lensvault.annotations.model import Finding

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


def fail(what: str, file: str | os.PathLike, location: str = "", *, fix: str,
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


def read_json(path: Path) -> Any:
    import orjson

    try:
        with open(path, "rb") as f:
            data = f.read()
        try:
            # orjson parses a 27 MB COCO file in about half json's time. Anything it
            # refuses (UTF-16, NaN, huge integers, bad syntax) goes to json, which
            # accepts what it always did and locates the error by line and column.
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            return json.loads(data)
    except json.JSONDecodeError as e:
        fail(f"invalid JSON: {e.msg}", path, f"line {e.lineno} column {e.colno}",
             fix="repair the JSON syntax at that position (a truncated download or a stray comma?)",
             code="bad-json")
    except UnicodeDecodeError as e:
        fail(f"not UTF-8 text: {e.reason}", path, f"byte {e.start}",
             fix="save the file as UTF-8", code="bad-json")
    except OSError as e:
        fail(f"cannot read annotation file: {e.strerror}", path, fix="check the path and permissions",
             code="unreadable-file")


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        loc = f"line {mark.line + 1} column {mark.column + 1}" if mark else ""
        fail(f"invalid YAML: {e.problem}", path, loc, fix="repair the YAML syntax at that position",
             code="bad-yaml")
    except yaml.YAMLError as e:
        fail(f"invalid YAML: {e}", path, fix="repair the YAML syntax", code="bad-yaml")


def read_xml(path: Path):
    import xml.etree.ElementTree as ET

    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        line, col = e.position
        fail(f"invalid XML: {e.msg if hasattr(e, 'msg') else e}", path, f"line {line} column {col + 1}",
             fix="repair the XML at that position (unclosed tag or truncated file?)", code="bad-xml")


def read_class_names(path: Path) -> list[str]:
    """Class names in id order from a ``--classes`` file: one per line, or a YAML/JSON list
    (a YAML/JSON mapping id → name, or a ``names:`` key as in data.yaml, also works)."""
    if path.suffix.lower() in {".yaml", ".yml", ".json"}:
        data = read_json(path) if path.suffix.lower() == ".json" else read_yaml(path)
        if isinstance(data, dict) and "names" in data:
            data = data["names"]
        if isinstance(data, dict):
            try:
                return [str(data[k]) for k in sorted(data, key=int)]
            except ValueError:
                fail("class mapping keys must be integer ids", path, fix="use `0: name` entries or a list")
        if isinstance(data, list):
            return [str(n) for n in data]
        fail("expected a list of class names", path, fix="write one class name per list item")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        fail(f"cannot read class file: {e.strerror}", path, fix="check the --classes path")
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


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


def image_info(path: Path | bytes, display: str | None = None) -> tuple[int, int, int]:
    """(width, height, EXIF orientation) of an image, judged by decoders (``media.inspect_image``).

    While ``bad_images.collecting()`` is active (every ``importers.load``), a bad image is
    recorded there and the import goes on, so all bad images are reported together; the
    size returned is the header's, or (0, 0) when no decoder can read even that. Outside
    it, a bad image raises the located error at once.
    """
    from lensvault.annotations.bad_images import current, finding_for
    from lensvault.media import inspect_image

    where = display or str(path)
    report = inspect_image(path)
    if report.problem is None:
        return report.width, report.height, report.orientation
    collector = current()
    if collector is None:
        finding = finding_for(where, report, "error")
        fail(finding.message, where, fix="re-copy or re-download the image, or remove it from the dataset",
             code=finding.code)
    size_known = bool(report.width and report.height)
    collector.add(where, finding_for(where, report), size_known=size_known)
    return (report.width, report.height, report.orientation) if size_known else (0, 0, 1)


def find_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` in sorted order (stable across file systems)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                out.append(Path(dirpath) / name)
    out.sort()
    return out
