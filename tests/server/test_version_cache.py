"""``Vault.keep_versions``: a long-lived process keeps the handles (and tables) of exact versions."""

from __future__ import annotations

from tests.conftest import write_files


def test_exact_versions_are_kept_and_nothing_else(sqlite_vault, tmp_path):
    v = sqlite_vault
    folder = write_files(tmp_path / "d", {"a.txt": "a"})
    for i, version in enumerate(("1.0.0", "1.1.0", "1.2.0")):
        (folder / f"f{i}.txt").write_text(str(i))
        v.snapshot("d", folder, version=version)
    assert v.dataset("d@1.0.0") is not v.dataset("d@1.0.0")  # off unless asked for
    v.keep_versions(2)
    first = v.dataset("d@1.0.0")
    assert v.dataset("d@1.0.0") is first
    assert v.dataset("d@latest") is not v.dataset("d@latest")  # a moving ref is resolved each time
    assert v.dataset("d@latest").version == "1.2.0"
    v.dataset("d@1.1.0")
    v.dataset("d@1.2.0")  # the third exact version: the least recently used one goes
    assert v.dataset("d@1.0.0") is not first
