"""Writing lines and tables to a rich Console, the way every renderer does."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from rich.console import Console
    from rich.text import Text

__all__ = ["human_bytes", "line", "print_table", "print_table_stream", "styled", "table"]


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


def print_table_stream(out: Console, columns: Sequence[str], batches: Iterable[list[Sequence[str]]],
                       right: tuple[str, ...] = ()) -> None:
    """A table of rows that come a batch at a time (too many to hold, so not a rich table, which
    holds them all): laid out as ``table`` lays one out (columns two spaces apart, ``right`` ones
    right-aligned, a cell too wide for its column folded onto the next lines at its column), the
    widths set by the header and the first batch and fitted to the console; a later cell wider
    than its column folds. Each batch is written as it comes."""
    import itertools

    batches = iter(batches)
    first = next(batches, [])
    widths = _fit([max([len(c), *(len(r[i]) for r in first)]) for i, c in enumerate(columns)], out.width)
    align = [c in right for c in columns]
    line(out, "\n".join(_folded(columns, widths, align)), style="bold")
    for rows in itertools.chain((first,), batches):
        if rows:
            line(out, "\n".join(text for r in rows for text in _folded(r, widths, align)))


def _fit(widths: list[int], room: int) -> list[int]:
    """``widths`` narrowed, the widest first, until the columns and the gaps between them fit ``room``."""
    while sum(widths) + 2 * (len(widths) - 1) > room and max(widths) > 1:
        widths[widths.index(max(widths))] -= 1
    return widths


def _folded(cells: Sequence[str], widths: list[int], right: list[bool]) -> list[str]:
    """One row's lines: each cell cut into pieces of its column's width, one piece a line."""
    pieces = [[c[i:i + w] for i in range(0, len(c), w)] or [""] for c, w in zip(cells, widths)]
    lines = []
    for k in range(max(map(len, pieces))):
        parts = (p[k] if k < len(p) else "" for p in pieces)
        lines.append("  ".join(t.rjust(w) if r else t.ljust(w) for t, w, r in zip(parts, widths, right)).rstrip())
    return lines


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
