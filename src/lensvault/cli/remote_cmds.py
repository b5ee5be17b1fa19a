"""``lensvault remote``, ``push``, ``pull``, ``clone``: share versions, runs and models through object storage."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, open_vault_from, progress_for
from lensvault.render import remotes as render

jobs_option = click.option("--jobs", type=click.IntRange(1, 256), default=32, show_default=True,
                           help="Requests in flight at once.")
remote_option = click.option("--remote", "remote", metavar="NAME", help="The remote (default: the default remote).")


@click.group("remote")
def remote():
    """Name the object storage this vault shares through (s3://, gs://, az://, file://)."""


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint-url", metavar="URL", help="An S3-compatible server (MinIO, Ceph, R2 …), e.g. http://minio:9000.")
@click.option("--region", metavar="REGION", help="The bucket's region.")
@click.option("--default", "default", is_flag=True, help="Make it the default remote (the first one is).")
@click.option("--no-check", "no_check", is_flag=True,
              help="Add it without contacting it (offline, or credentials given later).")
@json_option
@click.pass_context
def add_cmd(ctx, name, url, endpoint_url, region, default, no_check, as_json):
    """Add remote NAME at URL: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX, az://CONTAINER/PREFIX or file:///PATH.

    The bucket (or folder) must exist and answer: a new location must be writable, an existing
    remote readable. Credentials are never stored: they come from each cloud's usual environment variables."""
    emit(open_vault_from(ctx).add_remote(name, url, endpoint_url=endpoint_url, region=region, default=default,
                                         check=not no_check), as_json, render.added)


@remote.command("list")
@json_option
@click.pass_context
def list_cmd(ctx, as_json):
    """List the remotes, the default one marked."""
    emit(open_vault_from(ctx).remotes(), as_json, render.listing)


@remote.command("remove")
@click.argument("name")
@json_option
@click.pass_context
def remove_cmd(ctx, name, as_json):
    """Forget remote NAME (nothing on the remote is deleted)."""
    emit(open_vault_from(ctx).remove_remote(name), as_json, render.removed)


@click.command("push")
@click.argument("refs", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Push every record of this vault (and what it needs).")
@remote_option
@click.option("--check-remote", is_flag=True,
              help="Trust no ref there: list the remote's objects, send what is missing, replace what is damaged.")
@jobs_option
@json_option
@click.pass_context
def push_cmd(ctx, refs, everything, remote, check_remote, jobs, as_json):
    """Upload REFs (NAME@X.Y.Z, NAME@ALIAS, run ids, config ids) and what they need.

    Objects first, then records, then refs: no ref on the remote ever names something incomplete.
    Only what the remote lacks is sent; run it again after an interruption to finish."""
    emit(open_vault_from(ctx).push(list(refs), all=everything, remote=remote, jobs=jobs, check_remote=check_remote,
                                   progress=progress_for(as_json)), as_json, render.pushed)


@click.command("pull")
@click.argument("ref")
@remote_option
@jobs_option
@json_option
@click.pass_context
def pull_cmd(ctx, ref, remote, jobs, as_json):
    """Bring REF (a version, model, NAME@ALIAS, run or config) and what it needs from a remote."""
    emit(open_vault_from(ctx).pull(ref, remote=remote, jobs=jobs, progress=progress_for(as_json)),
         as_json, render.pulled)


@click.command("fetch")
@remote_option
@jobs_option
@json_option
@click.pass_context
def fetch_cmd(ctx, remote, jobs, as_json):
    """Bring every record of a remote (versions, runs, models, configs) into this vault, without their data.

    Their data stays on the remote until `dataset checkout`, `model pull`, `reproduce` or `pull REF`
    needs it (then it is fetched, hash-checked); `verify` lists it as only on the remote. A version
    made here and there with other content is reported (with what needs it, left out) and the
    rest is fetched; then the exit code is 4."""
    result = open_vault_from(ctx).fetch(remote=remote, jobs=jobs, progress=progress_for(as_json))
    emit(result, as_json, render.fetched)
    ctx.exit(0 if result.ok else 4)  # a name made here and there with other content: RemoteConflict's code


@click.command("clone")
@click.argument("url")
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--name", default="origin", show_default=True, help="The name the remote gets in the new vault.")
@click.option("--endpoint-url", metavar="URL", help="An S3-compatible server (MinIO, Ceph, R2 …).")
@click.option("--region", metavar="REGION", help="The bucket's region.")
@jobs_option
@json_option
def clone_cmd(url, dest, name, endpoint_url, region, jobs, as_json):
    """Make a new vault in DEST from the remote at URL (DEST may be a checkout of the project's git repo)."""
    import lensvault

    emit(lensvault.clone(url, dest, name=name, endpoint_url=endpoint_url, region=region, jobs=jobs,
                         progress=progress_for(as_json)), as_json, render.cloned)
