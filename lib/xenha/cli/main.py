"""`xenha` — the operator command.

Errors reach the user as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import sys

import click

from xenha import __version__
from xenha.ocf import codes


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xenha")
def cli():
    """Highly available Xen domains on DRBD-replicated LVM, run by Pacemaker."""


def _rc_text(rc: int) -> str:
    return f"{rc} {codes.name(rc)[4:] if codes.name(rc).startswith('OCF_') else codes.name(rc)}"


@cli.command()
def demo():
    """Run the Xen domain agent through start, live migration and stop on two
    simulated Xen hosts (no Xen, DRBD or cluster needed)."""
    from xenha import demo as scenario

    def report(kind, payload):
        if kind == "intro":
            click.secho("xenha demo: the OCF agent ocf:xenha:xen-domain on two simulated Xen hosts (mk1, mk2)",
                        bold=True)
            click.echo("xl is xenha's simulator (same commands, output and exit codes; guests are processes);\n"
                       "the agent is the installed one, called as Pacemaker calls it.\n")
            click.echo(f"domain config {payload['config']} (the howto's, unchanged):")
            for line in payload["text"].splitlines():
                click.echo(f"    {line}")
            click.echo()
            click.secho(f"{'#':>2}  {'node':4}  {'OCF call':20}  {'exit code':24}  {'mk1':28}  mk2", bold=True)
        elif kind == "step":
            step = payload
            colour = "green" if step.as_expected else "red"
            click.echo(f"{step.number:>2}  {step.call.node:4}  {step.label:20}  ", nl=False)
            click.secho(f"{_rc_text(step.call.rc):24}", fg=colour, nl=False)
            click.echo(f"  {step.states['mk1']:28}  {step.states['mk2']}")
            if step.call.exit_reason:
                click.echo(f"{'':30}exit reason: {step.call.exit_reason}")
        elif kind == "note":
            click.secho(f"    -> {payload}", fg="cyan")
        elif kind == "summary":
            if payload["ok"]:
                click.secho("\nEvery call answered as Pacemaker expects.", fg="green", bold=True)
            else:
                bad = [s.number for s in payload["steps"] if not s.as_expected]
                click.secho(f"\nUnexpected answers at steps {bad}.", fg="red", bold=True)

    if not scenario.run(report):
        sys.exit(1)


def main(argv=None) -> int:
    try:
        cli.main(args=argv, prog_name="xenha", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("xenha: aborted", err=True)
        return 130
    except click.ClickException as problem:
        problem.show()
        return problem.exit_code
    except SystemExit as leaving:
        return leaving.code if isinstance(leaving.code, int) else 1
    except Exception as unexpected:  # one line, never a traceback
        click.echo(f"xenha: error: {type(unexpected).__name__}: {unexpected}", err=True)
        return 1
    return 0
