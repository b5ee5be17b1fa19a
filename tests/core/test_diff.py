"""File-level diff: properties over random trees (hypothesis) and versions in a vault."""

from __future__ import annotations

import hashlib

from _lvtest import write_files
from hypothesis import given, settings
from hypothesis import strategies as st

from lensvault.datasets import files_table
from lensvault.datasets.diff import diff_tables

paths = st.text("abcde/", min_size=1, max_size=5).map(lambda s: "p" + s)
contents = st.sampled_from([b"", b"x", b"yy", b"zzz", b"hello", b"0123456789"])
trees = st.dictionaries(paths, contents, max_size=10)


def table(tree: dict[str, bytes]):
    items = list(tree.items())
    return files_table.build(
        [p for p, _ in items], [len(c) for _, c in items], [hashlib.sha256(c).hexdigest() for _, c in items],
        ["application/octet-stream"] * len(items), [None] * len(items), [None] * len(items),
    )


@settings(max_examples=100, deadline=None)
@given(trees, trees)
def test_diff_partitions_the_paths_and_the_bytes_add_up(a, b):
    d = diff_tables(table(a), table(b), "a", "b")
    only_a, only_b, both = set(a) - set(b), set(b) - set(a), set(a) & set(b)
    assert set(d.removed) | {src for src, _ in d.renamed} == only_a
    assert set(d.added) | {dst for _, dst in d.renamed} == only_b
    assert not set(d.removed) & {src for src, _ in d.renamed}
    assert not set(d.added) & {dst for _, dst in d.renamed}
    assert len({dst for _, dst in d.renamed}) == len(d.renamed)  # one-to-one
    for src, dst in d.renamed:
        assert a[src] == b[dst]
    # A removed path has no added twin with the same content left over (renames are found).
    left_added = {b[p] for p in d.added}
    assert not any(a[p] in left_added for p in d.removed)
    assert d.modified == sorted(p for p in both if a[p] != b[p])
    assert d.unchanged == sum(1 for p in both if a[p] == b[p])
    assert d.added == sorted(d.added) and d.removed == sorted(d.removed)
    by = d.bytes
    assert by["a"] == sum(map(len, a.values())) and by["b"] == sum(map(len, b.values()))
    assert by["delta"] == by["b"] - by["a"]
    assert by["added"] == sum(len(b[p]) for p in d.added)
    assert by["removed"] == sum(len(a[p]) for p in d.removed)
    assert by["a"] - by["removed"] + by["added"] + by["modified_delta"] == by["b"]
    assert d.changed == (a != b)


@settings(max_examples=40, deadline=None)
@given(trees, trees)
def test_diff_is_antisymmetric(a, b):
    ab, ba = diff_tables(table(a), table(b)), diff_tables(table(b), table(a))
    assert ab.modified == ba.modified and ab.unchanged == ba.unchanged
    assert len(ab.renamed) == len(ba.renamed)
    assert set(ab.added) | {t for _, t in ab.renamed} == set(ba.removed) | {s for s, _ in ba.renamed}
    assert ab.bytes["delta"] == -ba.bytes["delta"]


@settings(max_examples=30, deadline=None)
@given(trees)
def test_a_version_has_no_diff_with_itself(a):
    d = diff_tables(table(a), table(a))
    assert not d.changed and d.unchanged == len(a)
    assert d.summary().endswith("have the same files")


def test_diff_between_versions_in_a_vault(vault, tmp_path):
    src = write_files(tmp_path / "src", {"keep.txt": "k", "mod.txt": "old", "gone.txt": "bye", "mv/a.txt": "moving"})
    vault.snapshot("ds", src, version="1.0.0")
    (src / "mod.txt").write_text("newer!")
    (src / "gone.txt").unlink()
    (src / "mv" / "a.txt").rename(src / "moved.txt")
    (src / "added.txt").write_text("hello")
    vault.snapshot("ds", src, version="1.1.0")
    d = vault.diff("ds@1.0.0", "ds@1.1.0")
    assert (d.added, d.removed, d.modified, d.renamed) == (["added.txt"], ["gone.txt"], ["mod.txt"],
                                                           [("mv/a.txt", "moved.txt")])
    assert d.unchanged == 1
    assert d.bytes == {"a": 1 + 3 + 3 + 6, "b": 1 + 6 + 6 + 5, "added": 5, "removed": 3, "modified_delta": 3,
                       "delta": 5}
    out = d.to_dict()
    assert out["renamed"] == [{"from": "mv/a.txt", "to": "moved.txt"}]
    assert out["summary"].startswith("ds@1.0.0 → ds@1.1.0: 1 added, 1 removed, 1 modified, 1 renamed")


def _edited(a_map: dict[int, int], edits: list, width: int) -> tuple[dict[str, str], dict[str, str]]:
    """Version a (path → hash) and b: a with the edits ("a"dd, "r"emove, "m"odify) applied."""
    a = {f"p{k:0{width}d}": f"{v:064d}" for k, v in a_map.items()}
    b = dict(a)
    for op, k, v in edits:
        p = f"p{k:0{width}d}"
        if op == "r":
            b.pop(p, None)
        else:
            b[p] = f"{v:064d}"
    return a, b


