"""Which records (and so which objects) a ref needs, read from a ledger — the local one or a remote's.

A ledger here is the same thing on both sides: journal entries (``journal/<YYYY-MM>/<stamp>-
<kind>-<oid>``, relative names) and refs (``refs/datasets/NAME/VERSION`` …) naming record
objects. What a ref needs:

- a dataset version: its record, and its parent's, up the chain;
- a config: its record;
- a run: every ``run.*`` record of it, its dataset version and config, its evaluations;
- a model version: its record, its run (and all that needs), its evaluations;
- ``NAME@ALIAS``: the alias's move records and the model version it points at.

``--all`` is every record. Objects are each record's ``objects`` plus, for a dataset version,
everything its manifest names (files, tables, snapshot), listed by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lensvault.errors import NotFound

__all__ = ["Ledger", "LedgerRecord", "needing", "select"]

# Records whose ref is created write-once (the others are only listed by the journal).
REF_KINDS = {"dataset.version": "datasets", "model.version": "models", "config": "configs"}


@dataclass
class LedgerRecord:
    journal: str  # journal/<YYYY-MM>/<stamp>-<kind>-<oid>
    stamp: str
    kind: str
    oid: str
    doc: dict[str, Any] | None = None  # the record, once read

    @property
    def data(self) -> dict[str, Any]:
        assert self.doc is not None
        return self.doc.get("data") or {}

    def ref(self) -> str | None:
        """The write-once ref this record is named by, if its kind has one."""
        d = self.data
        if self.kind == "dataset.version":
            return f"refs/datasets/{d['row']['name']}/{d['row']['version']}"
        if self.kind == "model.version":
            return f"refs/models/{d['row']['name']}/{d['row']['version']}"
        if self.kind == "config":
            return f"refs/configs/{d['row']['config_id']}"
        return None

    def alias_key(self) -> tuple[str, str] | None:
        if self.kind != "alias.move":
            return None
        m = self.data["move"]
        return m["name"], m["alias"]

    def run_ids(self) -> set[str]:
        d = self.data
        if self.kind == "run.start":
            return {d["row"]["run_id"]}
        if self.kind == "run.metrics":
            return {p[0] for p in d.get("points", [])}
        if self.kind.startswith("run.") and d.get("run_id"):
            return {d["run_id"]}
        return set()


@dataclass
class Ledger:
    records: list[LedgerRecord] = field(default_factory=list)  # journal order
    refs: dict[str, str] = field(default_factory=dict)  # "refs/…" -> record oid

    def by_oid(self) -> dict[str, LedgerRecord]:
        return {r.oid: r for r in self.records}


def parse_journal(name: str) -> LedgerRecord | None:
    """``journal/…/<stamp>-<kind>-<oid>`` (relative to a ledger) as a record to read."""
    base = name.rsplit("/", 1)[-1]
    stamp, _, rest = base.partition("-")
    kind, _, oid = rest.rpartition("-")
    if not stamp or not kind or len(oid) != 64:
        return None
    return LedgerRecord(name, stamp, kind, oid)


def select(ledger: Ledger, refs: list[str], *, everything: bool, where: str) -> list[LedgerRecord]:
    """The records ``refs`` need (or every record), in journal order."""
    if everything:
        return list(ledger.records)
    by_oid = ledger.by_oid()
    chosen: set[str] = set()
    runs: dict[str, list[LedgerRecord]] = {}
    evals: list[LedgerRecord] = []
    moves: dict[tuple[str, str], list[LedgerRecord]] = {}
    for r in ledger.records:
        for rid in r.run_ids():
            runs.setdefault(rid, []).append(r)
        if r.kind == "evaluation":
            evals.append(r)
        key = r.alias_key()
        if key:
            moves.setdefault(key, []).append(r)

    def take(oid: str | None) -> LedgerRecord | None:
        rec = by_oid.get(oid) if oid else None
        if rec is not None:
            chosen.add(rec.oid)
        return rec

    def dataset(ref: str | None) -> None:
        while ref and "@" in ref:
            name, _, version = ref.partition("@")
            rec = take(ledger.refs.get(f"refs/datasets/{name}/{version}"))
            parent = rec.data["row"].get("parent") if rec else None
            ref = f"{name}@{parent}" if parent else None

    def config(cid: str | None) -> None:
        if cid:
            take(ledger.refs.get(f"refs/configs/{cid}"))

    def evaluation(rec: LedgerRecord) -> None:
        chosen.add(rec.oid)
        dataset(rec.data["row"].get("dataset"))

    def run(run_id: str | None, seen: set[str]) -> None:
        if not run_id or run_id in seen:
            return
        seen.add(run_id)
        for rec in runs.get(run_id, []):
            chosen.add(rec.oid)
            if rec.kind == "run.start":
                row = rec.data["row"]
                dataset(row.get("dataset"))
                config(row.get("config_id"))
        for rec in evals:
            if rec.data["row"].get("run_id") == run_id:
                evaluation(rec)

    def model(name: str, version: str) -> bool:
        rec = take(ledger.refs.get(f"refs/models/{name}/{version}"))
        if rec is None:
            return False
        row = rec.data["row"]
        run(row.get("run_id"), set())
        dataset(row.get("dataset"))
        config(row.get("config_id"))
        for ev in evals:
            er = ev.data["row"]
            if (er.get("model_name"), er.get("model_version")) == (name, version):
                evaluation(ev)
        return True

    for ref in refs:
        name, at, version = ref.partition("@")
        if at and f"refs/datasets/{name}/{version}" in ledger.refs:
            dataset(ref)
        elif at and model(name, version):
            pass
        elif at and f"refs/aliases/{name}/{version}" in ledger.refs:
            for rec in moves.get((name, version), []):
                chosen.add(rec.oid)
            target = by_oid.get(ledger.refs[f"refs/aliases/{name}/{version}"])
            if target is not None:
                model(name, target.data["move"]["to_version"])
        elif not at and f"refs/configs/{ref}" in ledger.refs:
            config(ref)
        elif not at and ref in runs:
            run(ref, set())
        else:
            raise NotFound(f"{ref} is not recorded in {where}", where=ref,
                           fix="name a dataset version (NAME@X.Y.Z), model version, NAME@ALIAS, run id or config id "
                               "that exists there")
    return [r for r in ledger.records if r.oid in chosen]


def _names(rec: LedgerRecord) -> set[str]:
    """What other records name this one by: d:NAME@VERSION, c:CONFIG, r:RUN, m:NAME@VERSION."""
    d = rec.data
    row = d.get("row") or {}
    if rec.kind == "dataset.version":
        return {f"d:{row['name']}@{row['version']}"}
    if rec.kind == "config":
        return {f"c:{row['config_id']}"}
    if rec.kind == "model.version":
        return {f"m:{row['name']}@{row['version']}"}
    return {f"r:{rid}" for rid in rec.run_ids()}


def _needs(rec: LedgerRecord) -> set[str]:
    """The names of the records this one needs (as ``select`` follows them)."""
    row = rec.data.get("row") or {}
    out: set[str] = set()
    if rec.kind == "dataset.version" and row.get("parent"):
        out.add(f"d:{row['name']}@{row['parent']}")
    if rec.kind in ("run.start", "model.version", "evaluation"):
        if row.get("dataset"):
            out.add(f"d:{row['dataset']}")
        if row.get("config_id"):
            out.add(f"c:{row['config_id']}")
        if rec.kind != "run.start" and row.get("run_id"):
            out.add(f"r:{row['run_id']}")
    if rec.kind == "evaluation" and row.get("model_name") and row.get("model_version"):
        out.add(f"m:{row['model_name']}@{row['model_version']}")
    return out


def needing(records: list[LedgerRecord], oids: set[str]) -> set[str]:
    """The oids of ``records`` that need any of the records ``oids``, directly or through others
    (a child version of a parent, a run of its data or config, a model of its run, an
    evaluation of any of them) — and ``oids`` themselves. A fetch that leaves a record out
    leaves these out too: taken in, they would name this vault's record under the same name."""
    tainted = set().union(*(_names(r) for r in records if r.oid in oids)) if oids else set()
    out = set(oids)
    changed = True
    while changed:
        changed = False
        for rec in records:
            if rec.oid in out:
                continue
            if _needs(rec) & tainted or (rec.kind.startswith("run.") and _names(rec) & tainted):
                out.add(rec.oid)
                tainted |= _names(rec)
                changed = True
    return out
