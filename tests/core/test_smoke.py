from conftest import write_files


def test_snapshot_diff_checkout_round_trip(vault, tmp_path):
    src = write_files(tmp_path / "src", {"a.txt": "alpha", "img/b.bin": b"\x00\x01" * 100})
    v1 = vault.snapshot("retail", src, version="1.0.0")
    assert v1.record.files == 2
    (src / "c.txt").write_text("new")
    v2 = vault.snapshot("retail", src, version="1.1.0")
    assert v2.parent == "retail@1.0.0"
    d = vault.diff("retail@1.0.0", "retail@1.1.0")
    assert d.added == ["c.txt"] and not d.removed and not d.modified
    out = vault.checkout("retail@1.1.0", tmp_path / "out")
    assert out.files == 3
    assert (tmp_path / "out" / "img" / "b.bin").read_bytes() == b"\x00\x01" * 100
    assert vault.status("retail@1.1.0", tmp_path / "out").clean
    assert vault.verify().ok
