"""``lensvault dataset diff A B --html PATH``: the diff page as one self-contained file — the same
template as the server's, the images embedded as JPEG thumbnails — for people who run no server."""

from __future__ import annotations

import base64
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lensvault.vault import Vault

__all__ = ["MAX_IMAGES", "DiffReport", "write_diff_report"]

MAX_IMAGES = 200  # changed images drawn in one report; the rest are counted ("… and N more")
SIZE = 512


@dataclass(frozen=True)
class DiffReport:
    path: str
    images: int
    total: int


def _data_uri(store, oid: str) -> str:
    from PIL import Image, ImageOps

    with store.open(oid) as f, Image.open(f) as opened:
        im = ImageOps.exif_transpose(opened)
        im.thumbnail((SIZE, SIZE))
        out = io.BytesIO()
        im.convert("RGB").save(out, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def _embedded_masks(vault: Vault, ref: str, image_id: int):
    """The report's masks: each picture embedded (made once, as the server makes it)."""
    from lensvault.server.masks import mask_file

    def src(index: int, tint: str = "class") -> str:
        data = mask_file(vault, ref, image_id, index, tint).read_bytes()
        return "data:image/png;base64," + base64.b64encode(data).decode()

    return src


def write_diff_report(vault: Vault, comparison, path) -> DiffReport:
    """Write the report of ``comparison`` (``vault.compare_datasets``) to ``path``, whole or not at all."""
    try:
        from markupsafe import Markup

        from lensvault.server.pages import _env
    except ImportError as e:
        from lensvault.errors import UsageError

        raise UsageError(f"--html needs the server extra ({e.name} is not installed)", where="--html",
                         fix="pip install 'lensvault[server]'") from e
    from lensvault.catalog.catalog import utcnow
    from lensvault.server import svg
    from lensvault.server.diff_view import changed_images

    d = comparison.to_dict()
    changed: list[dict] = []
    total = 0
    if comparison.annotations is not None:
        changed, total = changed_images(vault, d["a"], d["b"], d, 0, MAX_IMAGES)
    uris: dict[str, str] = {}
    for c in changed:
        for side in (c["before"], c["after"]):
            if side is not None and side["sha256"] not in uris:
                uris[side["sha256"]] = _data_uri(vault.store, side["sha256"])
    html = _env().get_template("diff_report.html").render(
        d=d, changed=changed, total=total, thumb=lambda oid, size=SIZE: uris[oid], standalone=True, svg=svg,
        mask_src=lambda ref, image_id: _embedded_masks(vault, ref, image_id),
        colours=svg.CHANGE_COLOURS, Markup=Markup, made_at=utcnow()[:19] + "Z", a=d["a"], b=d["b"])
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
            # mkstemp makes the file 0600; a report is made to be shared: the mode any new file
            # of the user's gets (0666 less the umask).
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return DiffReport(str(target), len(changed), total)
