"""The one table from exceptions to messages and exit codes."""

from __future__ import annotations

import json
import sys

import click

from lensvault.errors import LensVaultError

EXIT_INTERRUPTED = 130


def _wants_json(argv) -> bool:
    return "--json" in (argv if argv is not None else sys.argv[1:])


def run_with_errors(cli, argv=None) -> int:
    try:
        rv = cli.main(args=argv, standalone_mode=False, prog_name="lensvault")
        # Without standalone mode, click returns ctx.exit(code) as a value.
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        # click turns Ctrl-C into Abort; either way the command's own cleanup has run.
        from lensvault import interrupts

        written = interrupts.kept()
        if written and not interrupts.writes_expected_after():
            # The Ctrl-C came once the command's write had committed: it is whole and it stays,
            # so the command succeeded (a non-zero exit promises that nothing was written).
            click.echo(f"\nCtrl-C came after {', '.join(written)} was committed: it is kept, whole.", err=True)
            return 0
        if written:
            click.echo(f"\nInterrupted: {', '.join(written)} committed before the Ctrl-C and kept whole; "
                       "nothing half-written was kept.", err=True)
        else:
            click.echo("\nInterrupted: nothing half-written was kept.", err=True)
        return EXIT_INTERRUPTED
    except LensVaultError as e:
        render_error(e, as_json=_wants_json(argv))
        return e.exit_code
    except BrokenPipeError:
        return 0


def render_error(e: LensVaultError, *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(e.to_dict(), indent=2, default=str))
    lines = [f"Error: {e.what}"]
    if e.where:
        lines.append(f"  where: {e.where}")
    failures = e.details.get("failures") or []
    lines.extend(f"  ✗ {f.get('check', '')}: {f.get('what', '')}" + (f"\n      fix: {f['fix']}" if f.get("fix") else "")
                 for f in failures)
    findings = e.details.get("findings") or []
    for f in findings[:20]:
        loc = ", ".join(x for x in (f.get("file"), f.get("location")) if x)
        lines.append(f"  - [{f.get('code', '')}] {f.get('message', '')}" + (f" ({loc})" if loc else ""))
    if len(findings) > 20:
        lines.append(f"  … and {len(findings) - 20} more")
    if e.fix:
        lines.append(f"  fix: {e.fix}")
    click.echo("\n".join(lines), err=True)
