"""Moving bytes between paths: reflink, hardlink, symlink or copy, with one fallback rule."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil

from lensvault.errors import StorageError, UsageError
from lensvault.store.base import LinkMode

__all__ = ["LinkStrategy"]

_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# Errors that mean "this filesystem or this pair of paths cannot do that kind of link".
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM}


def reflink(src: str, dst: str) -> None:
    with open(src, "rb") as s, open(dst, "wb") as d:
        fcntl.ioctl(d.fileno(), _FICLONE, s.fileno())


class LinkStrategy:
    """Applies a LinkMode, falling back from reflink to copy only in AUTO mode.

    The first unsupported reflink flips AUTO to plain copying for the rest of
    the batch, so a filesystem without reflinks costs one failed ioctl, not one
    per file.
    """

    def __init__(self, mode: LinkMode | str):
        self.mode = LinkMode(mode)
        self._auto_copy = False

    @property
    def effective(self) -> LinkMode:
        if self.mode is LinkMode.AUTO:
            return LinkMode.COPY if self._auto_copy else LinkMode.REFLINK
        return self.mode

    def apply(self, src: str, dst: str) -> LinkMode:
        mode = self.effective
        try:
            if mode is LinkMode.COPY:
                shutil.copyfile(src, dst)
            elif mode is LinkMode.HARDLINK:
                os.link(src, dst)
            elif mode is LinkMode.SYMLINK:
                os.symlink(src, dst)
            else:
                reflink(src, dst)
            return mode
        except OSError as e:
            if mode is LinkMode.REFLINK and e.errno in _UNSUPPORTED:
                _remove_quietly(dst)
                if self.mode is LinkMode.AUTO:
                    self._auto_copy = True
                    shutil.copyfile(src, dst)
                    return LinkMode.COPY
                raise UsageError(
                    "this filesystem does not support reflinks",
                    where=dst,
                    fix="use --link copy (or hardlink), or put the store on btrfs/xfs",
                ) from e
            if mode is LinkMode.HARDLINK and e.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise UsageError(
                    f"cannot hardlink across these paths ({e.strerror})",
                    where=f"{src} -> {dst}",
                    fix="hardlinks need the store and the folder on one filesystem; use --link copy",
                ) from e
            raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def storage_error(e: OSError, where: str) -> StorageError:
    """Translate an OSError from writing into a StorageError with a fix."""
    if e.errno == errno.ENOSPC:
        return StorageError("the disk is full", where=where, fix="free some space (or `lensvault gc --yes`) and run the command again")
    if e.errno == errno.EDQUOT:
        return StorageError("disk quota exceeded", where=where, fix="free some space and run the command again")
    if e.errno == errno.EROFS:
        return StorageError("the file system is mounted read-only", where=where,
                            fix="remount it read-write, or run the command where it can write")
    if e.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"permission denied ({e.strerror})", where=where, fix="check the folder's permissions")
    return StorageError(f"{e.strerror or e}", where=where, fix="check the disk and run the command again")
