"""Find the commands LensVault prints as hints (`lensvault …`, `git …`, `kill …` in backticks)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "lensvault"
COMMAND = re.compile(r"(?<!`)`((?:lensvault|git|kill) [^`]+)`(?!`)")
# A whole string that is a command (returned by a function and printed elsewhere).
WHOLE = re.compile(r"^((?:lensvault|git) [^`\n]*)$")


def _render(node) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    parts = []
    for v in node.values:
        if isinstance(v, ast.Constant):
            parts.append(v.value)
        else:
            parts.append("{" + ast.unparse(v.value) + "}")
    return "".join(parts)


def _docstrings(tree) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def source_hints() -> dict[str, list[str]]:
    """Every hint template in the package → the files that print it (f-string fields as {expr})."""
    found: dict[str, list[str]] = {}
    for path in sorted(SRC.rglob("*.py")):
        if "demo" in path.relative_to(SRC).parts:
            continue  # the example training scripts a user copies, not LensVault's messages
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        nested = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if id(node) in skip or id(node) in nested:
                continue
            if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                text = _render(node)
                for cmd in COMMAND.findall(text) + WHOLE.findall(text):
                    found.setdefault(cmd, []).append(str(path.relative_to(SRC)))
    return found


def printed_hints(text: str) -> list[str]:
    """The commands a message shows in backticks."""
    return COMMAND.findall(text)
