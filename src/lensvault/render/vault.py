"""Human output of the vault-wide commands: init, verify, gc, events."""

from __future__ import annotations

import json

from lensvault.grace import DEFAULT_GRACE_SECONDS
from lensvault.render._text import human_bytes, line, table

__all__ = ["events", "gc", "init", "rebuilt", "verify"]



def init(info, out) -> None:
    line(out, f"Initialized LensVault vault in {info.root}")
    line(out, f"  store:   {info.store}\n  catalog: {info.catalog}\n  manifests: {info.manifests}")
    line(out, f"  vault id: {info.vault_id}")
    if info.gitignore_added:
        line(out, f"  added /.lensvault/ to {info.gitignore_added}: commit it, so the store and catalog "
                  "stay out of git")


def _some(names: list[str], n: int = 5) -> str:
    if not names:
        return "-"
    return ", ".join(names[:n]) + (f" … and {len(names) - n} more" if len(names) > n else "")


def verify(report, out) -> None:
    if report.catalog_problem:
        line(out, f"CATALOG  {report.catalog_problem}")
    if report.catalog_skipped:
        line(out, "note: the store was checked without the catalog; not checked: " + "; ".join(report.catalog_skipped))
    for r in report.repaired or []:
        line(out, f"REPAIRED {r['oid']}  ({r['problem']}) from {r['from']}")
    for m in report.missing:
        line(out, f"MISSING  {m['oid']}  needed by {_some(m['needed_by'])}"
                  + (f"  (damaged bytes moved to {m['quarantined']})" if m.get("quarantined") else ""))
        if m.get("fix"):
            line(out, f"         fix: {m['fix']}")
    for c in report.corrupt:
        line(out, f"CORRUPT  {c['oid']}  needed by {_some(c['needed_by'])}  ({c['path']})")
        if c.get("fix"):
            line(out, f"         fix: {c['fix']}")
    for f in report.manifest_files:
        line(out, f"MANIFEST {f['problem'].upper()}  {f['path']}  — {f['fix']}")
    if report.remote_only:
        by_remote: dict[str, list[dict]] = {}
        for m in report.remote_only:
            by_remote.setdefault(m["remote"], []).append(m)
        for name, items in sorted(by_remote.items()):
            owners = sorted({o for m in items for o in m["needed_by"]})
            line(out, f"REMOTE   {len(items)} object(s) are only on remote {name} (needed by {_some(owners)}); "
                      f"`lensvault pull REF` or any checkout brings them")
    verdict = "OK" if report.ok else "FAILED"
    repaired = f", {len(report.repaired)} repaired" if report.repaired else ""
    # ``checked`` counts every object the vault needs; those only on a remote were not read here.
    elsewhere = f" ({len(report.remote_only)} of them only on a remote, not read here)" if report.remote_only else ""
    line(out, f"{verdict}: {report.checked} objects checked{elsewhere}{repaired}, {len(report.missing)} missing, "
              f"{len(report.corrupt)} corrupt")
    # ``repaired`` is None when no repair was asked for (and absent from the JSON then).
    if not report.ok and report.repaired is None and (report.missing or report.corrupt):
        line(out, "Run `lensvault verify --repair` (with --from DIR for a folder that holds the files) to restore them.")


def gc(result, out) -> None:
    plan, done = result.plan, result.executed
    for note in plan.notes:
        line(out, f"note: {note}")
    line(out, f"{len(plan.objects)} unreachable objects, {human_bytes(plan.bytes)}; {plan.kept} kept "
              f"(vaults sharing the store: {len(plan.vaults)}: {', '.join(plan.vaults)}; grace {plan.grace_seconds:g} s)")
    if plan.leftovers:
        line(out, f"{len(plan.leftovers)} left behind by interrupted commands, "
                  f"{human_bytes(sum(x.bytes for x in plan.leftovers))}:")
        for x in plan.leftovers[:20]:
            line(out, f"  {x.kind}  {x.path}")
        if len(plan.leftovers) > 20:
            line(out, f"  … and {len(plan.leftovers) - 20} more (all of them: --json)")
    if plan.cached:
        line(out, f"{len(plan.cached)} cached thumbnails and mask pictures of objects no longer kept, "
                  f"{human_bytes(sum(x.bytes for x in plan.cached))}")
    if done:
        line(out, f"Deleted {done['deleted']} objects, freed {human_bytes(done['bytes'])}; "
                  f"removed {done['leftovers']} leftovers ({human_bytes(done['leftover_bytes'])}) and "
                  f"{done['cached_pictures']} cached pictures ({human_bytes(done['cached_picture_bytes'])}).")
    elif plan.objects or plan.leftovers or plan.cached:
        grace = plan.grace_seconds
        again = ("lensvault gc --yes" + (f" --grace {grace:g}" if grace != DEFAULT_GRACE_SECONDS else "")
                 + (" --force" if result.force else ""))
        line(out, f"Nothing deleted. Run `{again}` to delete them.")


def events(items, out) -> None:
    t = table("at", "actor", "action", "subject", "details")
    for e in items:
        t.add_row(e["at"][:19].replace("T", " "), e["actor"], e["action"], e["subject"], _details(e))
    out.print(t)


def _details(event: dict) -> str:
    """The event's before/after as `key=value`, values that are lists or objects as compact JSON."""

    def flat(d) -> str:
        if not isinstance(d, dict):
            return json.dumps(d, default=str, ensure_ascii=False)
        return " ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, default=str, ensure_ascii=False)}"
                        for k, v in d.items())

    before, after = event.get("before"), event.get("after")
    return (f"{flat(before)} → " if before else "") + (flat(after) if after else "")


_REBUILT = {
    "dataset_versions": "dataset versions", "dataset_versions_from_manifest_files": "of them from manifest files only",
    "snapshots": "snapshots", "configs": "configs", "runs": "runs", "run_params": "run params",
    "run_metric_points": "metric points", "run_artifacts": "run artifacts", "evaluations": "evaluations",
    "model_versions": "model versions", "alias_moves": "alias moves", "tokens": "API tokens",
    "token_revocations": "of them revoked", "events": "events",
}


def rebuilt(report, out, err) -> None:
    """``catalog rebuild``: what was restored from where; what could not be proven (on stderr)."""
    line(out, f"Rebuilt the catalog {report.catalog} (was {report.previous}) from "
              f"{report.sources['ledger_records']} ledger record(s) and "
              f"{report.sources['manifest_files']} manifest file(s):")
    for key, label in _REBUILT.items():
        if report.restored.get(key):
            line(out, f"  {report.restored[key]:>8,}  {label}")
    if report.kept_previous:
        line(out, f"The previous catalog is kept at {report.kept_previous}.")
    if report.unproven:
        line(err, f"Could not prove {len(report.unproven)} item(s) (not restored):")
        for u in report.unproven[:50]:
            line(err, f"  - {u['what']} ({u['where']}): {u['problem']}")
        if len(report.unproven) > 50:
            line(err, f"  … and {len(report.unproven) - 50} more (see --json)")
