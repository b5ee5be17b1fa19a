"""Renderers write what they are given, and cost nothing until a person reads their output."""

from __future__ import annotations

import io
import subprocess
import sys

from rich.console import Console

from lensvault.render._text import line, styled


def _console(**kw) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, highlight=False, soft_wrap=False, **kw), buf


def test_a_line_is_written_byte_for_byte_where_there_is_no_colour():
    out, buf = _console(width=10)
    odd = "a\tb  [bold]not markup[/bold] :smile: \x1b[31mred\r" + "x" * 40  # longer than the width
    line(out, odd, style="red")
    line(out, styled(("ref@1.0.0", "bold"), "  rest"))
    line(out)
    assert buf.getvalue() == odd + "\n" + "ref@1.0.0  rest\n\n"


def test_a_colour_terminal_gets_the_styles():
    out, buf = _console(force_terminal=True, color_system="standard", width=200)
    line(out, styled(("ok", "green"), " plain [not markup]"))
    text = buf.getvalue()
    assert text == "\x1b[32mok\x1b[0m plain [not markup]\n"


def test_commands_and_renderers_import_nothing_heavy_until_they_print():
    heavy = ("rich", "sqlalchemy", "pyarrow", "numpy", "PIL")
    code = ("import importlib, pkgutil, sys\n"
            "import lensvault.cli, lensvault.render\n"
            "for pkg in (lensvault.cli, lensvault.render):\n"
            "    for m in pkgutil.iter_modules(pkg.__path__):\n"
            "        importlib.import_module(pkg.__name__ + '.' + m.name)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_json_output_does_not_load_the_renderers_libraries(tmp_path):
    """`status --json` (the benchmarked path) prints to_dict(): no rich, no pyarrow, no SQLAlchemy."""
    import lensvault

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("a\n")
    with lensvault.init(tmp_path / "v") as v:
        v.snapshot("ds", tmp_path / "src", version="1.0.0")
    code = ("import sys\n"
            "from lensvault.cli._errors import run_with_errors\n"
            "from lensvault.cli.main import cli\n"
            f"rc = run_with_errors(cli, ['--vault', {str(tmp_path / 'v')!r}, 'status', 'ds@1.0.0', "
            f"{str(tmp_path / 'src')!r}, '--json'])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'pyarrow', 'sqlalchemy'})\n"
            "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert '"clean": true' in r.stdout and "HEAVY=\n" in r.stderr, r.stderr


def test_counts_are_said_as_people_say_them():
    from types import SimpleNamespace

    from lensvault.render._text import count
    from lensvault.render.datasets import checkout

    assert (count(1, "file"), count(0, "file"), count(12000, "image")) == ("1 file", "0 files", "12,000 images")
    out, buf = _console(width=200)
    checkout(SimpleNamespace(ref="a@1.0.0", dest="/x", files=1, bytes=10, link="copy"), out)
    assert "1 file," in buf.getvalue() and "1 files" not in buf.getvalue()
