"""The lab's commands, added to the `xenha` command when the lab is installed
(`make install-lab`): `xenha demo` (and, later, `xenha lab ...`).

Kept light: the `xenha` launcher (bin/xenha.in) imports this module at start-up when
the lab is installed, so everything heavy is imported inside the commands.
"""

from __future__ import annotations

import sys

import click

from xenha.ocf import codes


def _rc_text(rc: int) -> str:
    return f"{rc} {codes.name(rc)[4:] if codes.name(rc).startswith('OCF_') else codes.name(rc)}"


@click.command()
def demo():
    """Run the Xen domain agent through start, live migration and stop on two
    simulated Xen hosts (no Xen, DRBD or cluster needed)."""
    from xenha_lab import demo as scenario

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
        elif kind == "render":
            click.secho("\nxenha demo, part 2: the howto as a cluster description "
                        f"({payload['path']})", bold=True)
            click.echo("xenha render writes: " + ", ".join(payload["files"]))
            click.echo("and Pacemaker's own scheduler (crm_simulate, offline) decides:")
        elif kind == "transition":
            click.secho(f"  {payload['step']}:", fg="cyan" if payload["ok"] else "red")
            for line in payload["lines"] or ["(nothing to do)"]:
                click.echo(f"      {line}")

    agent_ok = scenario.run(report)
    scheduler_ok = scenario.run_scheduler(report)
    if not (agent_ok and scheduler_ok):
        sys.exit(1)


def commands() -> list[click.Command]:
    """The commands this package adds to `xenha`."""
    return [demo]
