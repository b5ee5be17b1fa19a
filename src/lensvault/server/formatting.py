"""Numbers as the pages show them: short enough to read at a glance, the exact value one hover
away (a ``title``). The JSON twin of every page keeps the exact values."""

from __future__ import annotations

from html import escape

__all__ = ["metric", "short_number", "text_width"]


def short_number(value) -> str:
    """4 significant digits (0.7523, 23.46), whole thousands with separators (12,346), a tiny
    value in scientific notation (1.23e-05); integers and non-numbers as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:.4g}"


def metric(value):
    """A number for a page: ``<span class="num" title="exact">short</span>``."""
    from markupsafe import Markup

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    exact = repr(value)
    return Markup(f'<span class="num" title="{escape(exact)}">{escape(short_number(value))}</span>')


def text_width(text: str, font_px: float = 12) -> float:
    """A generous estimate of the width of ``text`` in the pages' sans-serif font (no font is
    measured on the server): charts size their margins by it, so no label is cut off."""
    return 0.62 * font_px * len(text)
