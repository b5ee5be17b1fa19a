"""Media type and image size from a file's first bytes.

Snapshots record width and height for every image. Opening 50,000 files with
Pillow costs more than hashing them, so the common formats are read from the
header bytes the hasher already has; anything else falls back to Pillow.
"""

from __future__ import annotations

import os
import struct

__all__ = ["sniff"]

_BY_EXT = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".bmp": "image/bmp", ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".json": "application/json", ".xml": "application/xml", ".txt": "text/plain",
    ".yaml": "application/yaml", ".yml": "application/yaml", ".csv": "text/csv",
    ".mp4": "video/mp4", ".avi": "video/x-msvideo", ".mov": "video/quicktime",
    ".npy": "application/x-npy", ".parquet": "application/vnd.apache.parquet",
}


def _media_type(path: str, head: bytes) -> str:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head.startswith(b"BM") and len(head) > 26:
        return "image/bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    ext = os.path.splitext(path)[1].lower()
    if ext in _BY_EXT:
        return _BY_EXT[ext]
    return "application/octet-stream"


def _png_size(head: bytes):
    if len(head) >= 24 and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    return None


def _jpeg_size(head: bytes):
    # Walk the marker segments to the first start-of-frame; EXIF blocks before it
    # can be large, so a miss falls back to Pillow.
    i = 2
    n = len(head)
    while i + 9 < n:
        if head[i] != 0xFF:
            i += 1
            continue
        marker = head[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        seglen = struct.unpack(">H", head[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", head[i + 5 : i + 9])
            return w, h
        i += 2 + seglen
    return None


def _gif_size(head: bytes):
    return struct.unpack("<HH", head[6:10]) if len(head) >= 10 else None


def _bmp_size(head: bytes):
    if len(head) < 26:
        return None
    w, h = struct.unpack("<ii", head[18:26])
    return w, abs(h)


def _pillow_size(path: str):
    try:
        from PIL import Image

        with Image.open(path) as im:
            return im.size
    except Exception:
        # An unreadable image is still a file we version; validation of image
        # content belongs to the annotation importers.
        return None


_SIZERS = {"image/png": _png_size, "image/jpeg": _jpeg_size, "image/gif": _gif_size, "image/bmp": _bmp_size}


def sniff(path: str, head: bytes) -> tuple[str, int | None, int | None]:
    """(media_type, width, height); width/height are None for non-images."""
    mt = _media_type(path, head)
    if not mt.startswith("image/"):
        return mt, None, None
    size = None
    sizer = _SIZERS.get(mt)
    if sizer:
        try:
            size = sizer(head)
        except struct.error:
            size = None
    if size is None:
        size = _pillow_size(path)
    if size is None:
        return mt, None, None
    return mt, int(size[0]), int(size[1])
