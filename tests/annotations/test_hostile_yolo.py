"""Hostile YOLO datasets: data.yaml and list files cannot make an import read outside the
dataset folder, YAML work is bounded, every value is type-checked and located."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lensvault.annotations import load
from lensvault.errors import AnnotationError

DATA_YAML = "train: images/train\nval: images/val\nnames: [cat, dog]\n"


@pytest.fixture
def yolo(tmp_path, make_image):
    """A small Ultralytics layout; ``yolo(data_yaml)`` rewrites data.yaml and returns the root."""
    root = tmp_path / "ds"
    make_image(root / "images" / "train" / "1.png")
    make_image(root / "images" / "val" / "2.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "labels" / "train" / "1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "labels" / "val" / "2.txt").write_text("1 0.5 0.5 0.4 0.4\n")

    def write(data_yaml: str | bytes = DATA_YAML) -> Path:
        path = root / "data.yaml"
        path.write_bytes(data_yaml if isinstance(data_yaml, bytes) else data_yaml.encode())
        return root

    return write


@pytest.fixture
def outside(tmp_path, make_image) -> Path:
    """A folder beside the dataset that looks like a YOLO split (the old code read it)."""
    other = tmp_path / "other"
    make_image(other / "images" / "9.png")
    (other / "labels").mkdir()
    (other / "labels" / "9.txt").write_text("0 0.1 0.1 0.1 0.1\n")
    return other


def located(root, *, code: str, where: str, **kw) -> AnnotationError:
    with pytest.raises(AnnotationError) as info:
        load(root, format="yolo", **kw)
    err = info.value
    assert err.details["findings"][0]["code"] == code, err.details
    assert err.where == where, err.where
    assert err.fix and err.exit_code == 6
    return err


def test_the_base_dataset_imports(yolo):
    aset = load(yolo(), format="yolo")
    assert aset.images.column("path").to_pylist() == ["images/train/1.png", "images/val/2.png"]
    assert aset.findings == []


# ---------------------------------------------------------------- paths stay inside SRC


@pytest.mark.parametrize("path_key", ["{outside}", "../other", "../../../../../..{outside}"])
def test_data_yaml_path_pointing_elsewhere_is_reported_and_not_read(yolo, outside, path_key):
    path_key = path_key.format(outside=outside)
    root = yolo(f"path: {path_key}\ntrain: images\nval: images/val\nnames: [cat, dog]\n")
    aset = load(root, format="yolo")
    paths = aset.images.column("path").to_pylist()
    assert not any(p.startswith("..") or "9.png" in p for p in paths), paths
    [f] = [f for f in aset.findings if f.code == "outside-root"]
    assert (f.file, f.location, f.level) == ("data.yaml", "key path", "warning")
    with pytest.raises(AnnotationError) as info:
        load(root, format="yolo", strict=True)
    assert "outside-root" in info.value.what


def test_data_yaml_path_inside_the_folder_is_used(yolo):
    root = yolo("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n")
    assert load(root, format="yolo").findings == []
    root = yolo(f"path: {root.absolute()}\ntrain: images/train\nval: images/val\nnames: [cat, dog]\n")
    assert load(root, format="yolo").findings == []


def test_split_paths_outside_the_folder_are_reported_and_not_read(yolo, outside):
    root = yolo(f"train: {outside / 'images'}\nval: images/val\nnames: [cat, dog]\n")
    aset = load(root, format="yolo")
    assert "9.png" not in " ".join(aset.images.column("path").to_pylist())
    [f] = [f for f in aset.findings if f.code == "outside-root"]
    assert (f.file, f.location) == ("data.yaml", "key train") and str(outside) in f.message


def test_roboflow_relative_paths_still_resolve_inside(yolo):
    """Roboflow writes ../train/images: tried without the ../, inside the folder."""
    root = yolo("train: ../images/train\nval: ../images/val\nnames: [cat, dog]\n")
    aset = load(root, format="yolo")
    assert aset.images.column("split").to_pylist() == ["train", "val"] and aset.findings == []


def test_list_file_lines_outside_the_folder_are_refused(yolo, outside):
    root = yolo("train: train.txt\nnames: [cat, dog]\n")
    (root / "train.txt").write_text(f"images/train/1.png\n{outside / 'images' / '9.png'}\n")
    err = located(root, code="outside-root", where="train.txt, line 2")
    assert "not read" in err.what
    (root / "train.txt").write_text(f"{root.absolute() / 'images/train/1.png'}\n")
    assert load(root, format="yolo").images.column("path").to_pylist() == ["images/train/1.png"]


def test_symlinked_annotation_files_leading_outside_are_not_read(yolo, outside, tmp_path):
    root = yolo()
    label = root / "labels" / "train" / "1.txt"
    label.unlink()
    label.symlink_to(outside / "labels" / "9.txt")
    located(root, code="outside-root", where="labels/train/1.txt")

    root = yolo()
    label.unlink()
    label.write_text("0 0.5 0.5 0.2 0.2\n")
    secret = tmp_path / "secret.yaml"
    secret.write_text(DATA_YAML)
    (root / "data.yaml").unlink()
    (root / "data.yaml").symlink_to(secret)
    located(root, code="outside-root", where="data.yaml")
    # Named on the command line (--annotations), the file is the user's choice and is read.
    assert load(root, format="yolo", annotations=secret).images.num_rows == 2

    (root / "data.yaml").unlink()
    (root / "train.txt").symlink_to(tmp_path / "list.txt")
    (tmp_path / "list.txt").write_text("images/train/1.png\n")
    yolo("train: train.txt\nnames: [cat, dog]\n")
    located(root, code="outside-root", where="train.txt")


def test_a_symlinked_class_names_file_leading_outside_is_not_read(tmp_path, make_image):
    root = tmp_path / "ds"
    make_image(root / "images" / "train" / "1.png")
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "train" / "1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "names.txt").write_text("cat\n")
    (root / "obj.names").symlink_to(tmp_path / "names.txt")
    located(root, code="outside-root", where="obj.names")


# ---------------------------------------------------------------- bounded YAML, typed values


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
names: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


BOUNDED = """
import resource, sys
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from lensvault.annotations import load
from lensvault.errors import AnnotationError
try:
    load(Path(sys.argv[1]), format="yolo")
