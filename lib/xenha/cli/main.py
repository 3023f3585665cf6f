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


def _prepare(path: str, drbd_version: int | None = None):
    """Everything `render` would write (xenha.render.files.prepare), or a clean exit
    listing every problem with its file and key (exit 2). `validate`, `render` and
    `simulate` all start here, so they accept and refuse the same descriptions."""
    from xenha.cluster.description import DescriptionError
    from xenha.render import files

    try:
        return files.prepare(path, drbd_version)
    except DescriptionError as problem:
        for line in problem.problems:
            click.echo(line, err=True)
        raise SystemExit(2) from None


@cli.command()
@click.argument("description_file", type=click.Path(dir_okay=False))
def validate(description_file):
    """Check a cluster description; every problem is listed. The description is
    rendered in memory, so what validates also renders."""
    rendering = _prepare(description_file)
    desc = rendering.description
    click.echo(f"{description_file}: {len(desc.nodes)} nodes, {len(desc.vms)} VMs: valid")
    if rendering.added:
        click.echo(f"VMs without DRBD numbers yet: {', '.join(rendering.added)} "
                   f"(`xenha render` records them in {rendering.allocation_path})")


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
    Everything is rendered before anything is written; then all files are replaced
    together, the allocation file last.
    """
    from xenha.render import files

    rendering = _prepare(description_file, {"9": 9, "8.4": 8}.get(drbd_version or ""))
    try:
        report = files.write_rendering(out_dir, rendering)
    except files.WriteError as problem:
        raise click.ClickException(str(problem)) from None
    for path, state in report:
        if path != rendering.allocation_path:
            click.echo(f"{state:9} {path}")
    for name in rendering.added:
        slot = rendering.slots[name]
        click.echo(f"allocated {name}: DRBD {slot.resource} minor {slot.minor} port {slot.port} "
                   f"-> {rendering.allocation_path}")


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

    rendering = _prepare(description_file)
    simulation = Simulation(rendering.description, slots=rendering.slots)
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


@cli.command(name="provision-node", hidden=True)
def provision_node():
    """Run provisioning steps on this node (what `xenha provision` and the lab send,
    as JSON on stdin; the results as JSON on stdout). See xenha.provision.node."""
    import sys

    from xenha.provision import node

    raise SystemExit(node.main(sys.stdin.read(), sys.stdout))


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
