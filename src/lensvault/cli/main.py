"""The ``lensvault`` command. Subcommands are imported only when invoked, so
``lensvault --help`` does not pay for SQLAlchemy, pyarrow or rich."""

from __future__ import annotations

import importlib
import sys

import click

from lensvault import __version__

# name -> "module:attribute"; each module holds one command or group.
COMMANDS = {
    "init": "lensvault.cli.vault_cmds:init_cmd",
    "quickstart": "lensvault.cli.vault_cmds:quickstart_cmd",
    "status": "lensvault.cli.vault_cmds:status_cmd",
    "verify": "lensvault.cli.vault_cmds:verify_cmd",
    "gc": "lensvault.cli.vault_cmds:gc_cmd",
    "events": "lensvault.cli.vault_cmds:events_cmd",
    "catalog": "lensvault.cli.catalog_cmds:catalog",
    "dataset": "lensvault.cli.dataset:dataset",
    "model": "lensvault.cli.model_cmds:model",
    "lineage": "lensvault.cli.lineage_cmds:lineage_cmd",
    "why": "lensvault.cli.lineage_cmds:why_cmd",
    "reproduce": "lensvault.cli.lineage_cmds:reproduce_cmd",
    "config": "lensvault.cli.runs_cmds:config",
    "preflight": "lensvault.cli.runs_cmds:preflight_cmd",
    "run": "lensvault.cli.runs_cmds:run_cmd",
    "runs": "lensvault.cli.runs_cmds:runs",
    "eval": "lensvault.cli.runs_cmds:eval_cmd",
    "evals": "lensvault.cli.runs_cmds:evals_cmd",
    "serve": "lensvault.cli.serve_cmds:serve_cmd",
    "token": "lensvault.cli.token_cmds:token",
    "remote": "lensvault.cli.remote_cmds:remote",
    "push": "lensvault.cli.remote_cmds:push_cmd",
    "pull": "lensvault.cli.remote_cmds:pull_cmd",
    "fetch": "lensvault.cli.remote_cmds:fetch_cmd",
    "clone": "lensvault.cli.remote_cmds:clone_cmd",
}

# One-line help shown by `lensvault --help` without importing the command.
SHORT_HELP = {
    "init": "Create a vault (store, catalog, manifests folder).",
    "quickstart": "The whole product in one guided run (dataset → models → why → rollback → reproduce).",
    "status": "Show what in a folder differs from a dataset version (--remote: what is not pushed/pulled).",
    "verify": "Re-hash stored objects; name every missing or corrupt one (--remote: on a remote).",
    "gc": "Plan (and with --yes, delete) objects nothing references (--remote NAME: on a remote).",
    "events": "Show the append-only audit log.",
    "catalog": "Rebuild the catalog from the store when it is lost or damaged.",
    "dataset": "Snapshot, list, show, diff and check out dataset versions.",
    "model": "Register, show, promote, roll back and pull model versions.",
    "lineage": "What produced a model, run or dataset version — or what depends on it.",
    "why": "Why two models (or runs) differ: code, data, config, environment, metrics.",
    "reproduce": "Rebuild a model or run from its pins and verify metrics and hashes.",
    "config": "Register, list, show and diff config files (ids like C-01).",
    "preflight": "Check that a run may start: clean code, data, config, seeds, model version.",
    "run": "Run a training command as a recorded, reproducible run.",
    "runs": "List, show, compare and abandon recorded runs.",
    "eval": "Compute COCO metrics of predictions and record them.",
    "evals": "List recorded evaluations with their data and what they belong to.",
    "serve": "Serve the REST API and the web UI (versions, diffs, runs, models, lineage).",
    "token": "Create, list and revoke API tokens for the server (lensvault serve).",
    "remote": "Add, list and remove remotes (s3://, gs://, az://, file://).",
    "push": "Upload versions, runs and models (and what they need) to a remote.",
    "pull": "Bring a version, run or model from a remote into this vault.",
    "fetch": "Bring a remote's records (not their data) into this vault.",
    "clone": "Make a new vault from a remote.",
}


class LazyGroup(click.Group):
    def __init__(self, *args, lazy: dict[str, str], short_help: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy
        self.short = short_help

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader of our output went away (`… | head`). What the command did is done —
            # a snapshot is committed by then — so the exit code must not say it failed
            # (click would exit 1: a non-zero exit promises that no version was created).
            _silence_stdout()
            raise click.exceptions.Exit(0) from None

    def format_commands(self, ctx, formatter):
        rows = [(name, self.short.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the final flush at exit does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    short_help=SHORT_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="lensvault")
@click.option("--vault", "vault_path", envvar="LENSVAULT_DIR", metavar="DIR", help="The vault to use (default: found by walking up from the current folder).")
@click.pass_context
def cli(ctx, vault_path):
    """LensVault: versioned vision datasets, reproducible runs and a model registry."""
    ctx.obj = {"vault_path": vault_path}


def main(argv=None) -> None:
    import gc
    import logging

    from lensvault import interrupts
    from lensvault.cli._errors import run_with_errors

    # A command is short-lived and builds tens of thousands of small tuples (one
    # per file): with the default threshold the cyclic collector re-walks every
    # live object dozens of times (~10% of a 50,000-file status). Our data has
    # no cycles to speak of; collections just happen less often.
    gc.set_threshold(100_000, 20, 20)
    interrupts.install()
    # SQLAlchemy's pool logs (with a traceback, through logging's last-resort handler) any
    # exception raised while it closes a connection — a Ctrl-C landing there included —
    # and then re-raises it; the command's own error handling already tells the user.
    logging.getLogger("sqlalchemy.pool").addHandler(logging.NullHandler())
    code = run_with_errors(cli, argv)
    # Interpreter teardown runs a full collection over everything still alive
    # (SQLAlchemy, pyarrow, the modules): ~0.15 s of a 1 s command. The command's
    # own resources are closed by now (the vault on context close, files by
    # `with`), so that collection would only free memory the exit frees anyway.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    main()
