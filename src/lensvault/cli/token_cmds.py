"""``lensvault token``: API tokens for ``lensvault serve`` (create, list, revoke)."""

from __future__ import annotations

import click

from lensvault.cli._common import emit, json_option, open_vault_from
from lensvault.render import tokens as render


@click.group("token")
def token():
    """API tokens for `lensvault serve`: each acts as a user with a role (read, write, admin)."""


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True,
              help="read: every GET; write: also promote and rollback; admin: also gc.")
@click.option("--user", metavar="USER", help="Who writes made with the token are recorded as (default: NAME).")
@json_option
@click.pass_context
def create_cmd(ctx, name, role, user, as_json):
    """Make a token; it is printed once (only its hash is stored)."""
    emit(open_vault_from(ctx).create_token(name, role=role, user=user), as_json, render.created)


@token.command("list")
@json_option
@click.pass_context
def list_cmd(ctx, as_json):
    """Every token (never its secret), revoked ones too."""
    emit(open_vault_from(ctx).tokens(), as_json, render.tokens)


@token.command("revoke")
@click.argument("name")
@json_option
@click.pass_context
def revoke_cmd(ctx, name, as_json):
    """Revoke token NAME (or its id): later requests with it get 401."""
    emit(open_vault_from(ctx).revoke_token(name), as_json, render.revoked)
