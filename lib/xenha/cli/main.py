"""`xenha` — the operator command.

Errors reach the user as one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations


import click

from xenha import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xenha")
def cli():
    """Highly available Xen domains on DRBD-replicated LVM, run by Pacemaker."""


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
