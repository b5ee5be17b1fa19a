"""``push`` of what this vault knows but does not hold: records fetched from one remote (their
data left there) pushed to another. Before anything is sent, the objects the push needs that
are neither here nor on the target are named, with the remote that has them and the ``pull``
that brings them — instead of failing on the first object the upload cannot read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lensvault.errors import ObjectMissing

if TYPE_CHECKING:
    from lensvault.remotes.closure import LedgerRecord
    from lensvault.vault import Vault

__all__ = ["refuse_missing_here"]

SHOWN = 8


def _pull_ref(rec: LedgerRecord) -> str:
    """What ``lensvault pull`` takes to bring the record's objects (an evaluation: its run or model)."""
    from lensvault.remotes.reach import label

    if rec.kind == "evaluation":
        row = rec.data.get("row") or {}
        if row.get("run_id"):
            return str(row["run_id"])
        if row.get("model_name"):
            return f"{row['model_name']}@{row['model_version']}"
        return str(row.get("dataset"))
    return label(rec)


def refuse_missing_here(vault: Vault, chosen: list[LedgerRecord], todo: list[str], target: str) -> None:
    """Raise ObjectMissing if objects of ``todo`` (to send to remote ``target``) are not in this
    vault's store: which, what needs them, on which remote they are, and the commands to run."""
    from lensvault.remotes.ledgers import record_objects, version_objects
    from lensvault.remotes.promised import remote_only

    absent = set(vault.store.missing(sorted(set(todo))))
    if not absent:
        return
    where_else = remote_only(vault)  # oid -> the remote a fetch left it on
    wants: dict[str, list[str]] = {}  # remote (or "" when none has it) -> refs to pull, in order
    for rec in chosen:
        needs = record_objects(rec)
        if rec.kind == "dataset.version":
            needs |= version_objects(vault, rec)
        for oid in needs & absent:
            refs = wants.setdefault(where_else.get(oid, ""), [])
            if _pull_ref(rec) not in refs:
                refs.append(_pull_ref(rec))
    first = min(absent)
    on = sorted(r for r in wants if r)
    what = (f"{len(absent)} object(s) this push needs are not in this vault, nor on remote {target}"
            + (f" (they are on remote {', '.join(on)}: fetched there without their data)" if on else ""))
    steps = []
    for remote in on:
        refs = wants[remote]
        more = f" … and {len(refs) - SHOWN} more" if len(refs) > SHOWN else ""
        steps.append(f"bring them here first: `lensvault pull {refs[0]} --remote {remote}`"
                     + (f", and the same for {', '.join(refs[1:SHOWN])}{more}" if len(refs) > 1 else "")
                     + " (or push from a vault that has them)")
    if "" in wants:
        steps.append(f"objects needed by {', '.join(wants[''][:SHOWN])} are lost here and on every remote "
                     "this vault fetched from: `lensvault verify` names them")
    raise ObjectMissing(what, where=vault.store.location(first), fix="; ".join(steps) + "; then push again",
                        oid=first, missing=sorted(absent), remotes=on)
