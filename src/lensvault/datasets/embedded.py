"""Images that exist only inside annotation files become real files of the version.

labelme can store an image as base64 ``imageData`` in its JSON, with no image file beside
it. A version must still have the image as an object the files table names — that is what
checkout writes, export links, ``VisionDataset`` reads, ``verify`` checks and ``gc`` keeps —
so the decoded bytes are stored and a files-table row is added at the image's key (the
path the JSON names, see ``importers/labelme.py``). The rest of the snapshot cannot tell
it from an image that was on disk: a checkout of the version has the file, and snapshotting
that checkout gives the same files table. The source folder itself is never written to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.datasets.files_table import FileRows
from lensvault.errors import InputError
from lensvault.hashing import HEAD
from lensvault.media import sniff

if TYPE_CHECKING:
    from lensvault.annotations.model import EmbeddedImage
    from lensvault.store.base import ObjectStore

__all__ = ["with_embedded"]


def with_embedded(store: ObjectStore, files: FileRows, embedded: dict[str, EmbeddedImage]) -> FileRows:
    """``files`` plus one row per embedded image (``{key: EmbeddedImage}``), its bytes stored."""
    if not embedded:
        return files
    from lensvault.annotations.importers.labelme import embedded_bytes  # the one format that embeds images

    taken = set(files.paths)
    paths, sizes, oids = list(files.paths), list(files.sizes), list(files.oids)
    media, widths, heights = list(files.media_types), list(files.widths), list(files.heights)
    for key in sorted(embedded):
        image = embedded[key]
        if key in taken:
            raise InputError("a file appeared where an image embedded in a labelme file is stored",
                             where=key, fix="run the command again (the folder changed during the snapshot)")
        data = embedded_bytes(image)
        oid = store.put_bytes(data)
        mt, w, h = sniff(key, data[:HEAD])
        paths.append(key)
        sizes.append(len(data))
        oids.append(oid)
        media.append(mt)
        widths.append(w)
        heights.append(h)
    out = FileRows(paths, sizes, oids, media, widths, heights)
    # What the ingest found, carried over: the commit checks the fresh objects, warnings stay.
    out.fresh = None if files.fresh is None else files.fresh.union(oids[len(files.oids):])
    out.damaged = files.damaged
    return out
