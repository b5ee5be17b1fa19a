"""Vault-wide commands: init, status, verify, gc, events."""

from __future__ import annotations

import click

from lensvault.cli._common import console, echo_json, human_bytes, json_option, open_vault_from, progress_for


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--store", metavar="PATH", help="Object store location (default: .lensvault/objects). May be shared by several vaults.")
@click.option("--catalog", metavar="URL", help="Catalog URL (default: sqlite:///.lensvault/catalog.db; or postgresql://USER@HOST/DB).")
@json_option
def init_cmd(directory, store, catalog, as_json):
    """Create a vault in DIRECTORY (default: the current folder)."""
    import lensvault

    vault = lensvault.init(directory, store=store, catalog=catalog)
    info = {"root": str(vault.root), "store": vault.store.url, "catalog": vault.catalog.url.split("@")[-1],
            "vault_id": vault.config.vault_id, "manifests": str(vault.manifests_dir),
            "gitignore_added": str(vault.gitignore_added) if vault.gitignore_added else None}
    if as_json:
        echo_json(info)
    else:
        click.echo(f"Initialized LensVault vault in {vault.root}")
        click.echo(f"  store:   {info['store']}\n  catalog: {info['catalog']}\n  manifests: {vault.manifests_dir}")
        click.echo(f"  vault id: {info['vault_id']}")
        if vault.gitignore_added:
            click.echo(f"  added /.lensvault/ to {vault.gitignore_added}: commit it, so the store and catalog "
                       "stay out of git")


@click.command("status")
@click.argument("ref", required=False)
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@json_option
@click.pass_context
def status_cmd(ctx, ref, directory, as_json):
    """Show what in DIRECTORY (default: current folder) differs from dataset version REF.

    REF may be omitted in a folder made by `lensvault dataset checkout`. Exit code 1 if anything differs.
    """
    if ref and directory is None and "@" not in ref:
        ref, directory = None, ref  # `lensvault status some/folder`
    vault = open_vault_from(ctx)
    st = vault.status(ref, directory, progress=progress_for(as_json))
    if as_json:
        echo_json(st.to_dict())
    else:
        if st.clean:
            click.echo(f"{st.folder} matches {st.ref} ({st.unchanged} files)")
        else:
            click.echo(f"{st.folder} differs from {st.ref}:")
            for label, items, mark in (("added", st.added, "+"), ("removed", st.removed, "-"), ("modified", st.modified, "~")):
                for p in items[:50]:
                    click.echo(f"  {mark} {p}")
                if len(items) > 50:
                    click.echo(f"  … and {len(items) - 50} more {label} (all of them: --json)")
            click.echo(f"{len(st.added)} added, {len(st.removed)} removed, {len(st.modified)} modified, {st.unchanged} unchanged")
        for d in st.damaged:
            click.echo(f"DAMAGED  {d['what']}\n         fix: {d['fix']}")
    ctx.exit(0 if st.clean else 1)


@click.command("verify")
@click.argument("ref", required=False)
@click.option("--no-catalog", is_flag=True,
              help="Check the store alone (every object; what the ledger and the stored manifests need).")
@click.option("--repair", is_flag=True, help="Give missing or corrupt objects good bytes back from any source that hashes right.")
@click.option("--from", "sources", multiple=True, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="With --repair: a folder (or vault, or object store) that may hold the original files. Repeatable.")
@json_option
@click.pass_context
def verify_cmd(ctx, ref, no_catalog, repair, sources, as_json):
    """Re-hash the objects of REF (default: the whole store) and report missing or corrupt ones.

    Without a usable catalog the store is still checked, and the catalog problem is reported.
    With --repair, each missing or corrupt object is restored from the --from folders, the
    folders the versions were snapshotted from, or another vault sharing the store — whatever
    holds bytes that hash right. A corrupt object nothing can restore is moved to the store's
    quarantine/ folder.
    """
    if sources and not repair:
        raise click.UsageError("--from goes with --repair")
    vault = open_vault_from(ctx)
    report = vault.verify(ref, repair=repair, sources=sources, progress=progress_for(as_json),
                          use_catalog=not no_catalog)
    if as_json:
        echo_json(report.to_dict())
    else:
        if report.catalog_problem:
            click.echo(f"CATALOG  {report.catalog_problem}")
        if report.catalog_skipped:
            click.echo("note: the store was checked without the catalog; not checked: "
                       + "; ".join(report.catalog_skipped))
        for r in report.repaired or []:
            click.echo(f"REPAIRED {r['oid']}  ({r['problem']}) from {r['from']}")
        for m in report.missing:
            click.echo(f"MISSING  {m['oid']}  needed by {_some(m['needed_by'])}"
                       + (f"  (damaged bytes moved to {m['quarantined']})" if m.get("quarantined") else ""))
            if m.get("fix"):
                click.echo(f"         fix: {m['fix']}")
        for c in report.corrupt:
            click.echo(f"CORRUPT  {c['oid']}  needed by {_some(c['needed_by'])}  ({c['path']})")
            if c.get("fix"):
                click.echo(f"         fix: {c['fix']}")
        for f in report.manifest_files:
            click.echo(f"MANIFEST {f['problem'].upper()}  {f['path']}  — {f['fix']}")
        verdict = "OK" if report.ok else "FAILED"
        repaired = f", {len(report.repaired)} repaired" if report.repaired else ""
        click.echo(f"{verdict}: {report.checked} objects checked{repaired}, {len(report.missing)} missing, "
                   f"{len(report.corrupt)} corrupt")
        if not report.ok and not repair and (report.missing or report.corrupt):
            click.echo("Run `lensvault verify --repair` (with --from DIR for a folder that holds the files) to restore them.")
    ctx.exit(0 if report.ok else 1)