except AnnotationError as e:
    print(e.details["findings"][0]["code"], "|", e.where, "|", e.what)
"""


def test_a_billion_laughs_data_yaml_is_refused(yolo):
    """The 349-byte file used > 3.5 GB once its names were turned into text. Under a 1 GB
    address-space limit, in a subprocess: a regression fails instead of exhausting the machine."""
    r = subprocess.run([sys.executable, "-c", BOUNDED, str(yolo(BOMB))], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    code, where, what = r.stdout.strip().split(" | ")
    assert code == "bad-yaml" and where.startswith("data.yaml, line ") and "aliases expand" in what


@pytest.mark.parametrize("text, what, where", [
    ("names: &n [a, *n]\n", "refers to the collection that contains it", "data.yaml, line 1 column 8"),
    ("names: " + "[" * 500 + "]" * 500 + "\n", "nested more than 100 levels", "data.yaml, line 1 column 107"),
    ("names: [a]\ndate: 2024-13-45\n", "cannot read this value", "data.yaml, line 2 column 7"),
    ("names: [a]\nnc: " + "7" * 5000 + "\n", "cannot read this value", "data.yaml, line 2 column 5"),
])
def test_yaml_work_is_bounded_and_errors_are_located(yolo, text, what, where):
    with pytest.raises(AnnotationError) as info:
        load(yolo(text), format="yolo")
    err = info.value
    assert err.details["findings"][0]["code"] == "bad-yaml"
    assert what in err.what and err.where.startswith(where), (err.what, err.where)


@pytest.mark.parametrize("text, where", [
    ("- train\n- val\n", "data.yaml"),
    ("0\n", "data.yaml"),
    ("just text\n", "data.yaml"),
    ("train: images/train\nnames: {0: [cat]}\n", "data.yaml, names.0"),
    ("train: images/train\nnames: [cat, {dog: 1}]\n", "data.yaml, names[1]"),
    ("train: images/train\nnames: [cat, null]\n", "data.yaml, names[1]"),
    ("train: images/train\nnames: 5\n", "data.yaml, names"),
    ("train: images/train\nnames: {zero: cat}\n", "data.yaml, names.zero"),
    ("train: images/train\nnc: 1000000000000\n", "data.yaml, nc"),
    ("train: images/train\nnc: many\n", "data.yaml, nc"),
    ("train: images/train\nnc: true\n", "data.yaml, nc"),
    ("train: 5\nnames: [cat, dog]\n", "data.yaml, key train"),
    ("train: [images/train, 3]\nnames: [cat, dog]\n", "data.yaml, key train[1]"),
    ("path: [a]\ntrain: images/train\nnames: [cat, dog]\n", "data.yaml, key path"),
    ("train: images/train\nnames: [cat, dog]\nkpt_shape: three\n", "data.yaml, kpt_shape"),
    ("train: images/train\nnames: [cat, dog]\nkpt_shape: [17, 4]\n", "data.yaml, kpt_shape[1]"),
    ("train: images/train\nnames: [cat, dog]\nkpt_shape: [.nan, 3]\n", "data.yaml, kpt_shape[0]"),
])
def test_data_yaml_values_are_type_checked(yolo, text, where):
    located(yolo(text), code="bad-value", where=where)


def test_an_empty_data_yaml_falls_back_to_the_layout(yolo):
    aset = load(yolo(""), format="yolo")
    assert aset.images.column("split").to_pylist() == ["train", "val"]


@pytest.mark.parametrize("line, what", [
    ("0 nan 0.5 0.2 0.2", "'nan'"),
    ("0 0.5 inf 0.2 0.2", "'inf'"),
    ("0 0.5 0.5 1e999 0.2", "'1e999'"),
    ("0 0.1 0.1 0.5 0.1 nan 0.5", "'nan'"),
    ("99999999999 0.5 0.5 0.2 0.2", "out of range"),
])
def test_label_values_are_finite_and_in_range(yolo, line, what):
    root = yolo()
    (root / "labels" / "val" / "2.txt").write_text(f"1 0.5 0.5 0.4 0.4\n{line}\n")
    err = located(root, code="bad-value", where="labels/val/2.txt, line 2")
    assert what in err.what


def test_list_files_and_obj_data_that_are_not_utf8(yolo):
    root = yolo("train: train.txt\nnames: [cat, dog]\n")
    (root / "train.txt").write_bytes(b"images/train/1.png\n\xff\xfe\n")
    located(root, code="bad-value", where="train.txt, byte 19")


PIPE = """
import os, sys
from pathlib import Path
from lensvault.annotations import load
from lensvault.errors import AnnotationError
root = Path(sys.argv[1])
os.mkfifo(root / "images" / "train" / "3.png")
try:
    load(root, format="yolo")
except AnnotationError as e:
    print(e.where, "|", e.details["findings"][0]["code"])
"""


def test_a_pipe_named_like_an_image_is_not_opened(yolo):
    r = subprocess.run([sys.executable, "-c", PIPE, str(yolo())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "images/train/3.png | unreadable-image"


def test_names_too_long_for_the_file_system_are_missing_not_a_traceback(yolo):
    """Found by the fuzzer: Path.is_dir() raises ENAMETOOLONG instead of answering False."""
    long = "a" * 300
    aset = load(yolo(f"path: {long}\ntrain: {long}/images\nval: images/val\nnames: [cat, dog]\n"), format="yolo")
    assert [f.code for f in aset.findings] == ["split-path-missing"]
    root = yolo("train: train.txt\nnames: [cat, dog]\n")
    (root / "train.txt").write_text(f"{long}.png\n")
    located(root, code="malformed", where="train.txt, line 1")
