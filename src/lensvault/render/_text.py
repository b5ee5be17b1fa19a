"""Writing lines and tables to a rich Console, the way every renderer does."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

__all__ = ["human_bytes", "line", "print_table", "styled", "table"]


def line(out: Console, text: str | Text = "", style: str | None = None) -> None:
    """One line, exactly as given: no markup, wrapping or highlighting. Styled (``style``, or
    a Text's own styles) only on a terminal that shows colour; elsewhere the plain bytes."""
    if out.color_system is None:
        f = out.file
        f.write((text if isinstance(text, str) else text.plain) + "\n")
        f.flush()
        return
    from rich.text import Text

    t = Text(text, style=style or "") if isinstance(text, str) else text
    out.print(t, soft_wrap=True, markup=False, highlight=False, emoji=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line in pieces: plain strings and (text, style) pairs."""
    from rich.text import Text

    return Text.assemble(*parts)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()):
    """A borderless rich table whose cells fold instead of being cut: a name or ref that
    does not fit the terminal goes on over the next line, never ends in '…'."""
    from rich.table import Table

    t = Table(box=None, title=title, pad_edge=False)
    for col in columns:
        t.add_column(col, overflow="fold", justify="right" if col in right else "left")
    return t


def print_table(out: Console, t, indent: int = 0) -> None:
    """Print a table, indented under the lines above it."""
    if indent:
        from rich.padding import Padding

        t = Padding(t, (0, 0, 0, indent), expand=False)
    out.print(t)


def count(n: int, word: str) -> str:
    """``1 file``, ``2 files``, ``12,000 images``: a number and its noun, said as people say it."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    x = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if x < 1024 or unit == "TB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return f"{n} B"
