"""``--format imagefolder``: CLASS/img.jpg under optional train/ val/ test/ (see image_labels)."""

from lensvault.annotations.importers.image_labels import load_imagefolder as load

__all__ = ["load"]
