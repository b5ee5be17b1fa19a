"""Bounded parsing of files a user hands us: the work a hostile file can cause has a ceiling.

Two shapes make a small file expensive once it is a Python object:

* **YAML aliases.** ``b: [*a, *a, ...]`` nine levels deep is a 349-byte file whose values
  expand to 9^9 strings; PyYAML builds the shared object cheaply, but anything that walks it
  (flattening, hashing, ``str()``) pays for every copy — gigabytes. :func:`yaml_loader` counts
  what the aliases expand to while composing and refuses more than :data:`MAX_YAML_NODES`
  nodes, and refuses an alias that refers to its own container (a cycle nothing can walk).
* **Deep nesting.** ``[[[[...]]]]`` ten thousand levels deep makes recursive code (PyYAML's
  composer, ``json``, our own flattening) raise ``RecursionError``. The YAML loader stops at
  :data:`MAX_DEPTH` levels with the position; :func:`too_deep` checks an already parsed
  JSON/TOML value the same way, without recursion.

Errors from the loader are ``yaml.MarkedYAMLError`` (with line and column), so callers turn
them into their own located errors like any other YAML syntax error.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["MAX_DEPTH", "MAX_YAML_NODES", "too_deep", "yaml_loader"]

# Real configs and data.yaml files nest a handful of levels; 100 stays far below Python's
# recursion limit (1,000) for every walker downstream, including json and pyarrow.
MAX_DEPTH = 100
# After alias expansion. A class list of 100,000 names or a config of 100,000 settings is
# fine; the billion-laughs file is 387 million.
MAX_YAML_NODES = 1_000_000


@functools.cache
def yaml_loader() -> type:
    """A ``yaml.SafeLoader`` subclass with the depth and expansion limits (one class, cached)."""
    import yaml
    from yaml.composer import ComposerError
    from yaml.constructor import ConstructorError
    from yaml.events import AliasEvent
    from yaml.nodes import MappingNode, SequenceNode

    def children(node: Node) -> list[Node]:
        if isinstance(node, SequenceNode):
            items: list[Node] = node.value
            return items
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    def check_expansion(root: Node) -> None:
        """Expanded size of the node graph, each shared node counted once per use.

        Iterative post-order walk with memoized sizes: linear in the distinct nodes,
        whatever they expand to. A node met again while it is still open is a cycle.
        """
        sizes: dict[int, int] = {}
        open_nodes: set[int] = set()
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, closing = stack.pop()
            key = id(node)
            if closing:
                open_nodes.discard(key)
                total = 1 + sum(sizes[id(c)] for c in children(node))
                if total > MAX_YAML_NODES:
                    raise ComposerError(
                        None, None,
                        f"aliases expand this document to more than {MAX_YAML_NODES:,} values "
                        "(an alias bomb?)", node.start_mark)
                sizes[key] = total
                continue
            if key in sizes:
                continue
            if key in open_nodes:
                raise ComposerError(None, None, "an alias refers to the collection that contains it",
                                    node.start_mark)
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in children(node) if id(c) not in sizes)

    class BoundedSafeLoader(yaml.SafeLoader):
        def __init__(self, stream: str | bytes) -> None:
            super().__init__(stream)
            self._depth = 0
            self._aliases = 0

        def compose_node(self, parent: Node | None, index: int) -> Node | None:
            if self.check_event(AliasEvent):
                self._aliases += 1
                return super().compose_node(parent, index)
            if self._depth >= MAX_DEPTH:
                # (types-PyYAML leaves Parser.peek_event unannotated.)
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def compose_document(self) -> Node | None:
            node = super().compose_document()
            if self._aliases and node is not None:
                check_expansion(node)
                self._aliases = 0
            return node

        def construct_object(self, node: Node, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (ValueError, OverflowError) as e:
                # PyYAML lets these escape unlocated: a timestamp like 2024-13-45, an integer
                # longer than Python converts (4,300 digits).
                raise ConstructorError(None, None, f"cannot read this value: {e}", node.start_mark) from None

    return BoundedSafeLoader


# A path as a linked list, (parent path, key), built without copying; () is the top level.
_Path = tuple[()] | tuple["_Path", Any]


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where ``value`` (parsed JSON/YAML/TOML) nests lists/mappings more than ``limit`` deep,
    as a path like ``model.layers[0][0]…``, or None. Iterative: safe on any depth."""
    stack: list[tuple[Any, int, _Path]] = [(value, 0, ())]
    while stack:
        item, depth, path = stack.pop()
        entries: Iterable[tuple[Any, Any]]
        if isinstance(item, dict):
            entries = item.items()
        elif isinstance(item, (list, tuple)):
            entries = enumerate(item)
        else:
            continue
        if depth >= limit:
            return _path_text(path)
        for key, child in entries:
            if isinstance(child, (dict, list, tuple)):
                stack.append((child, depth + 1, (path, key)))
    return None


def _path_text(linked: _Path) -> str:
    keys = []
    while linked:
        linked, key = linked
        keys.append(key)
    keys.reverse()
    shown = keys[:6]
    text = "".join(f"[{k}]" if isinstance(k, int) else (f".{k}" if i else str(k)) for i, k in enumerate(shown))
    if len(keys) > len(shown):
        text += "…"
    return text or "(top level)"
