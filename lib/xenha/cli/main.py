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


def _load(path: str):
    """The description, or a clean exit listing every problem (exit 2)."""
    from xenha.cluster import description

    try:
        return description.load(path)
    except description.DescriptionError as problem:
        for line in problem.problems:
            click.echo(line, err=True)
        raise SystemExit(2) from None


def _allocate(desc, update: bool):
    from xenha.cluster import allocation
    from xenha.cluster.description import DescriptionError

    path = allocation.allocation_path(desc.path)
    try:
        slots, added = allocation.allocate(desc, allocation.read(path))
    except DescriptionError as problem:
        for line in problem.problems:
            click.echo(line, err=True)
        raise SystemExit(2) from None
    if added and not update:
        raise click.ClickException(f"VMs without DRBD numbers: {', '.join(added)} "
                                   f"(run `xenha render` to allocate them in {path})")
    text = allocation.render(slots)
    try:
        with open(path, encoding="utf-8") as handle:
            current = handle.read()
    except OSError:
        current = None
    if update and text != current:
        # Every VM's numbers are recorded, explicit ones too: removing them from the
        # description later must not renumber the VM.
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        for name in added:
            slot = slots[name]
            click.echo(f"allocated {name}: DRBD {slot.resource} minor {slot.minor} port {slot.port} -> {path}")
    return slots


@cli.command()
@click.argument("description_file", type=click.Path(dir_okay=False))
def validate(description_file):
    """Check a cluster description; every problem is listed."""
    desc = _load(description_file)
    click.echo(f"{description_file}: {len(desc.nodes)} nodes, {len(desc.vms)} VMs: valid")


@cli.command()
@click.argument("description_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="directory for the rendered files")
@click.option("--drbd-version", type=click.Choice(["9", "8.4"]), default=None,
              help="DRBD syntax (default: the description's drbd_version)")
def render(description_file, out_dir, drbd_version):
    """Render DRBD resource files, xl configs and the Pacemaker configuration.

    New VMs get DRBD minors and ports, recorded next to the description in
    NAME.alloc.toml (keep it with the description: existing VMs are never renumbered).
    """
    from xenha.render import files

    desc = _load(description_file)
    slots = _allocate(desc, update=True)
    version = {"9": 9, "8.4": 8}.get(drbd_version or "")
    for path, state in files.write(out_dir, files.render_all(desc, slots, version)):
        click.echo(f"{state:9} {path}")


@cli.command()
@click.argument("description_file", type=click.Path(dir_okay=False))
@click.argument("steps", nargs=-1, required=True)
def simulate(description_file, steps):
    """Show what Pacemaker would do: render the configuration and run scenario STEPS
    with crm_simulate, e.g. `xenha simulate howto.toml "up mk1 mk2" settle "standby mk1"`.
    Steps: up NODE..., settle, next, standby/unstandby NODE, move VM NODE, fail NODE,
    outdated VM NODE (each may end with crm_simulate options such as --op-fail SPEC)."""
    from xenha.scenario import Simulation
    from xenha.tools.pacemaker import PacemakerError

    desc = _load(description_file)
    simulation = Simulation(desc)
    try:
        for step in steps:
            click.secho(f"== {step}", bold=True)
            try:
                transition = simulation.step(step)
            except ValueError as problem:
                raise click.ClickException(str(problem)) from None
            except PacemakerError as problem:
                raise click.ClickException(f"crm_simulate: {problem}") from None
            if transition is not None:
                click.echo(transition.summary.split("Revised Cluster Status:")[0].rstrip() + "\n")
    finally:
        simulation.cleanup()


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