GC_GRACE = 3600.0


def _some(names: list[str], n: int = 5) -> str:
    if not names:
        return "-"
    return ", ".join(names[:n]) + (f" … and {len(names) - n} more" if len(names) > n else "")


@click.command("gc")
@click.option("--yes", is_flag=True, help="Delete the planned objects (without it, only the plan is shown).")
@click.option("--grace", default=GC_GRACE, show_default=True, metavar="SECONDS", help="Keep objects younger than this (a snapshot may be in flight).")
@click.option("--force", is_flag=True, help="Allow a grace period under 600 s (only if no other machine writes to the store).")
@json_option
@click.pass_context
def gc_cmd(ctx, yes, grace, force, as_json):
    """Show the objects nothing references (no version, run or model) and what killed commands
    left behind (temp files, staging folders); delete them with --yes."""
    vault = open_vault_from(ctx)
    plan = vault.gc(grace_seconds=grace, force=force)
    result = plan.execute() if yes and (plan.objects or plan.leftovers) else None
    if as_json:
        echo_json({"plan": plan.to_dict(), "executed": result})
        return
    for note in plan.notes:
        click.echo(f"note: {note}")
    click.echo(f"{len(plan.objects)} unreachable objects, {human_bytes(plan.bytes)}; {plan.kept} kept "
               f"(vaults sharing the store: {len(plan.vaults)}: {', '.join(plan.vaults)}; grace {plan.grace_seconds:g} s)")
    if plan.leftovers:
        click.echo(f"{len(plan.leftovers)} left behind by interrupted commands, "
                   f"{human_bytes(sum(x.bytes for x in plan.leftovers))}:")
        for x in plan.leftovers[:20]:
            click.echo(f"  {x.kind}  {x.path}")
        if len(plan.leftovers) > 20:
            click.echo(f"  … and {len(plan.leftovers) - 20} more (all of them: --json)")
    if result:
        click.echo(f"Deleted {result['deleted']} objects, freed {human_bytes(result['bytes'])}; "
                   f"removed {result['leftovers']} leftovers ({human_bytes(result['leftover_bytes'])}).")
    elif plan.objects or plan.leftovers:
        again = "lensvault gc --yes" + (f" --grace {grace:g}" if grace != GC_GRACE else "") + (" --force" if force else "")
        click.echo(f"Nothing deleted. Run `{again}` to delete them.")


@click.command("events")
@click.option("--subject", help="Only events about this subject (e.g. retail or retail@1.0.0).")
@click.option("--action", help="Only this action (wildcards: dataset.*).")
@click.option("--since", help="ISO time, e.g. 2026-11-01 or 2026-11-01T10:00.")
@click.option("--until", help="ISO time.")
@click.option("--limit", type=int, help="Only the last N events.")
@json_option
@click.pass_context
def events_cmd(ctx, subject, action, since, until, limit, as_json):
    """Show the append-only event log: who wrote what, when."""
    vault = open_vault_from(ctx)
    events = vault.events(subject=subject, action=action, since=since, until=until, limit=limit)
    if as_json:
        echo_json(events)
        return
    from lensvault.cli._common import table

    t = table("at", "actor", "action", "subject", "details")
    for e in events:
        t.add_row(e["at"][:19].replace("T", " "), e["actor"], e["action"], e["subject"], _details(e))
    console().print(t)


def _details(event: dict) -> str:
    """The event's before/after as `key=value`, values that are lists or objects as compact JSON."""
    import json

    def flat(d) -> str:
        if not isinstance(d, dict):
            return json.dumps(d, default=str, ensure_ascii=False)
        return " ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, default=str, ensure_ascii=False)}"
                        for k, v in d.items())

    before, after = event.get("before"), event.get("after")
    return (f"{flat(before)} → " if before else "") + (flat(after) if after else "")


@click.command("quickstart")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary on stdout at the end (the story then goes to stderr).")
def quickstart_cmd(directory, as_json):
    """Run the whole product story in DIRECTORY (default: a new temp folder), printing every command.

    Generates a small vision dataset, snapshots it, trains and registers a detector, fixes
    labels, retrains, ships a bad hotfix, explains it with `why`, rolls back, shows lineage
    and reproduces the production model. No network; about a minute.
    """
    import sys
    import tempfile
    from pathlib import Path

    from lensvault.quickstart import run_quickstart

    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lensvault-quickstart-"))
    summary = run_quickstart(root, echo=lambda s: click.echo(s, err=as_json), out=sys.stderr if as_json else None)
    if as_json:
        echo_json(summary)
