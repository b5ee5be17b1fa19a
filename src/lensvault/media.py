"""Media type and image size from a file's first bytes; whether decoders can read an image.

Snapshots record width and height for every image. Opening 50,000 files with
Pillow costs more than hashing them, so the common formats are read from the
header bytes the hasher already has; anything else falls back to Pillow.

``inspect_image`` is what the annotation importers ask before they record an image:
decoders, not guesses, say whether it is readable (see its docstring for the one shortcut).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.ImageFile import ImageFile

__all__ = ["ImageReport", "inspect_image", "sniff"]

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


_Size = tuple[int, int]
_Bytes = bytes | bytearray | memoryview


def _png_size(head: bytes) -> _Size | None:
    if len(head) >= 24 and head[12:16] == b"IHDR":
        w, h = struct.unpack(">II", head[16:24])
        return w, h
    return None


def _jpeg_size(head: bytes) -> _Size | None:
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


def _gif_size(head: bytes) -> _Size | None:
    if len(head) < 10:
        return None
    w, h = struct.unpack("<HH", head[6:10])
    return w, h


def _bmp_size(head: bytes) -> _Size | None:
    if len(head) < 26:
        return None
    w, h = struct.unpack("<ii", head[18:26])
    return w, abs(h)


def _pillow_size(path: str) -> _Size | None:
    try:
        from PIL import Image

        with warnings.catch_warnings():
            # A huge image is still a file we version; the importers report it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except Exception:  # noqa: BLE001 - any decoder error: see below
        # An unreadable image is still a file we version; validation of image
        # content belongs to the annotation importers.
        return None


_SIZERS: dict[str, Callable[[bytes], _Size | None]] = {"image/png": _png_size, "image/jpeg": _jpeg_size, "image/gif": _gif_size, "image/bmp": _bmp_size}


def sniff(path: str, head: bytes) -> tuple[str, int | None, int | None]:
    """(media_type, width, height); width/height are None for non-images."""
    mt = _media_type(path, head)
    if not mt.startswith("image/"):
        return mt, None, None
    size: _Size | None = None
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


# -- is this image readable? ---------------------------------------------------------------

# What a complete file ends with. Entropy-coded JPEG data cannot contain FF D9 (an FF in
# it is always followed by 00 or a restart marker), and a PNG's IEND chunk is always
# the same 12 bytes, so a file that ends with its end marker was not cut short.
_END_MARKERS = {"JPEG": (b"\xff\xd9",), "PNG": (b"\x00\x00\x00\x00IEND\xaeB`\x82",), "GIF": (b";",)}


@dataclass(frozen=True)
class ImageReport:
    """What decoders make of one image. ``problem`` is None for a good image, else one of

    ``unreadable-image`` (no decoder recognises the header: size unknown),
    ``truncated-image`` (the header is fine, the decoder ran out of data),
    ``damaged-image`` (the header is fine, the decoder failed on the data),
    ``image-too-large`` (more pixels than the decode limit: never decoded; a decompression bomb
    or a very large scan), with ``detail`` saying what the decoder said.
    """

    format: str | None
    width: int | None
    height: int | None
    orientation: int = 1
    problem: str | None = None
    detail: str = ""


def inspect_image(source: str | os.PathLike[str] | _Bytes) -> ImageReport:
    """Size, EXIF orientation and readability of an image file (or its bytes).

    Decoders judge: an image is decoded unless the file ends with its format's end
    marker (JPEG EOI, PNG IEND, GIF trailer), which proves it was not cut short —
    decoding every 12-megapixel photo would cost ~50 ms each where the header costs
    ~0.1 ms. So a JPEG with bytes after its end marker is decoded, and is fine; one with
    its last bytes missing is decoded, and is reported as the decoder read it only partly.
    JPEGs are decoded at 1/8 scale (``draft``), which still reads all of their data.
    Images over Pillow's ``MAX_IMAGE_PIXELS`` are never decoded (bounded work on hostile
    files). Never raises for bad bytes; an unreadable file (permissions) is reported too.
    """
    from PIL import Image

    data: _Bytes | None
    target: str | os.PathLike[str] | IO[bytes]
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, target = source, io.BytesIO(source)
    else:
        data, target = None, source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(target)
    except Image.DecompressionBombError as e:
        width, height = _declared_size(source) or (None, None)
        return ImageReport(None, width, height, problem="image-too-large", detail=str(e))
    except Image.UnidentifiedImageError:
        return ImageReport(None, None, None, problem="unreadable-image",
                           detail="no image decoder recognises this file's header")
    except Exception as e:  # noqa: BLE001 - hostile bytes reach plugin code that raises anything
        return ImageReport(None, None, None, problem="unreadable-image", detail=_message(e))
    with im:
        fmt = im.format
        width, height = im.size
        limit = Image.MAX_IMAGE_PIXELS
        if limit and width * height > limit:
            return ImageReport(fmt, width, height, _orientation(im, data), "image-too-large",
                               f"{width}x{height} = {width * height:,} pixels is more than the decode limit "
                               f"of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS)")
        if _ends_with_marker(fmt, im.fp if data is None else None, data):
            return ImageReport(fmt, width, height, _orientation(im, data))
        try:
            if fmt == "JPEG":
                im.draft(im.mode, (max(1, width // 8), max(1, height // 8)))
            im.load()
        except Exception as e:  # noqa: BLE001 - as above
            text = _message(e)
            code = "truncated-image" if "truncated" in text or isinstance(e, EOFError) else "damaged-image"
            return ImageReport(fmt, width, height, _orientation(im, data), code, f"{fmt} decoder: {text}")
        return ImageReport(fmt, width, height, _orientation(im, data, decoded=True))


def _message(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _orientation(im: ImageFile, data: _Bytes | None, *, decoded: bool = False) -> int:
    """EXIF orientation (1–8), 1 when absent or unreadable."""
    from PIL import Image

    try:
        if im.format == "PNG" and "exif" not in im.info and not decoded:
            # Pillow's PNG getexif() decodes the whole image to reach an eXIf chunk after
            # the pixels; walking the chunk headers finds it for the cost of a few reads.
            fp = im.fp if data is None else io.BytesIO(data)
            raw = _png_exif_chunk(fp) if fp is not None else None  # no file: no eXIf, orientation 1
            exif = Image.Exif()
            if raw:
                exif.load(raw)
        else:
            exif = im.getexif()
        value = int(exif.get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not hide a usable image
        return 1
    return value if 1 <= value <= 8 else 1


def _png_exif_chunk(fp: IO[bytes]) -> bytes | None:
    """The data of a PNG's eXIf chunk, found by reading only chunk headers (8 bytes each)."""
    where = fp.tell()
    try:
        fp.seek(8)
        while True:
            head = fp.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            if kind == b"eXIf":
                return fp.read(length)
            if kind == b"IEND":
                return None
            fp.seek(length + 4, os.SEEK_CUR)  # the data and its CRC
    finally:
        fp.seek(where)


def _ends_with_marker(fmt: str | None, fp: IO[bytes] | None, data: _Bytes | None) -> bool:
    """The image ends with its format's end marker. ``fp`` is the file Pillow opened (its last
    16 bytes are read; its position is restored for the decoder), or ``data`` the bytes."""
    markers = _END_MARKERS.get(fmt or "")
    if not markers:
        return False
    if data is not None:
        tail = bytes(data[-16:])
    elif fp is None:
        return False
    else:
        try:
            where = fp.tell()
            size = fp.seek(0, os.SEEK_END)
            fp.seek(max(0, size - 16))
            tail = fp.read(16)
            fp.seek(where)
        except (OSError, AttributeError, ValueError):
            return False
    return tail.endswith(markers)


def _declared_size(source: str | os.PathLike[str] | _Bytes) -> _Size | None:
    """Width and height from the header bytes, for an image Pillow refuses to open."""
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            head = bytes(source[:65536])
        else:
            with open(source, "rb") as f:
                head = f.read(65536)
    except OSError:
        return None
    mt = _media_type("" if in_memory else str(source), head)
    sizer = _SIZERS.get(mt)
    try:
        return sizer(head) if sizer else None
    except struct.error:
        return None
