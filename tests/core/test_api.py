"""The public API: an explicit, sorted ``__all__``; a light ``import lensvault``; one error tree."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lensvault
import lensvault.errors as errors

# Adding a public name is a decision: add it here too, in the same change.
CORE = {
    "AlreadyExists", "AnnotationError", "CatalogDamaged", "CatalogError", "CatalogMissing", "InputError", "IntegrityError", "InvalidRef",
    "LensVaultError", "NotFound", "ObjectMissing", "ObjectsVanished", "PreflightFailed", "StorageError", "UsageError",
    "Vault", "VersionRuleError", "__version__", "init", "open",
}
TRACKING = {"log_artifact", "log_metrics", "log_params", "start_run"}  # lensvault.tracking
REMOTES = {"RemoteConflict", "RemoteError", "clone"}  # lensvault.remotes
EXPECTED = CORE | TRACKING | REMOTES


def test_all_is_sorted_and_is_what_we_mean():
    assert lensvault.__all__ == sorted(lensvault.__all__)
    assert set(lensvault.__all__) == EXPECTED
    assert len(lensvault.__all__) == len(set(lensvault.__all__))
    for name in lensvault.__all__:
        assert getattr(lensvault, name) is not None
    from lensvault.vault import Vault, init_vault, open_vault

    assert (lensvault.Vault, lensvault.init, lensvault.open) == (Vault, init_vault, open_vault)
    with pytest.raises(AttributeError):
        lensvault.not_a_thing  # noqa: B018
    star: dict = {}
    exec("from lensvault import *", star)
    assert set(star) - {"__builtins__"} == EXPECTED


def test_every_exported_error_is_in_errors_all():
    exported_errors = {n for n in lensvault.__all__ if n[0].isupper() and n != "Vault"}
    assert exported_errors == set(errors.__all__)
    assert errors.__all__ == sorted(errors.__all__)


def test_error_tree_exit_codes_and_builtin_bases():
    e = errors
    assert issubclass(e.ObjectMissing, e.NotFound) and issubclass(e.NotFound, KeyError)
    assert issubclass(e.InvalidRef, e.UsageError) and issubclass(e.AnnotationError, e.InputError)
    assert issubclass(e.InputError, ValueError) and issubclass(e.StorageError, OSError)
    codes = {c.__name__: c.exit_code for c in (e.UsageError, e.NotFound, e.AlreadyExists, e.IntegrityError,
                                                 e.InputError, e.PreflightFailed, e.VersionRuleError,
                                                 e.StorageError, e.CatalogError)}
    assert codes == {"UsageError": 2, "NotFound": 3, "AlreadyExists": 4, "IntegrityError": 5, "InputError": 6,
                     "PreflightFailed": 7, "VersionRuleError": 8, "StorageError": 9, "CatalogError": 10}
    for cls in (e.NotFound, e.StorageError, e.InputError):
        err = cls("what went wrong", where="here", fix="do this", extra=[1], obj=object())
        assert str(err) == "what went wrong (at here) — do this"
        d = err.to_dict()
        assert d == {"error": cls.__name__, "what": "what went wrong", "where": "here", "fix": "do this", "extra": [1]}


def test_import_lensvault_stays_light():
    code = ("import sys, lensvault\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'pyarrow', 'rich', 'PIL', 'numpy', 'click', 'psycopg', 'yaml'))\n"
            "print(','.join(heavy))\n"
            "lensvault.LensVaultError\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_the_vault_api_round_trip(sqlite_vault, tmp_path):
    """The documented calls, end to end, through lensvault.open()."""
    from _lvtest import write_files

    src = write_files(tmp_path / "src", {"a.txt": "a"})
    with lensvault.open(sqlite_vault.root) as vault:
        ds = vault.snapshot("retail", src, version="1.0.0")
        assert repr(ds).startswith("<Dataset retail@1.0.0 snapshot=")
        assert vault.datasets()[0]["name"] == "retail"
        assert [v.ref for v in vault.versions("retail")] == ["retail@1.0.0"]
        vault.dataset("retail@1.0.0").checkout(tmp_path / "out")
        assert vault.status(None, tmp_path / "out").clean
        assert vault.verify().ok
        with pytest.raises(lensvault.NotFound):
            vault.versions("nope")
        with pytest.raises(lensvault.NotFound):
            vault.dataset("retail@production")
