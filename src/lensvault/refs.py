"""References on the command line and in the API: ``retail@1.1.0``, ``detector@production``.

A ``SemVer`` orders versions the semver.org way (a pre-release sorts before its
release); a ``Ref`` is a name plus either a version or an alias.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from lensvault.errors import InvalidRef

__all__ = ["Ref", "SemVer", "validate_name"]

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# The catalog stores components as 32-bit integers and versions in 100 characters.
_MAX_COMPONENT = 2**31 - 1
_MAX_LEN = 100
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def validate_name(name: str, kind: str = "dataset") -> str:
    if not _NAME.match(name or ""):
        raise InvalidRef(
            f"{name!r} is not a valid {kind} name",
            fix="use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit (max 100)",
        )
    return name


@total_ordering
@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    prerelease: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        m = _SEMVER.match(text.strip().removeprefix("v"))
        if not m:
            raise InvalidRef(
                f"{text!r} is not a semantic version",
                fix="write MAJOR.MINOR.PATCH, e.g. 1.2.0 or 2.0.0-rc.1",
            )
        if m[5]:
            # Build metadata does not order versions (semver.org §10): 1.0.0+fix would
            # be a second, equal-ranking 1.0.0 — exactly what write-once forbids.
            raise InvalidRef(
                f"{text!r} carries build metadata (+{m[5]}), which versions here may not",
                fix="express the change in the version: bump PATCH, or use a pre-release such as 1.0.1-rc.1",
            )
        major, minor, patch = int(m[1]), int(m[2]), int(m[3])
        if max(major, minor, patch) >= _MAX_COMPONENT or len(text.strip()) > _MAX_LEN:
            raise InvalidRef(
                f"{text!r} is too large a version (components below {_MAX_COMPONENT}, at most {_MAX_LEN} characters)",
                fix="use a smaller version number or a shorter pre-release tag",
            )
        return cls(major, minor, patch, m[4] or "", "")

    @staticmethod
    def is_valid(text: str) -> bool:
        return bool(_SEMVER.match(text))

    def __str__(self) -> str:
        s = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            s += f"-{self.prerelease}"
        if self.build:
            s += f"+{self.build}"
        return s

    def _key(self) -> tuple[int, int, int, tuple[tuple[int, ...] | tuple[int, int, str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers sort
        # numerically and before alphanumeric ones (semver.org §11).
        if not self.prerelease:
            pre: tuple[tuple[int, ...] | tuple[int, int, str], ...] = ((2,),)
        else:
            pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease.split("."))
        return (self.major, self.minor, self.patch, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __eq__(self, other) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def bump(self, kind: str) -> SemVer:
        if kind == "major":
            return SemVer(self.major + 1, 0, 0)
        if kind == "minor":
            return SemVer(self.major, self.minor + 1, 0)
        if kind == "patch":
            return SemVer(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown bump kind {kind!r}")

    def bump_kind_to(self, newer: SemVer) -> str | None:
        """The largest component that grew from self to newer (None if not newer)."""
        if not newer > self:
            return None
        if newer.major != self.major:
            return "major"
        if newer.minor != self.minor:
            return "minor"
        return "patch"


@dataclass(frozen=True)
class Ref:
    """``name@version`` or ``name@alias``; ``name`` alone means "latest"."""

    name: str
    version: SemVer | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str, *, kind: str = "dataset", require_version: bool = False) -> Ref:
        name, sep, tag = text.partition("@")
        validate_name(name, kind)
        if not sep:
            if require_version:
                raise InvalidRef(
                    f"{text!r} names no version",
                    fix=f"write {name}@X.Y.Z",
                )
            return cls(name)
        if SemVer.is_valid(tag.removeprefix("v")):
            return cls(name, version=SemVer.parse(tag))
        if _ALIAS.match(tag) and not require_version:
            return cls(name, alias=tag)
        raise InvalidRef(
            f"{text!r} is not NAME@X.Y.Z" + ("" if require_version else " or NAME@ALIAS"),
            fix=f"write e.g. {name}@1.0.0",
        )

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.alias:
            return f"{self.name}@{self.alias}"
        return self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "version": str(self.version) if self.version else None, "alias": self.alias}