def _build(d: dict[str, str], *, sized: bool = False):
    """The files table of path → hash (``sized``: sizes that differ with the content too)."""
    ps = sorted(d)
    sizes = [len(p) + int(d[p][-1]) for p in ps] if sized else [1] * len(ps)
    return files_table.build(ps, sizes, [d[p] for p in ps], ["x"] * len(ps), [None] * len(ps), [None] * len(ps))


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.integers(0, 300), st.integers(0, 5), max_size=120),
       st.lists(st.tuples(st.sampled_from("arm"), st.integers(0, 300), st.integers(0, 5)), max_size=40))
def test_merge_diff_matches_set_arithmetic_on_long_tables(a_map, edits):
    """The merge skips equal blocks of 16 rows; long tables with scattered edits exercise the block edges."""
    a, b = _edited(a_map, edits, 4)
    d = diff_tables(_build(a), _build(b))
    assert sorted(d.added + [t for _, t in d.renamed]) == sorted(set(b) - set(a))
    assert sorted(d.removed + [f for f, _ in d.renamed]) == sorted(set(a) - set(b))
    assert sorted(d.modified) == sorted(p for p in a if p in b and a[p] != b[p])
    assert d.unchanged == sum(1 for p in a if p in b and a[p] == b[p])


unicode_paths = st.text("aZé/ß€😀_", min_size=1, max_size=4).map(lambda s: "p" + s)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(unicode_paths, contents, max_size=40), st.dictionaries(unicode_paths, contents, max_size=40))
def test_diff_of_non_ascii_paths_follows_the_tables_order(a, b):
    # The merge compares UTF-8 bytes; the tables are sorted by code point: the same order.
    d = diff_tables(table(a), table(b))
    moved = {src for src, _ in d.renamed}, {dst for _, dst in d.renamed}
    assert set(d.removed) | moved[0] == set(a) - set(b)
    assert set(d.added) | moved[1] == set(b) - set(a)
    assert sorted(d.modified) == sorted(p for p in set(a) & set(b) if a[p] != b[p])
    assert d.unchanged == sum(1 for p in set(a) & set(b) if a[p] == b[p])


def _cut(t, sizes: list[int]):
    """The table as batches of the given sizes (then the rest), as row groups of any sizes read them."""
    out, start = [], 0
    for n in sizes:
        out.append(t.slice(start, n).to_batches() or [])
        start += n
    out.append(t.slice(start).to_batches())
    return [b for bs in out for b in bs]


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.integers(0, 3000), st.integers(0, 5), max_size=1500),
       st.lists(st.tuples(st.sampled_from("arm"), st.integers(0, 3000), st.integers(0, 5)), max_size=30),
       st.lists(st.integers(0, 700), max_size=6), st.lists(st.integers(0, 700), max_size=6))
def test_a_diff_over_batches_of_any_sizes_is_the_diff_of_the_whole_tables(a_map, edits, a_cuts, b_cuts):
    """The merge holds one batch per side: batches that end at different rows on each side (row
    groups of an old and a new table, a shifted path) give the same diff as the whole tables,
    across both the long (1024-row) and the short (16-row) equal runs it skips."""
    from lensvault.datasets.diff import diff_batches

    a, b = _edited(a_map, edits, 5)
    ta, tb = _build(a, sized=True), _build(b, sized=True)
    whole = diff_tables(ta, tb, "a", "b")
    assert diff_batches(_cut(ta, a_cuts), _cut(tb, b_cuts), "a", "b") == whole
    assert sorted(whole.added + [t for _, t in whole.renamed]) == sorted(set(b) - set(a))
    assert sorted(whole.modified) == sorted(p for p in a if p in b and a[p] != b[p])


def test_long_equal_runs_are_skipped_only_where_they_are_equal():
    """5,000 rows with edits far apart and inside 1024-row runs, in batches cut unevenly."""
    from lensvault.datasets.diff import diff_batches

    a = {f"p{k:05d}": f"{k % 7:064d}" for k in range(5000)}
    b = dict(a)
    b["p01500"] = f"{9:064d}"  # modified, inside the second long run
    del b["p03000"]  # removed
    b["p04000x"] = f"{8:064d}"  # added
    b["p04999"] = f"{9:064d}"  # the last row
    ps = {n: sorted(d) for n, d in (("a", a), ("b", b))}
    ta, tb = (files_table.build(ps[n], [1] * len(ps[n]), [d[p] for p in ps[n]], ["x"] * len(ps[n]),
                                [None] * len(ps[n]), [None] * len(ps[n])) for n, d in (("a", a), ("b", b)))
    for a_cuts, b_cuts in (([], []), ([2048, 1030], [1100, 3]), ([1], [4999])):
        d = diff_batches(_cut(ta, a_cuts), _cut(tb, b_cuts))
        assert (d.added, d.removed, d.modified, d.renamed) == (["p04000x"], ["p03000"], ["p01500", "p04999"], [])
        assert d.unchanged == 4997
