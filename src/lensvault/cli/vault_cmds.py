"""Vault-wide commands: init, status, verify, gc, events."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, open_vault_from, progress_for
from lensvault.grace import DEFAULT_GRACE_SECONDS
from lensvault.render import datasets as render_datasets
from lensvault.render import vault as render


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--store", metavar="PATH", help="Object store location (default: .lensvault/objects). May be shared by several vaults.")
@click.option("--catalog", metavar="URL", help="Catalog URL (default: sqlite:///.lensvault/catalog.db; or postgresql://USER@HOST/DB).")
@json_option
def init_cmd(directory, store, catalog, as_json):
    """Create a vault in DIRECTORY (default: the current folder)."""
    import lensvault

    with lensvault.init(directory, store=store, catalog=catalog) as vault:
        emit(vault.info(), as_json, render.init)


# `--remote` alone: the default remote; `--remote NAME`: that one.
remote_flag = click.option("--remote", "remote", is_flag=False, flag_value="", default=None, metavar="[NAME]",
                           help="A remote instead of a folder (NAME, or the default remote).")
jobs_option = click.option("--jobs", type=click.IntRange(1, 256), default=32, show_default=True,
                           help="With --remote: requests in flight at once.")


@click.command("status")
@click.argument("ref", required=False)
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@remote_flag
@json_option
@click.pass_context
def status_cmd(ctx, ref, directory, remote, as_json):
    """Show what in DIRECTORY (default: current folder) differs from dataset version REF.

    REF may be omitted in a folder made by `lensvault dataset checkout`. Exit code 1 if anything differs.

    With --remote [NAME]: what this vault has that the remote lacks (not pushed) and what the
    remote has that this vault lacks (not pulled), from one listing of its journal and refs.
    Exit code 1 if they differ.
    """
    from lensvault.render import remote_checks

    if remote is not None and (ref or directory):
        raise click.UsageError("--remote compares the vault with a remote: it takes no REF or DIRECTORY")
    if ref and directory is None and "@" not in ref:
        ref, directory = None, ref  # `lensvault status some/folder`
    vault = open_vault_from(ctx)
    if remote is not None:
        st = vault.remote_status(remote or None)
    else:
        st = vault.status(ref, directory, progress=progress_for(as_json))
    emit(st, as_json, remote_checks.status if remote is not None else render_datasets.status)
    ctx.exit(0 if (st.in_sync if remote is not None else st.clean) else 1)


@click.command("verify")
@click.argument("ref", required=False)
@click.option("--no-catalog", is_flag=True,
              help="Check the store alone (every object; what the ledger and the stored manifests need).")
@click.option("--repair", is_flag=True, help="Give missing or corrupt objects good bytes back from any source that hashes right.")
@click.option("--from", "sources", multiple=True, type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="With --repair: a folder (or vault, or object store) that may hold the original files. Repeatable.")
@remote_flag
@click.option("--hash", "rehash", is_flag=True, help="With --remote: download every object and re-hash it.")
@jobs_option
@json_option
@click.pass_context
def verify_cmd(ctx, ref, no_catalog, repair, sources, remote, rehash, jobs, as_json):
    """Re-hash the objects of REF (default: the whole store) and report missing or corrupt ones.

    Without a usable catalog the store is still checked, and the catalog problem is reported.
    With --repair, each missing or corrupt object is restored from the --from folders, the
    folders the versions were snapshotted from, or another vault sharing the store — whatever
    holds bytes that hash right. A corrupt object nothing can restore is moved to the store's
    quarantine/ folder.

    With --remote [NAME]: every object the remote's refs and records need is on the remote (by
    one listing; sizes checked against the files tables); --hash also downloads every object
    there and re-hashes it. Exit code 1 if anything is missing or corrupt.
    """
    from lensvault.render import remote_checks

    if remote is not None and (ref or no_catalog or repair or sources):
        raise click.UsageError("--remote checks the whole remote: it takes no REF, --no-catalog, --repair or --from")
    if rehash and remote is None:
        raise click.UsageError("--hash goes with --remote (a local verify always re-hashes)")
    if sources and not repair:
        raise click.UsageError("--from goes with --repair")
    vault = open_vault_from(ctx)
    if remote is not None:
        report = vault.verify_remote(remote or None, hash=rehash, jobs=jobs, progress=progress_for(as_json))
    else:
        report = vault.verify(ref, repair=repair, sources=sources, progress=progress_for(as_json),
                              use_catalog=not no_catalog)
    emit(report, as_json, remote_checks.verify if remote is not None else render.verify)
    ctx.exit(0 if report.ok else 1)


@click.command("gc")
@click.option("--yes", is_flag=True, help="Delete the planned objects (without it, only the plan is shown).")
@click.option("--grace", default=DEFAULT_GRACE_SECONDS, show_default=True, metavar="SECONDS", help="Keep objects younger than this (a snapshot or a push may be in flight).")
@click.option("--force", is_flag=True, help="Allow a grace period under 600 s (with --remote: under 3600 s); only if nothing else writes there.")
@click.option("--remote", "remote", metavar="NAME", help="Collect on remote NAME instead of this vault's store.")
@jobs_option
@json_option
@click.pass_context
def gc_cmd(ctx, yes, grace, force, remote, jobs, as_json):
    """Show the objects nothing references (no version, run or model) and what killed commands
    left behind (temp files, staging folders); delete them with --yes.

    With --remote NAME: the objects on that remote that no ref or record there reaches (left
    by interrupted pushes), written longer than --grace ago by the server's clock."""
    from lensvault.render import remote_checks

    vault = open_vault_from(ctx)
    if remote is not None:
        result = vault.collect_remote_garbage(remote, grace_seconds=grace, force=force, delete=yes, jobs=jobs,
                                              progress=progress_for(as_json))
    else:
        result = vault.collect_garbage(grace_seconds=grace, force=force, delete=yes)
    emit(result, as_json, remote_checks.gc if remote is not None else render.gc)
    ctx.exit(0 if remote is None or result.ok else 1)


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
    events = open_vault_from(ctx).events(subject=subject, action=action, since=since, until=until, limit=limit)
    emit(events, as_json, render.events)


@click.command("quickstart")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary on stdout at the end (the story then goes to stderr).")
@click.option("--task", default="detection", show_default=True,
              type=click.Choice(["detection", "segmentation", "classification"]),
              help="The story's task: detection (the whole product), or a short segmentation/classification demo.")
def quickstart_cmd(directory, as_json, task):
    """Run the whole product story in DIRECTORY (default: a new temp folder), printing every command.

    Generates a small vision dataset, snapshots it, trains and registers a detector, fixes
    labels, retrains, ships a bad hotfix, explains it with `why`, rolls back, shows lineage
    and reproduces the production model. No network; about a minute.
    """
    import sys
    import tempfile
    from pathlib import Path

    from lensvault import interrupts
    from lensvault.quickstart_tasks import run_any_quickstart

    interrupts.several_writes()  # a story of many writes: Ctrl-C stops it wherever it is
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lensvault-quickstart-"))
    summary = run_any_quickstart(root, task, echo=lambda s: click.echo(s, err=as_json),
                                 out=sys.stderr if as_json else None)
    emit(summary, as_json, None)  # the human output is the story, printed as it ran
