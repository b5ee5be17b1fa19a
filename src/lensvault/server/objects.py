"""Stored objects by sha256: the bytes (ETag = the hash, cached for a year, byte ranges) and
thumbnails (made once with Pillow, kept in the vault's machine-local cache until gc finds
their object gone: ``lensvault.image_cache``).

Only a well-formed hash reaches the store (422 otherwise), and only through the store's
interface (``has``, ``stat``, ``open``): no path is ever built from the request.
"""

from __future__ import annotations

import re

from lensvault.server.errors import HTTPProblem

__all__ = ["cached_picture", "kept_thumbnail", "object_response", "thumbnail_response"]

_OID = re.compile(r"^[0-9a-f]{64}$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 256 * 1024
THUMB_SIZES = (128, 256, 512)
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"BM", "image/bmp"), (b"II*\x00", "image/tiff"), (b"MM\x00*", "image/tiff"))


def _checked(store, oid: str) -> int:
    if not _OID.match(oid):
        raise HTTPProblem(422, f"{oid[:80]!r} is not a sha256 (64 lowercase hex digits)", where="oid",
                          fix="use the sha256 a version's file or image lists")
    if not store.has(oid):
        raise HTTPProblem(404, f"no object {oid} in the store", where=oid, fix="check the hash")
    return store.stat(oid).size


def _media_type(data_head: bytes) -> str:
    # Image types by their magic bytes, else octet-stream: a stored file is never served as HTML.
    for magic, media in _MAGIC:
        if data_head.startswith(magic):
            return media
    if data_head[:4] == b"RIFF" and data_head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def _iter(store, oid: str, start: int, length: int):
    with store.open(oid) as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def object_response(request, store, oid: str):
    from starlette.responses import Response, StreamingResponse

    size = _checked(store, oid)
    etag = f'"{oid}"'
    with store.open(oid) as f:
        head = f.read(512)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes",
               "X-Content-Type-Options": "nosniff"}
    media = _media_type(head)
    if request.headers.get("if-none-match") in (etag, oid, "*"):
        return Response(status_code=304, headers=headers)
    spec = request.headers.get("range")
    if spec:
        found = _RANGE.match(spec.strip())
        if not found or found.groups() == ("", ""):
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        first, last = found.groups()
        if first == "":  # the last N bytes
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        length = end - start + 1
        return StreamingResponse(_iter(store, oid, start, length), status_code=206, media_type=media,
                                 headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}",
                                          "Content-Length": str(length)})
    return StreamingResponse(_iter(store, oid, 0, size), media_type=media,
                             headers={**headers, "Content-Length": str(size)})


def thumbnail_response(request, state, oid: str, size: int):
    if size not in THUMB_SIZES:
        raise HTTPProblem(422, f"thumbnail size {size} is not offered", where="size",
                          fix=f"ask for one of {', '.join(map(str, THUMB_SIZES))}")
    from lensvault.image_cache import thumbnail_path

    _checked(state.vault.store, oid)
    path = thumbnail_path(state.vault.dir, oid, size)
    return cached_picture(request, path, lambda: _make_thumbnail(state.vault.store, oid, size, path),
                          media_type="image/jpeg", etag=f'"{oid}-{size}"', cache_control=IMMUTABLE,
                          keep=lambda body: state.keep_picture(("thumbnail", oid, size), body))


def kept_thumbnail(request, state, oid: str, size: int):
    """The answer for a thumbnail this process keeps in memory (or 304), made here on the event
    loop without a worker thread or any file system call, or None (not kept, or its object last
    found in the store too long ago: ``state.picture``): the worker thread answers, with its
    errors and its 404 for an object gc has removed since."""
    body = state.picture(("thumbnail", oid, size)) if size in THUMB_SIZES and _OID.match(oid) else None
    if body is None:
        return None
    return _picture(request, body, media_type="image/jpeg", etag=f'"{oid}-{size}"', cache_control=IMMUTABLE)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (a list, weak or not, or ``*``)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return etag in tags or "*" in tags


def _picture(request, body: bytes | None, *, media_type: str, etag: str, cache_control: str):
    from starlette.responses import Response

    headers = {"ETag": etag, "Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"}
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def cached_picture(request, path, make, *, media_type: str, etag: str, cache_control: str, keep=None):
    """A picture of the machine-local cache (a few kB), made by ``make()`` when missing: read
    here, in the request's worker thread, and sent as one body (a file response would hand
    every open, read and close to the thread pool again); 304 when the client has it.
    ``keep(body)``: given the picture's bytes, to keep them in memory."""
    if _matches(request.headers.get("if-none-match"), etag):
        return _picture(request, None, media_type=media_type, etag=etag, cache_control=cache_control)
    try:
        body = path.read_bytes()
    except FileNotFoundError:  # not made yet, or removed by gc since
        make()
        body = path.read_bytes()
    if keep is not None:
        keep(body)
    return _picture(request, body, media_type=media_type, etag=etag, cache_control=cache_control)


def _make_thumbnail(store, oid: str, size: int, path) -> None:
    from PIL import Image, ImageOps, UnidentifiedImageError

    from lensvault.image_cache import write_atomically

    try:
        with store.open(oid) as f, Image.open(f) as opened:
            im = ImageOps.exif_transpose(opened)
            im.thumbnail((size, size))
            write_atomically(path, lambda out: im.convert("RGB").save(out, "JPEG", quality=85))
    except (UnidentifiedImageError, OSError) as e:
        raise HTTPProblem(422, f"object {oid} is not an image Pillow can read ({e})", where=oid,
                          fix="thumbnails are made of images only") from e
