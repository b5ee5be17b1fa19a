"""Who acts: the name every write records (events, ``created_by``, alias moves, runs).

The acting user is an input of the vault (``lensvault.open(path, actor=...)``), decided at
the edge: the CLI and ``lensvault.open`` use :func:`default_actor`; a server will pass the
user its token names. Nothing below the ``Vault`` reads the environment to find out who
is writing, so two vaults opened on one folder with different actors record each.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from lensvault.errors import UsageError

__all__ = ["MAX_ACTOR", "check_actor", "default_actor"]

MAX_ACTOR = 200  # the width of the catalog's actor and created_by columns


def check_actor(actor: str) -> str:
    """``actor`` as it will be recorded, or a UsageError saying why it cannot be."""
    name = actor.strip() if isinstance(actor, str) else ""
    if not name or len(name) > MAX_ACTOR or any(c in name for c in "\n\r\0"):
        raise UsageError(f"{actor!r} cannot be recorded as the acting user",
                         where="actor",
                         fix=f"pass a non-empty name of one line, at most {MAX_ACTOR} characters "
                             "(e.g. an email address)")
    return name


def default_actor(root: str | os.PathLike | None = None) -> str:
    """LENSVAULT_USER if set, else git's ``user.email`` (or ``user.name``) as configured for
    ``root``, else the OS user."""
    user = os.environ.get("LENSVAULT_USER")
    if user:
        return check_actor(user)
    from lensvault.gitinfo import configured_identity

    found = configured_identity(Path(root) if root is not None else Path.cwd())
    if found:
        return check_actor(found)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
