"""What the store's repair and clean-up work reports, a person reads too.

``verify`` (what it found, repaired, set aside, and the fix), ``gc`` (what killed commands left
behind, what it removed), ``status`` and ``dataset snapshot`` (files edited in place through a
hardlink) say the same facts in their human output as in ``--json``. These commands change
what they report (a repair repairs, gc deletes), so each run gets its own copy of the damage.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import lensvault
from tests.cli.conftest import lv
from tests.cli.test_human_output import WIDTHS, check_facts
from tests.conftest import write_files

FILES = {"a.txt": "alpha " * 100, "sub/b.txt": "beta " * 100, "c.bin": "gamma " * 100}
HINT = "Run `lensvault verify --repair`"


def _oid(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _runs(vault, *args, codes, setup=lambda: None) -> tuple[dict[int, str], dict]:
    """The command's human output (stdout and stderr) at each width, and its JSON; ``setup``
    before each run puts the damage back."""
    outs = {}
    for w in WIDTHS:
        setup()
        r = lv("--vault", vault.root, *args, cwd=vault.root, columns=w)
        assert r.returncode in codes, r.stdout + r.stderr
        outs[w] = r.stdout + r.stderr
    setup()
    r = lv("--vault", vault.root, *args, "--json", cwd=vault.root)
    assert r.returncode in codes, r.stdout + r.stderr
    return outs, json.loads(r.stdout)


def _check(outs: dict[int, str], facts: list, what: str) -> None:
    for w, text in outs.items():
        check_facts(text, facts, f"{what} at {w} columns")


def _settle() -> None:
    time.sleep(0.03)  # past one timestamp tick: the stat cache trusts the files (see tests/core/_lvtest.settle)


def test_verify_says_what_it_found_repaired_and_set_aside(sqlite_vault, tmp_path):
    vault = sqlite_vault
    src = write_files(tmp_path / "src", FILES)
    _settle()
    vault.snapshot("ds", src, version="1.0.0", link="copy")
    backup = tmp_path / "backup"
    shutil.move(src, backup)  # the recorded source is gone: only --from finds the files
    bad, lost = _oid(FILES["a.txt"]), _oid(FILES["c.bin"])

    def damage():
        p = vault.store.oid_to_path(bad)
        shutil.rmtree(vault.store.root / "quarantine", ignore_errors=True)
        if p.exists():
            p.chmod(0o644)
        p.write_text(FILES["a.txt"].upper())  # same size: only hashing tells
        vault.store.oid_to_path(lost).unlink(missing_ok=True)

    outs, d = _runs(vault, "verify", codes=(1,), setup=damage)
    assert "repaired" not in d and {c["oid"] for c in d["corrupt"]} == {bad}
    _check(outs, [*(x for c in d["corrupt"] for x in (c["oid"], *c["needed_by"], c["path"])),
                  *(x for m in d["missing"] for x in (m["oid"], *m["needed_by"])),
                  f"{d['checked']} objects checked", HINT], "verify")

    outs, d = _runs(vault, "verify", "--repair", codes=(1,), setup=damage)
    assert d["repaired"] == [] and not d["corrupt"]
    by = {m["oid"]: m for m in d["missing"]}
    assert set(by) == {bad, lost} and by[bad]["quarantined"] and by[lost]["fix"]
    _check(outs, [*(x for m in d["missing"] for x in (m["oid"], *m["needed_by"], m["fix"])),
                  f"damaged bytes moved to {by[bad]['quarantined']}"], "verify --repair")
    assert not any(HINT in text for text in outs.values())  # the repair was tried: no hint to try it

    outs, d = _runs(vault, "verify", "--repair", "--from", backup, codes=(0,), setup=damage)
    assert {r["oid"] for r in d["repaired"]} == {bad, lost} and d["ok"]
    _check(outs, [*(f"REPAIRED {r['oid']}  ({r['problem']}) from {r['from']}" for r in d["repaired"]),
                  f"{len(d['repaired'])} repaired"], "verify --repair --from")


def test_gc_lists_what_killed_commands_left_and_what_it_removed(sqlite_vault, tmp_path):
    vault = sqlite_vault
    old = time.time() - 7200  # older than the grace period: no owner token says whether its writer lives

    def leftovers():
        cache = vault.dir / "cache"
        cache.mkdir(exist_ok=True)
        for i in range(24):
            p = cache / f"left-{i:02}.tmp"
            p.write_bytes(b"x" * (100 + i))
            os.utime(p, (old, old))
        scratch = vault.dir / "fix-old"
        write_files(scratch, {"data/a.txt": "a"})
        os.utime(scratch, (old, old))

    outs, d = _runs(vault, "gc", codes=(0,), setup=leftovers)
    found = d["plan"]["leftovers"]
    assert len(found) == 25 and d["executed"] is None
    _check(outs, [f"{len(found)} left behind by interrupted commands", *{x["kind"] for x in found},
                  f"… and {len(found) - 20} more", "lensvault gc --yes"], "gc")
    for text in outs.values():  # the first 20, each once
        assert sum(x["path"] in text for x in found) == 20, text

    outs, d = _runs(vault, "gc", "--yes", codes=(0,), setup=leftovers)
    done = d["executed"]
    assert done["leftovers"] == 25 and done["leftover_bytes"] == d["plan"]["leftover_bytes"]
    _check(outs, [f"Deleted {done['deleted']} objects", f"removed {done['leftovers']} leftovers"], "gc --yes")
    assert not (vault.dir / "fix-old").exists()


def _edited_through_a_hardlink(vault, src) -> None:
    write_files(src, FILES)
    _settle()
    vault.snapshot("ds", src, version="1.0.0", link="hardlink")
    with open(src / "a.txt", "r+b") as f:  # the store's object changes with it
        f.write(b"EDITED")
    _settle()


def test_status_names_what_changed_in_the_store_through_a_hardlink(sqlite_vault, tmp_path):
    src = tmp_path / "src"
    _edited_through_a_hardlink(sqlite_vault, src)
    outs, d = _runs(sqlite_vault, "status", "ds@1.0.0", src, codes=(1,))
    assert [x["oid"] for x in d["damaged"]] == [_oid(FILES["a.txt"])]
    _check(outs, [*(x for dmg in d["damaged"] for x in (dmg["what"], dmg["fix"])), *d["modified"]], "status")
    assert all("DAMAGED" in text for text in outs.values())


def test_snapshot_warns_on_stderr_of_what_it_found_damaged(sqlite_vault, tmp_path):
    """Twin vaults, the same edit: the human run's stderr says what the JSON run's warnings say."""
    human_src, json_src = tmp_path / "human", tmp_path / "json"
    _edited_through_a_hardlink(sqlite_vault, human_src)
    with lensvault.init(tmp_path / "twin") as twin:
        _edited_through_a_hardlink(twin, json_src)
        r = lv("--vault", twin.root, "dataset", "snapshot", "ds", json_src, "--version", "1.0.1", "--link", "hardlink",
               "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    assert [w["oid"] for w in warnings] == [_oid(FILES["a.txt"])]
    r = lv("--vault", sqlite_vault.root, "dataset", "snapshot", "ds", human_src, "--version", "1.0.1", "--link",
           "hardlink", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    said = [x for w in warnings for x in (f"warning: {w['what']}".replace(str(json_src), str(human_src)), w["fix"])]
    check_facts(r.stderr, said, "dataset snapshot (stderr)")
    assert "warning" not in r.stdout and "Created ds@1.0.1" in r.stdout
