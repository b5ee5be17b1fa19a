"""``--format labels``: a path,label CSV or JSON label file (see image_labels)."""

from lensvault.annotations.importers.image_labels import load_label_file as load

__all__ = ["load"]
